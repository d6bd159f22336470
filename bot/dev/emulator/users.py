"""The users' side of the emulator: what people in the workspace do, and the tools that let them.

Each action (a slash command, a click, a filled-in modal, a mention, a reaction) becomes a
``Delivery`` of Slack's real payload to the app. The same actions are reachable from Python (tests),
from the control API under ``/_emulator`` (tools, the terminal prompt) and from the browser page at
``/`` that ``make local`` opens. ``Emulator`` (bot.dev.emulator.server) supplies the transport.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.dev.emulator.ratelimit import Clock
from bot.dev.emulator.webapi import Trigger
from bot.dev.emulator.workspace import Workspace

WEB = Path(__file__).resolve().parent / "web"


@dataclass
class Delivery:
    """One request Slack sends the app (slash command, interaction or event), across its attempts."""

    id: str
    kind: str  # slash_commands | interactive | events_api
    payload: dict[str, Any]
    user: str | None = None
    channel: str | None = None
    attempts: int = 0
    sent_at: list[float] = field(default_factory=list)
    acked_at: float | None = None
    ack_payload: dict[str, Any] | None = None
    http_status: int | None = None
    failed: str | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def ack_latency(self) -> float | None:
        return None if self.acked_at is None else self.acked_at - self.sent_at[-1]

    def wait(self, timeout: float = 10.0) -> Delivery:
        if not self.done.wait(timeout):
            raise TimeoutError(f"{self.kind} {self.id} was not acknowledged within {timeout}s")
        return self



class UserSide:
    """Mixed into ``Emulator``, which provides these attributes and the two transport methods."""

    ws: Workspace
    deliveries: dict[str, Delivery]
    ack_timeout: float
    _loop: asyncio.AbstractEventLoop | None
    _ids: itertools.count[int]
    _triggers: dict[str, Trigger]
    _clock: Clock

    async def _deliver(self, delivery: Delivery, retry_reason: str = "") -> None:
        raise NotImplementedError

    def _new_response_url(self, user: str, channel: str, message_ts: str | None = None) -> str:
        raise NotImplementedError

    # ---- what users do ----------------------------------------------------------------------------
    def _new_delivery(self, kind: str, payload: dict[str, Any], user: str | None, channel: str | None) -> Delivery:
        delivery = Delivery(id=secrets.token_hex(8), kind=kind, payload=payload, user=user, channel=channel)
        self.deliveries[delivery.id] = delivery
        return delivery

    def send(self, delivery: Delivery) -> Delivery:
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(self._deliver(delivery), self._loop)
        return delivery

    def slash_payload(self, user: str, channel: str, text: str, command: str = "/rollback") -> dict[str, Any]:
        u, c = self.ws.user_by_name(user), self.ws.channel_by_name(channel)
        return {"token": "emulator-verification-token", "team_id": self.ws.team_id,
                "team_domain": self.ws.team_domain, "channel_id": c.id, "channel_name": c.name, "user_id": u.id,
                "user_name": u.name, "command": command, "text": text, "api_app_id": self.ws.app.app_id,
                "is_enterprise_install": "false", "response_url": self._new_response_url(u.id, c.id),
                "trigger_id": self._trigger(u.id)}

    def slash(self, user: str, channel: str, text: str, command: str = "/rollback", *, send: bool = True) -> Delivery:
        """`user` types `command text` in `channel` (names or ids)."""
        payload = self.slash_payload(user, channel, text, command)
        delivery = self._new_delivery("slash_commands", payload, payload["user_id"], payload["channel_id"])
        return self.send(delivery) if send else delivery

    def click(self, user: str, channel: str, message_ts: str, action_id: str, *,
              selected: list[str] | None = None, value: str | None = None, send: bool = True) -> Delivery:
        """`user` clicks a button (or sets checkboxes / a select) in a message."""
        u, c = self.ws.user_by_name(user), self.ws.channel_by_name(channel)
        message = self.ws.message(c.id, message_ts)
        ephemeral = message is None and next((e for e in self.ws.ephemerals_for(u.id, c.id) if e.ts == message_ts),
                                             None)
        if ephemeral:  # a button in a message only this user sees
            message = {"type": "message", "ts": ephemeral.ts, "text": ephemeral.text, "blocks": ephemeral.blocks}
        if message is None:
            raise KeyError(f"no message {message_ts} in {channel}")
        block_id, element = _find_element(message.get("blocks") or [], action_id)
        action: dict[str, Any] = {"action_id": action_id, "block_id": block_id, "type": element["type"],
                                  "action_ts": f"{time.time():.6f}"}
        if element["type"] == "button":
            action["value"] = value if value is not None else element.get("value", "")
            action["text"] = element.get("text")
        elif element["type"] in ("checkboxes", "multi_static_select"):
            chosen = set(selected or [])
            action["selected_options"] = [o for o in element.get("options", []) if o["value"] in chosen]
        elif element["type"] in ("static_select", "overflow", "radio_buttons"):
            option = next(o for o in element.get("options", []) if o["value"] == value)
            action["selected_option"] = option
        payload = {
            "type": "block_actions", "token": "emulator-verification-token", "api_app_id": self.ws.app.app_id,
            "user": {"id": u.id, "username": u.name, "name": u.name, "team_id": self.ws.team_id},
            "team": {"id": self.ws.team_id, "domain": self.ws.team_domain},
            "container": {"type": "message", "message_ts": message_ts, "channel_id": c.id,
                          "is_ephemeral": bool(ephemeral)},
            "channel": {"id": c.id, "name": c.name}, **({} if ephemeral else {"message": message}),
            "trigger_id": self._trigger(u.id),
            "response_url": self._new_response_url(u.id, c.id, message_ts), "actions": [action],
            "state": {"values": {}},
        }
        delivery = self._new_delivery("interactive", payload, u.id, c.id)
        return self.send(delivery) if send else delivery

    def _trigger(self, user_id: str) -> str:
        """A trigger_id for an interaction by `user_id`; a modal opened with it shows to that user.

        Like Slack's, it opens one view, within 3 seconds of the interaction (``trigger_ttl``)."""
        trigger = f"{next(self._ids)}.{secrets.randbelow(10**10)}.{secrets.token_hex(16)}"
        self._triggers[trigger] = Trigger(user_id, self._clock())
        return trigger

    def close_view(self, view_id: str) -> None:
        with self.ws._cond:
            for view in self.ws.views:
                if view["id"] == view_id:
                    view["closed"] = True
            self.ws._notify()

    def submit_view(self, user: str, view_id: str, values: dict[str, str | list[str] | None], *,
                    send: bool = True) -> Delivery:
        """`user` fills in the open modal `view_id` ({block_id: text, option value or [values]}) and submits it."""
        u = self.ws.user_by_name(user)
        view = next((v for v in self.ws.views if v["id"] == view_id), None)
        if view is None:
            raise KeyError(f"no open view {view_id}")
        state: dict[str, dict[str, Any]] = {}
        for block in view.get("blocks", []):
            if block.get("type") != "input":
                continue
            element, value = block["element"], values.get(block["block_id"])
            if element["type"] == "plain_text_input":
                entry: dict[str, Any] = {"type": "plain_text_input", "value": value}
            elif element["type"] == "static_select":
                chosen = next((o for o in element.get("options", []) if o["value"] == value), None)
                entry = {"type": "static_select", "selected_option": chosen}
            elif element["type"] in ("checkboxes", "multi_static_select"):
                picked = set(value or [])
                entry = {"type": element["type"],
                         "selected_options": [o for o in element.get("options", []) if o["value"] in picked]}
            else:
                raise ValueError(f"the emulator cannot fill a {element['type']}")
            state[block["block_id"]] = {element["action_id"]: entry}
        payload = {
            "type": "view_submission", "token": "emulator-verification-token", "api_app_id": self.ws.app.app_id,
            "team": {"id": self.ws.team_id, "domain": self.ws.team_domain},
            "user": {"id": u.id, "username": u.name, "name": u.name, "team_id": self.ws.team_id},
            "trigger_id": self._trigger(u.id),
            "view": {**view, "state": {"values": state}, "hash": secrets.token_hex(6)},
            "response_urls": [],
        }
        self.close_view(view_id)
        delivery = self._new_delivery("interactive", payload, u.id, None)
        return self.send(delivery) if send else delivery

    def event_payload(self, event: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
        return {"token": "emulator-verification-token", "team_id": self.ws.team_id, "api_app_id": self.ws.app.app_id,
                "event": event, "type": "event_callback", "event_id": event_id or f"Ev{secrets.token_hex(8).upper()}",
                "event_time": int(time.time()), "event_context": secrets.token_hex(8),
                "authorizations": [{"team_id": self.ws.team_id, "user_id": self.ws.app.bot_user_id, "is_bot": True,
                                    "is_enterprise_install": False}]}

    def mention(self, user: str, channel: str, text: str, *, send: bool = True) -> Delivery:
        """`user` posts a message mentioning the bot; the bot receives `app_mention`."""
        u, c = self.ws.user_by_name(user), self.ws.channel_by_name(channel)
        full = f"<@{self.ws.app.bot_user_id}> {text}"
        message = self.ws.post(c.id, {"user": u.id, "text": full})
        event = {"type": "app_mention", "user": u.id, "text": full, "ts": message["ts"], "channel": c.id,
                 "event_ts": message["ts"]}
        delivery = self._new_delivery("events_api", self.event_payload(event), u.id, c.id)
        return self.send(delivery) if send else delivery

    def react(self, user: str, channel: str, ts: str, name: str, *, added: bool = True, send: bool = True) -> Delivery:
        """`user` adds (or removes) the reaction `name` on a message; the bot gets reaction_added/removed."""
        u, c = self.ws.user_by_name(user), self.ws.channel_by_name(channel)
        message = self.ws.message(c.id, ts)
        if message is None:
            raise KeyError(f"no message {ts} in {channel}")
        self.ws.react(c.id, ts, name, u.id, add=added)
        event = {"type": "reaction_added" if added else "reaction_removed", "user": u.id, "reaction": name,
                 "item": {"type": "message", "channel": c.id, "ts": ts}, "item_user": message.get("user"),
                 "event_ts": f"{time.time():.6f}"}
        delivery = self._new_delivery("events_api", self.event_payload(event), u.id, c.id)
        return self.send(delivery) if send else delivery

    def post_as(self, user: str, channel: str, text: str, thread_ts: str | None = None) -> dict[str, Any]:
        u, c = self.ws.user_by_name(user), self.ws.channel_by_name(channel)
        return self.ws.post(c.id, {"user": u.id, "text": text, **({"thread_ts": thread_ts} if thread_ts else {})})

    # ---- the page (make local): a Slack-like workspace in the browser, no CDN ---------------------------
    async def _page(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(WEB / "index.html", headers={"Cache-Control": "no-store"})

    async def _web(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in ("app.js", "style.css", "favicon.svg"):
            return web.Response(status=404)
        return web.FileResponse(WEB / name, headers={"Cache-Control": "no-store"})

    async def _favicon(self, request: web.Request) -> web.StreamResponse:
        """Where a browser looks for the icon when a page names none (the page names favicon.svg)."""
        return web.FileResponse(WEB / "favicon.svg", headers={"Content-Type": "image/svg+xml"})

    async def _file(self, request: web.Request) -> web.Response:
        stored = self.ws.files.get(request.match_info["file_id"])
        if stored is None:
            return web.Response(status=404)
        name = str(stored.get("name") or "file")
        kind = "image/png" if name.endswith(".png") else "text/plain; charset=utf-8"
        return web.Response(body=stored.get("content") or b"", content_type=kind.split(";")[0],
                            charset="utf-8" if "charset" in kind else None)

    # ---- control API for tools (same operations as the Python API) --------------------------------
    async def _control_state(self, request: web.Request) -> web.Response:
        def state() -> dict[str, Any]:
            ws = self.ws
            return {"team": {"id": ws.team_id, "domain": ws.team_domain},
                    "users": [u.__dict__ for u in ws.users.values()],
                    "channels": [c.__dict__ for c in ws.channels.values()],
                    "messages": {c: ws.channel_messages(c, include_replies=True) for c in ws.channels},
                    "ephemerals": [e.__dict__ for e in ws.ephemerals_for()],
                    "groups": [g.__dict__ for g in ws.groups.values()],
                    "views": [v for v in ws.views if not v.get("closed")],
                    "bot": {"user_id": ws.app.bot_user_id, "name": "rollback-bot"}}

        return web.json_response(await asyncio.get_running_loop().run_in_executor(None, state))

    async def _control(self, request: web.Request) -> web.Response:
        body = await request.json()
        action = request.match_info["action"]
        try:
            if action == "slash":
                delivery = self.slash(body["user"], body["channel"], body.get("text", ""),
                                      body.get("command", "/rollback"), send=False)
            elif action == "mention":
                delivery = self.mention(body["user"], body["channel"], body.get("text", ""), send=False)
            elif action == "react":
                delivery = self.react(body["user"], body["channel"], body["ts"], body["name"],
                                      added=body.get("added", True), send=False)
            elif action == "post":
                message = self.post_as(body["user"], body["channel"], body["text"], body.get("thread_ts"))
                return web.json_response({"ok": True, "ts": message["ts"]})
            elif action == "close_view":
                self.close_view(body["view_id"])
                return web.json_response({"ok": True})
            elif action in ("click", "submit"):
                call = (lambda: self.click(body["user"], body["channel"], body["ts"], body["action_id"],
                                           selected=body.get("selected"), value=body.get("value"))) \
                    if action == "click" else (lambda: self.submit_view(body["user"], body["view_id"],
                                                                       body.get("values") or {}))
                sent = await asyncio.get_running_loop().run_in_executor(None, call)
                await asyncio.get_running_loop().run_in_executor(None, sent.done.wait, self.ack_timeout + 1)
                return web.json_response({"ok": sent.failed is None, "delivery": sent.id, "failed": sent.failed})
            else:
                return web.json_response({"ok": False, "error": f"unknown action {action}"}, status=404)
        except KeyError as error:
            return web.json_response({"ok": False, "error": str(error)}, status=400)
        await self._deliver(delivery)
        await asyncio.get_running_loop().run_in_executor(None, delivery.done.wait, self.ack_timeout + 1)
        answer = {"ok": delivery.failed is None, "delivery": delivery.id, "failed": delivery.failed}
        return web.json_response(answer)


def _find_element(blocks: list[dict[str, Any]], action_id: str) -> tuple[str, dict[str, Any]]:
    for block in blocks:
        candidates = list(block.get("elements") or [])
        if block.get("accessory"):
            candidates.append(block["accessory"])
        for element in candidates:
            if element.get("action_id") == action_id:
                return str(block.get("block_id", "")), element
    raise KeyError(f"no element with action_id {action_id!r} in the message")
