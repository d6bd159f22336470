"""Who may do what, where: one table of acts and the role each needs, applied by every entry point (slash
subcommands, buttons, forms, reactions). Channels and people come from the config; groups resolve through
Slack.

The rule, as the README's "Who may do what" states it:

- **commanders** (``access.commanders``) start incidents, run steps and alternatives, ask for the danger zone
  and run every other command that changes an incident;
- **approvers** (``access.approvers``) approve (or reject) danger-zone requests by reacting on them, never
  their own; an approver who is not also a commander runs no command that changes anything;
- **the incident's commander** (whoever started it, or was handed the role) alone hands the role on, and only
  to someone in ``access.commanders``;
- **anyone in an incident channel** may read ``status`` (and ``help``, anywhere); nothing else.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from enum import StrEnum

from bot.commands import Subcommand
from bot.config import AccessConfig
from bot.domain.ports import Directory
from bot.domain.steps import STEP_SUBCOMMANDS
from bot.errors import ConfigError, NotAllowed
from bot.ids import SLASH_COMMAND
from bot.text import ChannelRef, Code, Person, Rich, join, rich

log = logging.getLogger(__name__)


class Role(StrEnum):
    """Who may: each role is a list in the config, or the incident's own commander."""

    ANYONE = "anyone"
    READER = "anyone in an incident channel"
    COMMANDER = "commanders"
    INCIDENT_COMMANDER = "the incident's commander"
    APPROVER = "approvers"


class Act(StrEnum):
    """What a person does, whichever way they do it (subcommand, button, form or reaction)."""

    HELP = "help"
    STATUS = "status"
    START = "start"
    SEVERITY = "severity"
    ROLE = "role"
    STEP = "step"
    ALTERNATIVE = "alternative"
    DANGER_REQUEST = "danger request"
    APPROVE = "approve"
    REJECT = "reject"
    TICK = "tick"
    COMMS = "comms"
    RCA = "rca"
    CLOSE = "close"
    RESTORED = "restored"
    HANDOVER = "handover"
    NOTE = "note"
    FOLLOWUP = "followup"
    FOLLOWUP_DONE = "followup done"  # its owner may too (bot.domain.followups)
    HEALTH = "health"


@dataclass(frozen=True)
class Rule:
    role: Role
    what: str  # "… may <what>"
    in_incident_channel: bool = True  # only in one of access.incident_channels


RULES: dict[Act, Rule] = {
    Act.HELP: Rule(Role.ANYONE, "read the help", in_incident_channel=False),
    Act.STATUS: Rule(Role.READER, "read an incident's status"),
    Act.START: Rule(Role.COMMANDER, "start a rollback"),
    Act.SEVERITY: Rule(Role.COMMANDER, "set the severity"),
    Act.ROLE: Rule(Role.COMMANDER, "give the incident's comms lead and scribe roles"),
    Act.STEP: Rule(Role.COMMANDER, "run rollback steps"),
    Act.ALTERNATIVE: Rule(Role.COMMANDER, "run the safer alternatives"),
    Act.DANGER_REQUEST: Rule(Role.COMMANDER, "ask for a cleanup or a restore"),
    Act.APPROVE: Rule(Role.APPROVER, "approve a danger-zone request"),
    Act.REJECT: Rule(Role.APPROVER, "reject a danger-zone request"),  # and the person who asked for it
    Act.TICK: Rule(Role.COMMANDER, "tick the panel's criteria and checklists"),
    Act.COMMS: Rule(Role.COMMANDER, "preview, edit or post stakeholder updates"),
    Act.RCA: Rule(Role.COMMANDER, "record the root-cause analysis"),
    Act.CLOSE: Rule(Role.COMMANDER, "close an incident"),
    Act.RESTORED: Rule(Role.COMMANDER, "confirm the system is restored"),
    Act.HANDOVER: Rule(Role.INCIDENT_COMMANDER, "hand the commander role on"),
    Act.NOTE: Rule(Role.COMMANDER, "add notes to the timeline"),
    Act.FOLLOWUP: Rule(Role.COMMANDER, "add follow-ups"),
    Act.FOLLOWUP_DONE: Rule(Role.COMMANDER, "mark someone else's follow-up done"),
    Act.HEALTH: Rule(Role.COMMANDER, "read the health checks", in_incident_channel=False),
}

# Each subcommand's act: the README's "Who may do what" table is checked against this.
SUBCOMMANDS: dict[Subcommand, Act] = {
    Subcommand.HELP: Act.HELP, Subcommand.STATUS: Act.STATUS, Subcommand.NEXT: Act.STATUS, Subcommand.START: Act.START,
    Subcommand.SEVERITY: Act.SEVERITY, Subcommand.ROLE: Act.ROLE,
    **{sub: Act.STEP for sub in STEP_SUBCOMMANDS}, Subcommand.AUTO: Act.STEP, Subcommand.PAUSE: Act.STEP,
    Subcommand.FLAG: Act.ALTERNATIVE, Subcommand.PARTIAL: Act.ALTERNATIVE, Subcommand.HOTFIX: Act.ALTERNATIVE,
    Subcommand.CLEANUP: Act.DANGER_REQUEST, Subcommand.RESTORE: Act.DANGER_REQUEST,
    Subcommand.COMMS: Act.COMMS, Subcommand.RCA: Act.RCA, Subcommand.CLOSE: Act.CLOSE,
    Subcommand.RESTORED: Act.RESTORED, Subcommand.HANDOVER: Act.HANDOVER, Subcommand.NOTE: Act.NOTE,
    Subcommand.FOLLOWUP: Act.FOLLOWUP, Subcommand.HEALTH: Act.HEALTH,
}


class Access:
    def __init__(self, config: AccessConfig, directory: Directory, cache_s: float = 60.0) -> None:
        self.config = config
        self.directory = directory
        self.cache_s = cache_s
        self._cache: dict[str, tuple[float, set[str]]] = {}
        self._lock = threading.Lock()

    def _members(self, entries: list[str]) -> tuple[set[str], list[str]]:
        users = {e for e in entries if not e.startswith("@")}
        groups = [e for e in entries if e.startswith("@")]
        return users, groups

    def _in(self, user: str, entries: list[str]) -> bool:
        users, groups = self._members(entries)
        if user in users:
            return True
        return any(user in self._group(handle) for handle in groups)

    def _group(self, handle: str) -> set[str]:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(handle)
            if cached and now - cached[0] < self.cache_s:
                return cached[1]
        members = self.directory.group_members(handle)
        with self._lock:
            self._cache[handle] = (now, members)
        return members

    # ---- the rule ------------------------------------------------------------------------------------------
    def allows(self, user: str, act: Act, *, commander: str | None = None, holder: str | None = None) -> bool:
        """Whether ``user`` holds the role ``act`` needs (``commander``: the incident's current commander;
        ``holder``: who holds the incident role this act belongs to, e.g. its comms lead for comms)."""
        role = RULES[act].role
        if role in (Role.ANYONE, Role.READER) or (holder is not None and user == holder):
            return True
        if role is Role.APPROVER:
            return self.is_approver(user)
        if role is Role.INCIDENT_COMMANDER and user != commander:
            return False
        return self.is_commander(user)

    def require(self, act: Act, user: str, channel: str | None, *, commander: str | None = None,
                holder: str | None = None) -> None:
        """Refuse (privately, saying who may and what to do) unless ``user`` may do ``act`` in ``channel``."""
        rule = RULES[act]
        if rule.in_incident_channel:
            self.require_channel(channel)
        if not self.allows(user, act, commander=commander, holder=holder):
            raise self.refusal(user, act, commander=commander)

    def refusal(self, user: str, act: Act, *, commander: str | None = None) -> NotAllowed:
        rule = RULES[act]
        if rule.role is Role.INCIDENT_COMMANDER and self.is_commander(user):
            who: Rich = (Person(commander),) if commander else ("its commander",)
            return NotAllowed(rich("Only the incident's commander (", who, ") may ", rule.what, "."),
                              hint=rich("Ask them to run ", Code(f"{SLASH_COMMAND} handover @your-name"), "."))
        if rule.role is Role.APPROVER:
            return NotAllowed(f"Only the configured approvers may {rule.what}.",
                              hint=("Ask one of them; they are listed on the request. Approvers are set in ",
                                    Code("access.approvers"), " in rollback.yml."))
        message = (f"Only commanders may {rule.what}: you are not on the list of commanders (",
                   Code("access.commanders"), ").")
        if self.is_approver(user):
            return NotAllowed(message, hint=(
                "As an approver you approve danger-zone requests by reacting on them, and you can read ",
                Code(f"{SLASH_COMMAND} status"), ". To run commands too, ask the backend lead to add you to ",
                Code("access.commanders"), " in rollback.yml."))
        return NotAllowed(message, hint=(
            "You can read ", Code(f"{SLASH_COMMAND} status"), " (only you see it). Ask a commander to do it, or the "
            "backend lead to add you to ", Code("access.commanders"), " in rollback.yml."))

    def require_channel(self, channel: str | None) -> None:
        if channel not in self.config.incident_channels:
            where: Rich = join([(ChannelRef(c),) for c in self.config.incident_channels]) or (
                "(none configured yet: add channel ids to ", Code("access.incident_channels"), " in rollback.yml)")
            raise NotAllowed("Rollbacks can only be run in the incident channels configured for this bot.",
                             hint=rich("Run the command in one of: ", where))

    def is_commander(self, user: str) -> bool:
        """In ``access.commanders``. Being an approver does not make anyone a commander."""
        return self._in(user, self.config.commanders)

    def is_approver(self, user: str) -> bool:
        return self._in(user, self.config.approvers)

    def mention(self, entry: str) -> Person:
        """A user id, or a user-group handle resolved to its id (a `<!subteam^ID>` mention needs the id)."""
        if not entry.startswith("@"):
            return Person(entry)
        try:
            group = self.directory.group_id(entry)
        except ConfigError:  # the workspace has no groups at all: that is for people to fix, so it is told
            raise
        except Exception:  # a mention is decoration: the plain @handle rather than a failed message
            log.warning("could not resolve the user group %s; showing it as typed", entry, exc_info=True)
            group = None
        return Person(f"subteam:{group}" if group else entry)

    def approver_mentions(self) -> list[Person]:
        return [self.mention(entry) for entry in self.config.approvers]

    def commander_mentions(self) -> list[Person]:
        return [self.mention(entry) for entry in self.config.commanders]
