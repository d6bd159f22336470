"""`/rollback next`: the panel's Next line, privately, for anyone who may read the incident (the panel may have
scrolled far up the channel by 3 a.m.)."""

from __future__ import annotations

from bot.app import SocketModeBot
from bot.dev.emulator import Emulator
from tests.conftest import BYSTANDER, COMMANDER
from tests.handlers.test_roles import private, started


def test_next_says_privately_what_the_panel_says_to_do_now_with_a_link_back(
        emulator: Emulator, bot: SocketModeBot) -> None:
    started(emulator, bot)
    emulator.slash("casey", "incident-rollback", "next").wait()
    said = private(emulator, COMMANDER, "Next:")
    assert said.startswith("*RB-0001 — active") and "`/rollback backup`" in said and "nothing irreversible" in said
    assert "Open the control panel" in said  # a link back to the panel's buttons

    emulator.slash("blake", "incident-rollback", "next").wait()  # a bystander may read it, as they may status
    assert "`/rollback backup`" in private(emulator, BYSTANDER, "Next:")
    assert all(e.user == COMMANDER or e.user == BYSTANDER for e in emulator.ws.ephemerals_for())  # nobody else


def test_next_follows_the_incident_and_refuses_clearly_where_there_is_none(
        emulator: Emulator, bot: SocketModeBot) -> None:
    emulator.slash("casey", "incident-rollback", "next").wait()
    assert "/rollback start" in private(emulator, COMMANDER, "no active")
    started(emulator, bot)
    emulator.slash("casey", "incident-rollback", "backup").wait()
    emulator.ws.wait_for(lambda: (i := bot.services.store.get_incident("RB-0001")) and i.busy is None
                         and i.lifecycle.backed_up, 60, "the backup")
    emulator.slash("casey", "incident-rollback", "next").wait()
    assert "`/rollback revert`" in private(emulator, COMMANDER, "Next:", after=1)
    emulator.slash("casey", "incident-rollback", "next now").wait()  # it takes no words
    assert "`/rollback next` takes no words" in private(emulator, COMMANDER, "takes no words")


def test_every_private_answer_in_the_incident_carries_the_next_line_and_a_link_to_the_panel(
        emulator: Emulator, bot: SocketModeBot) -> None:
    """Reported: private replies pile up under the panel, and after a few commands its Next line is off-screen."""
    def shown(user: str, contains: str, after: int = 0) -> str:  # what the person sees: the blocks
        return emulator.ws.wait_for(lambda: next((str(e.blocks) for e in emulator.ws.ephemerals_for(user)[after:]
                                                  if contains in e.text), None), 10, f"{contains!r} to {user}")

    started(emulator, bot)
    emulator.slash("casey", "incident-rollback", "revert").wait()  # refused: no backup yet
    refusal = shown(COMMANDER, "no verified backup yet")
    assert "👉 *Next:* `/rollback backup`" in refusal and "Open the control panel" in refusal
    seen = len(emulator.ws.ephemerals_for(COMMANDER))
    emulator.slash("casey", "incident-rollback", "backup").wait()
    done = shown(COMMANDER, "Backup current state succeeded", after=seen)
    assert "(details in the thread)" in done and "👉 Next: `/rollback revert`" in done
    assert "|Open the control panel>" in done

    emulator.slash("blake", "incident-rollback", "verify").wait()  # a bystander may read the incident: the way on
    assert "👉 *Next:* `/rollback revert`" in shown(BYSTANDER, "Only commanders")
