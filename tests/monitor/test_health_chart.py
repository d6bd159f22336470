"""`/rollback health`: every check privately in words, the chart of each check's status and latency in the incident's
thread (never the channel), at most once a minute. Time is a FakeClock moved by the test; checks run by
`Monitor.run_once`. The figure is read through matplotlib's own objects (axes limits, lines, patches, texts),
never its pixels."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.dates import date2num, num2date
from matplotlib.figure import Figure

from bot.app import SocketModeBot
from bot.audit import AuditEvent
from bot.dev.emulator import Emulator
from bot.dev.emulator.workspace import Ephemeral
from bot.dev.fakeclock import FakeClock
from bot.dev.sandbox import Sandbox
from bot.domain.charts import chart_marks
from bot.domain.checks import (
    ChartMark,
    ChartPlace,
    CheckLimit,
    CheckResult,
    CheckState,
    CheckStatus,
    CheckView,
    HealthReport,
)
from bot.domain.incident import Incident, Milestone
from bot.domain.monitor import check_limits
from bot.slack_ui.checks import chart_figure, health
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
    assert "posted in the thread of *RB-0001*" in reply.text
    chart = emulator.ws.wait_for(lambda: [m for m in emulator.ws.thread(INCIDENT, panel) if m.get("files")], 10,
                                 "the chart in the incident thread")[0]
    assert not [m for m in emulator.ws.channel_messages(INCIDENT) if m.get("files")]  # never top-level
    assert not [e for e in emulator.ws.ephemerals_for() if "files" in str(e.blocks)]
    file = emulator.ws.files[chart["files"][0]["id"]]
    assert file["content"].startswith(PNG) and file["name"].endswith(".png")
    assert "health" in file["title"] and "GET /api/internship" in file["title"] and "UTC" in file["title"]
    assert not [text for block in reply.blocks if block["type"] == "section"
                for text in stray_asterisks(block["text"]["text"])]  # bold renders, no literal asterisks
    comment = chart["text"]  # the message the file is shared with
    # The incident's events are on it: the alert (from the alerts channel's audit), the start, the detection.
    assert "Events: alert: health" in comment and "rollback started" in comment and "issue detected" in comment
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
    assert "no check has run since it was drawn" in again.text and "the thread of *RB-0001*" in again.text
    assert len(uploads(emulator)) == 1 and len(files_anywhere(emulator)) == 1
    # A new measurement, still within the minute: the chart there is a few seconds behind; no upload either.
    backend.mode = "500"
    monitor.run_once()
    clock.advance(seconds=20)
    within = ask(emulator)
    assert "at most once a minute" in within.text and "the thread of *RB-0001*" in within.text
    assert len(uploads(emulator)) == 1 and len(files_anywhere(emulator)) == 1
    # More than a minute after the chart, with a new measurement: a new chart, in the same thread.
    clock.advance(seconds=30)
    fresh = ask(emulator)
    assert "posted in the thread of *RB-0001*" in fresh.text
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
    panels = latency_panels(figure)
    assert set(panels) == {"health", "GET /api/internship"}
    for name, axes in panels.items():
        assert axes.get_ylabel() == "latency (ms)" and axes.get_xlabel() == "time (UTC)"
        top = axes.get_ylim()[1]
        threshold = [line for line in axes.get_lines() if list(line.get_ydata()) == [300.0, 300.0]]
        if top * 3 >= 300:  # the limit fits on the chart: a dashed line, labelled with its setting
            assert threshold and threshold[0].get_label() == "slow above 0.3 s\n(thresholds.backend_response_s)"
        else:  # far above these milliseconds: named in the legend instead of squashing the data
            assert not threshold and "limit: slow above 0.3 s, above this chart" in legend_texts(axes), name
        assert [t.get_text() for t in axes.get_xticklabels() if t.get_text()], name  # times, HH:MM
        plotted = axes.get_lines()[0].get_xydata()
        assert len(plotted) in (59, 60, 61), (name, len(plotted))  # the last hour, not the whole history
    failures = [c for c in panels["health"].collections
                if c.get_label().startswith(("failed check", "above the chart"))]
    assert sum(len(c.get_offsets()) for c in failures) == 6  # minutes 29, 39, … 79: six in the last hour
    assert not [c for c in panels["GET /api/internship"].collections if c.get_label().startswith("failed")]


# ---- the figure, from results made here --------------------------------------------------------------------
NOW = datetime(2026, 12, 3, 3, 7, 20, tzinfo=UTC)
HOUR = timedelta(hours=1)
SLOW_5S = CheckLimit(5, "slow above", "thresholds.backend_response_s")


def result(at: datetime, kind: str, ms: float | None = 30.0) -> CheckResult:
    """One measurement: "ok", "500" (a wrong answer, fast), "slow" (the right answer, too late) or "none"."""
    return CheckResult(name="health", ok=kind == "ok", at=at, latency_ms=None if kind == "none" else ms,
                       detail=kind, criteria={"ok": [], "500": ["sessions"], "slow": ["slow"],
                                              "none": ["sessions"]}[kind])


def view(results: list[CheckResult], name: str = "health", limit: CheckLimit = SLOW_5S) -> CheckView:
    failing = not results[-1].ok if results else False
    return CheckView(CheckState(id=name, status=CheckStatus.FAILING if failing else CheckStatus.HEALTHY,
                                last=results[-1] if results else None), results, limit)


def minutes_of(latencies: list[float], kinds: dict[int, str] | None = None) -> list[CheckResult]:
    """A result a minute, the last one at NOW; ``kinds`` sets the kind of some of them by index."""
    first = NOW - timedelta(minutes=len(latencies) - 1)
    return [result(first + timedelta(minutes=i), (kinds or {}).get(i, "ok"), ms) for i, ms in enumerate(latencies)]


def latency_panels(figure: Figure) -> dict[str, Axes]:
    """Each check's latency axes, by the check's name (its gid, or the title the chart used to carry)."""
    panels = {}
    for axes in figure.axes:
        if axes.get_ylabel() == "latency (ms)":
            gid = axes.get_gid() or ""
            panels[gid.removeprefix("latency:") if gid else axes.get_title(loc="left").split(" — ")[0]] = axes
    return panels


def legend_texts(axes: Axes) -> str:
    legend = axes.get_legend()
    return "\n".join(t.get_text() for t in legend.get_texts()) if legend else ""


def span_minutes(axes: Axes) -> float:
    left, right = axes.get_xlim()
    return (right - left) * 24 * 60


def test_the_window_fits_the_data_with_five_minutes_at_least_and_the_configured_window_at_most() -> None:
    six = minutes_of([20 + i * 3 for i in range(7)])  # 03:01:20 to 03:07:20
    axes = latency_panels(chart_figure([view(six)], NOW, HOUR))["health"]
    left, right = (num2date(x) for x in axes.get_xlim())
    assert 6 < span_minutes(axes) < 8, span_minutes(axes)  # not an hour with everything in its last tenth
    assert left < six[0].at and right >= NOW  # shortly before the first point, up to now
    ticks = [t.get_text() for t in axes.get_xticklabels() if t.get_text()]
    assert len(ticks) >= 4 and "03:04" in ticks, ticks  # a tick a minute or so, not one every ten

    one = minutes_of([25.0, 30.0])  # a single minute of data: still five minutes of axis to read it against
    assert 5 <= span_minutes(latency_panels(chart_figure([view(one)], NOW, HOUR))["health"]) < 6

    marked = [ChartMark(NOW - timedelta(minutes=12), "issue detected", "milestone")]  # an event before the data
    assert 12 < span_minutes(latency_panels(chart_figure([view(six)], NOW, HOUR, marked))["health"]) < 14

    days = [result(NOW - timedelta(minutes=m), "ok") for m in (200, 90, 59, 30, 0)]  # older than the hour: cut
    assert 59 < span_minutes(latency_panels(chart_figure([view(days)], NOW, HOUR))["health"]) < 62


def test_millisecond_latencies_set_the_y_axis_and_a_limit_far_above_them_is_named_not_drawn() -> None:
    fast = minutes_of([22.0, 35.0, 28.0, 40.0, 31.0, 26.0, 33.0], kinds={3: "500"})
    axes = latency_panels(chart_figure([view(fast)], NOW, HOUR))["health"]
    bottom, top = axes.get_ylim()
    assert bottom == 0 and 40 < top <= 100, top  # milliseconds fill the panel; not 0–5,750 ms
    assert not [line for line in axes.get_lines() if list(line.get_ydata()) == [5000.0, 5000.0]]
    assert "limit: slow above 5 s, above this chart" in legend_texts(axes)
    failed = [c for c in axes.collections if c.get_label().startswith("failed check")]
    assert failed and [tuple(xy) for xy in failed[0].get_offsets()] == [(date2num(fast[3].at), 40.0)]

    near = minutes_of([120.0, 180.0, 250.0, 210.0])  # within 3x of a 300 ms limit: the line is drawn, and fits
    axes = latency_panels(chart_figure([view(near, limit=CheckLimit(0.3, "slow above", "thresholds.x"))], NOW,
                                       HOUR))["health"]
    assert [line for line in axes.get_lines() if list(line.get_ydata()) == [300.0, 300.0]]
    assert 300 < axes.get_ylim()[1] < 450

    # One hung request among milliseconds: the axis stays in milliseconds, the outlier sits at the top, its
    # value written; a check that never answered is a ▼ at the top.
    spike = minutes_of([25.0, 30.0, 8000.0, 28.0, 0.0], kinds={2: "slow", 4: "none"})
    axes = latency_panels(chart_figure([view(spike)], NOW, HOUR))["health"]
    assert axes.get_ylim()[1] <= 100
    above = [c for c in axes.collections if c.get_label().startswith("above the chart")]
    assert above and len(above[0].get_offsets()) == 1
    assert "8.0 s" in [t.get_text() for t in axes.texts]  # its value, in seconds
    unanswered = [c for c in axes.collections if c.get_label().startswith("failed, no answer")]
    assert unanswered and unanswered[0].get_offsets()[0][1] > axes.get_ylim()[1] * 0.9


def test_a_status_strip_per_check_shows_up_degraded_and_down_over_time() -> None:
    from matplotlib.colors import to_hex

    runs = minutes_of([30.0] * 7, kinds={2: "500", 3: "500", 4: "slow", 5: "ok"})
    runs[4] = result(runs[4].at, "slow", 6200.0)
    figure = chart_figure([view(runs)], NOW, HOUR)
    strip = next(a for a in figure.axes if a.get_gid() == "status:health")
    bands = sorted((p for p in strip.patches if p.get_gid() in ("up", "degraded", "down")), key=lambda p: p.get_x())
    assert [p.get_gid() for p in bands] == ["up", "down", "degraded", "up"]
    assert [to_hex(p.get_facecolor()) for p in bands] == ["#2da44e", "#cf222e", "#e3a008", "#2da44e"]
    # The down stretch covers both 500s, from half-way before the first to half-way after the second.
    down = bands[1]
    assert abs(down.get_x() - date2num(runs[2].at - timedelta(seconds=30))) < 1e-6
    assert abs(down.get_width() - 2 / 24 / 60) < 1e-6
    assert strip.get_title(loc="left") == "health — healthy"
    assert "down (2)" in legend_texts(strip) and "degraded (1)" in legend_texts(strip)


def test_the_incidents_events_are_labelled_lines_across_every_panel() -> None:
    runs = minutes_of([30.0] * 7, kinds={2: "500"})
    marks = [ChartMark(NOW - timedelta(minutes=4, seconds=50), "alert: health", "alert"),
             ChartMark(NOW - timedelta(minutes=4, seconds=10), "revert", "step"),
             ChartMark(NOW - timedelta(minutes=3, seconds=50), "restart", "step"),
             ChartMark(NOW - timedelta(hours=3), "issue detected", "milestone")]  # before the window: left out
    figure = chart_figure([view(runs), view(runs, "GET /api/internship")], NOW, HOUR, marks)
    shown = [date2num(m.at) for m in marks[:3]]
    for axes in latency_panels(figure).values():
        assert [line.get_xdata()[0] for line in axes.get_lines() if line.get_gid() == "mark"] == shown
    events = next(a for a in figure.axes if a.get_gid() == "events")
    labels = {t.get_text().strip(): t for t in events.texts if t.get_gid() == "mark"}
    assert set(labels) == {"alert: health", "revert", "restart"}
    assert labels["revert"].get_position()[1] != labels["restart"].get_position()[1]  # 20 s apart: two rows


def event(seq: int, at: datetime, what: str, incident: str | None = "RB-0001", /, **data: Any) -> AuditEvent:
    return AuditEvent(seq=seq, at=at.isoformat(), incident_id=incident, actor="bot", action=what, data=data,
                      prev_hash="")


def test_the_marks_are_the_incidents_events_and_the_alerts_of_the_checks_charted() -> None:
    start = NOW - HOUR
    incident = Incident(id="RB-0001", number=1, channel=INCIDENT, target="t", commander=COMMANDER, reason="500",
                        created_at=NOW - timedelta(minutes=5),
                        milestones={Milestone.ISSUE_DETECTED: NOW - timedelta(minutes=6)})
    at = [NOW - timedelta(minutes=5 - i) for i in range(6)]
    events = [event(1, at[0], "incident.started"), event(2, at[1], "step.finished", step="revert", ok=True),
              event(3, at[2], "step.finished", step="restart", ok=False), event(4, at[3], "health.chart"),
              event(5, at[4], "danger.started", action="cleanup"), event(6, at[5], "incident.system_restored")]
    log = [event(7, NOW - timedelta(minutes=5, seconds=30), "monitor.alert", None, check="health", status="failing"),
           event(8, NOW - timedelta(minutes=1), "monitor.alert", None, check="health", status="healthy"),
           event(9, NOW - timedelta(minutes=2), "monitor.alert", None, check="pm2 other", status="failing"),
           event(10, NOW - timedelta(hours=2), "monitor.alert", None, check="health", status="failing")]
    marks = chart_marks(incident, events, log, {"health"}, start, NOW)
    assert [(m.label, m.kind) for m in marks] == [
        ("issue detected", "milestone"), ("alert: health", "alert"), ("rollback started", "milestone"),
        ("revert", "step"), ("restart failed", "step_failed"), ("cleanup", "danger"), ("restored", "milestone")]


BOLD = re.compile(r"(^|[\s(>])\*([^*\n]+)\*(?=$|[\s).,:;!?<])")


def stray_asterisks(mrkdwn: str) -> list[str]:
    """The emulator's (and Slack's) bold rule, applied outside code and <…> tokens: what is left of each piece
    after the bold spans are taken out, where it still holds an asterisk a reader would see."""
    outside_code = "".join(mrkdwn.split("`")[::2])
    pieces = re.split(r"<[^<>]+>", outside_code)
    return [piece for piece in pieces if "*" in BOLD.sub(r"\1\2", piece)]


def test_the_private_answer_shows_no_literal_asterisks_in_any_case() -> None:
    runs = minutes_of([30.0, 31.0, 40.0], kinds={2: "500"})
    checks = [view(runs), view(minutes_of([12.0, 14.0]), "GET /api/internship")]
    link = "https://slack.example/archives/C1/p1"
    places = [ChartPlace("RB-0001", INCIDENT, link, NOW, posted_now=True, next_at=NOW),
              ChartPlace("RB-0001", INCIDENT, link, None, failed=True),
              ChartPlace("RB-0001", INCIDENT, link, None, pending=True),
              ChartPlace("RB-0001", INCIDENT, link, NOW, unchanged=True),
              ChartPlace("RB-0001", INCIDENT, link, NOW, next_at=NOW + timedelta(minutes=1))]
    reports = [HealthReport(checks, NOW, HOUR, place, []) for place in places]
    reports.append(HealthReport(checks, NOW, HOUR, None, [ChartPlace("RB-0002", "C2", link, NOW),
                                                          ChartPlace("RB-0003", "C3", link, None)]))
    for report in reports:
        answer = health(report, make_monitor())
        texts = [block["text"]["text"] for block in answer.blocks if block["type"] == "section"]
        assert texts and "*Scheduled checks*" in texts[0]
        for text in texts:
            assert not stray_asterisks(text), (report.chart, stray_asterisks(text))


def make_monitor() -> Any:
    from bot.config import MonitorConfig

    return MonitorConfig()


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
    assert "posted in the thread of *RB-0001*" in retried.text
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
