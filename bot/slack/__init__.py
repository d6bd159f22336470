"""Slack's Web API side of the domain's ports: the Messenger and the Directory."""

from bot.slack.client import web_client
from bot.slack.directory import SlackDirectory
from bot.slack.messenger import SlackMessenger

__all__ = ["SlackDirectory", "SlackMessenger", "web_client"]
