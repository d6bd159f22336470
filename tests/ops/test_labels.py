"""The labels of the request counter come from closed sets: what someone typed never becomes a series."""

from __future__ import annotations

from typing import Any

import pytest

from bot.app.metrics import BotMetrics, request_kind


@pytest.mark.parametrize(("body", "expected"), [
    ({"command": "/rollback", "text": "backup --again"}, ("command", "backup")),
    ({"command": "/rollback", "text": "  "}, ("command", "help")),
    ({"command": "/rollback", "text": "DROP TABLE incidents"}, ("command", "other")),
    ({"type": "block_actions", "actions": [{"action_id": "rollback_step:verify"}]}, ("action", "rollback_step")),
    ({"type": "block_actions", "actions": [{"action_id": "made_up"}]}, ("action", "other")),
    ({"type": "view_submission", "view": {"callback_id": "rollback_view_rca"}}, ("view", "rollback_view_rca")),
    ({"type": "event_callback", "event": {"type": "reaction_added"}}, ("event", "reaction_added")),
    ({"type": "event_callback", "event": {"type": "team_join"}}, ("event", "other")),
    ({}, ("other", "other")),
], ids=["subcommand", "empty-is-help", "typed-text", "action", "unknown-action", "view", "event", "unknown-event",
        "empty"])
def test_a_request_is_counted_under_a_known_name_or_other(body: dict[str, Any], expected: tuple[str, str]) -> None:
    assert request_kind(body) == expected


def test_two_bots_in_one_process_count_apart() -> None:
    first, second = BotMetrics(), BotMetrics()
    first.request({"command": "/rollback", "text": "status"}, 0.01)
    assert 'rollback_bot_requests_total{kind="command",name="status"} 1.0' in first.render().decode()
    assert 'rollback_bot_requests_total{kind="command"' not in second.render().decode()
