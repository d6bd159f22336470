"""Idle memory: the resident set (VmRSS) of the bot waiting for its first command, against a bare Bolt app.

Three processes, both apps connected over Socket Mode to one emulated Slack (``bot.dev.emulator.Emulator``, in
this process), each started fresh every round:

- **the bot**: ``python -m bot.cli run`` as a user starts it, its config the runbook's defaults with the
  emulator's people and channels, SQLite state in the round's folder, the health URL and the core endpoint
  answered by a small HTTP server in this process, the scheduled health checks every ``--interval`` seconds
  (pm2 checks off: no pm2 daemon is started for this).
- **the bare Bolt app** (``bench/bare_socket_app.py``, a script of its own so that its process holds nothing of
  the benchmark's): ``slack_bolt.App`` whose only listener calls ``ack()``, with the
  bot's transport set-up (``SocketModeHandler``, concurrency 10, ping 5 s, a listener pool of 32 threads),
  its Web API client on the emulator.

Which app starts first alternates per round. Each is measured once it said it is connected and then used no
CPU for a while (``wait_idle``). Rows:

- *idle*: the bot before its first round of health checks (target: 1.5x the bare app, issue 22);
- *after a round of health checks*: the bot again, once its first scheduled round has asked the health
  server and gone quiet: what it holds for the rest of its life, since a round runs every minute (aiohttp is
  imported by the first one). The bare app does no checks: informational.

    .venv/bin/python bench/idle_memory.py [--rounds 5] [--interval 8]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import DEFAULT_ROUNDS, ROOT, Row, bot_first, print_table, ratio_row, wait_idle, write_results

NAME = "idle_memory"
TARGET = 1.5
BARE_APP = Path(__file__).resolve().with_name("bare_socket_app.py")
CONNECTED = "connected over Socket Mode"  # what the bot and bench/bare_socket_app.py say once connected
CLEARED = ("SLACK_", "ROLLBACK_CONFIG", "LOG_LEVEL", "STATE_STORE_URI")


class Health:
    """The target's health URL and core endpoint, healthy; counts the requests it answered."""

    def __init__(self) -> None:
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps({"status": "ok"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                outer.requests += 1

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def status(pid: int) -> dict[str, float]:
    """VmRSS and its anonymous and file-backed parts (MB), and the thread count, from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    mb = {key: int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "RssAnon", "RssFile")}
    return {"rss_mb": mb["VmRSS"], "anon_mb": mb["RssAnon"], "file_mb": mb["RssFile"],
            "threads": int(fields["Threads"])}


class App:
    """One app process, started and waited for until connected; stderr kept in a log file."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path, cwd: Path) -> None:
        self.log = log
        self.handle = log.open("w")
        self.process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=self.handle)

    def wait_connected(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while CONNECTED not in self.log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.log.name}: not connected\n{self.log.read_text()[-3000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.handle.close()


def one_round(index: int, tmp: Path, env: dict[str, str], health: Health, interval: float) -> dict[str, Any]:
    folder = tmp / f"round-{index}"
    folder.mkdir()
    base = f"http://127.0.0.1:{health.port}"
    config = {"store": {"data_dir": str(folder / "data")},
              "health": {"url": f"{base}/api/health"},
              "monitor": {"interval_s": interval, "jitter_s": 0, "pm2": False},
              "access": {"incident_channels": ["C0INCIDENT"], "commanders": ["@oncall"],
                         "approvers": ["@backend-leads"]}}
    (folder / "rollback.yml").write_text(json.dumps(config))  # JSON is YAML
    bot_argv = [sys.executable, "-m", "bot.cli", "run", "--config", str(folder / "rollback.yml")]
    bare_argv = [sys.executable, str(BARE_APP)]
    apps: dict[str, App] = {}
    try:
        order = ["bot", "bare"] if bot_first(index) else ["bare", "bot"]
        asked = health.requests
        for name in order:
            apps[name] = App(bot_argv if name == "bot" else bare_argv, env, folder / f"{name}.log", folder)
            apps[name].wait_connected()
        measured: dict[str, Any] = {"round": index, "order": ", ".join(order)}
        for name in order:
            wait_idle(apps[name].process.pid, quiet_s=1.0, limit_s=10)
            measured[name] = status(apps[name].process.pid)
        if health.requests != asked:
            raise RuntimeError("the bot checked the health URL before it was measured idle: raise --interval")
        deadline = time.monotonic() + interval + 60
        while health.requests <= asked:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no health checks within {interval + 60:.0f} s\n{apps['bot'].log.read_text()}")
            time.sleep(0.05)
        wait_idle(apps["bot"].process.pid, quiet_s=1.0, limit_s=10)
        measured["bot_checked"] = status(apps["bot"].process.pid)
        for key in ("bot", "bare", "bot_checked"):
            measured[f"{key}_rss_mb"] = measured[key]["rss_mb"]
        return measured
    finally:
        for app in apps.values():
            app.stop()


def run(rounds: int, interval: float) -> tuple[list[Row], list[dict[str, Any]]]:
    from bot.dev.emulator import Emulator

    results = []
    health = Health()
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as tmp, Emulator(ack_timeout=3.0) as emulator:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(CLEARED)}, **emulator.bot_env(),
               "PYTHONPATH": str(ROOT)}
        try:
            for index in range(rounds):
                r = one_round(index, Path(tmp), env, health, interval)
                results.append(r)
                print(f"  round {index} ({r['order']}): bot {r['bot_rss_mb']:.1f} MB, bare {r['bare_rss_mb']:.1f} MB "
                      f"({r['bot_rss_mb'] / r['bare_rss_mb']:.2f}x); after a round of checks "
                      f"{r['bot_checked_rss_mb']:.1f} MB ({r['bot_checked_rss_mb'] / r['bare_rss_mb']:.2f}x); "
                      f"threads {r['bot']['threads']}/{r['bare']['threads']}, after checks "
                      f"{r['bot_checked']['threads']}", flush=True)
        finally:
            health.close()
    rows = [
        ratio_row(NAME, "idle RSS, connected, before any command", results, "bot_rss_mb", "bare_rss_mb", "MB",
                  TARGET, fmt="{:.1f}", note="both over Socket Mode; libraries a command needs come with its first "
                                             "use"),
        ratio_row(NAME, "idle RSS after a round of health checks", results, "bot_checked_rss_mb", "bare_rss_mb",
                  "MB", None, fmt="{:.1f}", note="the bare app does no checks; a round runs every minute"),
    ]
    return rows, results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--interval", type=float, default=8.0,
                        help="monitor.interval_s of the bot: its first health checks come this long after start")
    args = parser.parse_args()
    started = time.monotonic()
    rows, results = run(args.rounds, args.interval)
    print_table(rows)
    path = write_results(NAME, rows=rows, config={"rounds": args.rounds, "interval_s": args.interval},
                         rounds={"idle": results}, started=started)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
