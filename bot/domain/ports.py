"""The ports the domain talks through. Adapters live outside the domain: ``bot.slack`` (Slack's Web API),
``bot.slack_ui`` (the presenter) and ``bot.app`` (jobs); tests may pass fakes for pure-domain unit tests.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bot.audit import AuditEvent
    from bot.domain.approvals import Approval, DangerPlan, TenantResult
    from bot.domain.checks import ActiveRollback, ChartMark, CheckResult, CheckState, CheckView, WatchVerdict
    from bot.domain.incident import Incident, Rca
    from bot.domain.runs import StepRun
    from bot.domain.updates import Update
    from bot.text import Rich


#: What a person typed into a form: one text per field, a list for checkboxes, None when left empty.
FormValues = Mapping[str, str | list[str] | None]


def form_text(values: FormValues, name: str) -> str:
    value = values.get(name)
    return value if isinstance(value, str) else ""


def form_choices(values: FormValues, name: str) -> list[str]:
    value = values.get(name)
    return list(value) if isinstance(value, list) else []


@dataclass(frozen=True)
class Message:
    """A message ready to send. The domain never looks inside: only the presenter builds one."""

    text: str
    blocks: Sequence[dict[str, object]] = field(default_factory=list)
    # Long content the presenter moved out of the message (it still must be delivered): thread replies.
    overflow: Sequence[Message] = field(default_factory=list)


@dataclass(frozen=True)
class Upload:
    """A file ready to upload, with what people (and screen readers) see of it before opening it."""

    filename: str
    content: bytes
    title: str
    comment: str | None = None  # the message the file is shared with
    alt_text: str | None = None  # an image's description


@dataclass(frozen=True)
class View:
    """A modal, ready to open."""

    body: dict[str, object]


@dataclass(frozen=True)
class Said:
    """A message someone posted: who, what (Slack's text, as typed) and when."""

    user: str
    text: str
    ts: str


@dataclass(frozen=True)
class PostKey:
    """Identifies a post so it can be found again after a crash (Slack message metadata)."""

    event_type: str
    payload: dict[str, str]


class Messenger(Protocol):
    """Posting to Slack. ``bot.slack.SlackMessenger`` implements it over the Web API."""

    def post(self, channel: str, message: Message, *, thread_ts: str | None = None,
             key: PostKey | None = None) -> str: ...

    def update(self, channel: str, ts: str, message: Message) -> None: ...

    def ephemeral(self, channel: str, user: str, message: Message, *, thread_ts: str | None = None) -> None: ...

    def permalink(self, channel: str, ts: str) -> str | None: ...

    def upload(self, channel: str, thread_ts: str | None, filename: str, content: bytes, title: str,
               comment: str | None = None, *, alt_text: str | None = None) -> None: ...

    def open_view(self, trigger_id: str, view: View) -> None: ...

    def find_post(self, channel: str, key: PostKey, since: datetime) -> str | None:
        """The ts of a message the bot posted with ``key`` since ``since`` (conversations.history)."""
        ...

    def said(self, channel: str, ts: str) -> Said | None:
        """One message, top-level or in a thread (conversations.replies), or None if it is not there."""
        ...


class Directory(Protocol):
    """The workspace's people and user groups. ``bot.slack.SlackDirectory`` implements it."""

    def group_members(self, handle: str) -> set[str]: ...

    def group_id(self, handle: str) -> str | None: ...

    def display_name(self, user: str) -> str | None: ...

    def find_user(self, name: str) -> str | None:
        """The id of the one person whose handle, display name or real name is `name` (None: nobody, or
        more than one)."""
        ...


class Jobs(Protocol):
    """Background jobs the composition root schedules; the domain can only ask for a sweep soon."""

    def nudge(self) -> None: ...


class Metrics(Protocol):
    """What the domain counts about its own work, for the operators' dashboards (``bot.app.metrics`` implements it
    with Prometheus). Each call is a few additions in memory: it never waits on anything."""

    def step_finished(self, step: str, ok: bool, seconds: float) -> None:
        """A runbook step ended, succeeded or failed, after ``seconds``."""
        ...

    def danger_run(self, action: str, event: str) -> None:
        """A danger-zone run (``cleanup``/``restore``): ``started``, ``resumed`` (taken over or after a restart),
        ``tenant_done``, ``finished`` or ``failed``."""
        ...

    def danger_running(self, action: str) -> AbstractContextManager[None]:
        """``with metrics.danger_running(action):`` around the time this process executes a danger-zone run."""
        ...

    def check_result(self, check: str, ok: bool, seconds: float | None) -> None:
        """A scheduled health check measured the target (``seconds``: its latency, None if it never answered)."""
        ...


class NoMetrics:
    """Counts nothing: for domain unit tests that build their own ``Deps``."""

    def step_finished(self, step: str, ok: bool, seconds: float) -> None:
        return None

    def danger_run(self, action: str, event: str) -> None:
        return None

    @contextmanager
    def danger_running(self, action: str) -> Iterator[None]:
        yield

    def check_result(self, check: str, ok: bool, seconds: float | None) -> None:
        return None


class Presenter(Protocol):
    """Turns domain data into messages. ``bot.slack_ui.SlackPresenter`` is the one implementation."""

    def panel(self, incident: Incident, runs: list[StepRun]) -> Message: ...

    def checklists(self, incident: Incident) -> Message: ...

    def kickoff(self, incident: Incident, contacts: list[str]) -> Message: ...

    def note(self, text: Rich) -> Message: ...

    def private(self, text: Rich) -> Message: ...

    def step(self, title: str, actor: str, plan: Rich, lines: list[Rich], state: str, text: Rich,
             details: list[Rich]) -> Message:
        """One step run's message: state is "running", "succeeded" or "failed"."""
        ...

    def step_interrupted(self, name: str, who: str) -> Message: ...

    def approval_request(self, item: Approval, plan: DangerPlan, results: list[TenantResult]) -> Message: ...

    def danger_progress(self, approval: Approval, done: int, total: int, last: str | None) -> Message: ...

    def danger_outcome(self, approval: Approval, plan: DangerPlan, results: list[TenantResult]) -> Message: ...

    def stakeholder_update(self, update: Update) -> Message: ...

    def email(self, update: Update) -> tuple[str, str]: ...

    def alert(self, state: CheckState, result: CheckResult, criteria: list[str],
              active: ActiveRollback | None = None, notify: list[str] | None = None) -> Message:
        """A check changed state. When failing: a Start rollback button per criterion met, or, while a rollback
        is already active (``active``), which one; ``notify``: whom it mentions (the commanders)."""
        ...

    def health_chart(self, checks: list[CheckView], now: datetime, window: timedelta,
                     marks: Sequence[ChartMark] = ()) -> Upload:
        """A PNG of each check's status and latency up to ``now`` (at most ``window``, fitted to the data), with
        its limit, its failures and the incident's events (``marks``) as labelled lines."""
        ...

    def watch_verdict(self, verdict: WatchVerdict) -> Message: ...

    def rca(self, record: Rca) -> Message: ...

    def follow_ups(self, incident: Incident, items: list[str]) -> Message: ...

    def followup_reminder(self, incident: Incident, number: int, days_open: int, every_days: int) -> Message: ...

    def hotfix_offer(self, branch: str, head: str, remote: str, pushable: bool) -> Message: ...

    def comms_form(self, incident: Incident, reply_to: str | None = None) -> View:
        """``reply_to``: where the form was opened from (opaque to the domain), handed back when it is saved."""
        ...

    def rca_form(self, incident: Incident) -> View: ...

    def postmortem(self, incident: Incident, runs: list[StepRun], approvals: list[Approval],
                   events: list[AuditEvent], names: dict[str, str]) -> str: ...
