"""A sweep of this very process running between a run's claim and its thread must not take the run over."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bot.dev.sandbox import Sandbox
from bot.domain.approvals import ApprovalStatus
from tests.danger.test_cleanup import Drill, drill, with_fields

__all__ = ["drill"]  # the fixture, shared with the cleanup tests


def test_a_sweep_between_the_claim_and_the_run_does_not_take_over_this_processs_own_run(
        drill: Callable[..., Drill], sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    incident = drill()
    before = with_fields(sandbox)
    services = incident.bot.services
    pool = services.executor._pool
    real_submit = pool.submit
    swept: list[str] = []

    def sweep_first(fn: Callable[[], Any]) -> Any:  # the scheduler's sweep lands right after the claim
        swept.append("settle")
        services.executor.sweep()
        return real_submit(fn)

    monkeypatch.setattr(pool, "submit", sweep_first)
    ts = incident.request()
    incident.react("alex", ts)
    incident.wait_status(ts, ApprovalStatus.EXECUTED)
    assert swept == ["settle"]  # exactly one start went through the pool: no second run was submitted
    assert incident.audit("danger.resumed") == []
    assert {r.db: r.modified for r in incident.results(ts)} == before
    assert len(incident.audit("danger.started")) == 1 and len(incident.audit("cleanup.tenant")) == 3
