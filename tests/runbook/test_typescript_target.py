"""The realistic sandbox target: a TypeScript backend built by the real tsc, its `yarn install` from a real
yarn.lock, offline from the project's mirror. The runbook's failure mode: an interrupted install breaks `yarn
build`, and the rebuild's clean install (remove node_modules and dist, `yarn install`, `yarn build`) mends it
with the network unreachable."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import socket_mode_bot
from bot.dev.emulator import Emulator
from bot.dev.sandbox import Sandbox, SandboxSize, create_sandbox, drop_tenants, interrupt_install, start_apps, stop_apps
from bot.ops.probe import probe
from tests.conftest import INCIDENT, TestServer, content, make_settings
from tests.runbook.test_autopilot import finished, stopped
from tests.runbook.test_full_rollback import panel_ts

pytestmark = pytest.mark.slow


@pytest.fixture
def ts_sandbox(tmp_path: Path, mongo_server: TestServer) -> Iterator[Sandbox]:
    """A small TypeScript target, built (yarn install offline, tsc) and running under its own pm2. Every
    network request of yarn's goes to a closed port, so anything that is not offline fails."""
    made = create_sandbox(tmp_path / "target", mongo_uri=mongo_server.uri, local_server=mongo_server.local,
                          size=SandboxSize(typescript=True, modules=3))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as closed:
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}"
        with (made.root / ".yarnrc").open("a", encoding="utf-8") as rc:
            rc.write(f'proxy "{dead}"\nhttps-proxy "{dead}"\nregistry "{dead}/"\n')
        try:
            start_apps(made)
            yield made
        finally:
            stop_apps(made)
            drop_tenants(made)


@pytest.mark.parametrize("alongside", [False, True], ids=["runbook-clean-install", "built-alongside-the-backup"])
def test_the_autopilot_restores_the_typescript_target_offline(
        ts_sandbox: Sandbox, emulator: Emulator, tmp_path: Path, alongside: bool) -> None:
    """Without the build alongside the backup, the rebuild is the runbook's: `yarn build` fails on the half
    installed node_modules, then the clean install mends it. With it, the target commit was built offline in a
    worktree of its own while the backup ran, and the rebuild restores that build instead of running yarn."""
    repo = ts_sandbox.repo
    package = json.loads((repo / "package.json").read_text())
    assert package["scripts"]["build"] == "tsc -p tsconfig.json"
    version = package["devDependencies"]["typescript"]
    assert f"typescript@{version}:" in (repo / "yarn.lock").read_text()
    assert json.loads((repo / "node_modules" / "typescript" / "package.json").read_text())["version"] == version
    assert (repo / "dist" / "modules" / "m0002.js").exists()  # compiled by tsc, not copied
    assert probe(ts_sandbox.health_url, timeout=5).status == 500  # Phase 3 broke health, as in the JS target
    module = probe(ts_sandbox.health_url.replace("/api/health", "/api/modules/2"), timeout=5,
                   expect_json={"module": 2, "count": 1, "steps": 2})
    assert module.ok, module.detail
    interrupt_install(ts_sandbox)  # the broken deploy also left node_modules half installed
    bot = socket_mode_bot(make_settings(emulator, ts_sandbox, tmp_path / "data",
                                        build={"keep": {"alongside_backup": alongside}})).start()
    try:
        emulator.slash("casey", "incident-rollback", "start health 500 after Phase 3 --auto").wait()
        ts = panel_ts(emulator)
        assert "service is back" in stopped(emulator, ts)
        rebuilt = finished(emulator, ts, "rebuild")
        assert len(rebuilt) == 1 and "— succeeded" in rebuilt[0], rebuilt
        if alongside:
            assert "restored the last-known-good build of tree" in rebuilt[0], rebuilt
            assert "built alongside the backup of RB-0001" in rebuilt[0], rebuilt
        else:
            assert "after a clean install" in rebuilt[0], rebuilt
        assert all("— succeeded" in finished(emulator, ts, step)[0] for step in ("restart", "verify"))
    finally:
        bot.close()
    assert probe(ts_sandbox.health_url, timeout=5, expect_json={"status": "ok"}).ok
    token = ts_sandbox.canaries["HEALTH_BEARER_TOKEN"]
    assert probe(ts_sandbox.health_url.replace("/api/health", "/api/internship"), timeout=5, expect_status=200,
                 bearer=token).ok
    assert not any(token in content(m) for m in emulator.ws.channel_messages(INCIDENT, include_replies=True))
