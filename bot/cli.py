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


def open_sandbox(root: Path, mongo_uri: str, *, mongo_dir: Path | None = None) -> Sandbox:
    """The sandbox in ``root`` (made on first use, its tenant data on ``mongo_uri``), built and running under
    its own pm2. ``mongo_dir``: ``mongo_uri`` is the sandbox's own local server, keeping its data there."""
    from bot.sandbox import Sandbox, create_sandbox, has_tenants, seed_tenants, start_apps, stop_apps

    if (root / "sandbox.json").exists():
        sandbox = Sandbox.load(root)
        if not sandbox.central_uri.startswith(("mongodb://", "mongodb+srv://")):
            raise ConfigError(f"{root} was made for the old in-process MongoDB stand-in; remove it and run again "
                              "for a sandbox on a real server")
        stop_apps(sandbox)  # a clean pm2 daemon for this run
        if not has_tenants(sandbox):  # e.g. its local server's data folder was removed
            seed_tenants(sandbox)
    else:
        sandbox = create_sandbox(root, mongo_uri=mongo_uri, local_server=mongo_dir is not None, mongo_dir=mongo_dir)
    start_apps(sandbox)
    return sandbox


def cmd_sandbox(args: argparse.Namespace) -> int:
    from bot.localmongo import LocalMongoError, running_server, start_detached, stop_detached
    from bot.ops.tenants import describe
    from bot.sandbox import Sandbox, stop_apps

    root = Path(args.dir).resolve()
    existing = Sandbox.find(root)
    if args.stop:
        if existing is not None:
            stop_apps(existing)
            print(f"stopped the sandbox's pm2 daemon ({existing.pm2_home})")
        # its own server; also one left by a `sandbox DIR` that failed before it wrote sandbox.json
        for folder in dict.fromkeys([root / "mongo", *([existing.mongo_dir] if existing and existing.mongo_dir
                                                        else [])]):
            if stop_detached(folder):
                print(f"stopped the sandbox's local MongoDB (its data stays in {folder / 'db'})")
        return 0
    if root.exists() and any(root.iterdir()) and existing is None:
        raise ConfigError(f"{root} is not empty; give a new folder for the sandbox")
    if existing is not None and args.mongo_uri:
        print(f"note: {root} already has a sandbox; its tenant data stays where it is (--mongo-uri is ignored)")
    mongo_dir: Path | None = None
    started = False
    if existing is None and args.mongo_uri:
        mongo_uri = args.mongo_uri
    elif existing is not None and existing.mongo_dir is None:
        mongo_uri = existing.central_uri  # the server given with --mongo-uri when it was made
    else:  # the sandbox's own local server, detached: it outlives this command; `--stop` stops it
        mongo_dir = existing.mongo_dir if existing and existing.mongo_dir else root / "mongo"
        try:
            started = running_server(mongo_dir) is None
            mongo_uri = start_detached(mongo_dir, port=existing.mongo_port if existing else None).uri
        except LocalMongoError as error:
            raise ConfigError(str(error)) from None
    try:
        sandbox = open_sandbox(root, mongo_uri, mongo_dir=mongo_dir)
    except BaseException:
        if started and mongo_dir is not None:
            stop_detached(mongo_dir)
        raise
    config = local_config(root, sandbox)
    where = (f"a local MongoDB (nx-27017) at {describe(sandbox.central_uri)}, data in {sandbox.mongo_dir / 'db'}"
             if sandbox.mongo_dir else describe(sandbox.central_uri))
    print(f"sandbox target in {sandbox.repo}\n"
          f"  HEAD is the broken {sandbox.broken_commit[:7]}; the known-good commit is {sandbox.good_commit[:7]}\n"
          f"  health: {sandbox.health_url} (answers 500 until rolled back)\n"
          f"  pm2 apps {', '.join(sandbox.apps)} under PM2_HOME={sandbox.pm2_home}\n"
          f"  tenants: {', '.join(sandbox.tenant_dbs)} on {where}\n"
          f"  config: {config}\n"
          f"stop it with: rollback-bot sandbox {args.dir} --stop")
    return 0


def cmd_local(args: argparse.Namespace) -> int:
    from contextlib import ExitStack

    from bot.app import socket_mode_bot
    from bot.emulator import Emulator
    from bot.local import repl
    from bot.localmongo import LocalMongo, LocalMongoError, stop_detached
    from bot.ops.tenants import describe
    from bot.sandbox import Sandbox, stop_apps

    root = Path(args.dir).resolve()
    mongo_dir = root / "mongo"
    if stop_detached(mongo_dir):
        print(f"stopped a local MongoDB left running by an earlier `rollback-bot local` ({mongo_dir})")
    existing = Sandbox.find(root / "target")
    # its data outlives the run; the same port, so the sandbox's URI (in its .env) finds it again
    mongo = LocalMongo(mongo_dir, port=existing.mongo_port if existing and existing.mongo_dir else None)
    with ExitStack() as running:  # undone in reverse however this ends: Ctrl-C, SIGTERM, an error
        try:
            running.enter_context(mongo)
        except LocalMongoError as error:
            raise ConfigError(str(error)) from None
        sandbox = open_sandbox(root / "target", mongo.uri, mongo_dir=mongo_dir)
        running.callback(stop_apps, sandbox)
        config = local_config(root, sandbox)
        emulator = Emulator(port=args.port).start()
        running.callback(emulator.close)
        os.environ.update(emulator.bot_env())
        settings = load_settings(config, env_file=False)
        _logging(settings, args.log_level)
        bot = socket_mode_bot(settings).start()
        running.callback(bot.close)
        print(f"\n  Open {emulator.url}/ in a browser\n\n"
              f"  (local Slack emulator; state: {settings.data_dir}; target: {sandbox.repo};\n"
              f"   tenants: a local MongoDB at {describe(mongo.uri)}, data in {mongo_dir / 'db'})", flush=True)
        if sys.stdin.isatty() and not args.no_prompt:
            repl(emulator)
        else:
            print("No terminal attached: serving until Ctrl-C. Drive it with POST "
                  f"{emulator.url}/_emulator/slash {{\"user\": \"casey\", \"channel\": \"incident-rollback\", "
                  "\"text\": \"start\"}", flush=True)
            _wait_for_signal()
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
                         help="put the tenant data on this MongoDB server (default: a local nx-27017 server "
                              "in DIR/mongo that keeps running until --stop)")
    sandbox.add_argument("--stop", action="store_true", help="stop the sandbox's pm2 daemon and its local MongoDB")
    sandbox.set_defaults(func=cmd_sandbox)
    local = sub.add_parser("local", help="emulator + bot + SQLite + sandbox target + a local MongoDB (nx-27017), "
                                         "all on this machine")
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
