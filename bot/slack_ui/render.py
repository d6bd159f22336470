"""Render ``templates/`` with Jinja2 (StrictUndefined) into Slack mrkdwn or plain text.

StrictUndefined: a missing value is a bug, never an empty string. HTML autoescape would be the wrong
escaping for Slack; the ``slack`` filter applies Slack's own (``bot.slack_ui.escape``), and templates
for Slack pass every value through it (or ``mrkdwn``/``who``/``slack_date``, which escape too).
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from bot.clock import to_iso
from bot.resources import templates_dir
from bot.slack_ui.escape import code, date, escape, link, mrkdwn, person, recorded

if TYPE_CHECKING:  # Jinja2 is imported with the first message rendered: an idle bot has no need of it
    from jinja2 import Environment


def utc(moment: datetime | None, missing: str = "not yet") -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else missing


@lru_cache(maxsize=1)
def environment() -> Environment:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(
        loader=FileSystemLoader(str(templates_dir())),
        undefined=StrictUndefined,
        autoescape=False,  # noqa: S701 - Slack's escaping is applied by the filters; see the module docstring
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters.update(slack=escape, slack_date=date, who=person, mrkdwn=mrkdwn, code=code, utc=utc, iso=to_iso,
                       recorded=recorded,
                       link=lambda url, label: link(url, label))
    return env


def render(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context).strip()
