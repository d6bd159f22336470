"""Slack listeners only: parse, authorize (in the domain), ack, call the domain, render.

One folder per kind of listener, each with ``register(app, ctx)``; ``register_all`` is the only thing the
app factory calls.
"""

from __future__ import annotations

from slack_bolt import App

from handlers import actions, commands, errors, events, views
from handlers.context import Ctx


def register_all(app: App, ctx: Ctx) -> None:
    errors.register(app, ctx)
    commands.register(app, ctx)
    actions.register(app, ctx)
    views.register(app, ctx)
    events.register(app, ctx)
