"""The terminal prompt of `make local`: what a newcomer types reaches the bot as Slack would send it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bot.app import SocketModeBot
from bot.dev.emulator import Emulator
from bot.dev.local import repl


def test_the_prompt_drives_commands_ticks_and_forms(emulator: Emulator, bot: SocketModeBot,
                                                    monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    lines: Iterator[str] = iter([
        "/rollback start the prompt works",
        ":tick students professors",
        "/rollback comms edit",
        ':form eta="Friday 12:00" students="could not finish sessions"',
        ":as blake",
        "/rollback backup",
        ":quit",
    ])
    monkeypatch.setattr("builtins.input", lambda _prompt="": next(lines))
    repl(emulator)
    incident = bot.services.store.get_incident("RB-0001")
    assert incident is not None and incident.reason == "the prompt works"
    assert set(incident.success) == {"students", "professors"}
    assert incident.comms_details.eta == "Friday 12:00"
    assert incident.comms_details.students == "could not finish sessions"
    out = capsys.readouterr().out
    assert "Rollback RB-0001" in out and "not on the list" in out  # blake is refused, privately
