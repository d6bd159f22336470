"""The package as users get it: manifest listeners; the wheel, installed alone (the product, no bot/dev; its
resources, `rollback-bot run`, the development subcommands saying where they run); `rollback-bot check`."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from slack_bolt import BoltRequest, BoltResponse

from bot.app import build_app, build_services
from bot.config import Settings
from bot.dev.emulator import Emulator
from bot.dev.sandbox import Sandbox
from bot.ids import SLASH_COMMAND
from bot.resources import manifest_path

ROOT = Path(__file__).resolve().parent.parent
CLEARED = ("SLACK_", "ROLLBACK_CONFIG", "LOG_LEVEL", "STATE_STORE_URI", "PYTHONPATH")


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


@dataclass(frozen=True)
class Installed:
    """The built wheel, installed alone into a fresh virtual environment."""

    wheel: Path
    venv: Path

    def run(self, *argv: str, cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``ARGV[0]`` from the environment's bin folder, with none of this machine's Slack settings or PYTHONPATH."""
        return subprocess.run([str(self.venv / "bin" / argv[0]), *argv[1:]], cwd=cwd, env=self.env(env),
                              capture_output=True, text=True, timeout=timeout)

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(CLEARED)}
        return {**base, **(extra or {})}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """``pip install`` of the wheel as a user gets it: built from this checkout, installed with --no-deps into a new
    venv (without pip: this one's pip installs into it). The dependencies come from this venv's site-packages by a
    .pth line, which adds that folder alone: its own .pth files, among them the editable install's path to this
    checkout, are not read, so the checkout's bot/dev is out of reach."""
    base = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(base / "dist"), str(ROOT)], check=True, capture_output=True)
    wheel = next((base / "dist").glob("rollback_bot-*.whl"))
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, capture_output=True)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    ours = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (Path(site) / "_rollback_bot_test_deps.pth").write_text("".join(f"{path}\n" for path in ours))
    return Installed(wheel, venv)


def test_the_wheel_holds_the_product_and_no_development_tooling(installed: Installed) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    assert {"bot/cli.py", "bot/app/__init__.py", "handlers/__init__.py", "bot/_resources/manifest.yml",
            "bot/_resources/templates/panel.md.j2", "bot/ops/pm2_restart.js"} <= set(names)
    assert [n for n in names if n.startswith("bot/dev/")] == []
    product_js = {"bot/ops/pm2_restart.js"}  # the restart's pm2 work, through pm2's API (bot/ops/pm2.py)
    assert [n for n in names if n not in product_js and any(word in n for word in (
        "emulator", "localmongo", "sandbox", "fakeclock", "FakeClock", ".html", ".js", ".css"))] == []


def test_every_module_of_an_installed_wheel_imports_without_bot_dev(installed: Installed, tmp_path: Path) -> None:
    """No product module imports bot/dev when it loads: every one imports where bot/dev is missing."""
    probe = ("import importlib, importlib.util, pkgutil, bot, handlers\n"
             "assert importlib.util.find_spec('bot.dev') is None\n"
             "names = [m.name for p in (bot, handlers) for m in pkgutil.walk_packages(p.__path__, p.__name__ + '.')]\n"
             "for name in names:\n"
             "    importlib.import_module(name)\n"
             "print(bot.__file__, len(names))\n")
    result = installed.run("python", "-c", probe, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    where, count = result.stdout.split()
    assert Path(where).is_relative_to(installed.venv) and int(count) > 50


def test_an_installed_wheel_finds_templates_and_manifest(installed: Installed, tmp_path: Path) -> None:
    probe = ("import bot.resources as r, bot.slack_ui.render as c; print(r.manifest_path()); "
             "print(c.render('help.md.j2', command='/rollback', groups=[], incident=None, upcoming=None))")
    result = installed.run("python", "-c", probe, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.splitlines()[0]).is_relative_to(installed.venv)
    assert result.stdout.splitlines()[0].endswith("bot/_resources/manifest.yml")
    assert "the emergency rollback runbook" in result.stdout


def test_an_installed_wheels_run_checks_slack_and_connects_over_socket_mode(installed: Installed, tmp_path: Path,
                                                                           emulator: Emulator) -> None:
    """Stopping it cleanly is test_cli's to check: here the process is only ended once it has connected."""
    config = tmp_path / "rollback.yml"
    config.write_text(yaml.safe_dump({"store": {"data_dir": str(tmp_path / "data")},
                                      "health": {"url": "http://127.0.0.1:9/api/health"},
                                      "access": {"incident_channels": ["C0INCIDENT"], "commanders": ["@oncall"],
                                                 "approvers": ["@backend-leads"]}}))
    assert installed.run("rollback-bot", "run", "--help", cwd=tmp_path).returncode == 0
    process = subprocess.Popen([str(installed.venv / "bin" / "rollback-bot"), "run", "--config", str(config)],
                               cwd=tmp_path, env=installed.env(emulator.bot_env()), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    try:
        assert process.stderr is not None
        for line in process.stderr:  # until it says it is connected (or exits: the stream ends)
            seen.append(line)
            if "connected over Socket Mode" in line:
                break
    finally:
        process.kill()
        process.communicate(timeout=30)
    assert seen and "connected over Socket Mode" in seen[-1], "".join(seen)
    assert emulator.connections_opened == 1


@pytest.mark.parametrize(("argv", "where"), [
    (["local"], "`make local`"),
    (["local", "--keep", "--no-prompt"], "`make local`"),
    (["sandbox", "target"], "`make deps`, then `.venv/bin/rollback-bot sandbox DIR`"),
    (["emulator"], "`make deps`, then `.venv/bin/rollback-bot emulator`"),
])
def test_an_installed_wheel_says_the_development_subcommands_run_from_a_checkout(
        installed: Installed, tmp_path: Path, argv: list[str], where: str) -> None:
    result = installed.run("rollback-bot", *argv, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"rollback-bot: `rollback-bot {argv[0]}` is development tooling: run it "
                                          f"from a checkout with {where}"]
    assert list(tmp_path.iterdir()) == []  # it made nothing


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
    messages.append(ui.hotfix_offer("hotfix/login", "1a2b3c4", "origin", True))
    messages.append(ui.hotfix_offer("hotfix/login", "1a2b3c4", "origin", False))
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
