"""The incident: one rollback run, its real milestone times, checklists, who holds it busy, and its timeline.

Pure data and rules. Every change is written back with a conditional write from the version that was
read (:meth:`bot.domain.desk.Desk.mutate`), so two clicks or two replicas cannot both win.
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, Field, model_validator

from bot.domain import legacy
from bot.domain.lifecycle import (
    FIX_NAMES,
    FIX_OF_STEP,
    SERVICE_BACK,
    Event,
    Fix,
    Lifecycle,
    Phase,
    Stall,
    restored_label,
)
from bot.domain.ownership import Owner
from bot.domain.runs import Advice, StepName


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


class Severity(StrEnum):
    """How bad it is, set at start (``--sev 2``) and changeable (``/rollback severity 1``): shown on the panel, in
    the status, the stakeholder updates and the postmortem."""

    SEV1 = "SEV1"
    SEV2 = "SEV2"
    SEV3 = "SEV3"
    SEV4 = "SEV4"

    @property
    def meaning(self) -> str:
        return SEVERITY_MEANING[self]


SEVERITY_MEANING = {Severity.SEV1: "critical: most students or professors cannot work",
                    Severity.SEV2: "major: a core feature is broken for many",
                    Severity.SEV3: "minor: degraded, with a workaround",
                    Severity.SEV4: "low: cosmetic or a few users"}


def parse_severity(text: str) -> Severity | None:
    """1, sev1, SEV1 or S1 (any case) → SEV1; anything else → None."""
    found = re.fullmatch(r"(?i)(?:sev|s)?\s*([1-4])", text.strip())
    return Severity(f"SEV{found.group(1)}") if found else None


class IncidentRole(StrEnum):
    """Roles besides the commander, given per incident (`/rollback role comms @alex`): the holder may do what the
    role is for even when not in ``access.commanders``."""

    COMMS = "comms"  # the stakeholder updates: preview, edit, post now; gets the reminders
    SCRIBE = "scribe"  # the timeline: notes and 📌

    @property
    def named(self) -> str:
        return ROLE_TITLES[self]


ROLE_TITLES = {IncidentRole.COMMS: "Comms lead", IncidentRole.SCRIBE: "Scribe"}
ROLE_DUTIES = {IncidentRole.COMMS: "stakeholder updates: preview, edit, post now, and their reminders",
               IncidentRole.SCRIBE: "the timeline: /rollback note and 📌 on messages"}


class IncidentState(StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"


class RestoredBy(StrEnum):
    """How *system restored* was established."""

    WATCH = "watch"  # the post-rollback watch saw enough healthy checks in a row
    COMMANDER = "commander"  # `/rollback restored`
    CLOSE = "close"  # the close-out checks passed and nothing else had recorded it


class Tick(BaseModel):
    by: str
    at: AwareDatetime


class TimelineEntry(BaseModel):
    at: AwareDatetime
    actor: str
    text: str
    note: bool = False  # a person's `/rollback note`, not something the bot recorded


class BusyKind(StrEnum):
    STEP = "step"
    DANGER = "danger"


class Autopilot(BaseModel):
    """The runbook's steps running one after the other (`start --auto`, *Run the rest*), by one process."""

    by: str
    since: AwareDatetime
    owner: Owner
    token: str = ""  # this engagement: a pause and a new start are told apart from it

    @property
    def work(self) -> str:
        """What the driving process marks as its own work (``Replica.running``) while it runs."""
        return f"autopilot-{self.token}"


class Busy(BaseModel):
    """What holds the incident right now: one step or danger-zone run at a time, owned by one process."""

    kind: BusyKind
    ref: str  # the step run id or the approval id
    name: str  # e.g. "backup", "cleanup"
    actor: str
    owner: Owner
    since: AwareDatetime


class CommsPost(BaseModel):
    """One stakeholder post: claimed (with its owner) before it is sent, so it goes out exactly once."""

    claimed_at: AwareDatetime
    headline: str
    owner: Owner | None = None
    ts: str | None = None
    link: str | None = None
    digest: str = ""
    emailed: bool = False

    @property
    def posted(self) -> bool:
        return self.ts is not None


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
    at: AwareDatetime | None = None


class CloseCheck(BaseModel):
    criterion: str
    text: str
    ok: bool
    detail: str


class CloseOut(BaseModel):
    by: str
    at: AwareDatetime
    forced: bool = False
    reason: str | None = None
    checks: list[CloseCheck] = Field(default_factory=list)
    postmortem: str | None = None
    follow_ups_ts: str | None = None  # the close-out post listing the follow-ups, updated as they are done


class Watch(BaseModel):
    """The post-rollback watch: how many scheduled runs counted, and the current healthy streak."""

    checks: int = 0
    streak: int = 0
    healthy_since: AwareDatetime | None = None


class DatabaseState(StrEnum):
    UNCHANGED = "UNCHANGED"
    CLEANED = "CLEANED"
    RESTORED = "RESTORED"


class DatabaseChange(BaseModel):
    """What the danger zone did to the tenant data, for the panel, the update and the postmortem."""

    cleaned: list[str] = Field(default_factory=list)  # tenant databases the cleanup changed
    restored: list[str] = Field(default_factory=list)  # of those, the ones restored (and verified) since
    cases_cleaned: int = 0
    documents_deleted: int = 0
    failed: list[str] = Field(default_factory=list)  # tenants where the last danger-zone run failed
    backup_run: str | None = None  # the backup the cleanup relied on, or the last restore came from

    @property
    def state(self) -> DatabaseState:
        if not self.cleaned:
            return DatabaseState.UNCHANGED
        return DatabaseState.RESTORED if not self.lost else DatabaseState.CLEANED

    @property
    def lost(self) -> list[str]:
        """Tenants whose removed data is not back (it is still in the backup run)."""
        return [db for db in self.cleaned if db not in self.restored]


class FollowUp(BaseModel):
    """Something agreed during or after the incident, with its owner. Numbered from 1 in the order added (the
    list only grows), which is the number people type: `/rollback followup done 2`."""

    text: str
    owner: str | None = None
    by: str
    at: AwareDatetime
    done_by: str | None = None
    done_at: AwareDatetime | None = None

    @property
    def done(self) -> bool:
        return self.done_at is not None


_ID = re.compile(r"^([A-Z]{1,6})-(\d{4,})$")


def format_incident_id(prefix: str, number: int) -> str:
    return f"{prefix}-{number:04d}"


def looks_like_incident_id(text: str) -> bool:
    return bool(_ID.match(text))


class Incident(BaseModel):
    id: str
    number: int
    channel: str
    target: str
    commander: str
    reason: str
    severity: Severity | None = None
    roles: dict[IncidentRole, str] = Field(default_factory=dict)  # who holds each role besides the commander
    state: IncidentState = IncidentState.ACTIVE
    created_at: AwareDatetime
    milestones: dict[Milestone, AwareDatetime] = Field(default_factory=dict)
    restored_by: RestoredBy | None = None
    start_commit: str | None = None
    start_commit_summary: str | None = None
    criteria: dict[str, Tick] = Field(default_factory=dict)
    checklist: dict[str, Tick] = Field(default_factory=dict)
    success: dict[str, Tick] = Field(default_factory=dict)
    panel_ts: str | None = None
    checklist_ts: str | None = None  # the checklists message, the thread's first reply
    checklist_link: str | None = None
    busy: Busy | None = None
    database: DatabaseChange = Field(default_factory=DatabaseChange)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    comms: dict[str, CommsPost] = Field(default_factory=dict)
    comms_details: CommsDetails = Field(default_factory=CommsDetails)
    last_update_at: AwareDatetime | None = None
    last_reminder_at: AwareDatetime | None = None
    rca: Rca | None = None
    close_out: CloseOut | None = None
    watch: Watch = Field(default_factory=Watch)
    rolled_back_files: list[str] = Field(default_factory=list)
    follow_ups: list[FollowUp] = Field(default_factory=list)
    lifecycle: Lifecycle = Field(default_factory=Lifecycle)
    autopilot: Autopilot | None = None
    version: int = 0

    @model_validator(mode="before")
    @classmethod
    def _from_older_records(cls, data: object) -> object:
        return legacy.incident(data)

    @property
    def active(self) -> bool:
        return self.state is IncidentState.ACTIVE

    @property
    def held_roles(self) -> list[tuple[IncidentRole, str]]:
        """Who holds each role, in the roles' own order (comms lead, scribe), whichever was given first: the
        panel, the status line and the postmortem name them alike."""
        return [(role, self.roles[role]) for role in IncidentRole if role in self.roles]

    def record(self, at: AwareDatetime, actor: str, text: str, *, note: bool = False) -> None:
        self.timeline.append(TimelineEntry(at=at, actor=actor, text=text, note=note))

    def pin(self, at: AwareDatetime, actor: str, text: str) -> bool:
        """A message from the channel, in its place by time (it may be older than what the bot recorded since);
        the same message twice is kept once."""
        if any(e.at == at and e.actor == actor and e.text == text for e in self.timeline):
            return False
        place = next((i for i, e in enumerate(self.timeline) if e.at > at), len(self.timeline))
        self.timeline.insert(place, TimelineEntry(at=at, actor=actor, text=text, note=True))
        return True

    def reach(self, milestone: Milestone, at: AwareDatetime, actor: str) -> bool:
        """Record a milestone once; the first real time is the one that counts."""
        if milestone in self.milestones:
            return False
        self.milestones[milestone] = at
        self.record(at, actor, self.label(milestone))
        return True

    def label(self, milestone: Milestone) -> str:
        """A milestone's name for people: *service restored* is named after the fix that did it."""
        if milestone is Milestone.ROLLBACK_COMPLETED:
            return restored_label(self.lifecycle.restored_with or self.lifecycle.fix)
        return MILESTONE_LABELS[milestone]

    def advance(self, event: Event, at: AwareDatetime, actor: str, *, step: StepName | None = None,
                fix: Fix | None = None, confirmed: RestoredBy | None = None) -> Phase:
        """Drive the lifecycle (:data:`bot.domain.lifecycle.TRANSITIONS`) and record the milestones the phase
        entered reaches: service restored, confirmed restored (and by what), closed."""
        before = self.lifecycle.phase
        phase = self.lifecycle.advance(event, step=step, fix=fix)
        if phase is Phase.MITIGATING and before is not Phase.MITIGATING and self.lifecycle.fix is not None:
            self.record(at, actor, f"Mitigating: {FIX_NAMES[self.lifecycle.fix]}"
                        + (" (service was back; it has to be verified again)" if before in SERVICE_BACK else ""))
        if phase is Phase.RESTORED:
            if before is not Phase.RESTORED:
                self.watch = Watch()  # the post-rollback watch counts from here
            self.reach(Milestone.ROLLBACK_COMPLETED, at, actor)
        elif phase is Phase.CONFIRMED:
            self.reach(Milestone.ROLLBACK_COMPLETED, at, actor)
            if self.reach(Milestone.SYSTEM_RESTORED, at, actor) and confirmed is not None:
                self.restored_by = confirmed
        elif phase is Phase.CLOSED:
            self.state = IncidentState.CLOSED
            self.reach(Milestone.CLOSED, at, actor)
        return phase

    def step_finished(self, step: StepName, ok: bool, at: AwareDatetime, actor: str, *, ships: bool = False,
                      advice: list[Advice] | None = None) -> Phase:
        """What a finished step means for the lifecycle (a hotfix changes the service only when it ships)."""
        life = self.lifecycle
        if not ok:
            life.stall = Stall(step=step, how="failed", advice=advice or [])
            return self.advance(Event.VERIFY_FAILED, at, actor) if step is StepName.VERIFY else life.phase
        life.stall = None
        fix = FIX_OF_STEP.get(step)
        if step is StepName.BACKUP:
            life.backed_up = True
        if fix is not None and (fix is not Fix.HOTFIX or ships):
            return self.advance(Event.CHANGED, at, actor, fix=fix)
        if step is StepName.VERIFY:
            return self.advance(Event.VERIFIED, at, actor)
        if step in (StepName.REBUILD, StepName.RESTART):
            return self.advance(Event.STEP_DONE, at, actor, step=step)
        return life.phase

    def tick(self, key: str, by: str, at: AwareDatetime) -> None:
        self.checklist.setdefault(key, Tick(by=by, at=at))

    def pending_posts(self) -> list[str]:
        return [key for key, post in self.comms.items() if not post.posted]

    def store_status(self) -> str:
        """The indexed status the store keeps beside the record, so sweeps query instead of loading all."""
        if self.active:
            return "active"
        return "closed-pending" if self.pending_posts() else "closed"
