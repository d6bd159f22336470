"""Domain errors. Each one carries a message meant for the person who acted, as text data.

Listeners never catch these: one Bolt error handler turns them into a private reply, rendered (and
escaped) by the presenter.
"""

from __future__ import annotations

from bot.text import Code, Part, Rich, rich

MAX_ECHO = 60


def echo(user_text: str, limit: int = MAX_ECHO) -> Code:
    """What someone typed, shortened, as a code span (the presenter escapes it)."""
    short = user_text if len(user_text) <= limit else user_text[:limit] + "…"
    return Code(short)


class BotError(Exception):
    """An error whose message is safe and useful to show to the user, privately."""

    def __init__(self, message: str | Rich, *, hint: str | Rich | None = None) -> None:
        self.message: Rich = rich(message) if isinstance(message, tuple) else (message,)
        self.hint: Rich | None = None if hint is None else (rich(hint) if isinstance(hint, tuple) else (hint,))
        super().__init__(self.plain())

    def user_text(self) -> Rich:
        if self.hint is None:
            return self.message
        newline: Part = "\n"
        return rich(self.message, newline, self.hint)

    def plain(self) -> str:
        from bot.text import plain

        return plain(self.message) + ("" if self.hint is None else " — " + plain(self.hint))


class ConfigError(BotError):
    """The configuration is invalid; raised at start-up."""


class BadInput(BotError):
    """The user typed something we cannot act on. The hint says what to type instead."""


class NotAllowed(BotError):
    """The user or channel may not do this."""


class Conflict(BotError):
    """The action clashes with the current state (another incident, another step running...)."""

    def __init__(self, message: str | Rich, *, hint: str | Rich | None = None, link: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.link = link


class NotFound(BotError):
    """The thing asked for does not exist."""


class StaleState(Exception):
    """A conditional write lost: the record changed since it was read. Internal; callers retry or refuse."""


class StepFailed(BotError):
    """A runbook step failed; the message says why."""
