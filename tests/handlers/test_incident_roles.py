"""More than one role, as incident tools people like have it: a commander gives this incident a comms lead and a
scribe; the panel shows who holds each, and each may do what the role is for without being a commander."""

from __future__ import annotations

from bot.app import SocketModeBot
from bot.dev.emulator import Emulator
from bot.domain.incident import IncidentRole
from tests.conftest import BYSTANDER, COMMANDER, DBA, INCIDENT
from tests.handlers.test_roles import private, started


def test_a_comms_lead_and_a_scribe_hold_their_roles_on_the_panel_and_may_do_what_the_role_is_for(
        emulator: Emulator, bot: SocketModeBot) -> None:
    incident = started(emulator, bot)
    emulator.slash("dana", "incident-rollback", "comms").wait()  # dana approves, she is no commander
    assert "Only commanders may preview, edit or post stakeholder updates" in private(emulator, DBA, "Only commanders")

    emulator.slash("casey", "incident-rollback", "role comms @dana").wait()
    emulator.slash("casey", "incident-rollback", "role scribe @blake").wait()
    record = emulator.ws.wait_for(lambda: (i := bot.services.store.get_incident("RB-0001")) and len(i.roles) == 2
                                  and i, 10, "both roles given")
    assert record.roles == {IncidentRole.COMMS: DBA, IncidentRole.SCRIBE: BYSTANDER}
    emulator.ws.wait_for(lambda: f"*Comms lead:* <@{DBA}>  ·  *Scribe:* <@{BYSTANDER}>" in str(
        emulator.ws.message(INCIDENT, incident.panel_ts or "")), 10, "the panel showing who holds each")
    assert any(e.text == f"Comms lead: {DBA}" and e.actor == COMMANDER for e in record.timeline)

    emulator.slash("dana", "incident-rollback", "comms").wait()  # now she may
    assert "Post now" in str(emulator.ws.wait_for(lambda: next((e.blocks for e in emulator.ws.ephemerals_for(DBA)
                                                                if "Preview" in e.text), None), 10, "the preview"))
    emulator.slash("blake", "incident-rollback", "note customers see 502s since 14:02").wait()
    emulator.ws.wait_for(lambda: any(e.text == "customers see 502s since 14:02" and e.actor == BYSTANDER
                                     for e in bot.services.store.get_incident("RB-0001").timeline),  # type: ignore[union-attr]
                         10, "the scribe's note")
    emulator.slash("blake", "incident-rollback", "backup").wait()  # a role is not the commander's
    assert "Only commanders may run rollback steps" in private(emulator, BYSTANDER, "Only commanders")
    emulator.slash("dana", "incident-rollback", "note hello").wait()  # the comms lead is not the scribe
    assert "Only commanders may add notes" in private(emulator, DBA, "Only commanders may add notes")
    refusal = next(e for e in emulator.ws.ephemerals_for(DBA) if "Only commanders may add notes" in e.text)
    assert "You are RB-0001's Comms lead: the stakeholder updates (`/rollback comms`) are yours." in str(
        refusal.blocks)  # not just "ask to be a commander": what her role does let her do

    emulator.slash("casey", "incident-rollback", "role comms none").wait()
    emulator.ws.wait_for(lambda: IncidentRole.COMMS not in bot.services.store.get_incident("RB-0001").roles,  # type: ignore[union-attr]
                         10, "the role taken back")
    seen = len(emulator.ws.ephemerals_for(DBA))
    emulator.slash("dana", "incident-rollback", "comms").wait()
    assert "Only commanders" in private(emulator, DBA, "Only commanders", after=seen)


def test_the_panel_names_the_comms_lead_before_the_scribe_whichever_was_given_first(
        emulator: Emulator, bot: SocketModeBot) -> None:
    """Found by the suite under load: two role commands typed together were recorded in whichever order they
    ran, and the panel listed the roles in that order."""
    incident = started(emulator, bot)
    emulator.slash("casey", "incident-rollback", "role scribe @blake").wait()
    emulator.ws.wait_for(lambda: (i := bot.services.store.get_incident("RB-0001")) and i.roles, 10, "the scribe")
    emulator.slash("casey", "incident-rollback", "role comms @dana").wait()
    emulator.ws.wait_for(lambda: f"*Comms lead:* <@{DBA}>  ·  *Scribe:* <@{BYSTANDER}>" in str(
        emulator.ws.message(INCIDENT, incident.panel_ts or "")), 10, "the panel, comms lead first")


def test_a_role_that_does_not_exist_or_a_bystander_giving_one_changes_nothing(
        emulator: Emulator, bot: SocketModeBot) -> None:
    started(emulator, bot)
    emulator.slash("casey", "incident-rollback", "role boss @dana").wait()
    assert "`boss` is not something `/rollback role` knows" in private(emulator, COMMANDER, "role")
    emulator.slash("blake", "incident-rollback", "role scribe @blake").wait()
    assert "Only commanders may give the incident's comms lead and scribe roles" in private(
        emulator, BYSTANDER, "Only commanders")
    emulator.slash("casey", "incident-rollback", "role scribe @nobody-here").wait()
    assert "is not one person in this workspace" in private(emulator, COMMANDER, "not one person")
    record = bot.services.store.get_incident("RB-0001")
    assert record is not None and record.roles == {}
