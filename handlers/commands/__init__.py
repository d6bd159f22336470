"""`/rollback <subcommand>`: one listener, one small function per subcommand."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import App
from slack_bolt.context.respond import Respond

from bot.commands import CATALOG, Parsed, Subcommand, parse
from bot.domain.api import STEP_SUBCOMMANDS, DangerAction, StepName
from bot.ids import SLASH_COMMAND
from bot.slack_ui import checks, stakeholder, status
from handlers.context import Ctx, incident_here
from handlers.listener import acked, command_key

Route = Callable[[Ctx, str, str, dict[str, Any], Parsed, Respond], None]


def _private(respond: Respond, message: Any) -> None:
    respond(text=message.text, blocks=list(message.blocks), response_type="ephemeral")


def _start(ctx: Ctx, user: str, channel: str, command: dict[str, Any], parsed: Parsed, respond: Respond) -> None:
    ctx.features.incidents.start(user, channel, " ".join(parsed.args), parsed.options.get("--detected"),
                                 severity=parsed.options.get("--sev"))
    if "--auto" in parsed.options:
        ctx.features.autopilot.run_rest(user, channel)


def _auto(ctx: Ctx, user: str, channel: str, command: dict[str, Any], parsed: Parsed, respond: Respond) -> None:
    ctx.features.autopilot.run_rest(user, channel)


def _pause(ctx: Ctx, user: str, channel: str, command: dict[str, Any], parsed: Parsed, respond: Respond) -> None:
    ctx.features.autopilot.pause(user, channel)


def _status(ctx: Ctx, user: str, channel: str, command: dict[str, Any], parsed: Parsed, respond: Respond) -> None:
    view = ctx.features.incidents.status(user, channel, parsed.args[0] if parsed.args else None)
    _private(respond, status.status(view.incident, view.panel_link))


def _next(ctx: Ctx, user: str, channel: str, command: dict[str, Any], parsed: Parsed, respond: Respond) -> None:
    view = ctx.features.incidents.status(user, channel, None)  # the active incident here, for anyone who may read it
    _private(respond, status.next_step(view.incident, view.panel_link))


def _severity(ctx: Ctx, user: str, channel: str, command: dict[str, Any], parsed: Parsed, respond: Respond) -> None:
    ctx.features.incidents.severity(user, channel, parsed.args)


def _help(ctx: Ctx, user: str, channel: str, command: dict[str, Any], parsed: Parsed, respond: Respond) -> None:
    _private(respond, status.help_text(CATALOG, incident_here(ctx, user, channel)))


def _step(ctx: Ctx, user: str, channel: str, command: dict[str, Any], parsed: Parsed, respond: Respond) -> None:
    if parsed.sub is Subcommand.REVERT and "--safe" in parsed.options:
        ctx.features.alternatives.run(user, channel, StepName.SAFE_REVERT, parsed.args)
        return
    ctx.features.runner.run_named(user, channel, parsed.sub.value, parsed.args, "--again" in parsed.options)


def _cleanup(ctx: Ctx, user: str, channel: str, command: dict[str, Any], parsed: Parsed, respond: Respond) -> None:
    ctx.features.danger.request(user, channel, DangerAction.CLEANUP, parsed.args)


def _restore(ctx: Ctx, user: str, channel: str, command: dict[str, Any], parsed: Parsed, respond: Respond) -> None:
    ctx.features.danger.request(user, channel, DangerAction.RESTORE, parsed.args)


def _comms(ctx: Ctx, user: str, channel: str, command: dict[str, Any], parsed: Parsed, respond: Respond) -> None:
    if parsed.args == ["edit"]:
        ctx.features.stakeholders.open_form(user, channel, command["trigger_id"])
        return
    incident, update, preview = ctx.features.stakeholders.preview(user, channel)
    _private(respond, stakeholder.comms_preview(incident, update, ctx.settings.runbook.slack.stakeholder_channel,
                                                preview))


def _rca(ctx: Ctx, user: str, channel: str, command: dict[str, Any], parsed: Parsed, respond: Respond) -> None:
    ctx.features.closer.open_rca_form(user, channel, command["trigger_id"])


def _close(ctx: Ctx, user: str, channel: str, command: dict[str, Any], parsed: Parsed, respond: Respond) -> None:
    ctx.features.closer.close(user, channel, parsed.options.get("--force"))


def _alternative(ctx: Ctx, user: str, channel: str, command: dict[str, Any], parsed: Parsed,
                 respond: Respond) -> None:
    ctx.features.alternatives.run(user, channel, StepName(parsed.sub.value), parsed.args)


def _health(ctx: Ctx, user: str, channel: str, command: dict[str, Any], parsed: Parsed, respond: Respond) -> None:
    # Privately: every check in words, and where the chart is (the incident's thread, at most once a minute).
    _private(respond, checks.health(ctx.features.monitor.report(user, channel), ctx.settings.runbook.monitor))


def _restored(ctx: Ctx, user: str, channel: str, command: dict[str, Any], parsed: Parsed, respond: Respond) -> None:
    ctx.features.coordination.restored(user, channel)


def _handover(ctx: Ctx, user: str, channel: str, command: dict[str, Any], parsed: Parsed, respond: Respond) -> None:
    ctx.features.coordination.handover(user, channel, parsed.args[0])


def _role(ctx: Ctx, user: str, channel: str, command: dict[str, Any], parsed: Parsed, respond: Respond) -> None:
    ctx.features.coordination.role(user, channel, parsed.args)


def _note(ctx: Ctx, user: str, channel: str, command: dict[str, Any], parsed: Parsed, respond: Respond) -> None:
    ctx.features.coordination.note(user, channel, " ".join(parsed.args))


def _followup(ctx: Ctx, user: str, channel: str, command: dict[str, Any], parsed: Parsed, respond: Respond) -> None:
    if parsed.args[0].lower() == "done":  # `followup done <n> [RB-0007]`
        ctx.features.followups.done_typed(user, channel, parsed.args[1:])
        return
    ctx.features.coordination.followup(user, channel, parsed.args)


ROUTES: dict[Subcommand, Route] = {
    Subcommand.START: _start, Subcommand.STATUS: _status, Subcommand.NEXT: _next, Subcommand.HELP: _help,
    Subcommand.SEVERITY: _severity,
    Subcommand.AUTO: _auto, Subcommand.PAUSE: _pause,
    **{sub: _step for sub in STEP_SUBCOMMANDS}, Subcommand.CLEANUP: _cleanup, Subcommand.RESTORE: _restore,
    Subcommand.COMMS: _comms, Subcommand.RCA: _rca, Subcommand.CLOSE: _close, Subcommand.HEALTH: _health,
    Subcommand.FLAG: _alternative, Subcommand.PARTIAL: _alternative, Subcommand.HOTFIX: _alternative,
    Subcommand.RESTORED: _restored, Subcommand.HANDOVER: _handover, Subcommand.ROLE: _role, Subcommand.NOTE: _note,
    Subcommand.FOLLOWUP: _followup,
}


def register(app: App, ctx: Ctx) -> None:
    @app.command(SLASH_COMMAND)
    @acked(ctx, command_key)
    def rollback(command: dict[str, Any], respond: Respond) -> None:
        parsed = parse(command.get("text", ""))
        ROUTES[parsed.sub](ctx, command["user_id"], command["channel_id"], command, parsed, respond)
