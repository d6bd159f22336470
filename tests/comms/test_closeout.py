"""Stakeholder updates, RCA and close-out through the emulator, against the running sandbox."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.app import SocketModeBot
from bot.config import Settings
from bot.dev.emulator import Emulator
from bot.dev.fakeclock import FakeClock
from bot.dev.sandbox import Sandbox
from bot.domain.checklists import SUCCESS_CRITERIA
from bot.domain.incident import Milestone
from bot.ids import Action, View
from tests.conftest import COMMANDER, INCIDENT, STAKEHOLDERS, checklists_message, content, make_settings
from tests.runbook.test_full_rollback import panel_ts, run_step

HUMAN = [item.key for item in SUCCESS_CRITERIA if not item.automatic]
HEADLINES = ("(rollback started)", "(rollback completed)", "(system restored)", "(incident closed)")


def posts(emulator: Emulator, headline: str) -> list[dict[str, Any]]:
    return [m for m in emulator.ws.channel_messages(STAKEHOLDERS) if headline in m["text"]]


def ephemeral(emulator: Emulator, user: str, contains: str, timeout: float = 30) -> Any:
    return emulator.ws.wait_for(lambda: next((e for e in emulator.ws.ephemerals_for(user) if contains in e.text),
                                             None), timeout, f"'{contains}' to {user}")


def wait_recorded(emulator: Emulator, ts: str) -> None:
    """The link in the incident thread comes after the post is recorded on the incident."""
    emulator.ws.wait_for(lambda: any("Stakeholder update posted" in m["text"]
                                     for m in emulator.ws.thread(INCIDENT, ts)), 10, "the post recorded")


def incident_of(bot: SocketModeBot) -> Any:
    return bot.services.store.get_incident("RB-0001")


@pytest.mark.slow
def test_each_milestone_is_announced_once_across_restarts_and_close_writes_the_postmortem(
        emulator: Emulator, live_sandbox: Sandbox, settings: Settings,
        start_bot: Callable[..., SocketModeBot]) -> None:
    bot = start_bot()
    emulator.slash("casey", "incident-rollback", "start health returns 500 after Phase 3").wait()
    ts = panel_ts(emulator)
    started = emulator.ws.wait_for(lambda: posts(emulator, "(rollback started)"), 10, "the first update")[0]
    recorded = incident_of(bot).milestones
    assert f"<!date^{int(recorded[Milestone.ISSUE_DETECTED].timestamp())}^" in content(started)
    assert "*Rollback Completed*\nnot yet" in content(started)
    wait_recorded(emulator, ts)

    bot.close()
    bot = start_bot()  # a restart between milestones announces nothing twice
    for step in ("backup", "revert", "rebuild", "restart", "verify"):
        assert "— succeeded" in run_step(emulator, ts, step), step
    completed = emulator.ws.wait_for(lambda: posts(emulator, "(rollback completed)"), 10, "the completed update")[0]
    done_at = incident_of(bot).milestones[Milestone.ROLLBACK_COMPLETED]
    assert f"<!date^{int(done_at.timestamp())}^" in content(completed)
    assert "*Backend*\nSTABLE (old version restored)" in content(completed)

    bot.close()
    bot = start_bot()
    emulator.slash("casey", "incident-rollback", "close").wait()
    refusal = ephemeral(emulator, COMMANDER, "Not closing")
    assert "not confirmed yet: Students can complete sessions" in refusal.text
    link = incident_of(bot).checklist_link  # the refusal links where the boxes are, not the panel
    assert link and f"<{link}|📋 Checklists>" in refusal.text
    assert incident_of(bot).active

    emulator.click("casey", "incident-rollback", checklists_message(emulator)["ts"], Action.SUCCESS,
                   selected=HUMAN).wait()
    emulator.ws.wait_for(lambda: len(incident_of(bot).success) == len(HUMAN), 10, "the ticks")
    emulator.slash("casey", "incident-rollback", "close").wait()
    emulator.ws.wait_for(lambda: posts(emulator, "(incident closed)"), 60, "the final update")
    closed = emulator.ws.wait_for(lambda: (i := incident_of(bot)).close_out and i.close_out.postmortem and i, 30,
                                  "the postmortem")
    assert not closed.active and not closed.close_out.forced
    assert all(check.ok for check in closed.close_out.checks)
    assert Milestone.SYSTEM_RESTORED in closed.milestones

    bot.close()
    start_bot()  # and once more: still exactly one post per milestone
    assert [len(posts(emulator, h)) for h in HEADLINES] == [1, 1, 1, 1]

    thread = emulator.ws.thread(INCIDENT, ts)
    assert any("prevention checklist" in m["text"] and "Gradual rollout" in m["text"] for m in thread)
    uploaded = [m for m in thread if m.get("files")]
    assert uploaded and uploaded[0]["files"][0]["name"] == "RB-0001-postmortem.md"
    postmortem = Path(closed.close_out.postmortem).read_text()
    assert postmortem == emulator.ws.files[uploaded[0]["files"][0]["id"]]["content"].decode()
    assert "| revert | Casey Commander (U0COMMANDER) |" in postmortem and "## Audit log" in postmortem
    assert done_at.strftime("%Y-%m-%d %H:%M:%S UTC") in postmortem
    assert all(secret not in postmortem for secret in live_sandbox.canaries.values())


@pytest.mark.slow
def test_close_is_refused_while_the_backend_fails_and_force_records_why(
        emulator: Emulator, live_sandbox: Sandbox, start_bot: Callable[..., SocketModeBot]) -> None:
    bot = start_bot()
    emulator.slash("casey", "incident-rollback", "start still broken").wait()
    panel_ts(emulator)
    emulator.slash("casey", "incident-rollback", "close").wait()
    refusal = ephemeral(emulator, COMMANDER, "Not closing")
    assert "❌ Backend running without errors" in refusal.text and "500" in refusal.text
    assert "--force" in refusal.text and incident_of(bot).active

    emulator.slash("casey", "incident-rollback", "close --force rolling forward with a hotfix instead").wait()
    emulator.ws.wait_for(lambda: not incident_of(bot).active, 30, "the close")
    closed = incident_of(bot)
    assert closed.close_out.forced and closed.close_out.reason == "rolling forward with a hotfix instead"
    assert Milestone.SYSTEM_RESTORED not in closed.milestones  # it was not restored, so it is not claimed
    event = [e for e in bot.services.store.audit_events("RB-0001") if e.action == "incident.closed"][0]
    assert event.data["forced"] and event.data["failing"]
    final = emulator.ws.wait_for(lambda: posts(emulator, "(incident closed)"), 10, "the final update")[0]
    assert "*System Restored*\nnot yet" in content(final)


def test_comms_preview_edit_and_post_now(emulator: Emulator, sandbox: Sandbox,
                                        start_bot: Callable[..., SocketModeBot]) -> None:
    bot = start_bot()
    emulator.slash("casey", "incident-rollback", "start feedback generation fails").wait()
    panel_ts(emulator)
    emulator.slash("casey", "incident-rollback", "comms edit").wait()
    view = emulator.ws.wait_for(lambda: next((v for v in emulator.ws.views if v["callback_id"] == View.COMMS_EDIT),
                                             None), 10, "the modal")
    emulator.submit_view("casey", view["id"], {"students": "sessions failed for 20 minutes",
                                               "professors": "could not validate feedback", "eta": "Friday 12:00"}
                         ).wait()
    emulator.ws.wait_for(lambda: incident_of(bot).comms_details.eta == "Friday 12:00", 10, "the details saved")
    assert "/rollback comms" in ephemeral(emulator, COMMANDER, "Saved: the next update uses them").text  # said

    emulator.slash("casey", "incident-rollback", "comms").wait()
    preview = ephemeral(emulator, COMMANDER, "Preview")
    shown = str(preview.blocks)
    assert "sessions failed for 20 minutes" in shown and "ETA for fix: Friday 12:00" in shown
    assert len(posts(emulator, "(status update)")) == 0  # a preview posts nothing
    emulator.click("casey", "incident-rollback", preview.ts, Action.COMMS_POST).wait()
    update = emulator.ws.wait_for(lambda: posts(emulator, "(status update)"), 10, "the posted update")[0]
    assert "Professors: could not validate feedback" in content(update)

    emulator.slash("blake", "incident-rollback", "comms edit").wait()  # a bystander cannot
    assert "not on the list" in ephemeral(emulator, "U0BYSTANDER", "not on the list").text


def test_rca_form_is_stored_and_shown(emulator: Emulator, sandbox: Sandbox,
                                     start_bot: Callable[..., SocketModeBot]) -> None:
    bot = start_bot()
    emulator.slash("casey", "incident-rollback", "start assessment timeouts").wait()
    ts = panel_ts(emulator)
    emulator.slash("casey", "incident-rollback", "rca").wait()
    view = emulator.ws.wait_for(lambda: next((v for v in emulator.ws.views if v["callback_id"] == View.RCA), None),
                                10, "the RCA modal")
    emulator.submit_view("casey", view["id"], {
        "what_went_wrong": "assessment generation timed out", "errors": "TimeoutError after 120000ms",
        "phase": "Phase 2", "causes": ["ai_server", "schema"], "why": "the AI server was not upgraded",
        "prevention": "staging test with the AI server"}).wait()
    rca = emulator.ws.wait_for(lambda: incident_of(bot).rca, 10, "the RCA saved")
    assert rca.phase == "Phase 2" and rca.causes == ["ai_server", "schema"] and rca.by == COMMANDER
    note = emulator.ws.wait_for(lambda: next((m["text"] for m in emulator.ws.thread(INCIDENT, ts)
                                              if "Root-cause analysis" in m["text"]), None), 10, "the RCA note")
    assert "AI server issue, Database schema conflict" in note and "TimeoutError after 120000ms" in note


def test_the_reminder_posts_only_when_something_changed(emulator: Emulator, sandbox: Sandbox, tmp_path: Path,
                                                        start_bot: Callable[..., SocketModeBot]) -> None:
    clock = FakeClock()
    bot = start_bot(make_settings(emulator, sandbox, tmp_path / "data", comms={"reminder_minutes": 30}), clock=clock)
    emulator.slash("casey", "incident-rollback", "start slow backend").wait()
    ts = panel_ts(emulator)
    emulator.ws.wait_for(lambda: posts(emulator, "(rollback started)"), 10, "the first update")
    wait_recorded(emulator, ts)
    comms = bot.services.stakeholders

    clock.advance(minutes=10)
    comms.tick()
    assert ephemeral_count(emulator) == 0  # not due yet

    clock.advance(minutes=21)
    comms.tick()
    reminder = ephemeral(emulator, COMMANDER, "nothing changed")
    assert "/rollback comms" in reminder.text and posts(emulator, "(status update)") == []

    comms.save_details(COMMANDER, "RB-0001", {"eta": "tomorrow 09:00"})
    clock.advance(minutes=31)
    comms.tick()
    update = emulator.ws.wait_for(lambda: posts(emulator, "(status update)"), 10, "the changed update")[0]
    assert "ETA for fix: tomorrow 09:00" in content(update)
    comms.tick()  # not due again right away
    assert len(posts(emulator, "(status update)")) == 1


def ephemeral_count(emulator: Emulator) -> int:
    return len([e for e in emulator.ws.ephemerals_for(COMMANDER) if "nothing changed" in e.text])


def test_the_update_is_emailed_in_plain_text_through_a_real_smtp_server(
        emulator: Emulator, sandbox: Sandbox, tmp_path: Path, start_bot: Callable[..., SocketModeBot]) -> None:
    import socket
    from email import message_from_bytes
    from email.policy import default

    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self) -> None:
            self.received: list[Any] = []

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd's name
            self.received.append(envelope)
            return "250 Message accepted for delivery"

    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        port = probe_socket.getsockname()[1]
    inbox = Inbox()
    server = Controller(inbox, hostname="127.0.0.1", port=port)
    server.start()
    try:
        email = {"smtp_host": "127.0.0.1", "smtp_port": port, "sender": "rollback-bot@example.com",
                 "recipients": ["stakeholders@example.com", "lead@example.com"]}
        bot = start_bot(make_settings(emulator, sandbox, tmp_path / "data", comms={"email": email}))
        emulator.slash("casey", "incident-rollback", "start health returns 500").wait()
        panel_ts(emulator)
        emulator.ws.wait_for(lambda: inbox.received, 15, "the e-mail")
        envelope = inbox.received[0]
        assert envelope.rcpt_tos == ["stakeholders@example.com", "lead@example.com"]
        message = message_from_bytes(envelope.content, policy=default)
        assert message["Subject"].startswith("[URGENT] AI Professor Backend Rollback") and "(rollback started)" in \
            message["Subject"]
        body = message.get_content()
        started = incident_of(bot).milestones[Milestone.ROLLBACK_STARTED]
        assert f"Rollback Started: {started:%Y-%m-%d %H:%M:%S} UTC" in body and "<!date" not in body
        assert emulator.ws.wait_for(lambda: incident_of(bot).comms["rollback_started"].emailed, 10, "recorded")
    finally:
        server.stop()


def test_saving_the_form_opened_from_a_preview_updates_that_preview_in_place(
        emulator: Emulator, sandbox: Sandbox, start_bot: Callable[..., SocketModeBot]) -> None:
    start_bot()
    emulator.slash("casey", "incident-rollback", "start feedback generation fails").wait()
    panel_ts(emulator)
    emulator.slash("casey", "incident-rollback", "comms").wait()
    preview = ephemeral(emulator, COMMANDER, "Preview")
    assert "Students: not assessed yet" in str(preview.blocks)
    emulator.click("casey", "incident-rollback", preview.ts, Action.COMMS_EDIT).wait()  # the preview's button
    view = emulator.ws.wait_for(lambda: next((v for v in emulator.ws.views if v["callback_id"] == View.COMMS_EDIT),
                                             None), 10, "the modal")
    emulator.submit_view("casey", view["id"], {"students": "sessions failed for 20 minutes"}).wait()
    ephemeral(emulator, COMMANDER, "Saved")

    def fresh() -> Any:
        shown = next(e for e in emulator.ws.ephemerals_for(COMMANDER) if e.ts == preview.ts)
        return shown if "sessions failed for 20 minutes" in str(shown.blocks) else None

    updated = emulator.ws.wait_for(fresh, 10, "the preview updated in place")
    assert "not assessed yet" not in str(updated.blocks).split("Data")[0]  # the students' line is the new one
    previews = [e for e in emulator.ws.ephemerals_for(COMMANDER) if "Preview" in e.text]
    assert len(previews) == 1  # the same message, not a second preview under a stale one
    assert "preview above" in ephemeral(emulator, COMMANDER, "Saved").text
