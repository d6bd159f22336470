"""The danger zone through the emulator: the two-person rule by reaction, drift, crash-resume and restore.

Tenant data is in mongomock, or in a real MongoDB when TEST_MONGODB_URI is set (the sandbox fixture).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from bot.clock import FakeClock, SystemClock
from bot.config import Settings
from bot.emulator import Delivery, Emulator
from bot.incident import ApprovalStatus
from bot.ops import tenants
from bot.runtime import SocketModeBot
from bot.sandbox import Sandbox
from tests.conftest import APPROVER, COMMANDER, DBA, INCIDENT, make_settings

FIELDS_QUERY = {"$or": [{f: {"$exists": True}} for f in ("step", "case_type", "patient_state")]}


def snapshot(sandbox: Sandbox) -> dict[str, dict[str, list[dict[str, Any]]]]:
    client = tenants.connect(sandbox.central_uri)
    try:
        return {db: {name: sorted(client[db][name].find({}), key=lambda d: str(d["_id"]))
                     for name in sorted(client[db].list_collection_names())} for db in sandbox.tenant_dbs}
    finally:
        tenants.close(client)


def with_fields(sandbox: Sandbox) -> dict[str, int]:
    client = tenants.connect(sandbox.central_uri)
    try:
        return {db: client[db].internshipcases.count_documents(FIELDS_QUERY) for db in sandbox.tenant_dbs}
    finally:
        tenants.close(client)


class Incident:
    """A started incident with a verified backup, driven through the emulator."""

    def __init__(self, emulator: Emulator, bot: SocketModeBot) -> None:
        self.emulator, self.bot = emulator, bot
        emulator.slash("casey", "incident-rollback", "start cleanup drill").wait()
        self.panel = emulator.ws.wait_for(lambda: [m for m in emulator.ws.channel_messages(INCIDENT)
                                                   if m.get("blocks")], 10, "the panel")[0]["ts"]

    def backup(self) -> None:
        self.emulator.slash("casey", "incident-rollback", "backup").wait()
        self.emulator.ws.wait_for(lambda: any("*Backup current state* — succeeded" in m["text"]
                                              for m in self.emulator.ws.thread(INCIDENT, self.panel)), 60, "backup")

    def requests(self) -> list[dict[str, Any]]:
        return [m for m in self.emulator.ws.channel_messages(INCIDENT)
                if m.get("blocks") and "DANGER ZONE" in str(m["blocks"][0])]

    def request(self, text: str = "cleanup", count: int = 1) -> str:
        self.emulator.slash("casey", "incident-rollback", text).wait()
        return str(self.emulator.ws.wait_for(lambda: len(self.requests()) >= count and self.requests()[-1], 30,
                                             "the approval request")["ts"])

    def approval(self, ts: str) -> Any:
        return self.bot.services.store.approval_for_message(ts)

    def wait_status(self, ts: str, status: ApprovalStatus, timeout: float = 30) -> Any:
        return self.emulator.ws.wait_for(
            lambda: (a := self.approval(ts)) is not None and a.status is status and a, timeout, f"status {status}")

    def ephemeral(self, user: str, contains: str) -> str:
        return self.emulator.ws.wait_for(lambda: next((e.text for e in self.emulator.ws.ephemerals_for(user)
                                                       if contains in e.text), None), 10, f"'{contains}' to {user}")

    def audit(self, action: str) -> list[Any]:
        return [e for e in self.bot.services.store.audit_events("RB-0001") if e.action == action]


@pytest.fixture
def drill(emulator: Emulator, sandbox: Sandbox, tmp_path: Any,
          start_bot: Callable[..., SocketModeBot]) -> Callable[..., Incident]:
    def make(backup: bool = True, clock: Any = None, access: dict[str, Any] | None = None, **cleanup: Any) -> Incident:
        settings = make_settings(emulator, sandbox, tmp_path / "data", cleanup={"start_delay_s": 0, **cleanup},
                                 **({"access": access} if access else {}))
        bot = start_bot(settings, clock=clock or SystemClock())
        incident = Incident(emulator, bot)
        if backup:
            incident.backup()
        return incident

    return make


def test_a_second_person_approves_and_the_cleanup_runs_on_every_tenant(
        drill: Callable[..., Incident], sandbox: Sandbox, emulator: Emulator) -> None:
    incident = drill()
    before = with_fields(sandbox)
    ts = incident.request()
    request = str(emulator.ws.message(INCIDENT, ts))
    assert f"{sum(before.values())} case(s) modified" in request and "18 document(s) deleted" in request
    assert "<!subteam^S0LEADS>" in request and "white_check_mark" in request and "15 minutes" in request
    assert all(count > 0 for count in with_fields(sandbox).values())  # the dry run changed nothing
    emulator.react("alex", "incident-rollback", ts, "white_check_mark").wait()
    done = incident.wait_status(ts, ApprovalStatus.EXECUTED)
    assert {db: o["modified"] for db, o in done.progress.items()} == before
    assert with_fields(sandbox) == {db: 0 for db in sandbox.tenant_dbs}
    after = snapshot(sandbox)
    assert all("internship_case_attempts" not in after[db] for db in sandbox.tenant_dbs)
    record = incident.bot.services.store.get_incident("RB-0001")
    assert record.database_state == "CLEANED" and record.data_loss.startswith("YES")  # type: ignore[union-attr]
    assert [len(incident.audit(a)) for a in ("approval.requested", "approval.approved", "cleanup.tenant",
                                             "cleanup.finished")] == [1, 1, 3, 1]
    assert incident.bot.services.store.verify_audit().ok
    emulator.ws.wait_for(lambda: "🏁 done" in str(emulator.ws.message(INCIDENT, ts)), 10, "the request updated")


def test_the_requester_cannot_approve_their_own_cleanup(drill: Callable[..., Incident], sandbox: Sandbox,
                                                        emulator: Emulator) -> None:
    incident = drill(access={"approvers": ["U0COMMANDER", "@backend-leads"]})  # even when they are an approver
    ts = incident.request()
    emulator.react("casey", "incident-rollback", ts, "white_check_mark").wait()
    assert "two-person rule" in incident.ephemeral(COMMANDER, "cannot approve")
    time.sleep(0.5)
    assert incident.approval(ts).status is ApprovalStatus.PENDING
    assert all(count > 0 for count in with_fields(sandbox).values())
    assert incident.audit("approval.refused")[0].data["reason"] == "requester"


def test_a_non_approver_is_refused_privately(drill: Callable[..., Incident], emulator: Emulator) -> None:
    incident = drill()
    ts = incident.request()
    emulator.react("blake", "incident-rollback", ts, "white_check_mark").wait()
    assert "Only the configured approvers" in incident.ephemeral("U0BYSTANDER", "Only the configured approvers")
    assert incident.approval(ts).status is ApprovalStatus.PENDING


def test_other_emoji_and_other_messages_are_ignored(drill: Callable[..., Incident], emulator: Emulator) -> None:
    incident = drill()
    ts = incident.request()
    emulator.react("alex", "incident-rollback", ts, "thumbsup").wait()
    emulator.react("alex", "incident-rollback", incident.panel, "white_check_mark").wait()
    time.sleep(0.5)
    assert incident.approval(ts).status is ApprovalStatus.PENDING and incident.approval(ts).approvers == []
    assert emulator.ws.ephemerals_for(APPROVER) == []


def test_an_expired_request_cannot_be_approved(drill: Callable[..., Incident], sandbox: Sandbox,
                                               emulator: Emulator) -> None:
    clock = FakeClock()
    incident = drill(clock=clock)
    ts = incident.request()
    clock.advance(minutes=16)
    emulator.react("alex", "incident-rollback", ts, "white_check_mark").wait()
    assert "expired" in incident.ephemeral(APPROVER, "expired")
    assert incident.approval(ts).status is ApprovalStatus.EXPIRED
    assert all(count > 0 for count in with_fields(sandbox).values())
    emulator.ws.wait_for(lambda: "⌛ expired" in str(emulator.ws.message(INCIDENT, ts)), 10, "the request updated")


def test_removing_the_reaction_before_the_run_starts_revokes_it(drill: Callable[..., Incident], sandbox: Sandbox,
                                                                emulator: Emulator) -> None:
    incident = drill(start_delay_s=3)
    ts = incident.request()
    emulator.react("alex", "incident-rollback", ts, "white_check_mark").wait()
    incident.wait_status(ts, ApprovalStatus.APPROVED, 5)
    emulator.react("alex", "incident-rollback", ts, "white_check_mark", added=False).wait()
    incident.wait_status(ts, ApprovalStatus.PENDING, 5)
    time.sleep(3.5)
    assert incident.approval(ts).status is ApprovalStatus.PENDING
    assert all(count > 0 for count in with_fields(sandbox).values())
    assert len(incident.audit("approval.revoked")) == 1 and incident.audit("danger.started") == []


def test_two_approvers_reacting_at_once_execute_it_once(drill: Callable[..., Incident], sandbox: Sandbox,
                                                        emulator: Emulator) -> None:
    incident = drill()
    before = with_fields(sandbox)
    ts = incident.request()
    deliveries = [emulator.react(user, "incident-rollback", ts, "white_check_mark", send=False)
                  for user in ("alex", "dana")]
    threads = [threading.Thread(target=lambda d=d: emulator.send(d).wait()) for d in deliveries]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = incident.wait_status(ts, ApprovalStatus.EXECUTED)
    time.sleep(0.5)
    assert len(incident.audit("danger.started")) == 1 and len(incident.audit("cleanup.tenant")) == 3
    assert {db: o["modified"] for db, o in done.progress.items()} == before


def test_a_redelivered_reaction_counts_once(drill: Callable[..., Incident], emulator: Emulator) -> None:
    incident = drill(approvals_required=2)
    ts = incident.request()
    first = emulator.react("alex", "incident-rollback", ts, "white_check_mark", send=False)
    emulator.send(first).wait()
    again = Delivery(id="retry-" + first.id, kind="events_api", payload=first.payload, user=first.user,
                     channel=first.channel, attempts=1)
    emulator.deliveries[again.id] = again
    emulator.send(again).wait()
    time.sleep(0.5)
    approval = incident.approval(ts)
    assert approval.approvers == [APPROVER] and approval.status is ApprovalStatus.PENDING
    emulator.react("dana", "incident-rollback", ts, "white_check_mark").wait()
    incident.wait_status(ts, ApprovalStatus.EXECUTED)
    assert len(incident.audit("danger.started")) == 1


def test_a_plan_that_grew_after_approval_needs_a_new_approval(drill: Callable[..., Incident], sandbox: Sandbox,
                                                               emulator: Emulator) -> None:
    incident = drill()
    ts = incident.request()
    client = tenants.connect(sandbox.central_uri)
    client[sandbox.tenant_dbs[0]].internshipcases.insert_one({"title": "late", "step": 3, "case_type": "x"})
    tenants.close(client)
    before = snapshot(sandbox)
    emulator.react("alex", "incident-rollback", ts, "white_check_mark").wait()
    void = incident.wait_status(ts, ApprovalStatus.VOID)
    assert "cases carry the fields" in void.note
    second = emulator.ws.wait_for(lambda: len(incident.requests()) == 2 and incident.requests()[-1], 20, "new request")
    assert "plan changed" in str(second["blocks"])
    assert snapshot(sandbox) == before  # nothing was touched
    emulator.react("alex", "incident-rollback", second["ts"], "white_check_mark").wait()
    incident.wait_status(str(second["ts"]), ApprovalStatus.EXECUTED)
    assert with_fields(sandbox) == {db: 0 for db in sandbox.tenant_dbs}


class SimulatedCrash(BaseException):
    """Stands for the process dying: not an Exception, so nothing records a tenant failure."""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_crash_mid_run_resumes_with_the_remaining_tenants_exactly_once(
        drill: Callable[..., Incident], sandbox: Sandbox, emulator: Emulator, settings: Settings,
        start_bot: Callable[..., SocketModeBot], monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from bot.ops import cleanup as cleanup_ops

    incident = drill()
    before = with_fields(sandbox)
    real = cleanup_ops.clean_tenant
    calls: list[str] = []

    def crash_after_one(client: Any, db: str, config: Any) -> Any:
        if calls:
            raise SimulatedCrash
        calls.append(db)
        return real(client, db, config)

    monkeypatch.setattr(cleanup_ops, "clean_tenant", crash_after_one)
    ts = incident.request()
    emulator.react("alex", "incident-rollback", ts, "white_check_mark").wait()
    running = emulator.ws.wait_for(lambda: (a := incident.approval(ts)) and len(a.progress) == 1 and a, 20, "1 done")
    assert running.status is ApprovalStatus.RUNNING
    incident.bot.close()
    monkeypatch.setattr(cleanup_ops, "clean_tenant", real)
    restarted = start_bot(make_settings(emulator, sandbox, tmp_path / "data", cleanup={"start_delay_s": 0}))
    incident.bot = restarted
    done = incident.wait_status(ts, ApprovalStatus.EXECUTED)
    assert {db: o["modified"] for db, o in done.progress.items()} == before  # no tenant cleaned twice
    assert len(incident.audit("cleanup.tenant")) == 3 and len(incident.audit("danger.resumed")) == 1
    assert with_fields(sandbox) == {db: 0 for db in sandbox.tenant_dbs}


def test_restore_brings_back_exactly_the_backed_up_documents(drill: Callable[..., Incident], sandbox: Sandbox,
                                                             emulator: Emulator) -> None:
    incident = drill()
    original = snapshot(sandbox)
    ts = incident.request()
    emulator.react("alex", "incident-rollback", ts, "white_check_mark").wait()
    incident.wait_status(ts, ApprovalStatus.EXECUTED)
    assert snapshot(sandbox) != original
    restore = incident.request("restore all", count=2)
    emulator.react("casey", "incident-rollback", restore, "white_check_mark").wait()  # still two-person
    assert "cannot approve" in incident.ephemeral(COMMANDER, "cannot approve")
    emulator.react("dana", "incident-rollback", restore, "white_check_mark").wait()
    done = incident.wait_status(restore, ApprovalStatus.EXECUTED)
    assert all(o["verified"] for o in done.progress.values())
    assert snapshot(sandbox) == original
    record = incident.bot.services.store.get_incident("RB-0001")
    assert record.database_state == "RESTORED from backup" and record.data_loss is None  # type: ignore[union-attr]
    assert DBA in done.approvers


def test_cleanup_is_refused_without_a_verified_backup(drill: Callable[..., Incident], emulator: Emulator) -> None:
    incident = drill(backup=False)
    emulator.slash("casey", "incident-rollback", "cleanup").wait()
    text = incident.ephemeral(COMMANDER, "no verified backup")
    assert "/rollback backup" in text
    assert incident.requests() == []


def test_an_approver_rejects_with_x_and_nothing_changes(drill: Callable[..., Incident], sandbox: Sandbox,
                                                        emulator: Emulator) -> None:
    incident = drill()
    before = snapshot(sandbox)
    ts = incident.request()
    emulator.react("dana", "incident-rollback", ts, "x").wait()
    rejected = incident.wait_status(ts, ApprovalStatus.REJECTED, 10)
    assert rejected.decided_by == DBA
    emulator.react("alex", "incident-rollback", ts, "white_check_mark").wait()  # too late: decided
    assert "already rejected" in incident.ephemeral(APPROVER, "already rejected")
    time.sleep(0.5)
    assert snapshot(sandbox) == before and incident.audit("danger.started") == []
    assert len(incident.audit("approval.rejected")) == 1
    emulator.ws.wait_for(lambda: "rejected" in str(emulator.ws.message(INCIDENT, ts)), 10, "the request updated")


def test_two_approvers_needed_when_configured(drill: Callable[..., Incident], sandbox: Sandbox,
                                              emulator: Emulator) -> None:
    incident = drill(approvals_required=2)
    ts = incident.request()
    emulator.react("alex", "incident-rollback", ts, "white_check_mark").wait()
    emulator.ws.wait_for(lambda: incident.approval(ts).approvers == [APPROVER], 10, "the first approval")
    time.sleep(0.5)
    assert incident.approval(ts).status is ApprovalStatus.PENDING  # one of two is not enough
    assert all(count > 0 for count in with_fields(sandbox).values())
    emulator.react("dana", "incident-rollback", ts, "white_check_mark").wait()
    done = incident.wait_status(ts, ApprovalStatus.EXECUTED)
    assert sorted(done.approvers) == sorted([APPROVER, DBA])
    assert with_fields(sandbox) == {db: 0 for db in sandbox.tenant_dbs}


def test_a_failing_tenant_is_reported_and_the_others_continue(
        drill: Callable[..., Incident], sandbox: Sandbox, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.ops import cleanup as cleanup_ops

    incident = drill()
    broken = sandbox.tenant_dbs[1]
    real = cleanup_ops.clean_tenant

    def refuse_one(client: Any, db: str, config: Any) -> Any:
        if db == broken:
            raise RuntimeError(f"not authorized on {db} to execute command {{ update: \"internshipcases\" }}")
        return real(client, db, config)

    monkeypatch.setattr(cleanup_ops, "clean_tenant", refuse_one)
    ts = incident.request()
    emulator.react("alex", "incident-rollback", ts, "white_check_mark").wait()
    done = emulator.ws.wait_for(lambda: (a := incident.approval(ts)) and a.finished_at and a, 30, "the run to end")
    assert done.progress[broken]["ok"] is False and "not authorized" in done.progress[broken]["error"]
    others = [db for db in sandbox.tenant_dbs if db != broken]
    assert all(done.progress[db]["ok"] for db in others)
    left = with_fields(sandbox)
    assert left[broken] > 0 and all(left[db] == 0 for db in others)
    summary = emulator.ws.wait_for(lambda: next((m["text"] for m in emulator.ws.thread(INCIDENT, incident.panel)
                                                 if broken in m["text"] and "not authorized" in m["text"]), None),
                                   10, "the failure in the thread")
    assert "failed" in summary.lower()
