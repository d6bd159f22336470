"""Documents that leave Slack's markup behind: the postmortem (Markdown, saved and uploaded)."""

from __future__ import annotations

from bot.audit import AuditEvent
from bot.domain.approvals import Approval
from bot.domain.checklists import PREVENTION_CHECKLIST, RCA_CAUSES, SUCCESS_CRITERIA
from bot.domain.incident import Incident, Milestone
from bot.domain.lifecycle import FIX_NAMES
from bot.domain.runs import StepRun
from bot.domain.updates import RESTORED_HOW, database_status
from bot.slack_ui.escape import IDS_IN_TEXT
from bot.slack_ui.render import environment


def postmortem(incident: Incident, runs: list[StepRun], approvals: list[Approval], events: list[AuditEvent],
               names: dict[str, str]) -> str:
    def name(user: str | None) -> str:
        if not user:
            return "unknown"
        if user == "bot":
            return "the bot"
        return f"{names[user]} ({user})" if user in names else user

    database, data_loss, _ = database_status(incident)
    env = environment().overlay()
    env.filters["name"] = name
    env.filters["names"] = lambda text: IDS_IN_TEXT.sub(lambda m: name(m.group(0)), str(text))  # recorded lines
    return env.get_template("postmortem.md.j2").render(
                           incident=incident, runs=runs, approvals=approvals, events=events, causes=RCA_CAUSES,
                           criteria=SUCCESS_CRITERIA, prevention=PREVENTION_CHECKLIST, database=database,
                           data_loss=data_loss,
                           restored_how=RESTORED_HOW.get(incident.restored_by) if incident.restored_by else "",
                           milestones=[(incident.label(m), incident.milestones.get(m)) for m in Milestone],
                           fix=FIX_NAMES[fix] if (fix := incident.lifecycle.restored_with) else None,
                           ).strip() + "\n"
