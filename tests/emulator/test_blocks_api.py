"""Blocks and text Slack would refuse are refused on every surface that takes them, with Slack's shapes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_sdk.webhook import WebhookClient

from bot.dev.emulator import Emulator
from tests.conftest import COMMANDER, INCIDENT
from tests.emulator.conftest import refused, web

TOO_LONG = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
POINTER = "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"
GOOD = [{"type": "section", "text": {"type": "mrkdwn", "text": "fine"}}]


def modal(title: str, blocks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"type": "modal", "title": {"type": "plain_text", "text": title}, "blocks": blocks or []}


def test_post_message_with_invalid_blocks_is_invalid_blocks_with_errors(slack: Emulator) -> None:
    error = refused(lambda: web(slack).chat_postMessage(channel=INCIDENT, text="x", blocks=TOO_LONG))
    assert error.response.data == {"ok": False, "error": "invalid_blocks", "errors": [POINTER],
                                   "response_metadata": {"messages": [f"[ERROR] {POINTER}"]}}
    assert slack.ws.channel_messages(INCIDENT) == []
    assert [(r.method, r.error) for r in slack.rejections] == [("chat.postMessage", "invalid_blocks")]


def test_update_and_ephemeral_check_blocks_too(slack: Emulator) -> None:
    client = web(slack)
    ts = client.chat_postMessage(channel=INCIDENT, text="x", blocks=GOOD)["ts"]
    assert refused(lambda: client.chat_update(channel=INCIDENT, ts=ts, text="x", blocks=TOO_LONG)) \
        .response["errors"] == [POINTER]
    assert slack.ws.message(INCIDENT, ts)["blocks"] == GOOD  # type: ignore[index]
    assert refused(lambda: client.chat_postEphemeral(channel=INCIDENT, user=COMMANDER, text="x", blocks=TOO_LONG)) \
        .response["errors"] == [POINTER]


def test_blocks_that_are_not_a_json_array_are_invalid_blocks_format(slack: Emulator) -> None:
    error = refused(lambda: web(slack).api_call("chat.postMessage", data={"channel": INCIDENT, "blocks": "[{oops"}))
    assert error.response["error"] == "invalid_blocks_format"


def test_text_over_40000_characters_is_msg_too_long(slack: Emulator) -> None:
    client = web(slack)
    ts = client.chat_postMessage(channel=INCIDENT, text="x" * 40_000)["ts"]
    assert refused(lambda: client.chat_postMessage(channel=INCIDENT, text="x" * 40_001)).response["error"] == \
        "msg_too_long"
    assert refused(lambda: client.chat_update(channel=INCIDENT, ts=ts, text="y" * 40_001)).response["error"] == \
        "msg_too_long"


def test_a_response_url_refuses_invalid_blocks(slack: Emulator) -> None:
    url = slack.slash_payload("casey", "incident-rollback", "status")["response_url"]
    answer = WebhookClient(url).send(text="x", blocks=TOO_LONG)
    assert answer.status_code == 400
    assert '"invalid_blocks"' in answer.body and POINTER in answer.body
    assert slack.ws.ephemerals_for(COMMANDER) == []
    assert WebhookClient(url).send(text="fine", blocks=GOOD).status_code == 200


def test_views_with_invalid_blocks_are_invalid_arguments_with_messages(slack: Emulator) -> None:
    trigger = slack.slash_payload("casey", "incident-rollback", "rca")["trigger_id"]
    error = refused(lambda: web(slack).views_open(trigger_id=trigger, view=modal("A title over 24 characters")))
    assert error.response.data == {"ok": False, "error": "invalid_arguments", "response_metadata": {
        "messages": ["[ERROR] must be less than 25 characters [json-pointer:/view/title/text]"]}}
    opened = web(slack).views_open(trigger_id=trigger, view=modal("RCA"))["view"]  # the trigger was not spent
    error = refused(lambda: web(slack).views_update(view_id=opened["id"], view=modal("RCA", TOO_LONG)))
    assert error.response["response_metadata"]["messages"] == [
        "[ERROR] must be less than 3001 characters [json-pointer:/view/blocks/0/text/text]"]
    updated = web(slack).views_update(view_id=opened["id"], view=modal("RCA done", GOOD))["view"]
    assert updated["id"] == opened["id"] and updated["title"]["text"] == "RCA done"


def test_block_validation_can_be_switched_off(make_emulator: Callable[..., Emulator]) -> None:
    slack = make_emulator(validate_blocks=False)
    assert web(slack).chat_postMessage(channel=INCIDENT, text="x", blocks=TOO_LONG)["ok"]
