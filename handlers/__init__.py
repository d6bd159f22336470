"""Slack listeners only: parse, authorize, ack, call bot/, render.

``register_all`` is the only thing the app factory calls.
"""

from __future__ import annotations

from slack_bolt import App

from bot.runtime import Services
from handlers import actions, commands, errors, events, middleware


def register_all(app: App, services: Services) -> None:
    middleware.register(app, services)
    errors.register(app, services)
    commands.register(app, services)
    actions.register(app, services)
    events.register(app, services)
