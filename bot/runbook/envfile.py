"""Reading the target's .env without executing anything, and which of its values are secrets."""

from __future__ import annotations

import os
from pathlib import Path

from bot.redact import SECRET_KEY


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.removeprefix("export ").split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def env_value(name: str | None, env_path: Path) -> str | None:
    """A setting such as a bearer token: from the bot's environment first, else from the target's .env."""
    if not name:
        return None
    if os.environ.get(name):
        return os.environ[name]
    try:
        return read_env_file(env_path).get(name)
    except OSError:
        return None


def secret_values(path: Path) -> list[str]:
    """Values to keep out of Slack: every value of a secret-looking key, and any long value."""
    try:
        env = read_env_file(path)
    except OSError:
        return []
    return [v for k, v in env.items() if v and (SECRET_KEY.search(k) or len(v) >= 12)]
