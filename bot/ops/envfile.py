"""The target's ``.env``: read without executing anything, and edited in place keeping every other line."""

from __future__ import annotations

import os
from pathlib import Path


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


def _is_line_for(key: str, line: str) -> bool:
    stripped = line.strip()
    return not stripped.startswith("#") and stripped.removeprefix("export ").split("=", 1)[0].strip() == key


def set_env_value(path: Path, key: str, value: str | None) -> None:
    """Edit `.env` in place: the first line for `key` gets the value (None removes it), duplicates are
    removed, every other line and comment stays as it was. Written atomically with the file's mode."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True) if path.exists() else []
    out, done = [], False
    for line in lines:
        if _is_line_for(key, line):
            if not done and value is not None:
                prefix = "export " if line.strip().startswith("export ") else ""
                out.append(f"{prefix}{key}={value}\n")
            done = True
            continue
        out.append(line)
    if not done and value is not None:
        if out and not out[-1].endswith("\n"):
            out[-1] += "\n"
        out.append(f"{key}={value}\n")
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    temp = path.with_name(path.name + ".rollback-bot.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("".join(out))
    os.replace(temp, path)
