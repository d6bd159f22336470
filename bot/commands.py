"""The `/rollback` subcommands: their names, their usage and the words each takes, and parsing of what people
type. A new subcommand starts here (see CONTRIBUTING.md).

Parsing never runs anything. A subcommand given words or options it does not take is refused with its
usage, before anything looks at the incident.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from bot.errors import BadInput, echo
from bot.ids import SLASH_COMMAND
from bot.text import Code, Rich, rich

MAX_TEXT = 500
MANY = 99


class Subcommand(StrEnum):
    START = "start"
    STATUS = "status"
    NEXT = "next"
    SEVERITY = "severity"
    ROLE = "role"
    AUTO = "auto"
    PAUSE = "pause"
    BACKUP = "backup"
    REVERT = "revert"
    REBUILD = "rebuild"
    RESTART = "restart"
    VERIFY = "verify"
    CLEANUP = "cleanup"
    RESTORE = "restore"
    COMMS = "comms"
    RCA = "rca"
    CLOSE = "close"
    HEALTH = "health"
    RESTORED = "restored"
    HANDOVER = "handover"
    NOTE = "note"
    FOLLOWUP = "followup"
    FLAG = "flag"
    PARTIAL = "partial"
    HOTFIX = "hotfix"
    HELP = "help"


@dataclass(frozen=True)
class Usage:
    name: Subcommand
    usage: str
    summary: str
    min_args: int = 0
    max_args: int = 0
    flags: frozenset[str] = frozenset()  # options without a value
    options: frozenset[str] = frozenset()  # options that take a value
    words: frozenset[str] = frozenset()  # the only words allowed as the first argument (empty: any)
    group: str = "During the incident"  # the heading `help` lists it under (GROUPS)


#: `help`'s headings, in order: the runbook's path first, the alternatives apart from it.
GROUPS = ("The runbook, in order", "Safer alternatives", "During the incident", "Closing")
RUNBOOK, ALTERNATIVES, CLOSING = GROUPS[0], GROUPS[1], GROUPS[3]
_AGAIN = frozenset({"--again"})
CATALOG: list[Usage] = [
    Usage(Subcommand.START, "start [reason] [--sev 1-4] [--detected <time>] [--auto]",
          "open a rollback incident in this channel and post its control panel "
          "(<time>: 14:05 or 2026-02-07T14:05Z in UTC, or 20m ago); --sev: how bad (1 critical … 4 low); --auto "
          "then runs the steps one after the other",
          max_args=MANY, options=frozenset({"--detected", "--sev"}), flags=frozenset({"--auto"}), group=RUNBOOK),
    Usage(Subcommand.AUTO, "auto", "the autopilot: run what the incident still needs (backup, revert, rebuild, "
                                   "restart, verify) one step after the other, stopping at the first failure; never "
                                   "the danger zone", group=RUNBOOK),
    Usage(Subcommand.PAUSE, "pause", "stop the autopilot once the step it is running has finished", group=RUNBOOK),
    Usage(Subcommand.STATUS, "status [RB-0007]", "show the incident's timeline with real times", max_args=1),
    Usage(Subcommand.SEVERITY, "severity <1-4> [why]", "set how bad it is: 1 critical (most cannot work), 2 major, "
                                                       "3 minor (a workaround exists), 4 low; on the panel, in "
                                                       "the updates and the postmortem", min_args=1, max_args=MANY),
    Usage(Subcommand.NEXT, "next", "what to do now, privately: the panel's Next line and why, with a link to the "
                                   "panel (when it has scrolled away)"),
    Usage(Subcommand.BACKUP, "backup [--again]", "runbook step 1: record the commit, dump every tenant database, "
                                                 "save pm2 logs and .env as a new backup run; counts verified",
          flags=_AGAIN, group=RUNBOOK),
    Usage(Subcommand.REVERT, "revert [commit] [--again] | revert --safe [commit…]",
          "step 2: reset the code to the rollback target (default from the config); uncommitted work is stashed "
          "first. --safe: git revert the commits as new ones instead, no history rewritten",
          max_args=MANY, flags=frozenset({"--again", "--safe"}), group=RUNBOOK),
    Usage(Subcommand.REBUILD, "rebuild [--again]", "step 3: yarn build (clean install and build again if it fails)",
          flags=_AGAIN, group=RUNBOOK),
    Usage(Subcommand.RESTART, "restart [--again]", "step 4: pm2 restart the backend and wait until it is online",
          flags=_AGAIN, group=RUNBOOK),
    Usage(Subcommand.VERIFY, "verify [--again]", "step 5: health endpoint, core endpoints and pm2 error logs",
          flags=_AGAIN, group=RUNBOOK),
    Usage(Subcommand.CLEANUP, "cleanup", "step 6, the danger zone: dry run per tenant, then a second approver "
                                         "must react to the request; needs a verified backup", group=RUNBOOK),
    Usage(Subcommand.RESTORE, "restore <tenant|all> [backup run]",
          "undo the cleanup from the backup run it relied on (same two-person rule)", min_args=1, max_args=2,
          group=RUNBOOK),
    Usage(Subcommand.COMMS, "comms [edit]", "preview the next stakeholder update privately (with a button to post "
                                            "it now); edit fills in impact, next steps and ETA", max_args=1,
          words=frozenset({"edit"})),
    Usage(Subcommand.RCA, "rca", "record the root-cause analysis (the runbook's questions, in a form)", group=CLOSING),
    Usage(Subcommand.CLOSE, "close [--force <reason>]", "check the success criteria and close: final update, "
                                                        "prevention follow-ups, postmortem",
          max_args=MANY, options=frozenset({"--force"}), group=CLOSING),
    Usage(Subcommand.FLAG, "flag NAME=value | flag undo", "safer alternative: set a feature flag in .env (backed up "
                                                            "first), then restart and verify", min_args=1, max_args=1,
          group=ALTERNATIVES),
    Usage(Subcommand.PARTIAL, "partial <path> [commit]", "safer alternative: one file back from a commit, then "
                                                         "rebuild, restart, verify", min_args=1, max_args=2,
          group=ALTERNATIVES),
    Usage(Subcommand.HOTFIX, "hotfix <name> | hotfix ship", "forward fix: a hotfix/<name> branch from HEAD; ship "
                                                            "builds, restarts and verifies it", min_args=1, max_args=1,
          group=ALTERNATIVES),
    Usage(Subcommand.RESTORED, "restored", "confirm the system is restored (after verify; the post-rollback watch "
                                           "records it too when enough checks pass in a row)"),
    Usage(Subcommand.HANDOVER, "handover @person", "hand the commander role to another commander", min_args=1,
          max_args=1),
    Usage(Subcommand.ROLE, "role <comms|scribe> @person | role <comms|scribe> none",
          "give this incident a comms lead (stakeholder updates and their reminders) or a scribe (notes and 📌 "
          "on the timeline); they may do that even if they are not commanders", min_args=2, max_args=2,
          words=frozenset({"comms", "scribe"})),
    Usage(Subcommand.NOTE, "note <text>", "add a line to the incident's timeline and postmortem", min_args=1,
          max_args=MANY),
    Usage(Subcommand.FOLLOWUP, "followup [@person] <text> | followup done <n> [RB-0007]",
          "a follow-up with its owner (you, unless you name someone first), for the postmortem; its owner is "
          "reminded after the close until it is done (done: by its owner or a commander)",
          min_args=1, max_args=MANY),
    Usage(Subcommand.HEALTH, "health", "every scheduled check's state and last hour (privately); in an incident, a "
          "chart in its thread: each check's status over time, its latency in ms, the incident's events"),
    Usage(Subcommand.HELP, "help", "list the subcommands (add --again to a step to repeat one that succeeded)"),
]
BY_NAME = {usage.name: usage for usage in CATALOG}
#: Subcommands whose words are free text (a reason, a note): an apostrophe in them is just an apostrophe.
FREE_TEXT = frozenset({Subcommand.START.value, Subcommand.NOTE.value, Subcommand.FOLLOWUP.value,
                       Subcommand.CLOSE.value, Subcommand.SEVERITY.value})


def short_usage(typed: str | None = None) -> Rich:
    """One line: the closest subcommand to what was typed (if any), and where the full list is."""
    import difflib  # with the first mistyped command: an idle bot has no need of it (tests/test_cli.py checks)

    close = difflib.get_close_matches((typed or "").lower(), [u.name.value for u in CATALOG], n=1, cutoff=0.6)
    guess: Rich = ()
    if close:
        usage = BY_NAME[Subcommand(close[0])]
        guess = ("Did you mean ", Code(f"{SLASH_COMMAND} {usage.usage}"), "? ")
    return rich(guess, "Usage: ", Code(f"{SLASH_COMMAND} help"), " lists every subcommand.")


def usage_for(sub: Subcommand) -> Rich:
    return ("Usage: ", Code(f"{SLASH_COMMAND} {BY_NAME[sub].usage}"))


@dataclass(frozen=True)
class Parsed:
    sub: Subcommand
    args: list[str] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)


def parse(text: str) -> Parsed:
    """Split `/rollback` text into a subcommand, its words and its --options. Never runs anything."""
    text = (text or "").strip()
    if len(text) > MAX_TEXT:
        raise BadInput(f"That command is {len(text)} characters long; the limit is {MAX_TEXT}.", hint=short_usage())
    if not text:
        return Parsed(Subcommand.HELP)
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
        if not words or words[0].lower() not in FREE_TEXT:  # "can't log in" is a fine reason; a path is not
            raise BadInput("I could not read that command: a quote is not closed.", hint=short_usage()) from None
    if not words:
        return Parsed(Subcommand.HELP)
    head, rest = words[0].lower(), words[1:]
    try:
        sub = Subcommand(head)
    except ValueError:
        raise BadInput((echo(head), f" is not a {SLASH_COMMAND} subcommand."), hint=short_usage(head)) from None
    usage = BY_NAME[sub]
    args: list[str] = []
    options: dict[str, str] = {}
    i = 0
    while i < len(rest):
        word = rest[i]
        if word in usage.flags:
            options[word] = "yes"
        elif word.startswith("-") and not (sub is Subcommand.START and not word.startswith("--")):
            name = word.split("=", 1)[0]
            if name not in usage.options:
                raise BadInput((echo(name), " is not an option of ", Code(f"{SLASH_COMMAND} {sub}"), "."),
                               hint=usage_for(sub))
            if "=" in word:
                options[name] = word.split("=", 1)[1]
            elif i + 1 < len(rest):
                options[name] = rest[i + 1]
                i += 1
            else:
                raise BadInput((Code(name), " needs a value."), hint=usage_for(sub))
        else:
            args.append(word)
        i += 1
    if "--force" in options:  # everything after --force is the reason
        options["--force"] = " ".join([options["--force"], *args]).strip()
        args = []
    if not usage.min_args <= len(args) <= usage.max_args:
        takes = ("takes no words" if usage.max_args == 0 else
                 f"takes {usage.min_args}" + (f" to {usage.max_args}" if usage.max_args != usage.min_args else "")
                 + " word(s)" if usage.max_args < MANY else f"takes at least {usage.min_args} word(s)")
        shown = " ".join(args)
        raise BadInput(rich(Code(f"{SLASH_COMMAND} {sub}"), f" {takes}",
                            (", not ", echo(shown)) if shown else (), "."), hint=usage_for(sub))
    if usage.words and args and args[0] not in usage.words:
        raise BadInput((echo(args[0]), " is not something ", Code(f"{SLASH_COMMAND} {sub}"), " knows."),
                       hint=usage_for(sub))
    return Parsed(sub, args, options)


_AGO = re.compile(r"^(\d{1,4})\s*(m|min|h|hr)\s*(ago)?$")
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
MOMENT_HINT: Rich = ("Examples: ", Code("--detected 14:05"), " (UTC), ", Code("--detected 2026-02-07T14:05Z"), ", ",
                     Code('--detected "20m ago"'), ".")


def parse_moment(text: str, now: datetime) -> datetime:
    """When the issue was detected: `14:05` (UTC, today or yesterday), ISO 8601, or `20m ago`/`2h ago`."""
    value = text.strip().lower()
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
            raise BadInput(("I could not read ", echo(text), " as a time."), hint=MOMENT_HINT) from None
        moment = parsed if parsed.tzinfo else parsed.replace(tzinfo=now.tzinfo)
    if moment > now + timedelta(minutes=1):
        raise BadInput("The issue cannot have been detected in the future.", hint=MOMENT_HINT)
    if now - moment > timedelta(days=14):
        raise BadInput("That is more than 14 days ago; a rollback for it is not an emergency.", hint=MOMENT_HINT)
    return moment
