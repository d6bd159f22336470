"""Follow-ups after the close: marking one done (`/rollback followup done <n>`, or *Mark done* on a reminder),
and reminding each open one's owner every ``followups.remind_days`` until it is.

Adding a follow-up is :meth:`bot.domain.coordination.Coordination.followup`. A follow-up's number is its place
in the incident's list, from 1 (the list only grows). Reminders run from the scheduler on every replica; each
one is claimed in the store before it is sent (the key names the incident, the follow-up and the period), so
two replicas, a job run twice or a restart never send the same period's reminder twice. A process that dies
between the claim and the post loses that period's reminder: the next period's comes as usual.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.domain.access import Act
from bot.domain.checklists import PREVENTION_CHECKLIST
from bot.domain.closeout import Closer
from bot.domain.deps import Deps
from bot.domain.desk import Desk
from bot.domain.incident import FollowUp, Incident, looks_like_incident_id
from bot.errors import BadInput, Conflict, NotFound, echo
from bot.ids import SLASH_COMMAND
from bot.text import Code, Person, Rich, When, rich

log = logging.getLogger(__name__)
DONE = "done"
USAGE = f"{SLASH_COMMAND} followup done <n> [RB-0007]"


def _example(number: str = "2") -> Rich:
    return ("Type ", Code(f"{SLASH_COMMAND} followup done {number}"), " (the number from the close-out post or the "
            "reminder; add the incident's id, as in ", Code(f"{SLASH_COMMAND} followup done {number} RB-0007"),
            ", for an earlier incident of this channel).")


class FollowUps:
    """Marking follow-ups done and reminding their owners after the close."""

    def __init__(self, deps: Deps, desk: Desk, closer: Closer) -> None:
        self.deps, self.desk, self.closer = deps, desk, closer

    # ---- done ------------------------------------------------------------------------------------------------
    def done_typed(self, actor: str, channel: str, words: list[str]) -> Incident:
        """`followup done <n> [RB-0007]`: the words after `done`, in either order."""
        self.deps.access.require_channel(channel)
        ids = [w for w in words if looks_like_incident_id(w.upper())]
        rest = [w for w in words if w not in ids]
        if not rest:
            raise BadInput("Say which follow-up is done: its number.", hint=_example())
        if len(ids) > 1 or len(rest) > 1 or not rest[0].lstrip("#").isdigit():
            shown = " ".join(words)
            raise BadInput(rich(Code(f"{SLASH_COMMAND} followup done"), " takes a follow-up's number (and, if it is "
                                "not this channel's latest incident, the incident's id), not ", echo(shown), "."),
                           hint=rich(*_example(), " To add a follow-up whose text starts with “done”, name its "
                                     "owner first: ", Code(f"{SLASH_COMMAND} followup @you done …"), "."))
        incident = self.desk.get(ids[0].upper()) if ids else self.desk.latest_in(channel)
        return self.done(actor, channel, incident.id, int(rest[0].lstrip("#")))

    def done_clicked(self, actor: str, channel: str, value: str) -> Incident:
        """*Mark done* on a reminder: its value is `<incident id>:<n>`."""
        incident_id, _, number = value.partition(":")
        if not looks_like_incident_id(incident_id) or not number.isdigit():
            raise BadInput("That button does not name a follow-up.", hint=_example())
        return self.done(actor, channel, incident_id, int(number))

    def done(self, actor: str, channel: str, incident_id: str, number: int) -> Incident:
        """Its owner or a commander marks follow-up ``number`` done; also after the close. The close-out post is
        updated in place and the saved postmortem rewritten, so both say so."""
        self.deps.access.require_channel(channel)
        incident = self.desk.get(incident_id)
        item = self._item(incident, number)
        if actor != item.owner:
            self.deps.access.require(Act.FOLLOWUP_DONE, actor, channel)
        if item.done_at is not None:
            raise Conflict(rich("Follow-up #", str(number), " of ", incident.id, " is already done (",
                                Person(item.done_by or "bot"), ", ", When(item.done_at), ")."))
        now = self.deps.clock.now()
        won = False

        def mark(fresh: Incident) -> None:
            nonlocal won
            current = fresh.follow_ups[number - 1]
            won = current.done_at is None  # a second click or another replica: the first one counts
            if won:
                current.done_by, current.done_at = actor, now
                fresh.record(now, actor, f"Follow-up #{number} done: {current.text}")

        incident = self.desk.mutate(incident.id, mark)
        item = incident.follow_ups[number - 1]
        if not won:
            raise Conflict(rich("Follow-up #", str(number), " of ", incident.id, " is already done (",
                                Person(item.done_by or "bot"), ", ", When(item.done_at or now), ")."))
        self.desk.audit(now, actor, "incident.followup_done", incident.id, number=number, owner=item.owner)
        ts = self.desk.thread(incident, rich("✅ Follow-up #", str(number), " done: ", item.text, " (owner ",
                                             Person(item.owner or item.by), "; marked by ", Person(actor), ")."))
        if not incident.active:
            self._closed_records(incident)
        self.desk.done_in_thread(actor, incident, ts, rich("Follow-up #", str(number), " of ", incident.id,
                                                           " marked done; no more reminders for it"))
        return self.desk.get(incident.id)

    def _item(self, incident: Incident, number: int) -> FollowUp:
        count = len(incident.follow_ups)
        if not 1 <= number <= count:
            has: Rich = (("no follow-ups",) if count == 0 else ("follow-up #1",) if count == 1 else
                         (f"follow-ups #1 to #{count}",))
            raise NotFound(rich(incident.id, " has ", *has, f"; there is no #{number}."),
                           hint=("The close-out post in the incident's thread numbers them; add one with ",
                                 Code(f"{SLASH_COMMAND} followup [@person] <text>"), "."))
        return incident.follow_ups[number - 1]

    def _closed_records(self, incident: Incident) -> None:
        """After the close: the close-out post (updated in place) and the saved postmortem say it is done."""
        ts = incident.close_out.follow_ups_ts if incident.close_out else None
        if ts:
            self.desk.update_thread(incident, ts, self.deps.ui.follow_ups(incident, PREVENTION_CHECKLIST))
        if incident.close_out is not None and incident.close_out.postmortem:
            try:
                self.closer.save_postmortem(incident.id)
            except Exception:  # the record says it is done; the file catches up at the next change
                log.exception("could not rewrite the postmortem of %s", incident.id)

    # ---- reminders -------------------------------------------------------------------------------------------
    def remind(self) -> int:
        """The scheduled job: every open follow-up of a closed incident whose owner has not been reminded in the
        current period (``remind_days`` since the close, or since it was added if that was later) is reminded
        once, on one replica. Returns how many reminders this call sent."""
        now = self.deps.clock.now()
        days = self.deps.config.followups.remind_days
        every = timedelta(days=days)
        sent = 0
        for incident in self.deps.store.closed_incidents():
            closed_at = incident.close_out.at if incident.close_out else incident.created_at
            for number, item in enumerate(incident.follow_ups, start=1):
                if item.done_at is not None:
                    continue
                period = int((now - max(closed_at, item.at)) / every)
                if period < 1:
                    continue
                try:
                    sent += self._remind(incident, number, item, period, now, days)
                except Exception:  # one reminder's failure must not stop the others'
                    log.exception("could not remind the owner of follow-up #%d of %s", number, incident.id)
        return sent

    def _remind(self, incident: Incident, number: int, item: FollowUp, period: int, now: datetime,
                days: int) -> int:
        key = f"followup-reminder:{incident.id}:{number}:{period}"
        # Kept for the whole period (and a day more), so a later run in the same period finds it taken.
        if not self.deps.store.claim(key, now, ttl_s=(days + 1) * 86_400):
            return 0
        days_open = int((now - item.at) / timedelta(days=1))
        self.desk.thread(incident, self.deps.ui.followup_reminder(incident, number, days_open, days))
        self.desk.audit(now, "bot", "incident.followup_reminded", incident.id, number=number, owner=item.owner,
                        period=period)
        return 1
