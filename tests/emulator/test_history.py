"""Message metadata and conversations.history / conversations.replies, paged like Slack's."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from bot.dev.emulator import Emulator, ManualClock
from tests.conftest import INCIDENT, RANDOM
from tests.emulator.conftest import WITH_HISTORY, refused, web

RUN = {"event_type": "rollback_step", "event_payload": {"incident": "RB-0001", "step": "backup"}}


@pytest.fixture
def slack(make_emulator: Callable[..., Emulator]) -> Emulator:
    return make_emulator(scopes=WITH_HISTORY)


def post(slack: Emulator, clock: ManualClock, count: int, channel: str = INCIDENT) -> list[str]:
    """Post ``count`` messages at Slack's pace for one channel (one a second), as a well-behaved bot would."""
    stamps = []
    for i in range(count):
        clock.advance(1.0)
        stamps.append(web(slack).chat_postMessage(channel=channel, text=f"m{i}")["ts"])
    return stamps


def test_metadata_is_stored_and_shown_only_to_include_all_metadata(slack: Emulator) -> None:
    client = web(slack)
    posted = client.chat_postMessage(channel=INCIDENT, text="Backup started", metadata=RUN)
    client.chat_postMessage(channel=INCIDENT, text="no metadata")
    plain = client.conversations_history(channel=INCIDENT)["messages"]
    assert all("metadata" not in m for m in plain)
    full = client.conversations_history(channel=INCIDENT, include_all_metadata=True)["messages"]
    assert [m.get("metadata") for m in full] == [None, RUN]
    assert full[1]["ts"] == posted["ts"] and full[1]["bot_id"] == "B0ROLLBOT"


def test_metadata_as_a_json_string_works_too(slack: Emulator) -> None:
    client = web(slack)
    client.api_call("chat.postMessage", data={"channel": INCIDENT, "text": "x", "metadata": json.dumps(RUN)})
    assert client.conversations_history(channel=INCIDENT, include_all_metadata=True)["messages"][0]["metadata"] == RUN


def test_chat_update_keeps_metadata_unless_given_and_an_empty_object_removes_it(slack: Emulator) -> None:
    client = web(slack)
    ts = client.chat_postMessage(channel=INCIDENT, text="v1", metadata=RUN)["ts"]
    client.chat_update(channel=INCIDENT, ts=ts, text="v2")
    assert client.conversations_history(channel=INCIDENT, include_all_metadata=True)["messages"][0]["metadata"] == RUN
    done = {"event_type": "rollback_step", "event_payload": {"step": "backup", "done": True}}
    client.chat_update(channel=INCIDENT, ts=ts, text="v3", metadata=done)
    assert client.conversations_history(channel=INCIDENT, include_all_metadata=True)["messages"][0]["metadata"] == done
    client.chat_update(channel=INCIDENT, ts=ts, text="v4", metadata={})
    assert "metadata" not in client.conversations_history(channel=INCIDENT, include_all_metadata=True)["messages"][0]


def test_metadata_without_event_type_or_payload_is_refused(slack: Emulator) -> None:
    client = web(slack)
    bad = refused(lambda: client.chat_postMessage(channel=INCIDENT, text="x", metadata={"event_type": "x"}))
    assert bad.response["error"] == "invalid_metadata_schema"
    garbled = refused(lambda: client.api_call("chat.postMessage", data={"channel": INCIDENT, "text": "x",
                                                                         "metadata": "{not json"}))
    assert garbled.response["error"] == "invalid_metadata_format"


def test_history_is_top_level_messages_newest_first_without_thread_replies(slack: Emulator) -> None:
    client = web(slack)
    first = client.chat_postMessage(channel=INCIDENT, text="first")["ts"]
    client.chat_postMessage(channel=INCIDENT, text="a reply", thread_ts=first)
    client.chat_postMessage(channel=INCIDENT, text="second")
    client.chat_postMessage(channel=RANDOM, text="elsewhere")
    history = client.conversations_history(channel=INCIDENT)
    assert [m["text"] for m in history["messages"]] == ["second", "first"]
    assert history["messages"][1]["reply_count"] == 1 and history["messages"][1]["thread_ts"] == first
    assert history["has_more"] is False


def test_history_pages_with_has_more_and_next_cursor(slack: Emulator, clock: ManualClock) -> None:
    client = web(slack)
    post(slack, clock, 7)
    seen: list[str] = []
    page = client.conversations_history(channel=INCIDENT, limit=3)
    while True:
        seen += [m["text"] for m in page["messages"]]
        if not page["has_more"]:
            break
        assert len(page["messages"]) == 3
        page = client.conversations_history(channel=INCIDENT, limit=3,
                                            cursor=page["response_metadata"]["next_cursor"])
    assert seen == [f"m{i}" for i in reversed(range(7))]


def test_history_honours_oldest_latest_and_inclusive(slack: Emulator, clock: ManualClock) -> None:
    client = web(slack)
    ts = post(slack, clock, 4)
    between = client.conversations_history(channel=INCIDENT, oldest=ts[0], latest=ts[3])["messages"]
    assert [m["text"] for m in between] == ["m2", "m1"]
    inclusive = client.conversations_history(channel=INCIDENT, oldest=ts[0], latest=ts[3], inclusive=True)
    assert [m["text"] for m in inclusive["messages"]] == ["m3", "m2", "m1", "m0"]
    assert refused(lambda: client.conversations_history(channel=INCIDENT, oldest="yesterday")) \
        .response["error"] == "invalid_ts_oldest"


def test_a_bad_cursor_is_invalid_cursor(slack: Emulator) -> None:
    assert refused(lambda: web(slack).conversations_history(channel=INCIDENT, cursor="bm9wZQ==")) \
        .response["error"] == "invalid_cursor"


def test_history_limit_is_capped_at_999(slack: Emulator) -> None:
    client = web(slack)
    for i in range(3):
        client.chat_postMessage(channel=INCIDENT, text=f"m{i}")
    assert len(client.conversations_history(channel=INCIDENT, limit=5000)["messages"]) == 3


def test_unlisted_apps_get_pages_of_15(make_emulator: Callable[..., Emulator], clock: ManualClock) -> None:
    slack = make_emulator(distribution="unlisted", scopes=WITH_HISTORY)
    client = web(slack)
    post(slack, clock, 20)
    page = client.conversations_history(channel=INCIDENT, limit=100)
    assert len(page["messages"]) == 15 and page["has_more"] is True


def test_replies_give_the_parent_then_the_thread_oldest_first(slack: Emulator) -> None:
    client = web(slack)
    parent = client.chat_postMessage(channel=INCIDENT, text="parent")["ts"]
    for i in range(3):
        client.chat_postMessage(channel=INCIDENT, text=f"r{i}", thread_ts=parent)  # 4 posts: within the burst
    first = client.conversations_replies(channel=INCIDENT, ts=parent, limit=2)
    assert [m["text"] for m in first["messages"]] == ["parent", "r0"] and first["has_more"]
    rest = client.conversations_replies(channel=INCIDENT, ts=parent, limit=2,
                                        cursor=first["response_metadata"]["next_cursor"])
    assert [m["text"] for m in rest["messages"]] == ["r1", "r2"] and not rest["has_more"]
    assert refused(lambda: client.conversations_replies(channel=INCIDENT, ts="1.000001")) \
        .response["error"] == "thread_not_found"


def test_a_post_recorded_late_is_missing_from_history_until_its_delay_has_passed(slack: Emulator,
                                                                                 clock: ManualClock) -> None:
    client = web(slack)
    slack.record_late(10.0, INCIDENT)
    posted = client.chat_postMessage(channel=INCIDENT, text="Update", metadata=RUN)["ts"]
    reply = client.chat_postMessage(channel=INCIDENT, text="in the thread", thread_ts=posted)["ts"]
    elsewhere = client.chat_postMessage(channel=RANDOM, text="not late here")["ts"]
    assert slack.ws.message(INCIDENT, posted) is not None  # Slack accepted it: the ts is real
    assert client.conversations_history(channel=INCIDENT)["messages"] == []
    assert [m["ts"] for m in client.conversations_replies(channel=INCIDENT, ts=posted)["messages"]] == [posted]
    assert [m["ts"] for m in client.conversations_history(channel=RANDOM)["messages"]] == [elsewhere]

    clock.advance(10.0)
    shown = client.conversations_history(channel=INCIDENT, include_all_metadata=True)["messages"]
    assert [(m["ts"], m.get("metadata")) for m in shown] == [(posted, RUN)]
    assert [m["ts"] for m in client.conversations_replies(channel=INCIDENT, ts=posted)["messages"]] == [posted, reply]
    slack.record_late(0)
    clock.advance(1.0)
    later = client.chat_postMessage(channel=INCIDENT, text="on time")["ts"]
    assert [m["ts"] for m in client.conversations_history(channel=INCIDENT)["messages"]] == [later, posted]


def test_slow_calls_answer_late_and_a_client_that_gives_up_first_gets_a_timeout(slack: Emulator) -> None:
    import time

    from slack_sdk import WebClient

    web(slack).chat_postMessage(channel=INCIDENT, text="m")
    slack.slow_calls("conversations.history", 1.0)
    began = time.monotonic()
    assert len(web(slack).conversations_history(channel=INCIDENT)["messages"]) == 1
    assert time.monotonic() - began >= 1.0
    impatient = WebClient(token=slack.ws.app.bot_token, base_url=slack.api_url, timeout=0.2)
    with pytest.raises(TimeoutError):
        impatient.conversations_history(channel=INCIDENT)
    impatient.chat_postMessage(channel=INCIDENT, text="other methods stay fast")
    slack.slow_calls("conversations.history", 0)
    assert len(impatient.conversations_history(channel=INCIDENT)["messages"]) == 2
