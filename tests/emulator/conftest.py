"""Emulators on a clock the test moves (no sleeps), and a Web API client for them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.dev.emulator import Emulator, ManualClock
from bot.dev.emulator.policy import default_manifest

#: The app's manifest scopes plus the history scopes that reading a channel's messages needs.
WITH_HISTORY = default_manifest().scopes | {"channels:history", "groups:history"}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def make_emulator(clock: ManualClock) -> Iterator[Callable[..., Emulator]]:
    """Start an emulator with these constructor arguments (on the test's clock unless given one)."""
    started: list[Emulator] = []

    def make(**kwargs: Any) -> Emulator:
        emu = Emulator(**{"clock": clock, **kwargs}).start()
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.close()


@pytest.fixture
def slack(make_emulator: Callable[..., Emulator]) -> Emulator:
    """The default, strict emulator (the app's own manifest), on the test's clock."""
    return make_emulator()


def web(emulator: Emulator) -> WebClient:
    return WebClient(token=emulator.ws.app.bot_token, base_url=emulator.api_url)


def refused(call: Callable[[], Any]) -> SlackApiError:
    """Run a Web API call that must fail; return Slack's error (response, status, headers)."""
    with pytest.raises(SlackApiError) as caught:
        call()
    return caught.value
