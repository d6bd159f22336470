"""The runbook's steps, one module each. The runner (bot.runner) decides when each may run."""

from __future__ import annotations

from bot.runbook.backup import Backup
from bot.runbook.base import Check, Plan, Step, StepContext, StepResult
from bot.runbook.rebuild import Rebuild
from bot.runbook.restart import Restart
from bot.runbook.revert import Revert
from bot.runbook.verify import Verify

STEPS: dict[str, Step] = {step.name: step for step in (Backup(), Revert(), Rebuild(), Restart(), Verify())}

__all__ = ["STEPS", "Check", "Plan", "Step", "StepContext", "StepResult"]
