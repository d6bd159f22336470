"""Render templates/ with Jinja2 into Slack text.

StrictUndefined: a missing value is a bug, never an empty string. Slack's own escaping (& < >)
is applied by the `slack` filter; HTML autoescape would be the wrong escaping for Slack.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from bot.clock import to_iso
from bot.resources import templates_dir


def slack_escape(value: Any) -> str:
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_date(moment: datetime | None, missing: str = "not yet") -> str:
    """Slack's date formatting: each reader sees their own local time; the fallback is UTC."""
    if moment is None:
        return missing
    epoch = int(moment.timestamp())
    fallback = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"<!date^{epoch}^{{date_short_pretty}} {{time_secs}}|{fallback}>"


def who(actor: str) -> str:
    """A Slack mention for people; the bot's own actions say so in words."""
    return "the bot" if actor == "bot" else f"<@{actor}>"


def utc(moment: datetime | None, missing: str = "not yet") -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else missing


@lru_cache(maxsize=1)
def environment() -> Environment:
    # Slack text, escaped by the `slack` filter; HTML autoescape would be the wrong escaping here.
    env = Environment(
        loader=FileSystemLoader(str(templates_dir())),
        undefined=StrictUndefined,
        autoescape=False,  # noqa: S701
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["slack"] = slack_escape
    env.filters["slack_date"] = slack_date
    env.filters["utc"] = utc
    env.filters["who"] = who
    env.filters["iso"] = to_iso
    return env


def render(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context).strip()
