"""Nothing a person must read is cut where Slack's limits bite. Every message here is posted through the bot's
own messenger to the strict emulator, which refuses what Slack refuses (50 blocks, 3,000-character sections,
150-character headers, msg_too_long)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.config import parse_runbook
from bot.dev.emulator import Emulator
from bot.domain.approvals import (
    Approval,
    ApprovalStatus,
    BackupRef,
    DangerAction,
    DangerPlan,
    PlanTotals,
    TenantCount,
    TenantPlan,
    TenantResult,
)
from bot.domain.incident import CommsDetails, Incident, Milestone, Rca
from bot.domain.updates import build_update
from bot.slack import web_client
from bot.slack.messenger import SlackMessenger
from bot.slack_ui import SlackPresenter
from bot.slack_ui.blocks import SECTION_MAX, split_text
from tests.conftest import INCIDENT, STAKEHOLDERS

T0 = datetime(2026, 11, 30, 3, 4, 5, tzinfo=UTC)
CONFIG = parse_runbook({"access": {"approvers": ["@backend-leads"]}})
HOSTILE = "<!channel> & <https://evil.example|click> &amp; ok"


@pytest.fixture
def slack() -> Iterator[Emulator]:
    emu = Emulator().start()  # Slack's rate limits on: the overflow replies are paced like the real thing
    yield emu
    emu.close()


@pytest.fixture
def messenger(slack: Emulator) -> SlackMessenger:
    return SlackMessenger(web_client(slack.ws.app.bot_token, slack.api_url))


def presenter() -> SlackPresenter:
    return SlackPresenter(CONFIG, lambda: ["subteam:S0LEADS"])  # @backend-leads, resolved


def shown(slack: Emulator, channel: str, ts: str) -> tuple[str, str]:
    """(the message's own section texts, the section texts of the whole thread under it)."""
    def sections(message: dict[str, object]) -> str:
        blocks = message.get("blocks") or []
        return "\n".join(b["text"]["text"] for b in blocks if isinstance(b, dict) and b.get("type") == "section")

    top = slack.ws.message(channel, ts)
    assert top is not None
    return sections(top), "\n".join(sections(m) for m in slack.ws.thread(channel, ts))


def entities_whole(text: str) -> bool:
    """No chunk ends inside `&amp;` or `<…>`."""
    return not re.search(r"&[a-z]{0,5}$", text) and text.count("<") == text.count(">")


def plan_for(tenants: int) -> DangerPlan:
    backup = BackupRef(run_id="RB-0001-backup-20261130T030000Z", step_run="run-1", path="/var/backups/RB-0001",
                       manifest_sha256="0" * 64, documents=tenants * 40, tenants=[f"tenant_{i:03d}" for i in
                                                                                   range(tenants)], finished_at=T0)
    plans = [TenantPlan(db=f"tenant_{i:03d}", name=f"School {i} {HOSTILE}",
                        now=TenantCount(cases=10 + i, fields={"step": 10 + i, "case_type": 3, "patient_state": 1},
                                        collections={"assessments": i, "feedbacks": None}))
             for i in range(tenants)]
    return DangerPlan(approval_id="AP-1", action=DangerAction.CLEANUP, tenants=plans, backup=backup,
                      totals=PlanTotals(tenants=tenants, cases=sum(t.now.cases for t in plans),
                                        dropped_documents=sum(range(tenants))))


def approval(status: ApprovalStatus = ApprovalStatus.PENDING) -> Approval:
    return Approval(id="AP-1", incident_id="RB-0001", action=DangerAction.CLEANUP, requester="U0COMMANDER",
                    channel=INCIDENT, status=status, requested_at=T0, expires_at=T0 + timedelta(minutes=30),
                    approvers=["U0APPROVER1"] if status is not ApprovalStatus.PENDING else [],
                    approved_at=T0 + timedelta(minutes=2), starts_at=T0 + timedelta(minutes=3),
                    started_at=T0 + timedelta(minutes=3), finished_at=T0 + timedelta(minutes=9),
                    note=f"requested because {HOSTILE}")


def test_a_300_tenant_request_keeps_everything_approvers_must_read_in_one_accepted_message(
        slack: Emulator, messenger: SlackMessenger) -> None:
    plan = plan_for(300)
    ts = messenger.post(INCIDENT, presenter().approval_request(approval(), plan, []))
    assert [r for r in slack.rejections if r.error != "ratelimited"] == []  # paced replies are retried, not lost
    top, thread = shown(slack, INCIDENT, ts)
    request = slack.ws.message(INCIDENT, ts)
    assert request is not None and request["blocks"][0]["type"] == "header"
    assert "DANGER ZONE" in request["blocks"][0]["text"]["text"]
    for must in ("*Status:* ⏳ Waiting for approval", "*Totals:* ", "across 300 tenant database(s)",
                 "*Backup relied on:* run `RB-0001-backup-20261130T030000Z`", "*Rule:* another approver reacts",
                 "*Approvers:* <!subteam^S0LEADS>", "the per-tenant plan for all 300 follows in this message's thread"):
        assert must in top, must
    for i in range(300):  # every tenant's plan is readable: in the request or in its thread
        assert f"`tenant_{i:03d}`" in top + thread
    assert "<!channel>" not in top + thread and "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;" in thread

    # The status changes in place, and stays visible at the same count.
    executed = approval(ApprovalStatus.EXECUTED)
    results = [TenantResult(approval_id="AP-1", incident_id="RB-0001", db=t.db, ok=i != 7, at=T0, modified=t.now.cases,
                            error=None if i != 7 else f"boom {HOSTILE}") for i, t in enumerate(plan.tenants)]
    messenger.update(INCIDENT, ts, presenter().approval_request(executed, plan, results))
    assert [r for r in slack.rejections if r.error != "ratelimited"] == []
    top, _ = shown(slack, INCIDENT, ts)
    assert "*Status:* 🏁 Done" in top and "fields removed on 299 tenant(s)" in top and "`tenant_007`" in top


def test_long_rca_answers_all_reach_slack_split_at_line_boundaries(slack: Emulator,
                                                                  messenger: SlackMessenger) -> None:
    answer = "\n".join(f"line {n}: the AI server & the backend disagreed about <schema> v{n}" for n in range(30))
    assert len(answer) > 1900
    rca = Rca(what_went_wrong=answer[:2000], errors=answer[:2000].replace("line", "error"),
              phase="Phase 3", causes=["ai_server"], why=answer[:2000].replace("line", "why"),
              prevention=answer[:2000].replace("line", "fix"), by="U0COMMANDER", at=T0)
    ts = messenger.post(INCIDENT, presenter().rca(rca))
    assert slack.rejections == []
    top, thread = shown(slack, INCIDENT, ts)
    everything = top + "\n" + thread
    for word in ("line", "error", "why", "fix"):  # the four free-text answers, whole
        assert f"{word} 29: the AI server &amp; the backend disagreed about &lt;schema&gt; v29" in everything, word
    message = slack.ws.message(INCIDENT, ts)
    assert message is not None
    for block in message["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= SECTION_MAX and entities_whole(block["text"]["text"])


def test_a_long_stakeholder_update_splits_only_between_lines_and_never_inside_an_entity(
        slack: Emulator, messenger: SlackMessenger) -> None:
    detail = ("students & professors <could not> log in; " * 60).strip()  # one 2,500-character line
    incident = Incident(id="RB-0001", number=1, channel=INCIDENT, target="/opt/app", commander="U0COMMANDER",
                        reason=f"login fails {HOSTILE}", created_at=T0,
                        milestones={Milestone.ISSUE_DETECTED: T0, Milestone.ROLLBACK_STARTED: T0},
                        comms_details=CommsDetails(students=detail, professors=detail, eta="Friday 12:00"))
    message = presenter().stakeholder_update(build_update(CONFIG, incident, [], "status update"))
    ts = messenger.post(STAKEHOLDERS, message)
    assert slack.rejections == []
    posted = slack.ws.message(STAKEHOLDERS, ts)
    assert posted is not None and posted["blocks"][0]["type"] == "header"
    assert "<!channel>" not in str(posted)  # neither in the notification nor in the blocks
    sections = [b["text"]["text"] for b in posted["blocks"] if b["type"] == "section" and "text" in b]
    assert len(sections) >= 2 and all(entities_whole(s) and len(s) <= SECTION_MAX for s in sections)
    joined = " ".join(sections)  # a long line continues in the next section, cut at a space
    assert joined.count("students &amp; professors &lt;could not&gt; log in;") == 120
    assert "ETA for fix: Friday 12:00" in joined and "login fails &lt;!channel&gt;" in joined


def test_the_panel_notification_text_is_escaped(slack: Emulator, messenger: SlackMessenger) -> None:
    incident = Incident(id="RB-0001", number=1, channel=INCIDENT, target="/opt/app", commander="U0COMMANDER",
                        reason=HOSTILE, created_at=T0,
                        milestones={Milestone.ISSUE_DETECTED: T0, Milestone.ROLLBACK_STARTED: T0})
    ts = messenger.post(INCIDENT, presenter().panel(incident, []))
    posted = slack.ws.message(INCIDENT, ts)
    assert posted is not None
    assert "<!channel>" not in posted["text"] and "<https://evil.example|click>" not in posted["text"]
    assert "&lt;!channel&gt;" in str(posted["blocks"])


@pytest.mark.parametrize("text", [
    "a" * 2990 + " &amp; " + "b" * 50,
    "x" * 2995 + "<https://example.com/a|label with spaces>" + " tail",
    ("word " * 1000).strip(),
    "\n".join("&lt;" * 100 for _ in range(40)),
])
def test_split_text_never_exceeds_the_limit_nor_cuts_an_entity(text: str) -> None:
    chunks = split_text(text)
    assert all(len(c) <= SECTION_MAX and entities_whole(c) for c in chunks)
    assert re.sub(r"\s+", "", "".join(chunks)) == re.sub(r"\s+", "", text)  # nothing lost, only whitespace


def test_an_oversized_message_still_reaches_slack(slack: Emulator, messenger: SlackMessenger) -> None:
    text = "\n".join(f"{n}: " + "x" * 200 for n in range(1000))  # 200 kB, 70+ sections: more than 50 blocks
    ts = messenger.post(INCIDENT, presenter().note((text,)))
    assert slack.rejections == []
    top, thread = shown(slack, INCIDENT, ts)
    assert "999: " in thread and "0: " in top
