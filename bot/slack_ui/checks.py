"""`/rollback health`: every check in words (privately), and a latency chart people can read at 3 a.m.

The chart is one PNG with a panel per check: the last hour of its results, time in UTC on the x axis, latency
in milliseconds on the y axis, the check's name as the panel's title, its limit drawn and labelled (an HTTP
check's ``thresholds.backend_response_s``, otherwise ``monitor.check_timeout_s``), failed checks marked with
a red ✕ (one that never answered: a red ▼ at the top of the panel).
"""

from __future__ import annotations

import io
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.config import MonitorConfig
from bot.domain.checks import ChartPlace, CheckResult, CheckStatus, CheckView, HealthReport
from bot.domain.ports import Message, Upload
from bot.slack_ui.blocks import text_message
from bot.slack_ui.escape import channel, date, escape, link

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MARK = {CheckStatus.HEALTHY: "🟢", CheckStatus.FAILING: "🔴"}
MAX_PANELS = 8  # more would be unreadable: the failing checks first, the rest are in the text
PANEL_HEIGHT_IN = 2.3
LINE, FAILED, LIMIT = "#1f6feb", "#cf222e", "#9a6700"


@dataclass(frozen=True)
class Summary:
    runs: int
    failed: int
    median_ms: float | None
    max_ms: float | None


def summarise(results: list[CheckResult]) -> Summary:
    latencies = [r.latency_ms for r in results if r.latency_ms is not None]
    return Summary(len(results), sum(not r.ok for r in results),
                   statistics.median(latencies) if latencies else None, max(latencies) if latencies else None)


def _ms(value: float) -> str:
    return f"{value:,.0f} ms" if value < 10_000 else f"{value / 1000:,.1f} s"


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
        thread = f"*{escape(place.incident_id)}*'s thread ({link(place.link, 'open it')})"
        if place.posted_now:
            return f"📈 Latency chart (a panel per check, the last hour): posted in {thread}."
        if place.failed:
            return (f"📈 The latency chart could not be posted into {thread} (the bot's log says why); "
                    "ask again to retry.")
        if place.pending:
            return f"📈 Latency chart: someone else's request is posting it into {thread} right now."
        if place.unchanged:
            return (f"📈 Latency chart: the one posted {date(place.at)} in {thread} is current — no check has run "
                    "since it was drawn.")
        return (f"📈 Latency chart: posted {date(place.at)} in {thread}; charts go up at most once a minute, "
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


def chart_figure(checks: list[CheckView], now: datetime, window: timedelta) -> Figure:
    """The figure itself (tests read its axes): one panel per check, failing ones first."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import DateFormatter, MinuteLocator, date2num
    from matplotlib.figure import Figure

    shown = _panels(checks)
    # A Figure on its own Agg canvas, not pyplot: no global state, safe on the listener's worker threads.
    figure = Figure(figsize=(10, 0.8 + PANEL_HEIGHT_IN * len(shown)), dpi=100)
    FigureCanvasAgg(figure)
    axes_list = figure.subplots(len(shown), 1, squeeze=False)[:, 0]
    start = now - window
    for axes, view in zip(axes_list, shown, strict=True):
        recent = [r for r in view.recent if start <= r.at <= now]
        limit_ms = view.limit.seconds * 1000
        measured = [r for r in recent if r.latency_ms is not None]
        top = max([limit_ms * 1.15, *((r.latency_ms or 0) * 1.1 for r in measured)])
        if measured:
            axes.plot([float(date2num(r.at)) for r in measured], [r.latency_ms or 0.0 for r in measured],
                      color=LINE, linewidth=1.4, marker="o", markersize=2.5, label="latency")
        failed = [r for r in recent if not r.ok and r.latency_ms is not None]
        if failed:
            axes.scatter([float(date2num(r.at)) for r in failed], [r.latency_ms or 0.0 for r in failed],
                         marker="x", s=40, linewidths=2, color=FAILED, zorder=3, label=f"failed check ({len(failed)})")
        unanswered = [r for r in recent if not r.ok and r.latency_ms is None]
        if unanswered:
            axes.scatter([float(date2num(r.at)) for r in unanswered], [top * 0.96] * len(unanswered),
                         marker="v", s=40, color=FAILED, zorder=3, label=f"failed, no answer ({len(unanswered)})")
        axes.axhline(limit_ms, color=LIMIT, linestyle="--", linewidth=1.2,
                     label=f"{limit_words(view)} ({view.limit.setting})")
        status = view.state.status.value
        axes.set_title(f"{view.state.id} — {status}" + ("" if recent else " (no result in this hour)"),
                       loc="left", fontsize=10, fontweight="bold", color=FAILED if status == "failing" else "black")
        axes.set_ylabel("latency (ms)")
        axes.set_xlabel("time (UTC)")
        axes.set_xlim(float(date2num(start)), float(date2num(now)))
        axes.set_ylim(0, top)
        step = max(1, int(window.total_seconds() // 360) // 5 * 5)  # 10-minute ticks over an hour
        axes.xaxis.set_major_locator(MinuteLocator(byminute=range(0, 60, step), tz=now.tzinfo))
        axes.xaxis.set_major_formatter(DateFormatter("%H:%M", tz=now.tzinfo))
        axes.grid(alpha=0.3)
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    more = len(checks) - len(shown)
    figure.suptitle(f"Scheduled checks: latency over the last {int(window.total_seconds() // 60)} min, "
                    f"to {now:%H:%M} UTC" + (f" ({more} more check(s) in the text reply)" if more else ""),
                    fontsize=11)
    figure.tight_layout()
    return figure


def health_chart(checks: list[CheckView], now: datetime, window: timedelta) -> Upload:
    figure = chart_figure(checks, now, window)
    out = io.BytesIO()
    figure.savefig(out, format="png")
    shown = _panels(checks)
    minutes = int(window.total_seconds() // 60)
    names = ", ".join(v.state.id for v in shown)
    title = f"Latency, last {minutes} min to {now:%H:%M} UTC: {names}"
    lines = [f"📈 *Scheduled checks, last {minutes} min* (time in UTC; a panel per check, dashed line = its limit, "
             "red ✕ = a failed check, ▼ at the top = one that never answered):"]
    alt = [f"Latency in milliseconds over the last {minutes} minutes, to {now:%H:%M} UTC, one panel per check."]
    for view in shown:
        numbers = summarise(view.recent)
        worst = f", max {_ms(numbers.max_ms)}" if numbers.max_ms is not None else ""
        lines.append(f"• *{escape(view.state.id)}* — {view.state.status.value}: {numbers.runs} run(s), "
                     f"{numbers.failed} failed{escape(worst)}; {escape(limit_words(view))} "
                     f"(`{view.limit.setting}`)")
        alt.append(f"{view.state.id}: {view.state.status.value}, {numbers.runs} runs, {numbers.failed} failed"
                   f"{worst}, {limit_words(view)}.")
    return Upload(filename=f"health-{now:%Y%m%d-%H%M}Z.png", content=out.getvalue(), title=title[:250],
                  comment="\n".join(lines), alt_text=" ".join(alt)[:1000])
