"""Forward fix: `hotfix/<name>` from HEAD; `hotfix ship` builds, restarts and verifies the branch, and the
bot then offers to push it (a plain push; if the remote moved on it is refused, never forced)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.runs import HotfixArtifacts, StepName
from bot.domain.steps import Plan, StepContext, StepResult, check
from bot.errors import BadInput, Conflict
from bot.ops.git import WorkTree, validate_hotfix_name
from bot.text import Code, rich


@dataclass(frozen=True)
class HotfixPlan:
    ship: bool
    branch: str
    head: str
    name: str = ""


class Hotfix:
    name = StepName.HOTFIX
    follow_ups: tuple[StepName, ...] = ()  # `ship` is followed by rebuild, restart, verify (see the runner)

    def plan(self, ctx: StepContext) -> Plan[HotfixPlan]:
        tree = WorkTree(ctx.repo)
        if len(ctx.args) != 1:
            raise BadInput("Say the hotfix's name, or ship.",
                           hint=("Example: ", Code("/rollback hotfix fix-feedback-timeout"), ", then ",
                                 Code("/rollback hotfix ship"), "."))
        head = tree.head()
        if ctx.args[0] == "ship":
            branch = tree.branch()
            if not branch or not branch.startswith("hotfix/"):
                raise Conflict(("The repository is on ", Code(branch or "a detached HEAD"), ", not a hotfix branch."),
                               hint=("Create one with ", Code("/rollback hotfix <name>"), " and commit the fix there."))
            return Plan(summary=rich("Ship ", Code(branch), " at ", Code(head.oneline()), ": rebuild, restart, verify"),
                        lines=[("build ", Code(branch), " at ", Code(head.oneline())),
                               ("restart the pm2 app(s) and verify",),
                               ("then offer to push ", Code(branch), " to ", Code(ctx.config.target.remote),
                                " (never forced)")],
                        facts=HotfixPlan(True, branch, head.sha))
        name = validate_hotfix_name(ctx.args[0])
        return Plan(summary=rich("Create ", Code(f"hotfix/{name}"), " from ", Code(head.oneline())),
                    lines=[(Code(f"git checkout -b hotfix/{name}"), " at ", Code(head.oneline())),
                           ("commit the fix there, then ", Code("/rollback hotfix ship"))],
                    facts=HotfixPlan(False, f"hotfix/{name}", head.sha, name))

    def run(self, ctx: StepContext, plan: Plan[HotfixPlan]) -> StepResult:
        facts = plan.facts
        tree = WorkTree(ctx.repo)
        if facts.ship:
            head = tree.head()
            return StepResult(ok=True, summary=("shipping ", Code(facts.branch), " at ", Code(head.oneline())),
                              checks=[check("branch", True, facts.branch)],
                              artifacts=HotfixArtifacts(branch=facts.branch, head=head.sha, ship=True))
        tree.create_branch(facts.name)
        ok = tree.branch() == facts.branch
        return StepResult(ok=ok, summary=("on ", Code(facts.branch), " from ", Code(facts.head[:7])),
                          checks=[check("branch", ok, str(tree.branch()))],
                          artifacts=HotfixArtifacts(branch=facts.branch, head=facts.head, ship=False))
