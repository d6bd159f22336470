"""Closing an incident: the runbook's success criteria, the RCA, prevention follow-ups and the postmortem."""

from __future__ import annotations

import logging
from typing import Any

from bot.comms import render
from bot.errors import BadInput, Conflict
from bot.ids import SLASH_COMMAND
from bot.incident import (
    PREVENTION_CHECKLIST,
    RCA_CAUSES,
    RCA_PHASES,
    SUCCESS_CRITERIA,
    CloseOut,
    Incident,
    IncidentState,
    Milestone,
    Rca,
)
from bot.ops import tenants
from bot.ops.pm2 import Pm2
from bot.redact import redact, redact_uri
from bot.runbook.backup import central_uri
from bot.runbook.base import Check, StepContext
from bot.runbook.verify import Verify

log = logging.getLogger(__name__)

MAX_FIELD = 3000


class Closer:
    def __init__(self, service: Any) -> None:
        self.svc = service  # bot.service.RollbackService

    # ---- the success criteria -----------------------------------------------------------------------------
    def live_checks(self, incident: Incident) -> dict[str, list[Check]]:
        """The criteria the bot can check, each with the checks behind it."""
        svc = self.svc
        ctx = StepContext(incident=incident, actor="bot", settings=svc.settings, args=[],
                          history=svc.store.step_runs(incident.id), progress=lambda _text: None,
                          secrets=svc.secrets())
        verify = Verify().run(ctx, Verify().plan(ctx))
        health = [c for c in verify.checks if c.name.startswith("GET ")]
        logs = [c for c in verify.checks if c.name.startswith("pm2")]
        uri = central_uri(ctx)
        try:
            client = tenants.connect(uri)
            try:
                found = tenants.list_tenants(client, uri, svc.config.tenants)
                for tenant in found:
                    client[tenant.db_name].command("ping")
                db = Check("tenant databases", True, f"{len(found)} tenant database(s) answer queries")
            finally:
                tenants.close(client)
        except Exception as error:  # noqa: BLE001 - reported as a failed criterion
            db = Check("tenant databases", False, redact_uri(str(error))[:200])
        return {"backend_running": health + self._apps_online(), "no_log_errors": logs, "db_queries": [db]}

    def _apps_online(self) -> list[Check]:
        pm2 = self.svc.config.pm2
        try:
            states = {s.name: s for s in Pm2(pm2.executable, pm2.home).jlist()}
        except Exception as error:  # noqa: BLE001 - reported as a failed criterion
            return [Check("pm2", False, str(error)[:200])]
        return [Check(f"pm2 {app}", app in states and states[app].online,
                      states[app].status if app in states else "not known to pm2") for app in pm2.apps]

    # ---- RCA ---------------------------------------------------------------------------------------------
    def save_rca(self, actor: str, incident_id: str, values: dict[str, Any]) -> Incident:
        svc = self.svc
        svc.access.require_commander(actor)
        phase = values.get("phase")
        if phase is not None and phase not in RCA_PHASES:
            raise BadInput(f"`{phase}` is not one of the phases.", hint=", ".join(RCA_PHASES))
        causes = [c for c in values.get("causes") or [] if c in RCA_CAUSES]
        now = svc.clock.now()
        secrets = svc.secrets()

        def text(name: str) -> str | None:
            value = (values.get(name) or "").strip()
            return redact(value[:MAX_FIELD], secrets) if value else None

        rca = Rca(what_went_wrong=text("what_went_wrong"), errors=text("errors"), phase=phase, causes=causes,
                  why=text("why"), prevention=text("prevention"), by=actor, at=now)

        def apply(incident: Incident) -> None:
            incident.rca = rca
            incident.record(now, actor, "Root-cause analysis recorded")

        incident = svc.mutate(incident_id, apply)
        svc.store.audit(now, actor, "incident.rca", incident_id, phase=phase, causes=causes)
        svc.say(incident.channel, render("rca.md.j2", rca=rca, causes=RCA_CAUSES), thread_ts=incident.panel_ts)
        return incident

    # ---- close ----------------------------------------------------------------------------------------------
    def close(self, actor: str, channel: str, force: str | None) -> Incident:
        svc = self.svc
        svc.access.require_channel(channel)
        svc.access.require_commander(actor)
        incident = svc._active_in(channel)
        if force is not None and not force.strip():
            raise BadInput("Say why you close with failing criteria.",
                           hint=f"Example: `{SLASH_COMMAND} close --force \"frontend check tomorrow, backend ok\"`.")
        if incident.running_step:
            raise Conflict("A step is still running.", hint="Close when it has finished.")
        live = self.live_checks(incident)
        failing = [f"{item.text}: " + "; ".join(f"{c.name} — {c.detail}" for c in live[item.key] if not c.ok)
                   for item in SUCCESS_CRITERIA if item.automatic and not all(c.ok for c in live[item.key])]
        unconfirmed = [item.text for item in SUCCESS_CRITERIA
                       if not item.automatic and item.key not in incident.success]
        if (failing or unconfirmed) and force is None:
            lines = [f"❌ {line}" for line in failing] + [f"⬜ not confirmed yet: {text}" for text in unconfirmed]
            raise Conflict(f"Not closing {incident.id} yet:\n" + "\n".join(lines),
                           hint="Fix what fails, tick what people confirmed under *Rollback success criteria* on "
                                f"the panel, or close anyway with `{SLASH_COMMAND} close --force <reason>` "
                                "(the reason is recorded).")
        now = svc.clock.now()
        checks = [{"criterion": item.key, "text": item.text, "ok": all(c.ok for c in live[item.key]),
                   "detail": "; ".join(f"{c.name}: {c.detail}" for c in live[item.key])}
                  for item in SUCCESS_CRITERIA if item.automatic]
        secrets = svc.secrets()
        reason = redact(force.strip()[:MAX_FIELD], secrets) if force else None

        def apply(fresh: Incident) -> None:
            if not fresh.active:
                raise Conflict(f"{fresh.id} is already closed.")
            if not failing:
                fresh.reach(Milestone.SYSTEM_RESTORED, now, "bot")  # no-op when the watch recorded it earlier
            fresh.state = IncidentState.CLOSED
            fresh.reach(Milestone.CLOSED, now, actor)
            fresh.close_out = CloseOut(by=actor, at=now, forced=bool(failing or unconfirmed), reason=reason,
                                       checks=checks)
            if reason:
                fresh.record(now, actor, f"Closed with failing or unconfirmed criteria: {reason}")

        incident = svc.mutate(incident.id, apply)
        svc.store.audit(now, actor, "incident.closed", incident.id, forced=bool(failing or unconfirmed),
                        reason=reason, failing=failing, unconfirmed=unconfirmed)
        svc.refresh_panel(incident)  # also posts the final stakeholder update
        svc.say(incident.channel, render("prevention.md.j2", items=PREVENTION_CHECKLIST, incident=incident),
                thread_ts=incident.panel_ts)
        self._postmortem(incident)
        return svc.store.get_incident(incident.id) or incident

    def _postmortem(self, incident: Incident) -> None:
        svc = self.svc
        incident = svc.store.get_incident(incident.id) or incident
        text = redact(self.postmortem(incident), svc.secrets())
        folder = svc.settings.data_dir / "postmortems"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{incident.id}.md"
        path.write_text(text, encoding="utf-8")

        def saved(fresh: Incident) -> None:
            if fresh.close_out is not None:
                fresh.close_out.postmortem = str(path)

        svc.mutate(incident.id, saved)
        try:
            svc.messenger.upload(incident.channel, incident.panel_ts, f"{incident.id}-postmortem.md", text,
                                 f"{incident.id} postmortem")
        except Exception:  # the file is saved; the upload can be repeated by hand
            log.exception("could not upload the postmortem of %s", incident.id)
            svc.say(incident.channel, f"📝 Postmortem saved at `{path}` (the upload to Slack failed).",
                    thread_ts=incident.panel_ts)

    def postmortem(self, incident: Incident) -> str:
        store = self.svc.store
        return render("postmortem.md.j2", incident=incident, runs=store.step_runs(incident.id),
                      approvals=store.approvals(incident.id), events=store.audit_events(incident.id),
                      causes=RCA_CAUSES, criteria=SUCCESS_CRITERIA, prevention=PREVENTION_CHECKLIST)
