"""Danger-zone records: the approval (the two-person gate's state), its plan, and per-tenant results.

The approval record stays small (its state, who approved, owner); the plan is its own immutable record
and each tenant's outcome is its own record, inserted once, so a run over 1,000 tenants never rewrites a
growing document and a resumed run can see exactly which tenants are done.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, Field

from bot.domain.ownership import Owner


class DangerAction(StrEnum):
    CLEANUP = "cleanup"
    RESTORE = "restore"


class ApprovalStatus(StrEnum):
    PENDING = "pending"  # waiting for enough approvers
    APPROVED = "approved"  # quorum reached; runs at starts_at unless withdrawn first
    RUNNING = "running"
    EXECUTED = "executed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    VOID = "void"  # the plan changed, or the incident closed, before it ran
    FAILED = "failed"  # planning or execution raised: nothing more was done after the failure
    REVOKED = "revoked"  # older records only: a withdrawal now returns the request to pending


OPEN = (ApprovalStatus.PENDING, ApprovalStatus.APPROVED)
BUSY = (*OPEN, ApprovalStatus.RUNNING)


class RefusalReason(StrEnum):
    REQUESTER = "requester"
    NOT_APPROVER = "not_approver"
    EXPIRED = "expired"
    DECIDED = "decided"


class Refusal(BaseModel):
    user: str
    reason: RefusalReason
    at: AwareDatetime


class Withdrawal(BaseModel):
    user: str
    at: AwareDatetime


class BackupRef(BaseModel):
    """The exact backup run a request relies on, as its manifest described it when the request was made."""

    run_id: str
    step_run: str
    path: str
    manifest_sha256: str
    documents: int
    tenants: list[str]
    finished_at: AwareDatetime


class TenantCount(BaseModel):
    """The dry-run numbers for one tenant database."""

    cases: int  # documents of the cleanup collection carrying at least one of the fields
    fields: dict[str, int] = Field(default_factory=dict)
    collections: dict[str, int | None] = Field(default_factory=dict)  # None: the collection is absent


class TenantPlan(BaseModel):
    db: str
    name: str
    now: TenantCount
    backup: TenantCount | None = None  # restore: what the backup holds, i.e. what a complete restore gives back
    # restore: what the cleanups removed from this tenant since the data was last whole (plans.Ledger); a complete
    # restore puts back at least this much. None: nothing of this tenant is missing, or an older plan.
    removed: TenantCount | None = None


class PlanTotals(BaseModel):
    tenants: int
    cases: int
    dropped_documents: int


class DangerPlan(BaseModel):
    approval_id: str
    action: DangerAction
    tenants: list[TenantPlan]
    totals: PlanTotals
    backup: BackupRef

    def tenant(self, db: str) -> TenantPlan | None:
        return next((t for t in self.tenants if t.db == db), None)


class TenantResult(BaseModel):
    """One tenant's outcome: inserted once (a second insert loses), so a tenant is never done twice."""

    approval_id: str
    incident_id: str
    db: str
    ok: bool
    at: AwareDatetime
    modified: int = 0  # cleanup: documents that lost fields
    dropped: dict[str, int | None] = Field(default_factory=dict)  # cleanup: collection → documents, None absent
    fields_restored: int = 0  # restore: documents that got their fields back
    restored: dict[str, int] = Field(default_factory=dict)  # restore: collection → documents
    verified: bool | None = None  # restore: the counts after equal the backup's
    error: str | None = None
    resumed: bool = False  # the run was taken over or resumed before this tenant finished

    @property
    def id(self) -> str:
        return f"{self.approval_id}:{self.db}"


class Approval(BaseModel):
    id: str
    incident_id: str
    action: DangerAction
    requester: str
    channel: str
    message_ts: str | None = None
    status: ApprovalStatus = ApprovalStatus.PENDING
    approvers: list[str] = Field(default_factory=list)
    refused: list[Refusal] = Field(default_factory=list)
    withdrawn: list[Withdrawal] = Field(default_factory=list)
    requested_at: AwareDatetime
    expires_at: AwareDatetime
    starts_at: AwareDatetime | None = None  # due time of the delayed start; cleared by a withdrawal
    approved_at: AwareDatetime | None = None
    started_at: AwareDatetime | None = None
    rechecked_at: AwareDatetime | None = None  # a cleanup's drift re-check passed, before any tenant changed
    finished_at: AwareDatetime | None = None
    decided_by: str | None = None
    backup_run: str = ""
    tenants: int = 0
    note: str = ""
    failure: str | None = None
    owner: Owner | None = None
    heartbeat_at: AwareDatetime | None = None
    version: int = 0

    @property
    def open(self) -> bool:
        return self.status in OPEN
