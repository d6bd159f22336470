"""The bot stays bounded at scale: health checks that do not misreport when many hang, restores that stream,
one SQLite connection however many threads use the store, and timeouts that stop everything a command started.
None of these is timed; each asserts the result a person would see."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import bson
import pytest
from aiohttp import web

from bot.config import CleanupConfig
from bot.ops import bsonfiles, tenants
from bot.ops.build import Yarn
from bot.ops.cleanup import backed_up_view, restore_tenant
from bot.ops.probe import HttpCheck, probe_many
from bot.store.sqlite import SQLiteStore


class Endpoints:
    """One real HTTP server with `/ok/<n>` (answers at once) and `/hung/<n>` (never answers)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()

        async def ok(_: web.Request) -> web.Response:
            return web.json_response({"status": "ok"})

        async def hung(_: web.Request) -> web.Response:
            await asyncio.sleep(3600)
            return web.Response()

        async def start() -> None:
            app = web.Application()
            app.router.add_get("/ok/{n}", ok)
            app.router.add_get("/hung/{n}", hung)
            # A hung check's client gives up after its time limit; cancel the handler then, as a real server's
            # framework does, instead of leaving an hour-long sleep behind it.
            self.runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1, handler_cancellation=True)
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0, backlog=2048)
            await site.start()
            self.port = self.runner.addresses[0][1]
            ready.set()

        def serve() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(start())
            self.loop.run_forever()

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()
        ready.wait(10)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        asyncio.run_coroutine_threadsafe(self._cancel_the_rest(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    @staticmethod
    async def _cancel_the_rest() -> None:
        """Cancel and wait for every task still pending, as `asyncio.run` does: a task left pending when its loop
        closes is destroyed by a later garbage collection, which logs an ERROR inside whatever test runs then."""
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)


@pytest.fixture
def endpoints() -> Iterator[Endpoints]:
    server = Endpoints()
    yield server
    server.close()


def test_fifty_hung_of_a_thousand_checks_never_make_a_healthy_one_look_hung(endpoints: Endpoints) -> None:
    hung = set(range(0, 1000, 20))  # 50, spread through the list (the first ones take workers at once)
    checks = [HttpCheck(url=f"http://127.0.0.1:{endpoints.port}/{'hung' if n in hung else 'ok'}/{n}",
                        expect_json={"status": "ok"}) for n in range(1000)]
    # The default is 32 at a time with an 8 s limit; a 0.3 s limit keeps the test short, and with 50 hung
    # checks holding 32 workers the queued healthy checks would time out if the limit counted from the queue.
    probes = probe_many(checks, timeout=0.3, concurrency=32)
    reported_hung = {n for n, p in enumerate(probes) if not p.ok}
    assert reported_hung == hung
    assert all("hung" in probes[n].detail for n in hung)
    assert all(probes[n].ok and probes[n].status == 200 for n in range(1000) if n not in hung)


def write_bson(path: Path, count: int, size: int, **extra: object) -> None:
    with bsonfiles.BsonWriter(path) as out:
        for n in range(count):
            out.write(bson.encode({"_id": n, "blob": "x" * size, **extra}))


DB = "rb_test_restore_stream"


def test_a_restore_streams_a_backup_larger_than_its_memory_budget(mongo_uri: str, tmp_path: Path) -> None:
    config = CleanupConfig()
    run = tmp_path / "RB-0001-backup-1"
    folder = bsonfiles.private_dir(run / DB)
    dropped = config.drop_collections[0]
    write_bson(folder / f"{dropped}.bson", 6000, 4000)  # 24 MB
    fields = {name: f"value of {name}" for name in config.unset_fields}
    write_bson(folder / f"{config.collection}.bson", 3000, 4000, **fields)  # 12 MB
    file_bytes = sum(f.stat().st_size for f in folder.glob("*.bson"))
    budget = 8 * 1024 * 1024
    assert file_bytes > 4 * budget

    client = tenants.connect(mongo_uri)
    db = client[DB]
    try:
        db[config.collection].insert_many([{"_id": n, "blob": "y"} for n in range(3000)])  # cleaned: no fields
        tracemalloc.start()
        try:
            view = backed_up_view(run, DB, config)  # the restore request's plan
            _, plan_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            restored = restore_tenant(client, DB, run, config)
            _, restore_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert view.cases == 3000 and view.collections[dropped] == 6000
        assert restored.collections[dropped] == 6000 and restored.cases == 3000
        assert db[dropped].count_documents({}) == 6000
        assert db[config.collection].count_documents({config.unset_fields[0]: {"$exists": True}}) == 3000
        assert plan_peak < budget and restore_peak < budget, (plan_peak, restore_peak, file_bytes)
    finally:
        client.drop_database(DB)
        tenants.close(client)


def sqlite_handles(path: Path) -> int:
    count = 0
    for fd in Path("/proc/self/fd").iterdir():
        try:
            if os.readlink(fd).startswith(str(path)):
                count += 1
        except OSError:
            continue
    return count


def test_fifty_threads_share_one_sqlite_connection_closed_with_the_store(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    store = SQLiteStore(path)
    opened = sqlite_handles(path)
    errors: list[BaseException] = []

    def use() -> None:
        try:
            store.get_incident("RB-0001")
            store.claim(f"t:{threading.get_ident()}", datetime.now(UTC))
        except BaseException as error:  # noqa: BLE001 - a thread's error would only be printed; asserted below
            errors.append(error)

    threads = [threading.Thread(target=use) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sqlite_handles(path) == opened <= 3  # the database, its WAL and shared memory: no more per thread
    store.close()
    assert sqlite_handles(path) == 0


def test_a_timed_out_build_stops_everything_it_started(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    pids = repo / "pids"
    (repo / "package.json").write_text(json.dumps({"name": "hang", "version": "1.0.0", "private": True,
                                                   "scripts": {"build": "node build.js"}}))
    (repo / "build.js").write_text(f"""
const {{ spawn }} = require('child_process');
const child = spawn(process.execPath, ['-e', 'setInterval(() => {{}}, 1000)'], {{ stdio: 'ignore' }});
require('fs').appendFileSync({json.dumps(str(pids))}, process.pid + ' ' + child.pid + '\\n');
setInterval(() => {{}}, 1000);
""")
    (repo / "yarn.lock").write_text("")
    outcome = Yarn(timeout=3).rebuild(repo)
    assert not outcome.ok and outcome.attempts[0].completed.timed_out
    started = [int(p) for line in pids.read_text().split("\n") if line for p in line.split()]
    assert len(started) >= 2

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        stat = Path(f"/proc/{pid}/stat")
        return stat.exists() and stat.read_text().split(") ")[1][0] != "Z"  # a zombie has stopped

    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in started) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [pid for pid in started if alive(pid)] == []
