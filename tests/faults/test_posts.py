"""A stakeholder post goes out once even when Slack shows it late: a real bot process is killed (SIGKILL)
between Slack accepting the post and the bot recording it, while the emulator keeps that post out of
``conversations.history`` for a while (``record_late``), as Slack's history can lag (see test_crashes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.dev.emulator import Emulator
from bot.dev.sandbox import Sandbox
from tests.conftest import STAKEHOLDERS
from tests.faults.test_crashes import Case

pytestmark = pytest.mark.slow
LATE_S = 15.0  # longer than a restart takes, so the restarted bot's first look misses the post


@pytest.fixture
def case(emulator: Emulator, sandbox: Sandbox, tmp_path: Path) -> Iterator[Any]:
    made: list[Case] = []

    def make(**kwargs: Any) -> Case:
        made.append(Case(emulator, sandbox, tmp_path, **kwargs))
        return made[-1]

    yield make
    for each in made:
        each.close()


@pytest.mark.parametrize("slow_history_s", [0.0, 3.0], ids=["late", "late-and-slow-history"])
def test_killed_after_slack_accepted_a_post_it_records_late_the_restarted_bot_finds_it_and_posts_nothing(
        case: Any, slow_history_s: float) -> None:
    c: Case = case(comms={"lookup_s": 30})
    c.emulator.record_late(LATE_S, STAKEHOLDERS)
    c.emulator.slow_calls("conversations.history", slow_history_s)  # each look takes this long too
    first = c.start(pause="comms.posted#1")
    c.slash("start drill")
    c.paused_at("comms.posted")
    first.kill()
    posted = c.posts("rollback started")
    assert len(posted) == 1  # Slack has it (history does not show it yet); the bot has not recorded it

    c.start()
    recorded = c.wait(lambda: (i := c.store.get_incident("RB-0001")) and i.comms["rollback_started"].ts, 60,
                      "the post recorded after the restart")
    assert recorded == posted[0]["ts"]
    assert len(c.posts("rollback started")) == 1  # exactly one in the stakeholder channel
    recovered = c.audit("comms.recovered")
    assert [e.data["found"] for e in recovered] == [True]
    assert recovered[0].data["lookups"] > 1  # the first look missed it: Slack had not shown it yet
    c.no_duplicates()
