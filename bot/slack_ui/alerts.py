"""Alerts for the alerts channel: a check changed state. A failing check that meets the runbook's "When to
Rollback" criteria gets a Start rollback button per criterion, named after it, unless a rollback is already
active, in which case the alert says which one and links to it."""

from __future__ import annotations

import json
from typing import Any

from bot.domain.checklists import CRITERIA_TEXT
from bot.domain.checks import ActiveRollback, CheckResult, CheckState, CheckStatus
from bot.domain.ports import Message
from bot.ids import Action
from bot.slack_ui.blocks import Block, button, context, message, sections
from bot.slack_ui.escape import channel, date, escape, link, person

BUTTON_PREFIX = "Start rollback: "
START_HINT = "Start one below (you become its commander), or look first."


def alert(state: CheckState, result: CheckResult, criteria: list[str], failures_to_alert: int,
          active: ActiveRollback | None = None, notify: list[str] | None = None) -> Message:
    latency = f" in {result.latency_ms:.0f} ms" if result.latency_ms is not None else ""
    if state.status is not CheckStatus.FAILING:
        text = f"🟢 *{escape(state.id)}* is healthy again: {escape(result.detail)}{latency}"
        return message(text, sections(text))
    text = (f"🔴 *{escape(state.id)}* is failing: {failures_to_alert} checks in a row, since "
            f"{date(state.first_failure_at)}. Last: {escape(result.detail)}{latency}")
    if notify and criteria and active is None:  # in the text itself, so Slack notifies them
        text += f"\n{' '.join(person(p) for p in notify)}: the runbook's rollback criteria are met. {START_HINT}"
    blocks: list[Block] = sections(text)
    if not criteria:
        return message(text, blocks)
    met = [CRITERIA_TEXT.get(criterion, criterion) for criterion in criteria]
    blocks.append(context("Rollback criteria met (the runbook's *When to Rollback*): "
                          + "; ".join(f"*{escape(m)}*" for m in met)))
    if active is not None:
        blocks.append(context(f"🚨 {link(active.link, active.incident_id)} is already active in "
                              f"{channel(active.channel)} (commander {person(active.commander)}): no second "
                              "rollback can start; tick these criteria on its control panel."))
        return message(text, blocks)
    buttons: list[Block] = []
    for criterion, meets in zip(criteria, met, strict=True):
        value = json.dumps({"criterion": criterion, "check": state.id,
                            "detected": (state.first_failure_at or result.at).isoformat()})
        action_id = f"{Action.START_FROM_ALERT}:{len(buttons)}" if buttons else Action.START_FROM_ALERT
        buttons.append(button(BUTTON_PREFIX + meets, action_id, value, style="danger"))
    blocks.append({"type": "actions", "elements": buttons[:25]})
    return message(text, blocks)


def alert_used(alert: dict[str, Any], incident_id: str, panel_link: str | None, actor: str,
               incident_channel: str) -> Message:
    """The alert once someone started a rollback from it, updated in place for everyone: no more Start buttons
    (a second press could only be refused), and where the rollback runs instead."""
    def settled(said: str) -> str:  # 🚨 instead of 🔴, and no more "start one below"
        return "\n".join(line for line in said.replace("🔴", "🚨", 1).split("\n") if not line.endswith(START_HINT))

    text = settled(str(alert.get("text") or ""))
    blocks = [b for b in alert.get("blocks") or [] if b.get("type") != "actions"]
    if blocks and blocks[0].get("type") == "section":
        first = dict(blocks[0], text=dict(blocks[0]["text"]))
        first["text"]["text"] = settled(str(first["text"]["text"]))
        blocks[0] = first
    blocks.append(context(f"🚨 {link(panel_link, incident_id)} started by {person(actor)} in "
                          f"{channel(incident_channel)}: follow the rollback there."))
    return message(f"{text} — {incident_id} started", blocks)
