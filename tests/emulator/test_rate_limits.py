"""Slack's rate-limit tiers: HTTP 429 ``ratelimited`` with Retry-After, per method, on the emulator's clock."""

from __future__ import annotations

from collections.abc import Callable

from bot.dev.emulator import Emulator, ManualClock
from tests.conftest import COMMANDER, INCIDENT, RANDOM
from tests.emulator.conftest import WITH_HISTORY, refused, web


def test_tier_2_allows_20_calls_a_minute(slack: Emulator, clock: ManualClock) -> None:
    client = web(slack)
    for _ in range(20):
        client.usergroups_list()
    limited = refused(client.usergroups_list)
    assert limited.response.status_code == 429
    assert limited.response.data == {"ok": False, "error": "ratelimited"}
    assert int(limited.response.headers["Retry-After"]) == 3  # one call every 3 s at 20 a minute
    clock.advance(3)
    assert client.usergroups_list()["ok"]


def test_tier_3_allows_50_updates_a_minute(slack: Emulator, clock: ManualClock) -> None:
    client = web(slack)
    ts = client.chat_postMessage(channel=INCIDENT, text="v0")["ts"]
    for i in range(50):
        client.chat_update(channel=INCIDENT, ts=ts, text=f"v{i}")
    assert refused(lambda: client.chat_update(channel=INCIDENT, ts=ts, text="late")).response.status_code == 429
    clock.advance(60)
    assert client.chat_update(channel=INCIDENT, ts=ts, text="later")["ok"]


def test_tier_4_allows_100_ephemerals_a_minute(slack: Emulator) -> None:
    client = web(slack)
    for _ in range(100):
        client.chat_postEphemeral(channel=INCIDENT, user=COMMANDER, text="x")
    assert refused(lambda: client.chat_postEphemeral(channel=INCIDENT, user=COMMANDER, text="x")) \
        .response.status_code == 429


def test_post_message_is_about_one_a_second_per_channel_after_a_short_burst(
        slack: Emulator, clock: ManualClock) -> None:
    client = web(slack)
    for _ in range(5):
        client.chat_postMessage(channel=INCIDENT, text="burst")
    limited = refused(lambda: client.chat_postMessage(channel=INCIDENT, text="one too many"))
    assert (limited.response.status_code, limited.response.headers["Retry-After"]) == (429, "1")
    assert client.chat_postMessage(channel=RANDOM, text="another channel has its own pace")["ok"]
    clock.advance(1)
    assert client.chat_postMessage(channel=INCIDENT, text="a second later")["ok"]
    assert len(slack.ws.channel_messages(INCIDENT)) == 6


def test_the_post_message_burst_can_be_set(make_emulator: Callable[..., Emulator]) -> None:
    client = web(make_emulator(post_message_burst=2))
    client.chat_postMessage(channel=INCIDENT, text="1")
    client.chat_postMessage(channel=INCIDENT, text="2")
    assert refused(lambda: client.chat_postMessage(channel=INCIDENT, text="3")).response.status_code == 429


def test_limits_are_per_method(slack: Emulator) -> None:
    client = web(slack)
    for _ in range(20):
        client.usergroups_list()
    assert client.usergroups_users_list(usergroup="S0LEADS")["ok"]


def test_unlisted_apps_read_history_once_a_minute(make_emulator: Callable[..., Emulator],
                                                  clock: ManualClock) -> None:
    slack = make_emulator(distribution="unlisted", scopes=WITH_HISTORY)
    client = web(slack)
    client.conversations_history(channel=INCIDENT)
    limited = refused(lambda: client.conversations_history(channel=INCIDENT))
    assert (limited.response.status_code, limited.response.headers["Retry-After"]) == (429, "60")


def test_rate_limits_can_be_off_or_faster(make_emulator: Callable[..., Emulator]) -> None:
    off = web(make_emulator(rate_limits=False))
    for _ in range(30):
        off.usergroups_list()
    tenfold = web(make_emulator(rate_limits=10.0))
    for _ in range(200):
        tenfold.usergroups_list()
    assert refused(tenfold.usergroups_list).response.status_code == 429


def test_fail_next_still_forces_a_429(slack: Emulator) -> None:
    slack.fail_next("users.info", 429, retry_after=7)
    limited = refused(lambda: web(slack).users_info(user=COMMANDER))
    assert (limited.response.status_code, limited.response.headers["Retry-After"]) == (429, "7")
    assert web(slack).users_info(user=COMMANDER)["ok"]
