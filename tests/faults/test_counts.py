"""Counts from the data, with real processes killed by SIGKILL: a bot killed inside one tenant's cleanup (fields
unset, collection not dropped yet) or right after claiming the run is started again, and the tenant data, the
incident's recorded counts, what stakeholders would be told and the audit chain must all tell what changed.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.domain.approvals import ApprovalStatus
from bot.ops import tenants
from tests.conftest import COMMANDER
from tests.faults.test_crashes import Case
from tests.faults.test_crashes import case as case  # the fixture, shared with test_crashes

pytestmark = pytest.mark.slow
ATTEMPTS = "internship_case_attempts"


def attempts_left(c: Case) -> dict[str, bool]:
    client = tenants.connect(c.sandbox.central_uri)
    try:
        return {db: ATTEMPTS in client[db].list_collection_names() for db in c.sandbox.tenant_dbs}
    finally:
        tenants.close(client)


def preview(c: Case) -> str:
    """The next stakeholder update, as the commander previews it (`/rollback comms`)."""
    c.slash("comms")
    shown = c.wait(lambda: [e for e in c.emulator.ws.ephemerals_for(COMMANDER) if "Preview" in e.text], 30,
                   "the preview")
    return str(shown[-1].blocks)


def actions(c: Case, approval_id: str) -> list[str]:
    return [e.action for e in c.store.audit_events("RB-0001") if e.data.get("approval") == approval_id]


def test_killed_inside_a_tenants_cleanup_its_result_and_the_totals_count_what_the_data_lost(case: Any) -> None:
    c: Case = case()
    first = c.start(pause="cleanup.fields_unset#2")  # the second tenant: fields unset, collection not dropped
    c.slash("start drill")
    c.panel()
    before = c.with_fields()
    c.slash("backup")
    c.backed_up()
    ts = c.request()
    c.react("alex", ts)
    c.paused_at("cleanup.fields_unset")
    first.kill()
    approval = c.approval(ts)
    second = c.sandbox.tenant_dbs[1]
    assert [r.db for r in c.store.tenant_results(approval.id)] == [c.sandbox.tenant_dbs[0]]
    assert c.with_fields()[second] == 0 and attempts_left(c)[second]  # killed inside that tenant

    c.start()
    c.wait_status(ts, ApprovalStatus.EXECUTED)
    results = {r.db: r for r in c.store.tenant_results(approval.id)}
    assert {db: r.modified for db, r in results.items()} == before  # not 0 for the tenant it was killed in
    assert {db: r.dropped for db, r in results.items()} == {db: {ATTEMPTS: 6} for db in c.sandbox.tenant_dbs}
    assert c.with_fields() == {db: 0 for db in c.sandbox.tenant_dbs} and not any(attempts_left(c).values())
    record = c.store.get_incident("RB-0001")
    assert record is not None
    assert (record.database.cases_cleaned, record.database.documents_deleted) == (sum(before.values()), 18)
    assert f"removed from {sum(before.values())} internship cases and 18 attempt records" in preview(c)
    audited = {e.data["tenant"]: e.data["modified"] for e in c.audit("cleanup.tenant")}
    assert audited == before
    assert actions(c, approval.id)[:3] == ["approval.requested", "approval.approved", "danger.started"]
    assert actions(c, approval.id).count("danger.resumed") == 1
    c.no_duplicates()


def test_killed_right_after_claiming_the_run_the_audit_records_its_start_before_the_resume(case: Any) -> None:
    c: Case = case()
    first = c.start(pause="danger.claimed")
    c.slash("start drill")
    c.panel()
    before = c.with_fields()
    c.slash("backup")
    c.backed_up()
    ts = c.request()
    c.react("alex", ts)
    c.paused_at("danger.claimed")
    first.kill()
    approval = c.approval(ts)
    assert approval.status is ApprovalStatus.RUNNING and c.with_fields() == before  # claimed, nothing touched

    c.start()
    c.wait_status(ts, ApprovalStatus.EXECUTED)
    done = actions(c, approval.id)
    assert done.count("danger.started") == 1 and done.count("danger.resumed") == 1
    assert done.index("danger.started") < done.index("danger.resumed") < done.index("cleanup.tenant")
    assert {r.db: r.modified for r in c.store.tenant_results(approval.id)} == before
    assert c.with_fields() == {db: 0 for db in c.sandbox.tenant_dbs}
    c.no_duplicates()


def test_killed_before_its_recheck_the_resumed_run_rechecks_and_is_void_when_the_data_grew(case: Any) -> None:
    """Found by review: a run resumed after its first owner died right after claiming it skipped the drift
    re-check, so cases written since the approval (and after the backup) lost their fields for good. The
    re-check passing is recorded before any tenant changes; a run resumed before that re-checks."""
    c: Case = case()
    first = c.start(pause="danger.claimed")
    c.slash("start drill")
    c.panel()
    c.slash("backup")
    c.backed_up()
    ts = c.request()
    c.react("alex", ts)
    c.paused_at("danger.claimed")
    first.kill()
    approval = c.approval(ts)
    assert approval.status is ApprovalStatus.RUNNING and approval.rechecked_at is None
    grown = c.sandbox.tenant_dbs[0]
    client = tenants.connect(c.sandbox.central_uri)
    try:  # written after the approval (and after the backup): not in it
        client[grown].internshipcases.insert_many([{"title": f"late {n}", "step": n} for n in range(5)])
    finally:
        tenants.close(client)
    before = c.with_fields()

    c.start()
    c.wait_status(ts, ApprovalStatus.VOID)
    assert c.with_fields() == before  # nothing was cleaned
    assert c.store.tenant_results(approval.id) == []
    voided = c.approval(ts)
    assert voided.rechecked_at is None and f"{grown}: 8 cases carry the fields" in voided.note, voided.note
