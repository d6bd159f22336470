"""Hostile arguments for every subcommand that takes words, and garbage words for every step: answered
privately (with the usage), never run, never half-done, never echoed as Slack markup."""

from __future__ import annotations

import logging
import random
import shlex
from collections.abc import Callable
from pathlib import Path

import git
import pytest

from bot.app import SocketModeBot
from bot.dev.emulator import Emulator
from bot.dev.sandbox import Sandbox
from tests.conftest import COMMANDER, INCIDENT
from tests.edge.corpus import CORPUS, SLACK, TAKING_WORDS

NEVER_FROM_THE_BOT = ["<!channel>", "<!here>", "<!everyone>", "<https://evil.example", "<mailto:", "<!date^0"]
ALWAYS = ["$(touch /tmp/rollback-bot-pwned)", "../../etc/passwd", "<!channel>", "<https://evil.example|click me>",
          "a" * 300]


def sample(seed: int, count: int = 3) -> list[str]:
    return ALWAYS + random.Random(seed).sample(CORPUS, count)


def said_everywhere(emulator: Emulator) -> str:
    return emulator.ws.all_text()


class Session:
    def __init__(self, emulator: Emulator, bot: SocketModeBot, sandbox: Sandbox) -> None:
        self.emulator, self.bot, self.sandbox = emulator, bot, sandbox
        self.store = bot.services.store
        emulator.slash("casey", "incident-rollback", "start arguments").wait()
        emulator.ws.wait_for(lambda: (i := self.store.get_incident("RB-0001")) and i.panel_ts, 10, "the panel")

    def send(self, text: str) -> str:
        """Send a command and wait for its private answer; returns it."""
        before = len(self.emulator.ws.ephemerals_for(COMMANDER))
        delivery = self.emulator.slash("casey", "incident-rollback", text).wait()
        assert delivery.failed is None, (text, delivery.failed)
        answer = self.emulator.ws.wait_for(lambda: self.emulator.ws.ephemerals_for(COMMANDER)[before:], 15,
                                           f"an answer to {text!r}")
        return str(answer[0].text)

    def state(self) -> tuple[int, int, str, str]:
        repo = git.Repo(self.sandbox.repo)
        return (len(self.store.step_runs("RB-0001")), len(self.store.approvals("RB-0001")), repo.head.commit.hexsha,
                (self.sandbox.repo / ".env").read_text())


PWNED = Path("/tmp/rollback-bot-pwned")  # what the shell payloads in the corpus would create


@pytest.fixture
def session(emulator: Emulator, sandbox: Sandbox, start_bot: Callable[..., SocketModeBot]) -> Session:
    PWNED.unlink(missing_ok=True)
    return Session(emulator, start_bot(), sandbox)


@pytest.mark.parametrize("sub", TAKING_WORDS)
def test_hostile_words_are_refused_privately_and_change_nothing(session: Session, sub: str,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    before = session.state()
    for index, item in enumerate(sample(seed=len(sub))):
        text = f"{sub} {shlex.quote(item)}"
        answer = session.send(text)
        assert answer, text
        assert session.state() == before, f"{text!r} changed something: {answer}"
        if index % 4 == 0:
            assert not PWNED.exists()
    everything = said_everywhere(session.emulator)
    for markup in NEVER_FROM_THE_BOT:
        assert markup not in everything, f"{markup} reached Slack unescaped"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "an unexpected error"


@pytest.mark.parametrize("text", ["backup --again '$(touch /tmp/rollback-bot-pwned)' ../../etc/passwd",
                                  "rebuild ../../etc/passwd",
                                  "restart now please", "verify '<!channel>' x", "cleanup everything",
                                  "rca now", "health check", "help me", "backup --force", "verify --again --again x"])
def test_garbage_words_to_a_step_are_refused_with_its_usage(session: Session, text: str) -> None:
    before = session.state()
    answer = session.send(text)
    assert "Usage:" in answer and "/rollback" in answer
    assert session.state() == before and not PWNED.exists()


@pytest.mark.parametrize("sub", ["status", "partial"])
def test_what_people_type_is_echoed_as_text_never_as_markup(session: Session, sub: str) -> None:
    for markup in SLACK:
        answer = session.send(f"{sub} {shlex.quote(markup)}")
        assert markup not in answer or not markup.startswith("<"), (sub, markup, answer)
        if markup.startswith("<"):
            assert "&lt;" in answer, (sub, markup, answer)  # echoed, escaped


def test_a_reason_full_of_markup_is_shown_as_text_on_the_panel_and_in_notifications(
        emulator: Emulator, sandbox: Sandbox, start_bot: Callable[..., SocketModeBot]) -> None:
    bot = start_bot()
    reason = "<!channel> <https://evil.example|click> <@U0APPROVER1> &"
    emulator.slash("casey", "incident-rollback", f"start {reason}").wait()
    panel = emulator.ws.wait_for(lambda: (i := bot.services.store.get_incident("RB-0001")) and i.panel_ts, 10, "panel")
    message = emulator.ws.message(INCIDENT, panel)
    assert message is not None
    for shown in (message["text"], str(message["blocks"])):
        assert "<!channel>" not in shown and "<https://evil.example" not in shown and "&lt;!channel&gt;" in shown
    assert "<!channel>" not in said_everywhere(emulator)


def test_hostile_words_never_reach_a_process_or_the_repository(session: Session) -> None:
    repo = git.Repo(session.sandbox.repo)
    refs = sorted(h.name for h in repo.heads)
    for item in ("$(touch /tmp/rollback-bot-pwned)", "-c core.sshCommand=touch /tmp/rollback-bot-pwned",
                 "--upload-pack=touch /tmp/rollback-bot-pwned"):
        for sub in ("revert", "revert --safe", "partial", "hotfix"):
            session.send(f"{sub} {shlex.quote(item)}")
    assert not PWNED.exists() and sorted(h.name for h in repo.heads) == refs
    assert session.state()[0] == 0


def test_the_answers_carry_the_usage_of_what_was_typed(session: Session) -> None:
    assert "/rollback restore <tenant|all>" in session.send("restore a b c").replace("&lt;", "<").replace("&gt;", ">")
    assert "/rollback status [RB-0007]" in session.send("status a b")
    assert "is not something" in session.send("comms publish")
