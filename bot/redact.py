"""Keep secrets out of Slack, files, stored records and logs: by secret, never by word.

:class:`SecretBook` knows every secret the bot must never show: its own tokens and URIs, every value of
the target's ``.env`` that could be a secret, and the password (and ``user:password`` pair) of every URI
among them, so a password printed on its own by a failing build is caught too. Each secret is also masked
in its common encodings (:func:`encodings`: base64 standard and URL-safe, with or without padding, also
inside a longer base64 blob; hex; URL-encoding). A URI's user name and host are not secrets but say where
the data lives: they are masked only where the URI stands (``//user:``, ``user@``, ``@host``), never as a
word in prose, so a database user named ``backend`` leaves "Rebuild backend" alone. :func:`redact` also
removes credentials in any URI, Slack tokens and bearer tokens by pattern.

This module reads no files: the composition root hands :class:`SecretBook` the function that reads the
target's ``.env`` (``bot.ops.envfile.read_env_file``), so the arrow points down.
"""

from __future__ import annotations

import base64
import functools
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote, urlsplit

_URI_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]+):(?P<pw>[^@/\s]+)@", re.I)
_SLACK_TOKEN = re.compile(r"\bx(?:ox[abprse]|app)-[A-Za-z0-9-]+")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
SECRET_KEY = re.compile(r"(?i)(secret|token|password|passwd|passphrase|(?<![a-z])pass(?![a-z])|pwd|key|uri|url|dsn"
                        r"|credential|auth)")  # PASS as a word of the key (DB_PASS), not BYPASS_CACHE
LOOPBACK = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}  # noqa: S104 - a name to leave alone, not a bind
MASK = "***"
MIN_VALUE = 8  # shorter values of non-secret keys (true, 3000, info) are ordinary words, not secrets
MIN_SECRET = 4
MIN_ENCODED = 8  # a secret this long is also looked for encoded; a shorter one's encodings are too common
# What URL-encoders leave alone: everything (Python's quote), JavaScript's encodeURIComponent, quote's default,
# JavaScript's encodeURI.
URL_SAFE = ("", "!*'()", "/", ";,/?:@&=+$!*'()#")
# A non-secret key's value made only of lowercase words (production, ai-professor-backend) is a setting, not a
# secret: masking it would mask the word wherever it stands. Secret-named keys are masked whatever they hold.
ORDINARY = re.compile(r"[a-z]+(?:[-_.][a-z]+)*")


def redact_uri(uri: str) -> str:
    return _URI_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", uri)


def uri_parts(value: str) -> tuple[list[str], list[str]]:
    """Of a URI: the password (a secret wherever it shows up) and the user and host (percent-decoded too;
    loopback hosts excepted), which are scrubbed where they stand as a URI's parts, not as ordinary words:
    a user named `backend` must not turn "Rebuild backend" into "Rebuild ***"."""
    if "://" not in value:
        return [], []
    try:
        split = urlsplit(value)
        password, named = split.password, [split.username, split.hostname]
    except ValueError:
        return [], []
    secret: set[str] = set()
    if password and len(password) >= 3:
        secret |= {password, unquote(password)}
        if split.username:  # the pair as Basic auth sends it (base64 of `user:password`, see encodings())
            secret |= {f"{split.username}:{password}", f"{unquote(split.username)}:{unquote(password)}"}
    parts = [p for p in named if p and p.lower() not in LOOPBACK and len(p) >= 3]
    return sorted(secret), sorted({q for p in parts for q in (p, unquote(p))})


def _in_uri(part: str) -> re.Pattern[str]:
    """``part`` where it stands in a URI or a connection string: after ``//`` or ``@`` (``//user:``,
    ``@host``), before ``@`` (``user@host``) or before ``:password@``; a dotted host name wherever it stands as
    a whole token (no ordinary word has its dots). Never a bare word: "Rebuild backend: failed" stays."""
    word = re.escape(part)
    if "." in part:
        return re.compile(rf"(?<![\w-]){word}(?![\w-])")
    return re.compile(rf"(?:(?<=//)|(?<=@)){word}(?![\w-])|(?<![\w.-]){word}(?=@|:[^\s@/]+@)")


def _base64_inside(raw: bytes, encode: Callable[[bytes], bytes]) -> set[str]:
    """What the base64 of any blob holding ``raw`` shows of it, at each of the three byte alignments: the
    characters whose six bits all come from ``raw`` (the edges mix in the neighbours' bits)."""
    found = set()
    for shift in range(3):
        coded = encode(b"\0" * shift + raw).decode("ascii")
        found.add(coded[-(-8 * shift // 6):(8 * (shift + len(raw))) // 6])
    return found


@functools.lru_cache(maxsize=4096)
def encodings(secret: str) -> tuple[str, ...]:
    """How a secret shows up when a program prints it encoded: base64 (standard and URL-safe, with or
    without padding, and inside a longer base64 blob), hex (either case) and URL-encoding (either case)."""
    raw = secret.encode("utf-8")
    if len(raw) < MIN_ENCODED:
        return ()
    found: set[str] = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(raw).decode("ascii")
        found |= {whole, whole.rstrip("=")} | _base64_inside(raw, encode)
    found |= {raw.hex(), raw.hex().upper()}
    quoted = {quote(secret, safe=safe) for safe in URL_SAFE} | {quote_plus(secret)}
    found |= quoted | {re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), q) for q in quoted}
    found.discard(secret)
    return tuple(sorted(v for v in found if len(v) >= MIN_ENCODED))


@functools.lru_cache(maxsize=64)
def _masks(known: frozenset[str]) -> tuple[str, ...]:
    """The secrets and their encodings, longest first (a secret holding another is masked whole)."""
    return tuple(sorted(known | {e for s in known for e in encodings(s)}, key=len, reverse=True))


def redact(text: str, secrets: Iterable[str] = (), parts: Iterable[str] = ()) -> str:
    """Remove known secret values and their encodings, URI parts where they stand in a URI, credentials in any
    URI, Slack tokens and bearer tokens from text."""
    for secret in _masks(frozenset(s for s in secrets if s and len(s) >= 3)):
        text = text.replace(secret, MASK)
    for part in sorted(set(parts), key=len, reverse=True):
        text = _in_uri(part).sub(MASK, text)
    text = _URI_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    text = _SLACK_TOKEN.sub("xox*-***", text)
    return _BEARER.sub(r"\1***", text)


def secret_values_of(env: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """The values of a .env that must never be shown (and the passwords in them), and their URIs' user and
    host parts."""
    found: list[str] = []
    parts: list[str] = []
    for key, value in env.items():
        if not value:
            continue
        if SECRET_KEY.search(key) and len(value) >= MIN_SECRET:
            found.append(value)
        elif len(value) >= MIN_VALUE and not ORDINARY.fullmatch(value):
            found.append(value)
        secret, named = uri_parts(value)
        found.extend(secret)
        parts.extend(named)
    return found, parts


class SecretBook:
    """Every secret value, kept current: the target's .env is re-read (with ``read_env``, which the composition
    root gives: this module reads no files) when it changes on disk."""

    def __init__(self, own: Iterable[str], env_path: Path | None = None,
                 read_env: Callable[[Path], Mapping[str, str]] | None = None) -> None:
        if env_path is not None and read_env is None:
            raise ValueError("a SecretBook given the target's .env needs read_env to read it")
        self._read_env = read_env
        self._own = [s for s in own if s]
        self._parts: list[str] = []
        for value in list(self._own):
            secret, named = uri_parts(value)
            self._own.extend(secret)
            self._parts.extend(named)
        self._env_path = env_path
        self._stamp: tuple[int, int] | None = None
        self._env_values: list[str] = []
        self._env_parts: list[str] = []
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

    def parts(self) -> list[str]:
        with self._lock:
            self._reload()
            return [*self._parts, *self._env_parts]

    def _reload(self) -> None:
        if self._env_path is None or self._read_env is None:
            return
        try:
            stat = self._env_path.stat()
        except OSError:
            return  # keep what we knew: a vanished .env does not make its old values safe to show
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        try:
            env = self._read_env(self._env_path)
        except (OSError, UnicodeDecodeError):
            return
        values, parts = secret_values_of(env)
        self._env_values = sorted(set(self._env_values) | set(values))  # old values stay secret after an edit
        self._env_parts = sorted(set(self._env_parts) | set(parts))
        self._stamp = stamp

    def redact(self, text: str) -> str:
        return redact(text, self.values(), self.parts())


class RedactingFormatter(logging.Formatter):
    """Formats a record (message, arguments, traceback) and only then scrubs the whole line."""

    def __init__(self, inner: logging.Formatter, scrub: Callable[[str], str]) -> None:
        super().__init__()
        self.inner, self.scrub = inner, scrub

    def format(self, record: logging.LogRecord) -> str:
        return self.scrub(self.inner.format(record))
