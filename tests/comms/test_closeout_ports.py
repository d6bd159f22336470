"""The close-out's live success criteria, with fakes for the target and the tenant databases (the ports in Deps):
what the domain decides from their answers, without git, pm2 or MongoDB."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bot.clock import SystemClock
from bot.config import Secrets, Settings, parse_runbook
from bot.domain.closeout import Closer
from bot.domain.deps import Deps
from bot.domain.incident import Incident
from bot.domain.runs import CheckOutcome, StepRun
from bot.domain.systems import AppState, HttpAnswer, HttpCheck
from bot.store.sqlite import SQLiteStore


@dataclass(frozen=True)
class App:
    status: str
    restarts: int = 0

    @property
    def online(self) -> bool:
        return self.status == "online"


@dataclass
class FakeTarget:
    states: dict[str, AppState] = field(default_factory=dict)
    pm2_down: bool = False

    def head(self) -> object:
        raise AssertionError("not asked")

    def validate_hotfix_name(self, name: str) -> str:
        return name

    def has_remote(self, remote: str) -> bool:
        return True

    def push(self, remote: str, branch: str) -> str:
        return ""

    def env_value(self, name: str | None) -> str | None:
        return None

    def apps(self) -> dict[str, AppState]:
        if self.pm2_down:
            raise RuntimeError("pm2: command not found")
        return self.states

    def probe(self, checks: Sequence[HttpCheck], *, timeout: float, concurrency: int) -> list[HttpAnswer]:
        return []

    def health_checks(self) -> list[CheckOutcome]:
        return [CheckOutcome(name="GET /health", ok=True, detail="200 in 12 ms")]

    def log_checks(self, restart: StepRun | None) -> list[CheckOutcome]:
        return [CheckOutcome(name="pm2 logs", ok=restart is None, detail="no critical errors")]


@dataclass
class FakeTenants:
    answering: int | None = 3  # None: a database does not answer

    def ping_all(self) -> int:
        if self.answering is None:
            raise RuntimeError("mongodb://admin:hunter2@db.internal:27017 timed out")
        return self.answering

    def count(self, collection: str, failed: object, total: object) -> tuple[int, int]:
        return 0, 0


def closer(tmp_path: Path, target: FakeTarget, tenants: FakeTenants) -> Closer:
    settings = Settings(runbook=parse_runbook({}), secrets=Secrets.from_environment(None))
    store = SQLiteStore(tmp_path / "state.sqlite3")
    deps = Deps(settings=settings, store=store, clock=SystemClock(), messenger=None, directory=None, access=None,
                ui=None, jobs=None, replica=None, secrets=None, target=target, tenant_data=tenants,
                tenant_cleanup=None, steps={})
    return Closer(deps, desk=None, gate=None, recovery=None, changes=None)


INCIDENT = Incident(id="RB-0042", number=42, channel="C0INCIDENT", target="/srv/backend", commander="U0COMMANDER",
                    reason="health 500", created_at=datetime(2026, 2, 7, 3, 0, tzinfo=UTC))
APPS = ("ai-professor-backend-5000", "ai-professor-python")  # rollback.yml's defaults


def test_every_criterion_is_met_when_the_target_and_the_databases_answer(tmp_path: Path) -> None:
    checks = closer(tmp_path, FakeTarget({app: App("online") for app in APPS}), FakeTenants(3)).live_checks(INCIDENT)
    assert all(c.ok for group in checks.values() for c in group), checks
    assert [c.name for c in checks["backend_running"]] == ["GET /health", *(f"pm2 {app}" for app in APPS)]
    assert checks["db_queries"][0].detail == "3 tenant database(s) answer queries"


def test_an_app_pm2_does_not_know_or_a_stopped_one_fails_backend_running(tmp_path: Path) -> None:
    target = FakeTarget({APPS[0]: App("stopped")})
    running = {c.name: c for c in closer(tmp_path, target, FakeTenants()).live_checks(INCIDENT)["backend_running"]}
    assert (running[f"pm2 {APPS[0]}"].ok, running[f"pm2 {APPS[0]}"].detail) == (False, "stopped")
    assert (running[f"pm2 {APPS[1]}"].ok, running[f"pm2 {APPS[1]}"].detail) == (False, "not known to pm2")


def test_pm2_or_a_database_that_does_not_answer_is_a_failed_criterion_without_its_credentials(tmp_path: Path) -> None:
    checks = closer(tmp_path, FakeTarget(pm2_down=True), FakeTenants(None)).live_checks(INCIDENT)
    assert [(c.name, c.ok) for c in checks["backend_running"]] == [("GET /health", True), ("pm2", False)]
    database = checks["db_queries"][0]
    assert not database.ok and "hunter2" not in database.detail and "db.internal" in database.detail
