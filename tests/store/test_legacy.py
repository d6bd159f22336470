"""State written by the previous release still loads, and is found by the queries the sweeps run.

`legacy/v1-state.sqlite3` was written by the release before the typed records (commit 03413c3) through its own
store and models: an active incident with a step running and a cleaned database, a closed one with close-out
checks, an untyped backup result, a pending cleanup request with its plan inside, and a check with its whole
history. `legacy/v1-records.json` is the same data in that release's MongoDB layout.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pymongo import MongoClient

from bot.app import SocketModeBot
from bot.dev.emulator import Emulator
from bot.dev.sandbox import Sandbox
from bot.domain.approvals import ApprovalStatus
from bot.domain.incident import BusyKind, DatabaseState
from bot.domain.lifecycle import Phase
from bot.domain.ownership import LEGACY_OWNER
from bot.domain.runs import BackupArtifacts, StepName, StepStatus
from bot.store import Store
from bot.store.mongo import MongoStore
from bot.store.sqlite import SQLiteStore
from tests.conftest import make_settings

LEGACY = Path(__file__).parent / "legacy"


def sqlite_copy(tmp_path: Path) -> Callable[[], Store]:
    path = tmp_path / "rollback-bot.sqlite3"
    shutil.copy(LEGACY / "v1-state.sqlite3", path)
    with closing(sqlite3.connect(path)) as db, db:  # claims had no expiry then
        db.execute("INSERT INTO claims (key, at) VALUES ('trigger:old', '2026-11-29T03:00:00Z')")
    return lambda: SQLiteStore(path)


@pytest.fixture(params=["sqlite", "mongodb"])
def open_legacy(request: pytest.FixtureRequest, tmp_path: Path, mongo_uri: str) -> Iterator[Callable[[], Store]]:
    if request.param == "sqlite":
        yield sqlite_copy(tmp_path)
        return
    name = f"rb_legacy_{uuid.uuid4().hex[:8]}"
    client: MongoClient[dict[str, object]] = MongoClient(mongo_uri, tz_aware=True)
    dump = json.loads((LEGACY / "v1-records.json").read_text())
    db = client[name]
    db.records.insert_many([{"_id": f"{r['kind']}:{r['id']}", "kind": r["kind"], "version": r["version"],
                             "incident_id": r["incident_id"], "lookup": r["lookup"], "data": r["data"]}
                            for r in dump["records"]])
    db.active_keys.insert_many([{"_id": k["key"], "incident_id": k["incident_id"]} for k in dump["active_keys"]])
    db.counters.insert_many([{"_id": c["name"], "value": c["value"]} for c in dump["counters"]])
    db.claims.insert_one({"_id": "trigger:old", "at": "2026-11-29T03:00:00Z"})  # claims had no expiry then
    stores: list[Store] = []

    def open_() -> Store:
        stores.append(MongoStore(MongoClient(mongo_uri, tz_aware=True), name))
        return stores[-1]

    yield open_
    for store in stores:
        store.close()
    client.drop_database(name)
    client.close()


def test_the_previous_releases_records_load_and_are_found_by_status(open_legacy: Callable[[], Store]) -> None:
    store = open_legacy()
    active = store.get_incident("RB-0007")
    assert active is not None and active.active
    assert active.busy is not None and active.busy.kind is BusyKind.STEP
    assert (active.busy.ref, active.busy.name, active.busy.owner) == ("RB-0007-rebuild-1a2b3c", "rebuild",
                                                                       LEGACY_OWNER)
    assert active.database.state is DatabaseState.CLEANED  # "CLEANED (2 tenant database(s))", data loss YES
    assert active.comms["rollback_started"].posted and active.criteria["sessions"].by == "U0COMMANDER"

    assert active.lifecycle.phase is Phase.OPEN  # the phase its milestones imply
    closed = store.get_incident("RB-0006")
    assert closed is not None and closed.close_out is not None and closed.lifecycle.phase is Phase.CLOSED
    assert closed.close_out.checks[0].criterion == "backend_running" and closed.close_out.checks[0].ok

    runs = {r.step: r for r in store.step_runs("RB-0007")}
    backup = runs[StepName.BACKUP].artifacts
    assert isinstance(backup, BackupArtifacts) and backup.tenants == ["tenant_a", "tenant_b"]
    assert backup.verified is False  # an old backup is re-verified on disk before anything relies on it
    assert runs[StepName.REBUILD].status is StepStatus.RUNNING

    # The queries by the indexed status find what the old release wrote.
    assert [i.id for i in store.incidents_with_pending_posts()] == ["RB-0007"]
    assert [a.id for a in store.approvals_with_status(ApprovalStatus.PENDING)] == ["AP-0007-1"]
    assert store.active_incident("channel:C0INCIDENT") is not None
    assert store.active_incident("channel:C0OTHER") is None
    check = store.get_check("health")
    assert check is not None and check.last is not None and check.runs == 1 and check.last.detail == "500"
    assert store.next_number("incident") == 8
    store.close()
    assert open_legacy().upgrade() == 0  # labelled once, for good


def test_claims_from_before_expiries_are_pruned(open_legacy: Callable[[], Store]) -> None:
    store = open_legacy()
    assert not store.claim("trigger:old", datetime.now(UTC))  # remembered until the next prune
    assert store.claim("fresh", datetime.now(UTC))
    store.prune(datetime.now(UTC))
    assert not store.claim("fresh", datetime.now(UTC))  # within its 24 hours: still remembered
    assert store.claim("trigger:old", datetime.now(UTC))  # no expiry recorded: pruned, so free again


def test_the_bot_started_on_old_state_settles_what_the_old_process_left(
        emulator: Emulator, sandbox: Sandbox, tmp_path: Path, start_bot: Callable[..., SocketModeBot]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(LEGACY / "v1-state.sqlite3", data / "rollback-bot.sqlite3")
    bot = start_bot(make_settings(emulator, sandbox, data))
    store = bot.services.store
    request = emulator.ws.wait_for(lambda: (a := store.get_approval("AP-0007-1")) and a.status
                                   is ApprovalStatus.VOID and a, 20, "the old request retired")
    assert "older version" in request.note
    rebuild = emulator.ws.wait_for(lambda: next((r for r in store.step_runs("RB-0007") if r.step is StepName.REBUILD
                                                 and r.status is StepStatus.INTERRUPTED), None), 20,
                                   "the old rebuild marked interrupted")
    assert rebuild.finished_at is not None
    incident = store.get_incident("RB-0007")
    assert incident is not None and incident.busy is None and incident.active
    emulator.slash("casey", "incident-rollback", "status").wait()
    answer = emulator.ws.wait_for(lambda: next((e.text for e in emulator.ws.ephemerals_for("U0COMMANDER")
                                                if "RB-0007" in e.text), None), 10, "the status of RB-0007")
    assert "Rollback started" in answer
