"""`/rollback health`: every check privately in words, the latency chart in the incident's thread (never the
channel), at most once a minute. Time is a FakeClock moved by the test; checks run by `Monitor.run_once`."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.app import SocketModeBot
from bot.dev.emulator import Emulator
from bot.dev.emulator.workspace import Ephemeral
from bot.dev.fakeclock import FakeClock
from bot.dev.sandbox import Sandbox
from bot.domain.checks import ChartPlace, CheckView
from bot.domain.monitor import check_limits
from bot.slack_ui.checks import chart_figure
from tests.conftest import COMMANDER, INCIDENT, make_settings
from tests.monitor.conftest import Backend
from tests.monitor.test_monitor import ALERTS, MONITOR

PNG = b"\x89PNG\r\n\x1a\n"
CORE = {"path": "/api/internship"}


def uploads(emulator: Emulator) -> list[dict[str, Any]]:
    return [params for method, params in emulator.ws.calls if method == "files.completeUploadExternal"]


def files_anywhere(emulator: Emulator) -> list[dict[str, Any]]:
    return [m for channel in (INCIDENT, ALERTS) for m in emulator.ws.channel_messages(channel, include_replies=True)
            if m.get("files")]


def ask(emulator: Emulator) -> Ephemeral:
    """`/rollback health` as the commander in the incident channel; the private answer it gets."""
    before = len(emulator.ws.ephemerals_for(COMMANDER))
    emulator.slash("casey", "incident-rollback", "health").wait()
    return emulator.ws.wait_for(lambda: next((e for e in emulator.ws.ephemerals_for(COMMANDER)[before:]
                                              if "Scheduled checks" in e.text), None), 15, "the private answer")


def test_the_chart_goes_into_the_incident_thread_names_every_check_and_its_threshold_and_is_not_reposted(
        emulator: Emulator, sandbox: Sandbox, tmp_path: Path, backend: Backend,
        start_bot: Callable[..., SocketModeBot]) -> None:
    clock = FakeClock()
    settings = make_settings(emulator, sandbox, tmp_path / "data",
                             health={"url": f"{backend.url}/api/health", "core_endpoints": [CORE]},
                             thresholds={"backend_response_s": 0.3}, slack={"alerts_channel": ALERTS}, monitor=MONITOR)
    bot = start_bot(settings, clock=clock)
    monitor = bot.services.monitor
    backend.paths = {"/api/internship": "ok"}
    for mode in ("ok", "ok", "500", "500", "slow", "ok"):  # a minute apart, like the schedule
        backend.mode = mode
        monitor.run_once()
        clock.advance(minutes=1)

    # No rollback in the channel: the answer is private text only, and it says so. Nothing is uploaded.
    reply = ask(emulator)
    assert "*health*" in reply.text and "*GET /api/internship*" in reply.text
    assert "last 60 min: 6 run(s), 3 failed" in reply.text and "slow above 0.3 s" in reply.text
    assert "No chart here" in reply.text and "no rollback is active in this channel" in reply.text
    assert uploads(emulator) == [] and files_anywhere(emulator) == []

    emulator.slash("casey", "incident-rollback", "start health 500").wait()
    panel = emulator.ws.wait_for(lambda: (i := bot.services.store.get_incident("RB-0001")) and i.panel_ts, 10,
                                 "the panel")
    reply = ask(emulator)
    assert "*health*" in reply.text and "*GET /api/internship*" in reply.text  # every check, privately
    assert "posted in *RB-0001*'s thread" in reply.text
    chart = emulator.ws.wait_for(lambda: [m for m in emulator.ws.thread(INCIDENT, panel) if m.get("files")], 10,
                                 "the chart in the incident thread")[0]
    assert not [m for m in emulator.ws.channel_messages(INCIDENT) if m.get("files")]  # never top-level
    assert not [e for e in emulator.ws.ephemerals_for() if "files" in str(e.blocks)]
    file = emulator.ws.files[chart["files"][0]["id"]]
    assert file["content"].startswith(PNG) and file["name"].endswith(".png")
    assert "health" in file["title"] and "GET /api/internship" in file["title"] and "UTC" in file["title"]
    comment = chart["text"]  # the message the file is shared with
    assert "*health* — healthy: 6 run(s), 3 failed" in comment
    assert "slow above 0.3 s (`thresholds.backend_response_s`)" in comment and "*GET /api/internship*" in comment
    described = [p for method, p in emulator.ws.calls if method == "files.getUploadURLExternal"][0]["alt_txt"]
    assert "health: healthy, 6 runs, 3 failed" in described and "slow above 0.3 s" in described
    assert [e.action for e in bot.services.store.audit_events("RB-0001") if e.action.startswith("health.")] == [
        "health.chart"]

    # Asked again within the minute (someone else on the call, or the same person again), nothing measured since:
    # a pointer to the chart there, no upload.
    clock.advance(seconds=20)
    again = ask(emulator)
    assert "no check has run since it was drawn" in again.text and "*RB-0001*'s thread" in again.text
    assert len(uploads(emulator)) == 1 and len(files_anywhere(emulator)) == 1
    # A new measurement, still within the minute: the chart there is a few seconds behind; no upload either.
    backend.mode = "500"
    monitor.run_once()
    clock.advance(seconds=20)
    within = ask(emulator)
    assert "at most once a minute" in within.text and "*RB-0001*'s thread" in within.text
    assert len(uploads(emulator)) == 1 and len(files_anywhere(emulator)) == 1
    # More than a minute after the chart, with a new measurement: a new chart, in the same thread.
    clock.advance(seconds=30)
    fresh = ask(emulator)
    assert "posted in *RB-0001*'s thread" in fresh.text
    emulator.ws.wait_for(lambda: len([m for m in emulator.ws.thread(INCIDENT, panel) if m.get("files")]) == 2, 10,
                         "the second chart")
    assert len(uploads(emulator)) == 2 and not [m for m in emulator.ws.channel_messages(INCIDENT) if m.get("files")]


def test_the_figure_has_a_titled_panel_per_check_with_labelled_axes_threshold_and_failures(
        emulator: Emulator, sandbox: Sandbox, tmp_path: Path, backend: Backend,
        start_bot: Callable[..., SocketModeBot]) -> None:
    """The figure before it is saved, read through matplotlib's own objects."""
    clock = FakeClock()
    settings = make_settings(emulator, sandbox, tmp_path / "data",
                             health={"url": f"{backend.url}/api/health", "core_endpoints": [CORE]},
                             thresholds={"backend_response_s": 0.3}, monitor=MONITOR)
    bot = start_bot(settings, clock=clock)
    backend.paths = {"/api/internship": "ok"}
    clock.advance(minutes=-90)
    for minute in range(80):  # the first 20 minutes fall outside the last hour
        backend.mode = "500" if minute % 10 == 9 else "ok"
        bot.services.monitor.run_once()
        clock.advance(minutes=1)
    store, now = bot.services.store, clock.now()
    limits = check_limits(settings.runbook, [state.id for state in store.checks()])
    views = [CheckView(state, [r for r in store.check_history(state.id) if r.at >= now - timedelta(hours=1)],
                       limits[state.id]) for state in store.checks()]
    figure = chart_figure(views, now, timedelta(hours=1))
    panels = {axes.get_title(loc="left").split(" — ")[0]: axes for axes in figure.axes}
    assert set(panels) == {"health", "GET /api/internship"}
    for name, axes in panels.items():
        assert axes.get_ylabel() == "latency (ms)" and axes.get_xlabel() == "time (UTC)"
        threshold = [line for line in axes.get_lines() if list(line.get_ydata()) == [300.0, 300.0]]
        assert threshold and threshold[0].get_label() == "slow above 0.3 s (thresholds.backend_response_s)", name
        assert [t.get_text() for t in axes.get_xticklabels() if t.get_text()], name  # times, HH:MM
        plotted = axes.get_lines()[0].get_xydata()
        assert len(plotted) in (59, 60, 61), (name, len(plotted))  # the last hour, not the whole history
    failures = [c for c in panels["health"].collections if c.get_label().startswith("failed check")]
    assert failures and len(failures[0].get_offsets()) == 6  # minutes 29, 39, … 79: six in the last hour
    assert not [c for c in panels["GET /api/internship"].collections if c.get_label().startswith("failed")]


def test_a_failed_upload_still_answers_in_words_and_the_next_request_posts_the_chart(
        emulator: Emulator, sandbox: Sandbox, tmp_path: Path, backend: Backend,
        start_bot: Callable[..., SocketModeBot]) -> None:
    settings = make_settings(emulator, sandbox, tmp_path / "data",
                             health={"url": f"{backend.url}/api/health", "core_endpoints": []}, monitor=MONITOR)
    bot = start_bot(settings)
    bot.services.monitor.run_once()
    emulator.slash("casey", "incident-rollback", "start health 500").wait()
    panel = emulator.ws.wait_for(lambda: (i := bot.services.store.get_incident("RB-0001")) and i.panel_ts, 10,
                                 "the panel")
    emulator.fail_next("files.completeUploadExternal", 400)
    failed = ask(emulator)
    assert "*health*" in failed.text and "could not be posted" in failed.text and "ask again" in failed.text
    assert not [m for m in emulator.ws.thread(INCIDENT, panel) if m.get("files")]
    retried = ask(emulator)  # at once: a failed upload does not hold the next one back for a minute
    assert "posted in *RB-0001*'s thread" in retried.text
    emulator.ws.wait_for(lambda: [m for m in emulator.ws.thread(INCIDENT, panel) if m.get("files")], 10, "the chart")
    assert [e.action for e in bot.services.store.audit_events("RB-0001") if e.action.startswith("health.")] == [
        "health.chart_failed", "health.chart"]


def test_two_people_asking_at_the_same_moment_get_one_upload(
        emulator: Emulator, sandbox: Sandbox, tmp_path: Path, backend: Backend,
        start_bot: Callable[..., SocketModeBot]) -> None:
    settings = make_settings(emulator, sandbox, tmp_path / "data",
                             health={"url": f"{backend.url}/api/health", "core_endpoints": []}, monitor=MONITOR)
    bot = start_bot(settings)
    monitor = bot.services.monitor
    monitor.run_once()
    emulator.slash("casey", "incident-rollback", "start health 500").wait()
    emulator.ws.wait_for(lambda: (i := bot.services.store.get_incident("RB-0001")) and i.panel_ts, 10, "the panel")
    gate = threading.Barrier(4)

    def ask_at_once(_: int) -> ChartPlace | None:
        gate.wait()
        return monitor.report(COMMANDER, INCIDENT).chart

    with ThreadPoolExecutor(4) as pool:
        places = [p for p in pool.map(ask_at_once, range(4)) if p is not None]
    assert len(places) == 4 and sum(p.posted_now for p in places) == 1
    assert all(p.posted_now or p.pending or p.at is not None for p in places)  # the others: where it is, or soon
    assert len(uploads(emulator)) == 1
