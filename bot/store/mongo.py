"""MongoDB backend: shared state for several bot replicas (``STATE_STORE_URI=mongodb://…``).

Every state change is a single-document conditional write, so two replicas cannot both win.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, MongoClient, ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from bot.audit import GENESIS, AuditEvent
from bot.clock import to_iso
from bot.errors import StaleState
from bot.store.base import ActiveIncidentExists, Store

DEFAULT_DB = "rollback_bot"


class MongoStore(Store):
    def __init__(self, client: MongoClient[dict[str, Any]], database: str = DEFAULT_DB,
                 *, owns_client: bool = True) -> None:
        self.client = client
        self._owns_client = owns_client
        self.db: Database[dict[str, Any]] = client[database]
        self.db.records.create_index([("kind", ASCENDING), ("incident_id", ASCENDING)])
        self.db.records.create_index([("kind", ASCENDING), ("lookup", ASCENDING)])
        self.db.audit.create_index([("incident_id", ASCENDING), ("_id", ASCENDING)])

    @classmethod
    def from_uri(cls, uri: str) -> MongoStore:
        client: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=5000, tz_aware=True)
        database = client.get_default_database(default=DEFAULT_DB).name
        return cls(client, database)

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    # ---- documents -------------------------------------------------------------------------------
    def _insert(self, kind: str, doc_id: str, doc: dict[str, Any], lookup: str | None = None) -> None:
        try:
            self.db.records.insert_one({"_id": f"{kind}:{doc_id}", "kind": kind, "version": doc.get("version", 0),
                                        "incident_id": doc.get("incident_id"), "lookup": lookup, "data": doc})
        except DuplicateKeyError:
            raise StaleState(f"{kind} {doc_id} already exists") from None

    def _get(self, kind: str, doc_id: str) -> dict[str, Any] | None:
        row = self.db.records.find_one({"_id": f"{kind}:{doc_id}"})
        return dict(row["data"]) if row else None

    def _replace(self, kind: str, doc_id: str, expected_version: int, doc: dict[str, Any],
                 lookup: str | None = None) -> None:
        result = self.db.records.update_one(
            {"_id": f"{kind}:{doc_id}", "version": expected_version},
            {"$set": {"version": expected_version + 1, "lookup": lookup, "data": doc}},
        )
        if result.matched_count != 1:
            raise StaleState(f"{kind} {doc_id} changed since version {expected_version}")

    def _find(self, kind: str, *, incident_id: str | None = None, lookup: str | None = None) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"kind": kind}
        if incident_id is not None:
            query["incident_id"] = incident_id
        if lookup is not None:
            query["lookup"] = lookup
        return [dict(row["data"]) for row in self.db.records.find(query)]

    def next_number(self, counter: str) -> int:
        row = self.db.counters.find_one_and_update(
            {"_id": counter}, {"$inc": {"value": 1}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        assert row is not None  # an upsert returning AFTER always has the document
        return int(row["value"])

    # ---- active incident keys ----------------------------------------------------------------------
    def _take_keys(self, keys: list[str], incident_id: str) -> None:
        taken: list[str] = []
        for key in keys:
            try:
                self.db.active_keys.insert_one({"_id": key, "incident_id": incident_id})
                taken.append(key)
            except DuplicateKeyError:
                if taken:
                    self.db.active_keys.delete_many({"_id": {"$in": taken}, "incident_id": incident_id})
                holder = self._key_holder(key) or "another incident"
                raise ActiveIncidentExists(key, holder) from None

    def _release_keys(self, incident_id: str) -> None:
        self.db.active_keys.delete_many({"incident_id": incident_id})

    def _key_holder(self, key: str) -> str | None:
        row = self.db.active_keys.find_one({"_id": key})
        return str(row["incident_id"]) if row else None

    # ---- claims and leases -----------------------------------------------------------------------------
    def claim(self, key: str, at: datetime) -> bool:
        try:
            self.db.claims.insert_one({"_id": key, "at": to_iso(at)})
            return True
        except DuplicateKeyError:
            return False

    def try_lease(self, name: str, holder: str, now: datetime, ttl_s: float) -> bool:
        until = to_iso(now + timedelta(seconds=ttl_s))
        try:
            row = self.db.leases.find_one_and_update(
                {"_id": name, "$or": [{"holder": holder}, {"expires_at": {"$lte": to_iso(now)}}]},
                {"$set": {"holder": holder, "expires_at": until}},
                upsert=True, return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:  # the lease exists and is held by someone else
            return False
        return bool(row and row["holder"] == holder)

    # ---- audit log ---------------------------------------------------------------------------------------
    def _append_audit(self, build: Callable[[int, str], AuditEvent]) -> AuditEvent:
        while True:
            last = self.db.audit.find_one({}, sort=[("_id", DESCENDING)])
            seq, prev = (int(last["_id"]), str(last["event"]["hash"])) if last else (0, GENESIS)
            event = build(seq + 1, prev)
            try:  # the unique _id makes exactly one writer win each sequence number
                self.db.audit.insert_one({"_id": event.seq, "incident_id": event.incident_id,
                                          "event": event.model_dump(mode="json")})
            except DuplicateKeyError:
                continue
            self.db.audit_head.update_one(
                {"_id": 1, "seq": {"$lt": event.seq}}, {"$set": {"seq": event.seq, "hash": event.hash}}, upsert=False
            )
            if seq == 0 or self.db.audit_head.find_one({"_id": 1}) is None:
                try:
                    self.db.audit_head.insert_one({"_id": 1, "seq": event.seq, "hash": event.hash})
                except DuplicateKeyError:
                    pass
            return event

    def audit_events(self, incident_id: str | None = None) -> list[AuditEvent]:
        query = {} if incident_id is None else {"incident_id": incident_id}
        return [AuditEvent.model_validate(row["event"]) for row in self.db.audit.find(query, sort=[("_id", 1)])]

    def audit_head(self) -> tuple[int, str] | None:
        row = self.db.audit_head.find_one({"_id": 1})
        return (int(row["seq"]), str(row["hash"])) if row else None
