"""What handlers reach of the domain: the feature services themselves, each the one owner of what it does.

A listener reads the Slack payload, calls the service method that owns the behaviour, and renders what comes
back; there is no delegation layer in between. Each service checks access, decides and records on its own:

- ``incidents``: open an incident (from `/rollback start` or an alert's button), look one up, panel ticks;
- ``runner``: the runbook's steps; ``autopilot``: them one after the other; ``alternatives``: the safer
  alternatives and the hotfix;
- ``danger``: the two-person cleanup and restore: requests and the reactions that decide them;
- ``stakeholders``: the update's preview, *Post now* and its form; ``closer``: the RCA and the close;
- ``coordination``: restored, handover, notes, follow-ups; ``followups``: marking one done (their reminders
  are the scheduler's); ``monitor``: `/rollback health`;
- ``desk``: claiming a delivery once, private replies, which channel an incident lives in.

The composition root (``bot.app.services``) builds them; handlers import this module (and the runbook's own
lists in ``bot.domain.checklists``), never the store or the ops adapters.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.alternatives import Alternatives
from bot.domain.approvals import DangerAction as DangerAction
from bot.domain.autopilot import Autopilots
from bot.domain.closeout import Closer
from bot.domain.coordination import Coordination
from bot.domain.danger import Gate
from bot.domain.desk import Desk
from bot.domain.followups import FollowUps
from bot.domain.incident import Incident as Incident  # the record listeners render
from bot.domain.incidents import Incidents
from bot.domain.monitor import Monitor
from bot.domain.runner import StepRunner
from bot.domain.runs import StepName as StepName
from bot.domain.stakeholders import Stakeholders
from bot.domain.steps import STEP_SUBCOMMANDS as STEP_SUBCOMMANDS  # handlers route these to the runner


@dataclass(frozen=True)
class Features:
    desk: Desk
    incidents: Incidents
    runner: StepRunner
    autopilot: Autopilots
    alternatives: Alternatives
    danger: Gate
    stakeholders: Stakeholders
    closer: Closer
    coordination: Coordination
    followups: FollowUps
    monitor: Monitor


__all__ = ["STEP_SUBCOMMANDS", "DangerAction", "Features", "Incident", "StepName"]
