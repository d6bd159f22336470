"""Domain errors. Each one carries a message meant for the person who acted.

Handlers never catch these: one Bolt error handler turns them into a private reply.
"""

from __future__ import annotations


def quote(user_text: str, limit: int = 40) -> str:
    """Echo what someone typed inside an error safely: shortened, and Slack's & < > escaped."""
    short = user_text if len(user_text) <= limit else user_text[:limit] + "…"
    return short.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("`", "'")


class BotError(Exception):
    """An error whose message is safe and useful to show to the user, privately."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def user_text(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"


class ConfigError(BotError):
    """The configuration is invalid; raised at start-up."""


class BadInput(BotError):
    """The user typed something we cannot act on. The hint says what to type instead."""


class NotAllowed(BotError):
    """The user or channel may not do this."""


class Conflict(BotError):
    """The action clashes with the current state (another incident, another step running...)."""

    def __init__(self, message: str, *, hint: str | None = None, link: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.link = link


class NotFound(BotError):
    """The thing asked for does not exist."""


class StaleState(Exception):
    """A conditional write lost: the record changed since it was read. Internal; callers retry or refuse."""


class StepFailed(BotError):
    """A runbook step failed; the message says why."""


class ApprovalExpired(BotError):
    """An approval came too late."""
