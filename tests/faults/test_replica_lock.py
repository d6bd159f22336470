"""The replica lock against holders in other OS processes: a short hold is waited out, a live holder refused.

Found by the soak (`make soak`): a bot restarted in the same process was refused its own replica id ("already in
use by pid <its own pid>") while the machine was loaded, and the sequence did not replay. Most likely a child
its earlier incarnation had just forked (for git) still shared the lock's open file, between fork and exec, when
the new incarnation asked for the lock, once. The first test makes exactly that happen.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.clock import SystemClock
from bot.domain.ownership import Replica
from bot.domain.store import Store
from bot.errors import ConfigError
from bot.store import open_store

pytestmark = pytest.mark.slow

LET_GO_S = 0.3  # the holder lets go this long after the new replica first asks: well within LOCK_WAIT_S

#: Another process: takes the lock, writes a holder line as a replica does, says so, and lets go when told.
HOLD = """
import fcntl, os, socket, sys
handle = open(sys.argv[1], "a+b")
fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
handle.write(f"{os.getpid()} holder@{socket.gethostname()}/{os.getpid()}\\n".encode())
handle.flush()
print("held", flush=True)
sys.stdin.readline()
fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
print("released", flush=True)
"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(None, tmp_path)
    yield opened
    opened.close()


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A process holding ``replicas/r1.lock`` until a line is written to its stdin."""
    (tmp_path / "replicas").mkdir()
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "replicas" / "r1.lock")],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "held"
        yield process
    finally:
        process.kill()
        process.wait()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()


def test_a_restart_while_a_child_of_the_earlier_incarnation_still_shares_its_lock_waits_for_it(
        store: Store, tmp_path: Path) -> None:
    first = Replica(store, SystemClock(), "r1", tmp_path / "replicas").start()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # a child forked for git, not yet at exec: it shares the lock's open file until it goes
        os.close(write)
        os.read(read, 1)
        os._exit(0)
    os.close(read)
    first.stop()  # the earlier incarnation closes its lock file; the child still has it
    second = Replica(store, SystemClock(), "r1", tmp_path / "replicas")
    goes = threading.Timer(LET_GO_S, os.write, (write, b"x"))  # the child goes while the new one asks
    goes.start()
    try:
        second.start()  # the old code refused at once: "already in use by pid <this pid>", the soak's words
        assert os.waitpid(child, 0)[1] == 0  # it started because the child let go
        child = 0
        assert (tmp_path / "replicas" / "r1.lock").read_text().split()[-1] == second.owner.instance
        assert store.lease(second.lease_name) is not None
    finally:
        goes.join()
        os.close(write)
        second.stop()
        if child:
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)


def test_a_replica_lock_another_process_lets_go_of_within_the_wait_is_taken(
        store: Store, tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    replica = Replica(store, SystemClock(), "r1", tmp_path / "replicas")
    assert holder.stdin is not None and holder.stdout is not None
    goes = threading.Timer(LET_GO_S, lambda: (holder.stdin.write("go\n"), holder.stdin.flush()))  # type: ignore[union-attr]
    goes.start()
    try:
        replica.start()  # the old code refused at once: "replica id `r1` is already in use"
        assert holder.stdout.readline().strip() == "released"  # it started because the holder let go
        assert store.lease(replica.lease_name) is not None
    finally:
        goes.join()
        replica.stop()


def test_a_replica_lock_a_live_process_keeps_is_refused_naming_it(
        store: Store, tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    with pytest.raises(ConfigError) as refused:
        Replica(store, SystemClock(), "r1", tmp_path / "replicas").start()
    said = str(refused.value)
    assert f"replica id `r1` is already in use by pid {holder.pid} on host {socket.gethostname()}" in said
    assert "ROLLBACK_REPLICA_ID" in said
    assert holder.poll() is None  # refused while the holder lives, not after it
    assert store.lease("replica:r1") is None  # and nothing of it was taken
