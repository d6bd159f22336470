"""A trigger_id opens one view, within 3 seconds of the interaction that issued it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.dev.emulator import Emulator, ManualClock
from tests.emulator.conftest import refused, web

VIEW = {"type": "modal", "title": {"type": "plain_text", "text": "RCA"}, "blocks": []}


def trigger(slack: Emulator) -> str:
    return str(slack.slash_payload("casey", "incident-rollback", "rca")["trigger_id"])


def open_view(slack: Emulator, trigger_id: str) -> Any:
    return web(slack).views_open(trigger_id=trigger_id, view=VIEW)


def test_a_fresh_trigger_opens_a_view_for_the_user_who_acted(slack: Emulator, clock: ManualClock) -> None:
    issued = trigger(slack)
    clock.advance(2.9)
    view = open_view(slack, issued)["view"]
    assert slack.ws.views[-1]["id"] == view["id"] and slack.ws.views[-1]["user"] == "U0COMMANDER"


def test_a_trigger_older_than_3_seconds_is_expired(slack: Emulator, clock: ManualClock) -> None:
    issued = trigger(slack)
    clock.advance(3.1)
    assert refused(lambda: open_view(slack, issued)).response["error"] == "expired_trigger_id"
    assert slack.ws.views == []


def test_a_trigger_opens_one_view_only(slack: Emulator) -> None:
    issued = trigger(slack)
    open_view(slack, issued)
    assert refused(lambda: open_view(slack, issued)).response["error"] == "exchanged_trigger_id"


def test_an_unknown_trigger_is_invalid(slack: Emulator) -> None:
    assert refused(lambda: open_view(slack, "1.2")).response["error"] == "invalid_trigger_id"


def test_clicks_and_submissions_issue_triggers_too(slack: Emulator) -> None:
    ts = web(slack).chat_postMessage(channel="C0INCIDENT", text="x", blocks=[{"type": "actions", "elements": [
        {"type": "button", "action_id": "go", "text": {"type": "plain_text", "text": "Go"}}]}])["ts"]
    clicked = slack.click("casey", "incident-rollback", ts, "go", send=False)
    assert open_view(slack, clicked.payload["trigger_id"])["ok"]


def test_expiry_can_be_switched_off(make_emulator: Callable[..., Emulator], clock: ManualClock) -> None:
    slack = make_emulator(trigger_ttl=None)
    issued = trigger(slack)
    clock.advance(3600)
    assert open_view(slack, issued)["ok"]
