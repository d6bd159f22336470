"""Configuration: runbook defaults, errors that name the key, secrets only from the environment."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from bot.config import RUNBOOK_CLEANUP_FIELDS, Secrets, Settings, load_settings, parse_runbook
from bot.errors import ConfigError
from bot.resources import example_config_path


def test_defaults_reproduce_the_runbook() -> None:
    cfg = parse_runbook({})
    assert str(cfg.target.repo_path) == "/opt/ai/ai-professor-backend"
    assert cfg.target.rollback_target == "df5b229"
    assert cfg.pm2.apps == ["ai-professor-backend-5000", "ai-professor-python"]
    assert str(cfg.health.url) == "http://localhost:3000/api/health" and cfg.health.expect_json == {"status": "ok"}
    assert cfg.tenants.schools_collection == "schools" and cfg.tenants.active_filter == {"deleted_at": None}
    assert cfg.tenants.db_name_field == "db_name" and cfg.tenants.central_db_uri_env == "CENTRAL_DB_URI"
    assert cfg.cleanup.collection == "internshipcases" and len(RUNBOOK_CLEANUP_FIELDS) == 10
    assert cfg.cleanup.unset_fields == RUNBOOK_CLEANUP_FIELDS
    assert cfg.cleanup.drop_collections == ["internship_case_attempts"]
    assert cfg.thresholds.backend_response_s == 5 and cfg.thresholds.assessment_timeout_s == 120


def test_the_example_file_is_valid_and_equals_the_defaults() -> None:
    settings = load_settings(example_config_path(), env_file=False)
    assert settings.runbook == parse_runbook({})


@pytest.mark.parametrize(("data", "key", "expected"), [
    ({"target": {"rollback_target": "HEAD~1"}}, "target.rollback_target", "commit id"),
    ({"health": {"url": "not a url"}}, "health.url", "URL"),
    ({"access": {"commanders": ["casey"]}}, "access.commanders", "user id"),
    ({"access": {"incident_channels": ["#incident"]}}, "access.incident_channels", "channel id"),
    ({"pm2": {"apps": ["ok", "rm -rf /"]}}, "pm2.apps", "pm2 app name"),
    ({"pm2": {"restart_timeout_s": -1}}, "pm2.restart_timeout_s", "greater than 0"),
    ({"targt": {}}, "targt", "unknown key"),
    ({"followups": {"remind_days": 0}}, "followups.remind_days", "greater than or equal to 1"),
    ({"followups": {"remind_days": "weekly"}}, "followups.remind_days", "integer"),
    ({"target": {"env_file": "../../etc/passwd"}}, "target.env_file", "inside the repository"),
])
def test_errors_name_the_key_and_what_is_expected(data: dict[str, object], key: str, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_runbook(data, "rollback.yml")
    assert f"  {key}:" in str(error.value) and expected in str(error.value)


def test_a_missing_secret_fails_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(runbook=parse_runbook({}), secrets=Secrets.from_environment(None))
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN, SLACK_APP_TOKEN"):
        settings.require("slack_bot_token", "slack_app_token")


def test_secrets_come_from_a_dotenv_in_the_working_directory_and_stay_secret(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    (tmp_path / ".env").write_text("SLACK_BOT_TOKEN=xoxb-from-dotenv\n")
    (tmp_path / "rollback.yml").write_text("pm2: {apps: [api]}\n")
    settings = load_settings()
    assert settings.secrets.slack_bot_token is not None
    assert settings.secrets.slack_bot_token.get_secret_value() == "xoxb-from-dotenv"
    assert "xoxb-from-dotenv" not in repr(settings) and settings.runbook.pm2.apps == ["api"]


def test_the_environment_wins_over_dotenv_names_in_any_case_and_dollar_signs_stay(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As pydantic-settings read them, except that a ``${...}`` in a password is the password's, not a variable."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-from-the-environment")
    monkeypatch.delenv("SMTP_PASSWORD", raising=False)
    monkeypatch.delenv("SLACK_API_URL", raising=False)
    (tmp_path / ".env").write_text("SLACK_APP_TOKEN=xapp-from-dotenv\nsmtp_password='pa${HOME}ss'\n"
                                   "SLACK_API_URL\nUNRELATED=1\n")
    secrets = load_settings().secrets
    assert secrets.slack_app_token is not None and secrets.smtp_password is not None
    assert secrets.slack_app_token.get_secret_value() == "xapp-from-the-environment"
    assert secrets.smtp_password.get_secret_value() == "pa${HOME}ss"
    assert secrets.slack_api_url is None
    assert load_settings(env_file=False).secrets.smtp_password is None


def test_a_dotenv_that_is_a_named_pipe_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A secrets tool may hand the secrets over through a named pipe in place of the file."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    os.mkfifo(tmp_path / ".env")
    writer = threading.Thread(target=(tmp_path / ".env").write_text, args=("SLACK_BOT_TOKEN=xoxb-from-a-pipe\n",),
                              daemon=True)  # a failing read must not hang the session
    writer.start()
    secrets = load_settings().secrets
    writer.join(5)
    assert secrets.slack_bot_token is not None and secrets.slack_bot_token.get_secret_value() == "xoxb-from-a-pipe"


def test_config_path_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "elsewhere.yml"
    path.write_text("store: {incident_prefix: INC}\n")
    monkeypatch.setenv("ROLLBACK_CONFIG", str(path))
    assert load_settings(env_file=False).runbook.store.incident_prefix == "INC"
    monkeypatch.setenv("ROLLBACK_CONFIG", str(tmp_path / "missing.yml"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(env_file=False)


def test_invalid_yaml_is_a_config_error_that_says_so(tmp_path: Path) -> None:
    path = tmp_path / "rollback.yml"
    path.write_text("target: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(path, env_file=False)
