"""`bot.ops.process.run` stops what it started when asked to (a keep of the running build when an incident
opens, a build alongside the backup the rebuild gave up on) or when its time is up: the child and everything it
started, a grandchild that handles SIGTERM included. Real processes."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bot.ops.process import Completed, alive, run

# The child prints, starts a grandchild that ignores SIGTERM (a build's worker with a shutdown handler) and
# waits for it; the grandchild writes its pid and sleeps far longer than the test.
CHILD = """
import subprocess, sys
print("child started", flush=True)
grandchild = subprocess.Popen([sys.executable, "-c", sys.argv[2], sys.argv[1]])
grandchild.wait()
"""
GRANDCHILD = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
open(sys.argv[1], "w").write(str(os.getpid()))
time.sleep(300)
"""


def _wait_for(condition: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_a_cancelled_child_and_a_grandchild_that_ignores_sigterm_are_stopped(tmp_path: Path) -> None:
    mark = tmp_path / "grandchild.pid"
    stop = threading.Event()
    result: list[Completed] = []
    runner = threading.Thread(target=lambda: result.append(run(
        [sys.executable, "-c", CHILD, str(mark), GRANDCHILD], timeout=600, cancelled=stop.is_set)))
    runner.start()
    _wait_for(lambda: mark.exists() and mark.read_text(), "the grandchild to start")
    grandchild = int(mark.read_text())
    stop.set()
    runner.join(timeout=60)
    assert not runner.is_alive(), "run() did not return after the cancel"
    [done] = result
    assert done.returncode == 130 and not done.timed_out
    assert "child started" in done.output and "(cancelled; stopped it and everything it started)" in done.output
    _wait_for(lambda: not alive(grandchild), "the grandchild to be gone")


def test_the_time_limit_still_holds_with_a_cancel_that_never_comes(tmp_path: Path) -> None:
    mark = tmp_path / "grandchild.pid"
    done = run([sys.executable, "-c", CHILD, str(mark), GRANDCHILD], timeout=2, cancelled=lambda: False)
    assert done.returncode == 124 and done.timed_out and "timed out after 2s" in done.output
    assert mark.exists()
    _wait_for(lambda: not alive(int(mark.read_text())), "the grandchild to be gone")


def test_without_a_cancel_a_child_runs_to_its_end(tmp_path: Path) -> None:
    done = run([sys.executable, "-c", "print('ok')"], cancelled=lambda: False)
    assert done.ok and done.output.strip() == "ok"
