"""Paths the model-based search found, replayed deterministically (the shortest sequence Hypothesis printed).

Each names the bullet of issue 20 it reproduces; each failed before that bullet was fixed (as a strict xfail) and
must pass now. They run on the fast tier (tests/model/world.py: the
real Bolt app, emulator, store, git, backups and tenant data; rebuild, restart and verify by stand-ins).
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from tests.model.machine import Report, RollbackMachine, Violation
from tests.model.test_model import machine_for
from tests.model.world import World


def replay(world: World, *calls: tuple[str, dict[str, Any]]) -> RollbackMachine:
    """Run the rules in order, checking every invariant after each, as Hypothesis does; then end the example."""
    machine = machine_for(world, Report())()
    try:
        machine.begin()
        machine.check_all()
        for name, arguments in calls:
            if name == "look":  # not a rule: the test looks at the world at this point
                arguments["into"](machine)
                continue
            getattr(machine, name)(**arguments)
            machine.check_all()
    except BaseException:
        with contextlib.suppress(Violation):  # the first violation is the finding, not what the end finds after it
            machine.teardown()
        raise
    machine.teardown()
    return machine


@pytest.mark.parametrize("alternative", ["flag ENABLE_REALTIME_TIPS=false", "partial src/server.js", "revert --safe"])
def test_after_an_alternative_restores_service_the_next_line_does_not_send_people_back_to_backup(
        fast_world: World, alternative: str) -> None:
    replay(fast_world, ("alternative", {"text": alternative}))


@pytest.mark.parametrize("command", ["backup", "backup --again", "verify", "flag ENABLE_REALTIME_TIPS=false",
                                     "partial src/server.js", "revert --safe", "cleanup", "restore all",
                                     "note I was here",
                                     "followup @alex check the logs", "close --force why", "handover @alex"])
def test_an_approver_who_is_no_commander_changes_nothing_with_a_command(fast_world: World, command: str) -> None:
    first = [("step", {"step": "backup"})] if command in ("cleanup", "restore all") else []  # both need one
    replay(fast_world, *first, ("not_a_commander", {"user": "alex", "text": command}))


def test_restore_all_after_a_second_cleanup_gives_back_the_data_from_before_the_first(fast_world: World) -> None:
    replay(fast_world, ("step", {"step": "backup"}), ("danger", {"text": "cleanup"}), ("approve", {"user": "alex"}),
           ("step", {"step": "backup --again"}), ("danger", {"text": "cleanup"}), ("approve", {"user": "alex"}),
           ("danger", {"text": "restore all"}), ("approve", {"user": "dana"}))


def test_a_double_click_on_post_now_posts_once(fast_world: World) -> None:
    replay(fast_world, ("comms_post", {"clicks": 2, "old": False}))


def test_an_old_preview_posts_once(fast_world: World) -> None:
    replay(fast_world, ("comms_post", {"clicks": 1, "old": False}), ("comms_post", {"clicks": 1, "old": True}))


@pytest.mark.parametrize("after", [0.0, 0.2])
def test_a_bot_process_killed_in_the_approved_cleanup_finishes_it_and_restore_gives_the_data_back(
        fast_world: World, after: float) -> None:
    """The soak's kill rule on its own: a real OS process, SIGKILL while the cleanup runs, a new one recovers."""
    kills = fast_world.kills
    replay(fast_world, ("step", {"step": "backup"}), ("danger", {"text": "cleanup"}),
           ("kill_mid_work", {"what": "approve", "after": after}),
           ("danger", {"text": "restore all"}), ("approve", {"user": "dana"}))
    assert fast_world.kills == kills + 1


def test_a_stakeholder_post_recorded_late_is_not_posted_again_by_the_restarted_bot(fast_world: World) -> None:
    replay(fast_world, ("slack_records_late", {"seconds": 6.0}), ("comms_post", {"clicks": 1, "old": False}),
           ("restart_bot", {}), ("kill_mid_work", {"what": "flag ENABLE_REALTIME_TIPS=false", "after": 0.05}),
           ("slack_slow_history", {"seconds": 1.5}), ("restart_bot", {}))


def test_a_backup_killed_after_a_flag_restored_service_leaves_the_next_line_on_the_restored_incident(
        fast_world: World) -> None:
    """Found by the soak (kill -9 rule): the Next line sent people back to `/rollback backup` and the Alternatives
    after the flag had restored service."""
    machine = replay(fast_world, ("panel_button", {"step": "verify"}),
                     ("alternative", {"text": "flag ENABLE_REALTIME_TIPS=false"}),
                     ("kill_mid_work", {"what": "backup --again", "after": 0.05}))
    stall = machine.stalls[-1]  # the kill landed inside the backup (else this path was not tried)
    assert stall is not None and stall.step.value == "backup" and stall.how == "was interrupted"


def test_a_cleanup_after_a_restore_needs_a_backup_taken_after_that_restore(fast_world: World) -> None:
    """Found by the soak (restore invariant): backup → cleanup → backup --again (of the cleaned data) → restore all
    → cleanup relied on the backup --again, which did not hold what the restore had put back, so the next
    `restore all` gave back cleaned data. A cleanup is now refused until a backup newer than the restore exists."""
    replay(fast_world, ("step", {"step": "backup"}), ("danger_run", {"text": "cleanup", "approver": "alex"}),
           ("step", {"step": "backup --again"}), ("danger_run", {"text": "restore all", "approver": "alex"}),
           ("danger_run", {"text": "cleanup", "approver": "alex"}),
           ("danger_run", {"text": "restore all", "approver": "alex"}))


def test_a_step_whose_progress_message_slack_refuses_still_runs_and_is_not_reported_as_an_error(
        fast_world: World) -> None:
    """Found by the soak (false-error): chat.postMessage answering 500 for the step's first thread message aborted
    the step after it had started ('Something went wrong', the step left to be marked interrupted). The step now
    runs regardless and its result is posted when Slack takes it."""
    replay(fast_world, ("slack_fault", {"method": "chat.postMessage", "status": 500, "times": 2}),
           ("slack_fault", {"method": "chat.postMessage", "status": 500, "times": 2}),
           ("panel_button", {"step": "backup"}), ("panel_button", {"step": "revert"}))



def test_a_cleanup_approved_in_a_second_incident_after_the_first_was_closed_is_an_approved_change(
        fast_world: World) -> None:
    """Found by the soak (two-person): after `close --force` a new `start` opens RB-0002, whose approved cleanup
    changed the tenant data; the model looked only at RB-0001's requests and took it for a change nobody approved.
    The invariants now follow every incident of the example (the product was right)."""
    seen: list[tuple[str, str]] = []
    replay(fast_world, ("step", {"step": "backup"}), ("lifecycle", {"text": "close --force why"}),
           ("start", {"reason": "model run"}), ("step", {"step": "backup"}),
           ("danger_run", {"text": "cleanup", "approver": "alex"}),
           ("look", {"into": lambda m: seen.extend((a.incident_id, a.status.value) for a in m.store.approvals())}))
    assert seen == [("RB-0002", "executed")]  # the path was really taken
