"""Step 2: revert the code to the rollback target — stash uncommitted work first, so nothing is lost."""

from __future__ import annotations

from bot.errors import BadInput, Conflict
from bot.ops.git import WorkTree
from bot.runbook.base import Check, Plan, StepContext, StepResult


class Revert:
    name = "revert"
    title = "Revert code"
    usage = "revert [commit]"

    def plan(self, ctx: StepContext) -> Plan:
        if len(ctx.args) > 1:
            raise BadInput("revert takes one commit id.", hint="Example: `/rollback revert df5b229`.")
        tree = WorkTree(ctx.repo)
        target = tree.require(ctx.args[0] if ctx.args else ctx.config.target.rollback_target)
        head = tree.head()
        if target.sha == head.sha:
            raise Conflict(f"HEAD is already `{target.oneline()}`; there is nothing to revert.")
        if not tree.is_ancestor(target.sha, head.sha):
            raise BadInput(f"`{target.short}` is not an ancestor of HEAD (`{head.short}`); resetting to it would "
                           "jump sideways in history.", hint="Pick a commit from `git log --oneline` below HEAD.")
        dropped = tree.commits_between(target.sha, head.sha)
        dirty = tree.dirty_files()
        lines = [f"`git reset --hard {target.short}` ({target.summary})",
                 f"drops {len(dropped)} commit(s): " + ", ".join(f"`{c.oneline()}`" for c in dropped[:10])
                 + (" …" if len(dropped) > 10 else "")]
        if dirty:
            lines.append(f"first stashes {len(dirty)} uncommitted file(s) as "
                         f"`rollback-bot {ctx.incident.id}: before revert to {target.short}`: "
                         + ", ".join(f"`{f}`" for f in dirty[:8]))
        return Plan(summary=f"Reset to `{target.oneline()}`, dropping {len(dropped)} commit(s)", lines=lines,
                    data={"target": target.sha, "from": head.sha, "dropped": [c.oneline() for c in dropped],
                          "dirty": dirty})

    def run(self, ctx: StepContext, plan: Plan) -> StepResult:
        tree = WorkTree(ctx.repo)
        target = plan.data["target"]
        if tree.head().sha != plan.data["from"]:
            raise Conflict("HEAD moved since the plan was made; run revert again to see the new plan.")
        stash = None
        if tree.is_dirty():
            ctx.progress("stashing uncommitted work")
            stash = tree.stash(f"rollback-bot {ctx.incident.id}: before revert to {target[:7]}")
        ctx.progress(f"resetting to {target[:7]}")
        tree.reset_hard(target)
        head = tree.head()
        log = tree.log(5)
        ok = head.sha == target
        details = ["`git log --oneline -5`:", "```" + "\n".join(c.oneline() for c in log) + "```"]
        if stash:
            details.append(f"Uncommitted work is safe in the stash `{stash[:10]}` "
                           f"(`git stash list` shows `rollback-bot {ctx.incident.id}`).")
        return StepResult(
            ok=ok, summary=f"HEAD is now `{head.oneline()}`" + (f"; uncommitted work stashed as `{stash[:10]}`"
                                                                  if stash else ""),
            details=details, checks=[Check("HEAD equals target", ok, head.sha)],
            artifacts={"from": plan.data["from"], "to": head.sha, "dropped": plan.data["dropped"], "stash": stash},
        )
