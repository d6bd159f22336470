"""The Messenger port over Slack's Web API. Every outgoing text, block, file and form is scrubbed of secrets
here, the one place everything leaves the bot, so nothing that slipped into a message can reach Slack."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from slack_sdk import WebClient

from bot.domain.ports import Message, PostKey, Said, View

log = logging.getLogger(__name__)
Scrub = Callable[[str], str]
HISTORY_PAGES = 10


def scrub_tree(value: Any, scrub: Scrub) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, list):
        return [scrub_tree(v, scrub) for v in value]
    if isinstance(value, dict):
        return {k: scrub_tree(v, scrub) for k, v in value.items()}
    return value


class SlackMessenger:
    def __init__(self, client: WebClient, scrub: Scrub = lambda text: text) -> None:
        self.client = client
        self.scrub = scrub
        self._links: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def _payload(self, message: Message) -> dict[str, Any]:
        return {"text": self.scrub(message.text), "blocks": scrub_tree(list(message.blocks), self.scrub) or None}

    def post(self, channel: str, message: Message, *, thread_ts: str | None = None,
             key: PostKey | None = None) -> str:
        extra: dict[str, Any] = {}
        if key is not None:
            extra["metadata"] = {"event_type": key.event_type, "event_payload": key.payload}
        response = self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, unfurl_links=False,
                                                unfurl_media=False, **self._payload(message), **extra)
        ts = str(response["ts"])
        for more in message.overflow:  # long content continues in the thread, never cut off
            self.client.chat_postMessage(channel=channel, thread_ts=thread_ts or ts, unfurl_links=False,
                                         unfurl_media=False, **self._payload(more))
        return ts

    def update(self, channel: str, ts: str, message: Message) -> None:
        """Redraw the message itself; its overflow went into the thread once, with the post."""
        self.client.chat_update(channel=channel, ts=ts, **self._payload(message))

    def ephemeral(self, channel: str, user: str, message: Message, *, thread_ts: str | None = None) -> None:
        self.client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts, **self._payload(message))

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

    def upload(self, channel: str, thread_ts: str | None, filename: str, content: bytes, title: str,
               comment: str | None = None, *, alt_text: str | None = None) -> None:
        """A file in the channel (or thread), through files.getUploadURLExternal / completeUploadExternal."""
        if filename.endswith((".md", ".txt")):
            content = self.scrub(content.decode("utf-8")).encode("utf-8")
        self.client.files_upload_v2(channel=channel, thread_ts=thread_ts, filename=filename, content=content,
                                    title=self.scrub(title), initial_comment=self.scrub(comment) if comment else None,
                                    alt_txt=self.scrub(alt_text)[:1000] if alt_text else None)

    def open_view(self, trigger_id: str, view: View) -> None:
        self.client.views_open(trigger_id=trigger_id, view=scrub_tree(view.body, self.scrub))

    def said(self, channel: str, ts: str) -> Said | None:
        """conversations.replies finds a message by its ts whether it starts a thread, is a reply or stands
        alone (the thread comes first, then its replies, a page at a time)."""
        cursor = None
        for _ in range(HISTORY_PAGES):
            answer = self.client.conversations_replies(channel=channel, ts=ts, limit=200, cursor=cursor)
            for item in answer.get("messages") or []:
                if item.get("ts") == ts:
                    return Said(user=str(item.get("user") or item.get("bot_id") or "someone"),
                                text=str(item.get("text") or ""), ts=ts)
            cursor = (answer.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None
        return None

    def find_post(self, channel: str, key: PostKey, since: datetime) -> str | None:
        """The newest message with this metadata since ``since`` (conversations.history, include_all_metadata)."""
        cursor = None
        for _ in range(HISTORY_PAGES):
            answer = self.client.conversations_history(channel=channel, oldest=f"{since.timestamp():.6f}",
                                                       include_all_metadata=True, limit=200, cursor=cursor)
            for item in answer.get("messages") or []:
                metadata = item.get("metadata") or {}
                if (metadata.get("event_type") == key.event_type
                        and (metadata.get("event_payload") or {}) == key.payload):
                    return str(item["ts"])
            cursor = (answer.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None
        return None
