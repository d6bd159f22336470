"""Scheduled health checks, rollback alerts and the post-rollback watch.

APScheduler calls :meth:`Monitor.run_once` every ``monitor.interval_s`` on every replica; only the holder
of the store lease ``monitor`` measures. HTTP checks run concurrently on asyncio (each with its own time
limit from its own start); pm2 and MongoDB checks on a bounded thread pool. A check's state lives in the
store and its history in ring-buffer slots, so a round costs the same however long the history is.
Alerts go out only when a check changes state; restarts the bot itself made during a step do not count
as a crash loop. Each failure carries the runbook criteria it meets, so an alert can offer to start a
rollback for each. `/rollback health` reads the states and the last hour of history (:mod:`bot.domain.charts`
places the chart).

Why one module of this size: the round, the state transitions and the alert decisions share the lease,
the pool and the "own restart" window; split apart, each piece would need the others' private state.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urljoin

from bot.config import MongoProbe, MonitorConfig, RunbookConfig
from bot.domain.access import Act
from bot.domain.builds import keep_running_build
from bot.domain.changes import Changes
from bot.domain.charts import CHART_WINDOW, HealthCharts
from bot.domain.checklists import CRITERIA_KEYS
from bot.domain.checks import (
    SLOW_CRITERION,
    ActiveRollback,
    CheckLimit,
    CheckResult,
    CheckState,
    CheckStatus,
    CheckView,
    HealthReport,
    WatchVerdict,
)
from bot.domain.deps import Deps
from bot.domain.desk import Desk
from bot.domain.incident import Incident, Milestone, RestoredBy
from bot.domain.lifecycle import Event, Phase
from bot.domain.runs import RestartArtifacts, StepName, StepStatus
from bot.domain.systems import HttpAnswer, HttpCheck
from bot.errors import ConfigError, StaleState
from bot.redact import redact_uri

log = logging.getLogger(__name__)
GRACE_S = 0.5  # beyond a thread check's own limit before it is reported as hung
Measure = Callable[[datetime], list[CheckResult]]
# The runbook's "When to Rollback" criteria (keys of checklists.ROLLBACK_CRITERIA) a failing check meets:
HEALTH_CRITERION = "sessions"  # a wrong answer or none from the health URL or a core endpoint (e.g. a 500)
CRASH_CRITERION = "crash_loop"  # a pm2 app not online, or its restart count grew ("crashes repeatedly")
DB_CRITERION = "db_fail"  # a MongoDB probe whose queries fail or never answer ("database queries failing")


@dataclass(frozen=True)
class CheckSpec:
    name: str
    describe: str
    http: HttpCheck | None = None
    measure: Measure | None = None
    criterion: str | None = None  # the runbook criterion a failure of this check meets
    error_criterion: str | None = None  # ...when the check itself could not measure (raised, or no answer)


def schedule_lines(config: RunbookConfig) -> list[str]:
    """What `rollback-bot check` shows: the schedule the bot would run with this config."""
    cfg = config.monitor
    if not cfg.enabled:
        return ["scheduled checks are off (monitor.enabled: false)"]
    head = (f"every {cfg.interval_s:g}s (+0..{cfg.jitter_s:g}s jitter), each check at most {cfg.check_timeout_s:g}s; "
            f"alert after {cfg.failures_to_alert} failures in a row; system restored after "
            f"{cfg.healthy_to_restore} healthy checks in a row")
    return [head] + [f"  · {spec.describe}" for spec in _specs(config, None)]


def _specs(config: RunbookConfig, monitor: Monitor | None) -> list[CheckSpec]:
    cfg = config.monitor
    slow = config.thresholds.backend_response_s
    health_url = str(config.health.url)
    specs = [CheckSpec("health", f"GET {health_url} expects {config.health.expect_json} under {slow:g}s",
                       http=HttpCheck(health_url, expect_json=config.health.expect_json, slow_after=slow),
                       criterion=HEALTH_CRITERION)]
    for endpoint in config.health.core_endpoints:
        url = urljoin(health_url, endpoint.path)
        bearer = monitor.deps.target.env_value(endpoint.bearer_token_env) if monitor else None
        specs.append(CheckSpec(f"GET {endpoint.path}", f"GET {url} expects {endpoint.expect_status}",
                               http=HttpCheck(url, expect_status=endpoint.expect_status, bearer=bearer,
                                              slow_after=slow), criterion=HEALTH_CRITERION))
    if cfg.pm2 and config.pm2.apps:
        specs.append(CheckSpec("pm2", "pm2 jlist: " + ", ".join(config.pm2.apps) + " online, restart count not "
                               "growing (restarts the bot made itself excepted)",
                               measure=monitor.pm2_check if monitor else None))
    for probe in cfg.mongo_probes:
        specs.append(CheckSpec(probe.name, f"{probe.collection}: {probe.failed_filter} / {probe.total_filter or 'all'}"
                               f" over {probe.window_minutes} min ≤ {probe.max_ratio:.0%}",
                               measure=monitor.mongo_measure(probe) if monitor else None,
                               criterion=probe.criterion, error_criterion=DB_CRITERION))
    return specs


def check_limits(config: RunbookConfig, names: list[str]) -> dict[str, CheckLimit]:
    """The line each check's latency is judged against: an HTTP check's slow threshold, else the time limit."""
    http = {spec.name for spec in _specs(config, None) if spec.http is not None}
    slow = CheckLimit(config.thresholds.backend_response_s, "slow above", "thresholds.backend_response_s")
    limit = CheckLimit(config.monitor.check_timeout_s, "time limit", "monitor.check_timeout_s")
    return {name: slow if name in http else limit for name in names}


class Monitor:
    def __init__(self, deps: Deps, desk: Desk, changes: Changes) -> None:
        self.deps, self.desk, self.changes = deps, desk, changes
        self.charts = HealthCharts(deps, desk)
        self._pool: ThreadPoolExecutor | None = None

    @property
    def cfg(self) -> MonitorConfig:
        return self.deps.config.monitor

    @property
    def pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.cfg.max_parallel, thread_name_prefix="rollback-check")
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    # ---- one run ------------------------------------------------------------------------------------
    def run_once(self) -> list[CheckResult] | None:
        """Measure everything (if this process holds the lease), update states, alert, watch."""
        now = self.deps.clock.now()
        if not self.deps.store.try_lease("monitor", self.deps.replica.owner.instance, now, ttl_s=self.cfg.lease_s):
            return None
        specs = _specs(self.deps.config, self)
        results = self.measure(specs, now)
        for result in results:
            self.deps.metrics.check_result(result.name, result.ok,
                                           None if result.latency_ms is None else result.latency_ms / 1000)
            try:
                self._record(result)
            except Exception:
                log.exception("could not record check %s", result.name)
        try:
            self._watch(results, now)
        except Exception:
            log.exception("post-rollback watch failed")
        if results and all(r.ok for r in results) and self.deps.config.build.keep.schedule:
            keep_running_build(self.deps, "while the scheduled health checks passed")
        return results

    def measure(self, specs: list[CheckSpec], now: datetime) -> list[CheckResult]:
        timeout = self.cfg.check_timeout_s
        threaded: dict[Future[list[CheckResult]], CheckSpec] = {
            self.pool.submit(spec.measure, now): spec for spec in specs if spec.measure is not None}
        http = [spec for spec in specs if spec.http is not None]
        probes = self.deps.target.probe([spec.http for spec in http if spec.http], timeout=timeout,
                                        concurrency=self.cfg.http_concurrency)
        results = [self._http_result(spec, probe, now) for spec, probe in zip(http, probes, strict=True)]
        done, _ = wait_all(threaded, timeout=timeout + GRACE_S)
        for future, spec in threaded.items():
            broken = [spec.error_criterion] if spec.error_criterion else []
            if future not in done:
                future.cancel()
                results.append(CheckResult(name=spec.name, ok=False, at=now, criteria=broken,
                                           detail=f"no answer within {timeout:g}s (hung)"))
                continue
            try:
                results.extend(future.result())
            except Exception as error:  # noqa: BLE001 - a broken check is a failing check, not a crash
                results.append(CheckResult(name=spec.name, ok=False, at=now, criteria=broken,
                                           detail=redact_uri(str(error))[:200]))
        return results

    def _http_result(self, spec: CheckSpec, probe: HttpAnswer, at: datetime) -> CheckResult:
        slow = self.deps.config.thresholds.backend_response_s
        criteria: list[str] = []
        if not probe.ok:
            if probe.seconds > slow:
                criteria.append(SLOW_CRITERION)
            if not probe.answered_right and spec.criterion:  # a 5xx, a wrong body, no answer at all
                criteria.append(spec.criterion)
        return CheckResult(name=spec.name, ok=probe.ok, at=at, latency_ms=round(probe.seconds * 1000, 1),
                           detail=probe.detail, criteria=criteria)

    # ---- the thread-pool checks ------------------------------------------------------------------------
    def pm2_check(self, at: datetime) -> list[CheckResult]:
        config = self.deps.config
        started = time.monotonic()
        states = self.deps.target.apps()
        latency = round((time.monotonic() - started) * 1000, 1)
        own, restarting = self._own_restarts()
        results = []
        for app in config.pm2.apps:
            name = f"pm2 {app}"
            state = states.get(app)
            if state is None:
                results.append(CheckResult(name=name, ok=False, at=at, latency_ms=latency, detail="not known to pm2"))
                continue
            if app in restarting:
                # The bot's own restart step is restarting it right now: not measured this round. Once the
                # step has finished, the restart count it recorded is the baseline.
                log.info("pm2 %s: not measured, %s's restart step is restarting it", app, restarting[app])
                continue
            before = self.deps.store.get_check(name)
            previous = before.last.value if before and before.last and before.last.value is not None else None
            restarts = state.restarts or 0
            baseline = max(previous or 0, own.get(app, 0)) if previous is not None else None
            grew = baseline is not None and restarts > baseline
            ok = state.online and not grew
            detail = f"{state.status}, {restarts} restart(s)" + (f" (was {baseline:g})" if grew else "")
            results.append(CheckResult(name=name, ok=ok, at=at, latency_ms=latency, detail=detail, value=restarts,
                                       criteria=[] if ok else [CRASH_CRITERION]))
        return results

    def _own_restarts(self) -> tuple[dict[str, int], dict[str, str]]:
        """Restart counts pm2 reported right after the bot's own restarts (growth up to them is not a crash),
        and the apps a restart step is restarting right now (→ the incident running it)."""
        counts: dict[str, int] = {}
        restarting: dict[str, str] = {}
        for incident in self.deps.store.active_incidents():
            for run in self.deps.store.step_runs(incident.id):
                if run.step is not StepName.RESTART:
                    continue
                if run.status is StepStatus.RUNNING:
                    restarting.update(dict.fromkeys(self.deps.config.pm2.to_restart, incident.id))
                elif isinstance(run.artifacts, RestartArtifacts):
                    for app, facts in run.artifacts.apps.items():
                        counts[app] = max(counts.get(app, 0), facts.restarts)
        return counts, restarting

    def mongo_measure(self, spec: MongoProbe) -> Measure:
        return lambda at: [self.mongo_check(spec, at)]

    def mongo_check(self, spec: MongoProbe, at: datetime) -> CheckResult:
        window: dict[str, dict[str, datetime]] = {}
        if spec.time_field:
            window = {spec.time_field: {"$gte": at - timedelta(minutes=spec.window_minutes)}}
        started = time.monotonic()
        failed, total = self.deps.tenant_data.count(spec.collection, {**spec.failed_filter, **window},
                                                    {**spec.total_filter, **window})
        latency = round((time.monotonic() - started) * 1000, 1)
        ratio = failed / total if total else 0.0
        ok = total < spec.min_total or ratio <= spec.max_ratio
        return CheckResult(name=spec.name, ok=ok, at=at, latency_ms=latency, value=round(ratio, 4),
                           detail=f"{failed}/{total} = {ratio:.0%} (limit {spec.max_ratio:.0%})",
                           criteria=[] if ok or not spec.criterion else [spec.criterion])

    # ---- state, alerts ---------------------------------------------------------------------------------
    def _record(self, result: CheckResult) -> None:
        store = self.deps.store
        for _ in range(5):
            state = store.get_check(result.name) or CheckState(id=result.name)
            before = state.status
            slot = state.runs % self.cfg.history
            state.runs += 1
            state.last = result
            if result.ok:
                state.oks, state.fails = state.oks + 1, 0
                if before is not CheckStatus.HEALTHY:
                    state.status, state.changed_at, state.first_failure_at = CheckStatus.HEALTHY, result.at, None
            else:
                state.fails, state.oks = state.fails + 1, 0
                state.first_failure_at = state.first_failure_at or result.at
                if before is not CheckStatus.FAILING and state.fails >= self.cfg.failures_to_alert:
                    state.status, state.changed_at = CheckStatus.FAILING, result.at
            try:
                saved = store.save_check(state)
                break
            except StaleState:
                continue
        else:
            return
        store.add_check_result(result, slot)
        if saved.status != before and not (before is CheckStatus.UNKNOWN and saved.status is CheckStatus.HEALTHY):
            self._alert(saved, result)

    def _alert(self, state: CheckState, result: CheckResult) -> None:
        deps = self.deps
        criteria = self._criteria_met(state, result) if state.status is CheckStatus.FAILING else []
        active = self._active_rollback() if criteria else None
        deps.store.audit(result.at, "bot", "monitor.alert", None, check=state.id, status=state.status.value,
                         detail=result.detail, criteria=criteria, active=active.incident_id if active else None)
        channel = deps.config.slack.alerts_channel
        if channel:
            deps.messenger.post(channel, deps.ui.alert(state, result, criteria, active,
                                                       self._on_call() if criteria and active is None else []))

    def _on_call(self) -> list[str]:
        """Whom an alert that meets the rollback criteria wakes: the commanders (a group's handle as its id)."""
        try:
            return [p.user for p in self.deps.access.commander_mentions()]
        except ConfigError:  # a workspace without user groups: the handles as typed
            return list(self.deps.config.access.commanders)

    def _criteria_met(self, state: CheckState, result: CheckResult) -> list[str]:
        """Every runbook criterion the failures since the first one met (a 500, then a timeout: two)."""
        since = state.first_failure_at or result.at
        met: list[str] = []
        for failure in [*self.deps.store.check_history(state.id), result]:
            if failure.ok or failure.at < since:
                continue
            for criterion in failure.criteria:
                if criterion not in met:
                    if criterion in CRITERIA_KEYS:
                        met.append(criterion)
                    else:
                        log.warning("check %s: %r is not one of the runbook's criteria", state.id, criterion)
        return met

    def _active_rollback(self) -> ActiveRollback | None:
        """The rollback a Start rollback button would be refused for: one active in the first incident channel
        (where the button opens it) or on the target."""
        channels = self.deps.config.access.incident_channels
        if not channels:
            return None
        for key in self.desk.keys(channels[0]):
            incident = self.deps.store.active_incident(key)
            if incident is not None:
                return ActiveRollback(incident.id, incident.channel, incident.commander, self.desk.link(incident))
        return None

    # ---- /rollback health -------------------------------------------------------------------------------
    def report(self, actor: str, channel: str) -> HealthReport:
        """Every check with its last hour, and the chart: into this channel's incident thread, at most once a
        minute (see :class:`bot.domain.charts.HealthCharts`)."""
        self.deps.access.require(Act.HEALTH, actor, channel)
        now = self.deps.clock.now()
        states = self.deps.store.checks()
        limits = check_limits(self.deps.config, [state.id for state in states])
        views = [CheckView(state, [r for r in self.deps.store.check_history(state.id) if r.at >= now - CHART_WINDOW],
                           limits[state.id]) for state in states]
        return self.charts.report(actor, channel, views, now)

    # ---- the post-rollback watch ------------------------------------------------------------------------
    def _watch(self, results: list[CheckResult], now: datetime) -> None:
        healthy = all(r.ok for r in results)
        failing = [r for r in results if not r.ok]
        for incident in self.deps.store.active_incidents():
            if incident.lifecycle.phase is Phase.RESTORED:
                self._watch_one(incident.id, healthy, failing, now)

    def _watch_one(self, incident_id: str, healthy: bool, failing: list[CheckResult], now: datetime) -> None:
        need, every = self.cfg.healthy_to_restore, self.cfg.verdict_every
        verdicts: list[WatchVerdict] = []

        def watch(fresh: Incident) -> None:
            verdicts.clear()
            if fresh.lifecycle.phase is not Phase.RESTORED:
                return  # confirmed, changed again or closed since it was read
            w = fresh.watch
            w.checks += 1
            w.streak = w.streak + 1 if healthy else 0
            if healthy and w.streak == 1:
                w.healthy_since = now
            if w.streak >= need:
                minutes = max(0, int((now - (w.healthy_since or now)).total_seconds() // 60))
                fresh.advance(Event.CONFIRMED, now, "bot", confirmed=RestoredBy.WATCH)
                verdicts.append(WatchVerdict(kind="restored", minutes=minutes, streak=w.streak, need=need))
            elif w.checks % every == 0:
                verdicts.append(WatchVerdict(kind="failing", failing=failing[:5]) if not healthy else
                                WatchVerdict(kind="better", streak=w.streak, need=need))

        updated = self.desk.mutate(incident_id, watch)
        if verdicts:
            self.desk.thread(updated, self.deps.ui.watch_verdict(verdicts[0]))
        if Milestone.SYSTEM_RESTORED in updated.milestones:
            self.desk.audit(now, "bot", "incident.system_restored", updated.id, by="watch",
                            checks=updated.watch.checks)
            self.changes.after(updated.id)
