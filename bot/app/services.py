"""Wiring: one typed bundle of ports, the feature services on it, the scheduler, recovery at start-up."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.app.metrics import BotMetrics
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.domain.access import Access
from bot.domain.alternatives import Alternatives
from bot.domain.api import Features
from bot.domain.autopilot import Autopilots
from bot.domain.backups import Retention
from bot.domain.builds import protected_commits
from bot.domain.changes import Changes
from bot.domain.closeout import Closer
from bot.domain.coordination import Coordination
from bot.domain.danger import Executor, Gate, Planner
from bot.domain.deps import Deps
from bot.domain.desk import Desk
from bot.domain.followups import FollowUps
from bot.domain.incidents import Incidents
from bot.domain.monitor import Monitor
from bot.domain.ownership import Replica, default_replica_id
from bot.domain.recovery import Recovery
from bot.domain.runner import StepRunner
from bot.domain.stakeholders import Stakeholders
from bot.ops.envfile import read_env_file
from bot.redact import SecretBook
from bot.runbook import registry
from bot.runbook.systems import BackupFolder, DeployedTarget, KeptBuilds, RunbookCleanup, TenantDatabases
from bot.slack import SlackDirectory, SlackMessenger, web_client
from bot.slack_ui import SlackPresenter
from bot.store import Store, open_store
from handlers.acks import AcksFirst

log = logging.getLogger(__name__)
LISTENER_THREADS = 32
DANGER_JOB = "danger-starts"


class SchedulerJobs:
    """The Jobs port: lets the domain ask for a sweep now (e.g. right after an approval with no delay)."""

    def __init__(self) -> None:
        self.scheduler: Any = None

    def nudge(self) -> None:
        if self.scheduler is None:
            return
        try:
            self.scheduler.modify_job(DANGER_JOB, next_run_time=datetime.now(UTC))
        except Exception:  # the regular sweep comes within sweep_s anyway
            log.debug("could not nudge the sweep", exc_info=True)


@dataclass
class Services:
    settings: Settings
    store: Store
    clock: Clock
    deps: Deps
    desk: Desk
    features: Features  # what the handlers call
    incidents: Incidents
    runner: StepRunner
    alternatives: Alternatives
    planner: Planner
    gate: Gate
    executor: Executor
    stakeholders: Stakeholders
    closer: Closer
    followups: FollowUps  # marking follow-ups done; their reminders after the close
    monitor: Monitor
    recovery: Recovery
    retention: Retention  # backup.keep over the backup runs on disk
    messenger: SlackMessenger
    listeners: ThreadPoolExecutor  # Bolt's listener threads: they ack
    acks: AcksFirst  # the work after an ack, once the acks due are out
    jobs: SchedulerJobs
    metrics: BotMetrics  # this bot's own registry: /metrics
    scheduler: Any = None
    _startup: threading.Thread | None = None
    _closed: bool = False

    def start(self, *, schedule: bool = True) -> Services:
        """Recover what died (at once for this replica's own earlier incarnation), then run the schedule."""
        self._startup = threading.Thread(target=self._recover, name="startup-recovery", daemon=True)
        self._startup.start()
        if schedule:
            self.scheduler = start_scheduler(self)
            self.jobs.scheduler = self.scheduler
        return self

    def _recover(self) -> None:
        for sweep in (self.recovery.sweep, self.executor.sweep):
            try:
                sweep()
            except Exception:  # the scheduled sweeps retry
                log.exception("start-up recovery failed; the scheduled sweep will retry")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.features.autopilot.stop()  # no autopilot starts another step while the bot stops
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        if self._startup is not None:
            self._startup.join(timeout=30)
        self.listeners.shutdown(wait=True, cancel_futures=False)
        self.acks.close()
        self.executor.close()
        self.monitor.close()
        self.deps.replica.stop()
        self.store.close()


def build_services(settings: Settings, *, store: Store | None = None, clock: Clock | None = None,
                   replica_id: str | None = None) -> Services:
    clock = clock or SystemClock()
    secrets = settings.secrets
    book = SecretBook(secrets.values(), settings.runbook.target.env_path, read_env_file)
    token = secrets.slack_bot_token.get_secret_value() if secrets.slack_bot_token else None
    metrics = BotMetrics()
    client = web_client(token, settings.api_url, observer=metrics)
    store = store or open_store(secrets.state_store_uri.get_secret_value() if secrets.state_store_uri else None,
                                settings.data_dir)
    messenger = SlackMessenger(client, book.redact)
    directory = SlackDirectory(client)
    access = Access(settings.runbook.access, directory)
    approvers = settings.runbook.access.approvers
    presenter = SlackPresenter(settings.runbook, lambda: [access.mention(entry).user for entry in approvers])
    replica = Replica(store, clock, replica_id or secrets.rollback_replica_id or default_replica_id(settings.data_dir),
                      settings.data_dir / "replicas", lease_s=settings.runbook.store.owner_lease_s,
                      heartbeat_s=settings.runbook.store.heartbeat_s).start()
    jobs = SchedulerJobs()
    deps = Deps(settings=settings, store=store, clock=clock, messenger=messenger, directory=directory, access=access,
                ui=presenter, jobs=jobs, replica=replica, secrets=book, steps=registry(),
                target=DeployedTarget(settings.runbook), tenant_data=TenantDatabases(settings.runbook),
                tenant_cleanup=RunbookCleanup(settings.runbook), metrics=metrics,
                builds=KeptBuilds(settings.runbook, settings.data_dir))
    deps.builds.protect(lambda: protected_commits(deps))  # never evict an active incident's way back
    # Built bottom-up: each service gets exactly the ones it calls, so every consequence is a visible call.
    desk = Desk(deps)
    stakeholders = Stakeholders(deps, desk)
    changes = Changes(desk, stakeholders)
    recovery = Recovery(deps, desk, stakeholders, changes)
    incidents = Incidents(deps, desk, changes)
    runner = StepRunner(deps, desk, recovery, changes)
    alternatives = Alternatives(deps, desk, runner)
    autopilot = Autopilots(deps, desk, runner)
    planner = Planner(deps)
    gate = Gate(deps, desk, planner, recovery)
    executor = Executor(deps, desk, planner, gate, changes)
    closer = Closer(deps, desk, gate, recovery, changes)
    followups = FollowUps(deps, desk, closer)
    monitor = Monitor(deps, desk, changes)
    features = Features(desk=desk, incidents=incidents, runner=runner, autopilot=autopilot,
                        alternatives=alternatives, danger=gate,
                        stakeholders=stakeholders, closer=closer, coordination=Coordination(deps, desk, changes),
                        followups=followups, monitor=monitor)
    listeners = ThreadPoolExecutor(max_workers=LISTENER_THREADS, thread_name_prefix="rollback-listener")
    return Services(settings=settings, store=store, clock=clock, deps=deps, desk=desk, features=features,
                    incidents=incidents, runner=runner, alternatives=alternatives, planner=planner, gate=gate,
                    executor=executor, stakeholders=stakeholders, closer=closer,
                    followups=followups, monitor=monitor, recovery=recovery, messenger=messenger,
                    retention=Retention(store, clock, settings.runbook.backup, BackupFolder(settings.data_dir)),
                    listeners=listeners, acks=AcksFirst(), jobs=jobs, metrics=metrics)


def start_scheduler(services: Services) -> Any:
    """APScheduler runs the periodic jobs; the monitor and the reminder also take a store lease, so replicas
    measure and remind once. The sweep runs on every replica: its actions are conditional writes."""
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, EVENT_JOB_SUBMITTED
    from apscheduler.schedulers.background import BackgroundScheduler

    config = services.settings.runbook
    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1,
                                                                   "misfire_grace_time": 60})
    scheduler.add_job(services.recovery.sweep, "interval", seconds=config.store.sweep_s, id="sweep",
                      name="recovery: interrupted steps, unrecorded posts, unannounced milestones")
    scheduler.add_job(services.executor.sweep, "interval", seconds=config.store.sweep_s, id=DANGER_JOB,
                      name="danger zone: start approved requests whose delay passed, resume runs whose owner died")
    scheduler.add_job(services.stakeholders.tick, "interval", seconds=60, jitter=5, id="comms-reminder",
                      name="stakeholder update reminder")
    scheduler.add_job(services.followups.remind, "interval", hours=1, jitter=60, id="followup-reminders",
                      name="follow-up reminders: each open follow-up's owner, every followups.remind_days after the "
                           "close (each reminder claimed once in the store)")
    scheduler.add_job(lambda: services.store.prune(services.clock.now()), "interval", hours=1, id="prune",
                      name="expire old delivery claims")
    keep = config.backup.keep
    if keep.schedule:
        scheduler.add_job(lambda: services.retention.scheduled(services.deps.replica.owner.instance), "interval",
                          hours=keep.every_h, jitter=60, id="backups-prune",
                          name="backup retention: remove runs backup.keep lets go, never one something relies on")
    if config.monitor.enabled:
        scheduler.add_job(services.monitor.run_once, "interval", seconds=config.monitor.interval_s,
                          jitter=config.monitor.jitter_s, id="health-checks", name="scheduled health checks")
    scheduler.add_listener(services.metrics.scheduler_event,
                           EVENT_JOB_SUBMITTED | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES | EVENT_JOB_ERROR)
    scheduler.start()
    return scheduler
