"""What to do next: the one recommendation the control panel leads with, from the incident's lifecycle
(the phase, the fix under way and what it still needs). Pure: the same incident always gives the same advice."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.config import CONTACT_NAMES
from bot.domain.checklists import SUCCESS_CRITERIA
from bot.domain.incident import BusyKind, DatabaseState, Incident
from bot.domain.lifecycle import Fix, Phase
from bot.domain.runs import Advice, StepName
from bot.domain.steps import RUNBOOK_STEPS
from bot.ids import SLASH_COMMAND
from bot.text import Code, Person, Rich, join, rich

WHY = {
    StepName.BACKUP: "record the commit, dump every tenant database and save the logs; nothing irreversible "
                     "happens before it",
    StepName.REVERT: "reset the code to the known-good commit (uncommitted work is stashed first)",
    StepName.REBUILD: "build the changed code",
    StepName.RESTART: "restart the backend on the new build",
    StepName.VERIFY: "check the health endpoint, the core endpoints and the error logs",
}
COMMANDS = {StepName.SAFE_REVERT: "revert --safe", StepName.HOTFIX: "hotfix ship"}  # others: the step's name
CLEANUP_AFTER = (Fix.ROLLBACK, Fix.SAFE_REVERT)  # the new fields only go once the old code runs again


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
    also_is: str = "Optional"  # how the panel labels ``also``


def _command(name: str, *words: str) -> Code:
    return Code(" ".join([SLASH_COMMAND, name, *words]))


def next_action(incident: Incident) -> Next:
    """The one next thing to do, from the incident's lifecycle (:mod:`bot.domain.lifecycle`)."""
    life = incident.lifecycle
    if not incident.active:
        if incident.rca is None:
            return Next(NextKind.RCA, rich("record the root cause: ", _command("rca"),
                                           " (the postmortem is in the thread)"))
        return Next(NextKind.DONE, ("Nothing left: the postmortem and the follow-ups are in the thread.",))
    if incident.busy is not None:
        what = "the database " + incident.busy.name if incident.busy.kind is BusyKind.DANGER else incident.busy.name
        pilot: Rich = () if incident.autopilot is None else rich(
            "the autopilot (started by ", Person(incident.autopilot.by), ") runs the next steps by itself; ",
            _command("pause"), " stops it after this one.")
        return Next(NextKind.WAIT, rich("wait: ", what, " is running (started by ", Person(incident.busy.actor),
                                        "); its progress and result appear in the thread."), also=pilot)
    aside: Rich = ()
    if incident.autopilot is not None:  # between two of its steps: it is about to start the next
        return Next(NextKind.WAIT, rich("wait: the autopilot (started by ", Person(incident.autopilot.by),
                                        ") is starting the next step; ", _command("pause"), " stops it."))
    if life.stall is not None and life.stall.step is StepName.BACKUP and (
            life.service_back or life.backed_up or life.phase is Phase.MITIGATING):
        # a backup beside a verified one, after service is back, or while a fix that needs none is under way (a
        # flag, one file, a safe revert, a hotfix: only the runbook's revert needs a backup) is for the record
        stands = ("service is back" if life.service_back else "the earlier verified backup stands" if life.backed_up
                  else "the fix under way does not need one")
        aside = rich("backup ", life.stall.how, " (read why in the thread); ", stands, ", so nothing waits on it.")
    elif life.stall is not None:
        step = life.stall.step
        then = rich(_command(COMMANDS.get(step, step.value)), " again",
                    "." if life.service_back else ", or pick one of the Alternatives…")
        if life.stall.advice:  # the failure says what it means and whom to call (a failed verify)
            first, *more = life.stall.advice
            return Next(NextKind.STEP, rich(step.value.replace("_", " "), " ", life.stall.how, ": ", first.cause,
                                            ". ", _call(first), ", then run ", then),
                        step=step if step in RUNBOOK_STEPS else None,
                        also=rich(*(part for item in more[:2] for part in rich(item.cause, " (", _call(item), "). "))),
                        also_is="Also seen")
        return Next(NextKind.STEP, rich(step.value.replace("_", " "), " ", life.stall.how,
                                        ": read why in the thread, then run ", then),
                    step=step if step in RUNBOOK_STEPS else None)
    if life.phase is Phase.OPEN:
        if not life.backed_up:
            return _step(StepName.BACKUP)
        return Next(NextKind.STEP, rich(_command(StepName.REVERT.value), " — ", WHY[StepName.REVERT]),
                    step=StepName.REVERT,
                    also=rich(aside, " " if aside else (), "or a smaller change from Alternatives… (a feature flag, "
                              "one file, a safe revert, a hotfix)"))
    if life.phase is Phase.MITIGATING:
        step = life.needs[0] if life.needs else StepName.VERIFY
        return Next(NextKind.STEP, rich(_command(step.value), " — ", WHY[step]), step=step, also=aside)
    cleanup: Rich = aside
    if incident.database.state is DatabaseState.UNCHANGED and life.fix in CLEANUP_AFTER:
        cleanup = rich(aside, " " if aside else (), _command("cleanup"), " if the new fields must go (danger zone: a "
                       "second approver reacts first).")
    unconfirmed = [item for item in SUCCESS_CRITERIA if not item.automatic and item.key not in incident.success]
    if unconfirmed:
        return Next(NextKind.CONFIRM, rich("confirm the success criteria people checked (", str(len(unconfirmed)),
                                           " left, in 📋 Checklists), then ", _command("close"), "."), also=cleanup)
    return Next(NextKind.CLOSE, rich(_command("close"), " — the bot checks the automatic criteria first."),
                also=cleanup)


def advice_lines(advice: list[Advice]) -> list[Rich]:
    """A failed step's advice as the first lines of its result: what it means, then whom to call."""
    return [rich("👉 ", item.cause, ". ", _call(item), ".") for item in advice]


def _call(advice: Advice) -> Rich:
    """"Call the AI server team (@a, @b)", or where to list them when nobody is."""
    team = CONTACT_NAMES.get(advice.contact, advice.contact)
    if not advice.people:
        return rich("Call ", team, " (nobody is listed yet: ", Code(f"contacts.{advice.contact}"), " in rollback.yml)")
    return rich("Call ", team, " (", join([Person(who) for who in advice.people]), ")")


def _step(step: StepName) -> Next:
    return Next(NextKind.STEP, rich(_command(step.value), " — ", WHY[step]), step=step)


def next_step(incident: Incident) -> StepName | None:
    """The runbook step the incident needs next, or None when nothing is for the autopilot to do (service is
    back, a step failed or was interrupted, or something is running)."""
    life = incident.lifecycle
    if not incident.active or incident.busy is not None or life.stall is not None or life.service_back:
        return None
    if not life.backed_up:
        return StepName.BACKUP
    if life.phase is Phase.OPEN:
        return StepName.REVERT
    step = life.needs[0] if life.needs else StepName.VERIFY
    return step if step in RUNBOOK_STEPS else None
