"""/healthz and /readyz over real HTTP, in both modes: Socket Mode on its own small server (``ops.port``), HTTP mode
beside /slack/events. The store that goes away is a real MongoDB-protocol server (nx-27017) of the test's own,
stopped and started again on the same port; Slack that stops answering is the emulator's outage."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import HttpBot, SocketModeBot, socket_mode_bot
from bot.dev.emulator import Emulator
from bot.dev.localmongo import LocalMongo, LocalMongoError
from bot.dev.sandbox import Sandbox
from bot.errors import ConfigError
from bot.store.mongo import MongoStore
from tests.conftest import make_settings

HEARTBEAT_S = 1.0


def get(url: str, method: str = "GET") -> tuple[int, str, str]:
    """(status, content type, body) of one real HTTP request."""
    request = urllib.request.Request(url, method=method)  # noqa: S310 - a loopback URL the test made
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - a loopback URL the test made
            return response.status, response.headers.get("Content-Type", ""), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read().decode()


def readyz(base: str) -> tuple[int, dict[str, Any]]:
    status, kind, body = get(f"{base}/readyz")
    assert kind == "application/json"
    return status, json.loads(body)


def wait_readyz(base: str, want: int, timeout: float) -> tuple[float, dict[str, Any]]:
    """Poll /readyz until it answers ``want``; (seconds it took, its body)."""
    started = time.monotonic()
    while True:
        status, body = readyz(base)
        if status == want:
            return time.monotonic() - started, body
        assert time.monotonic() - started < timeout, f"/readyz still answers {status} after {timeout} s: {body}"
        time.sleep(0.02)


@pytest.fixture
def state_server(tmp_path: Path) -> Iterator[LocalMongo]:
    """A MongoDB-protocol server for the bot's state alone, which the test may stop and start again."""
    server = LocalMongo(tmp_path / "state-mongo")
    try:
        server.start()
    except LocalMongoError as error:
        pytest.skip(f"the local MongoDB-protocol server did not start: {str(error).splitlines()[0]}")
    holder = [server]
    yield server
    for started in holder:
        started.stop()


@pytest.mark.slow  # starts and stops a MongoDB-protocol server of its own
def test_socket_mode_readyz_turns_unready_within_a_heartbeat_of_the_store_going_away_and_ready_after(
        emulator: Emulator, sandbox: Sandbox, tmp_path: Path, state_server: LocalMongo,
        start_bot: Callable[..., SocketModeBot]) -> None:
    settings = make_settings(emulator, sandbox, tmp_path / "data", ops={"port": 0}, monitor={"enabled": False},
                             store={"heartbeat_s": HEARTBEAT_S, "owner_lease_s": 30})
    bot = start_bot(settings, store=MongoStore.from_uri(state_server.uri))
    assert bot.ops is not None
    base = bot.ops.url
    assert get(f"{base}/healthz") == (200, "text/plain", "ok\n")
    _, body = wait_readyz(base, 200, 10)
    assert body == {"ready": True, "not_ready": {},
                    "components": {"store": "ok", "slack": "ok", "scheduler": "ok", "lease": "ok"}}

    port, folder = state_server.port, state_server.folder
    state_server.stop()
    took, body = wait_readyz(base, 503, 10)
    grace = min(1.0, HEARTBEAT_S / 2)
    assert took <= HEARTBEAT_S + grace + 0.5, f"unready only after {took:.2f} s"
    assert set(body["not_ready"]) == {"store"}, body  # Slack, the scheduler and the (unexpired) lease are fine
    assert "store" in body["not_ready"]["store"] and body["components"]["store"] == "not ready"
    assert get(f"{base}/healthz")[0] == 200  # the process is up, only not ready
    assert 'rollback_bot_ready{component="store"} 0.0' in get(f"{base}/metrics")[2]  # worked out at the scrape

    again = LocalMongo(folder, port=port)
    try:
        restarted = time.monotonic()
        again.start()
        _, body = wait_readyz(base, 200, 30)
        back = time.monotonic() - restarted
        assert body["not_ready"] == {}
        metrics = get(f"{base}/metrics")[2]
        assert 'rollback_bot_ready{component="store"} 1.0' in metrics
    finally:
        bot.close()  # while the store is there to release the lease
        again.stop()
    print(f"unready {took:.2f} s after the store stopped (heartbeat {HEARTBEAT_S:g} s); ready {back:.2f} s after "
          "starting it again (its own start included)")


def test_socket_mode_serves_only_its_three_paths_and_no_server_without_ops_port(
        emulator: Emulator, sandbox: Sandbox, tmp_path: Path, start_bot: Callable[..., SocketModeBot]) -> None:
    plain = start_bot()
    assert plain.ops is None  # no ops.port: Socket Mode opens no port
    bot = start_bot(make_settings(emulator, sandbox, tmp_path / "other", ops={"port": 0}), replica_id="second")
    assert bot.ops is not None
    assert get(f"{bot.ops.url}/slack/events")[0] == 404
    assert get(f"{bot.ops.url}/readyz", method="POST")[0] == 405
    status, kind, text = get(f"{bot.ops.url}/metrics")
    assert status == 200 and kind.startswith("text/plain") and "# TYPE rollback_bot_requests_total counter" in text
    taken = socket_mode_bot(make_settings(emulator, sandbox, tmp_path / "third", ops={"port": bot.ops.port}),
                            replica_id="third")
    try:
        with pytest.raises(ConfigError, match=f"cannot serve /healthz, /readyz and /metrics on 127.0.0.1:{bot.ops.port}"
                                              ".*choose another ops.port"):
            taken.start()
    finally:
        taken.close()
    bot.close()
    with pytest.raises(urllib.error.URLError):  # closed with the bot
        urllib.request.urlopen(f"{bot.ops.url}/healthz", timeout=2)  # noqa: S310


def test_http_mode_serves_health_beside_slack_events_and_is_unready_while_slack_does_not_answer(
        emulator: Emulator, http_bot: HttpBot) -> None:
    base = http_bot.url.removesuffix("/slack/events")
    assert get(f"{base}/healthz") == (200, "text/plain", "ok\n")
    wait_readyz(base, 200, 10)
    assert emulator.slash("casey", "incident-rollback", "help").wait().http_status == 200  # Bolt asks auth.test
    emulator.outage(["chat.postMessage", "auth.test"], 120, status=503, retry_after=None)
    emulator.slash("casey", "incident-rollback", "start slack is down").wait()  # acked; the panel's post fails
    _, body = wait_readyz(base, 503, 30)
    assert set(body["not_ready"]) == {"slack"} and "no answer from Slack" in body["not_ready"]["slack"], body
    metrics = get(f"{base}/metrics")[2]
    assert 'rollback_bot_slack_api_calls_total{method="chat.postMessage",result="http_503"}' in metrics
    assert 'rollback_bot_slack_api_retries_total{method="chat.postMessage",reason="server_error"}' in metrics
    assert 'rollback_bot_requests_total{kind="command",name="start"} 1.0' in metrics
    emulator.outage(["chat.postMessage", "auth.test"], 0)
    wait_readyz(base, 200, 30)  # the probe's auth.test was answered
