"""`/rollback help`: the subcommands under headings (the runbook's path first, the alternatives apart), and in a
channel with an active incident, what to do next there; the same from the panel's Help button."""

from __future__ import annotations

from bot.app import SocketModeBot
from bot.dev.emulator import Emulator
from tests.conftest import BYSTANDER, COMMANDER
from tests.handlers.test_roles import started


def private(emulator: Emulator, user: str, contains: str, after: int = 0) -> str:
    """The whole answer as the person sees it (its blocks: the plain-text fallback is cut short)."""
    found = emulator.ws.wait_for(lambda: next((e for e in emulator.ws.ephemerals_for(user)[after:]
                                               if contains in e.text), None), 10, f"{contains!r} to {user}")
    return "\n".join(str((b.get("text") or {}).get("text", "")) for b in found.blocks)


def test_help_groups_the_subcommands_and_says_what_is_next_in_this_incident(
        emulator: Emulator, bot: SocketModeBot) -> None:
    emulator.slash("casey", "incident-rollback", "help").wait()
    before = private(emulator, COMMANDER, "The runbook, in order")
    assert "next:" not in before  # no incident here yet
    runbook, rest = before.split("*Safer alternatives*", 1)
    order = [runbook.index(f"`/rollback {step}") for step in ("start", "backup", "revert", "rebuild", "restart",
                                                               "verify", "cleanup", "restore")]
    assert order == sorted(order)  # the runbook's path, in its order
    alternatives, rest = rest.split("*During the incident*", 1)
    assert all(f"`/rollback {a}" in alternatives for a in ("flag", "partial", "hotfix"))
    assert "`/rollback flag" not in runbook and "`/rollback note" in rest and "*Closing*" in rest
    health = next(line for line in before.splitlines() if "`/rollback health" in line)
    # what the chart shows, and that it goes into the incident's thread (only the words are private)
    assert all(w in health for w in ("status", "latency in ms", "events", "thread")), health
    assert "latency chart" not in health

    started(emulator, bot)
    emulator.slash("blake", "incident-rollback", "help").wait()  # anyone who may read the incident sees it
    assert "RB-0001* here, next: `/rollback backup`" in private(emulator, BYSTANDER, "The runbook, in order")
    emulator.slash("blake", "random", "help").wait()  # outside an incident channel: the help alone
    assert "next:" not in private(emulator, BYSTANDER, "The runbook, in order", after=1)
