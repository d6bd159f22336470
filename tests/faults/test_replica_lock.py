"""The replica lock against a holder in another OS process: a short hold is waited out, a live holder refused.

Found by the soak (`make soak`): a bot restarted in the same process was refused its own replica id ("already in
use by pid <its own pid>") while the machine was loaded. A child its earlier incarnation had just forked for git
still shared the lock's open file, between fork and exec, when the new incarnation asked for the lock once.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.clock import SystemClock
from bot.domain.ownership import Replica
from bot.domain.store import Store
from bot.errors import ConfigError
from bot.store import open_store

HOLD = """
import fcntl, sys, time
handle = open(sys.argv[1], "a+b")
fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(None, tmp_path)
    yield opened
    opened.close()


def hold(lock: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process holding ``lock``'s flock for ``seconds``; returns once it holds it."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lock), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_a_replica_lock_held_for_a_moment_by_another_process_is_waited_for_not_refused(
        store: Store, tmp_path: Path) -> None:
    holder = hold(tmp_path / "replicas" / "r1.lock", 0.3)
    replica = Replica(store, SystemClock(), "r1", tmp_path / "replicas")
    try:
        replica.start()  # the old code refused at once: "replica id `r1` is already in use"
        assert holder.wait(timeout=10) == 0  # it started once the other process let go
        assert store.lease(replica.lease_name) is not None
        assert (tmp_path / "replicas" / "r1.lock").read_text().split()[-1] == replica.owner.instance
    finally:
        replica.stop()
        holder.kill()
        holder.wait()


def test_a_replica_lock_a_live_process_keeps_is_still_refused(store: Store, tmp_path: Path) -> None:
    holder = hold(tmp_path / "replicas" / "r1.lock", 120)
    try:
        with pytest.raises(ConfigError, match=r"replica id `r1` is already in use .*ROLLBACK_REPLICA_ID"):
            Replica(store, SystemClock(), "r1", tmp_path / "replicas").start()
        assert holder.poll() is None  # refused while the holder lives, not after it
        assert store.lease("replica:r1") is None  # and nothing of it was taken
    finally:
        holder.kill()
        holder.wait()
