"""The incident's lifecycle: a small state machine over *outcomes*, not over the five runbook steps.

    open → mitigating → service restored (by a rollback, a feature flag, a partial rollback, a safe revert or
    a hotfix) → confirmed restored (by the post-rollback watch, the commander or the close-out checks) → closed

Every path an incident can take drives it through the same transitions (:data:`TRANSITIONS`): the runbook's
revert and each safer alternative are all a :attr:`Event.CHANGED` with their :class:`Fix`; rebuild and
restart are the fix's remaining steps; a passing verify once nothing else is left restores service. The
control panel, the Next line, the progress row, the stakeholder milestones, the post-rollback watch,
``close``'s criteria and the postmortem read the phase from here, never from which step ran last.

The danger zone and restore have their own sub-lifecycle (:class:`bot.domain.incident.DatabaseChange`,
the approval request's state machine in :mod:`bot.domain.approvals`): they change what the stakeholder
update says about the data, never whether service is restored.

Pure data and rules: :meth:`Lifecycle.advance` is the only way the phase changes, and it is total (a pair the
table does not list leaves the phase as it is, and says so).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from bot.domain.runs import Advice, StepName


class Phase(StrEnum):
    OPEN = "open"  # started; nothing the running service depends on has been changed yet
    MITIGATING = "mitigating"  # a fix changed the code or the configuration; it is not verified yet
    RESTORED = "restored"  # verify passed after the fix's last step: service is back
    CONFIRMED = "confirmed"  # the watch, the commander or the close-out checks confirmed it stays back
    CLOSED = "closed"


class Fix(StrEnum):
    """How the running service was changed: the runbook's rollback or one of its safer alternatives."""

    ROLLBACK = "rollback"
    FLAG = "flag"
    PARTIAL = "partial"
    SAFE_REVERT = "safe_revert"
    HOTFIX = "hotfix"


class Event(StrEnum):
    CHANGED = "changed"  # a fix's change succeeded: revert, flag, partial, revert --safe, hotfix ship
    STEP_DONE = "step_done"  # rebuild or restart succeeded
    VERIFIED = "verified"  # verify passed
    VERIFY_FAILED = "verify_failed"  # verify ran and failed
    CONFIRMED = "confirmed"  # the watch's healthy streak, `/rollback restored`, or close's passing checks
    CLOSED = "closed"  # `/rollback close` (with or without --force)


# The steps each fix takes, in order; the first is the change itself. Backup comes before all of them and is
# not part of any: it changes nothing that serves users.
PATHS: dict[Fix, tuple[StepName, ...]] = {
    Fix.ROLLBACK: (StepName.REVERT, StepName.REBUILD, StepName.RESTART, StepName.VERIFY),
    Fix.FLAG: (StepName.FLAG, StepName.RESTART, StepName.VERIFY),
    Fix.PARTIAL: (StepName.PARTIAL, StepName.REBUILD, StepName.RESTART, StepName.VERIFY),
    Fix.SAFE_REVERT: (StepName.SAFE_REVERT, StepName.REBUILD, StepName.RESTART, StepName.VERIFY),
    Fix.HOTFIX: (StepName.HOTFIX, StepName.REBUILD, StepName.RESTART, StepName.VERIFY),
}
FIX_OF_STEP: dict[StepName, Fix] = {path[0]: fix for fix, path in PATHS.items()}
FIX_NAMES: dict[Fix, str] = {
    Fix.ROLLBACK: "rollback", Fix.FLAG: "feature flag", Fix.PARTIAL: "partial rollback",
    Fix.SAFE_REVERT: "safe revert", Fix.HOTFIX: "hotfix",
}

# (phase, event) → phase. Read it against the runbook: the change (step 2, or an alternative) starts the
# mitigation, build and restart (steps 3–4) continue it, a passing verify (step 5) after the fix's last step
# restores service, the watch or a person confirms it, close ends it. A failed verify after service was
# back means it is not back any more. Any pair not listed leaves the phase as it is.
TRANSITIONS: dict[tuple[Phase, Event], Phase] = {
    (Phase.OPEN, Event.CHANGED): Phase.MITIGATING,
    (Phase.MITIGATING, Event.CHANGED): Phase.MITIGATING,
    (Phase.RESTORED, Event.CHANGED): Phase.MITIGATING,
    (Phase.CONFIRMED, Event.CHANGED): Phase.MITIGATING,
    (Phase.MITIGATING, Event.STEP_DONE): Phase.MITIGATING,
    (Phase.MITIGATING, Event.VERIFIED): Phase.RESTORED,  # only once the fix needs nothing but verify
    (Phase.MITIGATING, Event.VERIFY_FAILED): Phase.MITIGATING,
    (Phase.RESTORED, Event.VERIFY_FAILED): Phase.MITIGATING,
    (Phase.CONFIRMED, Event.VERIFY_FAILED): Phase.MITIGATING,
    (Phase.RESTORED, Event.CONFIRMED): Phase.CONFIRMED,
    (Phase.OPEN, Event.CLOSED): Phase.CLOSED,
    (Phase.MITIGATING, Event.CLOSED): Phase.CLOSED,
    (Phase.RESTORED, Event.CLOSED): Phase.CLOSED,
    (Phase.CONFIRMED, Event.CLOSED): Phase.CLOSED,
}
SERVICE_BACK = (Phase.RESTORED, Phase.CONFIRMED)


class Stall(BaseModel):
    """The last step that failed or was interrupted, until a step succeeds: the Next line says so."""

    step: StepName
    how: str  # "failed" or "was interrupted"
    advice: list[Advice] = Field(default_factory=list)  # what the failure means and whom to call (verify)


class Lifecycle(BaseModel):
    phase: Phase = Phase.OPEN
    fix: Fix | None = None  # the fix under way, or the one that restored service
    needs: list[StepName] = Field(default_factory=list)  # what the fix still needs, in order
    restored_with: Fix | None = None  # the fix that first restored service (its milestone's label)
    backed_up: bool = False  # a verified backup exists (the runbook's step 1)
    stall: Stall | None = None

    @property
    def service_back(self) -> bool:
        return self.phase in SERVICE_BACK

    def advance(self, event: Event, *, step: StepName | None = None, fix: Fix | None = None) -> Phase:
        """Apply one event; return the phase entered (the same one when nothing changes)."""
        target = TRANSITIONS.get((self.phase, event), self.phase)
        if event is Event.CHANGED:
            assert fix is not None, "a change names its fix"
            self.fix, self.needs = fix, list(PATHS[fix][1:])
        elif event is Event.STEP_DONE and self.needs and step is self.needs[0]:
            self.needs.pop(0)
        elif event is Event.VERIFIED:
            if self.phase is Phase.MITIGATING and self.needs != [StepName.VERIFY]:
                target = self.phase  # verify passed, but the fix's build or restart has not happened: not back
            else:
                self.needs = []
        elif event is Event.VERIFY_FAILED and self.phase in SERVICE_BACK:
            self.needs = [StepName.VERIFY]
        if target is Phase.RESTORED and self.restored_with is None:
            self.restored_with = self.fix
        self.phase = target
        return target

    def path(self) -> tuple[StepName, ...]:
        """The steps the progress row shows: backup, then the current fix's path (the runbook's by default)."""
        return (StepName.BACKUP, *PATHS[self.fix or Fix.ROLLBACK])


def restored_label(fix: Fix | None) -> str:
    """The label of the *service restored* milestone (stored as ``rollback_completed``) for the fix that did it."""
    if fix is None or fix is Fix.ROLLBACK:
        return "Rollback completed"
    return f"Fix applied: {FIX_NAMES[fix]}"
