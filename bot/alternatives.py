"""Running the runbook's safer alternatives: the change itself, then the recorded steps it needs.

The steps (flag, partial, safe revert, hotfix) live in ``bot.runbook.alternatives``; this decides what
follows each one (rebuild, restart, verify), records the files a partial rollback touched, and offers a
shipped hotfix for a push that is never forced.
"""

from __future__ import annotations

from typing import Any

from bot.comms import who
from bot.errors import BadInput, Conflict, quote
from bot.ids import Action
from bot.incident import Incident
from bot.ops.git import Alternatives, validate_hotfix_name
from bot.redact import redact
from bot.runbook import STEPS
from bot.runbook.alternatives import ALTERNATIVES
from bot.runner import Outcome


class AlternativeRunner:
    def __init__(self, service: Any) -> None:
        self.svc = service  # bot.service.RollbackService

    def run(self, actor: str, channel: str, name: str, args: list[str]) -> list[Outcome]:
        """flag, partial, safe_revert, hotfix: the change, then the follow-ups it needs, each a recorded step."""
        svc = self.svc
        svc.access.require_channel(channel)
        svc.access.require_commander(actor)
        step = ALTERNATIVES[name]
        incident = svc._active_in(channel)
        outcomes = [svc.runner.run(incident, step, actor, args, again=True)]
        first = outcomes[0].result
        if not first.ok:
            return outcomes
        if name == "partial":
            path = str(first.artifacts["path"])

            def rolled_back(fresh: Incident) -> None:
                if path not in fresh.rolled_back_files:
                    fresh.rolled_back_files.append(path)

            svc.mutate(incident.id, rolled_back)
        follow = list(step.follow_ups) or (["rebuild", "restart", "verify"] if first.artifacts.get("ship") else [])
        for follow_up in follow:
            fresh = svc.store.get_incident(incident.id) or incident
            outcomes.append(svc.runner.run(fresh, STEPS[follow_up], actor, [], again=True))
            if not outcomes[-1].result.ok:
                break
        shipped = first.artifacts.get("ship") and all(o.result.ok for o in outcomes) and len(outcomes) > 1
        if shipped:
            self._offer_push(incident, str(first.artifacts["branch"]), str(first.artifacts["head"]))
        return outcomes

    def _offer_push(self, incident: Incident, branch: str, head: str) -> None:
        svc = self.svc
        remote = svc.config.target.remote
        text = (f"🚀 `{branch}` at `{head[:7]}` is built, running and verified. Push it to `{remote}`? "
                f"(a plain push: if `{remote}` has moved on, the push is refused, never forced)")
        push = {"type": "button", "action_id": Action.HOTFIX_PUSH, "value": branch,
                "text": {"type": "plain_text", "text": f"Push {branch} to {remote}"[:75]},
                "confirm": {"title": {"type": "plain_text", "text": "Push the hotfix?"},
                            "text": {"type": "mrkdwn", "text": f"`git push {remote} {branch}` (no force)"},
                            "confirm": {"type": "plain_text", "text": "Push"},
                            "deny": {"type": "plain_text", "text": "Not now"}}}
        blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}},
                                        {"type": "actions", "elements": [push]}]
        svc.messenger.post(incident.channel, text, blocks, thread_ts=incident.panel_ts)

    def push_hotfix(self, actor: str, channel: str, branch: str) -> str:
        svc = self.svc
        svc.access.require_channel(channel)
        svc.access.require_commander(actor)
        incident = svc._active_in(channel)
        if not branch.startswith("hotfix/"):
            raise BadInput(f"`{quote(branch)}` is not a hotfix branch.")
        validate_hotfix_name(branch.removeprefix("hotfix/"))
        tree = Alternatives(svc.config.target.repo_path)
        remote = svc.config.target.remote
        if not tree.has_remote(remote):
            raise BadInput(f"The repository has no remote `{remote}`.", hint="Set `target.remote` in rollback.yml.")
        now = svc.clock.now()
        try:
            output = tree.push(remote, branch)
        except Exception as error:  # noqa: BLE001 - a refused push is reported, never forced
            svc.store.audit(now, actor, "hotfix.push_refused", incident.id, branch=branch, remote=remote)
            raise Conflict(f"`git push {remote} {branch}` was refused: {redact(str(error), svc.secrets())[-300:]}",
                           hint="Nothing was forced. Fetch, rebase the hotfix and ship again.") from None
        svc.store.audit(now, actor, "hotfix.pushed", incident.id, branch=branch, remote=remote)
        svc.say(incident.channel, f"📤 {who(actor)} pushed `{branch}` to `{remote}`.", thread_ts=incident.panel_ts)
        return output
