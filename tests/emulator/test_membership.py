"""The bot is in some channels and not others, and Slack answers accordingly."""

from __future__ import annotations

from collections.abc import Callable

from bot.dev.emulator import Emulator
from tests.conftest import COMMANDER, INCIDENT
from tests.emulator.conftest import WITH_HISTORY, refused, web

GENERAL, PRIVATE = "C0OUTSIDE", "C0PRIVATE"  # seed: public without the bot, private without the bot


def test_conversations_info_tells_membership_and_privacy(slack: Emulator) -> None:
    client = web(slack)
    incident = client.conversations_info(channel=INCIDENT)["channel"]
    general = client.conversations_info(channel=GENERAL)["channel"]
    assert (incident["is_member"], incident["is_private"]) == (True, False)
    assert (general["is_member"], general["is_private"], general["name"]) == (False, False, "general")


def test_a_private_channel_without_the_bot_does_not_exist_for_it(slack: Emulator) -> None:
    client = web(slack)
    assert refused(lambda: client.conversations_info(channel=PRIVATE)).response["error"] == "channel_not_found"
    assert refused(lambda: client.chat_postMessage(channel=PRIVATE, text="x")).response["error"] == \
        "channel_not_found"
    slack.invite_bot("leadership")
    info = client.conversations_info(channel=PRIVATE)["channel"]
    assert (info["is_member"], info["is_private"]) == (True, True)


def test_posting_where_the_bot_is_not_a_member_is_not_in_channel(slack: Emulator) -> None:
    error = refused(lambda: web(slack).chat_postMessage(channel=GENERAL, text="hello"))
    assert error.response["error"] == "not_in_channel"
    assert slack.ws.channel_messages(GENERAL) == []


def test_chat_write_public_lets_the_bot_post_in_a_public_channel_it_is_not_in(
        make_emulator: Callable[..., Emulator]) -> None:
    slack = make_emulator(scopes=["chat:write", "chat:write.public"])
    assert web(slack).chat_postMessage(channel=GENERAL, text="hello")["channel"] == GENERAL
    assert slack.scopes_used() == {"chat:write", "chat:write.public"}
    assert refused(lambda: web(slack).chat_postMessage(channel=PRIVATE, text="x")).response["error"] == \
        "channel_not_found"


def test_updating_or_reading_where_the_bot_is_not_is_not_in_channel(make_emulator: Callable[..., Emulator]) -> None:
    slack = make_emulator(scopes=WITH_HISTORY)
    client = web(slack)
    slack.invite_bot("general")
    ts = client.chat_postMessage(channel=GENERAL, text="v1")["ts"]
    slack.remove_bot("general")
    assert refused(lambda: client.chat_update(channel=GENERAL, ts=ts, text="v2")).response["error"] == \
        "not_in_channel"
    assert refused(lambda: client.conversations_history(channel=GENERAL)).response["error"] == "not_in_channel"


def test_an_ephemeral_where_the_bot_is_not_is_channel_not_found(slack: Emulator) -> None:
    error = refused(lambda: web(slack).chat_postEphemeral(channel=GENERAL, user=COMMANDER, text="psst"))
    assert error.response["error"] == "channel_not_found"
    assert web(slack).chat_postEphemeral(channel=INCIDENT, user=COMMANDER, text="psst")["message_ts"]


def test_membership_checks_can_be_switched_off(make_emulator: Callable[..., Emulator]) -> None:
    slack = make_emulator(enforce_membership=False)
    assert web(slack).chat_postMessage(channel=GENERAL, text="anywhere")["ok"]
