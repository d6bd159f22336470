"""bot.dev.localmongo: a real nx-27017 process per test, started, used over TCP by pymongo, and stopped."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from bot.dev import localmongo
from bot.dev.localmongo import LocalMongo, LocalMongoError, running_server, start_detached, stop_detached
from tests.conftest import local_mongo_servers

ROOT = Path(__file__).resolve().parents[2]


def count(uri: str, db: str = "probe", collection: str = "items") -> int:
    client: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=3000, timeoutMS=10_000)
    try:
        return client[db][collection].count_documents({})
    finally:
        client.close()


def argv_of(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


@pytest.fixture
def listening() -> Iterator[socket.socket]:
    """A loopback port somebody else already listens on."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock
    sock.close()


def test_a_server_starts_on_loopback_answers_and_stops_leaving_its_data(tmp_path: Path) -> None:
    folder = tmp_path / "mongo"
    with LocalMongo(folder) as server:
        pid, uri = server.pid, server.uri
        assert uri == f"mongodb://127.0.0.1:{server.port}/"
        argv = argv_of(pid)
        assert argv[0] == sys.executable and argv[1] == "-c"  # this interpreter's nx-27017, no shell
        assert argv[argv.index("--data-dir") + 1] == str(folder / "db")
        assert argv[argv.index("--host") + 1] == "127.0.0.1"
        assert json.loads((folder / "server.json").read_text()) == {"pid": pid, "host": "127.0.0.1",
                                                                   "port": server.port}
        assert (folder / "nx-27017.pid").read_text().strip() == str(pid)
        client: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=3000)
        client.probe.items.insert_many([{"n": n} for n in range(3)])
        client.close()
        assert (folder / "db" / "probe.db").exists()
    assert not server.running and not localmongo.alive(pid)
    assert not (folder / "server.json").exists() and not (folder / "nx-27017.pid").exists()
    assert (folder / "db" / "probe.db").exists() and "starting nx-27017" in (folder / "nx-27017.log").read_text()
    server.stop()  # again: nothing to do


def test_data_is_shared_by_several_processes_and_survives_a_restart(tmp_path: Path) -> None:
    with LocalMongo(tmp_path / "mongo") as server:
        code = ("import sys; from pymongo import MongoClient; c = MongoClient(sys.argv[1]); "
                "c.probe.items.insert_many([{'n': n} for n in range(5)]); c.close()")
        for _ in range(2):  # two other processes write, this one reads
            subprocess.run([sys.executable, "-c", code, server.uri], check=True, timeout=60)
        assert count(server.uri) == 10
    with LocalMongo(tmp_path / "mongo") as again:
        assert count(again.uri) == 10


def test_a_port_taken_between_choosing_and_binding_is_retried_on_another(
        tmp_path: Path, listening: socket.socket, monkeypatch: pytest.MonkeyPatch) -> None:
    taken = listening.getsockname()[1]
    ports = iter([taken])
    real = localmongo.free_port
    monkeypatch.setattr(localmongo, "free_port", lambda host="127.0.0.1": next(ports, None) or real(host))
    with LocalMongo(tmp_path / "mongo") as server:
        assert server.port != taken and count(server.uri) == 0
    log = (tmp_path / "mongo" / "nx-27017.log").read_text()
    assert f"on 127.0.0.1:{taken}" in log and "address already in use" in log


def test_a_given_port_in_use_fails_with_the_reason_and_leaves_nothing_running(
        tmp_path: Path, listening: socket.socket) -> None:
    taken = listening.getsockname()[1]
    with pytest.raises(LocalMongoError) as failed:
        LocalMongo(tmp_path / "mongo", port=taken).start()
    assert f"could not listen on 127.0.0.1:{taken}: the port is in use" in str(failed.value)
    assert "address already in use" in str(failed.value)  # the server's own words, from its log
    assert local_mongo_servers(str(tmp_path)) == [] and not (tmp_path / "mongo" / "server.json").exists()


def test_a_server_that_cannot_start_reports_the_tail_of_its_log(tmp_path: Path) -> None:
    with pytest.raises(LocalMongoError) as failed:
        LocalMongo(tmp_path / "mongo", journal_mode="NOT-A-MODE").start()
    message = str(failed.value)
    assert "did not start (it exited with status 2)" in message and "invalid choice: 'NOT-A-MODE'" in message
    assert str(tmp_path / "mongo" / "nx-27017.log") in message


def test_a_server_that_never_answers_is_killed_after_the_start_timeout(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = f"never-answers-{os.getpid()}"
    deaf = ("import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ignoring SIGTERM', flush=True); time.sleep(120)")
    monkeypatch.setattr(localmongo, "server_argv", lambda *a, **k: [sys.executable, "-c", deaf, marker])
    monkeypatch.setattr(localmongo, "installed", lambda: True)
    with pytest.raises(LocalMongoError) as failed:
        LocalMongo(tmp_path / "mongo", start_timeout=2, stop_timeout=1).start()
    assert "did not answer ping within 2 s" in str(failed.value) and "ignoring SIGTERM" in str(failed.value)
    listing = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
    assert listing == ""  # it ignored SIGTERM, so it was killed


def test_the_context_manager_stops_the_server_when_the_block_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), LocalMongo(tmp_path / "mongo") as server:
        pid = server.pid
        raise RuntimeError("the bot failed")
    assert not localmongo.alive(pid) and local_mongo_servers(str(tmp_path)) == []


def test_a_server_stops_by_itself_when_the_process_that_started_it_is_killed(tmp_path: Path) -> None:
    code = ("import sys, time; from pathlib import Path; from bot.dev.localmongo import LocalMongo; "
            "server = LocalMongo(Path(sys.argv[1])).start(); print(server.pid, flush=True); time.sleep(120)")
    starter = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "mongo")], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True)
    assert starter.stdout is not None
    pid = int(starter.stdout.readline())
    assert localmongo.alive(pid)
    starter.kill()  # SIGKILL: no finally, no stop()
    starter.wait()
    deadline = time.monotonic() + 15
    while localmongo.alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not localmongo.alive(pid) and local_mongo_servers(str(tmp_path)) == []


def test_only_a_detached_server_can_be_detached(tmp_path: Path) -> None:
    with LocalMongo(tmp_path / "mongo") as server, pytest.raises(LocalMongoError):
        server.detach()


def test_a_second_server_for_the_same_folder_is_refused(tmp_path: Path) -> None:
    with LocalMongo(tmp_path / "mongo") as first:
        with pytest.raises(LocalMongoError) as refused:
            LocalMongo(tmp_path / "mongo").start()
        assert f"already runs with its data in {tmp_path / 'mongo'} (pid {first.pid}" in str(refused.value)
        assert count(first.uri) == 0


def test_a_detached_server_outlives_its_starter_and_is_stopped_from_another_process(tmp_path: Path) -> None:
    folder = tmp_path / "mongo"
    code = ("import sys; from pathlib import Path; from bot.dev.localmongo import start_detached; "
            "print(start_detached(Path(sys.argv[1])).uri)")
    started = subprocess.run([sys.executable, "-c", code, str(folder)], cwd=ROOT, capture_output=True, text=True,
                             check=True, timeout=60)
    uri = started.stdout.strip()
    info = running_server(folder)
    assert info is not None and info.uri == uri and count(uri) == 0  # its starter has exited; it answers
    assert os.getsid(info.pid) == info.pid  # a session of its own
    assert start_detached(folder) == info  # asking again finds the running one
    assert stop_detached(folder) is True
    assert not localmongo.alive(info.pid) and running_server(folder) is None
    assert not (folder / "server.json").exists() and not (folder / "nx-27017.pid").exists()
    assert stop_detached(folder) is False  # nothing left to stop


def test_stop_detached_tolerates_stale_state_and_a_new_server_starts_after_it(tmp_path: Path) -> None:
    folder = tmp_path / "mongo"
    folder.mkdir()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    for stale_pid in (gone.pid, os.getpid()):  # a dead process; a live one that is not the server (pid reuse)
        (folder / "server.json").write_text(json.dumps({"pid": stale_pid, "host": "127.0.0.1", "port": 9}))
        (folder / "nx-27017.pid").write_text(str(stale_pid))
        assert running_server(folder) is None
        assert stop_detached(folder) is False
        assert not (folder / "server.json").exists() and not (folder / "nx-27017.pid").exists()
    (folder / "server.json").write_text("{not json")
    assert stop_detached(folder) is False
    (folder / "nx-27017.pid").write_text(str(os.getpid()))  # nx-27017 refuses to start while this names a live pid
    with LocalMongo(folder) as server:
        assert count(server.uri) == 0
    assert stop_detached(tmp_path / "never-made") is False
