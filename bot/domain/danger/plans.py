"""Danger-zone plans: which backup run a request relies on, its re-verification on disk, the dry runs.

A request names one exact backup run. Before the request is posted and again right before it runs, that
run is re-read on disk (``Deps.tenant_cleanup.verify_backup``): every file present with the manifest's size,
document count and sha256. A run that fails is never relied on; the refusal says why and what to do.

What a restore must bring back is the :class:`Ledger`: read from the incident's cleanup and restore runs in the
order they ran, it holds what the cleanups removed and nothing has put back since, and the backup run that the
first cleanup since the data was last whole relied on (the *origin*: the data before the first cleanup).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bot.domain.approvals import (
    ApprovalStatus,
    BackupRef,
    DangerAction,
    DangerPlan,
    PlanTotals,
    TenantCount,
    TenantPlan,
    TenantResult,
)
from bot.domain.deps import Deps
from bot.domain.incident import Incident
from bot.domain.runs import BackupArtifacts, StepName
from bot.domain.store import Store
from bot.domain.systems import Tenant
from bot.errors import BadInput, Conflict, StepFailed, echo
from bot.ids import SLASH_COMMAND
from bot.text import Code, Rich, join, rich

PLAN_PARALLEL = 8
BACKUP_AGAIN: Rich = ("Run ", Code(f"{SLASH_COMMAND} backup --again"), " first.")


@dataclass(frozen=True)
class Ledger:
    """What the incident's cleanups removed that no restore has put back, and the backup run holding it.

    ``removed``: per tenant, what the first cleanup that changed it since it was last whole removed (its recorded
    cases and dropped collections). ``origin``: the run the first cleanup since the data was last whole (nothing
    removed and not put back) relied on; after a complete restore it stays the previous one until a cleanup
    changes data again. ``None`` when no cleanup of the incident has changed anything.
    """

    origin: BackupRef | None = None
    removed: dict[str, TenantCount] = field(default_factory=dict)
    # per tenant in ``removed``: the backup run the cleanup that removed its data relied on (it holds that data)
    sources: dict[str, BackupRef] = field(default_factory=dict)

    @property
    def cases(self) -> int:
        return sum(t.cases for t in self.removed.values())

    @property
    def documents(self) -> int:
        return sum(c or 0 for t in self.removed.values() for c in t.collections.values())


def _changed(result: TenantResult) -> bool:
    """A cleanup result that changed the tenant: fields removed from a case, or a collection dropped."""
    return result.ok and (result.modified > 0 or any(c is not None for c in result.dropped.values()))


def ledger(store: Store, incident_id: str) -> Ledger:
    """Replay the incident's cleanups and restores in the order they ran (one ran at a time: each held the
    incident). A cleanup adds the tenants it changed that were not missing already; a verified restore of a
    tenant takes it out; the first cleanup that changes data while nothing is missing sets the origin."""
    runs = sorted((a for a in store.approvals(incident_id) if a.started_at is not None and a.status in (
        ApprovalStatus.RUNNING, ApprovalStatus.EXECUTED, ApprovalStatus.FAILED)),
        key=lambda a: a.started_at or a.requested_at)
    origin: BackupRef | None = None
    removed: dict[str, TenantCount] = {}
    sources: dict[str, BackupRef] = {}
    for approval in runs:
        plan = store.get_plan(approval.id)
        if plan is None:
            continue
        for result in store.tenant_results(approval.id):
            if approval.action is DangerAction.RESTORE:
                if result.ok:
                    removed.pop(result.db, None)
                    sources.pop(result.db, None)
            elif _changed(result) and result.db not in removed:
                if not removed:
                    origin = plan.backup
                removed[result.db] = TenantCount(cases=result.modified, collections=dict(result.dropped))
                sources[result.db] = plan.backup
    return Ledger(origin, removed, sources)


def nothing_to_clean(survey: list[TenantPlan]) -> bool:
    """No case carries a field and no collection to drop exists: a cleanup would change nothing."""
    return all(t.now.cases == 0 and all(c is None for c in t.now.collections.values()) for t in survey)


class Planner:
    """A danger-zone request's plan: the dry run per tenant, the backup run it relies on, stored with the request."""

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
        restored = [a for a in self.deps.store.approvals(incident.id)
                    if a.action is DangerAction.RESTORE and a.started_at is not None
                    and a.started_at >= latest.finished_at
                    and any(r.ok for r in self.deps.store.tenant_results(a.id))]
        if restored:  # the restore put back what this cleanup would remove: the backup before it does not hold it
            raise Conflict(rich("The tenant data changed after the latest backup run ", Code(latest.run_id), ": ",
                                Code(restored[-1].id), " restored documents since, so that run does not hold what "
                                "this cleanup would remove."), hint=BACKUP_AGAIN)
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
        origin = self.ledger(incident.id).origin
        if origin is not None:  # the data before the first cleanup: never a run taken after it
            return origin
        if not refs:
            raise Conflict((Code(incident.id), " has no verified backup to restore from."),
                           hint=("Run ", Code(f"{SLASH_COMMAND} backup"), " first."))
        return refs[-1]

    def ledger(self, incident_id: str) -> Ledger:
        return ledger(self.deps.store, incident_id)

    def verify(self, backup: BackupRef, databases: list[str]) -> None:
        """Re-read the run on disk; refuse (saying why) unless every file matches its manifest."""
        problems = self.deps.tenant_cleanup.verify_backup(Path(backup.path), backup.manifest_sha256, databases)
        if problems:
            pruned = next((e for e in self.deps.store.audit_events(_incident_of(backup))
                           if e.action == "backup.pruned" and e.data.get("run") == backup.run_id), None)
            if pruned is not None:  # retention removed it: say so, not "the run never finished"
                raise Conflict(("The backup run ", Code(backup.run_id), f" was removed by retention (backup.keep) at "
                                f"{pruned.at[:16].replace('T', ' ')} UTC, by {pruned.actor}."),
                               hint=("Leave the run out (", Code(f"{SLASH_COMMAND} restore all"), ") to use the run "
                                     "the incident relies on, which retention never removes, or take a new one: ",
                                     Code(f"{SLASH_COMMAND} backup --again"), "."))
            shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
            raise Conflict(("The backup run ", Code(backup.run_id), " cannot be relied on: ", shown, "."),
                           hint=BACKUP_AGAIN)

    # ---- dry runs --------------------------------------------------------------------------------------------
    def tenants_now(self) -> list[Tenant]:
        return self.deps.tenant_cleanup.tenants()

    def survey(self) -> list[TenantPlan]:
        """Every tenant now, with its dry run."""
        found = self.tenants_now()
        counts = self._counts([t.db for t in found])
        return [TenantPlan(db=t.db, name=t.name, now=counts[t.db]) for t in found]

    def cleanup_plan(self, approval_id: str, backup: BackupRef, survey: list[TenantPlan]) -> DangerPlan:
        return DangerPlan(approval_id=approval_id, action=DangerAction.CLEANUP, tenants=survey, backup=backup,
                          totals=_totals(survey))

    def drift(self, approved: DangerPlan) -> list[str]:
        """Re-check an approved cleanup right before it runs: what grew since (see :func:`drift`), from the
        tenants listed now and one count per planned operation in each (no dry run: no per-field counts)."""
        found = self.tenants_now()
        return drift(approved, self._counts([t.db for t in found], recount=True))

    def restore_plan(self, approval_id: str, backup: BackupRef, which: str,
                     removed: dict[str, TenantCount] | None = None) -> DangerPlan:
        available = list(backup.tenants)
        chosen = available if which == "all" else [which]
        if which != "all" and which not in available:
            raise BadInput((echo(which), " is not a tenant database in the backup run ", Code(backup.run_id), "."),
                           hint=rich("One of: ", join([(Code(db),) for db in available]), ", or ", Code("all"), "."))
        names = {t.db: t.name for t in self.tenants_now()}
        now = self._counts(chosen)
        data, run = self.deps.tenant_cleanup, Path(backup.path)
        with ThreadPoolExecutor(max_workers=PLAN_PARALLEL, thread_name_prefix="restore-plan") as pool:
            views = dict(zip(chosen, pool.map(lambda db: data.backed_up(run, db), chosen), strict=True))
        missing = removed or {}
        per = [TenantPlan(db=db, name=names.get(db, db), now=now[db], backup=views[db], removed=missing.get(db))
               for db in chosen]
        return DangerPlan(approval_id=approval_id, action=DangerAction.RESTORE, tenants=per, backup=backup,
                          totals=_totals(per))

    def _counts(self, dbs: list[str], *, recount: bool = False) -> dict[str, TenantCount]:
        """The dry run of each of ``dbs`` (``recount``: the drift check's counts), a few at a time."""
        with self.deps.tenant_cleanup.session() as session:  # closed after the dry runs, however they end
            try:
                with ThreadPoolExecutor(max_workers=PLAN_PARALLEL, thread_name_prefix="dry-run") as pool:
                    counts = list(pool.map(session.dry_run if not recount else session.recount, dbs))
            except Exception as error:  # noqa: BLE001 - the database may be what is broken; nothing changed
                raise StepFailed((f"the {'re-check' if recount else 'dry run'} could not read the tenant "
                                  "databases: ",
                                  self.deps.secrets.redact(str(error))[:200])) from None
        return dict(zip(dbs, counts, strict=True))


def _incident_of(backup: BackupRef) -> str:
    """The incident a backup run belongs to: its folder is ``<data_dir>/backups/<incident>/<run id>``."""
    return Path(backup.path).parent.name


def _totals(per: list[TenantPlan]) -> PlanTotals:
    return PlanTotals(tenants=len(per), cases=sum(t.now.cases for t in per),
                      dropped_documents=sum(c or 0 for t in per for c in t.now.collections.values()))


def holding(counts: TenantCount) -> list[str]:
    """The collections to drop that held documents in ``counts``: known to exist."""
    return [name for name, count in counts.collections.items() if count]


def drift(approved: DangerPlan, now: dict[str, TenantCount]) -> list[str]:
    """What changed since approval that the approval did not cover: new tenants, approved tenants no longer
    listed (the run would clean them unchecked), more cases with the fields, more documents to drop (an absent
    collection counts 0). ``now``: the counts of every tenant listed now. (More fields on cases already counted,
    or values changed since the backup, are not seen: only counts are compared.)"""
    planned = {t.db: t for t in approved.tenants}
    found = [f"tenant {db} is no longer listed" for db in planned if db not in now]
    for db, counts in now.items():
        old = planned.get(db)
        if old is None:
            found.append(f"tenant {db} was added")
            continue
        if counts.cases > old.now.cases:
            found.append(f"{db}: {counts.cases} cases carry the fields, {old.now.cases} were approved")
        for name, count in counts.collections.items():
            before = old.now.collections.get(name) or 0
            if (count or 0) > before:
                found.append(f"{db}.{name}: {count} documents, {before} approved")
    return found
