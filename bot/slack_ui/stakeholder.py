"""The stakeholder update in Slack (and as e-mail): the runbook's communication template, laid out to scan."""

from __future__ import annotations

from bot.domain.incident import Incident
from bot.domain.ports import Message
from bot.domain.updates import Update
from bot.ids import Action
from bot.slack_ui.blocks import Block, button, context, header, message, mrkdwn_obj, sections
from bot.slack_ui.escape import channel as channel_ref
from bot.slack_ui.escape import date, escape
from bot.slack_ui.render import render


def subject(update: Update) -> str:
    return render("stakeholder_subject.txt.j2", u=update)


def fields(update: Update) -> list[str]:
    """The times and statuses a reader scans first, as two-column fields (Slack shows at most ten)."""
    out = [f"*{label}*\n{date(moment, update.not_yet)}" for label, moment in update.timeline]
    if update.restored_how:
        restored = next(i for i, (label, _) in enumerate(update.timeline) if label == "System Restored")
        out[restored] += f"\n_{escape(update.restored_how)}_"
    out += [f"*Backend*\n{escape(update.backend)}", f"*Database*\n{escape(update.database)}",
            f"*Data Loss*\n{escape(update.data_loss)}"]
    if update.next_update is not None:
        out.append(f"*Next update*\nby {date(update.next_update)}")
    return out[:10]


def stakeholder_update(update: Update) -> Message:
    """The runbook's template laid out for Slack: the subject once, as the header; the timestamps and statuses
    as fields; the prose after them; who sent it. The e-mail (below) keeps the plain letter."""
    title = f"{subject(update)} ({update.headline})"
    prose = render("stakeholder.md.j2", u=update)
    blocks: list[Block] = [header(title),
                           {"type": "section", "fields": [mrkdwn_obj(f[:2000]) for f in fields(update)]},
                           *sections(prose),
                           context(f"{escape(update.signature)} · {escape(update.incident_id)}")]
    notification = (f"{title}: Backend {update.backend.split(' (')[0]} · Database {update.database.split(' (')[0]}"
                    f" · Data loss {update.data_loss.split(' —')[0]}")
    return message(escape(notification), blocks)


def email(update: Update) -> tuple[str, str]:
    return f"{subject(update)} ({update.headline})", render("stakeholder.txt.j2", u=update)


def comms_preview(incident: Incident, update: Update, stakeholder_channel: str | None, preview: str) -> Message:
    """``preview`` (the domain's id of this preview) is what *Post now* sends back: it posts at most once."""
    where = channel_ref(stakeholder_channel) if stakeholder_channel else \
        "no stakeholder channel (set `slack.stakeholder_channel`)"
    body = stakeholder_update(update)
    blocks: list[Block] = [context(f"Preview of the next stakeholder update for {where}:"), *body.blocks,
                           {"type": "actions", "elements": [
                               button("Post now", Action.COMMS_POST, preview, style="primary"),
                               button("Edit details", Action.COMMS_EDIT, incident.id)]}]
    return message(f"Preview: {subject(update)}", blocks)
