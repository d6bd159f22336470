"""The composition root: builds the one dependency bundle, the services, the scheduler and the Bolt app.

It sits outside the domain package; handlers receive only the feature services (``bot.domain.api.Features``).
"""

from bot.app.bots import HttpBot, SocketModeBot, build_app, http_bot, socket_mode_bot
from bot.app.services import Services, build_services

__all__ = ["HttpBot", "Services", "SocketModeBot", "build_app", "build_services", "http_bot", "socket_mode_bot"]
