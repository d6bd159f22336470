"""The presenter: the only package that turns domain data into Block Kit and Slack markup.

:class:`SlackPresenter` implements the domain's ``Presenter`` port; handlers also use the module
functions directly for their replies (status, help, forms, errors). Every text goes through one escaping
function (:mod:`bot.slack_ui.escape`); templates in ``templates/`` keep the runbook's prose.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from bot.audit import AuditEvent
from bot.config import RunbookConfig
from bot.domain.approvals import Approval, DangerPlan, TenantResult
from bot.domain.checks import ActiveRollback, CheckResult, CheckState, CheckView, WatchVerdict
from bot.domain.incident import Incident, Rca
from bot.domain.ports import Message, Upload, View
from bot.domain.runs import StepRun
from bot.domain.updates import Update
from bot.slack_ui import alerts, approval, checklists, documents, forms, health, notes, panel, stakeholder
from bot.text import Rich


class SlackPresenter:
    def __init__(self, config: RunbookConfig, approver_mentions: Callable[[], list[str]]) -> None:
        self.config = config
        self.approver_mentions = approver_mentions

    def panel(self, incident: Incident, runs: list[StepRun]) -> Message:
        return panel.panel(incident, runs, self.config.target.rollback_target)

    def checklists(self, incident: Incident) -> Message:
        return checklists.checklists(incident)

    def kickoff(self, incident: Incident, contacts: list[str]) -> Message:
        return notes.kickoff(incident, contacts)

    def note(self, text: Rich) -> Message:
        return notes.note(text)

    def private(self, text: Rich) -> Message:
        return notes.private(text)

    def step(self, title: str, actor: str, plan: Rich, lines: list[Rich], state: str, text: Rich,
             details: list[Rich]) -> Message:
        return notes.step(title, actor, plan, lines, state, text, details)

    def step_interrupted(self, name: str, who: str) -> Message:
        return notes.step_interrupted(name, who)

    def approval_request(self, item: Approval, plan: DangerPlan, results: list[TenantResult]) -> Message:
        cfg = self.config.cleanup
        from bot.slack_ui.escape import person

        return approval.approval_request(item, plan, results, collection=cfg.collection, emoji=cfg.approve_emoji,
                                         reject=cfg.reject_emoji, ttl_minutes=cfg.approval_ttl_minutes,
                                         required=cfg.approvals_required, delay_s=cfg.start_delay_s,
                                         approvers=[person(m) for m in self.approver_mentions()])

    def danger_progress(self, item: Approval, done: int, total: int, last: str | None) -> Message:
        return approval.danger_progress(item, done, total, last)

    def danger_outcome(self, item: Approval, plan: DangerPlan, results: list[TenantResult]) -> Message:
        return approval.danger_outcome(item, plan, results)

    def stakeholder_update(self, update: Update) -> Message:
        return stakeholder.stakeholder_update(update)

    def email(self, update: Update) -> tuple[str, str]:
        return stakeholder.email(update)

    def alert(self, state: CheckState, result: CheckResult, criteria: list[str],
              active: ActiveRollback | None = None) -> Message:
        return alerts.alert(state, result, criteria, self.config.monitor.failures_to_alert, active)

    def health_chart(self, checks: list[CheckView], now: datetime, window: timedelta) -> Upload:
        return health.health_chart(checks, now, window)

    def watch_verdict(self, verdict: WatchVerdict) -> Message:
        return notes.watch_verdict(verdict)

    def rca(self, record: Rca) -> Message:
        return notes.rca(record)

    def follow_ups(self, incident: Incident, items: list[str]) -> Message:
        return notes.follow_ups(incident, items)

    def hotfix_offer(self, branch: str, head: str, remote: str) -> Message:
        return notes.hotfix_offer(branch, head, remote)

    def comms_form(self, incident: Incident) -> View:
        return forms.comms_edit_view(incident)

    def rca_form(self, incident: Incident) -> View:
        return forms.rca_view(incident)

    def postmortem(self, incident: Incident, runs: list[StepRun], approvals: list[Approval],
                   events: list[AuditEvent], names: dict[str, str]) -> str:
        return documents.postmortem(incident, runs, approvals, events, names)


__all__ = ["SlackPresenter"]
