"""Fault injection with real processes: `rollback-bot run` is started as its own OS process against the
emulator and the MongoDB-protocol server, stopped at a named point (bot/faults.py) and killed with SIGKILL,
then started again (or another replica takes over). Every case asserts on the data in the tenant databases,
the backup files on disk, the Slack messages and the audit chain, never on a log line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.dev.emulator import Emulator
from bot.dev.sandbox import Sandbox
from bot.domain.approvals import ApprovalStatus
from bot.domain.runs import StepName, StepStatus
from bot.ops import tenants
from bot.store import Store, open_store
from tests.conftest import COMMANDER, INCIDENT, STAKEHOLDERS

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
FIELDS_QUERY = {"$or": [{f: {"$exists": True}} for f in ("step", "case_type", "patient_state")]}
COLLECTIONS_PER_BACKUP = 10  # the central `schools`, and 3 collections in each of the 3 tenant databases


class Bot:
    """One `rollback-bot run` process."""

    def __init__(self, case: Case, replica: str, pause: str | None) -> None:
        self.case, self.replica = case, replica
        env = {**os.environ, **case.emulator.bot_env(), "ROLLBACK_REPLICA_ID": replica, "LOG_LEVEL": "info",
               "ROLLBACK_FAULT_DIR": str(case.marks)}
        env.pop("ROLLBACK_FAULT_PAUSE", None)
        if pause:
            env["ROLLBACK_FAULT_PAUSE"] = pause
        if case.state_uri:
            env["STATE_STORE_URI"] = case.state_uri
        self.log = case.root / f"bot-{replica}-{uuid.uuid4().hex[:4]}.log"
        before = case.emulator.connections_opened
        with self.log.open("wb") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "bot.cli", "--config", str(case.config), "run"],
                                            cwd=case.root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        case.bots.append(self)
        case.wait(lambda: case.emulator.connections_opened > before, 60, f"replica {replica} to connect")
        case.wait(lambda: case.emulator.socket_count >= case.live(), 30, f"replica {replica}'s socket")

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> float:
        """SIGKILL: no handler runs, nothing is flushed or released by the process itself."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        return time.time()

    def stop(self) -> None:
        if self.alive:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


class Case:
    """One fault-injection case: the emulator, the sandbox's tenant data, a config, bot processes."""

    def __init__(self, emulator: Emulator, sandbox: Sandbox, root: Path, state_uri: str | None = None,
                 **config: Any) -> None:
        self.emulator, self.sandbox, self.root, self.state_uri = emulator, sandbox, root, state_uri
        self.marks = root / "marks"
        self.marks.mkdir()
        self.data = root / "data"
        self.bots: list[Bot] = []
        settings = {**sandbox.config(),
                    "access": {"incident_channels": [INCIDENT], "commanders": ["@oncall"],
                               "approvers": ["@backend-leads"]},
                    "slack": {"stakeholder_channel": STAKEHOLDERS},
                    "store": {"data_dir": str(self.data), "owner_lease_s": 4, "heartbeat_s": 1, "sweep_s": 0.5},
                    "monitor": {"enabled": False}}
        for section, values in config.items():
            settings.setdefault(section, {}).update(values)
        self.config = root / "rollback.yml"
        self.config.write_text(yaml.safe_dump(settings))
        self._store: Store | None = None

    # ---- processes and waiting --------------------------------------------------------------------------
    def start(self, replica: str = "replica-a", pause: str | None = None) -> Bot:
        return Bot(self, replica, pause)

    def live(self) -> int:
        return sum(bot.alive for bot in self.bots)

    def wait(self, probe: Any, timeout: float, what: str) -> Any:
        """Poll until ``probe()`` gives something truthy (never holding the emulator's lock while it reads)."""
        deadline = time.monotonic() + timeout
        while True:
            value = probe()
            if value:
                return value
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {b.log.name}\n" + b.log.read_text(errors="replace")[-3000:] for b in self.bots)
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}\n{logs}")
            time.sleep(0.1)

    def paused_at(self, point: str, timeout: float = 60) -> None:
        self.wait(lambda: (self.marks / f"{point}.reached").exists(), timeout, f"the bot to reach {point}")

    def close(self) -> None:
        for bot in self.bots:
            bot.stop()
        if self._store is not None:
            self._store.close()

    # ---- what people do --------------------------------------------------------------------------------
    def slash(self, text: str, user: str = "casey") -> None:
        self.emulator.slash(user, "incident-rollback", text).wait(15)

    def react(self, user: str, ts: str, emoji: str = "white_check_mark") -> None:
        self.emulator.react(user, "incident-rollback", ts, emoji).wait(15)

    def panel(self) -> str:
        found = self.wait(lambda: [m for m in self.emulator.ws.channel_messages(INCIDENT)
                                   if m.get("blocks") and m["blocks"][0].get("type") == "header"
                                   and "Rollback RB-" in str(m["blocks"][0])], 30, "the panel")
        return str(found[0]["ts"])

    def thread(self) -> list[str]:
        return [m["text"] for m in self.emulator.ws.thread(INCIDENT, self.panel())]

    def requests(self) -> list[dict[str, Any]]:
        return [m for m in self.emulator.ws.channel_messages(INCIDENT)
                if m.get("blocks") and "DANGER ZONE" in str(m["blocks"][0])]

    def request(self, text: str = "cleanup", count: int = 1) -> str:
        self.slash(text)
        return str(self.wait(lambda: len(self.requests()) >= count and self.requests()[count - 1], 60,
                             f"request #{count}")["ts"])

    def ephemeral(self, contains: str, user: str = COMMANDER) -> str:
        return str(self.wait(lambda: next((e.text for e in self.emulator.ws.ephemerals_for(user)
                                           if contains in e.text), None), 30, f"'{contains}' to {user}"))

    def backed_up(self, count: int = 1) -> None:
        self.wait(lambda: sum("*Backup current state* — succeeded" in t for t in self.thread()) >= count, 90,
                  f"backup #{count}")

    # ---- what happened --------------------------------------------------------------------------------
    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.state_uri, self.data)
        return self._store

    def approval(self, ts: str) -> Any:
        return self.store.approval_for_message(ts)

    def wait_status(self, ts: str, status: ApprovalStatus, timeout: float = 60) -> Any:
        return self.wait(lambda: (a := self.approval(ts)) is not None and a.status is status and a, timeout,
                         f"the request {status.value}")

    def audit(self, action: str) -> list[Any]:
        return [e for e in self.store.audit_events("RB-0001") if e.action == action]

    def runs(self) -> list[Path]:
        folder = self.data / "backups" / "RB-0001"
        return sorted(folder.glob("RB-0001-backup-*"), key=lambda p: p.stat().st_mtime) if folder.exists() else []

    def posts(self, headline: str) -> list[dict[str, Any]]:
        return [m for m in self.emulator.ws.channel_messages(STAKEHOLDERS) if f"({headline})" in m["text"]]

    def with_fields(self) -> dict[str, int]:
        client = tenants.connect(self.sandbox.central_uri)
        try:
            return {db: client[db].internshipcases.count_documents(FIELDS_QUERY) for db in self.sandbox.tenant_dbs}
        finally:
            tenants.close(client)

    def snapshot(self) -> dict[str, dict[str, list[dict[str, Any]]]]:
        client = tenants.connect(self.sandbox.central_uri)
        try:
            return {db: {name: sorted(client[db][name].find({}), key=lambda d: str(d["_id"]))
                         for name in sorted(client[db].list_collection_names())} for db in self.sandbox.tenant_dbs}
        finally:
            tenants.close(client)

    def no_duplicates(self) -> None:
        """The invariants every case ends with."""
        assert len(self.store.incidents_in_channel(INCIDENT)) == 1  # no incident lost, none doubled
        for headline in ("rollback started", "rollback completed", "system restored", "incident closed"):
            assert len(self.posts(headline)) <= 1, f"the '{headline}' update was posted twice"
        for approval in self.store.approvals("RB-0001"):
            results = self.store.tenant_results(approval.id)
            assert len({r.db for r in results}) == len(results)  # no tenant done twice
            done = [e for e in self.audit(f"{approval.action.value}.tenant") if e.data["approval"] == approval.id]
            assert len({e.data["tenant"] for e in done}) == len(done)
        assert self.store.verify_audit().ok


@pytest.fixture
def case(emulator: Emulator, sandbox: Sandbox, tmp_path: Path) -> Iterator[Any]:
    made: list[Case] = []

    def make(**kwargs: Any) -> Case:
        made.append(Case(emulator, sandbox, tmp_path, **kwargs))
        return made[-1]

    yield make
    for each in made:
        each.close()


def test_killed_mid_backup_the_step_is_interrupted_at_once_and_the_partial_run_is_never_relied_on(case: Any) -> None:
    c: Case = case()
    first = c.start(pause="backup.collection_written#2")
    c.slash("start drill")
    c.panel()
    c.slash("backup")
    c.paused_at("backup.collection_written")
    first.kill()
    partial = c.runs()
    assert len(partial) == 1 and not (partial[0] / "manifest.json").exists()  # a partial run, never finished

    restarted_at = time.monotonic()
    c.start()  # the same replica again: it holds the lock, so the old process is known dead at once
    run = c.wait(lambda: next((r for r in c.store.step_runs("RB-0001")
                               if r.step is StepName.BACKUP and r.status is StepStatus.INTERRUPTED), None), 20,
                 "the backup marked interrupted")
    assert time.monotonic() - restarted_at < 10  # not after a heartbeat aged: the lease here is 4 s, old rule 30 s
    assert "can be run again" in run.summary
    c.slash("cleanup")
    assert "no verified backup" in c.ephemeral("no verified backup")  # the partial run is never relied on
    c.slash("backup")  # no --again needed after an interruption
    c.backed_up()
    assert c.requests() == []
    ts = c.request()
    finished = [r for r in c.runs() if (r / "manifest.json").exists()]
    assert len(finished) == 1 and finished[0].name in str(c.emulator.ws.message(INCIDENT, ts))
    assert partial[0].name not in str(c.emulator.ws.message(INCIDENT, ts))
    c.no_duplicates()


def test_killed_mid_backup_again_the_verified_run_stays_relied_on_and_restore_returns_it(case: Any) -> None:
    c: Case = case()
    first = c.start(pause=f"backup.collection_written#{COLLECTIONS_PER_BACKUP + 2}")
    c.slash("start drill")
    c.panel()
    original = c.snapshot()
    c.slash("backup")
    c.backed_up()
    verified = c.runs()[0]
    c.slash("backup --again")
    c.paused_at("backup.collection_written")
    first.kill()
    assert len(c.runs()) == 2 and (verified / "manifest.json").exists()  # the earlier run was not touched

    c.start()
    ts = c.request()
    assert verified.name in str(c.emulator.ws.message(INCIDENT, ts))
    c.react("alex", ts)
    c.wait_status(ts, ApprovalStatus.EXECUTED)
    assert c.with_fields() == {db: 0 for db in c.sandbox.tenant_dbs}
    restore = c.request("restore all", count=2)
    assert verified.name in str(c.emulator.ws.message(INCIDENT, restore))
    c.react("dana", restore)
    c.wait_status(restore, ApprovalStatus.EXECUTED)
    assert c.snapshot() == original  # exactly what the relied-on run holds
    c.no_duplicates()


@pytest.mark.parametrize("point", ["danger.cleanup.tenant_done#1", "danger.cleanup.tenant_done#2",
                                   "danger.cleanup.tenant#2"],
                         ids=["after-1-of-3", "after-2-of-3", "before-tenant-2"])
def test_killed_mid_cleanup_the_run_resumes_and_no_tenant_is_cleaned_twice(case: Any, point: str) -> None:
    c: Case = case()
    first = c.start(pause=point)
    c.slash("start drill")
    c.panel()
    before = c.with_fields()
    c.slash("backup")
    c.backed_up()
    ts = c.request()
    c.react("alex", ts)
    c.paused_at(point.split("#")[0])
    first.kill()
    approval = c.approval(ts)
    assert approval.status is ApprovalStatus.RUNNING
    done_before = {r.db for r in c.store.tenant_results(approval.id)}

    c.start()
    c.wait_status(ts, ApprovalStatus.EXECUTED)
    results = c.store.tenant_results(approval.id)
    assert sorted(r.db for r in results) == sorted(c.sandbox.tenant_dbs)
    assert {r.db: r.modified for r in results if r.db in done_before} == {db: before[db] for db in done_before}
    assert c.with_fields() == {db: 0 for db in c.sandbox.tenant_dbs}
    assert len(c.audit("danger.resumed")) == 1 and len(c.audit("cleanup.tenant")) == 3
    c.no_duplicates()


def test_killed_during_the_start_delay_the_approved_run_starts_once_after_its_due_time(case: Any) -> None:
    c: Case = case(cleanup={"start_delay_s": 3})
    first = c.start()
    c.slash("start drill")
    c.panel()
    c.slash("backup")
    c.backed_up()
    ts = c.request()
    c.react("alex", ts)
    approved = c.wait_status(ts, ApprovalStatus.APPROVED)
    first.kill()  # inside the delay: no in-memory timer survives this
    assert approved.starts_at is not None

    c.start()
    done = c.wait_status(ts, ApprovalStatus.EXECUTED)
    assert done.started_at >= approved.starts_at  # never before its due time
    assert len(c.audit("danger.started")) == 1 and len(c.audit("cleanup.tenant")) == 3
    assert c.with_fields() == {db: 0 for db in c.sandbox.tenant_dbs}
    c.no_duplicates()


def test_killed_between_slack_accepting_a_post_and_recording_it_the_post_is_found_not_repeated(case: Any) -> None:
    c: Case = case()
    first = c.start(pause="comms.posted#1")
    c.slash("start drill")
    c.paused_at("comms.posted")
    first.kill()
    assert len(c.posts("rollback started")) == 1
    incident = c.store.get_incident("RB-0001")
    assert incident is not None and incident.comms["rollback_started"].ts is None  # Slack has it; the bot does not

    c.start()
    recorded = c.wait(lambda: (i := c.store.get_incident("RB-0001")) and i.comms["rollback_started"].ts, 30,
                      "the post recorded after the restart")
    assert recorded == c.posts("rollback started")[0]["ts"]
    assert len(c.posts("rollback started")) == 1
    assert [e.data["found"] for e in c.audit("comms.recovered")] == [True]
    c.slash("close --force drill")
    c.wait(lambda: c.posts("incident closed"), 30, "the final update")
    c.no_duplicates()


def test_killed_after_posting_a_request_but_before_recording_it_the_request_is_found_and_still_works(
        case: Any) -> None:
    c: Case = case()
    first = c.start(pause="danger.request_posted")
    c.slash("start drill")
    c.panel()
    c.slash("backup")
    c.backed_up()
    c.slash("cleanup")
    c.paused_at("danger.request_posted")
    first.kill()
    ts = str(c.requests()[0]["ts"])
    assert c.store.approval_for_message(ts) is None  # Slack shows it; the bot had not recorded it

    c.start()
    c.wait(lambda: c.approval(ts), 30, "the request found in Slack and recorded")
    c.react("alex", ts)
    c.wait_status(ts, ApprovalStatus.EXECUTED)
    assert len(c.requests()) == 1 and [len(c.audit(a)) for a in ("approval.recovered", "danger.started")] == [1, 1]
    c.no_duplicates()


def test_a_replica_started_while_another_is_posting_an_update_never_posts_it_again(
        case: Any, mongo_uri: str) -> None:
    state = _database_uri(mongo_uri, f"rollback_state_{uuid.uuid4().hex[:8]}")
    c: Case = case(state_uri=state)
    a = c.start(replica="replica-a", pause="comms.posted#1")
    c.slash("start drill")
    c.paused_at("comms.posted")  # A is alive (its heartbeat runs) and inside the post
    c.start(replica="replica-b")
    lease = c.wait(lambda: c.store.lease("replica:replica-b"), 30, "replica B's lease")
    c.wait(lambda: (now := c.store.lease("replica:replica-b")) and now[1] > lease[1], 30, "B renewing its lease")
    incident = c.store.get_incident("RB-0001")
    assert incident is not None and incident.comms["rollback_started"].owner.replica == "replica-a"
    killed_at = a.kill()

    c.wait(lambda: (i := c.store.get_incident("RB-0001")) and i.comms["rollback_started"].ts, 60,
           "B to find and record A's post")
    recovered = c.audit("comms.recovered")
    assert [e.data["found"] for e in recovered] == [True]
    from bot.clock import from_iso

    assert from_iso(recovered[0].at).timestamp() >= killed_at  # not while A was alive
    assert len(c.posts("rollback started")) == 1
    c.no_duplicates()
    from pymongo import MongoClient

    MongoClient(state).drop_database(state.rsplit("/", 1)[1].split("?")[0])


def test_a_replica_started_during_a_cleanup_leaves_it_alone_then_takes_over_after_the_lease(
        case: Any, mongo_uri: str) -> None:
    state = _database_uri(mongo_uri, f"rollback_state_{uuid.uuid4().hex[:8]}")
    c: Case = case(state_uri=state)
    a = c.start(replica="replica-a", pause="danger.cleanup.tenant_done#1")
    c.slash("start drill")
    c.panel()
    before = c.with_fields()
    c.slash("backup")
    c.backed_up()
    ts = c.request()
    c.react("alex", ts)
    c.paused_at("danger.cleanup.tenant_done")
    time.sleep(1.6)  # replica B starts 1.6 s into A's run, as in the report
    c.start(replica="replica-b")
    lease = c.wait(lambda: c.store.lease("replica:replica-b"), 30, "replica B's lease")
    c.wait(lambda: (now := c.store.lease("replica:replica-b")) and now[1] > lease[1], 30, "B renewing its lease")
    approval = c.approval(ts)
    assert approval.status is ApprovalStatus.RUNNING and approval.owner.replica == "replica-a"
    killed_at = a.kill()

    done = c.wait_status(ts, ApprovalStatus.EXECUTED, timeout=90)
    resumed = c.audit("danger.resumed")
    assert len(resumed) == 1 and "replica-a" in resumed[0].data["previous_owner"]
    taken = resumed[0].at
    from bot.clock import from_iso

    assert from_iso(taken).timestamp() >= killed_at  # B left A's live run alone; it took over only after A died
    assert done.owner.replica == "replica-b"
    results = c.store.tenant_results(approval.id)
    assert sorted(r.db for r in results) == sorted(c.sandbox.tenant_dbs)
    assert {r.db: r.modified for r in results} == before  # each tenant cleaned once, by one of them
    assert c.with_fields() == {db: 0 for db in c.sandbox.tenant_dbs}
    c.no_duplicates()
    from pymongo import MongoClient

    MongoClient(state).drop_database(state.rsplit("/", 1)[1].split("?")[0])


def _database_uri(uri: str, database: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, ""))
