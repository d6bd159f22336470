"""Block Kit for every message the bot posts. Text comes from templates/, ids from bot.ids."""

from __future__ import annotations

from typing import Any

from bot.comms import render
from bot.ids import SLASH_COMMAND, Action, Block
from bot.incident import (
    MILESTONE_LABELS,
    PRE_ROLLBACK_CHECKLIST,
    ROLLBACK_CRITERIA,
    Incident,
    Item,
    StepRun,
)
from bot.runbook import STEPS, Step

Blocks = list[dict[str, Any]]


def _text(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _option(item: Item) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": item.text[:75]}, "value": item.key}


def _groups() -> list[tuple[str, list[Item]]]:
    groups: dict[str, list[Item]] = {}
    for item in ROLLBACK_CRITERIA:
        groups.setdefault(item.group, []).append(item)
    return list(groups.items())


def _step_button(step: Step, incident: Incident, target: str) -> dict[str, Any]:
    button: dict[str, Any] = {"type": "button", "action_id": f"{Action.STEP}:{step.name}",
                              "text": {"type": "plain_text", "text": step.title}, "value": incident.id}
    if step.name == "revert":
        button["style"] = "danger"
        button["confirm"] = {
            "title": {"type": "plain_text", "text": "Revert the code?"},
            "text": {"type": "mrkdwn", "text": f"`git reset --hard {target}` in `{incident.target}`. The bot shows the "
                                               "commits it drops and stashes uncommitted work first."},
            "confirm": {"type": "plain_text", "text": "Revert"},
            "deny": {"type": "plain_text", "text": "Cancel"},
            "style": "danger",
        }
    return button


def panel(incident: Incident, runs: list[StepRun] | None = None, target: str = "the rollback target"
          ) -> tuple[str, Blocks]:
    """The control panel: posted by `start`, updated in place as the incident changes."""
    latest: dict[str, StepRun] = {}
    for run in runs or []:
        latest[run.step] = run
    state = "active" if incident.active else "closed"
    title = f"🚨 Rollback {incident.id} — {state}"
    blocks: Blocks = [
        {"type": "header", "block_id": Block.PANEL_HEADER, "text": {"type": "plain_text", "text": title}},
        {"type": "section", "text": _text(render("panel.md.j2", incident=incident,
                                                 milestones=list(MILESTONE_LABELS.items())))},
        {"type": "divider"},
        {"type": "section", "text": _text("*When to rollback* — tick what you see:")},
    ]
    criteria_elements = []
    for index, (group, items) in enumerate(_groups()):
        element: dict[str, Any] = {
            "type": "checkboxes",
            "action_id": f"{Action.CRITERION}:{index}",
            "options": [_option(i) for i in items],
        }
        ticked = [_option(i) for i in items if i.key in incident.criteria]
        if ticked:
            element["initial_options"] = ticked
        criteria_elements.append(element)
        del group
    blocks.append({"type": "actions", "block_id": Block.CRITERIA, "elements": criteria_elements})
    blocks.append({"type": "section", "block_id": Block.STEPS, "text": _text(
        render("steps.md.j2", steps=list(STEPS.values()), latest=latest))})
    if incident.active:
        danger = {
            "type": "button", "action_id": Action.CLEANUP, "style": "danger", "value": incident.id,
            "text": {"type": "plain_text", "text": "DB cleanup (danger zone)"},
            "confirm": {
                "title": {"type": "plain_text", "text": "Prepare the database cleanup?"},
                "text": {"type": "mrkdwn", "text": "This computes a dry run per tenant and asks a second approver. "
                                                   "Nothing is deleted until another approver reacts."},
                "confirm": {"type": "plain_text", "text": "Dry run and ask"},
                "deny": {"type": "plain_text", "text": "Cancel"},
                "style": "danger",
            },
        }
        blocks.append({"type": "actions", "block_id": Block.STEP_BUTTONS,
                       "elements": [*(_step_button(step, incident, target) for step in STEPS.values()), danger]})
    blocks.append({"type": "section", "block_id": Block.CHECKLIST, "text": _text(
        render("checklist.md.j2", incident=incident, items=PRE_ROLLBACK_CHECKLIST))})
    manual = [item for item in PRE_ROLLBACK_CHECKLIST if not item.automatic]
    checklist: dict[str, Any] = {
        "type": "checkboxes", "action_id": Action.CHECKLIST, "options": [_option(i) for i in manual],
    }
    done = [_option(i) for i in manual if i.key in incident.checklist]
    if done:
        checklist["initial_options"] = done
    buttons: list[dict[str, Any]] = [
        {"type": "button", "action_id": Action.STATUS, "text": {"type": "plain_text", "text": "Status"},
         "value": incident.id},
        {"type": "button", "action_id": Action.HELP, "text": {"type": "plain_text", "text": "Help"},
         "value": incident.id},
    ]
    blocks.append({"type": "actions", "block_id": Block.ACTIONS,
                   "elements": [checklist, *buttons] if incident.active else buttons})
    blocks.append({"type": "context", "elements": [_text(
        f"Steps: `{SLASH_COMMAND} help` · details of each step go in this thread")]})
    return f"{title}: {incident.reason}" if incident.reason else title, blocks


def section(text: str) -> Blocks:
    return [{"type": "section", "text": _text(text[:2900])}]


def status(incident: Incident, panel_link: str | None) -> tuple[str, Blocks]:
    criteria = [item.text for item in ROLLBACK_CRITERIA if item.key in incident.criteria]
    text = render("status.md.j2", incident=incident, criteria=criteria, panel_link=panel_link)
    return f"{incident.id} status", section(text)


def error(message: str) -> tuple[str, Blocks]:
    text = f":warning: {message}"  # BotError messages escape what users typed (bot.errors.quote)
    return text, section(text)
