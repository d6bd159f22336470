"""Runbook step 6 on one tenant database: the dry run, the cleanup, and its undo from a backup run.

The dry run is one aggregation per tenant (a ``$facet`` of ``$exists`` matches, so the collection is read
once) plus a count of each collection to drop. The re-count right before an approved run is cheaper: one
aggregation after a listing counts only what the drift check compares, the ``$unset``'s own filter and each
collection to drop (by ``$unionWith``). The dry run keeps its counts apart: on nx-27017 a ``$facet`` followed
by any ``$unionWith`` is computed batch by batch, giving a list of partial counts. Restores stream from the
backup files and write in batches with ``bulk_write``/``insert_many``, so memory stays flat in the size of a
collection.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot import faults
from bot.config import CleanupConfig
from bot.ops import bsonfiles

if TYPE_CHECKING:  # pymongo is imported on first use: a bot that is idle has no need of it
    from pymongo import UpdateOne

BATCH = 1000


def _carrying(config: CleanupConfig) -> dict[str, Any]:
    """The cases carrying at least one of the fields: the `$unset`'s filter, and what the dry runs count."""
    return {"$or": [{f: {"$exists": True}} for f in config.unset_fields]}


#: The field that tells a collection's count from the cases' in the re-count's results.
TAG = "rollback_bot_collection"


def _collections(db: Any, names: list[str], holding: Collection[str] = ()) -> dict[str, int | None]:
    """The documents of each collection in ``names``; None: it does not exist. A collection is counted only once
    it is known to exist (some servers create a collection that is counted, nx-27017 among them): those in
    ``holding`` (seen holding documents, by the approved dry run) are counted at once, since a count above 0
    proves it; the others, and one now counting none, after listing the collections (filtered here, not with a
    listCollections filter: fewer server differences)."""
    counts: dict[str, int | None] = {name: int(db[name].count_documents({})) for name in names if name in holding}
    unsure = [name for name in names if not counts.get(name)]
    if unsure:
        existing = set(db.list_collection_names())
        counts.update({name: (int(db[name].count_documents({})) if name in existing else None) for name in unsure})
    return {name: counts[name] for name in names}


@dataclass(frozen=True)
class Counts:
    cases: int
    fields: dict[str, int]
    collections: dict[str, int | None]  # None: the collection does not exist


def dry_run(client: Any, db_name: str, config: CleanupConfig) -> Counts:
    """What the cleanup would change in ``db_name``. Reads only."""
    db = client[db_name]
    fields = list(config.unset_fields)
    facets: dict[str, list[dict[str, Any]]] = {"any": [{"$match": _carrying(config)}, {"$count": "n"}]}
    for index, name in enumerate(fields):
        facets[f"f{index}"] = [{"$match": {name: {"$exists": True}}}, {"$count": "n"}]
    rows = list(db[config.collection].aggregate([{"$facet": facets}]))
    row = rows[0] if rows else {}

    def count(key: str) -> int:
        found = row.get(key) or []
        return int(found[0]["n"]) if found else 0

    return Counts(count("any"), {name: count(f"f{i}") for i, name in enumerate(fields)},
                  _collections(db, config.drop_collections))


@dataclass(frozen=True)
class Recount:
    cases: int
    collections: dict[str, int | None]  # None: the collection does not exist


def recount(client: Any, db_name: str, config: CleanupConfig) -> Recount:
    """One count per operation the cleanup would run on ``db_name``, all in one aggregation after a listing: the
    cases its `$unset` would change (with that exact filter) and the documents of each collection it would drop,
    each by a ``$unionWith``. Only a listed collection is counted (a read-only check never counts a collection it
    has not seen: some servers create it); filtered here, not with a listCollections filter: fewer server
    differences. Reads only."""
    db = client[db_name]
    names = list(dict.fromkeys(config.drop_collections))
    existing = set(db.list_collection_names()) if names else set()
    unions = [{"$unionWith": {"coll": name, "pipeline": [{"$count": "n"}, {"$addFields": {TAG: {"$literal": name}}}]}}
              for name in names if name in existing]
    rows = list(db[config.collection].aggregate([{"$match": _carrying(config)}, {"$count": "n"}, *unions]))
    cases = [int(row["n"]) for row in rows if TAG not in row and set(row) <= {"n", "_id"}]
    counted = {row[TAG]: int(row["n"]) for row in rows if TAG in row and set(row) <= {"n", TAG, "_id"}}
    if len(cases) > 1 or len(cases) + len(counted) != len(rows):  # never a count read from partial answers
        raise RuntimeError(f"the server answered the re-check of {db_name} with {len(rows)} row(s) where at most "
                           f"{1 + len(unions)} count(s), one each, were asked for")
    # $count sends no document when it counted none: no cases to change, or an empty collection (listed: it exists)
    return Recount(cases[0] if cases else 0,
                   {name: counted.get(name, 0) if name in existing else None for name in config.drop_collections})


@dataclass(frozen=True)
class Cleaned:
    modified: int
    dropped: dict[str, int | None]


def clean_tenant(client: Any, db_name: str, config: CleanupConfig, holding: Collection[str] = ()) -> Cleaned:
    """`$unset` the new fields and drop the new collections, as the runbook's script does, counting each one's
    documents right before (``holding``: see ``_collections``). Idempotent."""
    db = client[db_name]
    result = db[config.collection].update_many(_carrying(config), {"$unset": {f: "" for f in config.unset_fields}})
    faults.point("cleanup.fields_unset")  # inside one tenant: fields gone, collections not dropped yet
    dropped = _collections(db, config.drop_collections, holding)
    for name, count in dropped.items():
        if count is not None:
            db.drop_collection(name)
    return Cleaned(int(result.modified_count), dropped)


def backed_up_view(run: Path, db_name: str, config: CleanupConfig) -> Counts:
    """The dry-run numbers as the backup holds them: what a complete restore must give back. Streams."""
    folder = run / db_name
    cases_file = folder / f"{config.collection}.bson"
    fields = {name: 0 for name in config.unset_fields}
    touched = 0
    if cases_file.exists():
        for document in bsonfiles.documents(cases_file):
            present = [name for name in config.unset_fields if name in document]
            touched += bool(present)
            for name in present:
                fields[name] += 1
    collections: dict[str, int | None] = {}
    for name in config.drop_collections:
        file = folder / f"{name}.bson"
        collections[name] = bsonfiles.scan(file).count if file.exists() else None
    return Counts(touched, fields, collections)


@dataclass
class Restored:
    collections: dict[str, int] = field(default_factory=dict)
    cases: int = 0


def _field_updates(file: Path, fields: list[str]) -> Iterator[UpdateOne]:
    from pymongo import UpdateOne

    for document in bsonfiles.documents(file):
        values = {name: document[name] for name in fields if name in document}
        if values:
            yield UpdateOne({"_id": document["_id"]}, {"$set": values})


def restore_tenant(client: Any, db_name: str, run: Path, config: CleanupConfig, batch: int = BATCH) -> Restored:
    """Put back what the cleanup removed, from one backup run: the dropped collections exactly as backed up
    (dropped first, so a re-run gives the same result), and the unset fields on the backed-up documents."""
    db = client[db_name]
    folder = run / db_name
    restored = Restored()
    for name in config.drop_collections:
        file = folder / f"{name}.bson"
        if not file.exists():
            continue
        db.drop_collection(name)
        written = 0
        for chunk in bsonfiles.batches(file, batch):
            db[name].insert_many(chunk, ordered=False)
            written += len(chunk)
        restored.collections[name] = written
    cases_file = folder / f"{config.collection}.bson"
    if cases_file.exists():
        pending: list[UpdateOne] = []
        for update in _field_updates(cases_file, list(config.unset_fields)):
            pending.append(update)
            if len(pending) >= batch:
                restored.cases += db[config.collection].bulk_write(pending, ordered=False).matched_count
                pending = []
        if pending:
            restored.cases += db[config.collection].bulk_write(pending, ordered=False).matched_count
    return restored
