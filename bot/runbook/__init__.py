"""The runbook's steps and its safer alternatives, one module each. The runner (bot.domain.runner) decides
when each may run, records it and runs the follow-ups an alternative needs."""

from __future__ import annotations

from bot.domain.runs import StepName
from bot.runbook.backup import Backup
from bot.runbook.base import Plan, Step, StepContext, StepResult
from bot.runbook.flag import Flag
from bot.runbook.hotfix import Hotfix
from bot.runbook.partial import Partial
from bot.runbook.rebuild import Rebuild
from bot.runbook.restart import Restart
from bot.runbook.revert import Revert
from bot.runbook.safe_revert import SafeRevert
from bot.runbook.verify import Verify

_ALL: list[Step] = [Backup(), Revert(), Rebuild(), Restart(), Verify(), Flag(), Partial(), SafeRevert(), Hotfix()]
STEPS: dict[StepName, Step] = {step.name: step for step in _ALL}
RUNBOOK_ORDER = (StepName.BACKUP, StepName.REVERT, StepName.REBUILD, StepName.RESTART, StepName.VERIFY)
ALTERNATIVES = (StepName.FLAG, StepName.PARTIAL, StepName.SAFE_REVERT, StepName.HOTFIX)

__all__ = ["ALTERNATIVES", "RUNBOOK_ORDER", "STEPS", "Plan", "Step", "StepContext", "StepResult"]
