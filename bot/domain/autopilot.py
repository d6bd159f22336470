"""The autopilot: the runbook's steps one after the other, without anyone typing the next one.

`/rollback start --auto`, `/rollback auto` and the panel's *Run the rest* run what the incident still needs
(backup, revert, rebuild, restart, verify; or the rest of an alternative already under way), each step exactly
as if a commander had typed it: its plan, its progress and its result in the thread, recorded with the person
who started the autopilot. It stops at the first step that fails (the Next line says why), when service is
back, or when any commander pauses it (`/rollback pause` or the panel's *Pause*), which takes effect once the
running step has finished: a step is never cut in half. The danger zone is never part of it.

The incident records the autopilot with the process running it; a process that dies leaves it to
:mod:`bot.domain.recovery`, which marks it stopped (the step it was running is interrupted as usual).
"""

from __future__ import annotations

import logging
import threading
import uuid

from bot.domain.access import Act
from bot.domain.deps import Deps
from bot.domain.desk import Desk, busy_conflict, require_active
from bot.domain.guide import next_step
from bot.domain.incident import Autopilot, Incident
from bot.domain.runner import StepRunner
from bot.domain.runs import StepName
from bot.errors import BotError, Conflict
from bot.ids import SLASH_COMMAND
from bot.text import Code, Person, Rich, rich

log = logging.getLogger(__name__)


class Autopilots:
    """Runs an incident's remaining runbook steps in order, and pauses them."""

    def __init__(self, deps: Deps, desk: Desk, runner: StepRunner) -> None:
        self.deps, self.desk, self.runner = deps, desk, runner
        self._stopping = threading.Event()

    def stop(self) -> None:
        """The bot is stopping: no autopilot starts another step (the running one finishes, or is interrupted)."""
        self._stopping.set()

    def run_rest(self, actor: str, channel: str) -> Incident:
        deps = self.deps
        deps.access.require(Act.STEP, actor, channel)
        incident = self.desk.active_in(channel)
        if incident.busy is not None and incident.autopilot is None:
            raise busy_conflict(incident.busy)
        first = next_step(incident)
        if first is None and incident.autopilot is None:
            raise Conflict("There is nothing for the autopilot to run: " + _why_not(incident),
                           hint=("See the panel's Next line, or ", Code(f"{SLASH_COMMAND} next"), "."))
        now, token = deps.clock.now(), uuid.uuid4().hex[:12]
        pilot = Autopilot(by=actor, since=now, owner=deps.replica.owner, token=token)

        def mine(fresh: Incident) -> bool:
            return fresh.autopilot is not None and fresh.autopilot.token == token

        def engage(fresh: Incident) -> None:
            require_active(fresh)
            if fresh.autopilot is not None:
                raise Conflict(rich("The autopilot is already running (started by ", Person(fresh.autopilot.by),
                                    ")."), hint=("Pause it with ", Code(f"{SLASH_COMMAND} pause"), "."))
            fresh.autopilot = pilot
            fresh.record(now, actor, "Autopilot started: the runbook's steps one after the other")

        why = "it stopped unexpectedly (see the bot's log)"
        with deps.replica.running(pilot.work):  # marked as this process's before anyone can see it engaged
            incident = self.desk.mutate(incident.id, engage)
            try:
                self.desk.audit(now, actor, "autopilot.started", incident.id, first=first.value if first else None)
                ts = self.desk.thread(incident, rich(
                    "🤖 ", Person(actor), " started the autopilot: ", _path(incident), " one after the other, each "
                    "with its plan and result here. It stops at the first failure; any commander can pause it with ",
                    Code(f"{SLASH_COMMAND} pause"), ". The danger zone is never part of it."))
                self.desk.done_in_thread(actor, incident, ts, ("Started the autopilot",))
                self.desk.redraw(incident.id)
                while True:
                    if self._stopping.is_set():
                        why = "the bot is stopping; start it again once the bot is back"
                        break
                    incident = self.desk.get(incident.id)
                    step = next_step(incident) if mine(incident) else None
                    if step is None:
                        why = ("paused" if not mine(incident) else "service is back" if
                               incident.lifecycle.service_back else _why_not(incident))
                        break

                    def still_next(fresh: Incident, step: StepName = step) -> None:
                        if not mine(fresh):
                            raise Conflict("The autopilot was paused before the next step started.")
                        if next_step(fresh) is not step:
                            raise Conflict(f"The incident changed: {step.value} is no longer the next step.")

                    outcome = self.runner.run(incident, deps.steps[step], actor, [], again=False, guard=still_next)
                    if not outcome.result.ok:
                        why = f"{step.value} failed"
                        break
            except BotError as error:  # a step refused (paused, or someone ran one by hand meanwhile): say why
                why = "paused" if not mine(self.desk.get(incident.id)) else "a step was refused: " + error.plain()
            except Exception:
                log.exception("the autopilot of %s stopped on an error", incident.id)
                raise
            finally:
                self._disengage(incident.id, token, actor, why)
        return self.desk.get(incident.id)

    def pause(self, actor: str, channel: str) -> Incident:
        """Stop the autopilot before its next step (any commander); a running step finishes."""
        self.deps.access.require(Act.STEP, actor, channel)
        incident = self.desk.active_in(channel)
        now = self.deps.clock.now()

        def stop(fresh: Incident) -> None:
            if fresh.autopilot is None:
                raise Conflict("The autopilot is not running.",
                               hint=("Start it with ", Code(f"{SLASH_COMMAND} auto"), " or the panel's Run the rest."))
            fresh.autopilot = None
            fresh.record(now, actor, "Autopilot paused")

        incident = self.desk.mutate(incident.id, stop)
        self.desk.audit(now, actor, "autopilot.paused", incident.id)
        running = f" once {incident.busy.name} has finished" if incident.busy is not None else ""
        ts = self.desk.thread(incident, rich("⏸️ ", Person(actor), " paused the autopilot", running,
                                             ". Nothing else runs by itself."))
        self.desk.done_in_thread(actor, incident, ts, ("Paused the autopilot", running))
        self.desk.redraw(incident.id)
        return incident

    def _disengage(self, incident_id: str, token: str, actor: str, why: str) -> None:
        """This engagement ends (a pause already ended it; a newer one is not touched)."""
        now = self.deps.clock.now()
        stopped = False

        def off(fresh: Incident) -> None:
            nonlocal stopped
            stopped = fresh.autopilot is not None and fresh.autopilot.token == token
            if stopped:
                fresh.autopilot = None
                fresh.record(now, "bot", f"Autopilot stopped: {why}")

        try:
            incident = self.desk.mutate(incident_id, off)
            if stopped:
                self.desk.audit(now, actor, "autopilot.stopped", incident_id, why=why)
                self.desk.thread(incident, rich("🤖 The autopilot stopped: ", why, "."))
            self.desk.redraw(incident_id)
            if stopped:
                self.runner.tell_next(actor, incident_id, rich("The autopilot stopped: ", why),
                                      why == "service is back")
        except Exception:  # the recovery sweep clears an autopilot whose process no longer drives it
            log.exception("could not record the end of the autopilot of %s", incident_id)


def _path(incident: Incident) -> Rich:
    """The steps the autopilot expects to run, if each succeeds (from the lifecycle, on a copy)."""
    steps: list[str] = []
    probe = incident.model_copy(deep=True)
    while (step := next_step(probe)) is not None and step.value not in steps:
        steps.append(step.value)
        probe.step_finished(step, True, probe.created_at, "bot")
    return (" → ".join(steps),)


def _why_not(incident: Incident) -> str:
    life = incident.lifecycle
    if incident.busy is not None:
        return f"{incident.busy.name} is running"
    if life.stall is not None:
        return f"{life.stall.step.value} {life.stall.how}; run it again by hand first"
    if not incident.active:
        return "the incident is closed"
    if life.service_back:
        return "service is already back"
    return "the fix under way needs a step the autopilot does not run"
