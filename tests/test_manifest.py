"""The manifests ask for exactly the scopes the bot calls, derived from what the strict emulator saw the bot do in
a scenario that touches every feature; the slash command's hint lists every subcommand."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from bot.app import SocketModeBot
from bot.check import run_checks
from bot.clock import SystemClock
from bot.commands import CATALOG
from bot.dev.emulator import Emulator
from bot.dev.sandbox import Sandbox
from bot.domain.approvals import ApprovalStatus
from bot.domain.ownership import LEGACY_OWNER
from bot.ids import Action, View
from bot.resources import http_manifest_path, manifest_path, manifest_scopes
from bot.store import open_store
from tests.conftest import COMMANDER, make_settings
from tests.danger.test_cleanup import Drill

PRIVATE = "C0PRIVATE"  # #leadership: a private channel; the bot is invited below


def test_a_full_scenario_uses_exactly_the_manifest_scopes(emulator: Emulator, sandbox: Sandbox, tmp_path: Path,
                                                          start_bot: Callable[..., SocketModeBot]) -> None:
    emulator.ws.channel_by_name("leadership").is_member = True  # /invite @rollback-bot in a private channel
    settings = make_settings(emulator, sandbox, tmp_path / "data", slack={"stakeholder_channel": PRIVATE},
                             cleanup={"start_delay_s": 0}, store={"sweep_s": 600})
    bot = start_bot(settings, clock=SystemClock())
    drill = Drill(emulator, bot)
    emulator.mention("casey", "incident-rollback", "status").wait()  # app_mentions:read
    drill.backup()
    request = drill.request()
    drill.react("dana", request)  # reactions:read; the approver is an @group member (usergroups:read)
    drill.wait_status(request, ApprovalStatus.EXECUTED, 60)
    emulator.slash("casey", "incident-rollback", "comms").wait()
    drill.ephemeral(COMMANDER, "Preview")
    preview = [e for e in emulator.ws.ephemerals_for(COMMANDER) if "Preview" in e.text][-1]
    emulator.click("casey", "incident-rollback", preview.ts, Action.COMMS_POST).wait()
    emulator.ws.wait_for(lambda: [m for m in emulator.ws.channel_messages(PRIVATE) if "(status update)" in m["text"]],
                         10, "the update in the private stakeholder channel")

    # A crash left a stakeholder post and a request claimed but not recorded: the next start finds them again
    # by their metadata (channels:history, groups:history).
    bot.close()
    store = open_store(None, settings.data_dir)  # the SQLite state the bot keeps by default
    incident = store.get_incident("RB-0001")
    assert incident is not None
    key, post = next((k, p) for k, p in incident.comms.items() if p.posted)
    incident.comms[key] = post.model_copy(update={"ts": None, "link": None, "owner": LEGACY_OWNER})
    store.save_incident(incident)
    executed = store.approval_for_message(request)
    assert executed is not None
    now = SystemClock().now()
    store.add_approval(executed.model_copy(update={
        "id": "AP-crashed", "status": ApprovalStatus.PENDING, "message_ts": None, "owner": LEGACY_OWNER,
        "requested_at": now, "expires_at": now + timedelta(minutes=30), "approvers": [], "version": 0}))
    plan = store.get_plan(executed.id)
    assert plan is not None
    store.put_plan(plan.model_copy(update={"approval_id": "AP-crashed"}), "RB-0001")
    store.close()
    bot = start_bot(settings, clock=SystemClock())
    emulator.ws.wait_for(lambda: (a := bot.services.store.get_approval("AP-crashed")) and a.status
                         is ApprovalStatus.VOID, 20, "the unposted request recovered")
    emulator.ws.wait_for(lambda: (i := bot.services.store.get_incident("RB-0001")) and i.comms[key].posted, 20,
                         "the stakeholder post found again")

    emulator.slash("casey", "incident-rollback", "rca").wait()
    form = emulator.ws.wait_for(lambda: next((v for v in emulator.ws.views if v["callback_id"] == View.RCA
                                              and not v.get("closed")), None), 10, "the RCA form")
    emulator.submit_view("casey", form["id"], {"what_went_wrong": "a bad deploy", "errors": "500s"}).wait()
    emulator.slash("casey", "incident-rollback", "close --force drill").wait()
    emulator.ws.wait_for(lambda: emulator.ws.files, 60, "the postmortem upload")  # files:write, users:read
    assert all(line.ok for line in run_checks(settings) if line.name.startswith(("incident channel", "stakeholder",
                                                                                  "Slack", "user group")))

    used = emulator.scopes_used()
    assert used == manifest_scopes(), (f"used but not asked for: {sorted(used - manifest_scopes())}; "
                                       f"asked for but never used: {sorted(manifest_scopes() - used)}")
    assert not [r for r in emulator.rejections if r.error.startswith("missing_scope")]


def test_the_http_manifest_differs_only_in_delivery() -> None:
    socket, http = (yaml.safe_load(p.read_text()) for p in (manifest_path(), http_manifest_path()))
    assert manifest_scopes(http_manifest_path()) == manifest_scopes()
    assert http["settings"]["socket_mode_enabled"] is False and socket["settings"]["socket_mode_enabled"] is True
    url = http["settings"]["event_subscriptions"]["request_url"]
    assert url.endswith("/slack/events") and http["settings"]["interactivity"]["request_url"] == url
    assert http["features"]["slash_commands"][0]["url"] == url
    for data in (socket, http):
        data["settings"].pop("socket_mode_enabled")
        data["settings"]["event_subscriptions"].pop("request_url", None)
        data["settings"]["interactivity"].pop("request_url", None)
        data["features"]["slash_commands"][0].pop("url", None)
    assert socket == http


@pytest.mark.parametrize("path", [manifest_path(), http_manifest_path()], ids=["socket", "http"])
def test_the_usage_hint_names_the_runbook_path_and_help_and_nothing_that_does_not_exist(path: Path) -> None:
    """Slack's autocomplete line: the runbook's path from start to close, and `help` (which lists every
    subcommand, so a new one needs no manifest change); never a subcommand that does not exist."""
    hint = yaml.safe_load(path.read_text())["features"]["slash_commands"][0]["usage_hint"]
    named = set(re.findall(r"(?:^|\| )(\w+)", hint))
    assert named <= {usage.name.value for usage in CATALOG}
    assert {"start", "status", "backup", "revert", "rebuild", "restart", "verify", "cleanup", "restore", "comms",
            "rca", "close", "help"} <= named
    assert len(hint) <= 1000
