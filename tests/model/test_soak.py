"""`make soak`: the model-based search for long, on the fast tier (see tests/model/world.py), in batches, in
``SOAK_WORKERS`` shards at once (pytest-xdist processes, each with its own world; an example mostly waits on the
bot, so shards share a core well). ``python -m tests.model.soak_total`` adds their reports up afterwards.

Each batch is one Hypothesis run of ``SOAK_BATCH`` sequences with a fresh random seed. A batch that finds a
violation shrinks it, and the shortest sequence Hypothesis printed is kept in the report; the invariant then
joins ``known`` (counted, no longer failing), so the search goes on past it. It stops after ``SOAK_SEQUENCES``
sequences (over all shards) or ``SOAK_MINUTES``, prints how often each rule ran, the number of sequences and every
violation, writes build/soak-report-<shard>.json, and fails if anything was violated.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.errors import Flaky
from hypothesis.stateful import run_state_machine_as_test

from tests.conftest import TestServer
from tests.model.machine import Report, Violation
from tests.model.soak_total import summary
from tests.model.test_model import machine_for
from tests.model.world import World, fast_steps

pytestmark = pytest.mark.skipif(not os.environ.get("SOAK_SEQUENCES"), reason="make soak runs it (SOAK_SEQUENCES)")
ROOT = Path(__file__).resolve().parents[2]
WORKERS = max(1, int(os.environ.get("SOAK_WORKERS", "1")))


@pytest.fixture
def fast_world(tmp_path: Path, mongo_server: TestServer) -> Iterator[World]:
    made = World(tmp_path, mongo_server.uri, local_server=mongo_server.local, real_ops=False)
    yield made
    made.close()


@pytest.mark.parametrize("shard", range(WORKERS))
def test_soak(fast_world: World, shard: int) -> None:
    total = int(os.environ["SOAK_SEQUENCES"])
    target = total // WORKERS + (shard < total % WORKERS)
    budget = float(os.environ.get("SOAK_MINUTES", "60")) * 60
    batch = int(os.environ.get("SOAK_BATCH", "25"))
    steps = int(os.environ.get("SOAK_STEPS", "12"))
    out = Path(os.environ.get("SOAK_REPORT", ROOT / "build" / f"soak-report-{shard}.json"))
    report = Report(known={name for name in os.environ.get("SOAK_KNOWN", "").split(",") if name})
    machine = machine_for(fast_world, report)
    began = time.monotonic()
    with fast_steps():
        while report.sequences < target and time.monotonic() - began < budget:
            sequences = report.sequences
            try:
                run_state_machine_as_test(machine, settings=settings(
                    max_examples=min(batch, target - report.sequences), stateful_step_count=steps, deadline=None,
                    database=None, suppress_health_check=list(HealthCheck), report_multiple_bugs=False))
            except Violation as found:
                _keep(report, found.name, found)
            except Flaky as flaky:  # Hypothesis could not replay a sequence the same way (timing-dependent)
                inner = _failure_in(flaky)
                if isinstance(inner, Violation):  # counted when it happened (a Violation is counted, then raised)
                    _keep(report, inner.name, inner)
                elif inner is not None:  # a rule crashed in it: a finding
                    _keep(report, f"error:{type(inner).__name__}", inner)
                else:  # only the harness's replay differed: no invariant failed and no rule crashed
                    report.flaky += 1
                    report.first_seen.setdefault(f"harness:{type(flaky).__name__}", "\n".join(report.last_log))
            except Exception as error:  # noqa: BLE001 - a crash of a rule is a finding too; keep searching
                _keep(report, f"error:{type(error).__name__}", error)
                if report.sequences == sequences + 1:  # not one sequence got through: the world itself is broken
                    break
            _write(report, out)
    _write(report, out)
    print(f"\nshard {shard}: {summary(report.as_json())}report: {out}")
    assert not report.violations and not report.failures, f"violations: {dict(report.violations)}"


def _failure_in(error: BaseException) -> BaseException | None:
    """The first real failure inside a Flaky* error: a Violation or a rule's crash (None: only the replay
    itself was inconsistent)."""
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            if (found := _failure_in(inner)) is not None:
                return found
        return None
    return None if isinstance(error, Flaky) else error


def _keep(report: Report, name: str, error: BaseException) -> None:
    notes = "\n".join(getattr(error, "__notes__", []))
    said = "\n".join(f"  {line}" for line in report.last_log)
    report.failures.setdefault(name, f"{error}\n{notes}\nin words:\n{said}\n" + (
        "" if isinstance(error, Violation) else "".join(traceback.format_exception(error))[-3000:]))
    report.violations[name] += 0 if isinstance(error, Violation) else 1
    report.known.add(name)


def _write(report: Report, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report.as_json(), indent=2), encoding="utf-8")
