"""The runbook's safer alternatives end to end against the sandbox: real git, yarn, pm2 and HTTP."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import git
import pytest

from bot.app import SocketModeBot
from bot.dev.emulator import Emulator
from bot.dev.sandbox import Sandbox
from bot.ids import Action
from bot.ops.probe import probe
from tests.conftest import COMMANDER, INCIDENT, content
from tests.runbook.test_full_rollback import panel_ts


def finished(emulator: Emulator, ts: str, title: str, count: int = 1, timeout: float = 120) -> str:
    """The text of the `count`-th run of the step `title` once it has ended."""
    def probe_() -> str | None:
        ended = [content(m) for m in emulator.ws.thread(INCIDENT, ts) if f"*{title}* —" in m["text"]
                 and ("— succeeded" in m["text"] or "— failed" in m["text"])]
        return ended[count - 1] if len(ended) >= count else None

    return emulator.ws.wait_for(probe_, timeout, f"{title} #{count}")


def started(emulator: Emulator, bot: SocketModeBot, reason: str = "health 500 after Phase 3") -> str:
    emulator.slash("casey", "incident-rollback", f"start {reason}").wait()
    return panel_ts(emulator)


def everything_said(emulator: Emulator, bot: SocketModeBot) -> str:
    ws = emulator.ws
    said = [str(m) for c in ws.channels for m in ws.channel_messages(c, include_replies=True)]
    said += [f"{e.text} {e.blocks}" for e in ws.ephemerals_for()]
    said += [e.model_dump_json() for e in bot.services.store.audit_events()]
    return "\n".join(said)


@pytest.mark.slow
def test_a_flag_turns_the_feature_off_restarts_verifies_and_undo_puts_it_back(
        emulator: Emulator, live_sandbox: Sandbox, start_bot: Callable[..., SocketModeBot]) -> None:
    env = live_sandbox.repo / ".env"
    before, mode = env.read_text(), env.stat().st_mode & 0o777
    assert probe(live_sandbox.health_url, timeout=5).status == 500
    bot = start_bot()
    ts = started(emulator, bot)
    emulator.slash("casey", "incident-rollback", "flag ENABLE_REALTIME_TIPS=false").wait()
    assert "— succeeded" in finished(emulator, ts, "Feature flag")
    assert "— succeeded" in finished(emulator, ts, "Verify rollback")
    plan = next(content(m) for m in emulator.ws.thread(INCIDENT, ts) if "*Feature flag* requested" in content(m))
    assert "`true` → `false`" in plan
    text = env.read_text()
    assert text == before.replace("ENABLE_REALTIME_TIPS=true", "ENABLE_REALTIME_TIPS=false")  # edited in place
    assert text.count("ENABLE_REALTIME_TIPS=") == 1 and text.startswith("# backend settings\n")
    assert env.stat().st_mode & 0o777 == mode
    assert probe(live_sandbox.health_url, timeout=5).status == 200
    backups = list((bot.services.settings.data_dir / "backups" / "RB-0001" / "env").iterdir())
    assert len(backups) == 1 and backups[0].read_text() == before and backups[0].stat().st_mode & 0o777 == 0o600

    emulator.slash("casey", "incident-rollback", "flag undo").wait()
    assert "— succeeded" in finished(emulator, ts, "Feature flag", 2)
    assert "— failed" in finished(emulator, ts, "Verify rollback", 2)  # the feature is back, and so is the 500
    assert env.read_text() == before
    assert probe(live_sandbox.health_url, timeout=5).status == 500


@pytest.mark.parametrize("assignment", ["JWT_SECRET=brand-new-secret-42", "CENTRAL_DB_URI=mongodb://elsewhere/x",
                                        "HEALTH_BEARER_TOKEN=guess", "PORT=1"])
def test_flag_refuses_settings_and_secrets_already_in_env(
        emulator: Emulator, sandbox: Sandbox, start_bot: Callable[..., SocketModeBot], assignment: str) -> None:
    bot = start_bot()
    started(emulator, bot)
    before = (sandbox.repo / ".env").read_text()
    emulator.slash("casey", "incident-rollback", f"flag {assignment}").wait()
    refusal = emulator.ws.wait_for(lambda: next((e.text for e in emulator.ws.ephemerals_for(COMMANDER)
                                                 if "not a feature flag" in e.text), None), 10, "the refusal")
    assert "ENABLE_REALTIME_TIPS" in refusal  # it says which flags can be set
    assert (sandbox.repo / ".env").read_text() == before
    assert bot.services.store.step_runs("RB-0001") == []
    said = everything_said(emulator, bot)
    assert "brand-new-secret-42" not in said and "elsewhere" not in said


BAD = [
    ("flag UNKNOWN_FLAG=1", "not in the target's .env"),
    ("flag ENABLE_REALTIME_TIPS=$(reboot)", "cannot go in .env"),
    ("flag ENABLE_REALTIME_TIPS='a;b'", "cannot go in .env"),
    ("flag --evil=1", "is not an option"),
    ("flag lower_case=1", "is not a flag name"),
    ("flag ENABLE_REALTIME_TIPS", "Say which flag"),
    ("partial ../../etc/passwd", "is not a path inside the repository"),
    ("partial /etc/passwd", "is not a path inside the repository"),
    ("partial -rf", "is not an option"),
    ("partial src/missing.js", "is not a tracked file"),
    ("partial escape.js", "leads outside the repository"),
    ("partial src/server.js HEAD~1", "is not a commit id"),
    ("hotfix ../../main", "cannot be a branch name"),
    ("hotfix -b", "is not an option"),
    ("hotfix a..b", "cannot be a branch name"),
    ("hotfix 'two words'", "cannot be a branch name"),
    ("hotfix ship", "not a hotfix branch"),
    ("revert --safe zzzzzzz", "is not a commit id"),
    ("revert --safe '$(reboot)'", "is not a commit id"),
]


@pytest.mark.parametrize(("command", "says"), BAD, ids=[c for c, _ in BAD])
def test_bad_input_is_refused_privately_and_changes_nothing(
        emulator: Emulator, sandbox: Sandbox, tmp_path: Path, start_bot: Callable[..., SocketModeBot],
        command: str, says: str) -> None:
    outside = tmp_path / "outside.js"
    outside.write_text("// not the repo's\n")
    (sandbox.repo / "escape.js").symlink_to(outside)
    repo = git.Repo(sandbox.repo)
    head, branch, env = repo.head.commit.hexsha, repo.active_branch.name, (sandbox.repo / ".env").read_text()
    bot = start_bot()
    started(emulator, bot)
    emulator.slash("casey", "incident-rollback", command).wait()
    reply = emulator.ws.wait_for(lambda: next((e.text for e in emulator.ws.ephemerals_for(COMMANDER)
                                               if says in e.text), None), 10, f"'{says}'")
    assert "\n" in reply.strip()  # the reason, then what to type instead
    assert (repo.head.commit.hexsha, repo.active_branch.name) == (head, branch)
    assert (sandbox.repo / ".env").read_text() == env and not repo.is_dirty(untracked_files=False)
    assert bot.services.store.step_runs("RB-0001") == []


@pytest.mark.slow
def test_a_partial_rollback_brings_one_file_back_and_keeps_local_changes(
        emulator: Emulator, live_sandbox: Sandbox, start_bot: Callable[..., SocketModeBot]) -> None:
    repo = git.Repo(live_sandbox.repo)
    head = repo.head.commit.hexsha
    server = live_sandbox.repo / "src" / "server.js"
    server.write_text(server.read_text() + "// on-call's local note\n")
    bot = start_bot()
    ts = started(emulator, bot)
    emulator.slash("casey", "incident-rollback", f"partial src/server.js {live_sandbox.good_commit[:7]}").wait()
    assert "— succeeded" in finished(emulator, ts, "Partial rollback")
    plan = next(content(m) for m in emulator.ws.thread(INCIDENT, ts)
                if "*Partial rollback* requested" in content(m))
    assert "src/server.js | " in plan and "first stashes the uncommitted changes" in plan
    assert "— succeeded" in finished(emulator, ts, "Verify rollback")
    assert repo.head.commit.hexsha == head  # history untouched: only the file
    assert server.read_text() == repo.commit(live_sandbox.good_commit).tree["src/server.js"].data_stream.read().decode()
    assert any("rollback-bot RB-0001: before partial rollback of src/server.js" in s
               for s in repo.git.stash("list").splitlines())
    assert bot.services.store.get_incident("RB-0001").rolled_back_files == ["src/server.js"]
    assert probe(live_sandbox.health_url, timeout=5).status == 200


@pytest.mark.slow
def test_a_safe_revert_adds_revert_commits_without_rewriting_history(
        emulator: Emulator, live_sandbox: Sandbox, start_bot: Callable[..., SocketModeBot]) -> None:
    repo = git.Repo(live_sandbox.repo)
    old_head = repo.head.commit.hexsha
    bot = start_bot()
    ts = started(emulator, bot)
    emulator.slash("casey", "incident-rollback", "revert --safe").wait()
    result = finished(emulator, ts, "Safe revert")
    assert "— succeeded" in result and "4 revert commit(s) added" in result
    assert "— succeeded" in finished(emulator, ts, "Verify rollback")
    assert repo.is_ancestor(old_head, repo.head.commit.hexsha)  # nothing rewritten
    assert [c.summary for c in repo.iter_commits(max_count=4)][-1].startswith('Revert "Phase 3')
    assert probe(live_sandbox.health_url, timeout=5).status == 200


def test_a_conflicting_safe_revert_aborts_cleanly(emulator: Emulator, sandbox: Sandbox,
                                                  start_bot: Callable[..., SocketModeBot]) -> None:
    repo = git.Repo(sandbox.repo)
    notes = sandbox.repo / "NOTES.md"
    notes.write_text("x\n")
    repo.index.add(["NOTES.md"])
    first = repo.index.commit("notes: x")
    notes.write_text("y\n")
    repo.index.add(["NOTES.md"])
    repo.index.commit("notes: y")
    notes.write_text("z\n")
    repo.index.add(["NOTES.md"])
    head = repo.index.commit("notes: z").hexsha
    bot = start_bot()
    ts = started(emulator, bot)
    emulator.slash("casey", "incident-rollback", f"revert --safe {first.hexsha[:8]}").wait()
    result = finished(emulator, ts, "Safe revert")
    assert "— failed" in result and "conflicts" in result and "NOTES.md" in result
    assert repo.head.commit.hexsha == head and not repo.is_dirty() and notes.read_text() == "z\n"
    assert not (sandbox.repo / ".git" / "REVERT_HEAD").exists()
    assert not any("Rebuild backend" in m["text"] for m in emulator.ws.thread(INCIDENT, ts))  # no follow-ups


@pytest.mark.slow
def test_a_hotfix_branch_ships_and_is_pushed_only_without_force(
        emulator: Emulator, live_sandbox: Sandbox, tmp_path: Path, start_bot: Callable[..., SocketModeBot]) -> None:
    remote_dir = tmp_path / "origin.git"
    git.Repo.init(remote_dir, bare=True)
    repo = git.Repo(live_sandbox.repo)
    repo.create_remote("origin", str(remote_dir))
    bot = start_bot()
    ts = started(emulator, bot)
    emulator.slash("casey", "incident-rollback", "hotfix fix-health").wait()
    assert "— succeeded" in finished(emulator, ts, "Hotfix branch")
    assert repo.active_branch.name == "hotfix/fix-health"
    server = live_sandbox.repo / "src" / "server.js"
    server.write_text(repo.commit(live_sandbox.good_commit).tree["src/server.js"].data_stream.read().decode())
    repo.index.add(["src/server.js"])
    fix = repo.index.commit("Hotfix: health no longer depends on the assessment service").hexsha

    emulator.slash("casey", "incident-rollback", "hotfix ship").wait()
    assert "— succeeded" in finished(emulator, ts, "Hotfix branch", 2)
    assert "— succeeded" in finished(emulator, ts, "Verify rollback")
    offer = emulator.ws.wait_for(lambda: next((m for m in emulator.ws.thread(INCIDENT, ts)
                                               if "Push it to `origin`" in m["text"]), None), 10, "the push offer")
    assert probe(live_sandbox.health_url, timeout=5).status == 200

    # someone else pushed to the same branch meanwhile: a plain push is refused, and nothing is forced
    other = tmp_path / "other"
    clone = git.Repo.clone_from(str(live_sandbox.repo), other)
    clone.git.checkout("-b", "theirs", live_sandbox.good_commit)
    (other / "THEIRS.md").write_text("theirs\n")
    clone.index.add(["THEIRS.md"])
    theirs = clone.index.commit("their change").hexsha
    clone.git.push(str(remote_dir), "theirs:refs/heads/hotfix/fix-health")
    emulator.click("casey", "incident-rollback", offer["ts"], Action.HOTFIX_PUSH).wait()
    refused = emulator.ws.wait_for(lambda: next((e for e in emulator.ws.ephemerals_for(COMMANDER)
                                                 if "was refused" in e.text), None), 30, "the refusal")
    assert "Nothing was forced" in refused.text
    assert refused.thread_ts == ts  # said in the thread where the button is, not down in the channel
    assert git.Repo(remote_dir).commit("hotfix/fix-health").hexsha == theirs

    git.Repo(remote_dir).git.update_ref("-d", "refs/heads/hotfix/fix-health")  # they deleted it again
    emulator.click("casey", "incident-rollback", offer["ts"], Action.HOTFIX_PUSH).wait()
    emulator.ws.wait_for(lambda: any("pushed `hotfix/fix-health`" in m["text"]
                                     for m in emulator.ws.thread(INCIDENT, ts)), 30, "the push")
    assert git.Repo(remote_dir).commit("hotfix/fix-health").hexsha == fix
    events = [e.action for e in bot.services.store.audit_events("RB-0001")]
    assert "hotfix.push_refused" in events and "hotfix.pushed" in events


@pytest.mark.slow
def test_without_a_remote_the_shipped_hotfix_offers_no_push_button_and_says_what_to_set(
        emulator: Emulator, live_sandbox: Sandbox, start_bot: Callable[..., SocketModeBot]) -> None:
    repo = git.Repo(live_sandbox.repo)
    assert not repo.remotes
    ts = started(emulator, start_bot())
    emulator.slash("casey", "incident-rollback", "hotfix fix-health").wait()
    assert "— succeeded" in finished(emulator, ts, "Hotfix branch")
    server = live_sandbox.repo / "src" / "server.js"
    server.write_text(repo.commit(live_sandbox.good_commit).tree["src/server.js"].data_stream.read().decode())
    repo.index.add(["src/server.js"])
    repo.index.commit("Hotfix: health no longer depends on the assessment service")
    emulator.slash("casey", "incident-rollback", "hotfix ship").wait()
    assert "— succeeded" in finished(emulator, ts, "Verify rollback")
    said = emulator.ws.wait_for(lambda: next((m for m in emulator.ws.thread(INCIDENT, ts)
                                              if "is built, running and verified" in m["text"]), None), 10,
                                "the shipped hotfix's message")
    assert "has no remote `origin`" in said["text"] and "set `target.remote` in rollback.yml" in said["text"]
    assert Action.HOTFIX_PUSH not in str(said.get("blocks"))
