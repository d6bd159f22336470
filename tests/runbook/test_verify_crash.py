"""Verify right after a restart fails for an app that crashes soon after it starts, and says so, whatever the
HTTP checks happened to see while it was up: pm2 restarts it, and the bot asks pm2. Each restarted app must have
been up for pm2's `min_uptime` (pm2's own line between a start and an unstable restart) without a restart by pm2
since the bot's. A real pm2 running the sandbox's backend, a real bot on the emulated Slack."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.app import SocketModeBot
from bot.dev.emulator import Emulator
from bot.dev.sandbox import Sandbox
from tests.conftest import INCIDENT, make_settings
from tests.runbook.test_full_rollback import panel_ts, run_step

CRASH_SOON = "\nsetTimeout(() => { console.error('FATAL: cannot read the new case format'); process.exit(1); }, 400);\n"


@pytest.mark.slow
def test_verify_after_a_restart_fails_for_a_backend_that_crashes_soon_after_it_starts(
        emulator: Emulator, live_sandbox: Sandbox, tmp_path: Path,
        start_bot: Callable[..., SocketModeBot]) -> None:
    start_bot(make_settings(emulator, live_sandbox, tmp_path / "data"))
    emulator.slash("casey", "incident-rollback", "start the backend keeps dying").wait()
    ts = panel_ts(emulator)
    server = live_sandbox.repo / "dist" / "server.js"
    server.write_text(server.read_text() + CRASH_SOON)  # the build that is restarted answers, then dies

    assert "— succeeded" in run_step(emulator, ts, "restart")  # online: pm2 started it
    result = run_step(emulator, ts, "verify")
    assert "— failed" in result, result
    [verify] = [str(m["blocks"]) for m in emulator.ws.thread(INCIDENT, ts) if "*Verify rollback* —" in m["text"]]
    # once or more, depending on how long the verify took: pm2 restarts it every time it dies
    crashes = re.search(r"pm2 restarted it (\d+) more time\(s\) since the bot", verify)
    assert crashes and int(crashes.group(1)) >= 1 and "(it crashed)" in verify, verify
    assert "crashed after the restart: pm2 restarted it" in verify and "does not stay up" in verify


@pytest.mark.slow
def test_verify_after_a_restart_says_how_long_a_backend_that_stays_up_was_up(
        emulator: Emulator, live_sandbox: Sandbox, tmp_path: Path,
        start_bot: Callable[..., SocketModeBot]) -> None:
    start_bot(make_settings(emulator, live_sandbox, tmp_path / "data"))
    emulator.slash("casey", "incident-rollback", "start health 500").wait()
    ts = panel_ts(emulator)
    assert "— succeeded" in run_step(emulator, ts, "restart")
    run_step(emulator, ts, "verify")  # the sandbox's broken deploy answers 500: the HTTP check fails, pm2's passes
    [verify] = [str(m["blocks"]) for m in emulator.ws.thread(INCIDENT, ts) if "*Verify rollback* —" in m["text"]]
    up = re.search(r"pm2 ai-professor-backend-5000 error log: online; up ([0-9.]+)s, not restarted again", verify)
    assert up and float(up.group(1)) >= 1.0, verify  # pm2's default min_uptime
