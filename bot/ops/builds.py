"""The build store: the target's builds kept by what they were built from, so a rollback to a tree built before
restores its build instead of running yarn again (a release switch, as Capistrano and Heroku do it).

A build's **key** is the git tree hash of the commit, the sha256 of its ``yarn.lock`` (``none`` without one) and
``node --version``. An entry is a folder ``<root>/<key slug>/`` (mode 0700) holding the build outputs
(``files/dist``, ``files/node_modules``, … as ``build.outputs`` names them) and ``manifest.json``: the key, the
commit, a **content hash** over every output file (path, kind, executable bit, size, sha256; a symlink's
target) and why it was kept. An entry is written under ``.incoming-<pid>-<random>/``, its manifest last, and
renamed into place: a process killed while capturing leaves a folder that is never read (and that a later
capture removes once its process is gone). Restoring re-hashes the entry against its manifest first and the
restored outputs after; a difference is a problem, never a silent success.

A build alongside the backup (:func:`start_alongside`) checks the commit out in a ``git worktree`` of its own
under ``<root>/.worktrees/``, runs ``yarn install`` and ``yarn build`` there, captures the outputs into the
store and removes the worktree: the running app's folder is never written. It runs on a thread; the rebuild
step can wait for it (:func:`in_flight`).

The ``stamp`` (``<root>/built.json``) says which key the outputs in the app's folder were built or restored
for by the bot, and their content hash: only such a build is kept from the app's folder (a build a person made
by hand after a ``git pull`` could be of another tree than HEAD's).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bot import faults
from bot.errors import StepFailed
from bot.ops.bsonfiles import fsync_dir, private_dir, private_write
from bot.ops.build import Yarn
from bot.ops.git import GitRepo
from bot.ops.process import run
from bot.text import Code

MANIFEST = "manifest.json"
STAMP = "built.json"
NO_LOCK = "none"
LOCK_FILE = "yarn.lock"
CHUNK = 1 << 20


@dataclass(frozen=True)
class BuildKey:
    tree: str  # git tree hash of the commit
    lock: str  # sha256 of yarn.lock, or "none"
    node: str  # `node --version`

    @property
    def slug(self) -> str:
        return hashlib.sha256(f"{self.tree}\0{self.lock}\0{self.node}".encode()).hexdigest()[:24]

    def describe(self) -> str:
        lock = "no yarn.lock" if self.lock == NO_LOCK else f"lock {self.lock[:4]}…"
        return f"tree {self.tree[:7]} ({lock}, node {self.node})"


@dataclass(frozen=True)
class Entry:
    key: BuildKey
    commit: str
    path: Path
    outputs: dict[str, bool]  # each configured output, and whether the build had it
    content_sha256: str
    files: int
    bytes: int
    kept_at: datetime
    reason: str

    @property
    def files_dir(self) -> Path:
        return self.path / "files"


def lock_hash(data: bytes | None) -> str:
    return hashlib.sha256(data).hexdigest() if data is not None else NO_LOCK


def folder_lock_hash(folder: Path) -> str:
    try:
        return lock_hash((folder / LOCK_FILE).read_bytes())
    except FileNotFoundError:
        return NO_LOCK


def node_version(executable: str = "node") -> str:
    """`node --version` of the node that yarn and pm2 find (the bot's PATH, then the project's tools)."""
    done = run([executable, "--version"], timeout=30)
    if not done.ok or not done.output.strip():
        raise StepFailed((Code(f"{executable} --version"), f" failed: {done.tail(2)}"))
    return done.output.strip().splitlines()[-1]


def commit_key(repo: Path, commit: str, node: str) -> BuildKey:
    """The key of a build of ``commit`` as git holds it (its tree, its committed yarn.lock)."""
    git = GitRepo(repo)
    return BuildKey(tree=git.tree(commit), lock=lock_hash(git.file_at(commit, LOCK_FILE)), node=node)


def folder_key(repo: Path, node: str) -> BuildKey | None:
    """The key of a build of the app's folder: HEAD's tree and the yarn.lock on disk. None when a tracked file
    differs from HEAD (no key describes what is there)."""
    git = GitRepo(repo)
    if git.tracked_changes():
        return None
    return BuildKey(tree=git.tree("HEAD"), lock=folder_lock_hash(repo), node=node)


def content_hash(base: Path, outputs: Iterable[str]) -> tuple[str, int, int]:
    """One sha256 over the outputs under ``base``: per entry its path, kind, executable bit, size and content
    (a symlink: its target); an output that does not exist counts as absent. (hash, files, bytes)."""
    digest = hashlib.sha256()
    files = size = 0
    for output in sorted(outputs):
        top = base / output
        if not top.exists() and not top.is_symlink():
            digest.update(f"absent {output}\n".encode())
            continue
        for path in _walk(top):
            rel = path.relative_to(base).as_posix()
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                digest.update(f"l {rel} {os.readlink(path)}\n".encode())
            elif stat.S_ISDIR(info.st_mode):
                digest.update(f"d {rel}\n".encode())
            else:
                digest.update(f"f {rel} {'x' if info.st_mode & 0o100 else '-'} {info.st_size} "
                              f"{_file_sha(path)}\n".encode())
                files += 1
                size += info.st_size
    return digest.hexdigest(), files, size


def _walk(top: Path) -> list[Path]:
    if top.is_symlink() or not top.is_dir():
        return [top]
    found = [top]
    for root, dirs, names in os.walk(top, followlinks=False):
        dirs.sort()
        for name in sorted([*names, *(d for d in dirs if os.path.islink(os.path.join(root, d)))]):
            found.append(Path(root) / name)
        for name in dirs:
            if not os.path.islink(os.path.join(root, name)):
                found.append(Path(root) / name)
    return found


def _file_sha(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_outputs(source: Path, target: Path, outputs: Iterable[str]) -> dict[str, bool]:
    had: dict[str, bool] = {}
    for output in outputs:
        src = source / output
        had[output] = src.exists() or src.is_symlink()
        if not had[output]:
            continue
        if src.is_dir() and not src.is_symlink():
            shutil.copytree(src, target / output, symlinks=True)
        else:
            (target / output).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target / output, follow_symlinks=False)
    return had


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class BuildStore:
    """The kept builds under ``root`` (``<data_dir>/builds``), at most ``max_count`` of them and ``max_bytes``
    together; the newest are kept, and never one whose tree ``protect`` names."""

    _capture_lock = threading.Lock()  # one capture at a time per process (a second of the same key finds it kept)

    def __init__(self, root: Path, *, max_count: int = 5, max_bytes: int = 2048 << 20) -> None:
        self.root = Path(root)
        self.max_count, self.max_bytes = max_count, max_bytes

    # ---- reading -----------------------------------------------------------------------------------------
    def entries(self) -> list[Entry]:
        """Every complete entry (its manifest written and readable), newest first."""
        if not self.root.is_dir():
            return []
        found = [entry for folder in self.root.iterdir()
                 if not folder.name.startswith(".") and folder.is_dir() and (entry := self._load(folder))]
        return sorted(found, key=lambda e: e.kept_at, reverse=True)

    def find(self, key: BuildKey) -> Entry | None:
        entry = self._load(self.root / key.slug)
        return entry if entry is not None and entry.key == key else None

    def same_tree(self, tree: str) -> list[Entry]:
        return [e for e in self.entries() if e.key.tree == tree]

    def _load(self, folder: Path) -> Entry | None:
        try:
            data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
            return Entry(key=BuildKey(**data["key"]), commit=data["commit"], path=folder,
                         outputs=dict(data["outputs"]), content_sha256=data["content_sha256"], files=data["files"],
                         bytes=data["bytes"], kept_at=datetime.fromisoformat(data["kept_at"]), reason=data["reason"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def verify(self, entry: Entry) -> str | None:
        """None when the entry's files hash to its manifest's content hash; otherwise what differs."""
        found, _, _ = content_hash(entry.files_dir, entry.outputs)
        if found != entry.content_sha256:
            return (f"its files do not match its manifest (content hash {found[:12]}…, the manifest says "
                    f"{entry.content_sha256[:12]}…)")
        return None

    # ---- keeping -----------------------------------------------------------------------------------------
    def capture(self, source: Path, key: BuildKey, commit: str, outputs: Sequence[str], reason: str, *,
                expect_sha256: str | None = None, protect: Iterable[str] = ()) -> Entry | str:
        """Copy ``outputs`` of ``source`` into a new entry for ``key``: the entry, or why nothing was kept.
        ``expect_sha256``: the outputs must hash to this (the build the bot made, unchanged)."""
        with self._capture_lock:
            held = self.find(key)
            if held is not None:
                return held
            private_dir(self.root)
            self._sweep()
            incoming = private_dir(self.root / f".incoming-{os.getpid()}-{uuid.uuid4().hex[:8]}")
            try:
                had = _copy_outputs(source, private_dir(incoming / "files"), outputs)
                digest, files, size = content_hash(incoming / "files", outputs)
                if expect_sha256 is not None and digest != expect_sha256:
                    return "the build's files changed since the bot built them"
                if size > self.max_bytes:
                    return f"the build is {size / (1 << 20):.1f} MiB, over build.keep.max_mb"
                faults.point("builds.before_manifest")
                manifest = {"key": {"tree": key.tree, "lock": key.lock, "node": key.node}, "commit": commit,
                            "outputs": had, "content_sha256": digest, "files": files, "bytes": size,
                            "kept_at": datetime.now(UTC).isoformat(), "reason": reason}
                private_write(incoming / (MANIFEST + ".tmp"), json.dumps(manifest, indent=2).encode())
                os.replace(incoming / (MANIFEST + ".tmp"), incoming / MANIFEST)
                final = self.root / key.slug
                if final.exists():  # an incomplete one of the same key (a manifest that cannot be read)
                    shutil.rmtree(final)
                os.rename(incoming, final)
                fsync_dir(self.root)
            finally:
                if incoming.exists():
                    shutil.rmtree(incoming, ignore_errors=True)
            self.evict(protect)
            entry = self.find(key)
            return entry if entry is not None else "it was evicted at once (build.keep bounds)"

    def evict(self, protect: Iterable[str] = ()) -> list[Entry]:
        """Remove the oldest entries beyond ``max_count`` or ``max_bytes`` together; never one whose tree is in
        ``protect``. What was removed."""
        keep_trees = set(protect)
        entries = self.entries()  # newest first
        protected = [e for e in entries if e.key.tree in keep_trees]
        kept_count, kept_bytes = len(protected), sum(e.bytes for e in protected)  # they take their room first
        removed = []
        for entry in entries:
            if entry in protected:
                continue
            if kept_count < self.max_count and kept_bytes + entry.bytes <= self.max_bytes:
                kept_count += 1
                kept_bytes += entry.bytes
                continue
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry)
        return removed

    def _sweep(self) -> None:
        """Remove what a dead process left: half-written entries and worktree folders."""
        for folder in [*self.root.glob(".incoming-*"), *(self.root / ".worktrees").glob("*")]:
            pid = folder.name.removeprefix(".incoming-").split("-", 1)[0]
            if pid.isdigit() and not _pid_alive(int(pid)):
                shutil.rmtree(folder, ignore_errors=True)

    # ---- restoring ---------------------------------------------------------------------------------------
    def restore(self, entry: Entry, dest: Path, outputs: Sequence[str],
                progress: Callable[[str], None] = lambda _: None) -> str | None:
        """Put the entry's outputs into ``dest`` in place of what is there. None when done and the restored files
        hash to the manifest's content hash; otherwise why not (``dest`` may then hold a partial restore, which
        the fallback's clean build replaces)."""
        if set(entry.outputs) != set(outputs):
            return (f"it holds {', '.join(sorted(entry.outputs))} and build.outputs is now "
                    f"{', '.join(sorted(outputs))}")
        progress("checking the kept build's content hash")
        problem = self.verify(entry)
        if problem is not None:
            return problem
        staging = dest / f".rollback-bot-restore-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        try:
            progress("copying the kept build into place")
            _copy_outputs(entry.files_dir, staging, [o for o, had in entry.outputs.items() if had])
            for output, had in entry.outputs.items():
                old = dest / output
                trash = staging / f".old-{output}"
                if old.exists() or old.is_symlink():
                    os.rename(old, trash)
                if had:
                    os.rename(staging / output, old)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        progress("checking the restored files' content hash")
        found, _, _ = content_hash(dest, outputs)
        if found != entry.content_sha256:
            return (f"the restored files do not match the manifest (content hash {found[:12]}…, the manifest says "
                    f"{entry.content_sha256[:12]}…)")
        return None

    # ---- the stamp: what the bot built in the app's folder ------------------------------------------------
    def stamp(self, repo: Path, key: BuildKey, outputs: Sequence[str], digest: str | None = None) -> None:
        """Record that the outputs in ``repo`` are the bot's build for ``key`` (their content hash now: ``digest``
        when the caller has just computed it)."""
        if digest is None:
            digest, _, _ = content_hash(repo, outputs)
        private_dir(self.root)
        data = {"repo": str(Path(repo).resolve()), "key": {"tree": key.tree, "lock": key.lock, "node": key.node},
                "content_sha256": digest}
        tmp = self.root / f".{STAMP}.{os.getpid()}.tmp"
        private_write(tmp, json.dumps(data).encode())
        os.replace(tmp, self.root / STAMP)

    def stamped(self, repo: Path) -> tuple[BuildKey, str] | None:
        """The key and content hash the bot last built or restored in ``repo``, if it did."""
        try:
            data = json.loads((self.root / STAMP).read_text(encoding="utf-8"))
            if data["repo"] != str(Path(repo).resolve()):
                return None
            return BuildKey(**data["key"]), str(data["content_sha256"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def keep_built(self, repo: Path, outputs: Sequence[str], node: str, reason: str,
                   protect: Iterable[str] = ()) -> str:
        """Keep the build in the app's folder if the bot made it for HEAD's tree and it is not kept yet: what
        happened, in words (for the log)."""
        key = folder_key(repo, node)
        if key is None:
            return "not kept: a tracked file differs from HEAD"
        if self.find(key) is not None:
            return f"already kept: {key.describe()}"
        stamped = self.stamped(repo)
        if stamped is None or stamped[0] != key:
            return f"not kept: the bot did not build {key.describe()} in {repo}"
        kept = self.capture(repo, key, GitRepo(repo).head().sha, outputs, reason, expect_sha256=stamped[1],
                            protect=protect)
        return f"kept {key.describe()}" if isinstance(kept, Entry) else f"not kept: {kept}"


# ---- the build alongside the backup ---------------------------------------------------------------------------
@dataclass
class Alongside:
    """A build of ``commit`` in a worktree of its own, on a thread."""

    key: BuildKey
    commit: str
    started: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    entry: Entry | None = None
    failure: str | None = None  # why it produced no entry

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    def wait(self, timeout: float) -> bool:
        return self.done.wait(timeout)


_alongside: dict[str, Alongside] = {}
_alongside_lock = threading.Lock()


def in_flight(key: BuildKey) -> Alongside | None:
    """The build alongside a backup of this process for ``key`` (running or finished), if any."""
    with _alongside_lock:
        return _alongside.get(key.slug)


def start_alongside(store: BuildStore, repo: Path, commit: str, key: BuildKey, yarn: Yarn,
                    outputs: Sequence[str], reason: str) -> Alongside:
    """Build ``commit`` on a thread, in a worktree under the store; the one already running for ``key`` if any."""
    with _alongside_lock:
        running = _alongside.get(key.slug)
        if running is not None and not running.done.is_set():
            return running
        build = Alongside(key=key, commit=commit)
        _alongside[key.slug] = build
    thread = threading.Thread(target=_build_alongside, args=(build, store, repo, yarn, outputs, reason),
                              name=f"build-{commit[:7]}", daemon=True)
    thread.start()
    return build


def _build_alongside(build: Alongside, store: BuildStore, repo: Path, yarn: Yarn, outputs: Sequence[str],
                     reason: str) -> None:
    git = GitRepo(repo)
    folder = private_dir(store.root / ".worktrees") / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        git.add_worktree(folder, build.commit)
        if lock_hash((folder / LOCK_FILE).read_bytes() if (folder / LOCK_FILE).exists() else None) != build.key.lock:
            build.failure = "the checked-out yarn.lock is not the commit's"
            return
        outcome = yarn.install_and_build(folder)
        if not outcome.ok:
            last = outcome.last
            build.failure = f"yarn {' '.join(last.argv[1:])} exited {last.returncode}: {last.tail(1)[:200]}"
            return
        if folder_lock_hash(folder) != build.key.lock:
            build.failure = "yarn install changed yarn.lock"
            return
        kept = store.capture(folder, build.key, build.commit, outputs, reason)
        if isinstance(kept, Entry):
            build.entry = kept
        else:
            build.failure = f"not kept: {kept}"
    except Exception as error:  # noqa: BLE001 - reported to whoever waits for it; the rebuild falls back
        build.failure = f"{type(error).__name__}: {str(error)[:200]}"
    finally:
        with contextlib.suppress(Exception):  # a later capture sweeps the folder, and the next build prunes it
            git.remove_worktree(folder)
        shutil.rmtree(folder, ignore_errors=True)
        build.done.set()
