"""Acknowledgements before answers.

Slack gives a request 3 seconds to be acknowledged (then it retries, or shows the user an error); the answer
may come later (a ``response_url`` stays valid for 30 minutes). In this process both compete for one
interpreter: while the answers to the requests acknowledged first are worked out (the store, the rendering,
the reply's HTTP call), every step of the other requests' acks — reading them, Bolt's dispatch, the 10 ms
polls of its runner for the ``ack()``, writing the ack back — waits for its turn at the GIL. In a burst the
later acks came out behind the earlier answers (bench/ack_latency.py measures it). Fewer answers at once did
not help: one busy thread is enough to delay every hand-over of the interpreter.

So the transports count each request as *due* from the moment it reaches the app until its ack is out
(``due()``), and the work after an ack runs on a small pool of its own (``after_ack()``) that starts it
once nothing is due — or ``patience_s`` after its own ack at the latest, so a steady stream of requests
delays each answer by at most that much and never starves it. The price is the answers of a burst, which all
wait for its last ack; starting each at once, or once the acks due at its own ack are out, brought them nearer
a bare app's but took the acks to 1.14-1.30x of it (the README's benchmarks say how far).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

log = logging.getLogger("rollback_bot.listeners")
#: Answers worked out at once (each may wait on Slack's Web API or the store).
ANSWER_THREADS = 8
#: The longest an answer waits for the acks due: far below the 30 minutes of a response_url, far above the
#: few tens of milliseconds a burst of acks takes.
PATIENCE_S = 0.5


class AcksFirst:
    def __init__(self, threads: int = ANSWER_THREADS, patience_s: float = PATIENCE_S) -> None:
        self.patience_s = patience_s
        self._due = 0
        self._quiet = threading.Condition()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="rollback-answer")

    @property
    def pending(self) -> int:
        """Requests that have reached the app and whose ack is not out yet."""
        with self._quiet:
            return self._due

    @contextmanager
    def due(self) -> Iterator[None]:
        """Around a transport's handling of one request, up to and including sending its ack."""
        with self._quiet:
            self._due += 1
        try:
            yield
        finally:
            with self._quiet:
                self._due -= 1
                if self._due == 0:
                    self._quiet.notify_all()

    def after_ack(self, work: Callable[[], None]) -> None:
        """Run ``work`` (an answer; it handles its own errors) once no ack is due, or after the patience."""
        deadline = time.monotonic() + self.patience_s

        def run() -> None:
            self.wait_quiet(deadline)
            try:
                work()
            except Exception:  # the work answers its own errors; this is the last resort, for the log
                log.exception("an answer failed after its ack")

        self._pool.submit(run)

    def wait_quiet(self, deadline: float) -> bool:
        """Wait until no ack is due (True) or until ``deadline`` (``time.monotonic()``) has passed (False)."""
        with self._quiet:
            while self._due:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._quiet.wait(left)
            return True

    def close(self) -> None:
        """Finish the answers already handed over; call it once the transport has stopped."""
        self._pool.shutdown(wait=True, cancel_futures=False)
