"""Runbook step 6 on one tenant database: the dry run, the cleanup, and its undo from the backup."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bson

from bot.config import CleanupConfig


def dry_run(client: Any, db_name: str, config: CleanupConfig) -> dict[str, Any]:
    """What the cleanup would change in ``db_name``. Reads only."""
    db = client[db_name]
    cases = db[config.collection]
    fields = {field: cases.count_documents({field: {"$exists": True}}) for field in config.unset_fields}
    touched = cases.count_documents({"$or": [{f: {"$exists": True}} for f in config.unset_fields]})
    existing = set(db.list_collection_names())
    collections = {name: (db[name].count_documents({}) if name in existing else None)
                   for name in config.drop_collections}
    return {"cases": touched, "fields": fields, "collections": collections}


def clean_tenant(client: Any, db_name: str, config: CleanupConfig) -> dict[str, Any]:
    """`$unset` the new fields and drop the new collections, as the runbook's script does."""
    db = client[db_name]
    result = db[config.collection].update_many({}, {"$unset": {field: "" for field in config.unset_fields}})
    existing = set(db.list_collection_names())
    dropped: dict[str, int | None] = {}
    for name in config.drop_collections:
        if name in existing:
            dropped[name] = db[name].count_documents({})
            db.drop_collection(name)
        else:
            dropped[name] = None
    return {"modified": int(result.modified_count), "dropped": dropped}


def _read_bson(path: Path) -> list[dict[str, Any]]:
    with path.open("rb") as handle:
        return list(bson.decode_file_iter(handle))


def restore_tenant(client: Any, db_name: str, backup: Path, config: CleanupConfig) -> dict[str, Any]:
    """Put back what the cleanup removed: the dropped collections and the unset fields, from the backup."""
    db = client[db_name]
    folder = backup / db_name
    restored: dict[str, int] = {}
    for name in config.drop_collections:
        path = folder / f"{name}.bson"
        if not path.exists():
            continue
        documents = _read_bson(path)
        db.drop_collection(name)
        if documents:
            db[name].insert_many(documents)
        restored[name] = len(documents)
    cases_path = folder / f"{config.collection}.bson"
    fields_restored = 0
    if cases_path.exists():
        for document in _read_bson(cases_path):
            values = {field: document[field] for field in config.unset_fields if field in document}
            if values:
                result = db[config.collection].update_one({"_id": document["_id"]}, {"$set": values})
                fields_restored += int(result.matched_count)
    return {"collections": restored, "cases": fields_restored}


def backed_up_view(backup: Path, db_name: str, config: CleanupConfig) -> dict[str, Any]:
    """The dry-run numbers as they were in the backup: what a complete restore must give back."""
    folder = backup / db_name
    cases = _read_bson(folder / f"{config.collection}.bson") if (folder / f"{config.collection}.bson").exists() else []
    fields = {field: sum(1 for c in cases if field in c) for field in config.unset_fields}
    touched = sum(1 for c in cases if any(field in c for field in config.unset_fields))
    collections = {name: (len(_read_bson(folder / f"{name}.bson")) if (folder / f"{name}.bson").exists() else None)
                   for name in config.drop_collections}
    return {"cases": touched, "fields": fields, "collections": collections}
