"""One ack path: every listener acks on Bolt's listener executor; then each interaction runs once.

``acked(ctx, key)`` wraps a listener: ``ack()`` at once (nothing is written before it; a form is first checked
for field errors, which Slack only shows in the ack); the rest runs after the acks due (``handlers.acks``), on
a pool of its own, so Bolt's listener threads are free for acks. The delivery
is claimed in the store by a key from Slack's own ids (a slash command's ``trigger_id``, a click's
``action_ts``, a form's ``view.id``+``hash``, an event's ``event_id``) and, in HTTP mode, by the request
signature. A redelivery, a repeat or a replay finds its claim taken and does nothing. Errors are answered
by the one reply function of ``handlers.errors`` (also the app's error handler, for errors Bolt meets).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

from slack_bolt.kwargs_injection.args import Args

from bot.logctx import bound
from handlers.context import Ctx
from handlers.errors import reply_privately
from handlers.respond import retrying

log = logging.getLogger("rollback_bot.listeners")
Key = Callable[[dict[str, Any]], str | None]


def command_key(body: dict[str, Any]) -> str | None:
    trigger = body.get("trigger_id")
    return f"command:{trigger}" if trigger else None


def action_key(body: dict[str, Any]) -> str | None:
    actions = body.get("actions") or [{}]
    action = actions[0]
    stamp = action.get("action_ts")
    if not stamp:
        return None
    user = (body.get("user") or {}).get("id", "")
    return f"action:{user}:{action.get('action_id')}:{stamp}"


def view_key(body: dict[str, Any]) -> str | None:
    view = body.get("view") or {}
    return f"view:{view.get('id')}:{view.get('hash')}" if view.get("id") else None


def event_key(body: dict[str, Any]) -> str | None:
    event_id = body.get("event_id")
    return f"event:{event_id}" if event_id else None


def first_time(ctx: Ctx, args: Args, key: Key) -> bool:
    """Claim this delivery; False when it (or the very same signed request) was handled before. One store write:
    the delivery's own key when it has one (a replay of a signed request carries the very same key), else the
    request's signature."""
    claim = key(args.body)
    signature = args.context.get("request_signature")
    if not claim and signature and not ctx.features.desk.once(f"signature:{signature}"):
        log.info("a replayed request was acknowledged and ignored")
        return False
    if claim and not ctx.features.desk.once(claim):
        log.info("a repeated delivery (%s) was acknowledged and ignored", claim.split(":", 1)[0])
        return False
    return True


Check = Callable[[Args], dict[str, Any] | None]


def acked(ctx: Ctx, key: Key, check: Check | None = None) -> Callable[[Callable[..., None]], Callable[[Args], None]]:
    """The one ack path of every listener. ``check`` is for forms alone: Slack shows a form's field errors only
    when they come *in* the ack, so a submitted form is validated (pure, no store, no Slack call) and acked with
    its errors (nothing else happens) or acked plainly; everything else is acked at once."""
    def decorate(func: Callable[..., None]) -> Callable[[Args], None]:
        names = list(inspect.signature(func).parameters)

        def answer(args: Args) -> None:
            with bound(user=args.context.user_id, channel=args.context.channel_id, listener=func.__name__):
                try:
                    if first_time(ctx, args, key):
                        func(**{name: retrying(args.respond, args.client) if name == "respond" else getattr(args, name)
                                for name in names})
                except Exception as error:  # noqa: BLE001 - answered here; see below
                    # The same reply the app's error handler gives. The work runs after the listener has
                    # returned, so Bolt's own error handling (which could also reset an acknowledgement its
                    # runner has not polled yet) never sees it.
                    reply_privately(ctx, error, args.context, retrying(args.respond, args.client), args.body)

        def listener(args: Args) -> None:
            problems = check(args) if check is not None else None
            if problems:
                args.ack(**problems)
                return
            args.ack()
            ctx.acks.after_ack(lambda: answer(args))

        listener.__name__ = func.__name__
        listener.__qualname__ = func.__qualname__
        return listener

    return decorate
