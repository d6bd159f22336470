"""Form submissions: validated before the ack (field-level errors in the form), then saved once."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bot.ids import View
from bot.slack_ui.forms import form_errors, view_values
from handlers.context import Ctx
from handlers.listener import first_time, view_key


def register(app: App, ctx: Ctx) -> None:
    api = ctx.api

    @app.view(View.COMMS_EDIT)
    def comms_saved(ack: Ack, body: dict[str, Any], view: dict[str, Any], args: Any) -> None:
        values = view_values(view)
        problems = api.check_comms(values)
        if problems:
            ack(**form_errors(problems))
            return
        ack()
        if first_time(ctx, args, view_key):
            api.save_comms(body["user"]["id"], str(view["private_metadata"]), values)

    @app.view(View.RCA)
    def rca_saved(ack: Ack, body: dict[str, Any], view: dict[str, Any], args: Any) -> None:
        values = view_values(view)
        problems = api.check_rca(values)
        if problems:
            ack(**form_errors(problems))
            return
        ack()
        if first_time(ctx, args, view_key):
            api.save_rca(body["user"]["id"], str(view["private_metadata"]), values)
