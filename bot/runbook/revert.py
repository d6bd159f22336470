"""Step 2: revert the code to the rollback target — stash uncommitted work first, so nothing is lost."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.runs import RevertArtifacts, StepName
from bot.domain.steps import Plan, StepContext, StepResult, check
from bot.errors import BadInput, Conflict
from bot.ops.git import WorkTree
from bot.text import Code, Rich, join, rich


@dataclass(frozen=True)
class RevertPlan:
    target: str
    head: str
    dropped: list[str]


class Revert:
    name = StepName.REVERT
    follow_ups: tuple[StepName, ...] = ()

    def plan(self, ctx: StepContext) -> Plan[RevertPlan]:
        if len(ctx.args) > 1:
            raise BadInput("revert takes one commit id.", hint=("Example: ", Code("/rollback revert df5b229"), "."))
        tree = WorkTree(ctx.repo)
        target = tree.require(ctx.args[0] if ctx.args else ctx.config.target.rollback_target)
        head = tree.head()
        if target.sha == head.sha:
            raise Conflict(("HEAD is already ", Code(target.oneline()), "; there is nothing to revert."))
        if not tree.is_ancestor(target.sha, head.sha):
            raise BadInput((Code(target.short), " is not an ancestor of HEAD (", Code(head.short),
                            "); resetting to it would jump sideways in history."),
                           hint="Pick a commit from `git log --oneline` below HEAD.")
        dropped = tree.commits_between(target.sha, head.sha)
        dirty = tree.dirty_files()
        shown: list[Rich] = [(Code(c.oneline()),) for c in dropped[:10]]
        lines: list[Rich] = [rich(Code(f"git reset --hard {target.short}"), f" ({target.summary})"),
                             rich(f"drops {len(dropped)} commit(s): ", join(shown), " …" if len(dropped) > 10 else "")]
        if dirty:
            lines.append(rich(f"first stashes {len(dirty)} uncommitted file(s) as ",
                              Code(f"rollback-bot {ctx.incident.id}: before revert to {target.short}"), ": ",
                              join([(Code(f),) for f in dirty[:8]])))
        return Plan(summary=rich("Reset to ", Code(target.oneline()), f", dropping {len(dropped)} commit(s)"),
                    lines=lines, facts=RevertPlan(target.sha, head.sha, [c.oneline() for c in dropped]))

    def run(self, ctx: StepContext, plan: Plan[RevertPlan]) -> StepResult:
        facts = plan.facts
        tree = WorkTree(ctx.repo)
        if tree.head().sha != facts.head:
            raise Conflict("HEAD moved since the plan was made; run revert again to see the new plan.")
        stash = None
        if tree.is_dirty():
            ctx.progress(("stashing uncommitted work",))
            stash = tree.stash(f"rollback-bot {ctx.incident.id}: before revert to {facts.target[:7]}")
        ctx.progress(("resetting to ", Code(facts.target[:7])))
        tree.reset_hard(facts.target)
        head = tree.head()
        ok = head.sha == facts.target
        details: list[Rich] = [(Code("git log --oneline -5"), ":"),
                               (Code("\n".join(c.oneline() for c in tree.log(5))),)]
        if stash:
            details.append(("Uncommitted work is safe in the stash ", Code(stash[:10]), " (", Code("git stash list"),
                            " shows ", Code(f"rollback-bot {ctx.incident.id}"), ")."))
        summary = rich("HEAD is now ", Code(head.oneline()),
                       ("; uncommitted work stashed as ", Code(stash[:10])) if stash else ())
        return StepResult(ok=ok, summary=summary, details=details,
                          checks=[check("HEAD equals target", ok, head.sha)],
                          artifacts=RevertArtifacts(from_sha=facts.head, to_sha=head.sha, dropped=facts.dropped,
                                                    stash=stash))
