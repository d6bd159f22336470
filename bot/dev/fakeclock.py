"""Clocks for tests and walkthroughs: they satisfy ``bot.clock.Clock`` and move forward when told to."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 2, 7, 3, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, **delta: float) -> datetime:
        with self._lock:
            self._now += timedelta(**delta)
            return self._now


class LaterClock:
    """The system's time, moved forward when told: a walkthrough runs in real time (delays, timeouts, charts)
    and then jumps days ahead (a follow-up's reminder) without waiting for them."""

    def __init__(self) -> None:
        self._ahead = timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return datetime.now(UTC) + self._ahead

    def advance(self, **delta: float) -> datetime:
        with self._lock:
            self._ahead += timedelta(**delta)
        return self.now()
