"""The terminal prompt of `make local`: what a newcomer types reaches the bot as Slack would send it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bot.app import SocketModeBot
from bot.dev.emulator import Emulator
from bot.dev.fakeclock import LaterClock
from bot.dev.local import later, repl
from tests.conftest import APPROVER, INCIDENT


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


def test_later_jumps_the_bots_clock_so_a_follow_ups_reminder_comes_a_week_after_the_close(
        emulator: Emulator, start_bot: Callable[..., SocketModeBot], monkeypatch: pytest.MonkeyPatch,
        capsys: Any) -> None:
    clock = LaterClock()
    bot = start_bot(clock=clock)
    lines: Iterator[str] = iter([
        "/rollback start the prompt works",
        "/rollback followup @alex add a staging test",
        "/rollback close --force drill over",
        ":later soon",
        ":later 7d",
        ":quit",
    ])

    def typed(_prompt: str = "") -> str:
        line = next(lines)
        if line.startswith(":later"):  # the close has posted its follow-ups (a week from then, not from now)
            emulator.ws.wait_for(lambda: (i := bot.services.store.get_incident("RB-0001")) and i.close_out
                                 and i.close_out.follow_ups_ts, 60, "the close")
        return line

    monkeypatch.setattr("builtins.input", typed)
    repl(emulator, later(clock, bot))
    out = capsys.readouterr().out
    assert "(say how far ahead: :later 7d" in out
    assert "7 days ahead; follow-up reminders sent: 1" in out
    incident = bot.services.store.get_incident("RB-0001")
    assert incident is not None
    assert any(f"<@{APPROVER}>, follow-up #1 of RB-0001 is still open" in str(m.get("blocks") or m["text"])
               for m in emulator.ws.thread(INCIDENT, incident.panel_ts or ""))
