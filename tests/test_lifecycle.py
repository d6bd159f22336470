"""The incident lifecycle: its table is the README's, it is total, and a search over random step outcomes agrees
with a small reference model of what "service is back" means (issue 20)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from bot.domain.guide import NextKind, next_action
from bot.domain.incident import Incident, Milestone
from bot.domain.lifecycle import PATHS, TRANSITIONS, Event, Fix, Lifecycle, Phase
from bot.domain.runs import StepName
from bot.text import plain

README = Path(__file__).resolve().parents[1] / "README.md"
T0 = datetime(2026, 2, 7, 14, 0, tzinfo=UTC)


def test_the_readme_table_is_the_code_table() -> None:
    section = README.read_text().split("## The incident's lifecycle", 1)[1].split("\n## ", 1)[0]
    rows = [row for row in re.findall(r"^\| (\w+) \| (\w+)[^|]* \| (\w+) \|$", section, re.M) if row[0] != "from"]
    assert {(Phase(a), Event(e)): Phase(b) for a, e, b in rows} == TRANSITIONS
    assert len(rows) == len(TRANSITIONS)


def test_closed_is_final_and_every_other_phase_can_close() -> None:
    for phase in Phase:
        for event in Event:
            target = TRANSITIONS.get((phase, event), phase)
            assert phase is not Phase.CLOSED or target is Phase.CLOSED
        assert phase is Phase.CLOSED or TRANSITIONS[(phase, Event.CLOSED)] is Phase.CLOSED


def test_a_change_from_any_open_phase_starts_mitigating_with_the_fix_s_own_path() -> None:
    for fix, path in PATHS.items():
        life = Lifecycle()
        assert life.advance(Event.CHANGED, fix=fix) is Phase.MITIGATING
        assert life.needs == list(path[1:]) and life.path() == (StepName.BACKUP, *path)


def incident() -> Incident:
    return Incident(id="RB-0042", number=42, channel="C0INCIDENT", target="/srv/backend", commander="U0COMMANDER",
                    reason="health 500", created_at=T0, milestones={Milestone.ISSUE_DETECTED: T0,
                                                                    Milestone.ROLLBACK_STARTED: T0})


STEPS = list(StepName)


class LifecycleSearch(RuleBasedStateMachine):
    """Random step outcomes against a reference: service is back exactly when, since the last successful
    change, every step of that fix's path succeeded in order and the last verify passed."""

    def __init__(self) -> None:
        super().__init__()
        self.incident = incident()
        self.minute = 0
        self.fix: Fix | None = None
        self.todo: list[StepName] = []  # the reference: what the current fix still needs
        self.back = False
        self.confirmed = False
        self.closed = False

    def _at(self) -> datetime:
        self.minute += 1
        return T0 + timedelta(minutes=self.minute)

    @rule(step=st.sampled_from(STEPS), ok=st.booleans(), ships=st.booleans())
    def finish_step(self, step: StepName, ok: bool, ships: bool) -> None:
        if self.closed:
            return
        self.incident.step_finished(step, ok, self._at(), "U0COMMANDER", ships=ships)
        changes = step is not StepName.HOTFIX or ships
        fix = next((f for f, path in PATHS.items() if path[0] is step), None)
        if ok and fix is not None and changes:
            self.fix, self.todo, self.back, self.confirmed = fix, list(PATHS[fix][1:]), False, False
        elif step is StepName.VERIFY and not ok and (self.back or self.fix is not None):
            if self.back:
                self.todo = [StepName.VERIFY]
            self.back = self.confirmed = False
        elif ok and self.todo and self.todo[0] is step:
            self.todo.pop(0)
            if not self.todo:
                self.back = True
        # a verify that passes while service is back keeps it back

    @rule()
    def confirm(self) -> None:
        if self.closed:
            return
        self.incident.advance(Event.CONFIRMED, self._at(), "bot")
        self.confirmed = self.confirmed or self.back

    @rule()
    def close(self) -> None:
        self.incident.advance(Event.CLOSED, self._at(), "U0COMMANDER")
        self.closed = True

    @invariant()
    def agrees_with_the_reference(self) -> None:
        life = self.incident.lifecycle
        if self.closed:
            assert life.phase is Phase.CLOSED and not self.incident.active
            return
        assert life.service_back == self.back, (life, self.todo)
        assert (life.phase is Phase.CONFIRMED) == (self.back and self.confirmed)
        if self.fix is not None:
            assert life.fix is self.fix

    @invariant()
    def milestones_follow_the_phase(self) -> None:
        reached = self.incident.milestones
        if self.incident.lifecycle.service_back:
            assert Milestone.ROLLBACK_COMPLETED in reached
        if self.incident.lifecycle.phase is Phase.CONFIRMED:
            assert Milestone.SYSTEM_RESTORED in reached
        if Milestone.SYSTEM_RESTORED in reached:
            assert reached[Milestone.ROLLBACK_COMPLETED] <= reached[Milestone.SYSTEM_RESTORED]

    @invariant()
    def the_next_line_never_sends_a_restored_incident_back_to_the_start(self) -> None:
        upcoming = next_action(self.incident)
        life = self.incident.lifecycle
        if life.service_back and life.stall is None and self.incident.active:
            assert upcoming.kind in (NextKind.CONFIRM, NextKind.CLOSE), plain(upcoming.text)
        if life.phase is Phase.MITIGATING and life.stall is None:
            assert upcoming.step is (life.needs[0] if life.needs else StepName.VERIFY)


LifecycleSearch.TestCase.settings = settings(max_examples=300, stateful_step_count=30, deadline=None,
                                             derandomize=True)
TestLifecycleSearch = LifecycleSearch.TestCase
