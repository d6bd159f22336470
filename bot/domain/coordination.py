"""Incident tooling people expect beyond the runbook: the commander confirms *system restored*, hands the
commander role over, adds notes to the timeline and follow-ups with owners. Each change is recorded (who,
when), audited, said in the thread and shown on the panel, the updates and the postmortem."""

from __future__ import annotations

import re

from bot.domain.access import Act
from bot.domain.changes import Changes
from bot.domain.deps import Deps
from bot.domain.desk import Desk, require_active
from bot.domain.incident import ROLE_DUTIES, FollowUp, Incident, IncidentRole, Milestone, RestoredBy
from bot.domain.lifecycle import Event, Phase
from bot.errors import BadInput, Conflict, NotFound, echo
from bot.ids import SLASH_COMMAND
from bot.text import Code, Person, Rich, When, rich

MAX_NOTE = 1000
MENTION = re.compile(r"^<@([UW][A-Z0-9]{2,})(?:\|[^>]*)?>$")
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


class Coordination:
    """The commander's own records beyond the runbook's steps: *system restored*, the handover of the role,
    timeline notes and follow-ups with owners."""

    def __init__(self, deps: Deps, desk: Desk, changes: Changes) -> None:
        self.deps, self.desk, self.changes = deps, desk, changes

    # ---- who ---------------------------------------------------------------------------------------------
    def person(self, ref: str) -> str:
        """`@name`, `<@U123>` or `U123` → the user id; a clear refusal when nobody (or several) match."""
        found = MENTION.match(ref)
        if found:
            return found.group(1)
        if USER_ID.match(ref):
            return ref
        user = self.deps.directory.find_user(ref) if ref.startswith("@") and len(ref) > 1 else None
        if user is None:
            raise NotFound((echo(ref), " is not one person in this workspace."),
                           hint=("Mention them as ", Code("@their-name"), " (their Slack handle or display name)."))
        return user

    # ---- system restored ---------------------------------------------------------------------------------
    def restored(self, actor: str, channel: str) -> Incident:
        """The commander confirms the system is restored (the watch may not have seen enough checks yet)."""
        self.deps.access.require(Act.RESTORED, actor, channel)
        incident = self.desk.active_in(channel)
        phase = incident.lifecycle.phase
        if phase is Phase.CONFIRMED:
            raise Conflict(rich("System restored is already recorded (", When(
                incident.milestones[Milestone.SYSTEM_RESTORED]), ")."))
        if phase is not Phase.RESTORED:
            raise Conflict("Service is not back yet: no verify has passed since the last change (a revert or an "
                           "alternative).", hint=("Run ", Code(f"{SLASH_COMMAND} verify"), " first."))
        now = self.deps.clock.now()

        def confirm(fresh: Incident) -> None:
            require_active(fresh)
            if fresh.lifecycle.phase is not Phase.RESTORED:
                raise Conflict("Service is not back any more: something changed since you asked.",
                               hint=("Check ", Code(f"{SLASH_COMMAND} status"), "."))
            fresh.advance(Event.CONFIRMED, now, actor, confirmed=RestoredBy.COMMANDER)

        incident = self.desk.mutate(incident.id, confirm)
        self.desk.audit(now, actor, "incident.restored", incident.id, by="commander")
        self.desk.thread(incident, rich("✅ ", Person(actor), " confirmed the system is restored."))
        self.changes.after(incident.id)  # the stakeholders hear it
        return incident

    # ---- handover ----------------------------------------------------------------------------------------
    def handover(self, actor: str, channel: str, to: str) -> Incident:
        """Only the incident's current commander hands the role on, and only to someone in access.commanders;
        the former commander is told privately and in the thread (a commander still, but no longer the one)."""
        found = self.deps.store.active_incident(f"channel:{channel}")
        # Without an active incident nobody holds the role: the list decides, then active_in says there is none.
        self.deps.access.require(Act.HANDOVER, actor, channel, commander=found.commander if found else actor)
        incident = self.desk.active_in(channel)
        user = self.person(to)
        if user == incident.commander:
            raise Conflict(rich(Person(user), " is already the commander of ", incident.id, "."))
        if not self.deps.access.is_commander(user):
            raise BadInput(rich(Person(user), " is not on the list of people who may run rollback steps."),
                           hint=("Hand over to someone in ", Code("access.commanders"), ", or ask the backend lead "
                                 "to add them."))
        now = self.deps.clock.now()
        before = incident.commander

        def move(fresh: Incident) -> None:
            require_active(fresh)
            if fresh.commander != before:  # someone else handed it on first
                raise self.deps.access.refusal(actor, Act.HANDOVER, commander=fresh.commander)
            fresh.commander = user
            fresh.record(now, actor, f"Commander handed over from {before} to {user}")

        incident = self.desk.mutate(incident.id, move)
        self.desk.audit(now, actor, "incident.handover", incident.id, previous=before, commander=user)
        self.desk.thread(incident, rich("🤝 ", Person(before), " handed the commander role of ", incident.id, " to ",
                                        Person(user), ". ", Person(user), " now leads it and alone may hand it on; ",
                                        Person(before), " can still run steps as a commander."))
        self.desk.tell(before, channel, rich("You are no longer the commander of ", incident.id, ": ", Person(user),
                                             " is. You can still run steps as a commander; handing the role on is "
                                             "theirs now."))
        self.desk.redraw(incident.id)
        return incident

    # ---- notes and follow-ups ------------------------------------------------------------------------------
    def role(self, actor: str, channel: str, words: list[str]) -> Incident:
        """`role <comms|scribe> @person|none`: who holds the role in this incident (shown on the panel)."""
        self.deps.access.require(Act.ROLE, actor, channel)
        incident = self.desk.active_in(channel)
        role = IncidentRole(words[0])  # the parser allows only the roles' names
        user = None if words[1].lower() == "none" else self.person(words[1])
        now = self.deps.clock.now()

        def give(fresh: Incident) -> None:
            require_active(fresh)
            if fresh.roles.get(role) == user:
                raise Conflict(rich(Person(user), " is already the ", role.named.lower(), ".") if user else
                               rich(fresh.id, " has no ", role.named.lower(), "."))
            if user is None:
                fresh.roles.pop(role, None)
            else:
                fresh.roles[role] = user
            fresh.record(now, actor, f"{role.named}: {user}" if user else f"{role.named}: nobody")

        incident = self.desk.mutate(incident.id, give)
        self.desk.audit(now, actor, "incident.role", incident.id, role=role.value, user=user)
        what = ROLE_DUTIES[role]
        ts = self.desk.thread(incident, rich("🎭 ", Person(actor), " made ", Person(user), " the ",
                                             role.named.lower(), f" ({what}).") if user else
                              rich("🎭 ", Person(actor), " left ", incident.id, " without a ", role.named.lower(), "."))
        self.desk.done_in_thread(actor, incident, ts, (role.named, " of ", incident.id, " set"))
        self.desk.redraw(incident.id)
        return incident

    def note(self, actor: str, channel: str, text: str) -> Incident:
        self.deps.access.require(Act.NOTE, actor, channel, holder=self.desk.holder(channel, IncidentRole.SCRIBE))
        incident = self.desk.latest_in(channel)
        clean = self._text(text, "note", f"{SLASH_COMMAND} note customers see 502s since 14:02")
        now = self.deps.clock.now()
        incident = self.desk.mutate(incident.id, lambda fresh: fresh.record(now, actor, clean, note=True))
        self.desk.audit(now, actor, "incident.note", incident.id)
        ts = self.desk.thread(incident, rich("📝 ", Person(actor), ": ", clean))
        self.desk.done_in_thread(actor, incident, ts, ("Noted in the timeline of ", incident.id))
        return incident

    def followup(self, actor: str, channel: str, words: list[str]) -> Incident:
        """`followup [@person] <text>`: a follow-up with its owner; without one named, it is the author's."""
        self.deps.access.require(Act.FOLLOWUP, actor, channel)
        incident = self.desk.latest_in(channel)  # follow-ups are often agreed after the close
        named = bool(words) and (words[0].startswith(("@", "<@")) or bool(USER_ID.match(words[0])))
        user = self.person(words[0]) if named else actor
        clean = self._text(" ".join(words[1:] if named else words), "follow-up",
                           f"{SLASH_COMMAND} followup @alex add a staging test with the AI server")
        now = self.deps.clock.now()
        item = FollowUp(text=clean, owner=user, by=actor, at=now)

        def add(fresh: Incident) -> None:
            fresh.follow_ups.append(item)
            fresh.record(now, actor, f"Follow-up for {user}: {clean}")

        incident = self.desk.mutate(incident.id, add)
        self.desk.audit(now, actor, "incident.followup", incident.id, owner=user)
        where = ("; it will be in the postmortem." if incident.active else
                 "; the incident is closed, so it is in its record and timeline but not in the postmortem already "
                 "posted.")
        ts = self.desk.thread(incident, rich("📌 Follow-up for ", Person(user), ": ", clean, " (added by ",
                                             Person(actor), ")", where))
        mine: Rich = ("; noted as yours, since no owner was named first (", Code(f"{SLASH_COMMAND} followup @person "
                                                                              "<text>"), " names one)")
        self.desk.done_in_thread(actor, incident, ts, rich("Follow-up for ", Person(user), " added",
                                                           () if named else mine))
        return incident

    def _text(self, text: str, what: str, example: str) -> str:
        words = text.strip()
        if not words:
            raise BadInput(f"Say what the {what} is.", hint=("Example: ", Code(example), "."))
        if len(words) > MAX_NOTE:
            raise BadInput(f"That {what} is {len(words)} characters long; the limit is {MAX_NOTE}.",
                           hint="Put the details in a thread reply and note the gist.")
        return self.desk.clean(words)
