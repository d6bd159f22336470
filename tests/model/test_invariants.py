"""The machine's invariants can fail: each is shown a world that breaks it behind the bot's back (a tenant
changed without a request, a stakeholder post duplicated, a result message contradicting the store, an audit
event edited, a panel offering a button that can only refuse). A check that cannot fail would let the search
report 0 violations for nothing."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from bot.ops import tenants
from tests.conftest import INCIDENT, STAKEHOLDERS
from tests.model.machine import Report, RollbackMachine, Violation
from tests.model.test_model import machine_for
from tests.model.world import World


@pytest.fixture
def machine(fast_world: World) -> Iterator[RollbackMachine]:
    made = machine_for(fast_world, Report())()
    made.begin()
    made.check_all()  # the started incident breaks nothing
    yield made
    fast_world.end()


def test_a_tenant_changed_without_an_approved_request_is_a_two_person_violation(machine: RollbackMachine) -> None:
    client = tenants.connect(machine.world.sandbox.central_uri)
    try:
        client[machine.world.sandbox.tenant_dbs[0]].internshipcases.update_many({}, {"$unset": {"step": ""}})
    finally:
        tenants.close(client)
    with pytest.raises(Violation, match=r"\[two-person\] the tenant data changed"):
        machine.check_all()


def test_a_stakeholder_update_shown_twice_is_a_violation(machine: RollbackMachine) -> None:
    first = machine.emu.ws.wait_for(lambda: next((m for m in machine.emu.ws.channel_messages(STAKEHOLDERS)
                                                  if m.get("metadata")), None), 10, "the first update")
    machine.emu.ws.post(STAKEHOLDERS, {"text": first["text"], "metadata": first["metadata"]})
    with pytest.raises(Violation, match=r"\[posted-twice\]"):
        machine.check_all()


def test_a_step_told_failed_that_the_store_has_as_succeeded_is_a_violation(machine: RollbackMachine) -> None:
    machine.step("backup")
    incident = machine.store.get_incident("RB-0001")
    told = next(m for m in machine.emu.ws.thread(INCIDENT, incident.panel_ts)
                if "*Backup current state* — succeeded" in (m.get("text") or ""))
    machine.emu.ws.update(INCIDENT, told["ts"], {"text": told["text"].replace("— succeeded", "— failed")})
    with pytest.raises(Violation, match=r"\[told-wrong\] Backup current state"):
        machine.check_all()


def test_an_edited_audit_event_is_a_violation(machine: RollbackMachine) -> None:
    path = machine.world.settings.data_dir / "rollback-bot.sqlite3"  # type: ignore[union-attr]
    with sqlite3.connect(path) as db:  # someone with the file's access, past the store's append-only trigger
        db.execute("DROP TRIGGER audit_no_update")
        db.execute("UPDATE audit SET event = replace(event, 'incident.started', 'incident.forged') WHERE seq = 1")
    with pytest.raises(Violation, match=r"\[audit\]"):
        machine.check_all()


def test_a_panel_offering_revert_before_any_backup_is_a_violation(machine: RollbackMachine) -> None:
    incident = machine.store.get_incident("RB-0001")
    panel = machine.emu.ws.message(INCIDENT, incident.panel_ts)
    assert "rollback_step:revert" not in str(panel["blocks"])  # the bot does not offer it: no backup yet
    revert = {"type": "button", "action_id": "rollback_step:revert", "text": {"type": "plain_text", "text": "Revert"},
              "value": "RB-0001"}
    blocks = [dict(b, elements=[*b["elements"], revert]) if b.get("type") == "actions" else b for b in panel["blocks"]]
    machine.emu.ws.update(INCIDENT, panel["ts"], {"blocks": blocks})
    with pytest.raises(Violation, match=r"\[buttons\] the panel offers Revert code"):
        machine.check_all()
