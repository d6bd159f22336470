"""Stakeholder updates, exactly once: the runbook's template filled with the times the bot recorded.

Each post (a milestone: rollback started, completed, system restored, incident closed; or a preview's
"Post now", keyed by the preview, never by the click) is first *claimed* on the incident under its key,
with the claiming process as owner, by a conditional write; then it is posted with Slack message metadata
naming the incident and the key; then its ts is recorded. If the process dies between Slack accepting the
post and the bot recording it, the next owner (this replica at once, another after the lease) finds the
post with ``conversations.history`` and records it instead of posting twice. Slack's history can show a
post late, so one miss proves nothing: it is looked for again for ``comms.lookup_s`` before it is sent. A
lookup that fails concludes nothing either: the claim stays, and the next sweep looks again. A live
owner's claim is left alone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from bot import faults
from bot.domain.access import Act
from bot.domain.deps import Deps
from bot.domain.desk import Desk, require_active
from bot.domain.incident import MILESTONE_LABELS, CommsDetails, CommsPost, Incident, IncidentRole, Milestone
from bot.domain.ownership import Owner
from bot.domain.ports import FormValues, PostKey, form_text
from bot.domain.updates import Update, build_update
from bot.errors import Conflict
from bot.text import Code, Link, Person, Rich, rich

log = logging.getLogger(__name__)
UPDATE_EVENT = "rollback_bot_update"
SEARCH_SLACK_S = 120  # how far before the claim a lost post is looked for (clock skew between replicas)
LOOKUPS = 6  # looks at Slack's history within comms.lookup_s, at most, before a lost post is sent again
PREVIEW_SEP = "#"  # a preview's id: <incident>#<posts the incident had when it was shown>
WAIT_FOR_POST_S = 10  # a second click waits this long, at most, for the first click's post to have its link
MAX_FIELD = 2000

ANNOUNCED: dict[Milestone, str] = {
    m: MILESTONE_LABELS[m].lower()
    for m in (Milestone.ROLLBACK_STARTED, Milestone.ROLLBACK_COMPLETED, Milestone.SYSTEM_RESTORED, Milestone.CLOSED)
}


def post_key(incident_id: str, key: str) -> PostKey:
    return PostKey(UPDATE_EVENT, {"incident": incident_id, "key": key})


class _Outdated(Exception):
    """The preview was posted already, or a newer update was."""


class Stakeholders:
    def __init__(self, deps: Deps, desk: Desk) -> None:
        self.deps, self.desk = deps, desk

    @property
    def channel(self) -> str | None:
        return self.deps.config.slack.stakeholder_channel

    def update_for(self, incident: Incident, headline: str = "status update") -> Update:
        return build_update(self.deps.config, incident, self.deps.store.step_runs(incident.id), headline,
                            self.deps.clock.now())

    # ---- milestones -------------------------------------------------------------------------------------
    def sync(self, incident_id: str) -> None:
        """Announce every milestone reached and not announced yet (at most once each)."""
        incident = self.deps.store.get_incident(incident_id)
        if incident is None:
            return
        for milestone in ANNOUNCED:
            if milestone in incident.milestones and milestone.value not in incident.comms:
                self.post(incident_id, milestone.value, incident.label(milestone).lower(), "bot")

    def post(self, incident_id: str, key: str, headline: str, actor: str,
             guard: Callable[[Incident], None] | None = None) -> CommsPost | None:
        """Claim ``key``, then post; None when it was already claimed (by anyone, at any time). ``guard`` may
        refuse the claim (by raising) on the very version the claim is written over."""
        now = self.deps.clock.now()
        claimed = False

        def claim(incident: Incident) -> None:
            nonlocal claimed
            if guard is not None:
                guard(incident)
            claimed = key not in incident.comms
            if claimed:
                incident.comms[key] = CommsPost(claimed_at=now, headline=headline, owner=self.deps.replica.owner)

        incident = self.desk.mutate(incident_id, claim)
        if not claimed:
            return None
        with self.deps.replica.running(f"post:{incident_id}:{key}"):
            return self._send(incident, key, headline, actor)

    def _send(self, incident: Incident, key: str, headline: str, actor: str, *, found_ts: str | None = None
              ) -> CommsPost:
        deps = self.deps
        update = self.update_for(incident, headline)
        ts, link = found_ts, None
        if self.channel and ts is None:
            ts = deps.messenger.post(self.channel, deps.ui.stakeholder_update(update), key=post_key(incident.id, key))
        faults.point("comms.posted")
        if self.channel and ts:
            link = deps.messenger.permalink(self.channel, ts)
        now = deps.clock.now()

        def done(fresh: Incident) -> None:
            post = fresh.comms[key]
            if post.ts is None:
                post.ts, post.link, post.digest = ts or "", link, update.digest
                fresh.last_update_at = now
                fresh.tick("notify", "bot", now)
                fresh.record(now, actor, f"Stakeholder update posted: {headline}"
                             + (" (found after a restart, not posted again)" if found_ts else ""))

        incident = self.desk.mutate(incident.id, done)
        emailed = False if found_ts else self._email(update)
        if emailed:
            self.desk.mutate(incident.id, lambda fresh: setattr(fresh.comms[key], "emailed", True))
        deps.store.audit(now, actor, "comms.posted", incident.id, key=key, headline=headline, channel=self.channel,
                         ts=ts, emailed=emailed, recovered=bool(found_ts))
        if self.channel:
            where = Link(link, headline) if link else headline
            note = rich("📣 Stakeholder update posted: ", where, " (and e-mailed)" if emailed else "")
        else:
            note = rich("📣 Stakeholder update (", headline, ") not posted: no ", Code("slack.stakeholder_channel"),
                        " is configured")
        if not found_ts:
            self.desk.thread(incident, note)
        return incident.comms[key]

    def _email(self, update: Update) -> bool:
        email = self.deps.config.comms.email
        if not email.smtp_host or not email.recipients:
            return False
        import smtplib  # only a bot that mails its updates needs it
        from email.message import EmailMessage

        subject, body = self.deps.ui.email(update)
        message = EmailMessage()
        message["Subject"], message["From"], message["To"] = subject, email.sender, ", ".join(email.recipients)
        message.set_content(self.deps.secrets.redact(body))
        password = self.deps.settings.secrets.smtp_password
        try:
            with smtplib.SMTP(email.smtp_host, email.smtp_port, timeout=email.timeout_s) as smtp:
                if email.starttls:
                    smtp.starttls()
                if email.username and password:
                    smtp.login(email.username, password.get_secret_value())
                smtp.send_message(message)
            return True
        except (OSError, smtplib.SMTPException) as error:
            log.warning("stakeholder e-mail not sent: %s", error)
            return False

    # ---- people ------------------------------------------------------------------------------------------
    def preview(self, actor: str, channel: str) -> tuple[Incident, Update, str]:
        """The next update as it would go out now, and the preview's id for its *Post now* button: the
        incident and how many posts it had, so the preview posts at most once and never after a newer one."""
        self.deps.access.require(Act.COMMS, actor, channel, holder=self.desk.holder(channel, IncidentRole.COMMS))
        incident = self.desk.active_in(channel)
        return incident, self.update_for(incident), f"{incident.id}{PREVIEW_SEP}{len(incident.comms)}"

    def post_now(self, actor: str, channel: str, preview: str) -> CommsPost:
        """A status update outside the milestones, from a preview. The key comes from the preview, not the
        click: a second click, a redelivery, a replay or another copy of the same preview finds it claimed,
        and a preview shown before a later post is out of date; both are refused with a link to that post."""
        self.deps.access.require(Act.COMMS, actor, channel, holder=self.desk.holder(channel, IncidentRole.COMMS))
        incident_id, _, seen = preview.partition(PREVIEW_SEP)
        incident = self.desk.get(incident_id)
        require_active(incident)
        if not seen.isdigit():  # a preview shown by a release before previews had ids
            raise Conflict("This preview is out of date.", hint=rich(Code("/rollback comms"), " shows a fresh one."))
        key = f"update-after-{seen}"

        def unseen(fresh: Incident) -> None:
            if key in fresh.comms or len(fresh.comms) != int(seen):
                raise _Outdated

        try:
            posted = self.post(incident.id, key, "status update", actor, guard=unseen)
        except _Outdated:
            raise self._outdated(incident.id, key) from None
        assert posted is not None  # the guard refused every claim that could have been taken
        return posted

    def _outdated(self, incident_id: str, key: str) -> Conflict:
        """Why a preview will not post again: it was posted (a link, once Slack has it) or a newer one was."""
        deadline = time.monotonic() + WAIT_FOR_POST_S
        incident = self.desk.get(incident_id)
        while (mine := incident.comms.get(key)) is not None and not mine.posted and time.monotonic() < deadline:
            time.sleep(0.2)  # the first click is posting it right now: answer with its link once it has one
            incident = self.desk.get(incident_id)
        again = rich(Code("/rollback comms"), " previews the next update.")
        latest = max(incident.comms.values(), key=lambda p: p.claimed_at, default=None)
        if latest is None:  # an id no preview gave
            return Conflict("This preview is out of date.", hint=again)
        if mine is not None and mine is latest:
            if not mine.posted:
                return Conflict("This update is being posted right now.")
            where = Link(mine.link, "posted") if mine.link else "posted"
            return Conflict(rich("This update was already ", where, f" at {mine.claimed_at:%H:%M} UTC."), hint=again)
        what = Link(latest.link, latest.headline) if latest.link else latest.headline
        return Conflict(rich("A newer stakeholder update has gone out since this preview: ", what,
                             f" ({latest.claimed_at:%H:%M} UTC)."), hint=again)

    def open_form(self, actor: str, channel: str, trigger_id: str, reply_to: str | None = None) -> None:
        """`/rollback comms edit`: the form for the update's impact, next steps and ETA, for the active incident
        (``reply_to``: the preview it was opened from, which saving the form replaces)."""
        self.deps.access.require(Act.COMMS, actor, channel, holder=self.desk.holder(channel, IncidentRole.COMMS))
        self.deps.messenger.open_view(trigger_id, self.deps.ui.comms_form(self.desk.active_in(channel), reply_to))

    def validate_details(self, values: FormValues) -> dict[str, Rich]:
        """Field-level problems of a submitted stakeholder-details form (empty when it is fine)."""
        return {name: (f"At most {MAX_FIELD} characters, please.",) for name in values
                if len(form_text(values, name)) > MAX_FIELD}

    def save_details(self, actor: str, incident_id: str, values: FormValues, *,
                     preview_above: bool = False) -> Incident:
        """``preview_above``: the form came from a preview, which the caller replaces with a fresh one."""
        channel = self.desk.get(incident_id).channel  # the form's incident
        self.deps.access.require(Act.COMMS, actor, channel, holder=self.desk.holder(channel, IncidentRole.COMMS))
        now = self.deps.clock.now()
        typed = {name: form_text(values, name).strip() for name in values if name in CommsDetails.model_fields}
        clean = {k: (self.desk.clean(v[:MAX_FIELD]) if v else None) for k, v in typed.items()}

        def apply(incident: Incident) -> None:
            require_active(incident)
            incident.comms_details = CommsDetails(**clean)
            incident.record(now, actor, "Stakeholder details updated (impact, next steps, ETA)")

        incident = self.desk.mutate(incident_id, apply)
        self.desk.audit(now, actor, "comms.details", incident_id, fields=sorted(k for k, v in clean.items() if v))
        ts = self.desk.thread(incident, rich("📝 ", Person(actor), " updated the stakeholder details; ",
                                             Code("/rollback comms"), " previews the next update."))
        self.desk.done_in_thread(actor, incident, ts, ("Saved: the preview above now shows them",) if preview_above
                                 else ("Saved: the next update uses them; ", Code("/rollback comms"),
                                       " previews it (an older preview still shows the old details)"))
        return incident

    # ---- the reminder -----------------------------------------------------------------------------------
    def tick(self) -> None:
        """Every minute: each active incident gets its update when one is due and something changed, or a
        private reminder to the commander when nothing did. One replica runs it (the store lease)."""
        now = self.deps.clock.now()
        if not self.deps.store.try_lease("comms-reminder", self.deps.replica.owner.instance, now, ttl_s=120):
            return
        every = timedelta(minutes=self.deps.config.comms.reminder_minutes)
        for incident in self.deps.store.active_incidents():
            last = max(m for m in (incident.last_update_at, incident.last_reminder_at, incident.created_at) if m)
            if now - last < every:
                continue
            try:
                self._remind(incident, now)
            except Exception:  # one incident's failure must not stop the others'
                log.exception("stakeholder reminder failed for %s", incident.id)

    def _remind(self, incident: Incident, now: datetime) -> None:
        latest = max(incident.comms.values(), key=lambda p: p.claimed_at, default=None)
        if latest is not None and not latest.posted:
            return  # a post is on its way right now
        if latest is None or self.update_for(incident).digest != latest.digest:
            self.post(incident.id, f"update-reminder-{now:%Y%m%dT%H%M}", "status update", "bot")
            return

        def reminded(fresh: Incident) -> None:
            fresh.last_reminder_at = now

        self.desk.mutate(incident.id, reminded)
        self.desk.tell(incident.roles.get(IncidentRole.COMMS, incident.commander), incident.channel, rich(
            "⏰ ", incident.id, ": nothing changed since the last stakeholder update (",
            f"{latest.claimed_at:%H:%M} UTC), so none was posted. ", Code("/rollback comms"),
            " previews one; ", Code("/rollback comms edit"), " fills in impact, next steps and ETA."))

    # ---- crashes and replicas --------------------------------------------------------------------------
    def reconcile(self, incident: Incident) -> None:
        """Posts claimed by a process that died before recording them: found in Slack and recorded, or sent."""
        for key, post in list(incident.comms.items()):
            if post.posted or self.deps.replica.is_alive(post.owner, f"post:{incident.id}:{key}"):
                continue
            dead = post.owner
            taken = False

            def take(fresh: Incident, key: str = key, dead: Owner | None = dead) -> None:
                nonlocal taken
                current = fresh.comms.get(key)
                taken = current is not None and not current.posted and current.owner == dead
                if taken and current is not None:
                    current.owner = self.deps.replica.owner

            incident = self.desk.mutate(incident.id, take)
            if not taken:
                continue
            with self.deps.replica.running(f"post:{incident.id}:{key}"):
                found, looks = self._look_up(incident.id, key, post.claimed_at) if self.channel else (None, 0)
                self.desk.audit(self.deps.clock.now(), "bot", "comms.recovered", incident.id, key=key,
                                found=bool(found), lookups=looks, previous_owner=dead.describe() if dead else "unknown")
                self._send(incident, key, post.headline, "bot", found_ts=found)

    def _look_up(self, incident_id: str, key: str, claimed_at: datetime) -> tuple[str | None, int]:
        """The post in Slack's history, looked for until found or ``comms.lookup_s`` has passed (Slack may
        record it late); the ts (None: never sent) and how many looks it took. A failing look raises."""
        assert self.channel is not None
        window = self.deps.config.comms.lookup_s
        deadline, looks = time.monotonic() + window, 0
        while True:
            looks += 1
            found = self.deps.messenger.find_post(self.channel, post_key(incident_id, key),
                                                  claimed_at - timedelta(seconds=SEARCH_SLACK_S))
            left = deadline - time.monotonic()
            if found or left <= 0:
                return found, looks
            time.sleep(min(left, window / LOOKUPS))
