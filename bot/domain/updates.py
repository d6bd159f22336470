"""The stakeholder update: the runbook's *Rollback Communication Template*, filled from the record.

:func:`build_update` decides every field from the incident (real milestone times, backend status from
the latest verify, what the danger zone did and undid, what people wrote); the presenter lays it out for
Slack and for e-mail. A field nobody knows yet says so in words.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.config import RunbookConfig
from bot.domain.incident import DatabaseState, Incident, Milestone, RestoredBy
from bot.domain.lifecycle import Fix
from bot.domain.runs import StepName, StepRun, StepStatus

NOT_YET = "not yet"
NOT_KNOWN = "not assessed yet"
RUNBOOK_NEXT_STEPS = ["Root cause analysis underway", "Fix will be developed offline",
                      "Testing before re-deployment"]
RESTORED_HOW = {
    RestoredBy.WATCH: "confirmed by the post-rollback watch (healthy checks in a row)",
    RestoredBy.COMMANDER: "confirmed by the incident commander",
    RestoredBy.CLOSE: "confirmed at close by the close-out checks",
}


@dataclass(frozen=True)
class Update:
    incident_id: str
    headline: str
    product: str
    system: str
    signature: str
    opening: str
    issue: str
    timeline: list[tuple[str, datetime | None]]
    backend: str
    database: str
    data_loss: str
    students: str
    professors: str
    data: str
    next_steps: list[str]
    restored_how: str | None = None
    next_update: datetime | None = None
    state: str = "URGENT"  # the subject's tag: URGENT while active, RESOLVED once closed with service back,
    # CLOSED when closed without (close --force)
    severity: str | None = None  # SEV1…SEV4, in the subject
    not_yet: str = NOT_YET
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """What changed, for the reminder: every field except the headline and the next update's time."""
        parts = [self.opening, self.issue, *([self.severity] if self.severity else []),  # as before severity
                 *(f"{label}={moment}" for label, moment in self.timeline), self.backend,
                 self.database, self.data_loss, self.students, self.professors, self.data, *self.next_steps,
                 self.restored_how or ""]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _backend(incident: Incident, runs: list[StepRun]) -> str:
    verifies = [r for r in runs if r.step is StepName.VERIFY and r.status in (StepStatus.SUCCEEDED, StepStatus.FAILED)]
    if not verifies:
        return "not verified yet (checks run after the rollback)"
    if verifies[-1].succeeded:
        life = incident.lifecycle
        stable = STABLE_BY.get(life.fix) if life.service_back and life.fix is not None else None
        return stable or "STABLE (health checks pass)"
    return f"NOT STABLE — the last check failed: {verifies[-1].summary}"


STABLE_BY = {
    Fix.ROLLBACK: "STABLE (old version restored)", Fix.SAFE_REVERT: "STABLE (the breaking commits reverted)",
    Fix.FLAG: "STABLE (feature flag changed)", Fix.PARTIAL: "STABLE (part of the change rolled back)",
    Fix.HOTFIX: "STABLE (hotfix deployed)",
}
DONE_BY = {
    Fix.FLAG: "We have restored the {system} by changing a feature flag",
    Fix.PARTIAL: "We have restored the {system} by rolling back part of the change",
    Fix.SAFE_REVERT: "We have performed an emergency rollback of the {system} (the breaking commits reverted)",
    Fix.HOTFIX: "We have restored the {system} with a hotfix",
}


def _opening(system: str, completed: bool, fix: Fix | None) -> str:
    if not completed:
        return f"We are performing an emergency rollback of the {system}"
    done = DONE_BY.get(fix) if fix is not None else None
    return (done or "We have performed an emergency rollback of the {system}").format(system=system)


def database_status(incident: Incident) -> tuple[str, str, str]:
    """(database status, data loss, data impact) from what the danger zone did and undid."""
    db = incident.database
    failed = f"; failed on {', '.join(db.failed)}" if db.failed else ""
    if db.state is DatabaseState.UNCHANGED:
        return "UNCHANGED", "NO", "no data changed"
    if db.state is DatabaseState.RESTORED:
        text = f"RESTORED from backup {db.backup_run}{failed}"
        return text, f"NO — restored from backup {db.backup_run}: no data lost", "restored from the backup"
    lost = db.lost
    removed = (f"the new fields were removed from {db.cases_cleaned} internship cases and {db.documents_deleted} "
               f"attempt records were deleted in {len(lost)} tenant database(s)")
    return (f"CLEANED ({len(lost)} tenant database(s)){failed}",
            f"YES — {removed}; recoverable from backup {db.backup_run} with /rollback restore all",
            f"YES — {removed}")


def build_update(config: RunbookConfig, incident: Incident, runs: list[StepRun], headline: str,
                 now: datetime | None = None) -> Update:
    ms = incident.milestones
    details = incident.comms_details
    steps = list(RUNBOOK_NEXT_STEPS)
    if incident.rca is not None:  # the analysis is done: say what it found instead of "underway"
        steps[0] = f"Root cause analysis done: {_root_cause(incident)}"
    if details.next_steps:
        steps = [line.strip(" -•\t") for line in details.next_steps.splitlines() if line.strip(" -•\t")]
    steps.append(f"ETA for fix: {details.eta or 'not set yet'}")
    database, data_loss, data = database_status(incident)
    completed = Milestone.ROLLBACK_COMPLETED in ms
    fix = incident.lifecycle.restored_with or incident.lifecycle.fix
    timeline: list[tuple[str, datetime | None]] = [
        ("Issue Detected", ms.get(Milestone.ISSUE_DETECTED)), ("Rollback Started", ms.get(Milestone.ROLLBACK_STARTED)),
        (incident.label(Milestone.ROLLBACK_COMPLETED).title(), ms.get(Milestone.ROLLBACK_COMPLETED)),
        ("System Restored", ms.get(Milestone.SYSTEM_RESTORED))]
    if Milestone.CLOSED in ms:
        timeline.append(("Incident Closed", ms[Milestone.CLOSED]))
    next_update = None
    if incident.active and now is not None:
        next_update = now + timedelta(minutes=config.comms.reminder_minutes)
    return Update(
        incident_id=incident.id, headline=headline, product=config.comms.product, system=config.comms.system,
        signature=config.comms.signature,
        opening=_opening(config.comms.system, completed, fix),
        issue=incident.reason or "an issue still being described", timeline=timeline,
        backend=_backend(incident, runs), database=database, data_loss=data_loss,
        students=details.students or NOT_KNOWN, professors=details.professors or NOT_KNOWN,
        data=details.data or data, next_steps=steps,
        restored_how=RESTORED_HOW.get(incident.restored_by) if incident.restored_by else None,
        next_update=next_update,
        state="URGENT" if incident.active else "RESOLVED" if completed else "CLOSED",
        severity=incident.severity.value if incident.severity else None,
    )


def _root_cause(incident: Incident) -> str:
    rca = incident.rca
    assert rca is not None
    found = rca.what_went_wrong or rca.why or ", ".join(rca.causes) or "recorded in the postmortem"
    return found.strip().rstrip(".")[:300]
