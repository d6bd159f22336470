"""Safer alternative: `git revert` of the commits (default: all after the rollback target) as new commits;
nothing rewritten. A conflict aborts cleanly and is reported. Then rebuild, restart, verify."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.runs import SafeRevertArtifacts, StepName
from bot.domain.steps import Plan, StepContext, StepResult, check
from bot.errors import BadInput, Conflict
from bot.ops.git import WorkTree
from bot.text import Code, Rich, join, rich


@dataclass(frozen=True)
class SafeRevertPlan:
    commits: list[str]
    head: str


class SafeRevert:
    name = StepName.SAFE_REVERT
    follow_ups: tuple[StepName, ...] = (StepName.REBUILD, StepName.RESTART, StepName.VERIFY)

    def plan(self, ctx: StepContext) -> Plan[SafeRevertPlan]:
        tree = WorkTree(ctx.repo)
        head = tree.head()
        if ctx.args:
            commits = []
            for text in ctx.args:
                found = tree.require(text)
                if not tree.is_ancestor(found.sha, head.sha):
                    raise BadInput((Code(found.short), " is not in the history of HEAD, so there is nothing to "
                                    "revert."))
                commits.append(found)
            commits.sort(key=lambda c: len(tree.commits_between(c.sha, head.sha)))  # newest first
        else:
            target = tree.resolve(ctx.config.target.rollback_target)
            if target is None or not tree.is_ancestor(target.sha, head.sha):
                raise BadInput("The rollback target is not below HEAD.", hint="Name the commits to revert.")
            commits = tree.commits_between(target.sha, head.sha)
        if not commits:
            raise Conflict("There are no commits to revert.")
        dirty = tree.dirty_files()
        lines: list[Rich] = [rich(Code("git revert --no-edit"), f" {len(commits)} commit(s), newest first, as new "
                                  "commits (history is not rewritten): ",
                                  join([(Code(c.oneline()),) for c in commits[:10]]))]
        if dirty:
            lines.append((f"first stashes {len(dirty)} uncommitted file(s)",))
        lines.append(("a conflict aborts the revert and leaves the tree as it was; then rebuild, restart, verify",))
        return Plan(summary=(f"Revert {len(commits)} commit(s) with new commits",), lines=lines,
                    facts=SafeRevertPlan([c.sha for c in commits], head.sha))

    def run(self, ctx: StepContext, plan: Plan[SafeRevertPlan]) -> StepResult:
        facts = plan.facts
        tree = WorkTree(ctx.repo)
        if tree.head().sha != facts.head:
            raise Conflict("HEAD moved since the plan was made; run it again to see the new plan.")
        stash = None
        if tree.is_dirty():
            stash = tree.stash(f"rollback-bot {ctx.incident.id}: before safe revert")
        ctx.progress((Code("git revert"),))
        conflicts = tree.revert_commits(facts.commits)
        head = tree.head()
        if conflicts:
            return StepResult(ok=False, summary=("conflicts: the revert was aborted, nothing changed ("
                                                 + ", ".join(conflicts) + ")",),
                              details=[("HEAD is still ", Code(head.oneline()))],
                              checks=[check("git revert", False, "conflict in " + ", ".join(conflicts))],
                              artifacts=SafeRevertArtifacts(conflicts=conflicts, stash=stash))
        added = tree.commits_between(facts.head, head.sha)
        details: list[Rich] = [(Code("git log --oneline -5"), ":"),
                               (Code("\n".join(c.oneline() for c in tree.log(5))),)]
        if stash:
            details.append(("Uncommitted work is in the stash ", Code(stash[:10]), "."))
        return StepResult(ok=True, summary=(f"{len(added)} revert commit(s) added; HEAD ", Code(head.oneline())),
                          details=details, checks=[check("git revert", True, f"{len(added)} new commit(s)")],
                          artifacts=SafeRevertArtifacts(head=head.sha, added=[c.sha for c in added], stash=stash))
