"""Forms: bad values are answered in the form, next to the field; refusals after the submission reach the
person privately in the incident's channel (a form submission has no channel or response_url of its own)."""

from __future__ import annotations

from typing import Any

import pytest

from bot.dev.emulator import Emulator
from tests.conftest import COMMANDER, INCIDENT


@pytest.fixture(params=["socket", "http"])
def running(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue("bot" if request.param == "socket" else "http_bot")


def open_form(emulator: Emulator, text: str) -> dict[str, Any]:
    before = len(emulator.ws.views)
    emulator.slash("casey", "incident-rollback", text).wait()
    return emulator.ws.wait_for(lambda: len(emulator.ws.views) > before and emulator.ws.views[-1], 10, "the form")


def start(emulator: Emulator, running: Any) -> None:
    emulator.slash("casey", "incident-rollback", "start forms").wait()
    emulator.ws.wait_for(lambda: (i := running.services.store.get_incident("RB-0001")) and i.panel_ts, 10, "panel")


def test_a_bystander_submitting_the_stakeholder_form_is_told_privately(emulator: Emulator, running: Any) -> None:
    start(emulator, running)
    form = open_form(emulator, "comms edit")
    emulator.submit_view("blake", form["id"], {"eta": "never"}).wait()
    refusal = emulator.ws.wait_for(lambda: [e for e in emulator.ws.ephemerals_for("U0BYSTANDER")], 10, "the refusal")
    assert "not on the list" in refusal[0].text and refusal[0].channel == INCIDENT
    assert running.services.store.get_incident("RB-0001").comms_details.eta is None


def test_a_bystander_submitting_the_rca_form_is_told_privately(emulator: Emulator, running: Any) -> None:
    start(emulator, running)
    form = open_form(emulator, "rca")
    emulator.submit_view("blake", form["id"], {"what_went_wrong": "I did it"}).wait()
    emulator.ws.wait_for(lambda: [e for e in emulator.ws.ephemerals_for("U0BYSTANDER") if "not on the list" in e.text],
                         10, "the refusal")
    assert running.services.store.get_incident("RB-0001").rca is None


def test_the_commander_submitting_after_the_close_is_told_privately(emulator: Emulator, running: Any) -> None:
    start(emulator, running)
    form = open_form(emulator, "comms edit")
    emulator.slash("casey", "incident-rollback", "close --force drill over").wait()
    emulator.ws.wait_for(lambda: not running.services.store.get_incident("RB-0001").active, 30, "the close")
    emulator.submit_view("casey", form["id"], {"eta": "tomorrow"}).wait()
    told = emulator.ws.wait_for(lambda: [e for e in emulator.ws.ephemerals_for(COMMANDER) if "is closed" in e.text],
                                10, "the refusal")
    assert told[0].channel == INCIDENT


def test_bad_values_are_answered_in_the_form_next_to_the_field(emulator: Emulator, running: Any) -> None:
    start(emulator, running)
    form = open_form(emulator, "rca")
    delivery = emulator.submit_view("casey", form["id"], {"what_went_wrong": "x" * 3500}).wait()
    answer = delivery.ack_payload or {}
    assert answer.get("response_action") == "errors" and "what_went_wrong" in answer["errors"]
    assert "2000 characters" in answer["errors"]["what_went_wrong"]
    assert running.services.store.get_incident("RB-0001").rca is None  # nothing half-saved
    reopened = emulator.ws.wait_for(lambda: next((v for v in emulator.ws.views if v["id"] == form["id"]
                                                  and not v.get("closed")), None), 10, "the form, open again")
    assert "2000 characters" in reopened["errors"]["what_went_wrong"]  # as Slack shows it: open, with the error
