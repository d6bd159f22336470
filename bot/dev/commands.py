"""The bodies of the CLI's development subcommands: `rollback-bot emulator`, `sandbox` and `local`.

Their options and help stay in bot/cli.py's parser, so `rollback-bot --help` lists them wherever it runs. bot/cli.py
imports this module only when one of them runs; an installed wheel has no bot/dev, and there they answer that they
are development tooling."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from contextlib import ExitStack
from pathlib import Path

import yaml

from bot.app import socket_mode_bot
from bot.app.logs import configure
from bot.app.process import started, stop_on_signals
from bot.config import load_settings
from bot.dev.emulator import Emulator
from bot.dev.fakeclock import LaterClock
from bot.dev.local import claim, later, prepare, release, repl
from bot.dev.localmongo import LocalMongo, LocalMongoError, running_server, start_detached, stop_detached
from bot.dev.sandbox import (
    QUICK,
    TINY,
    Sandbox,
    SandboxSize,
    create_sandbox,
    has_tenants,
    seed_tenants,
    start_apps,
    stop_apps,
)
from bot.errors import ConfigError
from bot.ops.tenants import describe


def _interrupt_on_sigterm() -> None:
    """SIGTERM as Ctrl-C: a long start-up (`local` builds the sandbox) unwinds and undoes what it started."""
    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def run_emulator(args: argparse.Namespace) -> int:
    configure(None, args.log_level)
    stop = stop_on_signals()
    emulator = Emulator(Path(args.seed) if args.seed else None, port=args.port).start()
    try:
        if args.request_url:
            emulator.set_request_url(args.request_url)
        for key, value in emulator.bot_env().items():
            print(f"{key}={value}")
        print(f"# emulated Slack at {emulator.url} (Ctrl-C to stop)", flush=True)
        stop.wait()
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


def open_sandbox(root: Path, mongo_uri: str, *, mongo_dir: Path | None = None, size: SandboxSize = TINY) -> Sandbox:
    """The sandbox in ``root`` (made on first use, of ``size``, its tenant data on ``mongo_uri``), built and
    running under its own pm2. ``mongo_dir``: ``mongo_uri`` is the sandbox's own local server, keeping its data
    there."""
    if (root / "sandbox.json").exists():
        sandbox = Sandbox.load(root)
        if not sandbox.central_uri.startswith(("mongodb://", "mongodb+srv://")):
            raise ConfigError(f"{root} was made for the old in-process MongoDB stand-in; remove it and run again "
                              "for a sandbox on a real server (`rollback-bot local` without --keep does that)")
        stop_apps(sandbox)  # a clean pm2 daemon for this run
        if not has_tenants(sandbox):  # e.g. its local server's data folder was removed
            seed_tenants(sandbox)
    else:
        sandbox = create_sandbox(root, mongo_uri=mongo_uri, local_server=mongo_dir is not None, mongo_dir=mongo_dir,
                                 size=size)
    start_apps(sandbox)
    return sandbox


def sandbox_size(args: argparse.Namespace) -> SandboxSize:
    if args.modules is not None and args.modules < 0:
        raise ConfigError(f"--modules {args.modules}: give a count of 0 or more, e.g. --modules 150")
    if args.modules is None and not args.typescript:
        return TINY
    return SandboxSize(typescript=True, modules=QUICK.modules if args.modules is None else args.modules)


def run_sandbox(args: argparse.Namespace) -> int:
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
    size = sandbox_size(args)
    if existing is not None and args.mongo_uri:
        print(f"note: {root} already has a sandbox; its tenant data stays where it is (--mongo-uri is ignored)")
    if existing is not None and (args.typescript or args.modules is not None):
        print(f"note: {root} already has a sandbox; its backend stays as it was made (--typescript and --modules "
              "are ignored)")
    mongo_dir: Path | None = None
    started_server = False
    if existing is None and args.mongo_uri:
        mongo_uri = args.mongo_uri
    elif existing is not None and existing.mongo_dir is None:
        mongo_uri = existing.central_uri  # the server given with --mongo-uri when it was made
    else:  # the sandbox's own local server, detached: it outlives this command; `--stop` stops it
        mongo_dir = existing.mongo_dir if existing and existing.mongo_dir else root / "mongo"
        try:
            started_server = running_server(mongo_dir) is None
            mongo_uri = start_detached(mongo_dir, port=existing.mongo_port if existing else None).uri
        except LocalMongoError as error:
            raise ConfigError(str(error)) from None
    try:
        sandbox = open_sandbox(root, mongo_uri, mongo_dir=mongo_dir, size=size)
    except BaseException:
        if started_server and mongo_dir is not None:
            stop_detached(mongo_dir)
        raise
    config = local_config(root, sandbox)
    where = (f"a local MongoDB (nx-27017) at {describe(sandbox.central_uri)}, data in {sandbox.mongo_dir / 'db'}"
             if sandbox.mongo_dir else describe(sandbox.central_uri))
    backend = (f"TypeScript, {sandbox.modules} generated modules, built by tsc; yarn installs offline"
               if sandbox.typescript else "JavaScript, its build copies files")
    print(f"sandbox target in {sandbox.repo} ({backend})\n"
          f"  HEAD is the broken {sandbox.broken_commit[:7]}; the known-good commit is {sandbox.good_commit[:7]}\n"
          f"  health: {sandbox.health_url} (answers 500 until rolled back)\n"
          f"  pm2 apps {', '.join(sandbox.apps)} under PM2_HOME={sandbox.pm2_home}\n"
          f"  tenants: {', '.join(sandbox.tenant_dbs)} on {where}\n"
          f"  config: {config}\n"
          f"stop it with: rollback-bot sandbox {args.dir} --stop")
    return 0


def run_local(args: argparse.Namespace) -> int:
    _interrupt_on_sigterm()
    root = Path(args.dir).resolve()
    print(prepare(root, keep=args.keep), flush=True)
    mongo_dir = root / "mongo"
    existing = Sandbox.find(root / "target")
    # its data outlives the run; the same port, so the sandbox's URI (in its .env) finds it again
    mongo = LocalMongo(mongo_dir, port=existing.mongo_port if existing and existing.mongo_dir else None)
    with ExitStack() as running:  # undone in reverse however this ends: Ctrl-C, SIGTERM, an error
        claim(root)
        running.callback(release, root)
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
        configure(settings, args.log_level)
        clock = LaterClock()  # the system's time until `:later 7d` at the prompt moves it ahead
        bot = socket_mode_bot(settings, clock=clock).start()
        running.callback(bot.close)
        started()
        print(f"\n  Open {emulator.url}/ in a browser\n\n"
              f"  (local Slack emulator; state: {settings.data_dir}; target: {sandbox.repo};\n"
              f"   tenants: a local MongoDB at {describe(mongo.uri)}, data in {mongo_dir / 'db'})", flush=True)
        if sys.stdin.isatty() and not args.no_prompt:
            repl(emulator, later(clock, bot))
        else:
            stop = stop_on_signals()
            print("No terminal attached: serving until Ctrl-C. Drive it with POST "
                  f"{emulator.url}/_emulator/slash {{\"user\": \"casey\", \"channel\": \"incident-rollback\", "
                  "\"text\": \"start\"}", flush=True)
            stop.wait()
    return 0
