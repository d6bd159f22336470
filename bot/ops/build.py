"""yarn, as the runbook runs it: `yarn build`; on failure remove node_modules and dist, install, build."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bot.ops.process import Completed, alive, run

BUILD, INSTALL, REBUILD = "build", "clean install", "build again"
MUTEX = ".rollback-bot-yarn-mutex"  # in the cache folder it guards


@dataclass(frozen=True)
class Attempt:
    phase: str
    completed: Completed

    @property
    def command(self) -> str:
        """The yarn command as a person would type it (without the bot's ``--mutex``)."""
        args = self.completed.argv[1:]
        return "yarn " + " ".join(args[2:] if args[:1] == ["--mutex"] else args)


@dataclass
class BuildOutcome:
    ok: bool
    attempts: list[Attempt] = field(default_factory=list)
    cleaned: bool = False

    @property
    def last(self) -> Completed:
        return self.attempts[-1].completed


SCRATCH = "rollback-bot-yarn-"  # + <host>-<pid>-<random>: a yarn's temp folder (Yarn._run)


def _owner() -> str:
    return f"{socket.gethostname().replace('-', '_')}-{os.getpid()}"


def sweep_scratch() -> None:
    """Remove the temp folders of yarns whose bot process died before it could (``kill -9``): this host's only."""
    host = socket.gethostname().replace("-", "_")
    for folder in Path(tempfile.gettempdir()).glob(SCRATCH + "*"):
        parts = folder.name.removeprefix(SCRATCH).split("-")
        if len(parts) == 3 and parts[0] == host and parts[1].isdigit() and not alive(int(parts[1])):
            shutil.rmtree(folder, ignore_errors=True)


class Yarn:
    def __init__(self, executable: str = "yarn", timeout: float = 900.0, cache: Path | None = None) -> None:
        self.executable = executable
        self.timeout = timeout
        self.cache = cache  # yarn's cache folder; None: `.yarn-cache` in the folder it runs in

    def _run(self, repo: Path, *args: str, cancelled: Callable[[], bool] | None = None) -> Completed:
        """yarn with its cache folder. The builds in worktrees share the bot's cache (``cache``), so they take
        that folder's mutex file: two of them (a build alongside, a keep, another replica's) never run on one
        cache at once (yarn v1 corrupts a shared cache). The app folder's own build runs exactly as the runbook
        types it, no ``--mutex`` (Yarn 2+ refuses the flag): the bot runs one step at a time there."""
        cache = self.cache or repo / ".yarn-cache"
        mutex = ["--mutex", f"file:{cache / MUTEX}"] if self.cache is not None else []
        if self.cache is not None:
            cache.mkdir(parents=True, exist_ok=True)
        # yarn v1 leaves a folder of shims (`yarn--<time>-<random>`) in its temp folder at every `yarn run`: give
        # it one of its own, removed afterwards, or every rebuild leaves one more in /tmp. Its compile cache (in
        # that temp folder, reused by every yarn) is linked to one kept for the bot's yarn: it starts as fast.
        sweep_scratch()
        scratch = Path(tempfile.mkdtemp(prefix=f"{SCRATCH}{_owner()}-"))
        name = f"v8-compile-cache-{os.getuid()}"
        kept = Path(tempfile.gettempdir()) / f"rollback-bot-{name}"
        kept.mkdir(mode=0o700, exist_ok=True)
        (scratch / name).symlink_to(kept)
        try:
            return run([self.executable, *mutex, *args], cwd=repo, timeout=self.timeout,
                       env={"YARN_CACHE_FOLDER": str(cache), "CI": "true", "TMPDIR": str(scratch)},
                       cancelled=cancelled)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)  # the link, not the cache it points to

    def install_and_build(self, folder: Path, cancelled: Callable[[], bool] = lambda: False,
                          on_phase: Callable[[str], None] = lambda _: None) -> BuildOutcome:
        """`yarn install` exactly as yarn.lock says (`--frozen-lockfile`; without one, `--pure-lockfile`: none is
        written) then `yarn build`, in ``folder`` (a fresh checkout: nothing to clean first), ``on_phase`` told of
        each (INSTALL, BUILD) as it starts. Nothing more runs once ``cancelled()``, and the command running then
        is stopped."""
        outcome = BuildOutcome(ok=False)
        lock = "--frozen-lockfile" if (folder / "yarn.lock").exists() else "--pure-lockfile"
        for name, args in ((INSTALL, ("install", "--non-interactive", "--prefer-offline", lock)), (BUILD, ("build",))):
            if cancelled():
                return outcome
            on_phase(name)
            completed = self._run(folder, *args, cancelled=cancelled)
            if cancelled():
                return outcome
            outcome.attempts.append(Attempt(name, completed))
            if not completed.ok:
                return outcome
        outcome.ok = True
        return outcome

    def install(self, repo: Path) -> Completed:
        """`yarn install`, from the lock file."""
        return self._run(repo, "install", "--non-interactive")

    def rebuild(self, repo: Path, on_phase: Callable[[str], None] | None = None, *,
                clean_first: bool = False) -> BuildOutcome:
        """The runbook's step 3: `yarn build`; if it fails, remove node_modules and dist, install, build again.
        ``clean_first``: straight to the clean install (what is in the folder cannot be trusted, e.g. a restore of
        a kept build that failed half-way)."""
        def phase(name: str, *args: str) -> Completed:
            if on_phase is not None:
                on_phase(f"{name}: yarn {' '.join(args)}")
            completed = self._run(repo, *args)
            outcome.attempts.append(Attempt(name, completed))
            return completed

        outcome = BuildOutcome(ok=False)
        if not clean_first and phase(BUILD, "build").ok:
            outcome.ok = True
            return outcome
        if on_phase is not None:
            on_phase(("a restore did not finish" if clean_first else f"{BUILD} failed")
                     + ": removing node_modules and dist")
        for folder in ("node_modules", "dist"):
            shutil.rmtree(repo / folder, ignore_errors=True)
        outcome.cleaned = True
        if not phase(INSTALL, "install", "--non-interactive").ok:
            return outcome
        outcome.ok = phase(REBUILD, "build").ok
        return outcome
