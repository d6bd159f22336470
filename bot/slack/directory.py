"""The Directory port over Slack: user groups (`@backend-leads`) and people's names."""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import ConfigError
from bot.text import Code

log = logging.getLogger(__name__)


class SlackDirectory:
    def __init__(self, client: WebClient) -> None:
        self.client = client

    def _groups(self, handle: str) -> list[dict[str, object]]:
        try:
            return list(self.client.usergroups_list().get("usergroups") or [])
        except SlackApiError as error:
            if error.response.get("error") == "plan_upgrade_required":
                raise ConfigError(("This Slack workspace's plan has no user groups, so ", Code(handle),
                                   " and any other @group handle in rollback.yml cannot be resolved."),
                                  hint=("Use user ids (like ", Code("U012ABCDEF"), ") in ", Code("access.*"), " and ",
                                        Code("contacts.*"), " instead of @groups.")) from None
            raise

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
        try:
            found = self.client.users_info(user=user).get("user") or {}
        except SlackApiError:
            return None
        profile = found.get("profile") or {}
        return str(profile.get("real_name") or found.get("real_name") or found.get("name") or "") or None
