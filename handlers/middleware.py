"""Global middleware: a redelivered event never runs twice."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltResponse

from bot.runtime import Services


def register(app: App, services: Services) -> None:
    @app.middleware
    def run_each_event_once(body: dict[str, Any], next: Callable[[], None], logger: Any) -> BoltResponse | None:  # noqa: A002
        event_id = body.get("event_id")
        if event_id and not services.store.claim(f"event:{event_id}", services.clock.now()):
            logger.info("event %s was already handled; acknowledging the redelivery only", event_id)
            return BoltResponse(status=200, body="")
        next()
        return None
