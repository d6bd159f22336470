"""The narrow interface handlers depend on: one method per thing a person can do in Slack.

:class:`RollbackApi` is what ``handlers/`` see (a Protocol, so they never import the services, the store or
the ops adapters); :class:`Rollback` implements it by delegating each call to the one feature service that
owns the behaviour. Nothing here decides anything itself.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Protocol

from bot.commands import CATALOG, Usage
from bot.domain.access import Act
from bot.domain.alternatives import Alternatives
from bot.domain.approvals import DangerAction
from bot.domain.checks import HealthReport
from bot.domain.closeout import Closer
from bot.domain.coordination import Coordination
from bot.domain.danger import Gate
from bot.domain.deps import Deps
from bot.domain.desk import Desk, require_active
from bot.domain.incident import Incident
from bot.domain.incidents import Incidents, Started, StatusView
from bot.domain.monitor import Monitor
from bot.domain.ports import FormValues
from bot.domain.runner import StepRunner
from bot.domain.runs import StepName
from bot.domain.stakeholders import Stakeholders
from bot.domain.steps import STEP_SUBCOMMANDS as STEP_SUBCOMMANDS  # handlers route these to one method
from bot.domain.updates import Update
from bot.errors import BadInput
from bot.ids import SLASH_COMMAND
from bot.text import Code, Rich


class RollbackApi(Protocol):
    def start(self, actor: str, channel: str, reason: str, detected: str | None) -> Started: ...

    def start_from_alert(self, actor: str, value: str) -> Started: ...

    def status(self, actor: str, channel: str, ref: str | None) -> StatusView: ...

    def help(self) -> list[Usage]: ...

    def run_step(self, actor: str, channel: str, name: str, args: list[str], again: bool) -> None: ...

    def run_alternative(self, actor: str, channel: str, name: str, args: list[str]) -> None: ...

    def push_hotfix(self, actor: str, channel: str, branch: str) -> None: ...

    def request_cleanup(self, actor: str, channel: str, args: list[str]) -> None: ...

    def request_restore(self, actor: str, channel: str, args: list[str]) -> None: ...

    def react(self, user: str, channel: str, ts: str, emoji: str, added: bool) -> None: ...

    def set_criteria(self, actor: str, channel: str, incident_id: str, group: set[str], ticked: set[str]) -> None: ...

    def set_checklist(self, actor: str, channel: str, incident_id: str, ticked: set[str]) -> None: ...

    def set_success(self, actor: str, channel: str, incident_id: str, ticked: set[str]) -> None: ...

    def comms_preview(self, actor: str, channel: str) -> tuple[Incident, Update, str]: ...

    def comms_post(self, actor: str, channel: str, preview: str) -> None: ...


    def check_comms(self, values: FormValues) -> dict[str, Rich]: ...

    def save_comms(self, actor: str, incident_id: str, values: FormValues) -> None: ...


    def check_rca(self, values: FormValues) -> dict[str, Rich]: ...

    def save_rca(self, actor: str, incident_id: str, values: FormValues) -> None: ...

    def close(self, actor: str, channel: str, force: str | None) -> None: ...

    def restored(self, actor: str, channel: str) -> None: ...

    def handover(self, actor: str, channel: str, to: str) -> None: ...

    def note(self, actor: str, channel: str, text: str) -> None: ...

    def followup(self, actor: str, channel: str, owner: str, text: str) -> None: ...

    def health(self, actor: str, channel: str) -> HealthReport: ...

    def once(self, key: str) -> bool: ...

    def tell(self, user: str, channel: str, text: Rich) -> None: ...

    def incident_channel(self, incident_id: str) -> str | None: ...

    def open_comms_form(self, actor: str, channel: str, trigger_id: str) -> None: ...

    def open_rca_form(self, actor: str, channel: str, trigger_id: str) -> None: ...


class Rollback:
    """Every entry point, each delegating to the one service that owns it."""

    def __init__(self, deps: Deps, desk: Desk, incidents: Incidents, runner: StepRunner, alternatives: Alternatives,
                 gate: Gate, stakeholders: Stakeholders, closer: Closer, monitor: Monitor,
                 coordination: Coordination) -> None:
        self.deps, self.desk, self.coordination = deps, desk, coordination
        self.incidents, self.runner, self.alternatives = incidents, runner, alternatives
        self.gate, self.stakeholders, self.closer, self.monitor = gate, stakeholders, closer, monitor

    def start(self, actor: str, channel: str, reason: str, detected: str | None) -> Started:
        return self.incidents.start(actor, channel, reason, detected)

    def start_from_alert(self, actor: str, value: str) -> Started:
        try:
            data = json.loads(value)
            detected_at = datetime.fromisoformat(data["detected"])
            criterion, check = str(data["criterion"]), str(data.get("check", "a scheduled check"))
        except (ValueError, KeyError, TypeError):
            raise BadInput("That alert button is damaged.",
                           hint=("Use ", Code(f"{SLASH_COMMAND} start"), " instead.")) from None
        return self.incidents.start_from_alert(actor, criterion, check, detected_at)

    def status(self, actor: str, channel: str, ref: str | None) -> StatusView:
        return self.incidents.status(actor, channel, ref)

    def help(self) -> list[Usage]:
        return list(CATALOG)

    def run_step(self, actor: str, channel: str, name: str, args: list[str], again: bool) -> None:
        self.runner.run_named(actor, channel, name, args, again)

    def run_alternative(self, actor: str, channel: str, name: str, args: list[str]) -> None:
        self.alternatives.run(actor, channel, StepName(name), args)

    def push_hotfix(self, actor: str, channel: str, branch: str) -> None:
        self.alternatives.push_hotfix(actor, channel, branch)

    def request_cleanup(self, actor: str, channel: str, args: list[str]) -> None:
        self.gate.request(actor, channel, DangerAction.CLEANUP, args)

    def request_restore(self, actor: str, channel: str, args: list[str]) -> None:
        self.gate.request(actor, channel, DangerAction.RESTORE, args)

    def react(self, user: str, channel: str, ts: str, emoji: str, added: bool) -> None:
        self.gate.on_reaction(user, channel, ts, emoji, added)

    def set_criteria(self, actor: str, channel: str, incident_id: str, group: set[str], ticked: set[str]) -> None:
        self.incidents.set_criteria(actor, channel, incident_id, group, ticked)

    def set_checklist(self, actor: str, channel: str, incident_id: str, ticked: set[str]) -> None:
        self.incidents.set_checklist(actor, channel, incident_id, ticked)

    def set_success(self, actor: str, channel: str, incident_id: str, ticked: set[str]) -> None:
        self.incidents.set_success(actor, channel, incident_id, ticked)

    def comms_preview(self, actor: str, channel: str) -> tuple[Incident, Update, str]:
        return self.stakeholders.preview(actor, channel)

    def comms_post(self, actor: str, channel: str, preview: str) -> None:
        self.stakeholders.post_now(actor, channel, preview)

    def open_comms_form(self, actor: str, channel: str, trigger_id: str) -> None:
        self.deps.access.require(Act.COMMS, actor, channel)
        incident = self.desk.active_in(channel)
        self.deps.messenger.open_view(trigger_id, self.deps.ui.comms_form(incident))

    def check_comms(self, values: FormValues) -> dict[str, Rich]:
        return self.stakeholders.validate_details(values)

    def save_comms(self, actor: str, incident_id: str, values: FormValues) -> None:
        self.stakeholders.save_details(actor, incident_id, values)

    def open_rca_form(self, actor: str, channel: str, trigger_id: str) -> None:
        self.deps.access.require(Act.RCA, actor, channel)
        incident = self.desk.latest_in(channel)
        self.deps.messenger.open_view(trigger_id, self.deps.ui.rca_form(incident))

    def check_rca(self, values: FormValues) -> dict[str, Rich]:
        return self.closer.validate_rca(values)

    def save_rca(self, actor: str, incident_id: str, values: FormValues) -> None:
        self.closer.save_rca(actor, incident_id, values)

    def close(self, actor: str, channel: str, force: str | None) -> None:
        self.closer.close(actor, channel, force)

    def restored(self, actor: str, channel: str) -> None:
        self.coordination.restored(actor, channel)

    def handover(self, actor: str, channel: str, to: str) -> None:
        self.coordination.handover(actor, channel, to)

    def note(self, actor: str, channel: str, text: str) -> None:
        self.coordination.note(actor, channel, text)

    def followup(self, actor: str, channel: str, owner: str, text: str) -> None:
        self.coordination.followup(actor, channel, owner, text)

    def health(self, actor: str, channel: str) -> HealthReport:
        return self.monitor.report(actor, channel)

    def once(self, key: str) -> bool:
        """True the first time ``key`` (a delivery, a click, a form submission) is seen, across replicas."""
        return self.deps.store.claim(key, self.deps.clock.now(), ttl_s=86_400)

    def tell(self, user: str, channel: str, text: Rich) -> None:
        self.desk.tell(user, channel, text)

    def incident_channel(self, incident_id: str) -> str | None:
        incident = self.deps.store.get_incident(incident_id)
        return incident.channel if incident else None


__all__ = ["Rollback", "RollbackApi", "require_active"]
