"""The sweep's care of requests besides running them: a request whose message a crash left unrecorded is
found again in Slack (or voided), and requests an older version recorded without a stored plan are retired."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from bot.domain.approvals import BUSY, Approval, ApprovalStatus
from bot.domain.danger.gate import REQUEST_EVENT, Gate, set_ts_once
from bot.domain.ports import PostKey
from bot.ids import SLASH_COMMAND
from bot.text import Code


class Upkeep:
    """The sweep's housekeeping of danger-zone requests (not running them): a request message a crash left
    unrecorded is found in Slack again or voided; requests an older version stored without a plan are retired."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    def recover_unposted(self) -> None:
        """A request recorded by a process that died before it recorded its message: found in Slack by its
        metadata (and recorded), or void, so it never blocks a new request."""
        deps = self.gate.deps
        for approval in deps.store.approvals_with_status(ApprovalStatus.PENDING):
            if approval.message_ts or deps.replica.is_alive(approval.owner):
                continue
            ts = deps.messenger.find_post(approval.channel, PostKey(REQUEST_EVENT, {"approval": approval.id}),
                                          approval.requested_at - timedelta(minutes=2))
            if ts is not None:
                self.gate.transition(approval.id, set_ts_once(ts))
                self.gate.desk.audit(deps.clock.now(), "bot", "approval.recovered", approval.incident_id,
                                approval=approval.id)
            else:
                self.gate.void(approval.id, "its request message was never posted (the bot stopped while posting it)")

    def retire_planless(self) -> None:
        """Requests an older version recorded kept their plan inside the request, in a shape nobody can be
        shown any more: they never run. An open one becomes void; one that was running when the bot was
        upgraded is marked failed (what it did is in the audit log; a restore brings the data back)."""
        deps = self.gate.deps
        for approval in deps.store.approvals_with_status(*BUSY):
            if deps.store.get_plan(approval.id) is not None:
                continue
            if approval.status is not ApprovalStatus.RUNNING:
                if self.gate.void(approval.id, "recorded by an older version of the bot without a plan it can show"):
                    self.gate.note(approval, ("🚫 The ", approval.action.value, " request ", Code(approval.id),
                                         " was made with an older version of the bot and will not run. Nothing was "
                                         "changed. Ask again with ", Code(f"{SLASH_COMMAND} {approval.action.value}"),
                                         " if it is still needed."))
                continue
            if self.gate.transition(approval.id, _fail_upgraded(deps.clock.now())):
                self.gate.desk.audit(deps.clock.now(), "bot", "approval.failed", approval.incident_id,
                                approval=approval.id, why=UPGRADED)
                self.gate.note(approval, ("❌ The ", approval.action.value, " ", Code(approval.id),
                                          " was running when the bot was upgraded and did not finish. ",
                                          Code(f"{SLASH_COMMAND} restore all"),
                                          " brings the data back from the backup it relied on."))


UPGRADED = "interrupted when the bot was upgraded; the audit log has what it changed"


def _fail_upgraded(now: datetime) -> Callable[[Approval], bool]:
    def fail(fresh: Approval) -> bool:
        if fresh.status is not ApprovalStatus.RUNNING:
            return False
        fresh.status, fresh.failure, fresh.finished_at = ApprovalStatus.FAILED, UPGRADED, now
        return True

    return fail
