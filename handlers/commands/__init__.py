"""`/rollback <subcommand>`: one listener, one small function per subcommand."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import App
from slack_bolt.context.respond import Respond

from bot import ui
from bot.commands import Parsed, parse
from bot.comms import render
from bot.errors import BadInput, quote
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


def _comms(services: Services, command: dict[str, Any], parsed: Parsed, respond: Respond) -> None:
    user, channel = command["user_id"], command["channel_id"]
    if parsed.args == ["edit"]:
        services.rollback.open_comms_edit(user, channel, command["trigger_id"])
        return
    if parsed.args:
        raise BadInput(f"`comms {quote(' '.join(parsed.args))}` is not something I know.",
                       hint=f"`{SLASH_COMMAND} comms` previews the next update; `{SLASH_COMMAND} comms edit` fills "
                            "in impact, next steps and ETA.")
    incident, update = services.rollback.comms_preview(user, channel)
    text, blocks = ui.comms_preview(incident, update, services.settings.runbook.slack.stakeholder_channel)
    respond(text=text, blocks=blocks, response_type="ephemeral")


def _rca(services: Services, command: dict[str, Any], parsed: Parsed, respond: Respond) -> None:
    if parsed.args:
        raise BadInput("`rca` takes no words; it opens a form.", hint=f"Type `{SLASH_COMMAND} rca`.")
    services.rollback.open_rca(command["user_id"], command["channel_id"], command["trigger_id"])


def _close(services: Services, command: dict[str, Any], parsed: Parsed, respond: Respond) -> None:
    force = parsed.options.get("--force")
    if force is not None:
        force = " ".join([force, *parsed.args])
    elif parsed.args:
        raise BadInput("`close` takes no words except `--force <reason>`.",
                       hint=f"Type `{SLASH_COMMAND} close`, or `{SLASH_COMMAND} close --force <why>`.")
    services.rollback.close_incident(command["user_id"], command["channel_id"], force)


def _alternative(services: Services, command: dict[str, Any], parsed: Parsed, respond: Respond) -> None:
    services.rollback.run_alternative(command["user_id"], command["channel_id"], parsed.sub.value, parsed.args)


def _revert(services: Services, command: dict[str, Any], parsed: Parsed, respond: Respond) -> None:
    if "--safe" in parsed.options:
        services.rollback.run_alternative(command["user_id"], command["channel_id"], "safe_revert", parsed.args)
    else:
        _step(services, command, parsed, respond)


def _health(services: Services, command: dict[str, Any], parsed: Parsed, respond: Respond) -> None:
    from bot.monitor import latency_chart

    checks = services.rollback.health(command["user_id"])
    text, blocks = ui.health(checks, services.settings.runbook.monitor)
    respond(text=text, blocks=blocks, response_type="ephemeral")
    if any(r.latency_ms is not None for c in checks for r in c.history):
        services.messenger.upload_bytes(command["channel_id"], None, "latency.png", latency_chart(checks),
                                        "Check latency, most recent on the right (red: failed)")


ROUTES: dict[Subcommand, Route] = {Subcommand.HEALTH: _health, Subcommand.FLAG: _alternative,
                                   Subcommand.PARTIAL: _alternative, Subcommand.HOTFIX: _alternative,
                                   Subcommand.COMMS: _comms, Subcommand.RCA: _rca, Subcommand.CLOSE: _close,
                                   Subcommand.START: _start, Subcommand.STATUS: _status, Subcommand.HELP: _help,
                                   Subcommand.CLEANUP: _cleanup, Subcommand.RESTORE: _restore,
                                   **{sub: _step for sub in STEP_SUBCOMMANDS}, Subcommand.REVERT: _revert}


def register(app: App, services: Services) -> None:
    @app.command(SLASH_COMMAND)
    @acked(services)
    def rollback(command: dict[str, Any], respond: Respond) -> None:
        parsed = parse(command.get("text", ""))
        ROUTES[parsed.sub](services, command, parsed, respond)
