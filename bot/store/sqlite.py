"""SQLite backend: the embedded default. One file, WAL, one connection per thread.

It lives on the bot's own disk, so it keeps working when the target's MongoDB is what is broken.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.audit import GENESIS, AuditEvent
from bot.clock import to_iso
from bot.errors import StaleState
from bot.store.base import ActiveIncidentExists, Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
    incident_id TEXT, lookup TEXT, data TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX IF NOT EXISTS records_incident ON records (kind, incident_id);
CREATE INDEX IF NOT EXISTS records_lookup ON records (kind, lookup);
CREATE TABLE IF NOT EXISTS active_keys (key TEXT PRIMARY KEY, incident_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY, incident_id TEXT, event TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL,
    hash TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""


class SQLiteStore(Store):
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._conn().executescript(SCHEMA)  # executescript manages its own transaction

    # ---- connections and transactions ------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                try:
                    conn.close()
                except sqlite3.ProgrammingError:
                    pass
            self._connections.clear()
        self._local = threading.local()

    # ---- documents ---------------------------------------------------------------------------------
    def _insert(self, kind: str, doc_id: str, doc: dict[str, Any], lookup: str | None = None) -> None:
        try:
            with self._tx() as db:
                db.execute(
                    "INSERT INTO records (kind, id, version, incident_id, lookup, data) VALUES (?,?,?,?,?,?)",
                    (kind, doc_id, doc.get("version", 0), doc.get("incident_id"), lookup, json.dumps(doc)),
                )
        except sqlite3.IntegrityError:
            raise StaleState(f"{kind} {doc_id} already exists") from None

    def _get(self, kind: str, doc_id: str) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT data FROM records WHERE kind=? AND id=?", (kind, doc_id)).fetchone()
        return json.loads(row[0]) if row else None

    def _replace(self, kind: str, doc_id: str, expected_version: int, doc: dict[str, Any],
                 lookup: str | None = None) -> None:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE records SET version=?, lookup=?, data=? WHERE kind=? AND id=? AND version=?",
                (expected_version + 1, lookup, json.dumps(doc), kind, doc_id, expected_version),
            )
            if cur.rowcount != 1:
                raise StaleState(f"{kind} {doc_id} changed since version {expected_version}")

    def _find(self, kind: str, *, incident_id: str | None = None, lookup: str | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT data FROM records WHERE kind=?", [kind]
        if incident_id is not None:
            sql, args = sql + " AND incident_id=?", [*args, incident_id]
        if lookup is not None:
            sql, args = sql + " AND lookup=?", [*args, lookup]
        return [json.loads(row[0]) for row in self._conn().execute(sql, args)]

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
        row = self._conn().execute("SELECT incident_id FROM active_keys WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    # ---- claims and leases -------------------------------------------------------------------------
    def claim(self, key: str, at: datetime) -> bool:
        with self._tx() as db:
            cur = db.execute("INSERT INTO claims (key, at) VALUES (?, ?) ON CONFLICT(key) DO NOTHING",
                             (key, to_iso(at)))
            return cur.rowcount == 1

    def try_lease(self, name: str, holder: str, now: datetime, ttl_s: float) -> bool:
        from datetime import timedelta

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

    # ---- audit log -------------------------------------------------------------------------------------
    def _append_audit(self, build: Callable[[int, str], AuditEvent]) -> AuditEvent:
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
            rows = self._conn().execute("SELECT event FROM audit ORDER BY seq")
        else:
            rows = self._conn().execute("SELECT event FROM audit WHERE incident_id=? ORDER BY seq", (incident_id,))
        return [AuditEvent.model_validate_json(row[0]) for row in rows]

    def audit_head(self) -> tuple[int, str] | None:
        row = self._conn().execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        return (int(row[0]), str(row[1])) if row else None
