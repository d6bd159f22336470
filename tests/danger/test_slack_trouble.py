"""Slack failing while the danger zone works: rendering and telling are best effort, the run never stops.

The emulator's ``outage`` makes methods answer 429 or 500 for a while (longer than the client's bounded
retries), as Slack does under load; the tenant data, the stored request and the audit must not care, and what
people see catches up once Slack answers again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from bot.dev.emulator import Emulator
from bot.dev.fakeclock import FakeClock
from bot.dev.sandbox import Sandbox
from bot.domain.approvals import ApprovalStatus
from tests.conftest import APPROVER, INCIDENT
from tests.danger.test_cleanup import Drill, drill, with_fields

__all__ = ["drill"]  # the fixture, shared with the cleanup tests
SLACK_DOWN = ["usergroups.list", "chat.update", "chat.postMessage"]


def edits(emulator: Emulator, ts: str) -> int:
    return len([c for c in emulator.ws.calls if c[0] == "chat.update" and c[1].get("ts") == ts])


def test_slack_failing_during_an_approved_cleanup_never_stops_it_and_the_thread_catches_up(
        drill: Callable[..., Drill], sandbox: Sandbox, emulator: Emulator) -> None:
    clock = FakeClock()
    incident = drill(clock=clock, start_delay_s=30)
    before = with_fields(sandbox)
    ts = incident.request()
    incident.react("alex", ts)
    incident.wait_status(ts, ApprovalStatus.APPROVED)
    emulator.ws.wait_for(lambda: "✅ Approved by" in str(emulator.ws.message(INCIDENT, ts)), 10, "the approval shown")
    # From here Slack rate-limits the group lookup and fails every post and edit, for longer than any retry.
    emulator.outage("usergroups.list", 600, 429, retry_after=0)
    emulator.outage("chat.update", 600, 500, retry_after=None)
    emulator.outage("chat.postMessage", 600, 429, retry_after=0)
    before_outage = edits(emulator, ts)
    clock.advance(seconds=31)
    incident.sweep()
    done = incident.wait_status(ts, ApprovalStatus.EXECUTED)
    assert done.failure is None
    assert with_fields(sandbox) == {db: 0 for db in sandbox.tenant_dbs}  # all three tenants, not one
    assert {r.db: (r.ok, r.modified) for r in incident.results(ts)} == {db: (True, n) for db, n in before.items()}
    assert [len(incident.audit(a)) for a in ("cleanup.tenant", "cleanup.finished", "approval.failed")] == [3, 1, 0]
    assert incident.store.verify_audit().ok
    assert "🏁 Done" not in str(emulator.ws.message(INCIDENT, ts))  # Slack is still down: the request is stale

    # more refused edits of the request than one call's bounded retries: the bot gave up once and tries again
    emulator.ws.wait_for(lambda: edits(emulator, ts) > before_outage + 4, 30, "the bot to give up once")
    emulator.outage(SLACK_DOWN, 0)  # Slack is back
    emulator.ws.wait_for(lambda: "🏁 Done" in str(emulator.ws.message(INCIDENT, ts)), 30, "the request caught up")
    note = incident.thread_note("⚠️ Slack was unavailable for")
    assert "during the cleanup; the messages above caught up" in note
    thread = [m["text"] for m in emulator.ws.thread(INCIDENT, incident.panel)]
    outcome = [i for i, text in enumerate(thread) if text.startswith("✅ *cleanup*")]
    assert len(outcome) == 1 and outcome[0] < thread.index(note)  # the outcome once, then the catch-up note
    assert all(f"{db}`: ✅ {n} cases cleaned" in thread[outcome[0]] for db, n in before.items())
    assert not [text for text in thread if "failed after" in text]
    assert not [e.text for e in emulator.ws.ephemerals_for(APPROVER) if "went wrong" in e.text]


def test_an_approval_under_a_rate_limited_group_lookup_is_recorded_and_never_answered_as_an_error(
        drill: Callable[..., Drill], emulator: Emulator) -> None:
    incident = drill()
    ts = incident.request()
    emulator.outage("usergroups.list", 600, 429, retry_after=0)  # Slack's tier limit, longer than the retries
    incident.react("alex", ts)
    incident.wait_status(ts, ApprovalStatus.EXECUTED)
    assert [len(incident.audit(a)) for a in ("approval.approved", "cleanup.finished")] == [1, 1]
    emulator.ws.wait_for(lambda: "🏁 Done" in str(emulator.ws.message(INCIDENT, ts)), 20, "the request redrawn")
    # the reaction's listener answered before it nudged the run: an error reply would be here by now
    assert not [e.text for e in emulator.ws.ephemerals_for(APPROVER) if "went wrong" in e.text]


def test_a_withdrawal_whose_thread_note_slack_refuses_is_recorded_and_never_answered_as_an_error(
        drill: Callable[..., Drill], emulator: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bot.domain.danger.gate")
    clock = FakeClock()
    incident = drill(clock=clock, start_delay_s=30)
    ts = incident.request()
    incident.react("alex", ts)
    incident.wait_status(ts, ApprovalStatus.APPROVED)
    emulator.outage("chat.postMessage", 600, 429, retry_after=0)  # the note in the thread cannot be posted
    incident.react("alex", ts, added=False)
    assert "is withdrawn" in incident.ephemeral(APPROVER, "withdrawn")  # told privately (chat.postEphemeral)


    def errors() -> list[str]:
        return [e.text for e in emulator.ws.ephemerals_for(APPROVER) if "went wrong" in e.text]

    # the withdrawal's last step: its note given up (logged), or (the bug) an error reply
    emulator.ws.wait_for(lambda: errors() or any("could not post a note about" in r.getMessage()
                                                 for r in list(caplog.records)), 20, "the note's outcome")
    assert errors() == []
    assert incident.approval(ts).status is ApprovalStatus.PENDING and len(incident.audit("approval.withdrawn")) == 1
