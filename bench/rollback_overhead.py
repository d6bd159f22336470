"""Wall time of the bot's runbook, backup → revert → rebuild → restart → verify, against a plain script doing
the same commands.

Each round makes two identical sandbox targets (git history ending in the broken Phase 3, the app built and
running under its own pm2, tenant data on a local nx-27017) and runs, in an order that alternates per round:

- **the bot**: an in-process bot (``socket_mode_bot``, default config, SQLite state) on the emulated Slack
  (``rate_limits=False``); an incident is opened first (not timed); then ``/rollback backup``, ``revert``,
  ``rebuild``, ``restart`` and ``verify`` are typed, each the moment the previous one's thread message says
  *succeeded*. Timed from the first command to the last *succeeded*.
- **the script**: one plain sequential Python function, no Slack, no store, in the same process: ``git log -1
  --oneline`` to a file; every collection of the central ``schools`` and of each tenant read with ``find()``,
  ``bson.encode``-d and written (sha256 and count on the way, fsynced, index metadata beside it); ``pm2 jlist``,
  then the last 500 lines of each app's out and error log files read directly (as the bot does, not ``pm2
  logs``); ``.env`` copied; a manifest; ``git status``/``stash`` if dirty, ``git reset --hard <target>``, ``git
  log --oneline -5``; ``yarn build``; ``pm2 jlist`` (pids), ``pm2 restart <app>``, then ``pm2 jlist`` every
  0.25 s until the app is online with a new pid (as the bot waits); the health URL every 0.2 s until it
  answers ok (as a person's ``curl`` loop does), then ``/api/internship`` with the bearer token; ``pm2 jlist``
  and the error log lines since the restart.

Same environment on both sides: yarn and pm2 get exactly the bot's allow-listed child environment
(``bot.ops.process.child_env`` with the same extra variables: ``PM2_HOME``; ``YARN_CACHE_FOLDER``, ``CI``);
git runs with this process's environment on both sides (the bot's GitPython passes it on). Both targets must
end healthy. Target: the bot within 1.15x of the script (per-round ratio, median).

    .venv/bin/python bench/rollback_overhead.py [--rounds 5] [--quick]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
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

NAME = "rollback_overhead"
TARGET = 1.15
STEPS = [("backup", "Backup current state"), ("revert", "Revert code"), ("rebuild", "Rebuild backend"),
         ("restart", "Restart backend"), ("verify", "Verify rollback")]


# ---- the bot ---------------------------------------------------------------------------------------------------
def bot_side(sandbox: Any, data_dir: Path) -> dict[str, Any]:
    from bot.app import socket_mode_bot
    from bot.dev.emulator import Emulator

    with Emulator(rate_limits=False) as emulator:
        bot = socket_mode_bot(bot_settings(emulator, bot_config(sandbox, data_dir))).start()
        try:
            emulator.slash("casey", "incident-rollback", "start rollback overhead benchmark").wait()
            panel = emulator.ws.wait_for(lambda: [m for m in emulator.ws.channel_messages(INCIDENT_CHANNEL)
                                                  if m.get("blocks")], 15, "the control panel")[0]
            steps: dict[str, float] = {}
            started = time.perf_counter()
            for step, title in STEPS:
                begun = time.perf_counter()
                emulator.slash("casey", "incident-rollback", step).wait()

                def finished(title: str = title) -> str | None:
                    for message in emulator.ws.thread(INCIDENT_CHANNEL, panel["ts"]):
                        if f"*{title}* — succeeded" in message["text"]:
                            return str(message["text"])
                        if f"*{title}* — failed" in message["text"]:
                            raise RuntimeError(message["text"][:500])
                    return None

                emulator.ws.wait_for(finished, 180, f"{step} to finish")
                steps[step] = time.perf_counter() - begun
            total = time.perf_counter() - started
            rejected = [f"{r.method}: {r.error}" for r in emulator.rejections]
        finally:
            bot.close()
    if rejected:
        raise RuntimeError(f"the emulated Slack refused calls: {rejected[:5]}")
    return {"total_s": total, "steps_s": steps}


# ---- the plain script ------------------------------------------------------------------------------------------
def _sh(argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[:3]} failed: {done.stdout[-300:]} {done.stderr[-300:]}")
    return done.stdout


def _jlist(pm2: str, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    out = _sh([pm2, "jlist"], env=env)
    return {p["name"]: p for p in json.loads(out[out.find("["):])}


def _tail(path: str | None, lines: int, since: int = 0) -> list[str]:
    if not path or not os.path.exists(path):
        return []
    with open(path, "rb") as handle:
        size = handle.seek(0, 2)
        handle.seek(max(since, size - 256 * 1024))
        return handle.read().decode("utf-8", "replace").splitlines()[-lines:]


def plain_script(sandbox: Any, out: Path) -> dict[str, Any]:
    import bson
    from pymongo import MongoClient

    from bot.ops.probe import probe
    from bot.ops.process import child_env, find_executable

    pm2, yarn = find_executable("pm2"), find_executable("yarn")
    assert pm2 and yarn
    pm2_env = child_env({"PM2_HOME": str(sandbox.pm2_home)})
    scratch = sandbox.root / "script-tmp"  # yarn's temp folder (it leaves a folder there at every `yarn run`),
    scratch.mkdir(exist_ok=True)  # kept across rounds like /tmp would be, removed with the sandbox
    yarn_env = child_env({"YARN_CACHE_FOLDER": str(sandbox.repo / ".yarn-cache"), "CI": "true",
                          "TMPDIR": str(scratch)})
    repo, app = sandbox.repo, sandbox.apps[0]
    steps: dict[str, float] = {}
    started = begun = time.perf_counter()

    # 1. backup
    out.mkdir(parents=True, mode=0o700)
    (out / "rollback_from_commit.txt").write_text(_sh(["git", "log", "-1", "--oneline"], cwd=repo))
    env_file = (repo / ".env").read_text()
    uri = next(line.split("=", 1)[1] for line in env_file.splitlines() if line.startswith("CENTRAL_DB_URI="))
    client: MongoClient[dict[str, Any]] = MongoClient(uri, tz_aware=True)
    manifest: dict[str, Any] = {}
    try:
        central = client.get_default_database()
        jobs = [(central.name, ["schools"])]
        jobs += [(school["db_name"], None) for school in central.schools.find({"deleted_at": None})]
        for db_name, only in jobs:
            db = client[db_name]
            folder = out / db_name
            folder.mkdir(mode=0o700)
            for name in sorted(only or db.list_collection_names()):
                digest, count = hashlib.sha256(), 0
                with open(folder / f"{name}.bson", "wb") as handle:
                    for document in db[name].find({}):
                        data = bson.encode(document)
                        handle.write(data)
                        digest.update(data)
                        count += 1
                    handle.flush()
                    os.fsync(handle.fileno())
                indexes = [{"key": dict(i.get("key", [])), "name": n} for n, i in db[name].index_information().items()]
                (folder / f"{name}.metadata.json").write_text(json.dumps({"indexes": indexes}))
                manifest.setdefault(db_name, {})[name] = {"count": count, "sha256": digest.hexdigest()}
    finally:
        client.close()
    apps = _jlist(pm2, pm2_env)
    (out / "pm2").mkdir(mode=0o700)
    for name in sandbox.apps:
        env = apps[name]["pm2_env"]
        lines = _tail(env.get("pm_out_log_path"), 500) + ["--- stderr ---"] + _tail(env.get("pm_err_log_path"), 500)
        (out / "pm2" / f"{name}.log").write_text("\n".join(lines) + "\n")
    (out / "env.backup").write_text(env_file)
    os.chmod(out / "env.backup", 0o600)
    (out / "manifest.json").write_text(json.dumps(manifest))
    steps["backup"] = time.perf_counter() - begun

    # 2. revert
    begun = time.perf_counter()
    if _sh(["git", "status", "--porcelain"], cwd=repo).strip():
        _sh(["git", "stash", "push", "--include-untracked", "--message", "before revert"], cwd=repo)
    _sh(["git", "reset", "--hard", sandbox.good_commit], cwd=repo)
    _sh(["git", "log", "--oneline", "-5"], cwd=repo)
    steps["revert"] = time.perf_counter() - begun

    # 3. rebuild
    begun = time.perf_counter()
    _sh([yarn, "build"], cwd=repo, env=yarn_env)
    steps["rebuild"] = time.perf_counter() - begun

    # 4. restart, and wait until online with a new pid
    begun = time.perf_counter()
    before = _jlist(pm2, pm2_env)[app]
    err_log = before["pm2_env"].get("pm_err_log_path")
    offset = os.path.getsize(err_log) if err_log and os.path.exists(err_log) else 0
    _sh([pm2, "restart", app], env=pm2_env)
    deadline = time.monotonic() + 20
    while True:
        now = _jlist(pm2, pm2_env)[app]
        if now["pm2_env"]["status"] == "online" and now["pid"] != before["pid"]:
            break
        if time.monotonic() > deadline:
            raise RuntimeError("the script's restart did not come online")
        time.sleep(0.25)
    _tail(err_log, 50, since=offset)
    steps["restart"] = time.perf_counter() - begun

    # 5. verify: health until it answers ok, as a person's curl loop does (a starting app is waited for, as the
    # bot's verify does; once, an app slow to listen failed the script's single probe)
    begun = time.perf_counter()
    deadline = time.monotonic() + 30
    while not (health := probe(sandbox.health_url, timeout=8, expect_json={"status": "ok"}, slow_after=5)).ok:
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    token = sandbox.canaries["HEALTH_BEARER_TOKEN"]
    core = probe(sandbox.health_url.replace("/api/health", "/api/internship"), timeout=8, expect_status=200,
                 bearer=token, slow_after=5)
    states = _jlist(pm2, pm2_env)
    for name in sandbox.apps:
        _tail(states[name]["pm2_env"].get("pm_err_log_path"), 50, since=offset if name == app else 0)
    if not (health.ok and core.ok):
        raise RuntimeError(f"the script's verify failed: {health.detail}; {core.detail}")
    steps["verify"] = time.perf_counter() - begun
    return {"total_s": time.perf_counter() - started, "steps_s": steps}


# ---- the benchmark -----------------------------------------------------------------------------------------------
def one_round(index: int, tmp: Path, mongo_uri: str) -> dict[str, Any]:
    from bot.dev.sandbox import create_sandbox, drop_tenants, start_apps, stop_apps
    from bot.ops.probe import probe

    folder = tmp / f"round-{index}"
    sandboxes = [create_sandbox(folder / side, mongo_uri=mongo_uri, local_server=True) for side in ("bot", "script")]
    try:
        for sandbox in sandboxes:
            start_apps(sandbox)
        ours, theirs, order = interleave(index, lambda: bot_side(sandboxes[0], folder / "bot-data"),
                                         lambda: plain_script(sandboxes[1], folder / "script-backup"))
        for sandbox in sandboxes:
            result = probe(sandbox.health_url, timeout=5, expect_json={"status": "ok"})
            if not result.ok:
                raise RuntimeError(f"a sandbox did not end healthy: {result.detail}")
        return {"round": index, "order": order, "bot_s": ours["total_s"], "script_s": theirs["total_s"],
                "bot_steps_s": ours["steps_s"], "script_steps_s": theirs["steps_s"]}
    finally:
        for sandbox in sandboxes:
            stop_apps(sandbox)
            drop_tenants(sandbox)


def run(rounds: int) -> list[Row]:
    from bot.dev.localmongo import LocalMongo

    started = time.monotonic()
    results = []
    with tempfile.TemporaryDirectory(prefix="rollback-bench-") as name, LocalMongo(Path(name) / "mongo") as mongo:
        for index in range(rounds):
            row = one_round(index, Path(name), mongo.uri)
            results.append(row)
            print(f"  round {index} ({row['order']}): bot {row['bot_s']:.2f}s, script {row['script_s']:.2f}s",
                  flush=True)
    rows = [ratio_row(NAME, "backup → verify wall time", results, "bot_s", "script_s", "s", TARGET, fmt="{:.2f}")]
    for step, _ in STEPS:
        per = [{"bot": r["bot_steps_s"][step], "script": r["script_steps_s"][step]} for r in results]
        rows.append(ratio_row(NAME, f"  step {step}", per, "bot", "script", "s", None, fmt="{:.2f}",
                              note="" if step != "backup" else "per step, from the command to its *succeeded* "
                              "message (bot) or the step's start to its end (script); informational"))
    write_results(NAME, rows=rows, config={"rounds": rounds, "steps": [s for s, _ in STEPS]},
                  rounds={"rounds": results}, started=started)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--quick", action="store_true", help="2 rounds")
    args = parser.parse_args()
    if args.quick:
        args.rounds = 2
    os.environ.setdefault("LOG_LEVEL", "warning")
    print_table(run(args.rounds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
