"""Context for log records: bind incident, step, user and correlation id once per task (``contextvars``),
and every record logged inside carries them as fields."""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("rollback_log_context", default={})  # noqa: B039


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def current() -> dict[str, Any]:
    return dict(_context.get())


class ContextFilter(logging.Filter):
    """Copies the bound fields onto each record (as ``record.context``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = {**current(), **getattr(record, "context", {})}
        correlation = getattr(record, "correlation_id", None)
        if correlation:
            fields["correlation_id"] = correlation
        record.context = fields  # a field of our own on the record
        return True
