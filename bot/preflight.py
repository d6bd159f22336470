"""What `rollback-bot run`, `serve` and `check` ask Slack before anything else, and how a problem is said.

Each problem becomes one line that names what to fix — the variable (SLACK_API_URL, SLACK_BOT_TOKEN,
SLACK_APP_TOKEN) or the key — instead of a traceback from deep inside slack_sdk. The lines never show a
token's value.
"""

from __future__ import annotations

import logging
import socket
from typing import Any, Literal
from urllib.error import URLError

from bot.config import DEFAULT_SLACK_API_URL, Settings
from bot.errors import ConfigError
from bot.redact import redact, redact_uri

#: Slack's answers that mean "this token is not a valid one (any more)".
TOKEN_REFUSED = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
                           "not_allowed_token_type", "invalid_token"})
SCOPES_FIX = "add them from manifest.yml and reinstall the app"

#: slack_sdk logs every failed attempt before it raises; here the raised error is reported once, as a line.
#: At --log-level debug this logger passes everything through (see ``quiet_logger``).
_CLIENT_LOG = logging.getLogger("rollback_bot.preflight.slack")


def quiet_logger() -> logging.Logger:
    """The logger for the preflight's Slack client: silent unless the root logger is at DEBUG."""
    _CLIENT_LOG.setLevel(logging.DEBUG if logging.getLogger().isEnabledFor(logging.DEBUG) else logging.CRITICAL + 1)
    return _CLIENT_LOG


def api_url_source(settings: Settings) -> str:
    """Where the Web API URL in use comes from, as the person would change it."""
    if settings.secrets.slack_api_url:
        return "SLACK_API_URL"
    if settings.api_url.rstrip("/") != DEFAULT_SLACK_API_URL.rstrip("/"):
        return "slack.api_url in the config (SLACK_API_URL overrides it)"
    return f"SLACK_API_URL (unset: {DEFAULT_SLACK_API_URL})"


def reason(error: BaseException) -> str:
    """Why a request did not get an answer, in a few words: "connection refused", "no answer in time"."""
    cause: Any = error.reason if isinstance(error, URLError) else error
    if isinstance(cause, socket.gaierror):
        return "the host name does not resolve"
    if isinstance(cause, TimeoutError | socket.timeout):
        return "no answer in time"
    if isinstance(cause, OSError) and cause.strerror:
        return str(cause.strerror).lower()
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    return redact_uri(text)[:120]


def one_line(error: BaseException, limit: int = 300) -> str:
    """An unexpected error's message as one line, credentials and tokens removed."""
    lines = str(error).strip().splitlines()
    text = lines[0] + (" …" if len(lines) > 1 else "") if lines else type(error).__name__
    return redact(text)[:limit]


def is_unreachable(error: BaseException) -> bool:
    """The request got no HTTP answer at all (refused, unresolvable host, timeout, reset)."""
    return isinstance(error, URLError | OSError | TimeoutError)


def not_slack(error: BaseException) -> str | None:
    """An answer that is not Slack's Web API (slack_sdk: "non-JSON format: 404: Not Found"): what it was."""
    response = getattr(error, "response", None)
    code = str(response.get("error") or "") if response is not None else ""
    if "non-JSON" in code:
        return code.rsplit("format:", 1)[-1].strip() or "not JSON"
    return None


def unreachable(settings: Settings, error: BaseException) -> ConfigError:
    return ConfigError(f"Slack cannot be reached at {redact_uri(settings.api_url)} ({reason(error)}) — check the "
                       f"network, or {api_url_source(settings)}")


def not_an_api(settings: Settings, answer: str) -> ConfigError:
    return ConfigError(f"{redact_uri(settings.api_url)} did not answer like Slack's Web API ({answer}) — check "
                       f"{api_url_source(settings)}; it should end in /api/")


def _prefix_hint(value: str | None, prefix: str) -> str:
    if value is None:
        return ""
    return "" if value.startswith(prefix) else f"; it does not start with {prefix}"


def bot_token_refused(settings: Settings, code: str) -> ConfigError:
    token = settings.secrets.slack_bot_token
    hint = _prefix_hint(token.get_secret_value() if token else None, "xoxb-")
    return ConfigError(f"Slack at {redact_uri(settings.api_url)} refused SLACK_BOT_TOKEN ({code}{hint}) — set it to "
                       "the app's Bot User OAuth Token (xoxb-…) from its OAuth & Permissions page")


def app_token_refused(settings: Settings, code: str) -> ConfigError:
    token = settings.secrets.slack_app_token
    hint = _prefix_hint(token.get_secret_value() if token else None, "xapp-")
    return ConfigError(f"Slack at {redact_uri(settings.api_url)} refused SLACK_APP_TOKEN for Socket Mode ({code}"
                       f"{hint}) — set it to an app-level token (xapp-…) with the connections:write scope, from "
                       "the app's Basic Information page (or use `rollback-bot serve` for HTTP)")


def missing_scopes(missing: list[str]) -> ConfigError:
    return ConfigError(f"SLACK_BOT_TOKEN lacks the scope(s) {', '.join(missing)} — {SCOPES_FIX}")


def slack_problem(settings: Settings, error: BaseException, *,
                  env_name: Literal["SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"]) -> ConfigError | None:
    """One line for an error of a Slack call made with the token in ``env_name``; None for an error this
    module does not recognise (the caller lets it through)."""
    from slack_sdk.errors import SlackApiError

    if isinstance(error, SlackApiError):
        answer = not_slack(error)
        if answer is not None:
            return not_an_api(settings, answer)
        code = str(error.response.get("error") or "unknown_error")
        if code in TOKEN_REFUSED:
            refused = bot_token_refused if env_name == "SLACK_BOT_TOKEN" else app_token_refused
            return refused(settings, code)
        return ConfigError(f"Slack at {redact_uri(settings.api_url)} answered {code} — see "
                           f"https://api.slack.com/methods for what it means; check {env_name} and the app's settings")
    if is_unreachable(error):
        return unreachable(settings, error)
    return None


def check_bot_token(settings: Settings) -> dict[str, Any]:
    """``auth.test`` with the bot token: Slack answers, the token is good, and it has every scope the manifest
    asks for. Returns the answer (team, user); raises ``ConfigError`` with one line otherwise."""
    from bot.resources import manifest_scopes
    from bot.slack import web_client

    settings.require("slack_bot_token")
    assert settings.secrets.slack_bot_token is not None
    client = web_client(settings.secrets.slack_bot_token.get_secret_value(), settings.api_url, retries=1,
                        timeout=10, logger=quiet_logger())
    try:
        answer = client.auth_test()
    except Exception as error:  # said as one line, or let through unchanged
        problem = slack_problem(settings, error, env_name="SLACK_BOT_TOKEN")
        if problem is None:
            raise
        raise problem from error
    granted = {s.strip() for s in (answer.headers.get("x-oauth-scopes") or "").split(",") if s.strip()}
    if granted:  # Slack always sends the header; a proxy that drops it leaves nothing to compare
        missing = sorted(manifest_scopes() - granted)
        if missing:
            raise missing_scopes(missing)
    return dict(answer.data) if isinstance(answer.data, dict) else {}
