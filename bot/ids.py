"""Every Slack identifier the bot uses, in one place (the subcommands' own words are in :mod:`bot.commands`).

Handlers register listeners with these; renderers put them in Block Kit; a test checks the manifest.
"""

from __future__ import annotations

from enum import StrEnum

SLASH_COMMAND = "/rollback"


class Action(StrEnum):
    """action_id of every interactive element."""

    STATUS = "rollback_status"
    OPEN_CHECKLISTS = "rollback_open_checklists"  # a link button to the checklists message
    STEP = "rollback_step"  # one button per step: "rollback_step:<step>"
    CLEANUP = "rollback_cleanup"
    HELP = "rollback_help"
    CRITERION = "rollback_criterion"
    CHECKLIST = "rollback_checklist"
    SUCCESS = "rollback_success"  # the runbook's success criteria people confirm
    COMMS_POST = "rollback_comms_post"
    COMMS_EDIT = "rollback_comms_edit"
    RCA = "rollback_rca"
    CLOSE = "rollback_close"
    START_FROM_ALERT = "rollback_start_from_alert"
    ALTERNATIVES = "rollback_alternatives"
    HOTFIX_PUSH = "rollback_hotfix_push"
    RUN_REST = "rollback_run_rest"  # the autopilot: run the remaining steps one after the other
    PAUSE = "rollback_pause"  # stop the autopilot after the running step
    FOLLOWUP_DONE = "rollback_followup_done"  # a follow-up reminder's "Mark done": value "<incident id>:<n>"


class View(StrEnum):
    """callback_id of the modals."""

    COMMS_EDIT = "rollback_view_comms"
    RCA = "rollback_view_rca"


class Block(StrEnum):
    """block_id of blocks whose state the bot reads back."""

    PANEL_HEADER = "panel_header"
    NEXT = "panel_next"
    CHECKLISTS = "checklists"  # the checklists message's header: "checklists:<incident id>"
    CRITERIA = "panel_criteria"
    CHECKLIST = "panel_checklist"
    SUCCESS = "panel_success"
    STEPS = "panel_steps"
    STEP_BUTTONS = "panel_step_buttons"
    ACTIONS = "panel_actions"
    CLOSE = "panel_close"


class Event(StrEnum):
    """Events API event types the bot subscribes to."""

    APP_MENTION = "app_mention"
    REACTION_ADDED = "reaction_added"
    REACTION_REMOVED = "reaction_removed"
