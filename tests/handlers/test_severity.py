"""Severity, as incident tools people like have it: set at start (`--sev 1`), changed by a commander
(`/rollback severity 2 why`), and shown everywhere people look: the panel, the status, the stakeholder
updates and the postmortem."""

from __future__ import annotations

from typing import Any

from bot.app import SocketModeBot
from bot.dev.emulator import Emulator
from bot.domain.incident import Severity
from tests.conftest import BYSTANDER, COMMANDER, INCIDENT, STAKEHOLDERS
from tests.handlers.test_roles import private


def panel(emulator: Emulator, bot: SocketModeBot) -> dict[str, Any]:
    incident = bot.services.store.get_incident("RB-0001")
    assert incident is not None and incident.panel_ts
    found = emulator.ws.message(INCIDENT, incident.panel_ts)
    assert found is not None
    return found


def test_set_at_start_changed_by_a_commander_and_shown_on_the_panel_status_and_stakeholder_updates(
        emulator: Emulator, bot: SocketModeBot) -> None:
    emulator.slash("casey", "incident-rollback", "start login fails for everyone --sev 1").wait()
    incident = emulator.ws.wait_for(lambda: (i := bot.services.store.get_incident("RB-0001")) and i.panel_ts and i,
                                    10, "the incident")
    assert incident.severity is Severity.SEV1 and incident.reason == "login fails for everyone"
    assert any(e.text == "Severity: SEV1 (critical: most students or professors cannot work)" and e.actor == COMMANDER
               for e in incident.timeline)  # the starting severity is on the timeline too
    shown = panel(emulator, bot)
    assert shown["blocks"][0]["text"]["text"] == "🚨 Rollback RB-0001 SEV1 — active"
    assert "*Severity:* SEV1 — critical: most students or professors cannot work" in str(shown["blocks"])
    update = emulator.ws.wait_for(lambda: next((m for m in emulator.ws.channel_messages(STAKEHOLDERS)
                                                if "RB-0001" in str(m["blocks"])), None), 10, "the first update")
    assert "— RB-0001 (SEV1)" in update["blocks"][0]["text"]["text"]  # the header stakeholders see

    emulator.slash("casey", "incident-rollback", "severity 2 only professors are affected").wait()
    emulator.ws.wait_for(lambda: "RB-0001 SEV2" in panel(emulator, bot)["blocks"][0]["text"]["text"], 10,
                         "the panel redrawn")
    assert "Severity of RB-0001 set to SEV2" in private(emulator, COMMANDER, "Severity of")  # where they typed
    record = bot.services.store.get_incident("RB-0001")
    assert record is not None and record.severity is Severity.SEV2
    assert any(e.text == "Severity: SEV1 → SEV2 (major: a core feature is broken for many) — only professors "
                         "are affected" and e.actor == COMMANDER for e in record.timeline)
    assert [e.data["before"] for e in bot.services.store.audit_events("RB-0001")
            if e.action == "incident.severity"] == ["SEV1"]
    emulator.slash("blake", "incident-rollback", "status").wait()  # anyone who may read it sees it
    assert "*RB-0001* — SEV2 — active" in private(emulator, BYSTANDER, "RB-0001")


def test_a_wrong_severity_or_the_wrong_person_changes_nothing_and_says_what_to_type(
        emulator: Emulator, bot: SocketModeBot) -> None:
    emulator.slash("casey", "incident-rollback", "start login fails --sev high").wait()
    refusal = private(emulator, COMMANDER, "is not a severity")
    assert "say 1, 2, 3 or 4" in refusal and "`/rollback start the reason --sev 2`" in refusal
    assert bot.services.store.get_incident("RB-0001") is None  # nothing half-happened

    emulator.slash("casey", "incident-rollback", "start login fails").wait()
    emulator.ws.wait_for(lambda: (i := bot.services.store.get_incident("RB-0001")) and i.panel_ts, 10, "started")
    assert "*Severity:* _not set_ (`/rollback severity 1`…`4`)" in str(panel(emulator, bot)["blocks"])
    emulator.slash("casey", "incident-rollback", "severity 5").wait()
    assert "`/rollback severity 1 most students cannot start sessions`" in private(emulator, COMMANDER, "`5`")
    emulator.slash("blake", "incident-rollback", "severity 1").wait()
    assert "Only commanders may set the severity" in private(emulator, BYSTANDER, "Only commanders")
    record = bot.services.store.get_incident("RB-0001")
    assert record is not None and record.severity is None
    assert not [e for e in bot.services.store.audit_events("RB-0001") if e.action == "incident.severity"]
