"""Scheduled checks at scale: 200 endpoints of which 10 hang, on a 10 s interval.

One real HTTP server answers 190 endpoints at once and lets 10 hang (they never answer in time).
In the same run, two schedulers fire every 10 s, each for the same number of rounds:

- the bot: APScheduler calling ``Monitor.measure`` (every check on its own worker, each with its own
  time limit, so the hung ones cost one time limit in parallel, not one each);
- the baseline: a plain sequential loop over the same 200 URLs with the same per-request time limit.

Reported for both: schedule lag (how late each round started after its due time), round duration and
checks per second; the ratio bot/baseline of each. Writes ``bench/results/health_checks.json``.

    .venv/bin/python bench/health_checks.py [--rounds 3] [--interval 10] [--timeout 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.config import parse_runbook  # noqa: E402
from bot.domain.monitor import Monitor  # noqa: E402
from bot.ops.health import probe  # noqa: E402

ENDPOINTS, HUNG = 200, 10


class Server:
    def __init__(self, hang_s: float) -> None:
        stop = self.stop = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                number = int(self.path.rsplit("/", 1)[-1]) if self.path.startswith("/e/") else 0
                if number and number <= HUNG:
                    stop.wait(hang_s)
                body = b'{"status":"ok"}'
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.request_queue_size = 512
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def monitor_for(url: str, timeout: float) -> Monitor:
    config = parse_runbook({
        "health": {"url": f"{url}/api/health", "core_endpoints": [{"path": f"/e/{i}"} for i in range(1, ENDPOINTS)]},
        "thresholds": {"backend_response_s": timeout},
        "monitor": {"check_timeout_s": timeout, "pm2": False, "max_parallel": 256},
    })

    return Monitor(SimpleNamespace(config=config))  # measuring needs only the config


def run_schedule(rounds: int, interval: float, job: Any) -> list[dict[str, float]]:
    """Fire ``job`` every ``interval`` seconds like a scheduler whose rounds may not overlap."""
    rows: list[dict[str, float]] = []
    first = time.monotonic() + 0.2
    next_due = first
    for index in range(rounds):
        due = first + index * interval
        start = max(time.monotonic(), next_due)
        time.sleep(max(0.0, start - time.monotonic()))
        started = time.monotonic()
        checks = job()
        ended = time.monotonic()
        rows.append({"lag_s": started - due, "duration_s": ended - started, "checks": checks,
                     "checks_per_s": checks / (ended - started)})
        next_due = max(due + interval, ended)
    return rows


def run_apscheduler(rounds: int, interval: float, monitor: Monitor) -> list[dict[str, float]]:
    """The bot's way: APScheduler's interval trigger (coalescing, one instance at a time) → measure."""
    from apscheduler.events import EVENT_JOB_EXECUTED
    from apscheduler.schedulers.background import BackgroundScheduler

    rows: list[dict[str, float]] = []
    done = threading.Event()
    starts: dict[str, float] = {}

    def job() -> int:
        started = time.time()
        results = monitor.measure(datetime.now(UTC))
        starts["last"] = started
        rows.append({"started": started, "duration_s": time.time() - started, "checks": len(results),
                     "ok": sum(r.ok for r in results)})
        return len(results)

    def executed(event: Any) -> None:
        rows[-1]["lag_s"] = starts["last"] - event.scheduled_run_time.timestamp()
        if len(rows) >= rounds:
            done.set()

    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    scheduler.add_listener(executed, EVENT_JOB_EXECUTED)
    scheduler.add_job(job, "interval", seconds=interval, next_run_time=datetime.now(UTC))
    scheduler.start()
    done.wait(rounds * interval + 60)
    scheduler.shutdown(wait=True)
    for row in rows:
        row["checks_per_s"] = row["checks"] / row["duration_s"]
    return rows[:rounds]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args()
    server = Server(hang_s=args.timeout * 5)
    urls = [f"{server.url}/api/health"] + [f"{server.url}/e/{i}" for i in range(1, ENDPOINTS)]
    try:
        monitor = monitor_for(server.url, args.timeout)
        bot = run_apscheduler(args.rounds, args.interval, monitor)
        monitor.close()

        def sequential() -> int:
            for url in urls:
                probe(url, timeout=args.timeout)
            return len(urls)

        baseline = run_schedule(args.rounds, args.interval, sequential)
    finally:
        server.close()

    def summary(rows: list[dict[str, float]]) -> dict[str, float]:
        return {"max_lag_s": round(max(r["lag_s"] for r in rows), 3),
                "median_duration_s": round(statistics.median(r["duration_s"] for r in rows), 3),
                "median_checks_per_s": round(statistics.median(r["checks_per_s"] for r in rows), 1)}

    result = {
        "endpoints": ENDPOINTS, "hung": HUNG, "interval_s": args.interval, "timeout_s": args.timeout,
        "rounds": args.rounds, "bot": summary(bot), "baseline_sequential": summary(baseline),
        "bot_rounds": bot, "baseline_rounds": baseline,
    }
    result["ratio_checks_per_s"] = round(result["bot"]["median_checks_per_s"]
                                         / result["baseline_sequential"]["median_checks_per_s"], 2)
    result["ratio_duration"] = round(result["bot"]["median_duration_s"]
                                     / result["baseline_sequential"]["median_duration_s"], 3)
    out = ROOT / "bench" / "results" / "health_checks.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    b, s = result["bot"], result["baseline_sequential"]
    print(f"bot:      round {b['median_duration_s']:.2f}s, {b['median_checks_per_s']:.0f} checks/s, "
          f"max lag {b['max_lag_s']:.2f}s")
    print(f"baseline: round {s['median_duration_s']:.2f}s, {s['median_checks_per_s']:.0f} checks/s, "
          f"max lag {s['max_lag_s']:.2f}s")
    print(f"ratio (bot/baseline): checks/s {result['ratio_checks_per_s']}, round duration {result['ratio_duration']}")


if __name__ == "__main__":
    main()
