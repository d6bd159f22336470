"""Ack and answer latency of `/rollback status` at 50 concurrent commands, Socket Mode and HTTP, against a bare
Bolt app.

Five processes, each doing one thing:

- **the load generator** (this file, ``--loadgen``): an asyncio process that only sends and times. In Socket
  Mode it *is* the WebSocket end of Slack: both apps connect to it, it sends each burst of 50 slash-command
  envelopes back to back and stamps each envelope right before it is written and each ack as it is read. In
  HTTP mode it POSTs 50 signed slash-command requests at once to the app's ``/slack/events`` and stamps the
  request and the response. Only a plain acknowledgement counts: an ack that carries a payload (Socket Mode)
  or a body (HTTP) is a failure, since that is how Bolt answers when it did *not* run the listener (e.g. it
  could not authorize). It serves nothing else (the bare app's one ``apps.connections.open`` at start-up is
  answered before any measurement).
- **the emulated Slack** (``--emulator``): ``bot.dev.emulator.Emulator(rate_limits=False)`` in its own process. It
  takes all of the bot's follow-up traffic (``response_url`` replies, ``chat.getPermalink``, posts), and
  made the slash-command payloads (valid ``response_url`` and ``trigger_id`` each). Its
  ``apps.connections.open`` hands the bot the load generator's WebSocket URL.
- **the bot**: ``python -m bot.cli run`` (Socket Mode) or ``serve`` (HTTP), its default config pointed at a
  sandbox target (git repo, pm2 apps online, tenant data on a local nx-27017), SQLite state, with an active
  incident so ``status`` has something to show. It answers every command after the ack (store claim, status,
  a private reply through ``response_url``).
- **the bare Bolt app** (``--serve-bare``): ``slack_bolt.App`` whose only listener calls ``ack()``, with the
  same transport set-up as the bot: Socket Mode through ``SocketModeHandler`` (concurrency 10, ping 5 s),
  HTTP through Bolt's WSGI adapter on waitress with 16 threads; the same listener pool size (32). Like the
  bot, its Web API client talks to the emulated Slack (Bolt's one ``auth.test``, made at the first command
  and then cached); only its Socket Mode client's ``apps.connections.open`` goes to the load generator.
  It logs warnings with their level, and the bench reports them like the bot's.

Both apps get the same environment (this process's, plus the emulator's variables) and run at the same time,
idle while the other is measured. A round has two parts:

- **with idle gaps**: ``--bursts`` bursts per app, alternating which app goes first (and the first app
  alternates from round to round); after each burst the load generator waits until the app (and, for the
  bot, the emulated Slack) has gone idle, so the next burst starts on a quiet machine. The bare app only acks.
- **back to back**: one app gets ``--bursts`` bursts one right after the other, then the other app (which
  goes first alternates per round). Each command's ``response_url`` points at the load generator, which stamps
  each answer as it arrives; a burst ends when all 50 answers are in and the next starts at once, while the
  app's follow-up work still runs. The bare app here acks and then answers through the same
  ``response_url`` with ``WebhookClient.send_dict`` (what the bot's ``respond()`` does), posting the bot's own
  answer (the last one the load generator received), byte for byte. The answer latency runs from the
  command's send stamp to its answer's arrival.

p50 and p99 are taken per round over the round's samples of each app; the ratio is per round.
Target: acks within 1.2x of the bare app at p50 and p99, answers within 1.3x, in both modes.

    .venv/bin/python bench/ack_latency.py [--rounds 5] [--bursts 4] [--n 50] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    DEFAULT_ROUNDS,
    ROOT,
    Row,
    percentile,
    print_table,
    ratio_row,
    wait_idle,
    write_results,
)

NAME = "ack_latency"
TARGET = 1.2
ANSWER_TARGET = 1.3
LISTENER_THREADS = 32  # the bot's listener pool (bot.app.services.LISTENER_THREADS)
#: What a log line of a problem looks like: the bot logs JSON lines, the bare app and the emulator plain text.
PROBLEMS = ("WARNING", "ERROR", '"level": "warning"', '"level": "error"', "Traceback", "refused")
#: Expected on both sides: a burst of 50 requests waits for waitress's 16 threads, and waitress warns of it.
EXPECTED = ("Task queue depth",)


# ---- the load generator -------------------------------------------------------------------------------------
def loadgen(port_file: Path) -> int:
    from aiohttp import ClientSession, ClientTimeout, TCPConnector, WSMsgType, web

    sockets: dict[str, web.WebSocketResponse] = {}
    pending: dict[str, asyncio.Future[float]] = {}
    answers: dict[str, asyncio.Future[float]] = {}
    canned: dict[str, Any] = {}
    session: dict[str, ClientSession] = {}

    async def respond(request: web.Request) -> web.Response:
        """A ``response_url`` post (the answer to a command): stamped as it is read, answered like Slack."""
        body = await request.read()
        now = time.perf_counter()
        key = request.match_info["key"]
        future = answers.pop(key, None)
        if future is not None and not future.done():
            future.set_result(now)
            if key.startswith("bot-"):  # what the bare app answers: the bot's own answer, byte for byte
                canned["body"] = json.loads(body)
        return web.Response(text="ok")

    async def canned_answer(request: web.Request) -> web.Response:
        if "body" not in canned:
            return web.Response(status=404, text="no answer from the bot yet")
        return web.json_response(canned["body"])

    def expect_answers(keys: list[str]) -> list[asyncio.Future[float]]:
        loop = asyncio.get_running_loop()
        futures = []
        for key in keys:
            future: asyncio.Future[float] = loop.create_future()
            answers[key] = future
            futures.append(future)
        return futures

    async def answered(sent: list[float], futures: list[asyncio.Future[float]]) -> tuple[list[float], list[str]]:
        """Wait for every answer; each one's latency from its command's send stamp."""
        if not futures:
            return [], []
        arrived = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), 60)
        latencies, failed = [], []
        for start, end in zip(sent, arrived, strict=True):
            if isinstance(end, BaseException):
                failed.append(f"answer: {end!r}")
            else:
                latencies.append((end - start) * 1000)
        return latencies, failed

    async def connections_open(request: web.Request) -> web.Response:
        host = request.host
        return web.json_response({"ok": True, "url": f"ws://{host}/link/bare"})

    async def link(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        sock = web.WebSocketResponse(autoping=True, heartbeat=None)
        await sock.prepare(request)
        await sock.send_str(json.dumps({"type": "hello", "num_connections": 1,
                                        "debug_info": {"host": "loadgen"}, "connection_info": {"app_id": "A0BENCH"}}))
        sockets[name] = sock
        try:
            async for msg in sock:
                if msg.type == WSMsgType.TEXT:
                    now = time.perf_counter()
                    answer = json.loads(msg.data)
                    future = pending.pop(str(answer.get("envelope_id")), None)
                    if future is None or future.done():
                        continue
                    if answer.get("payload"):  # Bolt answered for the app without running its listener
                        future.set_exception(RuntimeError(f"not a plain ack: {str(answer['payload'])[:200]}"))
                    else:
                        future.set_result(now)
                elif msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
        finally:
            if sockets.get(name) is sock:
                del sockets[name]
        return sock

    async def status(request: web.Request) -> web.Response:
        return web.json_response({"connected": sorted(sockets)})

    async def burst_socket(app: str, payloads: list[dict[str, Any]],
                           keys: list[str]) -> tuple[list[float], list[float], list[str]]:
        sock = sockets[app]
        expected = expect_answers(keys)
        loop = asyncio.get_running_loop()
        frames, futures = [], []
        for payload in payloads:
            envelope_id = os.urandom(8).hex()
            frames.append(json.dumps({"envelope_id": envelope_id, "type": "slash_commands", "payload": payload,
                                      "accepts_response_payload": True}))
            future: asyncio.Future[float] = loop.create_future()
            pending[envelope_id] = future
            futures.append(future)
        sent = []
        for frame in frames:
            sent.append(time.perf_counter())
            await sock.send_str(frame)
        acked = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), 30)
        latencies, failed = [], []
        for start, end in zip(sent, acked, strict=True):
            if isinstance(end, BaseException):
                failed.append(repr(end))
            else:
                latencies.append((end - start) * 1000)
        answer_ms, answer_failed = await answered(sent, expected)
        return latencies, answer_ms, failed + answer_failed

    async def burst_http(url: str, secret: str, payloads: list[dict[str, Any]],
                         keys: list[str]) -> tuple[list[float], list[float], list[str]]:
        client = session["http"]
        expected = expect_answers(keys)
        stamp = str(int(time.time()))
        prepared = []
        for payload in payloads:
            body = urllib.parse.urlencode(payload)
            signature = "v0=" + hmac.new(secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
            prepared.append((body.encode(), {"Content-Type": "application/x-www-form-urlencoded",
                                             "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}))

        async def one(body: bytes, headers: dict[str, str]) -> tuple[float, float, int, bytes]:
            start = time.perf_counter()
            async with client.post(url, data=body, headers=headers) as response:
                text = await response.read()
                return start, time.perf_counter(), response.status, text

        done = await asyncio.gather(*(one(b, h) for b, h in prepared), return_exceptions=True)
        latencies, failed, sent = [], [], []
        for item in done:
            if isinstance(item, BaseException):
                failed.append(repr(item))
                continue
            sent.append(item[0])
            if item[2] != 200:
                failed.append(f"HTTP {item[2]}")
            elif item[3]:  # Bolt answered for the app without running its listener
                failed.append(f"not a plain ack: {item[3][:200]!r}")
            else:
                latencies.append((item[1] - item[0]) * 1000)
        if failed:
            return latencies, [], failed
        answer_ms, answer_failed = await answered(sent, expected)
        return latencies, answer_ms, answer_failed

    async def burst(request: web.Request) -> web.Response:
        spec = await request.json()
        if spec["mode"] == "socket":
            latencies, answer_ms, failed = await burst_socket(spec["app"], spec["payloads"], spec["keys"])
        else:
            latencies, answer_ms, failed = await burst_http(spec["url"], spec["secret"], spec["payloads"],
                                                            spec["keys"])
        return web.json_response({"latencies_ms": latencies, "answers_ms": answer_ms, "failed": failed})

    async def main() -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/apps.connections.open", connections_open)
        app.router.add_get("/link/{name}", link)
        app.router.add_get("/control/status", status)
        app.router.add_post("/control/burst", burst)
        app.router.add_post("/respond/{key}", respond)
        app.router.add_get("/control/canned", canned_answer)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        assert site._server is not None
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        session["http"] = ClientSession(connector=TCPConnector(limit=0), timeout=ClientTimeout(total=30))
        port_file.write_text(json.dumps({"port": port}))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await session["http"].close()
        await runner.cleanup()

    asyncio.run(main())
    return 0


# ---- the emulated Slack -------------------------------------------------------------------------------------
def emulator(out: Path, ws_url: str, payloads: int) -> int:
    from bot.dev.emulator import Emulator

    class BenchEmulator(Emulator):
        def _m_apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
            self.connections_opened += 1
            return {"url": ws_url}

    emu = BenchEmulator(rate_limits=False).start()
    made = [emu.slash_payload("casey", "incident-rollback", "status") for _ in range(payloads)]
    start = emu.slash_payload("casey", "incident-rollback", "start ack latency benchmark")
    out.write_text(json.dumps({"env": emu.bot_env(), "payloads": made, "start": start}))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    emu.close()
    return 0


# ---- the bare Bolt app --------------------------------------------------------------------------------------
def serve_bare(mode: str, port: int) -> int:
    import logging
    from concurrent.futures import ThreadPoolExecutor

    from slack_bolt import Ack, App, Respond
    from slack_sdk.webhook import WebhookClient

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app = App(token=os.environ["SLACK_BOT_TOKEN"], signing_secret=os.environ["SLACK_SIGNING_SECRET"],
              token_verification_enabled=False, request_verification_enabled=mode == "http",
              listener_executor=ThreadPoolExecutor(max_workers=LISTENER_THREADS))
    app.client.base_url = os.environ["SLACK_API_URL"]

    answer: dict[str, Any] = {}

    def canned() -> dict[str, Any]:
        if not answer:  # the bot's own answer to `status`, fetched once from the load generator
            answer.update(_get(f"{os.environ['BENCH_LOADGEN_URL']}/control/canned"))
        return answer

    @app.command("/rollback")
    def ack_and_answer(ack: Ack, respond: Respond) -> None:
        ack()
        # a command whose answer the load generator waits for is answered, as the bot's respond() sends it; the
        # others (bursts with idle gaps) are only acknowledged, the bare app of that comparison
        url = respond.response_url or ""
        if url.startswith(os.environ["BENCH_LOADGEN_URL"]):
            WebhookClient(url=url).send_dict(canned())

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if mode == "socket":
        from slack_bolt.adapter.socket_mode import SocketModeHandler
        from slack_sdk import WebClient

        # Only apps.connections.open goes to the load generator (it hands out the bare app's WebSocket);
        # everything else Bolt calls (auth.test) goes to the emulated Slack, as the bot's calls do.
        connect = WebClient(base_url=os.environ["BENCH_CONNECT_URL"])
        handler = SocketModeHandler(app, os.environ["SLACK_APP_TOKEN"], web_client=connect, concurrency=10,
                                    ping_interval=5)
        handler.connect()
        stop.wait()
        handler.close()
        return 0
    from slack_bolt.adapter.wsgi import SlackRequestHandler
    from waitress.server import create_server

    server = create_server(SlackRequestHandler(app), host="127.0.0.1", port=port, threads=16, ident="bare-bolt")
    threading.Thread(target=server.run, daemon=True).start()
    stop.wait()
    server.close()
    return 0


# ---- the orchestrator ---------------------------------------------------------------------------------------
def _post(url: str, data: dict[str, Any], timeout: float = 60) -> Any:
    request = urllib.request.Request(url, data=json.dumps(data).encode(),  # noqa: S310 - loopback
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


def _get(url: str, timeout: float = 10) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


def _wait_file(path: Path, process: subprocess.Popen[bytes], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start (exit {process.poll()})")
        time.sleep(0.05)
    return json.loads(path.read_text())


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(port: int, process: subprocess.Popen[bytes], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/slack/events", timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answers (404/405 for a GET): it is up
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start listening (exit {process.poll()})") from None
            time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Mode:
    """One delivery mode: the emulated Slack, the bot and the bare app running, ready for bursts."""

    def __init__(self, mode: str, tmp: Path, config_base: dict[str, Any], loadgen_url: str, payloads: int) -> None:
        import yaml

        self.mode, self.loadgen = mode, loadgen_url
        self.procs: list[subprocess.Popen[bytes]] = []
        logs = self.logs = tmp / f"logs-{mode}"
        logs.mkdir()
        out = tmp / f"emulator-{mode}.json"
        host = loadgen_url.split("://", 1)[1]
        self.emulator = self._spawn([sys.executable, __file__, "--emulator", str(out), "--ws-url",
                                     f"ws://{host}/link/bot", "--payloads", str(payloads)], os.environ.copy(),
                                    logs / "emulator.log")
        info = _wait_file(out, self.emulator, "the emulated Slack")
        self.slack_env: dict[str, str] = info["env"]
        self.payloads: list[dict[str, Any]] = info["payloads"]
        self.start_payload: dict[str, Any] = info["start"]
        env = {**os.environ, **self.slack_env, "BENCH_LOADGEN_URL": loadgen_url}
        self.sent = 0
        config = {**config_base, "store": {"data_dir": str(tmp / f"data-{mode}")}}
        path = tmp / f"rollback-{mode}.yml"
        path.write_text(yaml.safe_dump(config))
        self.bot_port = self.bare_port = 0
        if mode == "socket":
            bare_env = {**env, "BENCH_CONNECT_URL": f"{loadgen_url}/api/"}
            self.bare = self._spawn([sys.executable, __file__, "--serve-bare", "socket"], bare_env, logs / "bare.log")
            self._wait_connected("bare")
            self.bot = self._spawn([sys.executable, "-m", "bot.cli", "--config", str(path), "run"], env,
                                   logs / "bot.log")
            self._wait_connected("bot")
        else:
            self.bare_port, self.bot_port = _free_port(), _free_port()
            self.bare = self._spawn([sys.executable, __file__, "--serve-bare", "http", "--port", str(self.bare_port)],
                                    env, logs / "bare.log")
            self.bot = self._spawn([sys.executable, "-m", "bot.cli", "--config", str(path), "serve", "--port",
                                    str(self.bot_port)], env, logs / "bot.log")
            _wait_http(self.bare_port, self.bare, "the bare app")
            _wait_http(self.bot_port, self.bot, "the bot")

    def _spawn(self, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        handle = log.open("wb")
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
        self.procs.append(process)
        return process

    def _wait_connected(self, app: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while app not in _get(f"{self.loadgen}/control/status")["connected"]:
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                raise RuntimeError(f"the {app} app did not connect over Socket Mode")
            time.sleep(0.05)

    def take(self, n: int) -> list[dict[str, Any]]:
        taken, self.payloads = self.payloads[:n], self.payloads[n:]
        if len(taken) < n:
            raise RuntimeError("ran out of slash-command payloads")
        return taken

    def burst(self, app: str, payloads: list[dict[str, Any]], *, answers: bool = True,
              settle: bool = True) -> tuple[list[float], list[float]]:
        """One burst; with ``answers``, each command's answer goes to the load generator's ``response_url``
        and the burst ends when all have come; with ``settle``, then waits until the app has gone quiet.
        The ack latencies and the answer latencies (from the command's send), in ms."""
        keys = []
        if answers:
            for payload in payloads:
                self.sent += 1
                keys.append(f"{app}-{self.sent}")
                payload["response_url"] = f"{self.loadgen}/respond/{keys[-1]}"
        port = self.bot_port if app == "bot" else self.bare_port
        spec = {"mode": self.mode, "app": app, "payloads": payloads, "keys": keys,
                "url": f"http://127.0.0.1:{port}/slack/events", "secret": self.slack_env["SLACK_SIGNING_SECRET"]}
        answer = _post(f"{self.loadgen}/control/burst", spec, timeout=120)
        if answer["failed"]:
            raise RuntimeError(f"{len(answer['failed'])} command(s) to the {app} were not acknowledged or "
                               f"answered: {answer['failed'][:3]}")
        if settle:
            self.settle(app)
        return list(answer["latencies_ms"]), list(answer["answers_ms"])

    def settle(self, app: str) -> None:
        """Wait until the app (and, for the bot, the emulated Slack taking its replies) has gone quiet."""
        pids = [self.bot.pid, self.emulator.pid] if app == "bot" else [self.bare.pid]
        for pid in pids:
            wait_idle(pid)

    def close(self) -> list[str]:
        """Stop everything; the warnings and errors the bot, the emulated Slack and the bare app logged."""
        for process in (self.bot, self.bare, self.emulator):
            _stop(process)
        problems = []
        for name in ("bot.log", "emulator.log", "bare.log"):
            for line in (self.logs / name).read_text(errors="replace").splitlines():
                if any(word in line for word in PROBLEMS) and not any(word in line for word in EXPECTED):
                    problems.append(f"{name}: {line[:300]}")
        return problems


def measure_mode(mode: str, tmp: Path, config: dict[str, Any], loadgen_url: str, rounds: int, bursts: int,
                 n: int, warmup: int) -> list[dict[str, Any]]:
    per_app = 1 + (warmup + rounds * bursts * 2) * n
    running = Mode(mode, tmp, config, loadgen_url, payloads=2 * per_app)
    try:
        running.burst("bot", [running.start_payload], answers=False)  # an active incident for `status` to show
        time.sleep(1.0)
        running.settle("bot")
        for _ in range(warmup):  # connections, thread pools, caches; the bot answers first: the bare app's answer
            running.burst("bot", running.take(n))
            running.burst("bare", running.take(n))
        results = []
        for index in range(rounds):
            # (key, app) -> samples: "gap" bursts with the app gone idle in between, "b2b" back to back
            samples: dict[tuple[str, str], list[float]] = {}
            orders = []
            for b in range(bursts):
                first, second = ("bot", "bare") if (index + b) % 2 == 0 else ("bare", "bot")
                orders.append(f"{first},{second}")
                for app in (first, second):  # as before answers were measured: the bare app only acks
                    acks, _ = running.burst(app, running.take(n), answers=False)
                    samples.setdefault(("gap_ack", app), []).extend(acks)
            # back to back: one app's bursts one right after the other (the next as soon as the last answer is
            # in, its follow-up work still running), then the other app's; which goes first alternates
            b2b = ("bot", "bare") if index % 2 == 0 else ("bare", "bot")
            for app in b2b:
                for _ in range(bursts):
                    acks, answers = running.burst(app, running.take(n), settle=False)
                    samples.setdefault(("b2b_ack", app), []).extend(acks)
                    samples.setdefault(("b2b_answer", app), []).extend(answers)
                running.settle(app)
            row: dict[str, Any] = {"round": index, "order": orders, "back_to_back_order": ",".join(b2b)}
            for (key, app), values in samples.items():
                prefix = f"{app}_p" if key == "gap_ack" else f"{app}_{key}_p"  # gap acks: the keys they always had
                row[f"{prefix}50_ms"] = percentile(values, 50)
                row[f"{prefix}99_ms"] = percentile(values, 99)
                row[f"{prefix.removesuffix('_p')}_max_ms"] = max(values)
                row[f"{prefix.removesuffix('_p')}_samples_ms"] = [round(v, 3) for v in values]
            results.append(row)
            print(f"  {mode} round {index}: acks with gaps p50 {row['bot_p50_ms']:.1f}/{row['bare_p50_ms']:.1f}, "
                  f"back to back p50 {row['bot_b2b_ack_p50_ms']:.1f}/{row['bare_b2b_ack_p50_ms']:.1f} p99 "
                  f"{row['bot_b2b_ack_p99_ms']:.1f}/{row['bare_b2b_ack_p99_ms']:.1f}; answers back to back p50 "
                  f"{row['bot_b2b_answer_p50_ms']:.1f}/{row['bare_b2b_answer_p50_ms']:.1f} ms (bot/bare)",
                  flush=True)
        return results
    finally:
        problems = running.close()
        if problems:
            print(f"  {mode}: the bot, the emulated Slack or the bare app logged {len(problems)} warning(s)/error(s):",
                  flush=True)
            for line in problems[:10]:
                print(f"    {line}", flush=True)


def run(rounds: int, bursts: int, n: int, warmup: int) -> list[Row]:
    from bot.dev.localmongo import LocalMongo
    from bot.dev.sandbox import create_sandbox, start_apps, stop_apps

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ack-bench-") as name:
        tmp = Path(name)
        with LocalMongo(tmp / "mongo") as mongo:
            sandbox = create_sandbox(tmp / "target", mongo_uri=mongo.uri, local_server=True)
            loadgen_proc = None
            try:
                start_apps(sandbox)  # the bot's scheduled checks find the target up, as in production
                config = {**sandbox.config(),
                          "access": {"incident_channels": ["C0INCIDENT"], "commanders": ["@oncall"],
                                     "approvers": ["@backend-leads"]},
                          "slack": {"stakeholder_channel": "C0STAKEHOLD"}}
                port_file = tmp / "loadgen.json"
                loadgen_proc = subprocess.Popen([sys.executable, __file__, "--loadgen", str(port_file)], cwd=ROOT,
                                                stdout=(tmp / "loadgen.log").open("wb"), stderr=subprocess.STDOUT)
                url = f"http://127.0.0.1:{_wait_file(port_file, loadgen_proc, 'the load generator')['port']}"
                by_mode = {mode: measure_mode(mode, tmp, config, url, rounds, bursts, n, warmup)
                           for mode in ("socket", "http")}
            finally:
                _stop(loadgen_proc)
                stop_apps(sandbox)
    rows = []
    label = {"socket": "Socket Mode", "http": "HTTP"}
    for mode, results in by_mode.items():
        for q in ("p50", "p99"):
            rows.append(ratio_row(NAME, f"{label[mode]} ack {q}, {n} concurrent", results, f"bot_{q}_ms",
                                  f"bare_{q}_ms", "ms", TARGET, fmt="{:.1f}",
                                  note="bursts with the app gone idle in between" if q == "p50" else ""))
        for q in ("p50", "p99"):
            rows.append(ratio_row(NAME, f"{label[mode]} ack {q}, back to back", results, f"bot_b2b_ack_{q}_ms",
                                  f"bare_b2b_ack_{q}_ms", "ms", TARGET, fmt="{:.1f}",
                                  note=f"{bursts} bursts of {n} one after the other, each as soon as the last "
                                  "answer is in" if q == "p50" else ""))
        for q in ("p50", "p99"):
            rows.append(ratio_row(NAME, f"{label[mode]} answer {q}, back to back", results,
                                  f"bot_b2b_answer_{q}_ms", f"bare_b2b_answer_{q}_ms", "ms", ANSWER_TARGET,
                                  fmt="{:.1f}", note="from the command's send to its response_url post's arrival; the "
                                  "bare app acks, then posts the bot's own answer the same way" if q == "p50" else ""))
    write_results(NAME, rows=rows, config={"rounds": rounds, "bursts_per_round": bursts, "concurrency": n,
                                           "warmup_bursts": warmup, "command": "/rollback status",
                                           "listener_threads": LISTENER_THREADS},
                  rounds=by_mode, started=started)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--bursts", type=int, default=4, help="bursts per app in each round")
    parser.add_argument("--n", type=int, default=50, help="concurrent commands in a burst")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="a short smoke run (2 rounds of 1 burst)")
    parser.add_argument("--loadgen", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--emulator", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--ws-url", help=argparse.SUPPRESS)
    parser.add_argument("--payloads", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--serve-bare", choices=["socket", "http"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loadgen:
        return loadgen(args.loadgen)
    if args.emulator:
        return emulator(args.emulator, args.ws_url, args.payloads)
    if args.serve_bare:
        return serve_bare(args.serve_bare, args.port)
    if args.quick:
        args.rounds, args.bursts, args.warmup = 2, 1, 1
    print_table(run(args.rounds, args.bursts, args.n, args.warmup))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
