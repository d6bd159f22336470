"""The target's git repository, through GitPython."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.errors import BadInput, StepFailed, echo
from bot.ops.process import hidden_from_children
from bot.text import Code

if TYPE_CHECKING:  # GitPython is imported on first use: a bot that is idle has no need of it
    import git


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
        import git

        try:
            repo = git.Repo(self.path)
        except (git.NoSuchPathError, git.InvalidGitRepositoryError):
            raise StepFailed((Code(str(self.path)), " is not a git repository"),
                             hint=("Check ", Code("target.repo_path"), " in rollback.yml.")) from None
        # git and its hooks see the same short environment as pm2 and yarn: GitPython starts git with the bot's
        # whole environment, so every other variable (the Slack tokens, the store URI…) is blanked for it.
        repo.git.update_environment(**hidden_from_children())
        return repo

    def head(self) -> Commit:
        repo = self._repo()
        try:
            commit = repo.head.commit
        except ValueError:
            raise StepFailed((Code(str(self.path)), " has no commits yet")) from None
        return Commit(commit.hexsha, str(commit.summary))

    def resolve(self, ref: str) -> Commit | None:
        """The commit a full or abbreviated id names, or None. Only hex ids are accepted."""
        import git

        repo = self._repo()
        try:
            commit = repo.commit(ref)
        except (git.BadName, ValueError, git.GitCommandError):
            return None
        return Commit(commit.hexsha, str(commit.summary))

    def tree(self, commit: str = "HEAD") -> str:
        """The hash of the commit's tree: the same files give the same hash, whichever commit holds them."""
        return str(self._repo().commit(commit).tree.hexsha)

    def file_at(self, commit: str, path: str) -> bytes | None:
        """A file's content as the commit holds it; None when the commit has no such file."""
        try:
            blob = self._repo().commit(commit).tree / path
        except KeyError:
            return None
        return bytes(blob.data_stream.read())

    def tracked_changes(self) -> bool:
        """A tracked file differs from HEAD (in the index or the work tree); untracked files do not count."""
        return bool(self._repo().is_dirty(untracked_files=False))

    def add_worktree(self, path: Path, commit: str) -> None:
        """`git worktree add --detach PATH COMMIT`: the commit checked out in a folder of its own."""
        self._repo().git.worktree("add", "--detach", str(path), validate_commit_id(commit), **KILL)

    def remove_worktree(self, path: Path) -> None:
        """`git worktree remove --force PATH`, then `git worktree prune` (a folder already gone is pruned)."""
        repo = self._repo()
        try:
            repo.git.worktree("remove", "--force", str(path), **KILL)
        except git.GitCommandError:
            pass  # removed by hand, or never finished: prune forgets it
        repo.git.worktree("prune", **KILL)

    def require(self, text: str) -> Commit:
        """The commit a hex id names; anything else, or an id the repository lacks, is refused with a hint."""
        wanted = validate_commit_id(text)
        found = self.resolve(wanted)
        if found is None:
            raise BadInput(("Commit ", echo(wanted), " is not in the repository at ", Code(str(self.path)), "."),
                           hint=("Take one from ", Code("git log --oneline"), "."))
        return found


GIT_TIMEOUT_S = 120  # a git command (a push over a slow network included) is killed after this
KILL: dict[str, Any] = {"kill_after_timeout": GIT_TIMEOUT_S}
COMMIT_ID = re.compile(r"^[0-9a-f]{7,40}$")


def validate_commit_id(text: str) -> str:
    """Only a hex commit id is accepted: no refs, no options, no ranges, nothing a shell or git could reinterpret."""
    value = text.strip()
    if not COMMIT_ID.match(value):
        raise BadInput((echo(value), " is not a commit id."),
                       hint=("Give 7 to 40 hex characters, like ", Code("/rollback revert df5b229"), "."))
    return value


BRANCH_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def validate_hotfix_name(text: str) -> str:
    """A hotfix name becomes `hotfix/<name>`: letters, digits, . _ -; no option, no path, no ref syntax."""
    value = text.strip()
    if (not BRANCH_NAME.match(value) or ".." in value or value.endswith((".", ".lock"))
            or value.startswith("-")):
        raise BadInput((echo(value), " cannot be a branch name."),
                       hint=("Use letters, digits, . _ and -, like ", Code("/rollback hotfix fix-feedback-timeout"),
                             "."))
    return value


class WorkTree(GitRepo):
    """Operations that change the working tree: revert (reset), one file back, `git revert`, hotfix branches."""

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
        repo.git.stash("push", "--include-untracked", "--message", message, **KILL)
        top = repo.git.rev_parse("--verify", "--quiet", "refs/stash", **KILL)
        return str(top) if top else None

    def reset_hard(self, sha: str) -> None:
        self._repo().git.reset("--hard", validate_commit_id(sha), **KILL)


    def tracked(self, path: str, commit: str) -> bool:
        repo = self._repo()
        listed = repo.git.ls_tree("--name-only", "-r", validate_commit_id(commit), "--", path, **KILL)
        return path in listed.splitlines()

    def diff_stat(self, commit: str, path: str) -> str:
        return str(self._repo().git.diff("--stat", validate_commit_id(commit), "--", path, **KILL)) or "no difference"

    def checkout_file(self, commit: str, path: str) -> None:
        self._repo().git.checkout(validate_commit_id(commit), "--", path, **KILL)

    def stash_paths(self, message: str, paths: list[str]) -> str | None:
        repo = self._repo()
        repo.git.stash("push", "--include-untracked", "--message", message, "--", *paths, **KILL)
        top = repo.git.rev_parse("--verify", "--quiet", "refs/stash", **KILL)
        return str(top) if top else None

    def revert_commits(self, shas: list[str]) -> list[str]:
        """`git revert --no-edit` each commit (newest first) as new commits; on a conflict abort and report
        the conflicting files (nothing is left half done)."""
        import git

        repo = self._repo()
        try:
            repo.git.revert("--no-edit", *(validate_commit_id(s) for s in shas), **KILL)
        except git.GitCommandError:
            conflicted = sorted({line.split("\t", 1)[-1] for line in
                                 repo.git.diff("--name-only", "--diff-filter=U", **KILL).splitlines() if line})
            repo.git.revert("--abort", **KILL)
            return conflicted or ["(git reported a conflict)"]
        return []

    def branch(self) -> str | None:
        repo = self._repo()
        return None if repo.head.is_detached else str(repo.active_branch.name)

    def create_branch(self, name: str) -> None:
        repo = self._repo()
        branch = f"hotfix/{validate_hotfix_name(name)}"
        if branch in [h.name for h in repo.heads]:
            raise BadInput((Code(branch), " already exists."),
                           hint=("Pick another name, or ship it with ", Code("/rollback hotfix ship"), "."))
        repo.git.check_ref_format("--branch", branch, **KILL)
        repo.git.checkout("-b", branch, **KILL)

    def push(self, remote: str, branch: str) -> str:
        """Push without force: a rejected push is reported, never overridden."""
        return str(self._repo().git.push(remote, f"refs/heads/{branch}:refs/heads/{branch}", **KILL))

    def has_remote(self, remote: str) -> bool:
        return remote in [r.name for r in self._repo().remotes]
