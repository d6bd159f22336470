"""What listeners receive: the narrow domain interface and the settings they render with. Nothing else."""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import Settings
from bot.domain.api import RollbackApi


@dataclass(frozen=True)
class Ctx:
    api: RollbackApi
    settings: Settings
