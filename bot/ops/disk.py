"""The data folder's file system and the backup runs on it: free space, folder sizes, listing and removing runs.

Thin on purpose: what counts as too little room, and which run may go, is the domain's
(``bot/domain/backups.py``); this module only measures and removes what it is told to.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Space:
    """The file system holding ``path``: bytes an ordinary process may still write, and its size."""

    path: Path  # the folder that was measured (the nearest existing one)
    free: int
    total: int


def space(path: Path) -> Space:
    """``statvfs`` of the nearest existing folder at or above ``path`` (the data folder may not exist yet).
    ``f_bavail``: the blocks left for unprivileged writers, the smaller and honest figure (root may also use
    the file system's own reserve, which the bot should never count on)."""
    found = path.absolute()
    while not found.exists() and found != found.parent:
        found = found.parent
    stats = os.statvfs(found)
    return Space(found, stats.f_bavail * stats.f_frsize, stats.f_blocks * stats.f_frsize)


def folder_bytes(path: Path) -> int:
    """The size of every regular file under ``path`` (symlinks are not followed)."""
    total = 0
    for root, _dirs, files in os.walk(path, followlinks=False):
        for name in files:
            try:
                info = os.lstat(os.path.join(root, name))
            except OSError:
                continue  # removed while we looked
            total += info.st_size
    return total


@dataclass(frozen=True)
class RunFolder:
    """One folder ``<backups>/<incident>/<run id>/`` as it is on disk."""

    incident: str
    run_id: str
    path: Path
    bytes: int
    modified: datetime  # the folder's mtime, UTC
    complete: bool  # its manifest.json exists (written last)


def run_folders(backups: Path) -> list[RunFolder]:
    """Every run folder under ``backups`` (``<data_dir>/backups``), incident by incident; symlinks are skipped."""
    found: list[RunFolder] = []
    if not backups.is_dir():
        return found
    for incident in sorted(backups.iterdir()):
        if incident.is_symlink() or not incident.is_dir():
            continue
        for run in sorted(incident.iterdir()):
            if run.is_symlink() or not run.is_dir():
                continue
            modified = datetime.fromtimestamp(run.stat().st_mtime, UTC)
            found.append(RunFolder(incident.name, run.name, run, folder_bytes(run), modified,
                                   (run / MANIFEST).is_file()))
    return found


def remove_run(backups: Path, incident: str, run_id: str) -> int:
    """Remove ``<backups>/<incident>/<run_id>/`` and everything in it; the bytes freed. Refuses a path that is not
    exactly two plain folders below ``backups`` (no ``..``, no symlink)."""
    root = backups.resolve()
    run = root / incident / run_id
    if (run.resolve().parent.parent != root or run.is_symlink() or (root / incident).is_symlink()
            or not run.is_dir() or "/" in incident + run_id or incident in ("", ".", "..")
            or run_id in ("", ".", "..")):
        raise ValueError(f"not a backup run folder under {root}: {incident}/{run_id}")
    size = folder_bytes(run)
    shutil.rmtree(run)
    return size
