"""Control-panel buttons, checkboxes and menus. Each calls the same domain action as its subcommand."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt import App
from slack_bolt.context.respond import Respond

from bot.commands import CATALOG
from bot.domain.api import DangerAction
from bot.domain.checklists import ROLLBACK_CRITERIA
from bot.ids import Action, Block
from bot.slack_ui import alerts, status
from bot.text import Link
from handlers.context import Ctx, incident_here
from handlers.listener import acked, action_key

log = logging.getLogger("rollback_bot.actions")


def _who(body: dict[str, Any]) -> tuple[str, str]:
    return body["user"]["id"], body["channel"]["id"]


def _selected(action: dict[str, Any]) -> set[str]:
    return {option["value"] for option in action.get("selected_options") or []}


def _private(respond: Respond, message: Any) -> None:
    respond(text=message.text, blocks=list(message.blocks), response_type="ephemeral", replace_original=False)


def _incident_id(body: dict[str, Any]) -> str:
    """The incident a message belongs to: the panel's buttons carry the id as their value, the checklists
    message's header carries it in its block_id."""
    for block in (body.get("message") or {}).get("blocks", []):
        if str(block.get("block_id", "")).startswith(f"{Block.CHECKLISTS}:"):
            return str(block["block_id"]).split(":", 1)[1]
        for element in block.get("elements", []):
            if element.get("action_id") == Action.STATUS:
                return str(element["value"])
    raise KeyError("the message has no incident id")


def _options(body: dict[str, Any], action_id: str) -> list[dict[str, Any]]:
    for block in (body.get("message") or {}).get("blocks", []):
        for element in block.get("elements", []):
            if element.get("action_id") == action_id:
                return list(element.get("options", []))
    return []


def register(app: App, ctx: Ctx) -> None:
    features = ctx.features

    @app.action(Action.OPEN_CHECKLISTS)
    def open_checklists(ack: Any) -> None:
        ack()  # a link button: Slack opens the URL; the click only needs its acknowledgement

    @app.action(Action.STATUS)
    @acked(ctx, action_key)
    def status_(body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        user, channel = _who(body)
        view = features.incidents.status(user, channel, action.get("value"))
        _private(respond, status.status(view.incident, view.panel_link))

    @app.action(Action.HELP)
    @acked(ctx, action_key)
    def help_(body: dict[str, Any], respond: Respond) -> None:
        user, channel = _who(body)
        _private(respond, status.help_text(CATALOG, incident_here(ctx, user, channel)))

    @app.action(re.compile(rf"^{Action.STEP}:[a-z_]+$"))
    @acked(ctx, action_key)
    def step(body: dict[str, Any], action: dict[str, Any]) -> None:
        user, channel = _who(body)
        features.runner.run_named(user, channel, action["action_id"].split(":", 1)[1], [], False)

    @app.action(Action.RUN_REST)
    @acked(ctx, action_key)
    def run_rest(body: dict[str, Any]) -> None:
        user, channel = _who(body)
        features.autopilot.run_rest(user, channel)

    @app.action(Action.PAUSE)
    @acked(ctx, action_key)
    def pause(body: dict[str, Any]) -> None:
        user, channel = _who(body)
        features.autopilot.pause(user, channel)

    @app.action(Action.CLEANUP)
    @acked(ctx, action_key)
    def cleanup(body: dict[str, Any]) -> None:
        user, channel = _who(body)
        features.danger.request(user, channel, DangerAction.CLEANUP, [])

    @app.action(re.compile(rf"^{Action.CRITERION}:\d+$"))
    @acked(ctx, action_key)
    def criteria(body: dict[str, Any], action: dict[str, Any]) -> None:
        user, channel = _who(body)
        group = {i.key for i in ROLLBACK_CRITERIA} & {o["value"] for o in _options(body, action["action_id"])}
        features.incidents.set_criteria(user, channel, _incident_id(body), group, _selected(action))

    @app.action(Action.CHECKLIST)
    @acked(ctx, action_key)
    def checklist(body: dict[str, Any], action: dict[str, Any]) -> None:
        user, channel = _who(body)
        features.incidents.set_checklist(user, channel, _incident_id(body), _selected(action))

    @app.action(Action.SUCCESS)
    @acked(ctx, action_key)
    def success(body: dict[str, Any], action: dict[str, Any]) -> None:
        user, channel = _who(body)
        features.incidents.set_success(user, channel, _incident_id(body), _selected(action))

    @app.action(Action.CLOSE)
    @acked(ctx, action_key)
    def close(body: dict[str, Any]) -> None:
        user, channel = _who(body)
        features.closer.close(user, channel, None)

    @app.action(Action.COMMS_EDIT)
    @acked(ctx, action_key)
    def comms_edit(body: dict[str, Any]) -> None:
        user, channel = _who(body)
        in_preview = (body.get("container") or {}).get("is_ephemeral")  # the preview's button, not the panel's
        features.stakeholders.open_form(user, channel, body["trigger_id"],
                                        body.get("response_url") if in_preview else None)

    @app.action(Action.RCA)
    @acked(ctx, action_key)
    def rca(body: dict[str, Any]) -> None:
        user, channel = _who(body)
        features.closer.open_rca_form(user, channel, body["trigger_id"])

    @app.action(re.compile(rf"^{Action.START_FROM_ALERT}(:\d+)?$"))
    @acked(ctx, action_key)
    def start_from_alert(body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        user = body["user"]["id"]
        started = features.incidents.start_from_alert(user, str(action.get("value")))
        incident = started.incident
        if body.get("message"):  # the alert, updated in place for everyone in the channel
            used = alerts.alert_used(body["message"], incident.id, started.panel_link, user, incident.channel)
            try:
                respond(text=used.text, blocks=list(used.blocks), replace_original=True)
            except Exception:
                log.warning("could not update the alert after starting %s", incident.id, exc_info=True)
        link = Link(started.panel_link, incident.id) if started.panel_link else incident.id
        _private(respond, status.started(("🚨 Started ", link, ": you are its commander; the control panel is "
                                          "there.")))

    @app.action(Action.ALTERNATIVES)
    @acked(ctx, action_key)
    def alternatives(action: dict[str, Any], respond: Respond) -> None:
        _private(respond, status.alternative_help(str((action.get("selected_option") or {}).get("value"))))

    @app.action(Action.HOTFIX_PUSH)
    @acked(ctx, action_key)
    def hotfix_push(body: dict[str, Any], action: dict[str, Any]) -> None:
        user, channel = _who(body)
        features.alternatives.push_hotfix(user, channel, str(action.get("value")))

    @app.action(Action.FOLLOWUP_DONE)
    @acked(ctx, action_key)
    def followup_done(body: dict[str, Any], action: dict[str, Any]) -> None:
        user, channel = _who(body)
        features.followups.done_clicked(user, channel, str(action.get("value")))  # "<incident id>:<n>"

    @app.action(Action.COMMS_POST)
    @acked(ctx, action_key)
    def comms_post(body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        user, channel = _who(body)
        features.stakeholders.post_now(user, channel, str(action.get("value")))  # the preview's id: it posts once
        respond(text="📣 Posted to the stakeholders.", response_type="ephemeral", replace_original=True)
