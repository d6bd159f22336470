"""Who may do what, through the real app: commanders run steps and change incidents, approvers approve,
the incident's commander alone hands the role on (to a commander), bystanders may read `status`."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.app import SocketModeBot
from bot.commands import Subcommand
from bot.config import Settings
from bot.dev.emulator import Emulator
from bot.dev.sandbox import Sandbox
from bot.domain.access import RULES, SUBCOMMANDS
from bot.domain.incident import Incident
from bot.ids import Action
from tests.conftest import APPROVER, BYSTANDER, COMMANDER, DBA, INCIDENT, content, make_settings

README = Path(__file__).resolve().parents[2] / "README.md"


def started(emulator: Emulator, bot: SocketModeBot) -> Incident:
    emulator.slash("casey", "incident-rollback", "start login fails").wait()
    return emulator.ws.wait_for(lambda: (i := bot.services.store.get_incident("RB-0001")) and i.panel_ts and i, 10,
                                "the incident")


def private(emulator: Emulator, user: str, contains: str, after: int = 0) -> str:
    return emulator.ws.wait_for(lambda: next((e.text for e in emulator.ws.ephemerals_for(user)[after:]
                                              if contains in e.text), None), 10, f"{contains!r} to {user}")


def in_thread(emulator: Emulator, incident: Incident, contains: str) -> dict[str, Any]:
    return emulator.ws.wait_for(lambda: next((m for m in emulator.ws.thread(INCIDENT, incident.panel_ts or "")
                                              if contains in content(m)), None), 10, f"{contains!r} in the thread")


def test_an_approver_who_is_not_a_commander_changes_nothing_and_is_told_what_they_may_do(
        emulator: Emulator, sandbox: Sandbox, bot: SocketModeBot) -> None:
    """Reported: approvers who are not commanders ran note, followup, backup --again, handover @themselves and
    close --force (and could ask for a cleanup: the two-person rule is a commander asking, an approver approving)."""
    incident = started(emulator, bot)
    tried = ["note the DB looks fine", "followup @alex add a staging test", "backup --again", "handover @alex",
             "close --force done", "cleanup", "restored"]
    for number, text in enumerate(tried):
        emulator.slash("alex", "incident-rollback", text).wait()
        refusal = private(emulator, APPROVER, "Only commanders may", after=number)
        assert "access.commanders" in refusal and "As an approver you approve danger-zone requests" in refusal, text
    assert len(emulator.ws.ephemerals_for(APPROVER)) == len(tried)  # one private refusal each, nothing else
    record = bot.services.store.get_incident(incident.id)
    assert record is not None and record.active and record.commander == COMMANDER
    assert not any(e.note for e in record.timeline) and record.follow_ups == []
    assert bot.services.store.step_runs(incident.id) == [] and bot.services.store.approvals(incident.id) == []
    assert [e.action for e in bot.services.store.audit_events(incident.id) if e.actor == APPROVER] == []
    assert not any("Follow-up" in content(m) or "DB looks fine" in content(m)
                   for m in emulator.ws.thread(INCIDENT, incident.panel_ts or ""))


@pytest.fixture
def two_commanders(emulator: Emulator, sandbox: Sandbox, tmp_path: Path,
                   start_bot: Callable[..., SocketModeBot]) -> SocketModeBot:
    """dana is a commander too (and an approver); alex stays an approver only."""
    settings: Settings = make_settings(emulator, sandbox, tmp_path / "data",
                                       access={"commanders": ["@oncall", DBA]})
    return start_bot(settings)


def test_the_role_is_handed_on_by_the_incidents_commander_only_and_the_former_one_is_told(
        emulator: Emulator, sandbox: Sandbox, two_commanders: SocketModeBot) -> None:
    """Reported: a former commander could still hand the role on."""
    bot = two_commanders
    incident = started(emulator, bot)
    emulator.slash("casey", "incident-rollback", "handover @alex").wait()  # an approver, not a commander
    assert "access.commanders" in private(emulator, COMMANDER, "not on the list")
    emulator.slash("dana", "incident-rollback", "handover @dana").wait()  # a commander, but not this incident's
    refusal = private(emulator, DBA, "Only the incident's commander")
    assert f"<@{COMMANDER}>" in refusal and "/rollback handover @your-name" in refusal

    emulator.slash("casey", "incident-rollback", "handover @dana").wait()
    said = content(in_thread(emulator, incident, "handed the commander role"))
    assert f"<@{COMMANDER}> handed the commander role of RB-0001 to <@{DBA}>" in said
    assert "You are no longer the commander of RB-0001" in private(emulator, COMMANDER, "no longer the commander")

    before = len(emulator.ws.ephemerals_for(COMMANDER))
    emulator.slash("casey", "incident-rollback", "handover @casey").wait()  # the former commander takes it back
    refusal = private(emulator, COMMANDER, "Only the incident's commander", after=before)
    assert f"<@{DBA}>" in refusal
    emulator.slash("casey", "incident-rollback", "note casey is still a commander").wait()  # still a commander
    in_thread(emulator, incident, "casey is still a commander")
    record = bot.services.store.get_incident(incident.id)
    assert record is not None and record.commander == DBA
    assert [e.action for e in bot.services.store.audit_events(incident.id)].count("incident.handover") == 1

    emulator.slash("dana", "incident-rollback", "handover @casey").wait()  # the new commander hands it back
    in_thread(emulator, incident, f"<@{DBA}> handed the commander role of RB-0001 to <@{COMMANDER}>")
    record = bot.services.store.get_incident(incident.id)
    assert record is not None and record.commander == COMMANDER


def test_a_bystander_reads_status_privately_and_nothing_else(
        emulator: Emulator, sandbox: Sandbox, bot: SocketModeBot) -> None:
    """Reported: bystanders in an incident channel were refused even read-only status."""
    incident = started(emulator, bot)
    emulator.slash("blake", "incident-rollback", "status").wait()
    status = private(emulator, BYSTANDER, "Timeline")
    assert "RB-0001" in status and "Rollback started" in status
    emulator.click("blake", "incident-rollback", incident.panel_ts or "", Action.STATUS).wait()
    private(emulator, BYSTANDER, "Timeline", after=1)  # the panel's Status button too
    emulator.slash("blake", "incident-rollback", "help").wait()
    private(emulator, BYSTANDER, "/rollback status", after=2)
    asked = emulator.mention("blake", "incident-rollback", "status")
    asked.wait()
    emulator.ws.wait_for(lambda: any("Timeline" in content(m) for m in emulator.ws.channel_messages(
        INCIDENT, include_replies=True) if m.get("thread_ts") and m["thread_ts"] != incident.panel_ts), 10,
        "@rollback-bot status answered in its thread")

    messages = len(emulator.ws.channel_messages(INCIDENT, include_replies=True))
    for number, text in enumerate(["note I was here", "backup", "comms", "health"], start=3):
        emulator.slash("blake", "incident-rollback", text).wait()
        refusal = private(emulator, BYSTANDER, "Only commanders may", after=number)
        assert "You can read `/rollback status`" in refusal and "access.commanders" in refusal, text
    assert len(emulator.ws.channel_messages(INCIDENT, include_replies=True)) == messages
    assert bot.services.store.step_runs(incident.id) == []

    emulator.slash("blake", "random", "status").wait()  # outside an incident channel: not even status
    assert "incident channels" in private(emulator, BYSTANDER, "incident channels")


def test_every_subcommand_has_one_role_and_the_readme_table_says_the_same() -> None:
    """The README's "Who may do what" table lists each subcommand with the role the code applies."""
    section = README.read_text().split("### Who may do what", 1)[1].split("\n#", 1)[0]
    rows = [line.split("|")[1:3] for line in section.splitlines() if line.startswith("| ")]
    said = {Subcommand(sub): who.strip() for what, who in rows for sub in re.findall(r"`/rollback (\w+)", what)}
    assert set(SUBCOMMANDS) == set(Subcommand)
    assert said == {sub: RULES[act].role.value for sub, act in SUBCOMMANDS.items()}
