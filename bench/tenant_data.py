"""Tenant data at size: backup, cleanup plan and execute, restore plan and restore, with peak memory.

Data (on a local nx-27017 server, the MongoDB-protocol server the project runs on): 3 large tenants of
``--docs`` (50,000) ``internshipcases`` of about 1 KB each (two thirds carry the ten Phase-1 fields) with
1,000 ``internship_case_attempts`` and 100 ``users``, plus 300 small tenants (10 cases, 6 attempts, 3 users),
all listed in the sandbox target's central ``schools``. A second target lists the same 300 small tenants and
3 tenants a tenth the size, to see whether memory grows with collection size.

Every measurement runs in a child process of its own (timed inside it, after imports and set-up); its peak
memory is the kernel's peak RSS (VmHWM, reset through /proc/self/clear_refs right before the timed work)
minus the resident size at that moment. Each round
runs the bot and the baseline for each operation, in an order that alternates per round:

- **backup** — bot: the backup step itself (``bot.runbook.backup.Backup().run``, default ``backup.parallel``
  4; pm2 logs skipped, no pm2 here). Baseline: a raw loop, central ``schools`` then every collection of every
  tenant, ``find()`` → ``bson.encode`` → ``write``, fsynced. Target 1.25x.
- **cleanup plan** — bot: ``Planner.cleanup_plan`` (the dry runs, 8 tenants at a time), with the server
  commands it sends counted per tenant (pymongo command monitoring). Baseline: the same three queries per
  tenant in a plain sequential loop. Informational, plus "one aggregation per tenant".
- **cleanup execute** — bot: ``bot.ops.cleanup.clean_tenant`` per tenant, in plan order, as the danger-zone
  executor calls it (the executor's own overhead — records, audit, Slack progress — is measured by
  ``bench/cleanup_scale.py``). Baseline: ``update_many($unset)`` and ``drop_collection`` per tenant.
- **restore plan** — bot: ``Planner.restore_plan(..., "all")`` (dry runs + the backed-up view streamed from
  the files). Baseline: the same dry-run queries and a ``bson.decode_file_iter`` count, sequential.
- **restore** — bot: ``bot.ops.cleanup.restore_tenant`` per tenant (the dropped collection re-inserted and
  the unset fields put back with ``bulk_write`` in batches of 1,000, from the files). Baseline: a raw loop
  doing the same writes: the dropped collection dropped and re-inserted with batched ``insert_many``, and an
  ``UpdateOne($set)`` of the backed-up fields for each backed-up case carrying them, in ``bulk_write``
  batches of 1,000, decoded with ``bson.decode_file_iter``. Both sides count the documents they wrote
  (inserted + matched) and the benchmark fails if the counts differ. Target 1.5x. The bot's after-restore
  check (a dry run per tenant) is timed apart.

Each side restores data its own cleanup just cleaned: bot clean then bot restore, raw clean then raw restore
(the two cleanups are the "cleanup execute" pair). The pairs alternate which side goes first. After the
last round the large tenants are checked: the cleanup's drift check (a count per operation it would run) counts
what the first plan did. The tenth-size target's own clean and restore are checked by a whole dry run of every
tenant, per field too (on the large target that took 18 s of the quick tier's 2 minutes: nx-27017 reads every
document of a ``$facet``).

``--small`` sets the number of small tenants (300), ``--informational`` the rounds that also time the cleanup
plan and the restore plans against their baselines (with 0, the bot's plan runs once, for the tenant order).

    .venv/bin/python bench/tenant_data.py [--rounds 5] [--docs 50000] [--small 300] [--informational 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    DEFAULT_ROUNDS,
    ROOT,
    Row,
    bot_config,
    current_rss_mb,
    interleave,
    peak_rss_mb,
    peak_rss_since_reset_mb,
    print_table,
    ratio_row,
    reset_peak_rss,
    spread,
    write_results,
)

NAME = "tenant_data"
BIG, SMALL = 3, 300  # large tenants; small tenants by default (--small)
ATTEMPTS_BIG, USERS_BIG = 1000, 100
PAD = 700  # bytes of filler per case: with the fields and keys a case is about 1 KB of BSON
BATCH = 1000


# ---- the data ---------------------------------------------------------------------------------------------------
def seed(client: Any, central: str, big: list[str], small: list[str], docs: int, *, small_exists: bool) -> None:
    from bot.config import RUNBOOK_CLEANUP_FIELDS

    schools = [{"name": f"Large {db}", "db_name": db, "deleted_at": None} for db in big]
    schools += [{"name": f"Small {db}", "db_name": db, "deleted_at": None} for db in small]
    client[central].schools.insert_many(schools)
    pad = "x" * PAD
    when = datetime(2026, 2, 1, tzinfo=UTC)

    def cases(n: int) -> list[dict[str, Any]]:
        made = []
        for i in range(n):
            case: dict[str, Any] = {"title": f"Case {i}", "internship_id": f"int-{i % 7}", "created_at": when,
                                    "notes": pad}
            if i % 3 != 2:
                case.update({field: f"{field}-{i}" for field in RUNBOOK_CLEANUP_FIELDS})
            made.append(case)
        return made

    for db_name in big:
        db = client[db_name]
        for start in range(0, docs, BATCH):
            db.internshipcases.insert_many(cases(min(BATCH, docs - start)), ordered=False)
        db.internship_case_attempts.insert_many([{"case": i, "attempt": i % 3} for i in range(ATTEMPTS_BIG)])
        db.users.insert_many([{"name": f"student-{i}", "role": "student"} for i in range(USERS_BIG)])
    if not small_exists:
        for db_name in small:
            db = client[db_name]
            db.internshipcases.insert_many(cases(10))
            db.internship_case_attempts.insert_many([{"case": i, "attempt": 0} for i in range(6)])
            db.users.insert_many([{"name": f"student-{i}", "role": "student"} for i in range(3)])


# ---- the children -----------------------------------------------------------------------------------------------
class Commands:
    """Counts the commands pymongo sends, by name and database."""

    def __init__(self) -> None:
        from pymongo import monitoring

        self.counts: dict[str, dict[str, int]] = {}
        outer = self

        class Listener(monitoring.CommandListener):
            def started(self, event: monitoring.CommandStartedEvent) -> None:
                per = outer.counts.setdefault(event.database_name, {})
                per[event.command_name] = per.get(event.command_name, 0) + 1

            def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
                pass

            def failed(self, event: monitoring.CommandFailedEvent) -> None:
                pass

        monitoring.register(Listener())

    def per_tenant(self, tenants: list[str]) -> dict[str, float]:
        totals: dict[str, int] = {}
        for db in tenants:
            for name, count in self.counts.get(db, {}).items():
                totals[name] = totals.get(name, 0) + count
        return {name: count / len(tenants) for name, count in sorted(totals.items())}


def _settings(spec: dict[str, Any]) -> Any:
    from bot.config import parse_runbook

    return parse_runbook(spec["config"])


def _book(config: Any) -> Any:
    from bot.ops.envfile import read_env_file
    from bot.redact import SecretBook

    return SecretBook([], config.target.env_path, read_env_file)


# nx-27017 0.8.1 crashed (segfault in libsqlite3 / libpython, see the report) twice out of two runs while the
# planner ran its default 8 dry runs at once over these ~300 tenants; the benchmark runs them one at a time
# on it. PLAN_PARALLEL=8 in the environment restores the bot's default.
PLAN_PARALLEL = int(os.environ.get("PLAN_PARALLEL", "1"))


def _planner(config: Any) -> Any:
    from types import SimpleNamespace

    from bot.domain.danger import plans
    from bot.domain.danger.plans import Planner
    from bot.runbook.systems import RunbookCleanup

    plans.PLAN_PARALLEL = PLAN_PARALLEL
    # the planner reads only these three
    return Planner(SimpleNamespace(config=config, secrets=_book(config), tenant_cleanup=RunbookCleanup(config)))


def _backup_ref(spec: dict[str, Any]) -> Any:
    from bot.domain.approvals import BackupRef

    return BackupRef.model_validate(spec["backup"])


def child(op: str, spec: dict[str, Any]) -> dict[str, Any]:
    """One measurement; returns seconds, memory and what it did."""
    commands = Commands() if op == "plan-bot" else None
    import bson
    from pymongo import MongoClient, UpdateOne

    from bot.ops import cleanup, tenants

    out: dict[str, Any] = {}
    config = _settings(spec) if "config" in spec else None
    uri = spec.get("uri")
    client: Any = None
    work: Any
    if op == "backup-bot":
        from bot.domain.incident import Incident
        from bot.domain.steps import StepContext
        from bot.runbook.backup import Backup

        incident = Incident(id="RB-0001", number=1, channel="C0INCIDENT", target="bench", commander="U0COMMANDER",
                            reason="tenant data benchmark", created_at=datetime.now(UTC))
        ctx = StepContext(incident=incident, actor="U0COMMANDER", config=config, data_dir=Path(spec["data_dir"]),
                          args=[], history=[], secrets=_book(config), run_id=spec["run_id"])
        step = Backup()
        plan = step.plan(ctx)

        def work() -> None:
            result = step.run(ctx, plan)
            art = result.artifacts
            out.update(ok=result.ok, documents=art.documents, path=art.path, manifest_sha256=art.manifest_sha256,
                       tenants=art.tenants, run_id=art.run_id)
    elif op == "backup-raw":
        client = MongoClient(uri, tz_aware=True)

        def work() -> None:
            run = Path(spec["out"])
            central = client.get_default_database()
            jobs = [(central.name, ["schools"])]
            jobs += [(s["db_name"], None) for s in central.schools.find({"deleted_at": None})]
            documents = 0
            for db_name, only in jobs:
                db = client[db_name]
                folder = run / db_name
                folder.mkdir(parents=True)
                for name in sorted(only or db.list_collection_names()):
                    with open(folder / f"{name}.bson", "wb") as handle:
                        for document in db[name].find({}):
                            handle.write(bson.encode(document))
                            documents += 1
                        handle.flush()
                        os.fsync(handle.fileno())
            out.update(documents=documents)
    elif op == "plan-bot":
        planner, ref = _planner(config), _backup_ref(spec)

        def work() -> None:
            plan = planner.cleanup_plan("bench-cleanup", ref, planner.survey())
            out.update(cases=plan.totals.cases, dropped=plan.totals.dropped_documents, tenants=plan.totals.tenants,
                       order=[t.db for t in plan.tenants],
                       counts={t.db: [t.now.cases, t.now.fields, t.now.collections] for t in plan.tenants})
    elif op == "plan-raw":
        client = MongoClient(uri, tz_aware=True)

        def work() -> None:
            cfg = spec["cleanup"]
            total = 0
            for db_name in spec["tenants"]:
                db = client[db_name]
                facets = {"any": [{"$match": {"$or": [{f: {"$exists": True}} for f in cfg["fields"]]}},
                                  {"$count": "n"}]}
                facets.update({f"f{i}": [{"$match": {f: {"$exists": True}}}, {"$count": "n"}]
                               for i, f in enumerate(cfg["fields"])})
                row = next(iter(db[cfg["collection"]].aggregate([{"$facet": facets}])), {})
                total += (row.get("any") or [{"n": 0}])[0]["n"]
                if cfg["drop"] in db.list_collection_names():
                    db[cfg["drop"]].count_documents({})
            out.update(cases=total)
    elif op == "clean-bot":
        client = tenants.connect(uri)

        def work() -> None:
            modified = 0
            for db_name in spec["tenants"]:
                modified += cleanup.clean_tenant(client, db_name, config.cleanup).modified
            out.update(modified=modified)
    elif op == "clean-raw":
        client = MongoClient(uri, tz_aware=True)

        def work() -> None:
            cfg = spec["cleanup"]
            modified = 0
            for db_name in spec["tenants"]:
                db = client[db_name]
                query = {"$or": [{f: {"$exists": True}} for f in cfg["fields"]]}
                modified += db[cfg["collection"]].update_many(query, {"$unset": {f: "" for f in cfg["fields"]}}
                                                             ).modified_count
                db.drop_collection(cfg["drop"])
            out.update(modified=modified)
    elif op == "restore-plan-bot":
        planner, ref = _planner(config), _backup_ref(spec)

        def work() -> None:
            plan = planner.restore_plan("bench-restore", ref, "all")
            out.update(tenants=len(plan.tenants),
                       backed_up_cases=sum(t.backup.cases for t in plan.tenants if t.backup))
    elif op == "restore-plan-raw":
        client = MongoClient(uri, tz_aware=True)

        def work() -> None:
            cfg, run = spec["cleanup"], Path(spec["run"])
            backed = 0
            for db_name in spec["tenants"]:
                db = client[db_name]
                facets = {"any": [{"$match": {"$or": [{f: {"$exists": True}} for f in cfg["fields"]]}},
                                  {"$count": "n"}]}
                list(db[cfg["collection"]].aggregate([{"$facet": facets}]))
                if cfg["drop"] in db.list_collection_names():
                    db[cfg["drop"]].count_documents({})
                with open(run / db_name / f"{cfg['collection']}.bson", "rb") as handle:
                    for document in bson.decode_file_iter(handle):
                        backed += any(f in document for f in cfg["fields"])
                with open(run / db_name / f"{cfg['drop']}.bson", "rb") as handle:
                    sum(1 for _ in bson.decode_file_iter(handle))
            out.update(backed_up_cases=backed)
    elif op == "restore-bot":
        client = tenants.connect(uri)

        def work() -> None:
            run = Path(spec["run"])
            inserted = updated = 0
            for db_name in spec["tenants"]:
                restored = cleanup.restore_tenant(client, db_name, run, config.cleanup)
                inserted += sum(restored.collections.values())
                updated += restored.cases
            out.update(inserted=inserted, updated=updated, documents=inserted + updated)
    elif op == "restore-raw":
        client = MongoClient(uri, tz_aware=True)

        def work() -> None:
            cfg, run = spec["cleanup"], Path(spec["run"])
            inserted = updated = 0
            for db_name in spec["tenants"]:
                db = client[db_name]
                for name in cfg["drops"]:
                    file = run / db_name / f"{name}.bson"
                    if not file.exists():
                        continue
                    db.drop_collection(name)
                    batch: list[Any] = []
                    with open(file, "rb") as handle:
                        for document in bson.decode_file_iter(handle):
                            batch.append(document)
                            if len(batch) >= BATCH:
                                db[name].insert_many(batch, ordered=False)
                                inserted += len(batch)
                                batch = []
                    if batch:
                        db[name].insert_many(batch, ordered=False)
                        inserted += len(batch)
                updates: list[Any] = []
                with open(run / db_name / f"{cfg['collection']}.bson", "rb") as handle:
                    for document in bson.decode_file_iter(handle):
                        values = {f: document[f] for f in cfg["fields"] if f in document}
                        if values:
                            updates.append(UpdateOne({"_id": document["_id"]}, {"$set": values}))
                        if len(updates) >= BATCH:
                            updated += db[cfg["collection"]].bulk_write(updates, ordered=False).matched_count
                            updates = []
                if updates:
                    updated += db[cfg["collection"]].bulk_write(updates, ordered=False).matched_count
            out.update(inserted=inserted, updated=updated, documents=inserted + updated)
    elif op == "dry-run-bot":
        client = tenants.connect(uri)

        def work() -> None:
            out.update(counts={db: (lambda c: [c.cases, c.fields, c.collections])(
                cleanup.dry_run(client, db, config.cleanup)) for db in spec["tenants"]})
    elif op == "recount-bot":  # the cleanup's own drift check: one count per operation it would run
        client = tenants.connect(uri)

        def work() -> None:
            out.update(counts={db: (lambda c: [c.cases, c.collections])(
                cleanup.recount(client, db, config.cleanup)) for db in spec["tenants"]})
    else:
        raise ValueError(op)
    reset = reset_peak_rss()
    start_rss = current_rss_mb()
    started = time.perf_counter()
    work()
    seconds = time.perf_counter() - started
    peak = peak_rss_since_reset_mb() if reset else peak_rss_mb()
    if client is not None:
        client.close()
    result = {"op": op, "seconds": seconds, "start_rss_mb": start_rss, "peak_rss_mb": peak,
              "peak_above_start_mb": max(0.0, peak - start_rss), **out}
    if commands is not None:
        result["commands_per_tenant"] = commands.per_tenant(out["order"])
    return result


def measure(op: str, spec: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--child", op], input=json.dumps(spec), capture_output=True,
                          text=True, cwd=ROOT, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{op} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# ---- the benchmark ------------------------------------------------------------------------------------------------
class Target:
    """A sandbox target whose central `schools` lists the large and the small tenants."""

    def __init__(self, root: Path, uri: str, client: Any, docs: int, small: list[str], label: str,
                 small_exists: bool) -> None:
        from bot.dev.sandbox import create_sandbox
        from bot.ops import tenants

        self.sandbox = create_sandbox(root / label, mongo_uri=uri, local_server=True)
        central = tenants.default_database(self.sandbox.central_uri)
        token = central.split("_")[0]
        self.big = [f"{token}_large{i}" for i in range(BIG)]
        self.uri = self.sandbox.central_uri
        seed(client, central, self.big, small, docs, small_exists=small_exists)
        self.config = bot_config(self.sandbox, root / f"{label}-data",
                                 pm2={"executable": str(root / "no-pm2-here")})
        from bot.config import parse_runbook

        cleanup = parse_runbook(self.config).cleanup
        self.cleanup = {"collection": cleanup.collection, "fields": list(cleanup.unset_fields),
                        "drop": cleanup.drop_collections[0], "drops": list(cleanup.drop_collections)}
        self.data_dir = root / f"{label}-data"
        self.root = root

    def backup_bot(self, run_id: str) -> dict[str, Any]:
        return measure("backup-bot", {"config": self.config, "data_dir": str(self.data_dir), "run_id": run_id})

    def backup_raw(self, out: Path) -> dict[str, Any]:
        return measure("backup-raw", {"uri": self.uri, "out": str(out)})

    @staticmethod
    def ref(backup: dict[str, Any]) -> dict[str, Any]:
        return {"run_id": backup["run_id"], "step_run": backup["run_id"], "path": backup["path"],
                "manifest_sha256": backup["manifest_sha256"], "documents": backup["documents"],
                "tenants": backup["tenants"], "finished_at": datetime.now(UTC).isoformat()}

    def spec(self, **more: Any) -> dict[str, Any]:
        return {"config": self.config, "uri": self.uri, "cleanup": self.cleanup, **more}


def run(rounds: int, docs: int, informational: int, small_tenants: int = SMALL) -> list[Row]:
    from pymongo import MongoClient

    from bot.dev.localmongo import LocalMongo

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tenant-bench-") as name:
        root = Path(name)
        with LocalMongo(root / "mongo") as mongo:
            client: MongoClient[dict[str, Any]] = MongoClient(mongo.uri, tz_aware=True)
            small = [f"small{i:03d}" for i in range(small_tenants)]
            seeding = time.monotonic()
            large = Target(root, mongo.uri, client, docs, small, "large", small_exists=False)
            scaled = Target(root, mongo.uri, client, docs // 10, small, "scaled", small_exists=True)
            client.close()
            print(f"  seeded {BIG} x {docs} + {small_tenants} small tenants (and {BIG} x {docs // 10}) in "
                  f"{time.monotonic() - seeding:.0f}s", flush=True)
            results = []
            first_plan: dict[str, Any] | None = None
            for index in range(rounds):
                row: dict[str, Any] = {"round": index}
                run_dir = root / f"raw-{index}"
                bot_b, raw_b, row["order"] = interleave(index, lambda index=index: large.backup_bot(f"run-{index}"),
                                                        lambda run_dir=run_dir: large.backup_raw(run_dir))
                if not bot_b["ok"]:
                    raise RuntimeError("the bot's backup did not verify")
                shutil.rmtree(run_dir)
                ref = Target.ref(bot_b)
                row["backup"] = {"bot": bot_b, "raw": raw_b}
                if index < informational:
                    tenants = bot_b["tenants"]
                    plan_b, plan_r, _ = interleave(
                        index, lambda ref=ref: measure("plan-bot", large.spec(backup=ref)),
                        lambda tenants=tenants: measure("plan-raw", large.spec(tenants=tenants)))
                    row["plan"] = {"bot": plan_b, "raw": plan_r}
                    first_plan = first_plan or plan_b
                elif first_plan is None:  # the bot's plan only, for its order
                    first_plan = measure("plan-bot", large.spec(backup=ref))
                    row["plan"] = {"bot": first_plan}
                order = first_plan["order"]
                if index < informational:  # the restore plans on cleaned data (cleaned and restored untimed)
                    measure("clean-raw", large.spec(tenants=order))
                    rp_b, rp_r, _ = interleave(
                        index, lambda ref=ref: measure("restore-plan-bot", large.spec(backup=ref)),
                        lambda order=order, ref=ref: measure("restore-plan-raw", large.spec(tenants=order,
                                                                                           run=ref["path"])))
                    row["restore_plan"] = {"bot": rp_b, "raw": rp_r}
                    measure("restore-raw", large.spec(tenants=order, run=ref["path"]))
                # each side's restore starts from data its own cleanup just cleaned
                cleans: dict[str, Any] = {}

                def clean_then_restore(side: str, order: list[str] = order, ref: dict[str, Any] = ref,
                                       cleans: dict[str, Any] = cleans) -> dict[str, Any]:
                    cleans[side] = measure(f"clean-{side}", large.spec(tenants=order))
                    return measure(f"restore-{side}", large.spec(tenants=order, run=ref["path"]))

                restores: dict[str, Any] = {}
                restores["bot"], restores["raw"], row["restore_order"] = interleave(
                    index, lambda: clean_then_restore("bot"), lambda: clean_then_restore("raw"))
                if restores["bot"]["documents"] != restores["raw"]["documents"]:
                    raise RuntimeError(f"the restores wrote different documents: bot {restores['bot']['documents']}"
                                       f", raw loop {restores['raw']['documents']}")
                row["clean"] = cleans
                row["restore"] = restores
                if index == rounds - 1:  # the large tenants after all the cleanups and restores: as they were, by
                    # the counts the cleanup's drift check takes (its dry run's, per field too, cost 18 s here)
                    check = measure("recount-bot", large.spec(tenants=large.big))
                    expected = {db: [first_plan["counts"][db][0], first_plan["counts"][db][2]] for db in large.big}
                    row["after_restore_check"] = {"seconds": check["seconds"],
                                                  "same_as_first_plan": check["counts"] == expected}
                    if check["counts"] != expected:
                        raise RuntimeError("after the restores the large tenants differ from the first plan's counts")
                if index > 0:
                    shutil.rmtree(Path(results[-1]["backup"]["bot"]["path"]), ignore_errors=True)
                results.append(row)
                print(f"  round {index}: backup {bot_b['seconds']:.2f}/{raw_b['seconds']:.2f}s, clean "
                      f"{row['clean']['bot']['seconds']:.2f}s, restore {restores['bot']['seconds']:.2f}/"
                      f"{restores['raw']['seconds']:.2f}s (bot/raw)", flush=True)
            # memory against collection size: the same operations on tenants a tenth the size
            small_b = scaled.backup_bot("run-scaled")
            small_ref = Target.ref(small_b)
            small_plan = measure("plan-bot", scaled.spec(backup=small_ref))
            small_order = small_plan["order"]
            scaled_mem = {"backup": small_b,
                          "clean": measure("clean-bot", scaled.spec(tenants=small_order)),
                          "restore": measure("restore-bot", scaled.spec(tenants=small_order,
                                                                        run=small_ref["path"]))}
            # The bot's clean and restore put the data back as it was: the dry run after them counts what the plan
            # before them did (every tenant, the small ones included, at a tenth of the size).
            check = measure("dry-run-bot", scaled.spec(tenants=small_order))
            if check["counts"] != small_plan["counts"]:
                raise RuntimeError("after the clean and the restore the tenant data differs from the plan's counts")
            if informational:
                scaled_mem["restore_plan"] = measure("restore-plan-bot", scaled.spec(backup=small_ref))
            sizes = {"large": _file_sizes(Path(results[-1]["backup"]["bot"]["path"]), large.big),
                     "scaled": _file_sizes(Path(small_ref["path"]), scaled.big)}
    return report(results, scaled_mem, sizes, docs, small_tenants, started)


def _file_sizes(run: Path, big: list[str]) -> int:
    """Bytes of the largest tenant's cases file in a backup run."""
    return max((run / db / "internshipcases.bson").stat().st_size for db in big)


def report(results: list[dict[str, Any]], scaled: dict[str, Any], sizes: dict[str, int], docs: int, small: int,
           started: float) -> list[Row]:
    def flat(op: str, key: str = "seconds") -> list[dict[str, float]]:
        return [{"bot": r[op]["bot"][key], "raw": r[op]["raw"][key]} for r in results
                if op in r and "raw" in r[op]]

    def info(op: str) -> str:
        measured = sum(1 for r in results if op in r and "raw" in r[op])
        return f"{measured} round(s) in this run (--informational N for more)"

    label = f"{BIG} x {docs:,} docs + {small} small"
    restored = results[0]["restore"]["bot"]
    rows = [
        ratio_row(NAME, f"backup ({label})", flat("backup"), "bot", "raw", "s", 1.25, fmt="{:.2f}"),
        ratio_row(NAME, "cleanup plan (dry runs, one at a time)", flat("plan"), "bot", "raw", "s", None,
                  fmt="{:.2f}", note=info("plan")),
        ratio_row(NAME, "cleanup execute (ops per tenant)", flat("clean"), "bot", "raw", "s", None, fmt="{:.2f}",
                  note="baseline: update_many($unset) and drop_collection per tenant"),
        ratio_row(NAME, "restore plan (from the files)", flat("restore_plan"), "bot", "raw", "s", None,
                  fmt="{:.2f}", note=info("restore_plan")),
        ratio_row(NAME, "restore", flat("restore"), "bot", "raw", "s", 1.5, fmt="{:.2f}",
                  note=f"both sides write the same {restored['documents']:,} documents a round "
                  f"({restored['inserted']:,} re-inserted, {restored['updated']:,} fields put back; counted, must "
                  "be equal): baseline a raw loop of batched insert_many and bulk_write($set) from the same files"),
    ]
    rows = [r for r in rows if r.ratio is not None]  # a figure this run did not measure is left to the full tier
    commands = results[0]["plan"]["bot"]["commands_per_tenant"]
    aggregates = commands.get("aggregate", 0)
    rows.append(Row(NAME, "cleanup plan: server commands per tenant",
                    ", ".join(f"{k} {v:g}" for k, v in commands.items()), "-", None, "1 aggregation", aggregates <= 1,
                    note="count_documents is an aggregate too; listCollections is extra"))
    big_mb, small_mb = sizes["large"] / 2**20, sizes["scaled"] / 2**20
    for op, key in (("backup", "backup"), ("restore plan", "restore_plan"), ("cleanup execute", "clean"),
                    ("restore", "restore")):
        at_large = [r[key]["bot"]["peak_above_start_mb"] for r in results if key in r]
        if not at_large:
            continue
        at_small = scaled[key]["peak_above_start_mb"]
        large_med = spread(at_large)["median"]
        growth = (large_med - at_small) / (big_mb - small_mb)
        base = [r[key]["raw"]["peak_above_start_mb"] for r in results if key in r and "raw" in r[key]]
        rows.append(Row(NAME, f"peak memory above start, {op}",
                        f"{large_med:.1f} MB (at 1/10 size: {at_small:.1f} MB)",
                        f"{spread(base)['median']:.1f} MB", None, "flat: growth <= 10% of the file growth",
                        growth <= 0.10,
                        note=f"largest cases file {big_mb:.0f} MB vs {small_mb:.1f} MB; memory grew "
                        f"{growth:.1%} of that"))
    after = [r["restore"]["bot"]["seconds"] for r in results]
    write_results(NAME, rows=rows, config={"rounds": rounds_of(results), "large_tenants": BIG, "docs": docs,
                                           "small_tenants": small, "attempts_per_large": ATTEMPTS_BIG,
                                           "server": "nx-27017 (local MongoDB-protocol server)",
                                           "largest_cases_file_bytes": sizes},
                  rounds={"rounds": results, "scaled_tenth": scaled}, started=started,
                  extra={"restore_seconds": after})
    return rows


def rounds_of(results: list[dict[str, Any]]) -> int:
    return len(results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--docs", type=int, default=50_000, help="cases in each large tenant")
    parser.add_argument("--small", type=int, default=SMALL, help="small tenants")
    parser.add_argument("--informational", type=int, default=1,
                        help="rounds that also time the cleanup plan and the restore plans")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 rounds, 5,000 docs")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, json.loads(sys.stdin.read())), default=str))
        return 0
    if args.quick:
        args.rounds, args.docs = 2, 5_000
    print_table(run(args.rounds, args.docs, args.informational, args.small))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
