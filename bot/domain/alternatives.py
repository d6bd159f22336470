"""The runbook's safer alternatives, run end to end: the change itself, then the recorded steps it needs.

Each alternative is a step (``bot.runbook.flag``/``partial``/``safe_revert``/``hotfix``); this decides what
follows it (rebuild, restart, verify), records the files a partial rollback touched, and offers a shipped
hotfix for a push that is never forced.
"""

from __future__ import annotations

from bot.domain.access import Act
from bot.domain.deps import Deps
from bot.domain.desk import Desk
from bot.domain.incident import Incident
from bot.domain.runner import Outcome, StepRunner
from bot.domain.runs import HotfixArtifacts, PartialArtifacts, StepName
from bot.domain.steps import TITLES, RegisteredStep
from bot.errors import BadInput, Conflict, echo
from bot.text import Code, Person, rich

SHIP_FOLLOW_UPS = (StepName.REBUILD, StepName.RESTART, StepName.VERIFY)


class Alternatives:
    def __init__(self, deps: Deps, desk: Desk, runner: StepRunner) -> None:
        self.deps, self.desk, self.runner = deps, desk, runner

    def run(self, actor: str, channel: str, name: StepName, args: list[str]) -> list[Outcome]:
        """flag, partial, safe_revert, hotfix: the change, then the follow-ups it needs, each a recorded step."""
        self.deps.access.require(Act.ALTERNATIVE, actor, channel)
        step = self.deps.steps[name]
        incident = self.desk.active_in(channel)
        outcomes = self._run(incident, step, actor, args)
        last = outcomes[-1]
        self.runner.tell_next(actor, incident.id, rich(TITLES[last.run.step], " ", "succeeded" if last.result.ok
                                                       else "failed"), last.result.ok)
        return outcomes

    def _run(self, incident: Incident, step: RegisteredStep, actor: str, args: list[str]) -> list[Outcome]:
        outcomes = [self.runner.run(incident, step, actor, args, again=True)]
        first = outcomes[0]
        if not first.result.ok:
            return outcomes
        artifacts = first.run.artifacts
        if isinstance(artifacts, PartialArtifacts):
            path = artifacts.path

            def rolled_back(fresh: Incident) -> None:
                if path not in fresh.rolled_back_files:
                    fresh.rolled_back_files.append(path)

            self.desk.mutate(incident.id, rolled_back)
        shipping = isinstance(artifacts, HotfixArtifacts) and artifacts.ship
        for follow_up in step.follow_ups or (SHIP_FOLLOW_UPS if shipping else ()):
            fresh = self.desk.get(incident.id)
            outcomes.append(self.runner.run(fresh, self.deps.steps[follow_up], actor, [], again=True))
            if not outcomes[-1].result.ok:
                break
        if shipping and isinstance(artifacts, HotfixArtifacts) and all(o.result.ok for o in outcomes):
            remote = self.deps.config.target.remote
            self.desk.thread(incident, self.deps.ui.hotfix_offer(artifacts.branch, artifacts.head or "", remote,
                                                                 self.deps.target.has_remote(remote)))
        return outcomes

    def push_hotfix(self, actor: str, channel: str, branch: str) -> str:
        self.deps.access.require(Act.ALTERNATIVE, actor, channel)
        incident = self.desk.active_in(channel)
        if not branch.startswith("hotfix/"):
            raise BadInput((echo(branch), " is not a hotfix branch."))
        target = self.deps.target
        target.validate_hotfix_name(branch.removeprefix("hotfix/"))
        remote = self.deps.config.target.remote
        if not target.has_remote(remote):
            raise BadInput(("The repository has no remote ", Code(remote), "."),
                           hint=("Set ", Code("target.remote"), " in rollback.yml."))
        now = self.deps.clock.now()
        try:
            output = target.push(remote, branch)
        except Exception as error:  # noqa: BLE001 - a refused push is reported, never forced
            self.desk.audit(now, actor, "hotfix.push_refused", incident.id, branch=branch, remote=remote)
            raise Conflict((Code(f"git push {remote} {branch}"), " was refused: ",
                            self.desk.clean(str(error))[-300:]),
                           hint="Nothing was forced. Fetch, rebase the hotfix and ship again.") from None
        self.desk.audit(now, actor, "hotfix.pushed", incident.id, branch=branch, remote=remote)
        self.desk.thread(incident, rich("📤 ", Person(actor), " pushed ", Code(branch), " to ", Code(remote), "."))
        return output
