"""Scheduled health checks: one measurement, a check's state across runs and replicas, and the rollback an
alert would collide with."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, Field, model_validator

from bot.domain import legacy


class CheckStatus(StrEnum):
    UNKNOWN = "unknown"
    HEALTHY = "healthy"
    FAILING = "failing"


class CheckResult(BaseModel):
    """One measurement of one scheduled check."""

    name: str
    ok: bool
    at: AwareDatetime
    latency_ms: float | None = None
    detail: str = ""
    # The runbook's "When to Rollback" criteria this failure meets (keys of checklists.ROLLBACK_CRITERIA): a
    # 500 that also took over 5 s meets two.
    criteria: list[str] = Field(default_factory=list)
    value: float | None = None  # e.g. a pm2 restart count

    @model_validator(mode="before")
    @classmethod
    def _from_older_records(cls, data: object) -> object:
        return legacy.check_result(data)


class CheckState(BaseModel):
    """Healthy/failing with streaks, and a bounded history (the store keeps it small)."""

    id: str
    status: CheckStatus = CheckStatus.UNKNOWN
    fails: int = 0
    oks: int = 0
    first_failure_at: AwareDatetime | None = None
    changed_at: AwareDatetime | None = None
    runs: int = 0  # measurements so far: the next history slot is runs % monitor.history
    last: CheckResult | None = None
    version: int = 0

    @model_validator(mode="before")
    @classmethod
    def _from_older_records(cls, data: object) -> object:
        return legacy.check_state(data)


class WatchVerdict(BaseModel):
    """What the post-rollback watch says in the thread after a run of checks."""

    kind: str  # "restored" | "failing" | "better"
    streak: int = 0
    need: int = 0
    minutes: int = 0
    failing: list[CheckResult] = []


@dataclass(frozen=True)
class ActiveRollback:
    """The rollback an alert's Start rollback button would collide with."""

    incident_id: str
    channel: str
    commander: str
    link: str | None
