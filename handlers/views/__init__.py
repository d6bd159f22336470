"""Form submissions: checked before the ack (field-level errors go back in the ack, in the form), then saved
once after it, on the same path as every other listener (:func:`handlers.listener.acked`)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App
from slack_bolt.context.respond import Respond
from slack_bolt.kwargs_injection.args import Args

from bot.ids import View
from bot.slack_ui import stakeholder
from bot.slack_ui.forms import form_errors, form_origin, view_values
from handlers.context import Ctx
from handlers.listener import acked, view_key

log = logging.getLogger("rollback_bot.views")


def register(app: App, ctx: Ctx) -> None:
    stakeholders, closer = ctx.features.stakeholders, ctx.features.closer

    def comms_problems(args: Args) -> dict[str, Any] | None:
        problems = stakeholders.validate_details(view_values(args.view or {}))
        return form_errors(problems) if problems else None

    def rca_problems(args: Args) -> dict[str, Any] | None:
        problems = closer.validate_rca(view_values(args.view or {}))
        return form_errors(problems) if problems else None

    @app.view(View.COMMS_EDIT)
    @acked(ctx, view_key, check=comms_problems)
    def comms_saved(body: dict[str, Any], view: dict[str, Any]) -> None:
        user, (incident_id, preview_url) = body["user"]["id"], form_origin(view)
        incident = stakeholders.save_details(user, incident_id, view_values(view), preview_above=bool(preview_url))
        if preview_url:  # opened from a preview: that preview shows the saved details now, in place
            fresh, update, preview = stakeholders.preview(user, incident.channel)
            message = stakeholder.comms_preview(fresh, update, ctx.settings.runbook.slack.stakeholder_channel, preview)
            try:
                Respond(response_url=preview_url)(text=message.text, blocks=list(message.blocks),
                                                  response_type="ephemeral", replace_original=True)
            except Exception:  # the details are saved; `/rollback comms` shows a fresh preview
                log.warning("could not update the preview of %s in place", incident_id, exc_info=True)

    @app.view(View.RCA)
    @acked(ctx, view_key, check=rca_problems)
    def rca_saved(body: dict[str, Any], view: dict[str, Any]) -> None:
        closer.save_rca(body["user"]["id"], str(view["private_metadata"]), view_values(view))
