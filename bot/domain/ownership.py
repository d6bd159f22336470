"""Who owns running work, across processes and replicas.

Every step run, danger-zone run and stakeholder post carries an :class:`Owner`: the replica id (stable
across restarts of the same replica), the instance (new for every process start), host, pid and start
time. A process proves it is the only live incarnation of its replica id by holding an exclusive lock
file (``<data_dir>/replicas/<id>.lock``): the kernel drops the lock the moment a process dies, even by
``kill -9``. So on start-up a replica knows that whatever its replica id owned under another instance is
dead *at once*. Other replicas' work is judged by the store lease ``replica:<id>``, renewed every
``heartbeat_s``: a dead replica's work is taken over only after that lease expires.

That rule needs replica ids that never collide: two live processes on one id would each take the other's
work for its own dead process's. So the default id is the host name plus a short hash of the data folder's
absolute path (stable across restarts, different for each host sharing one data folder and for each data
folder on one host), and a process refuses to start on an id whose lease a live process elsewhere holds
(another data folder, another machine): the lock cannot see that one, the shared store can. The lease's
holder is the instance, which names its host and pid (``<random>@<host>/<pid>``) for that message. The lock
file keeps the instances that held it, so a restart after ``kill -9`` knows the unexpired lease it finds is
its own earlier incarnation's, not a stranger's.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict

from bot.clock import Clock
from bot.errors import ConfigError

log = logging.getLogger(__name__)
SAFE_ID = re.compile(r"[^A-Za-z0-9._-]+")


class Owner(BaseModel):
    """The process that runs (or ran) a piece of work."""

    model_config = ConfigDict(frozen=True)

    replica: str
    instance: str
    host: str = ""
    pid: int = 0
    started_at: AwareDatetime | None = None

    def describe(self) -> str:
        return f"replica {self.replica} (pid {self.pid} on {self.host or 'unknown host'})"


LEGACY_OWNER = Owner(replica="legacy", instance="legacy")  # work recorded before owners existed: never alive


class Leases(Protocol):
    """The part of the store the replica registry needs."""

    def set_lease(self, name: str, holder: str, now: datetime, ttl_s: float) -> None: ...

    def try_lease(self, name: str, holder: str, now: datetime, ttl_s: float) -> bool: ...

    def lease(self, name: str) -> tuple[str, datetime] | None: ...

    def release_lease(self, name: str, holder: str, now: datetime) -> None: ...


@dataclass(frozen=True)
class Liveness:
    """What this replica's heartbeat knows about the store and its lease: None where all is well, else why not."""

    store: str | None
    lease: str | None


LOCK_HISTORY = 20  # instances remembered in the lock file: this replica's earlier incarnations
# A replica lock still held this long is another live process's: that start is refused. A shorter hold is waited
# out: a child of an earlier incarnation caught between fork and exec shares the lock's open file until it execs
# (milliseconds, but longer on a loaded machine; most likely why a soak found a restart refused), or that
# incarnation is exiting.
LOCK_WAIT_S, LOCK_RETRY_S = 2.0, 0.05


def default_replica_id(data_dir: Path | None = None) -> str:
    """The host name and a short hash of the data folder's absolute path: stable across restarts, unique per
    host (also when several hosts share one data folder) and per data folder on one host."""
    host = SAFE_ID.sub("-", socket.gethostname()) or "replica"
    if data_dir is None:
        return host
    folder = str(Path(data_dir).expanduser().resolve())
    return f"{host}-{hashlib.sha256(folder.encode()).hexdigest()[:6]}"


def describe_holder(holder: str) -> str:
    """Who holds a replica lease, from its holder (an instance: ``<random>@<host>/<pid>``)."""
    _, at, where = holder.partition("@")
    host, _, pid = where.rpartition("/")
    if at and host and pid.isdigit():
        return f"pid {pid} on host {host}"
    return f"instance {holder}"  # a holder that names no host and pid (as before eef014a, never released)


def _flock_within(handle: IO[bytes], wait_s: float) -> bool:
    """Take ``handle``'s exclusive flock, trying again until ``wait_s`` has passed; whether it was taken."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(LOCK_RETRY_S)


class Replica:
    """This process, as one replica among several sharing a state store."""

    def __init__(self, leases: Leases, clock: Clock, replica_id: str, lock_dir: Path, *,
                 lease_s: float = 30.0, heartbeat_s: float = 5.0) -> None:
        replica_id = SAFE_ID.sub("-", replica_id.strip()) or default_replica_id(Path(lock_dir).parent)
        self.leases, self.clock = leases, clock
        self.lease_s, self.heartbeat_s = lease_s, heartbeat_s
        host, pid = socket.gethostname(), os.getpid()
        self.owner = Owner(replica=replica_id, instance=f"{uuid.uuid4().hex}@{host}/{pid}", host=host, pid=pid,
                           started_at=clock.now())
        self.lock_path = Path(lock_dir) / f"{replica_id}.lock"
        self._lock_file: IO[bytes] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._running: set[str] = set()  # refs of work this process is executing right now
        self._running_lock = threading.Lock()
        # The heartbeat's last word (time.monotonic()): when a beat last reached the store, whether it held the
        # lease then, and why the last beat failed, if it did.
        self._reached_at: float | None = None
        self._held = False
        self._beat_error: str | None = None

    @property
    def id(self) -> str:
        return self.owner.replica

    @property
    def lease_name(self) -> str:
        return f"replica:{self.owner.replica}"

    # ---- life cycle -----------------------------------------------------------------------------------
    def start(self) -> Replica:
        """Take the replica lock (refusing a second live process with the same id and data folder: one that
        still holds it after ``LOCK_WAIT_S``), then the lease (refusing one with the same id elsewhere, whose lease
        is held and not expired)."""
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.lock_path.open("a+b")
        if not _flock_within(handle, LOCK_WAIT_S):
            handle.seek(0)
            held = handle.read().decode(errors="replace").strip().splitlines()
            handle.close()
            holder = f" by {describe_holder(held[-1].split()[-1])}" if held and held[-1].split() else ""
            raise ConfigError(
                f"replica id `{self.owner.replica}` is already in use{holder} (lock {self.lock_path}); "
                "give each replica its own ROLLBACK_REPLICA_ID") from None
        try:
            handle.seek(0)
            earlier = [line.split()[-1] for line in handle.read().decode(errors="replace").splitlines()
                       if line.split()][-LOCK_HISTORY:]
            # Remembered before the lease is taken: a kill -9 between the two still leaves this instance known.
            handle.seek(0)
            handle.truncate()
            handle.write("".join(f"{line}\n" for line in [*earlier[1 - LOCK_HISTORY:],
                                                          f"{self.owner.pid} {self.owner.instance}"]).encode())
            handle.flush()
            os.fsync(handle.fileno())
            self._take_lease(set(earlier))
            self._reached_at, self._held = time.monotonic(), True
        except BaseException:
            handle.close()
            raise
        self._lock_file = handle
        self._thread = threading.Thread(target=self._beat_loop, name=f"replica-{self.id}", daemon=True)
        self._thread.start()
        return self

    def _take_lease(self, earlier: set[str]) -> None:
        """The lease ``replica:<id>``, unless a live process that is not an earlier incarnation of this one (it
        is not in the lock file) holds it: then two processes would share the id, so this one does not start."""
        now = self.clock.now()
        if self.leases.try_lease(self.lease_name, self.owner.instance, now, self.lease_s):
            return
        held = self.leases.lease(self.lease_name)
        if held is not None and held[0] not in earlier and held[1] > now:
            raise ConfigError(
                f"replica id `{self.owner.replica}` is in use by a live process: {describe_holder(held[0])} holds "
                f"its lease in the state store (until {held[1]:%H:%M:%S} UTC; it renews it while it runs). Give "
                "each replica its own ROLLBACK_REPLICA_ID, or leave it unset for the default (host name and data "
                "folder)")
        self.leases.set_lease(self.lease_name, self.owner.instance, now, self.lease_s)  # our own dead incarnation

    def beat(self) -> None:
        try:
            ours = self.leases.try_lease(self.lease_name, self.owner.instance, self.clock.now(), self.lease_s)
        except Exception as error:
            self._beat_error = f"{type(error).__name__}: {str(error)[:200]}"
            raise
        self._reached_at, self._held, self._beat_error = time.monotonic(), ours, None
        if not ours:
            held = self.leases.lease(self.lease_name)
            log.error("the lease of replica %s is held by another process (%s); two processes share one replica id",
                      self.id, describe_holder(held[0]) if held else "unknown")

    def _beat_loop(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                self.beat()
            except Exception:  # a missed beat only makes this replica look dead sooner
                log.warning("replica heartbeat failed", exc_info=True)

    def liveness(self) -> Liveness:
        """From the heartbeat alone (no store call, so it answers at once). The store is reachable when the last
        beat reached it and the next one is not overdue: a beat stuck on a store that went away counts as failed
        ``heartbeat_s`` plus half a beat (at most a second) after the last good one. The lease is held while the
        store granted it at the last beat and it has not run out since."""
        if self._stop.is_set():
            return Liveness(store="this replica has stopped", lease="released: this replica has stopped")
        age = None if self._reached_at is None else time.monotonic() - self._reached_at
        grace = min(1.0, self.heartbeat_s / 2)
        if self._beat_error is not None:
            store: str | None = f"the last heartbeat could not reach the store ({self._beat_error})"
        elif age is None:
            store = "no heartbeat has reached the store yet"
        elif age > self.heartbeat_s + grace:
            store = f"no heartbeat has reached the store for {age:.1f} s (one is due every {self.heartbeat_s:g} s)"
        else:
            store = None
        if age is None or age > self.lease_s:
            lease: str | None = f"not renewed for over {self.lease_s:g} s: it has run out"
        elif not self._held:
            lease = f"held by another process: two processes share replica id {self.id}"
        else:
            lease = None
        return Liveness(store=store, lease=lease)

    def stop(self) -> None:
        """Give up the lease and the lock: other replicas may take over at once. Idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.leases.release_lease(self.lease_name, self.owner.instance, self.clock.now())
        except Exception:
            log.warning("could not release the replica lease", exc_info=True)
        if self._lock_file is not None:
            self._lock_file.close()  # closing the file drops the flock
            self._lock_file = None

    # ---- work this process runs -------------------------------------------------------------------
    def running(self, ref: str) -> _Running:
        """``with replica.running(ref):`` marks work as executed by this process while the block runs."""
        return _Running(self, ref)

    def is_running_here(self, ref: str) -> bool:
        with self._running_lock:
            return ref in self._running

    # ---- liveness ---------------------------------------------------------------------------------
    def is_alive(self, owner: Owner | None, ref: str | None = None) -> bool:
        """Whether the process that owns a piece of work still runs it."""
        if owner is None:
            return False
        if owner.instance == self.owner.instance:
            return ref is None or self.is_running_here(ref)  # this process: alive while it runs the work
        if owner.replica == self.owner.replica:
            return False  # an earlier incarnation of this replica: we hold the lock, so it is dead
        held = self.leases.lease(f"replica:{owner.replica}")
        return held is not None and held[0] == owner.instance and held[1] > self.clock.now()


class _Running:
    def __init__(self, replica: Replica, ref: str) -> None:
        self.replica, self.ref = replica, ref

    def __enter__(self) -> None:
        with self.replica._running_lock:
            self.replica._running.add(self.ref)

    def __exit__(self, *exc: object) -> None:
        with self.replica._running_lock:
            self.replica._running.discard(self.ref)
