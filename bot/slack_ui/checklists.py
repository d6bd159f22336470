"""The checklists message: the runbook's *When to Rollback* criteria under their group names, the
*Pre-Rollback Checklist* and the *Rollback Success Criteria*, each in one place, as the incident thread's
first reply. Ticking a box records who and when; the panel's Next line follows. The panel links here."""

from __future__ import annotations

from typing import Any

from bot.domain.checklists import PRE_ROLLBACK_CHECKLIST, SUCCESS_CRITERIA, Item, criteria_groups
from bot.domain.incident import Incident, Tick
from bot.domain.ports import Message
from bot.ids import Action, Block
from bot.slack_ui.blocks import context, divider, header, message, mrkdwn_obj, option
from bot.slack_ui.escape import escape, person
from bot.slack_ui.render import render

Blocks = list[dict[str, Any]]


def _checkboxes(action_id: str, items: list[Item], ticked: set[str]) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "checkboxes", "action_id": action_id,
                               "options": [option(i.text, i.key) for i in items]}
    chosen = [option(i.text, i.key) for i in items if i.key in ticked]
    if chosen:
        element["initial_options"] = chosen
    return element


def _who(tick: Tick | None) -> str:
    return f" — {person(tick.by)}" if tick else ""


def checklists(incident: Incident) -> Message:
    title = f"📋 Checklists — {incident.id}"
    blocks: Blocks = [header(title, f"{Block.CHECKLISTS}:{incident.id}"),
                      {"type": "section", "text": mrkdwn_obj("*When to rollback* — the runbook's criteria; tick what "
                                                             "you see (any one is reason enough):")}]
    for index, (group, items) in enumerate(criteria_groups()):
        if incident.active:
            blocks.append(context(f"*{escape(group)}*"))
            blocks.append({"type": "actions", "block_id": f"{Block.CRITERIA}:{index}",
                           "elements": [_checkboxes(f"{Action.CRITERION}:{index}", items, set(incident.criteria))]})
        else:
            lines = [f"{'☑️' if i.key in incident.criteria else '▫️'} {escape(i.text)}"
                     f"{_who(incident.criteria.get(i.key))}" for i in items]
            blocks.append({"type": "section", "text": mrkdwn_obj(f"*{escape(group)}*\n" + "\n".join(lines))})
    blocks.append(divider())
    blocks.append({"type": "section", "block_id": Block.CHECKLIST, "text": mrkdwn_obj(
        render("checklist.md.j2", incident=incident,
               items=[i for i in PRE_ROLLBACK_CHECKLIST if i.automatic or not incident.active]))})
    manual = [i for i in PRE_ROLLBACK_CHECKLIST if not i.automatic]
    if incident.active and manual:
        blocks.append({"type": "actions", "block_id": f"{Block.CHECKLIST}:people",
                       "elements": [_checkboxes(Action.CHECKLIST, manual, set(incident.checklist))]})
    blocks.append(divider())
    automatic = [i for i in SUCCESS_CRITERIA if i.automatic]
    blocks.append({"type": "section", "block_id": Block.SUCCESS, "text": mrkdwn_obj(
        render("success.md.j2", incident=incident, items=automatic if incident.active else SUCCESS_CRITERIA))})
    if incident.active:
        people = [i for i in SUCCESS_CRITERIA if not i.automatic]
        blocks.append(context("*People confirm:*"))
        blocks.append({"type": "actions", "block_id": f"{Block.SUCCESS}:people",
                       "elements": [_checkboxes(Action.SUCCESS, people, set(incident.success))]})
    blocks.append(context("Every tick is recorded with who and when, in the timeline and the postmortem."))
    return message(title, blocks)
