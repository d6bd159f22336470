"""Text the domain hands to people, as data: plain words plus a few typed parts.

Neither the domain nor the ops adapters write Slack markup. A sentence is a :data:`Rich` tuple of parts: plain strings
(anything, including what people typed), :class:`Code` (a commit, a path, a command), :class:`Em`
(emphasis), :class:`Person`, :class:`Link`, :class:`ChannelRef` and :class:`When` (a moment each reader
sees in their own time zone). The presenter (``bot.slack_ui``) renders parts into Slack mrkdwn with one
escaping function; :func:`plain` renders them for records, logs, e-mail and the postmortem.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple


class Code(NamedTuple):
    text: str


class Em(NamedTuple):
    text: str


class Person(NamedTuple):
    """A user id (``U…``), a user-group mention handle (``@group``/``S…``), or ``bot`` for the bot itself."""

    user: str


class Link(NamedTuple):
    url: str
    label: str


class ChannelRef(NamedTuple):
    channel: str


class When(NamedTuple):
    moment: datetime | None
    missing: str = "not yet"


Part = str | Code | Em | Person | Link | ChannelRef | When
Rich = tuple[Part, ...]


def rich(*parts: Part | Rich) -> Rich:
    """Join parts (and whole Rich values) into one Rich sentence."""
    out: list[Part] = []
    for part in parts:
        if isinstance(part, tuple) and not isinstance(part, (Code, Em, Person, Link, ChannelRef, When)):
            out.extend(part)
        else:
            out.append(part)
    return tuple(out)


def join(items: Sequence[Rich | Part], separator: str = ", ") -> Rich:
    out: list[Part] = []
    for index, item in enumerate(items):
        if index:
            out.append(separator)
        out.extend(rich(item))
    return tuple(out)


def plain(text: Rich | str) -> str:
    """Words only: for stored summaries, logs, e-mail and the postmortem."""
    if isinstance(text, str):
        return text
    out = []
    for part in text:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, (Code, Em)):
            out.append(part.text)
        elif isinstance(part, Person):
            out.append("the bot" if part.user == "bot" else part.user)
        elif isinstance(part, Link):
            out.append(part.label)
        elif isinstance(part, ChannelRef):
            out.append(part.channel)
        else:
            out.append(part.moment.strftime("%Y-%m-%d %H:%M:%S UTC") if part.moment else part.missing)
    return "".join(out)
