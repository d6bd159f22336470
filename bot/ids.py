"""Every Slack identifier the bot uses, in one place.

Handlers register listeners with these; renderers put them in Block Kit; a test checks the manifest.
"""

from __future__ import annotations

from enum import StrEnum

SLASH_COMMAND = "/rollback"


class Subcommand(StrEnum):
    START = "start"
    STATUS = "status"
    HELP = "help"


class Action(StrEnum):
    """action_id of every interactive element."""

    STATUS = "rollback_status"
    HELP = "rollback_help"
    CRITERION = "rollback_criterion"
    CHECKLIST = "rollback_checklist"


class Block(StrEnum):
    """block_id of blocks whose state the bot reads back."""

    PANEL_HEADER = "panel_header"
    CRITERIA = "panel_criteria"
    CHECKLIST = "panel_checklist"
    ACTIONS = "panel_actions"


class Event(StrEnum):
    """Events API event types the bot subscribes to."""

    APP_MENTION = "app_mention"
