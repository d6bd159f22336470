"""The append-only, hash-chained audit log.

Each event carries the hash of the one before it, so editing, reordering or deleting an event
breaks the chain. The store also keeps the head (last sequence number and hash), so cutting
events off the end is caught too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

GENESIS = "0" * 64


class AuditEvent(BaseModel):
    seq: int
    at: str
    incident_id: str | None
    actor: str
    action: str
    data: dict[str, Any] = Field(default_factory=dict)
    prev_hash: str
    hash: str = ""

    def compute_hash(self) -> str:
        body = self.model_dump(mode="json", exclude={"hash"})
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def sealed(self) -> AuditEvent:
        return self.model_copy(update={"hash": self.compute_hash()})


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    problem: str | None = None
    seq: int | None = None

    def __str__(self) -> str:
        if self.ok:
            return f"audit chain intact ({self.checked} events)"
        return f"audit chain broken at event {self.seq}: {self.problem}"


def verify_chain(events: list[AuditEvent], head: tuple[int, str] | None) -> ChainReport:
    """Check an entire log, in sequence order, against the stored head, read **before** the events.

    An append writes its event, then moves the head; so every event up to a head read first was written before
    the events were read, and one missing there is missing. Events after it may still be being appended by a
    running bot or another replica while they are read: they are checked as far as they run unbroken, and a gap
    among them ends the check (the next check, with a later head, covers them) instead of raising a false
    alarm."""
    prev = GENESIS
    expected_seq = 1
    for event in events:
        if event.seq != expected_seq:
            if head is not None and expected_seq > head[0]:
                break  # an append in flight after the head was read
            return ChainReport(False, expected_seq - 1, f"event {expected_seq} is missing", expected_seq)
        if event.prev_hash != prev:
            return ChainReport(False, expected_seq - 1, "it does not follow the event before it", event.seq)
        if event.compute_hash() != event.hash:
            return ChainReport(False, expected_seq - 1, "its content was changed after it was written", event.seq)
        prev = event.hash
        expected_seq += 1
    last = expected_seq - 1
    if head is not None:
        head_seq, head_hash = head
        if head_seq > last:
            return ChainReport(False, last, f"events after {last} are missing (head is {head_seq})", last + 1)
        by_seq = {e.seq: e for e in events}
        if head_seq and by_seq[head_seq].hash != head_hash:
            return ChainReport(False, last, "the head hash does not match the log", head_seq)
    return ChainReport(True, last)
