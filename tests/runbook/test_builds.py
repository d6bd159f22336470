"""Last-known-good builds (issue 22, item 4) on a real git repository built by the real yarn: the rebuild step
restores a kept build of exactly what is checked out instead of running yarn, says so in its plan and result,
and falls back to yarn build (saying why) when the yarn.lock, the Node version or the entry's content differ;
the store stays within its bounds; a process killed while capturing leaves nothing usable."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import git
import pytest

from bot.config import parse_runbook
from bot.domain.runs import RebuildArtifacts, RevertArtifacts, StepName, StepRun, StepStatus
from bot.domain.steps import StepContext, StepResult
from bot.ops import builds, commit_builds
from bot.ops.build import BUILD, INSTALL, MUTEX, Yarn
from bot.ops.envfile import read_env_file
from bot.redact import SecretBook
from bot.runbook.rebuild import Rebuild
from bot.runbook.target import build_store
from bot.text import plain

OUTPUTS = ["dist", "node_modules"]
BUILD_JS = """\
const fs = require('fs');
fs.rmSync('dist', { recursive: true, force: true });
fs.mkdirSync('dist');
fs.cpSync('src', 'dist', { recursive: true });
fs.writeFileSync('dist/built-at.txt', String(process.hrtime.bigint()));
console.log('built dist/ by yarn');
"""


def commit(repo: git.Repo, message: str, files: dict[str, str]) -> str:
    for name, text in files.items():
        path = Path(str(repo.working_tree_dir)) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        repo.index.add([name])
    author = git.Actor("Backend Team", "backend@example.invalid")
    return repo.index.commit(message, author=author, committer=author).hexsha


@pytest.fixture
def app(tmp_path: Path) -> tuple[Path, list[str]]:
    """A real git repository whose `yarn build` copies src/ into dist/ with the moment it ran; three commits."""
    folder = tmp_path / "app"
    repo = git.Repo.init(folder, initial_branch="main")
    package = {"name": "app", "version": "1.0.0", "private": True, "scripts": {"build": "node build.js"}}
    shas = [commit(repo, "v1", {"package.json": json.dumps(package), "build.js": BUILD_JS,
                                 ".gitignore": "node_modules/\ndist/\n.yarn-cache/\n", "src/app.js": "// v1\n"})]
    shas.append(commit(repo, "v2", {"src/app.js": "// v2\n"}))
    shas.append(commit(repo, "v3", {"src/app.js": "// v3\n"}))
    return folder, shas


def context(repo: Path, data: Path, **build: Any) -> StepContext:
    config = parse_runbook({"target": {"repo_path": str(repo)}, "build": build})
    return StepContext(incident=None, actor="U0COMMANDER", config=config, data_dir=data,  # type: ignore[arg-type]
                       args=[], history=[], secrets=SecretBook([], repo / ".env", read_env_file))


def rebuild(ctx: StepContext) -> tuple[str, StepResult]:
    """The rebuild's plan as the thread shows it (summary and lines), and its result."""
    planned = Rebuild().plan(ctx)
    shown = " / ".join(plain(part) for part in [planned.summary, *planned.lines])
    return shown, Rebuild().run(ctx, planned)


def built_at(repo: Path) -> str:
    return (repo / "dist" / "built-at.txt").read_text()


def intact(entry: builds.Entry) -> bool:
    """The entry's files hash to its manifest's content hash."""
    return builds.content_hash(entry.files_dir, entry.outputs)[0] == entry.content_sha256


def kept_after_verify(ctx: StepContext) -> builds.Entry:
    """What the bot does after a verify passes: build HEAD's commit alone in a worktree and keep it (the port's
    thread's work, synchronously)."""
    store = build_store(ctx.config, ctx.data_dir)
    yarn = Yarn(cache=store.yarn_cache)
    said = commit_builds.keep_head(store, ctx.repo, yarn, OUTPUTS, builds.node_version(), "after verify of RB-0001")
    assert said.startswith("kept"), said
    entry = store.entries()[0]
    assert (entry.path.stat().st_mode & 0o777) == 0o700 and (store.root.stat().st_mode & 0o777) == 0o700
    return entry


def test_a_rebuild_of_a_kept_tree_restores_it_instead_of_running_yarn(app: tuple[Path, list[str]],
                                                                      tmp_path: Path) -> None:
    repo, _ = app
    ctx = context(repo, tmp_path / "data")
    plan, first = rebuild(ctx)
    tree = git.Repo(repo).head.commit.tree.hexsha[:7]
    assert plan.startswith(f"yarn build in {repo}: no kept build for tree {tree}") and first.ok
    assert isinstance(first.artifacts, RebuildArtifacts) and first.artifacts.attempts  # yarn ran
    entry = kept_after_verify(ctx)
    kept_made = (entry.files_dir / "dist" / "built-at.txt").read_text()
    assert built_at(repo) != kept_made  # built apart from the app's folder
    (repo / "dist" / "app.js").write_text("// someone's hand edit of the build\n")

    plan, second = rebuild(ctx)
    node = builds.node_version()
    assert plan.startswith(f"Restore the last-known-good build of tree {tree} (no yarn.lock, node {node}, kept "
                           f"{entry.kept_at:%Y-%m-%d %H:%M} UTC after verify of RB-0001) instead of yarn build"), plan
    assert "checked before it is swapped in" in plan
    assert second.ok and plain(second.summary).startswith(f"restored the last-known-good build of tree {tree}")
    assert "content hash verified before it was swapped in" in plain(second.summary)
    assert isinstance(second.artifacts, RebuildArtifacts) and second.artifacts.attempts == []  # yarn did not run
    assert built_at(repo) == kept_made and (repo / "dist" / "app.js").read_text() == "// v3\n"


def tamper_lock(repo: Path, ctx: StepContext) -> StepContext:
    (repo / "yarn.lock").write_text("# yarn lockfile v1\n")  # untracked: HEAD's tree is the same, the lock is not
    return ctx


def tamper_node(repo: Path, ctx: StepContext) -> StepContext:
    other = repo.parent / "node18"  # another Node installation, as `node --version` reports it
    other.write_text("#!/bin/sh\necho v18.20.4\n")
    other.chmod(0o755)
    return context(repo, ctx.data_dir, node=str(other))


def tamper_entry(repo: Path, ctx: StepContext) -> StepContext:
    entry = build_store(ctx.config, ctx.data_dir).entries()[0]
    (entry.files_dir / "dist" / "app.js").write_text("// not what was built\n")
    return ctx


@pytest.mark.parametrize(("tamper", "plan_says", "result_says"), [
    (tamper_lock, "the kept build of this tree has another yarn.lock (tree {tree} (no yarn.lock", None),
    (tamper_node, "no kept build for tree {tree} (no yarn.lock, node v18.20.4); the kept build of this tree was "
                  "made with node {node}", None),
    (tamper_entry, "Restore the last-known-good build of tree {tree}",
     "fell back to yarn build: the kept build of tree {tree} (no yarn.lock, node {node}) was not used: its files do "
     "not match its manifest"),
], ids=["lock-file", "node-version", "content-hash"])
def test_a_kept_build_that_differs_falls_back_to_yarn_build_and_says_why(
        app: tuple[Path, list[str]], tmp_path: Path, tamper: Any, plan_says: str, result_says: str | None) -> None:
    repo, _ = app
    ctx = context(repo, tmp_path / "data")
    assert rebuild(ctx)[1].ok
    kept_after_verify(ctx)
    before = built_at(repo)
    ctx = tamper(repo, ctx)
    tree, node = git.Repo(repo).head.commit.tree.hexsha[:7], builds.node_version()
    plan, result = rebuild(ctx)
    assert plan_says.format(tree=tree, node=node) in plan, plan
    assert result.ok and isinstance(result.artifacts, RebuildArtifacts) and result.artifacts.attempts
    assert plain(result.summary).startswith("built: build: yarn build exit 0")
    assert built_at(repo) != before  # yarn built it again
    if result_says:
        assert result_says.format(tree=tree, node=node) in plain(result.summary), plain(result.summary)


def capture_commit(repo: Path, store: builds.BuildStore, sha: str) -> builds.Entry:
    key = builds.commit_key(repo, sha, builds.node_version())
    kept = commit_builds.commit_build(store, repo, sha, key, Yarn(cache=store.yarn_cache), OUTPUTS,
                               f"build of {sha[:7]}")
    assert isinstance(kept, builds.Entry), kept
    return kept


def test_the_store_keeps_the_newest_within_its_bounds_and_never_the_open_incidents_target(
        app: tuple[Path, list[str]], tmp_path: Path) -> None:
    repo, (v1, v2, v3) = app
    protected: list[str] = []  # asked each time the store evicts, as the app asks the domain
    store = builds.BuildStore(tmp_path / "builds", max_count=2, protect=lambda: protected)
    first = capture_commit(repo, store, v1)
    protected.append(git.Repo(repo).commit(v1).tree.hexsha)  # an incident opened after v1 was kept
    second = capture_commit(repo, store, v2)
    third = capture_commit(repo, store, v3)
    on_disk = sorted(p.name for p in store.root.iterdir() if not p.name.startswith("."))
    assert on_disk == sorted([first.key.slug, third.key.slug])  # v2 went: v1 is the rollback target
    assert store.find(second.key) is None

    by_size = builds.BuildStore(tmp_path / "sized", max_count=10, max_bytes=first.bytes * 2)
    kept = [capture_commit(repo, by_size, sha) for sha in (v1, v2, v3)]
    assert [e.key for e in by_size.entries()] == [kept[2].key, kept[1].key]  # the newest that fit


def cache_package(cache: Path, name: str, size: int, age_s: float = 0) -> Path:
    """A package as yarn v1 caches it (``v6/npm-<name>-<version>-<sha1>-integrity/``), written ``age_s`` ago."""
    package = cache / "v6" / f"npm-{name}-1.0.0-{'0' * 40}-integrity"
    (package / "node_modules" / name).mkdir(parents=True)
    (package / "node_modules" / name / "index.js").write_bytes(b"x" * size)
    (package / ".yarn-metadata.json").write_text("{}")
    if age_s:
        then = time.time() - age_s
        os.utime(package, (then, then))
    return package


def test_yarns_cache_is_pruned_of_old_lock_files_packages_so_it_never_crowds_out_the_kept_builds(
        app: tuple[Path, list[str]], tmp_path: Path) -> None:
    """The store's yarn cache counts towards max_mb and gained every package of every yarn.lock ever built: grown
    past max_mb, every build was evicted as soon as it was kept. Past half of it, the packages the app's own cache
    lacks go, least recently written first, until it is back within; the app's and the recent ones stay."""
    repo, (_, _, v3) = app
    store = builds.BuildStore(tmp_path / "builds", max_bytes=420_000)  # the cache may hold 210 KB of it
    current = cache_package(repo / ".yarn-cache", "current", 50_000, age_s=5 * 3600)  # the deployed lock's
    oldest = cache_package(store.yarn_cache, "left-pad", 250_000, age_s=3 * 3600)  # older locks' only
    older = cache_package(store.yarn_cache, "is-odd", 60_000, age_s=2 * 3600)
    fresh = cache_package(store.yarn_cache, "just-fetched", 90_000)  # a running install may have just fetched it

    kept = capture_commit(repo, store, v3)  # seeds the app's package (450 KB in all), prunes, builds, keeps

    cached = {p.name for p in (store.yarn_cache / "v6").iterdir() if not p.name.startswith(".")}
    assert cached == {current.name, older.name, fresh.name}  # the oldest of the older locks' went, and only it
    assert not oldest.exists()
    assert store.find(kept.key) == kept  # kept: 200 KB of cache and the build fit in max_mb (450 KB did not)


def test_yarns_cache_is_left_alone_while_a_yarn_holds_it_or_when_the_app_has_no_cache_to_tell_what_is_needed(
        app: tuple[Path, list[str]], tmp_path: Path) -> None:
    repo, _ = app
    store = builds.BuildStore(tmp_path / "builds", max_bytes=100_000)
    old = cache_package(store.yarn_cache, "left-pad", 90_000, age_s=3 * 3600)
    assert commit_builds.prune_cache(store, repo) == []  # no app cache: the deployed lock's could be any of them
    cache_package(repo / ".yarn-cache", "current", 1_000)
    held = store.yarn_cache / f"{MUTEX}.lock"
    held.mkdir()  # what yarn's --mutex file:… holds while it runs
    assert commit_builds.prune_cache(store, repo) == [] and old.exists()
    held.rmdir()
    assert commit_builds.prune_cache(store, repo) == [f"v6/{old.name}"] and not old.exists()


def test_two_prunes_of_one_cache_at_once_both_finish(tmp_path: Path) -> None:
    """Two builds (threads, or replicas sharing the data folder) prune one cache at once: each passes over what the
    other removed first instead of raising out of the build."""
    repo, root = tmp_path / "app", tmp_path / "builds"
    cache_package(repo / ".yarn-cache", "current", 10)
    for n in range(1500):
        cache_package(root / ".yarn-cache", f"old-{n}", 100, age_s=2 * 3600)
    script = ("import sys; from pathlib import Path; from bot.ops import builds, commit_builds\n"
              "store = builds.BuildStore(Path(sys.argv[1]), max_bytes=20_000)\n"
              "print(len(commit_builds.prune_cache(store, Path(sys.argv[2]))))\n")
    runs = [subprocess.Popen([sys.executable, "-c", script, str(root), str(repo)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    said = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err[-500:] for _, err in said]
    left = list((root / ".yarn-cache" / "v6").iterdir())
    assert sum(int(out) for out, _ in said) + len(left) >= 1500 and len(left) <= 100  # within 10 KB: 100 at most


def _bytes_written() -> int:
    """What this process has written so far (Linux: /proc/self/io's wchar, children it waited for included)."""
    return int(next(line.split()[1] for line in Path("/proc/self/io").read_text().splitlines()
                    if line.startswith("wchar:")))


def test_the_bots_yarn_leaves_nothing_in_the_temp_folder(app: tuple[Path, list[str]], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """yarn v1 leaves a `yarn--<time>-<random>` folder of shims in its temp folder at every `yarn run` (a make
    test left 201 in /tmp): the bot gives each yarn a temp folder of its own and removes it."""
    repo, _ = app
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # what yarn would use on its own
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # and where the bot makes yarn's own
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = socket.gethostname().replace("-", "_")
    left = scratch / f"rollback-bot-yarn-{host}-{dead.pid}-abcd1234"  # a bot killed while its yarn ran left it
    other = scratch / f"rollback-bot-yarn-otherhost-{dead.pid}-abcd1234"  # its pid means nothing here
    left.mkdir()
    other.mkdir()
    assert Yarn().rebuild(repo).ok and Yarn().install(repo).ok
    kept = f"rollback-bot-v8-compile-cache-{os.getuid()}"  # yarn's compile cache, one, reused by every yarn
    assert sorted(p.name for p in scratch.iterdir()) == sorted([kept, other.name]) and any((scratch / kept).iterdir())


def test_a_worktree_build_is_kept_without_touching_the_app_folder_and_its_worktree_is_gone(
        app: tuple[Path, list[str]], tmp_path: Path) -> None:
    repo, (_, _, v3) = app
    before = app_folder(repo)
    kept = capture_commit(repo, builds.BuildStore(tmp_path / "builds"), v3)
    worktrees = tmp_path / "builds" / ".worktrees"
    assert not worktrees.exists() or not any(worktrees.iterdir())  # its outputs were moved out, then it went
    assert intact(kept)  # what was hashed is what is kept
    assert (kept.files_dir / "dist" / "app.js").read_text() == "// v3\n" and app_folder(repo) == before


def test_a_capture_that_moves_writes_none_of_the_builds_bytes_again_and_hashes_as_a_copy_would(
        tmp_path: Path) -> None:
    built = tmp_path / "worktree"
    (built / "dist").mkdir(parents=True)
    (built / "dist" / "big.js").write_bytes(b"x" * (4 << 20))
    (built / "dist" / "run.sh").write_text("#!/bin/sh\n")
    (built / "dist" / "run.sh").chmod(0o755)
    (built / "node_modules" / "pkg").mkdir(parents=True)
    (built / "node_modules" / "pkg" / "index.js").write_text("module.exports = 1;\n")
    (built / "node_modules" / ".bin").mkdir()
    (built / "node_modules" / ".bin" / "pkg").symlink_to("../pkg/index.js")
    same = tmp_path / "same"
    shutil.copytree(built, same, symlinks=True)
    key = builds.BuildKey(tree="a" * 40, lock="none", node="v20.0.0")
    store = builds.BuildStore(tmp_path / "moved")

    written = _bytes_written()
    moved = store.capture(built, key, "abc1234", OUTPUTS, "moved", move=True)
    assert isinstance(moved, builds.Entry) and _bytes_written() - written < 1 << 20  # renamed, not copied
    assert not (built / "dist").exists() and not (built / "node_modules").exists()
    assert intact(moved) and (moved.files_dir / "node_modules" / ".bin" / "pkg").is_symlink()
    copied = builds.BuildStore(tmp_path / "copied").capture(same, key, "abc1234", OUTPUTS, "copied")
    assert isinstance(copied, builds.Entry) and (same / "dist" / "big.js").stat().st_size == 4 << 20
    assert (copied.content_sha256, copied.files, copied.bytes) == (moved.content_sha256, moved.files, moved.bytes)


def test_a_process_killed_mid_capture_leaves_no_usable_entry(app: tuple[Path, list[str]], tmp_path: Path) -> None:
    repo, _ = app
    assert Yarn().rebuild(repo).ok
    root, faults = tmp_path / "builds", tmp_path / "faults"
    faults.mkdir()
    script = ("import sys; from pathlib import Path; from bot.ops import builds\n"
              "repo = Path(sys.argv[1]); key = builds.folder_key(repo, builds.node_version())\n"
              "builds.BuildStore(Path(sys.argv[2])).capture(repo, key, 'abc1234', ['dist', 'node_modules'], 'x')\n")
    env = {**os.environ, "ROLLBACK_FAULT_PAUSE": "builds.before_manifest", "ROLLBACK_FAULT_DIR": str(faults)}
    proc = subprocess.Popen([sys.executable, "-c", script, str(repo), str(root)], env=env,
                            cwd=Path(__file__).resolve().parents[2])
    try:
        deadline = time.monotonic() + 60
        while not (faults / "builds.before_manifest.reached").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the capture never reached its manifest"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    key = builds.folder_key(repo, builds.node_version())
    assert key is not None
    store = builds.BuildStore(root)
    assert store.find(key) is None and store.entries() == []
    left = [p for p in root.iterdir() if p.name.startswith(".incoming-")]
    assert len(left) == 1 and (left[0] / "files" / "dist" / "app.js").exists()  # copied, never published
    assert not (left[0] / "manifest.json").exists() and not (root / key.slug).exists()
    kept = store.capture(repo, key, "abc1234", OUTPUTS, "again")  # a later capture sweeps what the dead one left
    assert isinstance(kept, builds.Entry) and intact(kept)
    assert not [p for p in root.iterdir() if p.name.startswith(".incoming-")]


def test_an_untracked_file_in_the_app_folder_never_ends_up_in_a_kept_build(app: tuple[Path, list[str]],
                                                                        tmp_path: Path) -> None:
    """The reviewer's scenario: an untracked src/hotpatch.js is built into the app's dist/; the keep after the
    verify is made from the commit alone, so the revert to that tree (stash -u removes the file) restores a dist/
    without it. The keep does not touch the app's folder."""
    repo, _ = app
    ctx = context(repo, tmp_path / "data")
    (repo / "src" / "hotpatch.js").write_text("// a hand-made fix, in no commit\n")
    assert rebuild(ctx)[1].ok and (repo / "dist" / "hotpatch.js").exists()  # the running build has it
    before = app_folder(repo)
    entry = kept_after_verify(ctx)
    assert app_folder(repo) == before  # built in a worktree of its own: the app's folder is untouched
    assert len(git.Repo(repo).git.worktree("list").splitlines()) == 1
    assert not (entry.files_dir / "dist" / "hotpatch.js").exists()

    (repo / "src" / "hotpatch.js").unlink()  # what the revert's `git stash push -u` does to it
    plan, result = rebuild(ctx)
    assert plan.startswith("Restore the last-known-good build of tree") and result.ok, plain(result.summary)
    assert isinstance(result.artifacts, RebuildArtifacts) and result.artifacts.attempts == []  # restored
    assert sorted(p.name for p in (repo / "dist").iterdir()) == ["app.js", "built-at.txt"]


def test_a_build_that_writes_outside_the_outputs_is_not_kept(app: tuple[Path, list[str]], tmp_path: Path) -> None:
    repo, shas = app
    ctx = context(repo, tmp_path / "data")
    stray = BUILD_JS + "fs.writeFileSync('public-config.js', 'window.built = 1');\n"
    sha = commit(git.Repo(repo), "the build writes public-config.js too", {"build.js": stray})
    store = build_store(ctx.config, ctx.data_dir)
    said = commit_builds.keep_head(store, repo, Yarn(cache=store.yarn_cache), OUTPUTS, builds.node_version(), "x")
    assert said.startswith("not kept") and "the build wrote outside build.outputs (public-config.js)" in said, said
    assert store.entries() == [] and sha


def test_a_restore_moves_the_kept_build_into_place_and_the_store_keeps_it_again_from_the_app_folder(
        app: tuple[Path, list[str]], tmp_path: Path) -> None:
    repo, _ = app
    ctx = context(repo, tmp_path / "data")
    entry = kept_after_verify(ctx)
    inode = (entry.files_dir / "dist" / "app.js").stat().st_ino
    _, result = rebuild(ctx)
    assert result.ok and result.artifacts.attempts == []  # type: ignore[union-attr]
    assert (repo / "dist" / "app.js").stat().st_ino == inode  # the store's own file: moved, not copied
    store = build_store(ctx.config, ctx.data_dir)
    deadline = time.monotonic() + 30
    while (again := store.find(entry.key)) is None:  # kept again, on a thread, from the app's folder
        assert time.monotonic() < deadline, "the restored build was never kept again"
        time.sleep(0.05)
    assert (again.content_sha256, again.kept_at, again.reason) == (entry.content_sha256, entry.kept_at, entry.reason)
    assert intact(again) and (again.files_dir / "dist" / "app.js").stat().st_ino != inode
    assert (repo / "dist" / "app.js").read_text() == "// v3\n"


def held_keep_again(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """The copy back into the store after a restore (``capture(like=...)``) waits until the event is set, as a
    copy of thousands of files takes a while."""
    released = threading.Event()
    capture = builds.BuildStore.capture

    def slow_keep_again(self: builds.BuildStore, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("like") is not None:
            released.wait(30)
        return capture(self, *args, **kwargs)

    monkeypatch.setattr(builds.BuildStore, "capture", slow_keep_again)
    return released


def test_the_keep_after_a_verify_waits_for_a_restored_build_being_kept_again_instead_of_building_it_twice(
        app: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo, _ = app
    ctx = context(repo, tmp_path / "data")
    entry = kept_after_verify(ctx)
    released = held_keep_again(monkeypatch)
    _, result = rebuild(ctx)
    assert result.ok and result.artifacts.attempts == []  # type: ignore[union-attr]
    threading.Timer(1.0, released.set).start()
    store = build_store(ctx.config, ctx.data_dir)
    said = commit_builds.keep_head(store, repo, Yarn(cache=store.yarn_cache), OUTPUTS, builds.node_version(),
                                   "after verify")
    assert said == f"already kept: {entry.key.describe()}"  # no worktree build of what was being kept again


def test_a_restored_build_that_changed_in_the_app_folder_is_not_kept_again(app: tuple[Path, list[str]],
                                                                           tmp_path: Path) -> None:
    repo, _ = app
    ctx = context(repo, tmp_path / "data")
    entry = kept_after_verify(ctx)
    store = build_store(ctx.config, ctx.data_dir)
    shutil.rmtree(entry.path)  # as a restore that took it leaves the store
    (repo / "dist").mkdir(exist_ok=True)
    (repo / "dist" / "app.js").write_text("// someone's hand edit after the restore\n")
    said = store.capture(repo, entry.key, entry.commit, OUTPUTS, entry.reason, like=entry)
    assert said == "the folder changed since the kept build was restored into it" and store.find(entry.key) is None


def test_a_restore_killed_after_taking_the_kept_build_leaves_it_where_the_next_rebuild_puts_it_back(
        app: tuple[Path, list[str]], tmp_path: Path) -> None:
    """Reported by review: the take removed the manifest, then renamed the files, so a kill (or a refused rename)
    in between left files no entry described, and a kill before the swap lost the build. The entry's folder now
    moves whole, and the next rebuild's plan puts back what a killed restore took."""
    repo, _ = app
    ctx = context(repo, tmp_path / "data")
    entry = kept_after_verify(ctx)
    _kill_restore_at("builds.restore_taken", repo, entry, tmp_path / "faults")
    store = build_store(ctx.config, ctx.data_dir)
    assert store.entries() == [] and not entry.path.exists()  # taken whole: nothing half-described is left
    [taken] = (repo / ".git").glob("rollback-bot-restore-*")
    assert (taken / "entry" / "manifest.json").is_file()
    plan, result = rebuild(ctx)
    assert plan.startswith("Restore the last-known-good build"), plan  # put back first, then planned
    assert result.ok and result.artifacts.attempts == []  # type: ignore[union-attr]
    assert (repo / "dist" / "app.js").read_text() == "// v3\n"


def _kill_restore_at(point: str, repo: Path, entry: builds.Entry, faults: Path, *, take: bool = True) -> None:
    """A real process restoring ``entry`` into ``repo`` (taking it, or copying), killed with SIGKILL at fault
    ``point``."""
    faults.mkdir(exist_ok=True)
    script = ("import sys; from pathlib import Path; from bot.ops import builds\n"
              "store = builds.BuildStore(Path(sys.argv[2]))\n"
              "store.restore(store.entries()[0], Path(sys.argv[1]), ['dist', 'node_modules'], "
              f"take={take})\n")
    env = {**os.environ, "ROLLBACK_FAULT_PAUSE": point, "ROLLBACK_FAULT_DIR": str(faults)}
    proc = subprocess.Popen([sys.executable, "-c", script, str(repo), str(entry.path.parent)], env=env,
                            cwd=Path(__file__).resolve().parents[2])
    try:
        deadline = time.monotonic() + 60
        while not (faults / f"{point}.reached").exists():
            assert proc.poll() is None and time.monotonic() < deadline, f"the restore never reached {point}"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_restore_killed_half_way_through_its_swap_puts_the_old_output_back_and_the_entry_whole(
        app: tuple[Path, list[str]], tmp_path: Path) -> None:
    """Reported by review: the outputs the swap moved aside were kept inside the taken entry, so a kill between
    moving the app's dist aside and moving the kept one in put the entry back with the app's old dist in it,
    and every later take failed on it. Now they sit beside it, and the recovery moves them back where nothing
    replaced them."""
    repo, _ = app
    ctx = context(repo, tmp_path / "data")
    entry = kept_after_verify(ctx)
    (repo / "dist").mkdir(exist_ok=True)
    (repo / "dist" / "mark.txt").write_text("the app's own dist, before the rebuild\n")
    _kill_restore_at("builds.restore_moved_aside", repo, entry, tmp_path / "faults")
    assert not (repo / "dist").exists()  # moved aside; the kept dist never came in
    store = build_store(ctx.config, ctx.data_dir)
    assert store.recover_taken(repo) == [entry]
    assert (repo / "dist" / "mark.txt").is_file()  # the app's dist is back where it was
    assert sorted(p.name for p in entry.path.iterdir()) == ["files", "manifest.json"] and intact(entry)
    assert not list((repo / ".git").glob("rollback-bot-restore-*"))
    _, result = rebuild(ctx)
    assert result.ok and result.artifacts.attempts == []  # type: ignore[union-attr]
    assert (repo / "dist" / "app.js").read_text() == "// v3\n"


def test_an_output_the_kept_build_lacks_stays_out_after_a_restore_however_slowly_its_old_one_is_removed(
        app: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found in review: the recovery moves back an output a dead restore moved aside; a finished restore's
    replaced outputs, still being removed on their thread, were not a dead restore's, and an output the kept
    build does not have (no node_modules) came back into the app's folder."""
    repo, (_, _, v3) = app
    built = tmp_path / "built"
    (built / "dist").mkdir(parents=True)
    (built / "dist" / "app.js").write_text("// v3, built without node_modules\n")
    store = builds.BuildStore(tmp_path / "builds")
    entry = store.capture(built, builds.BuildKey(tree="b" * 40, lock="none", node="v20.0.0"), v3, OUTPUTS, "x")
    assert isinstance(entry, builds.Entry) and entry.outputs == {"dist": True, "node_modules": False}
    (repo / "node_modules" / "old").mkdir(parents=True)
    monkeypatch.setattr(builds, "_remove", lambda folder, *, later: None)  # its removal has not run yet
    assert store.restore(entry, repo, OUTPUTS, take=True) is None
    assert not (repo / "node_modules").exists()
    store.recover_taken(repo)
    assert not (repo / "node_modules").exists() and (repo / "dist" / "app.js").read_text().startswith("// v3")


def test_a_rebuild_planned_while_a_restore_runs_leaves_that_restores_build_alone(
        app: tuple[Path, list[str]], tmp_path: Path) -> None:
    """Reported by review: a second plan (a second click) put the running restore's taken build back into the
    store, and that restore then fell back to yarn. A restore holds a lock on the app's folder; a plan only
    recovers what a dead one left."""
    repo, _ = app
    ctx = context(repo, tmp_path / "data")
    kept_after_verify(ctx)
    planned: list[str] = []

    def progress(text: Any) -> None:
        if plain(text).startswith("moved the kept build next to the app's folder"):
            second = Rebuild().plan(context(repo, tmp_path / "data"))
            planned.append(plain(second.summary))

    ctx.progress = progress
    _, result = rebuild(ctx)
    assert len(planned) == 1 and planned[0].startswith("yarn build in")  # it saw no kept build: it was taken
    assert result.ok and result.artifacts.attempts == [], plain(result.summary)  # type: ignore[union-attr]
    assert (repo / "dist" / "app.js").read_text() == "// v3\n"


def test_a_taken_build_that_cannot_be_read_now_is_left_for_the_next_recovery(
        app: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo, _ = app
    ctx = context(repo, tmp_path / "data")
    entry = kept_after_verify(ctx)
    _kill_restore_at("builds.restore_taken", repo, entry, tmp_path / "faults")
    store = build_store(ctx.config, ctx.data_dir)

    def unreadable(*args: Any, **kwargs: Any) -> Any:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(builds, "content_hash", unreadable)
    assert store.recover_taken(repo) == [] and len(list((repo / ".git").glob("rollback-bot-restore-*"))) == 1
    monkeypatch.undo()
    assert store.recover_taken(repo) == [entry] and intact(entry)


@pytest.mark.parametrize("failure", ["the hash cannot be read", "the swap and the put-back fail"])
def test_a_taken_build_a_restore_could_neither_use_nor_put_back_is_left_for_the_next_recovery(
        app: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    """Found in review: an error reading the taken entry, or a put-back that failed after a swap that could not
    start, deleted the taken build with the staging folder: the only copy of it."""
    repo, _ = app
    ctx = context(repo, tmp_path / "data")
    entry = kept_after_verify(ctx)
    store = build_store(ctx.config, ctx.data_dir)
    (repo / "dist").mkdir(exist_ok=True)
    if failure == "the hash cannot be read":
        def unreadable(*args: Any, **kwargs: Any) -> Any:
            raise OSError(5, "Input/output error")
        monkeypatch.setattr(builds, "content_hash", unreadable)
    else:
        rename = os.rename

        def stuck(source: Any, target: Any, *args: Any, **kwargs: Any) -> None:
            if Path(source) == repo / "dist" or Path(target) == entry.path:
                raise OSError(13, "Permission denied")
            rename(source, target, *args, **kwargs)
        monkeypatch.setattr(builds.os, "rename", stuck)
    said = store.restore(entry, repo, OUTPUTS, take=True)
    monkeypatch.undo()
    assert said is not None and said.why.startswith("restoring it failed") and not said.changed_folder
    assert store.find(entry.key) is None and len(list((repo / ".git").glob("rollback-bot-restore-*"))) == 1
    assert store.recover_taken(repo) == [entry] and intact(entry)


def test_a_take_the_file_systems_refuse_copies_and_the_entry_stays_kept(
        app: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reported by review: two mounts of one file system (a bind mount, systemd's ReadWritePaths, a container
    volume) share a device number, yet rename(2) between them fails with EXDEV. The attempted rename is the
    test: refused, nothing moved, and the restore copies."""
    repo, _ = app
    ctx = context(repo, tmp_path / "data")
    entry = kept_after_verify(ctx)
    rename = os.rename

    def across_mounts(source: Any, target: Any, *args: Any, **kwargs: Any) -> None:
        if Path(source) == entry.path:
            raise OSError(18, "Invalid cross-device link")
        rename(source, target, *args, **kwargs)

    monkeypatch.setattr(builds.os, "rename", across_mounts)
    _, result = rebuild(ctx)
    monkeypatch.undo()
    assert result.ok and result.artifacts.attempts == []  # type: ignore[union-attr]
    assert (repo / "dist" / "app.js").read_text() == "// v3\n"
    store = build_store(ctx.config, ctx.data_dir)
    assert store.find(entry.key) == entry and intact(entry)  # copied, so still kept, untouched


def test_a_taken_build_that_cannot_be_swapped_in_is_put_back_and_yarn_builds(
        app: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reported by review: the app's dist cannot be moved aside (a permission, a mount point): nothing was
    swapped, so the taken build goes back into the store, and the fallback is the runbook's yarn build, not a
    clean install."""
    repo, _ = app
    ctx = context(repo, tmp_path / "data")
    entry = kept_after_verify(ctx)
    (repo / "dist").mkdir(exist_ok=True)
    rename = os.rename

    def stuck(source: Any, target: Any, *args: Any, **kwargs: Any) -> None:
        if Path(source) == repo / "dist":
            raise OSError(13, "Permission denied")
        rename(source, target, *args, **kwargs)

    monkeypatch.setattr(builds.os, "rename", stuck)
    _, result = rebuild(ctx)
    monkeypatch.undo()
    summary = plain(result.summary)
    assert result.ok and summary.startswith("built: build: yarn build exit 0"), summary
    assert "restoring it failed (PermissionError: [Errno 13] Permission denied)" in summary, summary
    store = build_store(ctx.config, ctx.data_dir)
    again = store.find(entry.key)
    assert again == entry and intact(again)
    assert not list((repo / ".git").glob("rollback-bot-restore-*"))


def test_a_restore_of_an_entry_another_restore_took_says_it_is_no_longer_kept(
        app: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo, _ = app
    ctx = context(repo, tmp_path / "data")
    entry = kept_after_verify(ctx)
    released = held_keep_again(monkeypatch)
    store = build_store(ctx.config, ctx.data_dir)
    try:
        assert store.restore(entry, repo, OUTPUTS, take=True) is None
        other = tmp_path / "other"  # a second app folder (another replica's plan of the same entry)
        (other / ".git").mkdir(parents=True)
        for take in (True, False):
            said = store.restore(entry, other, OUTPUTS, take=take)
            assert said is not None and said.why == "it is no longer kept (evicted, or taken by another restore)"
            assert not said.changed_folder
    finally:
        released.set()


def test_a_kept_build_that_changed_is_not_swapped_in_and_yarn_builds(app: tuple[Path, list[str]],
                                                                     tmp_path: Path) -> None:
    """The kept build loses its dist once it is taken out of the store, before its hash is read (a person's rm
    -rf): the hash does not match its manifest, so nothing is swapped in and the app's folder is as it was for the
    runbook's build."""
    repo, _ = app
    ctx = context(repo, tmp_path / "data")
    kept_after_verify(ctx)
    (repo / "dist").mkdir(exist_ok=True)
    (repo / "dist" / "mark.txt").write_text("the app's own dist, before the rebuild\n")

    def progress(text: Any) -> None:
        if plain(text).startswith("moved the kept build next to the app's folder"):
            [staged] = (repo / ".git").glob("rollback-bot-restore-*")
            shutil.rmtree(staged / "entry" / "files" / "dist")

    ctx.progress = progress
    plan, result = rebuild(ctx)
    assert plan.startswith("Restore the last-known-good build")
    summary = plain(result.summary)
    assert result.ok and summary.startswith("built: build: yarn build exit 0"), summary
    assert "was not used: its files do not match its manifest (content hash" in summary, summary
    assert (repo / "dist" / "app.js").read_text() == "// v3\n"
    assert not list((repo / ".git").glob("rollback-bot-restore-*")) and not list(repo.glob(".rollback-bot-*"))


def test_a_copy_that_fails_midway_swaps_nothing_in(app: tuple[Path, list[str]], tmp_path: Path) -> None:
    """A named pipe in the kept build (no build writes one; a person might): the copy stops at it, after the
    files before it, with an error instead of blocking on the pipe. Nothing was swapped in: the app's dist is
    the one it had, the staging folder is gone, and the runbook's yarn build runs (no clean install needed)."""
    repo, _ = app
    ctx = context(repo, tmp_path / "data")
    entry = kept_after_verify(ctx)
    os.mkfifo(entry.files_dir / "dist" / "zz-pipe")  # after app.js and built-at.txt in the copy's order
    (repo / "dist").mkdir(exist_ok=True)
    (repo / "dist" / "mark.txt").write_text("the app's own dist, before the rebuild\n")
    seen: list[bool] = []

    def progress(text: Any) -> None:  # yarn's first phase: what the failed restore left of the app's dist
        if plain(text).startswith("falling back to yarn build"):
            seen.append((repo / "dist" / "mark.txt").exists())

    ctx.progress = progress
    _, result = rebuild(ctx)
    summary = plain(result.summary)
    assert result.ok and summary.startswith("built: build: yarn build exit 0"), summary
    assert "restoring it failed (NotABuild: dist/zz-pipe is not a regular file, a folder or a symlink)" in summary
    assert seen == [True]  # the app's dist was never moved aside
    assert not list((repo / ".git").glob("rollback-bot-restore-*"))


def test_a_restore_that_fails_after_changing_the_folder_falls_back_to_a_clean_install(
        app: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reported by review: the fallback ran `yarn build` first, on whatever a restore that failed half-way had left
    in the folder, and reported success. Once the folder is changed, the fallback starts from a clean install.
    Here the swap fails (an I/O error) after dist was swapped in, before node_modules was."""
    repo, _ = app
    ctx = context(repo, tmp_path / "data")
    kept_after_verify(ctx)
    rename = os.rename

    def failing(source: Any, target: Any, *args: Any, **kwargs: Any) -> None:
        if Path(target) == repo / "node_modules":
            raise OSError(5, "Input/output error")
        rename(source, target, *args, **kwargs)

    monkeypatch.setattr(builds.os, "rename", failing)
    plan, result = rebuild(ctx)
    monkeypatch.undo()
    assert plan.startswith("Restore the last-known-good build")
    summary = plain(result.summary)
    assert result.ok and summary.startswith("built after a clean install: clean install: yarn install"), summary
    assert "was not used: restoring it failed (OSError: [Errno 5] Input/output error)" in summary, summary
    assert (repo / "dist" / "app.js").read_text() == "// v3\n" and (repo / "node_modules").is_dir()


def test_a_restore_killed_midway_leaves_nothing_a_stash_would_take_and_the_next_one_cleans_up(
        app: tuple[Path, list[str]], tmp_path: Path) -> None:
    repo, _ = app
    ctx = context(repo, tmp_path / "data")
    entry = kept_after_verify(ctx)
    _kill_restore_at("builds.restore_copied", repo, entry, tmp_path / "faults", take=False)
    assert len(list((repo / ".git").glob("rollback-bot-restore-*"))) == 1  # staged inside .git/
    assert git.Repo(repo).git.status("--porcelain", "--untracked-files=all") == ""  # nothing for stash -u
    plan, result = rebuild(ctx)
    assert result.ok and result.artifacts.attempts == []  # type: ignore[union-attr]
    assert (repo / "dist" / "app.js").read_text() == "// v3\n"
    # what the killed restore left was removed first; what this one replaced goes on a thread of its own
    deadline = time.monotonic() + 30
    while list((repo / ".git").glob("rollback-bot-*")):
        assert time.monotonic() < deadline, "the replaced outputs were never removed"
        time.sleep(0.05)


def test_another_hosts_live_folders_are_not_swept_and_a_complete_entry_is_never_replaced(
        app: tuple[Path, list[str]], tmp_path: Path) -> None:
    repo, (v1, _, _) = app
    store = builds.BuildStore(tmp_path / "builds")
    (store.root / ".worktrees").mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = socket.gethostname().replace("-", "_")
    other = store.root / ".worktrees" / f"otherhost-{dead.pid}-0123abcd"  # its pid means nothing here
    mine = store.root / ".worktrees" / f"{host}-{dead.pid}-0123abcd"
    elsewhere = store.root / f".incoming-otherhost-{dead.pid}-89abcdef"
    for folder in (other, mine, elsewhere):
        folder.mkdir()
    first = capture_commit(repo, store, v1)
    assert other.exists() and elsewhere.exists() and not mine.exists()

    # another replica publishes the same key while this one copies: theirs stays (it may be being restored)
    aside = first.path.rename(tmp_path / "theirs")
    hold = ("import fcntl, sys, time\nh = open(sys.argv[1], 'a+b'); fcntl.flock(h, fcntl.LOCK_EX)\n"
            "print('held', flush=True); time.sleep(600)\n")
    holder = subprocess.Popen([sys.executable, "-c", hold, str(store.root / ".lock")], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        result: list[Any] = []
        capturing = threading.Thread(target=lambda: result.append(
            store.capture(repo, first.key, v1, OUTPUTS, "a second replica's capture of the same key")))
        capturing.start()
        deadline = time.monotonic() + 60
        while not list(store.root.glob(".incoming-*/manifest.json")):  # written, waiting for the lock
            assert time.monotonic() < deadline and capturing.is_alive(), "the capture never reached the lock"
            time.sleep(0.05)
        aside.rename(first.path)
    finally:
        holder.kill()
        holder.wait(timeout=10)
    capturing.join(timeout=60)
    assert isinstance(result[0], builds.Entry) and result[0].reason == first.reason == f"build of {v1[:7]}"
    assert intact(first) and store.find(first.key) == first
    assert not list(store.root.glob(f".incoming-{host}-*"))


def test_a_failed_build_alongside_is_told_to_its_incidents_rebuild_once_and_never_to_another_incident(
        app: tuple[Path, list[str]], tmp_path: Path) -> None:
    repo, (v1, _, _) = app
    git.Repo(repo).git.checkout(v1)  # reverted to v1: what the build alongside was building
    ctx = context(repo, tmp_path / "data")
    store = build_store(ctx.config, ctx.data_dir)
    key = builds.commit_key(repo, v1, builds.node_version())
    failing = Yarn(executable="false", cache=store.yarn_cache)  # yarn install fails at once
    started = commit_builds.start_alongside(store, repo, v1, key, failing, OUTPUTS, "RB-0001", "alongside RB-0001")
    assert started.wait(60) and started.failure and started.failure.startswith("yarn install")

    first = replace(ctx, incident=SimpleNamespace(id="RB-0001"))
    plan, result = rebuild(first)
    assert "the build alongside the backup failed: yarn install" in plan and result.ok, plan
    later = replace(ctx, incident=SimpleNamespace(id="RB-0002"))
    assert "the build alongside the backup" not in rebuild(later)[0]  # another incident never hears of it
    assert "the build alongside the backup" not in rebuild(first)[0]  # nor its own incident's next rebuild, once told
    assert commit_builds.in_flight(key, "RB-0001") is None


GATED_YARN = """#!/bin/sh
# yarn, held at one command until its gate file exists: the build alongside caught in that phase
GATE='{gate}'
case " $* " in *" {at} "*)
  echo $$ > "$GATE.waiting"
  n=0; while [ ! -e "$GATE" ] && [ $n -lt 6000 ]; do sleep 0.05; n=$((n+1)); done;;  # 5 min at most
esac
exec yarn "$@"
"""


@pytest.fixture
def hold() -> Iterator[Callable[[Path, StepContext, str, str], tuple[commit_builds.Alongside, Path, int]]]:
    """Start the build of a commit alongside RB-0001's backup, held once its yarn reaches a phase (install,
    build): the build, the file that lets it go on, and the pid of its held yarn. Stopped and let go afterwards,
    whatever the test did."""
    held: list[tuple[commit_builds.Alongside, Path]] = []

    def start(repo: Path, ctx: StepContext, commit: str, at: str) -> tuple[commit_builds.Alongside, Path, int]:
        gate = ctx.data_dir / "gate"
        script = ctx.data_dir / "gated-yarn"
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(GATED_YARN.format(gate=gate, at=at))  # the bot's children get a cleaned environment
        script.chmod(0o755)
        store = build_store(ctx.config, ctx.data_dir)
        key = builds.commit_key(repo, commit, builds.node_version())
        build = commit_builds.start_alongside(store, repo, commit, key, Yarn(str(script), cache=store.yarn_cache),
                                              OUTPUTS, "RB-0001", "built alongside the backup of RB-0001")
        held.append((build, gate))
        waiting = gate.with_name("gate.waiting")
        deadline = time.monotonic() + 60
        while not waiting.exists() or not waiting.read_text().strip():
            assert time.monotonic() < deadline and not build.done.is_set(), build.failure
            time.sleep(0.05)
        return build, gate, int(waiting.read_text())

    yield start
    for build, gate in held:
        commit_builds.forget(build)
        gate.touch()
        assert build.wait(60)


def reverted(ctx: StepContext, repo: Path, opened_at: str, *to: str) -> StepContext:
    """``ctx`` for RB-0001, opened with the folder at ``opened_at`` and reverted to each of ``to`` in turn (each
    revert succeeded; the folder checked out at the last)."""
    runs, before = [], opened_at
    now = datetime.now(UTC)
    for n, sha in enumerate(to, 1):
        runs.append(StepRun(id=f"RB-0001-revert-{n}", incident_id="RB-0001", step=StepName.REVERT,
                            actor="U0COMMANDER", status=StepStatus.SUCCEEDED, started_at=now, finished_at=now,
                            artifacts=RevertArtifacts(from_sha=before, to_sha=sha)))
        before = sha
    git.Repo(repo).git.checkout(before)
    return replace(ctx, incident=SimpleNamespace(id="RB-0001", start_commit=opened_at), history=runs)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_build_alongside_not_yet_compiling_is_stopped_and_yarn_builds_in_the_app_folder_sooner(
        app: tuple[Path, list[str]], tmp_path: Path, hold: Any) -> None:
    """A short backup: the rebuild after the revert finds the build alongside still at yarn install, with all of
    its compile and the restore ahead of it. The app's folder (same yarn.lock) needs only `yarn build`."""
    repo, (v1, _, v3) = app
    ctx = reverted(context(repo, tmp_path / "data", timeout_s=30), repo, v3, v1)  # waited for, it fails
    held, _, pid = hold(repo, ctx, v1, "install")

    plan, result = rebuild(ctx)
    assert plan.startswith(f"yarn build in {repo}: the build of {v1[:7]} alongside the backup has not begun "
                           "compiling (at yarn install, "), plan
    assert "so building here is sooner; that build is stopped" in plan
    assert result.ok and isinstance(result.artifacts, RebuildArtifacts) and result.artifacts.attempts
    assert [a.command for a in result.artifacts.attempts] == ["yarn build"]  # here, on the app's node_modules
    assert (repo / "dist" / "app.js").read_text() == "// v1\n"
    assert held.wait(60) and held.failure == "cancelled" and held.entry is None
    deadline = time.monotonic() + 30
    while not gone(pid) or any((tmp_path / "data" / "builds" / ".worktrees").iterdir()):
        assert time.monotonic() < deadline, "the stopped build's yarn or worktree was left behind"
        time.sleep(0.05)
    assert build_store(ctx.config, ctx.data_dir).entries() == []
    assert commit_builds.in_flight(held.key, "RB-0001") is None
    assert len(git.Repo(repo).git.worktree("list").splitlines()) == 1


def test_a_build_alongside_kept_between_the_rebuilds_plan_and_its_run_is_restored_instead(
        app: tuple[Path, list[str]], tmp_path: Path, hold: Any) -> None:
    repo, (v1, _, v3) = app
    ctx = reverted(context(repo, tmp_path / "data"), repo, v3, v1)
    held, gate, _ = hold(repo, ctx, v1, "install")
    planned = Rebuild().plan(ctx)
    assert "so building here is sooner; that build is stopped" in plain(planned.summary)
    gate.touch()
    assert held.wait(60) and held.entry is not None, held.failure
    result = Rebuild().run(ctx, planned)
    assert result.ok and "restored the last-known-good build" in plain(result.summary), plain(result.summary)
    assert isinstance(result.artifacts, RebuildArtifacts) and result.artifacts.attempts == []  # no yarn here


@pytest.mark.parametrize("case", ["compiling", "lock changed", "lock changed earlier", "no revert"])
def test_a_build_alongside_is_waited_for_once_it_compiles_or_when_the_folder_had_another_yarn_lock(
        case: str, app: tuple[Path, list[str]], tmp_path: Path, hold: Any) -> None:
    """Compiling, it is ahead of a build here. With another yarn.lock before the revert, or at any commit the
    folder was at since the incident opened, the app's node_modules may not be the target's, and the worktree's
    clean install of the target's lock is the one to use; so too when no revert says where the folder was."""
    repo, (v1, v2, v3) = app
    ctx = context(repo, tmp_path / "data")
    if case == "lock changed":
        v4 = commit(git.Repo(repo), "v4: a dependency", {"yarn.lock": "# yarn lockfile v1\n"})
        ctx = reverted(ctx, repo, v4, v1)
    elif case == "lock changed earlier":  # opened at v4, reverted to v2 (no rebuild: still v4's node_modules), v1
        v4 = commit(git.Repo(repo), "v4: a dependency", {"yarn.lock": "# yarn lockfile v1\n"})
        ctx = reverted(ctx, repo, v4, v2, v1)
    elif case == "no revert":
        ctx = reverted(ctx, repo, v1)
    else:
        ctx = reverted(ctx, repo, v3, v1)
    held, gate, _ = hold(repo, ctx, v1, "build" if case == "compiling" else "install")
    assert held.phase == (BUILD if case == "compiling" else INSTALL)

    planned = Rebuild().plan(ctx)
    shown = plain(planned.summary)
    assert shown.startswith(f"Wait for the build of {v1[:7]} started alongside the backup"), shown
    gate.touch()
    result = Rebuild().run(ctx, planned)
    assert result.ok and "restored the last-known-good build" in plain(result.summary), plain(result.summary)
    assert isinstance(result.artifacts, RebuildArtifacts) and result.artifacts.attempts == []  # no yarn here
    assert held.entry is not None and (repo / "dist" / "app.js").read_text() == "// v1\n"


# ---- through the bot, against the sandbox (real pm2, HTTP, MongoDB) ----------------------------------------------

def app_folder(repo: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder of the app's folder but .git, with its mtime and size: what "untouched" means."""
    found = {".": (repo.stat().st_mtime_ns, 0)}
    for root, dirs, files in os.walk(repo):  # never into .git, where a build's worktree comes and goes meanwhile
        if root == str(repo):
            dirs[:] = [name for name in dirs if name != ".git"]
        for name in dirs + files:
            path = Path(root, name)
            info = path.lstat()
            found[path.relative_to(repo).as_posix()] = (info.st_mtime_ns, info.st_size)
    return found


def step(emulator: Any, ts: str, text: str) -> str:
    """Run `/rollback <text>` and return everything its thread message shows once it ended: plan and result."""
    from tests.conftest import INCIDENT, content
    from tests.runbook.test_full_rollback import run_step

    said = run_step(emulator, ts, text)
    return next(content(m) for m in emulator.ws.thread(INCIDENT, ts) if m["text"] == said)


@pytest.mark.slow
def test_the_backup_builds_the_target_alongside_and_the_rebuild_after_the_revert_restores_it(
        emulator: Any, live_sandbox: Any, start_bot: Any, settings: Any) -> None:
    from bot.ops.probe import probe
    from tests.runbook.test_full_rollback import panel_ts

    sandbox = live_sandbox
    bot = start_bot()
    emulator.slash("casey", "incident-rollback", "start health 500 after Phase 3").wait()
    ts = panel_ts(emulator)
    before, head = app_folder(sandbox.repo), git.Repo(sandbox.repo).head.commit.hexsha
    good = sandbox.good_commit[:7]
    backed_up = step(emulator, ts, "backup")
    assert "— succeeded" in backed_up
    assert f"meanwhile: build `{good}` (the rollback target) in a separate git worktree" in backed_up  # its plan
    assert (f"building `{good}` in the background for the revert" in backed_up
            or f"built `{good}` alongside" in backed_up), backed_up  # its result

    store = build_store(settings.runbook, settings.data_dir)
    key = builds.commit_key(sandbox.repo, sandbox.good_commit, builds.node_version())
    deadline = time.monotonic() + 120
    while store.find(key) is None:
        assert time.monotonic() < deadline, "the build alongside the backup was never kept"
        time.sleep(0.2)
    entry = store.find(key)
    assert entry is not None and entry.reason == "built alongside the backup of RB-0001"
    assert app_folder(sandbox.repo) == before and git.Repo(sandbox.repo).head.commit.hexsha == head
    while len(git.Repo(sandbox.repo).git.worktree("list").splitlines()) != 1 or any(
            (store.root / ".worktrees").iterdir()):  # the worktree is removed once the entry is kept
        assert time.monotonic() < deadline, "the build's worktree was never removed"
        time.sleep(0.1)

    assert "— succeeded" in step(emulator, ts, f"revert {good}")
    rebuilt = step(emulator, ts, "rebuild")
    tree = git.Repo(sandbox.repo).commit(sandbox.good_commit).tree.hexsha[:7]
    assert f"Restore the last-known-good build of tree {tree}" in rebuilt, rebuilt
    assert "built alongside the backup of RB-0001) instead of `yarn build`" in rebuilt
    assert "— succeeded" in rebuilt and "restored the last-known-good build" in rebuilt
    run = [r for r in bot.services.store.step_runs("RB-0001") if r.step.value == "rebuild"][-1]
    assert isinstance(run.artifacts, RebuildArtifacts) and run.artifacts.attempts == []  # yarn never ran here
    assert "Phase" not in (sandbox.repo / "dist" / "server.js").read_text()
    assert not (sandbox.repo / "dist" / "assessment.js").exists()  # Phase 2's file is not in the good build
    assert "— succeeded" in step(emulator, ts, "restart")
    assert "— succeeded" in step(emulator, ts, "verify")
    assert probe(sandbox.health_url, timeout=5).status == 200


@pytest.mark.slow
def test_after_a_verify_passes_the_bot_keeps_the_build_and_a_rebuild_restores_it(
        emulator: Any, live_sandbox: Any, start_bot: Any, tmp_path: Path) -> None:
    from tests.conftest import make_settings
    from tests.runbook.test_autopilot import stopped
    from tests.runbook.test_full_rollback import panel_ts

    sandbox = live_sandbox
    settings = make_settings(emulator, sandbox, tmp_path / "data", build={"keep": {"alongside_backup": False}})
    start_bot(settings)
    emulator.slash("casey", "incident-rollback", "start health 500 --auto").wait()
    ts = panel_ts(emulator)
    assert "service is back" in stopped(emulator, ts)
    tree = git.Repo(sandbox.repo).commit(sandbox.good_commit).tree.hexsha[:7]
    store = build_store(settings.runbook, settings.data_dir)
    deadline = time.monotonic() + 60
    while not store.entries():
        assert time.monotonic() < deadline, "the verified build was never kept"
        time.sleep(0.2)
    entry = store.entries()[0]
    assert entry.reason == "after verify of RB-0001" and entry.key.tree[:7] == tree
    assert entry.outputs["dist"] and intact(entry)

    again = step(emulator, ts, "rebuild --again")
    assert f"Restore the last-known-good build of tree {tree}" in again and "after verify of RB-0001" in again
    assert "— succeeded" in again and "restored the last-known-good build" in again
