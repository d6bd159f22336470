"""The danger zone's plans with a fake for the tenant cleanup port in Deps: what the planner decides from the
dry runs, the tenant list and a backup run's re-verification, without MongoDB or backup files. The real cleanup,
restore and their crashes are tested against real servers beside this file and in tests/faults/."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.config import Secrets, Settings, parse_runbook
from bot.domain.approvals import BackupRef, DangerPlan, TenantCount
from bot.domain.danger.plans import Planner
from bot.domain.deps import Deps
from bot.domain.systems import Cleaned, Restored, Tenant
from bot.errors import Conflict, StepFailed
from bot.redact import SecretBook

SECRET = "mongodb://admin:hunter2@db.internal:27017"


@dataclass
class FakeSession:
    counts: dict[str, TenantCount]
    broken: str | None = None  # a database whose dry run fails, with the server's URI in the error
    read: list[str] = field(default_factory=list)  # what was asked: "dry_run <db>", "recount <db>"

    def dry_run(self, db: str) -> TenantCount:
        self.read.append(f"dry_run {db}")
        if db == self.broken:
            raise RuntimeError(f"{SECRET} timed out")
        return self.counts[db]

    def recount(self, db: str) -> TenantCount:
        self.read.append(f"recount {db}")
        if db == self.broken:
            raise RuntimeError(f"{SECRET} timed out")
        return TenantCount(cases=self.counts[db].cases, collections=self.counts[db].collections)

    def clean(self, db: str, holding: Sequence[str] = ()) -> Cleaned:
        raise AssertionError("a plan never cleans")

    def restore(self, db: str, run: Path) -> Restored:
        raise AssertionError("a plan never restores")


@dataclass
class FakeCleanup:
    counts: dict[str, TenantCount]
    held: dict[str, TenantCount] = field(default_factory=dict)  # what the backup run holds per tenant
    problems: list[str] = field(default_factory=list)
    broken: str | None = None
    opened: int = 0
    closed: int = 0
    verified: list[tuple[Path, str | None, list[str]]] = field(default_factory=list)
    read: list[str] = field(default_factory=list)  # what the sessions were asked

    def tenants(self) -> list[Tenant]:
        return [Tenant(name=db.replace("_", " ").title(), db=db) for db in self.counts]

    @contextmanager
    def session(self) -> Iterator[FakeSession]:
        self.opened += 1
        try:
            yield FakeSession(self.counts, self.broken, self.read)
        finally:
            self.closed += 1

    def backed_up(self, run: Path, db: str) -> TenantCount:
        return self.held[db]

    def verify_backup(self, run: Path, manifest_sha256: str | None, databases: Sequence[str]) -> list[str]:
        self.verified.append((run, manifest_sha256, list(databases)))
        return self.problems


class NoAudit:
    """The store as the planner's refusal reads it: an audit log with no event (no run was pruned)."""

    def audit_events(self, incident_id: str | None = None) -> list[object]:
        return []


def planner(cleanup: FakeCleanup) -> Planner:
    settings = Settings(runbook=parse_runbook({}), secrets=Secrets.from_environment(None))
    deps = Deps(settings=settings, store=NoAudit(), clock=None, messenger=None, directory=None, access=None, ui=None,
                jobs=None, replica=None, secrets=SecretBook([SECRET]), target=None, tenant_data=None,
                tenant_cleanup=cleanup, steps={})
    return Planner(deps)


def count(cases: int, logs: int | None) -> TenantCount:
    return TenantCount(cases=cases, fields={"step": cases}, collections={"internship_case_attempts": logs})


BACKUP = BackupRef(run_id="RB-0001-backup-1f9db6", step_run="RB-0001-backup-1f9db6", path="/data/backups/run",
                   manifest_sha256="ab" * 32, documents=10, tenants=["school_a", "school_b"],
                   finished_at=datetime(2026, 2, 7, 3, 0, tzinfo=UTC))


def test_the_survey_lists_every_tenant_with_its_dry_run_on_one_session_that_is_closed() -> None:
    cleanup = FakeCleanup({"school_a": count(3, 7), "school_b": count(0, None)})
    survey = planner(cleanup).survey()
    assert [(t.db, t.name, t.now) for t in survey] == [("school_a", "School A", count(3, 7)),
                                                       ("school_b", "School B", count(0, None))]
    assert (cleanup.opened, cleanup.closed) == (1, 1)


def test_a_dry_run_that_fails_is_a_step_failure_without_the_secret_and_the_session_is_closed() -> None:
    cleanup = FakeCleanup({"school_a": count(3, 7), "school_b": count(0, None)}, broken="school_b")
    with pytest.raises(StepFailed) as failed:
        planner(cleanup).survey()
    text = str(failed.value.user_text())
    assert "the dry run could not read the tenant databases" in text
    assert "hunter2" not in text
    assert (cleanup.opened, cleanup.closed) == (1, 1)


def approved(cleanup: FakeCleanup) -> DangerPlan:
    return planner(cleanup).cleanup_plan("RB-0001-cleanup-abc123", BACKUP, planner(cleanup).survey())


def test_the_recheck_before_a_run_counts_each_planned_operation_per_tenant_and_reports_only_growth() -> None:
    cleanup = FakeCleanup({"school_a": count(3, 7), "school_b": count(2, None), "school_c": count(5, 4)})
    plan = approved(cleanup)
    cleanup.read.clear()
    cleanup.counts.update(school_a=count(4, 7), school_b=count(2, 1), school_c=count(1, 0),
                          school_d=count(0, None))
    grown = planner(cleanup).drift(plan)
    assert grown == ["school_a: 4 cases carry the fields, 3 were approved",
                     "school_b.internship_case_attempts: 1 documents, 0 approved", "tenant school_d was added"]
    # No dry run (no per-field counts): one count per planned operation, in every tenant listed now.
    assert sorted(cleanup.read) == ["recount school_a", "recount school_b", "recount school_c", "recount school_d"]
    assert (cleanup.opened, cleanup.closed) == (2, 2)


def test_the_recheck_finds_no_drift_when_counts_shrank_or_a_collection_stayed_absent() -> None:
    cleanup = FakeCleanup({"school_a": count(3, 7), "school_b": count(0, None)})
    plan = approved(cleanup)
    cleanup.counts.update(school_a=count(1, 2))
    assert planner(cleanup).drift(plan) == []


def test_an_approved_tenant_no_longer_listed_is_drift_not_cleaned_unchecked() -> None:
    """Found by review: the re-check counted only the tenants listed now, and the run then cleaned every tenant of
    the approved plan, a school deleted since (and written to since) included, unchecked."""
    cleanup = FakeCleanup({"school_a": count(3, 7), "school_b": count(2, None)})
    plan = approved(cleanup)
    del cleanup.counts["school_b"]
    assert planner(cleanup).drift(plan) == ["tenant school_b is no longer listed"]


def test_a_recheck_that_fails_is_a_step_failure_without_the_secret_and_the_session_is_closed() -> None:
    cleanup = FakeCleanup({"school_a": count(3, 7), "school_b": count(0, None)})
    plan = approved(cleanup)
    cleanup.broken = "school_b"
    with pytest.raises(StepFailed) as failed:
        planner(cleanup).drift(plan)
    assert "hunter2" not in str(failed.value.user_text())
    assert (cleanup.opened, cleanup.closed) == (2, 2)


def test_a_backup_run_that_differs_from_its_manifest_is_refused_naming_what_differs() -> None:
    problems = [f"school_a/c{n}.bson is missing" for n in range(7)]
    cleanup = FakeCleanup({}, problems=problems)
    with pytest.raises(Conflict) as refused:
        planner(cleanup).verify(BACKUP, ["school_a"])
    text = str(refused.value.user_text())
    assert "school_a/c4.bson is missing; and 2 more" in text and "c5.bson" not in text
    assert "backup --again" in text
    assert cleanup.verified == [(Path(BACKUP.path), BACKUP.manifest_sha256, ["school_a"])]


def test_a_backup_run_that_matches_its_manifest_is_relied_on() -> None:
    planner(FakeCleanup({})).verify(BACKUP, ["school_a", "school_b"])


def test_a_restore_plan_holds_the_dry_run_now_and_what_the_backup_run_holds() -> None:
    cleanup = FakeCleanup({"school_a": count(0, None), "school_b": count(0, None)},
                          held={"school_a": count(3, 7), "school_b": count(1, 2)})
    plan = planner(cleanup).restore_plan("RB-0001-restore-abc123", BACKUP, "all")
    assert [(t.db, t.now, t.backup) for t in plan.tenants] == [("school_a", count(0, None), count(3, 7)),
                                                              ("school_b", count(0, None), count(1, 2))]
    assert plan.totals.tenants == 2
