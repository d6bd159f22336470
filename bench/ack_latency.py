"""Ack latency of `/rollback status` under concurrency, against a bare Bolt app that only acks.

Both run over the emulator's Socket Mode in the same run on the same machine; we report p50/p99
and the ratio. Target: bot p99 within 2x of the bare-Bolt p99 at 50 concurrent commands.

    .venv/bin/python bench/ack_latency.py [--n 50] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from slack_bolt import Ack, App  # noqa: E402
from slack_bolt.adapter.socket_mode import SocketModeHandler  # noqa: E402

from bot.emulator import Emulator  # noqa: E402
from bot.sandbox import create_sandbox  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def burst(emulator: Emulator, n: int, text: str) -> list[float]:
    deliveries = [emulator.slash("casey", "incident-rollback", text) for _ in range(n)]
    latencies = []
    for delivery in deliveries:
        delivery.wait(30)
        if delivery.failed or delivery.ack_latency is None:
            raise RuntimeError(f"a command was not acknowledged: {delivery.failed}")
        latencies.append(delivery.ack_latency * 1000)
    return latencies


def wait_connected(emulator: Emulator, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while emulator.socket_count < 1:
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the app under test did not connect over Socket Mode")
        time.sleep(0.05)


def measure(app: str, n: int, rounds: int) -> list[float]:
    """Run the app under test as its own process (as a real bot is), against an emulator in this one."""
    with Emulator(ack_timeout=3.0) as emulator, tempfile.TemporaryDirectory(prefix="ack-bench-") as tmp:
        env = {**os.environ, **emulator.bot_env(), "LOG_LEVEL": "warning"}
        if app == "bare-bolt":
            command = [sys.executable, __file__, "--serve-bare"]
        else:
            sandbox = create_sandbox(Path(tmp) / "target")
            config = Path(tmp) / "rollback.yml"
            config.write_text(yaml.safe_dump({
                "target": {"repo_path": str(sandbox.repo), "rollback_target": sandbox.good_commit[:7]},
                "access": {"incident_channels": ["C0INCIDENT"], "commanders": ["@oncall"]},
                "store": {"data_dir": str(Path(tmp) / "data")},
            }))
            command = [sys.executable, "-m", "bot.cli", "--config", str(config), "run"]
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        try:
            wait_connected(emulator, process)
            if app != "bare-bolt":
                emulator.slash("casey", "incident-rollback", "start bench").wait(10)  # a real incident to show
            burst(emulator, 5, "status")  # warm up connections and thread pools
            time.sleep(0.5)
            latencies: list[float] = []
            for _ in range(rounds):
                latencies += burst(emulator, n, "status")
                time.sleep(0.3)
            return latencies
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def serve_bare() -> int:
    """The baseline: a Bolt app over the same Socket Mode adapter whose only listener acks."""
    app = App(token=os.environ["SLACK_BOT_TOKEN"], token_verification_enabled=False,
              request_verification_enabled=False)
    app.client.base_url = os.environ["SLACK_API_URL"]

    @app.command("/rollback")
    def only_ack(ack: Ack) -> None:
        ack()

    handler = SocketModeHandler(app, os.environ["SLACK_APP_TOKEN"], web_client=app.client)
    handler.connect()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    handler.close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=50, help="concurrent commands per burst")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        return serve_bare()
    base = measure("bare-bolt", args.n, args.rounds)
    ours = measure("rollback-bot", args.n, args.rounds)
    rows = {"bare-bolt": base, "rollback-bot": ours}
    result = {"concurrency": args.n, "rounds": args.rounds, "unit": "ms"}
    print(f"{'app':<14}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}{'mean ms':>10}")
    for name, values in rows.items():
        stats = {"p50": percentile(values, 50), "p99": percentile(values, 99), "max": max(values),
                 "mean": statistics.fmean(values), "samples": len(values)}
        result[name] = stats
        print(f"{name:<14}{stats['p50']:>10.1f}{stats['p99']:>10.1f}{stats['max']:>10.1f}{stats['mean']:>10.1f}")
    ratio = result["rollback-bot"]["p99"] / result["bare-bolt"]["p99"]  # type: ignore[index]
    result["p99_ratio"] = ratio
    result["target"] = "p99 ratio <= 2.0"
    print(f"p99 ratio rollback-bot / bare-bolt: {ratio:.2f} (target <= 2.0)")
    out = ROOT / "bench" / "results" / "ack_latency.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
