"""The running process around a bot: Ctrl-C and SIGTERM as a stop request, and the end of start-up.

Used by the command line's `run` and `serve` and by the development tools' `emulator` and `local`
(bot/dev/commands.py), which therefore need nothing of bot/cli.py."""

from __future__ import annotations

import gc
import signal
import threading


def started() -> None:
    """Start-up is over: what it built (modules, settings, the app, its clients and pools, ~80k objects) lives
    as long as the process. Frozen out of the garbage collector's sight, it is no longer walked by every full
    collection — 20-50 ms of holding the interpreter each time, while no request can be acknowledged (under
    1 ms once frozen). Objects made from now on are collected as before."""
    gc.collect()
    gc.freeze()


def stop_on_signals() -> threading.Event:
    """From now on Ctrl-C and SIGTERM set the returned event instead of ending the process where it stands, so a
    signal that comes while the bot is still starting stops it cleanly once it has started."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop
