"""Where `/rollback health`'s latency chart goes, and how often.

The chart goes into the thread of the active incident in the channel where it was asked for, never into the
channel itself. Several people asking within a minute get a pointer to the chart already there instead of
another upload; so does anyone asking when no check has run since it was drawn. The record of what was
posted is the audit log (``health.chart``), and a store claim per chart makes two requests at the same
moment (or on two replicas) upload once. Without an incident in the channel the answer is text only, and says
where the latest chart of each active incident is.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.audit import AuditEvent
from bot.clock import from_iso
from bot.domain.checks import ChartPlace, CheckView, HealthReport
from bot.domain.deps import Deps
from bot.domain.desk import Desk
from bot.domain.incident import Incident

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
        events = _chart_events(self.deps.store.audit_events(incident.id))
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
            upload = self.deps.ui.health_chart(views, now, CHART_WINDOW)
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


def _chart_events(events: list[AuditEvent]) -> list[AuditEvent]:
    return [e for e in events if e.action in (POSTED, FAILED)]


def _moment(text: str) -> datetime | None:
    try:
        return from_iso(text)
    except ValueError:
        return None
