"""The scheduled health checks reuse kept-alive connections (``probe_many``), against a real HTTP/1.1 server on
loopback that counts the connections it accepts: reuse must not cost correctness, neither with hung endpoints
nor with a server that drops a kept-alive connection as it is reused."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from bot.ops.probe import HttpCheck, probe_many

BODY = b'{"status": "ok"}'


class CountingServer:
    """HTTP/1.1 on 127.0.0.1: ``/ok/<n>`` answers at once and keeps the connection alive, ``/hung/<n>`` never
    answers. With ``drop_reused`` it closes a connection, unanswered, when a second request arrives on it: a
    server whose idle timeout fires just as the client reuses the connection. With ``drop_first`` it drops every
request: a server that is going down. With ``only_first`` it drops every connection but the first, unanswered."""

    def __init__(self, *, drop_reused: bool = False, drop_first: bool = False, answer_every: int = 0,
                 only_first: bool = False) -> None:
        self.drop_reused = drop_reused
        self.drop_first = drop_first
        self.only_first = only_first
        self.answer_every = answer_every  # > 0: drop every new connection unanswered but each answer_every-th
        self.connections = 0
        self.answered = 0
        self.dropped = 0
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def start() -> None:
            self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=1024)
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(start())
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(10)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        requests = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                requests += 1
                if ((self.drop_reused and requests > 1) or self.drop_first or (self.only_first and number > 1)
                        or (self.answer_every and number % self.answer_every)):
                    self.dropped += 1
                    return
                if head.split(b" ")[1].startswith(b"/hung/"):
                    await asyncio.sleep(3600)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY))
                await writer.drain()
                self.answered += 1
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def server() -> Iterator[CountingServer]:
    running = CountingServer()
    yield running
    running.close()


@pytest.fixture
def dropping() -> Iterator[CountingServer]:
    running = CountingServer(drop_reused=True)
    yield running
    running.close()


def test_a_round_of_checks_on_one_host_reuses_its_connections(server: CountingServer) -> None:
    checks = [HttpCheck(server.url(f"/ok/{n}"), expect_json={"status": "ok"}) for n in range(200)]
    probes = probe_many(checks, timeout=5, concurrency=8)
    assert [p.ok for p in probes] == [True] * 200
    assert server.answered == 200
    # One connection per check would be 200; kept alive, the round needs no more than it runs at once.
    assert server.connections <= 8


def test_hung_endpoints_still_time_out_alone_while_the_others_reuse_connections(server: CountingServer) -> None:
    hung = set(range(0, 120, 12))  # 10 of 120, spread through the list
    checks = [HttpCheck(server.url(f"/{'hung' if n in hung else 'ok'}/{n}"), expect_status=200) for n in range(120)]
    # Fewer workers than hung checks: healthy checks queue behind hung ones and must not inherit their time.
    probes = probe_many(checks, timeout=0.5, concurrency=6)
    assert {n for n, p in enumerate(probes) if not p.ok} == hung
    assert all(probes[n].detail == "no answer within 0.5s (hung)" for n in hung)
    assert all(probes[n].seconds >= 0.5 for n in hung)  # given up at its own limit, never before
    assert all(p.status == 200 for n, p in enumerate(probes) if n not in hung)
    # A hung check's connection is closed when it is given up (never handed to the next check), so the
    # connections are the 6 first ones, one new per hung check and no more than that again for the rest.
    assert server.connections <= 6 + len(hung) + 6
    assert server.connections < 120 - len(hung)


def test_a_server_that_drops_reused_connections_gives_no_false_failure(dropping: CountingServer) -> None:
    # 8 checks open 8 connections; the 9th and 10th find 7 idle in the pool, each of which the server drops as it
    # is reused: a retry on another pooled connection would be dropped too, a retry on a new one is answered.
    checks = [HttpCheck(dropping.url(f"/ok/{n}"), expect_json={"status": "ok"}) for n in range(10)]
    probes = probe_many(checks, timeout=5, concurrency=8)
    assert all(p.ok for p in probes)
    retried = [p.detail for p in probes if p.detail != "status 200"]
    assert retried and set(retried) == {"status 200 (on a new connection: the kept-alive one was dropped)"}
    assert dropping.answered == 10
    assert dropping.dropped >= 1  # the server really dropped a reused connection: the retry was needed


def test_a_server_that_drops_every_request_is_reported_down_without_a_retry() -> None:
    closing = CountingServer(drop_reused=True, drop_first=True)
    try:
        probes = probe_many([HttpCheck(closing.url("/ok/1"))], timeout=5, concurrency=8)
    finally:
        closing.close()
    assert not probes[0].ok
    assert probes[0].detail.startswith("no answer: Server disconnected")
    assert closing.connections == 1  # a new connection that drops is the server's answer, not a hiccup


def test_a_dropped_kept_alive_connection_is_tried_again_once_and_no_more() -> None:
    """The second check reuses the first one's connection, which the server drops; the one retry, on a new
    connection, is dropped too: the check is down, and no third connection is tried."""
    failing = CountingServer(drop_reused=True, only_first=True)
    try:
        probes = probe_many([HttpCheck(failing.url(f"/ok/{n}")) for n in range(2)], timeout=5, concurrency=1)
    finally:
        failing.close()
    assert [p.ok for p in probes] == [True, False]
    assert probes[1].detail.startswith("no answer: Server disconnected")
    assert failing.connections == 2  # the first one, reused, and one new one for the retry
    assert failing.dropped == 2


def test_a_backend_whose_workers_die_under_most_requests_is_down_not_up_on_a_third_try() -> None:
    """Reported by review: a server that drops 2 of every 3 new connections (a pm2 cluster worker crashing on each
    request) read as up on every round, because each check was tried on three connections."""
    flaky = CountingServer(answer_every=3)
    try:
        rounds = [probe_many([HttpCheck(flaky.url("/ok/1"))], timeout=5, concurrency=8)[0] for _ in range(3)]
    finally:
        flaky.close()
    assert [p.ok for p in rounds] == [False, False, True]
    assert flaky.connections == 3  # one per round: nothing tried again
