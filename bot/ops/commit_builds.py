"""Builds of a commit alone, each in a ``git worktree`` of its own, kept in the build store (:mod:`bot.ops.builds`).

:func:`commit_build` checks the commit out in a ``git worktree`` of its own under ``<root>/.worktrees/``, runs
``yarn install --frozen-lockfile`` and ``yarn build`` there, refuses to keep it when the build wrote anything
``build.outputs`` does not name, captures the outputs (by rename: the worktree is removed next) and removes the
worktree. The app's folder is never read or written, but for its git objects and its yarn cache. The build
alongside the backup (:func:`start_alongside`) and the keep after a verify (:func:`keep_head`) both do this.

yarn's cache for these builds is the store's (``<root>/.yarn-cache``): seeded from the app's before each build
(:func:`seed_cache`) and kept within :data:`CACHE_SHARE` of the store's bound (:func:`prune_cache`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bot.ops.bsonfiles import private_dir
from bot.ops.build import MUTEX, Yarn
from bot.ops.builds import (
    CACHE,
    KEEP_AGAIN_WAIT_S,
    BuildKey,
    BuildStore,
    Entry,
    commit_key,
    folder_lock_hash,
    keeping_again,
    owner_tag,
    problem,
    tree_bytes,
)
from bot.ops.git import GitRepo
from bot.ops.process import run

CACHE_SHARE = 0.5  # of max_bytes: more than this in yarn's cache, and packages the app's own cache lacks are pruned
CHECKOUT = "checkout"  # a build in a worktree before yarn: the cache seeded, the commit checked out
CACHE_IDLE_S = 3600  # a package younger than this may be one a running install just fetched: it is never pruned


# ---- yarn's cache for the builds in worktrees -------------------------------------------------------------
def _packages(cache: Path) -> Iterator[Path]:
    """The packages of a yarn v1 cache (``<cache>/v6/<package>``), not yarn's own dot-named folders and files; a
    folder gone while it is read (another build's prune) is passed over."""
    with contextlib.suppress(OSError):
        for version in [d for d in cache.iterdir() if not d.name.startswith(".") and d.is_dir() and not d.is_symlink()]:
            with contextlib.suppress(OSError):
                yield from [package for package in version.iterdir() if not package.name.startswith(".")]


def seed_cache(store: BuildStore, repo: Path) -> None:
    """Copy the packages of the app's ``.yarn-cache`` that the store's cache lacks (read only, each one renamed
    into place whole), so a worktree's install finds offline what the app's install fetched."""
    for package in _packages(Path(repo) / CACHE):
        into = store.root / CACHE / package.parent.name
        if (into / package.name).exists():
            continue
        into.mkdir(parents=True, exist_ok=True)
        partial = into / f".tmp-{owner_tag()}-{uuid.uuid4().hex[:8]}"
        try:
            if package.is_dir() and not package.is_symlink():
                shutil.copytree(package, partial, symlinks=True)
            else:
                shutil.copy2(package, partial, follow_symlinks=False)
            os.rename(partial, into / package.name)
        except OSError:  # yarn fetches what is missing (--prefer-offline)
            shutil.rmtree(partial, ignore_errors=True)


def prune_cache(store: BuildStore, repo: Path) -> list[str]:
    """Keep yarn's cache within :data:`CACHE_SHARE` of ``max_bytes`` (it counts towards it, and a cache that
    gains the packages of every lock file built would crowd every kept build out): remove the packages the
    app's own ``.yarn-cache`` lacks (fetched for other lock files by the store's builds), least recently written
    first, none written in the last :data:`CACHE_IDLE_S`, until it is back within. What the app's cache holds
    stays (the next build would copy it back), so an app cache above the share keeps the store's above it too.
    Nothing goes while a yarn holds the cache's mutex, or when the app has no ``.yarn-cache`` (then nothing tells
    the deployed lock's packages from the others). A package another prune removed first is passed over. The
    names removed."""
    cache, seed = store.root / CACHE, Path(repo) / CACHE
    if not seed.is_dir() or (cache / f"{MUTEX}.lock").exists():  # yarn's file mutex: ``<file>.lock`` while held
        return []
    total, budget = tree_bytes(cache), int(store.max_bytes * CACHE_SHARE)
    if total <= budget:
        return []
    now, old = time.time(), []
    for package in _packages(cache):
        with contextlib.suppress(OSError):  # gone under us: another prune's
            written = package.lstat().st_mtime
            if now - written >= CACHE_IDLE_S and not (seed / package.parent.name / package.name).exists():
                old.append((written, package))
    removed = []
    for _, package in sorted(old):
        if total <= budget:
            break
        with contextlib.suppress(OSError):  # gone under us: another prune's
            if stat.S_ISDIR(package.lstat().st_mode):
                size = tree_bytes(package)
                shutil.rmtree(package)
            else:
                size = package.lstat().st_size
                package.unlink()
            total -= size
            removed.append(f"{package.parent.name}/{package.name}")
    return removed


def commit_build(store: BuildStore, repo: Path, commit: str, key: BuildKey, yarn: Yarn, outputs: Sequence[str],
                 reason: str, cancelled: Callable[[], bool] = lambda: False,
                 on_phase: Callable[[str], None] = lambda _: None) -> Entry | str:
    """Build ``commit`` alone in a worktree of its own and keep it: the entry, or why nothing was kept. The app's
    folder is never read or written (but for its git objects). ``on_phase``: told of yarn's install and build
    as each starts."""
    git = GitRepo(repo)
    private_dir(store.root)
    store.sweep()
    folder = private_dir(store.root / ".worktrees") / f"{owner_tag()}-{uuid.uuid4().hex[:8]}"
    try:
        seed_cache(store, repo)
        prune_cache(store, repo)
        if cancelled():  # each of these takes a while on a large tree: a stopped build stops between them
            return "cancelled"
        git.add_worktree(folder, commit)
        if cancelled():
            return "cancelled"
        if folder_lock_hash(folder) != key.lock:
            return "the checked-out yarn.lock is not the commit's"
        outcome = yarn.install_and_build(folder, cancelled, on_phase)
        if not outcome.ok:
            if cancelled() or not outcome.attempts:
                return "cancelled"
            last = outcome.attempts[-1]
            return f"{last.command} exited {last.completed.returncode}: {last.completed.tail(1)[:200]}"
        if cancelled():
            return "cancelled"
        if folder_lock_hash(folder) != key.lock:
            return "yarn install changed yarn.lock"
        stray = _unlisted(folder, outputs)
        if stray:
            return (f"the build wrote outside build.outputs ({', '.join(stray[:5])}"
                    f"{' …' if len(stray) > 5 else ''}), so its outputs are not all kept")
        kept = store.capture(folder, key, commit, outputs, reason, cancelled, move=True)  # the folder goes next
        return kept if isinstance(kept, Entry) else f"not kept: {kept}"
    except Exception as error:  # noqa: BLE001 - the caller says why nothing was kept; the rebuild falls back
        return problem(error)
    finally:
        with contextlib.suppress(Exception):  # a later build sweeps the folder, and prunes the worktree
            git.remove_worktree(folder)
        shutil.rmtree(folder, ignore_errors=True)


def _unlisted(folder: Path, outputs: Sequence[str]) -> list[str]:
    """What ``git status --porcelain --ignored`` lists in the worktree outside ``outputs`` (and yarn's cache)."""
    done = run(["git", "status", "--porcelain", "--ignored", "--untracked-files=normal"], cwd=folder, timeout=120)
    if not done.ok:
        return [f"git status failed: {done.tail(1)}"]
    allowed = [o.rstrip("/") for o in [*outputs, CACHE]]
    stray = []
    for line in done.output.splitlines():
        path = line[3:].strip().strip('"').rstrip("/")
        if path and not any(path == o or path.startswith(o + "/") for o in allowed):
            stray.append(path)
    return stray


def keep_head(store: BuildStore, repo: Path, yarn: Yarn, outputs: Sequence[str], node: str, reason: str,
              cancelled: Callable[[], bool] = lambda: False) -> str:
    """Keep a build of HEAD's commit, made alone in a worktree, unless one of its key is kept: what happened, in
    words (for the log). A restored build being kept again is waited for first (no second build of it). Once
    ``cancelled()``, its yarn is stopped and nothing is kept."""
    head = GitRepo(repo).head().sha
    key = commit_key(repo, head, node)
    again = keeping_again(store, key)
    if again is not None:
        again.join(KEEP_AGAIN_WAIT_S)
        if cancelled():
            return "cancelled"
    if store.find(key) is not None:
        return f"already kept: {key.describe()}"
    kept = commit_build(store, repo, head, key, yarn, outputs, reason, cancelled)
    return f"kept {key.describe()}" if isinstance(kept, Entry) else f"not kept ({key.describe()}): {kept}"


# ---- the build alongside the backup ---------------------------------------------------------------------------
@dataclass
class Alongside:
    """A build of ``commit`` in a worktree of its own, on a thread, for ``incident``'s revert."""

    key: BuildKey
    commit: str
    incident: str
    started: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    cancel: threading.Event = field(default_factory=threading.Event)  # the rebuild gave up waiting for it
    entry: Entry | None = None
    failure: str | None = None  # why it produced no entry
    phase: str = CHECKOUT  # then yarn's (bot.ops.build's INSTALL, BUILD), as each starts

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def entered(self, phase: str) -> None:
        self.phase = phase

    def wait(self, timeout: float) -> bool:
        return self.done.wait(timeout)


_alongside: dict[tuple[str, str], Alongside] = {}
_alongside_lock = threading.Lock()


def in_flight(key: BuildKey, incident: str) -> Alongside | None:
    """The build alongside ``incident``'s backup in this process for ``key`` (running or finished), if any."""
    with _alongside_lock:
        return _alongside.get((incident, key.slug))


def forget(build: Alongside) -> None:
    """The rebuild has used (or given up on) this build alongside: no later plan quotes it. A running one is
    stopped (its yarn and everything yarn started)."""
    build.cancel.set()
    with _alongside_lock:
        if _alongside.get((build.incident, build.key.slug)) is build:
            del _alongside[(build.incident, build.key.slug)]


def start_alongside(store: BuildStore, repo: Path, commit: str, key: BuildKey, yarn: Yarn,
                    outputs: Sequence[str], incident: str, reason: str) -> Alongside:
    """Build ``commit`` on a thread, in a worktree under the store; the one already running for ``key`` if any."""
    with _alongside_lock:
        running = _alongside.get((incident, key.slug))
        if running is not None and not running.done.is_set():
            return running
        build = Alongside(key=key, commit=commit, incident=incident)
        _alongside[(incident, key.slug)] = build
    thread = threading.Thread(target=_build_alongside, args=(build, store, repo, yarn, outputs, reason),
                              name=f"build-{commit[:7]}", daemon=True)
    thread.start()
    return build


def _build_alongside(build: Alongside, store: BuildStore, repo: Path, yarn: Yarn, outputs: Sequence[str],
                     reason: str) -> None:
    try:
        kept = commit_build(store, repo, build.commit, build.key, yarn, outputs, reason, build.cancel.is_set,
                            build.entered)
        if isinstance(kept, Entry):
            build.entry = kept
        else:
            build.failure = kept
    finally:
        build.done.set()
