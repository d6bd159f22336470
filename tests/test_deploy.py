"""The deploy files, as far as this machine can run them: the systemd unit passes `systemd-analyze verify` with its
ExecStart pointed at an installed wheel; the Dockerfile builds the very wheel tests/test_packaging.py installs and
installs it the same way (and builds, where a docker daemon answers); the pm2 ecosystem file runs the installed
`rollback-bot run` under the project's own pm2 (a private PM2_HOME, its daemon killed at the end) and, after a
configuration error, starts it once the error is fixed."""

from __future__ import annotations

import fnmatch
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bot.dev.emulator import Emulator
from bot.ops.pm2 import AppState, Pm2
from bot.ops.process import find_executable
from tests.conftest import INCIDENT
from tests.test_packaging import ROOT, Installed, installed  # noqa: F401 - the module's wheel fixture, shared

UNIT = ROOT / "deploy" / "rollback-bot.service"
ECOSYSTEM = ROOT / "deploy" / "ecosystem.config.js"
DOCKERFILE = ROOT / "Dockerfile"
INSTALL_PREFIX = "/opt/rollback-bot/"  # where the unit and the ecosystem file expect the venv


# ---- systemd ------------------------------------------------------------------------------------------------
def unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def test_the_systemd_unit_runs_the_installed_rollback_bot_as_its_own_user_confined_to_its_data() -> None:
    unit = unit_settings()
    assert unit["ExecStart"] == [f"{INSTALL_PREFIX}bin/rollback-bot run"]
    assert unit["User"] == ["rollback-bot"] and unit["StateDirectory"] == ["rollback-bot"]
    assert unit["WorkingDirectory"] == ["/var/lib/rollback-bot"]
    assert unit["EnvironmentFile"] == ["/etc/rollback-bot/env"]
    assert unit["Restart"] == ["on-failure"] and "RestartPreventExitStatus" not in unit  # Slack down at boot heals
    assert unit["StartLimitIntervalSec"] == ["0"]
    assert unit["NoNewPrivileges"] == ["yes"] and unit["ProtectSystem"] == ["strict"]


NO_SYSTEMD_ANALYZE = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed here (Debian/Ubuntu: apt-get install systemd)")


@NO_SYSTEMD_ANALYZE
def test_systemd_analyze_verifies_the_unit_with_the_wheel_installed(installed: Installed, tmp_path: Path) -> None:  # noqa: F811
    """The unit as shipped, its /opt/rollback-bot/ venv replaced by the one this module installed the wheel into
    (verify checks that ExecStart is an executable file). A warning fails the test as much as an error does."""
    unit = tmp_path / "rollback-bot.service"
    unit.write_text(UNIT.read_text().replace(INSTALL_PREFIX, f"{installed.venv}/"))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
    assert installed.run("rollback-bot", "run", "--help", cwd=tmp_path).returncode == 0


@NO_SYSTEMD_ANALYZE
def test_systemd_analyze_would_catch_a_mistake_in_the_unit(installed: Installed, tmp_path: Path) -> None:  # noqa: F811
    unit = tmp_path / "rollback-bot.service"
    unit.write_text(UNIT.read_text().replace(INSTALL_PREFIX, f"{installed.venv}/")
                    .replace("ProtectSystem=", "ProtectSystme="))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path)
    assert "Unknown key 'ProtectSystme'" in result.stdout + result.stderr


# ---- the container --------------------------------------------------------------------------------------------
def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions, stage by stage, as (INSTRUCTION, arguments) with continuations joined."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        instruction, _, rest = line.strip().partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), rest.strip()))
    return stages


def pip_runs(stage: list[tuple[str, str]], verb: str) -> list[list[str]]:
    found = []
    for instruction, rest in stage:
        if instruction != "RUN":
            continue
        for command in rest.split("&&"):
            words = shlex.split(command)
            if words[:4] == ["python", "-m", "pip", verb]:
                found.append(words[4:])
    return found


def test_the_image_is_built_from_the_wheel_the_packaging_test_installs(installed: Installed, tmp_path: Path) -> None:  # noqa: F811
    """Run the Dockerfile's own wheel step on exactly the files it copies: the wheel is the packaging test's (the
    same name, the same files with the same bytes), and the image's pip install takes that one wheel alone."""
    build, final = dockerfile_stages()
    context = tmp_path / "src"
    context.mkdir()
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    for instruction, rest in build:
        if instruction == "COPY":
            *sources, _ = rest.split()
            for source in sources:
                assert f"!{source}" in ignored, f".dockerignore leaves {source} out of the build context"
                path = ROOT / source
                if path.is_dir():
                    shutil.copytree(path, context / source, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy(path, context / source)
    [wheel_args] = pip_runs(build, "wheel")
    assert "--no-deps" in wheel_args and wheel_args[-1] == "."
    out = tmp_path / "dist"
    args = [str(out) if a == "/dist" else a for a in wheel_args]
    # offline here: the build backend (hatchling) comes from this venv, as in the packaging test
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "-q", *args], cwd=context,
                   check=True, capture_output=True, timeout=300)
    [built] = list(out.glob("*.whl"))
    assert built.name == installed.wheel.name
    def files(wheel: Path) -> dict[str, bytes]:
        with zipfile.ZipFile(wheel) as archive:
            return {name: archive.read(name) for name in archive.namelist()}

    assert files(built) == files(installed.wheel)

    [install_args] = pip_runs(final, "install")
    wheels = [a for a in install_args if not a.startswith("-")]
    assert [a for a in install_args if a.startswith("-")] == ["--no-cache-dir"]
    assert len(wheels) == 1 and fnmatch.fnmatch(f"/dist/{installed.wheel.name}", wheels[0])
    assert ("ENTRYPOINT", '["rollback-bot"]') in final and ("CMD", '["run"]') in final
    assert ("USER", "rollback-bot") in final


def _docker_problem() -> str | None:
    if shutil.which("docker") is None:
        return "docker is not installed here"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60)
    if info.returncode != 0:
        said = (info.stderr.strip().splitlines() or ["no answer"])[-1]
        return f"no docker daemon is reachable (`docker info`: {said})"
    return None


def test_docker_builds_the_image_and_it_runs_rollback_bot(tmp_path: Path) -> None:
    problem = _docker_problem()
    if problem:
        pytest.skip(problem)
    tag = f"rollback-bot-test:{uuid.uuid4().hex[:8]}"
    try:
        build = subprocess.run(["docker", "build", "-t", tag, str(ROOT)], capture_output=True, text=True, timeout=900)
        assert build.returncode == 0, build.stderr[-3000:]
        version = subprocess.run(["docker", "run", "--rm", tag, "--version"], capture_output=True, text=True,
                                 timeout=120)
        assert version.stdout.startswith("rollback-bot "), version.stderr
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, timeout=120)


# ---- pm2 ----------------------------------------------------------------------------------------------------
@pytest.fixture
def pm2_home(tmp_path: Path) -> Iterator[Path]:
    """A private PM2_HOME whose daemon (if a test started one) is killed afterwards."""
    home = tmp_path / "pm2"
    yield home
    if not (home / "pm2.pid").exists():
        return
    daemon = int((home / "pm2.pid").read_text())
    apps = [state.pid for state in Pm2(home=home).jlist() if state.pid]
    pm2 = find_executable("pm2")
    assert pm2
    # `pm2 kill` asks the daemon to stop each app (SIGINT, then SIGKILL after the file's kill_timeout of 60 s) and
    # then to exit; its client answers when the daemon says it is going, or after 3 s whatever happened (pm2's
    # lib/Client.js killDaemon), so on a loaded machine the daemon is often still stopping when it returns. The
    # test waits for the processes to be gone (150 s: longer than kill_timeout); should one remain, it is ended by
    # its id, and the test says so.
    started = time.monotonic()
    try:
        subprocess.run([pm2, "kill"], env={**os.environ, "PM2_HOME": str(home)}, capture_output=True, timeout=150)
    except subprocess.TimeoutExpired:
        pass
    ours = [pid for pid in (daemon, *apps) if _ours(pid, home)]
    while any(_alive(pid) for pid in ours) and time.monotonic() - started < 150:
        time.sleep(0.1)
    left = {pid: _cmdline(pid) for pid in ours if _alive(pid) and _ours(pid, home)}
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"`pm2 kill` left the daemon or the bot running: {left} (ended with SIGKILL)"


def _ours(pid: int, home: Path) -> bool:
    """The process still runs under this test's PM2_HOME (not another program that got a reused pid)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"PM2_HOME={home}".encode() in environ


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:200]
    except OSError:
        return "?"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


def test_pm2_runs_the_installed_bot_from_the_ecosystem_file_and_retries_until_its_config_is_fixed(
        installed: Installed, tmp_path: Path, emulator: Emulator, pm2_home: Path) -> None:  # noqa: F811
    pm2 = find_executable("pm2")
    assert pm2, "pm2 is missing: `make deps` installs it into .tools/"
    home = tmp_path / "bot"
    home.mkdir()
    (home / "rollback.yml").write_text(yaml.safe_dump({
        "store": {"data_dir": "./data"}, "health": {"url": "http://127.0.0.1:9/api/health"},
        "access": {"incident_channels": [INCIDENT], "commanders": ["@oncall"], "approvers": ["@backend-leads"]}}))
    secrets = emulator.bot_env()
    env = {**installed.env(), "PM2_HOME": str(pm2_home), "ROLLBACK_BOT_BIN": str(installed.venv / "bin" /
                                                                                  "rollback-bot"),
           "ROLLBACK_BOT_HOME": str(home)}
    manager = Pm2(home=pm2_home)

    def start() -> None:
        started = subprocess.run([pm2, "start", str(ECOSYSTEM)], env=env, capture_output=True, text=True, timeout=60)
        assert started.returncode == 0, started.stdout + started.stderr

    def app(until: str, timeout: float = 30) -> AppState:
        deadline = time.monotonic() + timeout
        while True:
            state = manager.state("rollback-bot")
            if state is not None and state.status == until or time.monotonic() > deadline:
                assert state is not None and state.status == until, state
                return state
            time.sleep(0.25)

    # Without the app token it exits 2, saying why in its error log, and pm2 tries again a little later.
    (home / ".env").write_text("".join(f"{k}={v}\n" for k, v in secrets.items() if k != "SLACK_APP_TOKEN"))
    start()
    err_log = pm2_home / "logs" / "rollback-bot-error.log"
    emulator.ws.wait_for(lambda: err_log.exists() and "rollback-bot: missing secret(s): SLACK_APP_TOKEN — set them "
                         "in the environment or in a .env file in the working directory" in err_log.read_text(), 30,
                         "the missing secret in the error log")
    assert emulator.connections_opened == 0

    # With the secret added to its folder's .env, the next try connects; its state is in that folder.
    (home / ".env").write_text("".join(f"{k}={v}\n" for k, v in secrets.items()))
    emulator.ws.wait_for(lambda: emulator.connections_opened >= 1, 60, "the bot connected over Socket Mode")
    online = app("online")  # (a try that started before the .env was fixed may have been online a moment too)
    assert online.restarts >= 1
    assert (home / "data" / "rollback-bot.sqlite3").exists()
    assert online.pid is not None and Path(f"/proc/{online.pid}/cmdline").read_bytes().split(b"\0")[1:3] == [
        str(installed.venv / "bin" / "rollback-bot").encode(), b"run"]
