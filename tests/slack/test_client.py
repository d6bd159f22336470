"""The Web API client's retries are bounded: what Slack asks is honoured when it fits, and a call never sleeps
for a minute on a worker; timeouts and every 5xx are retried, not only the two slack_sdk knows."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from slack_sdk.errors import SlackApiError

from bot.dev.emulator import Emulator
from bot.slack import web_client


@pytest.fixture
def slack() -> Iterator[Emulator]:
    emu = Emulator(rate_limits=False).start()
    yield emu
    emu.close()


def test_a_retry_after_longer_than_the_budget_is_not_slept_on(slack: Emulator) -> None:
    slack.outage("users.info", 60, 429, retry_after=30)
    client = web_client(slack.ws.app.bot_token, slack.api_url.rstrip("/") + "/")  # a 10 s budget
    started = time.monotonic()
    with pytest.raises(SlackApiError) as refused:
        client.users_info(user="U0COMMANDER")
    assert refused.value.response.status_code == 429
    assert time.monotonic() - started < 3  # slack_sdk's own handler would sleep 30 s, three times


def test_a_retry_after_that_fits_is_honoured(slack: Emulator) -> None:
    slack.fail_next("users.info", 429, retry_after=1)
    client = web_client(slack.ws.app.bot_token, slack.api_url.rstrip("/") + "/")
    started = time.monotonic()
    assert client.users_info(user="U0COMMANDER")["user"]["id"] == "U0COMMANDER"
    assert time.monotonic() - started >= 1


@pytest.mark.parametrize("status", [502, 504])
def test_a_gateway_error_is_retried(slack: Emulator, status: int) -> None:
    slack.fail_next("users.info", status)
    client = web_client(slack.ws.app.bot_token, slack.api_url.rstrip("/") + "/")
    assert client.users_info(user="U0COMMANDER")["ok"]


def test_a_read_timeout_is_retried() -> None:
    """The first request hangs past the client's timeout; the second is answered."""
    seen: list[str] = []
    release = threading.Event()

    class Slow(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server's name
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append(self.path)
            if len(seen) == 1:
                release.wait(5)  # longer than the client's 1 s timeout
            body = json.dumps({"ok": True, "url": "https://example.test/"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = web_client("xoxb-test", f"http://127.0.0.1:{server.server_port}/api/", timeout=1)
        assert client.auth_test()["ok"]
        assert len(seen) == 2
    finally:
        release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_post_whose_answer_timed_out_is_not_sent_again() -> None:
    """It may be in the channel already: a second attempt would post it twice (the keyed posts are looked up in
    the channel's history instead, see tests/faults/test_posts.py)."""
    seen: list[str] = []
    release = threading.Event()

    class Accepts(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server's name
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append(self.path)
            release.wait(5)  # longer than the client's 1 s timeout: Slack took it, the answer is late

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Accepts)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = web_client("xoxb-test", f"http://127.0.0.1:{server.server_port}/api/", timeout=1)
        with pytest.raises(TimeoutError):
            client.chat_postMessage(channel="C0STAKEHOLD", text="status update")
        assert seen == ["/api/chat.postMessage"]
    finally:
        release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
