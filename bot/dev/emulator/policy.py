"""What the emulated app may do: the scopes and rate tier of every Web API method, in one table,
and the app's manifest (its bot scopes, event subscriptions and slash commands).

The table follows each method's reference page on docs.slack.dev ("Scopes" and "Rate Limits" facts):

=============================  =====================================  ============================
method                          bot scope                              rate limit
=============================  =====================================  ============================
auth.test                       none                                   special (Tier 4 numbers here)
chat.postMessage                chat:write (+ chat:write.public to     special: ~1/s per channel
                                post in a public channel the bot is
                                not in)
chat.update                     chat:write                             Tier 3
chat.postEphemeral              chat:write                             Tier 4
chat.getPermalink               none                                   special (Tier 4 numbers here)
conversations.history           channels:history / groups:history      Tier 3 (internal apps)
conversations.replies           channels:history / groups:history      Tier 3 (internal apps)
conversations.info              channels:read / groups:read            Tier 3
usergroups.list                 usergroups:read                        Tier 2
usergroups.users.list           usergroups:read                        Tier 2
users.info                      users:read                             Tier 4
reactions.add                   reactions:write                        Tier 3
files.getUploadURLExternal      files:write                            Tier 4
files.completeUploadExternal    files:write                            Tier 4
views.open / views.update       none (a valid trigger / view id)       Tier 4
apps.connections.open           connections:write (app-level token)    Tier 3
=============================  =====================================  ============================

``public / private`` means the scope depends on the conversation: ``channels:*`` for a public
channel, ``groups:*`` for a private one. Since 29 May 2025 ``conversations.history`` and
``conversations.replies`` are limited to 1 request a minute and 15 messages a page for commercially
distributed apps outside the Marketplace; Marketplace and internal customer-built apps keep Tier 3.
``Emulator(distribution="unlisted")`` plays the former.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.dev.emulator.ratelimit import POST_MESSAGE, TIER1, TIER2, TIER3, TIER4, Tier


@dataclass(frozen=True)
class ByChannel:
    """A scope that depends on the kind of conversation."""

    public: str
    private: str

    def all(self) -> list[str]:
        return [self.public, self.private]


Scope = str | ByChannel | None


@dataclass(frozen=True)
class Method:
    scope: Scope
    tier: Tier
    app_token: bool = False  # called with the app-level token (xapp-), not the bot token


METHODS: dict[str, Method] = {
    "auth.test": Method(None, TIER4),
    "chat.postMessage": Method("chat:write", POST_MESSAGE),
    "chat.update": Method("chat:write", TIER3),
    "chat.postEphemeral": Method("chat:write", TIER4),
    "chat.getPermalink": Method(None, TIER4),
    "conversations.history": Method(ByChannel("channels:history", "groups:history"), TIER3),
    "conversations.replies": Method(ByChannel("channels:history", "groups:history"), TIER3),
    "conversations.info": Method(ByChannel("channels:read", "groups:read"), TIER3),
    "usergroups.list": Method("usergroups:read", TIER2),
    "usergroups.users.list": Method("usergroups:read", TIER2),
    "users.info": Method("users:read", TIER4),
    "users.list": Method("users:read", TIER2),
    "reactions.add": Method("reactions:write", TIER3),
    "files.getUploadURLExternal": Method("files:write", TIER4),
    "files.completeUploadExternal": Method("files:write", TIER4),
    "views.open": Method(None, TIER4),
    "views.update": Method(None, TIER4),
    "apps.connections.open": Method("connections:write", TIER3, app_token=True),
}

#: What a commercially distributed app outside the Marketplace gets for history reads: 1 a minute, 15 a page.
UNLISTED_HISTORY_TIER, UNLISTED_HISTORY_LIMIT = TIER1, 15
HISTORY_METHODS = ("conversations.history", "conversations.replies")

#: The bot scope Slack needs before it delivers each kind of event to the app.
EVENT_SCOPES = {"app_mention": "app_mentions:read", "reaction_added": "reactions:read",
                "reaction_removed": "reactions:read", "message": "channels:history"}
COMMANDS_SCOPE = "commands"
PUBLIC_POST_SCOPE = "chat:write.public"


def tier_for(method: str, distribution: str) -> Tier | None:
    spec = METHODS.get(method)
    if spec is None:
        return None
    if distribution == "unlisted" and method in HISTORY_METHODS:
        return UNLISTED_HISTORY_TIER
    return spec.tier


@dataclass(frozen=True)
class AppManifest:
    """The parts of a Slack app manifest the emulator enforces. None: not checked."""

    scopes: frozenset[str]
    bot_events: frozenset[str] | None = None
    commands: frozenset[str] | None = None
    interactivity: bool = True
    source: str = "scopes"

    @classmethod
    def load(cls, path: Path) -> AppManifest:
        data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        scopes = ((data.get("oauth_config") or {}).get("scopes") or {}).get("bot") or []
        settings = data.get("settings") or {}
        events = (settings.get("event_subscriptions") or {}).get("bot_events") or []
        commands = [c.get("command") for c in (data.get("features") or {}).get("slash_commands") or []]
        interactive = bool((settings.get("interactivity") or {}).get("is_enabled", False))
        return cls(frozenset(str(s) for s in scopes), frozenset(str(e) for e in events),
                   frozenset(str(c) for c in commands if c), interactive, str(path))

    @property
    def header(self) -> str:
        """The ``x-oauth-scopes`` header: the granted scopes, comma-separated."""
        return ",".join(sorted(self.scopes))


def default_manifest() -> AppManifest:
    from bot.resources import manifest_path

    return AppManifest.load(manifest_path())
