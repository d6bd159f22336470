"""Danger-zone plans: which backup run a request relies on, its re-verification on disk, the dry runs.

A request names one exact backup run. Before the request is posted and again right before it runs, that
run is re-read on disk (:func:`bot.ops.dump.verify_run`): every file present with the manifest's size,
document count and sha256. A run that fails is never relied on; the refusal says why and what to do.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bot.domain.approvals import (
    ApprovalStatus,
    BackupRef,
    DangerAction,
    DangerPlan,
    PlanTotals,
    TenantCount,
    TenantPlan,
)
from bot.domain.deps import Deps
from bot.domain.incident import Incident
from bot.domain.runs import BackupArtifacts, StepName
from bot.errors import BadInput, Conflict, StepFailed, echo
from bot.ids import SLASH_COMMAND
from bot.ops import cleanup, dump, tenants
from bot.runbook.target import central_uri, list_tenants
from bot.text import Code, Rich, join, rich

PLAN_PARALLEL = 8
BACKUP_AGAIN: Rich = ("Run ", Code(f"{SLASH_COMMAND} backup --again"), " first.")


def _count(counts: cleanup.Counts) -> TenantCount:
    return TenantCount(cases=counts.cases, fields=dict(counts.fields), collections=dict(counts.collections))


class Planner:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    # ---- the backup a request relies on ---------------------------------------------------------------
    def backups(self, incident: Incident) -> list[BackupRef]:
        """This incident's verified backup runs, oldest first."""
        refs = []
        for run in self.deps.store.step_runs(incident.id):
            art = run.artifacts
            if (run.step is StepName.BACKUP and run.succeeded and isinstance(art, BackupArtifacts) and art.verified
                    and art.manifest_sha256):
                refs.append(BackupRef(run_id=art.run_id, step_run=run.id, path=art.path,
                                      manifest_sha256=art.manifest_sha256, documents=art.documents,
                                      tenants=list(art.tenants), finished_at=run.finished_at or run.started_at))
        return refs

    def backup_for_cleanup(self, incident: Incident, needed: list[str]) -> BackupRef:
        refs = self.backups(incident)
        if not refs:
            raise Conflict((Code(incident.id), " has no verified backup; the danger zone needs one for every tenant "
                            "it touches."), hint=("Run ", Code(f"{SLASH_COMMAND} backup"), " first."))
        latest = refs[-1]
        missing = [db for db in needed if db not in latest.tenants]
        if missing:
            raise Conflict(rich("The latest backup run ", Code(latest.run_id), " does not cover ",
                                join([(Code(db),) for db in missing]), " (a tenant added since)."),
                           hint=BACKUP_AGAIN)
        return latest

    def backup_for_restore(self, incident: Incident, run_id: str | None) -> BackupRef:
        refs = self.backups(incident)
        if run_id is not None:
            found = next((r for r in refs if r.run_id == run_id), None)
            if found is None:
                raise BadInput((echo(run_id), " is not a verified backup run of ", Code(incident.id), "."),
                               hint=rich("Runs: ", join([(Code(r.run_id),) for r in refs]) or ("none",), "."))
            return found
        cleanups = [a for a in self.deps.store.approvals(incident.id)
                    if a.action is DangerAction.CLEANUP and a.status is ApprovalStatus.EXECUTED]
        if cleanups:  # restore what the cleanup removed: from the run it relied on, never a later one
            plan = self.deps.store.get_plan(cleanups[-1].id)
            if plan is not None:
                return plan.backup
        if not refs:
            raise Conflict((Code(incident.id), " has no verified backup to restore from."),
                           hint=("Run ", Code(f"{SLASH_COMMAND} backup"), " first."))
        return refs[-1]

    def verify(self, backup: BackupRef, databases: list[str]) -> None:
        """Re-read the run on disk; refuse (saying why) unless every file matches its manifest."""
        check = dump.verify_run(Path(backup.path), backup.manifest_sha256, databases)
        if not check.ok:
            shown = "; ".join(check.problems[:5]) + (f"; and {len(check.problems) - 5} more"
                                                    if len(check.problems) > 5 else "")
            raise Conflict(("The backup run ", Code(backup.run_id), " cannot be relied on: ", shown, "."),
                           hint=BACKUP_AGAIN)

    # ---- dry runs --------------------------------------------------------------------------------------------
    def tenants_now(self) -> list[tenants.Tenant]:
        return list_tenants(self.deps.config)

    def cleanup_plan(self, approval_id: str, backup: BackupRef) -> DangerPlan:
        found = self.tenants_now()
        counts = self._dry_runs([t.db_name for t in found])
        per = [TenantPlan(db=t.db_name, name=t.name, now=counts[t.db_name]) for t in found]
        return DangerPlan(approval_id=approval_id, action=DangerAction.CLEANUP, tenants=per, backup=backup,
                          totals=_totals(per))

    def restore_plan(self, approval_id: str, backup: BackupRef, which: str) -> DangerPlan:
        available = list(backup.tenants)
        chosen = available if which == "all" else [which]
        if which != "all" and which not in available:
            raise BadInput((echo(which), " is not a tenant database in the backup run ", Code(backup.run_id), "."),
                           hint=rich("One of: ", join([(Code(db),) for db in available]), ", or ", Code("all"), "."))
        names = {t.db_name: t.name for t in self.tenants_now()}
        now = self._dry_runs(chosen)
        config = self.deps.config.cleanup
        with ThreadPoolExecutor(max_workers=PLAN_PARALLEL, thread_name_prefix="restore-plan") as pool:
            views = dict(zip(chosen, pool.map(
                lambda db: _count(cleanup.backed_up_view(Path(backup.path), db, config)), chosen), strict=True))
        per = [TenantPlan(db=db, name=names.get(db, db), now=now[db], backup=views[db]) for db in chosen]
        return DangerPlan(approval_id=approval_id, action=DangerAction.RESTORE, tenants=per, backup=backup,
                          totals=_totals(per))

    def _dry_runs(self, dbs: list[str]) -> dict[str, TenantCount]:
        uri = central_uri(self.deps.config)
        client = tenants.connect(uri)
        config = self.deps.config.cleanup
        try:
            with ThreadPoolExecutor(max_workers=PLAN_PARALLEL, thread_name_prefix="dry-run") as pool:
                counts = list(pool.map(lambda db: _count(cleanup.dry_run(client, db, config)), dbs))
        except Exception as error:  # noqa: BLE001 - the database may be what is broken; nothing changed
            raise StepFailed(("the dry run could not read the tenant databases: ",
                              self.deps.secrets.redact(str(error))[:200])) from None
        finally:
            tenants.close(client)
        return dict(zip(dbs, counts, strict=True))


def _totals(per: list[TenantPlan]) -> PlanTotals:
    return PlanTotals(tenants=len(per), cases=sum(t.now.cases for t in per),
                      dropped_documents=sum(c or 0 for t in per for c in t.now.collections.values()))


def drift(approved: DangerPlan, fresh: DangerPlan) -> list[str]:
    """What grew since approval: new tenants, more cases with the fields, more documents to drop."""
    found = []
    for tenant in fresh.tenants:
        old = approved.tenant(tenant.db)
        if old is None:
            found.append(f"tenant {tenant.db} was added")
            continue
        if tenant.now.cases > old.now.cases:
            found.append(f"{tenant.db}: {tenant.now.cases} cases carry the fields, {old.now.cases} were approved")
        for name, count in tenant.now.collections.items():
            before = old.now.collections.get(name) or 0
            if (count or 0) > before:
                found.append(f"{tenant.db}.{name}: {count} documents, {before} approved")
    return found
