"""The bot's own health, for load balancers, orchestrators and Prometheus: ``/healthz``, ``/readyz``, ``/metrics``.

In HTTP mode they are served by the same server as ``/slack/events`` (``bot.app.bots.HttpBot``); in Socket Mode,
which has no server of its own, by a small one on ``ops.host``:``ops.port`` (:class:`OpsServer`), only when
``ops.port`` is set. Answering reads memory only (the heartbeat's last word, the Socket Mode client's state,
the last Web API call, the registry): a probe never waits on the store or Slack, and never delays an ack.

- ``/healthz``: 200 ``ok`` while the process serves HTTP at all.
- ``/readyz``: 200 when every component is ready, else 503; both with a JSON body naming each component and,
  for each one not ready, why: ``store`` (the last heartbeat reached it, and the next is not overdue), ``slack``
  (Socket Mode: connected; HTTP mode: Slack answered the bot's last Web API call), ``scheduler`` (running), and
  ``lease`` (this replica's lease in the store is held).
- ``/metrics``: Prometheus's text format (``bot.app.metrics``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from bot.app.metrics import CONTENT_TYPE, BotMetrics
from bot.domain.ownership import Replica

log = logging.getLogger(__name__)
PATHS = ("/healthz", "/readyz", "/metrics")
Problem = Callable[[], str | None]  # None: ready; otherwise why not


class Readiness:
    """Whether the bot can do its work now, component by component, from what each already knows."""

    def __init__(self, replica: Replica, scheduler: Callable[[], Any], slack: Problem, metrics: BotMetrics) -> None:
        self.replica, self.scheduler, self.slack = replica, scheduler, slack
        metrics.readiness = self.check  # rollback_bot_ready at each scrape

    def check(self) -> dict[str, str | None]:
        live = self.replica.liveness()
        scheduler = self.scheduler()
        return {
            "store": live.store,
            "slack": self.slack(),
            "scheduler": None if scheduler is not None and scheduler.running else "the scheduler is not running",
            "lease": live.lease,
        }


def answer(path: str, method: str, readiness: Readiness, metrics: BotMetrics) -> tuple[str, str, bytes]:
    """(status, content type, body) for one of ``PATHS``."""
    if method not in ("GET", "HEAD"):
        return "405 Method Not Allowed", "text/plain", b"GET only\n"
    if path == "/healthz":
        return "200 OK", "text/plain", b"ok\n"
    if path == "/metrics":
        return "200 OK", CONTENT_TYPE, metrics.render()
    components = readiness.check()
    not_ready = {name: why for name, why in components.items() if why}
    body = {"ready": not not_ready, "not_ready": not_ready,
            "components": {name: "ok" if why is None else "not ready" for name, why in components.items()}}
    status = "200 OK" if not not_ready else "503 Service Unavailable"
    return status, "application/json", (json.dumps(body, sort_keys=True) + "\n").encode()


def wsgi_answer(environ: dict[str, Any], start_response: Any, readiness: Readiness,
                metrics: BotMetrics) -> list[bytes]:
    status, kind, body = answer(environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET"), readiness,
                                metrics)
    start_response(status, [("Content-Type", kind), ("Cache-Control", "no-store")])
    return [b"" if environ.get("REQUEST_METHOD") == "HEAD" else body]


class OpsServer:
    """``/healthz``, ``/readyz`` and ``/metrics`` on a small waitress server of their own (Socket Mode)."""

    def __init__(self, readiness: Readiness, metrics: BotMetrics, host: str, port: int) -> None:
        from waitress.server import create_server

        self.readiness, self.metrics = readiness, metrics
        self.server = create_server(self.wsgi, host=host, port=port, threads=2, ident="rollback-bot-ops")
        self.host, self.port = host, int(self.server.effective_port)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ.get("PATH_INFO") not in PATHS:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: /healthz, /readyz and /metrics are served here\n"]
        return wsgi_answer(environ, start_response, self.readiness, self.metrics)

    def start(self) -> OpsServer:
        self._thread = threading.Thread(target=self._serve, name="rollback-bot-ops-http", daemon=True)
        self._thread.start()
        log.info("health and metrics at %s/healthz, /readyz and /metrics", self.url)
        return self

    def _serve(self) -> None:
        from waitress import wasyncore

        while not self._stop.is_set():  # short polls, so close() stops it at once
            wasyncore.loop(timeout=0.1, map=self.server._map, count=1)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.server.close()
        self.server.task_dispatcher.shutdown()
