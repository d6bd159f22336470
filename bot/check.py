"""`rollback-bot check`: can this bot reach everything the runbook needs? One line per item."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
        hint = "" if "target.repo_path" in str(error) else " — set target.repo_path to the backend's checkout"
        return [CheckLine("git repository", False, f"{error}{hint}")]
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
    except Exception as error:  # noqa: BLE001 - the database may be what is broken: whatever it raises is the line
        return CheckLine("tenant MongoDB", False, f"{redact_uri(uri)} did not answer ping: "
                         f"{redact_uri(str(error))[:200]}")
    return CheckLine("tenant MongoDB", True, f"{redact_uri(uri)} answers ping; {len(found)} tenant database(s): "
                     + ", ".join(t.db_name for t in found))


def _disk(settings: Settings) -> CheckLine:
    """The data folder's free space against ``backup.reserve_mb``, and the size of the last backup run."""
    from bot.domain.backups import LIST, MIB, PRUNE, mib, size
    from bot.ops import disk

    reserve = settings.runbook.backup.reserve_mb * MIB
    space = disk.space(settings.data_dir)
    runs = [run for run in disk.run_folders(settings.data_dir / "backups") if run.complete]
    last = max(runs, key=lambda run: run.modified, default=None)
    shown = (f"last backup {last.run_id}: {size(last.bytes)} ({last.modified:%Y-%m-%d %H:%M} UTC)" if last else
             "no backup run yet")
    detail = (f"{space.path}: {mib(space.free)} free of {mib(space.total)}, reserve {mib(reserve)} "
              f"(backup.reserve_mb); {shown}")
    fix = f"free space (`{PRUNE} --dry-run`, `{LIST}`) or lower backup.reserve_mb"
    if space.free < reserve:
        return CheckLine("data folder", False, f"{detail} — below the reserve, every backup is refused: {fix}")
    if last is not None and space.free - last.bytes < reserve:
        return CheckLine("data folder", False, f"{detail} — another backup of that size would cross the reserve: "
                         f"{fix}", required=False)
    return CheckLine("data folder", True, detail)


def _health(settings: Settings) -> CheckLine:
    from bot.ops.probe import probe

    health = settings.runbook.health
    result = probe(str(health.url), timeout=health.timeout_s, expect_json=health.expect_json,
                   slow_after=settings.runbook.thresholds.backend_response_s)
    hint = "" if result.ok or result.status else " — is the backend running? (health.url)"
    return CheckLine("health URL", result.ok, f"{health.url}: {result.detail} in {result.seconds * 1000:.0f} ms{hint}",
                     required=False)


def _slack(settings: Settings) -> list[CheckLine]:
    """The token works, has exactly the scopes the manifest asks for, every configured channel exists with the
    bot in it, and every @group resolves. Each failing line says what to change."""
    if settings.secrets.slack_bot_token is None:
        return [CheckLine("Slack auth.test", False, "SLACK_BOT_TOKEN is not set — put the bot token (xoxb-…) in "
                          "the environment or a .env file")]
    from bot.preflight import SCOPES_FIX, quiet_logger, reason, slack_problem
    from bot.resources import manifest_scopes
    from bot.slack import web_client

    client = web_client(settings.secrets.slack_bot_token.get_secret_value(), settings.api_url, retries=1,
                        logger=quiet_logger())
    try:
        answer = client.auth_test()
    except Exception as error:  # noqa: BLE001 - reported as a line: unreachable, refused token, not Slack
        problem = slack_problem(settings, error, env_name="SLACK_BOT_TOKEN")
        return [CheckLine("Slack auth.test", False, problem.plain() if problem else
                          f"{type(error).__name__}: {reason(error)}")]
    lines = [CheckLine("Slack auth.test", True, f"team {answer.get('team')} as {answer.get('user')}")]
    granted = {s.strip() for s in (answer.headers.get("x-oauth-scopes") or "").split(",") if s.strip()}
    needed = manifest_scopes()
    missing = sorted(needed - granted)
    lines.append(CheckLine("Slack scopes", not missing,
                           ("all granted: " + ", ".join(sorted(needed))) if not missing else
                           "missing " + ", ".join(missing) + f" — {SCOPES_FIX}"))
    lines.extend(_channels(settings, client))
    lines.extend(_groups(settings, client))
    return lines


def _channels(settings: Settings, client: Any) -> list[CheckLine]:
    from slack_sdk.errors import SlackApiError

    runbook = settings.runbook
    wanted = [(c, "incident channel") for c in runbook.access.incident_channels]
    wanted += [(c, label) for c, label in ((runbook.slack.stakeholder_channel, "stakeholder channel"),
                                           (runbook.slack.alerts_channel, "alerts channel")) if c]
    lines = []
    for channel, label in wanted:
        try:
            info = client.conversations_info(channel=channel)["channel"]
        except SlackApiError as error:
            code = error.response.get("error")
            hint = ("no such channel (or a private one the bot is not in) — fix the id in rollback.yml or "
                    "/invite @rollback-bot there" if code == "channel_not_found" else str(code))
            lines.append(CheckLine(f"{label} {channel}", False, hint))
            continue
        name = f"#{info.get('name')}"
        lines.append(CheckLine(f"{label} {channel}", bool(info.get("is_member")),
                               f"{name}, the bot is a member" if info.get("is_member") else
                               f"{name} exists but the bot is not in it — /invite @rollback-bot in {name}"))
    return lines


def _groups(settings: Settings, client: Any) -> list[CheckLine]:
    from slack_sdk.errors import SlackApiError

    runbook = settings.runbook
    handles = sorted({e for entries in (runbook.access.commanders, runbook.access.approvers,
                                        runbook.contacts.backend_lead, runbook.contacts.ai_server_team,
                                        runbook.contacts.frontend_team, runbook.contacts.database_admin)
                      for e in entries if e.startswith("@")})
    if not handles:
        return []
    try:
        groups = {g.get("handle"): g for g in client.usergroups_list().get("usergroups") or []}
    except SlackApiError as error:
        code = error.response.get("error")
        fix = ("this workspace's plan has no user groups — use user ids (U012ABCDEF) instead of " + ", ".join(handles)
               if code == "plan_upgrade_required" else str(code))
        return [CheckLine("user groups", False, fix)]
    return [CheckLine(f"user group {h}", h.lstrip("@") in groups,
                      f"{groups[h.lstrip('@')].get('user_count', '?')} member(s)" if h.lstrip("@") in groups else
                      "not found in the workspace — fix the handle in rollback.yml or use user ids")
            for h in handles]


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


CHECKS: list[Callable[[Settings], CheckLine | list[CheckLine]]] = [_access, _git, _tools, _mongo, _disk, _health,
                                                                    _slack]


def run_checks(settings: Settings) -> list[CheckLine]:
    lines: list[CheckLine] = [CheckLine("config", True, f"{settings.source or 'built-in defaults'} is valid")]
    for check in CHECKS:
        result = check(settings)
        lines.extend(result if isinstance(result, list) else [result])
    return lines


def summary(lines: list[CheckLine]) -> tuple[str, bool]:
    """The closing line — ok, warnings and failures counted apart — and whether a required item failed.
    Warnings (items the bot can run without, like a health URL that is down right now) never fail the check."""
    failed = sum(1 for line in lines if line.required and not line.ok)
    warnings = sum(1 for line in lines if not line.required and not line.ok)
    ok = len(lines) - failed - warnings
    counts = f"{ok} ok, {warnings} warning{'s' if warnings != 1 else ''}, {failed} failed"
    if failed:
        return f"{counts} — fix the FAIL line{'s' if failed != 1 else ''} above, then run the check again", True
    if warnings:
        return (f"{counts} — ready: the bot can run; the warn line{'s' if warnings != 1 else ''} above "
                f"{'are' if warnings != 1 else 'is'} worth a look, not a blocker"), False
    return f"{counts} — ready", False
