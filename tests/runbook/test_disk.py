"""The disk preflight: a backup whose estimated size would leave the data folder's file system below
``backup.reserve_mb`` is refused privately, with the figures and what to free, before anything is written.

The data folder is a real small file system: a size-limited tmpfs this test mounts (we run as root) and unmounts.
The estimate comes from the server's collection statistics (``collStats``); where a server refuses them, from
a sample of documents × the count (both checked against what a dump really writes).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bson
import pytest

from bot.app import SocketModeBot
from bot.dev.emulator import Emulator
from bot.dev.sandbox import Sandbox
from bot.ops import dump, tenants
from tests.conftest import COMMANDER, INCIDENT, make_settings
from tests.danger.test_cleanup import Drill

MIB = 1 << 20


def _mounted(path: Path) -> bool:
    return any(line.split()[1] == str(path) for line in Path("/proc/self/mounts").read_text().splitlines())


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """``mount(mib)``: a tmpfs of that many MiB at ``tmp_path/data``, unmounted at the end."""
    folder = tmp_path / "data"
    made: list[Path] = []

    def mount(mib: int) -> Path:
        folder.mkdir()
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mib}m,mode=0700", "tmpfs", str(folder)],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip()}); the refusal needs a small file system")
        made.append(folder)
        return folder

    yield mount
    for path in made:
        if subprocess.run(["umount", str(path)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], check=False)
        assert not _mounted(path), f"{path} is still mounted"


def _grow(sandbox: Sandbox, mib: int) -> int:
    """Put about ``mib`` MiB of documents into the first tenant's `bulk` collection; their BSON bytes."""
    client = tenants.connect(sandbox.central_uri)
    try:
        docs = [{"i": i, "blob": "x" * 4000} for i in range(mib * 256)]
        client[sandbox.tenant_dbs[0]]["bulk"].insert_many(docs)
        return sum(len(bson.encode(d)) for d in docs)
    finally:
        tenants.close(client)


def _figure(text: str, pattern: str) -> float:
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not in {text!r}"
    return float(found.group(1).replace(",", ""))


def test_a_backup_that_would_cross_the_reserve_is_refused_privately_with_the_figures(
        small_fs: Callable[[int], Path], emulator: Emulator, sandbox: Sandbox,
        start_bot: Callable[..., SocketModeBot]) -> None:
    data = small_fs(16)
    settings = make_settings(emulator, sandbox, data, backup={"reserve_mb": 12}, store={"sweep_s": 600})
    incident = Drill(emulator, start_bot(settings))
    first = incident.backup()  # the tenants are small: it fits, and its plan says the figures
    plan = incident.store.step_runs("RB-0001")[0].plan
    assert any(line.startswith("room: estimated") and "reserve 12.0 MiB" in line for line in plan), plan

    written = _grow(sandbox, 6)  # the data grew: a second run would not leave 12 MiB free of 16
    incident.slash("backup --again")
    refusal = incident.ephemeral(COMMANDER, "Backup refused")
    free_now = os.statvfs(data).f_bavail * os.statvfs(data).f_frsize / MIB

    estimate = _figure(refusal, r"Estimated size ([\d.,]+) MiB")
    free = _figure(refusal, r"free now ([\d.,]+) MiB of [\d.,]+ MiB")
    total = _figure(refusal, r"free now [\d.,]+ MiB of ([\d.,]+) MiB")
    after = _figure(refusal, r"free after the backup (-?[\d.,]+) MiB")
    short = _figure(refusal, r"Free at least ([\d.,]+) MiB")
    assert estimate >= written / MIB - 0.05  # the server's statistics cover what was written
    assert abs(free - free_now) <= 0.2 and total == pytest.approx(16.0, abs=0.1)
    assert after == pytest.approx(free - estimate, abs=0.15) and after < 12
    assert short == pytest.approx(12 - after, abs=0.15)
    assert "reserve 12.0 MiB" in refusal and "backup.reserve_mb" in refusal and "collStats" in refusal
    assert "rollback-bot backups prune --dry-run" in refusal and "rollback-bot backups prune --yes" in refusal
    assert "Nothing was written" in refusal

    # Nothing was written: the one earlier run alone, no second step run, no step started.
    assert [p.name for p in (data / "backups" / "RB-0001").iterdir()] == [first.name]
    assert [r.id for r in incident.store.step_runs("RB-0001")] == [first.name]
    assert len(incident.audit("step.started")) == 1
    assert not any("Backup refused" in m.get("text", "") for m in emulator.ws.channel_messages(INCIDENT))


def _dumped_bytes(sandbox: Sandbox, tmp_path: Path) -> tuple[int, dump.Estimate]:
    client = tenants.connect(sandbox.central_uri)
    try:
        jobs: list[tuple[str, list[str] | None]] = [(db, None) for db in sandbox.tenant_dbs]
        estimate = dump.estimate_databases(client, jobs)
        run = tmp_path / "run"
        run.mkdir()
        dumped = dump.dump_databases(client, jobs, run)
    finally:
        tenants.close(client)
    return sum(d.bytes for collections in dumped.values() for d in collections.values()), estimate


def test_the_estimate_from_collstats_covers_what_the_dump_writes(sandbox: Sandbox, tmp_path: Path) -> None:
    _grow(sandbox, 1)
    written, estimate = _dumped_bytes(sandbox, tmp_path)
    assert estimate.sampled == 0 and estimate.from_stats == estimate.collections > 0
    # MongoDB's collStats `size` is the BSON a dump writes; nx-27017's is larger (never smaller).
    assert written <= estimate.bytes <= 2 * written, (written, estimate)


def test_without_collstats_the_estimate_is_a_sample_times_the_count(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pymongo.database import Database
    from pymongo.errors import OperationFailure

    real = Database.command

    def no_collstats(self: Database[Any], command: Any, *args: Any, **kwargs: Any) -> Any:
        if command == "collStats":
            raise OperationFailure("no such command: 'collStats'", code=59)
        return real(self, command, *args, **kwargs)

    monkeypatch.setattr(Database, "command", no_collstats)
    _grow(sandbox, 1)
    written, estimate = _dumped_bytes(sandbox, tmp_path)
    assert estimate.from_stats == 0 and estimate.sampled == estimate.collections > 0
    assert 0.8 * written <= estimate.bytes <= 1.2 * written, (written, estimate)


def test_check_shows_the_free_space_and_the_last_backups_size_and_fails_below_the_reserve(
        small_fs: Callable[[int], Path], emulator: Emulator, sandbox: Sandbox,
        start_bot: Callable[..., SocketModeBot]) -> None:
    from bot.check import _disk
    from bot.domain.backups import size as shown

    data = small_fs(16)
    settings = make_settings(emulator, sandbox, data, backup={"reserve_mb": 4}, store={"sweep_s": 600})
    before = _disk(settings)
    assert before.ok and "no backup run yet" in str(before) and "of 16.0 MiB, reserve 4.0 MiB" in str(before)
    run = Drill(emulator, start_bot(settings)).backup()
    size = sum(p.stat().st_size for p in run.rglob("*") if p.is_file())

    line = str(_disk(settings))
    assert line.startswith("[ok  ] data folder: ") and f"last backup {run.name}: {shown(size)} (" in line
    full = str(_disk(make_settings(emulator, sandbox, data, backup={"reserve_mb": 32})))
    assert full.startswith("[FAIL] data folder: ") and "below the reserve, every backup is refused" in full
    assert "rollback-bot backups prune --dry-run" in full


def test_the_build_alongside_is_skipped_when_it_would_cross_the_reserve(
        small_fs: Callable[[int], Path], emulator: Emulator, sandbox: Sandbox,
        start_bot: Callable[..., SocketModeBot]) -> None:
    """The backup fits, but its build alongside (twice the newest kept build) would not: the plan says it does not
    build alongside, and why, and no worktree is made."""
    import json

    data = small_fs(16)
    kept = data / "builds" / "0123456789abcdef01234567"  # a kept build of 4 MiB, of another tree
    kept.mkdir(parents=True)
    (kept / "manifest.json").write_text(json.dumps({
        "key": {"tree": "f" * 40, "lock": "none", "node": "v20.0.0"}, "commit": "f" * 40, "outputs": {"dist": True},
        "content_sha256": "0" * 64, "files": 1, "bytes": 4 * MIB, "kept_at": "2026-12-03T03:00:00+00:00",
        "reason": "after verify of RB-0000"}))
    settings = make_settings(emulator, sandbox, data, backup={"reserve_mb": 8}, store={"sweep_s": 600})
    incident = Drill(emulator, start_bot(settings))
    incident.backup()
    plan = incident.store.step_runs("RB-0001")[0].plan
    skipped = [line for line in plan if line.startswith("not building alongside: only ")]
    assert skipped and "MiB free after the backup (it needs 16.0 MiB" in skipped[0], plan
    assert not any("meanwhile: build" in line for line in plan)
    assert not (data / "builds" / ".worktrees").exists()
