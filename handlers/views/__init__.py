"""Form submissions: checked before the ack (field-level errors go back in the ack, in the form), then saved
once after it, on the same path as every other listener (:func:`handlers.listener.acked`)."""

from __future__ import annotations

from typing import Any

from slack_bolt import App
from slack_bolt.kwargs_injection.args import Args

from bot.ids import View
from bot.slack_ui.forms import form_errors, view_values
from handlers.context import Ctx
from handlers.listener import acked, view_key


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
        stakeholders.save_details(body["user"]["id"], str(view["private_metadata"]), view_values(view))

    @app.view(View.RCA)
    @acked(ctx, view_key, check=rca_problems)
    def rca_saved(body: dict[str, Any], view: dict[str, Any]) -> None:
        closer.save_rca(body["user"]["id"], str(view["private_metadata"]), view_values(view))
