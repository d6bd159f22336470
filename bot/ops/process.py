"""Running the runbook's executables: argument lists only, an allow-listed environment, a timeout that
kills the whole process group. Never a shell."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot.errors import StepFailed
from bot.text import Code

PROJECT_TOOLS = Path(__file__).resolve().parents[2] / ".tools" / "node_modules" / ".bin"
# Variables a child process may inherit: what node, yarn and pm2 need to run, reach a registry through a
# proxy and trust a corporate CA. Slack tokens, the state store URI and every other secret are never passed.
PASS_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "USER", "NVM_DIR", "NODE_OPTIONS",
                "NODE_EXTRA_CA_CERTS", "NODE_PATH", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy",
                "https_proxy", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR")
KILL_GRACE_S = 5.0
CANCEL_POLL_S = 0.2  # how often a cancellable child's caller is asked whether to stop it


def find_executable(name: str) -> str | None:
    """PATH first, then the project-local tools folder that `make` installs pm2 and yarn into."""
    if os.sep in name:
        return name if os.access(name, os.X_OK) else None
    found = shutil.which(name)
    if found:
        return found
    local = PROJECT_TOOLS / name
    return str(local) if local.exists() else None


def hidden_from_children() -> dict[str, str]:
    """Every variable of the bot's environment a child process must not see, mapped to "" (for tools that
    can only add to the environment they inherit, like GitPython). git's and ssh's own settings stay."""
    return {key: "" for key in os.environ
            if key not in PASS_THROUGH and not key.startswith(("GIT_", "SSH_", "LC_"))}


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {key: os.environ[key] for key in PASS_THROUGH if key in os.environ}
    env["PATH"] = os.pathsep.join([str(PROJECT_TOOLS), env.get("PATH", "/usr/local/bin:/usr/bin:/bin")])
    env.update(extra or {})
    return env


def alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped by its parent, is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (macOS): ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


@dataclass(frozen=True)
class Completed:
    argv: list[str]
    returncode: int
    output: str
    seconds: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.output.rstrip().splitlines()[-lines:])


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """End the child and everything it started (yarn runs node, which may run more): SIGTERM to its process
    group, then SIGKILL to whatever of the group is left after the grace period, whether or not the child itself
    exited (a build's worker that handles SIGTERM outlives yarn)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + KILL_GRACE_S
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=KILL_GRACE_S)
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=KILL_GRACE_S)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _output_after_kill(proc: subprocess.Popen[bytes]) -> bytes:
    """What the killed child wrote; never blocks on a pipe something unkillable still holds open."""
    try:
        out, _ = proc.communicate(timeout=KILL_GRACE_S)
        return out or b""
    except subprocess.TimeoutExpired:
        if proc.stdout is not None:
            proc.stdout.close()
        return b""


def run(argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout: float = 300.0, cancelled: Callable[[], bool] | None = None) -> Completed:
    """Run argv (a list, never a shell string) in its own process group; stdout and stderr together.
    ``cancelled``: asked every ``CANCEL_POLL_S``; once it says so, the child and everything it started are stopped
    (exit status 130, as for an interrupt)."""
    executable = find_executable(argv[0])
    if executable is None:
        raise StepFailed((Code(argv[0]), " was not found on PATH."),
                         hint=("Run ", Code("make deps"), " (it installs pm2 and yarn into .tools/) or set the "
                               "executable in rollback.yml."))
    started = time.monotonic()
    proc = subprocess.Popen([executable, *argv[1:]], cwd=cwd, env=child_env(env), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = started + timeout
    try:
        while True:
            try:
                slice_s = deadline - time.monotonic() if cancelled is None else min(CANCEL_POLL_S,
                                                                                   deadline - time.monotonic())
                out, _ = proc.communicate(timeout=max(slice_s, 0.0))
                break
            except subprocess.TimeoutExpired:  # the output read so far is kept for the next communicate()
                stop = "cancelled" if cancelled is not None and cancelled() else (
                    "timed out" if time.monotonic() >= deadline else None)
                if stop is None:
                    continue
                _kill_group(proc)
                text = _output_after_kill(proc).decode("utf-8", "replace")
                if stop == "cancelled":
                    return Completed(argv, 130, text + "\n(cancelled; stopped it and everything it started)",
                                     time.monotonic() - started)
                return Completed(argv, 124, text + f"\n(timed out after {timeout:.0f}s; stopped it and everything "
                                 "it started)", time.monotonic() - started, timed_out=True)
    except BaseException:
        _kill_group(proc)
        raise
    return Completed(argv, proc.returncode, (out or b"").decode("utf-8", "replace"), time.monotonic() - started)
