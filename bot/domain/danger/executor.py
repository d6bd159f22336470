"""Running an approved danger-zone request: claimed once, owned by one process, resumable per tenant.

Starting takes two conditional writes: the incident is held busy (refused when it is closed or another
step or danger run holds it), then the approval moves ``approved → running`` only if it is still approved
and due; if that loses (withdrawn, voided, expired, started elsewhere) the incident is let go at once.
Each tenant's outcome is inserted as its own record once, so a run resumed after a crash (by this
replica at start-up, or by another after the owner's lease expired) skips finished tenants and never
repeats one. Any exception marks the approval failed, says so in the thread and tells the requester.
Messages are best effort (:mod:`.notices`): Slack failing never fails, stops or slows a run; what went stale
catches up when Slack answers again.

Start, takeover, the run and its two endings share the ownership rules, so they stay in one module.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path

from bot import faults
from bot.domain.approvals import (
    Approval,
    ApprovalStatus,
    DangerAction,
    DangerPlan,
    TenantCount,
    TenantPlan,
    TenantResult,
)
from bot.domain.changes import Changes
from bot.domain.danger.gate import Gate
from bot.domain.danger.notices import Deliver, Notices
from bot.domain.danger.plans import Planner, holding
from bot.domain.danger.upkeep import Upkeep
from bot.domain.deps import Deps
from bot.domain.desk import Desk
from bot.domain.incident import Busy, BusyKind, Incident
from bot.domain.ports import Message
from bot.domain.systems import Cleaned, Restored, TenantSession
from bot.errors import BotError, Conflict
from bot.text import Code, Person, Rich, plain, rich

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 1.0
CLOSE_GRACE_S = 3.0


class Executor:
    """Runs an approved danger-zone request tenant by tenant, once, resumable after a crash, with progress in
    the thread and the counts from the data."""

    def __init__(self, deps: Deps, desk: Desk, planner: Planner, gate: Gate, changes: Changes) -> None:
        self.deps, self.desk, self.planner, self.gate, self.changes = deps, desk, planner, gate, changes
        self.upkeep = Upkeep(gate)
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="danger")
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._notices: list[Notices] = []
        self._claims: dict[str, tuple[int, AbstractContextManager[None]]] = {}

    def close(self) -> None:
        """Stop at the next tenant boundary; the run stays `running` and is resumed by the next owner."""
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            notices, self._notices = self._notices, []
        deadline = time.monotonic() + CLOSE_GRACE_S  # what Slack takes at once is still delivered
        for each in notices:
            if not each.wait(max(0.0, deadline - time.monotonic())):
                each.stop()

    def notices(self, approval: Approval) -> Notices:
        """Where this run's messages go: delivered in order, retried while Slack fails, never raising here."""
        incident = self.deps.store.get_incident(approval.incident_id)

        def recovered(away_s: float) -> None:
            if incident is not None:
                self.desk.thread(incident, rich(f"⚠️ Slack was unavailable for {max(1, round(away_s))} s during "
                                                f"the {approval.action.value}; the messages above caught up."))

        made = Notices(approval.id, recovered)
        with self._lock:
            self._notices = [n for n in self._notices if not n.done] + [made]
        return made

    def _say(self, approval: Approval, text: Rich, *, requester: bool = False, notices: Notices | None = None) -> None:
        """A note in the thread (and to the requester), best effort: retried until Slack takes it."""
        mine = notices is None
        notices = notices or self.notices(approval)
        notices.send("note", lambda: self.gate.note(approval, text))
        if requester:
            notices.send("requester", lambda: self.deps.messenger.ephemeral(
                approval.channel, approval.requester, self.deps.ui.private(rich(Person(approval.requester), " ",
                                                                                text))))
        if mine:
            notices.close()

    # ---- the sweep ------------------------------------------------------------------------------------
    def sweep(self) -> None:
        """Start approved requests whose delay has passed; take over runs whose owner died."""
        now = self.deps.clock.now()
        self.upkeep.retire_planless()
        for approval in self.deps.store.approvals_with_status(ApprovalStatus.APPROVED, ApprovalStatus.RUNNING):
            try:
                if approval.status is ApprovalStatus.APPROVED and approval.starts_at and approval.starts_at <= now:
                    self.try_start(approval)
                elif (approval.status is ApprovalStatus.RUNNING
                      and not self.deps.replica.is_alive(approval.owner, approval.id)):
                    self.take_over(approval)
            except Exception:  # one request's trouble must not stop the others; the next sweep retries
                log.exception("danger-zone sweep failed for %s", approval.id)
        for approval in self.deps.store.approvals_with_status(ApprovalStatus.PENDING):
            self.gate.expire_if_due(approval, now)
        self.upkeep.recover_unposted()

    def try_start(self, approval: Approval) -> bool:
        deps, now = self.deps, self.deps.clock.now()
        incident = deps.store.get_incident(approval.incident_id)
        if incident is None or not incident.active:
            voided = self.gate.void(approval.id, "the incident was closed before it ran", from_statuses=(
                ApprovalStatus.APPROVED,))
            if voided is not None:
                self.gate.note(voided, ("🚫 The approved ", voided.action.value, " did not run: the incident is "
                                        "closed. Nothing was changed."))
            return False
        self._claim_here(approval.id)  # before the hold: a sweep meanwhile must not take this run for dead
        try:
            self.desk.hold(incident.id, BusyKind.DANGER, approval.id, approval.action.value, approval.requester)
        except BotError:  # closed or busy right now: the next sweep tries again (or voids it once closed)
            self._unclaim_here(approval.id)
            return False

        def start(fresh: Approval) -> bool:
            if fresh.status is not ApprovalStatus.APPROVED or fresh.starts_at is None or fresh.starts_at > now:
                return False
            fresh.status, fresh.started_at, fresh.owner, fresh.heartbeat_at = (
                ApprovalStatus.RUNNING, now, deps.replica.owner, now)
            return True

        started = self.gate.transition(approval.id, start)
        if started is None:
            self.desk.release(incident.id, approval.id)
            self._unclaim_here(approval.id)
            return False
        faults.point("danger.claimed")
        self.desk.audit(now, "bot", "danger.started", incident.id, approval=approval.id, action=approval.action.value)
        deps.metrics.danger_run(approval.action.value, "started")
        self._submit(started, resumed=False)
        return True

    def take_over(self, approval: Approval) -> bool:
        deps, now = self.deps, self.deps.clock.now()
        dead = approval.owner

        def claim(fresh: Approval) -> bool:
            if fresh.status is not ApprovalStatus.RUNNING or fresh.owner != dead:
                return False
            fresh.owner, fresh.heartbeat_at = deps.replica.owner, now
            return True

        self._claim_here(approval.id)
        taken = self.gate.transition(approval.id, claim)
        if taken is None:
            self._unclaim_here(approval.id)
            return False

        def own(incident: Incident) -> None:
            if incident.busy is not None and incident.busy.ref != approval.id:
                return  # cannot happen while the run is `running`; never steal another run's hold
            since = incident.busy.since if incident.busy is not None else now
            incident.busy = Busy(kind=BusyKind.DANGER, ref=approval.id, name=approval.action.value,
                                 actor=approval.requester, owner=deps.replica.owner, since=since)

        self.desk.mutate(approval.incident_id, own)
        if not any(e.action == "danger.started" and e.data.get("approval") == approval.id
                   for e in deps.store.audit_events(approval.incident_id)):
            # The owner died between claiming the run and recording its start (it touched no tenant before
            # that): the start is recorded now, so the audit never shows a resume without a start.
            self.desk.audit(now, "bot", "danger.started", approval.incident_id, approval=approval.id,
                            action=approval.action.value, claimed_at=(approval.started_at or now).isoformat(),
                            claimed_by=dead.describe() if dead else "unknown")
        done = len(deps.store.tenant_results(approval.id))
        self.desk.audit(now, "bot", "danger.resumed", approval.incident_id, approval=approval.id, done=done,
                        previous_owner=dead.describe() if dead else "unknown")
        deps.metrics.danger_run(approval.action.value, "resumed")
        self._submit(taken, resumed=True, first=rich(
            "🔁 Resuming the ", taken.action.value, " after ", dead.describe() if dead else "its previous owner",
            f" stopped: {done} of {taken.tenants} tenants were already done and are not repeated."))
        return True

    def _submit(self, approval: Approval, *, resumed: bool, first: Rich | None = None) -> None:
        """Run it on the pool; ``first``: a note for the thread before the run's own messages."""
        def guarded() -> None:
            try:
                notices = self.notices(approval)
                if first is not None:
                    self._say(approval, first, notices=notices)
                try:
                    with self.deps.metrics.danger_running(approval.action.value):
                        self._run(approval, resumed, notices)
                except Exception as error:  # noqa: BLE001 - every failure is recorded and told, never lost
                    self._fail(approval.id, error, notices)
                finally:
                    notices.close()  # its worker delivers what is owed, then ends
            finally:
                self._unclaim_here(approval.id)

        try:
            self._pool.submit(guarded)
        except RuntimeError:  # shutting down: the run stays `running` and the next owner resumes it
            self._unclaim_here(approval.id)
            log.info("not starting %s: shutting down", approval.id)

    def _claim_here(self, ref: str) -> None:
        """Mark the run as this process's from before its claim until its thread ends (counted: two sweeps of
        this process may race to start it). Marked only from the pool thread, a sweep running between the claim
        and the thread would find it owned by this process yet not running here, and take it over: twice."""
        with self._lock:
            count, running = self._claims.get(ref, (0, self.deps.replica.running(ref)))
            if count == 0:
                running.__enter__()
            self._claims[ref] = (count + 1, running)

    def _unclaim_here(self, ref: str) -> None:
        with self._lock:
            count, running = self._claims.pop(ref, (1, self.deps.replica.running(ref)))
            if count > 1:
                self._claims[ref] = (count - 1, running)
            else:
                running.__exit__(None, None, None)

    # ---- the run itself --------------------------------------------------------------------------------
    def _run(self, approval: Approval, resumed: bool, notices: Notices) -> None:
        deps = self.deps
        plan = deps.store.get_plan(approval.id)
        if plan is None:
            raise Conflict(("the plan of ", Code(approval.id), " is missing"))
        incident = self.desk.get(approval.incident_id)
        done = {r.db for r in deps.store.tenant_results(approval.id)}
        fresh = deps.store.get_approval(approval.id) or approval
        if plan.action is DangerAction.CLEANUP and not done and fresh.rechecked_at is None:
            # Every tenant, before any changes; also when resuming a run whose first owner died before its
            # re-check was recorded (nothing was touched then).
            grown = self.planner.drift(plan)
            if grown:
                self._void_for_drift(approval, grown)
                return
            if not self._rechecked(approval):
                return  # no longer this replica's run: its new owner re-checks it
        self.planner.verify(plan.backup, [t.db for t in plan.tenants])  # again, right before anything changes
        progress = _ThreadMessage(self.desk, incident)
        self._redraw(notices, approval.id)
        notices.send("progress", progress.show(deps.ui.danger_progress(approval, len(done), len(plan.tenants), None)))
        last_update = time.monotonic()  # each message at most once a second; the last state comes from _finish
        with deps.tenant_cleanup.session() as session:  # closed when the run ends, stops or fails
            for tenant in plan.tenants:
                if tenant.db in done:
                    continue  # finished before a crash or a takeover: never repeated
                if self._stop.is_set():
                    return  # stays `running`; the next owner resumes with the tenants left
                faults.point(f"danger.{plan.action.value}.tenant")
                result = self._one(session, approval, plan, tenant, resumed)
                if deps.store.add_tenant_result(result):
                    self.desk.audit(result.at, "bot", f"{plan.action.value}.tenant", approval.incident_id,
                                    approval=approval.id, tenant=tenant.db, ok=result.ok, modified=result.modified,
                                    dropped=result.dropped, restored=result.restored, verified=result.verified,
                                    error=result.error)
                done.add(tenant.db)
                deps.metrics.danger_run(plan.action.value, "tenant_done")
                faults.point(f"danger.{plan.action.value}.tenant_done")
                if time.monotonic() - last_update >= PROGRESS_EVERY_S:
                    last_update = time.monotonic()
                    approval = self._beat(approval)
                    notices.send("progress", progress.show(deps.ui.danger_progress(
                        approval, len(done), len(plan.tenants), tenant.db)))
                    self._redraw(notices, approval.id)
        self._finish(approval.id, plan, incident, progress, notices)

    def _redraw(self, notices: Notices, approval_id: str) -> None:
        notices.send("request", lambda: self.gate.refresh(approval_id))

    def _one(self, session: TenantSession, approval: Approval, plan: DangerPlan, tenant: TenantPlan,
             resumed: bool) -> TenantResult:
        deps = self.deps
        base = {"approval_id": approval.id, "incident_id": approval.incident_id, "db": tenant.db, "resumed": resumed}
        try:
            if plan.action is DangerAction.CLEANUP:
                # Collections the plan saw holding documents are counted without listing first, unless the run
                # resumes: the previous owner may have dropped them.
                cleaned = session.clean(tenant.db, [] if resumed else holding(tenant.now))
                modified, dropped = cleaned.modified, cleaned.dropped
                if resumed:  # the previous owner may have stopped inside this tenant: count from the data
                    modified, dropped = _from_data(tenant, cleaned, session.dry_run(tenant.db))
                return TenantResult(ok=True, at=deps.clock.now(), modified=modified, dropped=dropped, **base)
            restored = session.restore(tenant.db, Path(plan.backup.path))
            after = session.dry_run(tenant.db)
            expected = tenant.backup
            problems = [] if expected is not None and (after.cases, after.fields, after.collections) == (
                expected.cases, expected.fields, expected.collections) else [
                f"after the restore: {after.cases} cases carry the fields and {after.collections}; the backup holds "
                f"{expected}"]
            problems += _shortfall(tenant, restored, plan.backup.run_id)
            verified = not problems
            return TenantResult(ok=verified, at=deps.clock.now(), fields_restored=restored.cases,
                                restored=restored.collections, verified=verified,
                                error="; ".join(problems) or None, **base)
        except Exception as error:  # noqa: BLE001 - one tenant failing must not stop the others
            return TenantResult(ok=False, at=deps.clock.now(), error=deps.secrets.redact(str(error))[:300],
                                **base)

    def _rechecked(self, approval: Approval) -> bool:
        """Record, before the first tenant changes, that the drift re-check passed: a run resumed after that
        point must not re-check (a tenant may be half cleaned), one resumed before it must."""
        now, me = self.deps.clock.now(), self.deps.replica.owner

        def mark(fresh: Approval) -> bool:
            if fresh.owner != me or fresh.status is not ApprovalStatus.RUNNING:
                return False
            fresh.rechecked_at = now
            return True

        return self.gate.transition(approval.id, mark) is not None

    def _beat(self, approval: Approval) -> Approval:
        now = self.deps.clock.now()
        me = self.deps.replica.owner

        def beat(fresh: Approval) -> bool:
            if fresh.owner != me:
                return False
            fresh.heartbeat_at = now
            return True

        return self.gate.transition(approval.id, beat) or approval

    # ---- endings ----------------------------------------------------------------------------------------
    def _finish(self, approval_id: str, plan: DangerPlan, incident: Incident, progress: _ThreadMessage,
                notices: Notices) -> None:
        deps, now = self.deps, self.deps.clock.now()
        results = deps.store.tenant_results(approval_id)
        failed = [r.db for r in results if not r.ok]

        def done(fresh: Approval) -> bool:
            if fresh.status is not ApprovalStatus.RUNNING or fresh.owner != deps.replica.owner:
                return False
            fresh.status, fresh.finished_at = ApprovalStatus.EXECUTED, now
            return True

        finished = self.gate.transition(approval_id, done)
        if finished is None:
            return  # someone else finished or took it over
        data = self._data_change(incident.id, plan, results)

        def record(fresh: Incident) -> None:
            data(fresh)
            ok = [r for r in results if r.ok]
            fresh.record(now, finished.decided_by or "bot", f"{plan.action.value} executed on {len(ok)} of "
                         f"{len(results)} tenant(s)" + (f"; failed: {', '.join(failed)}" if failed else "")
                         + f" (requested by {finished.requester}, approved by {', '.join(finished.approvers)})")

        self.desk.release(incident.id, approval_id, record)
        self.desk.audit(now, "bot", f"{plan.action.value}.finished", incident.id, approval=approval_id,
                        failures=failed, tenants=len(results))
        deps.metrics.danger_run(plan.action.value, "finished")
        # Recorded above; what people see follows, however Slack is doing (the worker is closed, not gone).
        notices.send("progress", progress.show(deps.ui.danger_progress(finished, len(results), len(plan.tenants),
                                                                       None)))
        outcome = deps.ui.danger_outcome(finished, plan, results)
        notices.send("outcome", lambda: self.desk.thread(incident, outcome))
        self._redraw(notices, approval_id)
        self.changes.after(incident.id)

    def _data_change(self, incident_id: str, plan: DangerPlan,
                     results: list[TenantResult]) -> Callable[[Incident], None]:
        """What the run did to the tenant data, for the incident's record (panel, update, postmortem): which
        tenants are cleaned or restored, and the ledger's figures of what is missing now, this run included."""
        ledger = self.planner.ledger(incident_id)
        ok = {r.db for r in results if r.ok}
        failed = [r.db for r in results if not r.ok]

        def change(fresh: Incident) -> None:
            db = fresh.database
            if plan.action is DangerAction.CLEANUP:
                db.cleaned = sorted(set(db.cleaned) | ok)
                db.restored = [t for t in db.restored if t not in ok]
                db.backup_run = ledger.origin.run_id if ledger.origin is not None else plan.backup.run_id
            else:
                db.restored = sorted(set(db.restored) | ok)
                db.backup_run = plan.backup.run_id
            if ledger.removed:  # the figures of what is missing now; after a complete restore, the last ones
                db.cases_cleaned, db.documents_deleted = ledger.cases, ledger.documents
            db.failed = failed

        return change

    def _fail(self, approval_id: str, error: Exception, notices: Notices | None = None) -> None:
        deps, now = self.deps, self.deps.clock.now()
        correlation = uuid.uuid4().hex[:12]
        text = plain(error.user_text()) if isinstance(error, BotError) else f"unexpected error: {error}"
        text = deps.secrets.redact(text)[:400]
        log.error("danger-zone run %s failed (correlation id %s)", approval_id, correlation,
                  exc_info=None if isinstance(error, BotError) else error)

        def fail(fresh: Approval) -> bool:
            if fresh.status not in (ApprovalStatus.RUNNING, ApprovalStatus.APPROVED):
                return False
            fresh.status, fresh.failure, fresh.finished_at = ApprovalStatus.FAILED, text, now
            return True

        failed = self.gate.transition(approval_id, fail)
        approval = failed or deps.store.get_approval(approval_id)
        if approval is None:
            return
        results = deps.store.tenant_results(approval_id)
        done, plan = len(results), deps.store.get_plan(approval_id)
        # The tenants done before the failure are changed: the incident says so (and the update, the postmortem).
        data = self._data_change(approval.incident_id, plan, results) if failed and plan and results else None
        self.desk.release(approval.incident_id, approval_id, data)
        self.desk.audit(now, "bot", "approval.failed", approval.incident_id, approval=approval_id, error=text,
                        tenants_done=done, correlation=correlation)
        if failed is not None:
            deps.metrics.danger_run(approval.action.value, "failed")
        message: Rich = rich("❌ The ", approval.action.value,
                             f" failed after {done} of {approval.tenants} tenant(s): ",
                             text, " — nothing more was done after the failure (correlation id ", Code(correlation),
                             ").")
        own = notices is None
        notices = notices or self.notices(approval)
        self._redraw(notices, approval_id)
        self._say(approval, message, requester=True, notices=notices)
        if own:
            notices.close()
        if deps.store.get_incident(approval.incident_id) is not None:
            self.changes.after(approval.incident_id)

    def _void_for_drift(self, approval: Approval, grown: list[str]) -> None:
        voided = self.gate.void(approval.id, "the plan changed: " + "; ".join(grown),
                                from_statuses=(ApprovalStatus.RUNNING,))
        self.desk.release(approval.incident_id, approval.id)
        if voided is None:
            return
        self._say(voided, ("⚠️ The data changed since the cleanup was approved (" + "; ".join(grown)
                           + "), so that approval is void and nothing was changed. A new request follows.",))
        try:
            self.gate.request(approval.requester, approval.channel, DangerAction.CLEANUP, [],
                              note="A new request because the plan changed since the last approval: "
                                   + "; ".join(grown))
        except BotError as error:
            why = error.user_text()
            self.gate.note(voided, rich("⚠️ No new cleanup request could be made: ", why))
            self.desk.tell(approval.requester, approval.channel,
                           rich("The approved cleanup was void because the data changed, and a new request could "
                                "not be made: ", why))
        self.changes.after(approval.incident_id)


def _from_data(tenant: TenantPlan, cleaned: Cleaned, after: TenantCount) -> tuple[int, dict[str, int | None]]:
    """One tenant's outcome in a resumed run, from what the data shows: a previous owner killed between the
    `$unset` and recording the result left this call nothing to change, yet the tenant did lose its fields.
    Before: the approved dry run (re-checked not to have grown right before the run started); after: a dry run
    now. Not the backup run: it may predate an earlier cleanup of this incident and count what that removed."""
    before = tenant.now
    modified = max(cleaned.modified, before.cases - after.cases)
    dropped = {name: (count if count is not None
                      else before.collections.get(name) if after.collections.get(name) is None else None)
               for name, count in cleaned.dropped.items()}
    return modified, dropped


def _shortfall(tenant: TenantPlan, restored: Restored, run_id: str) -> list[str]:
    """What a restore put back short of what the cleanups removed from the tenant (the plan's ``removed``)."""
    removed = tenant.removed
    if removed is None:
        return []
    short = []
    if restored.cases < removed.cases:
        short.append(f"the fields are back on {restored.cases} of the {removed.cases} cases the cleanup removed "
                     "them from")
    for name, count in removed.collections.items():
        back = restored.collections.get(name, 0)
        if count is not None and back < count:
            short.append(f"{back} of the {count} {name} documents the cleanup deleted are back")
    if short:
        short.append(f"the backup run {run_id} does not hold the rest")
    return short


class _ThreadMessage:
    """The run's progress message in the incident thread: posted on the first delivery, then updated."""

    def __init__(self, desk: Desk, incident: Incident) -> None:
        self.desk, self.incident = desk, incident
        self.ts: str | None = None

    def show(self, message: Message) -> Deliver:
        def deliver() -> None:
            if self.ts is None:
                self.ts = self.desk.thread(self.incident, message)
            else:
                self.desk.deps.messenger.update(self.incident.channel, self.ts, message)

        return deliver
