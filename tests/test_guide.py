"""The panel's Next line: the runbook's order, from what the incident's record says happened."""

from __future__ import annotations

from datetime import timedelta

from bot.domain.checklists import SUCCESS_CRITERIA
from bot.domain.guide import NextKind, next_action
from bot.domain.incident import Busy, BusyKind, DatabaseChange, IncidentState, Rca, Tick
from bot.domain.ownership import LEGACY_OWNER
from bot.domain.runs import StepName, StepRun, StepStatus
from bot.text import plain
from tests.comms.test_templates import FRESH, T0


def run(step: StepName, minute: int, status: StepStatus = StepStatus.SUCCEEDED) -> StepRun:
    at = T0 + timedelta(minutes=minute)
    return StepRun(id=f"r{minute}", incident_id="RB-0042", step=step, actor="U0COMMANDER", started_at=at,
                   finished_at=at, status=status)


RUNBOOK = [StepName.BACKUP, StepName.REVERT, StepName.REBUILD, StepName.RESTART, StepName.VERIFY]


def test_each_runbook_step_in_order_then_the_criteria_then_close() -> None:
    done: list[StepRun] = []
    for minute, step in enumerate(RUNBOOK):
        upcoming = next_action(FRESH, done)
        assert (upcoming.kind, upcoming.step) == (NextKind.STEP, step), step
        assert f"/rollback {step.value}" in plain(upcoming.text)
        done.append(run(step, minute))
    upcoming = next_action(FRESH, done)
    assert upcoming.kind is NextKind.CONFIRM and "/rollback close" in plain(upcoming.text)
    assert "/rollback cleanup" in plain(upcoming.also)  # optional, and only while the data is unchanged
    ticked = FRESH.model_copy(update={"success": {i.key: Tick(by="U0COMMANDER", at=T0) for i in SUCCESS_CRITERIA
                                                  if not i.automatic}})
    assert next_action(ticked, done).kind is NextKind.CLOSE
    cleaned = ticked.model_copy(update={"database": DatabaseChange(cleaned=["tenant_a"])})
    assert next_action(cleaned, done).also == ()


def test_the_first_thing_is_always_the_backup() -> None:
    upcoming = next_action(FRESH, [])
    assert upcoming.step is StepName.BACKUP and "nothing irreversible" in plain(upcoming.text)


def test_a_failed_step_is_named_and_a_running_one_is_waited_for() -> None:
    failed = [run(StepName.BACKUP, 0), run(StepName.REVERT, 1, StepStatus.FAILED)]
    upcoming = next_action(FRESH, failed)
    assert upcoming.step is StepName.REVERT and "revert failed" in plain(upcoming.text)
    busy = FRESH.model_copy(update={"busy": Busy(kind=BusyKind.STEP, ref="r", name="rebuild", actor="U0COMMANDER",
                                                 owner=LEGACY_OWNER, since=T0)})
    assert next_action(busy, failed).kind is NextKind.WAIT


def test_a_new_revert_asks_for_a_new_rebuild_and_a_restart_for_a_new_verify() -> None:
    runs = [run(step, minute) for minute, step in enumerate(RUNBOOK)]
    assert next_action(FRESH, [*runs, run(StepName.REVERT, 10)]).step is StepName.REBUILD
    assert next_action(FRESH, [*runs, run(StepName.RESTART, 10)]).step is StepName.VERIFY


def test_an_alternative_stands_in_for_the_revert() -> None:
    runs = [run(StepName.BACKUP, 0), run(StepName.PARTIAL, 1), run(StepName.VERIFY, 2)]
    assert next_action(FRESH, runs).kind is NextKind.CONFIRM
    assert next_action(FRESH, runs[:2]).step is StepName.VERIFY


def test_after_the_close_the_root_cause_then_nothing() -> None:
    closed = FRESH.model_copy(update={"state": IncidentState.CLOSED})
    assert next_action(closed, []).kind is NextKind.RCA
    assert next_action(closed.model_copy(update={"rca": Rca(phase="Phase 2")}), []).kind is NextKind.DONE
