"""`/rollback health`: every check in words (privately), and a chart of each check's status and latency people can
read at 3 a.m.

The chart is one PNG. Its time axis (UTC) runs from shortly before the first result or incident event to now:
at least 5 minutes, at most the window (an hour). Per check, failing ones first: a status strip, green up,
amber degraded (the right answer, too slowly), red down (a wrong answer or none); below it the latency in
milliseconds on a scale set by the data, not by the limit. The limit (an HTTP check's
``thresholds.backend_response_s``, otherwise ``monitor.check_timeout_s``) is a dashed line when it is within
3x of the chart's top, else the legend says it is above the chart. Failed checks are red ✕, one that never
answered a red ▼ at the top, a latency far above the rest a ▲ at the top with its value written. The
incident's events (``ChartMark``: the alert, the rollback started, revert, restart, verify, cleanup, …) are
vertical lines across every panel, labelled in a strip at the top.
"""

from __future__ import annotations

import io
import itertools
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.config import MonitorConfig
from bot.domain.checks import (
    ChartMark,
    ChartPlace,
    CheckResult,
    CheckStatus,
    CheckView,
    Condition,
    HealthReport,
    condition,
)
from bot.domain.ports import Message, Upload
from bot.slack_ui.blocks import text_message
from bot.slack_ui.escape import channel, date, escape, link

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MARK = {CheckStatus.HEALTHY: "🟢", CheckStatus.FAILING: "🔴"}
MAX_PANELS = 8  # more would be unreadable: the failing checks first, the rest are in the text
PANEL_HEIGHT_IN = 2.0  # a check's latency panel; its status strip above it is STRIP_IN
STRIP_IN = 0.3
FIGURE_WIDTH_IN = 11
LINE, FAILED, LIMIT = "#1f6feb", "#cf222e", "#9a6700"
STATUS_COLOUR = {Condition.UP: "#2da44e", Condition.DEGRADED: "#e3a008", Condition.DOWN: "#cf222e"}
MARK_COLOUR = {"alert": "#cf222e", "step": "#8250df", "step_failed": "#cf222e", "milestone": "#57606a",
               "danger": "#bc4c00"}
MIN_SPAN = timedelta(minutes=5)  # the shortest time the chart shows, however new the data
TICK_MINUTES = (1, 2, 5, 10, 15, 20, 30)
LABEL_CHAR = 0.012  # a bold 9 pt character of an event's label, as a fraction of the plot's width
LABEL_LEFT_AFTER = 0.75  # an event's label to the right of its line, but left of it in the last quarter
LIMIT_WITHIN = 3  # the limit line is drawn when at most this many times the chart's top; else it is named


@dataclass(frozen=True)
class Summary:
    runs: int
    failed: int
    median_ms: float | None
    max_ms: float | None


def summarise(results: list[CheckResult]) -> Summary:
    import statistics  # with the first summary: an idle bot has no need of it (tests/test_cli.py checks)

    latencies = [r.latency_ms for r in results if r.latency_ms is not None]
    return Summary(len(results), sum(not r.ok for r in results),
                   statistics.median(latencies) if latencies else None, max(latencies) if latencies else None)


def _ms(value: float) -> str:
    return f"{value:,.0f} ms" if value < 10_000 else f"{value / 1000:,.1f} s"


def _seconds(value_ms: float) -> str:
    return f"{value_ms / 1000:,.1f} s" if value_ms >= 1000 else f"{value_ms:,.0f} ms"


def limit_words(view: CheckView) -> str:
    return f"{view.limit.kind} {view.limit.seconds:g} s"


# ---- the private answer --------------------------------------------------------------------------------------
def health(report: HealthReport, monitor: MonitorConfig) -> Message:
    """Every check: its state, its latest result and its last hour in numbers; then where the chart is."""
    if not report.checks:
        return text_message(f"No scheduled check has run yet (every {monitor.interval_s:g}s"
                            + ("" if monitor.enabled else "; `monitor.enabled` is false") + ").")
    minutes = int(report.window.total_seconds() // 60)
    lines = [f"*Scheduled checks*: each one's state, latest result and last {minutes} min (failing ones first)"]
    for view in _failing_first(report.checks):
        state, last = view.state, view.state.last
        mark = MARK.get(state.status, "⚪")
        since = f" since {date(state.first_failure_at)}" if state.status is CheckStatus.FAILING else ""
        if state.status is CheckStatus.HEALTHY and last is not None and not last.ok:
            mark = "🟡"
            since = f" ({state.fails} failure(s) in a row; the alert comes after {monitor.failures_to_alert})"
        latency = f" · {_ms(last.latency_ms)}" if last and last.latency_ms is not None else ""
        when = f" · {date(last.at)}" if last else ""
        detail = escape(last.detail) if last else "no result yet"
        lines.append(f"{mark} *{escape(state.id)}* — {state.status.value}{since}: {detail}{latency}{when}")
        numbers = summarise(view.recent)
        spread = (f" · latency median {_ms(numbers.median_ms)}, max {_ms(numbers.max_ms)}"
                  if numbers.median_ms is not None and numbers.max_ms is not None else "")
        lines.append(f"      last {minutes} min: {numbers.runs} run(s), {numbers.failed} failed{spread}"
                     f" · {escape(limit_words(view))}")
    lines.append(_where(report))
    return text_message("\n".join(lines))


def _where(report: HealthReport) -> str:
    place = report.chart
    if place is not None:
        # Not "*RB-0001*'s thread": a closing asterisk followed by a letter or an apostrophe is not bold in
        # Slack, and the reply showed the asterisks.
        thread = f"the thread of *{escape(place.incident_id)}* ({link(place.link, 'open it')})"
        if place.posted_now:
            return f"📈 Chart of each check's status and latency: posted in {thread}."
        if place.failed:
            return (f"📈 The chart could not be posted into {thread} (the bot's log says why); "
                    "ask again to retry.")
        if place.pending:
            return f"📈 Chart: someone else's request is posting it into {thread} right now."
        if place.unchanged:
            return (f"📈 Chart: the one posted {date(place.at)} in {thread} is current — no check has run "
                    "since it was drawn.")
        return (f"📈 Chart: posted {date(place.at)} in {thread}; charts go up at most once a minute, "
                f"ask again from {date(place.next_at)} for a new one.")
    if not any(view.recent for view in report.checks) and not report.elsewhere:
        return "📈 No chart: no check has run in the last hour."
    head = ("📈 No chart here: the chart goes into an active rollback's thread, never into a channel, and no "
            "rollback is active in this channel.")
    if not report.elsewhere:
        return head + " The numbers above are the last hour."
    return head + " " + "; ".join(_elsewhere(place) for place in report.elsewhere) + "."


def _elsewhere(place: ChartPlace) -> str:
    where = f"*{escape(place.incident_id)}* in {channel(place.channel)} ({link(place.link, 'open it')})"
    if place.at is None:
        return f"{where} has no chart yet: ask there"
    return f"{where}: latest chart {date(place.at)}, in its thread"


# ---- the chart -----------------------------------------------------------------------------------------------
def _failing_first(checks: list[CheckView]) -> list[CheckView]:
    return sorted(checks, key=lambda view: view.state.status is not CheckStatus.FAILING)


def _panels(checks: list[CheckView]) -> list[CheckView]:
    return _failing_first(checks)[:MAX_PANELS]


def chart_span(checks: list[CheckView], marks: Sequence[ChartMark], now: datetime,
               window: timedelta) -> tuple[datetime, datetime]:
    """The time the chart shows: from shortly before its first result or mark to now, at least ``MIN_SPAN``
    and at most ``window`` (an incident six minutes old is not drawn on an hour's axis)."""
    oldest = now - window
    moments = [r.at for view in _panels(checks) for r in view.recent if oldest <= r.at <= now]
    moments += [m.at for m in marks if oldest <= m.at <= now]
    first = min(moments, default=now)
    lead = max(timedelta(seconds=30), (now - first) / 20)
    span = min(max(now - first + lead, MIN_SPAN), window)
    return now - span, now


def _minutes_between_ticks(span: timedelta) -> int:
    minutes = span.total_seconds() / 60
    return next((step for step in TICK_MINUTES if minutes / step <= 8), 60)


def _stretches(results: list[CheckResult], right: datetime) -> list[tuple[datetime, datetime, Condition]]:
    """Each result's condition over the time around it (half-way to its neighbours, at most one interval
    wide), neighbours with the same condition merged: the status strip."""
    if not results:
        return []
    import statistics  # with the first chart, like matplotlib

    gaps = [(b.at - a.at) for a, b in itertools.pairwise(results)]
    seconds = statistics.median(gap.total_seconds() for gap in gaps) if gaps else 60.0
    interval = timedelta(seconds=max(seconds, 1.0))
    stretches: list[tuple[datetime, datetime, Condition]] = []
    for index, result in enumerate(results):
        before = gaps[index - 1] if index > 0 else interval
        after = gaps[index] if index < len(gaps) else interval
        begin = result.at - min(before, interval * 2) / 2
        finish = min(result.at + min(after, interval * 2) / 2, max(right, result.at))
        state = condition(result)
        if stretches and stretches[-1][2] is state and stretches[-1][1] >= begin:
            stretches[-1] = (stretches[-1][0], finish, state)
        else:
            stretches.append((begin, finish, state))
    return stretches


def _label_extent(mark: ChartMark, start: datetime, right: datetime) -> tuple[float, float]:
    """Where a mark's label lies across the plot, as fractions of its width (roughly: a bold 9 pt character is
    ``LABEL_CHAR`` of it); near the right edge the label goes left of its line."""
    x = (mark.at - start) / (right - start)
    width = (len(mark.label) + 2) * LABEL_CHAR
    return (x - width, x) if x > LABEL_LEFT_AFTER else (x, x + width)


def _rows(marks: Sequence[ChartMark], start: datetime, right: datetime) -> list[int]:
    """A label row per mark, the first where its label overlaps no other: labels of events close together
    are stacked, not printed over each other."""
    taken: list[list[tuple[float, float]]] = []
    rows = []
    for mark in marks:
        begin, end = _label_extent(mark, start, right)
        row = next((i for i, spans in enumerate(taken) if all(end < b or begin > e for b, e in spans)), len(taken))
        if row == len(taken):
            taken.append([])
        taken[row].append((begin, end))
        rows.append(row)
    return rows


def _top(view: CheckView, results: list[CheckResult]) -> tuple[float, bool]:
    """The latency axis's top in ms, from the data (so milliseconds are not flattened by a 5 s limit), and
    whether the limit line fits on it (within ``LIMIT_WITHIN`` times the highest latency shown)."""
    latencies = [r.latency_ms for r in results if r.latency_ms is not None]
    usual = [r.latency_ms for r in results if r.ok and r.latency_ms is not None] or latencies
    base = max(usual, default=0.0)
    shown = max((value for value in latencies if value <= base * LIMIT_WITHIN), default=base)
    limit_ms = view.limit.seconds * 1000
    top = max(shown * 1.25, 10.0)
    if limit_ms <= top * LIMIT_WITHIN:
        return max(top, limit_ms * 1.15), True
    return top, False


def chart_figure(checks: list[CheckView], now: datetime, window: timedelta,
                 marks: Sequence[ChartMark] = ()) -> Figure:
    """The figure itself (tests read its axes): a status strip and a latency panel per check (failing ones
    first), the incident's events as labelled lines across all of them."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import DateFormatter, MinuteLocator, date2num
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch, Rectangle

    shown = _panels(checks)
    start, end = chart_span(checks, marks, now, window)
    span = end - start
    right = end + span / 40  # the newest point is not on the edge
    marks = [m for m in marks if start <= m.at <= end]
    rows = _rows(marks, start, right)
    label_rows = max(rows, default=-1) + 1
    events_in = 0.3 + 0.3 * label_rows if marks else 0.0
    # Fixed margins in inches, the same left and right edge for every axes (so the event lines line up), the
    # legends in the space on the right. Rows: [events], then per check a gap for its title, the status strip,
    # the latency panel and room for its time axis.
    heights = ([events_in] if marks else []) + [0.45, STRIP_IN, PANEL_HEIGHT_IN, 0.55] * len(shown)
    height = 0.55 + sum(heights) + 0.1
    # A Figure on its own Agg canvas, not pyplot: no global state, safe on the listener's worker threads.
    figure = Figure(figsize=(FIGURE_WIDTH_IN, height), dpi=110)
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(len(heights), 1, height_ratios=heights, hspace=0, left=0.8 / FIGURE_WIDTH_IN,
                               right=1 - 3.3 / FIGURE_WIDTH_IN, top=1 - 0.55 / height, bottom=0.1 / height)
    x0, x1 = float(date2num(start)), float(date2num(right))
    step = _minutes_between_ticks(span)

    def time_axis(axes: Any, labels: bool) -> None:
        axes.set_xlim(x0, x1)
        axes.xaxis.set_major_locator(MinuteLocator(byminute=range(0, 60, step), tz=now.tzinfo))
        axes.xaxis.set_major_formatter(DateFormatter("%H:%M", tz=now.tzinfo))
        axes.tick_params(axis="x", labelbottom=labels)

    def lines(axes: Any) -> None:
        for mark in marks:
            axes.axvline(float(date2num(mark.at)), color=MARK_COLOUR.get(mark.kind, "#57606a"), linewidth=1.6,
                         alpha=0.9, zorder=4, gid="mark", label=f"_{mark.label}")

    if marks:
        events = figure.add_subplot(grid[0])
        events.set_gid("events")
        time_axis(events, False)
        events.set_ylim(0, label_rows)
        events.set_yticks([])
        events.set_title("Incident events", loc="left", fontsize=9, color="#57606a")
        for spine in ("left", "right", "top"):
            events.spines[spine].set_visible(False)
        lines(events)
        for mark, row in zip(marks, rows, strict=True):
            x = float(date2num(mark.at))
            late = (mark.at - start) / (right - start) > LABEL_LEFT_AFTER
            events.text(x, label_rows - row - 0.5, f" {mark.label} ",
                        ha="right" if late else "left", va="center", fontsize=9, fontweight="bold",
                        color=MARK_COLOUR.get(mark.kind, "#57606a"), gid="mark", zorder=5,
                        bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none"})
    for index, view in enumerate(shown):
        row = bool(marks) + 4 * index
        strip, axes = figure.add_subplot(grid[row + 1]), figure.add_subplot(grid[row + 2])
        strip.set_gid(f"status:{view.state.id}")
        axes.set_gid(f"latency:{view.state.id}")
        results = [r for r in view.recent if start <= r.at <= end]
        stretches = _stretches(results, right)
        counts = Counter(condition(r) for r in results)
        for begin, finish, state in stretches:
            b, f = float(date2num(begin)), float(date2num(finish))
            strip.add_patch(Rectangle((b, 0), f - b, 1, facecolor=STATUS_COLOUR[state], edgecolor="none",
                                      gid=state.value))
            if state is not Condition.UP:
                axes.axvspan(b, f, facecolor=STATUS_COLOUR[state], alpha=0.12, edgecolor="none", zorder=0)
        strip.set_ylim(0, 1)
        strip.set_yticks([])
        strip.set_ylabel("status", rotation=0, ha="right", va="center", fontsize=8)
        time_axis(strip, False)
        lines(strip)
        status = view.state.status.value
        strip.set_title(f"{view.state.id} — {status}" + ("" if results else " (no result in this time)"),
                        loc="left", fontsize=10, fontweight="bold", color=FAILED if status == "failing" else "black")
        strip.legend(handles=[Patch(facecolor=STATUS_COLOUR[c], label=f"{c.value} ({counts[c]})")
                              for c in Condition],
                     loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False, ncols=3,
                     handlelength=1, columnspacing=0.8)

        top, limit_fits = _top(view, results)
        measured = [r for r in results if r.latency_ms is not None]
        if measured:  # broken where a check got no answer: no line is drawn through a time nothing answered
            axes.plot([float(date2num(r.at)) for r in results],
                      [math.nan if r.latency_ms is None else min(r.latency_ms, top) for r in results],
                      color=LINE, linewidth=1.4, marker="o", markersize=3, label="latency", zorder=2)
        failed = [r for r in measured if not r.ok and (r.latency_ms or 0.0) <= top]
        if failed:
            axes.scatter([float(date2num(r.at)) for r in failed], [r.latency_ms or 0.0 for r in failed],
                         marker="X", s=80, color=FAILED, edgecolors="white", linewidths=0.6, zorder=5,
                         label=f"failed check ({len(failed)})")
        above = [r for r in measured if (r.latency_ms or 0.0) > top]
        if above:
            axes.scatter([float(date2num(r.at)) for r in above], [top * 0.95] * len(above), marker="^", s=70,
                         color=FAILED if any(not r.ok for r in above) else LINE, zorder=5,
                         label=f"above the chart ({len(above)}), value written")
            for r in above:
                axes.annotate(_seconds(r.latency_ms or 0.0), (float(date2num(r.at)), top * 0.95), xytext=(7, 0),
                              textcoords="offset points", fontsize=9, fontweight="bold", color=FAILED, va="center",
                              zorder=6, bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none"})
        unanswered = [r for r in results if not r.ok and r.latency_ms is None]
        if unanswered:
            axes.scatter([float(date2num(r.at)) for r in unanswered], [top * 0.95] * len(unanswered),
                         marker="v", s=70, color=FAILED, zorder=5, label=f"failed, no answer ({len(unanswered)})")
        limit_ms = view.limit.seconds * 1000
        if limit_fits:
            axes.axhline(limit_ms, color=LIMIT, linestyle="--", linewidth=1.2,
                         label=f"{limit_words(view)}\n({view.limit.setting})")
        else:
            axes.plot([], [], " ", label=f"limit: {limit_words(view)}, above this chart\n({view.limit.setting})")
        lines(axes)
        axes.set_ylabel("latency (ms)")
        axes.set_xlabel("time (UTC)")
        axes.set_ylim(0, top)
        time_axis(axes, True)
        axes.grid(alpha=0.3)
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    more = len(checks) - len(shown)
    minutes = max(1, round(span.total_seconds() / 60))
    figure.suptitle(f"Scheduled checks: status and latency, {start:%H:%M}–{end:%H:%M} UTC ({minutes} min)"
                    + (f" ({more} more check(s) in the text reply)" if more else ""), fontsize=11,
                    y=1 - 0.15 / height, va="top")
    return figure


def health_chart(checks: list[CheckView], now: datetime, window: timedelta,
                 marks: Sequence[ChartMark] = ()) -> Upload:
    figure = chart_figure(checks, now, window, marks)
    out = io.BytesIO()
    figure.savefig(out, format="png")
    shown = _panels(checks)
    start, end = chart_span(checks, marks, now, window)
    minutes = max(1, round((end - start).total_seconds() / 60))
    names = ", ".join(v.state.id for v in shown)
    title = f"Status and latency, {start:%H:%M}–{end:%H:%M} UTC: {names}"
    events = [m for m in marks if start <= m.at <= end]
    lines = [f"📈 *Scheduled checks, {start:%H:%M}–{end:%H:%M} UTC* ({minutes} min; per check a status strip, "
             "green up, amber slow, red down, and its latency in ms; red ✕ = a failed check, ▼ = no answer, "
             "▲ = above the chart, value written; dashed line = its limit when it fits"
             + ("; vertical lines = the incident's events" if events else "") + "):"]
    alt = [f"Status and latency in milliseconds from {start:%H:%M} to {end:%H:%M} UTC, one panel per check."]
    for view in shown:
        numbers = summarise([r for r in view.recent if start <= r.at <= end])
        worst = f", max {_ms(numbers.max_ms)}" if numbers.max_ms is not None else ""
        lines.append(f"• *{escape(view.state.id)}* — {view.state.status.value}: {numbers.runs} run(s), "
                     f"{numbers.failed} failed{escape(worst)}; {escape(limit_words(view))} "
                     f"(`{view.limit.setting}`)")
        alt.append(f"{view.state.id}: {view.state.status.value}, {numbers.runs} runs, {numbers.failed} failed"
                   f"{worst}, {limit_words(view)}.")
    if events:
        marked = ", ".join(f"{m.label} {m.at:%H:%M}" for m in events)
        lines.append(f"Events: {escape(marked)}")
        alt.append(f"Events: {marked}.")
    return Upload(filename=f"health-{now:%Y%m%d-%H%M}Z.png", content=out.getvalue(), title=title[:250],
                  comment="\n".join(lines), alt_text=" ".join(alt)[:1000])
