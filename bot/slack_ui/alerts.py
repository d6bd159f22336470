"""Alerts for the alerts channel: a check changed state; when it meets a rollback criterion, offer to start."""

from __future__ import annotations

import json

from bot.domain.checklists import CRITERIA_TEXT
from bot.domain.checks import CheckResult, CheckState, CheckStatus
from bot.domain.ports import Message
from bot.ids import Action
from bot.slack_ui.blocks import Block, button, context, message, sections
from bot.slack_ui.escape import date, escape


def alert(state: CheckState, result: CheckResult, criteria: list[str], failures_to_alert: int) -> Message:
    latency = f" in {result.latency_ms:.0f} ms" if result.latency_ms is not None else ""
    if state.status is not CheckStatus.FAILING:
        text = f"🟢 *{escape(state.id)}* is healthy again: {escape(result.detail)}{latency}"
        return message(text, sections(text))
    text = (f"🔴 *{escape(state.id)}* is failing: {failures_to_alert} checks in a row, since "
            f"{date(state.first_failure_at)}. Last: {escape(result.detail)}{latency}")
    blocks: list[Block] = sections(text)
    buttons: list[Block] = []
    for criterion in criteria:
        meets = CRITERIA_TEXT.get(criterion, criterion)
        blocks.append(context(f"Rollback criterion met: *{escape(meets)}*"))
        value = json.dumps({"criterion": criterion, "check": state.id,
                            "detected": (state.first_failure_at or result.at).isoformat()})
        label = "Start rollback" if len(criteria) == 1 else f"Start rollback: {meets}"
        buttons.append(button(label, f"{Action.START_FROM_ALERT}:{len(buttons)}" if buttons else
                              Action.START_FROM_ALERT, value, style="danger"))
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    return message(text, blocks)
