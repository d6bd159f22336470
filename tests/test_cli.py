"""`rollback-bot` as a person at a terminal meets it: each run is a real process. Global options before or after
the subcommand, --version, --help, and the one-line errors that name what to fix."""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from bot.cli import parser
from bot.dev.emulator import Emulator
from bot.dev.sandbox import Sandbox
from bot.resources import manifest_scopes
from tests.conftest import INCIDENT, STAKEHOLDERS

CLEARED = ("SLACK_", "ROLLBACK_CONFIG", "LOG_LEVEL", "STATE_STORE_URI")


def cli(*argv: str, cwd: Path, env: dict[str, str] | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``rollback-bot ARGV`` in its own process, with none of this machine's Slack settings (only ``env``)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(CLEARED)}
    return subprocess.run([sys.executable, "-m", "bot.cli", *argv], cwd=cwd, env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound by this test (so nobody else takes it), never listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@pytest.fixture
def config(tmp_path: Path, closed_port: int) -> Path:
    """A config that parses, with the state in the test's folder and a health URL nobody answers."""
    path = tmp_path / "rollback.yml"
    path.write_text(yaml.safe_dump({"store": {"data_dir": str(tmp_path / "data")},
                                    "health": {"url": f"http://127.0.0.1:{closed_port}/api/health"},
                                    "access": {"incident_channels": [INCIDENT], "commanders": ["@oncall"],
                                               "approvers": ["@backend-leads"]}}))
    return path


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The error a command ended with: it failed, said one line on stderr, and showed no traceback."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("rollback-bot: ")
    return lines[0]


# ---- global options, --version, --help ------------------------------------------------------------------
def test_global_options_work_before_and_after_the_subcommand(tmp_path: Path, config: Path) -> None:
    other = tmp_path / "other.yml"
    other.write_text("store: {data_dir: elsewhere}\n")

    def check(*argv: str) -> str:
        result = cli(*argv, cwd=tmp_path)
        assert result.returncode == 1 and result.stderr == ""  # nothing is set up here: required items fail
        live = re.sub(r"in \d+ ms", "in N ms", result.stdout)  # the health probe's own timing
        return re.sub(r"[\d.,]+ MiB free of", "N MiB free of", live)  # the data folder's file system, shared

    before = check("--config", str(config), "--log-level", "warning", "check")
    assert f"[ok  ] config: {config} is valid" in before
    assert check("check", "--config", str(config), "--log-level", "warning") == before
    assert check("--log-level", "warning", "check", "--config", str(config)) == before
    assert check("--config", str(other), "check", "--config", str(config)) == before  # the later one counts
    assert f"config: {other} is valid" in check("--config", str(other), "check", "--log-level", "error")


def test_log_level_debug_shows_the_traceback_wherever_it_is_given(tmp_path: Path, config: Path,
                                                                  closed_port: int) -> None:
    env = {"SLACK_BOT_TOKEN": "xoxb-1-test", "SLACK_APP_TOKEN": "xapp-1-test",
           "SLACK_API_URL": f"http://127.0.0.1:{closed_port}/api/"}
    for argv in (("--log-level", "debug", "run", "--config", str(config)),
                 ("run", "--config", str(config), "--log-level", "debug")):
        result = cli(*argv, cwd=tmp_path, env=env)
        assert result.returncode == 2
        assert "Traceback" in result.stderr and "ConnectionRefusedError" in result.stderr
        assert result.stderr.splitlines()[-1].startswith("rollback-bot: Slack cannot be reached")


def test_a_bad_log_level_is_refused_naming_where_it_came_from(tmp_path: Path) -> None:
    result = cli("check", cwd=tmp_path, env={"LOG_LEVEL": "loud"})
    assert result.returncode == 2 and "'loud' is not a log level" in result.stderr and "LOG_LEVEL" in result.stderr


def test_version_prints_the_installed_package_version(tmp_path: Path) -> None:
    result = cli("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"rollback-bot {version('rollback-bot')}"


def subcommands() -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices)


def test_help_lists_every_subcommand_and_the_environment(tmp_path: Path) -> None:
    result = cli("--help", cwd=tmp_path)
    assert result.returncode == 0
    for name in subcommands():
        assert re.search(rf"^\s+{name}\s+\S", result.stdout, re.M), f"{name} has no line in --help"
    for variable in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_API_URL"):
        assert variable in result.stdout


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_help_of_each_subcommand_explains_each_of_its_options(tmp_path: Path, name: str) -> None:
    result = cli(name, "--help", cwd=tmp_path)
    assert result.returncode == 0
    options = [a for a in subcommands()[name]._actions if not isinstance(a, argparse._HelpAction)]
    assert {"--config", "--log-level"} <= {s for a in options for s in a.option_strings}
    for action in options:
        assert action.help, f"{name} {action.option_strings or action.dest} has no help text"
        for shown in action.option_strings or [action.metavar or action.dest]:
            assert shown in result.stdout, f"{shown} is missing from `rollback-bot {name} --help`"


# ---- Slack unreachable, refused tokens, missing scopes ----------------------------------------------------
@pytest.mark.parametrize("command", ["run", "serve"])
def test_unreachable_slack_is_one_line_naming_the_url_and_slack_api_url(tmp_path: Path, config: Path,
                                                                        closed_port: int, command: str) -> None:
    url = f"http://127.0.0.1:{closed_port}/api/"
    env = {"SLACK_BOT_TOKEN": "xoxb-1-test", "SLACK_APP_TOKEN": "xapp-1-test", "SLACK_SIGNING_SECRET": "s3cr3t",
           "SLACK_API_URL": url}
    line = one_line(cli(command, "--config", str(config), "--port", "0", cwd=tmp_path, env=env) if command == "serve"
                    else cli(command, "--config", str(config), cwd=tmp_path, env=env))
    assert url in line and "SLACK_API_URL" in line and "connection refused" in line


def test_check_says_slack_is_unreachable_on_its_own_line(tmp_path: Path, config: Path, closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}/api/"
    result = cli("check", "--config", str(config), cwd=tmp_path, env={"SLACK_BOT_TOKEN": "xoxb-1-test",
                                                                     "SLACK_API_URL": url})
    assert result.returncode == 1 and result.stderr == ""
    assert f"[FAIL] Slack auth.test: Slack cannot be reached at {url} (connection refused) — check the network, " \
           "or SLACK_API_URL" in result.stdout


def test_a_url_that_is_not_slacks_api_says_so(tmp_path: Path, config: Path, emulator: Emulator) -> None:
    env = {**emulator.bot_env(), "SLACK_API_URL": f"{emulator.url}/"}  # the API is under /api/
    line = one_line(cli("run", "--config", str(config), cwd=tmp_path, env=env))
    assert "did not answer like Slack's Web API (404" in line and "SLACK_API_URL" in line


@pytest.mark.parametrize("command", ["run", "serve", "check"])
def test_a_refused_bot_token_names_slack_bot_token(tmp_path: Path, config: Path, emulator: Emulator,
                                                   command: str) -> None:
    env = {**emulator.bot_env(), "SLACK_BOT_TOKEN": "xoxb-0-not-this-workspaces"}
    argv = [command, "--config", str(config), *(["--port", "0"] if command == "serve" else [])]
    result = cli(*argv, cwd=tmp_path, env=env)
    if command == "check":
        assert result.returncode == 1 and result.stderr == ""
        assert "[FAIL] Slack auth.test: " in result.stdout and "refused SLACK_BOT_TOKEN (invalid_auth)" in result.stdout
    else:
        line = one_line(result)
        assert "refused SLACK_BOT_TOKEN (invalid_auth)" in line and "xoxb-" in line
    assert "xoxb-0-not-this-workspaces" not in result.stdout + result.stderr  # never the token itself


def test_a_refused_app_token_names_slack_app_token(tmp_path: Path, config: Path, emulator: Emulator) -> None:
    env = {**emulator.bot_env(), "SLACK_APP_TOKEN": "xapp-1-not-this-apps"}
    line = one_line(cli("run", "--config", str(config), cwd=tmp_path, env=env))
    assert "refused SLACK_APP_TOKEN for Socket Mode (invalid_auth)" in line and "connections:write" in line
    assert "xapp-1-not-this-apps" not in line
    assert emulator.connections_opened == 0  # it never got as far as a Socket Mode connection


def test_missing_scopes_are_listed_with_the_fix(tmp_path: Path, config: Path) -> None:
    granted = {"chat:write", "commands", "reactions:read"}
    with Emulator(scopes=granted) as emulator:
        line = one_line(cli("run", "--config", str(config), cwd=tmp_path, env=emulator.bot_env()))
    missing = sorted(manifest_scopes() - granted)
    assert f"SLACK_BOT_TOKEN lacks the scope(s) {', '.join(missing)} — add them from manifest.yml and reinstall " \
           "the app" in line


@pytest.mark.parametrize("command", ["run", "serve"])
def test_a_config_that_names_nobody_is_refused_at_start_up(tmp_path: Path, emulator: Emulator,
                                                           command: str) -> None:
    """An empty rollback.yml parses (the runbook's own target), but with no incident channel, commander or
    approver every command would be refused: the bot says so and does not start."""
    empty = tmp_path / "rollback.yml"
    empty.write_text(yaml.safe_dump({"store": {"data_dir": str(tmp_path / "data")},
                                     "access": {"commanders": ["@oncall"]}}))
    argv = [command, "--config", str(empty), *(["--port", "0"] if command == "serve" else [])]
    line = one_line(cli(*argv, cwd=tmp_path, env=emulator.bot_env()))
    assert "access.incident_channels, access.approvers are empty" in line and "rollback.example.yml" in line
    assert emulator.connections_opened == 0


def test_run_connects_when_everything_is_right(tmp_path: Path, config: Path, emulator: Emulator) -> None:
    """The checks before connecting do not stand in the way of a good set-up; SIGTERM then stops it cleanly."""
    process = subprocess.Popen([sys.executable, "-m", "bot.cli", "run", "--config", str(config)], cwd=tmp_path,
                               env={**{k: v for k, v in os.environ.items() if not k.startswith(CLEARED)},
                                    **emulator.bot_env()}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    seen: list[str] = []
    try:
        assert process.stderr is not None
        for line in process.stderr:  # until it says it is connected (or exits: the stream ends)
            seen.append(line)
            if "connected over Socket Mode" in line:
                break
        assert "connected over Socket Mode" in seen[-1], "".join(seen)
    finally:
        process.terminate()
        rest = process.communicate(timeout=30)[1]
    assert process.returncode == 0, rest
    assert emulator.connections_opened == 1
    assert "`token` will be unused" not in "".join(seen) + rest  # Bolt's warning about our own client is gone


def loaded_packages(pid: int) -> set[str]:
    """The installed packages whose compiled modules a live process has mapped (``/proc/<pid>/maps``)."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return set(re.findall(r"site-packages/([A-Za-z0-9_]+)/", maps))


def test_an_idle_bot_has_not_loaded_the_libraries_only_some_commands_need(tmp_path: Path, config: Path,
                                                                          emulator: Emulator) -> None:
    """Heavy libraries are imported when a command needs them (the health chart draws with matplotlib, the
    backup and the cleanup use pymongo and bson, the git steps GitPython, messages Jinja2, the scheduled checks
    aiohttp, e-mailed updates smtplib), not at start-up: a bot waiting for its first command stays small
    (bench/idle_memory.py). ``-X importtime`` has the started bot name every module it imports on stderr."""
    process = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "bot.cli", "run", "--config", str(config)],
                               cwd=tmp_path, env={**{k: v for k, v in os.environ.items() if not k.startswith(CLEARED)},
                                                  **emulator.bot_env()},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    imported: set[str] = set()
    try:
        assert process.stderr is not None
        for line in process.stderr:
            if line.startswith("import time:") and "|" in line:
                imported.add(line.rsplit("|", 1)[1].strip().split(".")[0])
            if "connected over Socket Mode" in line:
                break
        loaded = loaded_packages(process.pid)
    finally:
        process.terminate()
        process.communicate(timeout=30)
    assert "pydantic_core" in loaded and "pydantic" in imported  # both see the bot's own models
    assert not loaded & {"matplotlib", "kiwisolver", "PIL", "numpy", "pymongo", "bson", "aiohttp"}, sorted(loaded)
    heavy = {"matplotlib", "pymongo", "bson", "git", "jinja2", "aiohttp", "smtplib", "waitress",
             "statistics", "difflib"}  # the health summary's median, the "did you mean" of a mistyped command
    assert not imported & heavy, sorted(imported & heavy)



# ---- check: ok, warnings and failures counted apart -------------------------------------------------------
def test_check_counts_warnings_apart_and_passes_with_warnings_alone(tmp_path: Path, emulator: Emulator,
                                                                     sandbox: Sandbox, closed_port: int) -> None:
    settings = {
        **sandbox.config(),
        "access": {"incident_channels": [INCIDENT], "commanders": ["@oncall"], "approvers": ["@backend-leads"]},
        "slack": {"stakeholder_channel": STAKEHOLDERS},
        "health": {"url": f"http://127.0.0.1:{closed_port}/api/health"},  # the backend is down: a warning
        "store": {"data_dir": str(tmp_path / "data")},
    }
    good = tmp_path / "rollback.yml"
    good.write_text(yaml.safe_dump(settings))
    result = cli("check", "--config", str(good), cwd=tmp_path, env=emulator.bot_env(), timeout=120)
    assert result.returncode == 0, result.stdout
    lines = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert sum(line.startswith("[warn]") for line in lines) == 1 and not any("[FAIL]" in line for line in lines)
    ok = sum(line.startswith("[ok  ]") for line in lines)
    assert result.stdout.rstrip().splitlines()[-1].startswith(f"{ok} ok, 1 warning, 0 failed — ready: the bot can "
                                                               "run; the warn line above is worth a look")

    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump({**settings, "pm2": {**sandbox.config()["pm2"],  # type: ignore[dict-item]
                                                       "executable": "pm2-not-installed-here"}}))
    result = cli("check", "--config", str(bad), cwd=tmp_path, env=emulator.bot_env(), timeout=120)
    assert result.returncode == 1
    assert result.stdout.rstrip().splitlines()[-1] == (f"{ok - 1} ok, 1 warning, 1 failed — fix the FAIL line "
                                                       "above, then run the check again")
