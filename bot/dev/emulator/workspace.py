"""The emulated workspace: users, channels, user groups, messages, ephemerals, views and files.

Thread-safe: the server's event loop writes, tests and tools read from other threads, and
``wait_for`` lets them block until something the bot does shows up.

The seed (``seed.yml``) also says which channels are private (``is_private``) and which ones the
bot is a member of (``is_member``, default true), and which plan the workspace is on (``plan``:
on ``free`` there are no user groups, as on Slack's Free plan; ``features: {usergroups: false}``
does the same on any plan).

Over 300 lines: the workspace's state and its one lock belong together.
"""

from __future__ import annotations

import copy
import itertools
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


def ts_key(ts: str) -> tuple[int, int]:
    """Slack timestamps ("1712345678.000123") as comparable numbers; ValueError if it is not one."""
    seconds, _, fraction = str(ts).partition(".")
    if not seconds.isdigit() or (fraction and not fraction.isdigit()) or len(fraction) > 6:
        raise ValueError(f"not a Slack timestamp: {ts!r}")
    return int(seconds), int(fraction.ljust(6, "0") or 0)

DEFAULT_SEED = Path(__file__).with_name("seed.yml")


@dataclass
class User:
    id: str
    name: str
    real_name: str
    title: str = ""
    is_bot: bool = False

    def to_api(self, team_id: str) -> dict[str, Any]:
        return {"id": self.id, "team_id": team_id, "name": self.name, "real_name": self.real_name,
                "is_bot": self.is_bot, "deleted": False, "tz": "UTC",
                "profile": {"real_name": self.real_name, "display_name": self.name, "title": self.title}}


@dataclass
class Channel:
    id: str
    name: str
    topic: str = ""
    is_private: bool = False
    is_member: bool = True  # is the bot in it

    def to_api(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "is_channel": not self.is_private, "is_group": self.is_private,
                "is_im": False, "is_mpim": False, "is_private": self.is_private, "is_archived": False,
                "is_general": self.name == "general", "topic": {"value": self.topic}, "is_member": self.is_member}

    @property
    def visible_to_bot(self) -> bool:
        """A private channel the bot is not in does not exist as far as the bot can tell."""
        return self.is_member or not self.is_private


@dataclass
class UserGroup:
    id: str
    handle: str
    name: str
    users: list[str]


@dataclass
class Ephemeral:
    channel: str
    user: str
    text: str
    blocks: list[dict[str, Any]] | None
    ts: str
    thread_ts: str | None = None
    source: str = "chat.postEphemeral"


@dataclass
class AppCredentials:
    app_id: str
    bot_user_id: str
    bot_id: str
    bot_token: str
    app_token: str
    signing_secret: str
    request_url: str | None = None  # set: HTTP delivery; None: Socket Mode


@dataclass
class Workspace:
    team_id: str
    team_domain: str
    users: dict[str, User]
    channels: dict[str, Channel]
    groups: dict[str, UserGroup]
    app: AppCredentials
    plan: str = "pro"
    features: dict[str, bool] = field(default_factory=dict)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    ephemerals: list[Ephemeral] = field(default_factory=list)
    views: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # ---- loading ---------------------------------------------------------------------------------
    @classmethod
    def from_seed(cls, path: Path | None = None) -> Workspace:
        data = yaml.safe_load((path or DEFAULT_SEED).read_text(encoding="utf-8"))
        team = data["team"]
        users = {u["id"]: User(**u) for u in data["users"]}
        bot = data["app"]
        users[bot["bot_user_id"]] = User(id=bot["bot_user_id"], name=bot["name"], real_name=bot["name"], is_bot=True)
        return cls(
            team_id=team["id"], team_domain=team["domain"], users=users,
            channels={c["id"]: Channel(**c) for c in data["channels"]},
            groups={g["id"]: UserGroup(**g) for g in data.get("usergroups", [])},
            app=AppCredentials(
                app_id=bot["app_id"], bot_user_id=bot["bot_user_id"], bot_id=bot["bot_id"],
                bot_token=bot.get("bot_token") or f"xoxb-emulator-{secrets.token_hex(12)}",
                app_token=bot.get("app_token") or f"xapp-1-emulator-{secrets.token_hex(12)}",
                signing_secret=bot.get("signing_secret") or secrets.token_hex(16),
            ),
            plan=str(data.get("plan") or "pro"),
            features={str(k): bool(v) for k, v in (data.get("features") or {}).items()},
        )

    @property
    def has_usergroups(self) -> bool:
        """User groups need a paid plan (Slack: "only available on Standard and above plans")."""
        return self.features.get("usergroups", self.plan != "free")

    # ---- writing (the server calls these) ---------------------------------------------------------
    def next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    def _notify(self) -> None:
        self._cond.notify_all()

    def post(self, channel: str, message: dict[str, Any]) -> dict[str, Any]:
        with self._cond:
            message = {"type": "message", "ts": self.next_ts(), **message}
            message.setdefault("reactions", [])
            self.messages.setdefault(channel, []).append(message)
            if message.get("thread_ts") and message["thread_ts"] != message["ts"]:
                parent = self._find(channel, message["thread_ts"])
                if parent is not None:
                    parent["reply_count"] = parent.get("reply_count", 0) + 1
            self._notify()
            return copy.deepcopy(message)

    def update(self, channel: str, ts: str, changes: dict[str, Any]) -> dict[str, Any] | None:
        with self._cond:
            message = self._find(channel, ts)
            if message is None:
                return None
            for key, value in changes.items():
                if value is None:
                    message.pop(key, None)  # e.g. chat.update with metadata {} removes it
                else:
                    message[key] = value
            message["edited"] = {"ts": self.next_ts()}
            message["updates"] = message.get("updates", 0) + 1
            self._notify()
            return copy.deepcopy(message)

    def delete(self, channel: str, ts: str) -> bool:
        with self._cond:
            found = self._find(channel, ts)
            if found is None:
                return False
            self.messages[channel].remove(found)
            self._notify()
            return True

    def add_ephemeral(self, ephemeral: Ephemeral) -> None:
        with self._cond:
            self.ephemerals.append(ephemeral)
            self._notify()

    def change_ephemeral(self, user: str, ts: str, text: str | None, blocks: list[dict[str, Any]] | None, *,
                         delete: bool = False) -> bool:
        """Replace (or delete) the ephemeral ``ts`` shown to ``user``: what a ``response_url`` of a click in it
        can do, and nothing else can (``chat.update`` does not reach ephemeral messages)."""
        with self._cond:
            found = next((e for e in self.ephemerals if e.user == user and e.ts == ts), None)
            if found is None:
                return False
            if delete:
                self.ephemerals.remove(found)
            else:
                found.text, found.blocks = text or "", blocks or []
            self._notify()
            return True

    def react(self, channel: str, ts: str, name: str, user: str, add: bool = True) -> bool:
        with self._cond:
            message = self._find(channel, ts)
            if message is None:
                return False
            reactions: list[dict[str, Any]] = message.setdefault("reactions", [])
            entry = next((r for r in reactions if r["name"] == name), None)
            if add:
                if entry is None:
                    entry = {"name": name, "users": [], "count": 0}
                    reactions.append(entry)
                if user in entry["users"]:
                    return False
                entry["users"].append(user)
            else:
                if entry is None or user not in entry["users"]:
                    return False
                entry["users"].remove(user)
                if not entry["users"]:
                    reactions.remove(entry)
            if entry in reactions:
                entry["count"] = len(entry["users"])
            self._notify()
            return True

    def record_call(self, method: str, params: dict[str, Any]) -> None:
        with self._cond:
            self.calls.append((method, params))
            self._notify()

    def add_view(self, view: dict[str, Any]) -> None:
        with self._cond:
            self.views.append(view)
            self._notify()

    def replace_view(self, view_id: str, view: dict[str, Any]) -> dict[str, Any] | None:
        with self._cond:
            for i, old in enumerate(self.views):
                if old["id"] == view_id:
                    self.views[i] = {**view, "id": view_id, "user": old.get("user"),
                                     "trigger_id": old.get("trigger_id")}
                    self._notify()
                    return copy.deepcopy(self.views[i])
            return None

    def view(self, view_id: str | None = None, external_id: str | None = None) -> dict[str, Any] | None:
        with self._cond:
            for view in self.views:
                if (view_id and view["id"] == view_id) or (external_id and view.get("external_id") == external_id):
                    return copy.deepcopy(view)
            return None

    def _find(self, channel: str, ts: str) -> dict[str, Any] | None:
        return next((m for m in self.messages.get(channel, []) if m["ts"] == ts), None)

    # ---- reading -------------------------------------------------------------------------------------
    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        with self._cond:
            found = self._find(channel, ts)
            return copy.deepcopy(found) if found else None

    def channel_messages(self, channel: str, *, include_replies: bool = False) -> list[dict[str, Any]]:
        with self._cond:
            return [copy.deepcopy(m) for m in self.messages.get(channel, [])
                    if include_replies or not m.get("thread_ts") or m["thread_ts"] == m["ts"]]

    def top_level(self, channel: str) -> list[dict[str, Any]]:
        """The channel's messages that are not thread replies, oldest first."""
        with self._cond:
            found = [copy.deepcopy(m) for m in self.messages.get(channel, [])
                     if not m.get("thread_ts") or m["thread_ts"] == m["ts"]]
        return sorted(found, key=lambda m: ts_key(m["ts"]))

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        with self._cond:
            return [copy.deepcopy(m) for m in self.messages.get(channel, [])
                    if m.get("thread_ts") == ts and m["ts"] != ts]

    def ephemerals_for(self, user: str | None = None, channel: str | None = None) -> list[Ephemeral]:
        with self._cond:
            return [copy.deepcopy(e) for e in self.ephemerals
                    if (user is None or e.user == user) and (channel is None or e.channel == channel)]

    def all_text(self) -> str:
        """Everything the bot ever showed anyone: messages, edits, ephemerals, views, files."""
        import json

        with self._cond:
            return json.dumps([self.messages, [e.__dict__ for e in self.ephemerals], self.views,
                               self.files, [c for c in self.calls if c[0].startswith(("chat.", "views.", "files."))]],
                              default=str)

    def wait_for(self, probe: Callable[[], T | None], timeout: float = 10.0, what: str = "condition") -> T:
        """Block until ``probe()`` returns something truthy; raise TimeoutError naming ``what``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = probe()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
                self._cond.wait(min(remaining, 0.25))

    def user_by_name(self, name: str) -> User:
        for user in self.users.values():
            if name in (user.id, user.name):
                return user
        raise KeyError(f"no user {name!r} in the emulated workspace")

    def channel_by_name(self, name: str) -> Channel:
        for channel in self.channels.values():
            if name.lstrip("#") in (channel.id, channel.name):
                return channel
        raise KeyError(f"no channel {name!r} in the emulated workspace")
