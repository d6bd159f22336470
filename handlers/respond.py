"""Private replies through a ``response_url`` that retry like every other Slack call.

Bolt's ``respond`` posts with a fresh ``WebhookClient`` that retries only dropped connections and never
raises: a 429 or a 502 from Slack silently lost the answer to a slash command. This one uses the retry
handlers of the app's own client (bounded: 429 honouring Retry-After, 5xx, timeouts) and raises when Slack
still refuses, so the error path logs it instead of nobody knowing.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.context.respond import Respond
from slack_bolt.context.respond.internals import _build_message
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.webhook import WebhookClient, WebhookResponse


class ReplyFailed(Exception):
    """Slack refused a response_url post after the retries."""


class RetryingRespond(Respond):
    def __init__(self, respond: Respond, retry_handlers: list[RetryHandler]) -> None:
        super().__init__(response_url=respond.response_url, proxy=respond.proxy, ssl=respond.ssl)
        self.retry_handlers = list(retry_handlers)

    def __call__(self, text: str | dict[str, Any] = "", **kwargs: Any) -> WebhookResponse:  # type: ignore[override]
        if self.response_url is None:
            raise ValueError("respond is unsupported here as there is no response_url")
        message = _build_message(**text) if isinstance(text, dict) else _build_message(text=text, **kwargs)
        client = WebhookClient(url=self.response_url, proxy=self.proxy, ssl=self.ssl,
                               retry_handlers=self.retry_handlers)
        response = client.send_dict(message)
        if response.status_code >= 400:
            raise ReplyFailed(f"the response_url answered {response.status_code}: {response.body[:200]}")
        return response


def retrying(respond: Respond | None, client: Any) -> Respond | None:
    """``respond`` with the retries of ``client`` (the listener's WebClient), when there is one."""
    handlers = getattr(client, "retry_handlers", None)
    if respond is None or respond.response_url is None or not handlers:
        return respond
    return RetryingRespond(respond, handlers)
