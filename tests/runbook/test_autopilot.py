"""The autopilot against the sandbox (real git, yarn, pm2 and HTTP): `start --auto` runs backup → revert →
rebuild → restart → verify one after the other, each with its plan and result; it stops at the first failure
with the Next line saying why; any commander pauses it once the running step has finished."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.app import SocketModeBot
from bot.dev.emulator import Emulator
from bot.dev.sandbox import Sandbox
from bot.domain.guide import next_step
from bot.domain.lifecycle import Phase
from bot.domain.runs import StepName, StepStatus
from bot.domain.steps import RegisteredStep
from bot.ops.probe import probe
from tests.conftest import COMMANDER, DBA, INCIDENT, content, make_settings
from tests.runbook.test_full_rollback import TITLES, panel_ts

pytestmark = pytest.mark.slow


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port nobody answers on (bound, never listening): a health URL that always refuses."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def finished(emulator: Emulator, ts: str, name: str) -> list[str]:
    return [m["text"] for m in emulator.ws.thread(INCIDENT, ts) if f"*{TITLES[name]}* —" in m["text"]
            and ("— succeeded" in m["text"] or "— failed" in m["text"])]


def stopped(emulator: Emulator, ts: str, timeout: float = 240) -> str:
    return str(emulator.ws.wait_for(lambda: next((content(m) for m in emulator.ws.thread(INCIDENT, ts)
                                                  if "autopilot stopped" in content(m)), None), timeout,
                                    "the autopilot to stop"))


def test_start_auto_runs_the_runbook_to_restored_service_each_step_shown_and_recorded(
        emulator: Emulator, live_sandbox: Sandbox, start_bot: Callable[..., SocketModeBot]) -> None:
    bot = start_bot()
    assert probe(live_sandbox.health_url, timeout=5).status == 500
    emulator.slash("casey", "incident-rollback", "start health 500 after Phase 3 --auto").wait()
    ts = panel_ts(emulator)
    emulator.slash("casey", "incident-rollback", "auto").wait()  # a second start while it runs: refused, no harm
    refusal = emulator.ws.wait_for(lambda: next((e.text for e in emulator.ws.ephemerals_for(COMMANDER)
                                                 if "already running" in e.text), None), 30, "the refusal")
    assert "/rollback pause" in refusal
    said = stopped(emulator, ts)
    assert "service is back" in said
    for name in ("backup", "revert", "rebuild", "restart", "verify"):
        assert len(finished(emulator, ts, name)) == 1 and "— succeeded" in finished(emulator, ts, name)[0], name
    started = next(content(m) for m in emulator.ws.thread(INCIDENT, ts) if "started the autopilot" in content(m))
    assert "backup → revert → rebuild → restart → verify" in started  # it said what it would do first
    incident = bot.services.store.get_incident("RB-0001")
    assert incident is not None and incident.lifecycle.phase is Phase.RESTORED and incident.autopilot is None
    runs = bot.services.store.step_runs("RB-0001")
    assert [r.step for r in runs] == [StepName.BACKUP, StepName.REVERT, StepName.REBUILD, StepName.RESTART,
                                      StepName.VERIFY] and all(r.actor == COMMANDER for r in runs)
    actions = [e.action for e in bot.services.store.audit_events("RB-0001")]
    assert actions.count("autopilot.started") == 1 and actions.count("autopilot.stopped") == 1
    assert probe(live_sandbox.health_url, timeout=5).status == 200


def test_the_autopilot_stops_at_the_first_failure_and_the_next_line_says_why(
        emulator: Emulator, live_sandbox: Sandbox, tmp_path: Path,
        start_bot: Callable[..., SocketModeBot], closed_port: int) -> None:
    settings = make_settings(emulator, live_sandbox, tmp_path / "data",
                             health={"url": f"http://127.0.0.1:{closed_port}/api/health", "settle_s": 1})
    bot = start_bot(settings)
    emulator.slash("casey", "incident-rollback", "start --auto").wait()
    ts = panel_ts(emulator)
    assert "verify failed" in stopped(emulator, ts)
    incident = bot.services.store.get_incident("RB-0001")
    assert incident is not None and incident.lifecycle.stall is not None
    assert incident.lifecycle.stall.step is StepName.VERIFY and next_step(incident) is None
    emulator.ws.wait_for(lambda: (m := emulator.ws.message(INCIDENT, ts)) and "verify failed" in content(m), 10,
                         "the Next line to name the failed verify")
    emulator.slash("casey", "incident-rollback", "auto").wait()  # nothing it may run now: said privately
    said = emulator.ws.wait_for(lambda: next((e.text for e in emulator.ws.ephemerals_for(COMMANDER)
                                              if "nothing for the autopilot to run" in e.text), None), 10, "why not")
    assert "verify failed" in said and "/rollback next" in said


def test_any_commander_pauses_it_after_the_running_step(
        emulator: Emulator, live_sandbox: Sandbox, tmp_path: Path,
        start_bot: Callable[..., SocketModeBot]) -> None:
    bot = start_bot(make_settings(emulator, live_sandbox, tmp_path / "data", access={"commanders": ["@oncall", DBA]}))
    emulator.slash("casey", "incident-rollback", "start").wait()
    ts = panel_ts(emulator)
    emulator.slash("casey", "incident-rollback", "auto").wait()
    emulator.ws.wait_for(lambda: (i := bot.services.store.get_incident("RB-0001")) and i.busy is not None, 30,
                         "the first step to run")
    emulator.slash("dana", "incident-rollback", "pause").wait()  # another commander
    assert "paused the autopilot" in stopped_or_paused(emulator, ts)
    emulator.ws.wait_for(lambda: (i := bot.services.store.get_incident("RB-0001")) and i.busy is None
                         and i.autopilot is None, 120, "the running step to end")
    runs = bot.services.store.step_runs("RB-0001")
    assert [r.step for r in runs] == [StepName.BACKUP] and runs[0].status is StepStatus.SUCCEEDED  # finished, no more
    events = [e.action for e in bot.services.store.audit_events("RB-0001")]
    assert "autopilot.paused" in events and "step.started" in events and events.count("step.started") == 1


def stopped_or_paused(emulator: Emulator, ts: str) -> str:
    return str(emulator.ws.wait_for(lambda: next((content(m) for m in emulator.ws.thread(INCIDENT, ts)
                                                  if "paused the autopilot" in content(m)), None), 30, "the pause"))


def test_next_step_follows_the_lifecycle() -> None:
    from tests.test_guide import FRESH, after

    assert next_step(FRESH) is StepName.BACKUP
    assert next_step(after(StepName.BACKUP)) is StepName.REVERT
    assert next_step(after(StepName.BACKUP, StepName.REVERT)) is StepName.REBUILD
    assert next_step(after(StepName.BACKUP, StepName.FLAG)) is StepName.RESTART  # an alternative's rest
    assert next_step(after(StepName.BACKUP, StepName.REVERT, StepName.REBUILD, StepName.RESTART,
                           StepName.VERIFY)) is None  # service is back
    assert next_step(after(StepName.BACKUP, (StepName.REVERT, False))) is None  # a failure stops it


def test_a_pause_while_the_next_step_prepares_stops_it_before_it_takes_the_incident(
        emulator: Emulator, live_sandbox: Sandbox, tmp_path: Path, start_bot: Callable[..., SocketModeBot],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Reported in review: the autopilot chose the revert, a commander paused while it was being prepared, and
    it ran anyway. The pause now wins in the same conditional write that would take the incident."""
    import git

    bot = start_bot(make_settings(emulator, live_sandbox, tmp_path / "data", access={"commanders": ["@oncall", DBA]}))
    emulator.slash("casey", "incident-rollback", "start").wait()
    ts = panel_ts(emulator)
    emulator.slash("casey", "incident-rollback", "backup").wait()
    emulator.ws.wait_for(lambda: finished(emulator, ts, "backup"), 120, "the backup")
    head = git.Repo(live_sandbox.repo).head.commit.hexsha
    revert = bot.services.deps.steps[StepName.REVERT]
    prepare = revert.prepare

    def paused_meanwhile(ctx: object) -> object:
        bot.services.features.autopilot.pause(DBA, INCIDENT)  # dana pauses while the revert is being planned
        return prepare(ctx)  # type: ignore[arg-type]

    monkeypatch.setitem(bot.services.deps.steps, StepName.REVERT,  # type: ignore[arg-type]
                        RegisteredStep(revert.name, revert.follow_ups, paused_meanwhile))  # type: ignore[arg-type]
    emulator.slash("casey", "incident-rollback", "auto").wait()
    emulator.ws.wait_for(lambda: any("paused the autopilot" in content(m) for m in emulator.ws.thread(INCIDENT, ts)),
                         30, "the pause")
    emulator.ws.wait_for(lambda: (i := bot.services.store.get_incident("RB-0001")) and i.autopilot is None
                         and any(e.action == "autopilot.paused" for e in bot.services.store.audit_events(i.id)),
                         30, "the autopilot to end")
    assert [r.step for r in bot.services.store.step_runs("RB-0001")] == [StepName.BACKUP]  # no revert run
    assert git.Repo(live_sandbox.repo).head.commit.hexsha == head  # the code was not reset
    assert not any("autopilot stopped" in content(m) for m in emulator.ws.thread(INCIDENT, ts))  # said once
