"""The target's git repository, through GitPython."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import git

from bot.errors import StepFailed


@dataclass(frozen=True)
class Commit:
    sha: str
    summary: str

    @property
    def short(self) -> str:
        return self.sha[:7]

    def oneline(self) -> str:
        return f"{self.short} {self.summary}"


class GitRepo:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _repo(self) -> git.Repo:
        try:
            return git.Repo(self.path)
        except (git.NoSuchPathError, git.InvalidGitRepositoryError):
            raise StepFailed(f"{self.path} is not a git repository",
                             hint="Check `target.repo_path` in rollback.yml.") from None

    def head(self) -> Commit:
        repo = self._repo()
        try:
            commit = repo.head.commit
        except ValueError:
            raise StepFailed(f"{self.path} has no commits yet") from None
        return Commit(commit.hexsha, str(commit.summary))

    def resolve(self, ref: str) -> Commit | None:
        """The commit a full or abbreviated id names, or None. Only hex ids are accepted."""
        repo = self._repo()
        try:
            commit = repo.commit(ref)
        except (git.BadName, ValueError, git.GitCommandError):
            return None
        return Commit(commit.hexsha, str(commit.summary))
