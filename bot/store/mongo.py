"""MongoDB backend: shared state for several bot replicas (``STATE_STORE_URI=mongodb://…``).

Every state change is a single-document conditional write, so two replicas cannot both win. Expiring
claims carry a real date in ``expires_at`` with a TTL index (MongoDB removes them on its own), and
:meth:`prune` removes them too, so a server without a TTL monitor stays bounded as well.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, MongoClient, ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from bot.audit import GENESIS, AuditEvent
from bot.clock import from_iso, to_iso
from bot.domain.store import ActiveIncidentExists
from bot.errors import StaleState
from bot.store.base import SCHEMA_VERSION, AuditBuilder, DocumentStore

DEFAULT_DB = "rollback_bot"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class MongoStore(DocumentStore):
    """The schema version is the ``meta`` document ``{_id: "schema", version: N}`` (none: written before stores
    carried one)."""

    def __init__(self, client: MongoClient[dict[str, Any]], database: str = DEFAULT_DB,
                 *, owns_client: bool = True) -> None:
        self.client = client
        self._owns_client = owns_client
        self.db: Database[dict[str, Any]] = client[database]
        found = self._schema_version()
        try:  # before anything is written: a newer release's store is left exactly as it is
            self.refuse_newer(f"the MongoDB state store (database {database})", found)
        except BaseException:
            self.close()
            raise
        # A new store is stamped before its first collection exists, so another replica opening it at the same
        # moment never takes it for an old one.
        if "records" not in self.db.list_collection_names() and found is None:
            self._stamp_schema(None, SCHEMA_VERSION)
            found = self._schema_version()
        self.db.records.create_index([("kind", ASCENDING), ("incident_id", ASCENDING)])
        self.db.records.create_index([("kind", ASCENDING), ("lookup", ASCENDING)])
        self.db.records.create_index([("kind", ASCENDING), ("status", ASCENDING)])
        self.db.audit.create_index([("incident_id", ASCENDING), ("seq", ASCENDING)])
        self.db.claims.create_index("expires_at", expireAfterSeconds=0)
        self.migrate(found)

    @classmethod
    def from_uri(cls, uri: str) -> MongoStore:
        client: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=5000, connectTimeoutMS=5000,
                                                          timeoutMS=15000, tz_aware=True)
        database = client.get_default_database(default=DEFAULT_DB).name
        return cls(client, database)

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def _schema_version(self) -> int | None:
        row = self.db.meta.find_one({"_id": "schema"})
        return int(row["version"]) if row else None

    def _stamp_schema(self, expected: int | None, version: int) -> bool:
        if expected is None:
            try:
                self.db.meta.insert_one({"_id": "schema", "version": version})
            except DuplicateKeyError:
                return False
            return True
        return bool(self.db.meta.update_one({"_id": "schema", "version": expected},
                                            {"$set": {"version": version}}).matched_count)

    # ---- documents -------------------------------------------------------------------------------
    def _insert(self, kind: str, doc_id: str, doc: dict[str, Any], *, lookup: str | None = None,
                status: str | None = None) -> None:
        try:
            self.db.records.insert_one({"_id": f"{kind}:{doc_id}", "kind": kind, "version": doc.get("version", 0),
                                        "incident_id": doc.get("incident_id"), "lookup": lookup, "status": status,
                                        "data": doc})
        except DuplicateKeyError:
            raise StaleState(f"{kind} {doc_id} already exists") from None

    def _put(self, kind: str, doc_id: str, doc: dict[str, Any], *, lookup: str | None = None) -> None:
        self.db.records.replace_one({"_id": f"{kind}:{doc_id}"},
                                    {"kind": kind, "version": 0, "incident_id": doc.get("incident_id"),
                                     "lookup": lookup, "status": None, "data": doc}, upsert=True)

    def _get(self, kind: str, doc_id: str) -> dict[str, Any] | None:
        row = self.db.records.find_one({"_id": f"{kind}:{doc_id}"})
        return dict(row["data"]) if row else None

    def _replace(self, kind: str, doc_id: str, expected_version: int, doc: dict[str, Any], *,
                 lookup: str | None = None, status: str | None = None) -> None:
        result = self.db.records.update_one(
            {"_id": f"{kind}:{doc_id}", "version": expected_version},
            {"$set": {"version": expected_version + 1, "lookup": lookup, "status": status, "data": doc}},
        )
        if result.matched_count != 1:
            raise StaleState(f"{kind} {doc_id} changed since version {expected_version}")

    def _find(self, kind: str, *, incident_id: str | None = None, lookup: str | None = None,
              statuses: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"kind": kind}
        if incident_id is not None:
            query["incident_id"] = incident_id
        if lookup is not None:
            query["lookup"] = lookup
        if statuses is not None:
            query["status"] = {"$in": list(statuses)}
        return [dict(row["data"]) for row in self.db.records.find(query)]

    def _unlabelled(self, kind: str) -> list[dict[str, Any]]:
        return [dict(row["data"]) for row in self.db.records.find({"kind": kind, "status": None})]

    def _label(self, kind: str, doc_id: str, status: str) -> None:
        self.db.records.update_one({"_id": f"{kind}:{doc_id}", "status": None}, {"$set": {"status": status}})

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

    def _key_holders(self) -> list[str]:
        return [str(row["incident_id"]) for row in self.db.active_keys.find({}, {"incident_id": 1})]

    # ---- claims and leases -----------------------------------------------------------------------------
    def claim(self, key: str, now: datetime, ttl_s: float = 86_400.0) -> bool:
        for _ in range(2):
            try:
                self.db.claims.insert_one({"_id": key, "at": now, "expires_at": now + timedelta(seconds=ttl_s)})
                return True
            except DuplicateKeyError:
                held = self.db.claims.find_one({"_id": key})
                if held is None:
                    continue  # expired and removed just now: claim it
                if held.get("expires_at") is None or _aware(held["expires_at"]) > now:
                    return False  # held (a claim from before expiries is held until the next prune)
                self.db.claims.delete_one({"_id": key, "expires_at": held["expires_at"]})  # expired: reclaim once
        return False

    def prune(self, now: datetime) -> int:
        expired = self.db.claims.delete_many({"expires_at": {"$lte": now}}).deleted_count
        older = self.db.claims.delete_many({"expires_at": {"$exists": False}}).deleted_count  # before expiries
        return int(expired) + int(older)

    # Lease expiries are ISO-8601 UTC strings of one fixed format (bot.clock.to_iso), which sort like the times
    # they name: the comparison is then the same on every server (nx-27017 turns dates written by $set into text).
    def try_lease(self, name: str, holder: str, now: datetime, ttl_s: float) -> bool:
        """Renew our lease, or take an expired one, or create it: three single-document conditional writes
        (no ``$or`` beside ``_id``: nx-27017 0.8.1 matches other documents for such a filter)."""
        until = to_iso(now + timedelta(seconds=ttl_s))
        if self.db.leases.update_one({"_id": name, "holder": holder}, {"$set": {"expires_at": until}}).matched_count:
            return True
        taken = self.db.leases.update_one({"_id": name, "expires_at": {"$lte": to_iso(now)}},
                                          {"$set": {"holder": holder, "expires_at": until}})
        if taken.matched_count:
            return True
        try:
            self.db.leases.insert_one({"_id": name, "holder": holder, "expires_at": until})
        except DuplicateKeyError:  # the lease exists and someone else holds it
            return False
        return True

    def set_lease(self, name: str, holder: str, now: datetime, ttl_s: float) -> None:
        self.db.leases.update_one({"_id": name}, {"$set": {"holder": holder,
                                                            "expires_at": to_iso(now + timedelta(seconds=ttl_s))}},
                                  upsert=True)

    def lease(self, name: str) -> tuple[str, datetime] | None:
        row = self.db.leases.find_one({"_id": name})
        if row is None or not isinstance(row.get("expires_at"), str):
            return None
        return str(row["holder"]), from_iso(row["expires_at"])

    def release_lease(self, name: str, holder: str, now: datetime) -> None:
        self.db.leases.update_one({"_id": name, "holder": holder}, {"$set": {"expires_at": to_iso(now)}})

    # ---- audit log ---------------------------------------------------------------------------------------
    def _append_audit(self, build: AuditBuilder) -> AuditEvent:
        while True:
            last = self.db.audit.find_one({}, sort=[("seq", DESCENDING)])
            seq, prev = (int(last["seq"]), str(last["event"]["hash"])) if last else (0, GENESIS)
            event = build(seq + 1, prev)
            try:  # the unique _id makes exactly one writer win each sequence number
                self.db.audit.insert_one({"_id": event.seq, "seq": event.seq, "incident_id": event.incident_id,
                                          "event": event.model_dump(mode="json")})
            except DuplicateKeyError:
                continue
            self.db.audit_head.update_one({"_id": 1, "seq": {"$lt": event.seq}},
                                          {"$set": {"seq": event.seq, "hash": event.hash}})
            if seq == 0 or self.db.audit_head.find_one({"_id": 1}) is None:
                try:
                    self.db.audit_head.insert_one({"_id": 1, "seq": event.seq, "hash": event.hash})
                except DuplicateKeyError:
                    pass
            return event

    def audit_events(self, incident_id: str | None = None) -> list[AuditEvent]:
        query = {} if incident_id is None else {"incident_id": incident_id}
        return [AuditEvent.model_validate(row["event"]) for row in self.db.audit.find(query, sort=[("seq", 1)])]

    def audit_head(self) -> tuple[int, str] | None:
        row = self.db.audit_head.find_one({"_id": 1})
        return (int(row["seq"]), str(row["hash"])) if row else None
