"""What listeners receive: the domain's feature services, the settings they render with, and where their work after
the ack runs. Nothing else."""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import Settings
from bot.domain.api import Features
from handlers.acks import AcksFirst


@dataclass(frozen=True)
class Ctx:
    features: Features  # the domain services listeners call
    settings: Settings
    acks: AcksFirst  # where the work after an ack goes: it waits while other acks are due
