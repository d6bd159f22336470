"""Step 5: verify — health endpoint under the threshold, core endpoints 2xx, no critical errors in pm2 logs.

Right after a restart (the last step that finished was a restart) the app may still be starting, so while the
HTTP checks fail the way a starting app fails (no answer, 502-504) they are asked again, every 0.1 s for the
first 2 s, then backing off to every 3 s, for up to ``health.settle_s``; a pass after a failure must hold once more, at
least ``HOLD_S`` later, and each restarted app must then have been up for pm2's ``min_uptime`` without pm2
restarting it. Any other verify (e.g. `verify --again` after a failure) asks once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import NamedTuple
from urllib.parse import urljoin

from bot.config import ContactRole, RunbookConfig
from bot.domain.runs import (
    Advice,
    CheckOutcome,
    RestartArtifacts,
    RestartedApp,
    StepName,
    StepRun,
    VerifyArtifacts,
)
from bot.domain.steps import Plan, StepContext, StepResult, check
from bot.ops.envfile import env_value
from bot.ops.pm2 import AppState, Pm2, critical_lines, tail_file
from bot.ops.probe import Probe, probe
from bot.text import Code, Rich


class HttpRound(NamedTuple):
    checks: list[CheckOutcome]
    health_ms: float
    status: int | None  # the health URL's
    probes: list[tuple[str, Probe]]  # (check name, what it saw), in the order of ``checks``


def health_checks(config: RunbookConfig) -> tuple[list[CheckOutcome], float, int | None]:
    """The health URL and every core endpoint, each with its latency: (checks, health ms, health status)."""
    checks, health_ms, status, _ = _probe_all(config, config.health.timeout_s)[0]
    return checks, health_ms, status


STARTING = (None, 502, 503, 504)  # no answer, or a proxy/app saying it is not ready yet
FIRST_PAUSE_S, MAX_PAUSE_S = 0.1, 3.0  # an app starting is asked again soon, then less and less often:
FAST_FOR_S = 2.0  # every 0.1 s for the first 2 s (most apps are up by then: a refused connection costs ~1 ms, and
# a coarser pace made verify wait up to half a second past the moment the app answered), then backing off
LIST_AHEAD_S = 0.5  # pm2's list for that moment is asked for this long before it: a Node start-up and pm2's
# connect (about 0.3 s here), not sooner, so as not to take a core from the app while it starts
HOLD_S = 0.5  # a pass after a failure is asked again no sooner than this: it must hold, not just happen once (an
# instance still starting behind a proxy, a blocked event loop); half a second apart is two answers, not one lucky
# one. Staying up is pm2's to see: right after a restart, the log round then waits until each restarted app has
# been up for pm2's min_uptime (1 s by default) and fails if pm2 restarted it again since the bot did.


def _probe_all(config: RunbookConfig, timeout: float) -> tuple[HttpRound, bool]:
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
    return HttpRound(checks, round(health.seconds * 1000, 1), health.status, probes), starting


def settled_health_checks(config: RunbookConfig, window: float, progress: Callable[[Rich], None]) -> HttpRound:
    """:func:`health_checks`, asked again (every 0.1 s for 2 s, then backing off to every 3 s) for up to
    ``window`` seconds (0: once) while the failures look like an app still starting; a definite failure (a 401,
    a 500, a body that does not match) ends it at once. A pass after a failure is asked once more, at least
    ``HOLD_S`` later, before it counts (an app that fails now and then must not pass on a lucky round), unless the
    window ends first. A check that needed the window says so."""
    began = time.monotonic()
    seen, starting = _probe_all(config, config.health.timeout_s)
    attempts, pause, confirmed = 1, FIRST_PAUSE_S, True
    while True:
        ok = all(c.ok for c in seen.checks)
        left = window - (time.monotonic() - began)
        wait = max(pause, HOLD_S) if ok else pause
        if (ok and confirmed) or (not ok and not starting) or left < wait:
            break
        progress((("a pass after a failure: asking once more" if ok else "the app may still be starting: asking "
                   "again") + f" (attempt {attempts + 1}, for up to {window:g}s from the start of verify)",))
        time.sleep(wait)
        pause = FIRST_PAUSE_S if time.monotonic() - began < FAST_FOR_S else min(pause * 1.5, MAX_PAUSE_S)
        attempts += 1
        confirmed = ok
        seen, starting = _probe_all(config, min(config.health.timeout_s, max(left - wait, 1.0)))
    if attempts > 1:
        waited = f"{time.monotonic() - began:.1f}s"
        seen = seen._replace(checks=[check(c.name, c.ok, f"{c.detail} (attempt {attempts}, {waited} into the "
                                                               "start-up window)") for c in seen.checks])
    return seen


DATABASE_TROUBLE = re.compile(r"(?i)mongo|:27017\b")


class LogRound(NamedTuple):
    checks: list[CheckOutcome]
    advice: list[Advice]
    backend_down: bool = False  # an app the bot restarts is not online: the HTTP checks fail because of it


def log_checks(config: RunbookConfig, restart: StepRun | None) -> list[CheckOutcome]:
    """pm2's error logs since the last restart (or their tail) hold no critical lines, and each app is online."""
    return _log_round(config, restart).checks


def _settled_states(pm2: Pm2, restarted: dict[str, RestartedApp], until: float | None,
                    first: Future[Listed | None] | None = None, checked: float = 0.0) -> dict[str, AppState]:
    """pm2's states; right after a restart (``until``: when the start-up window ends), once every app the bot
    restarted has been up for pm2's ``min_uptime`` (pm2's own line between started and an unstable restart), or
    was restarted again since, or is not online, or the window ends. ``first``: the states :func:`_when_stable`
    asked for, taken only if they are no older than ``checked`` (a ``time.time()``: when the HTTP checks ended,
    so that a crash while they ran is seen); otherwise pm2 is asked now."""
    early = first.result() if first is not None else None
    states = early.states if early is not None and early.at >= checked else None
    while True:
        if states is None:
            states = {s.name: s for s in pm2.jlist()}
        if until is None:
            return states
        waits = [s.min_uptime_ms / 1000 - s.up_for() for app, then in restarted.items()
                 if (s := states.get(app)) is not None and s.online and s.restarts == then.restarts]
        wait = max(waits, default=0.0)
        if wait <= 0 or time.monotonic() + wait > until:
            return states
        time.sleep(wait + 0.05)
        states = None


class Listed(NamedTuple):
    at: float  # pm2 was asked no sooner than this (a time.time())
    states: dict[str, AppState]


def _when_stable(pm2: Pm2, restarted: dict[str, RestartedApp], until: float) -> Listed | None:
    """pm2's states the moment the restart's own answer says each app it restarted has been up for its
    ``min_uptime`` (asked from before then: see :meth:`Pm2.list_at`); None when that answer does not say, or the
    moment is past the start-up window (``until``)."""
    stable = [then.stable_at_ms for then in restarted.values() if then.stable_at_ms is not None]
    if not stable or len(stable) < len(restarted):
        return None
    when = max(stable) / 1000 + 0.05
    if time.monotonic() + (when - time.time()) > until:
        return None
    time.sleep(max(0.0, when - LIST_AHEAD_S - time.time()))
    return Listed(when, {s.name: s for s in pm2.list_at(when)})


def restarted_apps(restart: StepRun | None) -> dict[str, RestartedApp]:
    """What the restart ``restart`` recorded of each app it restarted (none for no restart)."""
    return restart.artifacts.apps if restart and isinstance(restart.artifacts, RestartArtifacts) else {}


def _log_round(config: RunbookConfig, restart: StepRun | None, redact: Callable[[str], str] = str,
               until: float | None = None, first: Future[Listed | None] | None = None,
               checked: float = 0.0) -> LogRound:
    """:func:`log_checks`, with what each failure means: an app the bot never restarts is down (call whoever
    runs it), the restarted backend did not stay up, its log shows database errors (the database admin).
    ``until``: right after the bot's restart (the start-up window's end): each app it restarted must also have
    stayed up since, pm2 not having restarted it again (a crash)."""
    offsets = restarted_apps(restart)
    try:
        states = _settled_states(Pm2(config.pm2.executable, config.pm2.home), offsets, until, first, checked)
    except Exception as error:  # noqa: BLE001 - reported as a failed check
        said = redact(str(error))[:200]  # secrets out before anything is cut (a cut secret is not found)
        return LogRound([check("pm2", False, said)], [_advice(
            config, "backend_lead", f"pm2 does not answer ({said}): the bot can neither see nor restart the apps "
                                    "— someone on the server has to look at pm2 itself")])
    checks: list[CheckOutcome] = []
    down: list[Advice] = []  # an app that is not running explains more than a line in a log: it comes first
    advice: list[Advice] = []
    restarted = config.pm2.to_restart
    backend_down = False
    for app in config.pm2.apps:
        role = config.contacts.role_of(app)
        state = states.get(app)
        if state is None:
            checks.append(check(f"pm2 {app}", False, "not known to pm2"))
            down.append(_advice(config, role, f"pm2 does not know {app}: it was deleted, or runs under another "
                                                "user or PM2_HOME — the bot will not create it"))
            continue
        since = offsets[app].err_offset if app in offsets else 0
        errors = [redact(line) for line in critical_lines(tail_file(state.err_log, 50, since=since))]
        crashes = state.restarts - offsets[app].restarts if until is not None and app in offsets else 0
        stayed = (f"up {state.up_for():.1f}s, not restarted again since the bot's restart; " if until is not None
                  and app in offsets and not crashes and state.online else "")
        checks.append(check(f"pm2 {app} error log", state.online and not errors and not crashes,
                            f"{state.status}; {stayed}"
                            + (f"pm2 restarted it {crashes} more time(s) since the bot's restart (it crashed); "
                               if crashes else "")
                            + (f"{len(errors)} critical line(s), last: {errors[-1][:120]}"
                               if errors else "no critical errors")))
        if crashes > 0:
            backend_down = backend_down or app in restarted
            down.append(_advice(config, role, f"{app} crashed after the restart: pm2 restarted it {crashes} more "
                                                "time(s) (its error log is in the thread); the rolled-back code "
                                                "does not stay up"))
        elif not state.online and app not in restarted:
            down.append(_advice(config, role, f"{app} is {state.status}, and the bot never starts or restarts "
                                                f"it (it restarts only {', '.join(restarted)})"))
        elif not state.online:
            backend_down = True
            down.append(_advice(config, role, f"{app} is {state.status} after the restart: its error log is in "
                                                "the thread; /rollback restart tries once more"))
        elif errors and any(DATABASE_TROUBLE.search(line) for line in errors):
            advice.append(_advice(config, "database_admin", f"{app}'s error log shows database errors (last: "
                                                            f"{errors[-1][:100]}); the bot never touches the "
                                                            "database server"))
        elif errors:
            when = "since the restart" if app in offsets else "in its latest lines"
            advice.append(_advice(config, role, f"{app}'s error log has {len(errors)} critical line(s) {when} "
                                                f"(last: {errors[-1][:100]})"))
    return LogRound(checks, down + advice, backend_down)


def _http_advice(config: RunbookConfig, probes: list[tuple[str, Probe]]) -> list[Advice]:
    """What the first failed HTTP check means (the others usually fail for the same reason)."""
    role = config.contacts.role_of(config.pm2.to_restart[0])
    for name, seen in probes:
        if seen.ok:
            continue
        if seen.status is None:
            cause = f"the backend does not answer {name} ({seen.detail}): it is down or not listening"
        elif seen.status in (401, 403):
            cause = (f"{name} answers {seen.status}: the backend refuses the check's credentials (a changed JWT "
                     "secret or token in .env?)")
        elif seen.status >= 500:
            cause = f"{name} answers {seen.status}: the backend runs but fails; its error log is in the thread"
        elif seen.answered_right:
            cause = f"{name} is too slow ({seen.detail}): the backend is overloaded or waiting on something"
        else:
            cause = f"{name} answers, but not as expected ({seen.detail})"
        return [_advice(config, role, cause)]
    return []


def _advice(config: RunbookConfig, role: ContactRole, cause: str) -> Advice:
    return Advice(cause=cause, contact=role, people=config.contacts.people(role))


def advice_for(config: RunbookConfig, http: list[tuple[str, Probe]], logs: LogRound) -> list[Advice]:
    """A failed verify's advice, most telling first: an app that is down explains an HTTP check that fails."""
    return logs.advice + ([] if logs.backend_down else _http_advice(config, http))


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
                          f"{cfg.health.settle_s:g}s while the app starts, and each restarted app must have been up "
                          "for pm2's min_uptime without pm2 restarting it again (a crash)",))
        return Plan(facts=None, summary=("Check health, core endpoints and pm2 error logs",), lines=lines)

    def run(self, ctx: StepContext, plan: Plan[None]) -> StepResult:
        ctx.progress(("health endpoint and core endpoints",))
        window = ctx.config.health.settle_s if just_restarted(ctx.history) else 0.0
        began = time.monotonic()
        restart = ctx.last_success(StepName.RESTART)
        restarted = restarted_apps(restart)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="verify-pm2") as early:
            # pm2 is asked, while the HTTP checks run, for the moment each restarted app has been up long enough
            first = (early.submit(_when_stable, Pm2(ctx.config.pm2.executable, ctx.config.pm2.home), restarted,
                                  began + window) if window else None)
            http = settled_health_checks(ctx.config, window, ctx.progress)
            checked = time.time()
            ctx.progress(("pm2 error logs",) if not window else ("pm2 error logs, and each restarted app up for "
                                                                  "pm2's min_uptime without a restart since",))
            logs = _log_round(ctx.config, restart, ctx.secrets.redact, began + window if window else None, first,
                              checked)
        checks = [check(c.name, c.ok, ctx.secrets.redact(c.detail)) for c in http.checks + logs.checks]
        ok = all(c.ok for c in checks)
        advice = [] if ok else [a.model_copy(update={"cause": ctx.secrets.redact(a.cause)})
                                for a in advice_for(ctx.config, http.probes, logs)]
        # the runner puts the advice first, once it has named the people to call (a group as its mention)
        details: list[Rich] = [(f"{'✅' if c.ok else '❌'} {c.name}: {c.detail}",) for c in checks]
        passed = sum(c.ok for c in checks)
        summary = ((f"all {len(checks)} checks passed",) if ok else
                   (f"{len(checks) - passed} of {len(checks)} checks failed: "
                    + "; ".join(c.name for c in checks if not c.ok),))
        return StepResult(ok=ok, summary=summary, details=details, checks=checks, advice=advice,
                          artifacts=VerifyArtifacts(health_ms=http.health_ms, status=http.status))
