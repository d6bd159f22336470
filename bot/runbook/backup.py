"""Step 1: back up the current state — commit, every tenant database, pm2 logs, .env — as an immutable run.

Each backup writes a new folder ``<data_dir>/backups/<incident>/<run id>/`` (mode 0700, files 0600) and
never deletes or overwrites an earlier one; ``manifest.json`` is written last, atomically, so a run that
was interrupted has no manifest and is never relied on. The danger zone names the exact run it relies on
and re-verifies it on disk (``bot.ops.dump.verify_run``) before the request and again before it runs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bot import faults
from bot.domain.backups import MIB, mib, require_room
from bot.domain.runs import BackupArtifacts, StepName
from bot.domain.steps import Plan, StepContext, StepResult, check
from bot.errors import Conflict, StepFailed
from bot.ops import bsonfiles, builds, commit_builds, dump, tenants
from bot.ops.build import Yarn
from bot.ops.git import GitRepo, WorkTree
from bot.ops.pm2 import Pm2, tail_file
from bot.ops.process import find_executable
from bot.runbook.systems import BackupFolder
from bot.runbook.target import build_store, central_uri, list_tenants
from bot.text import Code, Rich, join, rich

SHOWN_DATABASES = 12  # longer lists are summarised in the thread; the manifest has every one


@dataclass(frozen=True)
class BuildAlongside:
    """The rollback target to build in a worktree of its own while the backup runs."""

    commit: str
    key: builds.BuildKey


@dataclass(frozen=True)
class BackupPlan:
    dbs: list[str]
    build: BuildAlongside | None  # None: nothing to build alongside (kept already, reverted already, turned off…)


class Backup:
    name = StepName.BACKUP
    follow_ups: tuple[StepName, ...] = ()

    def plan(self, ctx: StepContext) -> Plan[BackupPlan]:
        cfg = ctx.config
        found = list_tenants(cfg)
        room, left = self._room(ctx, [t.db_name for t in found])  # refuses, privately, before anything is written
        alongside, build_line = self._alongside(ctx, left)
        names: list[Rich] = [(Code(t.db_name),) for t in found[:SHOWN_DATABASES]]
        more = f" and {len(found) - SHOWN_DATABASES} more" if len(found) > SHOWN_DATABASES else ""
        return Plan(
            summary=rich(f"Back up {len(found)} tenant database(s), the central ", Code(cfg.tenants.schools_collection),
                         ", pm2 logs and .env into a new backup run under ", Code(str(ctx.backups))),
            lines=[rich("record the current commit (", Code(GitRepo(ctx.repo).head().oneline()), ")"),
                   rich("dump every collection of: ", join(names), more),
                   rich(f"save the last {cfg.pm2.log_lines} lines of each pm2 app's logs: ",
                        join([(Code(a),) for a in cfg.pm2.apps])),
                   rich("copy ", Code(cfg.target.env_file), " (mode 0600; its contents are never shown)"),
                   ("earlier backup runs are kept as they are; this one is used only once its manifest is written",),
                   room, *([build_line] if build_line else [])],
            facts=BackupPlan([t.db_name for t in found], alongside),
        )

    def _alongside(self, ctx: StepContext, left: int) -> tuple[BuildAlongside | None, Rich | None]:
        """The revert that follows the backup goes to the rollback target: build it meanwhile, in a worktree of its
        own, unless it is kept already. Nothing when there will be no such revert (the code was reverted already,
        the target is HEAD or not below it) or it cannot be keyed, nor when the build (twice the newest kept
        build: the build, and the copy a restore keeps again) would take the data folder below
        ``backup.reserve_mb`` once the backup is written (``left``: the bytes free then)."""
        cfg = ctx.config
        if not cfg.build.keep.alongside_backup or cfg.build.keep.max_count == 0:
            return None, None
        if ctx.last_success(StepName.REVERT) is not None:
            return None, None
        tree = WorkTree(ctx.repo)
        target = tree.resolve(cfg.target.rollback_target)
        head = tree.head()
        if target is None or target.sha == head.sha or not tree.is_ancestor(target.sha, head.sha):
            return None, None
        try:
            key = builds.commit_key(ctx.repo, target.sha, builds.node_version(cfg.build.node))
        except StepFailed as error:
            return None, rich("no build alongside: ", error.plain())
        store = build_store(cfg, ctx.data_dir)
        if store.find(key) is not None:
            return None, rich("the build of ", Code(target.short), f" is kept already ({key.describe()}): the "
                              "rebuild after the revert restores it")
        newest = store.entries()[:1]
        need = cfg.backup.reserve_mb * MIB + 2 * (newest[0].bytes if newest else 0)
        if left < need:
            return None, (f"not building alongside: only {mib(max(left, 0))} free after the backup (it needs "
                          f"{mib(need)}: backup.reserve_mb and twice the newest kept build); the rebuild runs "
                          "yarn build",)
        return BuildAlongside(target.sha, key), rich(
            "meanwhile: build ", Code(target.short), " (the rollback target) in a separate git worktree (",
            Code("yarn install"), ", ", Code("yarn build"), ") for the revert; the app's folder is not touched")

    def _room(self, ctx: StepContext, dbs: list[str]) -> tuple[Rich, int]:
        """Estimate the run's size from the server's collection statistics and refuse when it would leave the
        data folder's file system below ``backup.reserve_mb``; the plan's line saying the figures otherwise, and
        the bytes free once the backup is written."""
        cfg = ctx.config
        uri = central_uri(cfg)
        client = tenants.connect(uri)
        try:
            jobs: list[tuple[str, list[str] | None]] = [(tenants.default_database(uri),
                                                         [cfg.tenants.schools_collection])]
            jobs += [(db, None) for db in dbs]
            estimate = dump.estimate_databases(client, jobs, parallel=cfg.backup.parallel)
        finally:
            tenants.close(client)
        env = cfg.target.env_path
        total = estimate.bytes + (env.stat().st_size if env.is_file() else 0)
        how = (f"collStats of {estimate.from_stats} collection(s)" if not estimate.sampled else
               f"collStats of {estimate.from_stats} collection(s), {estimate.sampled} sized from a sample of "
               "their documents")
        space = BackupFolder(ctx.data_dir).space()
        require_room(total, space, cfg.backup.reserve_mb, how=how)
        return (f"room: estimated {mib(total)} ({how}); {mib(space.free)} free on the data folder's file system, "
                f"reserve {mib(cfg.backup.reserve_mb * MIB)}",), space.free - total

    def run(self, ctx: StepContext, plan: Plan[BackupPlan]) -> StepResult:
        cfg = ctx.config
        dbs = plan.facts.dbs
        run = ctx.backups / ctx.run_id
        if run.exists():
            raise Conflict(("backup run ", Code(ctx.run_id), " already exists; runs are never overwritten"))
        bsonfiles.private_dir(ctx.backups)
        bsonfiles.private_dir(run)
        head = GitRepo(ctx.repo).head()
        bsonfiles.private_write(run / "rollback_from_commit.txt", (head.oneline() + "\n").encode())
        building = self._start_build(ctx, plan.facts.build)

        uri = central_uri(cfg)
        central = tenants.default_database(uri)
        done, lock = [0], threading.Lock()

        def after(db: str, collection: str, _dumped: dump.Dumped) -> None:
            faults.point("backup.collection_written")
            with lock:
                done[0] += 1
            ctx.progress((f"{done[0]} collection(s) written; tenants: {len(dbs)}", *building.note()))

        client = tenants.connect(uri)
        try:
            ctx.progress((f"dumping {len(dbs)} tenant database(s) and the central ",
                          Code(cfg.tenants.schools_collection), *building.note()))
            jobs: list[tuple[str, list[str] | None]] = [(central, [cfg.tenants.schools_collection])]
            jobs += [(db, None) for db in dbs]
            dumped = dump.dump_databases(client, jobs, run, parallel=cfg.backup.parallel, after=after)
        finally:
            tenants.close(client)

        checks = [check(f"{db}.{name}", d.verified, f"{d.count} documents (server count {d.source_count})")
                  for db, collections in dumped.items() for name, d in collections.items()]
        logs_saved = self._pm2_logs(ctx, run)
        checks.append(check("pm2 logs", bool(logs_saved), ", ".join(logs_saved) or "pm2 logs could not be read"))
        bsonfiles.private_write(run / "env.backup", cfg.target.env_path.read_bytes())
        checks.append(check(".env", True, "copied to env.backup (mode 0600)"))
        extras = {path.relative_to(run).as_posix(): dump.describe_extra(path)
                  for path in sorted(run.rglob("*")) if path.is_file() and path.suffix not in (".bson",)}
        manifest = dump.Manifest(
            run_id=ctx.run_id, incident=ctx.incident.id, created_at=datetime.now(UTC).isoformat(), commit=head.sha,
            central_database=central, tenants=list(dbs),
            databases={db: {name: {"count": d.count, "bytes": d.bytes, "sha256": d.sha256,
                                   "source_count": d.source_count} for name, d in collections.items()}
                       for db, collections in dumped.items()},
            extras=extras,
        )
        faults.point("backup.before_manifest")
        manifest_sha = dump.write_manifest(run, manifest)
        verified = all(c.ok for c in checks if c.name != "pm2 logs")
        details = self._details(run, head.short, dumped, logs_saved)
        summary = (rich(f"{len(dbs)} tenant database(s) backed up, {manifest.documents} documents, counts verified; "
                        "run ", Code(ctx.run_id), *building.note())
                   if verified else ("backup written but the counts do not match the server's; it will not be "
                                     "relied on", *building.note()))
        details += building.details()
        return StepResult(
            ok=verified, summary=summary, details=details, checks=checks,
            artifacts=BackupArtifacts(run_id=ctx.run_id, path=str(run), manifest_sha256=manifest_sha,
                                      commit=head.sha, central=central, tenants=list(dbs),
                                      documents=manifest.documents, verified=verified, logs_saved=logs_saved),
            ticks=["backup_db", "commit"] + (["pm2_logs"] if logs_saved else []),
        )

    def _start_build(self, ctx: StepContext, build: BuildAlongside | None) -> _Building:
        if build is None:
            return _Building(None)
        cfg = ctx.config.build
        store = build_store(ctx.config, ctx.data_dir)
        yarn = Yarn(cfg.executable, cfg.timeout_s, cache=store.yarn_cache)
        started = commit_builds.start_alongside(store, ctx.repo, build.commit, build.key, yarn, cfg.outputs,
                                         ctx.incident.id, f"built alongside the backup of {ctx.incident.id}")
        return _Building(started)

    def _details(self, run: Path, commit: str, dumped: dict[str, dict[str, dump.Dumped]],
                 logs: list[str]) -> list[Rich]:
        lines: list[Rich] = [rich("Saved in ", Code(str(run))),
                             rich("commit: ", Code(commit), " → ", Code("rollback_from_commit.txt"))]
        for db, collections in list(dumped.items())[:SHOWN_DATABASES]:
            parts = ", ".join(f"{name} {d.count}" for name, d in collections.items())
            lines.append(rich(Code(db), f": {parts}"))
        if len(dumped) > SHOWN_DATABASES:
            lines.append((f"… and {len(dumped) - SHOWN_DATABASES} more databases (every one is in ",
                          Code("manifest.json"), ")"))
        lines.append((f"pm2 logs: {', '.join(logs) or 'not saved'}",))
        lines.append(rich(Code(".env"), " → ", Code("env.backup"), " (mode 0600)"))
        return lines

    def _pm2_logs(self, ctx: StepContext, run: Path) -> list[str]:
        cfg = ctx.config
        if find_executable(cfg.pm2.executable) is None:
            return []
        try:
            states = {s.name: s for s in Pm2(cfg.pm2.executable, cfg.pm2.home).jlist()}
        except StepFailed:
            return []
        folder = bsonfiles.private_dir(run / "pm2")
        saved = []
        for app in cfg.pm2.apps:
            state = states.get(app)
            if state is None:
                continue
            lines = tail_file(state.out_log, cfg.pm2.log_lines) + ["--- stderr ---"] + tail_file(
                state.err_log, cfg.pm2.log_lines)
            text = ctx.secrets.redact("\n".join(lines) + "\n")
            bsonfiles.private_write(folder / f"{app}.log", text.encode())
            saved.append(f"{app} ({len(lines) - 1} lines)")
        return saved


@dataclass(frozen=True)
class _Building:
    """The build alongside this backup, as its progress and result mention it."""

    build: commit_builds.Alongside | None

    def note(self) -> Rich:
        build = self.build
        if build is None:
            return ()
        short = build.commit[:7]
        if not build.done.is_set():
            return ("; building ", Code(short), " in the background for the revert")
        if build.entry is not None:
            return ("; built ", Code(short), f" alongside in {build.seconds:.0f}s, kept for the rebuild")
        return ("; the build of ", Code(short), " alongside failed, so the rebuild will run yarn build")

    def details(self) -> list[Rich]:
        build = self.build
        if build is None:
            return []
        line: Rich = rich("build alongside: ", Code(build.commit[:7]), " in a separate git worktree, for "
                          f"{build.key.describe()}")
        if build.done.is_set() and build.failure:
            return [rich(line, f": failed ({build.failure})")]
        return [line]
