"""The presenter: the only package that turns domain data into Block Kit and Slack markup.

:class:`SlackPresenter` implements the domain's ``Presenter`` port; handlers also use the module
functions directly for their replies (status, help, forms, errors). Every text goes through one escaping
function (:mod:`bot.slack_ui.escape`); templates in ``templates/`` keep the runbook's prose.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.config import RunbookConfig
from bot.domain.approvals import Approval, DangerPlan, TenantResult
from bot.domain.checks import ActiveRollback, CheckResult, CheckState
from bot.domain.incident import Incident
from bot.domain.ports import Message
from bot.domain.runs import StepRun
from bot.slack_ui import alerts, approval, checklists, checks, documents, forms, notes, panel, stakeholder
from bot.slack_ui.escape import person


class SlackPresenter:
    """The domain's ``Presenter`` port. Most renderers need nothing but their arguments, so the port's methods
    *are* the module functions (bound below, not wrapped); the few that read the configuration or the
    approvers' group bind those here."""

    def __init__(self, config: RunbookConfig, approver_mentions: Callable[[], list[str]]) -> None:
        self.config = config
        self.approver_mentions = approver_mentions

    checklists = staticmethod(checklists.checklists)
    kickoff = staticmethod(notes.kickoff)
    note = staticmethod(notes.note)
    private = staticmethod(notes.private)
    step = staticmethod(notes.step)
    step_interrupted = staticmethod(notes.step_interrupted)
    danger_progress = staticmethod(approval.danger_progress)
    danger_outcome = staticmethod(approval.danger_outcome)
    stakeholder_update = staticmethod(stakeholder.stakeholder_update)
    email = staticmethod(stakeholder.email)
    health_chart = staticmethod(checks.health_chart)
    watch_verdict = staticmethod(notes.watch_verdict)
    rca = staticmethod(notes.rca)
    follow_ups = staticmethod(notes.follow_ups)
    followup_reminder = staticmethod(notes.followup_reminder)
    hotfix_offer = staticmethod(notes.hotfix_offer)
    comms_form = staticmethod(forms.comms_edit_view)
    rca_form = staticmethod(forms.rca_view)
    postmortem = staticmethod(documents.postmortem)

    def panel(self, incident: Incident, runs: list[StepRun]) -> Message:
        return panel.panel(incident, runs, self.config.target.rollback_target)

    def approval_request(self, item: Approval, plan: DangerPlan, results: list[TenantResult]) -> Message:
        """The request carries the configured rule (emoji, time limit, approvals needed, start delay) and
        mentions the approvers' group as it is now."""
        cfg = self.config.cleanup
        return approval.approval_request(item, plan, results, collection=cfg.collection, emoji=cfg.approve_emoji,
                                         reject=cfg.reject_emoji, ttl_minutes=cfg.approval_ttl_minutes,
                                         required=cfg.approvals_required, delay_s=cfg.start_delay_s,
                                         approvers=[person(m) for m in self.approver_mentions()])

    def alert(self, state: CheckState, result: CheckResult, criteria: list[str],
              active: ActiveRollback | None = None, notify: list[str] | None = None) -> Message:
        return alerts.alert(state, result, criteria, self.config.monitor.failures_to_alert, active, notify or [])


__all__ = ["SlackPresenter"]
