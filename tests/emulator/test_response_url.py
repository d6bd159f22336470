"""A response_url takes 5 responses within 30 minutes; a slash command's ack is checked like a message."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.socket_mode import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.webhook import WebhookClient

from bot.dev.emulator import Emulator, ManualClock
from tests.conftest import COMMANDER
from tests.emulator.conftest import web


def response_url(slack: Emulator) -> str:
    return str(slack.slash_payload("casey", "incident-rollback", "status")["response_url"])


def test_a_response_url_takes_five_responses(slack: Emulator) -> None:
    url = response_url(slack)
    for i in range(5):
        assert WebhookClient(url).send(text=f"update {i}").status_code == 200
    sixth = WebhookClient(url).send(text="one too many")
    assert (sixth.status_code, sixth.body) == (404, '{"ok": false, "error": "used_url"}')
    assert len(slack.ws.ephemerals_for(COMMANDER)) == 5


def test_a_response_url_expires_after_30_minutes(slack: Emulator, clock: ManualClock) -> None:
    url = response_url(slack)
    clock.advance(29 * 60)
    assert WebhookClient(url).send(text="still in time").status_code == 200
    clock.advance(2 * 60)
    late = WebhookClient(url).send(text="too late")
    assert (late.status_code, late.body) == (404, '{"ok": false, "error": "expired_url"}')


def test_response_url_limits_can_be_switched_off(make_emulator: Callable[..., Emulator], clock: ManualClock) -> None:
    slack = make_emulator(response_url_limits=False)
    url = response_url(slack)
    clock.advance(3600)
    assert all(WebhookClient(url).send(text=str(i)).status_code == 200 for i in range(7))


@pytest.fixture
def acking_app(slack: Emulator) -> Iterator[SocketModeClient]:
    """A bare Socket Mode app that acks every slash command with blocks Slack would refuse."""
    app = SocketModeClient(app_token=slack.ws.app.app_token,
                           web_client=WebClient(token=slack.ws.app.bot_token, base_url=slack.api_url))

    def ack(client: SocketModeClient, request: SocketModeRequest) -> None:
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
        client.send_socket_mode_response(SocketModeResponse(request.envelope_id, {"text": "x", "blocks": blocks}))

    app.socket_mode_request_listeners.append(ack)
    app.connect()
    yield app
    app.close()


def test_a_slash_command_acked_with_invalid_blocks_shows_slacks_error(
        slack: Emulator, acking_app: SocketModeClient) -> None:
    delivery = slack.slash("casey", "incident-rollback", "help").wait()
    assert delivery.failed == "invalid_command_response"
    assert [e.text for e in slack.ws.ephemerals_for(COMMANDER)] == [
        '/rollback failed with the error "invalid_command_response"']


def test_the_response_url_of_a_click_in_an_ephemeral_message_replaces_or_deletes_that_message(
        slack: Emulator) -> None:
    """The only way to change an ephemeral message (chat.update reaches channel messages only)."""
    blocks = [{"type": "actions", "elements": [{"type": "button", "action_id": "edit", "value": "1",
                                                 "text": {"type": "plain_text", "text": "Edit"}}]}]
    web(slack).chat_postEphemeral(channel="C0INCIDENT", user=COMMANDER, text="preview: not assessed yet",
                                  blocks=blocks)
    shown = slack.ws.ephemerals_for(COMMANDER)[0]
    click = slack.click("casey", "incident-rollback", shown.ts, "edit", send=False)
    assert click.payload["container"]["is_ephemeral"]
    url = click.payload["response_url"]
    assert WebhookClient(url).send(text="preview: sessions failed", replace_original=True).status_code == 200
    assert [(e.ts, e.text) for e in slack.ws.ephemerals_for(COMMANDER)] == [(shown.ts, "preview: sessions failed")]
    assert WebhookClient(url).send(text="", delete_original=True).status_code == 200
    assert slack.ws.ephemerals_for(COMMANDER) == []
