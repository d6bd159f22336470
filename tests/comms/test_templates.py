"""The runbook's communication template, rendered with StrictUndefined for an incident in every state."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest

from bot.config import parse_runbook
from bot.domain.incident import CloseOut, CommsDetails, DatabaseChange, Incident, IncidentState, Milestone, Rca
from bot.domain.lifecycle import Fix, Lifecycle, Phase
from bot.domain.runs import StepName, StepRun, StepStatus
from bot.domain.updates import build_update
from bot.slack_ui.stakeholder import email, stakeholder_update


class Rendered:
    """The update as the stakeholders see it: in Slack (text) and by e-mail (subject, plain)."""

    def __init__(self, incident: Incident, runs: list[StepRun], headline: str) -> None:
        update = build_update(CONFIG, incident, runs, headline)
        message = stakeholder_update(update)
        self.message = message
        self.text = "\n".join([*(b["text"]["text"] for b in message.blocks if b["type"] == "section" and "text" in b),
                               *(f["text"] for b in message.blocks for f in b.get("fields", []))])
        self.subject, self.plain = email(update)


def render_update(config: object, incident: Incident, runs: list[StepRun], headline: str) -> Rendered:
    return Rendered(incident, runs, headline)

T0 = datetime(2026, 2, 7, 14, 5, 17, tzinfo=UTC)
CONFIG = parse_runbook({})


def incident(**changes: object) -> Incident:
    base = Incident(id="RB-0042", number=42, channel="C0INCIDENT", target="/opt/ai/ai-professor-backend",
                    commander="U0COMMANDER", reason="health returns 500 after Phase 3", created_at=T0)
    base.milestones = {Milestone.ISSUE_DETECTED: T0 - timedelta(minutes=9),
                       Milestone.ROLLBACK_STARTED: T0}
    return base.model_copy(update=changes)


def verify(ok: bool, at: datetime) -> StepRun:
    return StepRun(id="r", incident_id="RB-0042", step=StepName.VERIFY, actor="U0COMMANDER", started_at=at,
                   finished_at=at, status=StepStatus.SUCCEEDED if ok else StepStatus.FAILED,
                   summary="all 3 checks passed" if ok else "1 of 3 checks failed: GET /api/health")


BACK = Lifecycle(phase=Phase.RESTORED, fix=Fix.ROLLBACK, restored_with=Fix.ROLLBACK, backed_up=True)
FRESH = incident()
MID = incident()
MID_RUNS = [verify(False, T0 + timedelta(minutes=3))]
CLEANED = incident(database=DatabaseChange(cleaned=["alpha", "beta"], cases_cleaned=12, documents_deleted=18,
                                           backup_run="RB-0042-backup-abc123"),
                   milestones={**FRESH.milestones, Milestone.ROLLBACK_COMPLETED: T0 + timedelta(minutes=11)},
                   comms_details=CommsDetails(students="could not finish sessions for 20 minutes", eta="Friday"),
                   lifecycle=BACK)
CLOSED = incident(state=IncidentState.CLOSED,
                  milestones={**FRESH.milestones, Milestone.ROLLBACK_COMPLETED: T0 + timedelta(minutes=11),
                              Milestone.SYSTEM_RESTORED: T0 + timedelta(minutes=31),
                              Milestone.CLOSED: T0 + timedelta(minutes=47)},
                  close_out=CloseOut(by="U0COMMANDER", at=T0 + timedelta(minutes=47)),
                  lifecycle=Lifecycle(phase=Phase.CLOSED, fix=Fix.ROLLBACK, restored_with=Fix.ROLLBACK))
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
        assert "[" not in text.replace("[URGENT]", "").replace("[RESOLVED]", "")  # no [TIME], [DATE] … left over
        assert "None" not in text
    bullets = [line for line in update.plain.splitlines() if line.startswith("- ")]  # the e-mail: the letter
    bullets += [line for line in update.text.splitlines() if line.startswith("• ")]  # Slack: the impact
    assert len(bullets) >= 10 + 3
    for line in bullets:
        assert re.match(r"^(- |• )[^:]+: \S", line), f"empty value in {line!r}"
    fields = [f["text"] for b in update.message.blocks for f in b.get("fields", [])]  # Slack: times and statuses
    labels = [f.split("\n")[0] for f in fields]
    assert labels[:4] == ["*Issue Detected*", "*Rollback Started*", "*Rollback Completed*", "*System Restored*"]
    assert {"*Backend*", "*Database*", "*Data Loss*"} <= set(labels)
    assert all(re.match(r"^\*[^*]+\*\n\S", f) for f in fields), fields
    assert [b["type"] for b in update.message.blocks][:2] == ["header", "section"]  # the subject once, then fields
    tag = "[RESOLVED]" if state is CLOSED else "[URGENT]"
    assert update.subject == (f"{tag} AI Professor Backend Rollback - Comprehensive Assessment System — RB-0042 "
                              "(status update)")
    # the Slack version keeps the letter's greeting and apology, as the e-mail does
    for text in (update.text, update.plain):
        assert "Dear Team," in text and "Apologies for the disruption." in text


def test_once_closed_with_its_root_cause_the_update_says_resolved_and_what_the_analysis_found() -> None:
    """Reported: the closed update still said [URGENT] and "Root cause analysis underway" after the RCA."""
    analysed = CLOSED.model_copy(update={"rca": Rca(what_went_wrong="Phase 3 made health depend on the "
                                                                    "assessment service.", by="U0COMMANDER", at=T0)})
    update = render_update(CONFIG, analysed, DONE_RUNS, "incident closed")
    assert update.subject.startswith("[RESOLVED] ") and "[URGENT]" not in update.text + update.plain
    assert "1. Root cause analysis done: Phase 3 made health depend on the assessment service" in update.plain
    assert "underway" not in update.plain + update.text
    assert "Root cause analysis underway" in render_update(CONFIG, CLOSED, DONE_RUNS, "incident closed").plain
    assert render_update(CONFIG, MID, MID_RUNS, "status update").subject.startswith("[URGENT] ")
    # closed with `close --force` before service came back: closed, not resolved
    forced = CLOSED.model_copy(update={"milestones": {k: v for k, v in CLOSED.milestones.items()
                                                      if k is not Milestone.ROLLBACK_COMPLETED}})
    assert render_update(CONFIG, forced, MID_RUNS, "incident closed").subject.startswith("[CLOSED] ")


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
    assert "recoverable from backup RB-0042-backup-abc123" in update.plain


def test_after_a_restore_the_update_says_no_data_was_lost() -> None:
    restored = CLEANED.model_copy(update={"database": CLEANED.database.model_copy(
        update={"restored": ["alpha", "beta"]})})
    update = render_update(CONFIG, restored, DONE_RUNS, "status update")
    assert "Database: RESTORED from backup RB-0042-backup-abc123" in update.plain
    assert "Data Loss: NO — restored from backup RB-0042-backup-abc123: no data lost" in update.plain
    assert "Data: restored from the backup" in update.plain
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
    from bot.domain.incident import Rca
    from bot.slack_ui.checklists import checklists
    from bot.slack_ui.documents import postmortem
    from bot.slack_ui.panel import panel

    with_rca = state.model_copy(update={"rca": Rca(phase="Phase 2", causes=["schema"], by="U0COMMANDER", at=T0)})
    for subject in (state, with_rca):
        text = postmortem(subject, DONE_RUNS, [], [], {"U0COMMANDER": "Casey Commander"})
        for moment in subject.milestones.values():
            assert moment.strftime("%Y-%m-%d %H:%M:%S UTC") in text
        assert "None" not in text and "- [ ] Gradual rollout (10% → 50% → 100%)" in text
        assert ("Database schema conflict" in text) is (subject.rca is not None)
        assert "Commander: Casey Commander (U0COMMANDER)" in text
        blocks = panel(subject, DONE_RUNS, "df5b229").blocks
        assert len(blocks) <= 12 and "*Next:*" in str(blocks)  # compact: the thread's parent
        assert ("Close incident" in str(blocks)) is subject.active
        lists = checklists(subject).blocks
        assert len(lists) <= 50 and "Rollback success criteria" in str(lists)
        assert all(group in str(lists) for group in ("Critical production issues", "Data integrity issues",
                                                     "Performance issues", "User-facing issues"))


def test_the_success_criteria_are_one_per_line_with_their_result_at_close() -> None:
    from bot.domain.checklists import SUCCESS_CRITERIA
    from bot.domain.incident import CloseCheck
    from bot.slack_ui.render import render

    first = SUCCESS_CRITERIA[0]
    closed = CLOSED.model_copy(deep=True)
    assert closed.close_out is not None
    closed.close_out.checks = [CloseCheck(criterion=first.key, text=first.text, ok=False, detail="500")]
    lines = render("success.md.j2", incident=closed, items=SUCCESS_CRITERIA).splitlines()[1:]
    assert len(lines) == len(SUCCESS_CRITERIA)
    assert lines[0] == f"⚙️ {first.text} — ❌ failed at close"
    assert all(line.startswith(("⚙️ ", "⬜ ", "✅ ")) for line in lines)


def test_an_update_without_a_severity_has_the_digest_it_had_before_severity_existed() -> None:
    """Found in review: adding the severity to the digest changed it for every incident without one, so after an
    upgrade each active incident's next reminder posted an update that changed nothing."""
    update = build_update(CONFIG, MID, MID_RUNS, "status update")
    assert update.severity is None
    before_severity = [update.opening, update.issue, *(f"{label}={moment}" for label, moment in update.timeline),
                       update.backend, update.database, update.data_loss, update.students, update.professors,
                       update.data, *update.next_steps, update.restored_how or ""]
    assert update.digest == hashlib.sha256("\n".join(before_severity).encode()).hexdigest()
    assert dataclasses.replace(update, severity="SEV1").digest != update.digest  # a severity change is a change
