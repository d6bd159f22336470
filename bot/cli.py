"""`rollback-bot` — run (Socket Mode), serve (HTTP), check, emulator, local."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from bot.config import Settings, load_settings
from bot.errors import ConfigError

if TYPE_CHECKING:
    from bot.sandbox import Sandbox

log = logging.getLogger("rollback_bot")


def _logging(settings: Settings | None, level: str) -> None:
    from bot.app.logs import configure

    configure(settings, level)


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


def cmd_run(args: argparse.Namespace) -> int:
    from bot.app import socket_mode_bot

    settings = load_settings(args.config)
    _logging(settings, args.log_level)
    bot = socket_mode_bot(settings).start()
    log.info("connected over Socket Mode to %s", settings.api_url)
    try:
        _wait_for_signal()
    finally:
        bot.close()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.app import HttpBot

    settings = load_settings(args.config)
    _logging(settings, args.log_level)
    bot = HttpBot(settings, host=args.host, port=args.port)
    log.info("listening for Slack on http://%s:%s/slack/events", args.host, bot.port)
    try:
        bot.serve_forever()
    finally:
        bot.close()
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from bot.check import run_checks

    settings = load_settings(args.config)
    lines = run_checks(settings)
    for line in lines:
        print(line)
    from bot.domain.monitor import schedule_lines

    print("\nschedule:")
    for text in schedule_lines(settings.runbook):
        print(f"  {text}")
    failed = [line for line in lines if line.required and not line.ok]
    print(f"\n{len(lines) - len(failed)} of {len(lines)} ok" + (f"; {len(failed)} required item(s) failed"
                                                                  if failed else ""))
    return 1 if failed else 0


def cmd_emulator(args: argparse.Namespace) -> int:
    from bot.emulator import Emulator

    _logging(None, args.log_level)
    emulator = Emulator(Path(args.seed) if args.seed else None, port=args.port).start()
    if args.request_url:
        emulator.set_request_url(args.request_url)
    for key, value in emulator.bot_env().items():
        print(f"{key}={value}")
    print(f"# emulated Slack at {emulator.url} (Ctrl-C to stop)", flush=True)
    try:
        _wait_for_signal()
    finally:
        emulator.close()
    return 0


def local_config(root: Path, sandbox: Sandbox) -> Path:
    config = {
        **sandbox.config(),
        "access": {"incident_channels": ["C0INCIDENT"], "commanders": ["@oncall", "U0COMMANDER"],
                   "approvers": ["@backend-leads"]},
        "slack": {"stakeholder_channel": "C0STAKEHOLD", "alerts_channel": "C0ALERTS"},
        "contacts": {"backend_lead": ["U0APPROVER1"], "database_admin": ["U0APPROVER2"]},
        "store": {"data_dir": str(root / "data")},
    }
    path = root / "rollback.yml"
    path.write_text("# written by `rollback-bot local`\n" + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def open_sandbox(root: Path, mongo_uri: str | None = None) -> Sandbox:
    """The sandbox in ``root`` (made on first use), built and running under its own pm2."""
    from bot.sandbox import Sandbox, create_sandbox, start_apps, stop_apps

    if (root / "sandbox.json").exists():
        sandbox = Sandbox.load(root)
        stop_apps(sandbox)  # a clean pm2 daemon for this run
    else:
        sandbox = create_sandbox(root, mongo_uri=mongo_uri)
    start_apps(sandbox)
    return sandbox


def cmd_sandbox(args: argparse.Namespace) -> int:
    from bot.sandbox import Sandbox, stop_apps

    root = Path(args.dir).resolve()
    if args.stop:
        stop_apps(Sandbox.load(root))
        print(f"stopped the sandbox's pm2 daemon ({root / 'pm2-home'})")
        return 0
    if root.exists() and any(root.iterdir()) and not (root / "sandbox.json").exists():
        raise ConfigError(f"{root} is not empty; give a new folder for the sandbox")
    sandbox = open_sandbox(root, args.mongo_uri)
    config = local_config(root, sandbox)
    print(f"sandbox target in {sandbox.repo}\n"
          f"  HEAD is the broken {sandbox.broken_commit[:7]}; the known-good commit is {sandbox.good_commit[:7]}\n"
          f"  health: {sandbox.health_url} (answers 500 until rolled back)\n"
          f"  pm2 apps {', '.join(sandbox.apps)} under PM2_HOME={sandbox.pm2_home}\n"
          f"  tenants: {', '.join(sandbox.tenant_dbs)}\n"
          f"  config: {config}\n"
          f"stop it with: rollback-bot sandbox {args.dir} --stop")
    return 0


def cmd_local(args: argparse.Namespace) -> int:
    from bot.app import socket_mode_bot
    from bot.emulator import Emulator
    from bot.local import repl
    from bot.sandbox import stop_apps

    root = Path(args.dir).resolve()
    sandbox = open_sandbox(root / "target")
    config = local_config(root, sandbox)
    repo = sandbox.repo
    emulator = Emulator(port=args.port).start()
    os.environ.update(emulator.bot_env())
    settings = load_settings(config, env_file=False)
    _logging(settings, args.log_level)
    bot = socket_mode_bot(settings).start()
    print(f"\n  Open {emulator.url}/ in a browser\n\n"
          f"  (local Slack emulator; state: {settings.data_dir}; target: {repo})", flush=True)
    try:
        if sys.stdin.isatty() and not args.no_prompt:
            repl(emulator)
        else:
            print("No terminal attached: serving until Ctrl-C. Drive it with POST "
                  f"{emulator.url}/_emulator/slash {{\"user\": \"casey\", \"channel\": \"incident-rollback\", "
                  "\"text\": \"start\"}", flush=True)
            _wait_for_signal()
    finally:
        bot.close()
        emulator.close()
        stop_apps(sandbox)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rollback-bot", description=__doc__)
    p.add_argument("--config", help="path to rollback.yml (default: $ROLLBACK_CONFIG or ./rollback.yml)")
    p.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "info"))
    sub = p.add_subparsers(dest="command")
    sub.add_parser("run", help="connect to Slack over Socket Mode (default)").set_defaults(func=cmd_run)
    serve = sub.add_parser("serve", help="serve Slack's HTTP requests at /slack/events")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=3000)
    serve.set_defaults(func=cmd_serve)
    sub.add_parser("check", help="validate the config and reach everything the runbook needs").set_defaults(
        func=cmd_check)
    emu = sub.add_parser("emulator", help="run the local Slack emulator")
    emu.add_argument("--port", type=int, default=3100)
    emu.add_argument("--seed", help="workspace seed YAML (users, channels, groups)")
    emu.add_argument("--request-url", help="deliver over signed HTTP to this URL instead of Socket Mode")
    emu.set_defaults(func=cmd_emulator)
    sandbox = sub.add_parser("sandbox", help="create a runbook-like target in DIR and start it under pm2")
    sandbox.add_argument("dir")
    sandbox.add_argument("--mongo-uri",
                         help="put the tenant data on this MongoDB server (default: in-process mongomock)")
    sandbox.add_argument("--stop", action="store_true", help="stop the sandbox's pm2 daemon")
    sandbox.set_defaults(func=cmd_sandbox)
    local = sub.add_parser("local", help="emulator + bot + SQLite + sandbox target, all on this machine")
    local.add_argument("--dir", default=".local", help="where local state and the sandbox live (default .local)")
    local.add_argument("--port", type=int, default=3100)
    local.add_argument("--no-prompt", action="store_true", help="do not open the interactive prompt")
    local.set_defaults(func=cmd_local)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not getattr(args, "func", None):
        args.func = cmd_run
    try:
        return int(args.func(args))
    except ConfigError as error:
        print(f"rollback-bot: {error.plain()}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
