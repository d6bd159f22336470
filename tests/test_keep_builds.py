"""When the domain asks to keep the running build (issue 22, item 4): after a verify passes and while the
scheduled checks pass, never while an active incident is changing the target, and never evicting the build of
an active incident's rollback target. The Builds port is a recorder here (a domain unit test); the store behind
it is tested for real in tests/runbook/test_builds.py."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from bot.clock import SystemClock
from bot.config import Secrets, Settings, parse_runbook
from bot.domain.builds import keep_running_build, protected_commits
from bot.domain.deps import Deps
from bot.domain.incident import Busy, BusyKind, Incident
from bot.domain.lifecycle import Phase
from bot.domain.ownership import Owner
from bot.domain.runs import RevertArtifacts, StepName, StepRun, StepStatus
from bot.store.sqlite import SQLiteStore

T0 = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)


class Recorder:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def keep_running(self, reason: str) -> None:
        self.asked.append(reason)

    def stop_keeping(self) -> None:
        self.asked.append("stop")

    def protect(self, commits: Callable[[], Sequence[str]]) -> None:
        return None


def deps(tmp_path: Path, **build: object) -> tuple[Deps, Recorder]:
    settings = Settings(runbook=parse_runbook({"target": {"rollback_target": "df5b229"}, "build": build}),
                        secrets=Secrets.from_environment(None))
    recorder = Recorder()
    made = Deps(settings=settings, store=SQLiteStore(tmp_path / "state.sqlite3"), clock=SystemClock(),
                messenger=None, directory=None, access=None, ui=None, jobs=None, replica=None,  # type: ignore[arg-type]
                secrets=None, target=None, tenant_data=None, tenant_cleanup=None, steps={},  # type: ignore[arg-type]
                builds=recorder)
    return made, recorder


def open_incident(d: Deps, phase: Phase, busy: bool = False) -> Incident:
    incident = Incident(id="RB-0001", number=1, channel="C0INCIDENT", target="/srv/backend", commander="U0C",
                        reason="health 500", created_at=T0)
    incident.lifecycle.phase = phase
    if busy:
        incident.busy = Busy(kind=BusyKind.STEP, ref="RB-0001-rebuild-1", name="rebuild", actor="U0C",
                             owner=Owner(replica="r", instance="i", host="h", pid=1), since=T0)
    d.store.create_incident(incident, ["C0INCIDENT", "/srv/backend"])
    d.store.add_step_run(StepRun(id="RB-0001-revert-1", incident_id="RB-0001", step=StepName.REVERT, actor="U0C",
                                 started_at=T0, finished_at=T0, status=StepStatus.SUCCEEDED,
                                 artifacts=RevertArtifacts(from_sha="b" * 40, to_sha="a" * 40)))
    return incident


def test_with_no_incident_the_running_build_is_kept_and_nothing_is_protected(tmp_path: Path) -> None:
    d, recorder = deps(tmp_path)
    assert keep_running_build(d, "while the scheduled health checks passed")
    assert recorder.asked == ["while the scheduled health checks passed"] and protected_commits(d) == []


def test_after_service_is_back_the_incidents_rollback_target_is_protected(tmp_path: Path) -> None:
    d, recorder = deps(tmp_path)
    open_incident(d, Phase.RESTORED)
    assert keep_running_build(d, "after verify of RB-0001")
    assert recorder.asked == ["after verify of RB-0001"] and protected_commits(d) == ["df5b229", "a" * 40]


def test_nothing_is_kept_while_an_incident_changes_the_target_or_keeping_is_off(tmp_path: Path) -> None:
    d, recorder = deps(tmp_path)
    open_incident(d, Phase.MITIGATING)  # reverted, not verified: the folder's build is not a known good one
    assert not keep_running_build(d, "while the scheduled health checks passed")
    d0, recorder0 = deps(tmp_path / "open")
    open_incident(d0, Phase.OPEN)  # opened, nothing changed yet: the rollback's build comes first
    assert not keep_running_build(d0, "while the scheduled health checks passed")
    assert recorder0.asked == []
    d2, recorder2 = deps(tmp_path / "busy")
    open_incident(d2, Phase.RESTORED, busy=True)  # a rebuild --again is running
    assert not keep_running_build(d2, "while the scheduled health checks passed")
    d3, recorder3 = deps(tmp_path / "off", keep={"max_count": 0})
    assert not keep_running_build(d3, "after verify of RB-0002")
    assert recorder.asked == recorder2.asked == recorder3.asked == []


def test_an_incident_that_opens_while_a_keep_is_asked_for_stops_it(tmp_path: Path) -> None:
    """Found by review: the monitor's thread saw no incident, the incident opened and stopped the keeps running
    (none yet), then the keep started. Asking is checked again once the keep has started."""
    d, recorder = deps(tmp_path)

    class OpensAnIncident(Recorder):
        def keep_running(self, reason: str) -> None:
            super().keep_running(reason)
            open_incident(d, Phase.OPEN)  # /rollback start on the handler's thread, right now

    racing = OpensAnIncident()
    assert not keep_running_build(replace(d, builds=racing), "while the scheduled health checks passed")
    assert racing.asked == ["while the scheduled health checks passed", "stop"]
