"""Recovery across crashes, restarts and replicas: work whose owner died is settled, exactly once.

:meth:`Recovery.sweep` runs at start-up (at once: this replica's own earlier incarnation is known dead
because this process holds the replica lock) and then every ``store.sweep_s`` by the scheduler;
:meth:`Recovery.settle` runs before any action that needs an incident idle (a step, a close, a danger-zone
request). For each piece of work whose owner is dead:

- a step run → marked *interrupted* (it can simply be run again) and the incident let go;
- a hold for a danger-zone run that never started (or already ended) → let go;
- a stakeholder post claimed but not recorded → found in Slack by its metadata and recorded, or sent;
- a milestone reached but not announced (the announcement failed) → announced.

A danger-zone run whose owner died, and an approved request whose delay passed, are the danger zone's own
scheduled job (:meth:`bot.domain.danger.executor.Executor.sweep`), not this one. Work a live replica owns is
left alone; another replica's work is taken over only after its lease.
"""

from __future__ import annotations

import logging

from bot.domain.approvals import ApprovalStatus
from bot.domain.changes import Changes
from bot.domain.deps import Deps
from bot.domain.desk import Desk
from bot.domain.incident import Busy, BusyKind, Incident
from bot.domain.lifecycle import Stall
from bot.domain.runs import StepName, StepStatus
from bot.domain.stakeholders import ANNOUNCED, Stakeholders
from bot.errors import StaleState
from bot.text import rich

log = logging.getLogger(__name__)


class Recovery:
    """What a dead process left: its step marked interrupted, its busy hold released, its unposted update sent;
    run by the sweep and at start-up."""

    def __init__(self, deps: Deps, desk: Desk, stakeholders: Stakeholders, changes: Changes) -> None:
        self.deps, self.desk, self.stakeholders, self.changes = deps, desk, stakeholders, changes

    def sweep(self) -> None:
        for incident in self.deps.store.active_incidents():
            try:
                self._settle(incident.id)
                if any(m in incident.milestones and m.value not in incident.comms for m in ANNOUNCED):
                    self.stakeholders.sync(incident.id)
            except Exception:  # one incident's trouble must not stop the others; the next sweep retries
                log.exception("recovery of %s failed", incident.id)
        for incident in self.deps.store.incidents_with_pending_posts():
            try:
                self.stakeholders.reconcile(incident)
            except Exception:
                log.exception("stakeholder post recovery failed for %s", incident.id)

    def settle(self, incident_id: str) -> Incident:
        """Let go of what a dead process held on this incident, then return the incident fresh."""
        try:
            self._settle(incident_id)
        except Exception:  # the sweep settles it again; the caller still gets an answer
            log.exception("could not settle %s", incident_id)
        return self.desk.get(incident_id)

    def _settle(self, incident_id: str) -> None:
        incident = self.deps.store.get_incident(incident_id)
        if incident is not None and incident.autopilot is not None and not self.deps.replica.is_alive(
                incident.autopilot.owner, incident.autopilot.work):
            self._autopilot_died(incident)
        if incident is None or incident.busy is None:
            return
        busy = incident.busy
        if self.deps.replica.is_alive(busy.owner, busy.ref):
            return
        if busy.kind is BusyKind.STEP:
            self._interrupt(incident, busy)
            return
        approval = self.deps.store.get_approval(busy.ref)
        if approval is not None and approval.status is ApprovalStatus.RUNNING:
            return  # a danger-zone run: the danger zone's sweep takes it over and resumes it
        self._let_go(incident.id, busy)  # held for a run that never started (or already ended): free it

    def _autopilot_died(self, incident: Incident) -> None:
        """The process driving the autopilot stopped: the autopilot stops with it (nothing runs by itself)."""
        pilot = incident.autopilot
        assert pilot is not None
        now, stopped = self.deps.clock.now(), False

        def off(fresh: Incident) -> None:
            nonlocal stopped
            stopped = fresh.autopilot is not None and fresh.autopilot.token == pilot.token
            if stopped:
                fresh.autopilot = None
                fresh.record(now, "bot", "Autopilot stopped: the process running it stopped "
                                         f"({pilot.owner.describe()})")

        fresh = self.desk.mutate(incident.id, off)
        if stopped:
            self.deps.store.audit(now, "bot", "autopilot.stopped", incident.id, why="its process stopped")
            self.desk.thread(fresh, rich("🤖 The autopilot stopped: the process running it stopped (",
                                         pilot.owner.describe(), "). Nothing else runs by itself; see the Next line."))
            self.changes.after(fresh.id)

    def _let_go(self, incident_id: str, busy: Busy, text: str | None = None) -> Incident | None:
        released = False

        def let_go(fresh: Incident) -> None:
            nonlocal released
            released = fresh.busy is not None and fresh.busy.ref == busy.ref and fresh.busy.owner == busy.owner
            if released:
                fresh.busy = None
                if text:
                    fresh.record(self.deps.clock.now(), "bot", text)
                step = next((s for s in StepName if s.value == busy.name), None)
                if busy.kind is BusyKind.STEP and step is not None:
                    fresh.lifecycle.stall = Stall(step=step, how="was interrupted")

        incident = self.desk.mutate(incident_id, let_go)
        return incident if released else None

    def _interrupt(self, incident: Incident, busy: Busy) -> None:
        deps, now = self.deps, self.deps.clock.now()
        run = deps.store.get_step_run(busy.ref)
        who = busy.owner.describe()
        if run is not None and run.status is StepStatus.RUNNING:
            run.status, run.finished_at = StepStatus.INTERRUPTED, now
            run.summary = (f"interrupted: the process running it stopped ({who}). It can be run again. "
                           f"Plan was: {run.summary}")
            try:
                deps.store.save_step_run(run)
            except StaleState:
                return  # someone else is settling it
        freed = self._let_go(incident.id, busy, f"{busy.name} was interrupted ({who}) and can be run again")
        if freed is None:
            return
        deps.store.audit(now, "bot", "step.interrupted", incident.id, step=busy.name, run=busy.ref, owner=who)
        self.desk.thread(freed, deps.ui.step_interrupted(busy.name, who))
        self.changes.after(freed.id)
