"""The danger zone: runbook step 6 (and its undo) under the two-person rule.

- :mod:`.plans` — the backup run a request relies on (re-verified on disk), dry runs, drift.
- :mod:`.gate` — the request and the reactions that decide it (a state machine of conditional writes).
- :mod:`.executor` — the run: started by its own scheduled job once an approval's delay has passed, claimed
  once, owned by one process, resumable per tenant, failures told.
"""

from __future__ import annotations

from bot.domain.danger.executor import Executor
from bot.domain.danger.gate import Gate
from bot.domain.danger.plans import Planner

__all__ = ["Executor", "Gate", "Planner"]
