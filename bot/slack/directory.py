"""The Directory port over Slack: user groups (`@backend-leads`) and people's names.

The workspace's groups (``usergroups.list``) and people's names (``users.info``) are cached for ``cache_s``
(5 minutes): a redraw that mentions the approvers' group does not call Slack each time. When Slack fails
(rate-limited past the client's retries, 5xx, unreachable), the last value it gave is used, however old,
and the failure is logged; only a lookup Slack never answered raises.
"""

from __future__ import annotations

import logging
import threading
import time

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import ConfigError
from bot.text import Code

log = logging.getLogger(__name__)


CACHE_S = 300.0


class SlackDirectory:
    def __init__(self, client: WebClient, *, cache_s: float = CACHE_S) -> None:
        self.client = client
        self.cache_s = cache_s
        self._lock = threading.Lock()
        self._group_list: tuple[float, list[dict[str, object]]] | None = None
        self._names: dict[str, tuple[float, str | None]] = {}

    def _groups(self, handle: str) -> list[dict[str, object]]:
        with self._lock:
            cached = self._group_list
        if cached is not None and time.monotonic() - cached[0] < self.cache_s:
            return cached[1]
        try:
            groups = list(self.client.usergroups_list().get("usergroups") or [])
        except SlackApiError as error:
            if error.response.get("error") == "plan_upgrade_required":
                raise ConfigError(("This Slack workspace's plan has no user groups, so ", Code(handle),
                                   " and any other @group handle in rollback.yml cannot be resolved."),
                                  hint=("Use user ids (like ", Code("U012ABCDEF"), ") in ", Code("access.*"), " and ",
                                        Code("contacts.*"), " instead of @groups.")) from None
            return self._last_known_groups(cached, error)
        except Exception as error:  # noqa: BLE001 - timeouts, dropped connections: the same fallback
            return self._last_known_groups(cached, error)
        with self._lock:
            self._group_list = (time.monotonic(), groups)
        return groups

    def _last_known_groups(self, cached: tuple[float, list[dict[str, object]]] | None,
                           error: Exception) -> list[dict[str, object]]:
        if cached is None:
            raise error
        log.warning("usergroups.list failed (%s); using the user groups as Slack gave them %.0f s ago", error,
                    time.monotonic() - cached[0])
        return cached[1]

    def group_id(self, handle: str) -> str | None:
        wanted = handle.lstrip("@")
        for group in self._groups(handle):
            if group.get("handle") == wanted or group.get("id") == wanted:
                return str(group["id"])
        log.warning("user group %s was not found in the workspace", handle)
        return None

    def group_members(self, handle: str) -> set[str]:
        group = self.group_id(handle)
        if group is None:
            return set()
        return {str(u) for u in self.client.usergroups_users_list(usergroup=group).get("users") or []}

    def find_user(self, name: str) -> str | None:
        wanted = name.lstrip("@").strip().casefold()
        matches: set[str] = set()
        cursor: str | None = None
        for _ in range(50):  # 50 pages of 200: workspaces far larger than an incident team
            answer = self.client.users_list(limit=200, cursor=cursor)
            for member in answer.get("members") or []:
                profile = member.get("profile") or {}
                names = {str(v).casefold() for v in (member.get("name"), profile.get("display_name"),
                                                     profile.get("real_name"), member.get("real_name")) if v}
                if not member.get("deleted") and wanted in names:
                    matches.add(str(member["id"]))
            cursor = (answer.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        return matches.pop() if len(matches) == 1 else None

    def display_name(self, user: str) -> str | None:
        with self._lock:
            cached = self._names.get(user)
        if cached is not None and time.monotonic() - cached[0] < self.cache_s:
            return cached[1]
        try:
            found = self.client.users_info(user=user).get("user") or {}
        except Exception as error:  # noqa: BLE001 - a name is decoration: the last one known, or none
            log.warning("users.info failed for %s (%s)", user, error)
            return cached[1] if cached is not None else None
        profile = found.get("profile") or {}
        name = str(profile.get("real_name") or found.get("real_name") or found.get("name") or "") or None
        with self._lock:
            self._names[user] = (time.monotonic(), name)
        return name
