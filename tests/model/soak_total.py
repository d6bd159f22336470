"""The soak's reports added up: ``python -m tests.model.soak_total build/soak-report-*.json``.

Prints how often each rule ran over every shard, the sequences tried and every invariant violation with the
shortest sequence found, writes build/soak-report.json, and exits 1 if anything was violated (or no shard
reported at all).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def summary(report: dict[str, Any]) -> str:
    lines = [f"{report['sequences']} sequences ({report['steps']} steps) in {report['seconds']:.0f}s"]
    lines += [f"  {count:6d}  {name}" for name, count in report["rules"].items()]
    lines.append(f"invariant violations: {report['violations'] or 0}")
    if report.get("flaky"):
        lines.append(f"batches Hypothesis could not replay the same way (timing; no violation, no crash in them): "
                     f"{report['flaky']}")
    lines += [f"\n--- {name}: the shortest sequence found ---\n{sequence}"
              for name, sequence in report["failures"].items()]
    lines += [f"\n--- {name}: the sequence Hypothesis could not replay ---\n{first}" if name.startswith("harness:")
              else f"\n--- {name}: first seen (another failure was shrunk in that batch) ---\n{first}"
              for name, first in report["first_seen"].items() if name not in report["failures"]]
    return "\n".join(lines) + "\n"


def total(reports: list[dict[str, Any]]) -> dict[str, Any]:
    rules: Counter[str] = Counter()
    seconds: Counter[str] = Counter()
    violations: Counter[str] = Counter()
    failures: dict[str, str] = {}
    first_seen: dict[str, str] = {}
    for report in reports:
        rules.update(report["rules"])
        seconds.update(report["rule_seconds"])
        violations.update(report["violations"])
        for name, text in report["failures"].items():
            failures.setdefault(name, text)
        for name, text in report["first_seen"].items():
            first_seen.setdefault(name, text)
    return {"shards": len(reports), "sequences": sum(r["sequences"] for r in reports),
            "steps": sum(r["steps"] for r in reports), "rules": dict(rules.most_common()),
            "rule_seconds": {k: round(v, 1) for k, v in seconds.most_common()},
            "violations": dict(violations), "failures": failures, "first_seen": first_seen,
            "flaky": sum(r.get("flaky", 0) for r in reports),
            "seconds": max((r["seconds"] for r in reports), default=0.0)}


def main(paths: list[str]) -> int:
    reports = [json.loads(Path(path).read_text(encoding="utf-8")) for path in paths if Path(path).exists()]
    added = total(reports)
    out = ROOT / "build" / "soak-report.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(added, indent=2), encoding="utf-8")
    print(f"\nsoak, {added['shards']} shard(s): {summary(added)}report: {out}")
    return 0 if reports and not added["violations"] and not added["failures"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
