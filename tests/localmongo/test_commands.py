"""`rollback-bot sandbox DIR` and `rollback-bot local` with their own local MongoDB, run as the real commands:
the sandbox's server outlives the command until `--stop`; `local`'s stops when `local` does."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import pytest

from bot.dev import localmongo
from bot.dev.localmongo import running_server
from bot.dev.sandbox import Sandbox
from bot.ops import tenants
from tests.conftest import local_mongo_servers

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def tenant_counts(sandbox: Sandbox) -> dict[str, int]:
    client = tenants.connect(sandbox.central_uri)
    try:
        central = client[tenants.default_database(sandbox.central_uri)]
        return {"schools": central.schools.count_documents({}),
                **{db: client[db].internshipcases.count_documents({}) for db in sandbox.tenant_dbs}}
    finally:
        tenants.close(client)


def pm2_daemons(marker: str) -> str:
    return subprocess.run(["pgrep", "-f", f"God Daemon.*{marker}"], capture_output=True, text=True).stdout


def test_sandbox_keeps_its_tenant_data_on_a_detached_local_server_until_stop(tmp_path: Path) -> None:
    root = tmp_path / "sbx"
    made = cli("sandbox", str(root))
    assert made.returncode == 0, made.stderr
    sandbox = Sandbox.load(root)
    server = running_server(root / "mongo")
    assert server is not None and sandbox.mongo_dir == root / "mongo"  # it outlived the command
    assert sandbox.mongo_port == server.port and f"data in {root / 'mongo' / 'db'}" in made.stdout
    assert f"CENTRAL_DB_URI={sandbox.central_uri}" in (sandbox.repo / ".env").read_text()
    counts = tenant_counts(sandbox)
    assert counts["schools"] == 4 and all(counts[db] > 0 for db in sandbox.tenant_dbs)
    assert not (root / "tenant-seed.json").exists()  # no in-process stand-in, no seed file

    again = cli("sandbox", str(root))  # a second run finds the running server and the data
    assert again.returncode == 0, again.stderr
    assert running_server(root / "mongo") == server and tenant_counts(sandbox) == counts

    stopped = cli("sandbox", str(root), "--stop")
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped the sandbox's pm2 daemon" in stopped.stdout
    assert "stopped the sandbox's local MongoDB" in stopped.stdout
    assert not localmongo.alive(server.pid) and local_mongo_servers(str(root)) == []
    assert pm2_daemons(str(root)) == "" and (root / "mongo" / "db" / f"{sandbox.tenant_dbs[0]}.db").exists()

    restarted = cli("sandbox", str(root))  # after a stop: the same port, the same data
    try:
        assert restarted.returncode == 0, restarted.stderr
        assert running_server(root / "mongo").port == server.port  # type: ignore[union-attr]
        assert tenant_counts(sandbox) == counts
    finally:
        assert cli("sandbox", str(root), "--stop").returncode == 0
    assert local_mongo_servers(str(root)) == [] and cli("sandbox", str(root), "--stop").returncode == 0


def test_sandbox_on_a_given_server_starts_none_of_its_own(tmp_path: Path, mongo_uri: str) -> None:
    root = tmp_path / "sbx"
    made = cli("sandbox", str(root), "--mongo-uri", mongo_uri, "--modules", "2")  # the TypeScript backend
    try:
        assert made.returncode == 0, made.stderr
        sandbox = Sandbox.load(root)
        assert sandbox.mongo_dir is None and not (root / "mongo").exists()
        assert tenant_counts(sandbox)["schools"] == 4
        assert "(TypeScript, 2 generated modules, built by tsc; yarn installs offline)" in made.stdout
        assert sandbox.typescript and sorted(p.name for p in (sandbox.repo / "dist" / "modules").glob("m*.js")) == [
            "m0000.js", "m0001.js"]
    finally:
        stopped = cli("sandbox", str(root), "--stop")
        from bot.dev.sandbox import drop_tenants

        drop_tenants(Sandbox.load(root))
    assert stopped.returncode == 0 and "local MongoDB" not in stopped.stdout


def test_sandbox_modules_must_be_a_count(tmp_path: Path) -> None:
    refused = cli("sandbox", str(tmp_path / "sbx"), "--modules", "-3")
    assert refused.returncode != 0
    assert "--modules -3: give a count of 0 or more, e.g. --modules 150" in refused.stderr + refused.stdout
    assert not (tmp_path / "sbx").exists()


class Local:
    """`rollback-bot local` as a person runs it, without a terminal: serves until a signal."""

    def __init__(self, folder: Path, *options: str) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "--log-level", "warning", "local", "--dir", str(folder), "--no-prompt",
             "--port", "0", *options], cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert self.process.stdout is not None
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None and self.lines.empty():
                    break
                continue
            self.output.append(line)
            if text in line:
                return line
        raise AssertionError(f"`rollback-bot local` never printed {text!r}:\n{''.join(self.output)}")

    def stop(self, sig: int) -> int:
        self.process.send_signal(sig)
        try:
            return self.process.wait(60)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()


def test_local_runs_its_own_server_and_stops_it_on_ctrl_c_and_on_sigterm(tmp_path: Path) -> None:
    folder = tmp_path / "local"
    seen: list[tuple[int, dict[str, Any]]] = []
    for sig, options in ((signal.SIGINT, ()), (signal.SIGTERM, ("--keep",))):
        local = Local(folder, *options)
        try:
            local.wait_for("No terminal attached")
            server = running_server(folder / "mongo")
            assert server is not None and f"127.0.0.1:{server.port}" in "".join(local.output)
            sandbox = Sandbox.load(folder / "target")
            seen.append((server.port, tenant_counts(sandbox)))
        finally:
            code = local.stop(sig)
        assert code == 0, "".join(local.output)
        assert not localmongo.alive(server.pid) and local_mongo_servers(str(folder)) == []
        assert not (folder / "mongo" / "server.json").exists() and pm2_daemons(str(folder)) == ""
    (first_port, first_counts), (second_port, second_counts) = seen
    assert second_port == first_port and second_counts == first_counts and first_counts["schools"] == 4


def test_local_stops_its_server_when_it_cannot_open_the_sandbox(tmp_path: Path) -> None:
    folder = tmp_path / "local"
    (folder / "target").mkdir(parents=True)
    old = {"root": str(folder / "target"), "repo": str(folder / "target" / "repo"), "good_commit": "a" * 40,
           "broken_commit": "b" * 40, "canaries": {}, "central_uri": "mongomock://backend:x@sandbox/central",
           "tenant_dbs": ["sbx_alpha"], "apps": ["backend"]}
    (folder / "target" / "sandbox.json").write_text(json.dumps(old))
    failed = cli("local", "--dir", str(folder), "--no-prompt", "--port", "0", "--keep")
    assert failed.returncode == 2 and "made for the old in-process MongoDB stand-in" in failed.stderr
    assert local_mongo_servers(str(folder)) == [] and not (folder / "mongo" / "server.json").exists()


def test_each_local_run_starts_from_a_fresh_broken_sandbox_unless_keep(tmp_path: Path) -> None:
    import git

    folder = tmp_path / "local"
    first = Local(folder)
    try:
        assert first.wait_for("fresh sandbox").startswith(f"fresh sandbox in {folder} (next time --keep keeps")
        first.wait_for("No terminal attached")
        made = Sandbox.load(folder / "target")
        daemon = int((made.pm2_home / "pm2.pid").read_text())  # type: ignore[operator]
    finally:
        first.stop(signal.SIGKILL)  # killed: its pm2 daemon (and the backend under it) is left running
    assert localmongo.alive(daemon)

    second = Local(folder)
    try:
        line = second.wait_for("fresh sandbox")
        assert line.startswith(f"fresh sandbox: removed the last run's sandbox, tenant data and state in {folder} "
                               "(--keep keeps them)")
        assert f"its pm2 daemon, pid {daemon}" in line and not localmongo.alive(daemon)  # stopped, then removed
        second.wait_for("No terminal attached")
        fresh = Sandbox.load(folder / "target")
        assert fresh.canaries != made.canaries  # a new sandbox, not the old one started again
        assert git.Repo(fresh.repo).head.commit.hexsha == fresh.broken_commit
        assert tenant_counts(fresh)["schools"] == 4
        git.Repo(fresh.repo).git.reset("--hard", fresh.good_commit)  # as if this run had rolled it back
    finally:
        assert second.stop(signal.SIGTERM) == 0, "".join(second.output)

    kept = Local(folder, "--keep")
    try:
        line = kept.wait_for("--keep").strip()
        assert line == f"keeping the sandbox and state from the last run (--keep) in {folder}"
        kept.wait_for("No terminal attached")
        assert Sandbox.load(folder / "target") == fresh
        assert git.Repo(fresh.repo).head.commit.hexsha == fresh.good_commit  # as the last run left it
    finally:
        assert kept.stop(signal.SIGTERM) == 0, "".join(kept.output)
    assert pm2_daemons(str(folder)) == "" and local_mongo_servers(str(folder)) == []
