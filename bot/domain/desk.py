"""What every feature service needs about incidents, in one place.

"The active incident in this channel", "change it with a conditional write", "hold it busy for one run",
"tell the thread", "tell a person privately", "redraw the panel", "record it in the audit log". Services
call these; none reaches into another's privates. What follows a change (milestones announced, the panel
redrawn) is :mod:`bot.domain.changes`; recovering a dead process's hold is :mod:`bot.domain.recovery`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from bot.domain.deps import Deps
from bot.domain.incident import Busy, BusyKind, Incident, IncidentRole
from bot.domain.ports import Message
from bot.errors import Conflict, NotFound
from bot.ids import SLASH_COMMAND
from bot.text import Code, Link, Person, Rich, rich

log = logging.getLogger(__name__)
PANEL_WAIT_S = 5.0  # how long a command waits for a just-started incident's control panel
MUTATE_ATTEMPTS = 12

Change = Callable[[Incident], None]


class Desk:
    """The incident access every feature service shares: look an incident up, change it with a conditional
    write, hold it busy for one run, say things in its thread or privately, redraw its panel, audit."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._drawing: dict[str, threading.Lock] = {}
        self._drawing_guard = threading.Lock()

    # ---- finding incidents ------------------------------------------------------------------------------
    def get(self, incident_id: str) -> Incident:
        incident = self.deps.store.get_incident(incident_id)
        if incident is None:
            raise NotFound(("There is no incident ", Code(incident_id), "."))
        return incident

    def active_in(self, channel: str) -> Incident:
        incident = self.deps.store.active_incident(f"channel:{channel}")
        if incident is None:
            raise NotFound("There is no active rollback in this channel.",
                           hint=("Start one with ", Code(f"{SLASH_COMMAND} start <what is broken>"), "."))
        return self.with_panel(incident)

    def latest_in(self, channel: str) -> Incident:
        """The active incident, or the one closed last (the RCA often comes after the close)."""
        try:
            return self.active_in(channel)
        except NotFound:
            found = self.deps.store.incidents_in_channel(channel)
            if not found:
                raise
            return found[-1]

    def with_panel(self, incident: Incident) -> Incident:
        """A command typed the instant `start` answered can find the incident a moment before its control
        panel is posted; wait for the panel (its thread is where everything goes) rather than post outside it."""
        deadline = time.monotonic() + PANEL_WAIT_S
        while incident.panel_ts is None and time.monotonic() < deadline:
            time.sleep(0.05)
            incident = self.deps.store.get_incident(incident.id) or incident
        return incident

    def keys(self, channel: str) -> list[str]:
        return [f"channel:{channel}", f"target:{self.deps.config.target.repo_path}"]

    # ---- changing incidents -----------------------------------------------------------------------------
    def mutate(self, incident_id: str, change: Change, attempts: int = MUTATE_ATTEMPTS) -> Incident:
        """Apply ``change`` to the latest version and write it back conditionally; retry if another writer won.

        ``change`` re-checks its preconditions on the fresh record every time, so two clicks or two
        replicas cannot both win a transition.
        """
        from bot.errors import StaleState

        for attempt in range(attempts):
            incident = self.get(incident_id)
            change(incident)
            try:
                return self.deps.store.save_incident(incident)
            except StaleState:
                time.sleep(min(0.2, 0.005 * (2 ** attempt)))
        raise Conflict((Code(incident_id), " is changing too fast right now; try again in a moment."))

    def hold(self, incident_id: str, kind: BusyKind, ref: str, name: str, actor: str, *,
             guard: Change | None = None) -> Incident:
        """Hold the incident busy for one run (one step or danger run at a time), owned by this process.
        ``guard`` may refuse (raise) in the same conditional write, from the incident as it is then."""
        now = self.deps.clock.now()
        busy = Busy(kind=kind, ref=ref, name=name, actor=actor, owner=self.deps.replica.owner, since=now)

        def claim(incident: Incident) -> None:
            require_active(incident)
            if guard is not None:
                guard(incident)
            if incident.busy is not None and incident.busy.ref != ref:
                raise busy_conflict(incident.busy)
            incident.busy = busy

        return self.mutate(incident_id, claim)

    def release(self, incident_id: str, ref: str, change: Change | None = None) -> Incident:
        """Let go of the incident (only if this run still holds it), applying ``change`` in the same write."""
        def let_go(incident: Incident) -> None:
            if incident.busy is not None and incident.busy.ref == ref:
                incident.busy = None
            if change is not None:
                change(incident)

        return self.mutate(incident_id, let_go)

    def redraw(self, incident_id: str) -> None:
        """The panel and the checklists message, from the record. One redraw at a time per incident, each
        reading the record inside the lock: two changes at once can never leave the older state on screen."""
        with self._drawing_guard:
            lock = self._drawing.setdefault(incident_id, threading.Lock())
        with lock:
            incident = self.deps.store.get_incident(incident_id)
            if incident is None or not incident.panel_ts:
                return
            message = self.deps.ui.panel(incident, self.deps.store.step_runs(incident.id))
            try:
                self.deps.messenger.update(incident.channel, incident.panel_ts, message)
                if incident.checklist_ts:
                    self.deps.messenger.update(incident.channel, incident.checklist_ts,
                                               self.deps.ui.checklists(incident))
            except Exception:  # the panel is redrawn at the next change; the change itself is recorded
                log.warning("could not redraw the panel of %s", incident_id, exc_info=True)

    def post_checklists(self, incident: Incident) -> Incident:
        """The checklists as the thread's first reply; the panel links to it."""
        ts = self.thread(incident, self.deps.ui.checklists(incident))
        link = self.link_to(incident.channel, ts)

        def record(fresh: Incident) -> None:
            fresh.checklist_ts, fresh.checklist_link = ts, link

        return self.mutate(incident.id, record)

    # ---- telling people ------------------------------------------------------------------------------
    def thread(self, incident: Incident, text: Rich | Message) -> str:
        """Post into the incident's thread."""
        message = text if isinstance(text, Message) else self.deps.ui.note(text)
        return self.deps.messenger.post(incident.channel, message, thread_ts=incident.panel_ts)

    def update_thread(self, incident: Incident, ts: str, message: Message) -> None:
        try:
            self.deps.messenger.update(incident.channel, ts, message)
        except Exception:  # progress is best effort; the result is recorded regardless
            log.warning("could not update a thread message of %s", incident.id, exc_info=True)

    def done_in_thread(self, actor: str, incident: Incident, ts: str, what: Rich) -> None:
        """Say privately, where the person typed, that what they did is in the incident's thread (linked)."""
        link = self.link_to(incident.channel, ts)
        self.tell(actor, incident.channel, rich("✅ ", what, " — ", Link(link, "in the thread") if link else
                                                "in the incident's thread", "."))

    def tell(self, user: str, channel: str, text: Rich | Message, *, thread_ts: str | None = None) -> None:
        """A private message to one person in a channel."""
        message = text if isinstance(text, Message) else self.deps.ui.private(text)
        try:
            self.deps.messenger.ephemeral(channel, user, message, thread_ts=thread_ts)
        except Exception:
            log.warning("could not tell %s privately", user, exc_info=True)

    def once(self, key: str) -> bool:
        """True the first time ``key`` (a delivery, a click, a form submission, a signed request) is seen, on any
        replica: a store claim, kept a day (Slack retries and replays come within minutes)."""
        return self.deps.store.claim(key, self.deps.clock.now(), ttl_s=86_400)

    def holder(self, channel: str | None, role: IncidentRole) -> str | None:
        """Who holds ``role`` in the active incident of ``channel`` (None: nobody, or no incident there)."""
        incident = self.deps.store.active_incident(f"channel:{channel}") if channel else None
        return incident.roles.get(role) if incident is not None else None

    def channel_of(self, incident_id: str) -> str | None:
        """The channel an incident lives in (None for an unknown id): where a form's error reply goes."""
        incident = self.deps.store.get_incident(incident_id)
        return incident.channel if incident else None

    def link(self, incident: Incident) -> str | None:
        return self.link_to(incident.channel, incident.panel_ts) if incident.panel_ts else None

    def link_to(self, channel: str, ts: str) -> str | None:
        try:
            return self.deps.messenger.permalink(channel, ts)
        except Exception:  # a missing link must not hide the answer itself
            log.warning("could not get a permalink for %s in %s", ts, channel, exc_info=True)
            return None

    def audit(self, at: datetime, actor: str, action: str, incident_id: str | None, /, **data: object) -> None:
        self.deps.store.audit(at, actor, action, incident_id, **data)

    def clean(self, text: str) -> str:
        """Secrets scrubbed: for anything people typed or tools printed, before it is stored or shown."""
        return self.deps.secrets.redact(text)


def require_active(incident: Incident) -> None:
    if not incident.active:
        raise Conflict((Code(incident.id), " is closed."),
                       hint=("Start a new one with ", Code(f"{SLASH_COMMAND} start"), "."))


def busy_conflict(busy: Busy) -> Conflict:
    what = "a step" if busy.kind is BusyKind.STEP else "a danger-zone run"
    return Conflict(rich(Code(busy.name), f" ({what}) is still running, started by ", Person(busy.actor),
                         "; one at a time."),
                    hint=("Follow it in the thread, or check ", Code(f"{SLASH_COMMAND} status"), "."))
