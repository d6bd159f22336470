"""The danger zone: runbook step 6 (and its undo) under the two-person rule.

- :mod:`.plans` — the backup run a request relies on (re-verified on disk), dry runs, drift.
- :mod:`.gate` — the request and the reactions that decide it (a state machine of conditional writes).
- :mod:`.executor` — the run: claimed once, owned by one process, resumable per tenant, failures told.
"""

from __future__ import annotations

from bot.domain.approvals import Approval, DangerAction
from bot.domain.danger.executor import Executor
from bot.domain.danger.gate import Gate
from bot.domain.danger.plans import Planner
from bot.domain.deps import Deps
from bot.domain.desk import Desk


class DangerZone:
    def __init__(self, deps: Deps, desk: Desk) -> None:
        self.planner = Planner(deps)
        self.gate = Gate(deps, desk, self.planner)
        self.executor = Executor(deps, desk, self.planner, self.gate)

    def request(self, actor: str, channel: str, action: DangerAction, args: list[str]) -> Approval:
        return self.gate.request(actor, channel, action, args)

    def react(self, user: str, channel: str, ts: str, emoji: str, added: bool) -> None:
        self.gate.on_reaction(user, channel, ts, emoji, added)

    def sweep(self) -> None:
        self.executor.sweep()

    def close(self) -> None:
        self.executor.close()


__all__ = ["DangerZone", "Executor", "Gate", "Planner"]
