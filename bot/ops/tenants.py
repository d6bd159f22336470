"""The target's multi-tenant MongoDB, through pymongo: tenant discovery and mongorestore-compatible dumps.

Every URI goes to a real server through pymongo: the production MongoDB, or the local nx-27017 server that
the sandbox, `make local` and the tests start (``bot.localmongo``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import bson
from pymongo import MongoClient

from bot.config import TenantsConfig
from bot.errors import StepFailed
from bot.redact import redact_uri

SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,63}$")
# A server that is down or unreachable fails the step in seconds instead of hanging it; no single operation
# (one cursor batch of a dump, a cleanup's update_many on a large tenant) may take longer than timeoutMS. The
# URI's own values win: pymongo would let these keyword arguments override them.
TIMEOUTS_MS = {"serverSelectionTimeoutMS": 5_000, "connectTimeoutMS": 5_000, "timeoutMS": 300_000}


def connect(uri: str) -> MongoClient[dict[str, Any]]:
    """A pymongo client for ``uri`` (tz-aware datetimes, the timeouts above). Callers close it with ``close``."""
    given = {key.lower() for key, _ in parse_qsl(urlsplit(uri).query)}
    timeouts: dict[str, Any] = {key: value for key, value in TIMEOUTS_MS.items() if key.lower() not in given}
    return MongoClient(uri, tz_aware=True, **timeouts)


def close(client: MongoClient[dict[str, Any]]) -> None:
    client.close()


def default_database(uri: str) -> str:
    path = urlsplit(uri).path.lstrip("/")
    return path.split("?")[0] or "test"


@dataclass(frozen=True)
class Tenant:
    name: str
    db_name: str


def list_tenants(client: Any, uri: str, config: TenantsConfig) -> list[Tenant]:
    central = client[default_database(uri)]
    tenants = []
    for school in central[config.schools_collection].find(config.active_filter):
        db_name = school.get(config.db_name_field)
        if not isinstance(db_name, str) or not SAFE_NAME.match(db_name):
            raise StepFailed(f"a school has an unusable {config.db_name_field}: {str(db_name)[:40]!r}")
        tenants.append(Tenant(str(school.get(config.name_field) or db_name), db_name))
    return tenants


@dataclass
class CollectionDump:
    count: int
    bytes: int
    sha256: str
    source_count: int

    @property
    def verified(self) -> bool:
        return self.count == self.source_count


def dump_collection(db: Any, name: str, folder: Path) -> CollectionDump:
    """Write ``<folder>/<name>.bson`` and ``<name>.metadata.json`` the way mongodump does."""
    if not SAFE_NAME.match(name):
        raise StepFailed(f"refusing to dump a collection with an unusual name: {name[:40]!r}")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.bson"
    digest = hashlib.sha256()
    count = size = 0
    collection = db[name]
    source_count = collection.count_documents({})
    with target.open("wb") as handle:
        for document in collection.find({}, sort=[("_id", 1)]):
            data = bson.encode(document)
            handle.write(data)
            digest.update(data)
            count += 1
            size += len(data)
        handle.flush()
        os.fsync(handle.fileno())
    indexes = []
    for index_name, info in collection.index_information().items():
        indexes.append({"v": 2, "key": dict(info.get("key", [])), "name": index_name,
                        **({"unique": True} if info.get("unique") else {})})
    metadata = {"options": {}, "indexes": indexes, "collectionName": name, "type": "collection"}
    (folder / f"{name}.metadata.json").write_text(json.dumps(metadata), encoding="utf-8")
    return CollectionDump(count, size, digest.hexdigest(), source_count)


def count_bson(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in bson.decode_file_iter(handle))


def dump_database(client: Any, db_name: str, out: Path, only: list[str] | None = None,
                  on_collection: Callable[[str, CollectionDump], None] | None = None) -> dict[str, CollectionDump]:
    db = client[db_name]
    names = sorted(only if only is not None else db.list_collection_names())
    result = {}
    for name in names:
        dumped = dump_collection(db, name, out / db_name)
        result[name] = dumped
        if on_collection:
            on_collection(name, dumped)
    return result


def describe(uri: str) -> str:
    return redact_uri(uri)
