"""A local Slack: Web API, Socket Mode and signed HTTP delivery, for tests and `rollback-bot local`."""

from bot.emulator.server import Delivery, Emulator
from bot.emulator.workspace import Workspace

__all__ = ["Delivery", "Emulator", "Workspace"]
