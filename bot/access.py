"""Who may do what, where. Channels and people come from the config; groups resolve through Slack."""

from __future__ import annotations

import threading
import time
from typing import Protocol

from bot.config import AccessConfig
from bot.errors import NotAllowed


class Directory(Protocol):
    """The workspace's user groups (a port; the Slack Web API implements it)."""

    def group_members(self, handle: str) -> set[str]: ...

    def group_id(self, handle: str) -> str | None: ...


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
            raise NotAllowed(
                "Rollbacks can only be run in the incident channels configured for this bot.",
                hint="Run the command in one of: "
                + (", ".join(f"<#{c}>" for c in self.config.incident_channels) or "(none configured yet: "
                   "add channel ids to `access.incident_channels` in rollback.yml)"),
            )

    def require_commander(self, user: str) -> None:
        if not self._in(user, self.config.commanders) and not self._in(user, self.config.approvers):
            raise NotAllowed(
                "You are not on the list of people who may run rollback steps.",
                hint="Ask the backend lead to add you to `access.commanders` in rollback.yml.",
            )

    def is_approver(self, user: str) -> bool:
        return self._in(user, self.config.approvers)

    def mention(self, entry: str) -> str:
        """A Slack mention for a user id or a user-group handle (`<!subteam^ID>` needs the group's id)."""
        if not entry.startswith("@"):
            return f"<@{entry}>"
        group = self.directory.group_id(entry)
        return f"<!subteam^{group}>" if group else entry

    def approver_mentions(self) -> list[str]:
        return [self.mention(entry) for entry in self.config.approvers]
