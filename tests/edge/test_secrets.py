"""Secrets by value and by part: the bot's tokens, every secret of the target's .env and the password of its
database URI on its own, scrubbed from every Slack message, file upload, stored record, postmortem and log
line (tracebacks and DEBUG request bodies included), also when a person pastes one into a form."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bot.app import SocketModeBot
from bot.app.logs import configure
from bot.config import Settings
from bot.dev.emulator import Emulator
from bot.dev.sandbox import Sandbox
from tests.conftest import INCIDENT

LEAKY_BUILD = """\
const fs = require('fs');
const env = fs.readFileSync(require('path').join(__dirname, '.env'), 'utf8');
const uri = env.split('\\n').find((l) => l.startsWith('CENTRAL_DB_URI=')).slice('CENTRAL_DB_URI='.length);
const parsed = new URL(uri);
console.log('connecting as', parsed.username, 'with password', decodeURIComponent(parsed.password));
console.error('Error: build failed while talking to', parsed.hostname);
process.exit(1);
"""


@pytest.fixture(params=["info", "debug"])
def logs(settings: Settings, request: pytest.FixtureRequest) -> Iterator[Callable[[], str]]:
    """The bot's logging as `rollback-bot run --log-level <level>` sets it up (JSON lines), captured."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    out = io.StringIO()
    configure(settings, request.param, json_lines=True, stream=out)
    yield out.getvalue
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])


def canaries(sandbox: Sandbox, emulator: Emulator) -> dict[str, str]:
    uri = urlsplit(sandbox.canaries["CENTRAL_DB_URI"])
    found = {name: value for name, value in sandbox.canaries.items()}
    found["the database password on its own"] = uri.password or ""
    app = emulator.ws.app
    found.update({"SLACK_BOT_TOKEN": app.bot_token, "SLACK_APP_TOKEN": app.app_token,
                  "SLACK_SIGNING_SECRET": app.signing_secret})
    return {name: value for name, value in found.items() if value}


def test_no_secret_reaches_slack_files_the_store_the_postmortem_or_the_logs(
        emulator: Emulator, live_sandbox: Sandbox, settings: Settings, logs: Callable[[], str],
        start_bot: Callable[..., SocketModeBot]) -> None:
    sandbox = live_sandbox
    secrets = canaries(sandbox, emulator)
    password, jwt = secrets["the database password on its own"], sandbox.canaries["JWT_SECRET"]
    (sandbox.repo / "build.js").write_text(LEAKY_BUILD)  # a failing build that prints the password alone
    bot = start_bot()
    emulator.slash("casey", "incident-rollback", f"start db login fails with {password}").wait()
    panel = emulator.ws.wait_for(lambda: (i := bot.services.store.get_incident("RB-0001")) and i.panel_ts, 10, "panel")
    emulator.slash("casey", "incident-rollback", "rebuild").wait()
    emulator.ws.wait_for(lambda: any("*Rebuild backend* — failed" in m["text"]
                                     for m in emulator.ws.thread(INCIDENT, panel)), 120, "the failed build")
    emulator.slash("casey", "incident-rollback", "rca").wait()
    form = emulator.ws.wait_for(lambda: [v for v in emulator.ws.views if not v.get("closed")], 10, "the form")[-1]
    emulator.submit_view("casey", form["id"], {"errors": f"JWT_SECRET={jwt} and password {password}",
                                               "what_went_wrong": f"it printed {password}"}).wait()
    emulator.ws.wait_for(lambda: (i := bot.services.store.get_incident("RB-0001")) and i.rca, 10, "the RCA")
    emulator.slash("casey", "incident-rollback", f"close --force the password {password} was shown").wait()
    closed = emulator.ws.wait_for(lambda: (i := bot.services.store.get_incident("RB-0001")) and i.close_out
                                  and i.close_out.postmortem and i, 60, "the postmortem")
    bot.close()

    places = {
        "Slack (messages, edits, private replies, forms, calls)": emulator.ws.all_text(),
        "uploaded files": "\n".join(f["content"].decode("utf-8", "replace") for f in emulator.ws.files.values()),
        "the state store": (settings.data_dir / "rollback-bot.sqlite3").read_bytes().decode("utf-8", "replace"),
        "the postmortem": Path(closed.close_out.postmortem).read_text(),
        "the logs": logs(),
    }
    assert '"level": "info"' in places["the logs"]
    if logging.getLogger().level == logging.DEBUG:  # the raw Slack request and response bodies are logged too
        assert "chat.postMessage" in places["the logs"]
    for place, text in places.items():
        for name, value in secrets.items():
            assert value not in text, f"{name} leaked into {place}"
    assert "***" in places["Slack (messages, edits, private replies, forms, calls)"]  # scrubbed, not dropped
    assert "with password ***" in places["Slack (messages, edits, private replies, forms, calls)"]


def test_git_and_its_hooks_never_see_the_bots_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """GitPython starts git with the bot's environment; a hook in the target repository must not read tokens."""
    import git as gitpython

    from bot.ops.git import WorkTree

    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-canary-for-the-hook")
    monkeypatch.setenv("STATE_STORE_URI", "mongodb://user:hunter2@state.example/db")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Rollback Bot")  # git's own settings are kept
    repo = gitpython.Repo.init(tmp_path / "repo")
    (tmp_path / "repo" / "a.txt").write_text("1\n")
    repo.index.add(["a.txt"])
    repo.index.commit("one")
    seen = tmp_path / "hook-env"
    hook = tmp_path / "repo" / ".git" / "hooks" / "post-checkout"
    hook.write_text(f"#!/bin/sh\nenv > {seen}\n")
    hook.chmod(0o755)
    WorkTree(tmp_path / "repo").create_branch("login-fix")  # `git checkout -b` runs the post-checkout hook
    env = dict(line.split("=", 1) for line in seen.read_text().splitlines() if "=" in line)
    assert env.get("SLACK_BOT_TOKEN", "") == "" and env.get("STATE_STORE_URI", "") == ""
    assert "xoxb-canary-for-the-hook" not in seen.read_text() and "hunter2" not in seen.read_text()
    assert env["GIT_AUTHOR_NAME"] == "Rollback Bot" and env.get("PATH")


# ---- by secret, not by word ---------------------------------------------------------------------------------
SPECIAL = "s3cr3t/with+special=chars&more!(x)"  # a secret URL-encoding changes

ENCODING_BUILD = """\
const fs = require('fs');
const lines = fs.readFileSync(require('path').join(__dirname, '.env'), 'utf8').split('\\n');
const env = Object.fromEntries(lines.filter((l) => l.includes('=') && !l.startsWith('#'))
  .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
const token = Buffer.from(env.HEALTH_BEARER_TOKEN);
const db = new URL(env.CENTRAL_DB_URI);
console.log('token b64', token.toString('base64'));
console.log('token b64url', token.toString('base64url'));
console.log('token hex', token.toString('hex'));
const header = JSON.stringify({Authorization: 'Bearer ' + env.HEALTH_BEARER_TOKEN});
console.log('header', Buffer.from(header).toString('base64'));
console.log('basic', Buffer.from(db.username + ':' + decodeURIComponent(db.password)).toString('base64'));
console.log('session', encodeURIComponent(env.SESSION_SECRET));
console.error('Error: build failed');
process.exit(1);
"""


def test_a_failing_build_printing_encoded_secrets_is_masked_in_the_thread_and_the_store(
        emulator: Emulator, sandbox: Sandbox, settings: Settings, start_bot: Callable[..., SocketModeBot]) -> None:
    """Reported: the base64 of HEALTH_BEARER_TOKEN, printed by a failing build, reached the thread and the store."""
    import base64
    from urllib.parse import quote

    token = sandbox.canaries["HEALTH_BEARER_TOKEN"]
    db = urlsplit(sandbox.canaries["CENTRAL_DB_URI"])
    env = sandbox.repo / ".env"
    env.write_text(env.read_text() + f"SESSION_SECRET={SPECIAL}\n")
    (sandbox.repo / "build.js").write_text(ENCODING_BUILD)
    header = base64.b64encode(('{"Authorization":"Bearer ' + token + '"}').encode()).decode()
    leaks = {
        "base64": base64.b64encode(token.encode()).decode(),
        "base64url": base64.urlsafe_b64encode(token.encode()).decode().rstrip("="),
        "hex": token.encode().hex(),
        "the token inside a base64 header": header[36:48],  # the token starts at byte 26, character 35
        "Basic auth": base64.b64encode(f"{db.username}:{db.password}".encode()).decode(),
        "URL-encoded": quote(SPECIAL, safe="!*'()"),
    }
    bot = start_bot()
    emulator.slash("casey", "incident-rollback", "start build leaks").wait()
    panel = emulator.ws.wait_for(lambda: (i := bot.services.store.get_incident("RB-0001")) and i.panel_ts, 10, "panel")
    emulator.slash("casey", "incident-rollback", "rebuild").wait()
    emulator.ws.wait_for(lambda: any("*Rebuild backend* — failed" in m["text"]
                                     for m in emulator.ws.thread(INCIDENT, panel)), 120, "the failed build")
    bot.close()
    thread = emulator.ws.all_text()
    store = (settings.data_dir / "rollback-bot.sqlite3").read_bytes().decode("utf-8", "replace")
    assert "token b64 ***" in thread and "session ***" in thread and "Error: build failed" in thread
    assert header[:20] in thread  # the blob's own start is shown; only what encodes the token is masked
    for place, text in {"Slack": thread, "the state store": store}.items():
        for name, value in leaks.items():
            assert value not in text, f"the {name} form of a secret leaked into {place}"


def test_a_database_user_named_backend_is_masked_in_its_uri_not_in_prose(
        emulator: Emulator, sandbox: Sandbox, bot: SocketModeBot) -> None:
    """Reported: the MongoDB user in CENTRAL_DB_URI is `backend`, so the postmortem read "Rebuild ***: succeeded"."""
    db = urlsplit(sandbox.canaries["CENTRAL_DB_URI"])
    assert db.username == "backend" and db.password
    emulator.slash("casey", "incident-rollback", "start backend down").wait()
    emulator.ws.wait_for(lambda: (i := bot.services.store.get_incident("RB-0001")) and i.panel_ts, 10, "panel")
    emulator.slash("casey", "incident-rollback", "rebuild").wait()
    emulator.ws.wait_for(lambda: (i := bot.services.store.get_incident("RB-0001")) and i.busy is None and
                         bot.services.store.step_runs(i.id), 120, "the rebuild")
    emulator.slash("casey", "incident-rollback",
                   f"note backend: the app logs in as mongodb://backend:{db.password}@db.internal:27017/central "
                   f"and as backend@db.internal").wait()
    emulator.slash("casey", "incident-rollback", "close --force backend drill").wait()
    closed = emulator.ws.wait_for(lambda: (i := bot.services.store.get_incident("RB-0001")) and i.close_out
                                  and i.close_out.postmortem and i, 60, "the postmortem")
    text = Path(closed.close_out.postmortem).read_text()
    assert "Rebuild backend: succeeded" in text and "backend drill" in text
    assert "note: backend: the app logs in as mongodb://***@db.internal:27017/central and as ***@db.internal" in text
    assert db.password not in text


def test_redaction_masks_encodings_and_uri_parts_only_where_they_stand() -> None:
    import base64

    from bot.redact import redact, secret_values_of

    token = "canary-bearer-0123456789abcdef"
    secrets, parts = secret_values_of({
        "HEALTH_BEARER_TOKEN": token, "CENTRAL_DB_URI": "mongodb://backend:p%40ss-w0rd-9@db-1.internal:27017/c",
        "NODE_ENV": "production", "APP_NAME": "ai-professor-backend", "DB_PASS": "correcthorse", "BYPASS_CACHE": "true",
        "SESSION_SECRET": SPECIAL})
    for offset in range(3):  # the token inside a longer base64 blob, at each byte alignment
        blob = base64.b64encode(b"x" * offset + b"Bearer " + token.encode() + b" and more").decode()
        masked = redact(blob, secrets, parts)
        shown = [base64.b64encode(b"y" * k + token.encode()).decode()[4:16] for k in range(3)]  # token-only chars
        assert "***" in masked and not any(part in masked for part in shown), (offset, masked)
    for leak in (base64.urlsafe_b64encode(token.encode()).decode(), token.encode().hex().upper(),
                 base64.b64encode(b"backend:p@ss-w0rd-9").decode(), "p%40ss-w0rd-9", "p@ss-w0rd-9",
                 "s3cr3t%2Fwith%2Bspecial%3Dchars%26more!(x)", "correcthorse"):
        assert redact(f"printed {leak} here", secrets, parts) == "printed *** here", leak
    prose = "Rebuild backend: succeeded; backend restarted in production (ai-professor-backend-5000): true"
    assert redact(prose, secrets, parts) == prose
    assert redact("mongodb://backend@db-1.internal/c", secrets, parts) == "mongodb://***@***/c"
