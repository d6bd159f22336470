"""A local stand-in for Slack, speaking Slack's wire formats over real sockets.

- Web API: ``POST /api/<method>`` (form or JSON bodies, bearer tokens), with injectable faults.
- Socket Mode: ``apps.connections.open`` hands out a ``ws://`` URL; the WebSocket says ``hello``,
  carries envelopes, expects an ack within the ack timeout, redelivers unacked events with
  ``retry_attempt``, and can be told to send ``disconnect``.
- HTTP delivery: signed requests (``X-Slack-Signature`` v0) to a request URL, with
  ``X-Slack-Retry-Num`` redelivery of events.
- ``response_url`` endpoints. What users do (and the control API and browser page that let tools and
  people do it) is in ``bot.emulator.users``.
"""

from __future__ import annotations

import asyncio
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, ClientTimeout, WSMsgType, web

from bot.emulator.users import Delivery, UserSide
from bot.emulator.workspace import Ephemeral, Workspace

log = logging.getLogger(__name__)


@dataclass
class Fault:
    status: int
    retry_after: int | None = None


class Emulator(UserSide):
    """Start with ``Emulator().start()``; ``close()`` stops the server and its thread."""

    def __init__(self, seed: Path | None = None, *, host: str = "127.0.0.1", port: int = 0,
                 ack_timeout: float = 3.0, max_event_retries: int = 3, workspace: Workspace | None = None) -> None:
        self.ws = workspace or Workspace.from_seed(seed)
        self.host, self._port = host, port
        self.ack_timeout = ack_timeout
        self.max_event_retries = max_event_retries
        self.deliveries: dict[str, Delivery] = {}
        self._faults: dict[str, deque[Fault]] = {}
        self._slow_acks: float = 0.0
        self._tickets: set[str] = set()
        self._sockets: list[web.WebSocketResponse] = []
        self._rr = itertools.count()
        self._response_urls: dict[str, dict[str, Any]] = {}
        self._envelopes: dict[str, tuple[Delivery, int]] = {}
        self._ids = itertools.count(1)
        self._triggers: dict[str, str] = {}
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

    def slow_acks(self, seconds: float) -> None:
        """Hold every ack this long before counting it (makes acks late without touching the bot)."""
        self._slow_acks = seconds

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

    # ---- Web API ----------------------------------------------------------------------------------
    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                body = await request.json()
                params.update(body if isinstance(body, dict) else {})
            else:
                params.update(dict(await request.post()))
        for key in ("blocks", "attachments", "view", "files", "metadata"):
            if isinstance(params.get(key), str):
                try:
                    params[key] = json.loads(params[key])
                except ValueError:
                    pass
        return params

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        with self._lock:
            fault = self._faults.get(method, deque()).popleft() if self._faults.get(method) else None
        self.ws.record_call(method, {k: v for k, v in params.items() if k != "token"})
        if fault is not None:
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            error = "ratelimited" if fault.status == 429 else "internal_error"
            return web.json_response({"ok": False, "error": error}, status=fault.status, headers=headers)
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else str(params.get("token", ""))
        expected = self.ws.app.app_token if method == "apps.connections.open" else self.ws.app.bot_token
        if token != expected:
            return web.json_response({"ok": False, "error": "invalid_auth" if token else "not_authed"})
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method", "method": method})
        try:
            result = handler(params)
        except ApiError as error:
            return web.json_response({"ok": False, "error": error.code})
        return web.json_response({"ok": True, **result})

    def _channel(self, params: dict[str, Any], key: str = "channel") -> str:
        channel = str(params.get(key) or "")
        if channel not in self.ws.channels:
            raise ApiError("channel_not_found")
        return channel

    def _bot_message(self, params: dict[str, Any]) -> dict[str, Any]:
        app = self.ws.app
        message: dict[str, Any] = {"user": app.bot_user_id, "bot_id": app.bot_id, "app_id": app.app_id,
                                   "text": params.get("text") or "", "blocks": params.get("blocks") or []}
        if not message["text"] and not message["blocks"]:
            raise ApiError("no_text")
        if params.get("thread_ts"):
            message["thread_ts"] = str(params["thread_ts"])
        return message

    def _m_auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        app = self.ws.app
        return {"url": f"{self.url}/", "team": self.ws.team_domain, "user": "rollback-bot", "team_id": self.ws.team_id,
                "user_id": app.bot_user_id, "bot_id": app.bot_id, "is_enterprise_install": False}

    def _m_chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        message = self.ws.post(channel, self._bot_message(params))
        return {"channel": channel, "ts": message["ts"], "message": message}

    def _m_chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        changes = {"text": params.get("text") or "", "blocks": params.get("blocks") or []}
        message = self.ws.update(channel, str(params.get("ts")), changes)
        if message is None:
            raise ApiError("message_not_found")
        return {"channel": channel, "ts": message["ts"], "text": message["text"], "message": message}

    def _m_chat_postEphemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        user = str(params.get("user") or "")
        if user not in self.ws.users:
            raise ApiError("user_not_found")
        ts = self.ws.next_ts()
        self.ws.add_ephemeral(Ephemeral(channel, user, params.get("text") or "", params.get("blocks"), ts,
                                        params.get("thread_ts")))
        return {"message_ts": ts}

    def _m_chat_getPermalink(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        ts = str(params.get("message_ts") or "")
        if self.ws.message(channel, ts) is None:
            raise ApiError("message_not_found")
        return {"channel": channel, "permalink": f"{self.url}/archives/{channel}/p{ts.replace('.', '')}"}

    def _m_reactions_add(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        if not self.ws.react(channel, str(params.get("timestamp")), str(params.get("name")), self.ws.app.bot_user_id):
            raise ApiError("already_reacted")
        return {}

    def _m_users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = self.ws.users.get(str(params.get("user")))
        if user is None:
            raise ApiError("user_not_found")
        return {"user": user.to_api(self.ws.team_id)}

    def _m_conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"channel": self.ws.channels[self._channel(params)].to_api()}

    def _m_usergroups_list(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"usergroups": [{"id": g.id, "handle": g.handle, "name": g.name, "user_count": len(g.users)}
                               for g in self.ws.groups.values()]}

    def _m_usergroups_users_list(self, params: dict[str, Any]) -> dict[str, Any]:
        group = self.ws.groups.get(str(params.get("usergroup")))
        if group is None:
            raise ApiError("no_such_subteam")
        return {"users": list(group.users)}

    def _m_views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        view = params.get("view")
        if not isinstance(view, dict) or not params.get("trigger_id"):
            raise ApiError("invalid_arguments")
        view = {**view, "id": f"V{next(self._ids):08d}", "trigger_id": params["trigger_id"],
                "user": self._triggers.get(str(params["trigger_id"]))}
        self.ws.add_view(view)
        return {"view": view}

    def _m_files_getUploadURLExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = f"F{next(self._ids):08d}"
        self.ws.files[file_id] = {"id": file_id, "name": params.get("filename"), "content": b""}
        return {"upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    def _m_files_completeUploadExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        files = params.get("files") or []
        done = []
        for item in files:
            stored = self.ws.files.get(item["id"])
            if stored is None:
                raise ApiError("file_not_found")
            stored["title"] = item.get("title")
            done.append({"id": item["id"], "title": item.get("title"), "name": stored["name"]})
            channel = params.get("channel_id")
            if channel:
                self.ws.post(str(channel), {"user": self.ws.app.bot_user_id, "bot_id": self.ws.app.bot_id,
                                            "text": params.get("initial_comment") or "", "files": [done[-1]],
                                            **({"thread_ts": params["thread_ts"]} if params.get("thread_ts") else {})})
        return {"files": done}

    def _m_apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        ticket = secrets.token_hex(8)
        self._tickets.add(ticket)
        self.connections_opened += 1
        return {"url": f"ws://{self.host}:{self.port}/link/?ticket={ticket}&app_id={self.ws.app.app_id}"}

    async def _upload(self, request: web.Request) -> web.Response:
        stored = self.ws.files.get(request.match_info["file_id"])
        if stored is None:
            return web.Response(status=404)
        stored["content"] = await request.read()
        return web.Response(text="OK - uploaded")

    # ---- response_url -----------------------------------------------------------------------------
    def _new_response_url(self, user: str, channel: str, message_ts: str | None = None) -> str:
        token = secrets.token_hex(10)
        self._response_urls[token] = {"user": user, "channel": channel, "message_ts": message_ts}
        return f"{self.url}/respond/{token}"

    async def _respond(self, request: web.Request) -> web.Response:
        target = self._response_urls.get(request.match_info["token"])
        if target is None:
            return web.json_response({"ok": False, "error": "expired_url"}, status=404)
        body = await request.json()
        self._apply_response(target, body)
        return web.json_response({"ok": True})

    def _apply_response(self, target: dict[str, Any], body: dict[str, Any]) -> None:
        channel, user = target["channel"], target["user"]
        text, blocks = body.get("text") or "", body.get("blocks")
        if body.get("delete_original") and target.get("message_ts"):
            self.ws.delete(channel, target["message_ts"])
        elif body.get("replace_original") and target.get("message_ts"):
            self.ws.update(channel, target["message_ts"], {"text": text, "blocks": blocks or []})
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
        if delivery.ack_payload and delivery.kind == "slash_commands" and delivery.user and delivery.channel:
            self._apply_response({"user": delivery.user, "channel": delivery.channel}, delivery.ack_payload)
        delivery.done.set()

    async def _deliver(self, delivery: Delivery, retry_reason: str = "") -> None:
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


class ApiError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code
