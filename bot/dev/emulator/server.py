"""A local stand-in for Slack, speaking Slack's wire formats over real sockets, and failing where Slack fails.

- Web API: ``POST /api/<method>`` (form or JSON bodies, bearer tokens), with injectable faults and
  Slack's refusals (scopes, membership, Block Kit, rate limits, trigger ids, plans): see
  ``bot.emulator.webapi`` for the methods and ``bot.emulator.policy`` for the scope and tier table.
- Socket Mode: ``apps.connections.open`` hands out a ``ws://`` URL; the WebSocket says ``hello``,
  carries envelopes, expects an ack within the ack timeout, redelivers unacked events with
  ``retry_attempt``, and can be told to send ``disconnect``.
- HTTP delivery: signed requests (``X-Slack-Signature`` v0) to a request URL, with
  ``X-Slack-Retry-Num`` redelivery of events.
- Deliveries follow the app's manifest: no slash command without the ``commands`` scope and the
  command declared, no event without its subscription and scope (``app_mention`` needs
  ``app_mentions:read``, reactions ``reactions:read``), no interaction without interactivity.
- ``response_url`` endpoints: at most 5 responses within 30 minutes per URL (then HTTP 404
  ``used_url`` / ``expired_url``), and the same Block Kit checks as the Web API. A slash command's
  ack that carries a message Slack would refuse makes Slack show the user
  ``/rollback failed with the error "invalid_command_response"``.

What users do (and the control API and browser page that let tools and people do it) is in
``bot.emulator.users``.

Each strict behaviour has its own constructor switch (all on by default): ``enforce_scopes``,
``enforce_membership``, ``validate_blocks``, ``rate_limits`` (True, False, or a speed factor;
``post_message_burst`` sets how many messages a channel takes at once, default 5),
``trigger_ttl`` (seconds, None for never), ``response_url_limits`` and ``enforce_manifest`` (the
delivery rules above). Rate limits, trigger ids and response URLs run on ``clock`` (default
``time.monotonic``; a ``ManualClock`` lets a test move time instead of sleeping).

Over 300 lines: it is the one place that wires the HTTP, WebSocket and delivery surfaces together.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import itertools
import json
import logging
import secrets
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, ClientTimeout, WSMsgType, web

from bot.dev.emulator.blockkit import view_errors
from bot.dev.emulator.policy import COMMANDS_SCOPE, EVENT_SCOPES, AppManifest, default_manifest
from bot.dev.emulator.ratelimit import POST_MESSAGE_BURST, Clock, RateLimiter
from bot.dev.emulator.users import Delivery, UserSide
from bot.dev.emulator.webapi import Fault, Rejection, Trigger, WebApi, block_problems
from bot.dev.emulator.workspace import Ephemeral, Workspace

log = logging.getLogger(__name__)

#: Slack: a response_url takes up to 5 responses within 30 minutes of the interaction.
RESPONSE_URL_USES, RESPONSE_URL_TTL = 5, 30 * 60.0


class Emulator(WebApi, UserSide):
    """Start with ``Emulator().start()``; ``close()`` stops the server and its thread.

    ``manifest`` (default: the app's own ``manifest.yml``, ``bot.resources.manifest_path()``) gives the
    bot scopes, event subscriptions and slash commands; ``scopes`` replaces its scopes with exactly these.
    """

    def __init__(self, seed: Path | None = None, *, host: str = "127.0.0.1", port: int = 0,
                 ack_timeout: float = 3.0, max_event_retries: int = 3, workspace: Workspace | None = None,
                 manifest: Path | None = None, scopes: Iterable[str] | None = None,
                 enforce_scopes: bool = True, enforce_membership: bool = True, validate_blocks: bool = True,
                 rate_limits: bool | float = True, trigger_ttl: float | None = 3.0,
                 response_url_limits: bool = True, enforce_manifest: bool = True,
                 post_message_burst: int = POST_MESSAGE_BURST, distribution: str = "internal",
                 clock: Clock | None = None) -> None:
        self.ws = workspace or Workspace.from_seed(seed)
        loaded = AppManifest.load(manifest) if manifest is not None else default_manifest()
        self.manifest = loaded if scopes is None else dataclasses.replace(loaded, scopes=frozenset(scopes))
        self.host, self._port = host, port
        self.ack_timeout = ack_timeout
        self.max_event_retries = max_event_retries
        self.enforce_scopes, self.enforce_membership = enforce_scopes, enforce_membership
        self.validate_blocks, self.trigger_ttl = validate_blocks, trigger_ttl
        self.response_url_limits, self.enforce_manifest = response_url_limits, enforce_manifest
        if distribution not in ("internal", "marketplace", "unlisted"):
            raise ValueError("distribution is internal, marketplace or unlisted")
        self.distribution = distribution
        self._clock: Clock = clock or time.monotonic
        self.post_message_burst = post_message_burst
        speed = 1.0 if rate_limits is True else float(rate_limits)
        self._limiter = RateLimiter(self._clock, speed) if rate_limits is not False and speed > 0 else None
        self.deliveries: dict[str, Delivery] = {}
        self.rejections: list[Rejection] = []
        self._scope_uses: dict[str, set[str]] = {}
        self._faults: dict[str, deque[Fault]] = {}
        self._outages: dict[str, tuple[float, Fault]] = {}
        self._slow_acks: float = 0.0
        self._slow_calls: dict[str, float] = {}
        self._late: tuple[float, str | None] = (0.0, None)
        self._hidden_until: dict[tuple[str, str], float] = {}
        self._tickets: set[str] = set()
        self._sockets: list[web.WebSocketResponse] = []
        self._rr = itertools.count()
        self._response_urls: dict[str, dict[str, Any]] = {}
        self._envelopes: dict[str, tuple[Delivery, int]] = {}
        self._ids = itertools.count(1)
        self._triggers: dict[str, Trigger] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._http: ClientSession | None = None
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self.connections_opened = 0

    # ---- lifecycle --------------------------------------------------------------------------------
    def start(self) -> Emulator:
        self._thread = threading.Thread(target=self._run_loop, name="slack-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the Slack emulator did not start")
        return self

    def _run_loop(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        loop.run_until_complete(self._serve())
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self._shutdown())
        loop.close()

    async def _serve(self) -> None:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/link/", self._socket)
        app.router.add_post("/respond/{token}", self._respond)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_get("/_emulator/state", self._control_state)
        app.router.add_get("/", self._page)
        app.router.add_get("/_emulator/web/{name}", self._web)
        app.router.add_get("/favicon.ico", self._favicon)
        app.router.add_get("/_emulator/files/{file_id}", self._file)
        app.router.add_post("/_emulator/{action}", self._control)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._port)
        await site.start()
        server = site._server
        assert server is not None
        self._port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self._http = ClientSession(timeout=ClientTimeout(total=None))

    async def _shutdown(self) -> None:
        for sock in list(self._sockets):
            await sock.close()
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()
        # Like asyncio.run: a task still pending when the loop closes (a request whose client went away) would be
        # destroyed by some later garbage collection, with an ERROR in whatever runs then.
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    def close(self) -> None:
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        return int(self._port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def bot_env(self) -> dict[str, str]:
        """The environment a bot needs to talk to this emulator."""
        app = self.ws.app
        return {"SLACK_API_URL": self.api_url, "SLACK_BOT_TOKEN": app.bot_token, "SLACK_APP_TOKEN": app.app_token,
                "SLACK_SIGNING_SECRET": app.signing_secret}

    def _submit(self, coro: Any) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    # ---- faults -----------------------------------------------------------------------------------
    def fail_next(self, method: str, status: int = 429, *, retry_after: int | None = 1, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer ``status`` (429 carries Retry-After)."""
        with self._lock:
            queue = self._faults.setdefault(method, deque())
            for _ in range(times):
                queue.append(Fault(status, retry_after if status == 429 else None))

    def outage(self, methods: str | list[str], seconds: float, status: int = 429, *,
               retry_after: int | None = 1) -> None:
        """Every call of ``methods`` answers ``status`` (with ``Retry-After`` when given, on any status) for
        the next ``seconds`` of the emulator's clock; ``seconds=0`` ends an outage now."""
        until = self._clock() + seconds
        with self._lock:
            for method in [methods] if isinstance(methods, str) else methods:
                self._outages[method] = (until, Fault(status, retry_after))

    def slow_acks(self, seconds: float) -> None:
        """Hold every ack this long before counting it (makes acks late without touching the bot)."""
        self._slow_acks = seconds

    def slow_calls(self, method: str, seconds: float) -> None:
        """Every call of ``method`` answers ``seconds`` late (0 to stop), as a slow Slack would."""
        with self._lock:
            self._slow_calls[method] = seconds

    def record_late(self, seconds: float, channel: str | None = None) -> None:
        """Messages posted from now on (in ``channel``, or anywhere) stay out of ``conversations.history`` and
        ``conversations.replies`` for ``seconds`` after Slack accepted them, as when Slack records a post late.
        ``chat.postMessage`` still answers at once with the ts, and ``ws`` shows the message. 0 to stop."""
        with self._lock:
            self._late = (seconds, channel)

    def set_request_url(self, url: str | None) -> None:
        """Deliver to ``url`` over signed HTTP; None goes back to Socket Mode."""
        self.ws.app.request_url = url

    def disconnect_sockets(self, reason: str = "refresh_requested") -> None:
        """Send `disconnect` on every Socket Mode connection, as Slack does before rotating them."""

        async def go() -> None:
            for sock in list(self._sockets):
                await sock.send_str(json.dumps({"type": "disconnect", "reason": reason,
                                                "debug_info": {"host": "emulator"}}))
                await sock.close()

        self._submit(go())

    @property
    def socket_count(self) -> int:
        return len(self._sockets)

    def invite_bot(self, channel: str, *, member: bool = True) -> None:
        """Someone runs ``/invite @rollback-bot`` in ``channel`` (name or id): the bot becomes a member."""
        with self.ws._cond:
            self.ws.channel_by_name(channel).is_member = member
            self.ws._notify()

    def remove_bot(self, channel: str) -> None:
        """Someone removes the bot from ``channel``."""
        self.invite_bot(channel, member=False)

    # ---- response_url -----------------------------------------------------------------------------
    def _new_response_url(self, user: str, channel: str, message_ts: str | None = None) -> str:
        token = secrets.token_hex(10)
        self._response_urls[token] = {"user": user, "channel": channel, "message_ts": message_ts,
                                      "issued": self._clock(), "uses": 0}
        return f"{self.url}/respond/{token}"

    async def _respond(self, request: web.Request) -> web.Response:
        with self._lock:  # fail_next("response_url", …): Slack's end of a response_url fails too
            queue = self._faults.get("response_url")
            fault = queue.popleft() if queue else None
        if fault is not None:
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            return web.json_response({"ok": False, "error": "ratelimited" if fault.status == 429 else "internal_error"},
                                     status=fault.status, headers=headers)
        target = self._response_urls.get(request.match_info["token"])
        refusal: dict[str, Any] | None = None
        status = 404
        if target is None:
            refusal = {"ok": False, "error": "expired_url"}
        elif self.response_url_limits and self._clock() - target["issued"] > RESPONSE_URL_TTL:
            refusal = {"ok": False, "error": "expired_url"}
        elif self.response_url_limits and target["uses"] >= RESPONSE_URL_USES:
            refusal = {"ok": False, "error": "used_url"}
        else:
            try:
                body = await request.json()
            except ValueError:
                body = None
            if not isinstance(body, dict):
                refusal, status = {"ok": False, "error": "invalid_payload"}, 400
            elif self.validate_blocks and (problem := block_problems(body.get("text"), body.get("blocks"))):
                refusal, status = {"ok": False, "error": problem.code, **problem.extra}, 400
        if refusal is not None:
            self._reject("response_url", refusal)
            return web.json_response(refusal, status=status)
        assert target is not None and isinstance(body, dict)
        target["uses"] += 1
        self._apply_response(target, body)
        return web.json_response({"ok": True})

    def _apply_response(self, target: dict[str, Any], body: dict[str, Any]) -> None:
        channel, user = target["channel"], target["user"]
        text, blocks = body.get("text") or "", body.get("blocks")
        original = target.get("message_ts")
        if (body.get("delete_original") or body.get("replace_original")) and original and \
                self.ws.change_ephemeral(user, original, text, blocks, delete=bool(body.get("delete_original"))):
            return  # a click in an ephemeral message: its response_url replaces or deletes that message
        if body.get("delete_original") and original:
            self.ws.delete(channel, original)
        elif body.get("replace_original") and original:
            self.ws.update(channel, original, {"text": text, "blocks": blocks or []})
        elif body.get("response_type") == "in_channel":
            self.ws.post(channel, {"user": self.ws.app.bot_user_id, "bot_id": self.ws.app.bot_id, "text": text,
                                   "blocks": blocks or [], **({"thread_ts": body["thread_ts"]}
                                                              if body.get("thread_ts") else {})})
        elif text or blocks:
            self.ws.add_ephemeral(Ephemeral(channel, user, text, blocks, self.ws.next_ts(), source="response_url"))

    # ---- Socket Mode ------------------------------------------------------------------------------
    async def _socket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.Response(status=401, text="invalid ticket")
        self._tickets.discard(ticket)
        sock = web.WebSocketResponse(autoping=True, heartbeat=None)
        await sock.prepare(request)
        await sock.send_str(json.dumps({"type": "hello", "num_connections": len(self._sockets) + 1,
                                        "debug_info": {"host": "emulator", "approximate_connection_time": 3600},
                                        "connection_info": {"app_id": self.ws.app.app_id}}))
        self._sockets.append(sock)
        try:
            async for msg in sock:
                if msg.type == WSMsgType.TEXT:
                    await self._on_ack(json.loads(msg.data))
                elif msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
        finally:
            if sock in self._sockets:
                self._sockets.remove(sock)
        return sock

    async def _on_ack(self, data: dict[str, Any]) -> None:
        found = self._envelopes.get(str(data.get("envelope_id")))
        if found is None:
            return
        delivery, attempt = found
        if delivery.acked_at is not None or attempt != delivery.attempts:
            return  # an ack for an attempt that was already retried
        sent = delivery.sent_at[-1]
        if self._slow_acks:
            await asyncio.sleep(self._slow_acks)
        if time.monotonic() - sent > self.ack_timeout or attempt != delivery.attempts:
            return  # too late: the timeout already handled it
        self._acked(delivery, data.get("payload"))

    def _acked(self, delivery: Delivery, payload: Any) -> None:
        delivery.acked_at = time.monotonic()
        delivery.ack_payload = payload if isinstance(payload, dict) else None
        refusal = self._ack_refusal(delivery)
        if refusal is not None:
            self._reject(f"ack:{delivery.kind}", refusal)
            delivery.failed = "invalid_command_response" if delivery.kind == "slash_commands" else refusal["error"]
            if delivery.kind == "slash_commands" and delivery.user and delivery.channel:
                command = delivery.payload.get("command", "/rollback")
                self.ws.add_ephemeral(Ephemeral(delivery.channel, delivery.user,
                                                f'{command} failed with the error "{delivery.failed}"',
                                                None, self.ws.next_ts(), source="slack"))
        elif delivery.ack_payload and delivery.kind == "slash_commands" and delivery.user and delivery.channel:
            self._apply_response({"user": delivery.user, "channel": delivery.channel}, delivery.ack_payload)
        elif (delivery.ack_payload and delivery.payload.get("type") == "view_submission"
              and delivery.ack_payload.get("response_action") == "errors"):
            self._reopen_with_errors(str((delivery.payload.get("view") or {}).get("id")),
                                     dict(delivery.ack_payload.get("errors") or {}))
        delivery.done.set()

    def _reopen_with_errors(self, view_id: str, errors: dict[str, Any]) -> None:
        """Slack keeps a form open when the app answers `response_action: errors`, each message under its field."""
        with self.ws._cond:
            for view in self.ws.views:
                if view["id"] == view_id:
                    view["closed"] = False
                    view["errors"] = {str(k): str(v) for k, v in errors.items()}
            self.ws._notify()

    def _ack_refusal(self, delivery: Delivery) -> dict[str, Any] | None:
        """What Slack says about a message (slash command) or view (view_submission) carried by an ack."""
        ack = delivery.ack_payload
        if not ack or not self.validate_blocks:
            return None
        if delivery.kind == "slash_commands":
            problem = block_problems(ack.get("text"), ack.get("blocks"))
            return None if problem is None else {"ok": False, "error": problem.code, **problem.extra}
        if delivery.payload.get("type") == "view_submission" and ack.get("response_action") in ("update", "push"):
            errors = view_errors(ack.get("view"))
            if errors:
                return {"ok": False, "error": "invalid_arguments",
                        "response_metadata": {"messages": [f"[ERROR] {e}" for e in errors]}}
        return None

    def _refused_delivery(self, delivery: Delivery) -> str | None:
        """Why Slack would never send this to the app, given its manifest (None: it would). Records the scopes."""
        manifest, payload = self.manifest, delivery.payload
        if delivery.kind == "slash_commands":
            command = str(payload.get("command"))
            self._used(COMMANDS_SCOPE, command)
            if manifest.commands is not None and command not in manifest.commands:
                return f"command_not_declared:{command}"
            if COMMANDS_SCOPE not in manifest.scopes:
                return f"missing_scope:{COMMANDS_SCOPE}"
        elif delivery.kind == "events_api":
            kind = str((payload.get("event") or {}).get("type"))
            if manifest.bot_events is not None and kind not in manifest.bot_events:
                return f"not_subscribed:{kind}"
            scope = EVENT_SCOPES.get(kind)
            if scope is not None:
                self._used(scope, f"event:{kind}")
                if scope not in manifest.scopes:
                    return f"missing_scope:{scope}"
        elif delivery.kind == "interactive" and not manifest.interactivity:
            return "interactivity_disabled"
        return None

    async def _deliver(self, delivery: Delivery, retry_reason: str = "") -> None:
        if delivery.attempts == 0:
            refused = self._refused_delivery(delivery)
            if refused is not None and self.enforce_manifest:
                self._reject(f"deliver:{delivery.kind}", {"ok": False, "error": refused})
                delivery.failed = refused
                delivery.done.set()
                return
        delivery.attempts += 1
        if self.ws.app.request_url:
            await self._deliver_http(delivery, retry_reason)
            return
        sock = await self._pick_socket()
        if sock is None:
            delivery.failed = "no_socket_connection"
            delivery.done.set()
            return
        envelope_id = delivery.id if delivery.attempts == 1 else f"{delivery.id}-retry{delivery.attempts - 1}"
        self._envelopes[envelope_id] = (delivery, delivery.attempts)
        envelope: dict[str, Any] = {"envelope_id": envelope_id, "type": delivery.kind, "payload": delivery.payload,
                                    "accepts_response_payload": delivery.kind != "events_api"}
        if delivery.kind == "events_api":
            envelope["retry_attempt"] = delivery.attempts - 1
            envelope["retry_reason"] = retry_reason
        delivery.sent_at.append(time.monotonic())
        await sock.send_str(json.dumps(envelope))
        asyncio.get_running_loop().call_later(self.ack_timeout, self._check_ack, delivery, delivery.attempts)

    async def _pick_socket(self, wait: float = 10.0) -> web.WebSocketResponse | None:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            live = [s for s in self._sockets if not s.closed]
            if live:
                return live[next(self._rr) % len(live)]
            await asyncio.sleep(0.02)
        return None

    def _check_ack(self, delivery: Delivery, attempt: int) -> None:
        if delivery.acked_at is not None or delivery.attempts != attempt:
            return
        self._not_acked(delivery, "timeout")

    def _not_acked(self, delivery: Delivery, reason: str) -> None:
        if delivery.kind == "events_api" and delivery.attempts <= self.max_event_retries:
            assert self._loop is not None
            self._loop.create_task(self._deliver(delivery, retry_reason=reason))
            return
        delivery.failed = "operation_timeout" if reason == "timeout" else reason
        if delivery.kind == "slash_commands" and delivery.user and delivery.channel:
            command = delivery.payload.get("command", "/rollback")
            self.ws.add_ephemeral(Ephemeral(delivery.channel, delivery.user,
                                            f'{command} failed with the error "{delivery.failed}"',
                                            None, self.ws.next_ts(), source="slack"))
        delivery.done.set()

    # ---- signed HTTP delivery ---------------------------------------------------------------------
    def sign(self, body: str, timestamp: int | None = None, secret: str | None = None) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        key = (secret or self.ws.app.signing_secret).encode()
        signature = "v0=" + hmac.new(key, f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
        return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}

    def encode_http(self, delivery: Delivery) -> tuple[str, str]:
        if delivery.kind == "slash_commands":
            return urllib.parse.urlencode(delivery.payload), "application/x-www-form-urlencoded"
        if delivery.kind == "interactive":
            body = urllib.parse.urlencode({"payload": json.dumps(delivery.payload)})
            return body, "application/x-www-form-urlencoded"
        return json.dumps(delivery.payload), "application/json"

    async def _deliver_http(self, delivery: Delivery, retry_reason: str, *, headers: dict[str, str] | None = None,
                            body: str | None = None) -> None:
        assert self._http is not None and self.ws.app.request_url
        encoded, content_type = self.encode_http(delivery)
        body = encoded if body is None else body
        sent = {"Content-Type": content_type, **(headers or self.sign(body))}
        if delivery.kind == "events_api" and delivery.attempts > 1:
            sent["X-Slack-Retry-Num"] = str(delivery.attempts - 1)
            sent["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
        delivery.sent_at.append(time.monotonic())
        try:
            async with self._http.post(self.ws.app.request_url, data=body.encode(), headers=sent,
                                       timeout=ClientTimeout(total=self.ack_timeout)) as response:
                delivery.http_status = response.status
                text = await response.text()
        except TimeoutError:
            self._not_acked(delivery, "http_timeout")
            return
        if response.status != 200:
            retry = delivery.kind == "events_api" and delivery.attempts <= self.max_event_retries
            if retry and response.status >= 500:
                await self._deliver(delivery, retry_reason="http_error")
                return
            delivery.failed = f"http_{response.status}"
            delivery.done.set()
            return
        payload: Any = None
        if text:
            try:
                payload = json.loads(text)
            except ValueError:
                payload = {"text": text}
        self._acked(delivery, payload)

    def deliver_raw_http(self, delivery: Delivery, *, headers: dict[str, str], body: str | None = None) -> Delivery:
        """Send one HTTP delivery with exactly these signature headers (for signature tests)."""
        delivery.attempts += 1
        self._submit(self._deliver_http(delivery, "", headers=headers, body=body))
        return delivery
