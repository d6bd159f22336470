"""Opening an incident, looking it up, and the ticks people make on its control panel."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.commands import parse_moment
from bot.domain.access import Act
from bot.domain.builds import stop_keeping
from bot.domain.changes import Changes
from bot.domain.checklists import CRITERIA_KEYS, CRITERIA_TEXT, PRE_ROLLBACK_CHECKLIST, SUCCESS_CRITERIA, Item
from bot.domain.deps import Deps
from bot.domain.desk import Desk, require_active
from bot.domain.incident import (
    SEVERITY_MEANING,
    Incident,
    IncidentRole,
    Milestone,
    Severity,
    Tick,
    format_incident_id,
    looks_like_incident_id,
    parse_severity,
)
from bot.domain.store import ActiveIncidentExists
from bot.errors import BadInput, Conflict, NotFound, echo
from bot.ids import SLASH_COMMAND
from bot.text import ChannelRef, Code, Link, Person, Rich, rich


@dataclass(frozen=True)
class Started:
    incident: Incident
    panel_link: str | None


@dataclass(frozen=True)
class StatusView:
    incident: Incident
    panel_link: str | None


class Incidents:
    """Opening an incident (a command or an alert's button), looking one up for `status`/`next`, and the ticks
    people make on its panel."""

    def __init__(self, deps: Deps, desk: Desk, changes: Changes) -> None:
        self.deps, self.desk, self.changes = deps, desk, changes

    # ---- /rollback start ------------------------------------------------------------------------------
    def start(self, actor: str, channel: str, reason: str, detected: str | None = None, *,
              detected_at: datetime | None = None, criteria: list[str] | None = None,
              severity: str | None = None) -> Started:
        deps = self.deps
        deps.access.require(Act.START, actor, channel)
        sev = _severity(severity, "start the reason --sev 2") if severity is not None else None
        now = deps.clock.now()
        if detected_at is None:
            detected_at = parse_moment(detected, now) if detected else now
        existing = deps.store.active_incident(f"channel:{channel}") or deps.store.active_incident(
            f"target:{deps.config.target.repo_path}")
        if existing is not None:
            self._refuse_second(existing)
        head = deps.target.head()
        number = deps.store.next_number("incident")
        incident = Incident(
            id=format_incident_id(deps.config.store.incident_prefix, number), number=number, channel=channel,
            target=str(deps.config.target.repo_path), commander=actor, reason=self.desk.clean(reason.strip()),
            created_at=now, start_commit=head.sha, start_commit_summary=head.summary, severity=sev,
        )
        incident.reach(Milestone.ISSUE_DETECTED, min(detected_at, now), actor)
        for key in criteria or []:
            if key in CRITERIA_KEYS:
                incident.criteria[key] = Tick(by=actor, at=now)
        incident.reach(Milestone.ROLLBACK_STARTED, now, actor)
        incident.record(now, "bot", f"Current commit noted: {head.oneline()}")
        if sev is not None:
            incident.record(now, actor, f"Severity: {sev.value} ({sev.meaning})")
        incident.tick("commit", "bot", now)
        try:
            deps.store.create_incident(incident, self.desk.keys(channel))
        except ActiveIncidentExists as clash:
            holder = deps.store.get_incident(clash.incident_id)
            if holder is not None:
                self._refuse_second(holder)
            raise Conflict("Another rollback is already active for this channel or target.") from None
        stop_keeping(deps)  # the rollback comes first: a keep of the running build is stopped
        self.desk.audit(now, actor, "incident.started", incident.id, channel=channel, reason=incident.reason,
                        detected_at=detected_at.isoformat(), commit=head.sha, criteria=sorted(incident.criteria),
                        severity=sev.value if sev else None)
        ts = deps.messenger.post(channel, deps.ui.panel(incident, []))

        def set_panel(fresh: Incident) -> None:
            fresh.panel_ts = ts

        incident = self.desk.mutate(incident.id, set_panel)
        self.desk.post_checklists(incident)
        self.desk.thread(incident, deps.ui.kickoff(incident, self._contacts()))
        self.changes.after(incident.id)  # announces "rollback started" to the stakeholders
        incident = self.desk.get(incident.id)
        return Started(incident, self.desk.link(incident))

    def severity(self, actor: str, channel: str, words: list[str]) -> Incident:
        """`severity <1-4> [why]`: recorded on the timeline with who and why, the panel redrawn, and the
        stakeholders' next update says it."""
        self.deps.access.require(Act.SEVERITY, actor, channel)
        incident = self.desk.active_in(channel)
        sev = _severity(words[0] if words else "", "severity 1 most students cannot start sessions")
        why = self.desk.clean(" ".join(words[1:]).strip())[:300]
        now = self.deps.clock.now()
        before: Severity | None = None

        def change(fresh: Incident) -> None:
            nonlocal before
            require_active(fresh)  # closed meanwhile: its record stays as it was closed
            before = fresh.severity
            if before is sev:
                raise Conflict((fresh.id, " is already ", sev.value, "."))
            fresh.severity = sev
            fresh.record(now, actor, f"Severity: {before.value + ' → ' if before else ''}{sev.value} ({sev.meaning})"
                         + (f" — {why}" if why else ""))

        incident = self.desk.mutate(incident.id, change)
        self.desk.audit(now, actor, "incident.severity", incident.id, severity=sev.value,
                        before=before.value if before else None)
        ts = self.desk.thread(incident, rich("🌡️ ", Person(actor), " set the severity to ", sev.value, " (",
                                             sev.meaning, ")", f" — {why}" if why else "", "."))
        self.desk.done_in_thread(actor, incident, ts, ("Severity of ", incident.id, " set to ", sev.value))
        self.desk.redraw(incident.id)
        self.changes.after(incident.id)
        return incident

    def pin(self, user: str, channel: str, ts: str, emoji: str) -> bool:
        """A reaction with ``slack.timeline_emoji`` (📌) on a message in an incident channel adds that message to
        the incident's timeline, at its own time, with its author (commanders; also after the close). Returns
        whether the reaction was this one (others are the danger zone's)."""
        deps = self.deps
        if emoji.split("::", 1)[0] != deps.config.slack.timeline_emoji:
            return False
        if channel not in deps.config.access.incident_channels:
            return True  # a 📌 elsewhere is just a 📌
        deps.access.require(Act.NOTE, user, channel, holder=self.desk.holder(channel, IncidentRole.SCRIBE))
        incident = self.desk.latest_in(channel)
        said = deps.messenger.said(channel, ts)
        if said is None or not said.text.strip():
            raise NotFound("That message could not be read, so nothing was added to the timeline.",
                           hint=("Add it in words with ", Code(f"{SLASH_COMMAND} note <text>"), "."))
        at = datetime.fromtimestamp(float(ts), UTC)
        text = "📌 " + self.desk.clean(said.text.strip())[:500]
        added = False

        def add(fresh: Incident) -> None:
            nonlocal added
            added = fresh.pin(at, said.user, text)

        incident = self.desk.mutate(incident.id, add)
        if not added:
            self.desk.tell(user, channel, ("That message is already on the timeline of ", incident.id, "."))
            return True
        now = deps.clock.now()
        self.desk.audit(now, user, "incident.pinned", incident.id, message=ts, author=said.user)
        link = deps.messenger.permalink(channel, ts)
        note = self.desk.thread(incident, rich("📌 ", Person(user), " added ", Link(link, "a message") if link else
                                               "a message", " by ", Person(said.user), " to the timeline: ",
                                               text.removeprefix("📌 ")[:200]))
        self.desk.done_in_thread(user, incident, note, ("Added to the timeline of ", incident.id))
        return True

    def start_from_alert(self, actor: str, value: str) -> Started:
        """An alert's "Start rollback" button (its value: the criterion, the check and when it was detected, as
        JSON): an incident in the first incident channel, pre-filled. A damaged value is refused."""
        damaged = BadInput("That alert button is damaged.", hint=("Use ", Code(f"{SLASH_COMMAND} start"), " instead."))
        try:
            data = json.loads(value)
            detected_at = datetime.fromisoformat(data["detected"])
            criterion, check = str(data["criterion"]), str(data.get("check", "a scheduled check"))
        except (ValueError, KeyError, TypeError):
            raise damaged from None
        channels = self.deps.config.access.incident_channels
        if not channels:
            raise BadInput("No incident channel is configured.",
                           hint=("Add one to ", Code("access.incident_channels"), "."))
        if criterion not in CRITERIA_KEYS:
            raise damaged
        return self.start(actor, channels[0], f"{CRITERIA_TEXT[criterion]} (alert from {check})",
                          detected_at=detected_at, criteria=[criterion])

    def _refuse_second(self, existing: Incident) -> None:
        existing = self.desk.with_panel(self.desk.get(existing.id))  # the link points at its panel
        link = self.desk.link(existing)
        where: Rich = (Link(link, existing.id),) if link else (existing.id,)
        raise Conflict(rich(existing.id, " is already active (commander ", Person(existing.commander), ", in ",
                            ChannelRef(existing.channel), "). Only one rollback runs per channel and per target."),
                       hint=rich("Open it: ", where, ". Use ", Code(f"{SLASH_COMMAND} status"),
                                 " to see where it stands."),
                       link=link)

    def _contacts(self) -> list[str]:
        contacts = self.deps.config.contacts
        mentions: list[str] = []
        for entries in (contacts.backend_lead, contacts.ai_server_team, contacts.frontend_team,
                        contacts.database_admin):
            for entry in entries:
                mention = self.deps.access.mention(entry).user
                if mention not in mentions:
                    mentions.append(mention)
        return mentions

    # ---- /rollback status ------------------------------------------------------------------------------
    def status(self, actor: str, channel: str, ref: str | None = None) -> StatusView:
        self.deps.access.require(Act.STATUS, actor, channel)
        if ref:
            if not looks_like_incident_id(ref.upper()):
                raise BadInput((echo(ref), " is not an incident id."),
                               hint=("Example: ", Code(f"{SLASH_COMMAND} status RB-0007"), "."))
            found = self.deps.store.get_incident(ref.upper())
            if found is None:
                raise NotFound(("There is no incident ", echo(ref.upper()), "."))
            incident = found
        else:
            incident = self.desk.active_in(channel)
        return StatusView(incident, self.desk.link(incident))

    # ---- panel checkboxes -------------------------------------------------------------------------------
    def set_criteria(self, actor: str, channel: str, incident_id: str, group_keys: set[str],
                     ticked: set[str]) -> Incident:
        """Record which rollback criteria of one group are ticked."""
        self.deps.access.require(Act.TICK, actor, channel)
        if not ticked <= group_keys or not group_keys <= CRITERIA_KEYS:
            raise BadInput("That is not one of the runbook's rollback criteria.")
        now = self.deps.clock.now()
        changes: list[str] = []

        def apply(incident: Incident) -> None:
            changes.clear()
            require_active(incident)
            for key in group_keys:
                if key in ticked and key not in incident.criteria:
                    incident.criteria[key] = Tick(by=actor, at=now)
                    changes.append(f"+{key}")
                elif key not in ticked and key in incident.criteria:
                    del incident.criteria[key]
                    changes.append(f"-{key}")

        incident = self.desk.mutate(incident_id, apply)
        if changes:
            self.desk.audit(now, actor, "incident.criteria", incident_id, changes=changes)
            self.desk.redraw(incident.id)
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
        self.deps.access.require(Act.TICK, actor, channel)
        manual = {item.key for item in items if not item.automatic}
        if not ticked <= manual:
            raise BadInput(refusal)
        now = self.deps.clock.now()

        def apply(incident: Incident) -> None:
            require_active(incident)
            ticks: dict[str, Tick] = getattr(incident, field)
            for key in manual:
                if key in ticked:
                    ticks.setdefault(key, Tick(by=actor, at=now))
                else:
                    ticks.pop(key, None)

        incident = self.desk.mutate(incident_id, apply)
        self.desk.audit(now, actor, action, incident_id, ticked=sorted(ticked))
        self.desk.redraw(incident.id)
        return incident


def _severity(text: str, example: str) -> Severity:
    sev = parse_severity(text)
    if sev is None:
        raise BadInput((echo(text) if text else "No severity", " is not a severity: say 1, 2, 3 or 4."),
                       hint=rich("1 ", SEVERITY_MEANING[Severity.SEV1], "; 2 ", SEVERITY_MEANING[Severity.SEV2],
                                 "; 3 ", SEVERITY_MEANING[Severity.SEV3], "; 4 ", SEVERITY_MEANING[Severity.SEV4],
                                 ". Example: ", Code(f"{SLASH_COMMAND} {example}"), "."))
    return sev
