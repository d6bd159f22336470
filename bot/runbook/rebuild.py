"""Step 3: rebuild with yarn; on failure clear node_modules and dist, install and build again."""

from __future__ import annotations

from bot.ops.build import Yarn
from bot.redact import redact
from bot.runbook.base import Check, Plan, StepContext, StepResult


class Rebuild:
    name = "rebuild"
    title = "Rebuild backend"
    usage = "rebuild"

    def plan(self, ctx: StepContext) -> Plan:
        return Plan(summary=f"`yarn build` in `{ctx.repo}`",
                    lines=["`yarn build`", "if it fails: remove `node_modules` and `dist`, `yarn install`, "
                                           "`yarn build` (as the runbook does)"])

    def run(self, ctx: StepContext, plan: Plan) -> StepResult:
        ctx.progress("yarn build")
        outcome = Yarn(ctx.config.build.executable, ctx.config.build.timeout_s).rebuild(ctx.repo)
        steps = " → ".join(f"`yarn {' '.join(a.argv[1:])}` exit {a.returncode} ({a.seconds:.1f}s)"
                           for a in outcome.attempts)
        tail = redact(outcome.last.tail(20), ctx.secrets)
        details = [steps, "```" + (tail or "(no output)") + "```"]
        if outcome.ok:
            summary = "built" + (" after a clean install" if outcome.cleaned else "") + f": {steps}"
        else:
            last_line = tail.splitlines()[-1] if tail else "no output"
            summary = f"build failed ({steps}): {last_line}"
        return StepResult(ok=outcome.ok, summary=summary, details=details,
                          checks=[Check("yarn build", outcome.ok, steps)],
                          artifacts={"cleaned": outcome.cleaned,
                                     "attempts": [[" ".join(a.argv[1:]), a.returncode] for a in outcome.attempts]})
