"""The real Bolt app, driven through the emulator over Socket Mode and signed HTTP."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

from bot.app import HttpBot, SocketModeBot
from bot.config import Settings
from bot.dev.emulator import Delivery, Emulator
from tests.conftest import COMMANDER, INCIDENT, RANDOM, checklists_message, wait_for_log

Mode = Callable[[], Any]


@pytest.fixture(params=["socket", "http"])
def running(request: pytest.FixtureRequest) -> Any:
    """The bot in one delivery mode, connected to the emulator."""
    if request.param == "socket":
        return request.getfixturevalue("bot")
    return request.getfixturevalue("http_bot")


def panels(emulator: Emulator) -> list[dict[str, Any]]:
    return [m for m in emulator.ws.channel_messages(INCIDENT) if m.get("blocks") and
            m["blocks"][0].get("type") == "header"]


def wait_ephemeral(emulator: Emulator, user: str, after: int, contains: str) -> str:
    def probe() -> str | None:
        for e in emulator.ws.ephemerals_for(user)[after:]:
            if contains in e.text or contains in str(e.blocks):
                return e.text + str(e.blocks)
        return None

    return emulator.ws.wait_for(probe, 10, f"an ephemeral to {user} containing {contains!r}")


def count(emulator: Emulator, user: str) -> int:
    return len(emulator.ws.ephemerals_for(user))


def test_start_posts_the_control_panel_and_status_shows_real_times(emulator: Emulator, running: Any) -> None:
    delivery = emulator.slash("casey", "incident-rollback", 'start "health returns 500 after Phase 3"').wait()
    assert delivery.failed is None and delivery.ack_latency is not None and delivery.ack_latency < 3
    panel = emulator.ws.wait_for(lambda: panels(emulator), 10, "the control panel")[0]
    assert panel["blocks"][0]["text"]["text"] == "🚨 Rollback RB-0001 — active"
    body = str(panel["blocks"])
    assert "health returns 500 after Phase 3" in body and "<@U0COMMANDER>" in body
    assert "*Next:* `/rollback backup`" in body  # the panel says what to do first
    lists = checklists_message(emulator)
    assert lists["thread_ts"] == panel["ts"]  # the thread's first reply, linked from the panel
    assert "Critical production issues" in str(lists["blocks"]) and ">50% of sessions" in str(lists["blocks"])
    thread = emulator.ws.wait_for(lambda: emulator.ws.thread(INCIDENT, panel["ts"])[1:], 10, "the kickoff")
    assert "Emergency contacts" in thread[0]["text"] and "<@U0APPROVER1>" in thread[0]["text"]
    assert "<!subteam^S0LEADS>" in thread[0]["text"]

    before = count(emulator, COMMANDER)
    emulator.slash("casey", "incident-rollback", "status").wait()
    status = wait_ephemeral(emulator, COMMANDER, before, "Timeline")
    assert "Issue detected" in status and "Rollback started" in status and "<!date^" in status
    assert "Current commit noted" in status


def test_a_second_start_is_refused_privately_with_a_link(emulator: Emulator, running: Any) -> None:
    emulator.slash("casey", "incident-rollback", "start first").wait()
    emulator.ws.wait_for(lambda: panels(emulator), 10, "the panel")
    before = count(emulator, COMMANDER)
    emulator.slash("casey", "incident-rollback", "start second").wait()
    refusal = wait_ephemeral(emulator, COMMANDER, before, "already active")
    assert "RB-0001" in refusal and "/archives/C0INCIDENT/p" in refusal
    assert len(panels(emulator)) == 1


def test_not_allowed_channel_and_user_get_a_private_explanation_and_nothing_happens(
        emulator: Emulator, running: Any) -> None:
    emulator.slash("casey", "random", "start").wait()
    assert "incident channels" in wait_ephemeral(emulator, COMMANDER, 0, "incident channels")
    emulator.slash("blake", "incident-rollback", "start").wait()
    assert "not on the list" in wait_ephemeral(emulator, "U0BYSTANDER", 0, "not on the list")
    # A refusal is the last thing a refused request does, so once both are seen nothing more can come.
    assert emulator.ws.channel_messages(INCIDENT) == [] and emulator.ws.channel_messages(RANDOM) == []


def test_unknown_subcommand_and_bad_time_answer_with_usage(emulator: Emulator, running: Any) -> None:
    emulator.slash("casey", "incident-rollback", "rollbak now").wait()
    assert "Usage" in wait_ephemeral(emulator, COMMANDER, 0, "is not a /rollback subcommand")
    emulator.slash("casey", "incident-rollback", "start --detected yesterday-ish").wait()
    assert "--detected 14:05" in wait_ephemeral(emulator, COMMANDER, 1, "could not read")
    emulator.slash("casey", "incident-rollback", "start <!channel> --bogus").wait()
    text = wait_ephemeral(emulator, COMMANDER, 2, "is not an option")
    assert "<!channel>" not in text
    assert emulator.ws.channel_messages(INCIDENT) == []


def test_a_redelivered_event_runs_once(emulator: Emulator, running: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="rollback_bot.listeners")
    emulator.slash("casey", "incident-rollback", "start").wait()
    emulator.ws.wait_for(lambda: panels(emulator), 10, "the panel")
    first = emulator.mention("casey", "incident-rollback", "status", send=False)
    emulator.send(first).wait()
    again = Delivery(id="redelivery-" + first.id, kind="events_api", payload=first.payload, user=first.user,
                     channel=first.channel, attempts=1)  # attempt 2, same event_id, as Slack retries
    emulator.deliveries[again.id] = again
    emulator.send(again).wait()
    assert again.failed is None
    emulator.ws.wait_for(lambda: emulator.ws.thread(INCIDENT, first.payload["event"]["ts"]), 10, "the answer")
    wait_for_log(caplog, "was acknowledged and ignored")  # as a repeat (event id) or a replay (signature)
    replies = emulator.ws.thread(INCIDENT, first.payload["event"]["ts"])
    assert len(replies) == 1 and "Timeline" in replies[0]["text"] + str(replies[0]["blocks"])


def test_the_restarted_bot_keeps_the_incident(emulator: Emulator, settings: Settings,
                                              start_bot: Callable[..., SocketModeBot]) -> None:
    first = start_bot()
    emulator.slash("casey", "incident-rollback", "start db queries failing").wait()
    emulator.ws.wait_for(lambda: panels(emulator), 10, "the panel")
    first.close()
    start_bot()
    emulator.slash("casey", "incident-rollback", "status").wait()
    status = wait_ephemeral(emulator, COMMANDER, 0, "RB-0001")
    assert "db queries failing" in status
    emulator.slash("casey", "incident-rollback", "start again").wait()
    assert "already active" in wait_ephemeral(emulator, COMMANDER, 1, "already active")


def test_web_api_429_and_500_are_retried_then_succeed(emulator: Emulator, running: Any) -> None:
    emulator.fail_next("chat.postMessage", 429, retry_after=1)
    emulator.fail_next("chat.postMessage", 500)
    emulator.slash("casey", "incident-rollback", "start").wait()
    panel = emulator.ws.wait_for(lambda: panels(emulator), 15, "the panel after the 429")[0]
    calls = [c for c in emulator.ws.calls if c[0] == "chat.postMessage"]
    assert len(calls) >= 3  # the rate-limited one, the 500, and the retry that worked
    assert len(panels(emulator)) == 1 and panel["blocks"][0]["text"]["text"].startswith("🚨 Rollback RB-0001")


def test_ticking_criteria_and_the_checklist_updates_the_checklists_in_place(emulator: Emulator,
                                                                             running: Any) -> None:
    emulator.slash("casey", "incident-rollback", "start").wait()
    emulator.ws.wait_for(lambda: panels(emulator), 10, "the panel")
    lists = checklists_message(emulator)

    def ticked(action_id: str) -> list[str]:
        message = emulator.ws.message(INCIDENT, lists["ts"]) or {}
        for block in message.get("blocks", []):
            for element in block.get("elements", []):
                if element.get("action_id") == action_id:
                    return [o["value"] for o in element.get("initial_options") or []]
        return []

    emulator.click("casey", "incident-rollback", lists["ts"], "rollback_criterion:0",
                   selected=["gen_fail", "crash_loop"]).wait()
    emulator.ws.wait_for(lambda: ticked("rollback_criterion:0") == ["gen_fail", "crash_loop"], 10,
                         "the criteria ticked")
    emulator.click("casey", "incident-rollback", lists["ts"], "rollback_checklist", selected=["document"]).wait()
    emulator.ws.wait_for(lambda: ticked("rollback_checklist") == ["document"], 10, "the checklist ticked")
    assert ticked("rollback_criterion:0") == ["gen_fail", "crash_loop"]  # the same message, updated in place
    assert len(panels(emulator)) == 1 and checklists_message(emulator)["ts"] == lists["ts"]
    emulator.click("blake", "incident-rollback", lists["ts"], "rollback_criterion:0", selected=[]).wait()
    assert "not on the list" in wait_ephemeral(emulator, "U0BYSTANDER", 0, "not on the list")


def test_socket_mode_reconnects_after_disconnect(emulator: Emulator, bot: SocketModeBot) -> None:
    opened = emulator.connections_opened
    emulator.disconnect_sockets()
    emulator.ws.wait_for(lambda: emulator.connections_opened > opened and emulator.socket_count >= 1, 20,
                         "a new Socket Mode connection")
    delivery = emulator.slash("casey", "incident-rollback", "help").wait(15)
    assert delivery.failed is None
    assert "status" in wait_ephemeral(emulator, COMMANDER, 0, "/rollback start")


def test_http_mode_refuses_bad_and_stale_signatures(emulator: Emulator, http_bot: HttpBot) -> None:
    def delivery(reason: str) -> tuple[Delivery, bytes]:
        made = Delivery(id=reason, kind="slash_commands",
                        payload=emulator.slash_payload("casey", "incident-rollback", f"start {reason}"))
        return made, emulator.encode_http(made)[0]

    forged, body = delivery("forged")
    emulator.deliver_raw_http(forged, headers=emulator.sign(body, secret="not-the-signing-secret"))
    stale, body = delivery("stale")
    emulator.deliver_raw_http(stale, headers=emulator.sign(body, timestamp=int(time.time()) - 600))
    assert (forged.http_status, stale.http_status) == (401, 401)
    good, body = delivery("genuine")
    emulator.deliver_raw_http(good, headers=emulator.sign(body))
    assert good.http_status == 200
    panel = emulator.ws.wait_for(lambda: panels(emulator), 10, "the panel from the signed request")
    shown = str(panel)
    assert len(panel) == 1 and "genuine" in shown and "forged" not in shown and "stale" not in shown
    incidents = http_bot.services.store.incidents_in_channel(INCIDENT)
    assert [i.reason for i in incidents] == ["genuine"] and emulator.ws.ephemerals_for(COMMANDER) == []


def test_an_unexpected_failure_tells_the_user_a_correlation_id_kept_in_the_log(
        emulator: Emulator, bot: SocketModeBot, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("the store's disk vanished")

    monkeypatch.setattr(bot.services.incidents, "status", broken)
    emulator.slash("casey", "incident-rollback", "status").wait()
    text = wait_ephemeral(emulator, COMMANDER, 0, "correlation id")
    correlation = text.split("correlation id ", 1)[1][:12]
    assert "Something went wrong" in text and "disk vanished" not in text  # no internals shown to the user
    logged = [r for r in caplog.records if getattr(r, "correlation_id", None) == correlation]
    assert logged and logged[0].levelname == "ERROR" and logged[0].exc_info is not None
    assert "disk vanished" in str(logged[0].exc_info[1])


def test_a_vanished_repository_is_explained_privately_and_nothing_starts(
        emulator: Emulator, settings: Settings, start_bot: Callable[..., SocketModeBot], sandbox: Any) -> None:
    import shutil

    start_bot()
    shutil.rmtree(sandbox.repo / ".git")  # the target repository vanished under the bot
    emulator.slash("casey", "incident-rollback", "start").wait()
    text = wait_ephemeral(emulator, COMMANDER, 0, "git repository")
    assert "target.repo_path" in text
    assert panels(emulator) == []
