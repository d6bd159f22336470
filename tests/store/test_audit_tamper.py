"""The hash chain catches a changed, a deleted and a truncated audit event (SQLite and mongomock)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import mongomock

from bot.audit import GENESIS, AuditEvent, verify_chain
from bot.store.mongo import MongoStore
from bot.store.sqlite import SQLiteStore

NOW = datetime(2026, 2, 7, 3, 0, tzinfo=UTC)


def _fill(store: SQLiteStore | MongoStore) -> None:
    for i in range(5):
        store.audit(NOW, "U1", "step.done", "RB-0001", step=i)


def test_sqlite_detects_an_edited_event(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    _fill(store)
    db = sqlite3.connect(tmp_path / "s.db")
    row = db.execute("SELECT event FROM audit WHERE seq = 3").fetchone()
    event = json.loads(row[0])
    event["actor"] = "U_SOMEONE_ELSE"
    db.execute("DROP TRIGGER audit_no_update")  # a tamperer with file access can do this too
    db.execute("UPDATE audit SET event = ? WHERE seq = 3", (json.dumps(event),))
    db.commit()
    report = store.verify_audit()
    assert not report.ok and report.seq == 3 and "changed" in (report.problem or "")


def test_sqlite_refuses_updates_through_the_normal_path(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    _fill(store)
    db = sqlite3.connect(tmp_path / "s.db")
    try:
        db.execute("UPDATE audit SET incident_id = 'x' WHERE seq = 1")
        raised = False
    except sqlite3.DatabaseError as error:
        raised = "append-only" in str(error)
    assert raised


def test_sqlite_detects_a_deleted_event_in_the_middle_and_at_the_end(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    _fill(store)
    db = sqlite3.connect(tmp_path / "s.db")
    db.execute("DELETE FROM audit WHERE seq = 5")
    db.commit()
    tail = store.verify_audit()
    assert not tail.ok and "missing" in (tail.problem or "")
    db.execute("DELETE FROM audit WHERE seq = 2")
    db.commit()
    middle = store.verify_audit()
    assert not middle.ok and middle.seq == 2


def test_mongo_detects_edits_and_deletions() -> None:
    store = MongoStore(mongomock.MongoClient(tz_aware=True), "audit_tamper")
    _fill(store)
    assert store.verify_audit().ok
    store.db.audit.update_one({"_id": 4}, {"$set": {"event.data.step": 99}})
    assert store.verify_audit().seq == 4
    store.db.audit.update_one({"_id": 4}, {"$set": {"event.data.step": 3}})
    assert store.verify_audit().ok
    store.db.audit.delete_one({"_id": 2})
    report = store.verify_audit()
    assert not report.ok and report.seq == 2


def _chain(n: int) -> list[AuditEvent]:
    events, prev = [], GENESIS
    for seq in range(1, n + 1):
        event = AuditEvent(seq=seq, at=NOW.isoformat(), incident_id=None, actor="U1", action="tick",
                           prev_hash=prev).sealed()
        events.append(event)
        prev = event.hash
    return events


def test_a_gap_after_the_head_read_first_is_an_append_in_flight_and_one_before_it_is_a_deletion() -> None:
    events = _chain(6)
    head = (3, events[2].hash)
    # 4 not read yet, 5 and 6 already: an append in flight after the head, not a missing event
    in_flight = verify_chain([*events[:3], *events[4:]], head)
    assert in_flight.ok and in_flight.checked == 3
    # at or before the head a gap is a gap
    deleted = verify_chain([*events[:2], *events[3:]], head)
    assert not deleted.ok and deleted.seq == 3 and "missing" in (deleted.problem or "")
    # events after the head are still checked as far as they run unbroken
    edited = events[3].model_copy(update={"actor": "mallory"})
    changed = verify_chain([*events[:3], edited, *events[4:]], head)
    assert not changed.ok and changed.seq == 4 and "changed" in (changed.problem or "")
    # without a head (none written yet) every gap is a gap
    assert not verify_chain([*events[:3], *events[4:]], None).ok
