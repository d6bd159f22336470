"""The idle-memory benchmark's baseline: a bare Bolt app over Socket Mode whose only listener acks ``/rollback``.

A script of its own, so that its process holds what such an app imports and nothing more: run as
``bench/idle_memory.py --serve-bare`` it also held the benchmark's own modules (``bench.common`` with
``importlib.metadata`` and ``statistics``, ``argparse``, ``http.server``, ``tempfile``), some 2 MB the bot's
process does not carry for the benchmark. The transport is the bot's (``SocketModeHandler``, concurrency 10,
ping 5 s, a listener pool of 32 threads: ``bot.app.services.LISTENER_THREADS``), its Web API client on the
emulated Slack (``SLACK_API_URL``). It says :data:`CONNECTED` on stderr once connected and stops on SIGTERM.

    SLACK_BOT_TOKEN=… SLACK_APP_TOKEN=… SLACK_SIGNING_SECRET=… SLACK_API_URL=… python bench/bare_socket_app.py
"""

from __future__ import annotations

import os
import signal
import sys
import threading

CONNECTED = "connected over Socket Mode"
LISTENER_THREADS = 32


def main() -> int:
    import logging
    from concurrent.futures import ThreadPoolExecutor

    from slack_bolt import Ack, App
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app = App(token=os.environ["SLACK_BOT_TOKEN"], signing_secret=os.environ["SLACK_SIGNING_SECRET"],
              token_verification_enabled=False, request_verification_enabled=False,
              listener_executor=ThreadPoolExecutor(max_workers=LISTENER_THREADS))
    app.client.base_url = os.environ["SLACK_API_URL"]

    @app.command("/rollback")
    def acknowledge(ack: Ack) -> None:
        ack()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    handler = SocketModeHandler(app, os.environ["SLACK_APP_TOKEN"], concurrency=10, ping_interval=5)
    handler.connect()
    print(CONNECTED, file=sys.stderr, flush=True)
    stop.wait()
    handler.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
