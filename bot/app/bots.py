"""The Bolt app and its two delivery modes: Socket Mode, and HTTP behind a verifying WSGI adapter.

HTTP requests are verified here, before anything reads the body: a missing, malformed, stale (> 5 min) or
future timestamp, or a signature that does not match, gets 401 with one INFO log line and nothing else
(no reply, no outbound call). A verified request seen before within the window is a replay: 401 too.
The body is then parsed the way Slack sends it (a form with a JSON ``payload`` for interactions, a form
for slash commands, JSON for events) — Bolt's own HTTP parser drops any form body containing "payload".

Both modes answer ``/healthz``, ``/readyz`` and ``/metrics`` (``bot.app.opsweb``): HTTP mode on its own server,
Socket Mode on a small one at ``ops.host``:``ops.port`` when that is set. Each request is counted by kind, with
the time to its ack, once the ack is out (``bot.app.metrics``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from bot.app import opsweb
from bot.app.services import Services, build_services
from bot.config import Settings
from bot.errors import ConfigError

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_bolt.adapter.socket_mode import SocketModeHandler

log = logging.getLogger(__name__)
WINDOW_S = 300
MAX_BODY = 1 << 20
TIMESTAMP = re.compile(r"^\d{1,12}$")
SIGNATURE = re.compile(r"^v0=[0-9a-f]{64}$")
SOCKET_CLOSE_S = 5.0  # the longest a stop waits for slack_sdk's Socket Mode client to close


def _not_token_unused(record: logging.LogRecord) -> bool:
    return "`token` will be unused" not in str(record.msg)


def build_app(services: Services, *, socket_mode: bool) -> App:
    """The Bolt app. It only builds the App and registers the listeners."""
    from slack_bolt import App

    from handlers import register_all
    from handlers.context import Ctx

    secrets = services.settings.secrets
    signing = secrets.slack_signing_secret.get_secret_value() if secrets.slack_signing_secret else None
    # Bolt reads SLACK_BOT_TOKEN from the environment by itself and warns, on every start, that it is unused
    # when a client is given as well: the client (with our retries and base URL) is given on purpose.
    bolt_log = logging.getLogger("slack_bolt.App")
    bolt_log.addFilter(_not_token_unused)
    try:
        app = App(client=services.messenger.client, signing_secret=signing,
                  request_verification_enabled=not socket_mode, token_verification_enabled=False,
                  raise_error_for_unhandled_request=False, ignoring_self_events_enabled=True,
                  listener_executor=services.listeners)
    finally:
        bolt_log.removeFilter(_not_token_unused)
    register_all(app, Ctx(features=services.features, settings=services.settings, acks=services.acks))
    return app


def socket_mode_handler(app: App, app_token: str, services: Services, concurrency: int) -> SocketModeHandler:
    """Bolt's Socket Mode handler, each request counted as due (``handlers.acks``) until its ack is sent."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler
    from slack_sdk.socket_mode import SocketModeClient
    from slack_sdk.socket_mode.request import SocketModeRequest

    acks, metrics = services.acks, services.metrics

    class Handler(SocketModeHandler):
        def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
            started = time.monotonic()
            with acks.due():
                super().handle(client, req)  # returns once the ack is sent
            metrics.request(req.payload or {}, time.monotonic() - started)

    return Handler(app, app_token, web_client=services.messenger.client, concurrency=concurrency, ping_interval=5)


@dataclass
class SocketModeBot:
    """The bot connected over Socket Mode; start() returns once connected, close() disconnects."""

    services: Services
    app: App
    handler: SocketModeHandler | None = None
    ops: opsweb.OpsServer | None = None  # /healthz, /readyz, /metrics when ops.port is set
    _closed: threading.Event = field(default_factory=threading.Event)

    def start(self, concurrency: int = 10) -> SocketModeBot:
        token = self.services.settings.secrets.slack_app_token
        assert token is not None
        self.handler = socket_mode_handler(self.app, token.get_secret_value(), self.services, concurrency)
        config = self.services.settings.runbook.ops
        if config.port is not None:
            try:
                server = opsweb.OpsServer(self.readiness(), self.services.metrics, config.host, config.port)
            except OSError as error:
                raise ConfigError(f"cannot serve /healthz, /readyz and /metrics on {config.host}:{config.port} "
                                  f"({(error.strerror or str(error)).lower()}) — choose another ops.port or "
                                  "ops.host in rollback.yml") from error
            self.ops = server.start()
        self.handler.connect()
        return self

    def readiness(self) -> opsweb.Readiness:
        return opsweb.Readiness(self.services.deps.replica, lambda: self.services.scheduler, self._slack_problem,
                                self.services.metrics)

    def _slack_problem(self) -> str | None:
        handler = self.handler
        if handler is None or not handler.client.is_connected():
            return "not connected to Slack over Socket Mode"
        return None

    def wait(self) -> None:
        self._closed.wait()

    def close(self) -> None:
        if self.handler is not None:
            # slack_sdk's built-in client can deadlock in close(): disconnect() takes the receive lock that its
            # session thread holds while it waits in recv(), and close() then joins that thread with no time
            # limit (seen as `rollback-bot run` hanging on SIGTERM about one time in five). Its threads are
            # daemons, so past a bounded wait the bot closes everything else and the process can exit.
            closing = threading.Thread(target=self.handler.close, name="socket-mode-close", daemon=True)
            closing.start()
            closing.join(SOCKET_CLOSE_S)
            if closing.is_alive():
                log.warning("Slack's Socket Mode client did not close within %.0f s; going on without it",
                            SOCKET_CLOSE_S)
        if self.ops is not None:
            self.ops.close()
        self.services.close()
        self._closed.set()


def socket_mode_bot(settings: Settings, **kwargs: Any) -> SocketModeBot:
    settings.require("slack_bot_token", "slack_app_token")
    services = build_services(settings, **kwargs).start()
    return SocketModeBot(services, build_app(services, socket_mode=True))


class Verifier:
    """Slack's v0 request signatures, failing closed, with a memory of recent signatures against replays."""

    def __init__(self, secret: str, clock: Any = time.time) -> None:
        self.secret = secret.encode()
        self.clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, body: bytes, timestamp: str | None, signature: str | None, *, retry: bool = False) -> str | None:
        """None when the request is genuine and new; otherwise why it is refused. Slack's own redelivery of an
        event (``retry``: an X-Slack-Retry-Num header) may repeat a signature; it is acknowledged and then
        dropped by its event id, never run twice."""
        if not timestamp or not TIMESTAMP.match(timestamp):
            return "missing or malformed timestamp"
        if not signature or not SIGNATURE.match(signature):
            return "missing or malformed signature"
        now = self.clock()
        if abs(now - int(timestamp)) > WINDOW_S:
            return "timestamp outside the 5-minute window"
        base = b"v0:" + timestamp.encode() + b":" + body
        expected = "v0=" + hmac.new(self.secret, base, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return "signature does not match"
        with self._lock:
            while self._seen and next(iter(self._seen.values())) < now - WINDOW_S:
                self._seen.popitem(last=False)
            if signature in self._seen and not retry:
                return "replay of a request already handled"
            self._seen[signature] = now
        return None


def parse_body(body: str, content_type: str | None) -> dict[str, Any]:
    """Slack's bodies: JSON (events), a form with only `payload` (interactions), or a form (slash commands)."""
    if not body:
        return {}
    if (content_type or "").startswith("application/json") or body.lstrip().startswith("{"):
        parsed = json.loads(body)
        return parsed if isinstance(parsed, dict) else {}
    params = dict(parse_qsl(body, keep_blank_values=True))
    if set(params) == {"payload"}:
        payload = json.loads(params["payload"])
        return payload if isinstance(payload, dict) else {}
    return params


class HttpBot:
    """The bot behind /slack/events over a threaded WSGI server (waitress)."""

    def __init__(self, settings: Settings, host: str = "127.0.0.1", port: int = 3000, **kwargs: Any) -> None:
        from waitress.server import create_server

        settings.require("slack_bot_token", "slack_signing_secret")
        self.services = build_services(settings, **kwargs).start()
        self.app = build_app(self.services, socket_mode=False)
        secret = settings.secrets.slack_signing_secret
        assert secret is not None
        self.verifier = Verifier(secret.get_secret_value())
        self.readiness = opsweb.Readiness(self.services.deps.replica, lambda: self.services.scheduler,
                                          self.services.metrics.slack_unreached, self.services.metrics)
        if self.services.scheduler is not None:  # Slack calls this bot: whether it answers us is only seen in calls
            self.services.scheduler.add_job(self.probe_slack, "interval", id="slack-probe",
                                            seconds=settings.runbook.store.heartbeat_s,
                                            name="auth.test while the last Web API call got no answer")
        self.server = create_server(self.wsgi, host=host, port=port, threads=16, ident="rollback-bot")
        self.port = int(self.server.effective_port)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    def probe_slack(self) -> None:
        """While the last Web API call got no answer, ask ``auth.test`` (observed like every call), so /readyz
        turns ready again once Slack answers, without waiting for the next thing the bot posts."""
        if self.services.metrics.slack_unreached() is None:
            return
        try:
            self.services.messenger.client.auth_test()
        except Exception:  # recorded by the client's observer; the next probe asks again
            log.debug("auth.test got no answer", exc_info=True)

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ.get("PATH_INFO") in opsweb.PATHS:  # a probe or a scrape: no Slack request, nothing due
            return opsweb.wsgi_answer(environ, start_response, self.readiness, self.services.metrics)
        started = time.monotonic()
        with self.services.acks.due():  # until the ack is out, the answers of earlier requests wait
            return self._handle(environ, start_response, started)

    def _handle(self, environ: dict[str, Any], start_response: Any, started: float) -> list[bytes]:
        from slack_bolt import BoltContext, BoltRequest
        from slack_bolt.request.internals import build_context

        def answer(status: str, body: bytes = b"", kind: str = "text/plain",
                   headers: list[tuple[str, str]] | None = None) -> list[bytes]:
            start_response(status, [("Content-Type", kind), *(headers or [])])
            return [body]

        if environ.get("PATH_INFO") != "/slack/events":
            return answer("404 Not Found", b"not found: Slack requests go to /slack/events\n")
        if environ.get("REQUEST_METHOD") != "POST":
            return answer("405 Method Not Allowed")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            log.info("refused a request to /slack/events: body length %s", environ.get("CONTENT_LENGTH"))
            return answer("413 Payload Too Large")
        raw = environ["wsgi.input"].read(length)
        signature = environ.get("HTTP_X_SLACK_SIGNATURE")
        refused = self.verifier.check(raw, environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP"), signature,
                                      retry=bool(environ.get("HTTP_X_SLACK_RETRY_NUM")))
        if refused is not None:
            log.info("refused a request to /slack/events: %s", refused)
            return answer("401 Unauthorized", b"")
        text = raw.decode("utf-8", "replace")
        headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items()
                   if key.startswith("HTTP_")}
        headers["content-type"] = environ.get("CONTENT_TYPE", "")
        request = BoltRequest(body=text, query=environ.get("QUERY_STRING", ""), headers=headers)
        try:
            request.body = parse_body(text, environ.get("CONTENT_TYPE"))
        except ValueError:
            log.info("refused a request to /slack/events: the body is not Slack's format")
            return answer("400 Bad Request")
        retry = bool(environ.get("HTTP_X_SLACK_RETRY_NUM"))
        request.context = build_context(BoltContext({} if retry else {"request_signature": signature}), request.body)
        response = self.app.dispatch(request)
        self.services.metrics.request(request.body, time.monotonic() - started)
        out_headers = [(k, v) for k, values in response.headers.items() for v in values if k.lower() != "content-type"]
        kind = response.headers.get("content-type", ["text/plain"])[0]
        return answer(f"{response.status} {'OK' if response.status == 200 else 'Error'}",
                      (response.body or "").encode("utf-8"), kind, out_headers)

    def start(self) -> HttpBot:
        self._thread = threading.Thread(target=self.serve_forever, name="rollback-bot-http", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        from waitress import wasyncore

        while not self._stop.is_set():  # short polls, so close() stops it at once
            wasyncore.loop(timeout=0.1, map=self.server._map, count=1)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.server.close()
        self.server.task_dispatcher.shutdown()
        self.services.close()


def http_bot(settings: Settings, **kwargs: Any) -> HttpBot:
    return HttpBot(settings, **kwargs)
