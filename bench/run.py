"""`make bench`: every benchmark, one after the other (each in its own process, alone on the machine), then one
table of every figure: the bot's value, the baseline's, the min/median/max of the per-round ratio, the
target and whether it holds. Each benchmark writes ``bench/results/<name>.json`` with every round.

    .venv/bin/python bench/run.py [--quick] [--only NAME ...]
    .venv/bin/python bench/run.py --results [--markdown]    # the last results' table, nothing run

``--quick`` is a smoke run (fewer rounds, smaller data): its numbers are not the benchmark's.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, load_rows, markdown, print_table

BENCHMARKS = ["ack_latency", "rollback_overhead", "health_checks", "tenant_data", "cleanup_scale"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run of each")
    parser.add_argument("--only", nargs="*", choices=BENCHMARKS, help="run only these")
    parser.add_argument("--results", action="store_true", help="print the table of bench/results/*.json, run nothing")
    parser.add_argument("--markdown", action="store_true", help="with --results: as a Markdown table")
    args = parser.parse_args()
    chosen = args.only or BENCHMARKS
    if args.results:
        rows = load_rows(chosen)
        if args.markdown:
            print(markdown(rows))
        else:
            print_table(rows)
        return 0
    started = time.monotonic()
    failed = []
    for name in chosen:
        print(f"== {name}", flush=True)
        began = time.monotonic()
        argv = [sys.executable, str(ROOT / "bench" / f"{name}.py")] + (["--quick"] if args.quick else [])
        done = subprocess.run(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines = done.stdout.splitlines()
        progress = [line for line in lines if line.startswith("  ") and not line.startswith("  [")]
        print("\n".join(progress[:40]), flush=True)
        if done.returncode != 0:
            failed.append(name)
            print("\n".join(lines[-25:]), flush=True)
        print(f"   ({time.monotonic() - began:.0f} s, exit {done.returncode})", flush=True)
    print(f"\nall benchmarks: {time.monotonic() - started:.0f} s on this machine"
          + (" (--quick: smoke run, not the benchmark's numbers)" if args.quick else ""), flush=True)
    print()
    print_table(load_rows(chosen))
    if failed:
        print(f"\nfailed to run: {', '.join(failed)} (their rows above, if any, are from an earlier run)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
