"""Events API listeners: `@rollback-bot status|help` answers in a thread; reactions decide danger-zone requests."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import App, Say

from bot.commands import CATALOG
from bot.ids import Event
from bot.slack_ui import status
from handlers.context import Ctx, incident_here
from handlers.listener import acked, event_key

_MENTION = re.compile(r"<@[A-Z0-9]+>")


def register(app: App, ctx: Ctx) -> None:
    features = ctx.features

    @app.event(Event.APP_MENTION)
    @acked(ctx, event_key)
    def mention(event: dict[str, Any], say: Say) -> None:
        words = _MENTION.sub("", event.get("text", "")).split()
        thread = event.get("thread_ts") or event["ts"]
        if words and words[0].lower() == "status":
            view = features.incidents.status(event["user"], event["channel"], words[1] if len(words) > 1 else None)
            message = status.status(view.incident, view.panel_link)
        else:
            message = status.help_text(CATALOG, incident_here(ctx, event["user"], event["channel"]))
        say(text=message.text, blocks=list(message.blocks), thread_ts=thread)

    @app.event(Event.REACTION_ADDED)
    @acked(ctx, event_key)
    def reaction_added(event: dict[str, Any]) -> None:
        item = event.get("item") or {}
        if item.get("type") != "message":
            return
        if not features.incidents.pin(event["user"], item["channel"], item["ts"], event["reaction"]):
            features.danger.on_reaction(event["user"], item["channel"], item["ts"], event["reaction"], True)

    @app.event(Event.REACTION_REMOVED)
    @acked(ctx, event_key)
    def reaction_removed(event: dict[str, Any]) -> None:
        item = event.get("item") or {}
        if item.get("type") == "message":
            features.danger.on_reaction(event["user"], item["channel"], item["ts"], event["reaction"], False)
