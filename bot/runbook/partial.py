"""Safer alternative 2: one tracked file back from a commit (default: the rollback target), then rebuild,
restart and verify. Paths outside the repository (``..``, absolute, option-looking, symlinks out) are refused."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import PurePosixPath

from bot.domain.runs import PartialArtifacts, StepName
from bot.domain.steps import Plan, StepContext, StepResult, check
from bot.errors import BadInput, echo
from bot.ops.git import WorkTree
from bot.text import Code, Rich, rich

EXAMPLE = Code("/rollback partial src/modules/internship/internship-feedback.service.ts")


def safe_path(ctx: StepContext, text: str) -> str:
    value = text.strip()
    pure = PurePosixPath(value)
    if (not value or len(value) > 1024 or any(len(part) > 255 for part in pure.parts)
            or value.startswith(("-", "/", "~")) or "\\" in value or ".." in pure.parts
            or any(ch in value for ch in "\n\r\0:*?[$`;|&<>'\"") or pure.parts[:1] == (".git",)):
        raise BadInput((echo(value), " is not a path inside the repository."),
                       hint=("Give a tracked file relative to the repository, like ", EXAMPLE, "."))
    repo = ctx.repo.resolve()
    full = ctx.repo / value
    try:
        outside = full.is_symlink() or not str(full.resolve()).startswith(str(repo) + os.sep)
    except OSError:
        outside = True
    if outside:
        raise BadInput((echo(value), " leads outside the repository."), hint="Give a regular tracked file.")
    return str(pure)


@dataclass(frozen=True)
class PartialPlan:
    path: str
    commit: str


class Partial:
    name = StepName.PARTIAL
    follow_ups: tuple[StepName, ...] = (StepName.REBUILD, StepName.RESTART, StepName.VERIFY)

    def plan(self, ctx: StepContext) -> Plan[PartialPlan]:
        if not ctx.args or len(ctx.args) > 2:
            raise BadInput("Say which file to roll back, and optionally from which commit.",
                           hint=("Example: ", EXAMPLE, "."))
        path = safe_path(ctx, ctx.args[0])
        tree = WorkTree(ctx.repo)
        target = tree.require(ctx.args[1] if len(ctx.args) > 1 else ctx.config.target.rollback_target)
        if not tree.tracked(path, target.sha):
            raise BadInput((Code(path), " is not a tracked file at ", Code(target.short), "."),
                           hint=("Give a file git tracks (", Code("git ls-files"), "), relative to the repository."))
        lines: list[Rich] = [rich(Code(f"git checkout {target.short} -- {path}"), f" ({target.summary})"),
                             ("diff stat:",), (Code(tree.diff_stat(target.sha, path)),)]
        if path in tree.dirty_files():
            lines.append(("first stashes the uncommitted changes to ", Code(path)))
        lines.append(("then rebuild, restart and verify",))
        return Plan(summary=rich("Roll ", Code(path), " back to ", Code(target.oneline())), lines=lines,
                    facts=PartialPlan(path, target.sha))

    def run(self, ctx: StepContext, plan: Plan[PartialPlan]) -> StepResult:
        facts = plan.facts
        tree = WorkTree(ctx.repo)
        stash = None
        if facts.path in tree.dirty_files():
            stash = tree.stash_paths(f"rollback-bot {ctx.incident.id}: before partial rollback of {facts.path}",
                                     [facts.path])
        ctx.progress(("checking out ", Code(facts.path)))
        tree.checkout_file(facts.commit, facts.path)
        ok = tree.diff_stat(facts.commit, facts.path) == "no difference"
        details: list[Rich] = [(Code(facts.path), " is now as in ", Code(facts.commit[:7]))]
        if stash:
            details.append(("Its uncommitted changes are safe in the stash ", Code(stash[:10]), "."))
        return StepResult(ok=ok, summary=(Code(facts.path), " rolled back to ", Code(facts.commit[:7])),
                          details=details,
                          checks=[check(f"{facts.path} at {facts.commit[:7]}", ok, "matches" if ok else "differs")],
                          artifacts=PartialArtifacts(path=facts.path, commit=facts.commit, stash=stash))
