"""Ack first, then work: every listener acks at once and its body runs on the bot's worker pool.

Slack wants an answer within 3 s; steps can take minutes. A listener wrapped with ``acked`` is
acknowledged before anything else happens, then runs on ``services.worker`` with the arguments
it names (Bolt's usual ones). Errors go to ``handlers.errors.reply_privately``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from slack_bolt.kwargs_injection.args import Args

from bot.runtime import Services
from handlers.errors import reply_privately

Listener = Callable[..., None]


def acked(services: Services) -> Callable[[Listener], Callable[[Args], None]]:
    def decorate(func: Listener) -> Callable[[Args], None]:
        names = list(inspect.signature(func).parameters)

        def run(args: Args) -> None:
            try:
                func(**{name: getattr(args, name) for name in names})
            except BaseException as error:  # noqa: BLE001 - every failure gets a reply
                reply_privately(error, args.context, args.respond, args.client, args.body)

        def listener(args: Args) -> None:
            args.ack()
            services.worker.submit(run, args)

        listener.__name__ = func.__name__
        listener.__qualname__ = func.__qualname__
        return listener

    return decorate
