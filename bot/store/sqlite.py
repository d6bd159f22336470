"""SQLite backend: the embedded default. One file, WAL, one connection per store.

It lives on the bot's own disk, so it keeps working when the target's MongoDB is what is broken. The
one connection is shared by every thread behind a lock (SQLite serialises writers anyway), so the
number of open files does not grow with the number of threads; ``close()`` closes it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bot.audit import GENESIS, AuditEvent
from bot.clock import from_iso, to_iso
from bot.domain.store import ActiveIncidentExists
from bot.errors import StaleState
from bot.store.base import SCHEMA_VERSION, AuditBuilder, DocumentStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
    incident_id TEXT, lookup TEXT, status TEXT, data TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE TABLE IF NOT EXISTS active_keys (key TEXT PRIMARY KEY, incident_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, at TEXT NOT NULL, expires_at TEXT);
CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY, incident_id TEXT, event TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL,
    hash TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""
# Columns added after the first release: an older file gets them on open (a one-way migration).
MIGRATIONS = [("records", "status", "TEXT"), ("claims", "expires_at", "TEXT")]
INDEXES = """
CREATE INDEX IF NOT EXISTS records_incident ON records (kind, incident_id);
CREATE INDEX IF NOT EXISTS records_lookup ON records (kind, lookup);
CREATE INDEX IF NOT EXISTS records_status ON records (kind, status);
CREATE INDEX IF NOT EXISTS claims_expiry ON claims (expires_at);
CREATE INDEX IF NOT EXISTS audit_incident ON audit (incident_id, seq);
"""


class SQLiteStore(DocumentStore):
    """The schema version is the file's ``PRAGMA user_version`` (0: written before stores carried one)."""

    def _wal(self) -> None:
        """Switch the file to WAL. The switch needs the file to itself and SQLite answers "database is locked" at
        once, without its busy handler, while another process (a replica starting at the same moment) holds it,
        so it is asked again for up to the busy timeout (found under load: replicas started together on the
        previous release's store, and one failed to start)."""
        assert self._conn is not None
        deadline = time.monotonic() + 30
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            self.path, timeout=30, isolation_level=None, check_same_thread=False)
        try:  # before anything writes to the file: a newer release's store is left exactly as it is
            self.refuse_newer(f"the SQLite state store {self.path}", self._schema_version())
        except BaseException:
            self.close()
            raise
        self._wal()
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=30000")
        with self._tx() as db:  # one transaction: a second process sees a new file stamped, or not at all
            found = self._schema_version()
            new = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='records'").fetchone() is None
            for statement in SCHEMA.split(";\n"):
                if statement.strip():
                    db.execute(statement)
            for table, column, kind in MIGRATIONS:
                have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                if column not in have:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            for statement in INDEXES.split(";\n"):
                if statement.strip():
                    db.execute(statement)
            if new:
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        if not new:
            self.migrate(found)

    # ---- the connection -------------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("the SQLite store is closed")
        return self._conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._db()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")

    def _read(self, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._db().execute(sql, args))

    def _schema_version(self) -> int | None:
        with self._lock:
            version = int(self._db().execute("PRAGMA user_version").fetchone()[0])
        return version or None

    def _stamp_schema(self, expected: int | None, version: int) -> bool:
        with self._tx() as db:
            if (int(db.execute("PRAGMA user_version").fetchone()[0]) or None) != expected:
                return False
            db.execute(f"PRAGMA user_version = {int(version)}")
            return True

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # ---- documents ---------------------------------------------------------------------------------
    def _insert(self, kind: str, doc_id: str, doc: dict[str, Any], *, lookup: str | None = None,
                status: str | None = None) -> None:
        try:
            with self._tx() as db:
                db.execute("INSERT INTO records (kind, id, version, incident_id, lookup, status, data) "
                           "VALUES (?,?,?,?,?,?,?)",
                           (kind, doc_id, doc.get("version", 0), doc.get("incident_id"), lookup, status,
                            json.dumps(doc)))
        except sqlite3.IntegrityError:
            raise StaleState(f"{kind} {doc_id} already exists") from None

    def _put(self, kind: str, doc_id: str, doc: dict[str, Any], *, lookup: str | None = None) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO records (kind, id, version, incident_id, lookup, status, data) "
                       "VALUES (?,?,0,?,?,NULL,?) ON CONFLICT(kind, id) DO UPDATE SET lookup=excluded.lookup, "
                       "data=excluded.data", (kind, doc_id, doc.get("incident_id"), lookup, json.dumps(doc)))

    def _get(self, kind: str, doc_id: str) -> dict[str, Any] | None:
        rows = self._read("SELECT data FROM records WHERE kind=? AND id=?", (kind, doc_id))
        return json.loads(rows[0][0]) if rows else None

    def _replace(self, kind: str, doc_id: str, expected_version: int, doc: dict[str, Any], *,
                 lookup: str | None = None, status: str | None = None) -> None:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE records SET version=?, lookup=?, status=?, data=? WHERE kind=? AND id=? AND version=?",
                (expected_version + 1, lookup, status, json.dumps(doc), kind, doc_id, expected_version),
            )
            if cur.rowcount != 1:
                raise StaleState(f"{kind} {doc_id} changed since version {expected_version}")

    def _find(self, kind: str, *, incident_id: str | None = None, lookup: str | None = None,
              statuses: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT data FROM records WHERE kind=?", [kind]
        if incident_id is not None:
            sql, args = sql + " AND incident_id=?", [*args, incident_id]
        if lookup is not None:
            sql, args = sql + " AND lookup=?", [*args, lookup]
        if statuses is not None:
            sql += f" AND status IN ({','.join('?' * len(statuses))})"
            args = [*args, *statuses]
        return [json.loads(row[0]) for row in self._read(sql, args)]

    def _unlabelled(self, kind: str) -> list[dict[str, Any]]:
        return [json.loads(row[0]) for row in self._read(
            "SELECT data FROM records WHERE kind=? AND status IS NULL", (kind,))]

    def _label(self, kind: str, doc_id: str, status: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE records SET status=? WHERE kind=? AND id=? AND status IS NULL", (status, kind, doc_id))

    def next_number(self, counter: str) -> int:
        with self._tx() as db:
            db.execute("INSERT INTO counters (name, value) VALUES (?, 0) ON CONFLICT(name) DO NOTHING", (counter,))
            db.execute("UPDATE counters SET value = value + 1 WHERE name=?", (counter,))
            return int(db.execute("SELECT value FROM counters WHERE name=?", (counter,)).fetchone()[0])

    # ---- active incident keys --------------------------------------------------------------------
    def _take_keys(self, keys: list[str], incident_id: str) -> None:
        with self._tx() as db:
            for key in keys:
                row = db.execute("SELECT incident_id FROM active_keys WHERE key=?", (key,)).fetchone()
                if row:
                    raise ActiveIncidentExists(key, row[0])
            db.executemany("INSERT INTO active_keys (key, incident_id) VALUES (?, ?)",
                           [(key, incident_id) for key in keys])

    def _release_keys(self, incident_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM active_keys WHERE incident_id=?", (incident_id,))

    def _key_holder(self, key: str) -> str | None:
        rows = self._read("SELECT incident_id FROM active_keys WHERE key=?", (key,))
        return rows[0][0] if rows else None

    def _key_holders(self) -> list[str]:
        return [row[0] for row in self._read("SELECT DISTINCT incident_id FROM active_keys")]

    # ---- claims and leases -------------------------------------------------------------------------
    def claim(self, key: str, now: datetime, ttl_s: float = 86_400.0) -> bool:
        expires = to_iso(now + timedelta(seconds=ttl_s))
        with self._tx() as db:
            db.execute("DELETE FROM claims WHERE key=? AND expires_at IS NOT NULL AND expires_at <= ?",
                       (key, to_iso(now)))
            cur = db.execute("INSERT INTO claims (key, at, expires_at) VALUES (?, ?, ?) ON CONFLICT(key) DO NOTHING",
                             (key, to_iso(now), expires))
            return cur.rowcount == 1

    def prune(self, now: datetime) -> int:
        with self._tx() as db:
            return db.execute("DELETE FROM claims WHERE expires_at IS NULL OR expires_at <= ?",
                              (to_iso(now),)).rowcount

    def try_lease(self, name: str, holder: str, now: datetime, ttl_s: float) -> bool:
        until = to_iso(now + timedelta(seconds=ttl_s))
        with self._tx() as db:
            row = db.execute("SELECT holder, expires_at FROM leases WHERE name=?", (name,)).fetchone()
            if row is None:
                db.execute("INSERT INTO leases (name, holder, expires_at) VALUES (?,?,?)", (name, holder, until))
                return True
            if row[0] == holder or row[1] <= to_iso(now):
                db.execute("UPDATE leases SET holder=?, expires_at=? WHERE name=?", (holder, until, name))
                return True
            return False

    def set_lease(self, name: str, holder: str, now: datetime, ttl_s: float) -> None:
        until = to_iso(now + timedelta(seconds=ttl_s))
        with self._tx() as db:
            db.execute("INSERT INTO leases (name, holder, expires_at) VALUES (?,?,?) "
                       "ON CONFLICT(name) DO UPDATE SET holder=excluded.holder, expires_at=excluded.expires_at",
                       (name, holder, until))

    def lease(self, name: str) -> tuple[str, datetime] | None:
        rows = self._read("SELECT holder, expires_at FROM leases WHERE name=?", (name,))
        return (str(rows[0][0]), from_iso(str(rows[0][1]))) if rows else None

    def release_lease(self, name: str, holder: str, now: datetime) -> None:
        with self._tx() as db:
            db.execute("UPDATE leases SET expires_at=? WHERE name=? AND holder=?", (to_iso(now), name, holder))

    # ---- audit log -------------------------------------------------------------------------------------
    def _append_audit(self, build: AuditBuilder) -> AuditEvent:
        with self._tx() as db:
            row = db.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
            seq, prev = (row[0], row[1]) if row else (0, GENESIS)
            event = build(seq + 1, prev)
            db.execute("INSERT INTO audit (seq, incident_id, event) VALUES (?,?,?)",
                       (event.seq, event.incident_id, event.model_dump_json()))
            db.execute("INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?) "
                       "ON CONFLICT(id) DO UPDATE SET seq=excluded.seq, hash=excluded.hash", (event.seq, event.hash))
            return event

    def audit_events(self, incident_id: str | None = None) -> list[AuditEvent]:
        if incident_id is None:
            rows = self._read("SELECT event FROM audit ORDER BY seq")
        else:
            rows = self._read("SELECT event FROM audit WHERE incident_id=? ORDER BY seq", (incident_id,))
        return [AuditEvent.model_validate_json(row[0]) for row in rows]

    def audit_head(self) -> tuple[int, str] | None:
        rows = self._read("SELECT seq, hash FROM audit_head WHERE id = 1")
        return (int(rows[0][0]), str(rows[0][1])) if rows else None
