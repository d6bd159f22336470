"""Incident tooling beyond the runbook, through the emulator: `restored`, `handover`, `note`, `followup`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.app import SocketModeBot
from bot.dev.emulator import Emulator
from bot.dev.sandbox import Sandbox
from bot.domain.incident import Incident, Milestone, RestoredBy
from tests.conftest import APPROVER, COMMANDER, DBA, INCIDENT, STAKEHOLDERS, content, make_settings, restore_service

HEADER = "🚨 Rollback RB-0001"


def started(emulator: Emulator, bot: SocketModeBot) -> Incident:
    emulator.slash("casey", "incident-rollback", "start login fails").wait()
    return emulator.ws.wait_for(lambda: (i := bot.services.store.get_incident("RB-0001")) and i.panel_ts and i, 10,
                                "the incident")


def private(emulator: Emulator, user: str, contains: str) -> str:
    return emulator.ws.wait_for(lambda: next((e.text for e in emulator.ws.ephemerals_for(user)
                                              if contains in e.text), None), 10, f"{contains!r} to {user}")


def in_thread(emulator: Emulator, incident: Incident, contains: str) -> dict[str, Any]:
    return emulator.ws.wait_for(lambda: next((m for m in emulator.ws.thread(INCIDENT, incident.panel_ts or "")
                                              if contains in content(m)), None), 10, f"{contains!r} in the thread")


def test_the_commander_confirms_restored_only_after_the_rollback_and_stakeholders_hear_how(
        emulator: Emulator, sandbox: Sandbox, bot: SocketModeBot) -> None:
    incident = started(emulator, bot)
    emulator.slash("casey", "incident-rollback", "restored").wait()
    assert "/rollback verify" in private(emulator, COMMANDER, "Service is not back yet")
    now = bot.services.clock.now()
    bot.services.desk.mutate(incident.id, lambda i: restore_service(i, now))  # the steps' record: tests/runbook

    emulator.slash("casey", "incident-rollback", "restored").wait()
    in_thread(emulator, incident, "confirmed the system is restored")
    record = bot.services.store.get_incident(incident.id)
    assert record is not None and record.restored_by is RestoredBy.COMMANDER
    assert Milestone.SYSTEM_RESTORED in record.milestones
    update = emulator.ws.wait_for(lambda: next((m for m in emulator.ws.channel_messages(STAKEHOLDERS)
                                                if "(system restored)" in m["text"]), None), 10, "the update")
    assert "*System Restored*\n<!date^" in content(update) and "confirmed by the incident commander" in content(update)
    emulator.slash("casey", "incident-rollback", "restored").wait()
    assert private(emulator, COMMANDER, "already recorded")


def test_handover_moves_the_commander_role_and_refuses_whom_it_cannot(
        emulator: Emulator, sandbox: Sandbox, tmp_path: Path, start_bot: Callable[..., SocketModeBot]) -> None:
    bot = start_bot(make_settings(emulator, sandbox, tmp_path / "data", access={"commanders": ["@oncall", DBA]}))
    incident = started(emulator, bot)
    emulator.slash("casey", "incident-rollback", "handover @blake").wait()  # a bystander, not a commander
    assert "access.commanders" in private(emulator, COMMANDER, "not on the list")
    emulator.slash("casey", "incident-rollback", "handover @nobody-here").wait()
    assert "@their-name" in private(emulator, COMMANDER, "is not one person")
    emulator.slash("casey", "incident-rollback", "handover @dana").wait()
    note = in_thread(emulator, incident, "handed the commander role")
    assert f"<@{COMMANDER}> handed the commander role of RB-0001 to <@{DBA}>" in content(note)
    record = bot.services.store.get_incident(incident.id)
    assert record is not None and record.commander == DBA
    assert any("Commander handed over" in e.text for e in record.timeline)
    emulator.slash("dana", "incident-rollback", "status").wait()  # people as people, not bare ids
    assert f"Commander handed over from <@{COMMANDER}> to <@{DBA}>" in private(emulator, DBA, "Timeline")
    panel = emulator.ws.wait_for(lambda: (m := emulator.ws.message(INCIDENT, incident.panel_ts or "")) and
                                 f"*Commander:* <@{DBA}>" in content(m) and m, 10, "the panel's new commander")
    assert panel
    assert [e.action for e in bot.services.store.audit_events(incident.id)].count("incident.handover") == 1


def test_notes_and_follow_ups_with_owners_reach_the_timeline_and_the_postmortem(
        emulator: Emulator, sandbox: Sandbox, bot: SocketModeBot, tmp_path: Path) -> None:
    incident = started(emulator, bot)
    emulator.slash("casey", "incident-rollback", "note customers can't log in since 14:02 <!channel>").wait()
    assert "&lt;!channel&gt;" in content(in_thread(emulator, incident, "customers can't log in"))
    emulator.slash("casey", "incident-rollback", "followup @alex add a staging test with the AI server").wait()
    in_thread(emulator, incident, "Follow-up for")
    emulator.slash("casey", "incident-rollback", "followup @alex").wait()
    assert "/rollback followup @alex" in private(emulator, COMMANDER, "Say what the follow-up is")  # no text
    emulator.slash("casey", "incident-rollback", "followup add a staging soak test").wait()  # no owner: casey's
    in_thread(emulator, incident, "add a staging soak test")
    assert "no owner was named" in private(emulator, COMMANDER, "noted as yours")
    assert "in the thread" in private(emulator, COMMANDER, "Noted in the timeline of RB-0001")  # where they typed
    emulator.slash("casey", "incident-rollback", "close --force drill over").wait()
    assert "(forced: drill over)" in private(emulator, COMMANDER, "Closed RB-0001")
    closed = emulator.ws.wait_for(lambda: (i := bot.services.store.get_incident(incident.id)) and i.close_out
                                  and i.close_out.postmortem and i, 60, "the postmortem")
    assert closed.follow_ups[0].owner == APPROVER
    text = Path(closed.close_out.postmortem).read_text()
    assert "note: customers can't log in since 14:02 <!channel> (Casey Commander (U0COMMANDER))" in text
    assert "- [ ] add a staging test with the AI server — owner: Alex Approver (U0APPROVER1)" in text
    assert "- [ ] add a staging soak test — owner: Casey Commander (U0COMMANDER)" in text
    assert "Follow-up for Alex Approver (U0APPROVER1): add a staging test" in text  # the timeline, by name
    close_out = in_thread(emulator, incident, "Agreed during the incident")  # the close-out post lists them too
    assert "add a staging test with the AI server — <@U0APPROVER1>" in content(close_out)
    emulator.slash("casey", "incident-rollback", "followup @dana rotate the DB password").wait()  # after the close
    assert "not in the postmortem already posted" in content(in_thread(emulator, incident, "rotate the DB"))


def test_person_references_are_resolved_exactly(emulator: Emulator, sandbox: Sandbox, bot: SocketModeBot) -> None:
    coordination = bot.services.features.coordination
    assert coordination.person("<@U0APPROVER2|dana>") == "U0APPROVER2"  # a pasted mention
    assert coordination.person("U0APPROVER1") == APPROVER
    assert coordination.person("@DANA") == "U0APPROVER2"  # a handle, any case (users.list)
