"""Events API listeners: `@rollback-bot status|help` answers in a thread; reactions decide danger-zone requests."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import App, Say

from bot import ui
from bot.comms import render
from bot.ids import SLASH_COMMAND, Event
from bot.runtime import Services
from handlers.work import acked

_MENTION = re.compile(r"<@[A-Z0-9]+>")


def register(app: App, services: Services) -> None:
    @app.event(Event.APP_MENTION)
    @acked(services)
    def mention(event: dict[str, Any], say: Say) -> None:
        words = _MENTION.sub("", event.get("text", "")).split()
        thread = event.get("thread_ts") or event["ts"]
        if words and words[0].lower() == "status":
            view = services.rollback.status(event["user"], event["channel"], words[1] if len(words) > 1 else None)
            text, blocks = ui.status(view.incident, view.panel_link)
        else:
            text = render("help.md.j2", command=SLASH_COMMAND, subcommands=services.rollback.help())
            blocks = ui.section(text)
        say(text=text, blocks=blocks, thread_ts=thread)

    @app.event(Event.REACTION_ADDED)
    @acked(services)
    def reaction_added(event: dict[str, Any]) -> None:
        item = event.get("item") or {}
        if item.get("type") == "message":
            services.rollback.react(event["user"], item["channel"], item["ts"], event["reaction"], added=True)

    @app.event(Event.REACTION_REMOVED)
    @acked(services)
    def reaction_removed(event: dict[str, Any]) -> None:
        item = event.get("item") or {}
        if item.get("type") == "message":
            services.rollback.react(event["user"], item["channel"], item["ts"], event["reaction"], added=False)
