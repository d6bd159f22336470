"""The timeline from Slack itself: a commander's 📌 on any message in the incident channel (or in a thread there)
adds that message to the incident's timeline at its own time, with its author, as incident tools people like do."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.app import SocketModeBot
from bot.dev.emulator import Emulator
from tests.conftest import BYSTANDER, COMMANDER, INCIDENT
from tests.handlers.test_roles import private, started


def test_a_commanders_pin_adds_the_message_to_the_timeline_at_its_time_with_its_author_once(
        emulator: Emulator, bot: SocketModeBot) -> None:
    incident = started(emulator, bot)
    said = emulator.post_as("blake", "incident-rollback", "customers in EU see 502 on login since 14:02")
    reply = emulator.post_as("alex", "incident-rollback", "DB replica lag is 40 s", thread_ts=incident.panel_ts)
    emulator.react("casey", "incident-rollback", said["ts"], "pushpin").wait()
    emulator.react("casey", "incident-rollback", reply["ts"], "pushpin").wait()

    def pinned() -> list[str] | None:
        record = bot.services.store.get_incident("RB-0001")
        texts = [e.text for e in record.timeline if e.text.startswith("📌")] if record else []
        return texts if len(texts) == 2 else None

    assert emulator.ws.wait_for(pinned, 10, "both messages on the timeline") == [
        "📌 customers in EU see 502 on login since 14:02", "📌 DB replica lag is 40 s"]
    record = bot.services.store.get_incident("RB-0001")
    assert record is not None
    entry = next(e for e in record.timeline if e.text.startswith("📌 customers"))
    assert entry.actor == BYSTANDER and entry.note  # who said it, shown as typed
    assert entry.at == datetime.fromtimestamp(float(said["ts"]), UTC)  # when it was said, not when pinned
    assert "Added to the timeline of RB-0001" in private(emulator, COMMANDER, "Added to the timeline")
    emulator.ws.wait_for(lambda: any("to the timeline: customers in EU" in m["text"]
                                     for m in emulator.ws.thread(INCIDENT, incident.panel_ts or "")), 10,
                         "the thread told")

    emulator.react("dana", "incident-rollback", said["ts"], "pushpin").wait()  # dana is no commander
    assert "Only commanders may add notes to the timeline" in private(emulator, "U0APPROVER2", "Only commanders")
    refusal = next(e for e in emulator.ws.ephemerals_for("U0APPROVER2") if "Only commanders" in e.text)
    assert "👉 *Next:*" in str(refusal.blocks)  # a refusal to a reaction carries the way on too
    emulator.react("casey", "incident-rollback", said["ts"], "pushpin", added=False).wait()
    emulator.react("casey", "incident-rollback", said["ts"], "pushpin").wait()  # pinned again: kept once
    assert "already on the timeline" in private(emulator, COMMANDER, "already on the timeline")
    record = bot.services.store.get_incident("RB-0001")
    assert record is not None and sum(e.text.startswith("📌 customers") for e in record.timeline) == 1
    assert [e.action for e in bot.services.store.audit_events("RB-0001")].count("incident.pinned") == 2

    emulator.slash("casey", "incident-rollback", "status").wait()  # in the timeline people read
    assert "📌 customers in EU see 502 on login since 14:02" in private(emulator, COMMANDER, "*Timeline*")
