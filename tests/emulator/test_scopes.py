"""Scopes come from the app's manifest; every method checks Slack's scope for it and says which it used."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from bot.app import SocketModeBot
from bot.dev.emulator import Emulator
from bot.dev.emulator.policy import default_manifest
from bot.resources import manifest_path
from tests.conftest import COMMANDER, INCIDENT
from tests.emulator.conftest import WITH_HISTORY, refused, web


def test_the_default_scopes_are_the_manifests(slack: Emulator) -> None:
    declared = yaml.safe_load(manifest_path().read_text())["oauth_config"]["scopes"]["bot"]
    assert slack.manifest.scopes == set(declared) == default_manifest().scopes


def test_a_method_without_its_scope_answers_missing_scope_like_slack(make_emulator: Callable[..., Emulator]) -> None:
    slack = make_emulator(scopes=["chat:write", "commands"])
    error = refused(lambda: web(slack).users_info(user=COMMANDER))
    assert error.response.status_code == 200
    assert error.response.data == {"ok": False, "error": "missing_scope", "needed": "users:read",
                                   "provided": "chat:write,commands"}


def test_history_needs_channels_history(make_emulator: Callable[..., Emulator]) -> None:
    slack = make_emulator(scopes=sorted(default_manifest().scopes - {"channels:history"}))
    error = refused(lambda: web(slack).conversations_history(channel=INCIDENT))
    assert error.response["error"] == "missing_scope" and error.response["needed"] == "channels:history"


def test_a_private_channel_needs_the_groups_scope(make_emulator: Callable[..., Emulator]) -> None:
    slack = make_emulator(scopes=["chat:write", "channels:read"])
    slack.invite_bot("leadership")
    error = refused(lambda: web(slack).conversations_info(channel="C0PRIVATE"))
    assert (error.response["error"], error.response["needed"]) == ("missing_scope", "groups:read")
    assert web(slack).conversations_info(channel=INCIDENT)["channel"]["is_private"] is False


def test_every_answer_carries_x_oauth_scopes(slack: Emulator) -> None:
    granted = ",".join(sorted(slack.manifest.scopes))
    answer = web(slack).auth_test()
    assert answer.headers["x-oauth-scopes"] == granted
    assert web(slack).users_info(user=COMMANDER).headers["x-accepted-oauth-scopes"] == "users:read"
    assert refused(lambda: web(slack).conversations_history(channel="C0OUTSIDE")) \
        .response.headers["x-oauth-scopes"] == granted


def test_methods_without_scopes_need_none(make_emulator: Callable[..., Emulator]) -> None:
    slack = make_emulator(scopes=[])
    client = web(slack)
    assert client.auth_test()["ok"]
    trigger = slack.slash_payload("casey", "incident-rollback", "rca")["trigger_id"]
    assert client.views_open(trigger_id=trigger, view={"type": "modal", "title": {"type": "plain_text", "text": "R"},
                                                       "blocks": []})["ok"]
    assert refused(lambda: client.chat_getPermalink(channel=INCIDENT, message_ts="1.000001")) \
        .response["error"] == "message_not_found"
    assert slack.scopes_used() == set()


def test_scopes_used_are_exactly_what_the_calls_needed(make_emulator: Callable[..., Emulator]) -> None:
    slack = make_emulator(scopes=WITH_HISTORY | {"reactions:write"})
    client = web(slack)
    ts = client.chat_postMessage(channel=INCIDENT, text="hi")["ts"]
    client.reactions_add(channel=INCIDENT, timestamp=ts, name="eyes")
    client.conversations_history(channel=INCIDENT)
    client.usergroups_list()
    assert slack.scopes_used() == {"chat:write", "reactions:write", "channels:history", "usergroups:read"}
    assert slack.scope_uses()["chat:write"] == {"chat.postMessage"}


def test_a_manifest_file_can_be_given(make_emulator: Callable[..., Emulator], tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.yml"
    manifest.write_text(yaml.safe_dump({"oauth_config": {"scopes": {"bot": ["chat:write", "users:read"]}}}))
    slack = make_emulator(manifest=manifest)
    assert web(slack).users_info(user=COMMANDER)["user"]["id"] == COMMANDER
    assert refused(lambda: web(slack).usergroups_list()).response["needed"] == "usergroups:read"


def test_events_the_manifest_does_not_subscribe_to_are_never_delivered(
        make_emulator: Callable[..., Emulator], tmp_path: Path) -> None:
    data = yaml.safe_load(manifest_path().read_text())
    data["settings"]["event_subscriptions"]["bot_events"] = ["reaction_added"]
    data["oauth_config"]["scopes"]["bot"].remove("commands")
    manifest = tmp_path / "manifest.yml"
    manifest.write_text(yaml.safe_dump(data))
    slack = make_emulator(manifest=manifest)
    assert slack.mention("casey", "incident-rollback", "help").wait().failed == "not_subscribed:app_mention"
    assert slack.slash("casey", "incident-rollback", "help").wait().failed == "missing_scope:commands"
    assert [r.error for r in slack.rejections] == ["not_subscribed:app_mention", "missing_scope:commands"]


def test_delivered_events_count_their_scopes_as_used(emulator: Emulator, bot: SocketModeBot) -> None:
    assert emulator.slash("casey", "incident-rollback", "help").wait().failed is None
    assert emulator.mention("casey", "incident-rollback", "help").wait().failed is None
    assert {"commands", "app_mentions:read"} <= emulator.scopes_used()
