"""The README's walkthrough in a real browser: Debian's chromium driven by Playwright against the page
the emulator serves for `make local`: a SEV1, a failed verify naming whom to call, 📌 to the timeline, the steps,
the two-person cleanup, the stakeholder form, a comms lead (what the role allows, what it does not, the panel
naming her, her preview updated in place), the health chart, and a follow-up's reminder a week after the close
(the bot's clock jumps ahead). Screenshots go to build/screenshots/ (ignored by git).

Skipped, with the reason, where chromium or Playwright is not installed.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from bot.app import SocketModeBot
from bot.dev.emulator import Emulator
from bot.dev.fakeclock import LaterClock
from bot.dev.sandbox import Sandbox
from bot.domain.approvals import ApprovalStatus
from bot.domain.incident import Milestone
from tests.browser.console import watch
from tests.conftest import APPROVER, DBA, INCIDENT, STAKEHOLDERS

pytestmark = pytest.mark.slow
SHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


def checks_run(bot: SocketModeBot) -> None:
    """One round of the scheduled health checks, as the scheduler runs it: on a thread of its own (the checks use
    asyncio, and Playwright's sync API holds this thread's event loop)."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(bot.services.monitor.run_once).result(timeout=60)


def test_a_newcomer_runs_a_rollback_with_a_second_approver_in_the_browser(
        emulator: Emulator, live_sandbox: Sandbox, browser: Any,
        start_bot: Callable[..., SocketModeBot]) -> None:
    clock = LaterClock()  # real time, until the walkthrough jumps a week ahead for a follow-up's reminder
    bot = start_bot(clock=clock)
    store = bot.services.store
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    problems = watch(page)
    page.goto(f"{emulator.url}/?as=casey")
    page.wait_for_selector("#channels li[data-channel='incident-rollback'].active")

    def type_(text: str) -> None:
        page.fill("#text", text)
        page.press("#text", "Enter")

    def step_done(title: str, timeout: float = 120) -> None:
        emulator.ws.wait_for(lambda: any(f"*{title}* — succeeded" in m["text"] for m in emulator.ws.thread(
            INCIDENT, store.get_incident("RB-0001").panel_ts)), timeout, title)

    type_("/rollback start health returns 500 after Phase 3 --sev 1")
    page.wait_for_selector("#messages .block-header:has-text('Rollback RB-0001 SEV1')")  # the severity, in view
    # the panel says what to do first, and that step's button is the primary one
    page.wait_for_selector("#messages :text('Next:')")
    assert "/rollback backup" in page.locator("#messages .msg:has(.block-header:has-text('Rollback RB-0001'))")\
        .inner_text()
    assert "primary" in (page.locator("#messages button[data-action-id='rollback_step:backup']")
                         .get_attribute("class") or "")
    shot(page, "1-panel")
    checks_run(bot)  # the scheduled checks, on the broken deploy: the chart's first results
    # the checklists are one click away, in the thread: the runbook's criteria under their group names
    page.click("#messages button[data-action-id='rollback_open_checklists']")
    page.wait_for_selector("#thread-messages .block-header:has-text('Checklists')")
    page.wait_for_selector("#thread-messages :text('User-facing issues')")
    page.locator("#thread-messages label:has-text('Students cannot complete sessions') input").check()
    emulator.ws.wait_for(lambda: "sessions" in store.get_incident("RB-0001").criteria, 10, "the tick recorded")
    shot(page, "2-checklists")
    # a verify on the broken deploy fails, and the Next line says what that means and whom to call
    type_("/rollback verify")
    page.wait_for_selector("#messages :text('verify failed:')")
    next_line = page.locator("#messages .msg:has(.block-header:has-text('Rollback RB-0001'))").inner_text()
    assert "answers 500: the backend runs but fails" in next_line and "Call the backend lead" in next_line
    shot(page, "2b-verify-failed-says-whom-to-call")
    # what people say in the channel joins the timeline with a 📌
    type_("EU customers see 502 on login since 14:02")
    said = page.locator("#messages .msg:has-text('EU customers see 502')").last
    said.hover()
    said.locator(".tools button[data-react='pushpin']").click()
    emulator.ws.wait_for(lambda: any(e.text == "📌 EU customers see 502 on login since 14:02"
                                     for e in store.get_incident("RB-0001").timeline), 10, "pinned to the timeline")
    type_("/rollback backup")
    step_done("Backup current state")
    # the panel's revert button sits behind Slack's confirm dialog
    page.click("#messages button[data-action-id='rollback_step:revert']")
    page.wait_for_selector("#dialog button[data-answer='yes']")
    shot(page, "3-confirm-revert")
    page.click("#dialog button[data-answer='yes']")
    step_done("Revert code")
    for command, title in (("rebuild", "Rebuild backend"), ("restart", "Restart backend"),
                           ("verify", "Verify rollback")):
        type_(f"/rollback {command}")
        step_done(title)
    assert Milestone.ROLLBACK_COMPLETED in store.get_incident("RB-0001").milestones
    checks_run(bot)  # and on the rolled-back one
    page.click("#messages .msg .replies")  # the incident thread
    page.wait_for_selector("#thread-messages :text('Verify rollback')")
    page.wait_for_selector("#messages :text('confirm the success criteria')")  # Next, after verify
    shot(page, "4-thread")

    # a private answer is visible only to the person who caused it
    type_("/rollback frobnicate")
    page.wait_for_selector("#messages .msg.ephemeral:has-text('is not a /rollback subcommand')")
    page.select_option("#user", "blake")
    page.wait_for_selector("#user-hint:has-text('bystander')")
    assert page.locator("#messages .msg.ephemeral").count() == 0

    page.select_option("#user", "casey")
    type_("/rollback cleanup")
    request = page.locator("#messages .msg:has(.block-header:has-text('DANGER ZONE'))")
    request.wait_for()
    shot(page, "3-approval-request")
    page.select_option("#user", "alex")  # the second person
    request.hover()
    request.locator(".tools button[data-react='+1']").click()  # 👍 is not how to approve: a hint says so
    page.wait_for_selector("#messages .msg.ephemeral:has-text('does not count')")
    request.hover()
    request.locator(".tools button[data-react='white_check_mark']").click()
    emulator.ws.wait_for(lambda: any(a.status is ApprovalStatus.APPROVED for a in store.approvals("RB-0001")), 10,
                         "approved")
    request.locator(".reaction.mine:has-text('✅')").click()  # second thoughts: withdraw within the delay
    page.wait_for_selector("#messages .msg.ephemeral:has-text('is withdrawn')")
    request.locator(":text('Withdrawn:')").wait_for()
    shot(page, "5-approval-hint-and-withdrawal")
    request.hover()
    request.locator(".tools button[data-react='white_check_mark']").click()
    approval = emulator.ws.wait_for(lambda: next((a for a in store.approvals("RB-0001")
                                                  if a.status is ApprovalStatus.EXECUTED), None), 60, "the cleanup")
    assert approval.approvers == ["U0APPROVER1"] and [w.user for w in approval.withdrawn] == ["U0APPROVER1"]
    page.wait_for_selector("#messages .msg:has-text('🏁 done')")
    shot(page, "6-approved-and-done")

    # a form: the stakeholder details
    page.select_option("#user", "casey")
    type_("/rollback comms edit")
    page.wait_for_selector("#dialog textarea[name='students']")
    page.fill("#dialog textarea[name='students']", "could not finish sessions for 20 minutes")
    page.fill("#dialog input[name='eta']", "Friday " * 300)  # too long: Slack shows the error under the field
    page.click("#modal-submit")
    page.wait_for_selector("#dialog .field-error:has-text('At most 2000 characters')")
    assert page.input_value("#dialog textarea[name='students']") == "could not finish sessions for 20 minutes"
    page.fill("#dialog input[name='eta']", "Friday 12:00")
    shot(page, "7-form")
    page.click("#modal-submit")
    emulator.ws.wait_for(lambda: store.get_incident("RB-0001").comms_details.eta == "Friday 12:00", 10, "saved")

    page.click("#channels li[data-channel='stakeholders']")
    page.wait_for_selector("#messages .block-header:has-text('(rollback started)')")
    page.wait_for_selector("#messages .block-header:has-text('(rollback completed)')")
    page.wait_for_selector("#messages :text('Next update')")  # the template's times and statuses as fields
    assert page.locator("#messages time").count() >= 3  # Slack dates shown in the reader's local time
    shot(page, "8-stakeholders")
    assert len([m for m in emulator.ws.channel_messages(STAKEHOLDERS) if "(rollback started)" in m["text"]]) == 1

    # a second role: dana (an approver, no commander) becomes the comms lead, and the panel says so
    page.click("#channels li[data-channel='incident-rollback']")
    type_("/rollback role comms @dana")
    panel = page.locator("#messages .msg:has(.block-header:has-text('Rollback RB-0001'))")
    panel.locator(":is(.block-section, .block-context):has-text('Comms lead: @dana')").first.wait_for()
    page.select_option("#user", "dana")
    type_("/rollback comms")  # what the role allows: the stakeholder update's preview, its form, Post now
    preview = page.locator("#messages .msg.ephemeral:has-text('Preview of the next stakeholder update')")
    preview.wait_for()
    preview.locator(":text('Professors: not assessed yet')").wait_for()
    preview.locator("button[data-action-id='rollback_comms_edit']").click()
    page.wait_for_selector("#dialog textarea[name='professors']")
    page.fill("#dialog textarea[name='professors']", "could not validate feedback for 20 minutes")
    page.click("#modal-submit")
    # the preview she opened it from shows what she saved, in place: no stale preview above
    preview.locator(":text('Professors: could not validate feedback for 20 minutes')").wait_for()
    assert page.locator("#messages .msg.ephemeral:has-text('Preview of the next stakeholder update')").count() == 1
    assert "not assessed yet" not in preview.inner_text().split("Professors:")[1].split("\n")[0]
    type_("/rollback backup")  # what it does not: a step is the commander's
    page.wait_for_selector("#messages .msg.ephemeral:has-text('Only commanders may run rollback steps')")
    assert store.get_incident("RB-0001").roles.get("comms") == DBA
    shot(page, "9-comms-lead-preview-updated-and-refused")
    panel.scroll_into_view_if_needed()
    shot(page, "9b-panel-shows-the-comms-lead")

    # the chart: status strips, latency in ms, the incident's events, posted into the incident's thread
    page.select_option("#user", "casey")
    type_("/rollback health")
    page.wait_for_selector("#messages .msg.ephemeral:has-text('Chart of each check')")
    page.click("#messages .msg .replies")
    chart = page.locator("#thread-messages .file img").last
    chart.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth > 600", arg=chart.element_handle())
    chart.scroll_into_view_if_needed()
    shot(page, "10-health-chart")
    uploaded = next(f for f in emulator.ws.files.values() if str(f.get("name")).endswith(".png"))
    (SHOTS / "10b-health-chart-as-uploaded.png").write_bytes(uploaded["content"])

    # a follow-up with an owner, reminded after the close
    type_("/rollback followup @alex add a staging test with the AI server")
    page.wait_for_selector("#thread-messages :text('add a staging test with the AI server')")
    type_("/rollback close --force walkthrough over")
    page.wait_for_selector("#thread-messages .file:has-text('RB-0001 postmortem')", timeout=60_000)  # closed
    clock.advance(days=7, minutes=1)  # a week later (followups.remind_days)
    bot.services.followups.remind()  # the scheduled job, run now
    page.select_option("#user", "alex")
    reminder = page.locator("#thread-messages .msg:has-text('is still open')")
    reminder.wait_for()
    assert "@alex, follow-up #1 of RB-0001 is still open: add a staging test" in reminder.inner_text()
    reminder.scroll_into_view_if_needed()
    shot(page, "11-followup-reminder")
    reminder.locator("button[data-action-id='rollback_followup_done']").click()  # its owner marks it done
    page.wait_for_selector("#thread-messages :text('Follow-up #1 done')")
    done = store.get_incident("RB-0001").follow_ups[0]
    assert done.owner == APPROVER and done.done_at is not None
    assert problems == []  # nothing in the browser's console all the way through
    page.close()
