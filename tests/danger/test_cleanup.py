"""The danger zone through the emulator: the two-person gate, its delayed start, drift, re-verified backups,
takeover, failures that are told, and restores from the exact backup run a cleanup relied on.

Tenant data lives on a real MongoDB-protocol server (the local nx-27017, or TEST_MONGODB_URI). Crashes of real
processes are in tests/faults; here one process plays every part, and time is the injected clock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import SocketModeBot
from bot.clock import SystemClock
from bot.dev.emulator import Delivery, Emulator
from bot.dev.fakeclock import FakeClock
from bot.dev.sandbox import Sandbox
from bot.domain.approvals import Approval, ApprovalStatus, TenantResult
from bot.ops import tenants
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


class Drill:
    """A started incident (with a verified backup unless told otherwise), driven through the emulator."""

    def __init__(self, emulator: Emulator, bot: SocketModeBot) -> None:
        self.emulator, self.bot = emulator, bot
        self.store = bot.services.store
        emulator.slash("casey", "incident-rollback", "start cleanup drill").wait()
        self.panel = emulator.ws.wait_for(lambda: [m for m in emulator.ws.channel_messages(INCIDENT)
                                                   if m.get("blocks")], 10, "the panel")[0]["ts"]

    def slash(self, text: str, user: str = "casey") -> None:
        self.emulator.slash(user, "incident-rollback", text).wait()

    def backup(self, again: bool = False) -> Path:
        done = len(self.finished("*Backup current state* — succeeded"))
        self.slash("backup --again" if again else "backup")
        self.emulator.ws.wait_for(lambda: len(self.finished("*Backup current state* — succeeded")) > done, 60,
                                  "the backup")
        return max((self.bot.services.settings.data_dir / "backups" / "RB-0001").glob("RB-0001-backup-*"),
                   key=lambda p: p.stat().st_mtime)

    def finished(self, text: str) -> list[str]:
        return [m["text"] for m in self.emulator.ws.thread(INCIDENT, self.panel) if text in m["text"]]

    def requests(self) -> list[dict[str, Any]]:
        return [m for m in self.emulator.ws.channel_messages(INCIDENT)
                if m.get("blocks") and "DANGER ZONE" in str(m["blocks"][0])]

    def request(self, text: str = "cleanup", count: int = 1) -> str:
        self.slash(text)
        return str(self.emulator.ws.wait_for(lambda: len(self.requests()) >= count and self.requests()[-1], 30,
                                             "the approval request")["ts"])

    def react(self, user: str, ts: str, emoji: str = "white_check_mark", added: bool = True) -> None:
        self.emulator.react(user, "incident-rollback", ts, emoji, added=added).wait()

    def approval(self, ts: str) -> Approval:
        """The request's record (it is stored with its message's ts a moment after the message appears)."""
        return self.emulator.ws.wait_for(lambda: self.store.approval_for_message(ts), 10, "the request's record")

    def results(self, ts: str) -> list[TenantResult]:
        return self.store.tenant_results(self.approval(ts).id)

    def wait_status(self, ts: str, status: ApprovalStatus, timeout: float = 30) -> Approval:
        return self.emulator.ws.wait_for(lambda: (a := self.store.approval_for_message(ts)) is not None
                                         and a.status is status and a, timeout, f"status {status}")

    def ephemeral(self, user: str, contains: str) -> str:
        return self.emulator.ws.wait_for(lambda: next((e.text for e in self.emulator.ws.ephemerals_for(user)
                                                       if contains in e.text), None), 10, f"'{contains}' to {user}")

    def thread_note(self, contains: str) -> str:
        return self.emulator.ws.wait_for(lambda: next((m["text"] for m in self.emulator.ws.thread(INCIDENT, self.panel)
                                                       if contains in m["text"]), None), 20, f"'{contains}' in thread")

    def audit(self, action: str) -> list[Any]:
        return [e for e in self.store.audit_events("RB-0001") if e.action == action]

    def sweep(self) -> None:
        """What the scheduler does every few seconds, right now (the test moves the clock, not the wall)."""
        self.bot.services.executor.sweep()


@pytest.fixture
def drill(emulator: Emulator, sandbox: Sandbox, tmp_path: Any,
          start_bot: Callable[..., SocketModeBot]) -> Callable[..., Drill]:
    def make(backup: bool = True, clock: Any = None, access: dict[str, Any] | None = None, **cleanup: Any) -> Drill:
        # The scheduled sweep runs only when nudged (an approval without delay); tests sweep themselves.
        settings = make_settings(emulator, sandbox, tmp_path / "data", cleanup={"start_delay_s": 0, **cleanup},
                                 store={"sweep_s": 600}, **({"access": access} if access else {}))
        bot = start_bot(settings, clock=clock or SystemClock())
        incident = Drill(emulator, bot)
        if backup:
            incident.backup()
        return incident

    return make


def test_a_second_person_approves_and_the_cleanup_runs_on_every_tenant(
        drill: Callable[..., Drill], sandbox: Sandbox, emulator: Emulator) -> None:
    incident = drill()
    before = with_fields(sandbox)
    ts = incident.request()
    request = str(emulator.ws.message(INCIDENT, ts))
    assert f"{sum(before.values())} case(s) modified" in request and "18 document(s) deleted" in request
    assert "<!subteam^S0LEADS>" in request and "white_check_mark" in request and "15 minutes" in request
    assert "re-verified on disk" in request and "RB-0001-backup-" in request
    assert all(count > 0 for count in with_fields(sandbox).values())  # the dry run changed nothing
    incident.react("alex", ts)
    incident.wait_status(ts, ApprovalStatus.EXECUTED)
    assert {r.db: r.modified for r in incident.results(ts)} == before
    assert with_fields(sandbox) == {db: 0 for db in sandbox.tenant_dbs}
    after = snapshot(sandbox)
    assert all("internship_case_attempts" not in after[db] for db in sandbox.tenant_dbs)
    record = incident.store.get_incident("RB-0001")
    assert record is not None and record.database.state.value == "CLEANED" and record.database.cases_cleaned == 13
    assert [len(incident.audit(a)) for a in ("approval.requested", "approval.approved", "cleanup.tenant",
                                             "cleanup.finished")] == [1, 1, 3, 1]
    assert incident.store.verify_audit().ok
    emulator.ws.wait_for(lambda: "🏁 Done" in str(emulator.ws.message(INCIDENT, ts)), 10, "the request updated")
    # both people of the two-person rule are named, in the outcome and on the timeline
    assert f"Requested by <@{COMMANDER}>, approved by <@{APPROVER}>" in incident.thread_note("Requested by")
    emulator.ws.wait_for(lambda: any(e.text.endswith(f"(requested by {COMMANDER}, approved by {APPROVER})")
                                     for e in incident.store.get_incident("RB-0001").timeline), 10,  # type: ignore[union-attr]
                         "the timeline entry")


def test_the_requester_cannot_approve_their_own_cleanup(drill: Callable[..., Drill], sandbox: Sandbox,
                                                        emulator: Emulator) -> None:
    incident = drill(access={"approvers": ["U0COMMANDER", "@backend-leads"]})  # even when they are an approver
    ts = incident.request()
    incident.react("casey", ts)
    assert "two-person rule" in incident.ephemeral(COMMANDER, "cannot approve")
    approval = incident.approval(ts)
    assert approval.status is ApprovalStatus.PENDING and approval.approvers == []
    assert [r.user for r in approval.refused] == [COMMANDER]
    assert all(count > 0 for count in with_fields(sandbox).values())
    assert incident.audit("approval.refused")[0].data["reason"] == "requester"
    # the ✅ pill reads 1, so the request says plainly that it does not count, and why
    emulator.ws.wait_for(lambda: "Waiting for approval (0 of 1 counted; 1 reaction(s) on this message do not count"
                         in str(emulator.ws.message(INCIDENT, ts)), 10, "the request to say what counts")
    assert "asked for it, so cannot approve it (two-person rule)" in str(emulator.ws.message(INCIDENT, ts))


def test_a_non_approver_is_refused_privately(drill: Callable[..., Drill], emulator: Emulator) -> None:
    incident = drill()
    ts = incident.request()
    incident.react("blake", ts)
    assert "Only the configured approvers" in incident.ephemeral("U0BYSTANDER", "Only the configured approvers")
    assert incident.approval(ts).status is ApprovalStatus.PENDING
    emulator.ws.wait_for(lambda: "is not an approver" in str(emulator.ws.message(INCIDENT, ts)), 10,
                         "the refusal shown on the request")


def test_an_expired_request_cannot_be_approved(drill: Callable[..., Drill], sandbox: Sandbox,
                                               emulator: Emulator) -> None:
    clock = FakeClock()
    incident = drill(clock=clock)
    ts = incident.request()
    clock.advance(minutes=16)
    incident.react("alex", ts)
    assert "expired" in incident.ephemeral(APPROVER, "expired")
    assert incident.approval(ts).status is ApprovalStatus.EXPIRED
    assert all(count > 0 for count in with_fields(sandbox).values())
    emulator.ws.wait_for(lambda: "Expired" in str(emulator.ws.message(INCIDENT, ts)), 10, "the request updated")


def test_withdrawing_cancels_the_delayed_start_and_a_new_approval_waits_the_full_delay(
        drill: Callable[..., Drill], sandbox: Sandbox) -> None:
    clock = FakeClock()
    incident = drill(clock=clock, start_delay_s=30)
    ts = incident.request()
    incident.react("alex", ts)
    first = incident.wait_status(ts, ApprovalStatus.APPROVED)
    assert first.starts_at == clock.now() + timedelta(seconds=30)
    incident.react("alex", ts, added=False)  # withdrawn before the start
    incident.wait_status(ts, ApprovalStatus.PENDING)
    assert "Your approval of the cleanup request" in incident.ephemeral(APPROVER, "withdrawn")  # told privately
    assert incident.approval(ts).starts_at is None and len(incident.audit("approval.withdrawn")) == 1
    shown = incident.emulator.ws.wait_for(lambda: "*Withdrawn:* <@U0APPROVER1>" in str(
        incident.emulator.ws.message(INCIDENT, ts)), 10, "the withdrawal on the request")
    assert shown
    clock.advance(seconds=3)
    incident.react("dana", ts)  # a second approver, 3 s later
    second = incident.wait_status(ts, ApprovalStatus.APPROVED)
    assert second.starts_at == clock.now() + timedelta(seconds=30)  # a fresh full delay
    clock.advance(seconds=28)  # the first approval's due time has passed; the second's has not
    incident.sweep()
    assert incident.approval(ts).status is ApprovalStatus.APPROVED and incident.audit("danger.started") == []
    assert all(count > 0 for count in with_fields(sandbox).values())
    clock.advance(seconds=3)
    incident.sweep()
    incident.wait_status(ts, ApprovalStatus.EXECUTED)
    assert len(incident.audit("danger.started")) == 1


def test_a_lookalike_emoji_or_a_check_on_another_message_gets_a_hint_and_counts_nothing(
        drill: Callable[..., Drill], emulator: Emulator) -> None:
    incident = drill()
    ts = incident.request()
    incident.react("alex", ts, "+1::skin-tone-3")
    assert ":white_check_mark: on it" in incident.ephemeral(APPROVER, "does not count")
    incident.react("alex", ts, "heavy_check_mark")
    incident.react("alex", incident.panel, "white_check_mark")  # on the control panel, not on the request
    hint = incident.ephemeral(APPROVER, "another message")
    assert "the DANGER ZONE request" in hint and "/archives/" in hint  # with a link to it
    approval = incident.approval(ts)
    assert approval.status is ApprovalStatus.PENDING and approval.approvers == []
    incident.react("blake", ts, "eyes")  # any other emoji is left alone
    incident.react("alex", ts)  # the real one still works
    incident.wait_status(ts, ApprovalStatus.APPROVED)
    assert len([e for e in emulator.ws.ephemerals_for(APPROVER) if "does not count. To approve" in e.text]) == 2


def test_an_approval_after_the_incident_closed_runs_nothing(drill: Callable[..., Drill], sandbox: Sandbox,
                                                            emulator: Emulator) -> None:
    incident = drill()
    before = snapshot(sandbox)
    ts = incident.request()
    incident.slash("close --force drill over")
    emulator.ws.wait_for(lambda: (i := incident.store.get_incident("RB-0001")) and not i.active, 30, "the close")
    void = incident.wait_status(ts, ApprovalStatus.VOID)
    assert "closed" in void.note
    incident.react("alex", ts)
    assert "already void" in incident.ephemeral(APPROVER, "already void")
    incident.sweep()
    assert snapshot(sandbox) == before and incident.audit("danger.started") == []


def test_two_approvers_reacting_at_once_execute_it_once(drill: Callable[..., Drill], sandbox: Sandbox,
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
    incident.wait_status(ts, ApprovalStatus.EXECUTED)
    incident.sweep()  # a late sweep finds nothing to start
    assert len(incident.audit("danger.started")) == 1 and len(incident.audit("cleanup.tenant")) == 3
    assert {r.db: r.modified for r in incident.results(ts)} == before


def test_a_redelivered_reaction_counts_once(drill: Callable[..., Drill], emulator: Emulator) -> None:
    incident = drill(approvals_required=2)
    ts = incident.request()
    first = emulator.react("alex", "incident-rollback", ts, "white_check_mark", send=False)
    emulator.send(first).wait()
    again = Delivery(id="retry-" + first.id, kind="events_api", payload=first.payload, user=first.user,
                     channel=first.channel, attempts=1)
    emulator.deliveries[again.id] = again
    emulator.send(again).wait()
    emulator.ws.wait_for(lambda: incident.approval(ts).approvers == [APPROVER], 10, "the first approval")
    incident.react("dana", ts)
    incident.wait_status(ts, ApprovalStatus.EXECUTED)
    assert len(incident.audit("approval.approved")) == 2 and len(incident.audit("danger.started")) == 1


def test_a_plan_that_grew_after_approval_needs_a_new_approval(drill: Callable[..., Drill], sandbox: Sandbox,
                                                               emulator: Emulator) -> None:
    incident = drill()
    ts = incident.request()
    client = tenants.connect(sandbox.central_uri)
    client[sandbox.tenant_dbs[0]].internshipcases.insert_one({"title": "late", "step": 3, "case_type": "x"})
    tenants.close(client)
    before = snapshot(sandbox)
    incident.react("alex", ts)
    void = incident.wait_status(ts, ApprovalStatus.VOID)
    assert "cases carry the fields" in void.note
    second = emulator.ws.wait_for(lambda: len(incident.requests()) == 2 and incident.requests()[-1], 20, "new request")
    assert "plan changed" in str(second["blocks"])
    assert snapshot(sandbox) == before  # nothing was touched
    incident.react("alex", str(second["ts"]))
    incident.wait_status(str(second["ts"]), ApprovalStatus.EXECUTED)
    assert with_fields(sandbox) == {db: 0 for db in sandbox.tenant_dbs}


def test_a_void_whose_new_request_cannot_be_made_says_why_in_the_thread_and_to_the_requester(
        drill: Callable[..., Drill], sandbox: Sandbox, emulator: Emulator) -> None:
    incident = drill()
    ts = incident.request()
    client = tenants.connect(sandbox.central_uri)  # a new tenant appears: the backup does not cover it
    central = client[tenants.default_database(sandbox.central_uri)]
    new_db = sandbox.tenant_dbs[0].rsplit("_", 1)[0] + "_delta"
    central.schools.insert_one({"name": "Delta College", "db_name": new_db, "deleted_at": None})
    client[new_db].internshipcases.insert_one({"title": "new", "step": 1})
    tenants.close(client)
    incident.react("alex", ts)
    incident.wait_status(ts, ApprovalStatus.VOID)
    note = incident.thread_note("No new cleanup request could be made")
    assert new_db in note and "backup --again" in note
    assert new_db in incident.ephemeral(COMMANDER, "a new request could not be made")
    assert len(incident.requests()) == 1
    client = tenants.connect(sandbox.central_uri)
    client.drop_database(new_db)
    tenants.close(client)


def test_a_backup_damaged_on_disk_is_never_relied_on(drill: Callable[..., Drill], sandbox: Sandbox) -> None:
    incident = drill()
    run = next((incident.bot.services.settings.data_dir / "backups" / "RB-0001").glob("RB-0001-backup-*"))
    attempts = run / sandbox.tenant_dbs[1] / "internship_case_attempts.bson"
    data = bytearray(attempts.read_bytes())
    data[-2] ^= 0xFF  # one flipped byte: same size, different content
    attempts.write_bytes(bytes(data))
    incident.slash("cleanup")
    refusal = incident.ephemeral(COMMANDER, "cannot be relied on")
    assert "internship_case_attempts.bson differs from the manifest" in refusal and "backup --again" in refusal
    assert incident.requests() == []


def test_a_backup_changed_during_the_delay_fails_the_run_before_anything_is_touched(
        drill: Callable[..., Drill], sandbox: Sandbox) -> None:
    clock = FakeClock()
    incident = drill(clock=clock, start_delay_s=10)
    before = snapshot(sandbox)
    ts = incident.request()
    incident.react("alex", ts)
    incident.wait_status(ts, ApprovalStatus.APPROVED)
    run = next((incident.bot.services.settings.data_dir / "backups" / "RB-0001").glob("RB-0001-backup-*"))
    (run / sandbox.tenant_dbs[0] / "internshipcases.bson").unlink()
    clock.advance(seconds=11)
    incident.sweep()
    failed = incident.wait_status(ts, ApprovalStatus.FAILED)
    assert "internshipcases.bson is missing" in (failed.failure or "")
    assert snapshot(sandbox) == before
    assert "nothing more was done" in incident.thread_note("❌ The cleanup failed")
    assert "cleanup failed" in incident.ephemeral(COMMANDER, "cleanup failed")
    assert incident.store.get_incident("RB-0001").busy is None  # type: ignore[union-attr]


def test_an_error_while_planning_the_run_marks_it_failed_and_is_told(
        drill: Callable[..., Drill], sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    incident = drill()
    before = snapshot(sandbox)
    ts = incident.request()

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("the tenant databases did not answer")

    monkeypatch.setattr(incident.bot.services.planner, "drift", broken)
    incident.react("alex", ts)
    failed = incident.wait_status(ts, ApprovalStatus.FAILED)
    assert "did not answer" in (failed.failure or "")
    assert "correlation id" in incident.thread_note("❌ The cleanup failed")
    incident.ephemeral(COMMANDER, "did not answer")
    assert snapshot(sandbox) == before and len(incident.audit("approval.failed")) == 1


def test_a_cleanup_request_is_refused_while_a_live_replicas_step_holds_the_incident(
        drill: Callable[..., Drill]) -> None:
    from bot.domain.incident import Busy, BusyKind
    from bot.domain.ownership import Owner

    incident = drill()
    store, clock = incident.store, incident.bot.services.clock
    other = Owner(replica="replica-b", instance="b-1", host="elsewhere", pid=7, started_at=clock.now())
    store.set_lease("replica:replica-b", "b-1", clock.now(), 300)  # replica-b is alive and renewing

    def held(fresh: Any) -> None:
        fresh.busy = Busy(kind=BusyKind.STEP, ref="RB-0001-backup-elsewhere", name="backup", actor=COMMANDER,
                          owner=other, since=clock.now())

    incident.bot.services.desk.mutate("RB-0001", held)
    incident.slash("cleanup")
    assert "`backup` (a step) is still running" in incident.ephemeral(COMMANDER, "still running")
    assert incident.requests() == []


def test_a_run_whose_owner_died_is_taken_over_and_never_repeats_a_tenant(
        drill: Callable[..., Drill], sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.ops import cleanup as cleanup_ops

    incident = drill()
    before = with_fields(sandbox)
    executor = incident.bot.services.executor
    real = cleanup_ops.clean_tenant
    calls: list[str] = []
    stop = threading.Event()

    def one_then_stop(client: Any, db: str, *args: Any) -> Any:
        result = real(client, db, *args)
        calls.append(db)
        if len(calls) == 1:
            executor._stop.set()  # this process stops at the next tenant boundary, as on shutdown
            stop.set()
        return result

    monkeypatch.setattr(cleanup_ops, "clean_tenant", one_then_stop)
    ts = incident.request()
    incident.react("alex", ts)
    assert stop.wait(30)
    incident.emulator.ws.wait_for(lambda: len(incident.results(ts)) == 1, 10, "the first tenant recorded")
    approval = incident.wait_status(ts, ApprovalStatus.RUNNING)
    incident.emulator.ws.wait_for(lambda: not incident.bot.services.deps.replica.is_running_here(approval.id), 10,
                                  "this process to stop running it")
    # the owning process is gone: its replica's lease has run out (another host)
    from bot.domain.ownership import Owner

    gone = Owner(replica="replica-gone", instance="gone-1", host="elsewhere", pid=9, started_at=approval.started_at)
    incident.store.save_approval(incident.approval(ts).model_copy(update={"owner": gone}))
    executor._stop.clear()
    incident.sweep()
    done = incident.wait_status(ts, ApprovalStatus.EXECUTED)
    assert done.owner == incident.bot.services.deps.replica.owner
    assert sorted(calls) == sorted(sandbox.tenant_dbs)  # each tenant cleaned exactly once
    assert {r.db: r.modified for r in incident.results(ts)} == before
    assert len(incident.audit("danger.resumed")) == 1 and len(incident.audit("cleanup.tenant")) == 3
    assert "not repeated" in incident.thread_note("Resuming the cleanup")


def test_restore_brings_back_exactly_what_the_cleanups_backup_holds_even_after_backup_again(
        drill: Callable[..., Drill], sandbox: Sandbox) -> None:
    incident = drill()
    original = snapshot(sandbox)
    first_run = next((incident.bot.services.settings.data_dir / "backups" / "RB-0001").glob("RB-0001-backup-*"))
    ts = incident.request()
    incident.react("alex", ts)
    incident.wait_status(ts, ApprovalStatus.EXECUTED)
    assert snapshot(sandbox) != original
    second_run = incident.backup(again=True)  # a backup of the cleaned data: it must not replace the first
    assert second_run != first_run and (first_run / "manifest.json").exists()
    restore = incident.request("restore all", count=2)
    request = str(incident.emulator.ws.message(INCIDENT, restore))
    assert first_run.name in request and second_run.name not in request
    incident.react("casey", restore)  # still two-person
    assert "cannot approve" in incident.ephemeral(COMMANDER, "cannot approve")
    incident.react("dana", restore)
    incident.wait_status(restore, ApprovalStatus.EXECUTED)
    assert all(r.verified for r in incident.results(restore))
    assert snapshot(sandbox) == original
    record = incident.store.get_incident("RB-0001")
    assert record is not None and record.database.state.value == "RESTORED" and record.database.lost == []
    assert DBA in incident.approval(restore).approvers


def test_cleanup_is_refused_without_a_verified_backup(drill: Callable[..., Drill]) -> None:
    incident = drill(backup=False)
    incident.slash("cleanup")
    assert "/rollback backup" in incident.ephemeral(COMMANDER, "no verified backup")
    assert incident.requests() == []


def test_an_approver_rejects_with_x_and_nothing_changes(drill: Callable[..., Drill], sandbox: Sandbox,
                                                        emulator: Emulator) -> None:
    incident = drill()
    before = snapshot(sandbox)
    ts = incident.request()
    incident.react("dana", ts, "x")
    rejected = incident.wait_status(ts, ApprovalStatus.REJECTED, 10)
    assert rejected.decided_by == DBA
    incident.react("alex", ts)  # too late: decided
    assert "already rejected" in incident.ephemeral(APPROVER, "already rejected")
    incident.sweep()
    assert snapshot(sandbox) == before and incident.audit("danger.started") == []
    assert len(incident.audit("approval.rejected")) == 1
    emulator.ws.wait_for(lambda: "Rejected" in str(emulator.ws.message(INCIDENT, ts)), 10, "the request updated")


def test_two_approvers_needed_when_configured(drill: Callable[..., Drill], sandbox: Sandbox) -> None:
    incident = drill(approvals_required=2)
    ts = incident.request()
    incident.react("alex", ts)
    incident.emulator.ws.wait_for(lambda: incident.approval(ts).approvers == [APPROVER], 10, "the first approval")
    incident.sweep()
    assert incident.approval(ts).status is ApprovalStatus.PENDING  # one of two is not enough
    assert all(count > 0 for count in with_fields(sandbox).values())
    incident.react("dana", ts)
    done = incident.wait_status(ts, ApprovalStatus.EXECUTED)
    assert sorted(done.approvers) == sorted([APPROVER, DBA])
    assert with_fields(sandbox) == {db: 0 for db in sandbox.tenant_dbs}


def test_a_failing_tenant_is_reported_and_the_others_continue(
        drill: Callable[..., Drill], sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.ops import cleanup as cleanup_ops

    incident = drill()
    broken = sandbox.tenant_dbs[1]
    real = cleanup_ops.clean_tenant

    def refuse_one(client: Any, db: str, *args: Any) -> Any:
        if db == broken:
            raise RuntimeError(f"not authorized on {db} to execute command {{ update: \"internshipcases\" }}")
        return real(client, db, *args)

    monkeypatch.setattr(cleanup_ops, "clean_tenant", refuse_one)
    ts = incident.request()
    incident.react("alex", ts)
    incident.wait_status(ts, ApprovalStatus.EXECUTED)
    results = {r.db: r for r in incident.results(ts)}
    assert results[broken].ok is False and "not authorized" in (results[broken].error or "")
    assert all(results[db].ok for db in sandbox.tenant_dbs if db != broken)
    left = with_fields(sandbox)
    assert left[broken] > 0 and all(left[db] == 0 for db in sandbox.tenant_dbs if db != broken)
    summary = incident.thread_note("not authorized")
    assert "failed" in summary.lower()


def test_a_run_shorter_than_the_progress_interval_shows_its_progress_at_the_start_and_the_end_only(
        drill: Callable[..., Drill], emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.domain.danger import executor, notices

    # Slack allows about one edit a second per message: a run draws its progress and its request at most once
    # per PROGRESS_EVERY_S, besides its start and how it ended. Here the interval outlasts the run. (Counted
    # where the run hands them over: the worker delivering them may merge drawings that queue up.)
    monkeypatch.setattr(executor, "PROGRESS_EVERY_S", 3600.0)
    sent: list[str] = []
    real = notices.Notices.send

    def send(self: notices.Notices, key: str, deliver: Any) -> None:
        sent.append(key)
        real(self, key, deliver)

    monkeypatch.setattr(notices.Notices, "send", send)
    incident = drill()
    ts = incident.request()
    incident.react("alex", ts)
    incident.wait_status(ts, ApprovalStatus.EXECUTED)
    emulator.ws.wait_for(lambda: [m for m in emulator.ws.thread(INCIDENT, incident.panel)
                                  if m["text"] == "🏁 *cleanup* — 3/3 tenants done"], 10, "the progress done")
    assert (sent.count("progress"), sent.count("request")) == (2, 2)


def test_the_run_rechecks_every_tenant_with_one_count_per_operation_before_changing_any(
        drill: Callable[..., Drill], sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.ops import cleanup as cleanup_ops

    incident = drill()
    ts = incident.request()
    calls: list[tuple[str, str]] = []

    def logging(name: str) -> Callable[..., Any]:
        real = getattr(cleanup_ops, name)

        def logged(client: Any, db: str, *args: Any) -> Any:
            calls.append((name, db))
            return real(client, db, *args)

        return logged

    for name in ("dry_run", "recount", "clean_tenant"):
        monkeypatch.setattr(cleanup_ops, name, logging(name))
    incident.react("alex", ts)
    incident.wait_status(ts, ApprovalStatus.EXECUTED)
    # Plan once (the request's dry run), re-check cheaply: no second dry run, every tenant re-counted before the
    # first one changes.
    assert sorted(calls[:3]) == [("recount", db) for db in sorted(sandbox.tenant_dbs)]
    assert sorted(calls[3:]) == [("clean_tenant", db) for db in sorted(sandbox.tenant_dbs)]


def test_documents_added_to_a_collection_to_drop_after_approval_void_it(
        drill: Callable[..., Drill], sandbox: Sandbox, emulator: Emulator) -> None:
    incident = drill()
    ts = incident.request()
    client = tenants.connect(sandbox.central_uri)
    client[sandbox.tenant_dbs[1]].internship_case_attempts.insert_one({"case": "late", "attempt": 9})
    tenants.close(client)
    before = snapshot(sandbox)
    incident.react("alex", ts)
    void = incident.wait_status(ts, ApprovalStatus.VOID)
    assert f"{sandbox.tenant_dbs[1]}.internship_case_attempts:" in void.note and "approved" in void.note
    assert snapshot(sandbox) == before  # nothing was touched
    emulator.ws.wait_for(lambda: len(incident.requests()) == 2, 20, "the new request")


def test_cleaning_a_tenant_drops_an_empty_collection_and_reports_an_absent_one_as_absent(sandbox: Sandbox) -> None:
    from bot.config import CleanupConfig
    from bot.ops import cleanup as cleanup_ops

    config = CleanupConfig(drop_collections=["internship_case_attempts", "never_there"])
    db_name = sandbox.tenant_dbs[0].rsplit("_", 1)[0] + "_empty"
    client = tenants.connect(sandbox.central_uri)
    try:
        client[db_name].internshipcases.insert_many([{"step": 1}, {"title": "plain"}])
        client[db_name].create_collection("internship_case_attempts")
        assert cleanup_ops.recount(client, db_name, config) == cleanup_ops.Recount(
            1, {"internship_case_attempts": 0, "never_there": None})
        cleaned = cleanup_ops.clean_tenant(client, db_name, config)
        assert cleaned.modified == 1 and cleaned.dropped == {"internship_case_attempts": 0, "never_there": None}
        assert "internship_case_attempts" not in client[db_name].list_collection_names()
    finally:
        client.drop_database(db_name)
        tenants.close(client)


def test_a_collection_the_plan_saw_holding_documents_is_counted_and_dropped_without_listing_first(
        sandbox: Sandbox) -> None:
    from pymongo import MongoClient, monitoring

    from bot.config import CleanupConfig
    from bot.ops import cleanup as cleanup_ops

    class Commands(monitoring.CommandListener):
        def __init__(self) -> None:
            self.names: list[str] = []

        def started(self, event: monitoring.CommandStartedEvent) -> None:
            self.names.append(event.command_name)

        def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
            pass

        def failed(self, event: monitoring.CommandFailedEvent) -> None:
            pass

    config = CleanupConfig(drop_collections=["internship_case_attempts", "never_there"])
    db_name = sandbox.tenant_dbs[0].rsplit("_", 1)[0] + "_holding"
    seen = Commands()
    client: MongoClient[dict[str, Any]] = MongoClient(sandbox.central_uri, event_listeners=[seen])
    try:
        client[db_name].internshipcases.insert_many([{"step": 1}, {"title": "plain"}])
        client[db_name].internship_case_attempts.insert_many([{"attempt": n} for n in range(3)])
        seen.names.clear()
        assert cleanup_ops.recount(client, db_name, CleanupConfig()) == \
            cleanup_ops.Recount(1, {"internship_case_attempts": 3})
        # one aggregation counts every planned operation; the read-only re-check lists before it counts a collection
        assert seen.names == ["listCollections", "aggregate"]
        seen.names.clear()
        cleaned = cleanup_ops.clean_tenant(client, db_name, config, ["internship_case_attempts"])
        assert cleaned.dropped == {"internship_case_attempts": 3, "never_there": None}
        # the one the plan saw absent is listed before anything counts it (counting could create it)
        assert seen.names == ["update", "aggregate", "listCollections", "drop"]
        assert "internship_case_attempts" not in client[db_name].list_collection_names()
    finally:
        client.drop_database(db_name)
        client.close()


def test_the_dry_run_and_the_re_check_count_every_case_of_a_tenant_larger_than_a_cursor_batch(
        sandbox: Sandbox) -> None:
    """Found by the tenant-data benchmark: a `$facet` followed by a `$unionWith` is computed batch by batch on
    nx-27017, so a plan counted 50 of 5,000 cases; the sandbox's tenants (a few cases each) never showed it."""
    from bot.config import CleanupConfig
    from bot.ops import cleanup as cleanup_ops

    config = CleanupConfig(drop_collections=["internship_case_attempts", "never_there"])
    db_name = sandbox.tenant_dbs[0].rsplit("_", 1)[0] + "_large"
    client = tenants.connect(sandbox.central_uri)
    try:
        client[db_name].internshipcases.insert_many(
            [{"step": n, "title": str(n)} if n % 3 == 0 else {"title": str(n)} for n in range(1000)])
        client[db_name].internship_case_attempts.insert_many([{"attempt": n} for n in range(250)])
        counts = cleanup_ops.dry_run(client, db_name, config)
        assert (counts.cases, counts.fields["step"], counts.collections) == (
            334, 334, {"internship_case_attempts": 250, "never_there": None})
        assert cleanup_ops.recount(client, db_name, config) == cleanup_ops.Recount(
            334, {"internship_case_attempts": 250, "never_there": None})
    finally:
        client.drop_database(db_name)
        tenants.close(client)


def test_the_re_check_reads_no_count_as_no_cases_beside_a_collection_that_holds_documents(sandbox: Sandbox) -> None:
    """MongoDB's $count sends no document when it counted none (nx-27017 sends {n: 0}): the cases' count must not
    be taken from the collection's row."""
    from bot.config import CleanupConfig
    from bot.ops import cleanup as cleanup_ops

    config = CleanupConfig(drop_collections=["internship_case_attempts"])
    db_name = sandbox.tenant_dbs[0].rsplit("_", 1)[0] + "_none_carrying"
    client = tenants.connect(sandbox.central_uri)
    try:
        client[db_name].internshipcases.insert_many([{"title": "plain"}, {"title": "also plain"}])
        client[db_name].internship_case_attempts.insert_many([{"attempt": n} for n in range(3)])
        assert cleanup_ops.recount(client, db_name, config) == cleanup_ops.Recount(0, {"internship_case_attempts": 3})
    finally:
        client.drop_database(db_name)
        tenants.close(client)


class _Answering:
    """A tenant database whose server answers the re-check's aggregation with ``rows``."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def list_collection_names(self) -> list[str]:
        return ["internshipcases", "internship_case_attempts"]

    def __getitem__(self, name: str) -> _Answering:
        return self

    def aggregate(self, pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self.rows


@pytest.mark.parametrize("rows", [
    pytest.param([{"n": 3}, {"n": 2}, {"n": 4, "rollback_bot_collection": "internship_case_attempts"}],
                 id="partial counts, as nx-27017 gives after a $facet"),
    pytest.param([{"n": 1, "rollback_bot_collection": "internship_case_attempts"},
                  {"n": 2, "rollback_bot_collection": "internship_case_attempts"}], id="a collection counted twice"),
    pytest.param([{"_id": 1, "step": 2}, {"_id": 2, "title": "x"}], id="a server that ignored the sub-pipelines"),
])
def test_a_re_check_answer_that_is_not_one_count_each_refuses_rather_than_reads_a_number(
        rows: list[dict[str, Any]]) -> None:
    from bot.config import CleanupConfig
    from bot.ops import cleanup as cleanup_ops

    config = CleanupConfig(drop_collections=["internship_case_attempts"])
    with pytest.raises(RuntimeError, match="row\\(s\\) where at most 2 count"):
        cleanup_ops.recount({"tenant_a": _Answering(rows)}, "tenant_a", config)
