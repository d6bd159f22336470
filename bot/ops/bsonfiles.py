"""BSON files the way ``mongodump`` writes them, streamed: memory stays flat whatever the collection's size.

- :class:`BsonWriter` appends raw BSON (a whole batch from ``find_raw_batches`` at a time), hashing and
  counting documents as it writes (one pass, no decode), then ``fsync``s. Files are created 0600.
- :func:`scan` reads a file once and returns its size, document count (from the length prefixes) and
  sha256: what re-verification compares with the manifest.
- :func:`documents` decodes a file lazily, in batches, for restores and restore plans.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHUNK = 1 << 20
BATCH_BYTES = 2 << 20  # a restore batch holds about this much BSON (and its decoded form) at a time
_LEN = struct.Struct("<i")


class CorruptFile(Exception):
    """A BSON file whose length prefixes do not add up."""


def private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def private_write(path: Path, data: bytes) -> None:
    """Write a whole small file, mode 0600, fsynced."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, 0o600)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Counter:
    """Counts BSON documents in a byte stream by their length prefixes, across chunk boundaries."""

    def __init__(self) -> None:
        self.count = 0
        self._skip = 0  # bytes of the current document still to pass
        self._head = b""  # a length prefix split across chunks

    def feed(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        pos, end = 0, len(view)
        while pos < end:
            if self._skip:
                step = min(self._skip, end - pos)
                self._skip -= step
                pos += step
                continue
            need = 4 - len(self._head)
            take = bytes(view[pos:pos + need])
            self._head += take
            pos += len(take)
            if len(self._head) < 4:
                return
            (length,) = _LEN.unpack(self._head)
            self._head = b""
            if length < 5:
                raise CorruptFile(f"a document claims {length} bytes")
            self.count += 1
            self._skip = length - 4

    def finish(self) -> int:
        if self._skip or self._head:
            raise CorruptFile("the file ends inside a document")
        return self.count


@dataclass(frozen=True)
class FileFacts:
    count: int
    bytes: int
    sha256: str


class BsonWriter:
    """``with BsonWriter(path) as out: out.write(raw_batch)`` → ``out.facts`` after the block."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._digest = hashlib.sha256()
        self._counter = _Counter()
        self._size = 0
        self._handle: Any = None
        self.facts: FileFacts | None = None

    def __enter__(self) -> BsonWriter:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._handle = os.fdopen(fd, "wb")
        return self

    def write(self, raw: bytes) -> None:
        self._handle.write(raw)
        self._digest.update(raw)
        self._counter.feed(raw)
        self._size += len(raw)

    def __exit__(self, kind: object, *exc: object) -> None:
        handle, self._handle = self._handle, None
        try:
            if kind is None:
                handle.flush()
                os.fsync(handle.fileno())
        finally:
            handle.close()
        if kind is None:
            self.facts = FileFacts(self._counter.finish(), self._size, self._digest.hexdigest())


def scan(path: Path) -> FileFacts:
    """Read a file once: its size, document count and sha256."""
    digest, counter, size = hashlib.sha256(), _Counter(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            counter.feed(chunk)
            size += len(chunk)
    return FileFacts(counter.finish(), size, digest.hexdigest())


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def raw_documents(path: Path) -> Iterator[bytes]:
    """Each document's raw BSON, one at a time."""
    with path.open("rb") as handle:
        while head := handle.read(4):
            if len(head) < 4:
                raise CorruptFile(f"{path.name}: a truncated length prefix at the end")
            (length,) = _LEN.unpack(head)
            if length < 5:
                raise CorruptFile(f"{path.name}: a document length of {length}")
            rest = handle.read(length - 4)
            if len(rest) < length - 4:
                raise CorruptFile(f"{path.name}: the last document is truncated")
            yield head + rest


def documents(path: Path) -> Iterator[dict[str, Any]]:
    """Decode documents one at a time."""
    import bson  # with the first restore: an idle bot has no need of it (tests/test_cli.py checks)

    for raw in raw_documents(path):
        yield bson.decode(raw)


def batches(path: Path, size: int = 1000, max_bytes: int = BATCH_BYTES) -> Iterator[list[dict[str, Any]]]:
    """Decoded documents in batches of at most ``size`` documents and about ``max_bytes`` of BSON, so memory
    stays bounded by the batch, whatever the file's size or its documents' sizes."""
    import bson

    batch: list[dict[str, Any]] = []
    held = 0
    for raw in raw_documents(path):
        batch.append(bson.decode(raw))
        held += len(raw)
        if len(batch) >= size or held >= max_bytes:
            yield batch
            batch, held = [], 0
    if batch:
        yield batch
