"""`rollback-bot check` against the strict emulator: each Slack problem is one failing line that says what to do;
a workspace without user groups gets a clear answer on /rollback start too."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.app import SocketModeBot
from bot.check import CheckLine, run_checks
from bot.dev.emulator import Emulator
from bot.dev.emulator.workspace import DEFAULT_SEED
from bot.dev.sandbox import Sandbox
from bot.resources import manifest_scopes
from tests.conftest import COMMANDER, INCIDENT, make_settings


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., Emulator]]:
    started: list[Emulator] = []

    def make(**kwargs: Any) -> Emulator:
        started.append(Emulator(**kwargs).start())
        return started[-1]

    yield make
    for emu in started:
        emu.close()


def slack_lines(lines: list[CheckLine]) -> dict[str, CheckLine]:
    return {line.name: line for line in lines if line.name.startswith(("Slack", "incident channel", "stakeholder",
                                                                         "alerts", "user group"))}


def free_plan(tmp_path: Path) -> Path:
    seed = yaml.safe_load(DEFAULT_SEED.read_text())
    seed["plan"] = "free"
    path = tmp_path / "seed.yml"
    path.write_text(yaml.safe_dump(seed))
    return path


def test_every_slack_line_passes_on_the_default_workspace(emulator: Emulator, sandbox: Sandbox,
                                                          tmp_path: Path) -> None:
    lines = slack_lines(run_checks(make_settings(emulator, sandbox, tmp_path / "data")))
    assert all(line.ok for line in lines.values()), [str(line) for line in lines.values()]
    assert lines["Slack scopes"].detail == "all granted: " + ", ".join(sorted(manifest_scopes()))
    assert lines[f"incident channel {INCIDENT}"].detail == "#incident-rollback, the bot is a member"
    assert lines["user group @backend-leads"].detail == "2 member(s)"


def test_each_slack_problem_fails_its_own_line_with_the_fix(make_emulator: Callable[..., Emulator],
                                                            sandbox: Sandbox, tmp_path: Path) -> None:
    slack = make_emulator(scopes=manifest_scopes() - {"files:write", "usergroups:read"} | {"channels:read"})
    settings = make_settings(slack, sandbox, tmp_path / "data",
                             access={"incident_channels": [INCIDENT, "C0NOSUCH", "C0OUTSIDE", "C0PRIVATE"],
                                     "approvers": ["@backend-leads", "@no-such-team"]})
    lines = slack_lines(run_checks(settings))
    printed = "\n".join(str(line) for line in lines.values())
    assert "[FAIL] Slack scopes: missing files:write, usergroups:read — add them from manifest.yml and reinstall " \
           "the app" in printed
    assert f"[ok  ] incident channel {INCIDENT}" in printed
    assert "[FAIL] incident channel C0NOSUCH: no such channel (or a private one the bot is not in) — fix the id " \
           "in rollback.yml or /invite @rollback-bot there" in printed
    assert "[FAIL] incident channel C0OUTSIDE: #general exists but the bot is not in it — /invite @rollback-bot " \
           "in #general" in printed
    assert "[FAIL] incident channel C0PRIVATE: no such channel" in printed  # private and not invited: invisible
    assert "[FAIL] user groups: missing_scope" in printed  # without usergroups:read the groups cannot be listed

    slack.ws.channel_by_name("leadership").is_member = True  # /invite @rollback-bot in #leadership
    printed = "\n".join(str(line) for line in slack_lines(run_checks(settings)).values())
    assert "[ok  ] incident channel C0PRIVATE: #leadership, the bot is a member" in printed

    full = make_emulator()
    settings = make_settings(full, sandbox, tmp_path / "data2",
                             access={"incident_channels": [INCIDENT], "approvers": ["@backend-leads", "@no-such-team"]})
    printed = "\n".join(str(line) for line in slack_lines(run_checks(settings)).values())
    assert "[FAIL] user group @no-such-team: not found in the workspace — fix the handle in rollback.yml or use " \
           "user ids" in printed
    assert "[ok  ] user group @backend-leads: 2 member(s)" in printed


def test_a_workspace_without_user_groups_is_told_to_use_user_ids(make_emulator: Callable[..., Emulator],
                                                                 sandbox: Sandbox, tmp_path: Path) -> None:
    slack = make_emulator(seed=free_plan(tmp_path))
    printed = "\n".join(str(line) for line in run_checks(make_settings(slack, sandbox, tmp_path / "data")))
    assert "[FAIL] user groups: this workspace's plan has no user groups — use user ids (U012ABCDEF) instead of " \
           "@backend-leads, @oncall" in printed


def test_start_on_a_workspace_without_user_groups_says_what_to_change(
        make_emulator: Callable[..., Emulator], sandbox: Sandbox, tmp_path: Path,
        start_bot: Callable[..., SocketModeBot]) -> None:
    slack = make_emulator(seed=free_plan(tmp_path), ack_timeout=3.0)
    start_bot(make_settings(slack, sandbox, tmp_path / "data"))  # commanders: ["@oncall"]
    slack.slash("casey", "incident-rollback", "start api down").wait()
    answer = slack.ws.wait_for(lambda: next((e.text for e in slack.ws.ephemerals_for(COMMANDER)), None), 10,
                               "the private answer")
    assert "user groups" in answer and "user ids" in answer and "@oncall" in answer
    assert "Something went wrong" not in answer
    assert slack.ws.channel_messages(INCIDENT) == []  # nothing was started
