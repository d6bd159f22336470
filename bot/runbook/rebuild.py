"""Step 3: rebuild with yarn; on failure clear node_modules and dist, install and build again (each phase
reported as it starts, and the first build's error kept)."""

from __future__ import annotations

from bot.domain.runs import BuildAttempt, RebuildArtifacts, StepName
from bot.domain.steps import Plan, StepContext, StepResult, check
from bot.ops.build import Yarn
from bot.text import Code, Rich, rich

TAIL = 20


class Rebuild:
    name = StepName.REBUILD
    follow_ups: tuple[StepName, ...] = ()

    def plan(self, ctx: StepContext) -> Plan[None]:
        return Plan(facts=None, summary=rich(Code("yarn build"), " in ", Code(str(ctx.repo))),
                    lines=[(Code("yarn build"),),
                           ("if it fails: remove ", Code("node_modules"), " and ", Code("dist"), ", ",
                            Code("yarn install"), ", ", Code("yarn build"), " (as the runbook does)")])

    def run(self, ctx: StepContext, plan: Plan[None]) -> StepResult:
        yarn = Yarn(ctx.config.build.executable, ctx.config.build.timeout_s)
        outcome = yarn.rebuild(ctx.repo, on_phase=lambda phase: ctx.progress((phase,)))
        attempts = [BuildAttempt(phase=a.phase, command="yarn " + " ".join(a.completed.argv[1:]),
                                 returncode=a.completed.returncode, seconds=round(a.completed.seconds, 2),
                                 tail=ctx.secrets.redact(a.completed.tail(TAIL)))
                    for a in outcome.attempts]
        steps = " → ".join(f"{a.phase}: {a.command} exit {a.returncode} ({a.seconds:.1f}s)" for a in attempts)
        details: list[Rich] = [(steps,)]
        for attempt in attempts:
            if attempt.returncode != 0 or attempt is attempts[-1]:
                details.append((f"{attempt.phase} ({attempt.command}), last {TAIL} lines:",))
                details.append((Code(attempt.tail or "(no output)"),))
        if outcome.ok:
            summary: Rich = ("built" + (" after a clean install" if outcome.cleaned else "") + f": {steps}",)
        else:
            last_line = attempts[-1].tail.splitlines()[-1] if attempts and attempts[-1].tail else "no output"
            summary = (f"build failed ({steps}): ", Code(last_line))
        return StepResult(ok=outcome.ok, summary=summary, details=details,
                          checks=[check("yarn build", outcome.ok, steps)],
                          artifacts=RebuildArtifacts(cleaned=outcome.cleaned, attempts=attempts))
