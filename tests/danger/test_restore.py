"""What `restore all` brings back: the data before the first cleanup, never a later backup; a cleanup that
would change nothing is never requested; a restore short of what the cleanup removed says so; what the
incident (and so the stakeholder update) says was removed is what is missing, also after a failed cleanup.

The rule under test (README, "The danger zone"): the cleanups and restores of an incident are replayed in the
order they ran; `restore all` restores from the backup run that the first cleanup since the data was last
whole relied on, and checks it put back at least what the cleanups removed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bot.dev.sandbox import Sandbox
from bot.domain.approvals import ApprovalStatus
from bot.domain.danger import executor as danger_executor
from bot.ops import tenants
from tests.conftest import COMMANDER, INCIDENT
from tests.danger.test_cleanup import Drill, snapshot, with_fields
from tests.danger.test_cleanup import drill as drill  # the fixture, shared with test_cleanup


def cleaned(incident: Drill, text: str = "cleanup", count: int = 1, approver: str = "alex") -> str:
    ts = incident.request(text, count=count)
    incident.react(approver, ts)
    incident.wait_status(ts, ApprovalStatus.EXECUTED)
    return ts


def request_text(incident: Drill, ts: str) -> str:
    return str(incident.emulator.ws.message(INCIDENT, ts))


def preview(incident: Drill) -> str:
    """The next stakeholder update, as the commander previews it."""
    seen = len([e for e in incident.emulator.ws.ephemerals_for(COMMANDER) if "Preview" in e.text])
    incident.slash("comms")
    found = incident.emulator.ws.wait_for(lambda: [e for e in incident.emulator.ws.ephemerals_for(COMMANDER)
                                                   if "Preview" in e.text][seen:], 10, "the preview")
    return str(found[0].blocks)


def test_a_cleanup_with_nothing_left_to_clean_is_answered_privately_and_restore_all_returns_the_original(
        drill: Callable[..., Drill], sandbox: Sandbox) -> None:
    """The reported path: cleanup, backup --again, a second cleanup, restore all."""
    incident = drill()
    original = snapshot(sandbox)
    first_run = next((incident.bot.services.settings.data_dir / "backups" / "RB-0001").glob("RB-0001-backup-*"))
    cleaned(incident)
    later_run = incident.backup(again=True)
    incident.slash("cleanup")
    answer = incident.ephemeral(COMMANDER, "nothing to clean")
    assert "3 tenant database(s)" in answer and "`case_type`" in answer and "`internship_case_attempts`" in answer
    assert "No request was made" in answer and first_run.name in answer and "restore all" in answer
    assert len(incident.requests()) == 1 and len(incident.audit("approval.requested")) == 1  # never requested

    restore = incident.request("restore all", count=2)
    shown = request_text(incident, restore)
    assert first_run.name in shown and later_run.name not in shown
    incident.react("dana", restore)
    incident.wait_status(restore, ApprovalStatus.EXECUTED)
    assert all(r.verified for r in incident.results(restore))
    assert snapshot(sandbox) == original
    record = incident.store.get_incident("RB-0001")
    assert record is not None and record.database.state.value == "RESTORED"


def test_restore_all_uses_the_run_the_first_cleanup_relied_on_when_a_later_cleanup_relied_on_a_later_run(
        drill: Callable[..., Drill], sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.ops import cleanup as cleanup_ops

    incident = drill()
    original = snapshot(sandbox)
    before = with_fields(sandbox)
    first_run = next((incident.bot.services.settings.data_dir / "backups" / "RB-0001").glob("RB-0001-backup-*"))
    refused = sandbox.tenant_dbs[1]
    real = cleanup_ops.clean_tenant

    def refuse_one(client: Any, db: str, *args: Any) -> Any:
        if db == refused:
            raise RuntimeError(f"not authorized on {db}")
        return real(client, db, *args)

    monkeypatch.setattr(cleanup_ops, "clean_tenant", refuse_one)
    cleaned(incident)  # two tenants cleaned, one refused
    monkeypatch.setattr(cleanup_ops, "clean_tenant", real)
    later_run = incident.backup(again=True)  # holds two tenants already cleaned
    second = cleaned(incident, count=2, approver="dana")  # the refused tenant, relying on the later run
    assert later_run.name in request_text(incident, second)
    assert with_fields(sandbox) == {db: 0 for db in sandbox.tenant_dbs}
    record = incident.store.get_incident("RB-0001")
    assert record is not None and record.database.backup_run == first_run.name  # what the update names
    assert record.database.cases_cleaned == sum(before.values())
    assert f"recoverable from backup {first_run.name}" in preview(incident)

    restore = incident.request("restore all", count=3)
    shown = request_text(incident, restore)
    assert first_run.name in shown and later_run.name not in shown
    incident.react("alex", restore)
    incident.wait_status(restore, ApprovalStatus.EXECUTED)
    assert snapshot(sandbox) == original


def test_a_restore_that_puts_back_less_than_the_cleanup_removed_says_so_and_is_not_verified(
        drill: Callable[..., Drill], sandbox: Sandbox) -> None:
    incident = drill()
    before = with_fields(sandbox)
    cleaned(incident)
    later_run = incident.backup(again=True)  # taken after the cleanup: it holds none of what was removed
    restore = incident.request(f"restore all {later_run.name}", count=2)
    incident.react("alex", restore)
    incident.wait_status(restore, ApprovalStatus.EXECUTED)
    results = {r.db: r for r in incident.results(restore)}
    assert all(r.verified is False and r.ok is False for r in results.values())
    first = sandbox.tenant_dbs[0]
    assert f"the fields are back on 0 of the {before[first]} cases" in (results[first].error or "")
    outcome = incident.thread_note("the fields are back on 0 of")
    assert "0 of the 6 internship_case_attempts documents" in outcome and later_run.name in outcome
    assert "counts verified" not in outcome
    assert with_fields(sandbox) == {db: 0 for db in sandbox.tenant_dbs}  # still gone, and shown as such
    record = incident.store.get_incident("RB-0001")
    assert record is not None and record.database.state.value == "CLEANED"
    assert sorted(record.database.lost) == sorted(sandbox.tenant_dbs)


def test_after_a_complete_restore_a_new_cleanup_is_undone_from_the_run_it_relied_on_and_counted_once(
        drill: Callable[..., Drill], sandbox: Sandbox) -> None:
    """Cleanup, restore all, new data, backup --again, cleanup again: the first cleanup since the data was last
    whole is the second one, so its run holds the data to bring back (the first run lacks the new case)."""
    incident = drill()
    first_run = next((incident.bot.services.settings.data_dir / "backups" / "RB-0001").glob("RB-0001-backup-*"))
    cleaned(incident)
    restore = incident.request("restore all", count=2)
    incident.react("dana", restore)
    incident.wait_status(restore, ApprovalStatus.EXECUTED)
    client = tenants.connect(sandbox.central_uri)
    client[sandbox.tenant_dbs[0]].internshipcases.insert_one({"title": "written since", "step": 2, "case_type": "y"})
    tenants.close(client)
    whole = snapshot(sandbox)
    cases = sum(with_fields(sandbox).values())
    later_run = incident.backup(again=True)
    cleaned(incident, count=3)
    record = incident.store.get_incident("RB-0001")
    assert record is not None and record.database.cases_cleaned == cases  # this cleanup's, not both added up
    assert f"removed from {cases} internship cases and 18 attempt records" in preview(incident)
    again = incident.request("restore all", count=4)
    shown = request_text(incident, again)
    assert later_run.name in shown and first_run.name not in shown
    incident.react("alex", again)
    incident.wait_status(again, ApprovalStatus.EXECUTED)
    assert all(r.verified for r in incident.results(again))
    assert snapshot(sandbox) == whole


def test_a_cleanup_that_fails_after_one_tenant_is_recorded_for_that_tenant_and_restore_all_returns_it(
        drill: Callable[..., Drill], sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    incident = drill()
    original = snapshot(sandbox)
    before = with_fields(sandbox)
    executor = incident.bot.services.executor

    def store_down(approval: Any) -> Any:
        raise RuntimeError("the state store did not answer")

    monkeypatch.setattr(executor, "_beat", store_down)  # after the first tenant's result, at its heartbeat
    monkeypatch.setattr(danger_executor, "PROGRESS_EVERY_S", 0.0)  # which then follows every tenant
    ts = incident.request()
    incident.react("alex", ts)
    incident.wait_status(ts, ApprovalStatus.FAILED)
    monkeypatch.undo()
    [done] = incident.results(ts)
    left = with_fields(sandbox)
    assert left[done.db] == 0 and all(left[db] == before[db] for db in sandbox.tenant_dbs if db != done.db)
    record = incident.store.get_incident("RB-0001")
    assert record is not None and record.database.state.value == "CLEANED" and record.database.lost == [done.db]
    assert (record.database.cases_cleaned, record.database.documents_deleted) == (before[done.db], 6)
    assert (f"removed from {before[done.db]} internship cases and 6 attempt records were deleted in 1 tenant "
            "database(s)") in preview(incident)

    restore = incident.request("restore all", count=2)
    incident.react("dana", restore)
    incident.wait_status(restore, ApprovalStatus.EXECUTED)
    assert snapshot(sandbox) == original
    record = incident.store.get_incident("RB-0001")
    assert record is not None and record.database.state.value == "RESTORED"
