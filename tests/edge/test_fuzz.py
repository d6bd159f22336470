"""A few thousand seeded random `/rollback …` texts through the emulator: every one is answered privately, none
raises past the bot's error handling, none logs an ERROR, and refused input changes nothing — no incident, no
audit event, no step run, no file, no commit."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

import git
import pytest

from bot.app import SocketModeBot
from bot.commands import Subcommand, parse
from bot.dev.emulator import Emulator
from bot.dev.sandbox import Sandbox
from bot.errors import BotError
from tests.conftest import COMMANDER, INCIDENT
from tests.edge.corpus import CORPUS

SEED = 20261130
COUNT = 2000
WORDS = [s.value for s in Subcommand] + ["--again", "--safe", "--force", "--detected", "--", "-", "undo", "ship",
                                         "all", "edit", "RB-0001", "HEAD~1", "NAME=value", '"', "'", "\\"]


def _char(rng: random.Random) -> str:
    """ASCII, other BMP characters or an emoji."""
    return chr(rng.choice([rng.randint(32, 126), rng.randint(0x80, 0x2fff), rng.randint(0x1f300, 0x1f64f)]))


def texts(seed: int, count: int) -> list[str]:
    """Random commands: a subcommand (or not) followed by 0–5 words from the corpus, random bytes of Unicode
    and the command vocabulary; texts that would legitimately open an incident are left out."""
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < count:
        parts = [rng.choice(WORDS)] if rng.random() < 0.8 else []
        for _ in range(rng.randint(0, 5)):
            kind = rng.random()
            if kind < 0.45:
                parts.append(rng.choice(CORPUS))
            elif kind < 0.75:
                parts.append(rng.choice(WORDS))
            else:
                parts.append("".join(_char(rng) for _ in range(rng.randint(1, 12))))
        text = " ".join(parts)
        try:
            if parse(text).sub is Subcommand.START:
                continue  # a valid start is not refused input
        except BotError:
            pass
        out.append(text)
    return out


@pytest.mark.slow
def test_thousands_of_random_commands_are_answered_and_change_nothing(
        emulator: Emulator, sandbox: Sandbox, start_bot: Callable[..., SocketModeBot],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    bot = start_bot()
    store = bot.services.store
    head = git.Repo(sandbox.repo).head.commit.hexsha
    env = (sandbox.repo / ".env").read_text()
    data_files = sorted(p.relative_to(bot.services.settings.data_dir)
                        for p in bot.services.settings.data_dir.rglob("*") if "replicas" not in p.parts)
    commands = texts(SEED, COUNT)
    started = time.monotonic()
    for text in commands:
        delivery = emulator.slash("casey", "incident-rollback", text).wait()
        assert delivery.failed is None, (text, delivery.failed)
        assert delivery.ack_latency is not None and delivery.ack_latency < 3.0, text
    answers = emulator.ws.wait_for(lambda: (a := emulator.ws.ephemerals_for(COMMANDER)) and len(a) >= COUNT and a,
                                   120, f"{COUNT} private answers")
    elapsed = time.monotonic() - started

    assert len(answers) == COUNT  # one answer each
    broken = [a.text for a in answers if "Something went wrong" in a.text or "correlation" in a.text.lower()]
    assert broken == [], broken[:3]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], \
        [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR][:3]
    assert store.active_incidents() == [] and store.incidents_in_channel(INCIDENT) == []
    assert store.audit_events() == []
    assert emulator.ws.channel_messages(INCIDENT, include_replies=True) == []
    assert git.Repo(sandbox.repo).head.commit.hexsha == head and (sandbox.repo / ".env").read_text() == env
    assert sorted(p.relative_to(bot.services.settings.data_dir) for p in bot.services.settings.data_dir.rglob("*")
                  if "replicas" not in p.parts) == data_files
    print(f"{COUNT} commands answered in {elapsed:.1f} s")
