"""The emulator's Web API (``POST /api/<method>``): Slack's methods, and Slack's refusals.

Every call goes through the same gate, in Slack's order: injected faults (``fail_next``), the token
(``not_authed`` / ``invalid_auth``), the method (``unknown_method``), the rate limit (HTTP 429
``ratelimited`` with ``Retry-After``), the scope (``missing_scope`` with ``needed`` and ``provided``),
then the method's own checks. Every answer carries ``x-oauth-scopes`` (the scopes granted) and
``x-accepted-oauth-scopes`` (the ones the method takes), as Slack's do.

The method's own checks, beyond finding things: channel membership (``not_in_channel``, or
``channel_not_found`` for ``chat.postEphemeral`` and for private channels the bot is not in; posting
into a public channel the bot is not in needs ``chat:write.public``), Block Kit
(``invalid_blocks`` with Slack's ``errors`` list, or ``invalid_arguments`` with
``response_metadata.messages`` for views), ``msg_too_long`` past 40,000 characters of ``text``,
message metadata (``invalid_metadata_format`` / ``invalid_metadata_schema``), trigger ids
(``invalid_trigger_id``, ``expired_trigger_id`` after 3 s, ``exchanged_trigger_id`` when used twice),
and the plan (``plan_upgrade_required`` for user groups on the Free plan).

Methods: auth.test, chat.postMessage, chat.update, chat.postEphemeral, chat.getPermalink,
conversations.history, conversations.replies, conversations.info, reactions.add, users.info, users.list,
usergroups.list, usergroups.users.list, views.open, views.update, files.getUploadURLExternal,
files.completeUploadExternal, apps.connections.open.

Over 300 lines: one short handler per Slack method, kept together like Slack's own method list.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import json
import logging
import secrets
import threading
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web

from bot.dev.emulator.blockkit import is_block_list, message_errors, view_errors
from bot.dev.emulator.policy import (
    METHODS,
    PUBLIC_POST_SCOPE,
    UNLISTED_HISTORY_LIMIT,
    AppManifest,
    ByChannel,
    tier_for,
)
from bot.dev.emulator.ratelimit import Clock, RateLimiter
from bot.dev.emulator.workspace import Channel, Ephemeral, Workspace, ts_key

log = logging.getLogger("bot.emulator")

#: Slack: "Provide no more than 40,000 characters or risk truncation"; past that, ``msg_too_long``.
MAX_TEXT = 40_000
HISTORY_DEFAULT_LIMIT, HISTORY_MAX_LIMIT = 100, 999


class ApiError(Exception):
    """A Web API refusal: ``{"ok": false, "error": code, **extra}`` with HTTP ``status``."""

    def __init__(self, code: str, status: int = 200, **extra: Any) -> None:
        super().__init__(code)
        self.code, self.status, self.extra = code, status, extra


@dataclass
class Fault:
    status: int
    retry_after: int | None = None


@dataclass
class Trigger:
    user: str
    issued: float
    used: bool = False


@dataclass
class Rejection:
    """A call the emulator refused (as Slack would have): what, why, and Slack's details."""

    method: str
    error: str
    detail: dict[str, Any] = field(default_factory=dict)


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true")


def _cursor(ts: str) -> str:
    return base64.b64encode(f"next_ts:{ts}".encode()).decode()


def _uncursor(cursor: str) -> tuple[int, int]:
    try:
        decoded = base64.b64decode(cursor.encode(), validate=True).decode()
        if not decoded.startswith("next_ts:"):
            raise ValueError(decoded)
        return ts_key(decoded.removeprefix("next_ts:"))
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise ApiError("invalid_cursor") from error


def api_message(message: dict[str, Any], *, metadata: bool) -> dict[str, Any]:
    """A stored message as the Web API shows it (metadata only when asked for)."""
    shown = {k: v for k, v in message.items() if k not in ("updates", "metadata")}
    if not shown.get("reactions"):
        shown.pop("reactions", None)
    if shown.get("reply_count"):
        shown["thread_ts"] = shown["ts"]
    if metadata and message.get("metadata"):
        shown["metadata"] = message["metadata"]
    return shown


def block_problems(text: Any, blocks: Any) -> ApiError | None:
    """What Slack says about a message's ``text`` and ``blocks`` (None: acceptable)."""
    if blocks not in (None, "", []):
        if not is_block_list(blocks):
            return ApiError("invalid_blocks_format")
        errors = message_errors(blocks)
        if errors:
            return ApiError("invalid_blocks", errors=errors,
                            response_metadata={"messages": [f"[ERROR] {e}" for e in errors]})
    if isinstance(text, str) and len(text) > MAX_TEXT:
        return ApiError("msg_too_long")
    return None


class WebApi:
    """Mixed into ``Emulator``: the Web API routes, its gate and its methods."""

    ws: Workspace
    manifest: AppManifest
    host: str
    rejections: list[Rejection]
    connections_opened: int
    _faults: dict[str, deque[Fault]]
    _slow_calls: dict[str, float]
    _late: tuple[float, str | None]
    _hidden_until: dict[tuple[str, str], float]
    _outages: dict[str, tuple[float, Fault]]
    _lock: threading.Lock
    _ids: itertools.count[int]
    _tickets: set[str]
    _triggers: dict[str, Trigger]
    _clock: Clock
    _limiter: RateLimiter | None
    _scope_uses: dict[str, set[str]]
    enforce_scopes: bool
    enforce_membership: bool
    validate_blocks: bool
    trigger_ttl: float | None
    distribution: str
    post_message_burst: int

    @property
    def url(self) -> str:
        raise NotImplementedError

    @property
    def port(self) -> int:
        raise NotImplementedError

    # ---- what was used, what was refused --------------------------------------------------------------
    def scopes_used(self) -> set[str]:
        """Every scope a call (or a delivered event) has needed so far: the least a manifest can ask for."""
        with self._lock:
            return set(self._scope_uses)

    def scope_uses(self) -> dict[str, set[str]]:
        """Scope -> the methods (and events) that needed it."""
        with self._lock:
            return {scope: set(users) for scope, users in self._scope_uses.items()}

    def _used(self, scope: str, by: str) -> None:
        with self._lock:
            self._scope_uses.setdefault(scope, set()).add(by)

    def _reject(self, method: str, body: dict[str, Any]) -> None:
        detail = {k: v for k, v in body.items() if k not in ("ok", "error")}
        self.rejections.append(Rejection(method, str(body.get("error")), detail))
        log.warning("the emulated Slack refused %s: %s %s", method, body.get("error"),
                    json.dumps(detail)[:500] if detail else "")

    # ---- the gate -----------------------------------------------------------------------------------------
    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                body = await request.json()
                params.update(body if isinstance(body, dict) else {})
            else:
                params.update(dict(await request.post()))
        for key in ("blocks", "attachments", "view", "files", "metadata"):
            if isinstance(params.get(key), str) and params[key]:
                try:
                    params[key] = json.loads(params[key])
                except ValueError:
                    pass
        return params

    def _headers(self, method: str) -> dict[str, str]:
        spec = METHODS.get(method)
        if spec is not None and spec.app_token:
            return {"x-oauth-scopes": str(spec.scope), "x-accepted-oauth-scopes": str(spec.scope)}
        accepted = "" if spec is None or spec.scope is None else (
            ",".join(spec.scope.all()) if isinstance(spec.scope, ByChannel) else spec.scope)
        return {"x-oauth-scopes": self.manifest.header, "x-accepted-oauth-scopes": accepted}

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        headers = self._headers(method)
        with self._lock:
            fault = self._faults.get(method, deque()).popleft() if self._faults.get(method) else None
            outage = self._outages.get(method)
            if fault is None and outage is not None and self._clock() < outage[0]:
                fault = outage[1]
        self.ws.record_call(method, {k: v for k, v in params.items() if k != "token"})
        if fault is not None:
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
            error = "ratelimited" if fault.status == 429 else "internal_error"
            return web.json_response({"ok": False, "error": error}, status=fault.status, headers=headers)
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else str(params.get("token", ""))
        spec = METHODS.get(method)
        expected = self.ws.app.app_token if spec is not None and spec.app_token else self.ws.app.bot_token
        if token != expected:
            return web.json_response({"ok": False, "error": "invalid_auth" if token else "not_authed"},
                                     headers=headers)
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None or spec is None:
            return web.json_response({"ok": False, "error": "unknown_method", "method": method}, headers=headers)
        wait = self._rate_limited(method, params)
        if wait is not None:
            body = {"ok": False, "error": "ratelimited"}
            self._reject(method, {**body, "retry_after": wait})
            return web.json_response(body, status=429, headers={**headers, "Retry-After": str(wait)})
        slow = self._slow_calls.get(method)
        if slow:
            await asyncio.sleep(slow)  # a slow answer (``slow_calls``); what it says is read after the wait
        try:
            self._check_scope(method, params)
            result = handler(params)
        except ApiError as error:
            body = {"ok": False, "error": error.code, **error.extra}
            self._reject(method, body)
            return web.json_response(body, status=error.status, headers=headers)
        return web.json_response({"ok": True, **result}, headers=headers)

    def _rate_limited(self, method: str, params: dict[str, Any]) -> int | None:
        tier = tier_for(method, self.distribution)
        if self._limiter is None or tier is None:
            return None
        if tier.per_channel:
            return self._limiter.take(f"{method}:{params.get('channel')}", replace(tier, burst=self.post_message_burst))
        return self._limiter.take(method, tier)

    def _check_scope(self, method: str, params: dict[str, Any]) -> None:
        spec = METHODS[method]
        if spec.scope is None or spec.app_token:
            return
        if isinstance(spec.scope, ByChannel):
            channel = self.ws.channels.get(str(params.get("channel") or ""))
            known = channel is not None and channel.visible_to_bot
            accepted = [spec.scope.private if channel.is_private else spec.scope.public] \
                if known and channel is not None else spec.scope.all()
        else:
            known, accepted = True, [spec.scope]
        granted = [s for s in accepted if s in self.manifest.scopes]
        if not granted:
            if self.enforce_scopes:
                raise ApiError("missing_scope", needed=",".join(accepted), provided=self.manifest.header)
            granted = accepted
        if known:
            self._used(granted[0], method)

    # ---- helpers ------------------------------------------------------------------------------------------
    def _conversation(self, params: dict[str, Any], key: str = "channel") -> Channel:
        channel = self.ws.channels.get(str(params.get(key) or ""))
        if channel is None or (self.enforce_membership and not channel.visible_to_bot):
            raise ApiError("channel_not_found")
        return channel

    def _member(self, channel: Channel, error: str = "not_in_channel") -> None:
        if self.enforce_membership and not channel.is_member:
            raise ApiError(error)

    def _check_content(self, params: dict[str, Any]) -> None:
        if self.validate_blocks:
            problem = block_problems(params.get("text"), params.get("blocks"))
            if problem is not None:
                raise problem

    @staticmethod
    def _metadata(params: dict[str, Any]) -> dict[str, Any] | None:
        """The ``metadata`` argument: None when absent, {} to clear, else ``{event_type, event_payload}``."""
        if "metadata" not in params or params["metadata"] in (None, ""):
            return None
        metadata = params["metadata"]
        if not isinstance(metadata, dict):
            raise ApiError("invalid_metadata_format")
        if not metadata:
            return {}
        if not isinstance(metadata.get("event_type"), str) or not metadata["event_type"] \
                or not isinstance(metadata.get("event_payload"), dict):
            raise ApiError("invalid_metadata_schema")
        return {"event_type": metadata["event_type"], "event_payload": metadata["event_payload"]}

    def _bot_message(self, params: dict[str, Any]) -> dict[str, Any]:
        app = self.ws.app
        message: dict[str, Any] = {"user": app.bot_user_id, "bot_id": app.bot_id, "app_id": app.app_id,
                                   "text": params.get("text") or "", "blocks": params.get("blocks") or []}
        if not message["text"] and not message["blocks"]:
            raise ApiError("no_text")
        if params.get("thread_ts"):
            message["thread_ts"] = str(params["thread_ts"])
        metadata = self._metadata(params)
        if metadata:
            message["metadata"] = metadata
        return message

    def _history_limit(self, params: dict[str, Any]) -> int:
        default, maximum = HISTORY_DEFAULT_LIMIT, HISTORY_MAX_LIMIT
        if self.distribution == "unlisted":
            default = maximum = UNLISTED_HISTORY_LIMIT
        try:
            limit = int(params.get("limit") or default)
        except (TypeError, ValueError):
            limit = default
        return max(1, min(limit, maximum)) if limit > 0 else default

    def _paged(self, messages: list[dict[str, Any]], params: dict[str, Any], *, newest_first: bool,
              keep_first: bool = False) -> dict[str, Any]:
        """Slack's time window (oldest, latest, inclusive) and cursor paging over ``messages``."""
        inclusive = _flag(params.get("inclusive"))
        bounds = {}
        for name in ("oldest", "latest"):
            value = params.get(name)
            if value not in (None, ""):
                try:
                    bounds[name] = ts_key(str(value))
                except ValueError as error:
                    raise ApiError(f"invalid_ts_{name}") from error

        def within(message: dict[str, Any]) -> bool:
            key = ts_key(message["ts"])
            if "oldest" in bounds and not (key > bounds["oldest"] or (inclusive and key == bounds["oldest"])):
                return False
            return "latest" not in bounds or key < bounds["latest"] or (inclusive and key == bounds["latest"])

        chosen = [m for i, m in enumerate(messages) if (keep_first and i == 0) or within(m)]
        start = 0
        if params.get("cursor"):
            at = _uncursor(str(params["cursor"]))
            start = next((i for i, m in enumerate(chosen)
                          if (ts_key(m["ts"]) <= at if newest_first else ts_key(m["ts"]) >= at)), len(chosen))
        limit = self._history_limit(params)
        page, rest = chosen[start:start + limit], chosen[start + limit:]
        metadata = _flag(params.get("include_all_metadata"))
        answer: dict[str, Any] = {"messages": [api_message(m, metadata=metadata) for m in page],
                                  "has_more": bool(rest)}
        if rest:
            answer["response_metadata"] = {"next_cursor": _cursor(rest[0]["ts"])}
        for name in ("oldest", "latest"):
            if name in bounds:
                answer[name] = str(params[name])
        return answer

    # ---- methods --------------------------------------------------------------------------------------------
    def _m_auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        app = self.ws.app
        return {"url": f"{self.url}/", "team": self.ws.team_domain, "user": "rollback-bot", "team_id": self.ws.team_id,
                "user_id": app.bot_user_id, "bot_id": app.bot_id, "is_enterprise_install": False}

    def _m_chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._conversation(params)
        if self.enforce_membership and not channel.is_member:
            if channel.is_private or PUBLIC_POST_SCOPE not in self.manifest.scopes:
                raise ApiError("not_in_channel")
            self._used(PUBLIC_POST_SCOPE, "chat.postMessage")
        self._check_content(params)
        message = self.ws.post(channel.id, self._bot_message(params))
        with self._lock:
            late, where = self._late
            if late > 0 and where in (None, channel.id):
                self._hidden_until[(channel.id, message["ts"])] = self._clock() + late
        return {"channel": channel.id, "ts": message["ts"], "message": api_message(message, metadata=True)}

    def _recorded(self, channel: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """What history shows: without the messages Slack has not recorded yet (``record_late``)."""
        now = self._clock()
        with self._lock:
            return [m for m in messages if self._hidden_until.get((channel, m["ts"]), 0.0) <= now]

    def _m_chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._conversation(params)
        self._member(channel)
        self._check_content(params)
        if self.ws.message(channel.id, str(params.get("ts"))) is None:
            raise ApiError("message_not_found")
        changes: dict[str, Any] = {"text": params.get("text") or "", "blocks": params.get("blocks") or []}
        if not changes["text"] and not changes["blocks"]:
            raise ApiError("no_text")
        metadata = self._metadata(params)
        if metadata is not None:
            changes["metadata"] = metadata or None  # {} removes it; absent keeps it
        message = self.ws.update(channel.id, str(params.get("ts")), changes)
        if message is None:
            raise ApiError("message_not_found")
        return {"channel": channel.id, "ts": message["ts"], "text": message["text"],
                "message": api_message(message, metadata=True)}

    def _m_chat_postEphemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._conversation(params)
        self._member(channel, "channel_not_found")
        user = str(params.get("user") or "")
        if user not in self.ws.users:
            raise ApiError("user_not_found")
        self._check_content(params)
        if not params.get("text") and not params.get("blocks"):
            raise ApiError("no_text")
        ts = self.ws.next_ts()
        self.ws.add_ephemeral(Ephemeral(channel.id, user, params.get("text") or "", params.get("blocks"), ts,
                                        params.get("thread_ts")))
        return {"message_ts": ts}

    def _m_chat_getPermalink(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._conversation(params)
        ts = str(params.get("message_ts") or "")
        if self.ws.message(channel.id, ts) is None:
            raise ApiError("message_not_found")
        return {"channel": channel.id, "permalink": f"{self.url}/archives/{channel.id}/p{ts.replace('.', '')}"}

    def _m_conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._conversation(params)
        self._member(channel)
        newest_first = list(reversed(self._recorded(channel.id, self.ws.top_level(channel.id))))
        return {**self._paged(newest_first, params, newest_first=True), "pin_count": 0,
                "channel_actions_ts": None, "channel_actions_count": 0}

    def _m_conversations_replies(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._conversation(params)
        self._member(channel)
        found = self.ws.message(channel.id, str(params.get("ts") or ""))
        if found is None:
            raise ApiError("thread_not_found")
        root_ts = str(found.get("thread_ts") or found["ts"])
        root = self.ws.message(channel.id, root_ts) or found
        replies = sorted(self._recorded(channel.id, self.ws.thread(channel.id, root_ts)), key=lambda m: ts_key(m["ts"]))
        return self._paged([root, *replies], params, newest_first=False, keep_first=True)

    def _m_conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"channel": self._conversation(params).to_api()}

    def _m_reactions_add(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._conversation(params)
        ts = str(params.get("timestamp") or "")
        if self.ws.message(channel.id, ts) is None:
            raise ApiError("message_not_found")
        if not self.ws.react(channel.id, ts, str(params.get("name")), self.ws.app.bot_user_id):
            raise ApiError("already_reacted")
        return {}

    def _m_users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = self.ws.users.get(str(params.get("user")))
        if user is None:
            raise ApiError("user_not_found")
        return {"user": user.to_api(self.ws.team_id)}

    def _m_users_list(self, params: dict[str, Any]) -> dict[str, Any]:
        """Paginated like Slack's: `limit` (default 100, at most 1000) and `cursor`."""
        users = sorted(self.ws.users.values(), key=lambda u: u.id)
        start = int(str(params.get("cursor") or "0") or 0)
        limit = max(1, min(int(params.get("limit") or 100), 1000))
        page = users[start:start + limit]
        cursor = str(start + limit) if start + limit < len(users) else ""
        return {"members": [u.to_api(self.ws.team_id) for u in page],
                "response_metadata": {"next_cursor": cursor}}

    def _m_usergroups_list(self, params: dict[str, Any]) -> dict[str, Any]:
        if not self.ws.has_usergroups:
            raise ApiError("plan_upgrade_required")
        return {"usergroups": [{"id": g.id, "team_id": self.ws.team_id, "is_usergroup": True, "handle": g.handle,
                                "name": g.name, "user_count": len(g.users),
                                **({"users": list(g.users)} if _flag(params.get("include_users")) else {})}
                               for g in self.ws.groups.values()]}

    def _m_usergroups_users_list(self, params: dict[str, Any]) -> dict[str, Any]:
        if not self.ws.has_usergroups:
            raise ApiError("plan_upgrade_required")
        group = self.ws.groups.get(str(params.get("usergroup")))
        if group is None:
            raise ApiError("no_such_subteam")
        return {"users": list(group.users)}

    def _view_arguments(self, view: Any) -> dict[str, Any]:
        errors = view_errors(view) if self.validate_blocks else ([] if isinstance(view, dict) else ["no view"])
        if errors:
            raise ApiError("invalid_arguments", response_metadata={"messages": [f"[ERROR] {e}" for e in errors]})
        assert isinstance(view, dict)
        return view

    def _m_views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        trigger_id = str(params.get("trigger_id") or "")
        if not trigger_id:
            raise ApiError("invalid_arguments",
                           response_metadata={"messages": ["[ERROR] missing required field: trigger_id"]})
        trigger = self._triggers.get(trigger_id)
        if trigger is None:
            raise ApiError("invalid_trigger_id")
        if trigger.used:
            raise ApiError("exchanged_trigger_id")
        if self.trigger_ttl is not None and self._clock() - trigger.issued > self.trigger_ttl:
            raise ApiError("expired_trigger_id")
        view = self._view_arguments(params.get("view"))
        trigger.used = True
        view = {**view, "id": f"V{next(self._ids):08d}", "team_id": self.ws.team_id, "app_id": self.ws.app.app_id,
                "bot_id": self.ws.app.bot_id, "hash": secrets.token_hex(6), "state": {"values": {}},
                "trigger_id": trigger_id, "user": trigger.user}
        self.ws.add_view(view)
        return {"view": {k: v for k, v in view.items() if k not in ("trigger_id", "user")}}

    def _m_views_update(self, params: dict[str, Any]) -> dict[str, Any]:
        old = self.ws.view(str(params.get("view_id") or "") or None, str(params.get("external_id") or "") or None)
        if old is None or old.get("closed"):
            raise ApiError("not_found")
        if params.get("hash") and params["hash"] != old.get("hash"):
            raise ApiError("hash_conflict")
        view = self._view_arguments(params.get("view"))
        updated = self.ws.replace_view(old["id"], {**view, "team_id": self.ws.team_id, "app_id": self.ws.app.app_id,
                                                   "bot_id": self.ws.app.bot_id, "hash": secrets.token_hex(6),
                                                   "state": {"values": {}}})
        assert updated is not None
        return {"view": {k: v for k, v in updated.items() if k not in ("trigger_id", "user")}}

    def _m_files_getUploadURLExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = f"F{next(self._ids):08d}"
        self.ws.files[file_id] = {"id": file_id, "name": params.get("filename"), "content": b""}
        return {"upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    def _m_files_completeUploadExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        files = params.get("files") or []
        channel = None
        if params.get("channel_id"):
            channel = self._conversation(params, "channel_id")
            self._member(channel)
        done = []
        for item in files:
            stored = self.ws.files.get(item["id"])
            if stored is None:
                raise ApiError("file_not_found")
            stored["title"] = item.get("title")
            done.append({"id": item["id"], "title": item.get("title"), "name": stored["name"]})
            if channel is not None:
                self.ws.post(channel.id, {"user": self.ws.app.bot_user_id, "bot_id": self.ws.app.bot_id,
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
