"""A local Slack: Web API, Socket Mode and signed HTTP delivery, for tests and `rollback-bot local`.

It refuses what Slack refuses (scopes from the app's manifest, channel membership, Block Kit limits,
rate limits, trigger ids, response_url limits, plans): see ``bot/emulator/README.md``.
"""

from bot.emulator.policy import AppManifest
from bot.emulator.ratelimit import ManualClock
from bot.emulator.server import Delivery, Emulator
from bot.emulator.webapi import Rejection
from bot.emulator.workspace import Workspace

__all__ = ["AppManifest", "Delivery", "Emulator", "ManualClock", "Rejection", "Workspace"]
