"""A local Slack: Web API, Socket Mode and signed HTTP delivery, for tests and `rollback-bot local`.

It refuses what Slack refuses (scopes from the app's manifest, channel membership, Block Kit limits,
rate limits, trigger ids, response_url limits, plans): see ``bot/dev/emulator/README.md``.
"""

from bot.dev.emulator.policy import AppManifest
from bot.dev.emulator.ratelimit import ManualClock
from bot.dev.emulator.server import Delivery, Emulator
from bot.dev.emulator.webapi import Rejection
from bot.dev.emulator.workspace import Workspace

__all__ = ["AppManifest", "Delivery", "Emulator", "ManualClock", "Rejection", "Workspace"]
