"""`/rollback health`: each check's state and latest result, and a latency chart people can read."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

from bot.config import MonitorConfig
from bot.domain.checks import CheckResult, CheckState, CheckStatus
from bot.domain.ports import Message
from bot.slack_ui.blocks import text_message
from bot.slack_ui.escape import date, escape

MARK = {CheckStatus.HEALTHY: "🟢", CheckStatus.FAILING: "🔴"}


def health(checks: list[tuple[CheckState, list[CheckResult]]], monitor: MonitorConfig) -> Message:
    if not checks:
        return text_message(f"No scheduled check has run yet (every {monitor.interval_s:g}s"
                            + ("" if monitor.enabled else "; `monitor.enabled` is false") + ").")
    lines = ["*Scheduled checks*: each one's state and latest result"]
    for state, _history in checks:
        last = state.last
        mark = MARK.get(state.status, "⚪")
        latency = f" · {last.latency_ms:.0f} ms" if last and last.latency_ms is not None else ""
        when = f" · {date(last.at)}" if last else ""
        detail = escape(last.detail) if last else "no result yet"
        lines.append(f"{mark} *{escape(state.id)}* — {state.status.value}: {detail}{latency}{when}")
    return text_message("\n".join(lines))


def latency_chart(name: str, history: list[CheckResult], threshold_s: float, now: datetime,
                  window: timedelta = timedelta(hours=1)) -> bytes:
    """A PNG of one check's latency over the last hour: axes with units, the threshold, failures in red."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib.dates import DateFormatter, date2num

    recent = [r for r in history if r.latency_ms is not None and r.at >= now - window]
    figure, axes = pyplot.subplots(figsize=(8, 3.2), dpi=100)
    try:
        if recent:
            times = [float(date2num(r.at)) for r in recent]
            values = [r.latency_ms or 0.0 for r in recent]
            axes.plot(times, values, color="#1f6feb", linewidth=1.5, marker="o", markersize=3, label="latency")
            failed = [(float(date2num(r.at)), r.latency_ms or 0.0) for r in recent if not r.ok]
            if failed:
                axes.scatter([t for t, _ in failed], [v for _, v in failed], color="#cf222e", zorder=3,
                             label="failed check")
        axes.axhline(threshold_s * 1000, color="#bf8700", linestyle="--", linewidth=1,
                     label=f"threshold {threshold_s:g} s")
        axes.set_title(f"{name}: latency over the last hour (UTC)")
        axes.set_ylabel("latency (ms)")
        axes.set_xlabel("time (UTC)")
        axes.set_xlim(float(date2num(now - window)), float(date2num(now)))
        axes.set_ylim(bottom=0)
        axes.xaxis.set_major_formatter(DateFormatter("%H:%M"))
        axes.grid(alpha=0.3)
        axes.legend(loc="upper left", fontsize=8)
        figure.tight_layout()
        out = io.BytesIO()
        figure.savefig(out, format="png")
        return out.getvalue()
    finally:
        pyplot.close(figure)
