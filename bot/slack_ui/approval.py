"""The DANGER ZONE request and its run: what approvers read before they decide, kept whole at any tenant count.

The request message always carries its header, the state in words, the totals, the backup run it relies
on, the rule, the approvers (who approved, who was refused and why); the per-tenant plan is shown inline
for a few tenants and otherwise follows as thread replies under the request (``Message.overflow``).
"""

from __future__ import annotations

from bot.domain.approvals import Approval, ApprovalStatus, DangerAction, DangerPlan, RefusalReason, TenantResult
from bot.domain.ports import Message
from bot.slack_ui.blocks import Block, context, header, message, sections
from bot.slack_ui.escape import code, date, escape, person

INLINE_TENANTS = 8
TITLES = {DangerAction.CLEANUP: "Database cleanup (runbook step 6, IRREVERSIBLE without the backup)",
          DangerAction.RESTORE: "Restore from a backup run (overwrites the current data)"}
REFUSED = {RefusalReason.REQUESTER: "asked for it, so cannot approve it (two-person rule)",
           RefusalReason.NOT_APPROVER: "is not an approver",
           RefusalReason.EXPIRED: "reacted after the request expired",
           RefusalReason.DECIDED: "reacted after it was decided"}


def _tenant_line(plan: DangerPlan, db: str, collection: str) -> str:
    tenant = plan.tenant(db)
    assert tenant is not None
    if plan.action is DangerAction.CLEANUP:
        values = sum(tenant.now.fields.values())
        drops = "; ".join(f"{code(name)}: " + ("absent" if count is None else f"{count} document(s) dropped")
                          for name, count in tenant.now.collections.items())
        loses = f"lose {values} field value(s)" if values else "lose nothing"
        return (f"• {code(db)} ({escape(tenant.name)}): {tenant.now.cases} {code(collection)} document(s) {loses}; "
                f"{drops}")
    back = tenant.backup
    assert back is not None
    drops = "; ".join(f"{code(name)} back to {count or 0} document(s) (now "
                      f"{'absent' if tenant.now.collections.get(name) is None else tenant.now.collections.get(name)})"
                      for name, count in back.collections.items())
    return (f"• {code(db)} ({escape(tenant.name)}): fields back on {back.cases} case(s) (now {tenant.now.cases}); "
            f"{drops}")


def status_words(approval: Approval, plan: DangerPlan, results: list[TenantResult], required: int) -> str:
    ok = [r for r in results if r.ok]
    failed = [r for r in results if not r.ok]
    status = approval.status
    if status is ApprovalStatus.PENDING:
        # the reaction pill counts every ✅, the requester's too: say plainly how many count
        counted = f"{len(approval.approvers)} of {required} counted" + (
            f": {' '.join(person(a) for a in approval.approvers)}" if approval.approvers else "")
        uncounted = {r.user for r in approval.refused} - set(approval.approvers)
        if uncounted:
            counted += f"; {len(uncounted)} reaction(s) on this message do not count, see *Not counted*"
        return f"⏳ Waiting for approval ({counted}) until {date(approval.expires_at)}"
    if status is ApprovalStatus.APPROVED:
        who = " ".join(person(a) for a in approval.approvers)
        return f"✅ Approved by {who} at {date(approval.approved_at)}; starts at {date(approval.starts_at)}"
    if status is ApprovalStatus.RUNNING:
        return f"🏃 Running since {date(approval.started_at)}: {len(results)} of {len(plan.tenants)} tenants done"
    if status is ApprovalStatus.EXECUTED:
        if plan.action is DangerAction.CLEANUP:
            cases = sum(r.modified for r in ok)
            dropped = sum(c or 0 for r in ok for c in r.dropped.values())
            text = (f"🏁 Done {date(approval.finished_at)}: fields removed on {len(ok)} tenant(s) ({cases} cases); "
                    f"{dropped} documents deleted. Recoverable with `/rollback restore all`")
        else:
            text = (f"🏁 Done {date(approval.finished_at)}: {len(ok)} tenant(s) restored from the backup"
                    + (", counts verified" if ok else ""))
        return text + (f"; *{len(failed)} tenant(s) failed*: {', '.join(code(r.db) for r in failed)}" if failed else "")
    if status is ApprovalStatus.REJECTED:
        return f"❌ Rejected by {person(approval.decided_by or 'someone')}; nothing was changed"
    if status is ApprovalStatus.EXPIRED:
        return "⌛ Expired without enough approvals; nothing was changed"
    if status is ApprovalStatus.VOID:
        return f"🚫 Void: {escape(approval.note)}; nothing was changed"
    if status is ApprovalStatus.FAILED:
        return (f"❌ Failed after {len(results)} of {len(plan.tenants)} tenant(s): {escape(approval.failure or '')} "
                "— nothing more was done after the failure")
    return escape(status.value)


def approval_request(approval: Approval, plan: DangerPlan, results: list[TenantResult], *, collection: str,
                     emoji: str, reject: str, ttl_minutes: int, required: int, delay_s: float,
                     approvers: list[str]) -> Message:
    action = approval.action.value
    title = f"⚠️ DANGER ZONE — {action} {approval.incident_id}"
    intro = f"*{escape(TITLES[approval.action])}* for *{escape(approval.incident_id)}*, requested by " \
            f"{person(approval.requester)}"
    if approval.note:
        intro += f"\n_{escape(approval.note)}_"
    totals = plan.totals
    if plan.action is DangerAction.CLEANUP:
        total_line = (f"*Totals:* {totals.cases} case(s) modified and {totals.dropped_documents} document(s) deleted "
                      f"across {totals.tenants} tenant database(s).")
    else:
        total_line = f"*Totals:* {totals.tenants} tenant database(s) restored from the backup."
    lines = [_tenant_line(plan, t.db, collection) for t in plan.tenants]
    inline = lines if len(lines) <= INLINE_TENANTS else lines[:3] + [
        f"… and {len(lines) - 3} more: the per-tenant plan for all {len(lines)} follows in this message's thread."]
    backup = plan.backup
    backup_line = (f"*Backup relied on:* run {code(backup.run_id)} ({backup.documents} documents, finished "
                   f"{date(backup.finished_at)}), `{escape(backup.path)}`; re-verified on disk (every file against "
                   "its manifest) before this request and again right before it runs")
    rule = (f"*Rule:* another approver reacts with :{emoji}: before {date(approval.expires_at)} ({ttl_minutes} "
            f"minutes); :{reject}: rejects. {required} approval(s) needed besides the requester. It starts "
            f"{delay_s:g} s after approval; removing the reaction before then withdraws it.")
    people = f"*Approvers:* {' '.join(approvers) or 'none configured'}"
    if approval.approvers:
        people += f"\n*Approved by:* {' '.join(person(a) for a in approval.approvers)}"
    if approval.refused:
        refused = "; ".join(f"{person(r.user)} {REFUSED[r.reason]}" for r in approval.refused[-5:])
        people += f"\n*Not counted:* {refused} (a reaction that is not counted stays on the message)"
    if approval.withdrawn:
        people += "\n*Withdrawn:* " + "; ".join(f"{person(w.user)} at {date(w.at)}" for w in approval.withdrawn[-5:])
    status = f"*Status:* {status_words(approval, plan, results, required)}"
    blocks: list[Block] = [header(title)]
    if plan.action is DangerAction.CLEANUP:
        fields = sorted({name for t in plan.tenants for name, n in t.now.fields.items() if n})
        total_line += f"\n*Fields removed:* {', '.join(code(f) for f in fields) or 'none'}"
    heading = ("*Plan* (a dry run; nothing has changed yet):" if approval.status in (ApprovalStatus.PENDING,
                                                                                     ApprovalStatus.APPROVED)
               else "*Plan* (the dry run it was decided on):")
    for text in (intro, status, total_line, heading + "\n" + "\n".join(inline), backup_line, rule, people):
        blocks.extend(sections(text))
    if results and approval.status in (ApprovalStatus.RUNNING, ApprovalStatus.EXECUTED, ApprovalStatus.FAILED):
        blocks.append(context(f"{len(results)} of {len(plan.tenants)} tenant result(s) recorded; details in the "
                              "incident thread"))
    overflow: list[Message] = []
    if len(lines) > INLINE_TENANTS:
        for start in range(0, len(lines), 40):
            chunk = "\n".join(lines[start:start + 40])
            overflow.append(Message(text=f"Plan for {approval.id}, tenants {start + 1}–{min(start + 40, len(lines))}",
                                    blocks=sections(chunk)))
    built = message(f"{title}: {approval.status.value}", blocks)
    return Message(text=built.text, blocks=built.blocks, overflow=[*built.overflow, *overflow])


def danger_progress(approval: Approval, done: int, total: int, last: str | None) -> Message:
    action = approval.action.value
    if approval.status is ApprovalStatus.EXECUTED:
        text = f"🏁 *{action}* — {done}/{total} tenants done"
    else:
        text = f"⏳ *{action}* — {done}/{total} tenants" + (f" (last: {code(last)})" if last else "")
    return message(text, sections(text))


def danger_outcome(approval: Approval, plan: DangerPlan, results: list[TenantResult]) -> Message:
    failed = [r for r in results if not r.ok]
    mark = "❌" if failed else "✅"
    head = f"{mark} *{approval.action.value}* — {status_words(approval, plan, results, 0)}"
    head += (f"\nRequested by {person(approval.requester)}, approved by "
             f"{', '.join(person(a) for a in approval.approvers) or 'nobody'}")
    shown = results if len(results) <= 20 else failed[:20]
    lines = []
    for r in shown:
        if not r.ok:
            lines.append(f"• {code(r.db)}: ❌ failed: {escape(r.error or 'unknown error')}")
        elif plan.action is DangerAction.CLEANUP:
            drops = ", ".join(f"{code(n)} dropped ({c} documents)" if c is not None else f"{code(n)} absent"
                              for n, c in r.dropped.items())
            lines.append(f"• {code(r.db)}: ✅ {r.modified} cases cleaned; {drops}")
        else:
            restored = ", ".join(f"{code(n)} ({c} documents)" for n, c in r.restored.items())
            lines.append(f"• {code(r.db)}: ✅ fields restored on {r.fields_restored} cases; restored "
                         f"{restored or 'no collections'}; verified")
    if len(results) > len(shown):
        lines.append(f"… {len(results) - len(shown)} more tenant(s) succeeded (each is in the audit log)")
    text = "\n".join([head, *lines])
    return message(text, sections(text))
