"""The soak's bot as its own OS process, for the rule that kills it with SIGKILL in the middle of its work.

``python -m tests.model.process SPEC.json`` starts the same bot the fast tier runs in-process (HTTP mode, the
fast stand-ins for rebuild, restart and verify) on the settings in SPEC.json (``config``: the rollback.yml as a
dict; ``env``: the emulator's ``bot_env()``), prints its /slack/events URL on one line once it serves, and
serves until it is killed. Nothing in it handles SIGKILL: that is the point. If the test process that started
it dies first, it exits by itself (it watches its parent), so no bot is left serving after a crashed run.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

from bot.app import HttpBot
from tests.conftest import settings_for
from tests.model.world import fast_steps


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def main(spec_path: str) -> None:
    threading.Thread(target=_exit_with, args=(os.getppid(),), daemon=True).start()
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    with fast_steps():
        bot = HttpBot(settings_for(spec["config"], spec["env"]), port=0)
        print(bot.url, flush=True)
        bot.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1])
