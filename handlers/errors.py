"""One place that turns errors into replies: domain errors privately, anything else with a correlation id.

Listeners never catch errors themselves. Work that runs after the ack (see ``handlers.work``) and
errors Bolt itself meets both end here.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from slack_bolt import App, BoltContext
from slack_bolt.context.respond import Respond
from slack_sdk import WebClient

from bot import ui
from bot.errors import BotError
from bot.runtime import Services

log = logging.getLogger("rollback_bot.errors")


def _where(context: BoltContext, body: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """Who to answer and in which channel; reaction events carry the channel in `event.item`."""
    event = (body or {}).get("event") or {}
    channel = context.channel_id or event.get("channel") or (event.get("item") or {}).get("channel")
    return channel, context.user_id or event.get("user")


def reply_privately(error: BaseException, context: BoltContext, respond: Respond | None, client: WebClient,
                    body: dict[str, Any] | None = None) -> None:
    if isinstance(error, BotError):
        message = error.user_text()
        log.info("refused %s for %s: %s", type(error).__name__, context.user_id, error.message)
    else:
        correlation = uuid.uuid4().hex[:12]
        log.error("unexpected error (correlation id %s)", correlation, exc_info=error)
        message = (f"Something went wrong on my side (correlation id `{correlation}`). Nothing more was done "
                   "after the failure; give the bot's maintainers this id.")
    text, blocks = ui.error(message)
    try:
        if respond is not None and context.response_url:
            respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=False)
        else:
            channel, user = _where(context, body)
            if channel and user:
                client.chat_postEphemeral(channel=channel, user=user, text=text, blocks=blocks)
    except Exception:  # the reply itself failed; the log still has the cause
        log.exception("could not deliver the error reply")


def register(app: App, services: Services) -> None:
    @app.error
    def on_error(error: Exception, context: BoltContext, respond: Respond | None, client: WebClient,
                 body: dict[str, Any]) -> None:
        reply_privately(error, context, respond, client, body)
