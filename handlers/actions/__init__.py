"""Control-panel buttons and checkboxes. Each calls the same domain action as its subcommand."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import App
from slack_bolt.context.respond import Respond

from bot import ui
from bot.comms import render
from bot.ids import SLASH_COMMAND, Action, View
from bot.incident import ROLLBACK_CRITERIA
from bot.runtime import Services
from handlers.work import acked


def _who(body: dict[str, Any]) -> tuple[str, str]:
    return body["user"]["id"], body["channel"]["id"]


def _selected(action: dict[str, Any]) -> set[str]:
    return {option["value"] for option in action.get("selected_options") or []}


def register(app: App, services: Services) -> None:
    @app.action(Action.STATUS)
    @acked(services)
    def status(body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        user, channel = _who(body)
        view = services.rollback.status(user, channel, action.get("value"))
        text, blocks = ui.status(view.incident, view.panel_link)
        respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=False)

    @app.action(Action.HELP)
    @acked(services)
    def help_(respond: Respond) -> None:
        text = render("help.md.j2", command=SLASH_COMMAND, subcommands=services.rollback.help())
        respond(text=text, blocks=ui.section(text), response_type="ephemeral", replace_original=False)

    @app.action(re.compile(rf"^{Action.STEP}:[a-z]+$"))
    @acked(services)
    def step(body: dict[str, Any], action: dict[str, Any]) -> None:
        user, channel = _who(body)
        services.rollback.run_step(user, channel, action["action_id"].split(":", 1)[1], [])

    @app.action(Action.CLEANUP)
    @acked(services)
    def cleanup(body: dict[str, Any]) -> None:
        user, channel = _who(body)
        services.rollback.request_cleanup(user, channel, [])

    @app.action(re.compile(rf"^{Action.CRITERION}:\d+$"))
    @acked(services)
    def criteria(body: dict[str, Any], action: dict[str, Any]) -> None:
        user, channel = _who(body)
        group = {i.key for i in ROLLBACK_CRITERIA} & {o["value"] for o in _options(body, action["action_id"])}
        services.rollback.set_criteria(user, channel, _incident_id(body), group, _selected(action))

    @app.action(Action.CHECKLIST)
    @acked(services)
    def checklist(body: dict[str, Any], action: dict[str, Any]) -> None:
        user, channel = _who(body)
        services.rollback.set_checklist(user, channel, _incident_id(body), _selected(action))

    register_closeout(app, services)


def register_closeout(app: App, services: Services) -> None:
    @app.action(Action.SUCCESS)
    @acked(services)
    def success(body: dict[str, Any], action: dict[str, Any]) -> None:
        user, channel = _who(body)
        services.rollback.set_success(user, channel, _incident_id(body), _selected(action))

    @app.action(Action.CLOSE)
    @acked(services)
    def close(body: dict[str, Any]) -> None:
        user, channel = _who(body)
        services.rollback.close_incident(user, channel, None)

    @app.action(Action.COMMS_EDIT)
    @acked(services)
    def comms_edit(body: dict[str, Any]) -> None:
        user, channel = _who(body)
        services.rollback.open_comms_edit(user, channel, body["trigger_id"])

    @app.action(Action.RCA)
    @acked(services)
    def rca(body: dict[str, Any]) -> None:
        user, channel = _who(body)
        services.rollback.open_rca(user, channel, body["trigger_id"])

    @app.action(Action.START_FROM_ALERT)
    @acked(services)
    def start_from_alert(body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        started = services.rollback.start_from_alert(body["user"]["id"], str(action.get("value")))
        link = f"<{started.panel_link}|{started.incident.id}>" if started.panel_link else started.incident.id
        respond(text=f"🚨 Started {link}.", response_type="ephemeral", replace_original=False)

    @app.action(Action.ALTERNATIVES)
    @acked(services)
    def alternatives(action: dict[str, Any], respond: Respond) -> None:
        text, blocks = ui.alternative_help(str((action.get("selected_option") or {}).get("value")))
        respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=False)

    @app.action(Action.HOTFIX_PUSH)
    @acked(services)
    def hotfix_push(body: dict[str, Any], action: dict[str, Any]) -> None:
        user, channel = _who(body)
        services.rollback.push_hotfix(user, channel, str(action.get("value")))

    @app.action(Action.COMMS_POST)
    @acked(services)
    def comms_post(body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        user, channel = _who(body)
        services.rollback.comms_post(user, channel, str(action.get("value")))
        respond(text="📣 Posted to the stakeholders.", response_type="ephemeral", replace_original=True)

    @app.view(View.COMMS_EDIT)
    @acked(services)
    def comms_saved(body: dict[str, Any], view: dict[str, Any]) -> None:
        services.rollback.save_comms_details(body["user"]["id"], view["private_metadata"], ui.view_values(view))

    @app.view(View.RCA)
    @acked(services)
    def rca_saved(body: dict[str, Any], view: dict[str, Any]) -> None:
        services.rollback.closer.save_rca(body["user"]["id"], view["private_metadata"], ui.view_values(view))


def _incident_id(body: dict[str, Any]) -> str:
    """The incident a panel belongs to: its buttons carry the id as their value."""
    for block in body["message"]["blocks"]:
        for element in block.get("elements", []):
            if element.get("action_id") == Action.STATUS:
                return str(element["value"])
    raise KeyError("the message has no incident id")


def _options(body: dict[str, Any], action_id: str) -> list[dict[str, Any]]:
    for block in body["message"]["blocks"]:
        for element in block.get("elements", []):
            if element.get("action_id") == action_id:
                return list(element.get("options", []))
    return []
