"""The restart step's pm2 work against a real pm2 daemon: in one Node process through pm2's own API when the
configured pm2 is its npm package's ``bin/pm2``, with three CLI calls otherwise (a wrapper script, which may set
a PM2_HOME of its own); both see the same things: each app's state and error-log size before, the restart, and
each app online with a new pid. Nothing is restarted when pm2 does not know one of the apps, and the app's own
environment (its secrets) never reaches the bot, nor the bot's the app. A daemon that was not running, or that
stops answering, is said to be so."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bot.domain.steps import StepContext
from bot.errors import StepFailed
from bot.ops.pm2 import MARK, RESTART_JS, Pm2
from bot.ops.process import PROJECT_TOOLS, run

APP = """\
console.error('started, and said so on stderr');
require('http').createServer((req, res) => res.end('ok')).listen(0);
"""


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Pm2]:
    """A pm2 daemon of its own (PM2_HOME in tmp_path) running one app, `api`, whose environment holds a secret."""
    pm2 = Pm2(str(PROJECT_TOOLS / "pm2"), tmp_path / "pm2")
    script = tmp_path / "api.js"
    script.write_text(APP)
    try:
        started = run([pm2.executable, "start", str(script), "--name", "api"],
                      env={"PM2_HOME": str(pm2.home), "API_SECRET": "s3cr3t-in-the-apps-env"}, timeout=60)
        assert started.ok, started.output
        yield pm2
    finally:
        pm2.kill()


def wrapped(pm2: Pm2, tmp_path: Path) -> Pm2:
    """The same pm2 behind a wrapper script, as an operator might configure it."""
    wrapper = tmp_path / "bin" / "pm2"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec "{pm2.executable}" "$@"\n')
    wrapper.chmod(0o755)
    return Pm2(str(wrapper), pm2.home)


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().partition("=")[::2] for item in raw if item)


@pytest.mark.parametrize("how", ["api", "cli"])
def test_a_restart_sees_each_app_before_and_online_with_a_new_pid_after(daemon: Pm2, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch,
                                                                        how: str) -> None:
    monkeypatch.setenv("TZ", "Etc/GMT+7")  # the bot's, passed to what it runs: never to the app (no --update-env)
    pm2 = daemon if how == "api" else wrapped(daemon, tmp_path)
    assert (pm2.package_root() is not None) == (how == "api")
    old = pm2.state("api")
    assert old is not None and old.pid and old.err_log
    written = old.err_log.stat().st_size
    assert written > 0  # the app's first start said so on stderr

    seen = pm2.restart_watched(["api"], 30)

    assert seen.error is None and seen.before["api"].pid == old.pid and seen.err_sizes == {"api": written}
    new = seen.after["api"]
    assert new.online and new.pid not in (None, old.pid) and new.restarts == old.restarts + 1
    assert pm2.state("api").pid == new.pid  # type: ignore[union-attr]
    assert new.pid is not None
    env = environ(new.pid)
    assert env.get("API_SECRET") == "s3cr3t-in-the-apps-env" and env.get("TZ") != "Etc/GMT+7"


@pytest.mark.parametrize("how", ["api", "cli"])
def test_nothing_is_restarted_when_pm2_does_not_know_one_of_the_apps(daemon: Pm2, tmp_path: Path, how: str) -> None:
    pm2 = daemon if how == "api" else wrapped(daemon, tmp_path)
    old = pm2.state("api")
    seen = pm2.restart_watched(["api", "worker"], 30)
    assert "worker" not in seen.before and seen.after == {} and seen.error is None
    assert pm2.state("api").pid == old.pid  # type: ignore[union-attr]


@pytest.mark.parametrize("order", [{"apps": ["api"], "timeout_ms": 30000}, {"list_at_ms": 0, "timeout_ms": 30000}],
                         ids=["restart", "list"])
def test_the_apps_environment_never_reaches_the_bot(daemon: Pm2, order: dict[str, object]) -> None:
    """pm2's process list holds each app's environment; the answer keeps only what the bot reads."""
    root = daemon.package_root()
    assert root is not None
    assert "s3cr3t-in-the-apps-env" in run([daemon.executable, "jlist"], env={"PM2_HOME": str(daemon.home)}).output
    said = run(["node", str(RESTART_JS), str(root), json.dumps(order)], env={"PM2_HOME": str(daemon.home)}, timeout=90)
    assert said.ok and MARK in said.output, said.output
    assert "s3cr3t-in-the-apps-env" not in said.output and "API_SECRET" not in said.output
    answer = json.loads(said.output.rsplit(MARK, 1)[1])
    assert [p["name"] for p in answer["after"]] == ["api"] and answer["after"][0]["pm2_env"]["status"] == "online"


@pytest.mark.parametrize("how", ["api", "cli"])
def test_a_daemon_that_was_not_running_is_named_not_the_apps(daemon: Pm2, tmp_path: Path, how: str) -> None:
    """After a reboot (or a `pm2 kill`) asking pm2 starts an empty daemon: the step says that, and what to do."""
    pm2 = daemon if how == "api" else wrapped(daemon, tmp_path)
    assert pm2.kill().ok
    seen = pm2.restart_watched(["api"], 30)
    assert seen.new_daemon and "api" not in seen.before and seen.after == {}
    assert pm2.kill().ok  # the daemon that call started, empty: the step meets none either
    with pytest.raises(StepFailed) as failed:
        restart_step(pm2)
    said = failed.value.plain()
    assert "pm2's daemon was not running" in said and "pm2 resurrect" in said, said


def test_a_daemon_that_stops_answering_is_given_up_and_said_so(daemon: Pm2) -> None:
    """pm2's API never calls back once its daemon stops answering (killed mid-restart, or stopped): the helper
    answers by itself after the wait and its grace, instead of leaving the step silent for a minute or more."""
    pid = int((Path(str(daemon.home)) / "pm2.pid").read_text())
    os.kill(pid, signal.SIGSTOP)
    try:
        began = time.monotonic()
        seen = daemon.restart_watched(["api"], 0.5, grace=1.0)
        took = time.monotonic() - began
    finally:
        os.kill(pid, signal.SIGCONT)
    assert seen.error == "pm2 did not answer within 2s" and seen.before == {} and took < 10, (seen, took)


def restart_step(pm2: Pm2) -> object:
    from bot.config import parse_runbook
    from bot.redact import SecretBook
    from bot.runbook.restart import Restart

    config = parse_runbook({"pm2": {"executable": pm2.executable, "home": str(pm2.home), "apps": ["api"]}})
    ctx = StepContext(incident=None, actor="U0COMMANDER", config=config, data_dir=Path(str(pm2.home)),  # type: ignore[arg-type]
                      args=[], history=[], secrets=SecretBook([], Path(str(pm2.home)) / ".env", lambda _: {}))
    step = Restart()
    return step.run(ctx, step.plan(ctx))


@pytest.mark.parametrize("how", ["api", "cli"])
def test_a_list_asked_for_a_moment_ahead_shows_pm2_as_it_is_at_that_moment(daemon: Pm2, tmp_path: Path,
                                                                          how: str) -> None:
    """Verify asks, while its HTTP checks run, for pm2's list at the moment each restarted app has been up for
    its min_uptime: whatever pm2 does to an app before that moment (here a restart) is in the answer."""
    pm2 = daemon if how == "api" else wrapped(daemon, tmp_path)
    old = pm2.state("api")
    assert old is not None
    when = time.time() + 4
    with ThreadPoolExecutor(max_workers=1) as pool:
        listed = pool.submit(pm2.list_at, when)
        assert pm2.restart("api").ok
        assert time.time() < when, "the restart took more than the 4 s this test leaves it"
        states = {s.name: s for s in listed.result(timeout=60)}
    assert time.time() >= when
    new = pm2.state("api")
    assert new is not None and new.pid != old.pid
    assert states["api"].pid == new.pid and states["api"].restarts == old.restarts + 1 and states["api"].online


def test_a_list_asked_ahead_of_a_daemon_that_stops_answering_gives_up_its_timeout_after_the_moment(
        daemon: Pm2) -> None:
    """The list for a moment 2 s ahead, from a daemon stopped meanwhile: verify is told pm2 did not answer,
    counting the time pm2 was given from that moment (not the wait before it), and not before the moment."""
    pid = int((Path(str(daemon.home)) / "pm2.pid").read_text())
    when = time.time() + 2
    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(StepFailed) as failed:
            daemon.list_at(when, timeout=1.0)
        gave_up = time.time()
    finally:
        os.kill(pid, signal.SIGCONT)
    assert "pm2 did not answer within 1s" in failed.value.plain(), failed.value.plain()
    assert when + 1.0 <= gave_up < when + 10, (when, gave_up)
