"""One contract, every backend: SQLite, mongomock, and a real MongoDB when TEST_MONGODB_URI is set."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from bot.audit import AuditEvent, ChainReport
from bot.domain.approvals import Approval
from bot.domain.incident import Incident, IncidentState, Milestone
from bot.domain.lifecycle import Event
from bot.domain.runs import StepRun, StepStatus
from bot.errors import StaleState
from bot.store import ActiveIncidentExists, Store

NOW = datetime(2026, 2, 7, 3, 0, tzinfo=UTC)


def incident(number: int = 1, channel: str = "C1", target: str = "/opt/app") -> Incident:
    inc = Incident(id=f"RB-{number:04d}", number=number, channel=channel, target=target, commander="U1",
                   reason="health 500", created_at=NOW)
    inc.reach(Milestone.ROLLBACK_STARTED, NOW, "U1")
    return inc


def keys(inc: Incident) -> list[str]:
    return [f"channel:{inc.channel}", f"target:{inc.target}"]


def test_an_incident_survives_reopening_the_store(store_factory: Callable[[], Store]) -> None:
    first = store_factory()
    first.create_incident(incident(), keys(incident()))
    again = store_factory()
    loaded = again.get_incident("RB-0001")
    assert loaded is not None
    assert loaded.milestones[Milestone.ROLLBACK_STARTED] == NOW
    assert again.active_incident("channel:C1") == loaded


def test_one_active_incident_per_channel_and_per_target(store: Store) -> None:
    store.create_incident(incident(1), keys(incident(1)))
    with pytest.raises(ActiveIncidentExists) as same_channel:
        store.create_incident(incident(2, target="/other"), keys(incident(2, target="/other")))
    assert same_channel.value.incident_id == "RB-0001"
    with pytest.raises(ActiveIncidentExists):
        store.create_incident(incident(3, channel="C2"), keys(incident(3, channel="C2")))
    # the refused ones left nothing behind: a different channel and target still works
    store.create_incident(incident(4, channel="C9", target="/x"), keys(incident(4, channel="C9", target="/x")))
    assert store.get_incident("RB-0002") is None
    assert store.active_incident("target:/other") is None


def test_closing_frees_the_channel_for_a_new_incident(store: Store) -> None:
    store.create_incident(incident(1), keys(incident(1)))
    loaded = store.get_incident("RB-0001")
    assert loaded is not None
    loaded.state = IncidentState.CLOSED
    store.save_incident(loaded)
    store.create_incident(incident(2), keys(incident(2)))
    assert store.active_incident("channel:C1").id == "RB-0002"  # type: ignore[union-attr]


def test_closed_incidents_are_listed_oldest_first_and_only_closed_ones(store_factory: Callable[[], Store]) -> None:
    store = store_factory()
    for number, channel in ((1, "C1"), (2, "C2"), (3, "C3")):
        store.create_incident(incident(number, channel, f"/t{number}"), keys(incident(number, channel, f"/t{number}")))
    for incident_id in ("RB-0003", "RB-0001"):
        loaded = store.get_incident(incident_id)
        assert loaded is not None
        loaded.advance(Event.CLOSED, NOW, "U1")
        store.save_incident(loaded)
    assert [i.id for i in store_factory().closed_incidents()] == ["RB-0001", "RB-0003"]  # RB-0002 is active


def test_a_write_from_a_stale_version_loses(store: Store) -> None:
    store.create_incident(incident(), keys(incident()))
    a = store.get_incident("RB-0001")
    b = store.get_incident("RB-0001")
    assert a is not None and b is not None
    a.reason = "first writer"
    store.save_incident(a)
    b.reason = "second writer"
    with pytest.raises(StaleState):
        store.save_incident(b)
    assert store.get_incident("RB-0001").reason == "first writer"  # type: ignore[union-attr]


def test_two_replicas_racing_one_transition_have_exactly_one_winner(store_factory: Callable[[], Store]) -> None:
    first, second = store_factory(), store_factory()
    first.create_incident(incident(), keys(incident()))
    wins: list[str] = []
    barrier = threading.Barrier(2)

    def race(replica: Store, name: str) -> None:
        inc = replica.get_incident("RB-0001")
        assert inc is not None
        barrier.wait()
        inc.reason = name
        try:
            replica.save_incident(inc)
            wins.append(name)
        except StaleState:
            pass

    threads = [threading.Thread(target=race, args=(s, n)) for s, n in ((first, "a"), (second, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1


def test_counters_hand_out_each_number_once_under_concurrency(store: Store) -> None:
    got: list[int] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(10):
            n = store.next_number("incident")
            with lock:
                got.append(n)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 41))


def test_step_runs_and_approvals_round_trip_with_conditional_updates(store: Store) -> None:
    run = StepRun(id="RB-0001-backup-1", incident_id="RB-0001", step="backup", actor="U1", started_at=NOW)
    store.add_step_run(run)
    done = store.save_step_run(run.model_copy(update={"status": StepStatus.SUCCEEDED, "finished_at": NOW}))
    assert [r.status for r in store.step_runs("RB-0001")] == [StepStatus.SUCCEEDED]
    with pytest.raises(StaleState):
        store.save_step_run(run)  # version 0 is gone
    assert done.version == 1

    approval = Approval(id="AP-1", incident_id="RB-0001", action="cleanup", requester="U1", channel="C1",
                        message_ts="111.222", requested_at=NOW, expires_at=NOW + timedelta(minutes=15))
    store.add_approval(approval)
    assert store.approval_for_message("111.222") == approval
    assert store.approval_for_message("999.999") is None
    assert store.get_approval("AP-1") == approval


def test_a_delivery_is_claimed_only_once(store_factory: Callable[[], Store]) -> None:
    now = datetime.now(UTC)  # claims expire by the server's clock (a TTL index on MongoDB), so use real time
    first, second = store_factory(), store_factory()
    assert first.claim("event:Ev1", now) is True
    assert second.claim("event:Ev1", now) is False
    assert second.claim("event:Ev2", now) is True


def test_an_expired_claim_can_be_claimed_again_and_prune_removes_old_ones(store: Store) -> None:
    now = datetime.now(UTC)
    assert store.claim("signature:a", now, ttl_s=60)
    assert not store.claim("signature:a", now + timedelta(seconds=59), ttl_s=60)
    assert store.claim("signature:a", now + timedelta(seconds=61), ttl_s=60)  # the first one expired
    assert store.claim("signature:b", now, ttl_s=60)
    assert store.prune(now + timedelta(seconds=200)) >= 1
    assert store.claim("signature:b", now + timedelta(seconds=200), ttl_s=60)


def test_a_lease_has_one_holder_until_it_expires(store_factory: Callable[[], Store]) -> None:
    a, b = store_factory(), store_factory()
    assert a.try_lease("scheduler", "replica-a", NOW, 30)
    assert not b.try_lease("scheduler", "replica-b", NOW + timedelta(seconds=10), 30)
    assert a.try_lease("scheduler", "replica-a", NOW + timedelta(seconds=20), 30)  # renewal
    assert b.try_lease("scheduler", "replica-b", NOW + timedelta(seconds=51), 30)  # a stopped renewing
    assert not a.try_lease("scheduler", "replica-a", NOW + timedelta(seconds=52), 30)


def test_audit_events_chain_and_verify(store: Store) -> None:
    for i in range(5):
        store.audit(NOW + timedelta(seconds=i), "U1", "step.done", "RB-0001", step=i)
    store.audit(NOW, "U2", "incident.started", "RB-0002")
    events = store.audit_events()
    assert [e.seq for e in events] == [1, 2, 3, 4, 5, 6]
    assert all(later.prev_hash == earlier.hash for earlier, later in zip(events, events[1:], strict=False))
    assert [e.data["step"] for e in store.audit_events("RB-0001")] == [0, 1, 2, 3, 4]
    report = store.verify_audit()
    assert report.ok and report.checked == 6


def test_an_append_while_the_log_is_being_verified_is_not_reported_as_events_cut_off(
        store_factory: Callable[[], Store]) -> None:
    """A running bot appends while someone verifies the log: the check must not call that tampering. Found by
    tests/faults/test_crashes.py, whose final check read the events, then the head a bot had just moved on
    ("events after 4 are missing (head is 5)"). Here another replica appends right after each of the check's
    reads, the moment that race needs, every time."""
    checker, writer = store_factory(), store_factory()
    for i in range(3):
        writer.audit(NOW, "U1", "tick", None, i=i)
    events, head = checker.audit_events, checker.audit_head

    def events_then_an_append(incident_id: str | None = None) -> list[AuditEvent]:
        found = events(incident_id)
        writer.audit(NOW, "U2", "tick", None, after="events")
        return found

    def head_then_an_append() -> tuple[int, str] | None:
        found = head()
        writer.audit(NOW, "U2", "tick", None, after="head")
        return found

    checker.audit_events = events_then_an_append  # type: ignore[method-assign]
    checker.audit_head = head_then_an_append  # type: ignore[method-assign]
    report = checker.verify_audit()
    assert report.ok, str(report)
    assert report.checked >= 4  # the three before, and the one appended between the two reads
    del checker.audit_events, checker.audit_head
    final = checker.verify_audit()
    assert final.ok and final.checked == 5, str(final)


def test_verifying_again_and_again_while_another_replica_appends_never_reports_a_broken_chain(
        store_factory: Callable[[], Store], request: pytest.FixtureRequest) -> None:
    if request.node.callspec.params["store_factory"] == "mongomock":
        pytest.skip("mongomock applies a $set field by field in place, so a reader in another thread can see the "
                    "head's new seq with its old hash; a MongoDB server updates one document atomically")
    checker, writer = store_factory(), store_factory()
    writer.audit(NOW, "U1", "tick", None, i=-1)
    done = threading.Event()
    reports: list[ChainReport] = []

    def write() -> None:
        """15 batches of 10 appends, each batch begun once the checker has reported since the last one began: the
        log grows while it is checked, and it is checked at many lengths."""
        try:
            for batch in range(15):
                seen = len(reports)
                deadline = time.monotonic() + 30
                while len(reports) == seen and time.monotonic() < deadline:
                    time.sleep(0.001)
                for i in range(10):
                    writer.audit(NOW, "U1", "tick", None, i=batch * 10 + i)
        finally:
            done.set()

    thread = threading.Thread(target=write)
    thread.start()
    while not done.is_set():
        reports.append(checker.verify_audit())
    thread.join()
    broken = [str(r) for r in reports if not r.ok]
    assert not broken, broken[:3]
    assert len({r.checked for r in reports}) > 1  # it did verify while the log grew
    final = checker.verify_audit()
    assert final.ok and final.checked == 151


def test_concurrent_audit_appends_keep_one_unbroken_chain(store_factory: Callable[[], Store]) -> None:
    replicas = [store_factory(), store_factory()]

    def write(replica: Store, who: str) -> None:
        for i in range(15):
            replica.audit(NOW, who, "tick", None, i=i)

    threads = [threading.Thread(target=write, args=(r, f"U{n}")) for n, r in enumerate(replicas)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = replicas[0].verify_audit()
    assert report.ok, str(report)
    assert report.checked == 30
