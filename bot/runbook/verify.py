"""Step 5: verify — health endpoint under the threshold, core endpoints 2xx, no critical errors in pm2 logs.

Right after a restart (the last step that finished was a restart) the app may still be starting, so while the
HTTP checks fail the way a starting app fails (no answer, 502-504) they are asked again, every 1-3 s, for up to
``health.settle_s``; a pass after a failure must hold once more. Any other verify (e.g. `verify --again` after
a failure) asks once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urljoin

from bot.config import RunbookConfig
from bot.domain.runs import CheckOutcome, RestartArtifacts, StepName, StepRun, VerifyArtifacts
from bot.domain.steps import Plan, StepContext, StepResult, check
from bot.ops.envfile import env_value
from bot.ops.pm2 import Pm2, critical_lines, tail_file
from bot.ops.probe import probe
from bot.text import Code, Rich


def health_checks(config: RunbookConfig) -> tuple[list[CheckOutcome], float, int | None]:
    """The health URL and every core endpoint, each with its latency: (checks, health ms, health status)."""
    checks, health_ms, status, _ = _probe_all(config, config.health.timeout_s)
    return checks, health_ms, status


STARTING = (None, 502, 503, 504)  # no answer, or a proxy/app saying it is not ready yet


def _probe_all(config: RunbookConfig, timeout: float) -> tuple[list[CheckOutcome], float, int | None, bool]:
    """As :func:`health_checks`, plus whether every failure looks like an app still starting (no answer, 502,
    503, 504) rather than a definite answer such as a 401, a 500 or a body that does not match."""
    health = probe(str(config.health.url), timeout=timeout, expect_json=config.health.expect_json,
                   slow_after=config.thresholds.backend_response_s)
    probes = [(f"GET {config.health.url}", health)]
    for endpoint in config.health.core_endpoints:
        token = env_value(endpoint.bearer_token_env, config.target.env_path)
        url = urljoin(str(config.health.url), endpoint.path)
        probes.append((f"GET {endpoint.path}", probe(url, timeout=timeout, expect_status=endpoint.expect_status,
                                                     bearer=token, slow_after=config.thresholds.backend_response_s)))
    checks = [check(name, result.ok, f"{result.detail} in {result.seconds * 1000:.0f} ms") for name, result in probes]
    starting = all(result.status in STARTING for _, result in probes if not result.ok)
    return checks, round(health.seconds * 1000, 1), health.status, starting


def settled_health_checks(config: RunbookConfig, window: float,
                          progress: Callable[[Rich], None]) -> tuple[list[CheckOutcome], float, int | None]:
    """:func:`health_checks`, asked again every 1-3 s for up to ``window`` seconds (0: once) while the failures
    look like an app still starting; a definite failure (a 401, a 500, a body that does not match) ends it at
    once. A pass after a failure is asked once more before it counts (an app that fails now and then must not
    pass on a lucky round), unless the window ends first. A check that needed the window says so."""
    began = time.monotonic()
    checks, health_ms, status, starting = _probe_all(config, config.health.timeout_s)
    attempts, pause, confirmed = 1, 1.0, True
    while True:
        ok = all(c.ok for c in checks)
        left = window - (time.monotonic() - began)
        if (ok and confirmed) or (not ok and not starting) or left < pause:
            break
        progress((("a pass after a failure: asking once more" if ok else "the app may still be starting: asking "
                   "again") + f" (attempt {attempts + 1}, for up to {window:g}s from the start of verify)",))
        time.sleep(pause)
        pause = min(pause * 1.5, 3.0)
        attempts += 1
        confirmed = ok
        checks, health_ms, status, starting = _probe_all(config, min(config.health.timeout_s, max(left - pause, 1.0)))
    if attempts > 1:
        waited = f"{time.monotonic() - began:.1f}s"
        checks = [check(c.name, c.ok, f"{c.detail} (attempt {attempts}, {waited} into the start-up window)")
                  for c in checks]
    return checks, health_ms, status


def log_checks(config: RunbookConfig, restart: StepRun | None) -> list[CheckOutcome]:
    """pm2's error logs since the last restart (or their tail) hold no critical lines, and each app is online."""
    offsets = restart.artifacts.apps if restart and isinstance(restart.artifacts, RestartArtifacts) else {}
    try:
        states = {s.name: s for s in Pm2(config.pm2.executable, config.pm2.home).jlist()}
    except Exception as error:  # noqa: BLE001 - reported as a failed check
        return [check("pm2", False, str(error)[:200])]
    checks = []
    for app in config.pm2.apps:
        state = states.get(app)
        if state is None:
            checks.append(check(f"pm2 {app}", False, "not known to pm2"))
            continue
        since = offsets[app].err_offset if app in offsets else 0
        errors = critical_lines(tail_file(state.err_log, 50, since=since))
        checks.append(check(f"pm2 {app} error log", state.online and not errors,
                            f"{state.status}; " + (f"{len(errors)} critical line(s), last: {errors[-1][:120]}"
                                                   if errors else "no critical errors")))
    return checks


def just_restarted(history: list[StepRun]) -> bool:
    """The last step run that finished was a successful restart: the app may still be starting."""
    finished = [r for r in history if r.finished_at is not None]
    if not finished:
        return False
    last = max(finished, key=lambda r: r.finished_at or r.started_at)
    return last.step is StepName.RESTART and last.succeeded


class Verify:
    name = StepName.VERIFY
    follow_ups: tuple[StepName, ...] = ()

    def plan(self, ctx: StepContext) -> Plan[None]:
        cfg = ctx.config
        lines: list[Rich] = [(Code(f"GET {cfg.health.url}"), f" expects {cfg.health.expect_json} within "
                              f"{cfg.thresholds.backend_response_s:g}s")]
        lines += [(Code(f"GET {e.path}"), f" expects {e.expect_status}") for e in cfg.health.core_endpoints]
        lines.append(("pm2 error logs since the last restart: no critical errors",))
        if just_restarted(ctx.history) and cfg.health.settle_s:
            lines.append(("right after the restart: the HTTP checks are asked again for up to "
                          f"{cfg.health.settle_s:g}s while the app starts",))
        return Plan(facts=None, summary=("Check health, core endpoints and pm2 error logs",), lines=lines)

    def run(self, ctx: StepContext, plan: Plan[None]) -> StepResult:
        ctx.progress(("health endpoint and core endpoints",))
        window = ctx.config.health.settle_s if just_restarted(ctx.history) else 0.0
        checks, health_ms, status = settled_health_checks(ctx.config, window, ctx.progress)
        ctx.progress(("pm2 error logs",))
        checks += log_checks(ctx.config, ctx.last_success(StepName.RESTART))
        checks = [check(c.name, c.ok, ctx.secrets.redact(c.detail)) for c in checks]
        ok = all(c.ok for c in checks)
        details: list[Rich] = [(f"{'✅' if c.ok else '❌'} {c.name}: {c.detail}",) for c in checks]
        passed = sum(c.ok for c in checks)
        summary = ((f"all {len(checks)} checks passed",) if ok else
                   (f"{len(checks) - passed} of {len(checks)} checks failed: "
                    + "; ".join(c.name for c in checks if not c.ok),))
        return StepResult(ok=ok, summary=summary, details=details, checks=checks,
                          artifacts=VerifyArtifacts(health_ms=health_ms, status=status))
