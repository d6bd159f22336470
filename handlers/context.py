"""What listeners receive: the domain's feature services, the settings they render with, and where their work after
the ack runs. Nothing else."""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import Settings
from bot.domain.api import Features, Incident
from bot.errors import BotError
from handlers.acks import AcksFirst


@dataclass(frozen=True)
class Ctx:
    features: Features  # the domain services listeners call
    settings: Settings
    acks: AcksFirst  # where the work after an ack goes: it waits while other acks are due


def incident_here(ctx: Ctx, user: str, channel: str | None) -> Incident | None:
    """The active incident in ``channel`` if ``user`` may read it (for `help`'s "next" line); None otherwise."""
    try:
        return ctx.features.incidents.status(user, channel or "", None).incident
    except BotError:  # not an incident channel, or no incident in it: the help alone
        return None
