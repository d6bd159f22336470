"""Ack latency of `/rollback status` under concurrency, against a bare Bolt app that only acks.

Both run over the emulator's Socket Mode in the same run on the same machine; we report p50/p99
and the ratio. Target: bot p99 within 2x of the bare-Bolt p99 at 50 concurrent commands.

    .venv/bin/python bench/ack_latency.py [--n 50] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from slack_bolt import Ack, App  # noqa: E402
from slack_bolt.adapter.socket_mode import SocketModeHandler  # noqa: E402

from bot.emulator import Emulator  # noqa: E402
from bot.runtime import socket_mode_bot  # noqa: E402
from bot.sandbox import create_sandbox  # noqa: E402
from tests.conftest import make_settings  # noqa: E402


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


def measure(setup: Callable[[Emulator], Callable[[], None]], n: int, rounds: int) -> list[float]:
    with Emulator(ack_timeout=3.0) as emulator:
        teardown = setup(emulator)
        try:
            burst(emulator, 5, "status")  # warm up connections and thread pools
            time.sleep(0.5)
            latencies: list[float] = []
            for _ in range(rounds):
                latencies += burst(emulator, n, "status")
                time.sleep(0.3)
            return latencies
        finally:
            teardown()


def bare_bolt(emulator: Emulator) -> Callable[[], None]:
    app = App(client=None, token=emulator.ws.app.bot_token, token_verification_enabled=False,
              request_verification_enabled=False)
    app.client.base_url = emulator.api_url

    @app.command("/rollback")
    def only_ack(ack: Ack) -> None:
        ack()

    handler = SocketModeHandler(app, emulator.ws.app.app_token, web_client=app.client)
    handler.connect()
    return handler.close


def rollback_bot(emulator: Emulator) -> Callable[[], None]:
    tmp = tempfile.TemporaryDirectory(prefix="ack-bench-")
    sandbox = create_sandbox(Path(tmp.name) / "target")
    bot = socket_mode_bot(make_settings(emulator, sandbox, Path(tmp.name) / "data")).start()
    emulator.slash("casey", "incident-rollback", "start bench").wait(10)  # status has a real incident to show

    def teardown() -> None:
        bot.close()
        tmp.cleanup()

    return teardown


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=50, help="concurrent commands per burst")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    base = measure(bare_bolt, args.n, args.rounds)
    ours = measure(rollback_bot, args.n, args.rounds)
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
