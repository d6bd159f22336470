"""Step 4: restart every pm2 app and wait until each is online; report restarts and fresh log errors."""

from __future__ import annotations

from pathlib import Path

from bot.errors import StepFailed
from bot.ops.pm2 import Pm2, critical_lines, tail_file
from bot.redact import redact
from bot.runbook.base import Check, Plan, StepContext, StepResult


class Restart:
    name = "restart"
    title = "Restart backend"
    usage = "restart"

    def plan(self, ctx: StepContext) -> Plan:
        apps = ctx.config.pm2.apps
        return Plan(summary="`pm2 restart` " + ", ".join(f"`{a}`" for a in apps),
                    lines=[f"`pm2 restart {a}`" for a in apps]
                    + [f"wait up to {ctx.config.pm2.restart_timeout_s:g}s for each to be `online` (pm2 jlist)",
                       "scan the log lines written since the restart for errors"])

    def run(self, ctx: StepContext, plan: Plan) -> StepResult:
        cfg = ctx.config
        pm2 = Pm2(cfg.pm2.executable, cfg.pm2.home)
        before = {s.name: s for s in pm2.jlist()}
        missing = [a for a in cfg.pm2.apps if a not in before]
        if missing:
            raise StepFailed("pm2 does not know " + ", ".join(f"`{a}`" for a in missing),
                             hint="Check `pm2.apps` and `pm2.home` in rollback.yml (`pm2 status` lists the apps).")
        checks, details, artifacts = [], [], {}
        offsets = {app: _size(before[app].err_log) for app in cfg.pm2.apps}
        ctx.progress("pm2 restart " + " ".join(cfg.pm2.apps))
        result = pm2.restart(*cfg.pm2.apps)
        ctx.progress("waiting for every app to be online")
        after = pm2.wait_online({app: before[app].pid for app in cfg.pm2.apps},
                                cfg.pm2.restart_timeout_s) if result.ok else {}
        if not result.ok:
            details.append(f"`pm2 restart` failed: {redact(result.tail(3), ctx.secrets)}")
        for app in cfg.pm2.apps:
            old, state = before[app], after.get(app)
            online = bool(state and state.online and state.pid != old.pid)
            errors = critical_lines(tail_file(state.err_log if state else None, 50, since=offsets[app]))
            restarts = state.restarts if state else old.restarts
            status = state.status if state else "unknown"
            checks.append(Check(f"{app} online", online, f"{status}, restarts {old.restarts} → {restarts}"))
            details.append(f"• `{app}`: {status}, pid {state.pid if state else '-'}, restarts {old.restarts} → "
                           f"{restarts}" + (f", {len(errors)} error line(s) since restart" if errors else ""))
            for line in errors[:5]:
                details.append(f"    `{redact(line, ctx.secrets)[:200]}`")
            artifacts[app] = {"status": status, "restarts": restarts, "pid": state.pid if state else None,
                              "err_offset": offsets[app]}
        ok = all(c.ok for c in checks)
        summary = ("all apps online: " if ok else "not every app came online: ") + ", ".join(
            f"{a} {artifacts[a]['status']}" for a in cfg.pm2.apps)
        return StepResult(ok=ok, summary=summary, details=details, checks=checks, artifacts={"apps": artifacts})


def _size(path: Path | None) -> int:
    return path.stat().st_size if path is not None and path.exists() else 0
