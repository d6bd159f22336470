"""Wall time of the bot's full rollback against the same commands as a plain shell script.

Two identical sandboxes (same history, same tenant data, both running under their own pm2) are
made in one run. On one, the bot runs backup → revert → rebuild → restart → verify through the
emulator, each command typed the moment the previous one finished. On the other, a bash script
runs the same work: record the commit, dump every tenant database (pymongo + bson: no mongodump
exists here), save pm2 logs and .env, stash and `git reset --hard`, `yarn build`, `pm2 restart`,
then the health and core-endpoint checks. Both must end healthy. The ratio bot/script is reported
(target <= 1.15), also against the runbook's literal script, which waits a fixed `sleep 5` after the
restart where the bot polls `pm2 jlist`.

    .venv/bin/python bench/rollback_overhead.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.app import socket_mode_bot  # noqa: E402
from bot.emulator import Emulator  # noqa: E402
from bot.ops.health import probe  # noqa: E402
from bot.ops.process import PROJECT_TOOLS  # noqa: E402
from bot.sandbox import Sandbox, create_sandbox, start_apps, stop_apps  # noqa: E402
from tests.conftest import INCIDENT, make_settings  # noqa: E402

SCRIPT = r"""
set -euo pipefail
cd "$REPO"
mkdir -p "$OUT"
# Step 1: backup
git log -1 --oneline > "$OUT/rollback_from_commit.txt"
"$PY" - <<'PYEOF'
import hashlib, json, os, pathlib, bson, mongomock
from bson import json_util
out = pathlib.Path(os.environ["OUT"])
data = json_util.loads(pathlib.Path(os.environ["SEED"]).read_text())
client = mongomock.MongoClient()
for db, cols in data.items():
    for name, docs in cols.items():
        if docs:
            client[db][name].insert_many(docs)
manifest = {}
for db in json.loads(os.environ["DBS"]):
    (out / db).mkdir(parents=True, exist_ok=True)
    for name in client[db].list_collection_names():
        raw = b"".join(bson.encode(d) for d in client[db][name].find({}, sort=[("_id", 1)]))
        (out / db / f"{name}.bson").write_bytes(raw)
        manifest.setdefault(db, {})[name] = {"count": client[db][name].count_documents({}),
                                             "sha256": hashlib.sha256(raw).hexdigest()}
(out / "manifest.json").write_text(json.dumps(manifest))
PYEOF
pm2 logs ai-professor-backend-5000 --lines 500 --nostream > "$OUT/backend.log"
pm2 logs ai-professor-python --lines 500 --nostream > "$OUT/python.log"
install -m 600 .env "$OUT/env.backup"
# Step 2: revert (stash first, like the bot)
git stash push --include-untracked --message "before revert" >/dev/null || true
git reset --hard "$TARGET"
git log --oneline -5
# Step 3: rebuild
yarn build
# Step 4: restart
pm2 restart ai-professor-backend-5000 ai-professor-python --update-env
if [ "${RUNBOOK_SLEEP:-0}" = 1 ]; then sleep 5; fi
pm2 jlist > /dev/null
# Step 5: verify
curl -sf "$HEALTH" | grep -q '"status":"ok"'
curl -sf -H "Authorization: Bearer $BEARER" "${HEALTH%/api/health}/api/internship" > /dev/null
"""


def fresh_sandbox(tmp: Path, name: str) -> Sandbox:
    sandbox = create_sandbox(tmp / name)
    start_apps(sandbox)
    return sandbox


def run_script(sandbox: Sandbox, tmp: Path, runbook_sleep: bool) -> float:
    env = {**os.environ, "REPO": str(sandbox.repo), "OUT": str(tmp / "script-backup"), "PY": sys.executable,
           "SEED": str(sandbox.root / "tenant-seed.json"), "DBS": json.dumps(list(sandbox.tenant_dbs)),
           "TARGET": sandbox.good_commit, "HEALTH": sandbox.health_url, "PM2_HOME": str(sandbox.pm2_home),
           "BEARER": sandbox.canaries["HEALTH_BEARER_TOKEN"], "RUNBOOK_SLEEP": "1" if runbook_sleep else "0",
           "PATH": f"{PROJECT_TOOLS}{os.pathsep}{os.environ['PATH']}"}
    started = time.monotonic()
    subprocess.run(["bash", "-c", SCRIPT], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def run_bot(sandbox: Sandbox, tmp: Path) -> float:
    with Emulator() as emulator:
        bot = socket_mode_bot(make_settings(emulator, sandbox, tmp / "bot-data")).start()
        try:
            emulator.slash("casey", "incident-rollback", "start bench").wait()
            panel = emulator.ws.wait_for(lambda: [m for m in emulator.ws.channel_messages(INCIDENT)
                                                  if m.get("blocks")], 10, "panel")[0]
            started = time.monotonic()
            for step, title in (("backup", "Backup current state"), ("revert", "Revert code"),
                                ("rebuild", "Rebuild backend"), ("restart", "Restart backend"),
                                ("verify", "Verify rollback")):
                emulator.slash("casey", "incident-rollback", step).wait()

                def finished(title: str = title) -> str | None:
                    for message in emulator.ws.thread(INCIDENT, panel["ts"]):
                        if f"*{title}* — succeeded" in message["text"]:
                            return str(message["text"])
                        if f"*{title}* — failed" in message["text"]:
                            raise RuntimeError(message["text"])
                    return None

                emulator.ws.wait_for(finished, 120, f"{step} to finish")
            return time.monotonic() - started
        finally:
            bot.close()


def one_round() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="rollback-bench-") as name:
        tmp = Path(name)
        sandboxes = [fresh_sandbox(tmp, f"sandbox-{i}") for i in range(3)]
        try:
            times = {"bot": run_bot(sandboxes[0], tmp),
                     "script": run_script(sandboxes[1], tmp / "a", runbook_sleep=False),
                     "runbook_script": run_script(sandboxes[2], tmp / "b", runbook_sleep=True)}
            for sandbox in sandboxes:
                result = probe(sandbox.health_url, timeout=5, expect_json={"status": "ok"})
                if not result.ok:
                    raise RuntimeError(f"a sandbox did not end healthy: {result.detail}")
            return times
        finally:
            for sandbox in sandboxes:
                stop_apps(sandbox)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rounds = [one_round() for _ in range(args.rounds)]
    median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    ratio = median["bot"] / median["script"]
    ratio_runbook = median["bot"] / median["runbook_script"]
    print(f"{'run':<34}{'median s':>10}  rounds")
    for key, label in (("bot", "rollback-bot (through Slack)"), ("script", "same commands, plain bash"),
                       ("runbook_script", "runbook literal (sleep 5)")):
        print(f"{label:<34}{median[key]:>10.2f}  " + ", ".join(f"{r[key]:.2f}" for r in rounds))
    print(f"ratio bot / script: {ratio:.2f} (target <= 1.15); bot / runbook literal: {ratio_runbook:.2f}")
    out = ROOT / "bench" / "results" / "rollback_overhead.json"
    out.write_text(json.dumps({"rounds": rounds, "median_s": median, "ratio": ratio,
                               "ratio_vs_runbook_literal": ratio_runbook, "target": "ratio <= 1.15"}, indent=2) + "\n")
    print(f"written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
