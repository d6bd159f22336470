"""pm2: `pm2 jlist` JSON for state, the restart step's work in one Node process through pm2's own programmatic API
(``pm2_restart.js``; its CLI, three calls, when the configured pm2 is not an npm-installed package), and the log
files pm2 reports."""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.errors import StepFailed
from bot.ops.process import Completed, find_executable, run

MIN_UPTIME_MS = 1000  # pm2's default min_uptime
RESTART_JS = Path(__file__).with_name("pm2_restart.js")
MARK = "@@rollback-bot@@"  # pm2_restart.js's answer follows it, on the last line
RESTART_GRACE_S = 10.0  # beyond the wait for online: the restart itself (each app's kill_timeout), the calls around it

CRITICAL = re.compile(r"(?i)\b(fatal|unhandled|uncaught|exception|error:|ECONNREFUSED|EADDRINUSE|segfault|"
                      r"out of memory|TypeError|ReferenceError|SyntaxError|MongoServerError|MongoNetworkError)")


@dataclass(frozen=True)
class AppState:
    name: str
    status: str
    restarts: int
    pid: int | None
    out_log: Path | None
    err_log: Path | None
    started_ms: int | None = None  # when pm2 last started it (pm_uptime, epoch ms)
    min_uptime_ms: int = MIN_UPTIME_MS  # pm2's min_uptime: an exit sooner is an "unstable restart"

    @property
    def online(self) -> bool:
        return self.status == "online"

    def up_for(self) -> float:
        """Seconds since pm2 last started it (0 when pm2 does not say)."""
        return max(time.time() - self.started_ms / 1000, 0.0) if self.started_ms else 0.0


class Pm2:
    def __init__(self, executable: str = "pm2", home: Path | None = None) -> None:
        self.executable = executable
        self.home = home

    def _env(self) -> dict[str, str]:
        return {"PM2_HOME": str(self.home)} if self.home else {}

    def _run(self, *args: str, timeout: float = 60.0) -> Completed:
        return run([self.executable, *args], env=self._env(), timeout=timeout)

    def jlist(self) -> list[AppState]:
        return self._listed()[0]

    def _listed(self) -> tuple[list[AppState], bool]:
        """`pm2 jlist`: the apps, and whether that call had to start pm2's daemon (it then knows none)."""
        result = self._run("jlist")
        if not result.ok:
            raise StepFailed(f"`pm2 jlist` failed: {result.tail(3)}")
        # The JSON is a line of its own; a daemon started by this call prints `[PM2] Spawning …` lines first.
        line = next((ln for ln in reversed(result.output.splitlines()) if ln.startswith("[")
                     and not ln.startswith("[PM2")), None)
        try:
            data = json.loads(line) if line is not None else []
        except ValueError:
            raise StepFailed("`pm2 jlist` did not print JSON") from None
        return _states(data), "Spawning PM2 daemon" in result.output

    def state(self, app: str) -> AppState | None:
        return next((s for s in self.jlist() if s.name == app), None)

    def restart(self, *apps: str) -> Completed:
        """`pm2 restart a b …` as the runbook types it: one CLI call (each pm2 invocation costs a Node start-up),
        and no `--update-env`, which would replace each app's environment with the bot's."""
        return self._run("restart", *apps)

    def restart_watched(self, apps: Sequence[str], timeout: float, grace: float = RESTART_GRACE_S) -> Restarted:
        """The restart step's pm2 work: each app's state and error-log size before, `pm2 restart` of each (none
        when pm2 does not know one of them), then their states until each is online with a new pid or ``timeout``
        passes. In one Node process through pm2's API when ``executable`` is pm2's own ``bin/pm2`` (a daemon that
        stops answering is given up after ``timeout + grace`` in all, and ``error`` says so); otherwise with three
        CLI calls (`jlist`, `restart`, `jlist` until online)."""
        root = self.package_root()
        if root is None:
            return self._restart_by_cli(apps, timeout)
        order = json.dumps({"apps": list(apps), "timeout_ms": int(timeout * 1000), "grace_ms": int(grace * 1000)})
        result = run(["node", str(RESTART_JS), str(root), order], env=self._env(), timeout=timeout + grace + 30)
        try:
            said = _said(result)
            return Restarted(before={s.name: s for s in _states(said["before"])},
                             err_sizes={k: int(v) for k, v in said["sizes"].items()}, error=said["restart_error"],
                             after={s.name: s for s in _states(said["after"])}, new_daemon=bool(said["new_daemon"]))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise StepFailed(f"pm2 did not say how the restart went: {error}",
                             hint="pm2 status, on the server, shows whether the apps were restarted.") from None

    def list_at(self, when: float, timeout: float = 30.0) -> list[AppState]:
        """pm2's process list as it is no sooner than ``when`` (a ``time.time()``). Through pm2's API, a Node process
        started at once waits for ``when`` and then asks, so the answer comes right then; a `pm2 jlist` started
        then would take a Node start-up more (about 0.25 s). With the CLI (see :meth:`package_root`): a sleep,
        then `pm2 jlist`. Through the API, a daemon that does not answer within ``timeout`` of ``when`` fails it
        (StepFailed); the CLI's `pm2 jlist` has the time limit of every pm2 call."""
        root = self.package_root()
        wait = max(0.0, when - time.time())
        if root is None:
            time.sleep(wait)
            return self.jlist()
        order = json.dumps({"list_at_ms": math.ceil(when * 1000), "timeout_ms": int(timeout * 1000), "grace_ms": 0})
        result = run(["node", str(RESTART_JS), str(root), order], env=self._env(), timeout=wait + timeout + 30)
        try:
            said = _said(result)
            if said["restart_error"]:
                raise ValueError(said["restart_error"])
            return _states(said["after"])
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise StepFailed(f"pm2's process list: {error}") from None

    def _restart_by_cli(self, apps: Sequence[str], timeout: float) -> Restarted:
        listed, spawned = self._listed()
        before = {s.name: s for s in listed}
        sizes = {app: _size(before[app].err_log) for app in apps if app in before}
        if any(app not in before for app in apps):
            return Restarted(before, sizes, None, {}, new_daemon=spawned)
        result = self.restart(*apps)
        if not result.ok:
            return Restarted(before, sizes, result.tail(3), {})
        return Restarted(before, sizes, None, self.wait_online({app: before[app].pid for app in apps}, timeout))

    def package_root(self) -> Path | None:
        """pm2's package folder when ``executable`` is its ``bin/pm2`` (as npm installs and links it): what
        ``require`` loads for its API. None for anything else (a wrapper script may set its own PM2_HOME)."""
        found = find_executable(self.executable)
        if found is None:
            return None
        real = Path(os.path.realpath(found))
        if real.name != "pm2" or real.parent.name != "bin":
            return None
        try:
            name = json.loads((real.parent.parent / "package.json").read_text()).get("name")
        except (OSError, ValueError, AttributeError):
            return None
        return real.parent.parent if name == "pm2" else None

    def start(self, script: Path, name: str, cwd: Path) -> Completed:
        return self._run("start", str(script), "--name", name, "--cwd", str(cwd), "--time")

    def kill(self) -> Completed:
        return self._run("kill", timeout=30)

    def wait_online(self, previous: dict[str, int | None], timeout: float) -> dict[str, AppState]:
        """Poll `pm2 jlist` until every app is online with a new pid (after a restart) or the timeout passes."""
        deadline = time.monotonic() + timeout
        latest: dict[str, AppState] = {}
        while True:
            latest = {s.name: s for s in self.jlist() if s.name in previous}
            if all(app in latest and latest[app].online and latest[app].pid != pid for app, pid in previous.items()):
                return latest
            if time.monotonic() >= deadline:
                return latest
            time.sleep(0.25)


@dataclass(frozen=True)
class Restarted:
    """What one restart saw (:meth:`Pm2.restart_watched`)."""

    before: dict[str, AppState]  # every app pm2 knew before
    err_sizes: dict[str, int]  # each app's error log's size then: what is after it was written since
    error: str | None  # why pm2 did not restart them, when it said so
    after: dict[str, AppState]  # the apps' states at the end (none when not restarted)
    new_daemon: bool = False  # pm2's daemon was not running: asking started an empty one


def _said(result: Completed) -> dict[str, Any]:
    """pm2_restart.js's answer (ValueError when it gave none)."""
    line = next((ln for ln in reversed(result.output.splitlines()) if ln.startswith(MARK)), None)
    said = json.loads(line.removeprefix(MARK)) if result.ok and line is not None else None
    if not isinstance(said, dict):
        raise ValueError(result.tail(3))
    return said


def _states(data: list[Any]) -> list[AppState]:
    """pm2's process list (`pm2 jlist`'s JSON) as :class:`AppState`."""
    states = []
    for proc in data:
        env = proc.get("pm2_env", {})
        states.append(AppState(
            name=str(proc.get("name")), status=str(env.get("status", "unknown")),
            restarts=int(env.get("restart_time", 0)), pid=proc.get("pid") or None,
            out_log=Path(env["pm_out_log_path"]) if env.get("pm_out_log_path") else None,
            err_log=Path(env["pm_err_log_path"]) if env.get("pm_err_log_path") else None,
            started_ms=_int(env.get("pm_uptime")), min_uptime_ms=_int(env.get("min_uptime")) or MIN_UPTIME_MS,
        ))
    return states


def _size(path: Path | None) -> int:
    return path.stat().st_size if path is not None and path.exists() else 0


def _int(value: object) -> int | None:
    try:
        return int(value) if value is not None else None  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def tail_file(path: Path | None, lines: int, *, since: int = 0) -> list[str]:
    """The last `lines` lines of a log file, optionally only what was written after byte offset `since`."""
    if path is None or not path.exists():
        return []
    with path.open("rb") as handle:
        size = handle.seek(0, 2)
        start = max(since, size - 256 * 1024 * max(1, lines // 500))
        handle.seek(start)
        data = handle.read().decode("utf-8", "replace")
    return data.splitlines()[-lines:]


def critical_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if CRITICAL.search(line)]
