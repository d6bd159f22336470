"""The target's multi-tenant MongoDB, through pymongo: tenant discovery and mongorestore-compatible dumps.

Every URI goes to a real server through pymongo: the production MongoDB, or the local nx-27017 server that
the sandbox, `make local` and the tests start (``bot.dev.localmongo``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from bot.config import TenantsConfig
from bot.errors import StepFailed
from bot.redact import redact_uri

if TYPE_CHECKING:  # pymongo is imported on first use: a bot that is idle has no need of it
    from pymongo import MongoClient

SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,63}$")
# A server that is down or unreachable fails the step in seconds instead of hanging it; no single operation
# (one cursor batch of a dump, a cleanup's update_many on a large tenant) may take longer than timeoutMS. The
# URI's own values win: pymongo would let these keyword arguments override them.
TIMEOUTS_MS = {"serverSelectionTimeoutMS": 5_000, "connectTimeoutMS": 5_000, "timeoutMS": 300_000}


def connect(uri: str) -> MongoClient[dict[str, Any]]:
    """A pymongo client for ``uri`` (tz-aware datetimes, the timeouts above). Callers close it with ``close``."""
    from pymongo import MongoClient

    given = {key.lower() for key, _ in parse_qsl(urlsplit(uri).query)}
    timeouts: dict[str, Any] = {key: value for key, value in TIMEOUTS_MS.items() if key.lower() not in given}
    return MongoClient(uri, tz_aware=True, **timeouts)


def close(client: MongoClient[dict[str, Any]]) -> None:
    client.close()


def default_database(uri: str) -> str:
    path = urlsplit(uri).path.lstrip("/")
    return path.split("?")[0] or "test"


@dataclass(frozen=True)
class Tenant:
    name: str
    db_name: str


def list_tenants(client: Any, uri: str, config: TenantsConfig) -> list[Tenant]:
    central = client[default_database(uri)]
    tenants = []
    for school in central[config.schools_collection].find(config.active_filter):
        db_name = school.get(config.db_name_field)
        if not isinstance(db_name, str) or not SAFE_NAME.match(db_name):
            raise StepFailed(f"a school has an unusable {config.db_name_field}: {str(db_name)[:40]!r}")
        tenants.append(Tenant(str(school.get(config.name_field) or db_name), db_name))
    return tenants



def describe(uri: str) -> str:
    return redact_uri(uri)
