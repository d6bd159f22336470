"""What to do next: the one recommendation the control panel leads with, from the runbook's order and what
the incident's record says happened. Pure: the same incident and runs always give the same advice."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.domain.checklists import SUCCESS_CRITERIA
from bot.domain.incident import BusyKind, DatabaseState, Incident
from bot.domain.runs import RUNBOOK_STEPS, StepName, StepRun, StepStatus
from bot.ids import SLASH_COMMAND
from bot.text import Code, Person, Rich, rich

ALTERNATIVE_FIXES = (StepName.FLAG, StepName.PARTIAL, StepName.SAFE_REVERT, StepName.HOTFIX)
WHY = {
    StepName.BACKUP: "record the commit, dump every tenant database and save the logs; nothing irreversible "
                     "happens before it",
    StepName.REVERT: "reset the code to the known-good commit (uncommitted work is stashed first)",
    StepName.REBUILD: "build the reverted code",
    StepName.RESTART: "restart the backend on the new build",
    StepName.VERIFY: "check the health endpoint, the core endpoints and the error logs",
}


class NextKind(StrEnum):
    STEP = "step"  # run a runbook step (its button is the primary one)
    WAIT = "wait"  # something is running
    CONFIRM = "confirm"  # tick the success criteria people confirm
    CLOSE = "close"
    RCA = "rca"
    DONE = "done"


@dataclass(frozen=True)
class Next:
    kind: NextKind
    text: Rich
    step: StepName | None = None
    also: Rich = ()  # a secondary, optional hint


def _command(name: str, *words: str) -> Code:
    return Code(" ".join([SLASH_COMMAND, name, *words]))


def next_action(incident: Incident, runs: list[StepRun]) -> Next:
    if not incident.active:
        if incident.rca is None:
            return Next(NextKind.RCA, rich("record the root cause: ", _command("rca"),
                                           " (the postmortem is in the thread)"))
        return Next(NextKind.DONE, ("Nothing left: the postmortem and the follow-ups are in the thread.",))
    if incident.busy is not None:
        what = "the database " + incident.busy.name if incident.busy.kind is BusyKind.DANGER else incident.busy.name
        return Next(NextKind.WAIT, rich("wait: ", what, " is running (started by ", Person(incident.busy.actor),
                                        "); its progress and result appear in the thread."))
    latest = runs[-1] if runs else None
    if latest is not None and latest.status in (StepStatus.FAILED, StepStatus.INTERRUPTED):
        how = "failed" if latest.status is StepStatus.FAILED else "was interrupted"
        return Next(NextKind.STEP, rich(latest.step.value, " ", how, ": read why in the thread, then run ",
                                        _command(latest.step.value), " again, or pick one of the Alternatives…"),
                    step=latest.step if latest.step in RUNBOOK_STEPS else None)
    done = {run.step: run for run in runs if run.status is StepStatus.SUCCEEDED}

    def after(later: StepName, earlier: StepName) -> bool:
        """Has `later` succeeded since `earlier` last succeeded?"""
        return later in done and (earlier not in done or done[later].started_at >= done[earlier].started_at)

    fixed_by_alternative = any(step in done for step in ALTERNATIVE_FIXES)
    if StepName.BACKUP not in done:
        return _step(StepName.BACKUP)
    if StepName.REVERT not in done and not fixed_by_alternative:
        return _step(StepName.REVERT)
    if StepName.REVERT in done and not after(StepName.REBUILD, StepName.REVERT):
        return _step(StepName.REBUILD)
    if StepName.REBUILD in done and not after(StepName.RESTART, StepName.REBUILD):
        return _step(StepName.RESTART)
    last_change = max((done[s].started_at for s in (StepName.RESTART, *ALTERNATIVE_FIXES) if s in done), default=None)
    verified = done.get(StepName.VERIFY)
    if verified is None or (last_change is not None and verified.started_at < last_change):
        return _step(StepName.VERIFY)
    cleanup: Rich = ()
    if incident.database.state is DatabaseState.UNCHANGED:
        cleanup = rich(_command("cleanup"), " if the new fields must go (danger zone: a second approver reacts "
                       "first).")
    unconfirmed = [item for item in SUCCESS_CRITERIA if not item.automatic and item.key not in incident.success]
    if unconfirmed:
        return Next(NextKind.CONFIRM, rich("confirm the success criteria people checked (", str(len(unconfirmed)),
                                           " left, in 📋 Checklists), then ", _command("close"), "."), also=cleanup)
    return Next(NextKind.CLOSE, rich(_command("close"), " — the bot checks the automatic criteria first."),
                also=cleanup)


def _step(step: StepName) -> Next:
    return Next(NextKind.STEP, rich(_command(step.value), " — ", WHY[step]), step=step)
