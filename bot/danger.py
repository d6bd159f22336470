"""The danger zone: runbook step 6 (and its undo) under the two-person rule.

A request computes a dry run and refuses without a verified backup covering every tenant. It is
approved by a reaction from an approver other than the requester, before it expires. The approval
advances only by conditional writes from the expected prior state, so two approvers reacting at once,
two replicas, or a redelivered event execute it once. Just before running, the plan is computed again;
if it grew, the approval is void and a new one is requested. Progress is recorded per tenant, so a
crash resumes with the tenants not yet done.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bot.comms import render, who
from bot.errors import ApprovalExpired, BadInput, Conflict, NotAllowed, NotFound, StaleState, StepFailed, quote
from bot.ids import SLASH_COMMAND
from bot.incident import Approval, ApprovalStatus, Incident, StepStatus
from bot.ops import cleanup as cleanup_ops
from bot.ops import tenants
from bot.redact import redact
from bot.runbook.backup import central_uri

log = logging.getLogger(__name__)

CLEANUP, RESTORE = "cleanup", "restore"
TITLES = {CLEANUP: "Database cleanup (runbook step 6, IRREVERSIBLE without the backup)",
          RESTORE: "Restore from the incident's backup (overwrites the current data)"}
OPEN = (ApprovalStatus.PENDING, ApprovalStatus.APPROVED)
BUSY = (*OPEN, ApprovalStatus.RUNNING)


class DangerZone:
    def __init__(self, service: Any) -> None:
        self.svc = service  # bot.service.RollbackService
        self._timers: list[threading.Timer] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        # Held while a request is posted and stored, and while a reaction looks its message up, so an approver
        # who reacts the instant the request appears is never ignored as "not a request".
        self._posting = threading.Lock()
        self._closed = False

    @property
    def cfg(self) -> Any:
        return self.svc.config.cleanup

    # ---- plans --------------------------------------------------------------------------------------------
    def _backup(self, incident: Incident, needed: list[str]) -> dict[str, Any]:
        runs = [r for r in self.svc.store.step_runs(incident.id)
                if r.step == "backup" and r.status is StepStatus.SUCCEEDED
                and r.result.get("artifacts", {}).get("verified")]
        backup = runs[-1] if runs else None
        covered = set(backup.result["artifacts"]["tenants"]) if backup else set()
        missing = [db for db in needed if db not in covered]
        if backup is None or missing:
            what = "has no verified backup" if backup is None else "has a backup that does not cover " + ", ".join(
                f"`{db}`" for db in missing)
            raise Conflict(f"{incident.id} {what}; the danger zone needs one for every tenant it touches.",
                           hint=f"Run `{SLASH_COMMAND} backup` first (add `--again` to refresh it).")
        artifacts = backup.result["artifacts"]
        finished = backup.finished_at or backup.started_at
        return {"run": backup.id, "path": artifacts["path"], "at": finished.isoformat(),
                "documents": artifacts.get("documents"), "tenants": artifacts["tenants"]}

    def _tenant_dbs(self, incident: Incident) -> tuple[str, Any, list[tuple[str, str]]]:
        uri = central_uri_for(self.svc)
        client = tenants.connect(uri)
        try:
            found = tenants.list_tenants(client, uri, self.svc.config.tenants)
        except Exception as error:  # noqa: BLE001 - reported, nothing changed
            tenants.close(client)
            raise StepFailed(f"cannot list the tenant databases: {redact(str(error), self.svc.secrets())[:200]}") \
                from None
        return uri, client, [(t.db_name, t.name) for t in found]

    def cleanup_plan(self, incident: Incident) -> dict[str, Any]:
        _, client, found = self._tenant_dbs(incident)
        try:
            per_tenant = {db: {"name": name, **cleanup_ops.dry_run(client, db, self.cfg)} for db, name in found}
        finally:
            tenants.close(client)
        return {"tenants": per_tenant, "totals": _totals(per_tenant)}

    def restore_plan(self, incident: Incident, which: str, backup: dict[str, Any]) -> dict[str, Any]:
        available = list(backup["tenants"])
        chosen = available if which == "all" else [which]
        if which != "all" and which not in available:
            raise BadInput(f"`{quote(which)}` is not a tenant database in this incident's backup.",
                           hint="One of: " + ", ".join(f"`{db}`" for db in available) + ", or `all`.")
        _, client, found = self._tenant_dbs(incident)
        names = dict(found)
        try:
            per_tenant = {db: {"name": names.get(db, db), "now": cleanup_ops.dry_run(client, db, self.cfg),
                               "backup": cleanup_ops.backed_up_view(Path(backup["path"]), db, self.cfg)}
                          for db in chosen}
        finally:
            tenants.close(client)
        return {"tenants": per_tenant}

    # ---- requests ------------------------------------------------------------------------------------------
    def request(self, actor: str, channel: str, action: str, args: list[str], note: str = "") -> Approval:
        svc = self.svc
        svc.access.require_channel(channel)
        svc.access.require_commander(actor)
        incident = svc._active_in(channel)
        if action == RESTORE and len(args) != 1:
            raise BadInput("Say which tenant database to restore, or all.",
                           hint=f"Example: `{SLASH_COMMAND} restore all` or `{SLASH_COMMAND} restore <db_name>`.")
        if action == CLEANUP and args:
            raise BadInput("cleanup takes no arguments; it always covers every tenant.",
                           hint=f"Type `{SLASH_COMMAND} cleanup`.")
        now = svc.clock.now()
        self._refuse_if_open(incident.id, action, channel, now)
        if action == CLEANUP:
            plan = self.cleanup_plan(incident)
            plan["backup"] = self._backup(incident, list(plan["tenants"]))
        else:
            backup = self._backup(incident, [] if args[0] == "all" else [args[0]])
            plan = self.restore_plan(incident, args[0], backup)
            plan["backup"] = backup
        approval = Approval(id=f"{incident.id}-{action}-{uuid.uuid4().hex[:6]}", incident_id=incident.id,
                            action=action, requester=actor, channel=channel, requested_at=now,
                            expires_at=now + timedelta(minutes=self.cfg.approval_ttl_minutes), plan=plan, note=note)
        text, blocks = self._render(approval)
        with self._posting:
            self._refuse_if_open(incident.id, action, channel, now)  # two clicks at once: the second one loses
            approval.message_ts = svc.messenger.post(channel, text, blocks)
            svc.store.add_approval(approval)
        svc.store.audit(now, actor, "approval.requested", incident.id, approval=approval.id, action=action,
                        plan=_audit_plan(plan), expires_at=approval.expires_at.isoformat(), note=note)
        link = svc.messenger.permalink(channel, approval.message_ts)
        svc.say(channel, f"🔐 {action} requested by {who(actor)}: waiting for a second approver — "
                         f"<{link}|the request>" if link else f"🔐 {action} requested", thread_ts=incident.panel_ts)
        return approval

    def _refuse_if_open(self, incident_id: str, action: str, channel: str, now: datetime) -> None:
        svc = self.svc
        for open_one in svc.store.approvals(incident_id):
            if open_one.action == action and open_one.status in BUSY and not self._expire_if_due(open_one, now):
                link = svc.messenger.permalink(channel, open_one.message_ts) if open_one.message_ts else None
                raise Conflict(f"A {action} request is already waiting ({open_one.status.value}).",
                               hint=f"See <{link}|the request>." if link else "See the request in the channel.")

    # ---- reactions --------------------------------------------------------------------------------------------
    def on_reaction(self, user: str, channel: str, ts: str, emoji: str, added: bool) -> None:
        """A reaction anywhere. Only the approve and reject emoji on an approval request count."""
        with self._posting:
            approval = self.svc.store.approval_for_message(ts)
        if approval is None or approval.channel != channel:
            return  # not one of our approval requests
        if emoji not in (self.cfg.approve_emoji, self.cfg.reject_emoji):
            return  # other emoji are conversation, not decisions
        now = self.svc.clock.now()
        if not added:
            if emoji == self.cfg.approve_emoji:
                self._revoke(approval.id, user, now)
            return
        if approval.status not in OPEN:
            raise Conflict(f"This {approval.action} request is already {approval.status.value}; your reaction "
                           "changes nothing.", hint=f"Ask for a new one with `{SLASH_COMMAND} {approval.action}`.")
        if self._expire_if_due(approval, now):
            self.svc.store.audit(now, user, "approval.refused", approval.incident_id, approval=approval.id,
                                 reason="expired")
            raise ApprovalExpired(f"This request expired at {approval.expires_at:%H:%M:%S} UTC; your reaction "
                                  "changes nothing.",
                                  hint=f"Ask for a new one with `{SLASH_COMMAND} {approval.action}`.")
        if user == approval.requester:
            self.svc.store.audit(now, user, "approval.refused", approval.incident_id, approval=approval.id,
                                 reason="requester")
            raise NotAllowed("You asked for this, so you cannot approve or reject it: the two-person rule needs "
                             "another approver.", hint="Ask one of the approvers mentioned in the request.")
        if not self.svc.access.is_approver(user):
            self.svc.store.audit(now, user, "approval.refused", approval.incident_id, approval=approval.id,
                                 reason="not an approver")
            raise NotAllowed("Only the configured approvers can decide on the danger zone; your reaction changes "
                             "nothing.", hint="The approvers are mentioned in the request (`access.approvers`).")
        if emoji == self.cfg.reject_emoji:
            self._reject(approval.id, user, now)
        else:
            self._approve(approval.id, user, now)

    def _expire_if_due(self, approval: Approval, now: datetime) -> bool:
        if approval.status is not ApprovalStatus.PENDING or now <= approval.expires_at:
            return False

        def expire(fresh: Approval) -> bool:
            if fresh.status is not ApprovalStatus.PENDING:
                return False
            fresh.status = ApprovalStatus.EXPIRED
            return True

        if self._transition(approval.id, expire):
            self.svc.store.audit(now, "bot", "approval.expired", approval.incident_id, approval=approval.id)
            self._refresh(approval.id)
        return True

    def _approve(self, approval_id: str, user: str, now: datetime) -> None:
        def approve(fresh: Approval) -> bool:
            if fresh.status not in OPEN or user in fresh.approvers:
                return False
            fresh.approvers.append(user)
            if fresh.status is ApprovalStatus.PENDING and len(fresh.approvers) >= self.cfg.approvals_required:
                fresh.status = ApprovalStatus.APPROVED
                fresh.approved_at = now
                fresh.decided_by = user
            return True

        approval = self._transition(approval_id, approve)
        if approval is None:
            return
        self.svc.store.audit(now, user, "approval.approved", approval.incident_id, approval=approval_id,
                             approvers=approval.approvers, quorum=approval.status is ApprovalStatus.APPROVED)
        self._refresh(approval_id)
        if approval.status is ApprovalStatus.APPROVED and approval.decided_by == user:
            self.schedule(approval_id)

    def _reject(self, approval_id: str, user: str, now: datetime) -> None:
        def reject(fresh: Approval) -> bool:
            if fresh.status not in OPEN:
                return False
            fresh.status = ApprovalStatus.REJECTED
            fresh.decided_by = user
            return True

        approval = self._transition(approval_id, reject)
        if approval is not None:
            self.svc.store.audit(now, user, "approval.rejected", approval.incident_id, approval=approval_id)
            self._refresh(approval_id)
            self._thread_note(approval, f"❌ {approval.action} rejected by {who(user)}; nothing was changed.")

    def _revoke(self, approval_id: str, user: str, now: datetime) -> None:
        def revoke(fresh: Approval) -> bool:
            if fresh.status not in OPEN or user not in fresh.approvers:
                return False
            fresh.approvers.remove(user)
            if len(fresh.approvers) < self.cfg.approvals_required:
                fresh.status = ApprovalStatus.PENDING
                fresh.approved_at = None
                fresh.decided_by = None
            return True

        approval = self._transition(approval_id, revoke)
        if approval is not None:
            self.svc.store.audit(now, user, "approval.revoked", approval.incident_id, approval=approval_id)
            self._refresh(approval_id)
            self._thread_note(approval, f"↩️ {who(user)} withdrew their approval of the {approval.action} before it "
                                        "started; it is waiting for approval again.")

    def _transition(self, approval_id: str, change: Callable[[Approval], bool]) -> Approval | None:
        """Apply ``change`` to the latest version with a conditional write; None if it declined."""
        for _ in range(10):
            fresh = self.svc.store.get_approval(approval_id)
            if fresh is None:
                raise NotFound("That approval request no longer exists.")
            if not change(fresh):
                return None
            try:
                return self.svc.store.save_approval(fresh)
            except StaleState:
                continue
        raise Conflict("That request is changing too fast right now; react again in a moment.")

    # ---- execution ---------------------------------------------------------------------------------------------
    def schedule(self, approval_id: str, delay: float | None = None) -> None:
        wait = self.cfg.start_delay_s if delay is None else delay
        with self._lock:
            if self._closed:
                return
            timer = threading.Timer(wait, self.execute, (approval_id,))
            timer.daemon = True
            timer.name = f"danger-{approval_id}"
            self._timers.append(timer)
        timer.start()

    def execute(self, approval_id: str) -> None:
        """Start an approved request: exactly one caller wins APPROVED → RUNNING."""
        now = self.svc.clock.now()

        def start(fresh: Approval) -> bool:
            if fresh.status is not ApprovalStatus.APPROVED:
                return False
            fresh.status = ApprovalStatus.RUNNING
            fresh.started_at = now
            return True

        approval = self._transition(approval_id, start)
        if approval is None:
            return
        self.svc.store.audit(now, "bot", "danger.started", approval.incident_id, approval=approval_id)
        self._run(approval)

    def _run(self, approval: Approval) -> None:
        svc = self.svc
        incident = svc.store.get_incident(approval.incident_id)
        assert incident is not None
        if approval.action == CLEANUP and not approval.progress:
            fresh = self.cleanup_plan(incident)
            drift = plan_drift(approval.plan, fresh)
            if drift:
                self._void(approval, drift)
                return
        self._refresh(approval.id)
        order = list(approval.plan["tenants"])
        backup = Path(approval.plan["backup"]["path"])
        uri = central_uri_for(svc)
        client = tenants.connect(uri)
        progress_ts = svc.say(incident.channel, f"⏳ *{approval.action}* — 0/{len(order)} tenants",
                              thread_ts=incident.panel_ts)
        try:
            for index, db in enumerate(order, 1):
                if db in approval.progress:
                    continue  # finished before a restart: never repeated
                try:
                    if approval.action == CLEANUP:
                        outcome: dict[str, Any] = {"ok": True, **cleanup_ops.clean_tenant(client, db, self.cfg)}
                    else:
                        outcome = {"ok": True, **cleanup_ops.restore_tenant(client, db, backup, self.cfg)}
                        after = cleanup_ops.dry_run(client, db, self.cfg)
                        expected = approval.plan["tenants"][db]["backup"]
                        outcome["verified"] = after == expected
                        outcome["ok"] = outcome["verified"]
                        if not outcome["verified"]:
                            outcome["error"] = f"after restore {after} differs from the backup {expected}"
                except Exception as error:  # noqa: BLE001 - one tenant failing must not stop the others
                    outcome = {"ok": False, "error": redact(str(error), svc.secrets())[:300]}
                approval = self._record_tenant(approval.id, db, outcome)
                svc.store.audit(svc.clock.now(), "bot", f"{approval.action}.tenant", approval.incident_id,
                                approval=approval.id, tenant=db, outcome=outcome)
                svc.update_text(incident.channel, progress_ts,
                                f"⏳ *{approval.action}* — {index}/{len(order)} tenants (last: `{db}`)")
        finally:
            tenants.close(client)
        self._finish(approval, progress_ts)

    def _record_tenant(self, approval_id: str, db: str, outcome: dict[str, Any]) -> Approval:
        def record(fresh: Approval) -> bool:
            fresh.progress[db] = outcome
            return True

        saved = self._transition(approval_id, record)
        assert saved is not None
        return saved

    def _finish(self, approval: Approval, progress_ts: str) -> None:
        svc = self.svc
        now = svc.clock.now()
        failures = {db: o for db, o in approval.progress.items() if not o.get("ok")}

        def done(fresh: Approval) -> bool:
            if fresh.status is not ApprovalStatus.RUNNING:
                return False
            fresh.status = ApprovalStatus.EXECUTED
            fresh.finished_at = now
            return True

        finished = self._transition(approval.id, done) or approval
        summary = _summary(finished)

        def record(incident: Incident) -> None:
            if finished.action == CLEANUP:
                incident.database_state = "CLEANED" + (f" (failed for {', '.join(failures)})" if failures else "")
                incident.data_loss = summary
            else:
                incident.database_state = "RESTORED from backup" + (
                    f" (failed for {', '.join(failures)})" if failures else "")
                incident.data_loss = None if not failures else f"restore incomplete for {', '.join(failures)}"
            incident.record(now, finished.decided_by or "bot", f"{finished.action} executed: {summary}")

        incident = svc.mutate(finished.incident_id, record)
        svc.store.audit(now, "bot", f"{finished.action}.finished", finished.incident_id, approval=finished.id,
                        failures=list(failures), summary=summary)
        mark = "❌" if failures else "✅"
        svc.update_text(incident.channel, progress_ts, f"{mark} *{finished.action}* — {summary}")
        lines = [f"• `{db}`: " + _outcome_text(o) for db, o in finished.progress.items()]
        svc.say(incident.channel, "\n".join(lines), thread_ts=incident.panel_ts)
        self._refresh(finished.id)
        svc.refresh_panel(incident)

    def _void(self, approval: Approval, drift: list[str]) -> None:
        now = self.svc.clock.now()

        def void(fresh: Approval) -> bool:
            if fresh.status is not ApprovalStatus.RUNNING:
                return False
            fresh.status = ApprovalStatus.VOID
            fresh.note = "the plan changed: " + "; ".join(drift)
            return True

        voided = self._transition(approval.id, void)
        if voided is None:
            return
        self.svc.store.audit(now, "bot", "approval.void", approval.incident_id, approval=approval.id, drift=drift)
        self._refresh(approval.id)
        self._thread_note(voided, "⚠️ The data changed since the cleanup was approved (" + "; ".join(drift)
                          + "), so that approval is void and nothing was changed. A new request follows.")
        self.request(approval.requester, approval.channel, CLEANUP, [],
                     note="A new request because the plan changed since the last approval: " + "; ".join(drift))

    # ---- recovery and shutdown ---------------------------------------------------------------------------------
    def recover(self) -> None:
        """At start-up: resume runs a stopped bot left half done; start approved ones that never began."""
        for approval in self.svc.store.approvals():
            if approval.status is ApprovalStatus.RUNNING:
                self.svc.store.audit(self.svc.clock.now(), "bot", "danger.resumed", approval.incident_id,
                                     approval=approval.id, done=list(approval.progress))
                thread = threading.Thread(target=self._run, args=(approval,), name=f"resume-{approval.id}",
                                          daemon=True)
                with self._lock:
                    self._threads.append(thread)
                thread.start()
            elif approval.status is ApprovalStatus.APPROVED:
                self.schedule(approval.id)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            timers, threads = list(self._timers), list(self._threads)
        for timer in timers:
            timer.cancel()
        for timer in timers:
            if timer.is_alive():
                timer.join(timeout=30)
        for thread in threads:
            thread.join(timeout=30)

    # ---- messages ----------------------------------------------------------------------------------------------
    def _render(self, approval: Approval) -> tuple[str, list[dict[str, Any]]]:
        text = render("approval.md.j2", approval=approval, title=TITLES[approval.action], cfg=self.cfg,
                      approvers=" ".join(self.svc.access.approver_mentions()), summary=_summary(approval))
        header = f"⚠️ DANGER ZONE — {approval.action} {approval.incident_id}"
        blocks = [{"type": "header", "text": {"type": "plain_text", "text": header}},
                  {"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}]
        return f"{header}: {approval.status.value}", blocks

    def _refresh(self, approval_id: str) -> None:
        approval = self.svc.store.get_approval(approval_id)
        if approval is not None and approval.message_ts:
            self.svc.messenger.update(approval.channel, approval.message_ts, *self._render(approval))

    def _thread_note(self, approval: Approval, text: str) -> None:
        incident = self.svc.store.get_incident(approval.incident_id)
        if incident is not None:
            self.svc.say(incident.channel, text, thread_ts=incident.panel_ts)


def central_uri_for(service: Any) -> str:
    class _Ctx:  # central_uri only reads the config
        config = service.config

    return central_uri(_Ctx())  # type: ignore[arg-type]


def _totals(per_tenant: dict[str, Any]) -> dict[str, int]:
    return {"tenants": len(per_tenant), "cases": sum(t["cases"] for t in per_tenant.values()),
            "dropped_documents": sum(c or 0 for t in per_tenant.values() for c in t["collections"].values())}


def plan_drift(approved: dict[str, Any], fresh: dict[str, Any]) -> list[str]:
    """What grew since approval: new tenants, more cases with the fields, more documents to drop."""
    drift = []
    old, new = approved["tenants"], fresh["tenants"]
    for db in new:
        if db not in old:
            drift.append(f"tenant `{db}` was added")
            continue
        if new[db]["cases"] > old[db]["cases"]:
            drift.append(f"`{db}`: {new[db]['cases']} cases carry the fields, {old[db]['cases']} were approved")
        for name, count in new[db]["collections"].items():
            if (count or 0) > (old[db]["collections"].get(name) or 0):
                drift.append(f"`{db}.{name}`: {count} documents, {old[db]['collections'].get(name) or 0} approved")
    return drift


def _outcome_text(outcome: dict[str, Any]) -> str:
    if not outcome.get("ok"):
        return f"❌ failed: {outcome.get('error', 'unknown error')}"
    if "modified" in outcome:
        dropped = ", ".join(f"{n} dropped ({c} documents)" if c is not None else f"{n} absent"
                            for n, c in outcome["dropped"].items())
        return f"✅ {outcome['modified']} cases cleaned; {dropped}"
    restored = ", ".join(f"{n} ({c} documents)" for n, c in outcome.get("collections", {}).items())
    return f"✅ fields restored on {outcome.get('cases', 0)} cases; restored {restored or 'no collections'}; verified"


def _summary(approval: Approval) -> str:
    if not approval.progress:
        return ""
    ok = [o for o in approval.progress.values() if o.get("ok")]
    failed = len(approval.progress) - len(ok)
    if approval.action == CLEANUP:
        cases = sum(o.get("modified", 0) for o in ok)
        dropped = sum(c or 0 for o in ok for c in o.get("dropped", {}).values())
        text = (f"YES — the new fields were removed from {cases} internship cases and {dropped} attempt records "
                f"were deleted in {len(ok)} tenant database(s); recoverable from the backup with "
                f"`{SLASH_COMMAND} restore all`")
    else:
        text = f"restored {len(ok)} tenant database(s) from the backup and verified the counts"
    return text + (f"; {failed} tenant(s) failed" if failed else "")


def _audit_plan(plan: dict[str, Any]) -> dict[str, Any]:
    return {"tenants": {db: {k: v for k, v in t.items() if k != "name"} for db, t in plan["tenants"].items()},
            "backup": plan.get("backup", {}).get("run")}
