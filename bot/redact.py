"""Keep secrets out of Slack messages and logs."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

_URI_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]+):(?P<pw>[^@/\s]+)@", re.I)
_SLACK_TOKEN = re.compile(r"\bx(?:ox[abprse]|app)-[A-Za-z0-9-]+")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
SECRET_KEY = re.compile(r"(?i)(secret|token|password|passwd|pwd|key|uri|url|dsn|credential|auth)")


def redact_uri(uri: str) -> str:
    return _URI_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", uri)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove known secret values, credentials in URIs, Slack tokens and bearer tokens from text."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _URI_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    text = _SLACK_TOKEN.sub("xox*-***", text)
    return _BEARER.sub(r"\1***", text)


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs every record before any handler sees it."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message, self.secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
