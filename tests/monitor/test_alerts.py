"""An alert carries a Start rollback button for every runbook criterion its failures meet, named after it, and
says which rollback is active instead when one is. Checks run by `Monitor.run_once`, against a real HTTP
server and a MongoDB URI nothing listens on."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.app import SocketModeBot
from bot.dev.emulator import Emulator
from bot.dev.sandbox import Sandbox, free_port
from bot.domain.monitor import Monitor
from tests.conftest import INCIDENT, content, make_settings
from tests.monitor.conftest import Backend
from tests.monitor.test_monitor import ALERTS, MONITOR, alerts

START = "Start rollback: "
SESSIONS, SLOW, DB = "Students cannot complete sessions", "Backend response times >5s", "Database queries failing"


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in message.get("blocks") or [] if b.get("type") == "actions" for e in b["elements"]]


def labels(message: dict[str, Any]) -> list[str]:
    return [b["text"]["text"] for b in buttons(message)]


def next_alert(emulator: Emulator, monitor: Monitor, check: str, failing: bool = True) -> dict[str, Any]:
    """Run the checks once and return the alert about ``check`` that run posted."""
    before = len(alerts(emulator))
    monitor.run_once()
    words = f"*{check}* is failing" if failing else f"*{check}* is healthy again"
    return emulator.ws.wait_for(lambda: next((m for m in alerts(emulator)[before:] if words in m["text"]), None), 10,
                                f"the alert: {words}")


def test_each_criterion_an_alert_meets_has_its_own_start_rollback_button_or_names_the_active_rollback(
        emulator: Emulator, sandbox: Sandbox, tmp_path: Path, backend: Backend,
        start_bot: Callable[..., SocketModeBot]) -> None:
    # The tenant databases' probe reads the central URI from the target's .env: here one nothing listens on.
    env = sandbox.repo / ".env"
    env.write_text(env.read_text() + f"BROKEN_DB_URI=mongodb://127.0.0.1:{free_port()}/central"
                   "?serverSelectionTimeoutMS=300&connectTimeoutMS=300\n")
    probe = {"name": "tenant queries", "collection": "sessions", "failed_filter": {"generation": "failed"}}
    settings = make_settings(emulator, sandbox, tmp_path / "data",
                             health={"url": f"{backend.url}/api/health", "core_endpoints": []},
                             thresholds={"backend_response_s": 0.3}, slack={"alerts_channel": ALERTS},
                             tenants={"central_db_uri_env": "BROKEN_DB_URI"},
                             monitor={**MONITOR, "failures_to_alert": 1, "mongo_probes": [probe]})
    bot = start_bot(settings)
    monitor = bot.services.monitor

    # Failing database queries: the probe cannot reach MongoDB.
    db = next_alert(emulator, monitor, "tenant queries")
    assert labels(db) == [START + DB]
    assert json.loads(buttons(db)[0]["value"])["criterion"] == "db_fail"

    # An HTTP 500 from the health endpoint: the runbook's own trigger.
    backend.mode = "500"
    five_hundred = next_alert(emulator, monitor, "health")
    assert "status 500" in five_hundred["text"] and labels(five_hundred) == [START + SESSIONS]
    backend.mode = "ok"
    next_alert(emulator, monitor, "health", failing=False)

    # Slower than the threshold, with the right answer.
    backend.mode = "slow"
    slow = next_alert(emulator, monitor, "health")
    assert labels(slow) == [START + SLOW] and "took" in slow["text"]
    backend.mode = "ok"
    next_alert(emulator, monitor, "health", failing=False)

    # A 500 that also took too long meets both, each with its own button.
    backend.mode = "slow500"
    both = next_alert(emulator, monitor, "health")
    assert labels(both) == [START + SLOW, START + SESSIONS]
    assert len({b["action_id"] for b in buttons(both)}) == 2
    backend.mode = "ok"
    next_alert(emulator, monitor, "health", failing=False)

    # Its button starts a rollback with that criterion ticked.
    emulator.click("casey", "alerts", five_hundred["ts"], buttons(five_hundred)[0]["action_id"]).wait()
    incident = emulator.ws.wait_for(lambda: bot.services.store.get_incident("RB-0001"), 10, "the incident")
    assert incident.channel == INCIDENT and set(incident.criteria) == {"sessions"}
    emulator.ws.wait_for(lambda: bot.services.store.get_incident("RB-0001").panel_ts, 10, "the panel")

    # While it is active, a new alert says so, with a link, instead of offering a second rollback.
    backend.mode = "500"
    during = next_alert(emulator, monitor, "health")
    assert buttons(during) == []
    text = content(during)
    assert SESSIONS in text and "RB-0001" in text and "is already active in <#C0INCIDENT>" in text
    assert "/archives/C0INCIDENT/" in text  # the link to its control panel
    audit = [e for e in bot.services.store.audit_events() if e.action == "monitor.alert"]
    assert audit[-1].data["criteria"] == ["sessions"] and audit[-1].data["active"] == "RB-0001"
