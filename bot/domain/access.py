"""Who may do what, where. Channels and people come from the config; groups resolve through Slack."""

from __future__ import annotations

import logging
import threading
import time

from bot.config import AccessConfig
from bot.domain.ports import Directory
from bot.errors import ConfigError, NotAllowed
from bot.text import ChannelRef, Code, Person, Rich, join, rich

log = logging.getLogger(__name__)


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

    def require_channel(self, channel: str) -> None:
        if channel not in self.config.incident_channels:
            where: Rich = join([(ChannelRef(c),) for c in self.config.incident_channels]) or (
                "(none configured yet: add channel ids to ", Code("access.incident_channels"), " in rollback.yml)")
            raise NotAllowed("Rollbacks can only be run in the incident channels configured for this bot.",
                             hint=rich("Run the command in one of: ", where))

    def require_commander(self, user: str) -> None:
        if not self.is_commander(user):
            raise NotAllowed("You are not on the list of people who may run rollback steps.",
                             hint=("Ask the backend lead to add you to ", Code("access.commanders"),
                                   " in rollback.yml."))

    def require(self, user: str, channel: str) -> None:
        """Both checks every command makes: an incident channel, and a commander (approvers count too)."""
        self.require_channel(channel)
        self.require_commander(user)

    def is_commander(self, user: str) -> bool:
        return self._in(user, self.config.commanders) or self._in(user, self.config.approvers)

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
