"""The emulator speaks Slack's formats to real clients (slack_sdk's WebClient, Socket Mode, HTTP)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.app import SocketModeBot
from bot.config import Settings
from bot.dev.emulator import Emulator
from tests.conftest import COMMANDER, INCIDENT, wait_for_log


def client(emulator: Emulator, token: str | None = None) -> WebClient:
    return WebClient(token=token or emulator.ws.app.bot_token, base_url=emulator.api_url)


def test_web_api_methods_answer_like_slack(emulator: Emulator) -> None:
    web = client(emulator)
    assert web.auth_test()["user_id"] == "U0ROLLBOT"
    posted = web.chat_postMessage(channel=INCIDENT, text="hello")
    with pytest.raises(SlackApiError) as unscoped:  # the manifest does not ask for reactions:write
        web.reactions_add(channel=INCIDENT, timestamp=posted["ts"], name="eyes")
    assert unscoped.value.response["needed"] == "reactions:write"
    emulator.react("casey", "incident-rollback", posted["ts"], "eyes", send=False)  # a person reacts
    assert emulator.ws.message(INCIDENT, posted["ts"])["reactions"][0]["name"] == "eyes"  # type: ignore[index]
    assert web.users_info(user=COMMANDER)["user"]["real_name"] == "Casey Commander"
    assert web.conversations_info(channel=INCIDENT)["channel"]["name"] == "incident-rollback"
    leads = next(g for g in web.usergroups_list()["usergroups"] if g["handle"] == "backend-leads")
    assert web.usergroups_users_list(usergroup=leads["id"])["users"] == ["U0APPROVER1", "U0APPROVER2"]
    trigger = emulator.slash_payload("casey", "incident-rollback", "rca")["trigger_id"]
    view = web.views_open(trigger_id=trigger, view={"type": "modal", "title": {"type": "plain_text", "text": "RCA"},
                                                    "blocks": []})
    assert view["view"]["id"].startswith("V")
    upload = web.files_upload_v2(channel=INCIDENT, content="# postmortem", filename="pm.md", title="Postmortem",
                                 thread_ts=posted["ts"])
    file_id = upload["files"][0]["id"] if "files" in upload.data else upload["file"]["id"]  # type: ignore[operator]
    assert emulator.ws.files[file_id]["content"] == b"# postmortem"
    assert emulator.ws.thread(INCIDENT, posted["ts"])[0]["files"][0]["title"] == "Postmortem"
    with pytest.raises(SlackApiError) as bad:
        client(emulator, "xoxb-wrong").auth_test()
    assert bad.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as missing:
        web.chat_postMessage(channel="C0NOTHERE", text="x")
    assert missing.value.response["error"] == "channel_not_found"


def test_apps_connections_open_needs_the_app_token(emulator: Emulator) -> None:
    with pytest.raises(SlackApiError):
        client(emulator).apps_connections_open(app_token=emulator.ws.app.bot_token)
    url = client(emulator).apps_connections_open(app_token=emulator.ws.app.app_token)["url"]
    assert url.startswith(f"ws://127.0.0.1:{emulator.port}/link/?ticket=")


def test_an_event_acked_too_late_is_redelivered_and_the_bot_answers_once(
        emulator: Emulator, bot: SocketModeBot, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="rollback_bot.listeners")
    emulator.ack_timeout = 0.5
    emulator.slow_acks(0.8)  # every ack arrives after the timeout, so Slack retries
    delivery = emulator.mention("casey", "incident-rollback", "help").wait(15)
    assert delivery.attempts == 1 + emulator.max_event_retries and delivery.failed == "operation_timeout"
    wait_for_log(caplog, "a repeated delivery (event) was acknowledged and ignored", emulator.max_event_retries)
    replies = emulator.ws.thread(INCIDENT, delivery.payload["event"]["ts"])
    assert len(replies) == 1


def test_a_slash_command_acked_too_late_shows_slacks_timeout_error(emulator: Emulator, bot: SocketModeBot) -> None:
    emulator.ack_timeout = 0.3
    emulator.slow_acks(0.6)
    delivery = emulator.slash("casey", "incident-rollback", "help").wait(10)
    assert delivery.failed == "operation_timeout" and delivery.attempts == 1
    messages = [e.text for e in emulator.ws.ephemerals_for(COMMANDER)]
    assert '/rollback failed with the error "operation_timeout"' in messages


def test_socket_mode_needs_a_connection(emulator: Emulator, settings: Settings,
                                        start_bot: Callable[..., SocketModeBot]) -> None:
    start_bot()
    emulator.ws.wait_for(lambda: emulator.socket_count >= 1, 10, "the bot's connection")
    assert emulator.slash("casey", "incident-rollback", "help").wait().failed is None


def test_the_emulator_runs_as_a_command(tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-m", "bot.cli", "emulator", "--port", "0"], stdout=subprocess.PIPE,
                               text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(Path.cwd())})
    try:
        assert process.stdout is not None
        env = {}
        for line in process.stdout:
            if line.startswith("# emulated Slack"):
                break
            key, _, value = line.strip().partition("=")
            env[key] = value
        web = WebClient(token=env["SLACK_BOT_TOKEN"], base_url=env["SLACK_API_URL"])
        assert web.auth_test()["team"] == "rollback-emulator"
    finally:
        process.terminate()
        process.wait(10)
