"""A failed verify says what it means, what the bot will not do about it, and whom to call: in the step's result
in the thread and on the panel's Next line (reported: with the AI server stopped, verify said only "❌ pm2
ai-professor-python error log: stopped; no critical errors", and Next "run verify again, or pick an
Alternative")."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.app import SocketModeBot
from bot.config import parse_runbook
from bot.dev.emulator import Emulator
from bot.dev.sandbox import Sandbox
from bot.domain.guide import next_action
from bot.domain.runs import Advice, StepName
from bot.ops.envfile import read_env_file
from bot.ops.pm2 import AppState, Pm2
from bot.ops.probe import Probe
from bot.ops.process import find_executable
from bot.redact import SecretBook
from bot.runbook.verify import LogRound, _log_round, advice_for
from bot.text import plain
from tests.conftest import APPROVER, INCIDENT, make_settings
from tests.runbook.test_full_rollback import panel_ts, run_step
from tests.test_guide import after

AI = "ai-professor-python"


def panel_text(emulator: Emulator, ts: str) -> str:
    [panel] = [m for m in emulator.ws.channel_messages(INCIDENT) if m["ts"] == ts]
    return str(panel["blocks"])


@pytest.mark.slow
def test_with_the_ai_server_stopped_verify_names_it_says_the_bot_will_not_start_it_and_whom_to_call(
        emulator: Emulator, live_sandbox: Sandbox, tmp_path: Path,
        start_bot: Callable[..., SocketModeBot]) -> None:
    pm2 = find_executable("pm2")
    assert pm2
    subprocess.run([pm2, "stop", AI], env={"PATH": str(Path(pm2).parent) + ":/usr/bin:/bin",
                                           "PM2_HOME": str(live_sandbox.pm2_home)}, check=True, capture_output=True)
    settings = make_settings(emulator, live_sandbox, tmp_path / "data",
                             contacts={"ai_server_team": ["@backend-leads"], "backend_lead": [APPROVER]})
    start_bot(settings)
    emulator.slash("casey", "incident-rollback", "start AI answers time out").wait()
    ts = panel_ts(emulator)

    assert "— failed" in run_step(emulator, ts, "verify")
    [verify] = [str(m["blocks"]) for m in emulator.ws.thread(INCIDENT, ts) if "*Verify rollback* —" in m["text"]]
    assert f"{AI} is stopped, and the bot never starts or restarts it (it restarts only ai-professor-backend-5000)" \
        in verify
    assert "Call the AI server team (<!subteam^S0LEADS>)." in verify  # a group: its mention, resolved once
    # the sandbox's broken deploy answers 500 too: said as well, with the backend lead to call
    assert "answers 500: the backend runs but fails" in verify and f"Call the backend lead (<@{APPROVER}>)." in verify

    def next_line() -> str | None:
        text = panel_text(emulator, ts)
        return text if "verify failed:" in text else None

    panel = emulator.ws.wait_for(next_line, 10, "the panel's Next line to name the failure")
    assert f"verify failed: {AI} is stopped, and the bot never starts or restarts it" in panel
    assert "Call the AI server team (<!subteam^S0LEADS>), then run `/rollback verify` again" in panel
    assert "◦ Also seen: " in panel and "answers 500" in panel  # not "Optional": it is part of the failure
    # no restart has happened in this incident: the log lines are not said to be "since the restart"
    assert "error log has 2 critical line(s) in its latest lines" in verify
    state = Pm2(home=live_sandbox.pm2_home).state(AI)
    assert state is not None and state.status == "stopped"  # the bot did not start it


def test_the_next_line_says_where_to_list_a_team_nobody_is_listed_for() -> None:
    advice = Advice(cause=f"{AI} is stopped, and the bot never starts or restarts it", contact="ai_server_team")
    failed = after(StepName.BACKUP)
    failed.step_finished(StepName.VERIFY, False, failed.created_at, "U0COMMANDER", advice=[advice])
    text = plain(next_action(failed).text)
    assert text.startswith(f"verify failed: {AI} is stopped")
    assert "Call the AI server team (nobody is listed yet: contacts.ai_server_team in rollback.yml)" in text
    assert text.endswith("then run /rollback verify again, or pick one of the Alternatives…")
    failed.step_finished(StepName.VERIFY, True, failed.created_at, "U0COMMANDER")
    assert "verify failed" not in plain(next_action(failed).text)  # a pass clears it


def _probe(status: int | None, detail: str) -> Probe:
    return Probe("http://127.0.0.1:5000/api/health", False, status, 0.01, detail)


def test_a_backend_that_is_down_explains_the_http_failures_so_they_are_not_advised_again() -> None:
    config = parse_runbook({})
    http = [("GET /api/health", _probe(None, "no answer: connection refused"))]
    down = Advice(cause="ai-professor-backend-5000 is errored after the restart", contact="backend_lead")
    assert advice_for(config, http, LogRound([], [down], backend_down=True)) == [down]
    [alone] = advice_for(config, http, LogRound([], []))
    assert alone.cause.startswith("the backend does not answer GET /api/health") and alone.contact == "backend_lead"
    [refused] = advice_for(config, [("GET /api/users", _probe(401, "status 401, expected 200"))], LogRound([], []))
    assert "refuses the check's credentials" in refused.cause


def test_a_secret_in_a_log_line_is_removed_before_the_advice_quotes_and_cuts_the_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found in review: the advice quoted the line's first 100 characters, and redaction afterwards could not
    find a secret cut in half (its first part reached the thread, the panel and the stored stall)."""
    secret = "canary-jwt-5f2a9c0d4e1b7a38"
    env = tmp_path / ".env"
    env.write_text(f"JWT_SECRET={secret}\n")
    book = SecretBook([], env, read_env_file)
    log = tmp_path / "backend-error.log"
    log.write_text("Error: " + "x" * 85 + f" token signed with {secret} rejected\n")  # the secret spans the cut
    apps = [AppState("ai-professor-backend-5000", "online", 0, 1, None, log),
            AppState(AI, "online", 0, 2, None, None)]
    monkeypatch.setattr(Pm2, "jlist", lambda self: apps)  # pm2's answer; the log file is real
    logs = _log_round(parse_runbook({}), None, book.redact)
    [advice] = logs.advice
    assert "(last: Error: xxx" in advice.cause
    said = advice.cause + " ".join(c.detail for c in logs.checks)
    assert secret[:8] not in said and "canary-j" not in said
