"""Step 5: verify — health endpoint under the threshold, core endpoints 2xx, no critical errors in pm2 logs."""

from __future__ import annotations

from urllib.parse import urljoin

from bot.incident import Milestone
from bot.ops.health import probe
from bot.ops.pm2 import Pm2, critical_lines, tail_file
from bot.redact import redact
from bot.runbook.base import Check, Plan, StepContext, StepResult
from bot.runbook.envfile import env_value


class Verify:
    name = "verify"
    title = "Verify rollback"
    usage = "verify"

    def plan(self, ctx: StepContext) -> Plan:
        cfg = ctx.config
        lines = [f"GET {cfg.health.url} expects {cfg.health.expect_json} within "
                 f"{cfg.thresholds.backend_response_s:g}s"]
        lines += [f"GET {e.path} expects {e.expect_status}" for e in cfg.health.core_endpoints]
        lines.append("pm2 error logs since the last restart: no critical errors")
        return Plan(summary="Check health, core endpoints and pm2 error logs", lines=lines)

    def run(self, ctx: StepContext, plan: Plan) -> StepResult:
        cfg = ctx.config
        checks: list[Check] = []
        ctx.progress("health endpoint")
        health = probe(str(cfg.health.url), timeout=cfg.health.timeout_s, expect_json=cfg.health.expect_json,
                       slow_after=cfg.thresholds.backend_response_s)
        checks.append(Check(f"GET {cfg.health.url}", health.ok, f"{health.detail} in {health.seconds * 1000:.0f} ms"))
        for endpoint in cfg.health.core_endpoints:
            token = env_value(endpoint.bearer_token_env, cfg.target.env_path)
            url = urljoin(str(cfg.health.url), endpoint.path)
            result = probe(url, timeout=cfg.health.timeout_s, expect_status=endpoint.expect_status, bearer=token,
                           slow_after=cfg.thresholds.backend_response_s)
            checks.append(Check(f"GET {endpoint.path}", result.ok,
                                f"{result.detail} in {result.seconds * 1000:.0f} ms"))
        ctx.progress("pm2 error logs")
        checks.extend(self._logs(ctx))
        ok = all(c.ok for c in checks)
        details = [f"{'✅' if c.ok else '❌'} {c.name}: {redact(c.detail, ctx.secrets)}" for c in checks]
        reverted = ctx.last_success("revert") is not None
        milestones = [Milestone.ROLLBACK_COMPLETED] if ok and reverted else []
        passed = sum(c.ok for c in checks)
        summary = (f"all {len(checks)} checks passed" if ok else f"{len(checks) - passed} of {len(checks)} checks "
                   "failed: " + "; ".join(c.name for c in checks if not c.ok))
        return StepResult(ok=ok, summary=summary, details=details, checks=checks, milestones=milestones,
                          artifacts={"health_ms": round(health.seconds * 1000, 1), "status": health.status})

    def _logs(self, ctx: StepContext) -> list[Check]:
        cfg = ctx.config
        restart = ctx.last_success("restart")
        offsets = restart.result.get("artifacts", {}).get("apps", {}) if restart else {}
        try:
            states = {s.name: s for s in Pm2(cfg.pm2.executable, cfg.pm2.home).jlist()}
        except Exception as error:  # noqa: BLE001 - reported as a failed check
            return [Check("pm2", False, str(error)[:200])]
        checks = []
        for app in cfg.pm2.apps:
            state = states.get(app)
            if state is None:
                checks.append(Check(f"pm2 {app}", False, "not known to pm2"))
                continue
            since = int(offsets.get(app, {}).get("err_offset", 0)) if offsets else 0
            lines = tail_file(state.err_log, 50, since=since)
            errors = critical_lines(lines)
            checks.append(Check(f"pm2 {app} error log", state.online and not errors,
                                f"{state.status}; " + (f"{len(errors)} critical line(s), last: "
                                                       f"{errors[-1][:120]}" if errors else "no critical errors")))
        return checks
