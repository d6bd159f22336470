"""rollback-bot: the emergency rollback runbook as a Slack bot.

Start with `check`, then `run` (Socket Mode) or `serve` (HTTP). From a checkout,
`local` tries everything on this machine, against an emulated Slack workspace."""

# One module of this size on purpose: each subcommand is a short function next to the parser that states its
# options and help, over shared start-up (settings, logging; signals in bot/app/process.py); split, the help would
# drift from the code.
# The development subcommands (emulator, sandbox, local) keep their options here, so the help is the same
# everywhere, and their bodies in bot/dev/commands.py, which the wheel does not hold.
from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bot.config import Settings, load_settings
from bot.errors import ConfigError

log = logging.getLogger("rollback_bot")
LEVELS = ("debug", "info", "warning", "error")
ENVIRONMENT = """\
environment (or a .env file in the working directory):
  SLACK_BOT_TOKEN       the bot token (xoxb-…): run, serve, check
  SLACK_APP_TOKEN       the app-level token (xapp-…, connections:write): run
  SLACK_SIGNING_SECRET  the app's signing secret: serve
  SLACK_API_URL         Slack's Web API (default https://slack.com/api/)
  ROLLBACK_CONFIG       the config file when --config is not given
  LOG_LEVEL             the log level when --log-level is not given
  STATE_STORE_URI       mongodb://… to share state between replicas
  ROLLBACK_REPLICA_ID   this replica's id (default: the host name and a hash of the data folder)

global options (--config, --log-level) go before or after the subcommand.
`rollback-bot SUBCOMMAND --help` shows each subcommand's options."""


def _logging(settings: Settings | None, level: str) -> None:
    from bot.app.logs import configure

    configure(settings, level)


def _debugging() -> bool:
    return logging.getLogger().isEnabledFor(logging.DEBUG)


@contextmanager
def _without(logger_name: str, prefix: str) -> Iterator[None]:
    """Drop ``logger_name``'s records starting with ``prefix`` (an error the caller reports as one line),
    except at --log-level debug."""
    def keep(record: logging.LogRecord) -> bool:
        return _debugging() or not str(record.msg).startswith(prefix)

    logger = logging.getLogger(logger_name)
    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def cmd_run(args: argparse.Namespace) -> int:
    from bot.app import socket_mode_bot
    from bot.app.process import started, stop_on_signals
    from bot.preflight import check_bot_token, slack_problem

    settings = load_settings(args.config)
    _logging(settings, args.log_level)
    settings.require("slack_bot_token", "slack_app_token")
    settings.require_people()
    who = check_bot_token(settings)
    stop = stop_on_signals()
    bot = socket_mode_bot(settings)
    try:
        try:  # Socket Mode's first call is the only one made with the app token
            with _without("slack_bolt.App", "Failed to retrieve WSS URL"):
                bot.start()
        except Exception as error:
            problem = slack_problem(settings, error, env_name="SLACK_APP_TOKEN")
            if problem is None:
                raise
            raise problem from error
        log.info("connected over Socket Mode to %s as %s of team %s", settings.api_url, who.get("user"),
                 who.get("team"))
        started()
        stop.wait()
    finally:
        bot.close()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.app import HttpBot
    from bot.app.process import started, stop_on_signals
    from bot.preflight import check_bot_token

    settings = load_settings(args.config)
    _logging(settings, args.log_level)
    settings.require("slack_bot_token", "slack_signing_secret")
    settings.require_people()
    who = check_bot_token(settings)
    stop = stop_on_signals()
    try:
        bot = HttpBot(settings, host=args.host, port=args.port)
    except OSError as error:
        if error.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            raise ConfigError(f"cannot listen on {args.host}:{args.port} ({(error.strerror or '').lower()}) — "
                              "choose another --host or --port") from error
        raise
    try:
        bot.start()
        log.info("listening for Slack on http://%s:%s/slack/events as %s of team %s", args.host, bot.port,
                 who.get("user"), who.get("team"))
        started()
        stop.wait()
    finally:
        bot.close()
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from bot.check import run_checks, summary

    settings = load_settings(args.config)
    _logging(settings, args.log_level)
    lines = run_checks(settings)
    for line in lines:
        print(line)
    from bot.domain.monitor import schedule_lines

    print("\nschedule:")
    for text in schedule_lines(settings.runbook):
        print(f"  {text}")
    closing, failed = summary(lines)
    print(f"\n{closing}")
    return 1 if failed else 0


def _retention(settings: Settings) -> Any:
    from bot.clock import SystemClock
    from bot.domain.backups import Retention
    from bot.runbook.systems import BackupFolder
    from bot.store import open_store

    uri = settings.secrets.state_store_uri
    store = open_store(uri.get_secret_value() if uri else None, settings.data_dir)
    return Retention(store, SystemClock(), settings.runbook.backup, BackupFolder(settings.data_dir))


def _space_lines(settings: Settings, retention: Any) -> list[str]:
    from bot.domain.backups import MIB, mib

    keep, space = settings.runbook.backup.keep, retention.space()
    count = f"the newest {keep.per_incident} run(s) per incident" if keep.per_incident else "every run"
    age = f"none older than {keep.max_age_days:g} days" if keep.max_age_days else "whatever its age"
    return [f"data folder {space.folder}: {mib(space.free)} free of {mib(space.total)}; reserve "
            f"{mib(settings.runbook.backup.reserve_mb * MIB)} (backup.reserve_mb)",
            f"backup.keep: {count}, {age}; never a run something relies on"]


def cmd_backups(args: argparse.Namespace) -> int:
    import getpass

    from bot.domain.backups import size

    settings = load_settings(args.config)
    _logging(settings, args.log_level)
    if args.action == "prune" and args.dry_run == args.yes:
        raise ConfigError("say `rollback-bot backups prune --dry-run` to see what would be removed, or "
                          "`rollback-bot backups prune --yes` to remove it")
    retention = _retention(settings)
    try:
        for line in _space_lines(settings, retention):
            print(line)
        print()
        if args.action == "list":
            verdicts = retention.review()
            for v in verdicts:
                state = "kept" if v.keep else "prune"
                print(f"{v.run.run_id}  {size(v.run.bytes):>12}  {v.created:%Y-%m-%d %H:%M} UTC  {state}: {v.why}")
            going = [v for v in verdicts if not v.keep]
            print(f"\n{len(verdicts)} run(s), {size(sum(v.run.bytes for v in verdicts))}; {len(going)} would be "
                  f"removed by `rollback-bot backups prune --yes` ({size(sum(v.run.bytes for v in going))})")
            return 0
        pruned = retention.prune(f"cli:{getpass.getuser()}", dry_run=args.dry_run)
        verb = "would remove" if pruned.dry_run else "removed"
        for v in pruned.removed:
            print(f"{verb} {v.run.run_id}  {size(v.run.bytes)}: {'; '.join(v.reasons)}")
        kept_relied = sum(1 for v in pruned.kept if v.relied_on)
        print(f"\n{verb} {len(pruned.removed)} run(s), {size(pruned.freed)}; kept {len(pruned.kept)} "
              f"({kept_relied} relied on: `rollback-bot backups list` says why)")
        return 0
    finally:
        retention.store.close()


@contextmanager
def _dev_tooling(name: str, where: str) -> Iterator[None]:
    """Around the import of bot.dev, which only a checkout has: the wheel holds the product alone, so there a
    development subcommand says where it runs (and exits 2) instead of failing on the import."""
    try:
        yield
    except ModuleNotFoundError as error:
        if error.name not in ("bot.dev", "bot.dev.commands"):
            raise
        raise ConfigError(f"`rollback-bot {name}` is development tooling: run it from a checkout with {where}") \
            from None


def cmd_emulator(args: argparse.Namespace) -> int:
    with _dev_tooling("emulator", "`make deps`, then `.venv/bin/rollback-bot emulator`"):
        from bot.dev.commands import run_emulator
    return run_emulator(args)


def cmd_sandbox(args: argparse.Namespace) -> int:
    with _dev_tooling("sandbox", "`make deps`, then `.venv/bin/rollback-bot sandbox DIR`"):
        from bot.dev.commands import run_sandbox
    return run_sandbox(args)


def cmd_local(args: argparse.Namespace) -> int:
    with _dev_tooling("local", "`make local`"):
        from bot.dev.commands import run_local
    return run_local(args)

def _level(text: str) -> str:
    level = text.strip().lower()
    if level not in LEVELS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a log level: use {', '.join(LEVELS)} "
                                         "(here or in LOG_LEVEL)")
    return level


def _global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """--config and --log-level. The top-level parser holds the defaults; each subcommand's copy defaults to
    SUPPRESS, so a value given before the subcommand is kept unless it is given again after it."""
    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    group = parser.add_argument_group("global options (before or after the subcommand)")
    group.add_argument("--config", metavar="PATH", default=default(None),
                       help="the config file, rollback.yml (default: $ROLLBACK_CONFIG, else ./rollback.yml if it "
                            "exists, else built-in defaults); read by run, serve and check")
    group.add_argument("--log-level", metavar="LEVEL", type=_level,
                       default=default(os.environ.get("LOG_LEVEL") or "info"),
                       help=f"{', '.join(LEVELS)} (default: $LOG_LEVEL, else info); debug also prints the full "
                            "traceback behind an error")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rollback-bot")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed: run `make deps`)"


def parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(prog="rollback-bot", description=__doc__, epilog=ENVIRONMENT,
                                formatter_class=formatter)
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}",
                   help="print the version and exit")
    _global_options(p, top=True)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, top=False)
    sub = p.add_subparsers(dest="command", metavar="SUBCOMMAND",
                           title="subcommands (without one: run)")

    def add(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], help=summary, description=description)

    add("run", "connect to Slack over Socket Mode (the default)",
        "Connect to Slack over Socket Mode (SLACK_BOT_TOKEN and SLACK_APP_TOKEN) and serve until Ctrl-C or "
        "SIGTERM. First checks that Slack answers at SLACK_API_URL, that it accepts the bot token and that the "
        "token has the manifest's scopes: each problem is one line naming what to fix.").set_defaults(func=cmd_run)
    serve = add("serve", "serve Slack's HTTP requests at /slack/events",
                "Serve Slack's HTTP requests (slash command, interactivity, events) at /slack/events, verifying each "
                "with SLACK_SIGNING_SECRET. Checks the bot token first, like run.")
    serve.add_argument("--host", default="127.0.0.1",
                       help="the address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)")
    serve.add_argument("--port", type=int, default=3000, help="the port to listen on (default 3000)")
    serve.set_defaults(func=cmd_serve)
    add("check", "validate the config and reach everything the runbook needs",
        "Validate the config and reach everything the runbook needs: git, pm2, yarn, the tenant MongoDB, the "
        "health URL, Slack (token, scopes, channels, groups). One line per item, with the fix on every failing "
        "one, then a summary. Exits 1 if a required item fails; warnings alone exit 0.").set_defaults(
        func=cmd_check)
    backups = add("backups", "list the backup runs and why each is kept, or prune them (backup.keep)",
                  "The backup runs under the data folder (store.data_dir/backups): `list` shows each run, its size "
                  "and why it is kept or would be removed; `prune --dry-run` shows what retention (backup.keep) "
                  "would remove and `prune --yes` removes it, each removal in the audit log. Never removed, "
                  "whatever the limits: a run an open incident relies on, one an executed cleanup that is not "
                  "restored relied on, one a pending request names, one being written or unknown to the store.")
    action = backups.add_subparsers(dest="action", metavar="ACTION", required=True,
                                    help="list: every run and why it is kept; prune: remove what backup.keep lets go")
    action.add_parser("list", parents=[common], help="every run, its size and why it is kept")
    prune = action.add_parser("prune", parents=[common], help="remove the runs backup.keep lets go")
    how = prune.add_mutually_exclusive_group()
    how.add_argument("--dry-run", action="store_true", help="show what would be removed; remove nothing")
    how.add_argument("--yes", action="store_true", help="remove them (each removal is audited)")
    backups.set_defaults(func=cmd_backups)
    emu = add("emulator", "run the local Slack emulator",
              "Run the local Slack emulator alone and print the environment a bot needs to use it. Development "
              "tooling: it runs from a checkout (`make deps`), not from an installed wheel.")
    emu.add_argument("--port", type=int, default=3100, help="the port to listen on (default 3100; 0 picks a free one)")
    emu.add_argument("--seed", metavar="YAML", help="workspace seed: users, channels, groups (default: the "
                                                    "emulator's seed.yml)")
    emu.add_argument("--request-url", metavar="URL",
                     help="deliver over signed HTTP to this URL (rollback-bot serve) instead of Socket Mode")
    emu.set_defaults(func=cmd_emulator)
    sandbox = add("sandbox", "create a runbook-like target in DIR and start it under pm2",
                  "Create a runbook-like target (a broken Node backend in git, tenant databases) in DIR and start "
                  "it under its own pm2. Run again to start it again; --stop stops it. Development tooling: it "
                  "runs from a checkout (`make deps`), not from an installed wheel.")
    sandbox.add_argument("dir", metavar="DIR", help="the folder for the sandbox (new or empty, or one made before)")
    sandbox.add_argument("--mongo-uri", metavar="URI",
                         help="put the tenant data on this MongoDB server (default: a local nx-27017 server "
                              "in DIR/mongo that keeps running until --stop)")
    sandbox.add_argument("--stop", action="store_true", help="stop the sandbox's pm2 daemon and its local MongoDB")
    sandbox.add_argument("--typescript", action="store_true",
                         help="a TypeScript backend built by the real tsc, `yarn install` offline from its "
                              "yarn.lock (default: a JavaScript backend whose build copies files)")
    sandbox.add_argument("--modules", type=int, metavar="N",
                         help="with --typescript (which it implies): N generated source modules (default 150, "
                              "a build of 2-3 s; 1500 takes some 9-12 s on 2 cores)")
    sandbox.set_defaults(func=cmd_sandbox)
    local = add("local", "emulator + bot + SQLite + sandbox target + a local MongoDB (nx-27017), all on this "
                         "machine",
                "Everything on this machine: the emulated Slack workspace (a page in the browser), the bot over "
                "Socket Mode, SQLite state and a sandbox target whose tenant data is on a local MongoDB "
                "(nx-27017). Each run starts from a fresh, broken sandbox unless --keep is given. Development "
                "tooling: it runs from a checkout (`make local`), not from an installed wheel.")
    local.add_argument("--dir", default=".local", help="where local state and the sandbox live (default .local)")
    local.add_argument("--port", type=int, default=3100,
                       help="the emulator's port: the page is at http://127.0.0.1:PORT/ (default 3100)")
    fresh = local.add_mutually_exclusive_group()
    fresh.add_argument("--fresh", dest="keep", action="store_false", default=False,
                       help="start from a new broken sandbox: remove the last run's sandbox, tenant data and "
                            "state (the default)")
    fresh.add_argument("--keep", dest="keep", action="store_true",
                       help="keep the sandbox (its git history, tenant data) and the bot's state from the last run")
    local.add_argument("--no-prompt", action="store_true",
                       help="do not open the interactive prompt in this terminal (serve until Ctrl-C)")
    local.set_defaults(func=cmd_local)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not getattr(args, "func", None):
        args.func = cmd_run
    _logging(None, args.log_level)  # each subcommand configures it again once it knows the secrets to scrub
    try:
        return int(args.func(args))
    except ConfigError as error:
        log.debug("the error behind the line below", exc_info=True)
        print(f"rollback-bot: {error.plain()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rollback-bot: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # one line; the traceback at --log-level debug
        from bot.preflight import one_line

        log.debug("the error behind the line below", exc_info=True)
        hint = "" if _debugging() else " (--log-level debug shows the traceback)"
        print(f"rollback-bot: {type(error).__name__}: {one_line(error)}{hint}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
