"""Backup runs on disk: ``<run>/<db>/<collection>.bson`` + ``.metadata.json`` (the layout ``mongorestore``
reads), and ``manifest.json`` written last by an atomic rename, so a run without a manifest is never used.

A run is never changed after its manifest exists. :func:`verify_run` re-reads it on disk and compares
every file with the manifest (present, size, document count, sha256) before anything relies on it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.ops import bsonfiles

MANIFEST = "manifest.json"
FORMAT = 2
SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,63}$")


@dataclass(frozen=True)
class Dumped:
    count: int
    bytes: int
    sha256: str
    source_count: int

    @property
    def verified(self) -> bool:
        return self.count == self.source_count


def dump_collection(db: Any, name: str, folder: Path) -> Dumped:
    """One pass over the collection: raw BSON batches written as they arrive, hashed and counted on the way."""
    if not SAFE_NAME.match(name):
        raise ValueError(f"refusing to dump a collection with an unusual name: {name[:40]!r}")
    collection = db[name]
    source_count = int(collection.estimated_document_count())
    with bsonfiles.BsonWriter(folder / f"{name}.bson") as out:
        for raw in collection.find_raw_batches({}):
            out.write(raw)
    assert out.facts is not None
    indexes = [{"v": 2, "key": dict(info.get("key", [])), "name": index_name,
                **({"unique": True} if info.get("unique") else {})}
               for index_name, info in collection.index_information().items()]
    metadata = {"options": {}, "indexes": indexes, "collectionName": name, "type": "collection"}
    bsonfiles.private_write(folder / f"{name}.metadata.json", json.dumps(metadata).encode())
    return Dumped(out.facts.count, out.facts.bytes, out.facts.sha256, source_count)


def dump_database(client: Any, db_name: str, run: Path, only: list[str] | None = None,
                  after: Callable[[str, str, Dumped], None] | None = None) -> dict[str, Dumped]:
    if not SAFE_NAME.match(db_name):
        raise ValueError(f"refusing to dump a database with an unusual name: {db_name[:40]!r}")
    db = client[db_name]
    folder = bsonfiles.private_dir(run / db_name)
    names = sorted(only if only is not None else db.list_collection_names())
    result: dict[str, Dumped] = {}
    for name in names:
        result[name] = dump_collection(db, name, folder)
        if after is not None:
            after(db_name, name, result[name])
    bsonfiles.fsync_dir(folder)
    return result


def dump_databases(client: Any, jobs: Sequence[tuple[str, list[str] | None]], run: Path, *, parallel: int = 4,
                   after: Callable[[str, str, Dumped], None] | None = None) -> dict[str, dict[str, Dumped]]:
    """Dump several databases, at most ``parallel`` at a time (pymongo clients are thread-safe)."""
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(jobs))), thread_name_prefix="backup") as pool:
        futures = {db: pool.submit(dump_database, client, db, run, only, after) for db, only in jobs}
        return {db: future.result() for db, future in futures.items()}


SAMPLE = 100  # documents measured when the server gives no collection statistics


@dataclass(frozen=True)
class Estimate:
    """What a dump of some databases will write, before it is taken: the BSON bytes and how each figure was got.

    ``from_stats``: collections sized by the server's ``collStats`` (MongoDB's ``size``: the uncompressed BSON of
    every document, which is what the dump writes). ``sampled``: collections whose statistics were refused or
    missing, sized as the average BSON size of up to :data:`SAMPLE` documents × the server's count."""

    bytes: int
    collections: int
    from_stats: int
    sampled: int


def _collection_bytes(db: Any, name: str) -> tuple[int, bool]:
    """One collection's data size and whether it came from ``collStats`` (else from a sample)."""
    # collStats' ``size`` on MongoDB is the uncompressed BSON of every document (not ``storageSize``, which is
    # compressed on disk). nx-27017, the local server the tests use, answers collStats too; its ``size`` is
    # larger than the BSON a dump writes (about 1.4x for small documents), which errs on the safe side.
    size: object = None
    try:
        size = db.command("collStats", name).get("size")
    except Exception:  # noqa: BLE001 - a server without collStats (or a view, or no privilege): measure instead
        size = None
    if isinstance(size, int | float) and size >= 0:
        return int(size), True
    # Fallback, honest about what it is: the average BSON size of a sample times the server's metadata count.
    # ``$sample`` picks documents at random on MongoDB; re-encoding gives their exact BSON size.
    collection = db[name]
    count = int(collection.estimated_document_count())
    if count == 0:
        return 0, False
    try:
        sample = list(collection.aggregate([{"$sample": {"size": SAMPLE}}]))
    except Exception:  # noqa: BLE001 - no $sample: the first documents are a sample too
        sample = list(collection.find({}).limit(SAMPLE))
    if not sample:
        return 0, False
    import bson  # with the first backup, like pymongo: an idle bot has no need of it

    average = sum(len(bson.encode(doc)) for doc in sample) / len(sample)
    return int(average * count), False


def estimate_databases(client: Any, jobs: Sequence[tuple[str, list[str] | None]], *,
                       parallel: int = 4) -> Estimate:
    """How many bytes :func:`dump_databases` would write for ``jobs``, from the server's statistics."""
    def one(job: tuple[str, list[str] | None]) -> list[tuple[int, bool]]:
        db_name, only = job
        db = client[db_name]
        names = sorted(only if only is not None else db.list_collection_names())
        return [_collection_bytes(db, name) for name in names if SAFE_NAME.match(name)]

    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(jobs))), thread_name_prefix="estimate") as pool:
        sizes = [size for found in pool.map(one, jobs) for size in found]
    return Estimate(bytes=sum(s for s, _ in sizes), collections=len(sizes),
                    from_stats=sum(1 for _, stats in sizes if stats), sampled=sum(1 for _, stats in sizes if not stats))


@dataclass
class Manifest:
    run_id: str
    incident: str
    created_at: str
    commit: str
    central_database: str
    tenants: list[str]
    databases: dict[str, dict[str, dict[str, Any]]]
    extras: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return (json.dumps({"format": FORMAT, **self.__dict__}, indent=2, sort_keys=True) + "\n").encode()

    @property
    def documents(self) -> int:
        return sum(int(c["count"]) for db in self.databases.values() for c in db.values())

    @classmethod
    def load(cls, data: bytes) -> Manifest:
        raw = json.loads(data)
        raw.pop("format", None)
        return cls(**raw)


def write_manifest(run: Path, manifest: Manifest) -> str:
    """Write the manifest last, atomically (temp file, fsync, rename, fsync the folder); return its sha256."""
    data = manifest.to_json()
    temp = run / (MANIFEST + ".tmp")
    bsonfiles.private_write(temp, data)
    os.replace(temp, run / MANIFEST)
    bsonfiles.fsync_dir(run)
    return hashlib.sha256(data).hexdigest()


def describe_extra(path: Path) -> dict[str, Any]:
    return {"bytes": path.stat().st_size, "sha256": bsonfiles.sha256_file(path)}


@dataclass(frozen=True)
class RunCheck:
    ok: bool
    problems: list[str]
    documents: int
    manifest: Manifest | None


def verify_run(run: Path, manifest_sha256: str | None, databases: Iterable[str] | None = None) -> RunCheck:
    """Re-read a backup run on disk: the manifest is the one recorded, and every file of the chosen databases
    (default: all) is present with the manifest's size, document count and sha256."""
    problems: list[str] = []
    path = run / MANIFEST
    try:
        data = path.read_bytes()
    except OSError:
        return RunCheck(False, [f"{path} is missing (the backup run never finished)"], 0, None)
    if manifest_sha256 and hashlib.sha256(data).hexdigest() != manifest_sha256:
        return RunCheck(False, [f"{path} changed since the backup was recorded"], 0, None)
    try:
        manifest = Manifest.load(data)
    except (ValueError, TypeError) as error:
        return RunCheck(False, [f"{path} cannot be read: {error}"], 0, None)
    wanted = set(manifest.databases) if databases is None else set(databases)
    for db in sorted(wanted):
        if db not in manifest.databases:
            problems.append(f"database {db} is not in the backup")
            continue
        for name, expected in sorted(manifest.databases[db].items()):
            file = run / db / f"{name}.bson"
            try:
                facts = bsonfiles.scan(file)
            except FileNotFoundError:
                problems.append(f"{db}/{name}.bson is missing")
                continue
            except (OSError, bsonfiles.CorruptFile) as error:
                problems.append(f"{db}/{name}.bson cannot be read: {error}")
                continue
            if facts.bytes != expected["bytes"] or facts.sha256 != expected["sha256"]:
                same_hash = "matches" if facts.sha256 == expected["sha256"] else "differs"
                problems.append(f"{db}/{name}.bson differs from the manifest ({facts.bytes} bytes, "
                                f"manifest {expected['bytes']}; sha256 {same_hash})")
            elif facts.count != expected["count"]:
                problems.append(f"{db}/{name}.bson holds {facts.count} documents, manifest {expected['count']}")
    documents = sum(int(c["count"]) for db in wanted if db in manifest.databases
                    for c in manifest.databases[db].values())
    return RunCheck(not problems, problems, documents, manifest)
