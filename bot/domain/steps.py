"""What a runbook step is, owned by the domain: a plan (shown before acting) carrying the step's own typed
facts, a run (does it, reports progress) and a typed result. ``bot/runbook`` implements the steps; the
composition root hands the runner their registry (:data:`Steps`, in ``Deps.steps``).

Also the one list of the runbook's steps in order, and each step's title and short name, for every reader
(the runner, the guide, the presenter, the subcommands).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from bot.commands import Subcommand
from bot.config import RunbookConfig
from bot.domain.incident import Incident
from bot.domain.runs import Advice, Artifacts, CheckOutcome, StepName, StepRun
from bot.redact import SecretBook
from bot.text import Rich

# The runbook's rollback, in order: the one list (its subcommands and buttons are derived from it).
RUNBOOK_STEPS = (StepName.BACKUP, StepName.REVERT, StepName.REBUILD, StepName.RESTART, StepName.VERIFY)
STEP_SUBCOMMANDS = tuple(Subcommand(step.value) for step in RUNBOOK_STEPS)

TITLES: dict[StepName, str] = {
    StepName.BACKUP: "Backup current state", StepName.REVERT: "Revert code", StepName.REBUILD: "Rebuild backend",
    StepName.RESTART: "Restart backend", StepName.VERIFY: "Verify rollback", StepName.FLAG: "Feature flag",
    StepName.PARTIAL: "Partial rollback", StepName.SAFE_REVERT: "Safe revert", StepName.HOTFIX: "Hotfix branch"}
SHORT_NAMES: dict[StepName, str] = {
    StepName.BACKUP: "Backup", StepName.REVERT: "Revert", StepName.REBUILD: "Rebuild", StepName.RESTART: "Restart",
    StepName.VERIFY: "Verify", StepName.FLAG: "Feature flag", StepName.PARTIAL: "Partial rollback",
    StepName.SAFE_REVERT: "Safe revert", StepName.HOTFIX: "Hotfix"}

Facts = TypeVar("Facts")


@dataclass
class Plan(Generic[Facts]):
    summary: Rich
    facts: Facts  # the step's own typed facts, passed from plan to run (None when it has none)
    lines: list[Rich] = field(default_factory=list)


@dataclass
class StepResult:
    ok: bool
    summary: Rich
    details: list[Rich] = field(default_factory=list)
    artifacts: Artifacts | None = None
    checks: list[CheckOutcome] = field(default_factory=list)
    ticks: list[str] = field(default_factory=list)
    advice: list[Advice] = field(default_factory=list)  # on a failure: what it means and whom to call


@dataclass
class StepContext:
    incident: Incident
    actor: str
    config: RunbookConfig
    data_dir: Path
    args: list[str]
    history: list[StepRun]
    secrets: SecretBook
    progress: Callable[[Rich], None] = lambda _text: None
    run_id: str = ""  # set by the runner before run()

    @property
    def repo(self) -> Path:
        return Path(self.config.target.repo_path)

    @property
    def backups(self) -> Path:
        """This incident's backup runs: one folder per run, never overwritten."""
        return self.data_dir / "backups" / self.incident.id

    def last_success(self, *steps: StepName) -> StepRun | None:
        done = [r for r in self.history if r.step in steps and r.succeeded]
        return done[-1] if done else None


class Step(Protocol[Facts]):
    """A step of ``bot/runbook``: ``plan`` validates and looks (nothing changes yet), ``run`` acts."""

    name: StepName
    follow_ups: tuple[StepName, ...]

    def plan(self, ctx: StepContext) -> Plan[Facts]: ...

    def run(self, ctx: StepContext, plan: Plan[Facts]) -> StepResult: ...


@dataclass(frozen=True)
class Planned:
    """A step's plan bound to the step that made it: the runner shows the plan, then carries it out, without
    knowing the type of the step's facts."""

    summary: Rich
    lines: list[Rich]
    carry_out: Callable[[StepContext], StepResult]


@dataclass(frozen=True)
class RegisteredStep:
    """A step as the registry holds it (whatever its facts): its name, its follow-ups and how to plan it."""

    name: StepName
    follow_ups: tuple[StepName, ...]
    prepare: Callable[[StepContext], Planned]


def register(step: Step[Facts]) -> RegisteredStep:
    def prepare(ctx: StepContext) -> Planned:
        plan = step.plan(ctx)
        return Planned(plan.summary, plan.lines, lambda later: step.run(later, plan))

    return RegisteredStep(step.name, step.follow_ups, prepare)


Steps = Mapping[StepName, RegisteredStep]


def check(name: str, ok: bool, detail: str) -> CheckOutcome:
    return CheckOutcome(name=name, ok=ok, detail=detail)
