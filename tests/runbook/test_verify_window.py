"""Verify right after a restart waits for the app to come up (within `health.settle_s`), against a real HTTP
server; any other verify asks once. The runbook's checks stay the pass criteria."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bot.config import RunbookConfig, parse_runbook
from bot.domain.runs import RestartedApp, StepName, StepRun, StepStatus
from bot.ops.pm2 import AppState
from bot.runbook.verify import (
    FIRST_PAUSE_S,
    HOLD_S,
    _settled_states,
    _when_stable,
    just_restarted,
    settled_health_checks,
)
from bot.text import Rich

T0 = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)


class Starting:
    """A backend whose n-th health answer has the n-th status of ``statuses`` (the last one repeats); 200 comes
    with {"status": "ok"}."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses, self.seen = statuses, 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.seen += 1
                code = outer.statuses[min(outer.seen, len(outer.statuses)) - 1]
                body = json.dumps({"status": "ok"} if code == 200 else {"status": "starting"}).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/health"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Iterator[Starting]:
    server = Starting(request.param)
    yield server
    server.close()


def config(url: str, settle_s: float) -> RunbookConfig:
    return parse_runbook({"health": {"url": url, "core_endpoints": [], "settle_s": settle_s}})


def run(step: StepName, minute: int, ok: bool = True) -> StepRun:
    at = T0 + timedelta(minutes=minute)
    return StepRun(id=f"r{minute}", incident_id="RB-0001", step=step, actor="U0COMMANDER",
                   status=StepStatus.SUCCEEDED if ok else StepStatus.FAILED, started_at=at, finished_at=at)


@pytest.mark.parametrize("backend", [[503, 503, 200]], indirect=True)
def test_an_app_still_starting_after_the_restart_passes_once_it_answers_twice(backend: Starting) -> None:
    said: list[Rich] = []
    began = time.monotonic()
    checks, _, status, _ = settled_health_checks(config(backend.url, 20), 20, said.append)
    took = time.monotonic() - began
    assert [c.ok for c in checks] == [True] and status == 200
    assert backend.seen == 4 and "(attempt 4," in checks[0].detail  # two failures, a pass, and the pass again
    assert len(said) == 3 and "may still be starting" in str(said[0]) and "asking once more" in str(said[-1])
    # Asked again 0.1 s and 0.1 s later while it starts (every 0.1 s for its first 2 s), then the pass held HOLD_S
    # later (not 1 s, 1.5 s, 2.25 s: the wait itself was most of a verify's time to restored service).
    assert 2 * FIRST_PAUSE_S + HOLD_S <= took


@pytest.mark.parametrize("backend", [[503, 200, 200]], indirect=True)
def test_a_pass_after_a_failure_is_asked_again_no_sooner_than_the_hold(backend: Starting) -> None:
    said: list[Rich] = []
    began = time.monotonic()
    checks, _, _, _ = settled_health_checks(config(backend.url, 20), 20, said.append)
    assert [c.ok for c in checks] == [True] and backend.seen == 3
    assert time.monotonic() - began >= FIRST_PAUSE_S + HOLD_S  # the hold is HOLD_S, whatever the back-off was


@pytest.mark.parametrize("backend", [[503]], indirect=True)
def test_an_app_that_never_comes_up_fails_when_the_window_ends(backend: Starting) -> None:
    checks, _, status, _ = settled_health_checks(config(backend.url, 2.4), 2.4, lambda _: None)
    assert [c.ok for c in checks] == [False] and status == 503
    # asked every 0.1 s for 2 s, then 0.15 s and 0.225 s later (some 23 times); the next pause would end past 2.4 s
    assert backend.seen >= 6  # (8 on a machine so loaded that a probe takes 0.2 s)


@pytest.mark.parametrize("backend", [[500]], indirect=True)
def test_a_definite_failure_is_not_waited_on(backend: Starting) -> None:
    """A 500 (the Phase 3 bug), a 401 or a wrong body is an answer, not a slow start: verify fails at once."""
    checks, _, status, _ = settled_health_checks(config(backend.url, 20), 20, lambda _: None)
    assert [c.ok for c in checks] == [False] and status == 500 and backend.seen == 1


@pytest.mark.parametrize("backend", [[503, 200, 503]], indirect=True)
def test_a_pass_that_does_not_hold_does_not_count(backend: Starting) -> None:
    checks, _, status, _ = settled_health_checks(config(backend.url, 3.0), 3.0, lambda _: None)
    assert [c.ok for c in checks] == [False] and status == 503 and backend.seen >= 3  # 503 to the end


@pytest.mark.parametrize("backend", [[503]], indirect=True)
def test_without_a_window_it_asks_once(backend: Starting) -> None:
    checks, _, _, _ = settled_health_checks(config(backend.url, 0), 0, lambda _: None)
    assert [c.ok for c in checks] == [False] and backend.seen == 1 and "attempt" not in checks[0].detail


def test_the_window_applies_only_when_the_last_step_that_finished_was_a_successful_restart() -> None:
    assert just_restarted([run(StepName.REVERT, 0), run(StepName.REBUILD, 1), run(StepName.RESTART, 2)])
    assert not just_restarted([run(StepName.RESTART, 2), run(StepName.VERIFY, 3, ok=False)])  # verify --again
    assert not just_restarted([run(StepName.RESTART, 2, ok=False)])
    assert not just_restarted([])
    flag_path = [run(StepName.FLAG, 0), run(StepName.RESTART, 1)]  # an alternative's restart counts the same
    assert just_restarted(flag_path)


class RecordingPm2:
    """pm2's process list as a real daemon gives it: the app started ``started_ms`` (epoch ms), never restarted
    since; records when it was asked (``jlist``) and for which moment (``list_at``)."""

    def __init__(self, started_ms: int) -> None:
        self.started_ms, self.restarts = started_ms, 1
        self.asked: list[float] = []
        self.asked_for: list[float] = []

    def jlist(self) -> list[AppState]:
        self.asked.append(time.time())
        return [AppState("api", "online", self.restarts, 4242, None, None, started_ms=self.started_ms,
                         min_uptime_ms=1000)]

    def list_at(self, when: float) -> list[AppState]:
        self.asked_for.append(when)
        time.sleep(max(0.0, when - time.time()))
        return self.jlist()


def restarted_at(started_ms: int, stable: bool = True) -> dict[str, RestartedApp]:
    return {"api": RestartedApp(status="online", restarts=1, pid=4242,
                                stable_at_ms=started_ms + 1000 if stable else None)}


def test_right_after_a_restart_pm2_is_asked_once_for_the_moment_the_app_has_been_up_for_min_uptime() -> None:
    """The restart's own answer says when pm2 started the app: verify asks pm2, from the start of its HTTP checks,
    for its list at the moment that start is ``min_uptime`` old, and asks nothing more."""
    started_ms = int(time.time() * 1000)
    pm2 = RecordingPm2(started_ms)
    until = time.monotonic() + 30
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(_when_stable, pm2, restarted_at(started_ms), until)  # type: ignore[arg-type]
        checked = time.time()  # the HTTP checks ended before that moment
        states = _settled_states(pm2, restarted_at(started_ms), until, first, checked)  # type: ignore[arg-type]
    assert states["api"].up_for() >= 1.0
    assert pm2.asked_for == [pytest.approx((started_ms + 1000) / 1000 + 0.05, abs=1e-6)] and len(pm2.asked) == 1


def test_a_crash_while_the_http_checks_ran_past_that_moment_is_seen() -> None:
    """The early list is older than the HTTP checks when they ended after it was taken: pm2 is asked again, so an
    app that answered and then crashed (pm2 restarted it) while they ran fails verify as before."""
    started_ms = int(time.time() * 1000) - 1000  # up for min_uptime already: the early list is taken at once
    pm2 = RecordingPm2(started_ms)
    until = time.monotonic() + 30
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(_when_stable, pm2, restarted_at(started_ms), until)  # type: ignore[arg-type]
        assert first.result().states["api"].restarts == 1
        pm2.restarts = 2  # the app crashed on a request of the HTTP checks; pm2 restarted it
        checked = time.time()
        states = _settled_states(pm2, restarted_at(started_ms), until, first, checked)  # type: ignore[arg-type]
    assert states["api"].restarts == 2 and len(pm2.asked) == 2


@pytest.mark.parametrize("why", ["recorded by an older bot", "past the window"])
def test_without_the_moment_or_past_the_window_pm2_is_asked_as_before(why: str) -> None:
    """A restart recorded without ``stable_at_ms`` (by an older bot), or whose moment is past the start-up
    window: pm2 is asked at once, then again once the app has been up for ``min_uptime`` (within the window)."""
    started_ms = int(time.time() * 1000)
    pm2 = RecordingPm2(started_ms)
    restarted = restarted_at(started_ms, stable=why == "past the window")
    assert _when_stable(pm2, restarted, time.monotonic() + (0.5 if why == "past the window" else 30)) is None  # type: ignore[arg-type]
    states = _settled_states(pm2, restarted, time.monotonic() + 30)  # type: ignore[arg-type]
    assert states["api"].up_for() >= 1.0 and len(pm2.asked) == 2 and pm2.asked_for == []
