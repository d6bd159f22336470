"""Slack's Web API rate limits as token buckets, on a clock a test can move.

Slack limits each Web API method per app per workspace in tiers (docs.slack.dev, "Rate limits"):
Tier 1 "1+ per minute", Tier 2 "20+", Tier 3 "50+", Tier 4 "100+", each allowing bursts, and a
special tier for ``chat.postMessage``: about one message per second per channel, short bursts
allowed. Over the limit Slack answers HTTP 429 ``{"ok": false, "error": "ratelimited"}`` with a
``Retry-After`` header in seconds.

Here every (method, app) — and for ``chat.postMessage`` every (method, channel) — has a bucket
that refills at the tier's rate and holds one minute's worth of calls (Slack counts per minute and
welcomes bursts; the special tier's burst is ``POST_MESSAGE_BURST``). ``speed`` multiplies every
rate and capacity (``speed=10`` allows ten times Slack's numbers).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]

#: How many messages a channel takes at once before the one-per-second pace applies (Slack: "short bursts").
POST_MESSAGE_BURST = 5


@dataclass(frozen=True)
class Tier:
    name: str
    per_minute: float
    burst: float  # bucket capacity
    per_channel: bool = False


TIER1 = Tier("Tier 1", 1, 1)
TIER2 = Tier("Tier 2", 20, 20)
TIER3 = Tier("Tier 3", 50, 50)
TIER4 = Tier("Tier 4", 100, 100)
POST_MESSAGE = Tier("special: 1 per second per channel", 60, POST_MESSAGE_BURST, per_channel=True)


class ManualClock:
    """A clock that only moves when told to: ``Emulator(clock=ManualClock())`` and ``clock.advance(3.1)``."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


class RateLimiter:
    """``take(key, tier)`` answers None (go ahead) or the seconds to wait (HTTP 429 ``Retry-After``)."""

    def __init__(self, clock: Clock = time.monotonic, speed: float = 1.0) -> None:
        self.clock = clock
        self.speed = speed
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill time)
        self._lock = threading.Lock()

    def take(self, key: str, tier: Tier) -> int | None:
        rate = tier.per_minute * self.speed / 60.0  # tokens per second
        capacity = max(1.0, tier.burst * self.speed)
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (capacity, now))
            tokens = min(capacity, tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return None
            self._buckets[key] = (tokens, now)
            return max(1, math.ceil(round((1.0 - tokens) / rate, 6)))
