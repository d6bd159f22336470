"""On a plan without user groups, Slack's user-group methods answer plan_upgrade_required."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from bot.dev.emulator import Emulator
from bot.dev.emulator.workspace import DEFAULT_SEED
from tests.emulator.conftest import refused, web


def seed_with(tmp_path: Path, **top: object) -> Path:
    data = yaml.safe_load(DEFAULT_SEED.read_text())
    data.update(top)
    path = tmp_path / "seed.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_default_workspace_has_user_groups(slack: Emulator) -> None:
    handles = [g["handle"] for g in web(slack).usergroups_list()["usergroups"]]
    assert handles == ["backend-leads", "oncall"]


def test_a_free_plan_has_no_user_groups(make_emulator: Callable[..., Emulator], tmp_path: Path) -> None:
    slack = make_emulator(seed=seed_with(tmp_path, plan="free"))
    client = web(slack)
    assert refused(client.usergroups_list).response.data == {"ok": False, "error": "plan_upgrade_required"}
    assert refused(lambda: client.usergroups_users_list(usergroup="S0LEADS")).response["error"] == \
        "plan_upgrade_required"


def test_user_groups_can_be_turned_off_on_any_plan(make_emulator: Callable[..., Emulator], tmp_path: Path) -> None:
    slack = make_emulator(seed=seed_with(tmp_path, features={"usergroups": False}))
    assert refused(web(slack).usergroups_list).response["error"] == "plan_upgrade_required"
