"""The runbook's steps and its safer alternatives, one module each, implementing the domain's step contract
(:mod:`bot.domain.steps`). The composition root hands their registry to the runner (``Deps.steps``), which
decides when each may run, records it and runs the follow-ups an alternative needs."""

from __future__ import annotations

from bot.domain.runs import StepName
from bot.domain.steps import RegisteredStep, register
from bot.runbook.backup import Backup
from bot.runbook.flag import Flag
from bot.runbook.hotfix import Hotfix
from bot.runbook.partial import Partial
from bot.runbook.rebuild import Rebuild
from bot.runbook.restart import Restart
from bot.runbook.revert import Revert
from bot.runbook.safe_revert import SafeRevert
from bot.runbook.verify import Verify


def registry() -> dict[StepName, RegisteredStep]:
    """Every step by name: the runbook's rollback and the safer alternatives."""
    steps = [register(Backup()), register(Revert()), register(Rebuild()), register(Restart()), register(Verify()),
             register(Flag()), register(Partial()), register(SafeRevert()), register(Hotfix())]
    return {step.name: step for step in steps}


__all__ = ["registry"]
