"""Scheduled health checks: one measurement, a check's state across runs and replicas, and what
`/rollback health` and an alert show of them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
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


class Condition(StrEnum):
    """What one result says about the service, for the chart's status strip."""

    UP = "up"  # the check passed
    DEGRADED = "degraded"  # it answered right, only too slowly
    DOWN = "down"  # a wrong answer or none: a 5xx, no connection, an app not online, a failing probe


# The criterion of a right answer that came too late: an HTTP check slower than thresholds.backend_response_s
# (the runbook's "Backend response times >5s"); the monitor records it, the chart draws it as degraded.
SLOW_CRITERION = "slow"


def condition(result: CheckResult) -> Condition:
    if result.ok:
        return Condition.UP
    if result.criteria and all(criterion == SLOW_CRITERION for criterion in result.criteria):
        return Condition.DEGRADED
    return Condition.DOWN


@dataclass(frozen=True)
class ChartMark:
    """Something that happened in the incident, drawn as a labelled vertical line on the health chart."""

    at: datetime
    label: str  # short: "revert", "restart failed", "alert: health", "cleanup"
    kind: str  # "alert" | "step" | "step_failed" | "milestone" | "danger": its colour on the chart


@dataclass(frozen=True)
class CheckLimit:
    """The line a check's latency is judged against, and the setting it comes from."""

    seconds: float
    kind: str  # "slow above" (an HTTP check's threshold) or "time limit" (a pm2 or MongoDB check's)
    setting: str  # e.g. "thresholds.backend_response_s"


@dataclass(frozen=True)
class CheckView:
    """One check for `/rollback health`: its state, its results of the last hour (oldest first), its limit."""

    state: CheckState
    recent: list[CheckResult]
    limit: CheckLimit


@dataclass(frozen=True)
class ChartPlace:
    """Where the health chart is: the incident thread it went into, and whether this request posted it."""

    incident_id: str
    channel: str
    link: str | None  # the incident's control panel; the chart is in its thread
    at: datetime | None  # when the chart there was posted; None: there is none (yet)
    posted_now: bool = False  # this request posted it
    pending: bool = False  # another request is posting one right now
    failed: bool = False  # this request's upload failed (logged); the next request tries again
    unchanged: bool = False  # no check has run since that chart was drawn
    next_at: datetime | None = None  # when a new one may be posted


@dataclass(frozen=True)
class HealthReport:
    """What `/rollback health` answers, privately: every check, and where the chart is (if anywhere)."""

    checks: list[CheckView]
    now: datetime
    window: timedelta
    chart: ChartPlace | None  # in this channel's incident thread
    elsewhere: list[ChartPlace]  # no incident here: the active ones in other channels, and their latest chart


@dataclass(frozen=True)
class ActiveRollback:
    """The rollback an alert's Start rollback button would collide with."""

    incident_id: str
    channel: str
    commander: str
    link: str | None
