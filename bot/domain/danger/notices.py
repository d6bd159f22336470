"""A danger run's messages, best effort and in order, off the run's own thread.

The run records its state first (tenant results, the request's status, the audit) and then hands each message
here under a key: the request redraw, the progress message, the outcome. A worker thread delivers them in the
order they were first given; a newer version of a message replaces one still owed. When Slack fails (past
the client's own retries), the worker waits and tries again, so the run neither stops nor waits on Slack,
and what went stale catches up once Slack answers again; then the thread is told how long Slack was away.
After ``GIVE_UP_S`` without success the rest is dropped and logged (the request is redrawn at its next change).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)
GIVE_UP_S = 600.0
BACKOFF_S = (1.0, 2.0, 5.0, 10.0)

#: Sends one message; raises (or answers False) when Slack did not take it.
Deliver = Callable[[], object]
#: Tells the thread that Slack was away this many seconds and that the messages caught up.
Recovered = Callable[[float], object]


class Notices:
    def __init__(self, name: str, recovered: Recovered | None = None, *, give_up_s: float = GIVE_UP_S) -> None:
        self.name, self.recovered, self.give_up_s = name, recovered, give_up_s
        self._owed: dict[str, Deliver] = {}
        self._cond = threading.Condition()
        self._closed = self._stopped = False
        self.trouble_since: float | None = None  # when the first failed attempt started
        self._thread = threading.Thread(target=self._work, name=f"notices-{name}", daemon=True)
        self._thread.start()

    def send(self, key: str, deliver: Deliver) -> None:
        with self._cond:
            if self._stopped:
                return
            self._owed[key] = deliver  # a newer version of a message still owed replaces it, in its place
            self._cond.notify_all()

    def close(self) -> None:
        """No more messages: the worker ends once everything owed is delivered (or given up)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def stop(self, timeout: float = 5.0) -> None:
        """Shutting down: drop what is still owed and end the worker."""
        with self._cond:
            if self._owed:
                log.warning("%s: %d message(s) not delivered at shutdown: %s", self.name, len(self._owed),
                            ", ".join(self._owed))
            self._owed.clear()
            self._closed = self._stopped = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def wait(self, timeout: float) -> bool:
        """True when everything was delivered and the worker ended within ``timeout``."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def _work(self) -> None:
        failures = 0
        while True:
            with self._cond:
                while not self._owed and not self._closed:
                    self._cond.wait()
                if not self._owed:
                    break
                key, deliver = next(iter(self._owed.items()))
            started = time.monotonic()
            if _attempt(self.name, key, deliver):
                failures = 0
                with self._cond:
                    if self._owed.get(key) is deliver:
                        del self._owed[key]
                continue
            failures += 1
            if self.trouble_since is None:
                self.trouble_since = started
            with self._cond:
                if time.monotonic() - self.trouble_since > self.give_up_s:
                    log.error("%s: Slack has failed for %.0f s; giving up on %s", self.name,
                              time.monotonic() - self.trouble_since, ", ".join(self._owed))
                    self._owed.clear()
                    return
                self._cond.wait(BACKOFF_S[min(failures, len(BACKOFF_S)) - 1])
                if self._stopped:
                    return
        if self.trouble_since is not None and self.recovered is not None and not self._stopped:
            away = time.monotonic() - self.trouble_since
            for pause in (0.0, *BACKOFF_S):
                with self._cond:
                    if self._cond.wait_for(lambda: self._stopped, pause):
                        return
                if _attempt(self.name, "the catch-up note", lambda: self.recovered(away)
                                             if self.recovered else None):
                    return


def _attempt(name: str, key: str, deliver: Deliver) -> bool:
    try:
        return deliver() is not False
    except Exception:
        log.warning("%s: could not deliver %s; trying again", name, key, exc_info=True)
        return False
