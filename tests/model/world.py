"""The world a model-based run drives: one sandbox target (real git repo, tenant data on the session's
MongoDB-protocol server, optionally real yarn and pm2) reused by every example, and per example a fresh
emulator, data folder, SQLite store and real Bolt app.

Between examples the target is put back as it was (git HEAD at the broken commit, the pristine `.env`, the
tenant databases re-seeded), so an example costs a bot start, not a sandbox build.

Two tiers (``real_ops``):

- real (``make test``): the steps run the real yarn, pm2 and HTTP probes against the sandbox's apps;
- fast (``make soak``): rebuild, restart and verify are replaced, behind the bot's own ``Step`` protocol, by
  stand-ins that take milliseconds. Verify passes when the working tree no longer holds the Phase 3 health
  failure (a revert, a partial, a safe revert) or the flag turns it off, as the real server would after a
  rebuild and restart. Everything else is real: Bolt, the emulator, the store, git, backups, cleanup, restore.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import git

from bot.app import HttpBot, SocketModeBot, socket_mode_bot
from bot.config import Settings
from bot.dev.emulator import Emulator
from bot.dev.sandbox import Sandbox, create_sandbox, drop_tenants, seed_tenants, start_apps, stop_apps
from bot.domain.runs import RebuildArtifacts, RestartArtifacts, StepName, VerifyArtifacts
from bot.domain.steps import Plan, StepContext, StepResult, check, register
from bot.ops import tenants
from bot.runbook.rebuild import Rebuild
from bot.runbook.restart import Restart
from bot.runbook.verify import Verify
from tests.conftest import make_config, settings_for

BROKEN_MARK = "assessment service failed"  # what the Phase 3 server answers on /api/health


# ---- the fast tier's stand-ins, behind the bot's own Step protocol ---------------------------------------------
class FastRebuild(Rebuild):
    def run(self, ctx: StepContext, plan: Plan) -> StepResult:
        return StepResult(ok=True, summary=("built (model test stand-in: no yarn)",),
                          artifacts=RebuildArtifacts(cleaned=False, attempts=[]))


class FastRestart(Restart):
    def run(self, ctx: StepContext, plan: Plan) -> StepResult:
        return StepResult(ok=True, summary=("restarted (model test stand-in: no pm2)",),
                          artifacts=RestartArtifacts(apps={}))


class FastVerify(Verify):
    def run(self, ctx: StepContext, plan: Plan) -> StepResult:
        server = (ctx.repo / "src" / "server.js").read_text(encoding="utf-8")
        env = (ctx.repo / ".env").read_text(encoding="utf-8")
        ok = BROKEN_MARK not in server or "ENABLE_REALTIME_TIPS=false" in env
        return StepResult(ok=ok, summary=("all 1 checks passed",) if ok else ("1 of 1 checks failed: GET /api/health",),
                          checks=[check("GET /api/health (stand-in)", ok, "200" if ok else "500")],
                          artifacts=VerifyArtifacts(health_ms=1.0, status=200 if ok else 500))


@contextmanager
def fast_steps() -> Iterator[None]:
    """The composition root builds its step registry with the stand-ins for rebuild, restart and verify."""
    import bot.app.services as services

    real = services.registry

    def fast() -> dict[StepName, Any]:
        steps = real()
        steps.update({step.name: register(step) for step in (FastRebuild(), FastRestart(), FastVerify())})
        return steps

    services.registry = fast  # type: ignore[assignment]
    try:
        yield
    finally:
        services.registry = real  # type: ignore[assignment]


def tenant_data(sandbox: Sandbox) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Every document of the tenant databases, per collection, in `_id` order (what a restore must give back)."""
    client = tenants.connect(sandbox.central_uri)
    try:
        return {db: {name: sorted(client[db][name].find({}), key=lambda d: str(d["_id"]))
                     for name in sorted(client[db].list_collection_names())} for db in sandbox.tenant_dbs}
    finally:
        tenants.close(client)


class World:
    """One sandbox for a whole Hypothesis run; ``begin()``/``end()`` around each example."""

    def __init__(self, root: Path, mongo_uri: str, *, local_server: bool, real_ops: bool) -> None:
        self.root, self.real_ops = root, real_ops
        self.sandbox = create_sandbox(root / "target", mongo_uri=mongo_uri, local_server=local_server)
        self.pristine_env = (self.sandbox.repo / ".env").read_text(encoding="utf-8")
        if real_ops:
            start_apps(self.sandbox)
        self.examples = 0
        self.emulator: Emulator | None = None
        self.bot: SocketModeBot | HttpBot | None = None
        self.settings: Settings | None = None
        self.data_dir: Path | None = None
        self.start_data: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.config: dict[str, Any] = {}
        self.restarts = 0
        self.kills = 0

    # ---- per example --------------------------------------------------------------------------------------
    def begin(self) -> None:
        self.examples += 1
        self._reset_target()
        self.start_data = tenant_data(self.sandbox)
        # the fast tier lets Slack's rate limits run ten times faster (injected 429s still test the retries)
        self.emulator = Emulator(ack_timeout=3.0, rate_limits=True if self.real_ops else 10.0).start()
        self.data_dir = self.root / f"example-{self.examples}"
        self.config = make_config(self.sandbox, self.data_dir, cleanup={"start_delay_s": 0}, monitor={"enabled": False})
        self.settings = settings_for(self.config, self.emulator.bot_env())
        self.bot = self._start_bot()

    def _start_bot(self) -> SocketModeBot | HttpBot:
        """The real tier connects over Socket Mode; the fast one takes Slack's signed HTTP requests (the same Bolt
        app; closing a Socket Mode client takes 1-3 s, an HTTP server 0.1 s)."""
        assert self.settings is not None and self.emulator is not None
        if self.real_ops:
            return socket_mode_bot(self.settings).start()
        bot = HttpBot(self.settings, port=0).start()
        self.emulator.set_request_url(bot.url)
        return bot

    def end(self) -> None:
        if self.bot is not None:
            self.bot.close()
            self.bot = None
        if self.emulator is not None:
            self.emulator.set_request_url(None)
            self.emulator.close()
            self.emulator = None
        if self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def restart_bot(self) -> SocketModeBot | HttpBot:
        """Stop the bot and start a new one on the same store and data folder (the same replica id)."""
        assert self.bot is not None and self.settings is not None and self.emulator is not None
        self.bot.close()
        self.bot = self._start_bot()  # returns once connected (Socket Mode) or serving (HTTP)
        self.restarts += 1
        startup = self.bot.services._startup
        if startup is not None:
            startup.join(timeout=60)  # the start-up recovery sweep has run
        return self.bot

    @property
    def killable(self) -> bool:
        """The fast tier runs a bot process it can SIGKILL (its stand-in steps need no pm2 apps of their own)."""
        return not self.real_ops

    def kill_mid(self, act: Callable[[], None], begun: Callable[[], bool], *, within: float = 30.0) -> bool:
        """Hand the bot's work to a bot in its own OS process (same store, same data folder, so the same replica
        id), do ``act``, SIGKILL that process as soon as ``begun()`` (or ``within`` seconds), and start the
        in-process bot again, which recovers what the killed one left. True if the work had begun."""
        assert self.bot is not None and self.emulator is not None and self.data_dir is not None
        self.bot.close()
        self.bot = None
        spec = self.data_dir / "killed-bot.json"  # inside the example's data folder: removed with it
        spec.write_text(json.dumps({"config": self.config, "env": self.emulator.bot_env()}), encoding="utf-8")
        log = self.data_dir / "killed-bot.log"
        root = Path(__file__).resolve().parents[2]
        with log.open("ab") as errors:  # its traceback, if it dies starting
            process = subprocess.Popen([sys.executable, "-m", "tests.model.process", str(spec)], cwd=root,
                                       stdout=subprocess.PIPE, stderr=errors, text=True, start_new_session=True)
        seen = False
        try:
            url = self._first_line(process, within=60.0)
            if not url:
                raise RuntimeError(f"the bot process did not start (exit {process.poll()}): "
                                   f"{log.read_text(errors='replace')[-2000:]}")
            self.emulator.set_request_url(url)
            act()
            deadline = time.monotonic() + within
            while not (seen := begun()) and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            # SIGKILL to its whole process group, as systemd or a container runtime stops a service: a git or pm2
            # it had just started dies too (one caught between fork and exec would hold the replica lock)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
            if process.stdout is not None:
                process.stdout.close()
            spec.unlink(missing_ok=True)
            self.kills += 1
            self.bot = self._start_bot()
            startup = self.bot.services._startup
            if startup is not None:
                startup.join(timeout=60)
        return seen

    @staticmethod
    def _first_line(process: subprocess.Popen[str], *, within: float) -> str:
        """The process's first line of output, or "" if it ends (or says nothing) within ``within`` seconds."""
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], within)
        return process.stdout.readline().strip() if ready else ""

    def _reset_target(self) -> None:
        repo = git.Repo(self.sandbox.repo)
        repo.git.checkout("-f", "main")
        repo.git.reset("--hard", self.sandbox.broken_commit)
        repo.git.clean("-fd")
        for branch in repo.branches:
            if branch.name != "main":
                repo.git.branch("-D", branch.name)
        repo.git.stash("clear")
        (self.sandbox.repo / ".env").write_text(self.pristine_env, encoding="utf-8")
        drop_tenants(self.sandbox)
        seed_tenants(self.sandbox)

    def close(self) -> None:
        self.end()
        stop_apps(self.sandbox)
        drop_tenants(self.sandbox)
