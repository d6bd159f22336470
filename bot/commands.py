"""The `/rollback` subcommands: their usage, and parsing of what people type."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.errors import BadInput, quote
from bot.ids import SLASH_COMMAND, Subcommand

MAX_TEXT = 500


@dataclass(frozen=True)
class Usage:
    name: Subcommand
    usage: str
    summary: str


CATALOG: list[Usage] = [
    Usage(Subcommand.START, "start [reason] [--detected <time>]",
          "open a rollback incident in this channel and post its control panel "
          "(<time>: 14:05 or 2026-02-07T14:05Z in UTC, or 20m ago)"),
    Usage(Subcommand.STATUS, "status [RB-0007]", "show the incident's timeline with real times"),
    Usage(Subcommand.BACKUP, "backup", "runbook step 1: record the commit, dump every tenant database, save pm2 "
                                       "logs and .env; counts verified"),
    Usage(Subcommand.REVERT, "revert [commit] | revert --safe [commit…]",
          "step 2: reset the code to the rollback target (default from the config); uncommitted work is stashed "
          "first. `--safe`: `git revert` the commits as new ones instead, no history rewritten"),
    Usage(Subcommand.REBUILD, "rebuild", "step 3: `yarn build` (clean install and build again if it fails)"),
    Usage(Subcommand.RESTART, "restart", "step 4: `pm2 restart` each app and wait until it is online"),
    Usage(Subcommand.VERIFY, "verify", "step 5: health endpoint, core endpoints and pm2 error logs"),
    Usage(Subcommand.CLEANUP, "cleanup", "step 6, the danger zone: dry run per tenant, then a second approver "
                                         "must react to the request; needs a verified backup"),
    Usage(Subcommand.RESTORE, "restore <tenant|all>", "undo the cleanup from this incident's backup (same "
                                                      "two-person rule)"),
    Usage(Subcommand.COMMS, "comms [edit]", "preview the next stakeholder update privately (with a button to post "
                                            "it now); `edit` fills in impact, next steps and ETA"),
    Usage(Subcommand.RCA, "rca", "record the root-cause analysis (the runbook's questions, in a form)"),
    Usage(Subcommand.CLOSE, "close [--force <reason>]", "check the success criteria and close: final update, "
                                                        "prevention follow-ups, postmortem"),
    Usage(Subcommand.FLAG, "flag NAME=value | flag undo", "safer alternative: set a feature flag in `.env` "
                                                            "(backed up first), then restart and verify"),
    Usage(Subcommand.PARTIAL, "partial <path> [commit]", "safer alternative: one file back from a commit, then "
                                                         "rebuild, restart, verify"),
    Usage(Subcommand.HOTFIX, "hotfix <name> | hotfix ship", "forward fix: a `hotfix/<name>` branch from HEAD; "
                                                            "`ship` builds, restarts and verifies it"),
    Usage(Subcommand.HEALTH, "health", "the latest scheduled check results and a latency chart"),
    Usage(Subcommand.HELP, "help", "list the subcommands (add `--again` to a step to repeat one that succeeded)"),
]


def usage_text() -> str:
    return "Usage: " + " | ".join(f"`{SLASH_COMMAND} {u.usage}`" for u in CATALOG)


@dataclass(frozen=True)
class Parsed:
    sub: Subcommand
    args: list[str] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)


_OPTIONS = {Subcommand.START: {"--detected"}, Subcommand.CLOSE: {"--force"}}
_FLAGS = {sub: {"--again"} for sub in (Subcommand.BACKUP, Subcommand.REVERT, Subcommand.REBUILD,
                                       Subcommand.RESTART, Subcommand.VERIFY)}
_FLAGS[Subcommand.REVERT] = {"--again", "--safe"}


def parse(text: str) -> Parsed:
    """Split `/rollback` text into a subcommand, its words and its --options. Never runs anything."""
    text = (text or "").strip()
    if len(text) > MAX_TEXT:
        raise BadInput(f"That command is {len(text)} characters long; the limit is {MAX_TEXT}.",
                       hint=usage_text())
    if not text:
        return Parsed(Subcommand.HELP)
    try:
        words = shlex.split(text)
    except ValueError:
        raise BadInput("I could not read that command: a quote is not closed.", hint=usage_text()) from None
    head, rest = words[0].lower(), words[1:]
    try:
        sub = Subcommand(head)
    except ValueError:
        raise BadInput(f"`{quote(head)}` is not a {SLASH_COMMAND} subcommand.", hint=usage_text()) from None
    allowed = _OPTIONS.get(sub, set())
    flags = _FLAGS.get(sub, set())
    args: list[str] = []
    options: dict[str, str] = {}
    i = 0
    while i < len(rest):
        word = rest[i]
        if word in flags:
            options[word] = "yes"
        elif word.startswith("--") or (flags and word.startswith("-")):
            name = word.split("=", 1)[0]
            if name not in allowed:
                raise BadInput(f"`{quote(name)}` is not an option of `{SLASH_COMMAND} {sub}`.", hint=usage_for(sub))
            if "=" in word:
                options[name] = word.split("=", 1)[1]
            elif i + 1 < len(rest):
                options[name] = rest[i + 1]
                i += 1
            else:
                raise BadInput(f"`{name}` needs a value.", hint=usage_for(sub))
        else:
            args.append(word)
        i += 1
    return Parsed(sub, args, options)


def usage_for(sub: Subcommand) -> str:
    for item in CATALOG:
        if item.name is sub:
            return f"Usage: `{SLASH_COMMAND} {item.usage}`"
    return usage_text()


_AGO = re.compile(r"^(\d{1,4})\s*(m|min|h|hr)\s*(ago)?$")
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_moment(text: str, now: datetime) -> datetime:
    """When the issue was detected: `14:05` (UTC, today or yesterday), ISO 8601, or `20m ago`/`2h ago`."""
    value = text.strip().lower()
    hint = "Examples: `--detected 14:05` (UTC), `--detected 2026-02-07T14:05Z`, `--detected \"20m ago\"`."
    moment: datetime | None = None
    if m := _AGO.match(value):
        amount = int(m.group(1))
        moment = now - (timedelta(minutes=amount) if m.group(2).startswith("m") else timedelta(hours=amount))
    elif m := _CLOCK.match(value):
        moment = now.replace(hour=int(m.group(1)), minute=int(m.group(2)), second=0, microsecond=0)
        if moment > now:
            moment -= timedelta(days=1)
    else:
        try:
            parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise BadInput(f"I could not read `{quote(text)}` as a time.", hint=hint) from None
        moment = parsed if parsed.tzinfo else parsed.replace(tzinfo=now.tzinfo)
    if moment > now + timedelta(minutes=1):
        raise BadInput("The issue cannot have been detected in the future.", hint=hint)
    if now - moment > timedelta(days=14):
        raise BadInput("That is more than 14 days ago; a rollback for it is not an emergency.", hint=hint)
    return moment
