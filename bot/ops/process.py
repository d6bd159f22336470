"""Running the runbook's executables: argument lists only, a clean environment, a timeout. Never a shell."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bot.errors import StepFailed

PROJECT_TOOLS = Path(__file__).resolve().parents[2] / ".tools" / "node_modules" / ".bin"
# Variables a child process may inherit. Slack tokens and the state store URI are never passed on.
PASS_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "NODE_OPTIONS", "NVM_DIR", "USER")


def find_executable(name: str) -> str | None:
    """PATH first, then the project-local tools folder that `make` installs pm2 and yarn into."""
    if os.sep in name:
        return name if os.access(name, os.X_OK) else None
    found = shutil.which(name)
    if found:
        return found
    local = PROJECT_TOOLS / name
    return str(local) if local.exists() else None


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {key: os.environ[key] for key in PASS_THROUGH if key in os.environ}
    env["PATH"] = os.pathsep.join([str(PROJECT_TOOLS), env.get("PATH", "/usr/local/bin:/usr/bin:/bin")])
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class Completed:
    argv: list[str]
    returncode: int
    output: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.output.rstrip().splitlines()[-lines:])


def run(argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout: float = 300.0) -> Completed:
    """Run argv (a list, never a shell string) and capture stdout and stderr together."""
    executable = find_executable(argv[0])
    if executable is None:
        raise StepFailed(f"`{argv[0]}` was not found on PATH.",
                         hint="Run `make deps` (it installs pm2 and yarn into .tools/) or set the executable in "
                              "rollback.yml.")
    started = time.monotonic()
    try:
        proc = subprocess.run([executable, *argv[1:]], cwd=cwd, env=child_env(env), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as expired:
        output = (expired.stdout or b"").decode("utf-8", "replace") if isinstance(expired.stdout, bytes) else ""
        return Completed(argv, 124, output + f"\n(timed out after {timeout:.0f}s)", time.monotonic() - started)
    return Completed(argv, proc.returncode, proc.stdout.decode("utf-8", "replace"), time.monotonic() - started)
