"""The systems the runbook acts on, as the domain sees them: three ports in ``Deps``.

- :class:`Target` — the deployed code and what runs it: its git work tree (the commit, hotfix branches and
  pushes), its ``.env``, its pm2 apps and its HTTP health endpoints.
- :class:`TenantData` — the tenants' MongoDB databases, found through the central database: do they answer,
  how many documents match (the monitor, the close-out).
- :class:`TenantCleanup` — runbook step 6 and its undo on those databases, for the danger zone: the tenant
  list, a session on the central server (dry run, cleanup, restore of one tenant), and the backup runs they
  rely on (what a run holds, its re-verification against its manifest).
- :class:`BackupRuns` — the backup run folders on the data folder's file system, for retention: what is there,
  how big, the free space, and removing one run the domain decided may go.

The adapters over git, pm2, HTTP and MongoDB (``bot/ops``) implement them in ``bot/runbook/systems.py``;
the composition root wires them. Unit tests of the domain can hand in fakes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from bot.domain.approvals import TenantCount
from bot.domain.runs import CheckOutcome, StepRun


class Commit(Protocol):
    @property
    def sha(self) -> str: ...

    @property
    def summary(self) -> str: ...

    def oneline(self) -> str:
        """The short sha and the summary, as people read a commit."""
        ...


class AppState(Protocol):
    """One pm2 app as ``pm2 jlist`` reports it."""

    @property
    def status(self) -> str: ...

    @property
    def restarts(self) -> int: ...

    @property
    def online(self) -> bool: ...


@dataclass(frozen=True)
class HttpCheck:
    """One GET the scheduled checks make, and what a right answer is."""

    url: str
    expect_json: Mapping[str, object] | None = None
    expect_status: int | None = None
    bearer: str | None = None
    slow_after: float | None = None


class HttpAnswer(Protocol):
    """How an :class:`HttpCheck` went."""

    @property
    def ok(self) -> bool: ...  # answered right, in time

    @property
    def seconds(self) -> float: ...

    @property
    def detail(self) -> str: ...

    @property
    def answered_right(self) -> bool: ...  # the status and body were as expected (it may have been slow)


class Target(Protocol):
    """The deployed code and the processes that run it."""

    def head(self) -> Commit:
        """The commit checked out in the target's work tree."""
        ...

    def validate_hotfix_name(self, name: str) -> str:
        """``name`` as a hotfix branch may carry it (``hotfix/<name>``); raises BadInput saying why not."""
        ...

    def has_remote(self, remote: str) -> bool: ...

    def push(self, remote: str, branch: str) -> str:
        """Push ``branch`` (never forced); git's output. Raises when git refuses."""
        ...

    def env_value(self, name: str | None) -> str | None:
        """A value of the target's ``.env`` (a bearer token a core endpoint needs), None when unset."""
        ...

    def apps(self) -> dict[str, AppState]:
        """pm2's apps by name (``pm2 jlist``)."""
        ...

    def probe(self, checks: Sequence[HttpCheck], *, timeout: float, concurrency: int) -> list[HttpAnswer]:
        """Every check at once, each within ``timeout`` from its own start; answers in the order asked."""
        ...

    def health_checks(self) -> list[CheckOutcome]:
        """The health URL and every core endpoint, as the verify step checks them."""
        ...

    def log_checks(self, restart: StepRun | None) -> list[CheckOutcome]:
        """pm2's error logs since ``restart`` (or their tail) hold no critical lines, and each app is online."""
        ...


class TenantData(Protocol):
    """The tenants' databases."""

    def ping_all(self) -> int:
        """Ping every tenant database; how many there are. Raises when one does not answer."""
        ...

    def count(self, collection: str, failed: Mapping[str, object],
              total: Mapping[str, object]) -> tuple[int, int]:
        """Documents of ``collection`` matching ``failed`` and ``total``, summed over every tenant."""
        ...


@dataclass(frozen=True)
class Tenant:
    """One tenant: its name as people know it, and its database."""

    name: str
    db: str


@dataclass(frozen=True)
class Cleaned:
    """What cleaning one tenant changed: the cases whose fields were unset, and per collection to drop the
    documents it held when dropped (None: it did not exist)."""

    modified: int
    dropped: dict[str, int | None]


@dataclass(frozen=True)
class Restored:
    """What restoring one tenant put back: documents per collection re-inserted, and the cases whose fields were
    set again."""

    collections: dict[str, int]
    cases: int


class TenantSession(Protocol):
    """One connection to the central server, shared by the tenants of a plan or a run (and by its threads).

    Each method works on one tenant database, with the cleanup that rollback.yml configures."""

    def dry_run(self, db: str) -> TenantCount:
        """What a cleanup would change in ``db``. Reads only."""
        ...

    def recount(self, db: str) -> TenantCount:
        """What the drift check compares, one count per operation the cleanup would run on ``db``: the cases
        carrying the fields and the documents of each collection to drop (None: absent); no per-field counts.
        Reads only."""
        ...

    def clean(self, db: str, holding: Sequence[str] = ()) -> Cleaned:
        """Unset the fields, then drop the collections, as the runbook's script does (``holding``: the collections
        the approved dry run saw holding documents, counted before their drop without listing first).
        Idempotent: run again on a tenant a killed run was inside of, it changes what is left."""
        ...

    def restore(self, db: str, run: Path) -> Restored:
        """Put back what the cleanup removed, from the backup run folder ``run``. A re-run gives the same result."""
        ...


class TenantCleanup(Protocol):
    """Runbook step 6 and its undo: what the danger zone asks of the tenant databases and the backup runs."""

    def tenants(self) -> list[Tenant]:
        """The tenant databases now (raises StepFailed saying why when they cannot be listed)."""
        ...

    def session(self) -> AbstractContextManager[TenantSession]:
        """A session on the central server; closed when the ``with`` block ends."""
        ...

    def backed_up(self, run: Path, db: str) -> TenantCount:
        """The dry run's numbers as the backup run ``run`` holds them for ``db``: what a complete restore gives
        back. Reads the files."""
        ...

    def verify_backup(self, run: Path, manifest_sha256: str | None, databases: Sequence[str]) -> list[str]:
        """Re-read the backup run on disk: what differs from its manifest (the manifest not the recorded one, a
        file of ``databases`` missing, or not of the manifest's size, document count and sha256). Empty: every
        file matches."""
        ...


@dataclass(frozen=True)
class RunOnDisk:
    """One backup run folder ``<data_dir>/backups/<incident>/<run id>/`` as it is on disk."""

    incident: str
    run_id: str
    path: Path
    bytes: int
    modified: datetime
    complete: bool  # its manifest is written (a run without one never finished, or is being written)


@dataclass(frozen=True)
class DiskSpace:
    """The data folder's file system: bytes still free to write (for an ordinary process) and its size."""

    folder: Path
    free: int
    total: int


class BackupRuns(Protocol):
    """The backup runs on disk. Only the domain decides which one may be removed (``bot/domain/backups.py``)."""

    def runs(self) -> list[RunOnDisk]:
        """Every run folder, whatever its state."""
        ...

    def space(self) -> DiskSpace: ...

    def remove(self, run: RunOnDisk) -> int:
        """Delete the run's folder and everything in it; the bytes freed."""
        ...


class Builds(Protocol):
    """The target's last-known-good builds (``bot/ops/builds.py``). The domain decides when one is kept; the
    rebuild step restores one when it matches what is checked out."""

    def keep_running(self, reason: str) -> None:
        """Keep a build of HEAD's commit if none of its key is kept: built from the commit alone in a worktree of
        its own, on a thread; returns at once (one at a time: a call while one runs does nothing)."""
        ...

    def stop_keeping(self) -> None:
        """Stop the keep running now, if any (its yarn and everything it started), keeping nothing: an incident
        opened, and its build alongside the backup and its rebuild must not wait for it."""
        ...

    def protect(self, commits: Callable[[], Sequence[str]]) -> None:
        """``commits()``: the commits whose kept builds the bounds must never evict, asked whenever they evict."""
        ...


class NoBuilds:
    """Keeps nothing (domain unit tests)."""

    def keep_running(self, reason: str) -> None:
        return None

    def stop_keeping(self) -> None:
        return None

    def protect(self, commits: Callable[[], Sequence[str]]) -> None:
        return None
