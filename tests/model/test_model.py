"""The model-based search in `make test`: a bounded, reproducible run with the real parts (real yarn, pm2 and
HTTP probes behind the steps). `make soak` runs many more sequences (tests/model/test_soak.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, seed, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.conftest import TestServer
from tests.model.machine import Report, RollbackMachine
from tests.model.world import World

pytestmark = pytest.mark.slow
EXAMPLES = int(os.environ.get("MODEL_EXAMPLES", "6"))
STEPS = int(os.environ.get("MODEL_STEPS", "12"))
SEED = int(os.environ.get("MODEL_SEED", "20"))  # a fixed seed: CI runs the same sequences every time
#: invariants whose violations the bot is known to have (issue 20; each has a strict xfail in test_regressions.py):
#: counted in the report, not failing the bounded run, until the fixes are merged and this list is emptied
KNOWN = {name for name in os.environ.get("MODEL_KNOWN", "").split(",")
         if name}


@pytest.fixture
def world(tmp_path: Path, mongo_server: TestServer) -> Iterator[World]:
    made = World(tmp_path, mongo_server.uri, local_server=mongo_server.local, real_ops=True)
    yield made
    made.close()


def machine_for(world: World, report: Report) -> type[RollbackMachine]:
    return type("Rollback", (RollbackMachine,), {"world": world, "report": report})


def test_random_paths_through_the_real_bot_keep_every_invariant(world: World) -> None:
    report = Report(known=set(KNOWN))
    run_state_machine_as_test(seed(SEED)(machine_for(world, report)), settings=settings(
        max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, database=None,
        suppress_health_check=list(HealthCheck), report_multiple_bugs=False))
    print(f"\nmodel: {report.sequences} sequences, {report.steps} steps, rules {dict(report.rules)}, "
          f"known violations counted {dict(report.violations)}")
    assert report.sequences >= 1
