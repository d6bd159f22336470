"""Keep secrets out of Slack, files, stored records and logs: by value and by part.

:class:`SecretBook` knows every secret the bot must never show: its own tokens and URIs, every value of
the target's ``.env`` that could be a secret, and the user, password and host parts of every URI among
them (so a password printed on its own, e.g. by a failing build, is caught too). :func:`redact` also
removes credentials in any URI, Slack tokens and bearer tokens by pattern.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bot.ops.envfile import read_env_file

_URI_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]+):(?P<pw>[^@/\s]+)@", re.I)
_SLACK_TOKEN = re.compile(r"\bx(?:ox[abprse]|app)-[A-Za-z0-9-]+")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
SECRET_KEY = re.compile(r"(?i)(secret|token|password|passwd|pwd|key|uri|url|dsn|credential|auth)")
LOOPBACK = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}  # noqa: S104 - a name to leave alone, not a bind
MASK = "***"
MIN_VALUE = 8  # shorter values of non-secret keys (true, 3000, info) are ordinary words, not secrets
MIN_SECRET = 4


def redact_uri(uri: str) -> str:
    return _URI_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", uri)


def uri_parts(value: str) -> list[str]:
    """The user, password and host of a URI (percent-decoded too), loopback hosts excepted."""
    if "://" not in value:
        return []
    try:
        split = urlsplit(value)
        parts = [split.username, split.password, split.hostname]
    except ValueError:
        return []
    out: list[str] = []
    for part in parts:
        if part and part.lower() not in LOOPBACK and len(part) >= 3:
            out.extend({part, unquote(part)})
    return out


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove known secret values, credentials in URIs, Slack tokens and bearer tokens from text."""
    for secret in sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _URI_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    text = _SLACK_TOKEN.sub("xox*-***", text)
    return _BEARER.sub(r"\1***", text)


def secret_values_of(env: dict[str, str]) -> list[str]:
    """The values of a .env that must never be shown, and the parts of any URI among them."""
    found: list[str] = []
    for key, value in env.items():
        if not value:
            continue
        if (SECRET_KEY.search(key) and len(value) >= MIN_SECRET) or len(value) >= MIN_VALUE:
            found.append(value)
        found.extend(uri_parts(value))
    return found


class SecretBook:
    """Every secret value, kept current: the target's .env is re-read when it changes on disk."""

    def __init__(self, own: Iterable[str], env_path: Path | None = None) -> None:
        self._own = [s for s in own if s]
        for value in list(self._own):
            self._own.extend(uri_parts(value))
        self._env_path = env_path
        self._stamp: tuple[int, int] | None = None
        self._env_values: list[str] = []
        self._extra: list[str] = []
        self._lock = threading.Lock()

    def add(self, *values: str) -> None:
        """More values to scrub (e.g. a value someone just wrote into .env with `flag`)."""
        with self._lock:
            self._extra.extend(v for v in values if v and len(v) >= MIN_SECRET)

    def values(self) -> list[str]:
        with self._lock:
            self._reload()
            return [*self._own, *self._env_values, *self._extra]

    def _reload(self) -> None:
        if self._env_path is None:
            return
        try:
            stat = self._env_path.stat()
        except OSError:
            return  # keep what we knew: a vanished .env does not make its old values safe to show
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        try:
            env = read_env_file(self._env_path)
        except (OSError, UnicodeDecodeError):
            return
        merged = set(self._env_values) | set(secret_values_of(env))  # old values stay secret after an edit
        self._env_values = sorted(merged)
        self._stamp = stamp

    def redact(self, text: str) -> str:
        return redact(text, self.values())


class RedactingFormatter(logging.Formatter):
    """Formats a record (message, arguments, traceback) and only then scrubs the whole line."""

    def __init__(self, inner: logging.Formatter, scrub: Callable[[str], str]) -> None:
        super().__init__()
        self.inner, self.scrub = inner, scrub

    def format(self, record: logging.LogRecord) -> str:
        return self.scrub(self.inner.format(record))
