"""Every interaction runs once: a slash command, a button, a checkbox, a menu, a form and an event, each
delivered three times (as a redelivery, a duplicate or a replay would), in both delivery modes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bot.dev.emulator import Delivery, Emulator
from tests.conftest import COMMANDER, INCIDENT, STAKEHOLDERS, checklists_message


@pytest.fixture(params=["socket", "http"])
def running(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue("bot" if request.param == "socket" else "http_bot")


def thrice(emulator: Emulator, first: Delivery) -> None:
    """Deliver the same payload three times (each as its own delivery, as Slack or an attacker would)."""
    emulator.send(first).wait()
    for n in (2, 3):
        again = Delivery(id=f"{first.id}-copy{n}", kind=first.kind, payload=first.payload, user=first.user,
                         channel=first.channel)
        emulator.deliveries[again.id] = again
        emulator.send(again).wait()


def started(emulator: Emulator, running: Any) -> str:
    emulator.slash("casey", "incident-rollback", "start once").wait()
    return str(emulator.ws.wait_for(lambda: (i := running.services.store.get_incident("RB-0001")) and i.panel_ts,
                                    10, "the panel"))


def settle(emulator: Emulator, running: Any, sentinel: Callable[[], Any], what: str) -> None:
    """Wait for a positive sign that everything sent so far was handled (a later, ordinary request's answer)."""
    emulator.ws.wait_for(sentinel, 15, what)
    before = len(emulator.ws.ephemerals_for(COMMANDER))
    emulator.slash("casey", "incident-rollback", "help").wait()
    emulator.ws.wait_for(lambda: len(emulator.ws.ephemerals_for(COMMANDER)) > before, 10, "a later command answered")


def test_a_slash_command_delivered_three_times_runs_once(emulator: Emulator, running: Any) -> None:
    started(emulator, running)
    thrice(emulator, emulator.slash("casey", "incident-rollback", "verify", send=False))
    store = running.services.store
    settle(emulator, running, lambda: [r for r in store.step_runs("RB-0001") if r.finished_at], "verify to finish")
    assert len(store.step_runs("RB-0001")) == 1


def test_a_button_delivered_three_times_runs_once(emulator: Emulator, running: Any) -> None:
    panel = started(emulator, running)
    message = emulator.ws.message(INCIDENT, panel)
    assert message is not None
    click = emulator.click("casey", "incident-rollback", panel, "rollback_step:verify")
    click.wait()
    for n in (2, 3):
        again = Delivery(id=f"{click.id}-copy{n}", kind=click.kind, payload=click.payload, user=click.user,
                         channel=click.channel)
        emulator.deliveries[again.id] = again
        emulator.send(again).wait()
    store = running.services.store
    settle(emulator, running, lambda: [r for r in store.step_runs("RB-0001") if r.finished_at], "verify to finish")
    assert len(store.step_runs("RB-0001")) == 1


def test_post_now_delivered_three_times_posts_one_update(emulator: Emulator, running: Any) -> None:
    started(emulator, running)
    emulator.ws.wait_for(lambda: [m for m in emulator.ws.channel_messages(STAKEHOLDERS)], 10, "the first update")
    emulator.slash("casey", "incident-rollback", "comms").wait()
    preview = emulator.ws.wait_for(lambda: [e for e in emulator.ws.ephemerals_for(COMMANDER) if e.blocks
                                            and "rollback_comms_post" in str(e.blocks)], 10, "the preview")[0]
    click = emulator.click("casey", "incident-rollback", preview.ts, "rollback_comms_post")
    click.wait()
    for n in (2, 3):
        again = Delivery(id=f"{click.id}-copy{n}", kind=click.kind, payload=click.payload, user=click.user,
                         channel=click.channel)
        emulator.deliveries[again.id] = again
        emulator.send(again).wait()

    def updates() -> list[dict[str, Any]]:
        return [m for m in emulator.ws.channel_messages(STAKEHOLDERS) if "(status update)" in m["text"]]

    settle(emulator, running, updates, "the posted update")
    assert len(updates()) == 1


def test_a_checkbox_and_a_menu_delivered_three_times_act_once(emulator: Emulator, running: Any) -> None:
    panel = started(emulator, running)
    lists = checklists_message(emulator)["ts"]
    thrice(emulator, emulator.click("casey", "incident-rollback", lists, "rollback_criterion:0",
                                    selected=["gen_fail"], send=False))
    store = running.services.store
    settle(emulator, running, lambda: "gen_fail" in store.get_incident("RB-0001").criteria, "the tick")
    assert len([e for e in store.audit_events("RB-0001") if e.action == "incident.criteria"]) == 1
    before = len(emulator.ws.ephemerals_for(COMMANDER))
    thrice(emulator, emulator.click("casey", "incident-rollback", panel, "rollback_alternatives", value="flag",
                                    send=False))
    settle(emulator, running, lambda: len(emulator.ws.ephemerals_for(COMMANDER)) > before, "the explanation")
    explained = [e for e in emulator.ws.ephemerals_for(COMMANDER)[before:] if "Disable a feature flag" in e.text]
    assert len(explained) == 1


def test_a_form_submitted_three_times_is_saved_once(emulator: Emulator, running: Any) -> None:
    started(emulator, running)
    emulator.slash("casey", "incident-rollback", "comms edit").wait()
    view = emulator.ws.wait_for(lambda: [v for v in emulator.ws.views if not v.get("closed")], 10, "the form")[-1]
    thrice(emulator, emulator.submit_view("casey", view["id"], {"eta": "Friday 12:00"}, send=False))
    store = running.services.store
    settle(emulator, running, lambda: store.get_incident("RB-0001").comms_details.eta == "Friday 12:00", "the save")
    assert len([e for e in store.audit_events("RB-0001") if e.action == "comms.details"]) == 1


def test_a_mention_delivered_three_times_answers_once(emulator: Emulator, running: Any) -> None:
    started(emulator, running)
    first = emulator.mention("casey", "incident-rollback", "help", send=False)
    thrice(emulator, first)
    ts = first.payload["event"]["ts"]

    def answers() -> list[dict[str, Any]]:
        return [m for m in emulator.ws.thread(INCIDENT, ts) if m.get("bot_id")]

    settle(emulator, running, answers, "the answer")
    assert len(answers()) == 1
