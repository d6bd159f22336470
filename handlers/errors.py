"""One place that turns errors into replies: domain errors privately, anything else with a correlation id.

Listeners never catch errors themselves. The reply goes only where the verified request came from: its
``response_url`` (Slack's own), or an ephemeral message to the acting user in the channel it came from
(for forms: the incident's channel). The correlation id is logged as a field of the log record.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from slack_bolt import App, BoltContext
from slack_bolt.context.respond import Respond

from bot.domain.api import Incident
from bot.errors import BotError
from bot.slack_ui import notes, status
from bot.slack_ui.forms import form_origin
from handlers.context import Ctx

log = logging.getLogger("rollback_bot.errors")


def _where(ctx: Ctx, context: BoltContext, body: dict[str, Any]) -> tuple[str | None, str | None]:
    """Who to answer and in which channel; reactions carry it in `event.item`, forms in private_metadata."""
    event = body.get("event") or {}
    channel = context.channel_id or event.get("channel") or (event.get("item") or {}).get("channel")
    view = body.get("view") or {}
    if channel is None and view.get("private_metadata"):
        channel = ctx.features.desk.channel_of(form_origin(view)[0])
    return channel, context.user_id or event.get("user")


def _incident_here(ctx: Ctx, channel: str | None, user: str | None) -> tuple[Incident | None, str | None]:
    """The active incident in the channel the refusal answers, if this person may read it, and its panel link."""
    if not channel or not user:
        return None, None
    try:
        view = ctx.features.incidents.status(user, channel, None)
    except BotError:  # no incident here, or not one this person may read: the refusal alone
        return None, None
    except Exception:  # the refusal matters more than the hint
        log.warning("could not add the Next line to a refusal", exc_info=True)
        return None, None
    return view.incident, view.panel_link


def reply_privately(ctx: Ctx, error: BaseException, context: BoltContext, respond: Respond | None,
                    body: dict[str, Any] | None) -> None:
    if isinstance(error, BotError):
        text = error.user_text()
        log.info("refused %s for %s: %s", type(error).__name__, context.user_id, error.plain())
    else:
        correlation = uuid.uuid4().hex[:12]
        log.error("unexpected error (correlation id %s)", correlation, exc_info=error,
                  extra={"correlation_id": correlation})
        text = (f"Something went wrong on my side (correlation id {correlation}). Nothing more was done after the "
                "failure; give the bot's maintainers this id.",)
    message = notes.error(text)
    if isinstance(error, BotError):  # a refusal: with the incident's Next line, so the way on is in view
        channel, user = _where(ctx, context, body or {})
        incident, panel_link = _incident_here(ctx, channel, user)
        if incident is not None:
            message = status.with_next(message, incident, panel_link, user)
    # A button in a thread reply (the hotfix's Push, an approval): Slack shows a response_url answer in the
    # channel, away from where the person clicked, so the answer goes to the thread by chat.postEphemeral.
    clicked = (body or {}).get("message") or {}
    thread_ts = clicked.get("thread_ts") if clicked.get("thread_ts") not in (None, clicked.get("ts")) else None
    try:
        if respond is not None and context.response_url and thread_ts is None:
            respond(text=message.text, blocks=list(message.blocks), response_type="ephemeral", replace_original=False)
            return
        channel, user = _where(ctx, context, body or {})
        if channel and user:
            ctx.features.desk.tell(user, channel, message, thread_ts=thread_ts)
    except Exception:  # the reply itself failed; the log still has the cause
        log.exception("could not deliver the error reply")


def register(app: App, ctx: Ctx) -> None:
    @app.error
    def on_error(error: Exception, context: BoltContext, respond: Respond | None, body: dict[str, Any]) -> None:
        reply_privately(ctx, error, context, respond, body)
