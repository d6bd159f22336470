"""The state store's shared half: the domain's contract (:class:`bot.domain.store.Store`) built once on a
handful of primitives, two backends (SQLite, MongoDB) implementing the primitives.

A backend implements the primitives (versioned documents with two indexed tags, a counter, active-incident
keys, expiring claims, leases, the audit log); the typed operations the domain uses are built here on top
of them, so both backends behave the same and one contract suite tests both.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from bot.audit import GENESIS, AuditEvent, ChainReport, verify_chain
from bot.clock import to_iso
from bot.domain.approvals import Approval, ApprovalStatus, DangerPlan, TenantResult
from bot.domain.checks import CheckResult, CheckState
from bot.domain.incident import Incident, IncidentState
from bot.domain.runs import StepRun
from bot.domain.store import ActiveIncidentExists
from bot.errors import ConfigError, StaleState

log = logging.getLogger(__name__)
Model = TypeVar("Model", bound=BaseModel)
AuditBuilder = Callable[[int, str], AuditEvent]

# The layout of the stored state. Version 1 is every store written before the store carried a version (records
# maybe without the indexed status, claims maybe without an expiry); version 2 is labelled and stamped. A change
# to the layout that an older bot would misread raises it, with the step that brings a store up to it in migrate().
SCHEMA_VERSION = 2
UNVERSIONED = 1


def _bot_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rollback-bot")
    except PackageNotFoundError:
        return "from a source tree"


class StoreTooNew(ConfigError):
    """The store was written by a newer release, whose layout this bot would misread: refused at start-up, with
    the store left unchanged."""

    def __init__(self, where: str, found: int) -> None:
        super().__init__(
            f"{where} has schema version {found}, but this rollback-bot ({_bot_version()}) supports schema version "
            f"{SCHEMA_VERSION} at most",
            hint="a newer rollback-bot wrote it: run that release or a later one (`rollback-bot --version` shows "
                 "this one); a store is never migrated back, and this one was left unchanged")
        self.found = found


class DocumentStore(ABC):
    """The domain's Store on versioned documents: persistence of incidents, step runs, approvals, plans, tenant
    results, checks, claims and the audit log."""

    # ---- primitives every backend implements -------------------------------------------------
    @abstractmethod
    def _insert(self, kind: str, doc_id: str, doc: dict[str, Any], *, lookup: str | None = None,
                status: str | None = None) -> None:
        """Insert a new document at version 0. Raises StaleState if it exists."""

    @abstractmethod
    def _get(self, kind: str, doc_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def _put(self, kind: str, doc_id: str, doc: dict[str, Any], *, lookup: str | None = None) -> None:
        """Insert or replace without a version check: only for slots nobody races on (check history)."""

    @abstractmethod
    def _replace(self, kind: str, doc_id: str, expected_version: int, doc: dict[str, Any], *,
                 lookup: str | None = None, status: str | None = None) -> None:
        """Write ``doc`` (whose version is expected_version + 1) only if the stored version is expected."""

    @abstractmethod
    def _find(self, kind: str, *, incident_id: str | None = None, lookup: str | None = None,
              statuses: tuple[str, ...] | None = None) -> list[dict[str, Any]]: ...

    @abstractmethod
    def _unlabelled(self, kind: str) -> list[dict[str, Any]]:
        """Records of ``kind`` stored without the indexed status (written by an older version)."""

    @abstractmethod
    def _label(self, kind: str, doc_id: str, status: str) -> None:
        """Set the indexed status of a record that has none (the record itself is unchanged)."""

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
    def _key_holders(self) -> list[str]: ...

    @abstractmethod
    def claim(self, key: str, now: datetime, ttl_s: float = 86_400.0) -> bool:
        """Record that ``key`` (a delivery, an interaction, a signature) was handled; False if it already was.

        A claim expires after ``ttl_s``; :meth:`prune` removes expired ones."""

    @abstractmethod
    def prune(self, now: datetime) -> int:
        """Delete expired claims; returns how many."""

    @abstractmethod
    def _append_audit(self, build: AuditBuilder) -> AuditEvent:
        """Append ``build(seq, prev_hash)`` atomically after the current head."""

    @abstractmethod
    def audit_events(self, incident_id: str | None = None) -> list[AuditEvent]: ...

    @abstractmethod
    def audit_head(self) -> tuple[int, str] | None: ...

    @abstractmethod
    def try_lease(self, name: str, holder: str, now: datetime, ttl_s: float) -> bool:
        """Take or renew a named lease; True if ``holder`` holds it until now + ttl."""

    @abstractmethod
    def set_lease(self, name: str, holder: str, now: datetime, ttl_s: float) -> None:
        """Take a lease whoever holds it (a replica replacing its own dead incarnation)."""

    @abstractmethod
    def lease(self, name: str) -> tuple[str, datetime] | None:
        """The current holder and expiry of a lease, if any."""

    @abstractmethod
    def release_lease(self, name: str, holder: str, now: datetime) -> None:
        """End the lease now if ``holder`` holds it."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def _stamp_schema(self, expected: int | None, version: int) -> bool:
        """Stamp the store with schema ``version`` if its stamp is still ``expected`` (None: no stamp); False
        when another process stamped it first."""

    # ---- upgrading older stores --------------------------------------------------------------------
    def refuse_newer(self, where: str, found: int | None) -> None:
        """Raise :class:`StoreTooNew` for a store stamped with a schema version newer than this bot's."""
        if found is not None and found > SCHEMA_VERSION:
            raise StoreTooNew(where, found)

    def migrate(self, found: int | None) -> bool:
        """Bring a store stamped ``found`` (None: written before stores carried a version) up to SCHEMA_VERSION.

        Every step is idempotent, and the stamp is a conditional write, so of several replicas starting on the
        same old store exactly one records the migration: an audit event ``store.migrated`` and a log line.
        Returns True for that one."""
        if found == SCHEMA_VERSION:
            return False
        old = UNVERSIONED if found is None else found
        labelled = self.upgrade()  # 1 → 2: records without the indexed status get it
        if not self._stamp_schema(found, SCHEMA_VERSION):
            return False
        self.audit(datetime.now(UTC), "bot", "store.migrated", None, from_version=old, to_version=SCHEMA_VERSION,
                   labelled=labelled)
        log.info("state store migrated from schema version %s to %s (%s record(s) labelled)", old, SCHEMA_VERSION,
                 labelled)
        return True

    def upgrade(self) -> int:
        """Label records an older version wrote without the indexed status, from the record itself, so the
        queries by status (incidents with pending posts, open approvals, sweeps) find them. Idempotent, and a
        single indexed query once done; :meth:`migrate` runs it on a store from before schema version 2. Returns
        how many it labelled."""
        labelled = 0
        for doc in self._unlabelled("incident"):
            self._label("incident", str(doc["id"]), Incident.model_validate(doc).store_status())
            labelled += 1
        for kind in ("step_run", "approval"):
            for doc in self._unlabelled(kind):
                self._label(kind, str(doc["id"]), str(doc.get("status") or "unknown"))
                labelled += 1
        return labelled

    # ---- incidents ------------------------------------------------------------------------------
    def create_incident(self, incident: Incident, keys: list[str]) -> None:
        """Store a new active incident holding ``keys`` (its channel and target)."""
        self._take_keys(keys, incident.id)
        try:
            self._insert("incident", incident.id, incident.model_dump(mode="json"), lookup=incident.channel,
                         status=incident.store_status())
        except Exception:
            self._release_keys(incident.id)
            raise

    def get_incident(self, incident_id: str) -> Incident | None:
        doc = self._get("incident", incident_id)
        return Incident.model_validate(doc) if doc else None

    def active_incident(self, key: str) -> Incident | None:
        holder = self._key_holder(key)
        return self.get_incident(holder) if holder else None

    def active_incidents(self) -> list[Incident]:
        found = (self.get_incident(i) for i in sorted(set(self._key_holders())))
        return [i for i in found if i is not None and i.state is IncidentState.ACTIVE]

    def incidents_with_pending_posts(self) -> list[Incident]:
        """Active incidents, and closed ones whose final stakeholder post is not recorded as sent yet."""
        docs = self._find("incident", statuses=("active", "closed-pending"))
        return sorted((Incident.model_validate(d) for d in docs), key=lambda i: i.number)

    def incidents_in_channel(self, channel: str) -> list[Incident]:
        docs = self._find("incident", lookup=channel)
        return sorted((Incident.model_validate(d) for d in docs), key=lambda i: i.number)

    def closed_incidents(self) -> list[Incident]:
        docs = self._find("incident", statuses=("closed", "closed-pending"))
        return sorted((Incident.model_validate(d) for d in docs), key=lambda i: i.number)

    def save_incident(self, incident: Incident) -> Incident:
        """Conditional write from the version that was read. Raises StaleState if someone else won."""
        saved = incident.model_copy(update={"version": incident.version + 1})
        self._replace("incident", incident.id, incident.version, saved.model_dump(mode="json"),
                      lookup=incident.channel, status=saved.store_status())
        if saved.state is IncidentState.CLOSED:
            self._release_keys(incident.id)
        return saved

    # ---- step runs -------------------------------------------------------------------------------
    def add_step_run(self, run: StepRun) -> None:
        self._insert("step_run", run.id, run.model_dump(mode="json"), status=run.status.value)

    def save_step_run(self, run: StepRun) -> StepRun:
        return self._save("step_run", run, status=run.status.value)

    def get_step_run(self, run_id: str) -> StepRun | None:
        doc = self._get("step_run", run_id)
        return StepRun.model_validate(doc) if doc else None

    def step_runs(self, incident_id: str) -> list[StepRun]:
        docs = self._find("step_run", incident_id=incident_id)
        return sorted((StepRun.model_validate(d) for d in docs), key=lambda r: r.started_at)

    # ---- approvals, plans, tenant results ----------------------------------------------------------
    def add_approval(self, approval: Approval) -> None:
        self._insert("approval", approval.id, approval.model_dump(mode="json"), lookup=approval.message_ts,
                     status=approval.status.value)

    def save_approval(self, approval: Approval) -> Approval:
        return self._save("approval", approval, lookup=approval.message_ts, status=approval.status.value)

    def get_approval(self, approval_id: str) -> Approval | None:
        doc = self._get("approval", approval_id)
        return Approval.model_validate(doc) if doc else None

    def approvals(self, incident_id: str | None = None) -> list[Approval]:
        docs = self._find("approval", incident_id=incident_id)
        return sorted((Approval.model_validate(d) for d in docs), key=lambda a: a.requested_at)

    def approvals_with_status(self, *statuses: ApprovalStatus) -> list[Approval]:
        docs = self._find("approval", statuses=tuple(s.value for s in statuses))
        return sorted((Approval.model_validate(d) for d in docs), key=lambda a: a.requested_at)

    def approval_for_message(self, message_ts: str) -> Approval | None:
        docs = self._find("approval", lookup=message_ts)
        return Approval.model_validate(docs[0]) if docs else None

    def put_plan(self, plan: DangerPlan, incident_id: str) -> None:
        self._insert("plan", plan.approval_id, {**plan.model_dump(mode="json"), "incident_id": incident_id})

    def get_plan(self, approval_id: str) -> DangerPlan | None:
        doc = self._get("plan", approval_id)
        return DangerPlan.model_validate(doc) if doc else None

    def add_tenant_result(self, result: TenantResult) -> bool:
        """Insert once; False when this tenant already has a result (it is never done twice)."""
        try:
            self._insert("tenant_result", result.id, result.model_dump(mode="json"), lookup=result.approval_id)
        except StaleState:
            return False
        return True

    def tenant_results(self, approval_id: str) -> list[TenantResult]:
        docs = self._find("tenant_result", lookup=approval_id)
        return sorted((TenantResult.model_validate(d) for d in docs), key=lambda r: r.at)

    # ---- the audit log ----------------------------------------------------------------------------
    def audit(self, at: datetime, actor: str, action: str, incident_id: str | None = None, /,
              **data: Any) -> AuditEvent:
        """Append an event; at, actor, action and incident are positional so `data` may use any key."""
        def build(seq: int, prev_hash: str) -> AuditEvent:
            return AuditEvent(seq=seq, at=to_iso(at), incident_id=incident_id, actor=actor, action=action,
                              data=data, prev_hash=prev_hash).sealed()

        return self._append_audit(build)

    def verify_audit(self) -> ChainReport:
        """The whole log against its head. The head is read first: read after the events, an append that a
        running bot made between the two reads looked like events cut off the end (``verify_chain``)."""
        head = self.audit_head()
        return verify_chain(self.audit_events(), head)

    # ---- scheduled checks --------------------------------------------------------------------------
    def get_check(self, name: str) -> CheckState | None:
        doc = self._get("check", name)
        return CheckState.model_validate(doc) if doc else None

    def save_check(self, state: CheckState) -> CheckState:
        """Insert the first time, then conditional writes like every other record."""
        if state.version == 0 and self._get("check", state.id) is None:
            saved = state.model_copy(update={"version": 1})
            self._insert("check", state.id, saved.model_dump(mode="json"))
            return saved
        return self._save("check", state)

    def checks(self) -> list[CheckState]:
        return sorted((CheckState.model_validate(d) for d in self._find("check")), key=lambda c: c.id)

    def add_check_result(self, result: CheckResult, slot: int) -> None:
        """One slot of a check's ring-buffer history: writing it costs the same however long the history is."""
        self._put("check_result", f"{result.name}#{slot}", result.model_dump(mode="json"), lookup=result.name)

    def check_history(self, name: str) -> list[CheckResult]:
        docs = self._find("check_result", lookup=name)
        return sorted((CheckResult.model_validate(d) for d in docs), key=lambda r: r.at)

    def _save(self, kind: str, record: Model, *, lookup: str | None = None, status: str | None = None) -> Model:
        version = int(getattr(record, "version"))  # noqa: B009 - every stored model has one
        saved = record.model_copy(update={"version": version + 1})
        self._replace(kind, str(getattr(record, "id")), version, saved.model_dump(mode="json"),  # noqa: B009
                      lookup=lookup, status=status)
        return saved


__all__ = ["GENESIS", "SCHEMA_VERSION", "ActiveIncidentExists", "DocumentStore", "StaleState", "StoreTooNew"]
