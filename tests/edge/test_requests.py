"""Slack's edge over HTTP: forged, stale, future, malformed and replayed requests are refused before anything
reads the body, and the body parser reads Slack's forms as Slack sends them."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bot.app import HttpBot
from bot.dev.emulator import Emulator
from tests.conftest import COMMANDER, INCIDENT


class Listener:
    """A local HTTP server standing for an attacker's `response_url`: it must never be called."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's name
                outer.hits.append(self.path)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    made = Listener()
    yield made
    made.close()


def post(bot: HttpBot, body: str, headers: dict[str, str], content_type: str) -> int:
    request = urllib.request.Request(bot.url, data=body.encode(), method="POST",  # noqa: S310 - the bot under test
                                     headers={"Content-Type": content_type, **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def signed(secret: str, body: str, timestamp: str) -> dict[str, str]:
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": f"v0={digest}"}


def forged_command(emulator: Emulator, listener: Listener, text: str = "start forged") -> str:
    payload = emulator.slash_payload("casey", "incident-rollback", text)
    payload["response_url"] = listener.url  # an outbound request the attacker would choose
    return urllib.parse.urlencode(payload)


FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize("headers", [
    {"X-Slack-Request-Timestamp": "abc", "X-Slack-Signature": "v0=" + "0" * 64},
    {"X-Slack-Request-Timestamp": "", "X-Slack-Signature": "v0=" + "0" * 64},
    {"X-Slack-Signature": "v0=" + "0" * 64},
    {"X-Slack-Request-Timestamp": "1e9", "X-Slack-Signature": "v0=" + "0" * 64},
    {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v1=abc"},
    {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": ""},
    {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=" + "g" * 64},
], ids=["timestamp-abc", "timestamp-empty", "timestamp-missing", "timestamp-float", "signature-v1",
        "signature-empty", "signature-not-hex"])
def test_a_malformed_request_gets_401_and_the_bot_says_nothing_to_anyone(
        emulator: Emulator, http_bot: HttpBot, listener: Listener, headers: dict[str, str],
        caplog: pytest.LogCaptureFixture) -> None:
    body = forged_command(emulator, listener)
    with caplog.at_level(logging.INFO):
        assert post(http_bot, body, headers, FORM) == 401
    refusals = [r for r in caplog.records if "refused a request to /slack/events" in r.getMessage()]
    assert len(refusals) == 1 and refusals[0].levelno == logging.INFO and refusals[0].exc_info is None
    assert "forged" not in refusals[0].getMessage() and listener.url not in caplog.text  # the body is never logged
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert listener.hits == [] and emulator.ws.ephemerals_for(COMMANDER) == []
    assert emulator.ws.channel_messages(INCIDENT) == []
    assert not [c for c, _ in emulator.ws.calls if c.startswith("chat.")]  # no outbound call of any kind


@pytest.mark.parametrize("skew", [-301, 301, -86_400, 86_400], ids=["stale", "future", "day-old", "day-ahead"])
def test_a_stale_or_future_signature_is_refused(emulator: Emulator, http_bot: HttpBot, listener: Listener,
                                                skew: int) -> None:
    body = forged_command(emulator, listener)
    headers = signed(emulator.ws.app.signing_secret, body, str(int(time.time()) + skew))
    assert post(http_bot, body, headers, FORM) == 401
    assert listener.hits == [] and emulator.ws.channel_messages(INCIDENT) == []


def test_a_wrong_signature_and_an_oversized_body_are_refused(emulator: Emulator, http_bot: HttpBot,
                                                             listener: Listener) -> None:
    body = forged_command(emulator, listener)
    now = str(int(time.time()))
    assert post(http_bot, body, signed("not-the-secret", body, now), FORM) == 401
    huge = body + "&padding=" + "x" * (1 << 20)
    assert post(http_bot, huge, signed(emulator.ws.app.signing_secret, huge, now), FORM) == 413
    assert listener.hits == [] and emulator.ws.channel_messages(INCIDENT) == []


def test_a_replayed_request_is_refused_and_runs_once(emulator: Emulator, http_bot: HttpBot) -> None:
    payload = emulator.slash_payload("casey", "incident-rollback", "start captured once")
    body = urllib.parse.urlencode(payload)
    headers = signed(emulator.ws.app.signing_secret, body, str(int(time.time())))
    assert post(http_bot, body, headers, FORM) == 200
    emulator.ws.wait_for(lambda: http_bot.services.store.get_incident("RB-0001"), 10, "the incident")
    for _ in range(2):
        assert post(http_bot, body, headers, FORM) == 401  # the very same signed request, seconds later
    assert len(http_bot.services.store.incidents_in_channel(INCIDENT)) == 1


def test_a_replay_that_reaches_another_replica_still_runs_once(emulator: Emulator, http_bot: HttpBot) -> None:
    """A replica that never saw the signature lets it through, then finds its claim taken in the shared store."""
    payload = emulator.slash_payload("casey", "incident-rollback", "start captured once")
    body = urllib.parse.urlencode(payload)
    headers = signed(emulator.ws.app.signing_secret, body, str(int(time.time())))
    assert post(http_bot, body, headers, FORM) == 200
    emulator.ws.wait_for(lambda: http_bot.services.store.get_incident("RB-0001"), 10, "the incident")
    http_bot.verifier._seen.clear()  # as if this request reached a second replica with its own memory
    assert post(http_bot, body, headers, FORM) == 200
    emulator.ws.wait_for(lambda: any(e.action == "incident.started" for e in
                                     http_bot.services.store.audit_events()), 10, "the first start recorded")
    assert [e.action for e in http_bot.services.store.audit_events()].count("incident.started") == 1
    assert len(emulator.ws.ephemerals_for(COMMANDER)) == 0  # the repeat was dropped silently, not refused aloud


@pytest.mark.parametrize("text", ["start payload service down", "start the payload= was empty"])
def test_a_command_whose_text_contains_payload_is_read_in_http_mode(emulator: Emulator, http_bot: HttpBot,
                                                                    text: str) -> None:
    emulator.slash("casey", "incident-rollback", text).wait()
    incident = emulator.ws.wait_for(lambda: http_bot.services.store.get_incident("RB-0001"), 10, "the incident")
    assert incident.reason == text.removeprefix("start ")


def test_status_payload_answers_instead_of_404(emulator: Emulator, http_bot: HttpBot) -> None:
    delivery = emulator.slash("casey", "incident-rollback", "status payload").wait()
    assert delivery.http_status == 200
    reply = emulator.ws.wait_for(lambda: [e for e in emulator.ws.ephemerals_for(COMMANDER)], 10, "the reply")[0]
    assert "is not an incident id" in reply.text


def test_interactions_still_parse_their_json_payload(emulator: Emulator, http_bot: HttpBot) -> None:
    emulator.slash("casey", "incident-rollback", "start").wait()
    panel = emulator.ws.wait_for(lambda: (i := http_bot.services.store.get_incident("RB-0001")) and i.panel_ts, 10,
                                 "the panel")
    emulator.click("casey", "incident-rollback", panel, "rollback_status").wait()
    status = emulator.ws.wait_for(lambda: [e for e in emulator.ws.ephemerals_for(COMMANDER) if "Timeline" in e.text],
                                  10, "the status")
    assert json.dumps("RB-0001")[1:-1] in status[0].text
