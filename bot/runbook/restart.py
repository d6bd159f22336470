"""Step 4: `pm2 restart` the runbook's app(s) and wait until each is online; report restarts and fresh errors.

Only ``pm2.restart_apps`` (default: the backend, as the runbook's `pm2 restart ai-professor-backend-5000`)
is restarted, and never with ``--update-env``: the app keeps its own environment, not the bot's.
"""

from __future__ import annotations

from bot.domain.runs import CheckOutcome, RestartArtifacts, RestartedApp, StepName
from bot.domain.steps import Plan, StepContext, StepResult, check
from bot.errors import StepFailed
from bot.ops.pm2 import Pm2, critical_lines, tail_file
from bot.text import Code, Rich, join, rich


class Restart:
    name = StepName.RESTART
    follow_ups: tuple[StepName, ...] = ()

    def plan(self, ctx: StepContext) -> Plan[None]:
        apps = ctx.config.pm2.to_restart
        return Plan(facts=None, summary=rich(Code("pm2 restart"), " ", join([(Code(a),) for a in apps])),
                    lines=[(Code(f"pm2 restart {a}"),) for a in apps]
                    + [(f"wait up to {ctx.config.pm2.restart_timeout_s:g}s for each to be ", Code("online"),
                        " (pm2's process list)",),
                       ("scan the log lines written since the restart for errors",)])

    def run(self, ctx: StepContext, plan: Plan[None]) -> StepResult:
        cfg = ctx.config
        apps = cfg.pm2.to_restart
        pm2 = Pm2(cfg.pm2.executable, cfg.pm2.home)
        ctx.progress(("pm2 restart " + " ".join(apps) + ", then waiting for every app to be online",))
        seen = pm2.restart_watched(apps, cfg.pm2.restart_timeout_s)
        before, after = seen.before, seen.after
        if seen.error is not None and not before:
            raise StepFailed(rich("pm2 did not answer: ", Code(ctx.secrets.redact(seen.error))),
                             hint=(Code("pm2 status"), " on the server says whether pm2's daemon runs, and whether the "
                                   "apps were restarted."))
        missing = [a for a in apps if a not in before]
        if missing and seen.new_daemon:
            raise StepFailed(rich("pm2's daemon was not running (a reboot, or it was killed): asking started an empty "
                                  "one, which knows none of ", join([(Code(a),) for a in missing])),
                             hint=("Bring the apps back with ", Code("pm2 resurrect"), " (pm2's saved list) or start "
                                   "them, then restart again. If pm2 runs as another user, check ", Code("pm2.home"),
                                   " in rollback.yml."))
        if missing:
            raise StepFailed(rich("pm2 does not know ", join([(Code(a),) for a in missing])),
                             hint=("Check ", Code("pm2.apps"), " and ", Code("pm2.home"), " in rollback.yml (",
                                   Code("pm2 status"), " lists the apps)."))
        checks: list[CheckOutcome] = []
        details: list[Rich] = []
        artifacts: dict[str, RestartedApp] = {}
        offsets = {app: seen.err_sizes.get(app, 0) for app in apps}
        if seen.error is not None:
            details.append((Code("pm2 restart"), " failed: ", Code(ctx.secrets.redact(seen.error))))
        for app in apps:
            old, state = before[app], after.get(app)
            online = bool(state and state.online and state.pid != old.pid)
            errors = critical_lines(tail_file(state.err_log if state else None, 50, since=offsets[app]))
            restarts = state.restarts if state else old.restarts
            status = state.status if state else "unknown"
            checks.append(check(f"{app} online", online, f"{status}, restarts {old.restarts} → {restarts}"))
            details.append(rich(Code(app), f": {status}, pid {state.pid if state else '-'}, restarts "
                                f"{old.restarts} → {restarts}",
                                f", {len(errors)} error line(s) since restart" if errors else ""))
            for line in errors[:5]:
                details.append(("    ", Code(ctx.secrets.redact(line)[:200])))
            artifacts[app] = RestartedApp(status=status, restarts=restarts, pid=state.pid if state else None,
                                          err_offset=offsets[app], stable_at_ms=(
                                              state.started_ms + state.min_uptime_ms
                                              if online and state and state.started_ms else None))
        ok = all(c.ok for c in checks)
        summary = (("all restarted apps online: " if ok else "not every app came online: ")
                   + ", ".join(f"{a} {artifacts[a].status}" for a in apps),)
        return StepResult(ok=ok, summary=summary, details=details, checks=checks,
                          artifacts=RestartArtifacts(apps=artifacts))

