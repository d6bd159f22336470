"""Scheduled health checks, rollback alerts and the post-rollback watch.

APScheduler calls ``Monitor.run_once`` every ``monitor.interval_s`` (with jitter) on every replica;
only the holder of the store lease ``monitor`` measures, so the schedule runs once however many bot
processes share the state store, and another takes over within one lease period if the holder dies.

Every check runs on its own worker with its own time limit, so a hung endpoint never delays the
others. A check's state (healthy/failing, streaks, a bounded history) lives in the store; alerts
go to the alerts channel only when that state changes.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urljoin

from bot.comms import slack_date, slack_escape
from bot.errors import StaleState
from bot.ids import Action
from bot.incident import ROLLBACK_CRITERIA, CheckResult, CheckState, Incident, Milestone
from bot.ops import tenants
from bot.ops.health import probe
from bot.ops.pm2 import Pm2
from bot.redact import redact_uri
from bot.runbook.envfile import env_value

log = logging.getLogger(__name__)

GRACE_S = 0.5  # beyond a check's own limit before it is reported as hung
CRITERIA_TEXT = {item.key: item.text for item in ROLLBACK_CRITERIA}
Measure = Callable[[datetime], list[CheckResult]]


@dataclass(frozen=True)
class CheckSpec:
    name: str
    describe: str
    measure: Measure


class Monitor:
    def __init__(self, service: Any) -> None:
        self.svc = service  # bot.service.RollbackService
        self.holder = f"monitor-{uuid.uuid4().hex[:8]}"
        self._pool: ThreadPoolExecutor | None = None  # made on the first measurement

    @property
    def pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.cfg.max_parallel, thread_name_prefix="rollback-check")
        return self._pool

    @property
    def cfg(self) -> Any:
        return self.svc.config.monitor

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    # ---- what is checked -------------------------------------------------------------------------------
    def specs(self) -> list[CheckSpec]:
        config = self.svc.config
        timeout = self.cfg.check_timeout_s  # each check's own limit; run_once stops waiting shortly after it
        slow = config.thresholds.backend_response_s
        health_url = str(config.health.url)
        specs = [CheckSpec("health", f"GET {health_url} expects {config.health.expect_json} under {slow:g}s",
                           lambda at: [self._http("health", health_url, at, timeout, slow,
                                                  expect_json=config.health.expect_json)])]
        for endpoint in config.health.core_endpoints:
            url = urljoin(health_url, endpoint.path)

            def measure(at: datetime, url: str = url, endpoint: Any = endpoint) -> list[CheckResult]:
                return [self._http(f"GET {endpoint.path}", url, at, timeout, slow, expect_status=endpoint.expect_status,
                                   bearer=env_value(endpoint.bearer_token_env, config.target.env_path))]

            specs.append(CheckSpec(f"GET {endpoint.path}", f"GET {url} expects {endpoint.expect_status}", measure))
        if self.cfg.pm2 and config.pm2.apps:
            specs.append(CheckSpec("pm2", "pm2 jlist: " + ", ".join(config.pm2.apps) + " online, restart count "
                                   "not growing", self._pm2))
        for spec in self.cfg.mongo_probes:
            specs.append(CheckSpec(spec.name, f"{spec.collection}: {spec.failed_filter} / {spec.total_filter or 'all'}"
                                   f" over {spec.window_minutes} min ≤ {spec.max_ratio:.0%}", self._mongo_check(spec)))
        return specs

    def schedule_lines(self) -> list[str]:
        if not self.cfg.enabled:
            return ["scheduled checks are off (monitor.enabled: false)"]
        head = (f"every {self.cfg.interval_s:g}s (+0..{self.cfg.jitter_s:g}s jitter), each check at most "
                f"{self.cfg.check_timeout_s:g}s; alert after {self.cfg.failures_to_alert} failures in a row; "
                f"system restored after {self.cfg.healthy_to_restore} healthy checks in a row")
        return [head] + [f"  · {spec.describe}" for spec in self.specs()]

    # ---- one run -----------------------------------------------------------------------------------------
    def run_once(self) -> list[CheckResult] | None:
        """Measure everything (if this process holds the lease), update states, alert, watch."""
        now = self.svc.clock.now()
        if not self.svc.store.try_lease("monitor", self.holder, now, ttl_s=self.cfg.lease_s):
            return None
        results = self.measure(now)
        for result in results:
            try:
                self._record(result)
            except Exception:
                log.exception("could not record check %s", result.name)
        try:
            self._watch(results, now)
        except Exception:
            log.exception("post-rollback watch failed")
        return results

    def measure(self, now: datetime) -> list[CheckResult]:
        specs = self.specs()
        futures: dict[Future[list[CheckResult]], CheckSpec] = {self.pool.submit(spec.measure, now): spec
                                                                for spec in specs}
        done, _pending = wait_all(futures, timeout=self.cfg.check_timeout_s + GRACE_S)
        results: list[CheckResult] = []
        for future, spec in futures.items():
            if future not in done:
                future.cancel()
                results.append(CheckResult(name=spec.name, ok=False, at=now,
                                           detail=f"no answer within {self.cfg.check_timeout_s:g}s (hung)"))
                continue
            try:
                results.extend(future.result())
            except Exception as error:  # noqa: BLE001 - a broken check is a failing check, not a crash
                results.append(CheckResult(name=spec.name, ok=False, at=now, detail=redact_uri(str(error))[:200]))
        return results

    # ---- the checks themselves ------------------------------------------------------------------------
    def _http(self, name: str, url: str, at: datetime, timeout: float, slow: float, **kwargs: Any) -> CheckResult:
        result = probe(url, timeout=timeout, slow_after=slow, **kwargs)
        criterion = "slow" if result.seconds > slow else None
        return CheckResult(name=name, ok=result.ok, at=at, latency_ms=round(result.seconds * 1000, 1),
                           detail=result.detail, criterion=criterion if not result.ok else None)

    def _pm2(self, at: datetime) -> list[CheckResult]:
        config = self.svc.config
        started = time.monotonic()
        states = {s.name: s for s in Pm2(config.pm2.executable, config.pm2.home).jlist()}
        latency = round((time.monotonic() - started) * 1000, 1)
        results = []
        for app in config.pm2.apps:
            name = f"pm2 {app}"
            state = states.get(app)
            if state is None:
                results.append(CheckResult(name=name, ok=False, at=at, latency_ms=latency, detail="not known to pm2"))
                continue
            before = self.svc.store.get_check(name)
            previous = before.last.value if before and before.last and before.last.value is not None else None
            restarts = state.restarts or 0
            grew = previous is not None and restarts > previous
            ok = state.online and not grew
            detail = f"{state.status}, {restarts} restart(s)" + (f" (was {previous:g})" if grew else "")
            results.append(CheckResult(name=name, ok=ok, at=at, latency_ms=latency, detail=detail, value=restarts,
                                       criterion="crash_loop" if grew or not state.online else None))
        return results

    def _mongo_check(self, spec: Any) -> Measure:
        return lambda at: [self._mongo(spec, at)]

    def _mongo(self, spec: Any, at: datetime) -> CheckResult:
        config = self.svc.config
        from bot.danger import central_uri_for

        uri = central_uri_for(self.svc)
        started = time.monotonic()
        client = tenants.connect(uri)
        try:
            window: dict[str, Any] = {}
            if spec.time_field:
                window = {spec.time_field: {"$gte": at - timedelta(minutes=spec.window_minutes)}}
            failed = total = 0
            for tenant in tenants.list_tenants(client, uri, config.tenants):
                collection = client[tenant.db_name][spec.collection]
                failed += collection.count_documents({**spec.failed_filter, **window})
                total += collection.count_documents({**spec.total_filter, **window})
        finally:
            tenants.close(client)
        latency = round((time.monotonic() - started) * 1000, 1)
        ratio = failed / total if total else 0.0
        ok = total < spec.min_total or ratio <= spec.max_ratio
        return CheckResult(name=spec.name, ok=ok, at=at, latency_ms=latency, value=round(ratio, 4),
                           detail=f"{failed}/{total} = {ratio:.0%} (limit {spec.max_ratio:.0%})",
                           criterion=None if ok else spec.criterion)

    # ---- state, alerts ------------------------------------------------------------------------------------
    def _record(self, result: CheckResult) -> None:
        store = self.svc.store
        for _ in range(5):
            state = store.get_check(result.name) or CheckState(id=result.name)
            before = state.status
            state.history = (state.history + [result])[-self.cfg.history:]
            if result.ok:
                state.oks, state.fails = state.oks + 1, 0
                if before != "healthy":
                    state.status, state.changed_at, state.first_failure_at = "healthy", result.at, None
            else:
                state.fails, state.oks = state.fails + 1, 0
                state.first_failure_at = state.first_failure_at or result.at
                if before != "failing" and state.fails >= self.cfg.failures_to_alert:
                    state.status, state.changed_at = "failing", result.at
            try:
                saved = store.save_check(state)
                break
            except StaleState:
                continue
        else:
            return
        if saved.status != before and not (before == "unknown" and saved.status == "healthy"):
            self._alert(saved, result)

    def _alert(self, state: CheckState, result: CheckResult) -> None:
        svc = self.svc
        svc.store.audit(result.at, "bot", "monitor.alert", None, check=state.id, status=state.status,
                        detail=result.detail, criterion=result.criterion)
        channel = svc.config.slack.alerts_channel
        if not channel:
            return
        latency = f" in {result.latency_ms:.0f} ms" if result.latency_ms is not None else ""
        if state.status == "failing":
            text = (f"🔴 *{slack_escape(state.id)}* is failing: {self.cfg.failures_to_alert} checks in a row, since "
                    f"{slack_date(state.first_failure_at)}. Last: {slack_escape(result.detail)}{latency}")
            blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
            if result.criterion:
                meets = CRITERIA_TEXT.get(result.criterion, result.criterion)
                blocks.append({"type": "context", "elements": [
                    {"type": "mrkdwn", "text": f"Rollback criterion met: *{slack_escape(meets)}*"}]})
                value = json.dumps({"criterion": result.criterion, "check": state.id,
                                    "detected": (state.first_failure_at or result.at).isoformat()})
                blocks.append({"type": "actions", "elements": [{
                    "type": "button", "action_id": Action.START_FROM_ALERT, "style": "danger", "value": value,
                    "text": {"type": "plain_text", "text": "Start rollback"}}]})
        else:
            text = f"🟢 *{slack_escape(state.id)}* is healthy again: {slack_escape(result.detail)}{latency}"
            blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
        svc.messenger.post(channel, text, blocks)

    # ---- the post-rollback watch ----------------------------------------------------------------------------
    def _watch(self, results: list[CheckResult], now: datetime) -> None:
        healthy = all(r.ok for r in results)
        failing = [r for r in results if not r.ok]
        for incident in self.svc.store.incidents():
            if (incident.active and Milestone.ROLLBACK_COMPLETED in incident.milestones
                    and Milestone.SYSTEM_RESTORED not in incident.milestones):
                self._watch_one(incident.id, healthy, failing, now)

    def _watch_one(self, incident_id: str, healthy: bool, failing: list[CheckResult], now: datetime) -> None:
        svc = self.svc
        verdict: list[str] = []
        need = self.cfg.healthy_to_restore

        def watch(fresh: Incident) -> None:
            verdict.clear()
            w = dict(fresh.watch)
            w["checks"] = int(w.get("checks", 0)) + 1
            w["streak"] = int(w.get("streak", 0)) + 1 if healthy else 0
            if healthy and w["streak"] == 1:
                w["healthy_since"] = now.isoformat()
            if w["streak"] >= need:
                since = datetime.fromisoformat(w.get("healthy_since") or now.isoformat())
                minutes = max(0, int((now - since).total_seconds() // 60))
                fresh.reach(Milestone.SYSTEM_RESTORED, now, "bot")
                verdict.append(f"✅ Healthy for {minutes} min ({w['streak']} checks in a row): "
                               "*system restored* recorded.")
            elif w["checks"] % self.cfg.verdict_every == 0:
                if not healthy:
                    verdict.append("🔴 Still failing: " + "; ".join(
                        f"{slack_escape(r.name)} — {slack_escape(r.detail)}" for r in failing[:5]))
                else:
                    verdict.append(f"🟡 Looking better: {w['streak']}/{need} healthy checks in a row.")
            fresh.watch = w

        updated = svc.mutate(incident_id, watch)
        if verdict:
            svc.say(updated.channel, f"👀 Watch: {verdict[0]}", thread_ts=updated.panel_ts)
        if Milestone.SYSTEM_RESTORED in updated.milestones:
            svc.store.audit(now, "bot", "incident.system_restored", updated.id, checks=updated.watch)
            svc.refresh_panel(updated)  # and the stakeholder update


def schedule_for(settings: Any) -> list[str]:
    """What `rollback-bot check` shows: the schedule the bot would run with this config."""

    from types import SimpleNamespace

    return Monitor(SimpleNamespace(config=settings.runbook)).schedule_lines()


def latency_chart(states: list[CheckState], width: int = 360, height: int = 120) -> bytes:
    """A small PNG: one bar per recent result of the first check with latencies (red when it failed)."""
    import struct
    import zlib

    series = next((s.history for s in states if any(r.latency_ms is not None for r in s.history)), [])
    series = series[-width // 4:]
    top = max((r.latency_ms or 0 for r in series), default=1) or 1
    pixels = [[(255, 255, 255)] * width for _ in range(height)]
    for index, result in enumerate(series):
        bar = int((result.latency_ms or 0) / top * (height - 4))
        colour = (46, 160, 67) if result.ok else (207, 34, 46)
        for x in range(index * 4, min(index * 4 + 3, width)):
            for y in range(height - 1 - bar, height):
                pixels[y][x] = colour
    raw = b"".join(b"\x00" + bytes(c for pixel in row for c in pixel) for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))
