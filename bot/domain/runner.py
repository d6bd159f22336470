"""The step runner: decides whether a step may run, runs it, and records what happened.

Steps return typed results; the runner records them (the step run, the incident's timeline, its lifecycle
and checklist, the audit log), reports progress by updating one thread message at most once a second,
and keeps one run at a time per incident: it holds the incident busy with a conditional write, owned by
this process, before anything happens. A step whose process died is marked interrupted by
:mod:`bot.domain.recovery` (at once for this replica's own earlier incarnation).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

from bot import faults
from bot.domain.access import Act
from bot.domain.builds import keep_running_build
from bot.domain.changes import Changes
from bot.domain.deps import Deps
from bot.domain.desk import Change, Desk
from bot.domain.guide import advice_lines, next_action
from bot.domain.incident import BusyKind, Incident
from bot.domain.ports import Message
from bot.domain.recovery import Recovery
from bot.domain.runs import HotfixArtifacts, StepName, StepRun, StepStatus
from bot.domain.steps import RUNBOOK_STEPS, TITLES, Planned, RegisteredStep, StepContext, StepResult
from bot.errors import BadInput, BotError, ConfigError, Conflict, echo
from bot.ids import SLASH_COMMAND
from bot.logctx import bound
from bot.text import Code, Link, Person, Rich, plain, rich

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 1.0  # Slack allows about one chat.update per second per message


@dataclass(frozen=True)
class Outcome:
    run: StepRun
    result: StepResult


def _when(run: StepRun) -> Rich:
    moment = run.finished_at or run.started_at
    return (f"{moment:%H:%M:%S} UTC by ", Person(run.actor))


class StepRunner:
    """Runs one runbook step or safer alternative at a time per incident: checks, holds the incident busy,
    runs it, records the result everywhere it shows."""

    def __init__(self, deps: Deps, desk: Desk, recovery: Recovery, changes: Changes) -> None:
        self.deps, self.desk, self.recovery, self.changes = deps, desk, recovery, changes

    # ---- the rules --------------------------------------------------------------------------------------
    def check_allowed(self, step: RegisteredStep, history: list[StepRun], again: bool) -> None:
        """A step runs only when it makes sense. Refusals say why and what to run instead."""
        def last(*names: StepName) -> StepRun | None:
            done = [r for r in history if r.step in names and r.succeeded]
            return done[-1] if done else None

        if step.name is StepName.REVERT and last(StepName.BACKUP) is None:
            raise Conflict("The runbook backs up before reverting, and this incident has no verified backup yet.",
                           hint=("Run ", Code(f"{SLASH_COMMAND} backup"), " first."))
        if step.name is StepName.RESTART:
            revert, rebuild = last(StepName.REVERT), last(StepName.REBUILD)
            if revert and (rebuild is None or rebuild.started_at < revert.started_at):
                raise Conflict(rich("The code was reverted (", _when(revert), ") but not rebuilt since, so a restart "
                                    "would run the old build."),
                               hint=("Run ", Code(f"{SLASH_COMMAND} rebuild"), " first."))
        previous = last(step.name)
        if previous and not again and step.name in RUNBOOK_STEPS:
            raise Conflict(rich(Code(step.name.value), " already succeeded (", _when(previous), "): ",
                                previous.summary),
                           hint=("To run it again: ", Code(f"{SLASH_COMMAND} {step.name.value} --again"), "."))

    # ---- running ------------------------------------------------------------------------------------------
    def run_named(self, actor: str, channel: str, name: str, args: list[str], again: bool = False) -> Outcome:
        """backup, revert, rebuild, restart, verify: the same call for the subcommand and the panel button."""
        self.deps.access.require(Act.STEP, actor, channel)
        try:
            step = self.deps.steps[StepName(name)]
        except ValueError:
            raise BadInput((echo(name), " is not a runbook step."),
                           hint=("Try ", Code(f"{SLASH_COMMAND} help"), ".")) from None
        incident = self.desk.active_in(channel)
        outcome = self.run(incident, step, actor, args, again)
        self.tell_next(actor, incident.id, rich(TITLES[step.name], " ",
                                                "succeeded" if outcome.result.ok else "failed"), outcome.result.ok)
        return outcome

    def tell_next(self, actor: str, incident_id: str, what: Rich, ok: bool) -> None:
        """Privately, where the person typed or clicked: how what they ran ended and the panel's Next line, with a
        link back to the panel (by then it may have scrolled far up the channel)."""
        try:
            incident = self.desk.get(incident_id)
            upcoming = next_action(incident)
            link = self.desk.link(incident)
        except Exception:  # a hint: what was done is recorded and said in the thread already
            log.warning("could not tell %s the Next line of %s", actor, incident_id, exc_info=True)
            return
        self.desk.tell(actor, incident.channel, rich(
            "✅ " if ok else "❌ ", what, " (details in the thread).\n👉 Next: ", upcoming.text,
            *((" · ", Link(link, "Open the control panel")) if link else ())))

    def run(self, incident: Incident, step: RegisteredStep, actor: str, args: list[str], again: bool, *,
            guard: Change | None = None) -> Outcome:
        """Run one step. ``guard`` is checked when the incident is taken (see :meth:`Desk.hold`)."""
        deps = self.deps
        incident = self.recovery.settle(incident.id)
        history = deps.store.step_runs(incident.id)
        ctx = StepContext(incident=incident, actor=actor, config=deps.config, data_dir=deps.settings.data_dir,
                          args=args, history=history, secrets=deps.secrets)
        plan = step.prepare(ctx)  # validates the arguments and looks; nothing has changed yet
        self.check_allowed(step, history, again)
        run_id = f"{incident.id}-{step.name.value}-{uuid.uuid4().hex[:6]}"
        now = deps.clock.now()
        with deps.replica.running(run_id), bound(incident=incident.id, step=step.name.value, run=run_id):
            incident = self.desk.hold(incident.id, BusyKind.STEP, run_id, step.name.value, actor, guard=guard)
            run = StepRun(id=run_id, incident_id=incident.id, step=step.name, actor=actor, started_at=now,
                          summary=plain(plan.summary), plan=[plain(line) for line in plan.lines],
                          owner=deps.replica.owner)
            deps.store.add_step_run(run)
            self.desk.audit(now, actor, "step.started", incident.id, step=step.name.value, run=run.id,
                            plan=self.desk.clean(plain(plan.summary)), args=len(args))
            self.desk.redraw(incident.id)
            return self._execute(incident, step, ctx, plan, run)

    def _execute(self, incident: Incident, step: RegisteredStep, ctx: StepContext, plan: Planned,
                 run: StepRun) -> Outcome:
        deps = self.deps

        def render(state: str, text: Rich, details: list[Rich] | None = None) -> Message:
            return deps.ui.step(TITLES[step.name], run.actor, plan.summary, plan.lines, state, text, details or [])

        try:
            ts: str | None = self.desk.thread(incident, render("running", ("starting",)))
        except Exception:  # Slack's trouble must not stop the step: its result is posted (or recorded) at the end
            log.warning("could not post the progress message of %s; the step runs regardless", run.id, exc_info=True)
            ts = None
        reporter = _Progress(self.desk, incident, ts, lambda text: render("running", text))
        ctx.progress = reporter
        ctx.run_id = run.id
        faults.point(f"step.{step.name.value}.started")
        try:
            result = plan.carry_out(ctx)
        except BotError as error:
            result = StepResult(ok=False, summary=error.user_text())
        except Exception as error:  # a step failure is recorded, never lost
            correlation = uuid.uuid4().hex[:12]
            log.error("step %s failed (correlation id %s)", step.name, correlation, exc_info=error)
            result = StepResult(ok=False, summary=("unexpected error (correlation id ", Code(correlation), "): ",
                                                   self.desk.clean(str(error))[:200]))
        if result.advice:  # whom to call: each group's handle resolved once, before anything shows or stores it
            mentions = {p: self._mention(p) for p in {p for a in result.advice for p in a.people}}
            advice = [a.model_copy(update={"people": [mentions[p] for p in a.people]}) for a in result.advice]
            result = replace(result, advice=advice, details=[*advice_lines(advice), *result.details])
        finished = self._record(incident.id, run.id, step, result)
        reporter.finish(render("succeeded" if result.ok else "failed", result.summary, result.details))
        return Outcome(finished, result)

    def _record(self, incident_id: str, run_id: str, step: RegisteredStep, result: StepResult) -> StepRun:
        deps = self.deps
        now = deps.clock.now()
        summary = self.desk.clean(plain(result.summary))
        run = deps.store.get_step_run(run_id)
        assert run is not None
        run.status = StepStatus.SUCCEEDED if result.ok else StepStatus.FAILED
        run.finished_at = now
        run.summary = summary
        run.artifacts = result.artifacts
        run.checks = [c.model_copy(update={"detail": self.desk.clean(c.detail)}) for c in result.checks]
        run = deps.store.save_step_run(run)  # only this process writes a run it holds

        ships = isinstance(result.artifacts, HotfixArtifacts) and result.artifacts.ship
        advice = result.advice  # whom to call, already as mentions (see _execute)

        def finish(incident: Incident) -> None:
            outcome = "succeeded" if result.ok else "failed"
            incident.record(now, run.actor, f"{TITLES[step.name]}: {outcome} — {summary}")
            incident.step_finished(step.name, result.ok, now, run.actor, ships=ships, advice=advice)
            if result.ok:
                for key in result.ticks:
                    incident.tick(key, "bot", now)

        self.desk.release(incident_id, run_id, finish)
        self.desk.audit(now, run.actor, "step.finished", incident_id, step=step.name.value, run=run_id,
                        ok=result.ok, summary=summary,
                        checks=[c.model_dump() for c in run.checks])
        deps.metrics.step_finished(step.name.value, result.ok, (now - run.started_at).total_seconds())
        self.changes.after(incident_id)
        if step.name is StepName.VERIFY and result.ok:  # the build that just passed is a known good one
            keep_running_build(deps, f"after verify of {incident_id}")
        return run

    def _mention(self, entry: str) -> str:
        try:
            return self.deps.access.mention(entry).user
        except ConfigError:  # a workspace without user groups: the handle as typed (the step's result comes first)
            return entry


class _Progress:
    """Updates the step's one thread message with its progress, at most every PROGRESS_EVERY_S."""

    def __init__(self, desk: Desk, incident: Incident, ts: str | None, render: Callable[[Rich], Message]) -> None:
        self.desk, self.incident, self.ts, self.render = desk, incident, ts, render
        self._last = 0.0

    def __call__(self, text: Rich) -> None:
        now = time.monotonic()
        if self.ts is None or now - self._last < PROGRESS_EVERY_S:
            return
        self._last = now
        self.desk.update_thread(self.incident, self.ts, self.render(text))

    def finish(self, message: Message) -> None:
        """The result in the step's message; if that message could not be posted, as a new one (best effort: the
        result is recorded in any case)."""
        if self.ts is not None:
            self.desk.update_thread(self.incident, self.ts, message)
            return
        try:
            self.desk.thread(self.incident, message)
        except Exception:
            log.warning("could not post a step's result in %s's thread", self.incident.id, exc_info=True)
