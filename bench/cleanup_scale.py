"""Danger-zone cleanup execution, 10 tenants against 1,000: is the time per tenant the same?

Two in-process bots (``socket_mode_bot``, default config but ``cleanup.start_delay_s: 0``, SQLite state, each on
its own emulated Slack with ``rate_limits=False``) run against two sandbox targets on one local nx-27017: one
lists 10 tenants, the other 1,000 (each like the sandbox's: 4-8 cases carrying the ten fields, 6 attempts, 3
users). Set-up, not timed: an incident, ``/rollback backup``, then one real ``/rollback cleanup`` request
approved by a second person's ✅ reaction (it runs and is recorded as round "warm-up").

Each round, for each bot in an order that alternates per round: the data is put back (raw writes, not
timed), an approved and due cleanup request is recorded in the bot's store for the same plan and request
message (what a ✅ leaves behind), and the bot's own sweep is nudged: it starts the run exactly as after a real
approval. Timed: ``Executor._run`` from its start (the drift re-check: one count per planned operation,
re-verification of the backup on disk, every tenant, the final records and messages) to its end. Also counted
during the run: the bytes the bot writes to its store (the SQL statements SQLite runs, parameters expanded, from
its trace callback; by record kind), and the ``chat.update`` calls per message in any one second (what Slack
limits: a shorter run must not read as a faster pace, nor a long quiet stretch hide a burst).

Target: the time per tenant at 1,000 tenants under 2x the time per tenant at 10 (per-round ratio). ``--large N``
runs the large side at N tenants instead (the quick tier of ``make bench`` uses it).

And against the raw operations (issue 22: <= 2x): each round also runs, on the 1,000-tenant target and
interleaved with its bot run (alternating which goes first), the runbook's cleanup as a plain loop: per tenant
one ``update_many`` ``$unset`` of the fields on the cases carrying them and one ``drop_collection``, nothing
else (no dry run, no re-check, no records, no messages); the data is put back before it, not timed.

    .venv/bin/python bench/cleanup_scale.py [--rounds 5] [--large 1000] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    DEFAULT_ROUNDS,
    INCIDENT_CHANNEL,
    Row,
    bot_config,
    bot_settings,
    interleave,
    print_table,
    ratio_row,
    write_results,
)

NAME = "cleanup_scale"
TARGET = 2.0
SIZES = (10, 1000)
# nx-27017 0.8.1 crashes under the planner's 8 concurrent dry runs over hundreds of tenants (see
# bench/tenant_data.py); the dry runs go one at a time here. PLAN_PARALLEL=8 restores the bot's default.
PLAN_PARALLEL = int(os.environ.get("PLAN_PARALLEL", "1"))


def seed_tenants(client: Any, sandbox: Any, total: int) -> list[str]:
    """Add tenants to the sandbox's central `schools` until it lists ``total``; the names of all of them."""
    from bot.config import RUNBOOK_CLEANUP_FIELDS
    from bot.ops import tenants

    central = client[tenants.default_database(sandbox.central_uri)]
    token = sandbox.tenant_dbs[0].split("_")[0]
    extra = [f"{token}_x{i:04d}" for i in range(total - len(sandbox.tenant_dbs))]
    if extra:
        central.schools.insert_many([{"name": f"School {db}", "db_name": db, "deleted_at": None} for db in extra])
    every = [*sandbox.tenant_dbs, *extra]
    for db_name in every:  # all alike (the sandbox's own three too), so a reset gives back the planned counts
        db = client[db_name]
        db.drop_collection("internshipcases")
        db.drop_collection("internship_case_attempts")
        db.internshipcases.insert_many([{"title": f"Case {n}", "carries": n % 3 != 2,
                                         **({f: f"{f}-{n}" for f in RUNBOOK_CLEANUP_FIELDS} if n % 3 != 2 else {})}
                                        for n in range(6)])
        reset_tenant(client, db_name, RUNBOOK_CLEANUP_FIELDS, fields_too=False)
        if db_name in extra:
            db.users.insert_many([{"name": f"student-{n}", "role": "student"} for n in range(3)])
    return every


def reset_tenant(client: Any, db_name: str, fields: tuple[str, ...] | list[str], fields_too: bool = True) -> None:
    """Undo a cleanup in two writes: the fields back on the cases that carry them, the attempts re-created."""
    db = client[db_name]
    if fields_too:
        db.internshipcases.update_many({"carries": True}, {"$set": {f: f"{f}-again" for f in fields}})
    db.drop_collection("internship_case_attempts")
    db.internship_case_attempts.insert_many([{"case": n, "attempt": a} for n in range(3) for a in range(2)])


def busiest_second(updates: list[tuple[float, str]]) -> int:
    """The most ``chat.update`` calls on one message within any 1-second window (``updates``: (when, message ts))."""
    most = 0
    for message in {ts for _, ts in updates}:
        times = sorted(t for t, ts in updates if ts == message)
        first = 0
        for last, at in enumerate(times):
            while at - times[first] >= 1.0:
                first += 1
            most = max(most, last - first + 1)
    return most


def _table(statement: str) -> str:
    """The table an INSERT/UPDATE/DELETE statement writes to (its first word after INTO/UPDATE/FROM)."""
    words = statement.replace("(", " ").split()
    for index, word in enumerate(words[:-1]):
        if word.upper() in ("INTO", "UPDATE", "FROM"):
            return f"table {words[index + 1]}"
    return "other"


class Side:
    """One bot on one target, with its timing and counting hooks."""

    def __init__(self, size: int, root: Path, mongo_uri: str, client: Any) -> None:
        from bot.app import socket_mode_bot
        from bot.dev.emulator import Emulator
        from bot.dev.sandbox import create_sandbox
        from bot.domain.danger import plans

        plans.PLAN_PARALLEL = PLAN_PARALLEL
        self.size, self.client = size, client
        self.sandbox = create_sandbox(root / f"target-{size}", mongo_uri=mongo_uri, local_server=True)
        self.tenants = seed_tenants(client, self.sandbox, size)
        self.emulator = Emulator(rate_limits=False).start()
        config = bot_config(self.sandbox, root / f"data-{size}", cleanup={"start_delay_s": 0})
        self.bot = socket_mode_bot(bot_settings(self.emulator, config)).start()
        services = self.bot.services
        self.services = services
        self.fields = list(services.settings.runbook.cleanup.unset_fields)
        self.done = threading.Event()
        self.timing: dict[str, float] = {}
        self.updates: list[tuple[float, str]] = []  # (when, the ts of the message updated)
        self.writes: dict[str, list[int]] = {}
        self._hook()

    def _hook(self) -> None:
        executor, store, messenger = self.services.executor, self.services.store, self.services.messenger
        run, update = executor._run, messenger.update

        def timed_run(*args: Any, **kwargs: Any) -> Any:
            self.timing["start"] = time.perf_counter()
            try:
                return run(*args, **kwargs)
            finally:
                self.timing["end"] = time.perf_counter()
                self.done.set()

        def counted_update(channel: str, ts: str, *args: Any, **kwargs: Any) -> Any:
            self.updates.append((time.perf_counter(), ts))
            return update(channel, ts, *args, **kwargs)

        executor._run = timed_run  # type: ignore[method-assign]
        messenger.update = counted_update  # type: ignore[method-assign]
        # The bytes written are those of the SQL SQLite was asked to run: its trace callback gets every statement
        # with its parameters expanded (a bench-only hook on the store's connection). A statement run inside one
        # of the store's record writes counts under the record's kind, any other write under its table.
        current = threading.local()

        def traced(statement: str) -> None:
            verb = statement.lstrip()[:7].upper()
            if not verb.startswith(("INSERT", "UPDATE", "DELETE", "REPLACE")):
                return
            kind = getattr(current, "kind", None) or _table(statement)
            self.writes.setdefault(kind, []).append(len(statement.encode()))

        store._db().set_trace_callback(traced)
        for name in ("_insert", "_put", "_replace"):
            original = getattr(store, name)

            def counted(kind: str, doc_id: str, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
                current.kind = kind
                try:
                    return _original(kind, doc_id, *args, **kwargs)
                finally:
                    current.kind = None

            setattr(store, name, counted)

    def setup(self) -> dict[str, Any]:
        """Incident, backup, one real request approved by reaction (the warm-up round)."""
        emu = self.emulator
        emu.slash("casey", "incident-rollback", "start cleanup scaling benchmark").wait()
        panel = emu.ws.wait_for(lambda: [m for m in emu.ws.channel_messages(INCIDENT_CHANNEL) if m.get("blocks")],
                                30, "the control panel")[0]
        emu.slash("casey", "incident-rollback", "backup").wait()

        def backed_up() -> str | None:
            for message in emu.ws.thread(INCIDENT_CHANNEL, panel["ts"]):
                if "*Backup current state* — succeeded" in message["text"]:
                    return str(message["text"])
                if "*Backup current state* — failed" in message["text"]:
                    raise RuntimeError(message["text"][:500])
            return None

        emu.ws.wait_for(backed_up, 600, "the backup")
        store = self.services.store
        emu.slash("casey", "incident-rollback", "cleanup").wait()
        self.request = emu.ws.wait_for(lambda: [a for a in store.approvals() if a.message_ts], 600,
                                       "the cleanup request")[0]
        self.plan = store.get_plan(self.request.id)
        self.done.clear()
        emu.react("alex", "incident-rollback", self.request.message_ts, "white_check_mark").wait()
        return self._finish(self.request.id)

    def _finish(self, approval_id: str) -> dict[str, Any]:
        from bot.domain.approvals import ApprovalStatus

        if not self.done.wait(900):
            raise RuntimeError(f"the {self.size}-tenant cleanup did not run")
        store = self.services.store
        approval = store.get_approval(approval_id)
        results = store.tenant_results(approval_id)
        if approval is None or approval.status is not ApprovalStatus.EXECUTED or len(results) != self.size \
                or not all(r.ok for r in results):
            raise RuntimeError(f"the {self.size}-tenant cleanup did not execute cleanly: "
                               f"{approval.status if approval else None}, {len(results)} results")
        seconds = self.timing["end"] - self.timing["start"]
        # Every update from the run's start on: the worker delivering the run's messages may end after the run.
        updates = [(t, ts) for t, ts in self.updates if self.timing["start"] <= t]
        return {"seconds": seconds, "per_tenant_ms": seconds / self.size * 1000, "tenants": self.size,
                "chat_updates": len(updates), "updates_per_message_s": busiest_second(updates),
                "store_writes": {k: {"count": len(v), "bytes": sum(v), "max": max(v)} for k, v in self.writes.items()}}

    def round(self, index: int) -> dict[str, Any]:
        from bot.domain.approvals import ApprovalStatus

        for db in self.tenants:  # the data back as it was (not timed)
            reset_tenant(self.client, db, self.fields)
        store, now = self.services.store, self.services.clock.now()
        approval_id = f"{self.request.id}-r{index}"
        store.put_plan(self.plan.model_copy(update={"approval_id": approval_id}), self.request.incident_id)
        approval = self.request.model_copy(update={
            "id": approval_id, "status": ApprovalStatus.APPROVED, "requested_at": now, "approved_at": now,
            "starts_at": now, "expires_at": now + timedelta(minutes=15), "version": 0, "started_at": None,
            "finished_at": None, "heartbeat_at": None, "owner": self.services.deps.replica.owner,
            "approvers": ["U0APPROVER1"], "decided_by": "U0APPROVER1"})
        self.done.clear()
        self.updates.clear()
        self.writes.clear()
        store.add_approval(approval)
        self.services.jobs.nudge()
        return self._finish(approval_id)

    def raw(self) -> dict[str, Any]:
        """The runbook's cleanup as a plain loop over the same tenants: the least the bot's run could cost."""
        for db in self.tenants:  # the data back as it was (not timed)
            reset_tenant(self.client, db, self.fields)
        config = self.services.settings.runbook.cleanup
        query = {"$or": [{f: {"$exists": True}} for f in config.unset_fields]}
        unset = {f: "" for f in config.unset_fields}
        started = time.perf_counter()
        for db_name in self.tenants:
            db = self.client[db_name]
            db[config.collection].update_many(query, {"$unset": unset})
            for name in config.drop_collections:
                db.drop_collection(name)
        seconds = time.perf_counter() - started
        return {"seconds": seconds, "per_tenant_ms": seconds / self.size * 1000, "tenants": self.size}

    def close(self) -> None:
        from bot.dev.sandbox import drop_tenants, stop_apps

        self.bot.close()
        self.emulator.close()
        stop_apps(self.sandbox)
        for db in self.tenants[len(self.sandbox.tenant_dbs):]:
            self.client.drop_database(db)
        drop_tenants(self.sandbox)


def run(rounds: int, sizes: tuple[int, int] = SIZES) -> list[Row]:
    from pymongo import MongoClient

    from bot.dev.localmongo import LocalMongo

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cleanup-bench-") as name, LocalMongo(Path(name) / "mongo") as mongo:
        client: MongoClient[dict[str, Any]] = MongoClient(mongo.uri, tz_aware=True)
        sides: list[Side] = []
        try:
            for size in sizes:
                sides.append(Side(size, Path(name), mongo.uri, client))
            small, large = sides
            warm = {side.size: side.setup() for side in sides}
            print(f"  warm-up (real request + reaction): {small.size} tenants {warm[small.size]['seconds']:.2f}s, "
                  f"{large.size} tenants {warm[large.size]['seconds']:.2f}s", flush=True)
            results = []
            for index in range(rounds):
                few, many, order = interleave(index, lambda index=index: small.round(index),
                                              lambda index=index: large.round(index))
                order = order.replace("bot, baseline", f"{small.size}, {large.size}").replace(
                    "baseline, bot", f"{large.size}, {small.size}")
                # The raw loop before the bots in even rounds, after them in odd ones.
                raw = large.raw() if index % 2 == 0 else None
                row = {"round": index, "order": order, "ten": few, "thousand": many,
                       "per_tenant_10_ms": few["per_tenant_ms"], "per_tenant_1000_ms": many["per_tenant_ms"]}
                raw = raw or large.raw()
                row.update(raw_1000=raw, per_tenant_raw_ms=raw["per_tenant_ms"])
                results.append(row)
                print(f"  round {index}: {small.size} tenants {few['seconds']:.2f}s ({few['per_tenant_ms']:.1f} ms "
                      f"each), {large.size} tenants {many['seconds']:.2f}s ({many['per_tenant_ms']:.1f} ms each), "
                      f"raw operations {raw['per_tenant_ms']:.1f} ms each", flush=True)
        finally:
            for side in sides:
                side.close()
            client.close()
    return report(results, warm, started, sizes)


def report(results: list[dict[str, Any]], warm: dict[int, Any], started: float,
           sizes: tuple[int, int] = SIZES) -> list[Row]:
    few_n, many_n = sizes
    rows = [ratio_row(NAME, f"cleanup execute, time per tenant: {many_n} tenants / {few_n}", results,
                      "per_tenant_1000_ms",
                      "per_tenant_10_ms", "ms", TARGET, fmt="{:.1f}", target=f"ratio < {TARGET:g}",
                      note=f"the 10-tenant side is the baseline; dry runs one at a time (PLAN_PARALLEL="
                      f"{PLAN_PARALLEL}) because nx-27017 crashes under the default 8"),
            ratio_row(NAME, f"cleanup execute, time per tenant at {many_n} tenants / the raw operations", results,
                      "per_tenant_1000_ms", "per_tenant_raw_ms", "ms", TARGET, fmt="{:.1f}",
                      note="raw: update_many $unset + drop_collection per tenant in a plain loop; the bot also "
                      "re-checks every tenant against the approved plan before anything changes, re-verifies the "
                      "backup, and records each tenant")]

    def per_tenant_bytes(side: str) -> list[float]:
        return [sum(w["bytes"] for w in r[side]["store_writes"].values()) / r[side]["tenants"] for r in results]

    flat = [{"many": m, "few": f} for m, f in zip(per_tenant_bytes("thousand"), per_tenant_bytes("ten"), strict=True)]
    rows.append(ratio_row(NAME, f"store bytes written per tenant, {many_n} / {few_n}", flat, "many", "few", "B", 1.5,
                          fmt="{:.0f}", target="ratio <= 1.5 (no growing document)"))
    biggest = max(w["max"] for r in results for w in r["thousand"]["store_writes"].values())
    kinds = {k: v["count"] for k, v in results[-1]["thousand"]["store_writes"].items()}
    rows.append(Row(NAME, f"largest store write (one SQL statement) in a {many_n}-tenant run",
                    f"{biggest / 1024:.1f} KB",
                    f"{max(w['max'] for r in results for w in r['ten']['store_writes'].values()) / 1024:.1f} KB "
                    f"({few_n} tenants)", None, "-", None,
                    note=f"SQL writes by record kind (or table) in the last {many_n}-tenant run: {kinds}"))
    pace = max(r[side]["updates_per_message_s"] for r in results for side in ("ten", "thousand"))
    rows.append(Row(NAME, "chat.update calls on one message within any 1 s of a run (max, both sizes)", str(pace),
                    "Slack: ~1/s per message", None, "<= 2 (progress throttled to 1/s, + the final redraw)",
                    pace <= 2))
    write_results(NAME, rows=rows, config={"sizes": sizes, "rounds": len(results), "plan_parallel": PLAN_PARALLEL,
                                           "start_delay_s": 0},
                  rounds={"warm_up": warm, "rounds": results}, started=started)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--large", type=int, default=SIZES[1], help="tenants on the large side")
    parser.add_argument("--quick", action="store_true", help="2 rounds")
    args = parser.parse_args()
    if args.quick:
        args.rounds = 2
    os.environ.setdefault("LOG_LEVEL", "warning")
    print_table(run(args.rounds, (SIZES[0], args.large)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
