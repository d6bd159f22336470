"""`rollback-bot check`: can this bot reach everything the runbook needs? One line per item."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.config import Settings
from bot.ops.envfile import read_env_file
from bot.ops.git import GitRepo
from bot.ops.process import find_executable
from bot.redact import redact_uri


@dataclass(frozen=True)
class CheckLine:
    name: str
    ok: bool
    detail: str
    required: bool = True

    def __str__(self) -> str:
        mark = "ok  " if self.ok else ("FAIL" if self.required else "warn")
        return f"[{mark}] {self.name}: {self.detail}"


def _git(settings: Settings) -> list[CheckLine]:
    target = settings.runbook.target
    try:
        head = GitRepo(target.repo_path).head()
    except Exception as error:  # noqa: BLE001 - reported as a line
        return [CheckLine("git repository", False, f"{error} — set target.repo_path to the backend's checkout")]
    lines = [CheckLine("git repository", True, f"{target.repo_path} at {head.oneline()}")]
    commit = GitRepo(target.repo_path).resolve(target.rollback_target)
    lines.append(CheckLine("rollback target", commit is not None,
                           f"{commit.oneline()}" if commit else f"commit {target.rollback_target} is not in the "
                           "repository — fetch it, or fix target.rollback_target"))
    return lines


def _tools(settings: Settings) -> list[CheckLine]:
    lines = []
    for label, name in (("pm2", settings.runbook.pm2.executable), ("yarn", settings.runbook.build.executable)):
        path = find_executable(name)
        lines.append(CheckLine(label, path is not None, path or f"`{name}` not found on PATH — run `make deps` or "
                               f"set {'pm2' if label == 'pm2' else 'build'}.executable"))
    return lines


def _mongo(settings: Settings) -> CheckLine:
    target, tenants = settings.runbook.target, settings.runbook.tenants
    try:
        env = read_env_file(target.env_path)
    except OSError:
        return CheckLine("tenant MongoDB", False, f"cannot read {target.env_path} — the runbook reads "
                         f"{tenants.central_db_uri_env} from the target's .env")
    uri = env.get(tenants.central_db_uri_env)
    if not uri:
        return CheckLine("tenant MongoDB", False, f"{tenants.central_db_uri_env} is not set in {target.env_path}")
    try:
        from bot.ops import tenants as tenant_ops

        client = tenant_ops.connect(uri)
        try:
            client.admin.command("ping")
            found = tenant_ops.list_tenants(client, uri, settings.runbook.tenants)
        finally:
            tenant_ops.close(client)
    except Exception as error:  # noqa: BLE001
        return CheckLine("tenant MongoDB", False, f"{redact_uri(uri)} did not answer ping: "
                         f"{redact_uri(str(error))[:200]}")
    return CheckLine("tenant MongoDB", True, f"{redact_uri(uri)} answers ping; {len(found)} tenant database(s): "
                     + ", ".join(t.db_name for t in found))


def _health(settings: Settings) -> CheckLine:
    from bot.ops.health import probe

    health = settings.runbook.health
    result = probe(str(health.url), timeout=health.timeout_s, expect_json=health.expect_json,
                   slow_after=settings.runbook.thresholds.backend_response_s)
    hint = "" if result.ok or result.status else " — is the backend running? (health.url)"
    return CheckLine("health URL", result.ok, f"{health.url}: {result.detail} in {result.seconds * 1000:.0f} ms{hint}",
                     required=False)


def _slack(settings: Settings) -> CheckLine:
    if settings.secrets.slack_bot_token is None:
        return CheckLine("Slack auth.test", False, "SLACK_BOT_TOKEN is not set")
    from bot.slack import web_client

    try:
        client = web_client(settings.secrets.slack_bot_token.get_secret_value(), settings.api_url, retries=1)
        answer = client.auth_test()
    except Exception as error:  # noqa: BLE001
        return CheckLine("Slack auth.test", False, f"{settings.api_url}: {error}"[:300])
    return CheckLine("Slack auth.test", True, f"team {answer.get('team')} as {answer.get('user')}")


def _access(settings: Settings) -> list[CheckLine]:
    access = settings.runbook.access
    return [
        CheckLine("incident channels", bool(access.incident_channels),
                  ", ".join(access.incident_channels) or "none — add channel ids to access.incident_channels"),
        CheckLine("commanders", bool(access.commanders),
                  ", ".join(access.commanders) or "none — add user ids or @group handles to access.commanders"),
        CheckLine("approvers", bool(access.approvers),
                  ", ".join(access.approvers) or "none — add user ids or @group handles to access.approvers"),
    ]


CHECKS: list[Callable[[Settings], CheckLine | list[CheckLine]]] = [_access, _git, _tools, _mongo, _health, _slack]


def run_checks(settings: Settings) -> list[CheckLine]:
    lines: list[CheckLine] = [CheckLine("config", True, f"{settings.source or 'built-in defaults'} is valid")]
    for check in CHECKS:
        result = check(settings)
        lines.extend(result if isinstance(result, list) else [result])
    return lines
