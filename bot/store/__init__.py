"""State store factory: SQLite in the data dir by default, MongoDB when STATE_STORE_URI says so. Both implement
the domain's contract, :class:`bot.domain.store.Store`."""

from __future__ import annotations

from pathlib import Path

from bot.domain.store import ActiveIncidentExists, Store
from bot.errors import ConfigError

SQLITE_FILE = "rollback-bot.sqlite3"


def open_store(uri: str | None, data_dir: Path) -> Store:
    if not uri or uri.startswith("sqlite:"):
        from bot.store.sqlite import SQLiteStore

        path = Path(uri.removeprefix("sqlite:///").removeprefix("sqlite:")) if uri else data_dir / SQLITE_FILE
        return SQLiteStore(path)
    if uri.startswith(("mongodb://", "mongodb+srv://")):
        from bot.store.mongo import MongoStore

        return MongoStore.from_uri(uri)
    raise ConfigError("STATE_STORE_URI: expected mongodb://…, mongodb+srv://… or sqlite:///path (or unset for "
                      "the SQLite file in the data dir)")


def describe_store(uri: str | None, data_dir: Path) -> str:
    """Where state lives, without credentials."""
    if not uri or uri.startswith("sqlite:"):
        return f"SQLite at {uri.removeprefix('sqlite:///') if uri else data_dir / SQLITE_FILE}"
    from bot.redact import redact_uri

    return f"MongoDB at {redact_uri(uri)}"


__all__ = ["ActiveIncidentExists", "Store", "describe_store", "open_store"]
