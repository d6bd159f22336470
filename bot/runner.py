"""The step runner: decides whether a step may run, runs it, and records what happened.

Steps return results; the runner records them (step run, incident timeline, milestones, checklist,
audit log), reports progress by updating one thread message, and keeps one step at a time per
incident through a conditional write on the incident.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.comms import who
from bot.errors import BotError, Conflict, StaleState
from bot.ids import SLASH_COMMAND
from bot.incident import Incident, StepRun, StepStatus
from bot.redact import redact
from bot.runbook import STEPS, Plan, Step, StepContext, StepResult
from bot.runbook.envfile import secret_values

log = logging.getLogger(__name__)

HEARTBEAT_S = 5.0
STALE_AFTER = timedelta(seconds=30)
PROGRESS_EVERY_S = 0.5


@dataclass(frozen=True)
class Outcome:
    run: StepRun
    result: StepResult


def _ago(run: StepRun) -> str:
    return f"{run.finished_at or run.started_at:%H:%M:%S} UTC by {who(run.actor)}"


class StepRunner:
    def __init__(self, service: Any) -> None:
        self.service = service  # bot.service.RollbackService (avoids an import cycle)

    # ---- rules ------------------------------------------------------------------------------------------
    def check_allowed(self, step: Step, history: list[StepRun], again: bool) -> None:
        """A step runs only when it makes sense. Refusals say why and what to run instead."""
        def last(*names: str) -> StepRun | None:
            done = [r for r in history if r.step in names and r.status is StepStatus.SUCCEEDED]
            return done[-1] if done else None

        if step.name == "revert" and last("backup") is None:
            raise Conflict("The runbook backs up before reverting, and this incident has no verified backup yet.",
                           hint=f"Run `{SLASH_COMMAND} backup` first.")
        if step.name == "restart":
            revert, rebuild = last("revert"), last("rebuild")
            if revert and (rebuild is None or rebuild.started_at < revert.started_at):
                raise Conflict(f"The code was reverted ({_ago(revert)}) but not rebuilt since, so a restart would "
                               "run the old build.", hint=f"Run `{SLASH_COMMAND} rebuild` first.")
        previous = last(step.name)
        if previous and not again:
            raise Conflict(f"`{step.name}` already succeeded ({_ago(previous)}): {previous.summary}",
                           hint=f"To run it again: `{SLASH_COMMAND} {step.name} --again`.")

    # ---- running ---------------------------------------------------------------------------------------------
    def run(self, incident: Incident, step: Step, actor: str, args: list[str], again: bool) -> Outcome:
        svc = self.service
        store, clock = svc.store, svc.clock
        self.recover_stale(incident.id)
        history = store.step_runs(incident.id)
        secrets = svc.secrets()
        ctx = StepContext(incident=incident, actor=actor, settings=svc.settings, args=args, history=history,
                          progress=lambda _text: None, secrets=secrets)
        plan = step.plan(ctx)  # validates the arguments and looks; nothing has changed yet
        self.check_allowed(step, history, again)
        run = StepRun(id=f"{incident.id}-{step.name}-{uuid.uuid4().hex[:6]}", incident_id=incident.id,
                      step=step.name, actor=actor, started_at=clock.now(), summary=plan.summary,
                      result={"heartbeat": clock.now().isoformat()})
        self._claim(incident.id, run)
        store.add_step_run(run)
        store.audit(clock.now(), actor, "step.started", incident.id, step=step.name, run=run.id,
                    plan=redact(plan.summary, secrets), args=getattr(step, "public_args", list)(args))
        thread = incident.panel_ts
        svc.say(incident.channel, self._plan_text(step, plan, actor), thread_ts=thread, secrets=secrets)
        progress_ts = svc.say(incident.channel, f"⏳ *{step.title}* — starting", thread_ts=thread, secrets=secrets)
        reporter = _Progress(svc, incident.channel, progress_ts, step.title, secrets)
        ctx.progress = reporter
        beat = _Heartbeat(lambda: self._beat(run.id))
        beat.start()
        try:
            result = step.run(ctx, plan)
        except BotError as error:
            result = StepResult(ok=False, summary=error.user_text())
        except Exception as error:  # noqa: BLE001 - a step failure is recorded, never lost
            correlation = uuid.uuid4().hex[:12]
            log.error("step %s failed (correlation id %s)", step.name, correlation, exc_info=error)
            result = StepResult(ok=False, summary=f"unexpected error (correlation id `{correlation}`): "
                                                  f"{redact(str(error), secrets)[:200]}")
        finally:
            beat.stop()
        finished = self._record(incident.id, run.id, step, actor, result, secrets)
        mark = "✅" if result.ok else "❌"
        reporter.finish(f"{mark} *{step.title}* — {'succeeded' if result.ok else 'failed'}: {result.summary}")
        if result.details:
            svc.say(incident.channel, "\n".join(result.details), thread_ts=thread, secrets=secrets)
        return Outcome(finished, result)

    def _plan_text(self, step: Step, plan: Plan, actor: str) -> str:
        lines = "\n".join(f"• {line}" for line in plan.lines)
        return f"📋 *{step.title}* requested by {who(actor)} — plan: {plan.summary}\n{lines}"

    def _claim(self, incident_id: str, run: StepRun) -> None:
        def claim(incident: Incident) -> None:
            if not incident.active:
                raise Conflict(f"{incident.id} is closed.")
            if incident.running_step:
                running = self.service.store.get_step_run(incident.running_step)
                name, by = (running.step, running.actor) if running else ("a step", "someone")
                raise Conflict(f"`{name}` is still running (started by {who(by)}); one step at a time.",
                               hint=f"Follow it in the thread, or check `{SLASH_COMMAND} status`.")
            incident.running_step = run.id

        self.service.mutate(incident_id, claim)

    def _beat(self, run_id: str) -> None:
        store, clock = self.service.store, self.service.clock
        for _ in range(3):
            run = store.get_step_run(run_id)
            if run is None:
                return
            if run.status is not StepStatus.RUNNING:
                return
            run.result = {**run.result, "heartbeat": clock.now().isoformat()}
            try:
                store.save_step_run(run)
                return
            except StaleState:
                continue

    def _record(self, incident_id: str, run_id: str, step: Step, actor: str, result: StepResult,
                secrets: list[str]) -> StepRun:
        svc = self.service
        store, clock = svc.store, svc.clock
        now = clock.now()
        run = store.get_step_run(run_id)
        assert run is not None
        while True:
            run.status = StepStatus.SUCCEEDED if result.ok else StepStatus.FAILED
            run.finished_at = now
            run.summary = redact(result.summary, secrets)
            run.result = {"artifacts": result.artifacts,
                          "checks": [{"name": c.name, "ok": c.ok, "detail": redact(c.detail, secrets)}
                                     for c in result.checks]}
            try:
                run = store.save_step_run(run)
                break
            except StaleState:  # the heartbeat wrote in between
                fresh = store.get_step_run(run_id)
                assert fresh is not None
                run = fresh

        def finish(incident: Incident) -> None:
            if incident.running_step == run_id:
                incident.running_step = None
            incident.record(now, actor, f"{step.title}: {'succeeded' if result.ok else 'failed'} — {run.summary}")
            for milestone in result.milestones:
                incident.reach(milestone, now, actor)
            if result.ok:
                for key in result.ticks:
                    incident.tick(key, "bot", now)

        incident = svc.mutate(incident_id, finish)
        store.audit(now, actor, "step.finished", incident_id, step=step.name, run=run_id, ok=result.ok,
                    summary=run.summary, milestones=[m.value for m in result.milestones],
                    checks=run.result["checks"])
        svc.refresh_panel(incident)
        return run

    # ---- crashes and restarts --------------------------------------------------------------------------------
    def recover_stale(self, incident_id: str, *, force: bool = False) -> StepRun | None:
        """A step whose runner stopped (crash, restart) is marked interrupted, with what is known."""
        svc = self.service
        incident = svc.store.get_incident(incident_id)
        if incident is None or not incident.running_step:
            return None
        run = svc.store.get_step_run(incident.running_step)
        now = svc.clock.now()
        if run is not None and run.status is StepStatus.RUNNING:
            beat = run.result.get("heartbeat")
            from bot.clock import from_iso

            last = from_iso(beat) if isinstance(beat, str) else run.started_at
            if not force and now - last < STALE_AFTER:
                return None
            run.status = StepStatus.INTERRUPTED
            run.finished_at = now
            run.summary = f"interrupted: the bot stopped while this ran (last sign of life {last:%H:%M:%S} UTC). " \
                          f"It can be run again. Plan was: {run.summary}"
            try:
                run = svc.store.save_step_run(run)
            except StaleState:
                return None
        running = incident.running_step

        def clear(fresh: Incident) -> None:
            if fresh.running_step == running:
                fresh.running_step = None
                if run is not None:
                    fresh.record(now, "bot", f"{run.step} was interrupted and can be run again")

        incident = svc.mutate(incident_id, clear)
        if run is not None:
            svc.store.audit(now, "bot", "step.interrupted", incident_id, step=run.step, run=run.id)
            svc.say(incident.channel, f"⚠️ *{run.step}* — {run.summary}", thread_ts=incident.panel_ts)
        svc.refresh_panel(incident)
        return run

    def recover_all(self, *, force: bool = False) -> list[StepRun]:
        """At start-up: every active incident's running step that has no live runner becomes interrupted."""
        found = []
        for incident in self.service.store.incidents():
            if incident.active and incident.running_step:
                run = self.recover_stale(incident.id, force=force)
                if run is not None:
                    found.append(run)
        return found


def all_secret_values(service: Any) -> list[str]:
    settings = service.settings
    values = secret_values(settings.runbook.target.env_path)
    for secret in (settings.secrets.slack_bot_token, settings.secrets.slack_app_token,
                   settings.secrets.slack_signing_secret, settings.secrets.state_store_uri,
                   settings.secrets.smtp_password):
        if secret is not None:
            values.append(secret.get_secret_value())
    return values


class _Progress:
    """Updates one thread message with the step's progress, at most every PROGRESS_EVERY_S."""

    def __init__(self, service: Any, channel: str, ts: str, title: str, secrets: list[str]) -> None:
        self.service, self.channel, self.ts, self.title, self.secrets = service, channel, ts, title, secrets
        self._last = 0.0

    def __call__(self, text: str) -> None:
        now = time.monotonic()
        if now - self._last < PROGRESS_EVERY_S:
            return
        self._last = now
        self._update(f"⏳ *{self.title}* — {text}")

    def finish(self, text: str) -> None:
        self._update(text)

    def _update(self, text: str) -> None:
        try:
            self.service.update_text(self.channel, self.ts, redact(text, self.secrets))
        except Exception:  # progress is best effort; the result is recorded regardless
            log.warning("could not update progress", exc_info=True)


class _Heartbeat:
    def __init__(self, beat: Any) -> None:
        self._beat = beat
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="step-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self._beat()
            except Exception:  # a missed heartbeat only makes the step look stale sooner
                log.warning("heartbeat failed", exc_info=True)


__all__ = ["STEPS", "Outcome", "StepRunner", "all_secret_values"]
