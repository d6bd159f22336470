"""End to end against the sandbox: real git, real yarn, real pm2, real HTTP, tenant data in MongoDB."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import git
import pytest

from bot.app import SocketModeBot
from bot.config import Settings
from bot.dev.emulator import Emulator
from bot.dev.sandbox import Sandbox
from bot.domain.incident import Milestone
from bot.ops import tenants
from bot.ops.probe import probe
from tests.conftest import COMMANDER, INCIDENT, checklists_message

pytestmark = pytest.mark.slow

TITLES = {"backup": "Backup current state", "revert": "Revert code", "rebuild": "Rebuild backend",
          "restart": "Restart backend", "verify": "Verify rollback"}


def panel_ts(emulator: Emulator) -> str:
    def find() -> str | None:
        for m in emulator.ws.channel_messages(INCIDENT):
            if m.get("blocks") and m["blocks"][0].get("type") == "header":
                return str(m["ts"])
        return None

    return emulator.ws.wait_for(find, 10, "the control panel")


def run_step(emulator: Emulator, ts: str, text: str, timeout: float = 120) -> str:
    """Type `/rollback <text>` and wait for the step's progress message to say how it ended."""
    name = text.split()[0]
    before = len([m for m in emulator.ws.thread(INCIDENT, ts) if f"*{TITLES[name]}* —" in m["text"]])
    emulator.slash("casey", "incident-rollback", text).wait()

    def finished() -> str | None:
        found = [m["text"] for m in emulator.ws.thread(INCIDENT, ts) if f"*{TITLES[name]}* —" in m["text"]]
        for message in found[before:]:
            if "— succeeded" in message or "— failed" in message:
                return message
        return None

    return emulator.ws.wait_for(finished, timeout, f"{name} to finish")


def source_counts(sandbox: Sandbox) -> dict[str, dict[str, int]]:
    client = tenants.connect(sandbox.central_uri)
    try:
        counts = {db: {c: client[db][c].count_documents({}) for c in client[db].list_collection_names()}
                  for db in sandbox.tenant_dbs}
        counts["_central"] = {"schools": client[tenants.default_database(sandbox.central_uri)].schools.count_documents(
            {})}
        return counts
    finally:
        tenants.close(client)


def test_a_full_rollback_takes_the_broken_sandbox_back_to_healthy(
        emulator: Emulator, live_sandbox: Sandbox, settings: Settings,
        start_bot: Callable[..., SocketModeBot], monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.ops.pm2 import Pm2

    sandbox = live_sandbox
    monkeypatch.setenv("TZ", "Etc/GMT+5")  # in the bot's environment (passed to pm2), not in the apps'
    pm2 = Pm2(home=sandbox.pm2_home)
    before = {s.name: s for s in pm2.jlist()}
    repo = git.Repo(sandbox.repo)
    (sandbox.repo / "src" / "wip.js").write_text("// someone's half-done fix\n")
    (sandbox.repo / "build.js").write_text((sandbox.repo / "build.js").read_text() + "// local tweak\n")
    assert probe(sandbox.health_url, timeout=5).status == 500
    bot = start_bot()
    emulator.slash("casey", "incident-rollback", "start health returns 500 after Phase 3").wait()
    ts = panel_ts(emulator)

    backup = run_step(emulator, ts, "backup")
    assert "— succeeded" in backup and "3 tenant database(s) backed up" in backup and "counts verified" in backup
    revert = run_step(emulator, ts, "revert")
    assert "— succeeded" in revert and "uncommitted work stashed" in revert
    assert "— succeeded" in run_step(emulator, ts, "rebuild")
    assert "— succeeded" in run_step(emulator, ts, "restart")
    after = {s.name: s for s in pm2.jlist()}
    ai = "ai-professor-python"  # the runbook restarts only the backend; the AI server keeps running as it was
    assert (after[ai].pid, after[ai].restarts) == (before[ai].pid, before[ai].restarts)
    backend = after["ai-professor-backend-5000"]
    assert backend.pid != before["ai-professor-backend-5000"].pid
    environ = Path(f"/proc/{backend.pid}/environ").read_bytes().split(b"\0")
    assert b"TZ=Etc/GMT+5" not in environ  # no --update-env: the app keeps its own environment
    verify = run_step(emulator, ts, "verify")
    assert "— succeeded" in verify and "all 4 checks passed" in verify

    # the system is healthy again, at the known-good commit
    healthy = probe(sandbox.health_url, timeout=5, expect_json={"status": "ok"})
    assert healthy.ok, healthy.detail
    assert repo.head.commit.hexsha == sandbox.good_commit
    # nothing was lost: the uncommitted work is in a stash named after the incident
    stashes = repo.git.stash("list")
    assert "rollback-bot RB-0001: before revert" in stashes
    stashed = repo.git.stash("show", "--include-untracked", "--name-only", "stash@{0}")
    assert "src/wip.js" in stashed and "build.js" in stashed
    # the backup: one immutable run folder, manifest counts equal the source, mongorestore's layout, all private
    runs = list((settings.data_dir / "backups" / "RB-0001").glob("RB-0001-backup-*"))
    assert len(runs) == 1
    backup_dir = runs[0]
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    expected = source_counts(sandbox)
    for db in sandbox.tenant_dbs:
        assert {c: v["count"] for c, v in manifest["databases"][db].items()} == expected[db]
        assert (backup_dir / db / "internshipcases.bson").stat().st_size > 0
        assert (backup_dir / db / "internshipcases.metadata.json").exists()
    assert manifest["databases"][manifest["central_database"]]["schools"]["count"] == expected["_central"]["schools"]
    assert oct((backup_dir / "env.backup").stat().st_mode & 0o777) == "0o600"
    assert oct(backup_dir.stat().st_mode & 0o777) == "0o700"
    assert all(oct(f.stat().st_mode & 0o777) == "0o600" for f in backup_dir.rglob("*") if f.is_file())
    assert all(oct(d.stat().st_mode & 0o777) == "0o700" for d in backup_dir.rglob("*") if d.is_dir())
    assert (backup_dir / "pm2" / "ai-professor-backend-5000.log").exists()
    # the record: milestones, audit chain, checklist ticks
    incident = bot.services.store.get_incident("RB-0001")
    assert incident is not None and Milestone.ROLLBACK_COMPLETED in incident.milestones
    assert {"backup_db", "pm2_logs", "commit"} <= set(incident.checklist)
    assert bot.services.store.verify_audit().ok
    actions = [e.action for e in bot.services.store.audit_events("RB-0001")]
    assert actions.count("step.finished") == 5
    # the panel shows every step done, updated in place, and what is next; the checklists show the bot's ticks
    panel = emulator.ws.message(INCIDENT, ts)
    assert panel is not None
    assert "✅ Backup  →  ✅ Revert  →  ✅ Rebuild  →  ✅ Restart  →  ✅ Verify" in str(panel["blocks"])
    assert "*Next:* confirm the success criteria" in str(panel["blocks"])
    lists = str(checklists_message(emulator)["blocks"])
    for item in ("✅ Backup current database state", "✅ Save current PM2 logs", "✅ Note the current git commit hash"):
        assert item in lists, item
    # no secret from the target's .env ever reached Slack
    everything = emulator.ws.all_text()
    password = sandbox.canaries["CENTRAL_DB_URI"].split("@")[0].rsplit(":", 1)[1]
    for name, value in [*sandbox.canaries.items(), ("the database password", password)]:
        assert value not in everything, f"{name} leaked into Slack"


def test_restart_after_revert_needs_a_rebuild_and_repeats_need_again(
        emulator: Emulator, live_sandbox: Sandbox, settings: Settings,
        start_bot: Callable[..., SocketModeBot]) -> None:
    start_bot()
    emulator.slash("casey", "incident-rollback", "start").wait()
    ts = panel_ts(emulator)
    emulator.slash("casey", "incident-rollback", "revert").wait()
    refusal = emulator.ws.wait_for(lambda: [e.text for e in emulator.ws.ephemerals_for(COMMANDER)
                                            if "backs up before reverting" in e.text], 20, "the refusal")
    assert "/rollback backup" in refusal[0]
    assert "— succeeded" in run_step(emulator, ts, "backup")
    assert "— succeeded" in run_step(emulator, ts, "revert")
    emulator.slash("casey", "incident-rollback", "restart").wait()
    refused = emulator.ws.wait_for(lambda: [e.text for e in emulator.ws.ephemerals_for(COMMANDER)
                                            if "not rebuilt since" in e.text], 20, "the restart refusal")
    assert "/rollback rebuild" in refused[0]
    emulator.slash("casey", "incident-rollback", "backup").wait()
    again = emulator.ws.wait_for(lambda: [e.text for e in emulator.ws.ephemerals_for(COMMANDER)
                                          if "already succeeded" in e.text], 20, "the repeat question")
    assert "/rollback backup --again" in again[0]
    assert "— succeeded" in run_step(emulator, ts, "backup --again")


@pytest.mark.parametrize("argument", [
    "'; rm -rf /'", "'$(touch /tmp/pwned)'", "'`id`'", "--upload-pack=evil", "-c core.sshCommand=evil",
    "../../etc/passwd", "HEAD~3", "main", "a" * 300, "'df5b229 ; ls'", "\u0661\u0662\u0663\u0664\u0665\u0666\u0667",
])
def test_injection_attempts_in_revert_are_refused_and_change_nothing(
        emulator: Emulator, sandbox: Sandbox, settings: Settings, start_bot: Callable[..., SocketModeBot],
        argument: str) -> None:
    bot = start_bot()
    repo = git.Repo(sandbox.repo)
    head = repo.head.commit.hexsha
    emulator.slash("casey", "incident-rollback", "start").wait()
    panel_ts(emulator)
    emulator.slash("casey", "incident-rollback", f"revert {argument}").wait()
    text = emulator.ws.wait_for(lambda: [e.text for e in emulator.ws.ephemerals_for(COMMANDER)], 10, "a reply")[-1]
    assert any(hint in text for hint in ("not a commit id", "is not an option", "characters long", "one commit")), text
    assert repo.head.commit.hexsha == head and not Path("/tmp/pwned").exists()
    assert bot.services.store.step_runs("RB-0001") == []


def test_a_step_left_running_by_this_replicas_previous_process_is_interrupted_at_once_on_restart(
        emulator: Emulator, sandbox: Sandbox, settings: Settings, start_bot: Callable[..., SocketModeBot]) -> None:
    from bot.domain.incident import Busy, BusyKind
    from bot.domain.ownership import Owner
    from bot.domain.runs import StepName, StepRun, StepStatus

    first = start_bot()
    emulator.slash("casey", "incident-rollback", "start").wait()
    ts = panel_ts(emulator)
    store = first.services.store
    me = first.services.deps.replica.owner
    # the previous process of this very replica died in the middle of a backup, a second ago (no stale heartbeat)
    dead = Owner(replica=me.replica, instance="an-earlier-process", host=me.host, pid=1, started_at=me.started_at)
    now = first.services.clock.now()
    store.add_step_run(StepRun(id="RB-0001-backup-dead", incident_id="RB-0001", step=StepName.BACKUP, actor=COMMANDER,
                               started_at=now, summary="Back up 3 tenant databases", owner=dead))

    def running(incident: Any) -> None:
        incident.busy = Busy(kind=BusyKind.STEP, ref="RB-0001-backup-dead", name="backup", actor=COMMANDER,
                             owner=dead, since=now)

    first.services.desk.mutate("RB-0001", running)
    first.close()
    second = start_bot()  # the restart recovers it at once: this process holds the replica lock
    run = emulator.ws.wait_for(lambda: (r := second.services.store.get_step_run("RB-0001-backup-dead"))
                               and r.status is StepStatus.INTERRUPTED and r, 10, "the step marked interrupted")
    assert "can be run again" in run.summary
    emulator.ws.wait_for(lambda: any("interrupted" in m["text"] for m in emulator.ws.thread(INCIDENT, ts)), 10,
                         "the thread told")
    assert second.services.store.get_incident("RB-0001").busy is None  # type: ignore[union-attr]
    assert "— succeeded" in run_step(emulator, ts, "backup")  # no --again needed after an interruption


def test_the_panel_button_runs_the_same_step_and_one_step_runs_at_a_time(
        emulator: Emulator, live_sandbox: Sandbox, settings: Settings,
        start_bot: Callable[..., SocketModeBot]) -> None:
    package = live_sandbox.repo / "package.json"
    package.write_text(package.read_text().replace('"node build.js"', '"sleep 2 && node build.js"'))
    start_bot()
    emulator.slash("casey", "incident-rollback", "start").wait()
    ts = panel_ts(emulator)
    emulator.click("casey", "incident-rollback", ts, "rollback_step:rebuild").wait()
    emulator.ws.wait_for(lambda: any("*Rebuild backend* — starting" in m["text"] or "*Rebuild backend* — yarn"
                                     in m["text"] for m in emulator.ws.thread(INCIDENT, ts)), 30, "rebuild to start")
    emulator.slash("casey", "incident-rollback", "verify").wait()
    busy = emulator.ws.wait_for(lambda: [e.text for e in emulator.ws.ephemerals_for(COMMANDER)
                                         if "still running" in e.text], 10, "the one-at-a-time refusal")
    assert "`rebuild` (a step) is still running" in busy[0]
    emulator.ws.wait_for(lambda: [m["text"] for m in emulator.ws.thread(INCIDENT, ts)
                                         if "*Rebuild backend* — succeeded" in m["text"]], 30, "rebuild to finish")
    steps = [str(m["blocks"]) for m in emulator.ws.thread(INCIDENT, ts) if "*Rebuild backend*" in str(m["blocks"])]
    assert len(steps) == 1  # one message per step run: its plan, then its result, updated in place
    assert "*Rebuild backend* requested by <@U0COMMANDER>" in steps[0] and "— succeeded" in steps[0]
