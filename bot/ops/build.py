"""yarn, as the runbook runs it: `yarn build`; on failure remove node_modules and dist, install, build."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from bot.ops.process import Completed, run


@dataclass
class BuildOutcome:
    ok: bool
    attempts: list[Completed] = field(default_factory=list)
    cleaned: bool = False

    @property
    def last(self) -> Completed:
        return self.attempts[-1]


class Yarn:
    def __init__(self, executable: str = "yarn", timeout: float = 900.0) -> None:
        self.executable = executable
        self.timeout = timeout

    def _run(self, repo: Path, *args: str) -> Completed:
        return run([self.executable, *args], cwd=repo, timeout=self.timeout,
                   env={"YARN_CACHE_FOLDER": str(repo / ".yarn-cache"), "CI": "true"})

    def rebuild(self, repo: Path, progress: object = None) -> BuildOutcome:
        outcome = BuildOutcome(ok=False)
        first = self._run(repo, "build")
        outcome.attempts.append(first)
        if first.ok:
            outcome.ok = True
            return outcome
        for folder in ("node_modules", "dist"):
            shutil.rmtree(repo / folder, ignore_errors=True)
        outcome.cleaned = True
        install = self._run(repo, "install", "--non-interactive")
        outcome.attempts.append(install)
        if not install.ok:
            return outcome
        second = self._run(repo, "build")
        outcome.attempts.append(second)
        outcome.ok = second.ok
        return outcome
