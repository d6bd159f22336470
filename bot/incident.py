"""The incident: one rollback run, its milestones, checklists and timeline.

Pure data and rules; persistence is in ``bot.store`` and orchestration in ``bot.service``.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class Milestone(StrEnum):
    """The real times the stakeholder update reports."""

    ISSUE_DETECTED = "issue_detected"
    ROLLBACK_STARTED = "rollback_started"
    ROLLBACK_COMPLETED = "rollback_completed"
    SYSTEM_RESTORED = "system_restored"
    CLOSED = "closed"


MILESTONE_LABELS: dict[Milestone, str] = {
    Milestone.ISSUE_DETECTED: "Issue detected",
    Milestone.ROLLBACK_STARTED: "Rollback started",
    Milestone.ROLLBACK_COMPLETED: "Rollback completed",
    Milestone.SYSTEM_RESTORED: "System restored",
    Milestone.CLOSED: "Incident closed",
}


class IncidentState(StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"


class Item(BaseModel):
    key: str
    text: str
    group: str = ""
    automatic: bool = False


# The runbook's "When to Rollback" criteria, grouped as it groups them.
ROLLBACK_CRITERIA: list[Item] = [
    Item(key="gen_fail", group="Critical production issues",
         text="Assessment generation fails for >50% of sessions"),
    Item(key="crash_loop", group="Critical production issues", text="Backend crashes repeatedly"),
    Item(key="db_corruption", group="Critical production issues", text="Database corruption detected"),
    Item(key="data_leak", group="Critical production issues", text="Data leakage between students"),
    Item(key="attempts", group="Data integrity issues", text="Attempt tracking not working"),
    Item(key="memory_mix", group="Data integrity issues", text="Patient memory cross-contamination"),
    Item(key="scores", group="Data integrity issues", text="Assessment scores incorrect/missing"),
    Item(key="timeouts", group="Performance issues", text="Assessment timeouts >120s consistently"),
    Item(key="slow", group="Performance issues", text="Backend response times >5s"),
    Item(key="db_fail", group="Performance issues", text="Database queries failing"),
    Item(key="sessions", group="User-facing issues", text="Students cannot complete sessions"),
    Item(key="validate", group="User-facing issues", text="Professors cannot validate assessments"),
    Item(key="frontend", group="User-facing issues", text="Frontend errors due to API changes"),
]

# The runbook's "Pre-Rollback Checklist". `automatic` items are ticked by the bot when it does them.
PRE_ROLLBACK_CHECKLIST: list[Item] = [
    Item(key="document", text="Document the issue (screenshots, logs, error messages)"),
    Item(key="notify", text="Notify all stakeholders (user, AI team, frontend team)", automatic=True),
    Item(key="backup_db", text="Backup current database state", automatic=True),
    Item(key="pm2_logs", text="Save current PM2 logs", automatic=True),
    Item(key="commit", text="Note the current git commit hash", automatic=True),
]

# The runbook's "Rollback Success Criteria". `automatic` ones the bot checks live at close; people tick the rest.
SUCCESS_CRITERIA: list[Item] = [
    Item(key="backend_running", text="Backend running without errors", automatic=True),
    Item(key="core_features", text="All core features working (sessions, feedback, cases)"),
    Item(key="no_log_errors", text="No critical errors in logs", automatic=True),
    Item(key="db_queries", text="Database queries successful", automatic=True),
    Item(key="frontend", text="Frontend can interact with backend"),
    Item(key="students", text="Students can complete sessions"),
    Item(key="professors", text="Professors can validate feedback"),
    Item(key="no_corruption", text="No data corruption detected"),
]

# The runbook's "Prevention Checklist", posted as follow-ups when the incident closes.
PREVENTION_CHECKLIST: list[str] = [
    "More comprehensive testing before production",
    "Gradual rollout (10% → 50% → 100%)",
    "Feature flags for all major changes",
    "Database migration dry-runs",
    "Staging environment testing",
    "Load testing before production",
    "Monitoring alerts configured",
    "Backup procedures automated",
]

# The runbook's root-cause questions.
RCA_PHASES = ["Phase 1", "Phase 2", "Phase 3", "Not known yet"]
RCA_CAUSES = {"dependency": "Missing dependency", "ai_server": "AI server issue",
              "schema": "Database schema conflict", "frontend": "Frontend compatibility", "other": "Something else"}

CRITERIA_KEYS = {item.key for item in ROLLBACK_CRITERIA}
SUCCESS_KEYS = {item.key for item in SUCCESS_CRITERIA}
CHECKLIST_KEYS = {item.key for item in PRE_ROLLBACK_CHECKLIST}

_ID = re.compile(r"^([A-Z]{1,6})-(\d{4,})$")


def format_incident_id(prefix: str, number: int) -> str:
    return f"{prefix}-{number:04d}"


def looks_like_incident_id(text: str) -> bool:
    return bool(_ID.match(text))


class Tick(BaseModel):
    by: str
    at: datetime


class TimelineEntry(BaseModel):
    at: datetime
    actor: str
    text: str


class CheckResult(BaseModel):
    """One measurement of one scheduled check."""

    name: str
    ok: bool
    at: datetime
    latency_ms: float | None = None
    detail: str = ""
    criterion: str | None = None  # the runbook criterion this failure meets, if any
    value: float | None = None  # e.g. a pm2 restart count


class CheckState(BaseModel):
    """A check's state across runs and replicas: healthy/failing with streaks, and a bounded history."""

    id: str
    status: str = "unknown"  # unknown | healthy | failing
    fails: int = 0
    oks: int = 0
    first_failure_at: datetime | None = None
    changed_at: datetime | None = None
    history: list[CheckResult] = Field(default_factory=list)
    version: int = 0

    @property
    def last(self) -> CheckResult | None:
        return self.history[-1] if self.history else None


class CommsPost(BaseModel):
    """One stakeholder post: claimed before it is sent, so a milestone is announced once."""

    claimed_at: datetime
    headline: str
    ts: str | None = None
    link: str | None = None
    digest: str = ""
    emailed: bool = False


class CommsDetails(BaseModel):
    """What only people know: filled in with `/rollback comms edit`."""

    students: str | None = None
    professors: str | None = None
    data: str | None = None
    next_steps: str | None = None
    eta: str | None = None


class Rca(BaseModel):
    what_went_wrong: str | None = None
    errors: str | None = None
    phase: str | None = None
    causes: list[str] = Field(default_factory=list)
    why: str | None = None
    prevention: str | None = None
    by: str | None = None
    at: datetime | None = None


class CloseOut(BaseModel):
    by: str
    at: datetime
    forced: bool = False
    reason: str | None = None
    checks: list[dict[str, Any]] = Field(default_factory=list)
    postmortem: str | None = None


class Incident(BaseModel):
    id: str
    number: int
    channel: str
    target: str
    commander: str
    reason: str
    state: IncidentState = IncidentState.ACTIVE
    created_at: datetime
    milestones: dict[Milestone, datetime] = Field(default_factory=dict)
    start_commit: str | None = None
    start_commit_summary: str | None = None
    criteria: dict[str, Tick] = Field(default_factory=dict)
    checklist: dict[str, Tick] = Field(default_factory=dict)
    panel_ts: str | None = None
    running_step: str | None = None
    database_state: str = "UNCHANGED"
    data_loss: str | None = None
    timeline: list[TimelineEntry] = Field(default_factory=list)
    comms: dict[str, CommsPost] = Field(default_factory=dict)
    comms_details: CommsDetails = Field(default_factory=CommsDetails)
    last_update_at: datetime | None = None
    last_reminder_at: datetime | None = None
    success: dict[str, Tick] = Field(default_factory=dict)
    rca: Rca | None = None
    close_out: CloseOut | None = None
    watch: dict[str, Any] = Field(default_factory=dict)  # the post-rollback watch: checks, healthy streak
    rolled_back_files: list[str] = Field(default_factory=list)  # by partial rollbacks
    version: int = 0

    @property
    def active(self) -> bool:
        return self.state is IncidentState.ACTIVE

    def record(self, at: datetime, actor: str, text: str) -> None:
        self.timeline.append(TimelineEntry(at=at, actor=actor, text=text))

    def reach(self, milestone: Milestone, at: datetime, actor: str) -> bool:
        """Record a milestone once; the first real time is the one that counts."""
        if milestone in self.milestones:
            return False
        self.milestones[milestone] = at
        self.record(at, actor, MILESTONE_LABELS[milestone])
        return True

    def tick(self, key: str, by: str, at: datetime) -> None:
        self.checklist.setdefault(key, Tick(by=by, at=at))

    def to_doc(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Incident:
        return cls.model_validate(doc)


class StepStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class StepRun(BaseModel):
    id: str
    incident_id: str
    step: str
    actor: str
    status: StepStatus = StepStatus.RUNNING
    started_at: datetime
    finished_at: datetime | None = None
    summary: str = ""
    result: dict[str, Any] = Field(default_factory=dict)
    version: int = 0


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    REVOKED = "revoked"
    VOID = "void"
    RUNNING = "running"
    EXECUTED = "executed"


class Approval(BaseModel):
    id: str
    incident_id: str
    action: str
    requester: str
    channel: str
    message_ts: str | None = None
    status: ApprovalStatus = ApprovalStatus.PENDING
    approvers: list[str] = Field(default_factory=list)
    requested_at: datetime
    expires_at: datetime
    plan: dict[str, Any] = Field(default_factory=dict)
    progress: dict[str, Any] = Field(default_factory=dict)
    approved_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    decided_by: str | None = None
    note: str = ""
    version: int = 0
