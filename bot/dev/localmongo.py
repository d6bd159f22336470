"""A local MongoDB for the sandbox, `make local` and the tests: an nx-27017 server as a child process.

No MongoDB server can be installed on the machines this project runs on. nx-27017 (PyPI, the ``local``
extra) speaks MongoDB's wire protocol over TCP and keeps each logical database in a SQLite file, so
real pymongo clients in several processes share data that survives restarts. It is not MongoDB: the
README lists where it deviates.

A server's folder holds everything it writes::

    db/             one SQLite file per logical database (<name>.db), created on demand
    nx-27017.log    what the server printed (warnings, errors, tracebacks) and our start notes
    nx-27017.pid    written by the server itself while it runs
    server.json     {"pid", "host", "port"}: written once it answers ping, removed when it is stopped

``LocalMongo`` owns a server for the life of a ``with`` block (or until ``stop()``). ``start_detached``
starts one that outlives this process (``rollback-bot sandbox DIR``); ``stop_detached(folder)`` stops it
from any process, and tolerates a stale ``server.json``.

Over 300 lines because starting, probing, adopting and stopping a server process are one lifecycle.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from bot.ops.process import alive

DB_DIR = "db"
LOG_FILE = "nx-27017.log"
PID_FILE = "nx-27017.pid"
STATE_FILE = "server.json"
# The server runs in the interpreter running us (so the nx-27017 of this environment), never through a
# shell. Its per-command INFO lines would log every command it serves; warnings and errors are kept. Unless
# it is detached, a thread stops it (as SIGTERM does) once the process that started it is gone, even if
# that one was killed and could not stop it. One line: `pgrep -af` lists a command line per line.
_SERVER_CODE = ("import logging, os, signal, sys, threading, time; "
                "logging.getLogger('nx_27017').setLevel({level!r}); "
                "parent = os.getppid(); "
                "orphaned = lambda: [time.sleep(0.5) for _ in iter(lambda: os.getppid() == parent, False)]; "
                "watch = lambda: (orphaned(), os.kill(os.getpid(), signal.SIGTERM)); "
                "{watch}"
                "from nx_27017.nx_27017 import main; sys.exit(main())")
_WATCH = "threading.Thread(target=watch, daemon=True).start(); "
_PORT_ATTEMPTS = 5
_PORT_TAKEN = ("address already in use", "errno 98", "errno 48")  # Linux, macOS

# Popen objects of detached servers started by this process: kept so they are reaped when stopped here
# (a dead child would linger as a zombie) and never garbage-collected while running.
_DETACHED: dict[int, subprocess.Popen[bytes]] = {}


class LocalMongoError(RuntimeError):
    """The local server could not be started (or stopped); the message carries its log's last lines."""


@dataclass(frozen=True)
class ServerInfo:
    pid: int
    host: str
    port: int

    @property
    def uri(self) -> str:
        return f"mongodb://{self.host}:{self.port}/"


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (it may be taken before the server binds it: callers retry)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def server_argv(folder: Path, host: str, port: int, *, journal_mode: str = "WAL", log_level: str = "WARNING",
                detached: bool = False) -> list[str]:
    """The command line of an nx-27017 server keeping its data in ``folder``."""
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError(f"unknown log level {log_level!r}")
    return [sys.executable, "-c", _SERVER_CODE.format(level=log_level, watch="" if detached else _WATCH),
            "--data-dir", str(folder / DB_DIR), "--host", host, "-p", str(port), "-j", journal_mode,
            "--pid-file", str(folder / PID_FILE), "--log-file", os.devnull]


def installed() -> bool:
    return importlib.util.find_spec("nx_27017") is not None


class LocalMongo:
    """One nx-27017 server on a loopback port, with its data, log and pid file in ``folder``.

    ``port=None`` picks a free port (and another one if it was taken before the server could bind it);
    a given port is used as is, so a sandbox whose URI names it finds its data again. The server stops
    when ``stop()`` is called or the ``with`` block ends, and by itself if this process dies first;
    ``detached=True`` (see ``start_detached``) makes one that outlives this process.
    """

    def __init__(self, folder: Path, *, port: int | None = None, host: str = "127.0.0.1",
                 start_timeout: float = 30.0, stop_timeout: float = 10.0, journal_mode: str = "WAL",
                 log_level: str = "WARNING", detached: bool = False) -> None:
        self.folder = Path(folder).resolve()
        self.host = host
        self.requested_port = port
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.journal_mode = journal_mode
        self.log_level = log_level
        self.detached = detached
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    # ---- state ----------------------------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        return self.folder / LOG_FILE

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise LocalMongoError("the local MongoDB is not running")
        return self._process.pid

    @property
    def port(self) -> int:
        if self._port is None or not self.running:
            raise LocalMongoError("the local MongoDB is not running")
        return self._port

    @property
    def info(self) -> ServerInfo:
        return ServerInfo(self.pid, self.host, self.port)

    @property
    def uri(self) -> str:
        return self.info.uri

    def log_tail(self, lines: int = 20, since: int = 0) -> str:
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(since)
                text = handle.read().decode("utf-8", "replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.strip().splitlines()[-lines:]) or "(the log is empty)"

    # ---- start ----------------------------------------------------------------------------------------
    def start(self) -> LocalMongo:
        """Start the server and return once it answers ``ping``; raise ``LocalMongoError`` otherwise."""
        if self.running:
            return self
        if not installed():
            raise LocalMongoError("nx-27017 is not installed in this environment: run `make deps`, or "
                                  "`pip install 'rollback-bot[local]'`")
        self.folder.mkdir(parents=True, exist_ok=True)
        already = running_server(self.folder)
        if already is not None:
            raise LocalMongoError(f"a local MongoDB already runs with its data in {self.folder} (pid {already.pid}, "
                                  f"port {already.port}); stop it first")
        _remove_stale_files(self.folder)
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            port = self.requested_port or free_port(self.host)
            outcome, since = self._launch(port)
            if outcome == "ready":
                self._port = port
                _write_state(self.folder, ServerInfo(self.pid, self.host, port))
                return self
            tail = self.log_tail(since=since)
            self._process = None
            taken = any(marker in tail.lower() for marker in _PORT_TAKEN)
            if taken and self.requested_port is None and attempt < _PORT_ATTEMPTS:
                continue  # someone took the free port between our choosing and the server binding it
            if taken:
                raise LocalMongoError(f"the local MongoDB could not listen on {self.host}:{port}: the port is in "
                                      f"use. Its log ({self.log_path}) ends:\n{tail}")
            raise LocalMongoError(f"the local MongoDB did not start ({outcome}). Its log ({self.log_path}) "
                                  f"ends:\n{tail}")
        raise AssertionError("unreachable")  # pragma: no cover

    def _launch(self, port: int) -> tuple[str, int]:
        """Start the process on ``port`` and wait: ``ready``, or why not, and where this attempt's log starts."""
        argv = server_argv(self.folder, self.host, port, journal_mode=self.journal_mode, log_level=self.log_level,
                           detached=self.detached)
        with self.log_path.open("ab") as log:
            since = log.tell()
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} rollback-bot: starting nx-27017 on "
                      f"{self.host}:{port}\n".encode())
            log.flush()
            # its own session: a Ctrl-C in the terminal reaches rollback-bot, which stops the server after
            # the bot; a detached server is not stopped when the command that started it ends
            self._process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                             cwd=self.folder, start_new_session=True)
        process = self._process
        deadline = time.monotonic() + self.start_timeout
        client: MongoClient[dict[str, Any]] = MongoClient(self.host, port, directConnection=True,
                                                          serverSelectionTimeoutMS=250, connectTimeoutMS=250,
                                                          timeoutMS=2000)
        try:
            while True:
                if process.poll() is not None:
                    return f"it exited with status {process.returncode}", since
                if _answers_as(client, process.pid):
                    return "ready", since
                if time.monotonic() > deadline:
                    _end(process, self.stop_timeout)
                    return f"it did not answer ping within {self.start_timeout:.0f} s", since
                time.sleep(0.05)
        finally:
            client.close()

    # ---- stop -----------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Terminate the server and wait for it (kill it if it does not exit in time). Idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        _end(process, self.stop_timeout)
        _remove_state(self.folder, process.pid)

    def detach(self) -> ServerInfo:
        """Leave the server running after this object (and this process) is gone; ``stop_detached`` stops it."""
        if not self.detached:
            raise LocalMongoError("only a server started with detached=True outlives its starter")
        info = self.info
        assert self._process is not None
        _DETACHED[info.pid] = self._process
        self._process = None
        return info

    def __enter__(self) -> LocalMongo:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid {self._process.pid}, port {self._port}" if self.running and self._process else "stopped"
        return f"LocalMongo({str(self.folder)!r}, {state})"


# ---- detached servers ---------------------------------------------------------------------------------
def start_detached(folder: Path, *, port: int | None = None, **options: Any) -> ServerInfo:
    """A server with its data in ``folder`` that outlives this process: the one already running there, or a
    new one (on ``port`` if given)."""
    folder = Path(folder).resolve()
    running = running_server(folder)
    if running is not None:
        if port is not None and running.port != port:
            raise LocalMongoError(f"the local MongoDB for {folder} runs on port {running.port}, not {port}")
        return running
    return LocalMongo(folder, port=port, detached=True, **options).start().detach()


def running_server(folder: Path) -> ServerInfo | None:
    """The server whose ``server.json`` is in ``folder``, if that process is alive and is that server."""
    folder = Path(folder).resolve()
    try:
        data = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
        info = ServerInfo(int(data["pid"]), str(data["host"]), int(data["port"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info if _is_our_server(info, folder) else None


def stop_detached(folder: Path, timeout: float = 10.0) -> bool:
    """Stop the server keeping its data in ``folder``. True if one was running; a stale or missing
    ``server.json`` (the server died, or its pid now belongs to another process) is tidied away, not an error."""
    folder = Path(folder).resolve()
    info = running_server(folder)
    if info is None:
        _remove_stale_files(folder)
        return False
    process = _DETACHED.pop(info.pid, None)
    if process is not None:
        _end(process, timeout)
    else:
        _end_pid(info.pid, timeout)
    _remove_state(folder, info.pid)
    return True


# ---- helpers ------------------------------------------------------------------------------------------
def _answers_as(client: MongoClient[dict[str, Any]], pid: int) -> bool:
    """The server on the client's port answers ping, and it is the process ``pid`` (not another server that
    holds the port: nx-27017's buildInfo names its pid)."""
    try:
        client.admin.command("ping")
        build = client.admin.command("buildInfo")
    except PyMongoError:
        return False
    return int(build.get("pid", pid)) == pid


def _end(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


def _end_pid(pid: int, timeout: float) -> None:
    """Terminate a server that is not our child (started by an earlier command) and wait until it is gone."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, timeout)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not alive(pid):
                return
            time.sleep(0.05)
    raise LocalMongoError(f"the local MongoDB (pid {pid}) did not exit after SIGKILL")


def _cmdline(pid: int) -> list[str] | None:
    """The process's arguments, or None where there is no /proc to read them from."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace").split("\0")
    except FileNotFoundError:
        return []
    except OSError:
        return None


def _serves(argv: list[str], folder: Path) -> bool:
    return any("nx_27017" in arg for arg in argv) and str(folder / DB_DIR) in argv


def _is_our_server(info: ServerInfo, folder: Path) -> bool:
    """``info.pid`` is alive and is the nx-27017 serving ``folder`` (a pid can be reused after a crash)."""
    if not alive(info.pid):
        return False
    argv = _cmdline(info.pid)
    if argv is not None:
        return _serves(argv, folder)
    # no /proc: the server on the recorded port must say it is that pid
    client: MongoClient[dict[str, Any]] = MongoClient(info.host, info.port, directConnection=True,
                                                      serverSelectionTimeoutMS=1000, timeoutMS=2000)
    try:
        return _answers_as(client, info.pid)
    finally:
        client.close()


def _write_state(folder: Path, info: ServerInfo) -> None:
    path = folder / STATE_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(info)), encoding="utf-8")
    temporary.replace(path)


def _recorded_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
        return int(json.loads(text)["pid"]) if path.name == STATE_FILE else int(text)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _remove_state(folder: Path, pid: int) -> None:
    """After the server ``pid`` ended: remove the files that name it (a killed server leaves its pid file)."""
    for name in (STATE_FILE, PID_FILE):
        if _recorded_pid(folder / name) == pid:
            with contextlib.suppress(FileNotFoundError):
                (folder / name).unlink()


def _remove_stale_files(folder: Path) -> None:
    """With no server of ours running for ``folder``: remove a left-over ``server.json``, and the server's own
    pid file unless a live nx-27017 serving this folder wrote it (nx-27017 refuses to start while its pid
    file names a live process, and a pid can be reused by an unrelated one)."""
    with contextlib.suppress(FileNotFoundError):
        (folder / STATE_FILE).unlink()
    recorded = _recorded_pid(folder / PID_FILE)
    if recorded is not None and alive(recorded) and _serves(_cmdline(recorded) or [], folder):
        return
    with contextlib.suppress(FileNotFoundError):
        (folder / PID_FILE).unlink()
