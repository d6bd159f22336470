"""The bot's own `/rollback restart` is not a crash: not while it runs, not after. A real crash of another pm2
app still is. Real pm2 with the sandbox's apps, the restart typed through the emulator; the checks run by
`Monitor.run_once` (also in the middle of the restart step, between `pm2 restart` and the app online again)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.app import SocketModeBot
from bot.dev.emulator import Emulator
from bot.dev.sandbox import Sandbox
from bot.domain.checks import CheckResult
from bot.ops.pm2 import AppState, Pm2
from tests.conftest import make_settings
from tests.monitor.conftest import Backend
from tests.monitor.test_alerts import labels, next_alert
from tests.monitor.test_monitor import ALERTS, MONITOR, alerts
from tests.runbook.test_full_rollback import panel_ts, run_step

pytestmark = pytest.mark.slow
BACKEND, AI = "ai-professor-backend-5000", "ai-professor-python"


def crash(pm2: Pm2, app: str) -> AppState:
    """Kill the app's process the way a crash would; return its state once pm2 has brought it back."""
    before = {s.name: s for s in pm2.jlist()}[app]
    assert before.pid is not None and before.online
    os.kill(before.pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        now = {s.name: s for s in pm2.jlist()}.get(app)
        if now is not None and now.online and now.pid != before.pid and now.restarts > before.restarts:
            return now
        time.sleep(0.1)  # polling for pm2's own restart, a positive sign
    raise AssertionError(f"pm2 did not restart {app} after its process was killed")


def by_name(results: list[CheckResult] | None) -> dict[str, CheckResult]:
    return {r.name: r for r in results or []}


def test_the_bots_own_restart_is_no_crash_while_a_killed_app_is_one(
        emulator: Emulator, live_sandbox: Sandbox, tmp_path: Path, backend: Backend,
        start_bot: Callable[..., SocketModeBot], monkeypatch: pytest.MonkeyPatch) -> None:
    # One failure is enough to alert: any result the restart made look like a crash would show.
    settings = make_settings(emulator, live_sandbox, tmp_path / "data",
                             health={"url": f"{backend.url}/api/health", "core_endpoints": []},
                             slack={"alerts_channel": ALERTS}, monitor={**MONITOR, "pm2": True, "failures_to_alert": 1})
    bot = start_bot(settings)
    monitor, store = bot.services.monitor, bot.services.store
    pm2 = Pm2(home=live_sandbox.pm2_home)
    first = by_name(monitor.run_once())
    assert first[f"pm2 {BACKEND}"].ok and first[f"pm2 {AI}"].ok

    # A real crash, no rollback active: an alert with the runbook's criterion and its button.
    crashed = crash(pm2, AI)
    alert = next_alert(emulator, monitor, f"pm2 {AI}")
    assert f"{crashed.restarts} restart(s)" in alert["text"]
    assert labels(alert) == ["Start rollback: Backend crashes repeatedly"]
    next_alert(emulator, monitor, f"pm2 {AI}", failing=False)  # the count stays put now: healthy again

    # The bot's own restart, with the monitor running in the middle of it.
    during: list[dict[str, CheckResult]] = []
    restart_watched = Pm2.restart_watched

    def checks_mid_restart(self: Pm2, apps: list[str], timeout: float) -> Any:
        seen = restart_watched(self, apps, timeout)
        during.append(by_name(monitor.run_once()))  # pm2 has restarted it; the step is still running
        return seen

    monkeypatch.setattr(Pm2, "restart_watched", checks_mid_restart)
    emulator.slash("casey", "incident-rollback", "start backend crashes").wait()
    ts = panel_ts(emulator)
    before = {s.name: s for s in pm2.jlist()}[BACKEND].restarts
    assert "— succeeded" in run_step(emulator, ts, "restart")
    restarted = {s.name: s for s in pm2.jlist()}[BACKEND]
    assert restarted.restarts == before + 1  # pm2 counted the bot's restart
    assert len(during) == 1 and f"pm2 {BACKEND}" not in during[0]  # not measured while the bot restarts it
    assert during[0][f"pm2 {AI}"].ok  # the other app was measured as usual
    after = by_name(monitor.run_once())[f"pm2 {BACKEND}"]
    assert after.ok and after.value == restarted.restarts and after.criteria == []

    # A real crash of the other app, now: alerted (and the alert names the active rollback).
    crash(pm2, AI)
    again = next_alert(emulator, monitor, f"pm2 {AI}")
    assert "RB-0001" in str(again["blocks"]) and labels(again) == []

    # That later alert is the positive sign the monitor went on working: the restart alerted nobody.
    assert not [m for m in alerts(emulator) if BACKEND in m["text"]]
    failing = [e.data["check"] for e in store.audit_events() if e.action == "monitor.alert"
               and e.data["status"] == "failing"]
    assert failing == [f"pm2 {AI}", f"pm2 {AI}"]
    assert all(r.ok for r in store.check_history(f"pm2 {BACKEND}"))
