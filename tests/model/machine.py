"""A reference model of one incident and the rules that drive the real bot through random paths.

Rules are what people and the world do: commands (by the commander, an approver, a bystander), panel buttons,
reactions ✅/❌/👍 and their removal on the DANGER ZONE requests, *Post now*, the safer alternatives,
restarts of the bot on the same store and data folder, and Slack faults (429 with Retry-After, 500) queued on
a Web API method. After every rule the machine waits for a positive sign (a reply, a message, a redraw) and
then for the bot's own work to drain, and the invariants compare what people would see (the emulator's
messages, the tenant databases, the stakeholder channel) with the store and with the model.

A violation raises ``Violation`` naming its invariant, unless that invariant is listed in ``Report.known``:
then it is only counted. The soak runs batches and adds each new failure to ``known`` so the search goes on
past it (the first, shrunk sequence of each is kept in the report).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from bot.dev.emulator import Emulator
from bot.domain.approvals import Approval, ApprovalStatus, DangerAction
from bot.domain.runs import StepName, StepRun, StepStatus
from bot.domain.steps import TITLES
from tests.conftest import APPROVER, BYSTANDER, COMMANDER, DBA, INCIDENT, STAKEHOLDERS, content
from tests.model.world import World, tenant_data

USERS = {"casey": COMMANDER, "alex": APPROVER, "dana": DBA, "blake": BYSTANDER}
APPROVERS = {APPROVER, DBA}
INCIDENT_ID = "RB-0001"
REPLY_S = 45.0  # a reply (or any visible sign) must come within this long
SETTLE_S = 120.0  # and the bot's work must drain within this long (a real rebuild or a cleanup takes a while)
FIX_STEPS = (StepName.REVERT, StepName.REBUILD, StepName.RESTART, StepName.FLAG, StepName.PARTIAL,
             StepName.SAFE_REVERT, StepName.HOTFIX)


class Violation(AssertionError):
    def __init__(self, name: str, detail: str) -> None:
        super().__init__(f"[{name}] {detail}")
        self.name = name


@dataclass
class Report:
    """What a run tried and found: printed at the end of the soak and written to build/soak-report.json."""

    rules: Counter[str] = field(default_factory=Counter)
    seconds: Counter[str] = field(default_factory=Counter)  # rule → wall time spent in it (and its checks)
    sequences: int = 0
    steps: int = 0
    violations: Counter[str] = field(default_factory=Counter)
    known: set[str] = field(default_factory=set)
    failures: dict[str, str] = field(default_factory=dict)  # invariant → the shortest sequence Hypothesis printed
    first_seen: dict[str, str] = field(default_factory=dict)  # invariant → its first violation, unshrunk
    last_log: list[str] = field(default_factory=list)  # the last sequence run, in words (after a failure: shrunk)
    flaky: int = 0  # batches Hypothesis could not replay the same way (timing), with no violation and no crash
    started: float = field(default_factory=time.monotonic)

    def as_json(self) -> dict[str, Any]:
        return {"sequences": self.sequences, "steps": self.steps, "rules": dict(self.rules.most_common()),
                "rule_seconds": {k: round(v, 1) for k, v in self.seconds.most_common()},
                "violations": dict(self.violations), "failures": self.failures,
                "first_seen": self.first_seen, "flaky": self.flaky,
                "seconds": round(time.monotonic() - self.started, 1)}


class WorkTracker:
    """Counts the bot's work in flight on its pools (listeners, answers after the ack, danger runs): the
    'drained' signal after each rule, instead of a sleep."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.inflight = 0

    def wrap(self, pool: Any) -> None:
        original = pool.submit

        def submit(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
            with self._lock:
                self.inflight += 1
            try:
                future: Future[Any] = original(fn, *args, **kwargs)
            except BaseException:
                self._done(None)
                raise
            future.add_done_callback(self._done)
            return future

        pool.submit = submit

    def _done(self, _future: object) -> None:
        with self._lock:
            self.inflight -= 1


def next_line(message: dict[str, Any] | None) -> str:
    for block in (message or {}).get("blocks") or []:
        if block.get("block_id") == "panel_next":
            text = block.get("text")
            return str(text.get("text", "")) if isinstance(text, dict) else str(block)
    return ""


class RollbackMachine(RuleBasedStateMachine):
    world: World
    report: Report

    def __init__(self) -> None:
        super().__init__()
        # the model: what people did and what must follow from it
        self.started = False
        self.closed = False
        self.requests: list[str] = []  # the DANGER ZONE requests' ts, oldest first
        self.reactions: set[tuple[str, str, str]] = set()  # (user name, ts, emoji) currently on a request
        self.posted_previews: dict[str, int] = {}  # comms preview ts → stakeholder posts its Post now made
        self.last_rule: tuple[str, float] | None = None
        self.stalls: list[Any] = []  # the incident's stalled step after each kill -9 (None: nothing stalled)
        self.log: list[str] = []

    # ---- plumbing ------------------------------------------------------------------------------------------
    @property
    def emu(self) -> Emulator:
        assert self.world.emulator is not None
        return self.world.emulator

    @property
    def store(self) -> Any:
        assert self.world.bot is not None
        return self.world.bot.services.store

    def _track(self) -> None:
        services = self.world.bot.services  # type: ignore[union-attr]
        self.tracker = WorkTracker()
        for pool in (services.listeners, services.acks._pool, services.executor._pool):
            self.tracker.wrap(pool)

    def fingerprint(self) -> tuple[int, int]:
        ws = self.emu.ws
        messages = [m for c in (INCIDENT, STAKEHOLDERS) for m in ws.channel_messages(c, include_replies=True)]
        return len(ws.ephemerals_for()), hash(tuple((m["ts"], m.get("text"), str(m.get("blocks")),
                                                     str(m.get("reactions"))) for m in messages))

    def busy(self) -> str | None:
        if self.tracker.inflight:
            return f"{self.tracker.inflight} task(s) in flight"
        incident = self.store.get_incident(INCIDENT_ID)
        if incident is not None and incident.busy is not None:
            return f"the incident is busy with {incident.busy.name}"
        active = {i.id for i in self.store.active_incidents()}
        moving = [a for a in self.store.approvals()  # every incident's, as in check_all
                  if a.status is ApprovalStatus.RUNNING or (a.status is ApprovalStatus.APPROVED
                                                            and a.incident_id in active)]
        if moving:
            return f"request {moving[0].id} is {moving[0].status.value}"
        return None

    def settle(self, what: str, before: tuple[int, int] | None, *, sign: bool = True) -> None:
        """Wait for a visible sign of the answer (unless none is due), then for the bot's work to drain."""
        if sign and before is not None:
            deadline = time.monotonic() + REPLY_S
            while self.fingerprint() == before:
                if time.monotonic() > deadline:
                    self.violate("silent", f"{what}: nothing visible happened within {REPLY_S:.0f}s")
                    break
                time.sleep(0.05)
        deadline = time.monotonic() + SETTLE_S
        quiet_since: float | None = None
        while True:
            state = self.busy()
            now = time.monotonic()
            if state is None:
                quiet_since = quiet_since or now
                if now - quiet_since >= 0.2:  # quiet on several looks in a row: no hand-over between pools
                    return
            else:
                quiet_since = None
            if now > deadline:
                self.violate("stuck", f"{what}: the bot did not settle within {SETTLE_S:.0f}s ({state})")
                return
            time.sleep(0.05)

    def violate(self, name: str, detail: str) -> None:
        self.report.violations[name] += 1
        if name not in self.report.first_seen:  # kept even if Hypothesis ends up reporting another failure
            said = "\n".join(f"  {line}" for line in self.log)
            self.report.first_seen[name] = f"{detail}\nafter:\n{said}"
        if name not in self.report.known:
            raise Violation(name, detail)

    def lap(self, name: str | None) -> None:
        """The wall time of the rule that ran last (with its waits and checks) goes to its name."""
        now = time.monotonic()
        if self.last_rule is not None:
            self.report.seconds[self.last_rule[0]] += now - self.last_rule[1]
        self.last_rule = (name, now) if name else None

    def did(self, name: str, text: str) -> None:
        self.lap(name)
        self.last_did = name
        self.report.rules[name] += 1
        self.report.steps += 1
        self.log.append(text)

    def slash(self, user: str, text: str) -> None:
        before = self.fingerprint()
        audit = len(self.store.audit_events())
        self.emu.slash(user, "incident-rollback", text).wait(30)
        self.settle(f"{user}: /rollback {text}", before)
        self.check_no_false_error(user, audit, f"/rollback {text}")

    def check_no_false_error(self, user: str, audit_before: int, what: str) -> None:
        """A 'Something went wrong' to the person whose action the audit log shows done is a lie."""
        uid = USERS[user]
        events = self.store.audit_events()[audit_before:]
        errors = [e for e in self.emu.ws.ephemerals_for(uid) if "Something went wrong" in e.text]
        if errors and len(errors) > self.errors_seen.get(uid, 0):
            self.errors_seen[uid] = len(errors)
            done = [e.action for e in events if e.actor == uid and not e.action.endswith(("refused", "denied"))]
            if done:
                self.violate("false-error", f"{what} by {user}: told 'Something went wrong' but the audit log shows "
                                            f"{done} done by them")

    # ---- examples begin and end ------------------------------------------------------------------------------
    @initialize(backed_up=st.booleans())
    def begin(self, backed_up: bool = False) -> None:
        """A started incident; in half the examples with a backup already taken, so the danger zone (which needs
        one) is in reach of the search: in the first 1,250 soak steps, no request was ever reacted to."""
        self.last_rule = ("(begin the example)", time.monotonic())
        self.world.begin()
        self.report.sequences += 1
        self.errors_seen: dict[str, int] = {}
        self.last_did: str | None = None
        self._track()
        self.log.append("casey: /rollback start health returns 500 after Phase 3")
        self.slash("casey", "start health returns 500 after Phase 3")
        self.started = self.store.get_incident(INCIDENT_ID) is not None
        if not self.started:
            self.violate("silent", "/rollback start opened no incident")
        if backed_up:
            self.log.append("casey: /rollback backup")
            self.slash("casey", "backup")

    def teardown(self) -> None:
        self.lap("(end of the example)")
        self.report.last_log = list(self.log)
        try:
            if self.world.bot is not None:
                self.settle("the end of the example", None, sign=False)
                self.check_all()
        finally:
            self.world.end()
            self.lap(None)

    # ---- rules: the commander's commands ---------------------------------------------------------------------
    @rule(reason=st.sampled_from(["health 500 after Phase 3", "model run"]))
    def start(self, reason: str) -> None:
        """A second start while one is active: answered privately with a link to the active one."""
        self.did("start again", f"casey: /rollback start {reason}")
        self.slash("casey", f"start {reason}")
        if self.store.get_incident(INCIDENT_ID) is not None:
            self.started = True

    @precondition(lambda self: self.started)
    @rule(step=st.sampled_from(["backup", "backup --again", "revert", "rebuild", "restart", "verify"]))
    def step(self, step: str) -> None:
        self.did(f"step {step}", f"casey: /rollback {step}")
        self.slash("casey", step)

    @precondition(lambda self: self.started)
    @rule(text=st.sampled_from(["flag ENABLE_REALTIME_TIPS=false", "flag undo", "partial src/server.js",
                                "revert --safe"]))
    def alternative(self, text: str) -> None:
        self.did(f"alternative {text.split()[0]}{' --safe' if '--safe' in text else ''}", f"casey: /rollback {text}")
        self.slash("casey", text)

    @precondition(lambda self: self.started)
    @rule(text=st.sampled_from(["cleanup", "restore all"]))
    def danger(self, text: str) -> None:
        self.did(text, f"casey: /rollback {text}")
        known = {str(m["ts"]) for m in self.request_messages()}
        self.slash("casey", text)
        self.requests += [str(m["ts"]) for m in self.request_messages() if str(m["ts"]) not in known]

    @precondition(lambda self: self.started)
    @rule(text=st.sampled_from(["cleanup", "restore all"]), approver=st.sampled_from(["alex", "dana"]))
    def danger_run(self, text: str, approver: str) -> None:
        """The usual danger-zone path in one rule (request, then an approver's ✅), so the search reaches what
        comes after an executed cleanup (backup --again, a second cleanup, restore all) in few steps."""
        self.danger(text)
        if self.requests:
            self.react(approver, "white_check_mark", 0)

    @precondition(lambda self: self.started)
    @rule(text=st.sampled_from(["restored", "close", "close --force the model says so", "note checked the logs",
                                "status"]))
    def lifecycle(self, text: str) -> None:
        self.did(text.split()[0] + (" --force" if "--force" in text else ""), f"casey: /rollback {text}")
        self.slash("casey", text)
        incident = self.store.get_incident(INCIDENT_ID)
        self.closed = incident is not None and not incident.active

    @precondition(lambda self: self.started)
    @rule(clicks=st.integers(min_value=1, max_value=2), old=st.booleans())
    def comms_post(self, clicks: int, old: bool) -> None:
        """`/rollback comms`, then *Post now* on the preview (a double click, or an older preview)."""
        self.did("comms post now", f"casey: /rollback comms, Post now ×{clicks}{' (an older preview)' if old else ''}")
        self.slash("casey", "comms")
        previews = [e.ts for e in self.emu.ws.ephemerals_for(COMMANDER) if "rollback_comms_post" in str(e.blocks)]
        if not previews:
            return
        ts = previews[0] if old else previews[-1]
        for _ in range(clicks):
            before, posts = self.fingerprint(), self.update_posts()
            try:
                self.emu.click("casey", "incident-rollback", ts, "rollback_comms_post").wait(30)
            except KeyError:
                return
            self.settle("Post now", before)
            if self.update_posts() > posts:
                self.posted_previews[ts] = self.posted_previews.get(ts, 0) + self.update_posts() - posts
        again = {ts: n for ts, n in self.posted_previews.items() if n > 1}
        if again:
            self.violate("preview-posted-twice", f"one comms preview was posted {max(again.values())} times "
                                                 "(a preview posts at most once, whatever the clicks)")

    def update_posts(self) -> int:
        """Stakeholder posts made by *Post now* (their metadata key is `update-<click>`)."""
        return sum(str(((m.get("metadata") or {}).get("event_payload") or {}).get("key", "")).startswith("update-")
                   for m in self.emu.ws.channel_messages(STAKEHOLDERS))

    @precondition(lambda self: self.started)
    @rule(step=st.sampled_from(["backup", "revert", "rebuild", "restart", "verify"]))
    def panel_button(self, step: str) -> None:
        self.did(f"button {step}", f"casey: clicks the panel's {step} button")
        incident = self.store.get_incident(INCIDENT_ID)
        if incident is None or incident.panel_ts is None:
            return
        before = self.fingerprint()
        audit = len(self.store.audit_events())
        try:
            self.emu.click("casey", "incident-rollback", incident.panel_ts, f"rollback_step:{step}").wait(30)
        except KeyError:  # no such button on the panel now (e.g. after the close)
            return
        self.settle(f"the {step} button", before)
        self.check_no_false_error("casey", audit, f"the {step} button")

    # ---- rules: the wrong people ---------------------------------------------------------------------------
    @precondition(lambda self: self.started)
    @rule(user=st.sampled_from(["alex", "blake"]),
          text=st.sampled_from(["backup", "backup --again", "revert", "verify", "cleanup", "restore all",
                                "note I was here", "followup @alex check the logs", "close --force why", "restored",
                                "flag ENABLE_REALTIME_TIPS=false", "partial src/server.js", "revert --safe",
                                "handover @alex"]))
    def not_a_commander(self, user: str, text: str) -> None:
        """Only commanders run commands (README, Security model): anyone else is refused and nothing changes."""
        self.did(f"{'approver' if user == 'alex' else 'bystander'} command", f"{user}: /rollback {text}")
        before = self.record()
        self.slash(user, text)
        after = self.record()
        if after != before:
            self.violate("role", f"{user} (not a commander) ran /rollback {text} and it changed "
                                 f"{self.diff(before, after)}")

    def record(self) -> dict[str, Any]:
        incident = self.store.get_incident(INCIDENT_ID)
        return {"steps": len(self.store.step_runs(INCIDENT_ID)), "requests": len(self.store.approvals(INCIDENT_ID)),
                "timeline": len(incident.timeline) if incident else 0,
                "state": incident.state.value if incident else None,
                "commander": incident.commander if incident else None}

    @staticmethod
    def diff(before: dict[str, Any], after: dict[str, Any]) -> str:
        return ", ".join(f"{k}: {before[k]} → {after[k]}" for k in before if before[k] != after[k])

    # ---- rules: reactions ------------------------------------------------------------------------------------
    @precondition(lambda self: bool(self.requests))
    @rule(user=st.sampled_from(list(USERS)), emoji=st.sampled_from(["white_check_mark", "x", "+1"]),
          which=st.integers(min_value=0, max_value=3))
    def react(self, user: str, emoji: str, which: int) -> None:
        ts = self.requests[-1 - which % len(self.requests)]
        if (user, ts, emoji) in self.reactions:
            return
        self.did(f"react {emoji} ({'approver' if USERS[user] in APPROVERS else user})",
                 f"{user}: :{emoji}: on request {self.requests.index(ts) + 1}")
        before_approval = self.store.approval_for_message(ts)
        before = self.fingerprint()
        audit = len(self.store.audit_events())
        self.emu.react(user, "incident-rollback", ts, emoji).wait(30)
        self.reactions.add((user, ts, emoji))
        # a reaction that is no decision (👍, or ✅ on a request that is no longer open) may get no visible answer
        decides = emoji != "+1" and before_approval is not None and before_approval.open
        self.settle(f"{user}'s :{emoji}:", before, sign=decides)
        self.check_no_false_error(user, audit, f":{emoji}: on a request")

    @precondition(lambda self: bool(self.requests))
    @rule(user=st.sampled_from(["alex", "dana"]))
    def approve(self, user: str) -> None:
        """What usually happens next: an approver ✅ on the newest request (the generic `react` reaches the rest)."""
        self.react(user, "white_check_mark", 0)

    @precondition(lambda self: bool(self.reactions))
    @rule(data=st.data())
    def unreact(self, data: st.DataObject) -> None:
        user, ts, emoji = data.draw(st.sampled_from(sorted(self.reactions)))
        self.did(f"unreact {emoji}", f"{user}: removes :{emoji}: from request {self.requests.index(ts) + 1}")
        before = self.fingerprint()
        self.emu.react(user, "incident-rollback", ts, emoji, added=False).wait(30)
        self.reactions.discard((user, ts, emoji))
        self.settle(f"{user} removes :{emoji}:", before, sign=False)

    # ---- rules: the world ------------------------------------------------------------------------------------
    # Never twice in a row: the second restart would find what the first left (a bot that has recovered and has
    # no work in flight, as settle() waits for), so it tries nothing new. Without this the search spent a fifth of
    # its steps, and a quarter of its time, restarting: Hypothesis sorts the rules with the fewest arguments first
    # and draws the first one more often than the others, and this is the one rule with none.
    @precondition(lambda self: self.last_did != "restart bot")
    @rule()
    def restart_bot(self) -> None:
        """The process stops (after its work drained, or in the middle of it) and a new one starts."""
        self.did("restart bot", "the bot restarts (same store, same data folder)")
        self.world.restart_bot()
        self._track()
        self.settle("the restart", None, sign=False)

    @precondition(lambda self: self.started)
    @rule(what=st.sampled_from(["backup --again", "flag ENABLE_REALTIME_TIPS=false", "approve"]))
    def restart_mid_work(self, what: str) -> None:
        """The bot stops while it is working: a step, an alternative, or the danger run an approval starts."""
        ts = self.requests[-1] if self.requests else None
        if what == "approve" and (ts is None or ("alex", ts, "white_check_mark") in self.reactions):
            return  # nothing to approve: no restart either, and none counted (nor taken for one by restart_bot)
        self.did(f"restart during {what.split()[0]}", f"casey/alex: {what}, and the bot restarts as soon as it shows")
        before = self.fingerprint()
        if what == "approve":
            assert ts is not None
            self.emu.react("alex", "incident-rollback", ts, "white_check_mark").wait(30)
            self.reactions.add(("alex", ts, "white_check_mark"))
        else:
            self.emu.slash("casey", "incident-rollback", what).wait(30)
        deadline = time.monotonic() + REPLY_S
        while self.fingerprint() == before and time.monotonic() < deadline:  # it has begun (or answered)
            time.sleep(0.02)
        self.world.restart_bot()
        self._track()
        self.settle(f"the restart during {what}", None, sign=False)

    @precondition(lambda self: self.started and self.world.killable)
    @rule(what=st.sampled_from(["backup --again", "flag ENABLE_REALTIME_TIPS=false", "approve", "restore all"]),
          after=st.sampled_from([0.0, 0.05, 0.2, 0.6]))
    def kill_mid_work(self, what: str, after: float) -> None:
        """The bot's own OS process is killed with SIGKILL while it works (a step, an alternative, the danger
        run an approval starts, a restore), ``after`` seconds into it; a new process recovers on the same store."""
        ts = self.requests[-1] if self.requests else None
        if what == "approve" and (ts is None or ("alex", ts, "white_check_mark") in self.reactions):
            return  # nothing to approve: no kill either, and none counted
        self.did(f"kill -9 during {what.split()[0]}",
                 f"casey/alex: {what}, and the bot process is killed (SIGKILL) {after}s after it shows")
        before = self.fingerprint()

        def act() -> None:
            if what == "approve":
                assert ts is not None
                self.emu.react("alex", "incident-rollback", ts, "white_check_mark").wait(30)
                self.reactions.add(("alex", ts, "white_check_mark"))
            else:
                self.emu.slash("casey", "incident-rollback", what).wait(30)

        shown: list[float] = []

        def begun() -> bool:
            if not shown and self.fingerprint() != before:
                shown.append(time.monotonic())
            return bool(shown) and time.monotonic() - shown[0] >= after

        self.world.kill_mid(act, begun, within=REPLY_S)
        self._track()
        self.settle(f"the kill -9 during {what}", None, sign=False)
        incident = self.store.get_incident(INCIDENT_ID)
        self.stalls.append(incident.lifecycle.stall if incident else None)  # what the kill left, for regressions

    @rule(method=st.sampled_from(["chat.postMessage", "chat.update", "chat.postEphemeral", "usergroups.list",
                                  "conversations.history", "usergroups.users.list"]),
          status=st.sampled_from([429, 500]), times=st.integers(min_value=1, max_value=2))
    def slack_fault(self, method: str, status: int, times: int) -> None:
        self.did(f"fault {status}", f"Slack: the next {times} {method} call(s) answer {status}")
        self.emu.fail_next(method, status, retry_after=1, times=times)

    @rule(seconds=st.sampled_from([1.0, 3.0, 6.0]))
    def slack_records_late(self, seconds: float) -> None:
        """Slack accepts posts at once but shows them in history only later (within comms.lookup_s)."""
        self.did("fault post recorded late", f"Slack: posts from now on reach the history {seconds}s late")
        self.emu.record_late(seconds)

    @rule(seconds=st.sampled_from([0.5, 1.5]))
    def slack_slow_history(self, seconds: float) -> None:
        self.did("fault slow history", f"Slack: conversations.history answers {seconds}s late from now on")
        self.emu.slow_calls("conversations.history", seconds)

    # ---- invariants --------------------------------------------------------------------------------------------
    @invariant()
    def check_all(self) -> None:
        if self.world.bot is None:
            return
        approvals = self.store.approvals()  # every incident's: after a close, `start` opens the next one
        self.two_people(approvals)
        self.restore_gives_back_the_data(approvals)
        self.each_update_once()
        self.results_told_truthfully(approvals)
        self.audit_chain()
        self.next_line_agrees()
        self.buttons_can_work()

    def two_people(self, approvals: list[Approval]) -> None:
        for approval in approvals:
            wrong = [a for a in approval.approvers if a == approval.requester or a not in APPROVERS]
            if wrong:
                self.violate("two-person", f"{approval.id} counts {wrong} as approvers "
                                           f"(requester {approval.requester})")
        if tenant_data(self.world.sandbox) != self.world.start_data:
            approved = [a for a in approvals if a.approvers and a.status in (
                ApprovalStatus.RUNNING, ApprovalStatus.EXECUTED, ApprovalStatus.FAILED)]
            if not approved:
                self.violate("two-person", "the tenant data changed without an approved request")

    def restore_gives_back_the_data(self, approvals: list[Approval]) -> None:
        finished = sorted((a for a in approvals if a.status is ApprovalStatus.EXECUTED and a.finished_at),
                          key=lambda a: a.finished_at)  # type: ignore[arg-type,return-value]
        if not finished or finished[-1].action is not DangerAction.RESTORE:
            return
        if any(a.status is ApprovalStatus.RUNNING for a in approvals):
            return
        now = tenant_data(self.world.sandbox)
        if now != self.world.start_data:
            differ = sorted(f"{db}.{name}: {len(now[db].get(name, []))} docs, before the first cleanup "
                            f"{len(docs)}" for db, cols in self.world.start_data.items() for name, docs in cols.items()
                            if now.get(db, {}).get(name) != docs)
            self.violate("restore", f"after `restore all` ({finished[-1].id}, from {finished[-1].backup_run}) the "
                                    f"tenant data differs from before the first cleanup: {differ[:3]}")

    def each_update_once(self) -> None:
        seen: Counter[str] = Counter()
        for message in self.emu.ws.channel_messages(STAKEHOLDERS):
            metadata = message.get("metadata")
            if metadata:
                seen[json.dumps(metadata, sort_keys=True)] += 1
        twice = {k: n for k, n in seen.items() if n > 1}
        if twice:
            self.violate("posted-twice", f"stakeholder updates posted more than once: {twice}")

    def results_told_truthfully(self, approvals: list[Approval]) -> None:
        incident = self.store.get_incident(INCIDENT_ID)
        if incident is None or incident.panel_ts is None:
            return
        runs: list[StepRun] = self.store.step_runs(INCIDENT_ID)
        thread = [m.get("text") or "" for m in self.emu.ws.thread(INCIDENT, incident.panel_ts)]
        for name in {run.step for run in runs}:
            title = TITLES[name]
            said_ok = sum(f"*{title}* —" in t and "— succeeded" in t for t in thread)
            said_failed = sum(f"*{title}* —" in t and "— failed" in t for t in thread)
            ok = sum(r.step is name and r.status is StepStatus.SUCCEEDED for r in runs)
            failed = sum(r.step is name and r.status is StepStatus.FAILED for r in runs)
            if said_ok > ok or said_failed > failed:
                self.violate("told-wrong", f"{title}: the thread says {said_ok} succeeded / {said_failed} failed, "
                                           f"the store has {ok} succeeded / {failed} failed")
        for approval in approvals:
            if approval.message_ts is None:
                continue
            shown = content(self.emu.ws.message(INCIDENT, approval.message_ts) or {})
            if approval.status is ApprovalStatus.EXECUTED and "❌ Failed after" in shown:
                self.violate("told-wrong", f"{approval.id} executed but its request says it failed")
            if approval.status is ApprovalStatus.FAILED and "🏁 Done" in shown:
                self.violate("told-wrong", f"{approval.id} failed but its request says done")

    def audit_chain(self) -> None:
        report = self.store.verify_audit()
        if not report.ok:
            self.violate("audit", f"the audit chain does not verify: {report}")

    def next_line_agrees(self) -> None:
        incident = self.store.get_incident(INCIDENT_ID)
        if incident is None or incident.panel_ts is None or incident.busy is not None:
            return
        line = next_line(self.emu.ws.message(INCIDENT, incident.panel_ts))
        if not line:
            return
        runs: list[StepRun] = [r for r in self.store.step_runs(INCIDENT_ID) if r.status is not StepStatus.RUNNING]
        verifies = [r for r in runs if r.step is StepName.VERIFY]
        fixed = [r for r in runs if r.succeeded and r.step in FIX_STEPS]
        restored = bool(verifies) and verifies[-1].succeeded and bool(fixed) and not any(
            r.step in FIX_STEPS and r.started_at > verifies[-1].started_at for r in runs)
        early = [c for c in ("/rollback backup`", "/rollback revert`") if c in line]
        if restored and early and incident.active:
            self.violate("next-line", f"service restored (verify passed after a fix) but the panel says {line!r}")
        if not incident.active and any(f"/rollback {s}`" in line for s in ("backup", "revert", "rebuild", "restart",
                                                                               "verify", "cleanup")):
            self.violate("next-line", f"the incident is closed but the panel says {line!r}")

    def buttons_can_work(self) -> None:
        """The panel offers *Revert code* only once a backup has succeeded: a button that can only refuse is not
        offered (issue 23). From the step runs themselves, not the lifecycle that draws the panel."""
        incident = self.store.get_incident(INCIDENT_ID)
        if incident is None or incident.panel_ts is None or incident.busy is not None:
            return
        panel = self.emu.ws.message(INCIDENT, incident.panel_ts) or {}
        backed_up = any(r.succeeded and r.step is StepName.BACKUP for r in self.store.step_runs(INCIDENT_ID))
        if "rollback_step:revert" in str(panel.get("blocks")) and not backed_up:
            self.violate("buttons", "the panel offers Revert code, but no backup has succeeded")

    def request_messages(self) -> list[dict[str, Any]]:
        return [m for m in self.emu.ws.channel_messages(INCIDENT)
                if m.get("blocks") and "DANGER ZONE" in str(m["blocks"][0])]
