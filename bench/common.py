"""What every benchmark shares: rounds that interleave the bot and its baseline, per-round ratios,
min/median/max, the results file (every round, and the environment it ran in) and the one table.

A comparison is a list of rounds. In each round the bot and the baseline do the same work in the same
environment, one after the other, never at the same time; which side goes first alternates from round to
round (round 0: the bot first), so a drift of the machine (caches warming, a neighbour's load) lands on
both sides alike. The ratio is taken per round (bot / baseline) and then summarised: min, median, max
of the per-round ratios, never a ratio of medians.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DEFAULT_ROUNDS = 5
PACKAGES = ("slack-bolt", "slack-sdk", "pymongo", "aiohttp", "apscheduler", "waitress", "nx-27017", "mongomock",
            "pydantic")

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def bot_first(round_index: int) -> bool:
    """The order of a round: the bot goes first in even rounds, the baseline in odd ones."""
    return round_index % 2 == 0


def interleave(round_index: int, bot: Callable[[], Any], baseline: Callable[[], Any]) -> tuple[Any, Any, str]:
    """Run both sides of one round, in this round's order: (bot result, baseline result, order)."""
    if bot_first(round_index):
        ours = bot()
        theirs = baseline()
        return ours, theirs, "bot, baseline"
    theirs = baseline()
    ours = bot()
    return ours, theirs, "baseline, bot"


def spread(values: Iterable[float]) -> dict[str, float]:
    data = sorted(float(v) for v in values)
    if not data:
        return {"min": float("nan"), "median": float("nan"), "max": float("nan")}
    return {"min": data[0], "median": statistics.median(data), "max": data[-1]}


def percentile(values: Iterable[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): a value that was actually measured."""
    data = sorted(values)
    if not data:
        return float("nan")
    rank = max(1, min(len(data), int(-(-q * len(data) // 100))))
    return data[rank - 1]


def ratios(rounds: list[dict[str, Any]], bot_key: str, base_key: str) -> list[float]:
    return [r[bot_key] / r[base_key] for r in rounds if r.get(base_key)]


@dataclass
class Row:
    """One line of the table: a figure of the bot next to its baseline, the per-round ratio, the target."""

    bench: str
    figure: str
    bot: str  # the bot's value (median over rounds, with unit)
    baseline: str  # the baseline's value, or what it is compared with
    ratio: dict[str, float] | None  # min/median/max of the per-round ratio bot/baseline (None: no ratio)
    target: str
    holds: bool | None  # None: informational, no target
    note: str = ""
    older_run: str = ""  # set when loaded: "" if the row was measured by this run, else that run's date and commit

    def cells(self) -> list[str]:
        r = self.ratio
        ratio = "" if r is None else f"{r['min']:.2f} / {r['median']:.2f} / {r['max']:.2f}"
        verdict = {True: "yes", False: "NO", None: "-"}[self.holds]
        return [self.bench, self.figure, self.bot, self.baseline, ratio, self.target, verdict, self.older_run]


def ratio_row(bench: str, figure: str, rounds: list[dict[str, Any]], bot_key: str, base_key: str, unit: str,
              limit: float | None, *, fmt: str = "{:.3g}", note: str = "", target: str | None = None) -> Row:
    """A row whose target is `median per-round ratio <= limit` (holds only if the median ratio does). With no
    rounds (an informational figure asked for 0 times) the row says it was not measured and holds nothing."""
    if not rounds:
        return Row(bench, figure, "not measured", "not measured", None,
                   target if target is not None else ("-" if limit is None else f"ratio <= {limit:g}"),
                   None if limit is None else False, note or "0 rounds in this run")
    per = ratios(rounds, bot_key, base_key)
    bot = statistics.median(r[bot_key] for r in rounds)
    base = statistics.median(r[base_key] for r in rounds)
    summary = spread(per)
    holds = None if limit is None else summary["median"] <= limit
    return Row(bench, figure, f"{fmt.format(bot)} {unit}".strip(), f"{fmt.format(base)} {unit}".strip(), summary,
               target if target is not None else ("-" if limit is None else f"ratio <= {limit:g}"), holds, note)


def environment() -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "bot", "handlers"],
                                    capture_output=True, text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", False
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip() \
        if _which("node") else None
    return {"cpu_count": os.cpu_count(), "python": sys.version.split()[0],
            "implementation": platform.python_implementation(),
            "platform": platform.platform(), "machine": platform.machine(), "node": node, "packages": versions,
            "commit": commit, "bot_code_uncommitted_changes": dirty,
            "load_average_at_start": os.getloadavg(), "finished_at": datetime.now(UTC).isoformat(timespec="seconds")}


def _which(name: str) -> bool:
    return any(os.access(os.path.join(p, name), os.X_OK) for p in os.environ.get("PATH", "").split(os.pathsep))


def results_path(name: str, tier: str) -> Path:
    """Where a tier keeps a benchmark's results: the full tier (and a benchmark run by hand) in
    ``bench/results/<name>.json``, the quick tier in ``bench/results/<name>.quick.json``, so neither overwrites
    the other's rows."""
    return RESULTS / (f"{name}.json" if tier == "full" else f"{name}.{tier}.json")


def run_stamp() -> dict[str, Any]:
    """What ran: when it finished, the commit (``git rev-parse --short HEAD``) and whether the tree differed from
    it (any uncommitted change outside bench/results)."""
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", ".",
                                     ":(exclude)bench/results"], capture_output=True, text=True,
                                    timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", False
    return {"finished_at": datetime.now(UTC).isoformat(timespec="seconds"), "commit": commit, "dirty": dirty}


def write_results(name: str, *, rows: list[Row], config: dict[str, Any], rounds: dict[str, Any],
                  extra: dict[str, Any] | None = None, started: float | None = None) -> Path:
    """The table rows, every round of every comparison, the set-up, the machine and the run's date and commit,
    in ``results_path(name, tier)`` (the tier from ``BENCH_TIER``, set by bench/run.py; "full" by hand)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    tier = os.environ.get("BENCH_TIER", "full")
    data = {"benchmark": name, "tier": tier, "run": run_stamp(), "config": config,
            "rows": [{k: v for k, v in asdict(r).items() if k != "older_run"} for r in rows], "rounds": rounds,
            **(extra or {}), "seconds": None if started is None else round(time.monotonic() - started, 1),
            "environment": environment()}
    path = results_path(name, tier)
    path.write_text(json.dumps(data, indent=2, default=_jsonable) + "\n", encoding="utf-8")
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    return str(value)


def _stamp_of(data: dict[str, Any]) -> tuple[datetime | None, str]:
    """When a results file's run finished, and its mark: "2026-11-30 15:55 UTC, 0040375" (+ " dirty")."""
    run = data.get("run")
    if run is None:  # written before runs were stamped: the environment has the same facts
        env = data.get("environment", {})
        run = {"finished_at": env.get("finished_at"), "commit": str(env.get("commit") or "")[:7],
               "dirty": env.get("bot_code_uncommitted_changes", False)}
    try:
        when = datetime.fromisoformat(run["finished_at"])
    except (TypeError, ValueError):
        return None, "an older run (date unknown)"
    return when, f"{when:%Y-%m-%d %H:%M} UTC, {run.get('commit') or '?'}" + (" dirty" if run.get("dirty") else "")


def load_rows(names: Iterable[str], tier: str = "full", since: datetime | None = None) -> list[Row]:
    """The rows of ``tier`` for each benchmark; for the quick tier, also the full tier's rows of figures the
    quick tier does not measure. A row whose run finished before ``since`` (every row, with no ``since``) is
    marked with that run's date and commit."""
    rows: list[Row] = []
    for name in names:
        figures: set[str] = set()
        for source in dict.fromkeys([tier, "full"]):
            path = results_path(name, source)
            if not path.exists():
                continue
            data = json.loads(path.read_text(encoding="utf-8"))
            when, mark = _stamp_of(data)
            fresh = since is not None and when is not None and when >= since
            for raw in data.get("rows", []):
                if raw["figure"] in figures:
                    continue
                figures.add(raw["figure"])
                rows.append(Row(**{**raw, "older_run": "" if fresh else mark}))
    return rows


HEADERS = ["bench", "figure", "bot (median)", "baseline (median)", "ratio min / median / max", "target", "holds",
           "from an older run"]


def table(rows: list[Row]) -> str:
    lines = [HEADERS] + [r.cells() for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADERS))]
    out = []
    for index, line in enumerate(lines):
        out.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())
        if index == 0:
            out.append("  ".join("-" * w for w in widths))
    notes = [f"  [{r.bench}] {r.figure}: {r.note}" for r in rows if r.note]
    return "\n".join(out + (["", "notes:"] + notes if notes else []) + _older(rows))


def _older(rows: list[Row]) -> list[str]:
    if not any(r.older_run for r in rows):
        return []
    return ["", "A row with a date and commit in the last column was not measured by this run: it comes from the "
                "results of an earlier one (that run's finish time and commit; 'dirty': with uncommitted changes)."]


def markdown(rows: list[Row]) -> str:
    """The same table in Markdown (for the README), notes as a list below it."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    out = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    out += ["| " + " | ".join(cell(c) for c in r.cells()) + " |" for r in rows]
    notes = [f"- *{r.bench}, {r.figure.strip()}*: {r.note}" for r in rows if r.note]
    return "\n".join(out + ([""] + notes if notes else []) + _older(rows))


def print_table(rows: list[Row]) -> None:
    print(table(rows), flush=True)


# ---- measuring ----------------------------------------------------------------------------------------------
@dataclass
class Timer:
    """``with Timer() as t: ...`` → ``t.seconds`` (monotonic)."""

    seconds: float = 0.0
    _start: float = field(default=0.0, repr=False)

    def __enter__(self) -> Timer:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def os_threads() -> int:
    """Threads of this process as the kernel counts them (Python's and every library's own)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (and its reaped children) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def wait_idle(pid: int, *, quiet_s: float = 0.15, limit_s: float = 5.0) -> float:
    """Wait until process ``pid`` uses no CPU for ``quiet_s`` (its follow-up work is done); the seconds waited."""
    started = time.monotonic()
    last = cpu_seconds(pid)
    quiet_since = time.monotonic()
    while time.monotonic() - started < limit_s:
        time.sleep(0.05)
        now = cpu_seconds(pid)
        if now - last > 0.005:
            quiet_since = time.monotonic()
        last = now
        if time.monotonic() - quiet_since >= quiet_s:
            break
    return time.monotonic() - started


# ---- the bot's set-up --------------------------------------------------------------------------------------------
INCIDENT_CHANNEL = "C0INCIDENT"


def bot_config(sandbox: Any, data_dir: Path, **overrides: dict[str, Any]) -> dict[str, Any]:
    """The default config (rollback.yml empty) pointed at a sandbox target, with the people and channels of the
    emulator's seed workspace; ``overrides`` replace keys section by section."""
    config: dict[str, Any] = {
        **sandbox.config(),
        "access": {"incident_channels": [INCIDENT_CHANNEL], "commanders": ["@oncall"],
                   "approvers": ["@backend-leads"]},
        "slack": {"stakeholder_channel": "C0STAKEHOLD"},
        "store": {"data_dir": str(data_dir)},
    }
    for section, values in overrides.items():
        config.setdefault(section, {}).update(values)
    return config


def bot_settings(emulator: Any, config: dict[str, Any]) -> Any:
    """Settings for an in-process bot on ``emulator`` (its tokens and API URL as the secrets)."""
    from bot.config import Secrets, Settings, parse_runbook

    env = emulator.bot_env()
    secrets = Secrets(slack_bot_token=env["SLACK_BOT_TOKEN"],
                      slack_app_token=env["SLACK_APP_TOKEN"], slack_signing_secret=env["SLACK_SIGNING_SECRET"],
                      slack_api_url=env["SLACK_API_URL"])
    return Settings(runbook=parse_runbook(config), secrets=secrets)


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (Linux: ``5`` to /proc/self/clear_refs), so a later VmHWM is the peak of
    what ran since, not of the imports before it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_since_reset_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mb()
