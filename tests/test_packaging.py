"""The package as users get it: manifest listeners, resources in an installed wheel, `rollback-bot check`."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml
from slack_bolt import BoltRequest, BoltResponse

from bot.app import build_app, build_services
from bot.config import Settings
from bot.dev.emulator import Emulator
from bot.dev.sandbox import Sandbox
from bot.ids import SLASH_COMMAND
from bot.resources import manifest_path

ROOT = Path(__file__).resolve().parent.parent


def test_every_manifest_command_and_event_has_a_listener(settings: Settings) -> None:
    manifest = yaml.safe_load(manifest_path().read_text())
    services = build_services(settings)
    try:
        app = build_app(services, socket_mode=True)
        commands = [c["command"] for c in manifest["features"]["slash_commands"]]
        assert commands == [SLASH_COMMAND]
        requests = [{"command": c, "text": "", "team_id": "T1", "user_id": "U1", "channel_id": "C1"}
                    for c in commands]
        requests += [{"type": "event_callback", "team_id": "T1", "event_id": "Ev1",
                      "event": {"type": e, "user": "U1", "channel": "C1", "ts": "1.0", "text": ""}}
                     for e in manifest["settings"]["event_subscriptions"]["bot_events"]]
        for body in requests:
            request = BoltRequest(body=body, mode="socket_mode")
            matched = [li for li in app._listeners if li.matches(req=request, resp=BoltResponse(status=200))]
            assert matched, f"nothing listens for {body.get('command') or body['event']['type']}"
    finally:
        services.close()


def test_an_installed_wheel_finds_templates_and_manifest(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(ROOT)], check=True, capture_output=True)
    wheel = next(out.glob("rollback_bot-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "bot/_resources/manifest.yml" in names and "bot/_resources/templates/panel.md.j2" in names
    assert {"bot/dev/emulator/web/index.html", "bot/dev/emulator/web/app.js", "bot/dev/emulator/web/style.css",
            "bot/dev/emulator/web/favicon.svg"} <= set(names)
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = ("import bot.resources as r, bot.slack_ui.render as c; print(r.manifest_path()); "
             "print(c.render('help.md.j2', command='/rollback', subcommands=[]))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONPATH": str(site)})
    assert str(site / "bot" / "_resources" / "manifest.yml") in result.stdout
    assert "the emergency rollback runbook" in result.stdout


def test_check_reports_each_item_and_fails_on_what_is_missing(tmp_path: Path, emulator: Emulator,
                                                               sandbox: Sandbox) -> None:
    config = tmp_path / "rollback.yml"
    config.write_text(yaml.safe_dump({
        **sandbox.config(),
        "access": {"incident_channels": ["C0INCIDENT"], "commanders": ["U0COMMANDER"], "approvers": ["@leads"]},
        "pm2": {"executable": "pm2-not-installed-here"},
        "health": {"url": "http://127.0.0.1:9/api/health"},
    }))
    env = {**os.environ, **emulator.bot_env()}
    result = subprocess.run([sys.executable, "-m", "bot.cli", "--config", str(config), "check"], cwd=tmp_path,
                            capture_output=True, text=True, env=env, timeout=120)
    out = result.stdout
    assert result.returncode == 1
    assert f"[ok  ] rollback target: {sandbox.good_commit[:7]} added new features" in out
    assert "[FAIL] pm2: `pm2-not-installed-here` not found" in out
    assert "[ok  ] Slack auth.test: team rollback-emulator" in out
    assert "[ok  ] tenant MongoDB: " in out and "3 tenant database(s)" in out
    userinfo = sandbox.central_uri.split("://", 1)[1].split("@")[0] if "@" in sandbox.central_uri else ""
    if ":" in userinfo:  # the password from the target's .env is never shown
        assert userinfo.split(":", 1)[1] not in out
    assert "[warn] health URL" in out
    assert "schedule:\n  every 60s" in out and "GET http://127.0.0.1:9/api/health expects" in out
    bad = tmp_path / "bad.yml"
    bad.write_text("target: {rollback_target: main}\n")
    result = subprocess.run([sys.executable, "-m", "bot.cli", "--config", str(bad), "check"], cwd=tmp_path,
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2 and "target.rollback_target" in result.stderr


def _action_ids(value: object) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        if "action_id" in value:
            found.add(str(value["action_id"]))
        for item in value.values():
            found |= _action_ids(item)
    elif isinstance(value, list):
        for item in value:
            found |= _action_ids(item)
    return found


def test_every_action_id_and_form_the_presenter_emits_has_a_listener(settings: Settings) -> None:
    """Render every message that carries buttons, menus or checkboxes, in every state, and every form; then
    deliver each element's action (and each form's submission) to the real app's listener table."""
    from datetime import timedelta

    from bot.domain.checks import CheckResult, CheckState, CheckStatus
    from bot.domain.updates import build_update
    from bot.slack_ui import SlackPresenter, stakeholder
    from tests.comms.test_templates import CLEANED, CLOSED, DONE_RUNS, FRESH, MID, MID_RUNS, T0

    ui = SlackPresenter(settings.runbook, lambda: [])
    messages = [ui.panel(state, runs) for state, runs in ((FRESH, []), (MID, MID_RUNS), (CLEANED, DONE_RUNS),
                                                          (CLOSED, DONE_RUNS))]
    messages.append(stakeholder.comms_preview(MID, build_update(settings.runbook, MID, MID_RUNS, "status update"),
                                              "C0STAKEHOLD", f"{MID.id}#1"))
    failing = CheckResult(name="health", ok=False, at=T0, detail="HTTP 500", criteria=["sessions"])
    messages.append(ui.alert(CheckState(id="health", status=CheckStatus.FAILING, fails=3,
                                        first_failure_at=T0 - timedelta(minutes=2)), failing, ["sessions"]))
    messages.append(ui.hotfix_offer("hotfix/login", "1a2b3c4", "origin"))
    emitted = set().union(*(_action_ids(list(m.blocks)) for m in messages))
    forms = [ui.comms_form(MID).body, ui.rca_form(MID).body]
    assert {a.split(":")[0] for a in emitted} >= {"rollback_step", "rollback_close", "rollback_comms_post",
                                                  "rollback_start_from_alert", "rollback_hotfix_push"}

    services = build_services(settings)
    try:
        app = build_app(services, socket_mode=True)
        for action_id in sorted(emitted):
            body = {"type": "block_actions", "team": {"id": "T1"}, "user": {"id": "U1"}, "channel": {"id": "C1"},
                    "actions": [{"action_id": action_id, "type": "button", "value": "RB-0001", "action_ts": "1.0"}]}
            request = BoltRequest(body=body, mode="socket_mode")
            assert [li for li in app._listeners if li.matches(req=request, resp=BoltResponse(status=200))], \
                f"nothing listens for the action {action_id}"
        for form in forms:
            body = {"type": "view_submission", "team": {"id": "T1"}, "user": {"id": "U1"},
                    "view": {"id": "V1", "type": "modal", "callback_id": form["callback_id"], "state": {"values": {}},
                             "private_metadata": "RB-0001", "hash": "h"}}
            request = BoltRequest(body=body, mode="socket_mode")
            assert [li for li in app._listeners if li.matches(req=request, resp=BoltResponse(status=200))], \
                f"nothing listens for the form {form['callback_id']}"
    finally:
        services.close()
