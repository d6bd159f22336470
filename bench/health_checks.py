"""Scheduled health checks at scale: 1,000 endpoints of which 50 hang, the bot's default monitor config.

The endpoints are served by their own process (aiohttp, loopback): ``/api/health`` and 949 ``/ok/<n>``
answer at once; 50 ``/hang/<n>``, spread through the list, never answer. The bot's config is the default
(``check_timeout_s`` 8, ``http_concurrency`` 256, ``history`` 120, SQLite state; ``interval_s`` an hour, as each
round starts the job itself) with the health URL and 999 core endpoints pointed there, and ``monitor.pm2: false``
(there is no pm2 app to look at here, and the baseline does not run pm2 either).

Jobs never run at the same time. Each round: the three with hung endpoints in an order that rotates from round
to round, then the two all-healthy ones :data:`HEALTHY_REPEATS` times each, alternating which goes first (a
side's figure for the round is its median: one all-healthy job is some 0.2 s, where one scheduler hiccup shows):

- **bot, short history**: the job the scheduler really runs, ``Monitor.run_once`` (lease, every check, state
  and ring-buffer history written to the store, the post-rollback watch), run by the bot's own APScheduler
  (``bot.app.services.start_scheduler``): each round moves the job's next run time to "now + 0.3 s", as the
  bot's own ``SchedulerJobs.nudge`` does, and the lag is the job's start minus that due time.
- **bot, long history**: the same on a second bot whose store already holds the full history (120 results for
  each of the 1,000 checks, a million runs counted): its round time must not depend on it.
- **baseline**: a plain loop calling the same ``bot.ops.probe.probe_many`` over the same 1,000 checks with the
  same concurrency and time limit, and nothing else.

And two more on 1,000 endpoints that all answer (nothing hangs, so the time is the checks' own, not the 8 s limit):

- **bot, all healthy**: the same job on a third bot whose endpoints all answer; its checks' part (``measure``:
  the probes) is compared, and the whole job is shown beside it.
- **keep-alive loop**: the least a round can do: one aiohttp session per round (kept-alive connections, the
  same concurrency), a GET per URL, the body read and the status looked at, nothing else.

Reported: round time and checks/s (bot vs baseline, per-round ratio), the schedule lag, how many healthy
endpoints were reported failing (target 0), the time at which hung checks were given up (each check's limit
counts from its own start: about 8 s, never more than 8 s + the grace), the process's peak thread count
during a round above its idle count, and the long/short history ratio of the round time and of the part
after the probes (state and history writes). With ``--saturate`` (on by default, off in ``--quick``) one
more bot round runs with ``http_concurrency`` 40 < 50 hung, so healthy checks queue behind hung ones: if a
limit counted from the round's start instead of the check's, they would be reported hung.

    .venv/bin/python bench/health_checks.py [--rounds 5] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    DEFAULT_ROUNDS,
    ROOT,
    Row,
    os_threads,
    print_table,
    ratio_row,
    spread,
    write_results,
)

NAME = "health_checks"
ENDPOINTS, HUNG = 1000, 50
LONG_RUNS = 1_000_000


# ---- the endpoints --------------------------------------------------------------------------------------------
def serve_endpoints(port_file: Path) -> int:
    from aiohttp import web

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(3600)
        return web.json_response({"status": "late"})

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/api/health", ok)
        app.router.add_get("/ok/{n}", ok)
        app.router.add_get("/hang/{n}", hang)
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=2048)
        await site.start()
        assert site._server is not None
        port_file.write_text(json.dumps({"port": site._server.sockets[0].getsockname()[1]}))  # type: ignore[union-attr]
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(main())
    return 0


def endpoint_paths() -> list[str]:
    """999 core endpoint paths; every 20th hangs (50 of them), spread through the list."""
    paths, hung, ok = [], 0, 0
    for index in range(1, ENDPOINTS):
        if index % 20 == 0 and hung < HUNG:
            hung += 1
            paths.append(f"/hang/{hung}")
        else:
            ok += 1
            paths.append(f"/ok/{ok}")
    while hung < HUNG:  # 999 // 20 = 49: the last one goes at the end
        hung += 1
        paths[-hung] = f"/hang/{hung}"
    return paths


# ---- the bot -------------------------------------------------------------------------------------------------
class Sampler:
    """Samples the process's thread count every 10 ms while running."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="thread-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, os_threads())
            self._stop.wait(0.01)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class Bot:
    """A bot's services with the real scheduler; each round is one run of the scheduler's health-check job."""

    def __init__(self, label: str, data_dir: Path, config: dict[str, Any], emulator: Any,
                 prefill: bool = False) -> None:
        from bot.app.services import build_services
        from bot.config import Secrets, Settings, parse_runbook

        self.label = label
        env = emulator.bot_env()
        secrets = Secrets(slack_bot_token=env["SLACK_BOT_TOKEN"],
                          slack_app_token=env["SLACK_APP_TOKEN"], slack_signing_secret=env["SLACK_SIGNING_SECRET"],
                          slack_api_url=env["SLACK_API_URL"])
        self.settings = Settings(runbook=parse_runbook({**config, "store": {"data_dir": str(data_dir)}}),
                                 secrets=secrets)
        if prefill:
            self.history_rows = prefill_history(data_dir / "rollback-bot.sqlite3", self.settings)
        self.services = build_services(self.settings, replica_id=f"bench-{label}")
        self.done = threading.Event()
        self.last: dict[str, Any] = {}
        monitor = self.services.monitor
        run_once, measure = monitor.run_once, monitor.measure

        def timed_measure(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return measure(*args, **kwargs)
            finally:
                self.last["measure_s"] = time.perf_counter() - started

        def timed_run_once() -> Any:
            self.last["entered_wall"] = time.time()
            started = time.perf_counter()
            try:
                self.last["results"] = run_once()
            finally:
                self.last["round_s"] = time.perf_counter() - started
                self.done.set()
            return self.last["results"]

        monitor.measure = timed_measure  # type: ignore[method-assign]
        monitor.run_once = timed_run_once  # type: ignore[method-assign]
        self.services.start(schedule=True)  # the bot's own start_scheduler: it takes monitor.run_once from here

    def round(self, sample_threads: bool = True) -> dict[str, Any]:
        """One run of the job. ``sample_threads``: count the process's threads every 10 ms meanwhile (the hung
        rounds' thread row); off where the job is timed against the keep-alive loop, which runs without a
        sampler: its wake-ups take the interpreter from the checks' event loop 20 times in a 0.2 s job."""
        self.done.clear()
        self.last = {}
        idle_threads = os_threads()
        due = datetime.now(UTC) + timedelta(seconds=0.3)
        with Sampler() if sample_threads else contextlib.nullcontext() as sampler:
            self.services.scheduler.modify_job("health-checks", next_run_time=due)
            if not self.done.wait(120):
                raise RuntimeError(f"the {self.label} bot's health-check job did not run")
        results = self.last.get("results")
        if results is None:
            raise RuntimeError(f"the {self.label} bot did not measure (it did not hold the monitor lease)")
        return {"round_s": self.last["round_s"], "measure_s": self.last["measure_s"],
                "after_probes_s": self.last["round_s"] - self.last["measure_s"],
                "lag_s": self.last["entered_wall"] - due.timestamp(),
                "threads_idle": idle_threads, "threads_peak": sampler.peak if sampler else None,
                **judge([(r.name, r.ok, r.detail, (r.latency_ms or 0) / 1000) for r in results])}

    def close(self) -> None:
        self.services.close()


def prefill_history(path: Path, settings: Any) -> int:
    """A store that has run for a long time: every check's state with a million runs and full history slots."""
    from bot.domain.checks import CheckResult, CheckState, CheckStatus
    from bot.domain.monitor import _specs
    from bot.store.sqlite import SQLiteStore

    store = SQLiteStore(path)
    history = settings.runbook.monitor.history
    at = datetime(2026, 1, 1, tzinfo=UTC)
    records, results = [], []
    for spec in _specs(settings.runbook, None):
        hung = "/hang/" in spec.name
        for slot in range(history):
            result = CheckResult(name=spec.name, ok=not hung, at=at + timedelta(minutes=slot),
                                 latency_ms=8000.0 if hung else 2.0,
                                 detail="no answer within 8s (hung)" if hung else "status 200")
            results.append(("check_result", f"{spec.name}#{slot}", 0, None, spec.name, None,
                            result.model_dump_json()))
        state = CheckState(id=spec.name, status=CheckStatus.FAILING if hung else CheckStatus.HEALTHY,
                           runs=LONG_RUNS, oks=0 if hung else LONG_RUNS, fails=LONG_RUNS if hung else 0,
                           last=result, version=LONG_RUNS)
        records.append(("check", spec.name, LONG_RUNS, None, None, None, state.model_dump_json()))
    assert store._conn is not None
    with store._lock:
        store._conn.execute("BEGIN")
        store._conn.executemany("INSERT INTO records (kind, id, version, incident_id, lookup, status, data) "
                                "VALUES (?,?,?,?,?,?,?)", records + results)
        store._conn.execute("COMMIT")
    store.close()
    return len(results)


def judge(results: list[tuple[str, bool, str, float]]) -> dict[str, Any]:
    """What a round reported: healthy endpoints reported failing, hung ones caught, when they were given up."""
    healthy = [r for r in results if "/hang/" not in r[0]]
    hung = [r for r in results if "/hang/" in r[0]]
    return {"checks": len(results), "ok": sum(r[1] for r in results),
            "healthy_reported_failing": sum(not r[1] for r in healthy),
            "healthy_reported_hung": sum("hung" in r[2] for r in healthy),
            "hung_caught": sum((not r[1]) and "hung" in r[2] for r in hung),
            "hung_given_up_s": spread(r[3] for r in hung) if hung else None,
            "failing_details": sorted({r[2] for r in healthy if not r[1]})[:5]}


# ---- the baseline --------------------------------------------------------------------------------------------
def baseline_round(urls: list[str], timeout: float, concurrency: int, slow_after: float) -> dict[str, Any]:
    from bot.ops.probe import HttpCheck, probe_many

    checks = [HttpCheck(urls[0], expect_json={"status": "ok"}, slow_after=slow_after)]
    checks += [HttpCheck(url, expect_status=200, slow_after=slow_after) for url in urls[1:]]
    idle_threads = os_threads()
    due = time.time() + 0.3
    time.sleep(max(0.0, due - time.time()))
    entered = time.time()
    with Sampler() as sampler:
        started = time.perf_counter()
        probes = probe_many(checks, timeout=timeout, concurrency=concurrency)
        seconds = time.perf_counter() - started
    return {"round_s": seconds, "lag_s": entered - due, "threads_idle": idle_threads, "threads_peak": sampler.peak,
            **judge([(p.url, p.ok, p.detail, p.seconds) for p in probes])}


# ---- the benchmark -------------------------------------------------------------------------------------------
# The three rounds with hung endpoints rotate; then the two all-healthy ones, alternating which goes first, so
# neither always follows the 8 s rounds (whose 50 given-up connections the endpoint server is still closing).
HUNG_ORDERS = [("short", "long", "baseline"), ("baseline", "short", "long"), ("long", "baseline", "short")]
HEALTHY_ORDERS = [("healthy", "keepalive"), ("keepalive", "healthy")]
HEALTHY_REPEATS = 7  # each all-healthy job this many times a round (about 0.2 s each); the round's is the median
ORDERS = [HUNG_ORDERS[i % 3] + sum((HEALTHY_ORDERS[(i + r) % 2] for r in range(HEALTHY_REPEATS)), ())
          for i in range(6)]


def median_by(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The run whose ``key`` is the median of ``runs`` (an odd count: one of them, not an average of two)."""
    return sorted(runs, key=lambda run: run[key])[len(runs) // 2]


def keepalive_round(urls: list[str], concurrency: int) -> dict[str, Any]:
    """A round of GETs over kept-alive connections, nothing else: the least the checks could cost."""
    import aiohttp

    async def main() -> list[int]:
        gate = asyncio.Semaphore(concurrency)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
            async def one(url: str) -> int:
                async with gate, session.get(url) as response:
                    await response.read()
                    return response.status

            return list(await asyncio.gather(*(one(url) for url in urls)))

    started = time.perf_counter()
    statuses = asyncio.run(main())
    seconds = time.perf_counter() - started
    return {"round_s": seconds, "checks": len(statuses), "healthy_reported_failing": sum(s != 200 for s in statuses)}


def run(rounds: int, saturate: bool) -> list[Row]:
    from bot.config import parse_runbook
    from bot.dev.emulator import Emulator

    started = time.monotonic()
    defaults = parse_runbook({}).monitor
    timeout, concurrency = defaults.check_timeout_s, defaults.http_concurrency
    slow_after = parse_runbook({}).thresholds.backend_response_s
    with tempfile.TemporaryDirectory(prefix="health-bench-") as name:
        tmp = Path(name)
        port_file = tmp / "endpoints.json"
        server = subprocess.Popen([sys.executable, __file__, "--serve-endpoints", str(port_file)], cwd=ROOT)
        bots: list[Bot] = []
        try:
            deadline = time.monotonic() + 30
            while not port_file.exists() or not port_file.read_text():
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the endpoint server did not start")
                time.sleep(0.05)
            base = f"http://127.0.0.1:{json.loads(port_file.read_text())['port']}"
            paths = endpoint_paths()
            urls = [f"{base}/api/health"] + [base + p for p in paths]
            healthy_paths = [f"/ok/{n}" for n in range(1, ENDPOINTS)]
            healthy_urls = [f"{base}/api/health"] + [base + p for p in healthy_paths]
            config = {"health": {"url": f"{base}/api/health", "core_endpoints": [{"path": p} for p in paths]},
                      # Each round starts the job itself; an hour's interval keeps the scheduler from also running it
                      # between rounds (a round can outlast the default 60 s, and a run in progress skips the nudge).
                      "monitor": {"pm2": False, "interval_s": 3600}}
            with Emulator(rate_limits=False) as emulator:
                short = Bot("short", tmp / "short", config, emulator)
                bots.append(short)
                long_ = Bot("long", tmp / "long", config, emulator, prefill=True)
                bots.append(long_)
                healthy = Bot("healthy", tmp / "healthy", {**config, "health": {
                    "url": f"{base}/api/health", "core_endpoints": [{"path": p} for p in healthy_paths]}}, emulator)
                bots.append(healthy)
                jobs = {"short": short.round, "long": long_.round,
                        "baseline": lambda: baseline_round(urls, timeout, concurrency, slow_after),
                        "healthy": lambda: healthy.round(sample_threads=False),
                        "keepalive": lambda: keepalive_round(healthy_urls, concurrency)}
                # Warm-up: the first round of checks in this process (aiohttp's import, the pools). The long-history
                # bot's own first use (its store's first queries, the lease) is small beside an 8 s round: warming it
                # up would cost one more 8 s round.
                jobs["short"]()
                jobs["healthy"]()
                jobs["keepalive"]()
                results = []
                for index in range(rounds):
                    order = ORDERS[index % len(ORDERS)]
                    row: dict[str, Any] = {"round": index, "order": ", ".join(order)}
                    repeated: dict[str, list[dict[str, Any]]] = {"healthy": [], "keepalive": []}
                    for position, job in enumerate(order):
                        gc.collect()  # the last job's garbage is not collected inside the next one's timing
                        # After the 8 s rounds, a longer pause: the endpoint server closes their 50 given-up
                        # connections, and whichever all-healthy job came first was slower for it. Between two
                        # 0.2 s all-healthy jobs a short one: nothing is left to settle.
                        time.sleep(3.0 if position == len(HUNG_ORDERS[0]) else
                                   0.25 if position > len(HUNG_ORDERS[0]) else 0.5)
                        if job in repeated:
                            repeated[job].append(jobs[job]())
                        else:
                            row[job] = jobs[job]()
                    row["healthy_runs"] = repeated["healthy"]  # every run is judged: none may report a failure
                    row["healthy"] = median_by(repeated["healthy"], "measure_s")
                    row["keepalive"] = median_by(repeated["keepalive"], "round_s")
                    results.append(row)
                    print(f"  round {index}: bot {row['short']['round_s']:.2f}s (long history "
                          f"{row['long']['round_s']:.2f}s), baseline {row['baseline']['round_s']:.2f}s; "
                          f"lag {row['short']['lag_s'] * 1000:.0f} ms; healthy reported failing "
                          f"{row['short']['healthy_reported_failing']}; all healthy: checks "
                          f"{row['healthy']['measure_s']:.3f}s (job {row['healthy']['round_s']:.3f}s), keep-alive "
                          f"loop {row['keepalive']['round_s']:.3f}s", flush=True)
                saturated = None
                if saturate:
                    cfg = {**config, "monitor": {**config["monitor"], "http_concurrency": HUNG - 10}}
                    extra = Bot("saturated", tmp / "saturated", cfg, emulator)
                    bots.append(extra)
                    saturated = extra.round()
                    print(f"  saturated (concurrency {HUNG - 10}): {saturated['round_s']:.2f}s, healthy reported "
                          f"hung {saturated['healthy_reported_hung']}", flush=True)
                for bot in bots:
                    bot.close()
                bots.clear()
        finally:
            for bot in bots:
                bot.close()
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
    return report(results, saturated, timeout, concurrency, started, long_.history_rows)


def report(results: list[dict[str, Any]], saturated: dict[str, Any] | None, timeout: float, concurrency: int,
           started: float, history_rows: int) -> list[Row]:
    flat = [{"bot_round_s": r["short"]["round_s"], "base_round_s": r["baseline"]["round_s"],
             "bot_checks_per_s": r["short"]["checks"] / r["short"]["round_s"],
             "base_checks_per_s": r["baseline"]["checks"] / r["baseline"]["round_s"],
             "long_round_s": r["long"]["round_s"], "long_after_s": r["long"]["after_probes_s"],
             "short_after_s": r["short"]["after_probes_s"],
             "healthy_checks_s": r["healthy"]["measure_s"], "healthy_job_s": r["healthy"]["round_s"],
             "keepalive_s": r["keepalive"]["round_s"]} for r in results]
    bots = [r[k] for r in results for k in ("short", "long")]
    lag = max(b["lag_s"] for b in bots)
    base_lag = max(r["baseline"]["lag_s"] for r in results)
    wrong = sum(b["healthy_reported_failing"] for b in bots + [h for r in results for h in r["healthy_runs"]])
    wrong_base = sum(r["baseline"]["healthy_reported_failing"] for r in results)
    caught = min(b["hung_caught"] for b in bots)
    given_up = [b["hung_given_up_s"] for b in bots]
    earliest, latest = min(g["min"] for g in given_up), max(g["max"] for g in given_up)
    extra_threads = max(b["threads_peak"] - b["threads_idle"] for b in bots)
    base_threads = max(r["baseline"]["threads_peak"] - r["baseline"]["threads_idle"] for r in results)
    grace = 0.5
    rows = [
        ratio_row(NAME, f"round time, {ENDPOINTS} endpoints / {HUNG} hung", flat, "bot_round_s", "base_round_s", "s",
                  None, fmt="{:.2f}", note="informational: both are bound by the 8 s limit of the hung checks; "
                  "the ratio is the bot's store writes and watch after the probes"),
        ratio_row(NAME, "checks per second", flat, "bot_checks_per_s", "base_checks_per_s", "/s", None,
                  fmt="{:.0f}"),
        ratio_row(NAME, f"{ENDPOINTS} healthy endpoints: the checks / a keep-alive loop", flat, "healthy_checks_s",
                  "keepalive_s", "s", 1.2, fmt="{:.3f}",
                  note="the bot's probes reuse kept-alive connections per host; the loop only GETs, one session"),
        ratio_row(NAME, f"{ENDPOINTS} healthy endpoints: the whole job / a keep-alive loop", flat, "healthy_job_s",
                  "keepalive_s", "s", None, fmt="{:.3f}",
                  note="informational: the job adds 1,000 state and history writes and the watch"),
        Row(NAME, "schedule lag (max over rounds)", f"{lag * 1000:.0f} ms", f"{base_lag * 1000:.0f} ms (plain sleep)",
            None, "< 1 s", lag < 1.0),
        Row(NAME, "healthy checks reported failing/hung", str(wrong), str(wrong_base), None, "0", wrong == 0),
        Row(NAME, f"hung checks caught (of {HUNG}), min over rounds", str(caught), str(HUNG), None, f"{HUNG}",
            caught == HUNG),
        Row(NAME, "hung checks given up after", f"{earliest:.2f}-{latest:.2f} s", f"limit {timeout:g} s", None,
            f"{timeout:g}-{timeout + grace:g} s", earliest >= timeout - 0.05 and latest <= timeout + grace),
        Row(NAME, "peak threads above idle during a round", str(extra_threads), str(base_threads), None,
            f"<= {concurrency // 8} (not per endpoint)", extra_threads <= concurrency // 8,
            note=f"{ENDPOINTS} checks at concurrency {concurrency}: a thread per check would be hundreds"),
        ratio_row(NAME, f"round time, long history ({history_rows} results) / short", flat, "long_round_s",
                  "bot_round_s", "s", 1.2, fmt="{:.2f}", target="ratio <= 1.2"),
        ratio_row(NAME, "state + history writes after the probes, long / short", flat, "long_after_s",
                  "short_after_s", "s", 1.2, fmt="{:.3f}", target="ratio <= 1.2"),
    ]
    if saturated is not None:
        bad = saturated["healthy_reported_hung"] + saturated["healthy_reported_failing"]
        rows.append(Row(NAME, f"saturated: concurrency {HUNG - 10} < {HUNG} hung, healthy reported failing", str(bad),
                        "-", None, "0", bad == 0,
                        note=f"round took {saturated['round_s']:.1f} s: healthy checks queued behind hung ones and "
                        "still passed, so each limit counts from the check's own start"))
    write_results(NAME, rows=rows, config={"endpoints": ENDPOINTS, "hung": HUNG, "check_timeout_s": timeout,
                                           "http_concurrency": concurrency, "monitor": "default, pm2: false",
                                           "orders": ORDERS},
                  rounds={"rounds": results, "saturated": saturated}, started=started)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--no-saturate", action="store_true")
    parser.add_argument("--quick", action="store_true", help="2 rounds, no saturated round")
    parser.add_argument("--serve-endpoints", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_endpoints:
        return serve_endpoints(args.serve_endpoints)
    if args.quick:
        args.rounds, args.no_saturate = 2, True
    os.environ.setdefault("LOG_LEVEL", "warning")
    print_table(run(args.rounds, not args.no_saturate))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
