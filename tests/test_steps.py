"""The step contract (bot/domain/steps.py): a plan's typed facts reach its run, and the registry runs any step."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.commands import Subcommand
from bot.domain.runs import StepName
from bot.domain.steps import (
    RUNBOOK_STEPS,
    SHORT_NAMES,
    STEP_SUBCOMMANDS,
    TITLES,
    Plan,
    StepContext,
    StepResult,
    register,
)


@dataclass(frozen=True)
class Facts:
    target: str


class Remembers:
    name = StepName.REVERT
    follow_ups: tuple[StepName, ...] = (StepName.REBUILD,)

    def __init__(self) -> None:
        self.planned = 0

    def plan(self, ctx: StepContext) -> Plan[Facts]:
        self.planned += 1
        return Plan(summary=("reset to abc",), facts=Facts(ctx.args[0]), lines=[("git reset --hard abc",)])

    def run(self, ctx: StepContext, plan: Plan[Facts]) -> StepResult:
        return StepResult(ok=True, summary=("reset to ", plan.facts.target))


def test_the_facts_a_plan_carries_reach_its_run_through_the_registry() -> None:
    step = Remembers()
    registered = register(step)
    ctx = StepContext(incident=None, actor="U1", config=None, data_dir=Path("."), args=["abc123"],  # type: ignore[arg-type]
                      history=[], secrets=None)  # type: ignore[arg-type]
    planned = registered.prepare(ctx)
    assert (registered.name, registered.follow_ups) == (StepName.REVERT, (StepName.REBUILD,))
    assert planned.summary == ("reset to abc",) and planned.lines == [("git reset --hard abc",)]
    assert planned.carry_out(ctx).summary == ("reset to ", "abc123")
    assert step.planned == 1  # carrying a plan out does not plan again


def test_one_list_of_steps_names_every_subcommand_title_and_short_name() -> None:
    assert [s.value for s in STEP_SUBCOMMANDS] == [s.value for s in RUNBOOK_STEPS]
    assert all(isinstance(s, Subcommand) for s in STEP_SUBCOMMANDS)
    assert set(TITLES) == set(SHORT_NAMES) == set(StepName)
