"""The stakeholder update in Slack (and as e-mail): the runbook's communication template, laid out to scan."""

from __future__ import annotations

from bot.domain.incident import Incident
from bot.domain.ports import Message
from bot.domain.updates import Update
from bot.ids import Action
from bot.slack_ui.blocks import Block, button, context, header, message, sections
from bot.slack_ui.escape import channel as channel_ref
from bot.slack_ui.render import render


def subject(update: Update) -> str:
    return render("stakeholder_subject.txt.j2", u=update)


def stakeholder_update(update: Update) -> Message:
    title = subject(update)
    text = render("stakeholder.md.j2", u=update, subject=title)
    return message(f"{title} ({update.headline})\n{text}", [header(f"{title} ({update.headline})"), *sections(text)])


def email(update: Update) -> tuple[str, str]:
    return f"{subject(update)} ({update.headline})", render("stakeholder.txt.j2", u=update)


def comms_preview(incident: Incident, update: Update, stakeholder_channel: str | None) -> Message:
    where = channel_ref(stakeholder_channel) if stakeholder_channel else \
        "no stakeholder channel (set `slack.stakeholder_channel`)"
    body = stakeholder_update(update)
    blocks: list[Block] = [context(f"Preview of the next stakeholder update for {where}:"), *body.blocks,
                           {"type": "actions", "elements": [
                               button("Post now", Action.COMMS_POST, incident.id, style="primary"),
                               button("Edit details", Action.COMMS_EDIT, incident.id)]}]
    return message(f"Preview: {subject(update)}", blocks)
