"""`make bench` / `make bench-full`: every benchmark, one after the other (each in its own process, alone on the
machine), then one table of every figure: the bot's value, the baseline's, the min/median/max of the per-round
ratio, the target and whether it holds, and for a row this run did not measure, the date and commit of the run
it comes from. Each benchmark writes ``bench/results/<name>.json`` (full tier) or ``<name>.quick.json`` (quick
tier) with every round.

    .venv/bin/python bench/run.py [--tier quick|full] [--only NAME ...]
    .venv/bin/python bench/run.py --results [--tier quick|full] [--markdown]   # the last results, nothing run

The quick tier (the default, under 10 minutes on a 2-core machine) runs each benchmark at fewer rounds or a
smaller size; the full tier adds the 1,000-tenant cleanup, 5 rounds everywhere and the tenant data's
informational rows. In the quick tier's table, the full tier's figures it does not measure are shown from the
last full run, marked with its date and commit.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, load_rows, markdown, print_table

BENCHMARKS = ["ack_latency", "rollback_overhead", "mttr", "health_checks", "tenant_data", "cleanup_scale",
              "idle_memory"]

#: Each benchmark's arguments per tier (absent: its defaults, which are the full tier's).
TIERS: dict[str, dict[str, list[str]]] = {
    "quick": {
        "ack_latency": ["--rounds", "3"],
        "rollback_overhead": ["--rounds", "3"],
        "idle_memory": ["--rounds", "3"],
        "health_checks": ["--rounds", "3", "--no-saturate"],
        "tenant_data": ["--rounds", "3", "--docs", "10000", "--small", "10", "--informational", "0"],
        "cleanup_scale": ["--rounds", "3", "--large", "200"],
        "mttr": ["--rounds", "3", "--modules", "150", "--documents", "10000", "--with-cache"],
    },
    "full": {
        "tenant_data": ["--informational", "3"],
        "mttr": ["--rounds", "5", "--with-cache", "--small-backup"],
    },
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tier", choices=sorted(TIERS), default="quick")
    parser.add_argument("--only", nargs="*", choices=BENCHMARKS, help="run only these")
    parser.add_argument("--results", action="store_true", help="print the table of bench/results/*.json, run nothing")
    parser.add_argument("--markdown", action="store_true", help="with --results: as a Markdown table")
    args = parser.parse_args()
    chosen = args.only or BENCHMARKS
    if args.results:
        rows = load_rows(chosen, args.tier)
        if args.markdown:
            print(markdown(rows))
        else:
            print_table(rows)
        return 0
    since = datetime.now(UTC).replace(microsecond=0)
    started = time.monotonic()
    failed = []
    env = {**os.environ, "BENCH_TIER": args.tier}
    for name in chosen:
        extra = TIERS[args.tier].get(name, [])
        print(f"== {name} {' '.join(extra)}".rstrip(), flush=True)
        began = time.monotonic()
        argv = [sys.executable, str(ROOT / "bench" / f"{name}.py"), *extra]
        done = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines = done.stdout.splitlines()
        progress = [line for line in lines if line.startswith("  ") and not line.startswith("  [")]
        print("\n".join(progress[:40]), flush=True)
        if done.returncode != 0:
            failed.append(name)
            print("\n".join(lines[-25:]), flush=True)
        print(f"   ({time.monotonic() - began:.0f} s, exit {done.returncode})", flush=True)
    print(f"\n{args.tier} tier: {time.monotonic() - started:.0f} s on this machine", flush=True)
    print()
    print_table(load_rows(chosen, args.tier, since))
    if failed:
        print(f"\nfailed to run: {', '.join(failed)} (their rows above, if any, are marked as from an earlier run)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
