"""Time to restored service: `/rollback start --auto` until *verify succeeded*, against a bash script of the
runbook's commands, on the realistic target (the TypeScript sandbox, `yarn build` is tsc), and the limit
max(backup, build) + restart + verify measured in the same round.

Two identical sandbox targets (``SandboxSize``: TypeScript, ``--modules`` generated modules) are made once, each
under its own pm2; both back up the same tenant data (on a local nx-27017, with ``--documents`` extra cases per
tenant so that the backup weighs about as much as the build; both sides only read it). Every round first puts
both back to the broken deploy (not timed: ``git reset --hard`` to the broken Phase 3 commit, its saved
``dist/``, ``pm2 restart``, health answers 500), then runs, in an order that alternates per round:

- **the bot**: an in-process bot (``socket_mode_bot``, default config, SQLite state in a folder new each round,
  so nothing is cached from an earlier round) on the emulated Slack (``rate_limits=False``). Timed from typing
  ``/rollback start … --auto`` (which opens the incident) to the thread's *Verify rollback — succeeded*.
- **the script**: ``bash`` running the runbook's commands one after the other (``SCRIPT`` below): ``git log``
  to a file; every tenant database dumped with the bot's own tool (``bot.ops.dump``, 4 at a time, as the bot
  does); ``pm2 jlist`` and the apps' last 500 log lines; ``.env`` copied; ``git reset --hard <known good>``;
  ``yarn build`` (clean install and build again if it fails, as the runbook says); ``pm2 restart <backend>``;
  ``curl`` the health URL until it answers ``{"status":"ok"}`` (a starting app is waited for, as the bot's
  verify does) and the core endpoint with the bearer token. Same child environment as the bot's yarn and pm2.
- **the limit**: max(backup, build) + restart + verify, from the script's own steps (each ran alone, in this
  round): the build does not depend on the backup, and nothing else has to happen.

Rows: the bot against the script (target: ≤ 0.6× without a cached build), the bot against the limit (≤ 1.2×),
and the same with a last-known-good build (≤ 0.3×; ``--with-cache``: see ``bot_with_cache``). With
``--small-backup``, also a second pair of targets of the same size with no extra cases (a backup of well under a
second, the build all of the time): the bot without a cached build against the script and the limit there, where
the build alongside the backup has not begun compiling when the rebuild comes and the rebuild builds in place.

    .venv/bin/python bench/mttr.py [--rounds 5] [--quick] [--modules N] [--documents N] [--with-cache]
                                   [--small-backup]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    DEFAULT_ROUNDS,
    INCIDENT_CHANNEL,
    Row,
    bot_config,
    bot_settings,
    interleave,
    print_table,
    ratio_row,
    write_results,
)

NAME = "mttr"
TARGET_SCRIPT, TARGET_CACHED, TARGET_LIMIT = 0.6, 0.3, 1.2
STEPS = [("backup", "Backup current state"), ("revert", "Revert code"), ("rebuild", "Rebuild backend"),
         ("restart", "Restart backend"), ("verify", "Verify rollback")]
BENCH_MODULES, QUICK_MODULES = 1500, 150  # `yarn build` some 9–12 s / 2–3 s on this 2-core machine
# extra cases per tenant (3 tenants): a backup about as long as the build (some 7.5–13 s / 1.5 s), so
# the limit's max(backup, build) is not just the build: the script pays both, one after the other
BENCH_DOCUMENTS, QUICK_DOCUMENTS = 75_000, 10_000
STEP_TIMEOUT_S = 600

SCRIPT = r"""
set -euo pipefail
# each mark: the time, the local MongoDB server's CPU ticks (utime + stime) and this shell's children's CPU
# (this shell's children's: its own /proc entry, since `times` in a $(…) subshell would report the subshell's)
ticks() { sed 's/.*) //' "/proc/$1/stat" | awk -v f="$2" '{print $f + $(f + 1)}'; }
mark() { echo "@@ $1 $(date +%s.%N) $(ticks "$MONGO_PID" 12) $(ticks $$ 14)"; }
cd "$REPO"
mark backup
mkdir -p "$OUT" && chmod 700 "$OUT"
git log -1 --oneline > "$OUT/rollback_from_commit.txt"
"$PYTHON" "$BENCH" --dump-into "$OUT/db" --env-file "$REPO/.env"
pm2 jlist > "$OUT/pm2.json"
tail -n 500 "$PM2_HOME"/logs/*.log > "$OUT/pm2_logs.txt"
cp .env "$OUT/env.backup" && chmod 600 "$OUT/env.backup"
mark revert
git reset --hard "$GOOD"
git log --oneline -5 > /dev/null
mark rebuild
yarn build || { rm -rf node_modules dist; yarn install --non-interactive; yarn build; }
mark restart
pm2 restart "$APP"
mark verify
for attempt in $(seq 1 150); do
  if curl -fsS --max-time 8 "$HEALTH" | grep -q '"status": *"ok"'; then break; fi
  if [ "$attempt" = 150 ]; then echo "health never passed" >&2; exit 1; fi
  sleep 0.2
done
curl -fsS --max-time 8 -H "Authorization: Bearer $TOKEN" "$CORE" > /dev/null
mark done
"""


# ---- the bot ---------------------------------------------------------------------------------------------------
def _auto_rollback(emulator: Any, reason: str) -> dict[str, Any]:
    """Type `/rollback start <reason> --auto` and wait for *Verify rollback — succeeded*: the seconds to it, and
    when each step's *succeeded* arrived (seconds from the command)."""
    def panels() -> list[dict[str, Any]]:
        return [m for m in emulator.ws.channel_messages(INCIDENT_CHANNEL) if m.get("blocks")]

    succeeded: dict[str, float] = {}
    started = time.perf_counter()
    emulator.slash("casey", "incident-rollback", f"start {reason} --auto").wait()

    def done() -> bool:
        panel = panels()
        if not panel:
            return False
        for message in emulator.ws.thread(INCIDENT_CHANNEL, panel[0]["ts"]):
            for step, title in STEPS:
                if f"*{title}* — succeeded" in message["text"]:
                    succeeded.setdefault(step, time.perf_counter() - started)
                elif f"*{title}* — failed" in message["text"] or (
                        "autopilot stopped" in message["text"] and "service is back" not in message["text"]):
                    raise RuntimeError(message["text"][:500])
        return "verify" in succeeded

    emulator.ws.wait_for(done, STEP_TIMEOUT_S, "verify to succeed")
    return {"total_s": succeeded["verify"], "at_s": succeeded}


def _steps_from(at: dict[str, float]) -> dict[str, float]:
    previous, steps = 0.0, {}
    for step, _ in STEPS:
        if step in at:
            steps[step] = at[step] - previous
            previous = at[step]
    return steps


def bot_side(sandbox: Any, data_dir: Path) -> dict[str, Any]:
    """Without a cached build: a bot on a new state folder rolls the target back with the autopilot."""
    return _bot_rollback(sandbox, data_dir, "health 500 after Phase 3 (mttr bench)")


def bot_with_cache(sandbox: Any, data_dir: Path) -> dict[str, Any]:
    """With a last-known-good build (issue 22 item 4): a bot started on the state folder of this round's rollback
    without a cached build (verified, the incident closed, the build of the known-good tree kept), once the
    broken deploy is put back outside the bot (as the next deploy would), rolls the target back again;
    `--with-cache` runs it."""
    if not any((data_dir / "builds").glob("*/manifest.json")):
        raise RuntimeError(f"no kept build under {data_dir / 'builds'}: the rollback without one runs first")
    return _bot_rollback(sandbox, data_dir, "health 500 after Phase 3 again (mttr bench)")


def _bot_rollback(sandbox: Any, data_dir: Path, reason: str) -> dict[str, Any]:
    """One timed `/rollback start --auto` by a bot started on ``data_dir``; then, not timed, the incident closed
    and the bot's keeping of builds in the background finished (:func:`_settle`) before it stops, so none of
    it runs beside the other side's timed run."""
    from bot.app import socket_mode_bot
    from bot.dev.emulator import Emulator

    with Emulator(rate_limits=False) as emulator:
        bot = socket_mode_bot(bot_settings(emulator, bot_config(sandbox, data_dir))).start()
        try:
            result = _auto_rollback(emulator, reason)
            _settle(emulator, data_dir)
            rejected = [f"{r.method}: {r.error}" for r in emulator.rejections]
        finally:
            bot.close()
    if rejected:
        raise RuntimeError(f"the emulated Slack refused calls: {rejected[:5]}")
    return {"total_s": result["total_s"], "steps_s": _steps_from(result["at_s"])}


# The bot's threads that keep builds in the background: the build alongside the backup, the copy of a restored
# build back into the store, the keep of the running tree after a verify (bot/ops/commit_builds.py, builds.py,
# bot/runbook/systems.py).
KEEPING_THREADS = ("build-", "builds-keep-again", "keep-build")


def _settle(emulator: Any, data_dir: Path) -> None:
    """The incident closed, a build of the known-good tree kept under ``<data_dir>/builds`` (what the rollback
    with a cached build restores next), and no thread of this (in-process) bot still keeping one."""
    emulator.slash("casey", "incident-rollback", 'close --force "mttr bench: the timed rollback is done"').wait()
    try:
        emulator.ws.wait_for(lambda: any("Closed RB-" in e.text for e in emulator.ws.ephemerals_for(
            "U0COMMANDER")), 60, "the incident to close")
    except TimeoutError:
        said = [e.text for e in emulator.ws.ephemerals_for("U0COMMANDER")][-3:]
        raise RuntimeError(f"the incident did not close; the bot said: {said}") from None
    kept = data_dir / "builds"
    deadline = time.monotonic() + STEP_TIMEOUT_S
    while not any(kept.glob("*/manifest.json")) or any(
            t.name.startswith(KEEPING_THREADS) for t in threading.enumerate()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no build was kept under {kept}, or its keeping did not finish, after the rollback")
        time.sleep(0.2)


# ---- the script --------------------------------------------------------------------------------------------------
def script_side(sandbox: Any, out: Path, mongo_pid: int) -> dict[str, Any]:
    from bot.ops.process import child_env

    scratch = sandbox.root / "script-tmp"  # yarn's temp folder (it leaves a folder there at every `yarn run`),
    scratch.mkdir(exist_ok=True)  # kept across rounds like /tmp would be, removed with the sandbox
    env = child_env({"PM2_HOME": str(sandbox.pm2_home), "YARN_CACHE_FOLDER": str(sandbox.repo / ".yarn-cache"),
                     "CI": "true", "TMPDIR": str(scratch), "REPO": str(sandbox.repo), "OUT": str(out),
                     "GOOD": sandbox.good_commit,
                     "APP": sandbox.apps[0], "HEALTH": sandbox.health_url,
                     "CORE": sandbox.health_url.replace("/api/health", "/api/internship"),
                     "TOKEN": sandbox.canaries["HEALTH_BEARER_TOKEN"], "PYTHON": sys.executable,
                     "BENCH": str(Path(__file__).resolve()), "MONGO_PID": str(mongo_pid)})
    started = time.time()
    done = subprocess.run(["bash", "-c", SCRIPT], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=STEP_TIMEOUT_S)
    if done.returncode != 0:
        raise RuntimeError(f"the script failed: {done.stdout[-500:]} {done.stderr[-800:]}")
    marks = {line.split()[1]: line.split()[2:] for line in done.stdout.splitlines() if line.startswith("@@ ")}
    order = [step for step, _ in STEPS] + ["done"]
    steps = {step: float(marks[order[i + 1]][0]) - float(marks[step][0]) for i, step in enumerate(order[:-1])}
    cpu = {step: _cpu_s(marks[order[i + 1]]) - _cpu_s(marks[step]) for i, step in enumerate(order[:-1])}
    return {"total_s": float(marks["done"][0]) - started, "steps_s": steps, "cpu_s": cpu}


def _cpu_s(mark: list[str]) -> float:
    """CPU seconds at a mark: the MongoDB server's (utime + stime) and the script's children's, waited for
    (cutime + cstime), both in clock ticks."""
    return (int(float(mark[1])) + int(float(mark[2]))) / os.sysconf("SC_CLK_TCK")


def dump_into(out: Path, env_file: Path) -> None:
    """The script's backup: every tenant database with the bot's own dump (``--dump-into``)."""
    from bot.config import TenantsConfig
    from bot.ops import dump, tenants
    from bot.ops.envfile import read_env_file

    uri = read_env_file(env_file)["CENTRAL_DB_URI"]
    client = tenants.connect(uri)
    try:
        central = tenants.default_database(uri)
        found = tenants.list_tenants(client, uri, TenantsConfig())
        jobs: list[tuple[str, list[str] | None]] = [(central, ["schools"])] + [(t.db_name, None) for t in found]
        dump.dump_databases(client, jobs, out)
    finally:
        tenants.close(client)


# ---- the targets ---------------------------------------------------------------------------------------------------
def seed_documents(sandbox: Any, documents: int) -> None:
    """``documents`` more cases in each tenant database (what makes a backup take a while)."""
    from bot.ops import tenants

    if documents <= 0:
        return
    client = tenants.connect(sandbox.central_uri)
    try:
        for db_name in sandbox.tenant_dbs:
            collection = client[db_name].internshipcases
            for start in range(0, documents, 5000):
                collection.insert_many([{"title": f"Case {n}", "internship_id": f"int-{n % 7}", "step": n % 5,
                                         "notes": "x" * 200} for n in range(start, min(documents, start + 5000))])
    finally:
        tenants.close(client)


def broken_dist(sandbox: Any) -> Path:
    return sandbox.root / "dist-broken"


def rebreak(sandbox: Any) -> None:
    """Put the broken deploy back (not timed): HEAD at Phase 3, its build, the backend restarted, health 500."""
    import git

    from bot.ops.pm2 import Pm2
    from bot.ops.probe import probe

    git.Repo(sandbox.repo).git.reset("--hard", sandbox.broken_commit)
    shutil.rmtree(sandbox.repo / "dist", ignore_errors=True)
    shutil.copytree(broken_dist(sandbox), sandbox.repo / "dist")
    if not Pm2(home=sandbox.pm2_home).restart(sandbox.apps[0]).ok:
        raise RuntimeError("pm2 could not restart the broken backend")
    deadline = time.monotonic() + 30
    while probe(sandbox.health_url, timeout=2).status != 500:
        if time.monotonic() > deadline:
            raise RuntimeError("the broken backend did not come back answering 500")
        time.sleep(0.1)


def make_target(folder: Path, mongo_uri: str, modules: int, documents: int, tenants_of: Any = None) -> Any:
    """A TypeScript sandbox, built and running, its broken build saved. ``tenants_of``: back up that sandbox's
    tenant data instead of seeding its own (its .env points there; both sides only read it)."""
    from bot.dev.sandbox import SandboxSize, create_sandbox, start_apps
    from bot.ops.envfile import set_env_value

    sandbox = create_sandbox(folder, mongo_uri=mongo_uri, local_server=True,
                             size=SandboxSize(typescript=True, modules=modules))
    if tenants_of is None:
        began = time.perf_counter()
        seed_documents(sandbox, documents)
        print(f"  seeded {documents:,} cases into each of {len(sandbox.tenant_dbs)} tenants: "
              f"{time.perf_counter() - began:.1f}s", flush=True)
    else:
        set_env_value(sandbox.repo / ".env", "CENTRAL_DB_URI", tenants_of.central_uri)
    began = time.perf_counter()
    start_apps(sandbox)  # yarn install (offline), yarn build of the broken HEAD, both apps under pm2
    print(f"  made {folder.name}: install + first build + start {time.perf_counter() - began:.1f}s", flush=True)
    shutil.copytree(sandbox.repo / "dist", broken_dist(sandbox))
    return sandbox


# ---- the benchmark -----------------------------------------------------------------------------------------------
def one_round(index: int, folder: Path, sandboxes: dict[str, Any], bot: Callable[[Any, Path], dict[str, Any]],
              mongo_pid: int) -> dict[str, Any]:
    """Both sides from the broken deploy, in this round's order. The bot's state folder is the round's
    (``<folder>/bot-data``): the rollback with a cached build uses the one without's."""
    from bot.ops.probe import probe

    for sandbox in sandboxes.values():
        rebreak(sandbox)
    ours, theirs, order = interleave(index, lambda: bot(sandboxes["bot"], folder / "bot-data"),
                                     lambda: script_side(sandboxes["script"], folder / "script-backup", mongo_pid))
    for sandbox in sandboxes.values():
        result = probe(sandbox.health_url, timeout=5, expect_json={"status": "ok"})
        if not result.ok:
            raise RuntimeError(f"a sandbox did not end healthy: {result.detail}")
    shutil.rmtree(folder / "script-backup", ignore_errors=True)
    s, cpu = theirs["steps_s"], theirs["cpu_s"]
    limit = max(s["backup"], s["rebuild"]) + s["restart"] + s["verify"]
    # the same, but no faster than the backup's and the build's CPU seconds spread over every core
    cores = len(os.sched_getaffinity(0))
    on_cores = max(s["backup"], s["rebuild"], (cpu["backup"] + cpu["rebuild"]) / cores) + s["restart"] + s["verify"]
    return {"round": index, "order": order, "bot_s": ours["total_s"], "script_s": theirs["total_s"],
            "limit_s": limit, "limit_on_cores_s": on_cores, "cores": cores, "bot_steps_s": ours["steps_s"],
            "script_steps_s": s, "script_cpu_s": cpu}


def run(rounds: int, modules: int, documents: int, with_cache: bool, small_backup: bool = False) -> list[Row]:
    from bot.dev.localmongo import LocalMongo
    from bot.dev.sandbox import drop_tenants, stop_apps

    started = time.monotonic()
    results: dict[str, list[dict[str, Any]]] = {"without_cache": [], "with_cache": [], "small_backup": []}
    # (variant, the targets it runs on, the bot's side)
    variants: list[tuple[str, str, Callable[[Any, Path], dict[str, Any]]]] = [("without_cache", "sized", bot_side)]
    if with_cache:
        variants.append(("with_cache", "sized", bot_with_cache))
    if small_backup:
        variants.append(("small_backup", "small", bot_side))
    with tempfile.TemporaryDirectory(prefix="mttr-bench-") as name, LocalMongo(Path(name) / "mongo") as mongo:
        tmp = Path(name)
        targets: dict[str, dict[str, Any]] = {"sized": {}, "small": {}}
        try:
            for kind, docs in [("sized", documents)] + ([("small", 0)] if small_backup else []):
                pair = targets[kind]
                pair["bot"] = make_target(tmp / kind / "bot", mongo.uri, modules, docs)
                pair["script"] = make_target(tmp / kind / "script", mongo.uri, modules, docs, pair["bot"])
            for index in range(rounds):
                for variant, kind, bot in variants:
                    row = one_round(index, tmp / f"round-{index}" / kind, targets[kind], bot, mongo.pid)
                    results[variant].append(row)
                    print(f"  round {index} {variant} ({row['order']}): bot {row['bot_s']:.1f}s, script "
                          f"{row['script_s']:.1f}s, limit {row['limit_s']:.1f}s", flush=True)
                shutil.rmtree(tmp / f"round-{index}", ignore_errors=True)  # the bot's backups and kept builds
        finally:
            for sandbox in (sandbox for pair in targets.values() for sandbox in pair.values()):
                stop_apps(sandbox)
                drop_tenants(sandbox)
    plain = results["without_cache"]
    rows = [ratio_row(NAME, "time to restored service, no cached build", plain, "bot_s", "script_s", "s",
                      TARGET_SCRIPT, fmt="{:.1f}",
                      note=f"`/rollback start --auto` to *verify succeeded* against a bash script of the runbook's "
                           f"commands; TypeScript target, {modules} modules, {documents:,} extra cases per tenant"),
            ratio_row(NAME, "  against the limit, no cached build", plain, "bot_s", "limit_s", "s", TARGET_LIMIT,
                      fmt="{:.1f}", note="the limit: max(backup, build) + restart + verify, the script's own steps "
                                         "in the same round"),
            ratio_row(NAME, "  against the limit on this machine's cores, no cached build", plain, "bot_s",
                      "limit_on_cores_s", "s", None, fmt="{:.1f}",
                      note="informational: max(backup, build, (backup CPU s + build CPU s) / cores) + restart + "
                           "verify, the CPU seconds of the script's own steps (the local MongoDB server's included): "
                           "running both at once cannot take less than their CPU over the cores"),
            _cached_row("time to restored service, last-known-good build", results["with_cache"], "script_s",
                        TARGET_CACHED, with_cache),
            _cached_row("  against the limit, last-known-good build", results["with_cache"], "limit_s", TARGET_LIMIT,
                        with_cache)]
    if small_backup:
        small = results["small_backup"]
        rows += [ratio_row(NAME, "time to restored service, small backup, no cached build", small, "bot_s",
                           "script_s", "s", None, fmt="{:.1f}",
                           note="informational: targets of the same size with no extra cases (the backup well under "
                                "a second): the 0.6x needs a backup that hides the build; below 1 the bot is "
                                "faster than the runbook by hand"),
                 ratio_row(NAME, "  against the limit, small backup, no cached build", small, "bot_s", "limit_s",
                           "s", TARGET_LIMIT, fmt="{:.1f}")]
    for step, _ in STEPS:
        per = [{"bot": r["bot_steps_s"].get(step, float("nan")), "script": r["script_steps_s"][step]} for r in plain]
        rows.append(ratio_row(NAME, f"  step {step}", per, "bot", "script", "s", None, fmt="{:.2f}",
                              note="" if step != "backup" else "per step, no cached build: from the previous step's "
                              "*succeeded* (or the command) to this one's (bot), between the script's marks; "
                              "informational"))
    write_results(NAME, rows=rows, config={"rounds": rounds, "modules": modules, "documents_per_tenant": documents,
                                           "with_cache": with_cache, "small_backup": small_backup,
                                           "steps": [s for s, _ in STEPS]},
                  rounds=results, started=started)
    return rows


def _cached_row(figure: str, rounds: list[dict[str, Any]], base: str, limit: float, enabled: bool) -> Row:
    if enabled:
        return ratio_row(NAME, figure, rounds, "bot_s", base, "s", limit, fmt="{:.1f}",
                         note="" if base != "script_s" else "the round's rollback without a cached build kept one "
                         "(verified, incident closed); the broken deploy was put back, and a bot restarted on that "
                         "state rolled back again, timed")
    return Row(NAME, figure, "not measured", "not measured", None, f"ratio <= {limit:g}", None,
               "" if base != "script_s" else "needs the last-known-good build (issue 22 item 4); `bench/mttr.py "
               "--with-cache` measures it")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--quick", action="store_true",
                        help=f"2 rounds on a small target ({QUICK_MODULES} modules, {QUICK_DOCUMENTS:,} cases)")
    parser.add_argument("--modules", type=int, help=f"generated TypeScript modules (default {BENCH_MODULES})")
    parser.add_argument("--documents", type=int, help=f"extra cases per tenant (default {BENCH_DOCUMENTS:,})")
    parser.add_argument("--with-cache", action="store_true",
                        help="also time a rollback to a tree the bot has built before (last-known-good build)")
    parser.add_argument("--small-backup", action="store_true",
                        help="also time a rollback without a cached build on targets with no extra cases")
    parser.add_argument("--dump-into", type=Path, help=argparse.SUPPRESS)  # the script's backup step
    parser.add_argument("--env-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.dump_into:
        dump_into(args.dump_into, args.env_file)
        return 0
    if args.quick:
        args.rounds = 2
    modules = args.modules if args.modules is not None else QUICK_MODULES if args.quick else BENCH_MODULES
    documents = args.documents if args.documents is not None else QUICK_DOCUMENTS if args.quick else BENCH_DOCUMENTS
    if args.rounds < 1 or modules < 0 or documents < 0:
        parser.error("--rounds 1 or more; --modules and --documents 0 or more")
    os.environ.setdefault("LOG_LEVEL", "warning")
    print_table(run(args.rounds, modules, documents, args.with_cache, args.small_backup))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
