"""Logging: JSON lines when not on a terminal, context fields on every record, secrets scrubbed after
formatting (message, arguments, tracebacks and slack_sdk's DEBUG request/response bodies alike)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO

from bot.config import Settings
from bot.logctx import ContextFilter
from bot.ops.envfile import read_env_file
from bot.redact import RedactingFormatter, SecretBook


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage(),
                **getattr(record, "context", {})}
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = getattr(record, "context", {})
        if context:
            first, _, rest = text.partition("\n")
            text = first + " [" + " ".join(f"{k}={v}" for k, v in context.items()) + "]" + (
                "\n" + rest if rest else "")
        return text


def configure(settings: Settings | None, level: str, *, json_lines: bool | None = None,
              stream: IO[str] | None = None) -> None:
    """One handler on the root logger: context → format → scrub. `stream` defaults to stderr."""
    book = SecretBook(settings.secrets.values() if settings else [],
                      settings.runbook.target.env_path if settings else None, read_env_file)
    out = stream if stream is not None else sys.stderr
    use_json = (not out.isatty()) if json_lines is None else json_lines
    handler = logging.StreamHandler(out)
    handler.addFilter(ContextFilter())
    handler.setFormatter(RedactingFormatter(JsonFormatter() if use_json else TextFormatter(), book.redact))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # A handler that fails (a closed or broken stderr) must not print the record raw: that bypasses the scrub.
    logging.raiseExceptions = False
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))  # job chatter
