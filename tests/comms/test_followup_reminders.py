"""Follow-ups that remind their owners after the close, through the emulator, time driven by the FakeClock:
`/rollback followup done <n>`, *Mark done* on a reminder, `followups.remind_days`, once per period on any
number of replicas sharing the store (SQLite and MongoDB)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.app import SocketModeBot, build_services
from bot.dev.emulator import Emulator
from bot.dev.fakeclock import FakeClock
from bot.dev.sandbox import Sandbox
from bot.domain.incident import Incident
from bot.ids import Action
from bot.store import Store
from bot.store.sqlite import SQLiteStore
from tests.conftest import APPROVER, BYSTANDER, COMMANDER, INCIDENT, TestServer, content, make_settings

REMINDER = "is still open"


def started(emulator: Emulator, bot: SocketModeBot) -> Incident:
    emulator.slash("casey", "incident-rollback", "start login fails").wait()
    return emulator.ws.wait_for(lambda: (i := bot.services.store.get_incident("RB-0001")) and i.panel_ts and i, 10,
                                "the incident")


def thread(emulator: Emulator, incident: Incident) -> list[dict[str, Any]]:
    return emulator.ws.thread(INCIDENT, incident.panel_ts or "")


def in_thread(emulator: Emulator, incident: Incident, contains: str) -> dict[str, Any]:
    return emulator.ws.wait_for(lambda: next((m for m in thread(emulator, incident) if contains in content(m)), None),
                                10, f"{contains!r} in the thread")


def private(emulator: Emulator, user: str, contains: str) -> str:
    return emulator.ws.wait_for(lambda: next((e.text for e in emulator.ws.ephemerals_for(user)
                                              if contains in e.text), None), 10, f"{contains!r} to {user}")


def reminders(emulator: Emulator, incident: Incident) -> list[dict[str, Any]]:
    return [m for m in thread(emulator, incident) if REMINDER in content(m)]


def settled(emulator: Emulator, incident: Incident, sign: str) -> list[dict[str, Any]]:
    """The reminders in the thread once a later message (a note posted now) is there: anything sent before it is
    in too, so a missing reminder is missing, not late."""
    emulator.slash("casey", "incident-rollback", f"note {sign}").wait()
    in_thread(emulator, incident, sign)
    return reminders(emulator, incident)


def closed(emulator: Emulator, bot: SocketModeBot, incident: Incident) -> Incident:
    emulator.slash("casey", "incident-rollback", "close --force drill over").wait()
    return emulator.ws.wait_for(lambda: (i := bot.services.store.get_incident(incident.id)) and i.close_out
                                and i.close_out.postmortem and i.close_out.follow_ups_ts and i, 60, "the postmortem")


def test_open_follow_ups_are_reminded_after_remind_days_not_before_and_once_per_period(
        emulator: Emulator, sandbox: Sandbox, tmp_path: Path, start_bot: Callable[..., SocketModeBot]) -> None:
    clock = FakeClock()
    bot = start_bot(make_settings(emulator, sandbox, tmp_path / "data", followups={"remind_days": 7}), clock=clock)
    incident = started(emulator, bot)
    emulator.slash("casey", "incident-rollback", "followup @alex add a staging test with the AI server").wait()
    in_thread(emulator, incident, "add a staging test")
    emulator.slash("casey", "incident-rollback", "followup pin the AI server version").wait()  # casey's own
    in_thread(emulator, incident, "pin the AI server version")
    emulator.slash("casey", "incident-rollback", "followup done 2").wait()  # done before the close
    in_thread(emulator, incident, "Follow-up #2 done")
    clock.advance(hours=1)
    record = closed(emulator, bot, incident)
    text = Path(record.close_out.postmortem or "").read_text()
    assert "- [ ] add a staging test with the AI server — owner: Alex Approver (U0APPROVER1) (#1," in text
    assert "- [x] pin the AI server version — owner: Casey Commander (U0COMMANDER) (#2," in text
    assert "done by Casey Commander (U0COMMANDER) at" in text
    close_out = in_thread(emulator, incident, "Agreed during the incident")
    assert "☐ #1 add a staging test with the AI server — <@U0APPROVER1>" in content(close_out)
    assert "✅ #2 pin the AI server version — <@U0COMMANDER> (done: <@U0COMMANDER>" in content(close_out)
    followups = bot.services.followups

    clock.advance(days=6, hours=23)  # not yet a week since the close
    assert followups.remind() == 0
    assert settled(emulator, incident, "six days and 23 hours on") == []

    clock.advance(hours=2)  # a week since the close: the one open follow-up's owner, once
    assert followups.remind() == 1
    reminder = in_thread(emulator, incident, REMINDER)
    said = content(reminder)
    assert f"<@{APPROVER}>, follow-up #1 of RB-0001 is still open: add a staging test with the AI server" in said
    assert "Agreed 7 days ago" in said and "/rollback followup done 1 RB-0001" in said and "every 7 days" in said
    button = reminder["blocks"][-1]["elements"][0]
    assert button["action_id"] == Action.FOLLOWUP_DONE and button["value"] == "RB-0001:1"
    assert followups.remind() == 0  # the job again in the same period: claimed already
    clock.advance(days=3)
    assert followups.remind() == 0
    assert len(settled(emulator, incident, "ten days on")) == 1

    clock.advance(days=4)  # the next period: reminded again, still only #1
    assert followups.remind() == 1
    assert [m for m in settled(emulator, incident, "two weeks on") if "#2" in content(m)] == []
    assert len(reminders(emulator, incident)) == 2
    audit = [e for e in bot.services.store.audit_events(incident.id) if e.action == "incident.followup_reminded"]
    assert [(e.data["number"], e.data["period"]) for e in audit] == [(1, 1), (1, 2)]


def test_marking_done_stops_the_reminders_and_shows_in_the_close_out_and_the_postmortem(
        emulator: Emulator, sandbox: Sandbox, tmp_path: Path, start_bot: Callable[..., SocketModeBot]) -> None:
    clock = FakeClock()
    bot = start_bot(make_settings(emulator, sandbox, tmp_path / "data", followups={"remind_days": 2}), clock=clock)
    incident = started(emulator, bot)
    emulator.slash("casey", "incident-rollback", "followup @alex add a staging test with the AI server").wait()
    in_thread(emulator, incident, "add a staging test")
    record = closed(emulator, bot, incident)
    followups = bot.services.followups

    # bad input after the close: a clear private error that says what to type instead
    emulator.slash("casey", "incident-rollback", "followup done").wait()
    assert "/rollback followup done 2" in private(emulator, COMMANDER, "Say which follow-up is done")
    emulator.slash("casey", "incident-rollback", "followup done the staging test").wait()
    said = private(emulator, COMMANDER, "takes a follow-up's number")
    assert "/rollback followup done 2" in said and "/rollback followup @you done" in said
    emulator.slash("casey", "incident-rollback", "followup done 7").wait()
    assert "follow-up #1; there is no #7" in private(emulator, COMMANDER, "RB-0001 has")

    clock.advance(days=2, minutes=1)
    assert followups.remind() == 1
    reminder = in_thread(emulator, incident, REMINDER)
    emulator.click("blake", "incident-rollback", reminder["ts"], Action.FOLLOWUP_DONE).wait()  # neither owner nor
    assert "access.commanders" in private(emulator, BYSTANDER, "mark someone else's follow-up done")  # commander
    emulator.click("alex", "incident-rollback", reminder["ts"], Action.FOLLOWUP_DONE).wait()  # the owner, no commander
    in_thread(emulator, incident, "Follow-up #1 done")
    assert "no more reminders" in private(emulator, APPROVER, "marked done")
    done = bot.services.store.get_incident(incident.id)
    assert done is not None and done.follow_ups[0].done_by == APPROVER
    close_out = emulator.ws.wait_for(lambda: (m := emulator.ws.message(INCIDENT, record.close_out.follow_ups_ts
                                                                         if record.close_out else ""))
                                     and "✅ #1" in content(m) and m, 10, "the close-out post updated in place")
    assert f"(done: <@{APPROVER}>" in content(close_out)
    text = Path(record.close_out.postmortem if record.close_out else "").read_text()
    assert "- [x] add a staging test with the AI server — owner: Alex Approver (U0APPROVER1)" in text
    assert "done by Alex Approver (U0APPROVER1) at" in text
    emulator.slash("casey", "incident-rollback", "followup done 1 RB-0001").wait()
    assert "is already done" in private(emulator, COMMANDER, "Follow-up #1 of RB-0001")

    clock.advance(days=2)  # the next period: nothing open, nothing sent
    assert followups.remind() == 0
    assert len(settled(emulator, incident, "four days on")) == 1


@pytest.fixture(params=["sqlite", "mongodb"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """Opens the one store again, as a second bot instance would: the SQLite file, or a MongoDB database."""
    opened: list[Store] = []
    if request.param == "sqlite":
        def open_() -> Store:
            opened.append(SQLiteStore(tmp_path / "shared.sqlite3"))
            return opened[-1]
    else:
        from pymongo import MongoClient

        from bot.store.mongo import MongoStore

        server: TestServer = request.getfixturevalue("mongo_server")
        client: MongoClient[dict[str, Any]] = MongoClient(server.uri, tz_aware=True, serverSelectionTimeoutMS=3000)
        name = f"rollback_bot_followups_{uuid.uuid4().hex[:8]}"

        def open_() -> Store:
            opened.append(MongoStore(client, name, owns_client=False))
            return opened[-1]
    yield open_
    if request.param == "mongodb":
        client.drop_database(name)
        client.close()


def test_two_bot_instances_sharing_the_store_send_each_reminder_once(
        shared_store: Callable[[], Store], emulator: Emulator, sandbox: Sandbox, tmp_path: Path,
        start_bot: Callable[..., SocketModeBot]) -> None:
    # shared_store first: set up before the bots, so it is torn down after them
    # The clock starts at the wall clock's time: MongoDB's TTL index on the claims deletes, by the server's own
    # clock, a claim whose expiry is already past there (FakeClock's default start is in February 2026).
    clock = FakeClock(datetime.now(UTC))
    settings = make_settings(emulator, sandbox, tmp_path / "data", followups={"remind_days": 7})
    bot = start_bot(settings, store=shared_store(), clock=clock)
    second = build_services(settings, store=shared_store(), clock=clock, replica_id="replica-b")
    try:
        incident = started(emulator, bot)
        emulator.slash("casey", "incident-rollback", "followup @dana rotate the DB password").wait()
        in_thread(emulator, incident, "rotate the DB password")
        closed(emulator, bot, incident)
        clock.advance(days=7, minutes=1)
        sent: list[int] = []
        jobs = [bot.services.followups.remind, second.followups.remind] * 2  # each instance's job, twice, at once
        runs = [threading.Thread(target=lambda job=job: sent.append(job())) for job in jobs]
        for run in runs:
            run.start()
        for run in runs:
            run.join(30)
        assert sorted(sent) == [0, 0, 0, 1]
        assert len(settled(emulator, incident, "after both instances ran twice")) == 1
    finally:
        second.close()
