"""Where `/rollback health`'s chart (status, latency, the incident's events) goes, and how often.

The chart goes into the thread of the active incident in the channel where it was asked for, never into the
channel itself. Several people asking within a minute get a pointer to the chart already there instead of
another upload; so does anyone asking when no check has run since it was drawn. The record of what was
posted is the audit log (``health.chart``), and a store claim per chart makes two requests at the same
moment (or on two replicas) upload once. Without an incident in the channel the answer is text only, and says
where the latest chart of each active incident is.

The chart marks what happened in the incident (``chart_marks``): the issue detected, the alerts of the
checks shown, the rollback started, each step finished (revert, rebuild, restart, verify, …, and whether it
failed), a danger-zone run (cleanup, restore) and the system restored — so a drop in latency can be read
against the restart that caused it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.audit import AuditEvent
from bot.clock import from_iso
from bot.domain.checks import ChartMark, ChartPlace, CheckView, HealthReport
from bot.domain.deps import Deps
from bot.domain.desk import Desk
from bot.domain.incident import Incident, Milestone

log = logging.getLogger(__name__)
CHART_WINDOW = timedelta(hours=1)  # what the chart and the summary cover
CHART_REUSE = timedelta(minutes=1)  # a second request within this points to the chart already posted
POSTED, FAILED = "health.chart", "health.chart_failed"


class HealthCharts:
    def __init__(self, deps: Deps, desk: Desk) -> None:
        self.deps, self.desk = deps, desk

    def report(self, actor: str, channel: str, views: list[CheckView], now: datetime) -> HealthReport:
        here = self.deps.store.active_incident(f"channel:{channel}")
        if here is None:
            return HealthReport(views, now, CHART_WINDOW, None, self._elsewhere(channel))
        here = self.desk.with_panel(here)
        chart = None
        if here.panel_ts and any(view.recent for view in views):
            chart = self._place(actor, here, views, now)
        return HealthReport(views, now, CHART_WINDOW, chart, [])

    def _place(self, actor: str, incident: Incident, views: list[CheckView], now: datetime) -> ChartPlace:
        history = self.deps.store.audit_events(incident.id)
        events = _chart_events(history)
        last = events[-1] if events else None
        as_of = max(view.state.last.at for view in views if view.state.last is not None)
        if last is not None and last.action == POSTED:
            at, drawn = _moment(last.at), _moment(str(last.data.get("as_of", "")))
            unchanged = drawn is not None and drawn >= as_of
            if at is not None and (now - at < CHART_REUSE or unchanged):
                return ChartPlace(incident.id, incident.channel, self.desk.link(incident), at, unchanged=unchanged,
                                  next_at=None if unchanged else at + CHART_REUSE)
        # One upload per chart: the claim is keyed by the chart event it follows, so after a failed upload the
        # next request may try again at once, and a crash mid-upload blocks others for a minute at most.
        if not self.deps.store.claim(f"health-chart:{incident.id}:{last.seq if last else 0}", now,
                                     ttl_s=CHART_REUSE.total_seconds()):
            return ChartPlace(incident.id, incident.channel, self.desk.link(incident), None, pending=True)
        try:
            # The alerts belong to no incident: they are read from the whole log (once a minute at most).
            marks = chart_marks(incident, history, self.deps.store.audit_events(None),
                                {view.state.id for view in views}, now - CHART_WINDOW, now)
            upload = self.deps.ui.health_chart(views, now, CHART_WINDOW, marks)
            self.deps.messenger.upload(incident.channel, incident.panel_ts, upload.filename, upload.content,
                                       upload.title, upload.comment, alt_text=upload.alt_text)
        except Exception as error:  # the words still answer; the chart is tried again next time
            log.exception("could not post the health chart into %s's thread", incident.id)
            self.desk.audit(now, actor, FAILED, incident.id, error=type(error).__name__)
            return ChartPlace(incident.id, incident.channel, self.desk.link(incident), None, failed=True)
        self.desk.audit(now, actor, POSTED, incident.id, as_of=as_of.isoformat(), checks=len(views))
        return ChartPlace(incident.id, incident.channel, self.desk.link(incident), now, posted_now=True,
                          next_at=now + CHART_REUSE)

    def _elsewhere(self, channel: str) -> list[ChartPlace]:
        """No incident in this channel: the active ones elsewhere, each with when its latest chart was posted."""
        places = []
        for incident in self.deps.store.active_incidents():
            if incident.channel == channel:
                continue
            posted = [e for e in _chart_events(self.deps.store.audit_events(incident.id)) if e.action == POSTED]
            places.append(ChartPlace(incident.id, incident.channel, self.desk.link(incident),
                                     _moment(posted[-1].at) if posted else None))
        return places[:5]


STEP_LABELS = {"safe_revert": "safe revert", "partial": "partial revert", "flag": "feature flag"}
DANGER_LABELS = {"restore": "restore all"}


def chart_marks(incident: Incident, events: list[AuditEvent], log_events: list[AuditEvent], checks: set[str],
                start: datetime, end: datetime) -> list[ChartMark]:
    """What happened between ``start`` and ``end``, oldest first: the incident's own events, and the alerts
    (which belong to no incident, so they come from the whole log, ``log_events``) of the checks charted."""
    marks: list[ChartMark] = []
    detected = incident.milestones.get(Milestone.ISSUE_DETECTED)
    if detected is not None:
        marks.append(ChartMark(detected, "issue detected", "milestone"))
    for event in events:
        mark = _mark(event)
        if mark is not None:
            marks.append(mark)
    for event in log_events:
        if (event.action == "monitor.alert" and event.data.get("status") == "failing"
                and event.data.get("check") in checks and (at := _moment(event.at)) is not None):
            marks.append(ChartMark(at, f"alert: {event.data['check']}", "alert"))
    return sorted((m for m in marks if start <= m.at <= end), key=lambda m: m.at)


def _mark(event: AuditEvent) -> ChartMark | None:
    at = _moment(event.at)
    if at is None:
        return None
    if event.action == "incident.started":
        return ChartMark(at, "rollback started", "milestone")
    if event.action == "step.finished":
        step = str(event.data.get("step", "step"))
        label = STEP_LABELS.get(step, step)
        return ChartMark(at, label, "step") if event.data.get("ok") else ChartMark(at, f"{label} failed",
                                                                                   "step_failed")
    if event.action == "danger.started":
        action = str(event.data.get("action", "danger zone"))
        return ChartMark(at, DANGER_LABELS.get(action, action), "danger")
    if event.action in ("incident.system_restored", "incident.restored"):
        return ChartMark(at, "restored", "milestone")
    return None


def _chart_events(events: list[AuditEvent]) -> list[AuditEvent]:
    return [e for e in events if e.action in (POSTED, FAILED)]


def _moment(text: str) -> datetime | None:
    try:
        return from_iso(text)
    except ValueError:
        return None
