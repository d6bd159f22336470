"""What a runbook step is: a plan (shown before acting), a run (does it, reports progress), a typed result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bot.config import RunbookConfig
from bot.domain.incident import Incident
from bot.domain.runs import Artifacts, CheckOutcome, StepName, StepRun
from bot.redact import SecretBook
from bot.text import Rich


@dataclass
class Plan:
    summary: Rich
    lines: list[Rich] = field(default_factory=list)
    data: object = None  # the step's own typed facts, passed from plan to run


@dataclass
class StepResult:
    ok: bool
    summary: Rich
    details: list[Rich] = field(default_factory=list)
    artifacts: Artifacts | None = None
    checks: list[CheckOutcome] = field(default_factory=list)
    ticks: list[str] = field(default_factory=list)


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


class Step(Protocol):
    name: StepName
    title: str
    follow_ups: tuple[StepName, ...]

    def plan(self, ctx: StepContext) -> Plan: ...

    def run(self, ctx: StepContext, plan: Plan) -> StepResult: ...


def check(name: str, ok: bool, detail: str) -> CheckOutcome:
    return CheckOutcome(name=name, ok=ok, detail=detail)
