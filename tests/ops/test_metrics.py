"""/metrics scraped over real HTTP while the bot takes the live sandbox (real git, yarn, pm2, MongoDB) through a
whole rollback: the runbook's five steps, a cleanup and a restore, each approved by a second person."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.app import SocketModeBot
from bot.dev.emulator import Emulator
from bot.dev.sandbox import Sandbox
from bot.domain.approvals import Approval, ApprovalStatus
from tests.conftest import INCIDENT, make_settings
from tests.runbook.test_full_rollback import panel_ts, run_step

pytestmark = pytest.mark.slow
STEPS = ("backup", "revert", "rebuild", "restart", "verify")

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    """Every sample of one scrape, by name and labels."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:  # noqa: S310 - a loopback URL
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = response.read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: Samples, metric: str, /, **labels: str) -> float:
    return samples.get((metric, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, metric: str, /, **labels: str) -> float:
    """The sum over every series of ``metric`` whose labels include ``labels``."""
    return sum(v for (n, have), v in samples.items() if n == metric and set(labels.items()) <= set(have))


def danger(emulator: Emulator, bot: SocketModeBot, text: str, approver: str, count: int) -> Approval:
    """Ask for a danger-zone run, have ``approver`` approve it with ✅, and wait until it executed."""
    emulator.slash("casey", "incident-rollback", text).wait()

    def requests() -> list[str]:
        return [str(m["ts"]) for m in emulator.ws.channel_messages(INCIDENT)
                if m.get("blocks") and "DANGER ZONE" in str(m["blocks"][0])]

    ts = emulator.ws.wait_for(lambda: len(requests()) >= count and requests()[-1], 30, f"the {text} request")
    store = bot.services.store
    emulator.ws.wait_for(lambda: store.approval_for_message(ts), 10, "the request's record")
    emulator.react(approver, "incident-rollback", ts, "white_check_mark").wait()
    return emulator.ws.wait_for(lambda: (a := store.approval_for_message(ts)) is not None
                                and a.status is ApprovalStatus.EXECUTED and a, 60, f"the {text} to execute")


def test_metrics_move_through_a_full_rollback_with_cleanup_and_restore(
        emulator: Emulator, live_sandbox: Sandbox, tmp_path: Path, start_bot: Callable[..., SocketModeBot]) -> None:
    settings = make_settings(emulator, live_sandbox, tmp_path / "data", ops={"port": 0},
                             cleanup={"start_delay_s": 0})
    bot = start_bot(settings)
    assert bot.ops is not None
    before = scrape(bot.ops.url)
    assert total(before, "rollback_bot_requests_total") == 0 and total(before, "rollback_bot_steps_total") == 0

    emulator.slash("casey", "incident-rollback", "start health returns 500 after Phase 3").wait()
    ts = panel_ts(emulator)
    for step in STEPS:
        assert "— succeeded" in run_step(emulator, ts, step)
    middle = scrape(bot.ops.url)
    for step in STEPS:
        assert value(middle, "rollback_bot_steps_total", step=step, outcome="succeeded") == 1, step
        assert value(middle, "rollback_bot_step_seconds_count", step=step) == 1, step
        assert value(middle, "rollback_bot_requests_total", kind="command", name=step) == 1, step
    assert value(middle, "rollback_bot_requests_total", kind="command", name="start") == 1

    danger(emulator, bot, "cleanup", "alex", 1)
    danger(emulator, bot, "restore all", "dana", 2)
    # the scheduled health checks (every 60 s) run now, by the scheduler, on the healthy sandbox
    bot.services.scheduler.modify_job("health-checks", next_run_time=datetime.now(UTC))
    emulator.ws.wait_for(lambda: total(scrape(bot.ops.url), "rollback_bot_health_checks_total") > 0, 30,
                         "a scheduled health check")
    after = scrape(bot.ops.url)

    tenants = len(live_sandbox.tenant_dbs)
    for action in ("cleanup", "restore"):
        assert value(after, "rollback_bot_danger_runs_total", action=action, event="started") == 1, action
        assert value(after, "rollback_bot_danger_runs_total", action=action, event="finished") == 1, action
        assert value(after, "rollback_bot_danger_runs_total", action=action, event="failed") == 0, action
        assert value(after, "rollback_bot_danger_tenants_total", action=action) == tenants, action
        assert value(after, "rollback_bot_danger_runs_in_progress", action=action) == 0, action
        assert value(after, "rollback_bot_danger_run_last_progress_timestamp_seconds", action=action) > 0, action
        assert value(after, "rollback_bot_requests_total", kind="command", name=action) == 1, action
    assert value(after, "rollback_bot_requests_total", kind="event", name="reaction_added") == 2
    # every request acknowledged, each well inside Slack's 3 s
    acks = total(after, "rollback_bot_ack_seconds_count")
    assert acks == total(after, "rollback_bot_requests_total") >= 10
    assert total(after, "rollback_bot_ack_seconds_bucket", le="1.0") == acks
    # the bot's own Web API calls, the scheduler's jobs and the checks of the sandbox
    assert value(after, "rollback_bot_slack_api_calls_total", method="chat.postMessage", result="ok") > 0
    assert value(after, "rollback_bot_slack_api_calls_total", method="chat.update", result="ok") > 0
    assert value(after, "rollback_bot_scheduler_lag_seconds_count", job="sweep") > 0
    assert total(after, "rollback_bot_health_checks_total", result="ok") > 0
    assert total(after, "rollback_bot_health_check_seconds_count") > 0
    # counters only ever grow between scrapes
    for key, seen in middle.items():
        if key[0].endswith(("_total", "_count", "_sum")) and "in_progress" not in key[0]:
            assert after.get(key, 0.0) >= seen, key
    fast = total(after, "rollback_bot_ack_seconds_bucket", le="0.05")
    print(f"{int(acks)} requests acked, {int(fast)} within 50 ms; "
          f"ack sum {total(after, 'rollback_bot_ack_seconds_sum') * 1000:.0f} ms")
