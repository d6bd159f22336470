"""Closing an incident: the runbook's success criteria, the RCA, prevention follow-ups and the postmortem."""

from __future__ import annotations

import logging

from bot.domain.access import Act
from bot.domain.changes import Changes
from bot.domain.checklists import PREVENTION_CHECKLIST, RCA_CAUSES, RCA_PHASES, SUCCESS_CRITERIA
from bot.domain.danger.gate import Gate
from bot.domain.deps import Deps
from bot.domain.desk import Desk, busy_conflict, require_active
from bot.domain.guide import next_action
from bot.domain.incident import CloseCheck, CloseOut, Incident, Rca, RestoredBy
from bot.domain.lifecycle import Event, Phase
from bot.domain.ports import FormValues, form_choices, form_text
from bot.domain.recovery import Recovery
from bot.domain.runs import CheckOutcome, StepName
from bot.errors import BadInput, Conflict, echo
from bot.ids import SLASH_COMMAND
from bot.redact import redact_uri
from bot.text import Code, Link, Rich, plain, rich

log = logging.getLogger(__name__)
MAX_FIELD = 3000  # a --force reason
MAX_ANSWER = 2000  # an answer in the RCA form (the form's own max_length)


class Closer:
    """Closing an incident: the success criteria checked, the RCA form and record, the prevention follow-ups,
    the final stakeholder update and the postmortem."""

    def __init__(self, deps: Deps, desk: Desk, gate: Gate, recovery: Recovery, changes: Changes) -> None:
        self.deps, self.desk, self.gate, self.recovery, self.changes = deps, desk, gate, recovery, changes

    # ---- the success criteria the bot checks live -----------------------------------------------------
    def live_checks(self, incident: Incident) -> dict[str, list[CheckOutcome]]:
        target = self.deps.target
        restart = next((r for r in reversed(self.deps.store.step_runs(incident.id))
                        if r.step is StepName.RESTART and r.succeeded), None)
        return {"backend_running": target.health_checks() + self._apps_online(),
                "no_log_errors": target.log_checks(restart),
                "db_queries": [self._databases()]}

    def _apps_online(self) -> list[CheckOutcome]:
        pm2 = self.deps.config.pm2
        try:
            states = self.deps.target.apps()
        except Exception as error:  # noqa: BLE001 - reported as a failed criterion
            return [CheckOutcome(name="pm2", ok=False, detail=str(error)[:200])]
        return [CheckOutcome(name=f"pm2 {app}", ok=app in states and states[app].online,
                             detail=states[app].status if app in states else "not known to pm2") for app in pm2.apps]

    def _databases(self) -> CheckOutcome:
        try:
            answering = self.deps.tenant_data.ping_all()
        except Exception as error:  # noqa: BLE001 - reported as a failed criterion
            return CheckOutcome(name="tenant databases", ok=False, detail=redact_uri(str(error))[:200])
        return CheckOutcome(name="tenant databases", ok=True, detail=f"{answering} tenant database(s) answer queries")

    # ---- RCA ----------------------------------------------------------------------------------------------
    def open_rca_form(self, actor: str, channel: str, trigger_id: str) -> None:
        """`/rollback rca`: the runbook's RCA questions in a form, for the channel's latest incident (closed ones
        too: the RCA is often written after the close)."""
        self.deps.access.require(Act.RCA, actor, channel)
        self.deps.messenger.open_view(trigger_id, self.deps.ui.rca_form(self.desk.latest_in(channel)))

    def validate_rca(self, values: FormValues) -> dict[str, Rich]:
        """Field-level problems of a submitted RCA form (empty when it is fine)."""
        errors: dict[str, Rich] = {}
        phase = values.get("phase")
        if phase is not None and phase not in RCA_PHASES:
            errors["phase"] = ("Pick one of the phases.",)
        for name in ("what_went_wrong", "errors", "why", "prevention"):
            if len(form_text(values, name)) > MAX_ANSWER:
                errors[name] = (f"At most {MAX_ANSWER} characters, please.",)
        return errors

    def save_rca(self, actor: str, incident_id: str, values: FormValues) -> Incident:
        self.deps.access.require(Act.RCA, actor, self.desk.get(incident_id).channel)  # the form's incident
        phase = form_text(values, "phase") or None
        if phase is not None and phase not in RCA_PHASES:
            raise BadInput((echo(phase), " is not one of the phases."), hint=", ".join(RCA_PHASES))
        causes = [c for c in form_choices(values, "causes") if c in RCA_CAUSES]
        now = self.deps.clock.now()

        def text(name: str) -> str | None:
            value = form_text(values, name).strip()
            return self.desk.clean(value[:MAX_ANSWER]) if value else None

        rca = Rca(what_went_wrong=text("what_went_wrong"), errors=text("errors"), phase=phase, causes=causes,
                  why=text("why"), prevention=text("prevention"), by=actor, at=now)

        def apply(incident: Incident) -> None:
            incident.rca = rca
            incident.record(now, actor, "Root-cause analysis recorded")

        incident = self.desk.mutate(incident_id, apply)
        self.desk.audit(now, actor, "incident.rca", incident_id, phase=phase, causes=causes)
        self.desk.thread(incident, self.deps.ui.rca(rca))
        return incident

    # ---- close ----------------------------------------------------------------------------------------------
    def close(self, actor: str, channel: str, force: str | None) -> Incident:
        self.deps.access.require(Act.CLOSE, actor, channel)
        incident = self.recovery.settle(self.desk.active_in(channel).id)
        if force is not None and not force.strip():
            raise BadInput("Say why you close with failing criteria.",
                           hint=("Example: ", Code(f'{SLASH_COMMAND} close --force "frontend check tomorrow, backend '
                                                    'ok"'), "."))
        if incident.busy is not None:
            raise busy_conflict(incident.busy)
        live = self.live_checks(incident)
        failing = [f"{item.text}: " + "; ".join(f"{c.name} — {c.detail}" for c in live[item.key] if not c.ok)
                   for item in SUCCESS_CRITERIA if item.automatic and not all(c.ok for c in live[item.key])]
        unconfirmed = [item.text for item in SUCCESS_CRITERIA
                       if not item.automatic and item.key not in incident.success]
        if not incident.lifecycle.service_back:
            unconfirmed.insert(0, "service restored (no verify has passed since the last change; "
                               f"next: {plain(next_action(incident).text)})")
        if (failing or unconfirmed) and force is None:
            lines = [f"❌ {line}" for line in failing] + [f"⬜ not confirmed yet: {text}" for text in unconfirmed]
            boxes: Rich = (Link(incident.checklist_link, "📋 Checklists"),) if incident.checklist_link else (
                "📋 Checklists (the panel's first thread reply)",)
            raise Conflict((f"Not closing {incident.id} yet:\n" + "\n".join(lines),),
                           hint=rich("Fix what fails, tick what people confirmed under Rollback success criteria in ",
                                     boxes, ", or close anyway with ",
                                     Code(f"{SLASH_COMMAND} close --force <reason>"), " (the reason is recorded)."))
        now = self.deps.clock.now()
        checks = [CloseCheck(criterion=item.key, text=item.text, ok=all(c.ok for c in live[item.key]),
                             detail=self.desk.clean("; ".join(f"{c.name}: {c.detail}" for c in live[item.key])))
                  for item in SUCCESS_CRITERIA if item.automatic]
        reason = self.desk.clean(force.strip()[:MAX_FIELD]) if force else None
        forced = bool(failing or unconfirmed)

        def apply(fresh: Incident) -> None:
            require_active(fresh)
            if fresh.busy is not None:
                raise busy_conflict(fresh.busy)
            if not failing and fresh.lifecycle.phase is Phase.RESTORED:  # neither the watch nor the commander had
                fresh.advance(Event.CONFIRMED, now, "bot", confirmed=RestoredBy.CLOSE)
            fresh.advance(Event.CLOSED, now, actor)
            fresh.close_out = CloseOut(by=actor, at=now, forced=forced, reason=reason, checks=checks)
            if reason:
                fresh.record(now, actor, f"Closed with failing or unconfirmed criteria: {reason}")

        incident = self.desk.mutate(incident.id, apply)
        self.gate.void_open(incident.id, "the incident was closed")
        self.desk.audit(now, actor, "incident.closed", incident.id, forced=forced, reason=reason, failing=failing,
                        unconfirmed=unconfirmed)
        self.changes.after(incident.id)  # also posts the final stakeholder update
        ts = self.desk.thread(incident, self.deps.ui.follow_ups(incident, PREVENTION_CHECKLIST))
        self.desk.done_in_thread(actor, incident, ts, rich("Closed ", incident.id, (" (forced: ", reason, ")") if reason
                                                           else (), "; the follow-ups and the postmortem follow"))
        self._postmortem(incident.id, ts)
        return self.desk.get(incident.id)

    def save_postmortem(self, incident_id: str, follow_ups_ts: str | None = None) -> tuple[Incident, str]:
        """Render the postmortem and save it as ``data/postmortems/<incident>.md`` (again when a follow-up is
        done after the close, so the saved file says so); the incident and the text."""
        deps = self.deps
        incident = self.desk.get(incident_id)
        names = self._names(incident)
        text = deps.secrets.redact(deps.ui.postmortem(incident, deps.store.step_runs(incident.id),
                                                      deps.store.approvals(incident.id),
                                                      deps.store.audit_events(incident.id), names))
        folder = deps.settings.data_dir / "postmortems"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{incident.id}.md"
        path.write_text(text, encoding="utf-8")

        def saved(fresh: Incident) -> None:
            if fresh.close_out is not None:
                fresh.close_out.postmortem = str(path)
                if follow_ups_ts is not None:
                    fresh.close_out.follow_ups_ts = follow_ups_ts

        return self.desk.mutate(incident.id, saved), text

    def _postmortem(self, incident_id: str, follow_ups_ts: str) -> None:
        deps = self.deps
        incident, text = self.save_postmortem(incident_id, follow_ups_ts)
        path = incident.close_out.postmortem if incident.close_out else None
        try:
            deps.messenger.upload(incident.channel, incident.panel_ts, f"{incident.id}-postmortem.md",
                                  text.encode("utf-8"), f"{incident.id} postmortem",
                                  comment=f"📝 {incident.id} postmortem")
        except Exception:  # the file is saved; the upload can be repeated by hand
            log.exception("could not upload the postmortem of %s", incident.id)
            self.desk.thread(incident, rich("📝 Postmortem saved at ", Code(str(path)),
                                            " (the upload to Slack failed)."))

    def _names(self, incident: Incident) -> dict[str, str]:
        """Display names of everyone the postmortem mentions, resolved once at close (ids kept beside them)."""
        people = {incident.commander, *(e.actor for e in incident.timeline), *(t.by for t in incident.success.values()),
                  *(t.by for t in incident.criteria.values()), *(t.by for t in incident.checklist.values()),
                  *(f.by for f in incident.follow_ups), *(f.owner for f in incident.follow_ups if f.owner),
                  *(f.done_by for f in incident.follow_ups if f.done_by)}
        people |= {a for approval in self.deps.store.approvals(incident.id) for a in (approval.requester,
                                                                                    *approval.approvers)}
        names = {}
        for user in sorted(p for p in people if p and p != "bot"):
            try:
                name = self.deps.directory.display_name(user)
            except Exception:  # noqa: BLE001 - a name is nice to have; the id is kept either way
                name = None
            if name:
                names[user] = name
        return names
