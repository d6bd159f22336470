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
from bot.emulator import Emulator
from bot.ids import SLASH_COMMAND
from bot.resources import manifest_path
from bot.sandbox import Sandbox

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
    assert {"bot/emulator/web/index.html", "bot/emulator/web/app.js", "bot/emulator/web/style.css"} <= set(names)
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
