"""The folder of `rollback-bot local` between runs, on real folders with a real pm2 daemon and a real local
MongoDB: what the last run left running is stopped first; then its sandbox, tenant data and state are removed
(by default) or kept (--keep); another run still using the folder is never pulled out from under it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.dev import localmongo
from bot.dev.commands import local_config
from bot.dev.local import LOCK, RUN_PARTS, prepare
from bot.dev.localmongo import running_server, start_detached, stop_detached
from bot.dev.sandbox import Sandbox, create_sandbox
from bot.errors import ConfigError
from bot.ops.pm2 import Pm2
from bot.ops.process import find_executable
from bot.store.sqlite import SQLiteStore

pytestmark = pytest.mark.slow


def leave_running(root: Path, port: int | None = None) -> tuple[int, int]:
    """What a killed run leaves: its local MongoDB (detached here) and a pm2 daemon in its sandbox's PM2_HOME.
    Their pids."""
    server = start_detached(root / "mongo", port=port)
    sandbox = Sandbox.find(root / "target") or create_sandbox(root / "target", mongo_uri=server.uri,
                                                              local_server=True, mongo_dir=root / "mongo")
    assert sandbox.pm2_home is not None
    pm2 = find_executable("pm2")
    assert pm2 is not None, "pm2 is not installed: run `make deps`"
    # `pm2 ping` starts the daemon of that PM2_HOME when none runs
    subprocess.run([pm2, "ping"], env={**os.environ, "PM2_HOME": str(sandbox.pm2_home)}, check=True,
                   capture_output=True, timeout=60)
    return server.pid, int((sandbox.pm2_home / "pm2.pid").read_text())


def tidy(root: Path) -> None:
    """Whatever happened in the test, nothing it started keeps running."""
    home = root / "target" / "pm2-home"
    try:
        daemon = int((home / "pm2.pid").read_text())
    except (OSError, ValueError):
        daemon = None
    if daemon is not None and localmongo.alive(daemon):
        Pm2(home=home).kill()
    stop_detached(root / "mongo")


def test_keep_keeps_and_the_default_removes_after_stopping_what_was_left_running(tmp_path: Path) -> None:
    root = tmp_path / "local"
    try:
        server, daemon = leave_running(root)
        sandbox = Sandbox.load(root / "target")
        local_config(root, sandbox)
        SQLiteStore(root / "data" / "rollback-bot.sqlite3").close()
        (root / "notes.txt").write_text("mine")  # not the run's: never touched

        line = prepare(root, keep=True)
        assert line.startswith(f"keeping the sandbox and state from the last run (--keep) in {root}; stopped what "
                               f"the last run left running first (its pm2 daemon, pid {daemon}, its local MongoDB")
        assert not localmongo.alive(daemon) and not localmongo.alive(server)
        assert all((root / part).exists() for part in RUN_PARTS) and Sandbox.load(root / "target") == sandbox

        server, daemon = leave_running(root, port=sandbox.mongo_port)  # the next run was killed too
        line = prepare(root, keep=False)
        assert line.startswith(f"fresh sandbox: removed the last run's sandbox, tenant data and state in {root} "
                               "(--keep keeps them); stopped what the last run left running first (its pm2 daemon")
        assert not localmongo.alive(daemon) and not localmongo.alive(server)
        assert not any((root / part).exists() for part in RUN_PARTS)
        assert (root / "notes.txt").read_text() == "mine"

        assert prepare(root, keep=False) == f"fresh sandbox in {root} (next time --keep keeps its state)"
        assert prepare(root, keep=True) == f"--keep: no sandbox from an earlier run in {root}, so making a new one"
    finally:
        tidy(root)
    assert running_server(root / "mongo") is None


def test_a_folder_another_local_run_uses_is_refused_until_that_run_is_gone(tmp_path: Path) -> None:
    root = tmp_path / "local"
    (root / "data").mkdir(parents=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "local"])
    try:
        cmdline = Path(f"/proc/{other.pid}/cmdline")
        deadline = time.monotonic() + 30
        while b"time.sleep(120)" not in cmdline.read_bytes():  # exec'd (until then it shows pytest's command line)
            assert time.monotonic() < deadline, "the stand-in process never started"
            time.sleep(0.01)
        (root / LOCK).write_text(f"{other.pid}\n")
        with pytest.raises(ConfigError, match=f"another `rollback-bot local` \\(pid {other.pid}\\) is running"):
            prepare(root, keep=False)
        assert (root / "data").exists()
    finally:
        other.kill()
        other.wait()
    assert prepare(root, keep=False).startswith("fresh sandbox: removed")  # its lock outlived it: stale
    assert not (root / "data").exists()


def test_a_lock_whose_pid_now_belongs_to_another_program_is_stale(tmp_path: Path) -> None:
    root = tmp_path / "local"
    root.mkdir()
    unrelated = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (root / LOCK).write_text(f"{unrelated.pid}\n")
        assert prepare(root, keep=False).startswith("fresh sandbox in")
    finally:
        unrelated.kill()
        unrelated.wait()
