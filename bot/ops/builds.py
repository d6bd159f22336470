"""The build store: the target's builds kept by what they were built from, so a rollback to a tree built before
restores its build instead of running yarn again (a release switch, as Capistrano and Heroku do it).

A build's **key** is the git tree hash of the commit, the sha256 of its ``yarn.lock`` (``none`` without one) and
``node --version``. An entry is a folder ``<root>/<key slug>/`` (mode 0700) holding the build outputs
(``files/dist``, ``files/node_modules``, … as ``build.outputs`` names them) and ``manifest.json``: the key, the
commit, a **content hash** over every output file (path, kind, executable bit, size, sha256; a symlink's
target) and why it was kept. An entry is written under ``.incoming-<pid>-<random>/``, its manifest last, and
renamed into place: a process killed while capturing leaves a folder that is never read (and that a later
capture removes once its process is gone). Restoring hashes the entry's files (as it copies them into a staging
folder, or once it has taken the entry's folder there whole) and swaps them in only if that is the manifest's
content hash; a difference is a problem, never a silent success.

Every entry is a build made from the commit alone, in a ``git worktree`` of its own (:mod:`bot.ops.commit_builds`).
The app's folder is never the source of a new entry (it may hold untracked files, a ``.env``, node_modules of
another yarn.lock): only a build a restore took out of the store is copied back from it (:func:`keeping_again`),
and kept only if it hashes exactly as it did.

Folders a process is writing carry its host name and pid; only the same host's dead pids' folders are swept.
``<root>/.lock`` (``flock``) is held around publishing an entry, evicting, and reading one to restore it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import socket
import stat
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bot import faults
from bot.errors import StepFailed
from bot.ops.bsonfiles import fsync_dir, private_dir, private_write
from bot.ops.git import GitRepo
from bot.ops.process import alive, run
from bot.text import Code

MANIFEST = "manifest.json"
LOCK = ".lock"
CACHE = ".yarn-cache"
RESTORE_PREFIX = "rollback-bot-restore-"
REPLACED_PREFIX = "rollback-bot-replaced-"  # a finished restore's staging, what it replaced: only removed
NO_LOCK = "none"
LOCK_FILE = "yarn.lock"


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


class NotABuild(OSError):
    """A file no build writes (a FIFO, a device, a socket): what holds it is not a build, now or later."""


def content_hash(base: Path, outputs: Iterable[str], copy_to: Path | None = None) -> tuple[str, int, int]:
    """One sha256 over the outputs under ``base``: per entry its path, kind, executable bit, size and content
    (a symlink: its target); an output that does not exist counts as absent. (hash, files, bytes).

    ``copy_to``: also copy each entry there as it is read (mode and times kept, as ``shutil.copy2``), so the
    hash is of exactly the bytes written: one read of the files, not one to check them, one to copy them and
    one to check the copy."""
    digest = hashlib.sha256()
    files = size = 0
    for output in sorted(outputs):
        top = base / output
        if not top.exists() and not top.is_symlink():
            digest.update(f"absent {output}\n".encode())
            continue
        directories: list[tuple[Path, os.stat_result]] = []
        for path in _walk(top):
            rel = path.relative_to(base).as_posix()
            info = path.lstat()
            into = copy_to / rel if copy_to is not None else None
            if stat.S_ISLNK(info.st_mode):
                link = os.readlink(path)
                digest.update(f"l {rel} {link}\n".encode())
                if into is not None:
                    os.symlink(link, into)
            elif stat.S_ISDIR(info.st_mode):
                digest.update(f"d {rel}\n".encode())
                if into is not None:
                    into.mkdir(parents=True)
                    directories.append((into, info))
            elif not stat.S_ISREG(info.st_mode):  # a FIFO would block the read; a device, a socket: not a build
                raise NotABuild(f"{rel} is not a regular file, a folder or a symlink")
            else:
                read, sha = _read_file(path, into)
                digest.update(f"f {rel} {'x' if info.st_mode & 0o100 else '-'} {read} {sha}\n".encode())
                if into is not None:
                    _copy_stat(into, info)
                files += 1
                size += read
        for into, info in reversed(directories):  # children first: a directory's times change as it fills
            _copy_stat(into, info)
    return digest.hexdigest(), files, size


def _read_file(path: Path, into: Path | None) -> tuple[int, str]:
    """The file's size and sha256, from one read; its bytes also written to ``into`` if given."""
    digest, read = hashlib.sha256(), 0
    with path.open("rb") as source, (into.open("xb") if into is not None else contextlib.nullcontext()) as copy:
        while chunk := source.read(1 << 20):
            digest.update(chunk)
            read += len(chunk)
            if copy is not None:
                copy.write(chunk)
    return read, digest.hexdigest()


def _copy_stat(into: Path, info: os.stat_result) -> None:
    os.chmod(into, stat.S_IMODE(info.st_mode))
    os.utime(into, ns=(info.st_atime_ns, info.st_mtime_ns))


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


def tree_bytes(top: Path) -> int:
    """The bytes of the files under ``top`` (0 when it does not exist)."""
    total = 0
    for root, _, names in os.walk(top):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def _staging_root(dest: Path) -> Path:
    """Where a restore into ``dest`` stages: ``dest/.git/`` (no git command or build sees it), or ``dest`` itself
    when ``.git`` is a file (a linked worktree)."""
    return dest / ".git" if (dest / ".git").is_dir() else dest


def _lock_folder(dest: Path, *, wait: bool) -> int | None:
    """``flock`` on the folder ``dest`` itself (no file is made in the app's folder), held by a restore into it
    from before it takes or copies the entry until its swap is done: the descriptor to close to let it go, or
    None (``wait=False``) while a restore holds it. A dead restore's lock went with its process."""
    fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def owner_tag() -> str:
    """What a folder this process writes is named after: its host and pid (hosts may share a data folder)."""
    return f"{socket.gethostname().replace('-', '_')}-{os.getpid()}"


def _abandoned(name: str) -> bool:
    """A folder named ``<host>-<pid>-<random>`` whose process is gone; only this host's pids can be checked."""
    parts = name.split("-")
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    return parts[0] == socket.gethostname().replace("-", "_") and not alive(int(parts[1]))


def _remove(folder: Path, *, later: bool) -> None:
    """Remove ``folder``; ``later``: on a thread of its own (what a restore replaced, staged inside ``.git/``
    where no git command or build sees it; one killed first is removed by the next restore)."""
    if later:
        try:
            threading.Thread(target=shutil.rmtree, args=(folder,), kwargs={"ignore_errors": True},
                             name="builds-replaced", daemon=True).start()
            return
        except RuntimeError:  # no thread to be had: now, then
            pass
    shutil.rmtree(folder, ignore_errors=True)


def problem(error: BaseException) -> str:
    return f"{type(error).__name__}: {str(error)[:200]}"


@dataclass(frozen=True)
class NotRestored:
    """Why a kept build was not restored, and whether the app's folder was already changed by then (its outputs
    then cannot be trusted: the fallback builds from a clean install)."""

    why: str
    changed_folder: bool = False


class BuildStore:
    """The kept builds under ``root`` (``<data_dir>/builds``), at most ``max_count`` of them and ``max_bytes``
    together; the newest are kept, and never one whose tree ``protect()`` names (asked each time it evicts)."""

    def __init__(self, root: Path, *, max_count: int = 5, max_bytes: int = 2048 << 20,
                 protect: Callable[[], Iterable[str]] = lambda: ()) -> None:
        self.root = Path(root)
        self.max_count, self.max_bytes = max_count, max_bytes
        self.protect = protect

    @contextlib.contextmanager
    def _locked(self, shared: bool = False) -> Iterator[None]:
        """``flock`` on ``<root>/.lock``: exclusive to publish or evict, shared to read an entry for a restore."""
        private_dir(self.root)
        with open(self.root / LOCK, "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

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

    # ---- keeping -----------------------------------------------------------------------------------------
    def capture(self, source: Path, key: BuildKey, commit: str, outputs: Sequence[str], reason: str,
                cancelled: Callable[[], bool] = lambda: False, *, move: bool = False,
                like: Entry | None = None) -> Entry | str:
        """Copy ``outputs`` of ``source`` (a worktree the bot built ``commit`` in) into a new entry for ``key``:
        the entry, or why nothing was kept (``cancelled()`` before it is published, too). A complete entry of the
        key (another process's) is never replaced. ``move``: ``source`` is a worktree under this store that is
        thrown away next, so its outputs are renamed into the entry (same file system: nothing is copied) and
        hashed there, one read instead of a read and a write of every file. ``like``: the entry a restore took
        out of the store, kept again from the folder it went to (its time and reason) only if it still hashes the
        same."""
        held = self.find(key)
        if held is not None:
            return held
        private_dir(self.root)
        self.sweep()
        incoming = private_dir(self.root / f".incoming-{owner_tag()}-{uuid.uuid4().hex[:8]}")
        try:
            had = {output: (source / output).exists() or (source / output).is_symlink() for output in outputs}
            files_dir = private_dir(incoming / "files")
            if move:
                for output in (o for o in outputs if had[o]):
                    (files_dir / output).parent.mkdir(parents=True, exist_ok=True)
                    os.rename(source / output, files_dir / output)
                digest, files, size = content_hash(files_dir, outputs)
            else:
                digest, files, size = content_hash(source, outputs, copy_to=files_dir)
            if like is not None and digest != like.content_sha256:
                return "the folder changed since the kept build was restored into it"
            if size > self.max_bytes:
                return f"the build is {size / (1 << 20):.1f} MiB, over build.keep.max_mb"
            faults.point("builds.before_manifest")
            manifest = {"key": {"tree": key.tree, "lock": key.lock, "node": key.node}, "commit": commit,
                        "outputs": had, "content_sha256": digest, "files": files, "bytes": size,
                        "kept_at": (like.kept_at if like is not None else datetime.now(UTC)).isoformat(),
                        "reason": reason}
            private_write(incoming / (MANIFEST + ".tmp"), json.dumps(manifest, indent=2).encode())
            os.replace(incoming / (MANIFEST + ".tmp"), incoming / MANIFEST)
            final = self.root / key.slug
            if cancelled():
                return "cancelled"
            with self._locked():
                held = self.find(key)
                if held is not None:  # another process kept it meanwhile: theirs stays
                    return held
                if final.exists():  # an incomplete one (its manifest cannot be read): never used, replaced
                    shutil.rmtree(final)
                os.rename(incoming, final)
                fsync_dir(self.root)
        finally:
            if incoming.exists():
                shutil.rmtree(incoming, ignore_errors=True)
        self.evict()
        entry = self.find(key)
        return entry if entry is not None else "it was evicted at once (build.keep bounds)"

    def evict(self, protect: Iterable[str] = ()) -> list[Entry]:
        """Remove the oldest entries beyond ``max_count`` or ``max_bytes`` together; never one whose tree is in
        ``protect`` or ``self.protect()``. What was removed."""
        try:
            keep_trees = {*protect, *self.protect()}
        except Exception:  # noqa: BLE001 - what to protect is unknown: evict nothing this time
            return []
        cache = tree_bytes(self.root / CACHE)  # yarn's cache for the worktree builds counts towards max_mb
        with self._locked():
            entries = self.entries()  # newest first
            protected = [e for e in entries if e.key.tree in keep_trees]
            kept_count, kept_bytes = len(protected), cache + sum(e.bytes for e in protected)  # their room first
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

    def sweep(self) -> None:
        """Remove what a dead process of this host left: half-written entries and worktree folders."""
        for folder in self.root.glob(".incoming-*"):
            if _abandoned(folder.name.removeprefix(".incoming-")):
                shutil.rmtree(folder, ignore_errors=True)
        for folder in (self.root / ".worktrees").glob("*"):
            if _abandoned(folder.name):
                shutil.rmtree(folder, ignore_errors=True)

    # ---- restoring ---------------------------------------------------------------------------------------
    def restore(self, entry: Entry, dest: Path, outputs: Sequence[str],
                progress: Callable[[str], None] = lambda _: None, *, take: bool = False) -> NotRestored | None:
        """Put the entry's outputs into ``dest`` in place of what is there. None when done: the files hash to the
        manifest's content hash before they are swapped in; otherwise why not, an error included (``dest`` may
        then hold a partial swap, which the fallback's clean build replaces). The files are staged in
        ``dest/.git/`` (never a file git stash or a build sees); what an interrupted restore left there is removed
        first (a taken entry is put back: :meth:`recover_taken`). The outputs it replaced are removed there on a
        thread of their own once it is done, so the restart need not wait for that (when ``.git`` is a file, as
        in a linked worktree, staging is in ``dest`` itself and they are removed before it returns).

        By default the entry is copied into the staging folder, each file hashed as it is read and written.
        ``take`` (a rollback waiting on it): the entry's folder, manifest and files, is renamed into the staging
        folder in one step (so the store holds it whole or not at all; a rename the file systems refuse, EXDEV
        even on one device, leaves it and the restore copies), hashed there and swapped in; then a thread keeps
        it again, copied from ``dest`` (the running app only reads it), if it still hashes to the manifest's
        content hash. Creating thousands of small files is most of a copy, and the restart need not wait for it.
        A taken entry that could not be swapped in before anything changed is put back."""
        if set(entry.outputs) != set(outputs):
            return NotRestored(f"it holds {', '.join(sorted(entry.outputs))} and build.outputs is now "
                               f"{', '.join(sorted(outputs))}")
        try:
            lock = _lock_folder(dest, wait=True)  # one restore into a folder at a time
        except OSError as error:
            return NotRestored(f"restoring it failed ({problem(error)})")
        try:
            staging_root = _staging_root(dest)
            self._recover(dest, staging_root)
            return self._restore(entry, dest, staging_root, progress, take)
        finally:
            if lock is not None:
                os.close(lock)

    def _restore(self, entry: Entry, dest: Path, staging_root: Path, progress: Callable[[str], None],
                 take: bool) -> NotRestored | None:
        # staging/entry: the taken entry (manifest and files); staging/files: the copied outputs; staging/old:
        # what the swap replaced in ``dest`` (never inside the taken entry, which may go back into the store)
        staging = staging_root / f"{'' if staging_root != dest else '.'}{RESTORE_PREFIX}{uuid.uuid4().hex[:8]}"
        done = took = intact = changed = unread = False
        try:
            staging.mkdir()
            if take:
                with self._locked():  # nobody reads it, evicts it or keeps it meanwhile
                    if self._load(entry.path) != entry:
                        return NotRestored("it is no longer kept (evicted, or taken by another restore)")
                    with contextlib.suppress(OSError):  # not one mount (EXDEV even on one device): copied below
                        os.rename(entry.path, staging / "entry")
                        took = True
            if took:
                faults.point("builds.restore_taken")
                progress("moved the kept build next to the app's folder; checking its content hash")
                source = staging / "entry" / "files"
                copied, _, _ = content_hash(source, entry.outputs)
            else:
                with self._locked(shared=True):  # not evicted nor replaced while it is read
                    if self._load(entry.path) != entry:
                        return NotRestored("it is no longer kept (evicted, or taken by another restore)")
                    progress("copying the kept build into place, checking its content hash as it is read")
                    source = staging / "files"
                    source.mkdir()
                    copied, _, _ = content_hash(entry.files_dir, entry.outputs, copy_to=source)
            if copied != entry.content_sha256:
                return NotRestored(f"its files do not match its manifest (content hash {copied[:12]}…, the "
                                   f"manifest says {entry.content_sha256[:12]}…)")
            intact = True
            faults.point("builds.restore_copied")
            for output, had in entry.outputs.items():
                old = dest / output
                if old.exists() or old.is_symlink():
                    aside = staging / "old" / output
                    aside.parent.mkdir(parents=True, exist_ok=True)
                    os.rename(old, aside)
                    changed = True
                    faults.point("builds.restore_moved_aside")
                if had:
                    os.rename(source / output, old)
                    changed = True
            done = True
        except (OSError, shutil.Error) as error:
            # the taken entry could not be read now (not: it is no build): the next recovery tries again
            unread = took and not intact and not isinstance(error, NotABuild)
            return NotRestored(f"restoring it failed ({problem(error)})", changed)
        finally:
            leave = took and not done and not changed and unread
            if took and not done and intact and not changed:  # nothing was swapped: the store holds it again
                try:
                    if self._put_back(staging / "entry", entry):
                        self.evict()
                except OSError:
                    leave = True  # not put back: the next plan's or restore's recovery tries again
            if done:  # what it replaced is no dead restore's to put back (an output the build lacks stays out)
                with contextlib.suppress(OSError):
                    finished = staging.with_name(staging.name.replace(RESTORE_PREFIX, REPLACED_PREFIX))
                    os.rename(staging, finished)
                    staging = finished
            if not leave:  # on its thread only once it can no longer be taken for a dead restore's
                _remove(staging, later=done and staging_root != dest and REPLACED_PREFIX in staging.name)
        if took:
            _keep_again(self, dest, entry, list(entry.outputs))
        return None

    def recover_taken(self, dest: Path) -> list[Entry]:
        """What a restore into ``dest`` killed part-way left (:meth:`_recover`), unless a restore is under way
        there. What was put back into the store."""
        try:
            lock = _lock_folder(dest, wait=False)
        except OSError:  # the folder cannot be opened: nothing to recover there now
            return []
        if lock is None:
            return []
        try:
            return self._recover(dest, _staging_root(dest))
        finally:
            os.close(lock)

    def _recover(self, dest: Path, staging_root: Path) -> list[Entry]:
        """With ``dest``'s restore lock held, so every staging folder there is a dead restore's: the outputs it
        moved aside go back where nothing replaced them; a taken entry whose files still hash to its manifest goes
        back into the store (unless one of its key is kept meanwhile); the rest is removed. A folder that cannot
        be read now is left for the next time. What was put back."""
        recovered = []
        for done in [*staging_root.glob(REPLACED_PREFIX + "*"), *dest.glob("." + REPLACED_PREFIX + "*")]:
            shutil.rmtree(done, ignore_errors=True)  # a finished restore's, its removal killed or still going
        for left in [*staging_root.glob(RESTORE_PREFIX + "*"), *dest.glob("." + RESTORE_PREFIX + "*")]:
            try:
                old = left / "old"
                for aside in (sorted(old.iterdir()) if old.is_dir() else []):
                    if not (dest / aside.name).exists() and not (dest / aside.name).is_symlink():
                        os.rename(aside, dest / aside.name)  # a swap killed half-way: the old output back
                taken = self._load(left / "entry")
                if taken is not None:
                    found, _, _ = content_hash(taken.files_dir, taken.outputs)
                    if found == taken.content_sha256 and self._put_back(left / "entry", taken):
                        recovered.append(self._load(self.root / taken.key.slug) or taken)
            except NotABuild:
                pass  # never one: removed
            except OSError:
                continue
            shutil.rmtree(left, ignore_errors=True)
        if recovered:
            self.evict()
        return recovered

    def _put_back(self, folder: Path, entry: Entry) -> bool:
        """``folder`` (a taken entry, its manifest and files) renamed back to its place in the store, unless an
        entry of its key is there meanwhile."""
        with self._locked():
            final = self.root / entry.key.slug
            if final.exists():
                return False
            os.rename(folder, final)
            fsync_dir(self.root)
        return True

    # ---- the builds in worktrees' yarn cache ------------------------------------------------------------------
    @property
    def yarn_cache(self) -> Path:
        """The yarn cache of the builds in worktrees: ``<root>/.yarn-cache``, never the app's (a revert's
        ``git stash -u`` can move that one while a build reads it). :meth:`seed_cache` fills it."""
        return self.root / CACHE


# ---- a restored build, kept again from the app's folder --------------------------------------------------------
_keeping_again: dict[tuple[Path, str], threading.Thread] = {}  # (store root, key slug)
_keeping_again_lock = threading.Lock()
KEEP_AGAIN_WAIT_S = 300.0


def _keep_again(store: BuildStore, dest: Path, entry: Entry, outputs: Sequence[str]) -> None:
    """On a thread: the build a restore took out of the store, copied back from ``dest`` (see ``restore``)."""
    def keep() -> None:
        try:  # not kept again (changed, no room, an error): the keep after the verify builds it in a worktree
            with contextlib.suppress(Exception):
                store.capture(dest, entry.key, entry.commit, list(outputs), entry.reason, like=entry)
        finally:
            with _keeping_again_lock:
                if _keeping_again.get(slot) is thread:
                    del _keeping_again[slot]

    slot = (store.root, entry.key.slug)
    thread = threading.Thread(target=keep, name="builds-keep-again", daemon=True)
    with _keeping_again_lock:
        _keeping_again[slot] = thread
    try:
        thread.start()
    except RuntimeError:  # no thread to be had: the next keep builds it
        with _keeping_again_lock:
            _keeping_again.pop(slot, None)


def keeping_again(store: BuildStore, key: BuildKey) -> threading.Thread | None:
    """The thread copying a restored build of ``key`` back into ``store``, while it runs."""
    with _keeping_again_lock:
        return _keeping_again.get((store.root, key.slug))
