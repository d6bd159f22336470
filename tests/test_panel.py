"""The control panel offers a button only when pressing it can work (reported: *Revert code* showed its red
confirm dialog, and only then said "no verified backup yet")."""

from __future__ import annotations

from typing import Any

from bot.domain.runs import StepName
from bot.slack_ui.panel import panel
from tests.test_guide import after


def action_ids(blocks: list[dict[str, Any]]) -> list[str]:
    return [e["action_id"] for b in blocks for e in b.get("elements", []) if "action_id" in e]


def test_revert_is_offered_only_once_a_verified_backup_exists() -> None:
    fresh = action_ids(list(panel(after(), [], "df5b229").blocks))
    assert "rollback_step:backup" in fresh and "rollback_step:revert" not in fresh
    failed = action_ids(list(panel(after((StepName.BACKUP, False)), [], "df5b229").blocks))
    assert "rollback_step:revert" not in failed
    backed_up = action_ids(list(panel(after(StepName.BACKUP), [], "df5b229").blocks))
    assert "rollback_step:revert" in backed_up
    assert backed_up.index("rollback_step:backup") < backed_up.index("rollback_step:revert")
