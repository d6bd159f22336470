"""Scheduled checks against real HTTP servers whose behaviour the test flips, and a real crash-looping pm2 app.

Time is driven by calling ``Monitor.run_once`` directly (and a FakeClock for leases), never by sleeping
through intervals.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import SocketModeBot, build_services
from bot.dev.emulator import Emulator
from bot.dev.fakeclock import FakeClock
from bot.dev.sandbox import Sandbox
from bot.domain.incident import Milestone
from bot.domain.monitor import schedule_lines
from bot.ids import Action
from bot.ops.pm2 import Pm2
from tests.conftest import COMMANDER, INCIDENT, STAKEHOLDERS, make_settings, restore_service
from tests.monitor.conftest import Backend

ALERTS = "C0ALERTS"


MONITOR = {"check_timeout_s": 1.5, "failures_to_alert": 2, "healthy_to_restore": 3, "verdict_every": 1,
           "pm2": False, "interval_s": 3600, "lease_s": 60}


def monitor_settings(emulator: Emulator, sandbox: Sandbox, tmp_path: Path, url: str, **monitor: Any) -> Any:
    return make_settings(emulator, sandbox, tmp_path / "data", health={"url": f"{url}/api/health",
                                                                       "core_endpoints": []},
                         thresholds={"backend_response_s": 0.3}, slack={"alerts_channel": ALERTS},
                         monitor={**MONITOR, **monitor})


def alerts(emulator: Emulator) -> list[dict[str, Any]]:
    return emulator.ws.channel_messages(ALERTS)


def test_alerts_go_out_on_state_changes_only_and_start_a_prefilled_rollback(
        emulator: Emulator, sandbox: Sandbox, tmp_path: Path, backend: Backend,
        start_bot: Callable[..., SocketModeBot]) -> None:
    bot = start_bot(monitor_settings(emulator, sandbox, tmp_path, backend.url))
    monitor = bot.services.monitor
    assert monitor.run_once()[0].ok and alerts(emulator) == []  # unknown → healthy says nothing
    backend.mode = "slow"
    first = monitor.run_once()[0]
    assert not first.ok and first.criteria == ["slow"] and alerts(emulator) == []  # 1 of K=2
    monitor.run_once()
    alert = emulator.ws.wait_for(lambda: alerts(emulator), 10, "the alert")[0]
    assert "is failing" in alert["text"] and "ms" in alert["text"]
    # it wakes the commanders (access.commanders: @oncall), in the text Slack notifies from
    assert "<!subteam^S0ONCALL>: the runbook's rollback criteria are met" in alert["text"]
    assert "Backend response times &gt;5s" in str(alert["blocks"])
    monitor.run_once()
    monitor.run_once()
    assert len(alerts(emulator)) == 1  # still failing: no new alert
    backend.mode = "ok"
    monitor.run_once()
    emulator.ws.wait_for(lambda: len(alerts(emulator)) == 2, 10, "the recovery")
    assert "healthy again" in alerts(emulator)[1]["text"]

    emulator.click("casey", "alerts", alert["ts"], Action.START_FROM_ALERT).wait()
    incident = emulator.ws.wait_for(lambda: bot.services.store.get_incident("RB-0001"), 10, "the incident")
    # the alert is updated in place for everyone: no second Start button, and where the rollback runs
    used = emulator.ws.wait_for(lambda: (m := emulator.ws.message(ALERTS, alert["ts"])) and "started by" in
                                str(m["blocks"]) and m, 10, "the alert updated")
    assert Action.START_FROM_ALERT not in str(used["blocks"]) and used["text"].startswith("🚨")
    assert f"|RB-0001> started by <@{COMMANDER}> in <#{INCIDENT}>" in str(used["blocks"])
    assert "Start one below" not in used["text"] + str(used["blocks"])  # no button is left to press
    started = emulator.ws.wait_for(lambda: next((e.text for e in emulator.ws.ephemerals_for(COMMANDER)
                                                 if "Started" in e.text), None), 10, "the private answer")
    assert "|RB-0001>: you are its commander" in started  # a link to its control panel
    assert incident.channel == INCIDENT and set(incident.criteria) == {"slow"}
    assert [c.status.value for c in bot.services.store.checks() if c.id == "health"] == ["healthy"]
    failing_since = [r.at for r in bot.services.store.check_history("health") if not r.ok][0]
    assert incident.milestones[Milestone.ISSUE_DETECTED] == failing_since


def test_a_hung_endpoint_never_delays_the_others(emulator: Emulator, sandbox: Sandbox, tmp_path: Path,
                                                 backend: Backend, start_bot: Callable[..., SocketModeBot]) -> None:
    settings = make_settings(emulator, sandbox, tmp_path / "data",
                             health={"url": f"{backend.url}/api/health",
                                     "core_endpoints": [{"path": "/api/internship"}]},
                             thresholds={"backend_response_s": 5}, monitor=MONITOR)
    bot = start_bot(settings)
    backend.mode, backend.paths = "hung", {"/api/internship": "ok"}
    started = time.monotonic()
    results = {r.name: r for r in bot.services.monitor.run_once()}
    detail = results["health"].detail
    assert not results["health"].ok and ("no answer within 1.5s" in detail or "timed out" in detail), detail
    assert results["GET /api/internship"].ok
    asked = {path: at - started for path, at in backend.requests}
    # both were asked at once, at the start of the run; the hung one did not hold the other back
    assert asked["/api/internship"] < 0.5 and asked["/api/health"] < 0.5


@pytest.mark.slow
def test_a_crash_looping_pm2_app_meets_the_crashes_repeatedly_criterion(
        emulator: Emulator, sandbox: Sandbox, tmp_path: Path, backend: Backend,
        start_bot: Callable[..., SocketModeBot]) -> None:
    script = tmp_path / "crash.js"
    script.write_text("console.error('TypeError: boom'); setTimeout(() => process.exit(1), 300);\n")
    pm2 = Pm2(home=sandbox.pm2_home)
    assert pm2.start(script, "crashy", tmp_path).ok
    settings = make_settings(emulator, sandbox, tmp_path / "data", health={"url": f"{backend.url}/api/health",
                                                                           "core_endpoints": []},
                             pm2={"apps": ["crashy"]}, monitor={**MONITOR, "pm2": True})
    monitor = start_bot(settings).services.monitor

    def crash_seen() -> Any:
        results = [r for r in monitor.run_once() if r.name == "pm2 crashy"]
        time.sleep(0.5)
        return results and not results[0].ok and results[0]

    deadline, found = time.monotonic() + 30, None
    while found is None and time.monotonic() < deadline:
        found = crash_seen() or None
    assert found is not None and found.criteria == ["crash_loop"]
    assert "restart" in found.detail


def test_the_watch_gives_verdicts_and_records_system_restored_once(
        emulator: Emulator, sandbox: Sandbox, tmp_path: Path, backend: Backend,
        start_bot: Callable[..., SocketModeBot]) -> None:
    bot = start_bot(monitor_settings(emulator, sandbox, tmp_path, backend.url))
    service, monitor = bot.services, bot.services.monitor
    emulator.slash("casey", "incident-rollback", "start health 500").wait()
    incident = emulator.ws.wait_for(lambda: bot.services.store.get_incident("RB-0001"), 10, "the incident")
    panel = emulator.ws.wait_for(lambda: service.store.get_incident("RB-0001").panel_ts, 10, "the panel")
    monitor.run_once()
    assert not any("Watch" in m["text"] for m in emulator.ws.thread(INCIDENT, panel))  # no rollback yet: no watch
    # verify passed after a revert (the runbook steps record this; see tests/runbook)
    service.desk.mutate(incident.id, lambda i: restore_service(i, service.clock.now()))

    def verdicts() -> list[str]:
        return [m["text"] for m in emulator.ws.thread(INCIDENT, panel) if "Watch:" in m["text"]]

    backend.mode = "500"
    monitor.run_once()
    emulator.ws.wait_for(lambda: any("Still failing" in v for v in verdicts()), 10, "still failing")
    backend.mode = "ok"
    monitor.run_once()
    monitor.run_once()
    emulator.ws.wait_for(lambda: any("Looking better: 2/3" in v for v in verdicts()), 10, "looking better")
    assert Milestone.SYSTEM_RESTORED not in service.store.get_incident(incident.id).milestones
    monitor.run_once()
    emulator.ws.wait_for(lambda: any("system restored" in v for v in verdicts()), 10, "restored")
    restored = service.store.get_incident(incident.id)
    assert restored.milestones[Milestone.SYSTEM_RESTORED] > restored.milestones[Milestone.ROLLBACK_COMPLETED]
    monitor.run_once()
    monitor.run_once()  # the watch is over: no more verdicts
    emulator.ws.wait_for(lambda: [m for m in emulator.ws.channel_messages(STAKEHOLDERS)
                                  if "(system restored)" in m["text"]], 10, "the stakeholder update")
    assert len(verdicts()) == 4
    assert len([m for m in emulator.ws.channel_messages(STAKEHOLDERS) if "(system restored)" in m["text"]]) == 1


def _shared_store() -> tuple[Callable[[], Any], Callable[[], None]]:
    from bot.store.mongo import MongoStore

    uri = os.environ.get("TEST_MONGODB_URI")
    if uri:
        import uuid

        from pymongo import MongoClient

        client: Any = MongoClient(uri, tz_aware=True)
        name = f"rollback_bot_lease_{uuid.uuid4().hex[:8]}"
        return (lambda: MongoStore(client, name, owns_client=False)), lambda: (client.drop_database(name),
                                                                               client.close())[-1]
    import mongomock

    shared = mongomock.MongoClient(tz_aware=True)
    return (lambda: MongoStore(shared, "rollback_bot_lease", owns_client=False)), lambda: None


def test_two_replicas_on_one_store_run_the_schedule_once_and_take_over(
        emulator: Emulator, sandbox: Sandbox, tmp_path: Path, backend: Backend) -> None:
    settings = monitor_settings(emulator, sandbox, tmp_path, backend.url)
    open_store, drop = _shared_store()
    clock = FakeClock()
    first = build_services(settings, store=open_store(), clock=clock, replica_id="replica-a")
    second = build_services(settings, store=open_store(), clock=clock, replica_id="replica-b")
    try:
        ran = [first.monitor.run_once(), second.monitor.run_once()]
        assert ran[0] is not None and ran[1] is None  # one runner
        assert len(backend.requests) == 1
        clock.advance(seconds=30)
        assert first.monitor.run_once() is not None and second.monitor.run_once() is None
        # the first replica dies: after one lease period the second takes over
        clock.advance(seconds=settings.runbook.monitor.lease_s + 1)
        assert second.monitor.run_once() is not None
        assert first.monitor.run_once() is None  # and keeps it while it renews
        assert len(backend.requests) == 3
        history = second.store.check_history("health")
        assert len(history) == 3 and all(r.ok for r in history)  # one shared history
    finally:
        first.close()
        second.close()
        drop()


def test_health_command_shows_the_latest_results_and_a_chart(
        emulator: Emulator, sandbox: Sandbox, tmp_path: Path, backend: Backend,
        start_bot: Callable[..., SocketModeBot]) -> None:
    bot = start_bot(monitor_settings(emulator, sandbox, tmp_path, backend.url, history=10))
    for mode in ("ok", "500", "ok") * 5:
        backend.mode = mode
        bot.services.monitor.run_once()
    assert len(bot.services.store.check_history("health")) == 10  # bounded: a ring of `history` slots
    emulator.slash("casey", "incident-rollback", "start slow health").wait()
    panel = emulator.ws.wait_for(lambda: (i := bot.services.store.get_incident("RB-0001")) and i.panel_ts, 10, "panel")
    emulator.slash("casey", "incident-rollback", "health").wait()
    reply = emulator.ws.wait_for(lambda: next((e for e in emulator.ws.ephemerals_for("U0COMMANDER")
                                               if "Scheduled checks" in e.text), None), 10, "the reply")
    assert "*health*" in reply.text and "ms" in reply.text
    chart = emulator.ws.wait_for(lambda: [m for m in emulator.ws.thread(INCIDENT, panel) if m.get("files")],
                                 10, "the chart in the incident thread")[0]
    assert not [m for m in emulator.ws.channel_messages(INCIDENT) if m.get("files")]  # never in the channel
    content = emulator.ws.files[chart["files"][0]["id"]]["content"]
    assert content.startswith(b"\x89PNG\r\n\x1a\n") and len(content) > 100


def test_check_shows_the_schedule(emulator: Emulator, sandbox: Sandbox, tmp_path: Path) -> None:
    settings = make_settings(emulator, sandbox, tmp_path / "data", monitor={"mongo_probes": [
        {"name": "assessment generation", "collection": "internship_case_attempts",
         "failed_filter": {"status": "failed"}}]})
    lines = schedule_lines(settings.runbook)
    assert lines[0].startswith("every 60s (+0..5s jitter)")
    assert any(f"GET {sandbox.health_url}" in line for line in lines)
    assert any("pm2 jlist" in line for line in lines) and any("internship_case_attempts" in line for line in lines)
    off = make_settings(emulator, sandbox, tmp_path / "data", monitor={"enabled": False})
    assert schedule_lines(off.runbook) == ["scheduled checks are off (monitor.enabled: false)"]


def test_a_mongodb_ratio_probe_meets_the_generation_failure_criterion(
        emulator: Emulator, sandbox: Sandbox, tmp_path: Path, backend: Backend,
        start_bot: Callable[..., SocketModeBot]) -> None:
    from bot.ops import tenants

    probe = {"name": "assessment generation", "collection": "sessions", "failed_filter": {"generation": "failed"},
             "time_field": "created_at", "window_minutes": 60, "max_ratio": 0.5}
    bot = start_bot(monitor_settings(emulator, sandbox, tmp_path, backend.url, mongo_probes=[probe]))
    now = bot.services.clock.now()
    client = tenants.connect(sandbox.central_uri)
    try:
        sessions = client[sandbox.tenant_dbs[0]].sessions
        sessions.insert_many([{"generation": "ok", "created_at": now - timedelta(minutes=5)} for _ in range(4)])
        sessions.insert_many([{"generation": "failed", "created_at": now - timedelta(hours=3)} for _ in range(9)])
        result = [r for r in bot.services.monitor.run_once() if r.name == "assessment generation"][0]
        assert result.ok and result.detail.startswith("0/4")  # old failures are outside the window
        sessions.insert_many([{"generation": "failed", "created_at": now - timedelta(minutes=1)} for _ in range(5)])
        result = [r for r in bot.services.monitor.run_once() if r.name == "assessment generation"][0]
        assert not result.ok and result.criteria == ["gen_fail"] and result.detail.startswith("5/9")
    finally:
        tenants.close(client)
