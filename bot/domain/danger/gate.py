"""The two-person gate: the approval request and the reactions that decide it.

States: ``pending`` → (enough approvers react ✅) → ``approved`` (with a due time, ``starts_at``) →
``running`` → ``executed`` | ``failed``. From ``pending``/``approved``: ❌ → ``rejected``; too late →
``expired``; the incident closes or the data grows → ``void``. Removing ✅ before the start withdraws it:
back to ``pending`` with the due time cleared, so a later approval gets a fresh full delay. Every
transition is one conditional write on the approval from the state that was read; the delayed start is
the stored due time, picked up by the sweep (:mod:`bot.domain.danger.executor`), never an in-memory timer.

One module, a little over 300 lines, because it is one state machine: every transition reads best beside
the others it must not race with.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from bot import faults
from bot.config import CleanupConfig
from bot.domain.access import Act
from bot.domain.approvals import (
    BUSY,
    OPEN,
    Approval,
    ApprovalStatus,
    DangerAction,
    Refusal,
    RefusalReason,
    TenantPlan,
    Withdrawal,
)
from bot.domain.danger.plans import Planner, nothing_to_clean
from bot.domain.deps import Deps
from bot.domain.desk import Desk, busy_conflict
from bot.domain.incident import Incident
from bot.domain.ports import PostKey
from bot.domain.recovery import Recovery
from bot.errors import BadInput, Conflict, NotFound, StaleState, echo
from bot.ids import SLASH_COMMAND
from bot.text import Code, Link, Person, Rich, join, rich

log = logging.getLogger(__name__)
REQUEST_EVENT = "rollback_bot_request"
FIND_WAIT_S = 3.0  # a reaction may arrive while the request it targets is being recorded

Transition = Callable[[Approval], str | None]
# Emoji people use to mean yes or no; on a request they get a hint naming the one that counts.
APPROVE_LIKE = frozenset({"+1", "thumbsup", "heavy_check_mark", "ballot_box_with_check", "white_check_mark", "ok",
                          "ok_hand", "100", "check", "approved", "green_heart", "shipit"})
REJECT_LIKE = frozenset({"-1", "thumbsdown", "x", "heavy_multiplication_x", "negative_squared_cross_mark",
                         "no_entry", "no_entry_sign", "octagonal_sign", "stop_sign"})


class Gate:
    """The two-person rule: a danger-zone request (cleanup or restore) is posted with its plan, and the
    reactions on it approve, reject or withdraw it; an approved request is due for the executor."""

    def __init__(self, deps: Deps, desk: Desk, planner: Planner, recovery: Recovery) -> None:
        self.deps, self.desk, self.planner, self.recovery = deps, desk, planner, recovery
        self._posting = threading.Lock()  # a request is posted and recorded before this process reads reactions
        # Redraws one at a time, each reading the state inside the lock: a redraw that read an older state can
        # no longer land after a newer one and leave the request showing what is no longer true.
        self._redrawing = threading.Lock()

    @property
    def cfg(self) -> CleanupConfig:
        return self.deps.config.cleanup

    # ---- requests --------------------------------------------------------------------------------------
    def request(self, actor: str, channel: str, action: DangerAction, args: list[str], note: str = "") -> Approval:
        deps = self.deps
        deps.access.require(Act.DANGER_REQUEST, actor, channel)
        incident = self.recovery.settle(self.desk.active_in(channel).id)
        if action is DangerAction.CLEANUP and args:
            raise BadInput("cleanup takes no words; it always covers every tenant.",
                           hint=("Type ", Code(f"{SLASH_COMMAND} cleanup"), "."))
        if action is DangerAction.RESTORE and len(args) not in (1, 2):
            raise BadInput("Say which tenant database to restore, or all.",
                           hint=("Example: ", Code(f"{SLASH_COMMAND} restore all"), " or ",
                                 Code(f"{SLASH_COMMAND} restore <db_name> [backup run]"), "."))
        if incident.busy is not None:
            raise busy_conflict(incident.busy)
        now = deps.clock.now()
        self._refuse_if_open(incident, action, now)
        approval_id = f"{incident.id}-{action.value}-{uuid.uuid4().hex[:6]}"
        if action is DangerAction.CLEANUP:
            survey = self.planner.survey()
            if nothing_to_clean(survey):
                raise self._nothing_to_clean(incident, survey)
            found = [t.db for t in survey]
            backup = self.planner.backup_for_cleanup(incident, found)
            self.planner.verify(backup, found)
            plan = self.planner.cleanup_plan(approval_id, backup, survey)
        else:
            backup = self.planner.backup_for_restore(incident, args[1] if len(args) > 1 else None)
            plan = self.planner.restore_plan(approval_id, backup, args[0], self.planner.ledger(incident.id).removed)
            self.planner.verify(backup, [t.db for t in plan.tenants])
        approval = Approval(id=approval_id, incident_id=incident.id, action=action, requester=actor, channel=channel,
                            requested_at=now, expires_at=now + timedelta(minutes=self.cfg.approval_ttl_minutes),
                            backup_run=backup.run_id, tenants=len(plan.tenants), note=note, owner=deps.replica.owner)
        deps.store.put_plan(plan, incident.id)
        with self._posting:
            self._refuse_if_open(incident, action, now)  # two clicks at once: the second one loses
            deps.store.add_approval(approval)
            ts = deps.messenger.post(channel, deps.ui.approval_request(approval, plan, []),
                                     key=PostKey(REQUEST_EVENT, {"approval": approval.id}))
            faults.point("danger.request_posted")
            approval = self.transition(approval.id, lambda fresh: _set_ts(fresh, ts)) or approval
        self.desk.audit(now, actor, "approval.requested", incident.id, approval=approval.id, action=action.value,
                        backup=backup.run_id, tenants=plan.totals.tenants, cases=plan.totals.cases,
                        documents=plan.totals.dropped_documents, expires_at=approval.expires_at.isoformat(), note=note)
        link = deps.messenger.permalink(channel, ts)
        self.desk.thread(incident, rich("🔐 ", action.value, " requested by ", Person(actor),
                                        ": waiting for a second approver — ",
                                        Link(link, "the request") if link else "see the channel"))
        return approval

    def _nothing_to_clean(self, incident: Incident, survey: list[TenantPlan]) -> Conflict:
        """A cleanup that would change nothing is never put to approvers: it would be recorded as executed and
        could only mislead (about what was removed, and which backup holds it)."""
        cfg = self.cfg
        found: Rich = rich(f"The dry run found nothing to clean in {len(survey)} tenant database(s): no ",
                           Code(cfg.collection), " document carries any of ",
                           join([(Code(f),) for f in cfg.unset_fields]), ", and ",
                           join([(Code(c),) for c in cfg.drop_collections], " or "), " exists in none of them. "
                           "No request was made.")
        origin = self.planner.ledger(incident.id).origin
        if origin is None:
            return Conflict(found)
        return Conflict(found, hint=rich("The data from before the first cleanup is in the backup run ",
                                         Code(origin.run_id), "; ", Code(f"{SLASH_COMMAND} restore all"),
                                         " brings it back."))

    def _refuse_if_open(self, incident: Incident, action: DangerAction, now: datetime) -> None:
        for open_one in self.deps.store.approvals(incident.id):
            if open_one.action is action and open_one.status in BUSY and not self.expire_if_due(open_one, now):
                link = (self.deps.messenger.permalink(incident.channel, open_one.message_ts)
                        if open_one.message_ts else None)
                raise Conflict((f"A {action.value} request is already waiting ({open_one.status.value}).",),
                               hint=rich("See ", Link(link, "the request") if link else "the request in the channel",
                                         "."))

    # ---- reactions ----------------------------------------------------------------------------------------
    def find_request(self, channel: str, ts: str) -> Approval | None:
        with self._posting:
            found = self.deps.store.approval_for_message(ts)
        deadline = time.monotonic() + FIND_WAIT_S
        while found is None and time.monotonic() < deadline and self._posting_elsewhere(channel):
            time.sleep(0.1)
            found = self.deps.store.approval_for_message(ts)
        return found if found is not None and found.channel == channel else None

    def _posting_elsewhere(self, channel: str) -> bool:
        return any(a.channel == channel and a.message_ts is None
                   for a in self.deps.store.approvals_with_status(ApprovalStatus.PENDING))

    def on_reaction(self, user: str, channel: str, ts: str, emoji: str, added: bool) -> None:
        """A reaction anywhere. Only the approve and reject emoji on an approval request decide anything; an
        approval-looking emoji on the request, or ✅ on another message while a request waits, gets a hint."""
        approval = self.find_request(channel, ts)
        base = emoji.split("::", 1)[0]  # "+1::skin-tone-3" → "+1"
        if approval is None:
            if added and (base == self.cfg.approve_emoji or base in APPROVE_LIKE):
                self._hint_elsewhere(user, channel)
            return
        if emoji not in (self.cfg.approve_emoji, self.cfg.reject_emoji):
            if added and approval.open and (base in APPROVE_LIKE or base in REJECT_LIKE):
                verb = "approve" if base in APPROVE_LIKE else "reject"
                wanted = self.cfg.approve_emoji if verb == "approve" else self.cfg.reject_emoji
                self.desk.tell(user, channel, (f":{base}: does not count. To {verb} the {approval.action.value} "
                                               f"request, react with :{wanted}: on it.",))
            return
        now = self.deps.clock.now()
        if not added:
            if emoji == self.cfg.approve_emoji:
                self.withdraw(approval, user, now)
            return
        if emoji == self.cfg.reject_emoji:
            self.reject(approval, user, now)
        else:
            self.approve(approval, user, now)

    def _hint_elsewhere(self, user: str, channel: str) -> None:
        waiting = [a for a in self.deps.store.approvals_with_status(ApprovalStatus.PENDING)
                   if a.channel == channel and a.message_ts]
        if not waiting:
            return
        request = waiting[-1]
        link = self.deps.messenger.permalink(channel, request.message_ts) if request.message_ts else None
        where: Rich = (Link(link, "the DANGER ZONE request"),) if link else ("the DANGER ZONE request",)
        self.desk.tell(user, channel, rich("That reaction is on another message, so it does not count. React with ",
                                           f":{self.cfg.approve_emoji}: on ", where, " (",
                                           request.action.value, ", ", Code(request.id), ")."))

    def approve(self, approval: Approval, user: str, now: datetime) -> None:
        is_approver = self.deps.access.allows(user, Act.APPROVE)
        required = self.cfg.approvals_required
        delay = timedelta(seconds=self.cfg.start_delay_s)

        def approve(fresh: Approval) -> str | None:
            if fresh.status not in OPEN:
                return "decided"
            if now >= fresh.expires_at:
                fresh.status = ApprovalStatus.EXPIRED
                fresh.refused.append(Refusal(user=user, reason=RefusalReason.EXPIRED, at=now))
                return "expired"
            if user == fresh.requester:
                fresh.refused.append(Refusal(user=user, reason=RefusalReason.REQUESTER, at=now))
                return "requester"
            if not is_approver:
                fresh.refused.append(Refusal(user=user, reason=RefusalReason.NOT_APPROVER, at=now))
                return "not_approver"
            if user in fresh.approvers:
                return None  # a redelivered or repeated reaction counts once
            fresh.approvers.append(user)
            if len(fresh.approvers) >= required:
                fresh.status, fresh.approved_at, fresh.decided_by = ApprovalStatus.APPROVED, now, user
                fresh.starts_at = now + delay
            return "approved"

        outcome, fresh = self.decide(approval.id, approve)
        if outcome == "decided":
            raise Conflict((f"This {approval.action.value} request is already {fresh.status.value}; your reaction "
                            "changes nothing.",),
                           hint=("Ask for a new one with ", Code(f"{SLASH_COMMAND} {approval.action.value}"), "."))
        if outcome in ("expired", "requester", "not_approver"):
            self.desk.audit(now, user, "approval.refused", approval.incident_id, approval=approval.id, reason=outcome)
            self.refresh(approval.id)
            raise {"expired": Conflict((f"This {approval.action.value} request expired at "
                                        f"{approval.expires_at:%H:%M} UTC; nothing will run.",),
                                       hint=("Ask for a new one with ",
                                             Code(f"{SLASH_COMMAND} {approval.action.value}"), ".")),
                   "requester": Conflict(("You asked for this ", approval.action.value, ", so you cannot approve "
                                          "it: the two-person rule needs someone else."),
                                         hint="Ask another approver to react. Your reaction stays on the message "
                                              "but is not counted (the request lists who approved)."),
                   "not_approver": Conflict(("Only the configured approvers can approve the danger zone.",),
                                            hint=("Ask one of them; they are listed on the request. Approvers are "
                                                  "set in ", Code("access.approvers"), "."))}[outcome]
        if outcome is None:
            return
        self.desk.audit(now, user, "approval.approved", approval.incident_id, approval=approval.id,
                        approvers=fresh.approvers, quorum=fresh.status is ApprovalStatus.APPROVED,
                        starts_at=fresh.starts_at.isoformat() if fresh.starts_at else None)
        self.refresh(approval.id)
        if fresh.status is ApprovalStatus.APPROVED:
            self.deps.jobs.nudge()

    def reject(self, approval: Approval, user: str, now: datetime) -> None:
        allowed = user == approval.requester or self.deps.access.allows(user, Act.REJECT)

        def reject(fresh: Approval) -> str | None:
            if fresh.status not in OPEN:
                return "decided"
            if not allowed:
                return "not_approver"
            fresh.status, fresh.decided_by, fresh.starts_at = ApprovalStatus.REJECTED, user, None
            return "rejected"

        outcome, fresh = self.decide(approval.id, reject)
        if outcome == "decided":
            raise Conflict((f"This {approval.action.value} request is already {fresh.status.value}; your reaction "
                            "changes nothing.",))
        if outcome == "not_approver":
            raise Conflict(("Only an approver or the requester can reject a danger-zone request.",))
        self.desk.audit(now, user, "approval.rejected", approval.incident_id, approval=approval.id)
        self.refresh(approval.id)
        self.note(fresh, rich("❌ ", fresh.action.value, " rejected by ", Person(user), "; nothing was changed."))

    def withdraw(self, approval: Approval, user: str, now: datetime) -> None:
        required = self.cfg.approvals_required

        def withdraw(fresh: Approval) -> str | None:
            if user not in fresh.approvers:
                return None
            if fresh.status not in OPEN:
                return "too_late"
            fresh.approvers.remove(user)
            fresh.withdrawn.append(Withdrawal(user=user, at=now))
            if len(fresh.approvers) < required:
                fresh.status, fresh.approved_at, fresh.decided_by, fresh.starts_at = (
                    ApprovalStatus.PENDING, None, None, None)
            return "withdrawn"

        outcome, fresh = self.decide(approval.id, withdraw)
        if outcome is None:
            return
        if outcome == "too_late":
            raise Conflict((f"The {fresh.action.value} already {fresh.status.value}; removing your reaction cannot "
                            "stop it now.",),
                           hint=("Follow it in the thread; ", Code(f"{SLASH_COMMAND} restore"),
                                 " undoes a cleanup from its backup."))
        self.desk.audit(now, user, "approval.withdrawn", approval.incident_id, approval=approval.id)
        self.refresh(approval.id)
        self.desk.tell(user, approval.channel, ("↩️ Your approval of the ", fresh.action.value, " request ",
                                                Code(fresh.id), " is withdrawn; it will not start unless someone "
                                                "approves it again."))
        self.note(fresh, rich("↩️ ", Person(user), " withdrew their approval of the ", fresh.action.value,
                              " before it started; it waits for approval again (a new approval restarts the "
                              f"{self.cfg.start_delay_s:g} s delay)."))

    # ---- expiry, void ------------------------------------------------------------------------------------
    def expire_if_due(self, approval: Approval, now: datetime) -> bool:
        if approval.status is not ApprovalStatus.PENDING or now < approval.expires_at:
            return False

        def expire(fresh: Approval) -> str | None:
            if fresh.status is not ApprovalStatus.PENDING or now < fresh.expires_at:
                return None
            fresh.status = ApprovalStatus.EXPIRED
            return "expired"

        outcome, _ = self.decide(approval.id, expire)
        if outcome:
            self.desk.audit(now, "bot", "approval.expired", approval.incident_id, approval=approval.id)
            self.refresh(approval.id)
        return True

    def void(self, approval_id: str, why: str, *, from_statuses: tuple[ApprovalStatus, ...] = OPEN) -> Approval | None:
        now = self.deps.clock.now()

        def void(fresh: Approval) -> str | None:
            if fresh.status not in from_statuses:
                return None
            fresh.status, fresh.note, fresh.starts_at = ApprovalStatus.VOID, why, None
            return "void"

        outcome, fresh = self.decide(approval_id, void)
        if outcome is None:
            return None
        self.desk.audit(now, "bot", "approval.void", fresh.incident_id, approval=approval_id, why=why)
        self.refresh(approval_id)
        return fresh

    def void_open(self, incident_id: str, why: str) -> None:
        """Closing the incident voids every request still waiting: an approval after the close runs nothing."""
        for approval in self.deps.store.approvals(incident_id):
            if approval.status in OPEN:
                self.void(approval.id, why)

    # ---- shared ---------------------------------------------------------------------------------------------
    def decide(self, approval_id: str, change: Transition) -> tuple[str | None, Approval]:
        """One conditional write from the state that was read; retried on a lost race."""
        for _ in range(20):
            fresh = self.deps.store.get_approval(approval_id)
            if fresh is None:
                raise NotFound("That approval request no longer exists.")
            outcome = change(fresh)
            if outcome is None or outcome == "decided":
                return outcome, fresh
            try:
                return outcome, self.deps.store.save_approval(fresh)
            except StaleState:
                time.sleep(0.01)
        raise Conflict("That request is changing too fast right now; react again in a moment.")

    def transition(self, approval_id: str, change: Callable[[Approval], bool]) -> Approval | None:
        outcome, fresh = self.decide(approval_id, lambda a: "changed" if change(a) else None)
        return fresh if outcome else None

    def refresh(self, approval_id: str) -> bool:
        """Redraw the request message from the stored approval, plan and tenant results. Best effort, drawing
        included (it may look up the approvers' group): False when Slack failed; the next redraw catches up."""
        deps = self.deps
        with self._redrawing:
            approval = deps.store.get_approval(approval_id)
            plan = deps.store.get_plan(approval_id)
            if approval is None or plan is None or not approval.message_ts:
                return True
            try:
                message = deps.ui.approval_request(approval, plan, deps.store.tenant_results(approval_id))
                deps.messenger.update(approval.channel, approval.message_ts, message)
            except Exception:  # the request is redrawn at its next change
                log.warning("could not redraw the request %s", approval_id, exc_info=True)
                return False
            return True

    def note(self, approval: Approval, text: Rich) -> bool:
        """A line in the incident's thread, after the change it tells of was recorded: best effort, so a
        recorded rejection or withdrawal is never answered as an error. False when Slack did not take it."""
        incident = self.deps.store.get_incident(approval.incident_id)
        if incident is None:
            return True
        try:
            self.desk.thread(incident, text)
        except Exception:  # logged; a danger run's notes are retried by its notices worker
            log.warning("could not post a note about %s in the thread", approval.id, exc_info=True)
            return False
        return True


def _set_ts(approval: Approval, ts: str) -> bool:
    approval.message_ts = ts
    return True


def set_ts_once(ts: str) -> Callable[[Approval], bool]:
    return lambda fresh: fresh.message_ts is None and _set_ts(fresh, ts)


__all__ = ["REQUEST_EVENT", "Gate", "echo"]
