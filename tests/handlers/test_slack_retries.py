"""Answers reach people when Slack is briefly unwell: @mention replies and private replies retry (bounded)."""

from __future__ import annotations

from bot.app import SocketModeBot
from bot.dev.emulator import Emulator
from tests.conftest import COMMANDER, INCIDENT


def test_a_mention_is_answered_when_posting_is_rate_limited_and_a_gateway_fails_once(
        emulator: Emulator, bot: SocketModeBot) -> None:
    emulator.fail_next("chat.postMessage", 429, retry_after=1)
    emulator.fail_next("chat.postMessage", 502)  # slack_sdk's own handler retries only 500 and 503
    mention = emulator.mention("casey", "incident-rollback", "help")
    asked = mention.payload["event"]["ts"]
    reply = emulator.ws.wait_for(lambda: emulator.ws.thread(INCIDENT, asked), 20, "the answer in the thread")
    assert len(reply) == 1 and "/rollback" in reply[0]["text"] + str(reply[0]["blocks"])
    assert len([c for c in emulator.ws.calls if c[0] == "chat.postMessage"]) == 3  # refused twice, then taken


def test_a_private_reply_is_delivered_when_its_response_url_is_rate_limited_once(
        emulator: Emulator, bot: SocketModeBot) -> None:
    emulator.fail_next("response_url", 429, retry_after=1)
    emulator.slash("casey", "incident-rollback", "status").wait()  # no incident yet: told privately
    told = emulator.ws.wait_for(lambda: [e for e in emulator.ws.ephemerals_for(COMMANDER)
                                         if "no active rollback" in e.text + str(e.blocks)], 20, "the private reply")
    assert len(told) == 1
