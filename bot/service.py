"""The domain actions behind every `/rollback` subcommand and button.

Handlers call exactly one method here; this module decides, records (store + audit log) and posts
through the Messenger port. It never imports slack_bolt.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from bot.access import Access
from bot.alternatives import AlternativeRunner
from bot.clock import Clock
from bot.closeout import Closer
from bot.commands import CATALOG, Usage, parse_moment
from bot.comms import render, who
from bot.config import Settings
from bot.danger import DangerZone
from bot.errors import BadInput, BotError, Conflict, NotFound, StaleState, quote
from bot.ids import SLASH_COMMAND
from bot.incident import (
    CRITERIA_KEYS,
    PRE_ROLLBACK_CHECKLIST,
    SUCCESS_CRITERIA,
    Approval,
    CommsDetails,
    Incident,
    Item,
    Milestone,
    StepRun,
    Tick,
    format_incident_id,
    looks_like_incident_id,
)
from bot.monitor import Monitor
from bot.ops.git import GitRepo
from bot.redact import redact
from bot.runner import STEPS, Outcome, StepRunner, all_secret_values
from bot.stakeholders import Comms, Update
from bot.store import ActiveIncidentExists, Store

log = logging.getLogger(__name__)
PANEL_WAIT_S = 5.0  # how long a command waits for a just-started incident's control panel

PanelRenderer = Callable[[Incident, list[StepRun]], tuple[str, list[dict[str, Any]]]]


class Messenger(Protocol):
    """Posting to Slack (a port; bot.slack implements it over the Web API)."""

    def post(self, channel: str, text: str, blocks: list[dict[str, Any]] | None = None,
             thread_ts: str | None = None) -> str: ...

    def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]] | None = None) -> None: ...

    def permalink(self, channel: str, ts: str) -> str | None: ...

    def ephemeral(self, channel: str, user: str, text: str, blocks: list[dict[str, Any]] | None = None) -> None: ...

    def upload(self, channel: str, thread_ts: str | None, filename: str, content: str, title: str) -> None: ...

    def open_view(self, trigger_id: str, view: dict[str, Any]) -> None: ...

    def upload_bytes(self, channel: str, thread_ts: str | None, filename: str, content: bytes,
                     title: str) -> None: ...


@dataclass(frozen=True)
class Started:
    incident: Incident
    panel_link: str | None


@dataclass(frozen=True)
class StatusView:
    incident: Incident
    panel_link: str | None


class RollbackService:
    def __init__(self, settings: Settings, store: Store, messenger: Messenger, access: Access,
                 clock: Clock, panel_renderer: PanelRenderer) -> None:
        self.settings = settings
        self.config = settings.runbook
        self.store = store
        self.messenger = messenger
        self.access = access
        self.clock = clock
        self.render_panel = panel_renderer
        self.runner = StepRunner(self)
        self.danger = DangerZone(self)
        self.comms = Comms(self)
        self.monitor = Monitor(self)
        self.closer = Closer(self)
        self.alternatives = AlternativeRunner(self)

    # ---- lookups ---------------------------------------------------------------------------------------
    def _keys(self, channel: str) -> list[str]:
        return [f"channel:{channel}", f"target:{self.config.target.repo_path}"]

    def _active_in(self, channel: str) -> Incident:
        incident = self.store.active_incident(f"channel:{channel}")
        if incident is None:
            raise NotFound("There is no active rollback in this channel.",
                           hint=f"Start one with `{SLASH_COMMAND} start <what is broken>`.")
        return self._with_panel(incident)

    def _with_panel(self, incident: Incident) -> Incident:
        """A command typed the instant `start` answered can find the incident a moment before its control
        panel is posted; wait for the panel (its thread is where everything goes) rather than post outside it."""
        deadline = time.monotonic() + PANEL_WAIT_S
        while incident.panel_ts is None and time.monotonic() < deadline:
            time.sleep(0.05)
            incident = self.store.get_incident(incident.id) or incident
        return incident

    def _permalink(self, incident: Incident) -> str | None:
        if not incident.panel_ts:
            return None
        try:
            return self.messenger.permalink(incident.channel, incident.panel_ts)
        except Exception:  # a missing link must not hide the answer itself
            log.warning("could not get a permalink for %s", incident.id, exc_info=True)
            return None

    def mutate(self, incident_id: str, change: Callable[[Incident], None], attempts: int = 8) -> Incident:
        """Apply ``change`` to the latest version and write it back conditionally; retry if another writer won.

        ``change`` re-checks its preconditions on the fresh record every time, so two clicks or two
        replicas cannot both win a transition.
        """
        for _ in range(attempts):
            incident = self.store.get_incident(incident_id)
            if incident is None:
                raise NotFound(f"Incident {incident_id} does not exist.")
            change(incident)
            try:
                return self.store.save_incident(incident)
            except StaleState:
                continue
        raise Conflict(f"{incident_id} is changing too fast right now; try again in a moment.")

    # ---- /rollback start -------------------------------------------------------------------------------
    def start(self, actor: str, channel: str, reason: str, detected: str | None = None, *,
              detected_at: datetime | None = None, criteria: list[str] | None = None) -> Started:
        self.access.require_channel(channel)
        self.access.require_commander(actor)
        now = self.clock.now()
        if detected_at is None:
            detected_at = parse_moment(detected, now) if detected else now
        existing = self.store.active_incident(f"channel:{channel}") or self.store.active_incident(
            f"target:{self.config.target.repo_path}")
        if existing is not None:
            self._refuse_second(existing)
        head = GitRepo(self.config.target.repo_path).head()
        number = self.store.next_number("incident")
        incident = Incident(
            id=format_incident_id(self.config.store.incident_prefix, number), number=number, channel=channel,
            target=str(self.config.target.repo_path), commander=actor, reason=reason.strip(), created_at=now,
            start_commit=head.sha, start_commit_summary=head.summary,
        )
        incident.reach(Milestone.ISSUE_DETECTED, min(detected_at, now), actor)
        for key in criteria or []:
            if key in CRITERIA_KEYS:
                incident.criteria[key] = Tick(by=actor, at=now)
        incident.reach(Milestone.ROLLBACK_STARTED, now, actor)
        incident.record(now, "bot", f"Current commit noted: {head.oneline()}")
        incident.tick("commit", "bot", now)
        try:
            self.store.create_incident(incident, self._keys(channel))
        except ActiveIncidentExists as clash:
            holder = self.store.get_incident(clash.incident_id)
            if holder is not None:
                self._refuse_second(holder)
            raise Conflict("Another rollback is already active for this channel or target.") from None
        self.store.audit(now, actor, "incident.started", incident.id, channel=channel, reason=incident.reason,
                         detected_at=detected_at.isoformat(), commit=head.sha)
        text, blocks = self.render_panel(incident, [])
        ts = self.messenger.post(channel, text, blocks)

        def set_panel(fresh: Incident) -> None:
            fresh.panel_ts = ts

        incident = self.mutate(incident.id, set_panel)
        contacts = self._contact_mentions()
        self.messenger.post(channel, *_plain(render("started.md.j2", incident=incident, contacts=contacts)),
                            thread_ts=ts)
        self.refresh_panel(incident)  # announces "rollback started" to the stakeholders
        incident = self.store.get_incident(incident.id) or incident
        return Started(incident, self._permalink(incident))

    def _refuse_second(self, existing: Incident) -> None:
        existing = self._with_panel(existing)
        link = self._permalink(existing)
        where = f"<{link}|{existing.id}>" if link else existing.id
        raise Conflict(
            f"{existing.id} is already active (commander <@{existing.commander}>, in <#{existing.channel}>). "
            "Only one rollback runs per channel and per target.",
            hint=f"Open it: {where}. Use `{SLASH_COMMAND} status` to see where it stands.",
            link=link,
        )

    def _contact_mentions(self) -> list[str]:
        contacts = self.config.contacts
        mentions: list[str] = []
        for entries in (contacts.backend_lead, contacts.ai_server_team, contacts.frontend_team,
                        contacts.database_admin):
            for entry in entries:
                mention = self.access.mention(entry)
                if mention not in mentions:
                    mentions.append(mention)
        return mentions

    # ---- /rollback status --------------------------------------------------------------------------------
    def status(self, actor: str, channel: str, ref: str | None = None) -> StatusView:
        self.access.require_channel(channel)
        self.access.require_commander(actor)
        if ref:
            if not looks_like_incident_id(ref.upper()):
                raise BadInput(f"`{quote(ref)}` is not an incident id.", hint="Example: `/rollback status RB-0007`.")
            incident = self.store.get_incident(ref.upper())
            if incident is None:
                raise NotFound(f"There is no incident {quote(ref.upper())}.")
        else:
            incident = self._active_in(channel)
        return StatusView(incident, self._permalink(incident))

    def help(self) -> list[Usage]:
        return list(CATALOG)

    # ---- panel checkboxes -------------------------------------------------------------------------------
    def set_criteria(self, actor: str, channel: str, incident_id: str, group_keys: set[str],
                     ticked: set[str]) -> Incident:
        """Record which rollback criteria of one group are ticked."""
        self.access.require_channel(channel)
        self.access.require_commander(actor)
        if not ticked <= group_keys or not group_keys <= CRITERIA_KEYS:
            raise BadInput("That is not one of the runbook's rollback criteria.")
        now = self.clock.now()
        changes: list[str] = []

        def apply(incident: Incident) -> None:
            changes.clear()
            _require_active(incident)
            for key in group_keys:
                if key in ticked and key not in incident.criteria:
                    incident.criteria[key] = Tick(by=actor, at=now)
                    changes.append(f"+{key}")
                elif key not in ticked and key in incident.criteria:
                    del incident.criteria[key]
                    changes.append(f"-{key}")

        incident = self.mutate(incident_id, apply)
        if changes:
            self.store.audit(now, actor, "incident.criteria", incident_id, changes=changes)
            self.refresh_panel(incident)
        return incident

    def set_checklist(self, actor: str, channel: str, incident_id: str, ticked: set[str]) -> Incident:
        """The Pre-Rollback Checklist items people tick on the panel."""
        return self._set_ticks(actor, channel, incident_id, PRE_ROLLBACK_CHECKLIST, "checklist", ticked,
                               "Only the bot ticks the items it does itself.", "incident.checklist")

    def set_success(self, actor: str, channel: str, incident_id: str, ticked: set[str]) -> Incident:
        """The Rollback Success Criteria people confirm on the panel (the bot checks the rest at close)."""
        return self._set_ticks(actor, channel, incident_id, SUCCESS_CRITERIA, "success", ticked,
                               "The bot checks those criteria itself when you close.", "incident.success_criteria")

    def _set_ticks(self, actor: str, channel: str, incident_id: str, items: list[Item], field: str,
                   ticked: set[str], refusal: str, action: str) -> Incident:
        self.access.require_channel(channel)
        self.access.require_commander(actor)
        manual = {item.key for item in items if not item.automatic}
        if not ticked <= manual:
            raise BadInput(refusal)
        now = self.clock.now()

        def apply(incident: Incident) -> None:
            _require_active(incident)
            ticks: dict[str, Tick] = getattr(incident, field)
            for key in manual:
                if key in ticked:
                    ticks.setdefault(key, Tick(by=actor, at=now))
                else:
                    ticks.pop(key, None)

        incident = self.mutate(incident_id, apply)
        self.store.audit(now, actor, action, incident_id, ticked=sorted(ticked))
        self.refresh_panel(incident)
        return incident

    def refresh_panel(self, incident: Incident) -> None:
        """Announce any milestone just reached, then redraw the control panel from the stored incident."""
        try:
            self.comms.sync(incident.id)
        except Exception:  # the update is retried at the next change and at start-up; the panel still redraws
            log.exception("stakeholder update for %s failed", incident.id)
        incident = self.store.get_incident(incident.id) or incident
        if incident.panel_ts:
            text, blocks = self.render_panel(incident, self.store.step_runs(incident.id))
            self.messenger.update(incident.channel, incident.panel_ts, text, blocks)

    # ---- runbook steps --------------------------------------------------------------------------------------
    def run_step(self, actor: str, channel: str, name: str, args: list[str], again: bool = False) -> Outcome:
        """backup, revert, rebuild, restart, verify: the same call for the subcommand and the panel button."""
        self.access.require_channel(channel)
        self.access.require_commander(actor)
        step = STEPS.get(name)
        if step is None:
            raise BadInput(f"`{quote(name)}` is not a runbook step.", hint=f"Try `{SLASH_COMMAND} help`.")
        incident = self._active_in(channel)
        return self.runner.run(incident, step, actor, args, again)

    def recover(self) -> list[StepRun]:
        """At start-up: steps left running by a previous process become interrupted (re-runnable), and
        danger-zone runs left half done resume with the tenants not yet done."""
        interrupted = self.runner.recover_all()
        self.danger.recover()
        self.comms.recover()
        return interrupted

    # ---- the danger zone ---------------------------------------------------------------------------------------
    def request_cleanup(self, actor: str, channel: str, args: list[str]) -> Approval:
        return self.danger.request(actor, channel, "cleanup", args)

    def request_restore(self, actor: str, channel: str, args: list[str]) -> Approval:
        return self.danger.request(actor, channel, "restore", args)

    def react(self, user: str, channel: str, ts: str, emoji: str, added: bool) -> None:
        self.danger.on_reaction(user, channel, ts, emoji, added)

    # ---- stakeholder comms, RCA, close -------------------------------------------------------------------------
    def comms_preview(self, actor: str, channel: str) -> tuple[Incident, Update]:
        self.access.require_channel(channel)
        self.access.require_commander(actor)
        incident = self._active_in(channel)
        return incident, self.comms.render(incident)

    def comms_post(self, actor: str, channel: str, incident_id: str) -> None:
        self.access.require_channel(channel)
        self.access.require_commander(actor)
        incident = self.store.get_incident(incident_id)
        if incident is None:
            raise NotFound(f"Incident {quote(incident_id)} does not exist.")
        _require_active(incident)
        self.comms.post_now(incident, actor)

    def open_comms_edit(self, actor: str, channel: str, trigger_id: str) -> None:
        from bot import ui

        self.access.require_channel(channel)
        self.access.require_commander(actor)
        incident = self._active_in(channel)
        self.messenger.open_view(trigger_id, ui.comms_edit_view(incident))

    def save_comms_details(self, actor: str, incident_id: str, values: dict[str, str | None]) -> Incident:
        self.access.require_commander(actor)
        now = self.clock.now()
        secrets = self.secrets()
        clean = {k: (redact(v.strip()[:2000], secrets) if v and v.strip() else None) for k, v in values.items()
                 if k in CommsDetails.model_fields}

        def apply(incident: Incident) -> None:
            _require_active(incident)
            incident.comms_details = CommsDetails(**clean)
            incident.record(now, actor, "Stakeholder details updated (impact, next steps, ETA)")

        incident = self.mutate(incident_id, apply)
        self.store.audit(now, actor, "comms.details", incident_id, fields=sorted(k for k, v in clean.items() if v))
        self.say(incident.channel, f"📝 {who(actor)} updated the stakeholder details; `{SLASH_COMMAND} comms` "
                                   "previews the next update.", thread_ts=incident.panel_ts)
        return incident

    def open_rca(self, actor: str, channel: str, trigger_id: str) -> None:
        from bot import ui

        self.access.require_channel(channel)
        self.access.require_commander(actor)
        incident = self._latest_in(channel)
        self.messenger.open_view(trigger_id, ui.rca_view(incident))

    def _latest_in(self, channel: str) -> Incident:
        """The active incident, or the one closed last: the RCA often comes after the close."""
        try:
            return self._active_in(channel)
        except NotFound:
            closed = [i for i in self.store.incidents() if i.channel == channel]
            if not closed:
                raise
            return max(closed, key=lambda i: i.created_at)

    def close_incident(self, actor: str, channel: str, force: str | None) -> Incident:
        return self.closer.close(actor, channel, force)

    def start_from_alert(self, actor: str, value: str) -> Started:
        """The alert's "Start rollback" button: an incident in the first incident channel, pre-filled."""
        import json

        try:
            data = json.loads(value)
            detected_at = datetime.fromisoformat(data["detected"])
            criterion, check = str(data["criterion"]), str(data.get("check", "a scheduled check"))
        except (ValueError, KeyError, TypeError):
            raise BadInput("That alert button is damaged.", hint=f"Use `{SLASH_COMMAND} start` instead.") from None
        channels = self.config.access.incident_channels
        if not channels:
            raise BadInput("No incident channel is configured.", hint="Add one to `access.incident_channels`.")
        from bot.incident import ROLLBACK_CRITERIA

        text = next((i.text for i in ROLLBACK_CRITERIA if i.key == criterion), criterion)
        return self.start(actor, channels[0], f"{text} (alert from {check})", detected_at=detected_at,
                          criteria=[criterion])

    # ---- the safer alternatives ---------------------------------------------------------------------------------
    def run_alternative(self, actor: str, channel: str, name: str, args: list[str]) -> list[Outcome]:
        return self.alternatives.run(actor, channel, name, args)

    def push_hotfix(self, actor: str, channel: str, branch: str) -> str:
        return self.alternatives.push_hotfix(actor, channel, branch)

    def health(self, actor: str) -> list[Any]:
        self.access.require_commander(actor)
        return self.store.checks()

    def close(self) -> None:
        self.monitor.close()
        self.danger.close()

    def secrets(self) -> list[str]:
        return all_secret_values(self)

    def say(self, channel: str, text: str, thread_ts: str | None = None, secrets: list[str] | None = None) -> str:
        """Post into the incident (thread), with every known secret removed first."""
        clean = redact(text, self.secrets() if secrets is None else secrets)
        return self.messenger.post(channel, *_plain(clean), thread_ts=thread_ts)

    def update_text(self, channel: str, ts: str, text: str) -> None:
        self.messenger.update(channel, ts, *_plain(text))


def _plain(text: str) -> tuple[str, list[dict[str, Any]]]:
    return text, [{"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}]


def _require_active(incident: Incident) -> None:
    if not incident.active:
        raise Conflict(f"{incident.id} is closed.", hint=f"Start a new one with `{SLASH_COMMAND} start`.")


__all__ = ["BotError", "Messenger", "RollbackService", "Started", "StatusView"]
