"""The systems the runbook acts on, as the domain sees them: two ports in ``Deps``.

- :class:`Target` — the deployed code and what runs it: its git work tree (the commit, hotfix branches and
  pushes), its ``.env``, its pm2 apps and its HTTP health endpoints.
- :class:`TenantData` — the tenants' MongoDB databases, found through the central database.

The adapters over git, pm2, HTTP and MongoDB (``bot/ops``) implement them in ``bot/runbook/systems.py``;
the composition root wires them. Unit tests of the domain can hand in fakes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

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
