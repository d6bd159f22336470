"""When the bot keeps the running build (issue 22's last-known-good builds): after a verify passes, and after a
scheduled health check run where everything passed, never while a step of an active incident is running or
its service is not restored yet (the folder then holds a build that is not the one that was checked, or the
rollback needs the machine); a keep running when an incident opens is stopped. The builds
themselves, and which ones may be kept, are the ``Builds`` port's (``bot/ops/builds.py`` behind it)."""

from __future__ import annotations

import logging

from bot.domain.deps import Deps
from bot.domain.lifecycle import Phase
from bot.domain.runs import RevertArtifacts, StepName

log = logging.getLogger(__name__)


def protected_commits(deps: Deps) -> list[str]:
    """The commits active incidents go back to: the rollback target and every revert's target. Their kept builds
    are never evicted (asked each time the store evicts, so an incident opened meanwhile counts)."""
    active = deps.store.active_incidents()
    protect = [deps.config.target.rollback_target] if active else []
    for incident in active:
        protect += [r.artifacts.to_sha for r in deps.store.step_runs(incident.id)
                    if r.step is StepName.REVERT and r.succeeded and isinstance(r.artifacts, RevertArtifacts)]
    return protect


def keep_running_build(deps: Deps, reason: str) -> bool:
    """Ask the port to keep a build of HEAD's commit (made alone, in a worktree), unless an active incident is in
    the middle of changing the target or has not restored service yet (its build alongside the backup and its
    rebuild come first: :func:`stop_keeping` stopped any keep running when it opened); whether it was asked."""
    if deps.config.build.keep.max_count == 0:
        return False
    if _rollback_under_way(deps):
        return False
    try:
        deps.builds.keep_running(reason)
    except Exception:  # keeping a build is an optimisation: the rebuild runs yarn without it
        log.warning("could not keep the running build", exc_info=True)
        return False
    if _rollback_under_way(deps):  # an incident opened meanwhile: its stop_keeping may have come before the keep
        stop_keeping(deps)
        return False
    return True


def _rollback_under_way(deps: Deps) -> bool:
    return any(i.busy is not None or i.lifecycle.phase in (Phase.OPEN, Phase.MITIGATING)
               for i in deps.store.active_incidents())


def stop_keeping(deps: Deps) -> None:
    """An incident opened: a keep running now (a worktree's yarn install and build, tens of seconds) would hold
    yarn's cache and the machine's cores while the rollback needs them. It is stopped and keeps nothing."""
    try:
        deps.builds.stop_keeping()
    except Exception:  # an optimisation: the incident opens whatever happens to it
        log.warning("could not stop the keep of the running build", exc_info=True)
