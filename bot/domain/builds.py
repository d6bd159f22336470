"""When the bot keeps the running build (issue 22's last-known-good builds): after a verify passes, and after a
scheduled health check run where everything passed, never while a step of an active incident is running or a
fix is not verified yet (the folder then holds a build that is not the one that was checked). The builds
themselves, and which ones may be kept, are the ``Builds`` port's (``bot/ops/builds.py`` behind it)."""

from __future__ import annotations

import logging

from bot.domain.deps import Deps
from bot.domain.lifecycle import Phase
from bot.domain.runs import RevertArtifacts, StepName

log = logging.getLogger(__name__)


def keep_running_build(deps: Deps, reason: str) -> bool:
    """Ask the port to keep the build in the target's folder, unless an active incident is in the middle of
    changing it; whether it was asked. The rollback target of every active incident is protected from eviction."""
    if deps.config.build.keep.max_count == 0:
        return False
    active = deps.store.active_incidents()
    if any(i.busy is not None or i.lifecycle.phase is Phase.MITIGATING for i in active):
        return False
    protect = [deps.config.target.rollback_target] if active else []
    for incident in active:
        protect += [r.artifacts.to_sha for r in deps.store.step_runs(incident.id)
                    if r.step is StepName.REVERT and r.succeeded and isinstance(r.artifacts, RevertArtifacts)]
    try:
        deps.builds.keep_running(reason, protect)
    except Exception:  # keeping a build is an optimisation: the rebuild runs yarn without it
        log.warning("could not keep the running build", exc_info=True)
        return False
    return True
