"""`/rollback <subcommand>`: one listener, one small function per subcommand."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import App
from slack_bolt.context.respond import Respond

from bot import ui
from bot.commands import Parsed, parse
from bot.comms import render
from bot.ids import SLASH_COMMAND, STEP_SUBCOMMANDS, Subcommand
from bot.runtime import Services
from handlers.work import acked

Route = Callable[[Services, dict[str, Any], Parsed, Respond], None]


def _start(services: Services, command: dict[str, Any], parsed: Parsed, respond: Respond) -> None:
    services.rollback.start(command["user_id"], command["channel_id"], " ".join(parsed.args),
                            parsed.options.get("--detected"))


def _status(services: Services, command: dict[str, Any], parsed: Parsed, respond: Respond) -> None:
    view = services.rollback.status(command["user_id"], command["channel_id"], parsed.args[0] if parsed.args else None)
    text, blocks = ui.status(view.incident, view.panel_link)
    respond(text=text, blocks=blocks, response_type="ephemeral")


def _help(services: Services, command: dict[str, Any], parsed: Parsed, respond: Respond) -> None:
    text = render("help.md.j2", command=SLASH_COMMAND, subcommands=services.rollback.help())
    respond(text=text, blocks=ui.section(text), response_type="ephemeral")


def _step(services: Services, command: dict[str, Any], parsed: Parsed, respond: Respond) -> None:
    services.rollback.run_step(command["user_id"], command["channel_id"], parsed.sub.value, parsed.args,
                               again="--again" in parsed.options)


def _cleanup(services: Services, command: dict[str, Any], parsed: Parsed, respond: Respond) -> None:
    services.rollback.request_cleanup(command["user_id"], command["channel_id"], parsed.args)


def _restore(services: Services, command: dict[str, Any], parsed: Parsed, respond: Respond) -> None:
    services.rollback.request_restore(command["user_id"], command["channel_id"], parsed.args)


ROUTES: dict[Subcommand, Route] = {Subcommand.START: _start, Subcommand.STATUS: _status, Subcommand.HELP: _help,
                                   Subcommand.CLEANUP: _cleanup, Subcommand.RESTORE: _restore,
                                   **{sub: _step for sub in STEP_SUBCOMMANDS}}


def register(app: App, services: Services) -> None:
    @app.command(SLASH_COMMAND)
    @acked(services)
    def rollback(command: dict[str, Any], respond: Respond) -> None:
        parsed = parse(command.get("text", ""))
        ROUTES[parsed.sub](services, command, parsed, respond)
