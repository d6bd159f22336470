"""The one typed dependency bundle every feature service receives.

The composition root (``bot.app.services``) builds it once; services never build their own
collaborators, never hold ``Any`` for each other, and never call each other's private methods. What
several of them need about incidents lives in :class:`bot.domain.desk.Desk`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.clock import Clock
from bot.config import RunbookConfig, Settings
from bot.domain.access import Access
from bot.domain.ownership import Replica
from bot.domain.ports import Directory, Jobs, Messenger, Metrics, NoMetrics, Presenter
from bot.domain.steps import Steps
from bot.domain.store import Store
from bot.domain.systems import Builds, NoBuilds, Target, TenantCleanup, TenantData
from bot.redact import SecretBook


@dataclass(frozen=True)
class Deps:
    settings: Settings
    store: Store
    clock: Clock
    messenger: Messenger
    directory: Directory
    access: Access
    ui: Presenter
    jobs: Jobs
    replica: Replica
    secrets: SecretBook
    target: Target  # the deployed code: git, .env, pm2, its HTTP endpoints
    tenant_data: TenantData  # the tenants' databases
    tenant_cleanup: TenantCleanup  # runbook step 6 and its undo on them, and the backup runs they rely on
    steps: Steps  # the runbook's steps by name (bot/runbook), handed in by the composition root
    metrics: Metrics = field(default_factory=NoMetrics)  # what the operators' dashboards count (bot/app/metrics.py)
    builds: Builds = field(default_factory=NoBuilds)  # the last-known-good builds (kept after a verify passes)

    @property
    def config(self) -> RunbookConfig:
        return self.settings.runbook
