"""The panel's Next line: derived from the incident's lifecycle (the phase, the fix under way and what it still
needs), whichever path the incident took: the runbook's rollback or one of its safer alternatives."""

from __future__ import annotations

from datetime import timedelta

from bot.domain.checklists import SUCCESS_CRITERIA
from bot.domain.guide import NextKind, next_action
from bot.domain.incident import Busy, BusyKind, DatabaseChange, Incident, Rca, Tick
from bot.domain.lifecycle import Event, Stall
from bot.domain.ownership import LEGACY_OWNER
from bot.domain.runs import StepName
from bot.text import plain
from tests.comms.test_templates import FRESH, T0

RUNBOOK = [StepName.BACKUP, StepName.REVERT, StepName.REBUILD, StepName.RESTART, StepName.VERIFY]


def after(*steps: StepName | tuple[StepName, bool], incident: Incident = FRESH) -> Incident:
    """The incident after these steps finished (a step alone succeeded; (step, False) failed)."""
    fresh = incident.model_copy(deep=True)
    for minute, item in enumerate(steps):
        step, ok = item if isinstance(item, tuple) else (item, True)
        fresh.step_finished(step, ok, T0 + timedelta(minutes=minute), "U0COMMANDER",
                            ships=step is StepName.HOTFIX)
    return fresh


def confirmed(incident: Incident) -> Incident:
    return incident.model_copy(update={"success": {i.key: Tick(by="U0COMMANDER", at=T0) for i in SUCCESS_CRITERIA
                                                   if not i.automatic}})


def test_each_runbook_step_in_order_then_the_criteria_then_close() -> None:
    done: list[StepName] = []
    for step in RUNBOOK:
        upcoming = next_action(after(*done))
        assert (upcoming.kind, upcoming.step) == (NextKind.STEP, step), step
        assert f"/rollback {step.value}" in plain(upcoming.text)
        done.append(step)
    upcoming = next_action(after(*done))
    assert upcoming.kind is NextKind.CONFIRM and "/rollback close" in plain(upcoming.text)
    assert "/rollback cleanup" in plain(upcoming.also)  # optional, and only while the data is unchanged
    assert next_action(confirmed(after(*done))).kind is NextKind.CLOSE
    cleaned = confirmed(after(*done)).model_copy(update={"database": DatabaseChange(cleaned=["tenant_a"])})
    assert next_action(cleaned).also == ()


def test_the_first_thing_is_always_the_backup() -> None:
    upcoming = next_action(FRESH)
    assert upcoming.step is StepName.BACKUP and "nothing irreversible" in plain(upcoming.text)


def test_a_failed_step_is_named_and_a_running_one_is_waited_for() -> None:
    failed = after(StepName.BACKUP, (StepName.REVERT, False))
    upcoming = next_action(failed)
    assert upcoming.step is StepName.REVERT and "revert failed" in plain(upcoming.text)
    busy = failed.model_copy(update={"busy": Busy(kind=BusyKind.STEP, ref="r", name="rebuild", actor="U0COMMANDER",
                                                  owner=LEGACY_OWNER, since=T0)})
    assert next_action(busy).kind is NextKind.WAIT
    assert next_action(after(StepName.BACKUP, (StepName.REVERT, False), StepName.REVERT)).step is StepName.REBUILD


def test_a_new_revert_asks_for_a_new_rebuild_and_a_restart_for_a_new_verify() -> None:
    assert next_action(after(*RUNBOOK, StepName.REVERT)).step is StepName.REBUILD
    assert next_action(after(*RUNBOOK, StepName.REVERT, StepName.REBUILD, StepName.RESTART)).step is StepName.VERIFY


def test_a_verify_that_passes_before_the_reverted_code_is_built_and_running_does_not_restore_service() -> None:
    early = after(StepName.BACKUP, StepName.REVERT, StepName.VERIFY)
    assert not early.lifecycle.service_back
    assert next_action(early).step is StepName.REBUILD


def test_every_alternative_ends_the_way_the_rollback_does() -> None:
    """Regression (issue 20): after `flag` (or partial, safe revert, hotfix ship) passed verify the Next line
    still said `/rollback backup`."""
    for change, follow in ((StepName.FLAG, (StepName.RESTART,)),
                           (StepName.PARTIAL, (StepName.REBUILD, StepName.RESTART)),
                           (StepName.SAFE_REVERT, (StepName.REBUILD, StepName.RESTART)),
                           (StepName.HOTFIX, (StepName.REBUILD, StepName.RESTART))):
        fixed = after(change, *follow, StepName.VERIFY)
        assert fixed.lifecycle.service_back, change
        upcoming = next_action(fixed)
        assert upcoming.kind is NextKind.CONFIRM, (change, plain(upcoming.text))
        assert "backup" not in plain(upcoming.text)
        assert "/rollback cleanup" not in plain(upcoming.also) or change is StepName.SAFE_REVERT
        mid = after(change)
        assert next_action(mid).step is follow[0], change


def test_a_hotfix_branch_alone_changes_nothing_only_shipping_it_does() -> None:
    branch = FRESH.model_copy(deep=True)
    branch.step_finished(StepName.HOTFIX, True, T0, "U0COMMANDER", ships=False)
    assert branch.lifecycle.fix is None and next_action(branch).step is StepName.BACKUP


def test_a_verify_that_fails_after_service_was_back_asks_for_verify_again() -> None:
    back = after(StepName.FLAG, StepName.RESTART, StepName.VERIFY)
    again = after((StepName.VERIFY, False), incident=back)
    assert not again.lifecycle.service_back
    assert "verify failed" in plain(next_action(again).text)
    assert after(StepName.VERIFY, incident=again).lifecycle.service_back


def test_after_the_close_the_root_cause_then_nothing() -> None:
    closed = FRESH.model_copy(deep=True)
    closed.advance(Event.CLOSED, T0, "U0COMMANDER")
    assert next_action(closed).kind is NextKind.RCA
    assert next_action(closed.model_copy(update={"rca": Rca(phase="Phase 2")})).kind is NextKind.DONE


def test_a_backup_that_fails_after_service_is_back_does_not_send_people_back_to_the_start() -> None:
    """Found by the soak: a flag restored service, then a `backup --again` was killed; the Next line said "run
    /rollback backup again, or pick one of the Alternatives" while service was back."""
    restored = after(StepName.FLAG, StepName.RESTART, StepName.VERIFY, (StepName.BACKUP, False))
    upcoming = next_action(restored)
    assert upcoming.kind is NextKind.CONFIRM and "/rollback close" in plain(upcoming.text)
    assert "backup failed" in plain(upcoming.also) and "nothing waits on it" in plain(upcoming.also)
    assert "/rollback backup" not in plain(upcoming.text) and "Alternatives" not in plain(upcoming.text)
    rolled_back = after(*RUNBOOK, (StepName.BACKUP, False))
    both = next_action(rolled_back).also  # the cleanup offer stays, after the note
    assert "backup failed" in plain(both) and "/rollback cleanup" in plain(both)


def test_a_restart_that_fails_after_service_is_back_is_named_without_offering_alternatives() -> None:
    upcoming = next_action(after(*RUNBOOK, (StepName.RESTART, False)))
    assert upcoming.step is StepName.RESTART and "restart failed" in plain(upcoming.text)
    assert "Alternatives" not in plain(upcoming.text)


def test_a_backup_again_that_fails_beside_a_verified_backup_does_not_take_over_the_next_line() -> None:
    """Found by the soak: after a verified backup, a flag and a killed `backup --again`, the Next line sent people
    back to `/rollback backup` and the Alternatives while the flag still needed its restart."""
    upcoming = next_action(after(StepName.BACKUP, StepName.FLAG, (StepName.BACKUP, False)))
    assert upcoming.step is StepName.RESTART and "/rollback restart" in plain(upcoming.text)
    assert "earlier verified backup stands" in plain(upcoming.also)
    opened = next_action(after(StepName.BACKUP, (StepName.BACKUP, False)))  # before any fix: revert is next
    assert opened.step is StepName.REVERT and "nothing waits on it" in plain(opened.also)
    assert next_action(after((StepName.BACKUP, False))).step is StepName.BACKUP  # no verified backup yet: it is


def test_a_backup_killed_while_a_fix_that_needs_none_is_under_way_does_not_take_over_the_next_line() -> None:
    """Found by the final soak (kill -9 rule): no backup yet, a flag whose restart a kill cut off, a verify, then a
    killed `backup --again`: the Next line said "run /rollback backup again, or pick one of the Alternatives"
    while the flag, which needs no backup, still needed its restart."""
    flagged = after(StepName.FLAG, StepName.VERIFY)
    flagged.lifecycle.stall = Stall(step=StepName.BACKUP, how="was interrupted")  # what recovery records
    upcoming = next_action(flagged)
    assert upcoming.step is StepName.RESTART and "/rollback restart" in plain(upcoming.text)
    assert "Alternatives" not in plain(upcoming.text) and "/rollback backup" not in plain(upcoming.text)
    assert "backup was interrupted" in plain(upcoming.also) and "fix under way does not need one" in plain(
        upcoming.also)
    # before any fix, a backup that failed is still the thing to do
    assert next_action(after((StepName.BACKUP, False))).step is StepName.BACKUP
