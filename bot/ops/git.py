"""The target's git repository, through GitPython."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import git

from bot.errors import BadInput, StepFailed, quote


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


COMMIT_ID = re.compile(r"^[0-9a-f]{7,40}$")


def validate_commit_id(text: str) -> str:
    """Only a hex commit id is accepted: no refs, no options, no ranges, nothing a shell or git could reinterpret."""
    value = text.strip()
    if not COMMIT_ID.match(value):
        raise BadInput(f"`{quote(value)}` is not a commit id.",
                       hint="Give 7 to 40 hex characters, like `/rollback revert df5b229`.")
    return value


class WorkTree(GitRepo):
    """The operations revert needs."""

    def is_dirty(self) -> bool:
        return self._repo().is_dirty(untracked_files=True)

    def dirty_files(self) -> list[str]:
        repo = self._repo()
        changed = [str(item.a_path) for item in [*repo.index.diff(None), *repo.index.diff("HEAD")]]
        return sorted(set(changed) | set(repo.untracked_files))

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        repo = self._repo()
        return bool(repo.is_ancestor(repo.commit(ancestor), repo.commit(descendant)))

    def commits_between(self, older: str, newer: str) -> list[Commit]:
        """`git log older..newer`: what a reset to `older` drops, newest first."""
        return [Commit(c.hexsha, str(c.summary)) for c in self._repo().iter_commits(f"{older}..{newer}")]

    def log(self, count: int = 5) -> list[Commit]:
        return [Commit(c.hexsha, str(c.summary)) for c in self._repo().iter_commits("HEAD", max_count=count)]

    def stash(self, message: str) -> str | None:
        """Stash tracked and untracked changes under `message`; return the stash's commit id."""
        repo = self._repo()
        repo.git.stash("push", "--include-untracked", "--message", message)
        top = repo.git.rev_parse("--verify", "--quiet", "refs/stash")
        return str(top) if top else None

    def stashes(self) -> list[str]:
        return [line for line in self._repo().git.stash("list").splitlines() if line]

    def reset_hard(self, sha: str) -> None:
        self._repo().git.reset("--hard", validate_commit_id(sha))
