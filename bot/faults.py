"""Named points where the fault-injection suite stops a real bot process, so it can ``kill -9`` it there.

Inert unless the environment says otherwise: ``ROLLBACK_FAULT_PAUSE`` names the point (``name``, or
``name#k`` for the k-th time it is reached) and ``ROLLBACK_FAULT_DIR`` where to report. When a point is
reached, the process writes ``<dir>/<name>.reached`` (its pid) and blocks forever: the test then kills
it at exactly that place and checks the data, the files and the messages after a restart. This is how
databases test crash safety (SQLite's crash tests, Jepsen): the kill is real; only its moment is chosen.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from pathlib import Path

_seen: Counter[str] = Counter()
_lock = threading.Lock()


def point(name: str) -> None:
    wanted = os.environ.get("ROLLBACK_FAULT_PAUSE")
    if not wanted:
        return
    with _lock:
        _seen[name] += 1
        count = _seen[name]
    for spec in wanted.split(","):
        target, _, nth = spec.strip().partition("#")
        if target == name and (not nth or int(nth) == count):
            folder = Path(os.environ.get("ROLLBACK_FAULT_DIR", "."))
            (folder / f"{name}.reached").write_text(str(os.getpid()), encoding="utf-8")
            threading.Event().wait()  # the test kills this process now
