"""Backup runs on the data folder's file system: the room a new one needs, and which old ones may go.

- :func:`require_room`: a backup (or anything else that writes into the data folder) is refused, before it writes
  anything, when its estimated size would leave less than ``backup.reserve_mb`` free. The state store and the
  postmortems share that file system: a full disk in the middle of a backup would take them down too.
- :class:`Retention`: ``backup.keep`` (the newest ``per_incident`` runs of each incident, none older than
  ``max_age_days``) says which runs *may* go; the bot then keeps every run something relies on, whatever the
  limits, and says why (:meth:`Retention.review`). :meth:`Retention.prune` removes the rest, one audit event each.

What a run is relied on for (never removed):

1. **an open incident**: its first verified run (the state before the rollback) and its latest verified run (the
   one ``/rollback cleanup`` relies on);
2. **an executed cleanup not yet restored**: the run the first cleanup since the data was last whole relied on
   (``restore all`` uses it), the run each cleanup relied on for each tenant whose data is still missing, and the
   run ``Incident.database`` names while it records tenants as CLEANED;
3. **a pending request**: the run a pending, approved or running cleanup or restore request names;
4. **a run being written** (its backup step is running), and **a run the state store has no record of** (another
   store's, or older than it): the bot cannot tell what relies on those, so it leaves them to a person.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.clock import Clock
from bot.config import BackupConfig
from bot.domain.approvals import BUSY
from bot.domain.danger.plans import ledger
from bot.domain.runs import BackupArtifacts, StepName, StepRun, StepStatus
from bot.domain.store import Store
from bot.domain.systems import BackupRuns, DiskSpace, RunOnDisk
from bot.errors import Conflict
from bot.text import Code, rich

log = logging.getLogger(__name__)
MIB = 1 << 20
PRUNE_LEASE = "backups-prune"
LIST = "rollback-bot backups list"
PRUNE = "rollback-bot backups prune"


def mib(count: int) -> str:
    """Bytes as people read them here: MiB with one decimal (``backup.reserve_mb`` is in MiB)."""
    return f"{count / MIB:,.1f} MiB"


def size(count: int) -> str:
    """Bytes for a listing: B, KiB, MiB or GiB, whichever reads best."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", MIB), ("KiB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:,.1f} {unit}"
    return f"{count} B"


def require_room(estimate: int, space: DiskSpace, reserve_mb: int, *, how: str) -> None:
    """Refuse (Conflict, with the figures and what to free) unless ``estimate`` bytes leave at least
    ``reserve_mb`` MiB free on the data folder's file system. ``how``: how the estimate was made."""
    reserve = reserve_mb * MIB
    after = space.free - estimate
    if after >= reserve:
        return
    short = reserve - after
    raise Conflict(
        rich("Backup refused: it would leave the data folder's file system below its reserve. Estimated size ",
             mib(estimate), f" ({how}); free now {mib(space.free)} of {mib(space.total)} on ", Code(str(space.folder)),
             f"; reserve {mib(reserve)} (", Code("backup.reserve_mb"), f"); free after the backup {mib(after)}. "
             "Nothing was written."),
        hint=rich(f"Free at least {mib(short)} on that file system: ", Code(f"{PRUNE} --dry-run"),
                  " shows the backup runs retention may remove and ", Code(f"{PRUNE} --yes"), " removes them (",
                  Code(LIST), " says why each run is kept); or lower ", Code("backup.reserve_mb"), "."))


@dataclass(frozen=True)
class Verdict:
    """One run on disk and what retention makes of it: kept (and every reason), or to be removed (and why)."""

    run: RunOnDisk
    created: datetime
    keep: bool
    relied_on: list[str] = field(default_factory=list)  # reasons it must never be removed
    reasons: list[str] = field(default_factory=list)  # the limits: within them, or why it may go
    over_limits: bool = False  # backup.keep alone would remove it

    @property
    def why(self) -> str:
        if self.relied_on and self.over_limits:
            return "; ".join(self.relied_on) + " (backup.keep alone would remove it: " + "; ".join(self.reasons) + ")"
        return "; ".join(self.relied_on + self.reasons)


@dataclass(frozen=True)
class Pruned:
    """What a prune did (or, dry, would do)."""

    removed: list[Verdict]
    kept: list[Verdict]
    freed: int
    dry_run: bool


def _verified(run: StepRun) -> bool:
    art = run.artifacts
    return (run.step is StepName.BACKUP and run.succeeded and isinstance(art, BackupArtifacts) and art.verified
            and bool(art.manifest_sha256))


class Retention:
    """``backup.keep`` over the runs on disk, never removing one that something relies on (module docstring)."""

    def __init__(self, store: Store, clock: Clock, config: BackupConfig, runs: BackupRuns) -> None:
        self.store, self.clock, self.config, self.runs = store, clock, config, runs

    def space(self) -> DiskSpace:
        return self.runs.space()

    # ---- what relies on a run ----------------------------------------------------------------------------
    def relied_on(self, incident_id: str) -> dict[str, list[str]]:
        """Run id → why it must be kept, for one incident's runs (read fresh from the store)."""
        store = self.store
        reasons: dict[str, list[str]] = defaultdict(list)
        step_runs = store.step_runs(incident_id)
        incident = store.get_incident(incident_id)
        verified = [r for r in step_runs if _verified(r)]
        if incident is not None and incident.active and verified:
            reasons[verified[0].id].append(f"open incident {incident_id}: its first verified backup, the state "
                                           "before the rollback")
            reasons[verified[-1].id].append(f"open incident {incident_id}: its latest verified backup, the one a "
                                            "cleanup relies on")
        held = ledger(store, incident_id)
        if held.origin is not None and held.removed:
            reasons[held.origin.run_id].append(
                f"a cleanup of {incident_id} is not restored ({len(held.removed)} tenant(s) still missing data): "
                "restore all restores from this run")
        by_run: dict[str, list[str]] = defaultdict(list)
        for db, ref in held.sources.items():
            by_run[ref.run_id].append(db)
        for run_id, dbs in by_run.items():
            if held.origin is None or run_id != held.origin.run_id:
                reasons[run_id].append(f"a cleanup of {incident_id} relied on it and {', '.join(sorted(dbs))} "
                                       "is not restored")
        database = incident.database if incident is not None else None
        if database is not None and database.lost and database.backup_run and database.backup_run not in reasons:
            # the incident's own record (what the panel and the update say) agrees with the ledger as a rule; if it
            # ever did not, the run it names as holding the missing data is kept all the same
            reasons[database.backup_run].append(f"{incident_id} records {len(database.lost)} tenant(s) as CLEANED "
                                                "with their data in this run")
        for approval in store.approvals(incident_id):
            if approval.status not in BUSY:
                continue
            plan = store.get_plan(approval.id)
            run_id = plan.backup.run_id if plan is not None else approval.backup_run
            if run_id:
                reasons[run_id].append(f"the {approval.action.value} request {approval.id} is "
                                       f"{approval.status.value} and relies on it")
        for run in step_runs:
            if run.step is StepName.BACKUP and run.status is StepStatus.RUNNING:
                reasons[run.id].append(f"being written: its backup step ({run.id}) is running")
        return dict(reasons)

    # ---- the verdicts ------------------------------------------------------------------------------------
    def review(self) -> list[Verdict]:
        """Every run on disk, newest first within each incident, with what retention makes of it."""
        by_incident: dict[str, list[RunOnDisk]] = defaultdict(list)
        for run in self.runs.runs():
            by_incident[run.incident].append(run)
        verdicts: list[Verdict] = []
        for incident_id in sorted(by_incident):
            verdicts.extend(self._incident(incident_id, by_incident[incident_id]))
        return verdicts

    def _incident(self, incident_id: str, runs: list[RunOnDisk]) -> list[Verdict]:
        keep = self.config.keep
        now = self.clock.now()
        records = {r.id: r for r in self.store.step_runs(incident_id)}
        relied = self.relied_on(incident_id)
        created = {run.run_id: (records[run.run_id].started_at if run.run_id in records else run.modified)
                   for run in runs}
        ordered = sorted(runs, key=lambda r: created[r.run_id], reverse=True)
        verdicts = []
        rank = 0  # among this incident's verified runs, newest first: a failed run never pushes a good one out
        for run in ordered:
            why_kept = list(relied.get(run.run_id, []))
            record = records.get(run.run_id)
            if record is None:
                why_kept.append("the state store has no record of it (another store's, or older): left to a person")
            age = now - created[run.run_id]
            days = age / timedelta(days=1)
            over: list[str] = []
            if record is not None and record.status in (StepStatus.FAILED, StepStatus.INTERRUPTED):
                over.append(f"its backup did not complete ({record.status.value}): nothing can restore from it")
            elif record is not None and record.succeeded:
                if keep.per_incident is not None and rank >= keep.per_incident:
                    over.append(f"beyond the newest {keep.per_incident} verified run(s) of {incident_id}")
                rank += 1
            if keep.max_age_days is not None and days > keep.max_age_days:
                over.append(f"older than {keep.max_age_days:g} days ({days:.1f})")
            within = [f"within backup.keep: verified run {rank} of {incident_id}, {days:.1f} days old"]
            verdicts.append(Verdict(run=run, created=created[run.run_id], keep=bool(why_kept) or not over,
                                    relied_on=why_kept, reasons=over or within, over_limits=bool(over)))
        return verdicts

    # ---- removing ----------------------------------------------------------------------------------------
    def prune(self, actor: str, *, dry_run: bool) -> Pruned:
        """Remove every run retention lets go (none that is relied on). Each incident's reasons are read again
        right before its runs are removed; every removal is a ``backup.pruned`` audit event."""
        verdicts = self.review()
        removed: list[Verdict] = []
        freed = 0
        for verdict in verdicts:
            if verdict.keep:
                continue
            if dry_run:
                removed.append(verdict)
                freed += verdict.run.bytes
                continue
            if self.relied_on(verdict.run.incident).get(verdict.run.run_id):  # something relies on it since
                continue
            try:
                size = self.runs.remove(verdict.run)
            except (OSError, ValueError) as error:  # another prune (a replica, the command line) was first, or the
                # disk refused: this run stays, the others are still tried
                log.info("backup run %s not removed: %s", verdict.run.run_id, error)
                continue
            freed += size
            removed.append(verdict)
            self.store.audit(self.clock.now(), actor, "backup.pruned", verdict.run.incident, run=verdict.run.run_id,
                             bytes=size, reason="; ".join(verdict.reasons))
        kept = [v for v in verdicts if v not in removed]
        return Pruned(removed=removed, kept=kept, freed=freed, dry_run=dry_run)

    def scheduled(self, holder: str) -> Pruned | None:
        """The scheduled prune: one replica at a time (the store lease ``backups-prune``)."""
        now = self.clock.now()
        ttl = self.config.keep.every_h * 3600 / 2
        if not self.store.try_lease(PRUNE_LEASE, holder, now, ttl_s=ttl):
            return None
        return self.prune("bot", dry_run=False)
