"""Replica ids never collide, proven with real processes sharing one state store (as in test_crashes): two
processes on one host with the default id leave each other's work alone, and a second live process on an id
another live process holds refuses to start, naming that process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.clock import from_iso
from bot.dev.emulator import Emulator
from bot.dev.sandbox import Sandbox
from bot.domain.ownership import default_replica_id
from tests.faults.test_crashes import Case, _database_uri

pytestmark = pytest.mark.slow


@pytest.fixture
def shared(emulator: Emulator, sandbox: Sandbox, tmp_path: Path, mongo_uri: str) -> Iterator[Any]:
    """Cases with their own data folder each (as on two hosts, or two folders on one), one MongoDB state store."""
    state = _database_uri(mongo_uri, f"rollback_state_{uuid.uuid4().hex[:8]}")
    made: list[Case] = []

    def make(name: str, **config: Any) -> Case:
        root = tmp_path / name
        root.mkdir()
        made.append(Case(emulator, sandbox, root, state_uri=state, **config))
        return made[-1]

    yield make
    for each in made:
        each.close()
    from pymongo import MongoClient

    MongoClient(state).drop_database(state.rsplit("/", 1)[1].split("?")[0])


def test_two_processes_on_one_host_with_the_default_id_leave_each_others_work_alone(shared: Any) -> None:
    a_case: Case = shared("a")
    b_case: Case = shared("b")
    a = a_case.start(replica="", pause="comms.posted#1")  # no ROLLBACK_REPLICA_ID: the default id
    a_case.slash("start drill")
    a_case.paused_at("comms.posted")  # A is alive (its heartbeat runs) and inside the post
    b_case.start(replica="")
    b_id = b_case.wait(lambda: next((f.stem for f in (b_case.data / "replicas").glob("*.lock")), None), 30,
                       "B's replica lock")
    lease = b_case.wait(lambda: b_case.store.lease(f"replica:{b_id}"), 30, "replica B's lease")
    for beat in (1, 2):  # B has run for two heartbeats, so its recovery sweeps (every 0.5 s) have looked
        lease = b_case.wait(lambda last=lease: (now := b_case.store.lease(f"replica:{b_id}")) and now[1] > last[1]
                            and now, 30, f"B renewing its lease ({beat})")
    incident = a_case.store.get_incident("RB-0001")
    assert incident is not None
    post = incident.comms["rollback_started"]
    assert post.owner is not None and post.owner.pid == a.process.pid
    assert post.ts is None and a_case.audit("comms.recovered") == []  # B did not take A's live work for its own
    a_id = post.owner.replica
    assert a_id != b_id and {a_id, b_id} == {default_replica_id(a_case.data), default_replica_id(b_case.data)}
    held = a_case.store.lease(f"replica:{a_id}")
    assert held is not None and held[0] == post.owner.instance  # nor A's lease
    killed_at = a.kill()

    a_case.wait(lambda: (i := a_case.store.get_incident("RB-0001")) and i.comms["rollback_started"].ts, 60,
                "B to find and record A's post once A is dead")
    recovered = a_case.audit("comms.recovered")
    assert [e.data["found"] for e in recovered] == [True] and from_iso(recovered[0].at).timestamp() >= killed_at
    assert len(a_case.posts("rollback started")) == 1
    a_case.no_duplicates()


def test_a_second_live_process_on_a_replica_id_in_use_refuses_to_start_and_names_the_holder(shared: Any) -> None:
    a_case: Case = shared("a")
    b_case: Case = shared("b")  # another data folder: the lock file cannot see A, only the shared store can
    a = a_case.start(replica="same-id")
    env = {**os.environ, **b_case.emulator.bot_env(), "ROLLBACK_REPLICA_ID": "same-id",
           "STATE_STORE_URI": str(b_case.state_uri)}
    env.pop("ROLLBACK_FAULT_PAUSE", None)
    second = subprocess.run([sys.executable, "-m", "bot.cli", "--config", str(b_case.config), "run"],
                            cwd=b_case.root, env=env, capture_output=True, text=True, timeout=60)

    assert second.returncode == 2, second.stdout + second.stderr
    said = second.stderr
    assert "replica id `same-id` is in use by a live process" in said
    assert f"pid {a.process.pid} on host {socket.gethostname()}" in said and "ROLLBACK_REPLICA_ID" in said
    held = a_case.store.lease("replica:same-id")
    assert held is not None and held[0].endswith(f"/{a.process.pid}")  # A keeps its lease
    assert a.alive
    a_case.slash("start drill")  # and keeps working
    a_case.wait(lambda: a_case.posts("rollback started"), 30, "A's first update")
    a_case.no_duplicates()


def test_a_replica_restarted_after_kill_9_is_not_refused_by_its_own_unexpired_lease(shared: Any) -> None:
    c: Case = shared("a", store={"owner_lease_s": 120})  # the dead process's lease outlives the test
    first = c.start(replica="")
    name = f"replica:{default_replica_id(c.data)}"
    held = c.wait(lambda: c.store.lease(name), 30, "the lease")
    assert held[0].endswith(f"/{first.process.pid}")
    first.kill()
    assert (c.store.lease(name) or held)[1] > datetime.now(UTC)  # not expired: only the lock says it is dead

    second = c.start(replica="")  # starts (and connects) at once: the lock file knows the holder was its own
    c.wait(lambda: (now := c.store.lease(name)) and now[0].endswith(f"/{second.process.pid}"), 30,
           "the restarted process holding the lease")
    assert second.alive
