"""What the domain asks of the state store: the contract, owned here, implemented by ``bot/store``.

Every record is read and written typed (the domain's own models), and every write that people or replicas
may race on is conditional: ``save_*`` raises :class:`bot.errors.StaleState` when someone else wrote first.
The backends (SQLite, MongoDB) build these operations once on a few primitives in ``bot/store/base.py``;
the contract suite in ``tests/store`` runs against each of them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from bot.audit import AuditEvent, ChainReport
from bot.domain.approvals import Approval, ApprovalStatus, DangerPlan, TenantResult
from bot.domain.checks import CheckResult, CheckState
from bot.domain.incident import Incident
from bot.domain.ownership import Leases
from bot.domain.runs import StepRun


class ActiveIncidentExists(Exception):
    """Another active incident already holds the channel or the target."""

    def __init__(self, key: str, incident_id: str) -> None:
        super().__init__(f"{key} is held by {incident_id}")
        self.key = key
        self.incident_id = incident_id


class Store(Leases, Protocol):
    """Persistence of incidents, step runs, approvals, plans, tenant results, checks, claims, leases and the
    audit log."""

    # ---- incidents ------------------------------------------------------------------------------
    def next_number(self, counter: str) -> int:
        """Atomically increment and return a named counter (first value 1)."""
        ...

    def create_incident(self, incident: Incident, keys: list[str]) -> None:
        """Store a new active incident holding ``keys`` (its channel and target); raises
        :class:`ActiveIncidentExists` naming the holder of one of them."""
        ...

    def get_incident(self, incident_id: str) -> Incident | None: ...

    def active_incident(self, key: str) -> Incident | None: ...

    def active_incidents(self) -> list[Incident]: ...

    def incidents_with_pending_posts(self) -> list[Incident]:
        """Active incidents, and closed ones whose final stakeholder post is not recorded as sent yet."""
        ...

    def incidents_in_channel(self, channel: str) -> list[Incident]: ...

    def closed_incidents(self) -> list[Incident]:
        """Every closed incident, oldest first (the follow-up reminders look through them)."""
        ...

    def save_incident(self, incident: Incident) -> Incident:
        """Conditional write from the version that was read. Raises StaleState if someone else won."""
        ...

    # ---- step runs -------------------------------------------------------------------------------
    def add_step_run(self, run: StepRun) -> None: ...

    def save_step_run(self, run: StepRun) -> StepRun: ...

    def get_step_run(self, run_id: str) -> StepRun | None: ...

    def step_runs(self, incident_id: str) -> list[StepRun]: ...

    # ---- approvals, plans, tenant results ----------------------------------------------------------
    def add_approval(self, approval: Approval) -> None: ...

    def save_approval(self, approval: Approval) -> Approval: ...

    def get_approval(self, approval_id: str) -> Approval | None: ...

    def approvals(self, incident_id: str | None = None) -> list[Approval]: ...

    def approvals_with_status(self, *statuses: ApprovalStatus) -> list[Approval]: ...

    def approval_for_message(self, message_ts: str) -> Approval | None: ...

    def put_plan(self, plan: DangerPlan, incident_id: str) -> None: ...

    def get_plan(self, approval_id: str) -> DangerPlan | None: ...

    def add_tenant_result(self, result: TenantResult) -> bool:
        """Insert once; False when this tenant already has a result (it is never done twice)."""
        ...

    def tenant_results(self, approval_id: str) -> list[TenantResult]: ...

    # ---- scheduled checks --------------------------------------------------------------------------
    def get_check(self, name: str) -> CheckState | None: ...

    def save_check(self, state: CheckState) -> CheckState: ...

    def checks(self) -> list[CheckState]: ...

    def add_check_result(self, result: CheckResult, slot: int) -> None: ...

    def check_history(self, name: str) -> list[CheckResult]: ...

    # ---- claims (deliveries, interactions handled once) --------------------------------------------
    def claim(self, key: str, now: datetime, ttl_s: float = 86_400.0) -> bool:
        """Record that ``key`` was handled; False if it already was. Expires after ``ttl_s``."""
        ...

    def prune(self, now: datetime) -> int:
        """Delete expired claims; returns how many."""
        ...

    # ---- the audit log ----------------------------------------------------------------------------
    def audit(self, at: datetime, actor: str, action: str, incident_id: str | None = None, /,
              **data: object) -> AuditEvent:
        """Append an event; at, actor, action and incident are positional so `data` may use any key."""
        ...

    def audit_events(self, incident_id: str | None = None) -> list[AuditEvent]: ...

    def audit_head(self) -> tuple[int, str] | None: ...

    def verify_audit(self) -> ChainReport: ...

    def close(self) -> None: ...
