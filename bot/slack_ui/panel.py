"""The control panel: posted by `start`, updated in place as the incident changes."""

from __future__ import annotations

from typing import Any

from bot.domain.checklists import PRE_ROLLBACK_CHECKLIST, SUCCESS_CRITERIA, Item, criteria_groups
from bot.domain.incident import MILESTONE_LABELS, Incident
from bot.domain.ports import Message
from bot.domain.runs import StepRun
from bot.domain.updates import database_status
from bot.ids import SLASH_COMMAND, Action, Block
from bot.runbook import RUNBOOK_ORDER, STEPS
from bot.slack_ui.blocks import button, confirm, context, divider, header, message, mrkdwn_obj, option, plain_obj
from bot.slack_ui.escape import escape
from bot.slack_ui.render import render

Blocks = list[dict[str, Any]]


def _option(item: Item) -> dict[str, Any]:
    return option(item.text, item.key)


def _checkboxes(action_id: str, items: list[Item], ticked: set[str]) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "checkboxes", "action_id": action_id, "options": [_option(i) for i in items]}
    chosen = [_option(i) for i in items if i.key in ticked]
    if chosen:
        element["initial_options"] = chosen
    return element


def database_line(incident: Incident) -> str:
    database, data_loss, _ = database_status(incident)
    return database + ("" if data_loss == "NO" else f" — data loss: {data_loss}")


def panel(incident: Incident, runs: list[StepRun], target: str) -> Message:
    latest: dict[str, StepRun] = {run.step.value: run for run in runs}
    state = "active" if incident.active else "closed"
    title = f"🚨 Rollback {incident.id} — {state}"
    blocks: Blocks = [
        header(title, Block.PANEL_HEADER),
        {"type": "section", "text": mrkdwn_obj(render("panel.md.j2", incident=incident,
                                                      database=database_line(incident),
                                                      milestones=list(MILESTONE_LABELS.items())))},
        divider(),
        {"type": "section", "text": mrkdwn_obj("*When to rollback* — tick what you see:")},
    ]
    elements = [_checkboxes(f"{Action.CRITERION}:{index}", items, set(incident.criteria))
                for index, (_group, items) in enumerate(criteria_groups())]
    blocks.append({"type": "actions", "block_id": Block.CRITERIA, "elements": elements})
    steps = [STEPS[name] for name in RUNBOOK_ORDER]
    blocks.append({"type": "section", "block_id": Block.STEPS, "text": mrkdwn_obj(
        render("steps.md.j2", steps=steps, latest=latest))})
    if incident.active:
        danger = button("DB cleanup (danger zone)", Action.CLEANUP, incident.id, style="danger", confirm=confirm(
            "Prepare the database cleanup?", "This computes a dry run per tenant and asks a second approver. "
            "Nothing is deleted until another approver reacts.", "Dry run and ask", danger=True))
        alternatives = {"type": "static_select", "action_id": Action.ALTERNATIVES,
                        "placeholder": plain_obj("Alternatives…"),
                        "options": [option(text, value) for value, text in (
                            ("flag", "Disable a feature flag"), ("partial", "Partial rollback (one file)"),
                            ("safe_revert", "Safe revert (git revert)"), ("hotfix", "Forward fix (hotfix branch)"))]}
        revert_dialog = confirm("Revert the code?", f"git reset --hard {escape(target)} in {escape(incident.target)}. "
                                "The bot shows the commits it drops and stashes uncommitted work first.", "Revert",
                                danger=True)
        step_buttons = []
        for step in steps:
            revert = step.name.value == "revert"
            step_buttons.append(button(step.title, f"{Action.STEP}:{step.name.value}", incident.id,
                                       style="danger" if revert else None, confirm=revert_dialog if revert else None))
        blocks.append({"type": "actions", "block_id": Block.STEP_BUTTONS,
                       "elements": [*step_buttons, danger, alternatives]})
    blocks.append({"type": "section", "block_id": Block.CHECKLIST, "text": mrkdwn_obj(
        render("checklist.md.j2", incident=incident, items=PRE_ROLLBACK_CHECKLIST))})
    manual = [item for item in PRE_ROLLBACK_CHECKLIST if not item.automatic]
    buttons: Blocks = [button("Status", Action.STATUS, incident.id), button("Help", Action.HELP, incident.id)]
    if incident.active:
        buttons += [button("Stakeholder details", Action.COMMS_EDIT, incident.id),
                    button("Root cause", Action.RCA, incident.id)]
    blocks.append({"type": "actions", "block_id": Block.ACTIONS,
                   "elements": [_checkboxes(Action.CHECKLIST, manual, set(incident.checklist)), *buttons]
                   if incident.active else buttons})
    blocks.append({"type": "section", "block_id": Block.SUCCESS, "text": mrkdwn_obj(
        render("success.md.j2", incident=incident, items=SUCCESS_CRITERIA))})
    if incident.active:
        manual_success = [item for item in SUCCESS_CRITERIA if not item.automatic]
        close = button("Close incident", Action.CLOSE, incident.id, confirm=confirm(
            "Close the incident?", "The bot checks the success criteria first and refuses while one fails.",
            "Check and close"))
        blocks.append({"type": "actions", "block_id": Block.CLOSE,
                       "elements": [_checkboxes(Action.SUCCESS, manual_success, set(incident.success)), close]})
    blocks.append(context(f"Steps: `{SLASH_COMMAND} help` · details of each step go in this thread"))
    notification = f"{title}: {escape(incident.reason)}" if incident.reason else title
    return message(notification, blocks)
