"""The one place Slack markup is written from data: escaping, mentions, links, dates.

Every piece of text that reaches Slack goes through :func:`escape` (Slack's own rule: ``&``, ``<`` and
``>``) unless it is a mention, link or date this module builds itself from a validated id or URL. So a
reason, a path, a form field or an error that contains ``<!channel>`` or ``<https://x|y>`` shows as text.
"""

from __future__ import annotations

import re
from datetime import datetime

from bot.text import ChannelRef, Code, Em, Link, Person, Rich, When

USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
SAFE_URL = re.compile(r"^https?://[^\s<>|]+$")


def escape(text: object) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


IDS_IN_TEXT = re.compile(r"\b[UW][A-Z0-9]{8,}\b")


def recorded(text: object) -> str:
    """A line the bot recorded (``Commander handed over from U0… to U0…``), escaped, with each user id shown as
    the person (Slack draws their name), never as a bare id."""
    return IDS_IN_TEXT.sub(lambda m: f"<@{m.group(0)}>", escape(text))


def code(text: str) -> str:
    """A code span; backticks inside cannot end it early."""
    inner = escape(text).replace("`", "ˋ")
    if "\n" in inner:
        return f"```{inner}```"
    return f"`{inner}`" if inner else "``"


def person(user: str) -> str:
    if user == "bot":
        return "the bot"
    if user.startswith("subteam:") and GROUP_ID.match(user.removeprefix("subteam:")):
        return f"<!subteam^{user.removeprefix('subteam:')}>"
    if USER_ID.match(user):
        return f"<@{user}>"
    return escape(user)


def link(url: str | None, label: str) -> str:
    if url and SAFE_URL.match(url):
        return f"<{url}|{escape(label).replace('|', '¦')}>"
    return escape(label)


def channel(channel_id: str) -> str:
    return f"<#{channel_id}>" if CHANNEL_ID.match(channel_id) else escape(channel_id)


def date(moment: datetime | None, missing: str = "not yet") -> str:
    """Slack's date formatting: each reader sees their own local time; the fallback is UTC."""
    if moment is None:
        return escape(missing)
    epoch = int(moment.timestamp())
    fallback = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"<!date^{epoch}^{{date_short_pretty}} {{time_secs}}|{fallback}>"


def clock(moment: datetime | None, missing: str = "—") -> str:
    """A time of day in each reader's local time (for compact lines; `date` for the full date)."""
    if moment is None:
        return escape(missing)
    return f"<!date^{int(moment.timestamp())}^{{time}}|{moment.strftime('%H:%M UTC')}>"


def mrkdwn(text: Rich | str) -> str:
    """Render domain text (plain words and typed parts) as Slack mrkdwn."""
    if isinstance(text, str):
        return escape(text)
    out = []
    for part in text:
        if isinstance(part, str):
            out.append(escape(part))
        elif isinstance(part, Code):
            out.append(code(part.text))
        elif isinstance(part, Em):
            out.append(f"*{escape(part.text)}*")
        elif isinstance(part, Person):
            out.append(person(part.user))
        elif isinstance(part, Link):
            out.append(link(part.url, part.label))
        elif isinstance(part, ChannelRef):
            out.append(channel(part.channel))
        elif isinstance(part, When):
            out.append(date(part.moment, part.missing))
    return "".join(out)


def plain_text(text: str, limit: int) -> str:
    """For plain_text fields (header, button, option): no escaping in Slack's sense, only a length."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
