"""Backup retention (``backup.keep``) never removes a run something relies on: one test per reason, each with a run
that the limits alone would remove, checked on the folders on disk and in the audit log. Every removal is a
``backup.pruned`` audit event; a dry run removes nothing. `rollback-bot backups list` and `prune` say the same.

Each incident here runs for real through the emulator (backups on the session's MongoDB-protocol server, the
cleanup and restore through the two-person gate); retention keeps the newest run per incident
(``per_incident: 1``), so every older run is a candidate unless something relies on it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.app import SocketModeBot
from bot.dev.emulator import Emulator
from bot.dev.sandbox import Sandbox
from bot.domain.approvals import ApprovalStatus
from tests.conftest import COMMANDER, make_config, settings_for
from tests.danger.test_cleanup import Drill
from tests.test_cli import cli

KEEP = {"keep": {"per_incident": 1, "max_age_days": None, "schedule": False}}


@pytest.fixture
def incident(emulator: Emulator, sandbox: Sandbox, tmp_path: Path,
             start_bot: Callable[..., SocketModeBot]) -> Callable[[], Drill]:
    def make() -> Drill:
        config = make_config(sandbox, tmp_path / "data", backup=KEEP, cleanup={"start_delay_s": 0},
                             store={"sweep_s": 600})
        (tmp_path / "rollback.yml").write_text(yaml.safe_dump(config))
        return Drill(emulator, start_bot(settings_for(config, emulator.bot_env())))

    return make


def runs(drill: Drill) -> list[str]:
    """The run folders on disk, oldest first (by their step run)."""
    order = [r.id for r in drill.store.step_runs("RB-0001")]
    folder = drill.bot.services.settings.data_dir / "backups" / "RB-0001"
    return sorted((p.name for p in folder.iterdir()), key=order.index)


def backups(drill: Drill, count: int) -> list[str]:
    drill.backup()
    for _ in range(count - 1):
        drill.backup(again=True)
    return runs(drill)


def pruned(drill: Drill) -> list[Any]:
    return drill.audit("backup.pruned")


def verdicts(drill: Drill) -> dict[str, Any]:
    return {v.run.run_id: v for v in drill.bot.services.retention.review()}


def test_an_open_incidents_first_and_latest_verified_runs_are_never_pruned(
        incident: Callable[[], Drill]) -> None:
    drill = incident()
    first, middle, latest = backups(drill, 3)
    seen = verdicts(drill)
    assert "beyond the newest 1 verified run(s) of RB-0001" in seen[first].why  # the limit alone would remove it
    assert seen[first].keep and "open incident RB-0001: its first verified backup" in seen[first].why
    assert seen[latest].keep and "open incident RB-0001: its latest verified backup" in seen[latest].why
    assert not seen[middle].keep

    dry = drill.bot.services.retention.prune(COMMANDER, dry_run=True)
    assert [v.run.run_id for v in dry.removed] == [middle] and runs(drill) == [first, middle, latest]
    assert pruned(drill) == []  # a dry run removes nothing and audits nothing

    done = drill.bot.services.retention.prune(COMMANDER, dry_run=False)
    assert [v.run.run_id for v in done.removed] == [middle]
    assert runs(drill) == [first, latest]
    events = pruned(drill)
    assert [(e.actor, e.data["run"]) for e in events] == [(COMMANDER, middle)]
    assert events[0].data["bytes"] == done.freed > 0 and "beyond the newest 1" in events[0].data["reason"]
    assert drill.store.verify_audit().ok

    drill.slash(f"restore all {middle}")  # naming the removed run is refused, saying what happened to it
    refusal = drill.ephemeral(COMMANDER, "was removed by retention")
    assert middle in refusal and "backup.keep" in refusal and "restore all" in refusal
    assert drill.store.approvals("RB-0001") == []


def test_the_run_an_executed_cleanup_relied_on_is_kept_until_it_is_restored_even_after_the_close(
        incident: Callable[[], Drill]) -> None:
    drill = incident()
    drill.backup()
    ts = drill.request("cleanup")
    drill.react("alex", ts)
    drill.wait_status(ts, ApprovalStatus.EXECUTED)
    drill.backup(again=True)
    drill.backup(again=True)
    relied, middle, latest = runs(drill)
    drill.slash('close --force "retention test"')
    drill.emulator.ws.wait_for(lambda: (i := drill.store.get_incident("RB-0001")) is not None and not i.active, 20,
                               "the close")

    seen = verdicts(drill)
    assert "open incident" not in seen[relied].why and "beyond the newest 1" in seen[relied].why
    assert seen[relied].keep and "a cleanup of RB-0001 is not restored" in seen[relied].why
    done = drill.bot.services.retention.prune("bot", dry_run=False)
    assert [v.run.run_id for v in done.removed] == [middle]
    assert runs(drill) == [relied, latest]
    assert [e.data["run"] for e in pruned(drill)] == [middle]


def test_the_run_a_pending_request_names_is_never_pruned(incident: Callable[[], Drill]) -> None:
    drill = incident()
    first, named, spare, latest = backups(drill, 4)
    ts = drill.request(f"restore all {named}")
    assert drill.approval(ts).status is ApprovalStatus.PENDING

    seen = verdicts(drill)
    assert "open incident" not in seen[named].why and "beyond the newest 1" in seen[named].why
    assert seen[named].keep and f"the restore request {drill.approval(ts).id} is pending" in seen[named].why
    done = drill.bot.services.retention.prune("bot", dry_run=False)
    assert [v.run.run_id for v in done.removed] == [spare]
    assert runs(drill) == [first, named, latest]
    assert [e.data["run"] for e in pruned(drill)] == [spare]


def test_the_command_line_lists_why_each_run_is_kept_and_prunes_only_with_yes(
        incident: Callable[[], Drill], tmp_path: Path, emulator: Emulator) -> None:
    drill = incident()
    first, middle, latest = backups(drill, 3)
    config = str(tmp_path / "rollback.yml")

    listed = cli("backups", "list", "--config", config, cwd=tmp_path, env=emulator.bot_env())
    assert listed.returncode == 0, listed.stderr
    lines = {line.split()[0]: line for line in listed.stdout.splitlines() if line.startswith("RB-0001-backup-")}
    assert "kept: open incident RB-0001: its first verified backup" in lines[first]
    assert "prune: beyond the newest 1 verified run(s) of RB-0001" in lines[middle]
    assert "MiB free of" in listed.stdout and "1 would be removed" in listed.stdout

    neither = cli("backups", "prune", "--config", config, cwd=tmp_path, env=emulator.bot_env())
    assert neither.returncode == 2 and "--dry-run" in neither.stderr and "--yes" in neither.stderr
    dry = cli("backups", "prune", "--dry-run", "--config", config, cwd=tmp_path, env=emulator.bot_env())
    assert dry.returncode == 0 and f"would remove {middle}" in dry.stdout
    assert runs(drill) == [first, middle, latest] and pruned(drill) == []

    done = cli("backups", "prune", "--yes", "--config", config, cwd=tmp_path, env=emulator.bot_env())
    assert done.returncode == 0, done.stderr
    assert f"removed {middle}" in done.stdout and runs(drill) == [first, latest]
    assert [(e.actor.startswith("cli:"), e.data["run"]) for e in pruned(drill)] == [(True, middle)]
    assert drill.store.verify_audit().ok  # the command line's event chains onto the running bot's


def test_the_scheduled_prune_runs_on_one_replica_at_a_time(incident: Callable[[], Drill]) -> None:
    drill = incident()
    first, middle, latest = backups(drill, 3)
    retention = drill.bot.services.retention
    done = retention.scheduled("replica-a")
    assert done is not None and [v.run.run_id for v in done.removed] == [middle]
    assert retention.scheduled("replica-b") is None  # the lease is held: another replica does nothing
    assert runs(drill) == [first, latest]
    assert [(e.actor, e.data["run"]) for e in pruned(drill)] == [("bot", middle)]


# ---- the age limit, on records written straight into a store (no Slack, no MongoDB) ----------------------------
def _age_world(tmp_path: Path, *, active: bool) -> tuple[Any, Any, dict[str, Path]]:
    from datetime import UTC, datetime, timedelta

    from bot.config import BackupConfig
    from bot.dev.fakeclock import FakeClock
    from bot.domain.backups import Retention
    from bot.domain.incident import Incident, IncidentState
    from bot.domain.runs import BackupArtifacts, StepName, StepRun, StepStatus
    from bot.runbook.systems import BackupFolder
    from bot.store.sqlite import SQLiteStore

    now = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    store = SQLiteStore(tmp_path / "state.sqlite3")
    incident = Incident(id="RB-0001", number=1, channel="C0INCIDENT", target="t", commander=COMMANDER,
                        reason="age", created_at=now - timedelta(days=41))
    store.create_incident(incident, ["C0INCIDENT"])
    if not active:
        closed = store.get_incident("RB-0001")
        assert closed is not None
        closed.state = IncidentState.CLOSED
        store.save_incident(closed)
    folders = {}
    for name, days in (("old", 40), ("middle", 35), ("new", 1), ("stray", 50)):
        run_id = f"RB-0001-backup-{name}"
        folder = tmp_path / "data" / "backups" / "RB-0001" / run_id
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text("{}")
        folders[name] = folder
        if name == "stray":  # on disk, unknown to the store; its age is its folder's
            when = (now - timedelta(days=days)).timestamp()
            os.utime(folder, (when, when))
            continue
        store.add_step_run(StepRun(
            id=run_id, incident_id="RB-0001", step=StepName.BACKUP, actor=COMMANDER, status=StepStatus.SUCCEEDED,
            started_at=now - timedelta(days=days), finished_at=now - timedelta(days=days),
            artifacts=BackupArtifacts(run_id=run_id, path=str(folder), manifest_sha256="ab" * 32, verified=True)))
    keep = BackupConfig.model_validate({"keep": {"per_incident": None, "max_age_days": 30, "schedule": False}})
    return store, Retention(store, FakeClock(now), keep, BackupFolder(tmp_path / "data")), folders


@pytest.mark.parametrize("active", [False, True])
def test_the_age_limit_removes_old_runs_but_not_an_open_incidents_nor_one_the_store_does_not_know(
        tmp_path: Path, active: bool) -> None:
    store, retention, folders = _age_world(tmp_path, active=active)
    try:
        done = retention.prune("bot", dry_run=False)
        gone = {"middle"} | (set() if active else {"old"})  # open: its first verified run stays
        assert {name for name, path in folders.items() if not path.exists()} == gone
        assert sorted(e.data["run"] for e in store.audit_events("RB-0001") if e.action == "backup.pruned") == \
            sorted(f"RB-0001-backup-{name}" for name in gone)
        assert all("older than 30 days" in v.why for v in done.removed)
        stray = next(v for v in done.kept if v.run.run_id.endswith("stray"))
        assert "no record of it" in stray.why and "older than 30 days (50.0)" in stray.why
    finally:
        store.close()


def test_failed_backups_go_first_and_never_push_the_only_verified_run_out(tmp_path: Path) -> None:
    """From review: with per_incident 1, three failed `backup --again` runs after the one verified run ranked it
    fourth, so it was pruned while the broken ones stayed."""
    from datetime import UTC, datetime, timedelta

    from bot.config import BackupConfig
    from bot.dev.fakeclock import FakeClock
    from bot.domain.backups import Retention
    from bot.domain.incident import Incident, IncidentState
    from bot.domain.runs import BackupArtifacts, StepName, StepRun, StepStatus
    from bot.runbook.systems import BackupFolder
    from bot.store.sqlite import SQLiteStore

    now = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    store = SQLiteStore(tmp_path / "state.sqlite3")
    try:
        store.create_incident(Incident(id="RB-0001", number=1, channel="C0INCIDENT", target="t", commander=COMMANDER,
                                       reason="r", created_at=now - timedelta(days=2)), ["C0INCIDENT"])
        closed = store.get_incident("RB-0001")
        assert closed is not None
        closed.state = IncidentState.CLOSED
        store.save_incident(closed)
        folders = {}
        for hours, name, status in ((30, "good", StepStatus.SUCCEEDED), (20, "bad1", StepStatus.FAILED),
                                    (10, "bad2", StepStatus.INTERRUPTED), (5, "bad3", StepStatus.FAILED)):
            run_id = f"RB-0001-backup-{name}"
            folder = tmp_path / "data" / "backups" / "RB-0001" / run_id
            folder.mkdir(parents=True)
            (folder / "part.bson").write_bytes(b"x" * 10)
            folders[name] = folder
            at = now - timedelta(hours=hours)
            store.add_step_run(StepRun(
                id=run_id, incident_id="RB-0001", step=StepName.BACKUP, actor=COMMANDER, status=status,
                started_at=at, finished_at=at,
                artifacts=BackupArtifacts(run_id=run_id, path=str(folder), manifest_sha256="ab" * 32,
                                          verified=status is StepStatus.SUCCEEDED)))
        keep = BackupConfig.model_validate({"keep": {"per_incident": 1, "max_age_days": None, "schedule": False}})
        done = Retention(store, FakeClock(now), keep, BackupFolder(tmp_path / "data")).prune("bot", dry_run=False)
        assert {name for name, path in folders.items() if not path.exists()} == {"bad1", "bad2", "bad3"}
        assert folders["good"].exists() and all("did not complete" in v.why for v in done.removed)
    finally:
        store.close()
