"""The bot's own metrics, in Prometheus's text format at ``/metrics`` (served by ``bot.app.opsweb``).

One :class:`BotMetrics` per running bot, on a registry of its own (never prometheus_client's global one), so
several bots in one process (the tests) count apart. It implements the domain's ``Metrics`` port (steps, danger
runs, scheduled checks), the Slack client's ``CallObserver`` (Web API errors and retries) and what the
composition root sees itself: each request's kind and the time to its ack, the scheduler's lag, readiness.
Every record is an addition under a lock in memory: nothing here waits on the store, Slack or the network.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from bot.commands import Subcommand
from bot.ids import Action, Event, View

CONTENT_TYPE = CONTENT_TYPE_LATEST
#: Acks are due within 3 s; the buckets resolve the few milliseconds they usually take and the slow tail.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
STEP_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
CHECK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0)
OTHER = "other"
SUBCOMMANDS, ACTIONS, VIEWS, EVENTS = ({member.value for member in enum} for enum in (Subcommand, Action, View, Event))


def request_kind(body: Mapping[str, Any]) -> tuple[str, str]:
    """A Slack request as (kind, name), from a closed set of names (anything else is ``other``), so a typo in a
    command or a stranger's payload cannot grow the number of series: ``("command", "backup")``, ``("action",
    "rollback_step")``, ``("view", "rollback_view_rca")``, ``("event", "reaction_added")``."""
    if "command" in body:
        word = str(body.get("text") or "").strip().split(maxsplit=1)
        name = word[0].lower() if word else Subcommand.HELP.value
        return "command", name if name in SUBCOMMANDS else OTHER
    kind = body.get("type")
    if kind == "block_actions":
        actions = body.get("actions") or [{}]
        action = str((actions[0] or {}).get("action_id", "")).split(":", 1)[0]
        return "action", action if action in ACTIONS else OTHER
    if kind in ("view_submission", "view_closed"):
        callback = str((body.get("view") or {}).get("callback_id", "")).split(":", 1)[0]
        return "view", callback if callback in VIEWS else OTHER
    if kind == "event_callback":
        event = str((body.get("event") or {}).get("type", ""))
        return "event", event if event in EVENTS else OTHER
    return OTHER, OTHER


class BotMetrics:
    """The metrics of one bot. Names start ``rollback_bot_``; the README's operations section lists each."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("rollback_bot_requests", "Slack requests acknowledged, by kind (command, action, "
                                "view, event) and name (the subcommand, action id, form or event type)",
                                ["kind", "name"], registry=r)
        self.ack_seconds = Histogram("rollback_bot_ack_seconds", "From a Slack request reaching the bot to its ack "
                                     "being sent (Slack allows 3 s)", ["kind"], buckets=ACK_BUCKETS, registry=r)
        self.steps = Counter("rollback_bot_steps", "Runbook steps that ended, by step and outcome",
                             ["step", "outcome"], registry=r)
        self.step_seconds = Histogram("rollback_bot_step_seconds", "How long each runbook step ran", ["step"],
                                      buckets=STEP_BUCKETS, registry=r)
        self.danger_runs = Counter("rollback_bot_danger_runs", "Danger-zone runs (cleanup, restore) by event: "
                                   "started, resumed, finished, failed", ["action", "event"], registry=r)
        self.danger_tenants = Counter("rollback_bot_danger_tenants", "Tenants a danger-zone run has finished",
                                      ["action"], registry=r)
        self.danger_in_progress = Gauge("rollback_bot_danger_runs_in_progress",
                                        "Danger-zone runs this process is executing now", ["action"], registry=r)
        self.danger_progress_at = Gauge("rollback_bot_danger_run_last_progress_timestamp_seconds",
                                        "When a danger-zone run of this process last started or finished a tenant "
                                        "(Unix time)", ["action"], registry=r)
        self.checks = Counter("rollback_bot_health_checks", "Scheduled health-check results, by check and result",
                              ["check", "result"], registry=r)
        self.check_seconds = Histogram("rollback_bot_health_check_seconds", "Latency of the scheduled health "
                                       "checks that answered", ["check"], buckets=CHECK_BUCKETS, registry=r)
        self.slack_calls = Counter("rollback_bot_slack_api_calls", "Slack Web API calls the bot made, by method and "
                                   "result (ok, or Slack's error code)", ["method", "result"], registry=r)
        self.slack_retries = Counter("rollback_bot_slack_api_retries", "Slack Web API attempts retried, by method "
                                     "and reason (ratelimited, server_error, connection)", ["method", "reason"],
                                     registry=r)
        self.scheduler_lag = Histogram("rollback_bot_scheduler_lag_seconds", "How late a scheduled job was "
                                       "handed to its worker after its due time", ["job"], buckets=LAG_BUCKETS,
                                       registry=r)
        self.scheduler_skipped = Counter("rollback_bot_scheduler_skipped_runs", "Scheduled runs not made: missed "
                                         "(too late) or still running (max_instances)", ["job", "reason"],
                                         registry=r)
        self.scheduler_errors = Counter("rollback_bot_scheduler_job_errors", "Scheduled runs that raised",
                                        ["job"], registry=r)
        self.readiness: Callable[[], Mapping[str, str | None]] | None = None  # set by bot.app.opsweb.Readiness
        r.register(_Ready(self))
        self._lock = threading.Lock()
        self._last_call: tuple[float, str, bool, str | None] | None = None  # monotonic, method, reached, error

    # ---- the composition root --------------------------------------------------------------------------
    def request(self, body: Mapping[str, Any], ack_s: float) -> None:
        kind, name = request_kind(body)
        self.requests.labels(kind, name).inc()
        self.ack_seconds.labels(kind).observe(ack_s)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    # ---- the domain's Metrics port -----------------------------------------------------------------------
    def step_finished(self, step: str, ok: bool, seconds: float) -> None:
        self.steps.labels(step, "succeeded" if ok else "failed").inc()
        self.step_seconds.labels(step).observe(max(0.0, seconds))

    def danger_run(self, action: str, event: str) -> None:
        if event == "tenant_done":
            self.danger_tenants.labels(action).inc()
            self.danger_progress_at.labels(action).set(time.time())
        else:
            self.danger_runs.labels(action, event).inc()

    @contextmanager
    def danger_running(self, action: str) -> Iterator[None]:
        self.danger_in_progress.labels(action).inc()
        self.danger_progress_at.labels(action).set(time.time())
        try:
            yield
        finally:
            self.danger_in_progress.labels(action).dec()

    def check_result(self, check: str, ok: bool, seconds: float | None) -> None:
        self.checks.labels(check, "ok" if ok else "failed").inc()
        if seconds is not None:
            self.check_seconds.labels(check).observe(seconds)

    # ---- the Slack client's CallObserver ---------------------------------------------------------------
    def api_call(self, method: str, error: str | None, reached: bool) -> None:
        self.slack_calls.labels(method, error or "ok").inc()
        with self._lock:
            self._last_call = (time.monotonic(), method, reached, error)

    def api_retry(self, method: str, reason: str) -> None:
        self.slack_retries.labels(method, reason).inc()

    def slack_unreached(self) -> str | None:
        """Why Slack looks unreachable from the last Web API call the bot made (None: it answered, or no call yet)."""
        with self._lock:
            last = self._last_call
        if last is None or last[2]:
            return None
        at, method, _, error = last
        return f"the last Web API call ({method}, {time.monotonic() - at:.0f} s ago) got no answer from Slack: {error}"

    # ---- APScheduler's events ---------------------------------------------------------------------------
    def scheduler_event(self, event: Any) -> None:
        """An APScheduler event (submitted, missed, max_instances, error): the lag and what was skipped."""
        from apscheduler.events import (
            EVENT_JOB_ERROR,
            EVENT_JOB_MAX_INSTANCES,
            EVENT_JOB_MISSED,
            EVENT_JOB_SUBMITTED,
        )

        job = str(getattr(event, "job_id", OTHER))
        if event.code == EVENT_JOB_SUBMITTED:
            now = time.time()
            for due in event.scheduled_run_times:
                self.scheduler_lag.labels(job).observe(max(0.0, now - due.timestamp()))
        elif event.code == EVENT_JOB_MISSED:
            self.scheduler_skipped.labels(job, "missed").inc()
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            self.scheduler_skipped.labels(job, "still_running").inc()
        elif event.code == EVENT_JOB_ERROR:
            self.scheduler_errors.labels(job).inc()


class _Ready(Collector):
    """``rollback_bot_ready{component}``: what /readyz would answer, worked out at each scrape (from memory only),
    so an alert needs no one to have called /readyz."""

    def __init__(self, metrics: BotMetrics) -> None:
        self.metrics = metrics

    def describe(self) -> list[GaugeMetricFamily]:
        return [self._family()]

    def collect(self) -> list[GaugeMetricFamily]:
        family = self._family()
        readiness = self.metrics.readiness
        if readiness is not None:
            for component, problem in readiness().items():
                family.add_metric([component], 0.0 if problem else 1.0)
        return [family]

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily("rollback_bot_ready", "1 when the component is ready (as /readyz says), else 0",
                                 labels=["component"])
