"""A keep of the running build (a worktree's yarn install and build, tens of seconds on a real target) that is
running when an incident opens is stopped at once, its yarn and everything yarn started, and keeps nothing: the
rollback's build alongside the backup and its rebuild must not wait for yarn's cache mutex or share the cores
with it. A real bot on the emulated Slack, a real git target, real yarn and node."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import git

from bot.app import SocketModeBot
from bot.dev.emulator import Emulator
from bot.dev.sandbox import Sandbox
from bot.runbook.target import build_store
from tests.handlers.test_roles import started

SLOW_BUILD = """\
const fs = require('fs');
fs.writeFileSync(process.argv[2], String(process.pid));  // the test's sign that the keep's build is running
setTimeout(() => {}, 300000);  // a build far longer than the test waits for it to stop
"""


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except (ProcessLookupError, FileNotFoundError):  # reaped between the two
        return True


def test_an_incident_opening_stops_a_keep_of_the_running_build(emulator: Emulator, sandbox: Sandbox,
                                                               bot: SocketModeBot, tmp_path: Path) -> None:
    mark = tmp_path / "keep-build-running"
    repo = git.Repo(sandbox.repo)
    package = json.loads((sandbox.repo / "package.json").read_text())
    package["scripts"]["build"] = f"node slow-build.js {mark}"
    (sandbox.repo / "package.json").write_text(json.dumps(package, indent=2))
    (sandbox.repo / "slow-build.js").write_text(SLOW_BUILD)
    repo.index.add(["package.json", "slow-build.js"])
    author = git.Actor("Backend Team", "backend@example.invalid")
    repo.index.commit("a build that takes a while", author=author, committer=author)

    builds = bot.services.deps.builds
    builds.keep_running("while the scheduled health checks passed")
    pid = int(emulator.ws.wait_for(lambda: mark.exists() and mark.read_text(), 120, "the keep's build to run"))

    started(emulator, bot)  # /rollback start
    said = emulator.ws.wait_for(lambda: builds.last, 60, "the keep to stop")  # type: ignore[attr-defined]
    assert said.startswith("not kept") and said.endswith("cancelled"), said
    emulator.ws.wait_for(lambda: _gone(pid), 30, "the build's node process to be gone")
    store = build_store(bot.services.settings.runbook, bot.services.settings.data_dir)
    assert store.entries() == []
    deadline = time.monotonic() + 30  # the worktree is removed as the keep ends
    while len(repo.git.worktree("list").splitlines()) != 1 or any((store.root / ".worktrees").iterdir()):
        assert time.monotonic() < deadline, repo.git.worktree("list")
        time.sleep(0.1)
