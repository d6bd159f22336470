"""Shared fixtures: a real emulator, a real sandbox git repo, a real MongoDB-protocol server, real stores,
the real Bolt app."""

from __future__ import annotations

import gc
import logging
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bot.app import HttpBot, SocketModeBot, socket_mode_bot
from bot.config import Secrets, Settings, parse_runbook
from bot.dev.emulator import Emulator
from bot.dev.localmongo import LocalMongo, LocalMongoError, stop_detached
from bot.dev.sandbox import Sandbox, create_sandbox, drop_tenants, start_apps, stop_apps
from bot.domain.incident import Incident
from bot.domain.runs import StepName
from bot.store import Store
from bot.store.sqlite import SQLiteStore


def restore_service(incident: Incident, at: datetime, actor: str = "U0COMMANDER") -> None:
    """The record the runbook's steps leave once verify passed after a revert (tests/runbook runs them for real)."""
    for step in (StepName.REVERT, StepName.REBUILD, StepName.RESTART, StepName.VERIFY):
        incident.step_finished(step, True, at, actor)


COMMANDER, APPROVER, DBA, BYSTANDER = "U0COMMANDER", "U0APPROVER1", "U0APPROVER2", "U0BYSTANDER"
INCIDENT, STAKEHOLDERS, RANDOM = "C0INCIDENT", "C0STAKEHOLD", "C0RANDOM"
LOCAL_MONGO_PREFIX = "rollback-bot-test-mongo-"  # the session server's temporary folder
_SESSION_MONGO_FOLDERS: list[Path] = []


@dataclass(frozen=True)
class TestServer:
    """The MongoDB-protocol server of this test session."""

    __test__ = False  # not a test class, whatever its name
    uri: str
    local: bool  # the local nx-27017 (no authentication, known deviations); False for TEST_MONGODB_URI


@pytest.fixture(scope="session")
def mongo_server() -> Iterator[TestServer]:
    """TEST_MONGODB_URI if set; otherwise a local nx-27017 server in a temporary folder, started once for the
    session and stopped (its folder removed) at the end. Raises LocalMongoError if it cannot start."""
    uri = os.environ.get("TEST_MONGODB_URI")
    if uri:
        yield TestServer(uri, local=False)
        return
    _remove_folders_of_dead_sessions()
    folder = Path(tempfile.mkdtemp(prefix=LOCAL_MONGO_PREFIX))
    (folder / "owner").write_text(str(os.getpid()))
    _SESSION_MONGO_FOLDERS.append(folder)
    server = LocalMongo(folder)
    try:
        server.start()
        yield TestServer(server.uri, local=True)
    finally:
        server.stop()
        shutil.rmtree(folder)


def _remove_folders_of_dead_sessions() -> None:
    """A test session that was killed could not remove its folder (its server stopped by itself)."""
    for folder in Path(tempfile.gettempdir()).glob(LOCAL_MONGO_PREFIX + "*"):
        try:
            owner = int((folder / "owner").read_text())
        except (OSError, ValueError):
            continue
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            stop_detached(folder)
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def mongo_uri(mongo_server: TestServer) -> str:
    return mongo_server.uri


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    emu = Emulator(ack_timeout=3.0).start()
    yield emu
    emu.close()


@pytest.fixture
def sandbox(tmp_path: Path, mongo_server: TestServer) -> Iterator[Sandbox]:
    """The runbook's target: git repo, .env with canaries, tenant data in databases of its own on the session's
    server (dropped afterwards)."""
    made = create_sandbox(tmp_path / "target", mongo_uri=mongo_server.uri, local_server=mongo_server.local)
    yield made
    stop_apps(made)  # any pm2 command (even `pm2 jlist`) may have started a daemon in its PM2_HOME
    drop_tenants(made)


@pytest.fixture
def live_sandbox(sandbox: Sandbox) -> Iterator[Sandbox]:
    """The sandbox built with the real yarn and running under its own real pm2 daemon."""
    start_apps(sandbox)
    yield sandbox


def make_config(sandbox: Sandbox, data_dir: Path, **overrides: Any) -> dict[str, Any]:
    """The tests' rollback.yml, as a dict: the sandbox target, the emulator's channels and groups."""
    config: dict[str, Any] = {
        **sandbox.config(),
        "access": {"incident_channels": [INCIDENT], "commanders": ["@oncall"], "approvers": ["@backend-leads"]},
        "slack": {"stakeholder_channel": STAKEHOLDERS},
        "contacts": {"backend_lead": [APPROVER], "database_admin": ["@backend-leads"]},
        "store": {"data_dir": str(data_dir)},
    }
    for section, values in overrides.items():
        config.setdefault(section, {}).update(values)
    return config


def settings_for(config: dict[str, Any], env: dict[str, str]) -> Settings:
    """Settings from a config dict and the emulator's ``bot_env()`` (no .env file is read)."""
    secrets = Secrets(slack_bot_token=env["SLACK_BOT_TOKEN"],
                      slack_app_token=env["SLACK_APP_TOKEN"], slack_signing_secret=env["SLACK_SIGNING_SECRET"],
                      slack_api_url=env["SLACK_API_URL"])
    return Settings(runbook=parse_runbook(config), secrets=secrets)


def make_settings(emulator: Emulator, sandbox: Sandbox, data_dir: Path, **overrides: Any) -> Settings:
    return settings_for(make_config(sandbox, data_dir, **overrides), emulator.bot_env())


@pytest.fixture
def settings(emulator: Emulator, sandbox: Sandbox, tmp_path: Path) -> Settings:
    return make_settings(emulator, sandbox, tmp_path / "data")


@pytest.fixture
def start_bot(settings: Settings) -> Iterator[Callable[..., SocketModeBot]]:
    """Start (and later stop) bots in Socket Mode; call again to 'restart' on the same state."""
    bots: list[SocketModeBot] = []

    def start(custom: Settings | None = None, **kwargs: Any) -> SocketModeBot:
        bot = socket_mode_bot(custom or settings, **kwargs).start()
        bots.append(bot)
        return bot

    yield start
    for bot in bots:
        bot.close()


@pytest.fixture
def bot(start_bot: Callable[..., SocketModeBot]) -> SocketModeBot:
    return start_bot()


@pytest.fixture
def http_bot(settings: Settings, emulator: Emulator) -> Iterator[HttpBot]:
    bot = HttpBot(settings, port=0).start()
    emulator.set_request_url(bot.url)
    yield bot
    emulator.set_request_url(None)
    bot.close()


# ---- stores: one contract, every backend ------------------------------------------------------------------
def _sqlite(tmp_path: Path) -> Store:
    return SQLiteStore(tmp_path / "state.sqlite3")


def _mongomock(tmp_path: Path) -> Store:
    import mongomock

    from bot.store.mongo import MongoStore

    return MongoStore(mongomock.MongoClient(tz_aware=True), "rollback_bot_test")


def _real_mongo(uri: str) -> Store:
    from pymongo import MongoClient

    from bot.store.mongo import MongoStore

    client: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=3000, timeoutMS=30_000,
                                                      tz_aware=True)
    name = f"rollback_bot_test_{uuid.uuid4().hex[:8]}"
    store = MongoStore(client, name)
    store._drop_after = (client, name)  # type: ignore[attr-defined]
    return store


STORE_FACTORIES: dict[str, Callable[[Path], Store]] = {
    "sqlite": _sqlite,
    "mongomock": _mongomock,
}


@pytest.fixture(params=[
    "sqlite", "mongomock", pytest.param("mongodb", marks=pytest.mark.mongodb),
])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """Opens the same backend again (as a restarted bot or a second replica would)."""
    opened: list[Store] = []
    kind = request.param
    shared: dict[str, Any] = {}
    if kind == "mongodb":
        try:
            server: TestServer = request.getfixturevalue("mongo_server")
        except LocalMongoError as error:
            pytest.skip(f"no MongoDB-protocol server: TEST_MONGODB_URI is not set and the local one did not start "
                        f"({str(error).splitlines()[0]})")
        shared["uri"] = server.uri

    def open_() -> Store:
        if kind == "mongomock":
            import mongomock

            from bot.store.mongo import MongoStore

            shared.setdefault("client", mongomock.MongoClient(tz_aware=True))
            store: Store = MongoStore(shared["client"], "rollback_bot_test", owns_client=False)
        elif kind == "mongodb" and opened:
            from bot.store.mongo import MongoStore

            client, name = opened[0]._drop_after  # type: ignore[attr-defined]
            store = MongoStore(client, name, owns_client=False)
        elif kind == "mongodb":
            store = _real_mongo(shared["uri"])
        else:
            store = STORE_FACTORIES[kind](tmp_path)
        opened.append(store)
        return store

    yield open_
    for store in reversed(opened):
        drop = getattr(store, "_drop_after", None)
        if drop is not None:
            drop[0].drop_database(drop[1])
        store.close()


@pytest.fixture
def store(store_factory: Callable[[], Store]) -> Store:
    return store_factory()


def _pm2_home(pid: str) -> str:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return ""
    return next((item[len(b"PM2_HOME="):].decode() for item in environ if item.startswith(b"PM2_HOME=")), "")


@pytest.fixture(autouse=True, scope="session")
def no_pm2_daemon_left_behind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tidy: after the whole suite, no pm2 daemon started by a test may still be running: one whose PM2_HOME is
    in this session's tmp_path (other test sessions on the same machine have daemons of their own)."""
    base = str(tmp_path_factory.getbasetemp())
    yield
    daemons = subprocess.run(["pgrep", "-f", "PM2 v.*God Daemon"], capture_output=True, text=True).stdout.split()
    left = [pid for pid in daemons if _pm2_home(pid).startswith(base)]
    assert not left, f"pm2 daemons left running by the tests: {left}"


@pytest.fixture(autouse=True, scope="session")
def no_yarn_temp_folder_left_behind() -> Iterator[None]:
    """Tidy: a bot process a test kills (-9) while its yarn runs cannot remove that yarn's temp folder; the next
    yarn sweeps it (``bot.ops.build``), and so does the end of the suite, for the last one."""
    yield
    from bot.ops.build import sweep_scratch

    sweep_scratch()


class _DestroyedTasks(logging.Handler):
    """Collects asyncio's "Task was destroyed but it is pending!" reports."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "destroyed but it is pending" in record.getMessage():
            self.seen.append(record.getMessage().splitlines()[-1][:300])


@pytest.fixture(autouse=True, scope="module")
def no_pending_task_left_behind() -> Iterator[None]:
    """Tidy: a module's tests leave no asyncio task pending on a loop they closed. Such a task is destroyed by
    some later garbage collection, and its ERROR lands in whichever test runs then (it failed an unrelated
    no-ERROR assertion in CI); collecting here names the module that leaked it."""
    gc.collect()
    handler = _DestroyedTasks()
    logging.getLogger("asyncio").addHandler(handler)
    try:
        yield
        gc.collect()
    finally:
        logging.getLogger("asyncio").removeHandler(handler)
    assert not handler.seen, f"asyncio tasks left pending on a closed loop: {handler.seen[:3]}"


def local_mongo_servers(*markers: str) -> list[str]:
    """Running nx-27017 servers whose command line (their data folder) contains one of ``markers``."""
    listing = subprocess.run(["pgrep", "-af", "nx_27017"], capture_output=True, text=True).stdout
    return [line for line in listing.splitlines() if any(marker in line for marker in markers)]


@pytest.fixture(autouse=True, scope="session")
def no_local_mongo_left_behind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Tidy: after the whole suite, no nx-27017 server started by a test still runs (the session's own, or one
    a test started in its tmp_path) and the session server's temporary folder is gone."""
    base = str(tmp_path_factory.getbasetemp())
    yield
    left = local_mongo_servers(base, *(str(folder) for folder in _SESSION_MONGO_FOLDERS))
    assert not left, f"nx-27017 servers left running by the tests: {left}"
    kept = [str(folder) for folder in _SESSION_MONGO_FOLDERS if folder.exists()]
    assert not kept, f"temporary data folders left by the tests: {kept}"


def content(message: dict[str, Any]) -> str:
    """Everything a person reads in a message: its blocks' text (the top-level `text` is only the notification)."""
    texts = [message.get("text") or ""]
    for block in message.get("blocks") or []:
        if isinstance(block.get("text"), dict):
            texts.append(block["text"].get("text", ""))
        texts.extend(f.get("text", "") for f in block.get("fields") or [] if isinstance(f, dict))
        texts.extend(e.get("text", "") for e in block.get("elements", []) if isinstance(e, dict)
                     and e.get("type") == "mrkdwn")
    return "\n".join(texts)


def wait_for_log(caplog: pytest.LogCaptureFixture, text: str, count: int = 1, timeout: float = 10.0) -> list[str]:
    """Wait until `count` log records contain `text`: a positive sign that work ended (e.g. a dropped repeat)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [r.getMessage() for r in list(caplog.records) if text in r.getMessage()]
        if len(found) >= count or time.monotonic() > deadline:
            assert len(found) >= count, f"waited {timeout}s for {count} log line(s) containing {text!r}: {found}"
            return found
        time.sleep(0.02)


def checklists_message(emulator: Emulator, channel: str = INCIDENT, timeout: float = 10.0) -> dict[str, Any]:
    """The incident's checklists message (the panel thread's first reply), as it stands now."""
    def find() -> dict[str, Any] | None:
        for message in emulator.ws.channel_messages(channel, include_replies=True):
            blocks = message.get("blocks") or []
            if blocks and str(blocks[0].get("block_id", "")).startswith("checklists:"):
                return message
        return None

    return emulator.ws.wait_for(find, timeout, "the checklists message")
