"""The Slack Web API side of the ports: a retrying client, the Messenger and the Directory."""

from __future__ import annotations

import logging
import threading
from typing import Any

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

log = logging.getLogger(__name__)


def web_client(token: str | None, base_url: str, *, retries: int = 3, timeout: int = 15) -> WebClient:
    """A WebClient that retries 429 (honouring Retry-After), 5xx and dropped connections."""
    return WebClient(
        token=token,
        base_url=base_url,
        timeout=timeout,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=retries),
            RateLimitErrorRetryHandler(max_retry_count=retries),
            ServerErrorRetryHandler(max_retry_count=retries),
        ],
    )


class SlackMessenger:
    def __init__(self, client: WebClient) -> None:
        self.client = client
        self._links: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def post(self, channel: str, text: str, blocks: list[dict[str, Any]] | None = None,
             thread_ts: str | None = None) -> str:
        response = self.client.chat_postMessage(channel=channel, text=text, blocks=blocks, thread_ts=thread_ts,
                                                unfurl_links=False, unfurl_media=False)
        return str(response["ts"])

    def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)

    def permalink(self, channel: str, ts: str) -> str | None:
        with self._lock:
            cached = self._links.get((channel, ts))
        if cached:
            return cached
        link = self.client.chat_getPermalink(channel=channel, message_ts=ts).get("permalink")
        if link:
            with self._lock:
                self._links[(channel, ts)] = str(link)
        return str(link) if link else None

    def ephemeral(self, channel: str, user: str, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        self.client.chat_postEphemeral(channel=channel, user=user, text=text, blocks=blocks)

    def upload(self, channel: str, thread_ts: str | None, filename: str, content: str, title: str) -> None:
        """A file in the channel (or thread), through files.getUploadURLExternal / completeUploadExternal."""
        self.client.files_upload_v2(channel=channel, thread_ts=thread_ts, filename=filename, content=content,
                                    title=title, initial_comment=f"📝 {title}")

    def upload_bytes(self, channel: str, thread_ts: str | None, filename: str, content: bytes, title: str) -> None:
        self.client.files_upload_v2(channel=channel, thread_ts=thread_ts, filename=filename, content=content,
                                    title=title)

    def open_view(self, trigger_id: str, view: dict[str, Any]) -> None:
        self.client.views_open(trigger_id=trigger_id, view=view)


class SlackDirectory:
    """User-group handles (`@backend-leads`) to member ids, via usergroups.list / usergroups.users.list."""

    def __init__(self, client: WebClient) -> None:
        self.client = client

    def group_id(self, handle: str) -> str | None:
        wanted = handle.lstrip("@")
        for group in self.client.usergroups_list().get("usergroups") or []:
            if group.get("handle") == wanted or group.get("id") == wanted:
                return str(group["id"])
        log.warning("user group %s was not found in the workspace", handle)
        return None

    def group_members(self, handle: str) -> set[str]:
        group = self.group_id(handle)
        if group is None:
            return set()
        return {str(u) for u in self.client.usergroups_users_list(usergroup=group).get("users") or []}
