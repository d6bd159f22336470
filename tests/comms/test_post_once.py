"""A stakeholder-update preview posts at most once, whatever the clicks: the post's key comes from the preview,
so a double-click posts one update and answers the second click privately with its link, and an old preview
clicked after a newer update went out is refused privately, with a link to that newer update."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.app import SocketModeBot
from bot.dev.emulator import Emulator
from bot.dev.sandbox import Sandbox
from bot.ids import Action
from tests.comms.test_closeout import ephemeral, panel_ts, posts, wait_recorded
from tests.conftest import COMMANDER, STAKEHOLDERS


def preview(emulator: Emulator) -> Any:
    """Ask for a preview; the new one the commander is shown (a clicked *Post now* replaces its preview)."""
    before = {e.ts for e in emulator.ws.ephemerals_for(COMMANDER)}
    emulator.slash("casey", "incident-rollback", "comms").wait()
    return emulator.ws.wait_for(lambda: next((e for e in emulator.ws.ephemerals_for(COMMANDER)
                                              if e.text.startswith("Preview") and e.ts not in before), None),
                                10, "a new preview")


def link(emulator: Emulator, message: dict[str, Any]) -> str:
    return f"{emulator.url}/archives/{STAKEHOLDERS}/p{message['ts'].replace('.', '')}"


def answered(emulator: Emulator, refusal: str, posts_if_not: int) -> None:
    """Wait for the click to be handled either way: refused privately, or posted once more."""
    emulator.ws.wait_for(lambda: any(refusal in e.text for e in emulator.ws.ephemerals_for(COMMANDER))
                         or len(posts(emulator, "(status update)")) >= posts_if_not, 30, "the click handled")


def started(emulator: Emulator, start_bot: Callable[..., SocketModeBot]) -> SocketModeBot:
    bot = start_bot()
    emulator.slash("casey", "incident-rollback", "start feedback generation fails").wait()
    wait_recorded(emulator, panel_ts(emulator))  # the 'rollback started' update is out and recorded
    return bot


def test_a_double_click_on_post_now_posts_one_update_and_answers_the_second_click_with_its_link(
        emulator: Emulator, sandbox: Sandbox, start_bot: Callable[..., SocketModeBot]) -> None:
    started(emulator, start_bot)
    shown = preview(emulator)
    clicks = [emulator.click("casey", "incident-rollback", shown.ts, Action.COMMS_POST, send=False) for _ in (1, 2)]
    assert clicks[0].payload["actions"][0]["action_ts"] != clicks[1].payload["actions"][0]["action_ts"]
    for click in clicks:  # both sent before either is answered, as a double-click is
        emulator.send(click)
    for click in clicks:
        click.wait()

    answered(emulator, "This update was already", 2)
    updates = posts(emulator, "(status update)")
    assert len(updates) == 1
    assert link(emulator, updates[0]) in ephemeral(emulator, COMMANDER, "This update was already").text


def test_an_old_preview_clicked_after_a_newer_update_is_refused_privately_with_a_link_to_the_newer_one(
        emulator: Emulator, sandbox: Sandbox, start_bot: Callable[..., SocketModeBot]) -> None:
    started(emulator, start_bot)
    old = preview(emulator)  # shown, never clicked
    emulator.click("casey", "incident-rollback", preview(emulator).ts, Action.COMMS_POST).wait()
    emulator.ws.wait_for(lambda: len(posts(emulator, "(status update)")) == 1, 10, "the first update")
    emulator.click("casey", "incident-rollback", preview(emulator).ts, Action.COMMS_POST).wait()
    newer = emulator.ws.wait_for(lambda: (found := posts(emulator, "(status update)"))[1:] and found[1], 10,
                                 "the second update")

    emulator.click("casey", "incident-rollback", old.ts, Action.COMMS_POST).wait()
    answered(emulator, "A newer stakeholder update has gone out", 3)
    assert len(posts(emulator, "(status update)")) == 2  # the old preview posted nothing
    refusal = ephemeral(emulator, COMMANDER, "A newer stakeholder update has gone out since this preview")
    assert link(emulator, newer) in refusal.text and "/rollback comms" in refusal.text
