"""The state store: one small interface, two backends (SQLite, MongoDB).

A backend implements a handful of primitives (documents with a version, a counter, active-incident
keys, idempotency claims, leases, and the audit log); the typed operations the domain uses are built
once here on top of them, so both backends behave the same and one contract suite tests both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from bot.audit import GENESIS, AuditEvent, ChainReport, verify_chain
from bot.clock import to_iso
from bot.errors import StaleState
from bot.incident import Approval, CheckState, Incident, IncidentState, StepRun

Model = TypeVar("Model", bound=BaseModel)


class ActiveIncidentExists(Exception):
    """Another active incident already holds the channel or the target."""

    def __init__(self, key: str, incident_id: str) -> None:
        super().__init__(f"{key} is held by {incident_id}")
        self.key = key
        self.incident_id = incident_id


class Store(ABC):
    """Persistence of incidents, step runs, approvals, the audit log and delivery claims."""

    # ---- primitives every backend implements -------------------------------------------------
    @abstractmethod
    def _insert(self, kind: str, doc_id: str, doc: dict[str, Any], lookup: str | None = None) -> None:
        """Insert a new document at version 0. Raises StaleState if it exists."""

    @abstractmethod
    def _get(self, kind: str, doc_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def _replace(self, kind: str, doc_id: str, expected_version: int, doc: dict[str, Any],
                 lookup: str | None = None) -> None:
        """Write ``doc`` (whose version is expected_version + 1) only if the stored version is expected."""

    @abstractmethod
    def _find(self, kind: str, *, incident_id: str | None = None, lookup: str | None = None) -> list[dict[str, Any]]:
        ...

    @abstractmethod
    def next_number(self, counter: str) -> int:
        """Atomically increment and return a named counter (first value 1)."""

    @abstractmethod
    def _take_keys(self, keys: list[str], incident_id: str) -> None:
        """Take every key for the incident or none; raises ActiveIncidentExists naming the holder."""

    @abstractmethod
    def _release_keys(self, incident_id: str) -> None: ...

    @abstractmethod
    def _key_holder(self, key: str) -> str | None: ...

    @abstractmethod
    def claim(self, key: str, at: datetime) -> bool:
        """Record that ``key`` (an event id, an envelope...) was handled. False if it already was."""

    @abstractmethod
    def _append_audit(self, build: Any) -> AuditEvent:
        """Append ``build(seq, prev_hash)`` atomically after the current head."""

    @abstractmethod
    def audit_events(self, incident_id: str | None = None) -> list[AuditEvent]: ...

    @abstractmethod
    def audit_head(self) -> tuple[int, str] | None: ...

    @abstractmethod
    def try_lease(self, name: str, holder: str, now: datetime, ttl_s: float) -> bool:
        """Take or renew a named lease; True if ``holder`` holds it until now + ttl."""

    @abstractmethod
    def close(self) -> None: ...

    # ---- typed operations ----------------------------------------------------------------------
    def create_incident(self, incident: Incident, keys: list[str]) -> None:
        """Store a new active incident holding ``keys`` (its channel and target)."""
        self._take_keys(keys, incident.id)
        try:
            self._insert("incident", incident.id, incident.to_doc(), lookup=incident.channel)
        except Exception:
            self._release_keys(incident.id)
            raise

    def get_incident(self, incident_id: str) -> Incident | None:
        doc = self._get("incident", incident_id)
        return Incident.from_doc(doc) if doc else None

    def active_incident(self, key: str) -> Incident | None:
        holder = self._key_holder(key)
        return self.get_incident(holder) if holder else None

    def save_incident(self, incident: Incident) -> Incident:
        """Conditional write from the version that was read. Raises StaleState if someone else won."""
        saved = incident.model_copy(update={"version": incident.version + 1})
        self._replace("incident", incident.id, incident.version, saved.to_doc(), lookup=incident.channel)
        if saved.state is IncidentState.CLOSED:
            self._release_keys(incident.id)
        return saved

    def incidents(self) -> list[Incident]:
        docs = self._find("incident")
        return sorted((Incident.from_doc(d) for d in docs), key=lambda i: i.number)

    def add_step_run(self, run: StepRun) -> None:
        self._insert("step_run", run.id, run.model_dump(mode="json"))

    def save_step_run(self, run: StepRun) -> StepRun:
        return self._save("step_run", run)

    def get_step_run(self, run_id: str) -> StepRun | None:
        doc = self._get("step_run", run_id)
        return StepRun.model_validate(doc) if doc else None

    def step_runs(self, incident_id: str) -> list[StepRun]:
        docs = self._find("step_run", incident_id=incident_id)
        return sorted((StepRun.model_validate(d) for d in docs), key=lambda r: r.started_at)

    def add_approval(self, approval: Approval) -> None:
        self._insert("approval", approval.id, approval.model_dump(mode="json"), lookup=approval.message_ts)

    def save_approval(self, approval: Approval) -> Approval:
        return self._save("approval", approval, lookup=approval.message_ts)

    def get_approval(self, approval_id: str) -> Approval | None:
        doc = self._get("approval", approval_id)
        return Approval.model_validate(doc) if doc else None

    def approvals(self, incident_id: str | None = None) -> list[Approval]:
        docs = self._find("approval", incident_id=incident_id)
        return sorted((Approval.model_validate(d) for d in docs), key=lambda a: a.requested_at)

    def approval_for_message(self, message_ts: str) -> Approval | None:
        docs = self._find("approval", lookup=message_ts)
        return Approval.model_validate(docs[0]) if docs else None

    def audit(self, at: datetime, actor: str, action: str, incident_id: str | None = None, /,
              **data: Any) -> AuditEvent:
        """Append an event; at, actor, action and incident are positional so `data` may use any key."""
        def build(seq: int, prev_hash: str) -> AuditEvent:
            return AuditEvent(seq=seq, at=to_iso(at), incident_id=incident_id, actor=actor, action=action,
                              data=data, prev_hash=prev_hash).sealed()

        return self._append_audit(build)

    def verify_audit(self) -> ChainReport:
        return verify_chain(self.audit_events(), self.audit_head())

    def get_check(self, name: str) -> CheckState | None:
        doc = self._get("check", name)
        return CheckState.model_validate(doc) if doc else None

    def save_check(self, state: CheckState) -> CheckState:
        """Insert the first time, then conditional writes like every other record."""
        if state.version == 0 and self._get("check", state.id) is None:
            saved = state.model_copy(update={"version": 1})
            doc = saved.model_dump(mode="json")
            self._insert("check", state.id, doc)
            return saved
        return self._save("check", state)

    def checks(self) -> list[CheckState]:
        return sorted((CheckState.model_validate(d) for d in self._find("check")), key=lambda c: c.id)

    def _save(self, kind: str, record: Model, lookup: str | None = None) -> Model:
        version = int(getattr(record, "version"))  # noqa: B009 - every stored model has one
        saved = record.model_copy(update={"version": version + 1})
        self._replace(kind, str(getattr(record, "id")), version, saved.model_dump(mode="json"),  # noqa: B009
                      lookup=lookup)
        return saved


__all__ = ["GENESIS", "ActiveIncidentExists", "StaleState", "Store"]
