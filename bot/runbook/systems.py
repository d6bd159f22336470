"""The domain's ports to the target and the tenant databases (:mod:`bot.domain.systems`), over ``bot/ops``:
git, pm2, the target's ``.env``, HTTP probes, MongoDB and the backup runs, configured by the runbook's config."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import CleanupConfig, RunbookConfig
from bot.domain.approvals import TenantCount
from bot.domain.runs import CheckOutcome, StepRun
from bot.domain.systems import (
    AppState,
    Cleaned,
    Commit,
    DiskSpace,
    HttpAnswer,
    HttpCheck,
    Restored,
    RunOnDisk,
    Tenant,
    TenantSession,
)
from bot.errors import StepFailed
from bot.ops import builds, cleanup, commit_builds, disk, dump, probe, tenants
from bot.ops.build import Yarn
from bot.ops.envfile import env_value
from bot.ops.git import GitRepo, WorkTree, validate_hotfix_name
from bot.ops.pm2 import Pm2
from bot.runbook.target import build_store, central_uri, list_tenants, protect_commits
from bot.runbook.verify import health_checks, log_checks

if TYPE_CHECKING:
    from pymongo import MongoClient

log = logging.getLogger(__name__)


class DeployedTarget:
    """:class:`bot.domain.systems.Target` for the folder, pm2 apps and URLs in rollback.yml."""

    def __init__(self, config: RunbookConfig) -> None:
        self.config = config

    def head(self) -> Commit:
        return GitRepo(self.config.target.repo_path).head()

    def validate_hotfix_name(self, name: str) -> str:
        return validate_hotfix_name(name)

    def has_remote(self, remote: str) -> bool:
        return WorkTree(self.config.target.repo_path).has_remote(remote)

    def push(self, remote: str, branch: str) -> str:
        return WorkTree(self.config.target.repo_path).push(remote, branch)

    def env_value(self, name: str | None) -> str | None:
        return env_value(name, self.config.target.env_path)

    def apps(self) -> dict[str, AppState]:
        return {s.name: s for s in Pm2(self.config.pm2.executable, self.config.pm2.home).jlist()}

    def probe(self, checks: Sequence[HttpCheck], *, timeout: float, concurrency: int) -> list[HttpAnswer]:
        asked = [probe.HttpCheck(c.url, expect_json=dict(c.expect_json) if c.expect_json is not None else None,
                                  expect_status=c.expect_status, bearer=c.bearer, slow_after=c.slow_after)
                 for c in checks]
        return list(probe.probe_many(asked, timeout=timeout, concurrency=concurrency))

    def health_checks(self) -> list[CheckOutcome]:
        checks, _, _ = health_checks(self.config)
        return checks

    def log_checks(self, restart: StepRun | None) -> list[CheckOutcome]:
        return log_checks(self.config, restart)


class TenantDatabases:
    """:class:`bot.domain.systems.TenantData`: the tenants listed in the central database of the target's .env."""

    def __init__(self, config: RunbookConfig) -> None:
        self.config = config

    def ping_all(self) -> int:
        uri = central_uri(self.config)
        client = tenants.connect(uri)
        try:
            found = tenants.list_tenants(client, uri, self.config.tenants)
            for tenant in found:
                client[tenant.db_name].command("ping")
        finally:
            tenants.close(client)
        return len(found)

    def count(self, collection: str, failed: Mapping[str, object],
              total: Mapping[str, object]) -> tuple[int, int]:
        uri = central_uri(self.config)
        client = tenants.connect(uri)
        try:
            failures = matches = 0
            for tenant in tenants.list_tenants(client, uri, self.config.tenants):
                documents = client[tenant.db_name][collection]
                failures += documents.count_documents(dict(failed))
                matches += documents.count_documents(dict(total))
        finally:
            tenants.close(client)
        return failures, matches


def _count(counts: cleanup.Counts) -> TenantCount:
    return TenantCount(cases=counts.cases, fields=dict(counts.fields), collections=dict(counts.collections))


class CentralSession:
    """:class:`bot.domain.systems.TenantSession`: one pymongo client on the central server (thread-safe)."""

    def __init__(self, client: MongoClient[dict[str, object]], config: CleanupConfig) -> None:
        self.client, self.config = client, config

    # The module's functions are looked up at each call (``cleanup.clean_tenant``), so a test can wrap them.
    def dry_run(self, db: str) -> TenantCount:
        return _count(cleanup.dry_run(self.client, db, self.config))

    def recount(self, db: str) -> TenantCount:
        counted = cleanup.recount(self.client, db, self.config)
        return TenantCount(cases=counted.cases, collections=dict(counted.collections))

    def clean(self, db: str, holding: Sequence[str] = ()) -> Cleaned:
        # the fault point cleanup.fields_unset is inside
        cleaned = cleanup.clean_tenant(self.client, db, self.config, holding)
        return Cleaned(modified=cleaned.modified, dropped=dict(cleaned.dropped))

    def restore(self, db: str, run: Path) -> Restored:
        restored = cleanup.restore_tenant(self.client, db, run, self.config)
        return Restored(collections=dict(restored.collections), cases=restored.cases)


class RunbookCleanup:
    """:class:`bot.domain.systems.TenantCleanup`: step 6 as rollback.yml configures it, on the tenants listed in the
    central database of the target's .env, and the backup runs on disk (``bot.ops.dump``)."""

    def __init__(self, config: RunbookConfig) -> None:
        self.config = config

    def tenants(self) -> list[Tenant]:
        return [Tenant(name=t.name, db=t.db_name) for t in list_tenants(self.config)]

    @contextmanager
    def session(self) -> Iterator[TenantSession]:
        uri = central_uri(self.config)
        client = tenants.connect(uri)
        try:
            yield CentralSession(client, self.config.cleanup)
        finally:
            tenants.close(client)

    def backed_up(self, run: Path, db: str) -> TenantCount:
        return _count(cleanup.backed_up_view(run, db, self.config.cleanup))

    def verify_backup(self, run: Path, manifest_sha256: str | None, databases: Sequence[str]) -> list[str]:
        return list(dump.verify_run(run, manifest_sha256, databases).problems)


class BackupFolder:
    """:class:`bot.domain.systems.BackupRuns`: the run folders under ``<data_dir>/backups`` (``bot.ops.disk``)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.backups = data_dir / "backups"

    def runs(self) -> list[RunOnDisk]:
        return [RunOnDisk(incident=f.incident, run_id=f.run_id, path=f.path, bytes=f.bytes, modified=f.modified,
                          complete=f.complete) for f in disk.run_folders(self.backups)]

    def space(self) -> DiskSpace:
        found = disk.space(self.data_dir)
        return DiskSpace(folder=found.path, free=found.free, total=found.total)

    def remove(self, run: RunOnDisk) -> int:
        return disk.remove_run(self.backups, run.incident, run.run_id)


class KeptBuilds:
    """:class:`bot.domain.systems.Builds`: the build store under ``<data_dir>/builds`` (``bot.ops.builds``) for the
    target's folder; each keep builds HEAD's commit alone in a worktree (``bot.ops.commit_builds``), on a thread of
    its own, one at a time."""

    def __init__(self, config: RunbookConfig, data_dir: Path) -> None:
        self.config, self.data_dir = config, data_dir
        self._busy = threading.Lock()
        self._stop = threading.Event()  # set: the keep running now stops (an incident opened)
        self.last: str | None = None  # what the last keep did, in words (also logged)

    def protect(self, commits: Callable[[], Sequence[str]]) -> None:
        protect_commits(commits)

    def keep_running(self, reason: str) -> None:
        if not self._busy.acquire(blocking=False):
            return
        self._stop.clear()
        try:
            threading.Thread(target=self._keep, args=(reason,), name="keep-build", daemon=True).start()
        except BaseException:
            self._busy.release()
            raise

    def stop_keeping(self) -> None:
        self._stop.set()

    def _keep(self, reason: str) -> None:
        try:
            cfg = self.config.build
            store = build_store(self.config, self.data_dir)
            repo = self.config.target.repo_path
            yarn = Yarn(cfg.executable, cfg.timeout_s, cache=store.yarn_cache)
            self.last = commit_builds.keep_head(store, repo, yarn, cfg.outputs, builds.node_version(cfg.node), reason,
                                         self._stop.is_set)
            log.info("last-known-good build (%s): %s", reason, self.last)
        except StepFailed as error:  # e.g. node or git not found: the rebuild runs yarn without a kept build
            self.last = f"not kept: {error.plain()}"
            log.info("last-known-good build (%s): %s", reason, self.last)
        except Exception:  # an optimisation, never a failure of what people do
            log.warning("could not keep the running build (%s)", reason, exc_info=True)
        finally:
            self._busy.release()
