"""What a runbook step is: a plan (shown before acting), a run (does it, reports progress), a result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bot.config import Settings
from bot.incident import Incident, Milestone, StepRun


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Plan:
    summary: str
    lines: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepResult:
    ok: bool
    summary: str
    details: list[str] = field(default_factory=list)
    artifacts: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    milestones: list[Milestone] = field(default_factory=list)
    ticks: list[str] = field(default_factory=list)


@dataclass
class StepContext:
    incident: Incident
    actor: str
    settings: Settings
    args: list[str]
    history: list[StepRun]
    progress: Callable[[str], None]
    secrets: list[str]

    @property
    def config(self) -> Any:
        return self.settings.runbook

    @property
    def repo(self) -> Path:
        return Path(self.settings.runbook.target.repo_path)

    def backup_dir(self) -> Path:
        return self.settings.data_dir / "backups" / self.incident.id

    def last_success(self, *steps: str) -> StepRun | None:
        done = [r for r in self.history if r.step in steps and r.status.value == "succeeded"]
        return done[-1] if done else None


class Step(Protocol):
    name: str
    title: str
    usage: str

    def plan(self, ctx: StepContext) -> Plan: ...

    def run(self, ctx: StepContext, plan: Plan) -> StepResult: ...
