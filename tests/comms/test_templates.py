"""The runbook's communication template, rendered with StrictUndefined for an incident in every state."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from bot.config import parse_runbook
from bot.incident import (
    CloseOut,
    CommsDetails,
    Incident,
    IncidentState,
    Milestone,
    StepRun,
    StepStatus,
)
from bot.stakeholders import render_update

T0 = datetime(2026, 2, 7, 14, 5, 17, tzinfo=UTC)
CONFIG = parse_runbook({})


def incident(**changes: object) -> Incident:
    base = Incident(id="RB-0042", number=42, channel="C0INCIDENT", target="/opt/ai/ai-professor-backend",
                    commander="U0COMMANDER", reason="health returns 500 after Phase 3", created_at=T0)
    base.milestones = {Milestone.ISSUE_DETECTED: T0 - timedelta(minutes=9),
                       Milestone.ROLLBACK_STARTED: T0}
    return base.model_copy(update=changes)


def verify(ok: bool, at: datetime) -> StepRun:
    return StepRun(id="r", incident_id="RB-0042", step="verify", actor="U0COMMANDER", started_at=at,
                   finished_at=at, status=StepStatus.SUCCEEDED if ok else StepStatus.FAILED,
                   summary="all 3 checks passed" if ok else "1 of 3 checks failed: GET /api/health")


FRESH = incident()
MID = incident()
MID_RUNS = [verify(False, T0 + timedelta(minutes=3))]
CLEANED = incident(database_state="CLEANED", data_loss="YES — the new fields were removed from 12 internship cases",
                   milestones={**FRESH.milestones, Milestone.ROLLBACK_COMPLETED: T0 + timedelta(minutes=11)},
                   comms_details=CommsDetails(students="could not finish sessions for 20 minutes", eta="Friday"))
CLOSED = incident(state=IncidentState.CLOSED, database_state="UNCHANGED",
                  milestones={**FRESH.milestones, Milestone.ROLLBACK_COMPLETED: T0 + timedelta(minutes=11),
                              Milestone.SYSTEM_RESTORED: T0 + timedelta(minutes=31),
                              Milestone.CLOSED: T0 + timedelta(minutes=47)},
                  close_out=CloseOut(by="U0COMMANDER", at=T0 + timedelta(minutes=47)))
DONE_RUNS = [verify(True, T0 + timedelta(minutes=10))]


@pytest.mark.parametrize(("state", "runs"), [(FRESH, []), (MID, MID_RUNS), (CLEANED, DONE_RUNS), (CLOSED, DONE_RUNS)],
                         ids=["fresh", "mid-rollback", "cleaned", "closed"])
def test_every_state_renders_with_the_recorded_times_and_no_blank_or_placeholder(
        state: Incident, runs: list[StepRun]) -> None:
    update = render_update(CONFIG, state, runs, "status update")
    for moment in state.milestones.values():
        assert f"<!date^{int(moment.timestamp())}^" in update.text  # each reader's own local time
        assert moment.strftime("%Y-%m-%d %H:%M:%S UTC") in update.plain
    for text in (update.text, update.plain, update.subject):
        assert "[" not in text.replace("[URGENT]", "")  # no [TIME], [DESCRIBE], [DATE] left over
        assert "None" not in text
    bullets = [line for line in update.plain.splitlines() if line.startswith("- ")]
    bullets += [line for line in update.text.splitlines() if line.startswith("• ")]
    assert len(bullets) >= 2 * 10
    for line in bullets:
        assert re.match(r"^(- |• )[^:]+: \S", line), f"empty value in {line!r}"
    assert update.subject.startswith("[URGENT] AI Professor Backend Rollback - Comprehensive Assessment System")


def test_unknown_fields_say_so_in_words() -> None:
    update = render_update(CONFIG, FRESH, [], "rollback started")
    assert "Rollback Completed: not yet" in update.plain and "System Restored: not yet" in update.plain
    assert "Students: not assessed yet" in update.plain and "ETA for fix: not set yet" in update.plain
    assert "Backend: not verified yet" in update.plain
    assert "We are performing an emergency rollback" in update.plain


def test_a_cleaned_database_and_its_data_loss_are_reported() -> None:
    update = render_update(CONFIG, CLEANED, DONE_RUNS, "rollback completed")
    assert "Database: CLEANED" in update.plain
    assert "Data Loss: YES — the new fields were removed from 12 internship cases" in update.plain
    assert "Backend: STABLE (old version restored)" in update.plain
    assert "Students: could not finish sessions for 20 minutes" in update.plain
    assert "ETA for fix: Friday" in update.plain
    assert "We have performed an emergency rollback of the Comprehensive Assessment System" in update.plain


def test_a_failing_verify_is_not_reported_as_stable() -> None:
    update = render_update(CONFIG, MID, MID_RUNS, "status update")
    assert "Backend: NOT STABLE" in update.plain and "GET /api/health" in update.plain


def test_slack_text_escapes_what_people_typed() -> None:
    typed = incident(reason="<!channel> & friends", comms_details=CommsDetails(students="<@U123> broke it"))
    update = render_update(CONFIG, typed, [], "status update")
    assert "<!channel>" not in update.text and "&lt;!channel&gt; &amp; friends" in update.text
    assert "<@U123>" not in update.text
    assert "<!channel> & friends" in update.plain  # e-mail is plain text


@pytest.mark.parametrize("state", [FRESH, MID, CLEANED, CLOSED], ids=["fresh", "mid-rollback", "cleaned", "closed"])
def test_the_panel_sections_and_the_postmortem_render_in_every_state(state: Incident) -> None:
    from bot.comms import render
    from bot.incident import PREVENTION_CHECKLIST, RCA_CAUSES, SUCCESS_CRITERIA, Rca
    from bot.ui import panel

    with_rca = state.model_copy(update={"rca": Rca(phase="Phase 2", causes=["schema"], by="U0COMMANDER", at=T0)})
    for subject in (state, with_rca):
        text = render("postmortem.md.j2", incident=subject, runs=DONE_RUNS, approvals=[], events=[],
                      causes=RCA_CAUSES, criteria=SUCCESS_CRITERIA, prevention=PREVENTION_CHECKLIST)
        for moment in subject.milestones.values():
            assert moment.strftime("%Y-%m-%d %H:%M:%S UTC") in text
        assert "None" not in text and "- [ ] Gradual rollout (10% → 50% → 100%)" in text
        assert ("Database schema conflict" in text) is (subject.rca is not None)
        _, blocks = panel(subject, DONE_RUNS, "df5b229")
        assert len(blocks) <= 50 and "Rollback success criteria" in str(blocks)
        assert ("Close incident" in str(blocks)) is subject.active
