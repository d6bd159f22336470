"""Stakeholder communications: the runbook's template filled with the times the bot recorded.

Each milestone (rollback started, rollback completed, system restored, incident closed) is announced
once: the post is *claimed* on the incident with a conditional write before it is sent, so two
replicas, a retry or a restart cannot announce it twice. While an incident is active a reminder job
posts an update when something changed, or reminds the commander privately when nothing did.
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from bot.comms import render
from bot.incident import MILESTONE_LABELS, CommsPost, Incident, Milestone, StepRun, StepStatus

log = logging.getLogger(__name__)

NOT_YET = "not yet"
NOT_KNOWN = "not assessed yet"

# The milestones stakeholders hear about, in order, with the headline of each post.
ANNOUNCED: dict[Milestone, str] = {
    m: MILESTONE_LABELS[m].lower()
    for m in (Milestone.ROLLBACK_STARTED, Milestone.ROLLBACK_COMPLETED, Milestone.SYSTEM_RESTORED, Milestone.CLOSED)
}

RUNBOOK_NEXT_STEPS = ["Root cause analysis underway", "Fix will be developed offline",
                      "Testing before re-deployment"]


@dataclass(frozen=True)
class Update:
    """The stakeholder update, rendered."""

    subject: str
    text: str  # Slack mrkdwn, dates in each reader's local time
    plain: str  # e-mail, dates in UTC
    digest: str  # what changed, for the reminder: the plain text without its headline

    def blocks(self) -> list[dict[str, Any]]:
        chunks = [self.text[i:i + 2900] for i in range(0, len(self.text), 2900)]
        return [{"type": "header", "text": {"type": "plain_text", "text": self.subject[:150]}}] + [
            {"type": "section", "text": {"type": "mrkdwn", "text": chunk}} for chunk in chunks]


def update_context(incident: Incident, runs: list[StepRun], headline: str, system: str) -> dict[str, Any]:
    """Everything the template shows, each field in words when it is not known yet."""
    ms = incident.milestones
    verifies = [r for r in runs if r.step == "verify" and r.status in (StepStatus.SUCCEEDED, StepStatus.FAILED)]
    if not verifies:
        backend = "not verified yet (checks run after the rollback)"
    elif verifies[-1].status is StepStatus.SUCCEEDED:
        backend = ("STABLE (old version restored)" if Milestone.ROLLBACK_COMPLETED in ms
                   else "STABLE (health checks pass)")
    else:
        backend = f"NOT STABLE — the last check failed: {verifies[-1].summary}"
    details = incident.comms_details
    steps = list(RUNBOOK_NEXT_STEPS)
    if details.next_steps:
        steps = [line.strip(" -•\t") for line in details.next_steps.splitlines() if line.strip(" -•\t")]
    steps.append(f"ETA for fix: {details.eta or 'not set yet'}")
    completed = Milestone.ROLLBACK_COMPLETED in ms
    closed = Milestone.CLOSED in ms
    return {
        "headline": headline,
        "issue": incident.reason or "an issue still being described",
        "opening": (f"We have performed an emergency rollback of the {system}" if completed
                    else f"We are performing an emergency rollback of the {system}"),
        "timeline": [("Issue Detected", ms.get(Milestone.ISSUE_DETECTED)),
                     ("Rollback Started", ms.get(Milestone.ROLLBACK_STARTED)),
                     ("Rollback Completed", ms.get(Milestone.ROLLBACK_COMPLETED)),
                     ("System Restored", ms.get(Milestone.SYSTEM_RESTORED))]
                    + ([("Incident Closed", ms.get(Milestone.CLOSED))] if closed else []),
        "not_yet": NOT_YET,
        "backend": backend,
        "database": incident.database_state,
        "data_loss": incident.data_loss or "NO",
        "students": details.students or NOT_KNOWN,
        "professors": details.professors or NOT_KNOWN,
        "data": details.data or (f"YES — {incident.data_loss}" if incident.data_loss else "no data changed"),
        "next_steps": steps,
    }


def render_update(config: Any, incident: Incident, runs: list[StepRun], headline: str) -> Update:
    u = update_context(incident, runs, headline, config.comms.system)
    subject = render("stakeholder_subject.txt.j2", cfg=config.comms, u=u)
    plain = render("stakeholder.txt.j2", cfg=config.comms, u=u)
    text = render("stakeholder.md.j2", cfg=config.comms, u=u, subject=subject)
    digest = hashlib.sha256(plain.encode()).hexdigest()
    return Update(subject=subject, text=text, plain=plain, digest=digest)


def send_email(config: Any, password: str | None, update: Update) -> None:
    email = config.comms.email
    message = EmailMessage()
    message["Subject"] = update.subject
    message["From"] = email.sender
    message["To"] = ", ".join(email.recipients)
    message.set_content(update.plain)
    with smtplib.SMTP(email.smtp_host, email.smtp_port, timeout=email.timeout_s) as smtp:
        if email.starttls:
            smtp.starttls()
        if email.username and password:
            smtp.login(email.username, password)
        smtp.send_message(message)


class Comms:
    def __init__(self, service: Any) -> None:
        self.svc = service  # bot.service.RollbackService
        self.holder = f"comms-{uuid.uuid4().hex[:8]}"

    @property
    def cfg(self) -> Any:
        return self.svc.config

    @property
    def channel(self) -> str | None:
        return self.svc.config.slack.stakeholder_channel

    def render(self, incident: Incident, headline: str = "status update") -> Update:
        return render_update(self.cfg, incident, self.svc.store.step_runs(incident.id), headline)

    # ---- milestones ---------------------------------------------------------------------------------------
    def sync(self, incident_id: str) -> None:
        """Announce every milestone reached and not announced yet (at most once each)."""
        incident = self.svc.store.get_incident(incident_id)
        if incident is None:
            return
        for milestone in _unannounced(incident):
            self.post(incident_id, milestone.value, ANNOUNCED[milestone], "bot")

    def post(self, incident_id: str, key: str, headline: str, actor: str) -> CommsPost | None:
        """Claim `key`, then post; returns None when another caller already claimed it."""
        svc = self.svc
        now = svc.clock.now()
        claimed = False

        def claim(incident: Incident) -> None:
            nonlocal claimed
            claimed = key not in incident.comms
            if claimed:
                incident.comms[key] = CommsPost(claimed_at=now, headline=headline)

        incident = svc.mutate(incident_id, claim)
        if not claimed:
            return None
        return self._send(incident, key, headline, actor)

    def _send(self, incident: Incident, key: str, headline: str, actor: str) -> CommsPost:
        svc = self.svc
        update = self.render(incident, headline)
        ts = link = None
        if self.channel:
            ts = svc.messenger.post(self.channel, update.text, update.blocks())
            link = svc.messenger.permalink(self.channel, ts)
        emailed = self._email(update)
        now = svc.clock.now()

        def done(fresh: Incident) -> None:
            post = fresh.comms[key]
            post.ts, post.link, post.digest, post.emailed = ts or "", link, update.digest, emailed
            fresh.last_update_at = now
            fresh.tick("notify", "bot", now)
            fresh.record(now, actor, f"Stakeholder update posted: {headline}")

        incident = svc.mutate(incident.id, done)
        svc.store.audit(now, actor, "comms.posted", incident.id, key=key, headline=headline, channel=self.channel,
                        ts=ts, emailed=emailed)
        where = f"<{link}|{headline}>" if link else headline
        note = (f"📣 Stakeholder update posted: {where}" if self.channel else
                f"📣 Stakeholder update ({headline}) not posted: no `slack.stakeholder_channel` is configured")
        svc.say(incident.channel, note + (" (and e-mailed)" if emailed else ""), thread_ts=incident.panel_ts)
        return incident.comms[key]

    def _email(self, update: Update) -> bool:
        email = self.cfg.comms.email
        if not email.smtp_host or not email.recipients:
            return False
        password = self.svc.settings.secrets.smtp_password
        try:
            send_email(self.cfg, password.get_secret_value() if password else None, update)
            return True
        except (OSError, smtplib.SMTPException) as error:
            log.warning("stakeholder e-mail not sent: %s", error)
            return False

    def post_now(self, incident: Incident, actor: str) -> CommsPost | None:
        """A status update outside the milestones (`/rollback comms` → Post now, or the reminder)."""
        number = sum(1 for key in incident.comms if key.startswith("update-")) + 1
        return self.post(incident.id, f"update-{number}", "status update", actor)

    # ---- the reminder ---------------------------------------------------------------------------------------
    def tick(self) -> None:
        """Run by the scheduler every minute: each active incident gets its update or reminder when due."""
        now = self.svc.clock.now()
        if not self.svc.store.try_lease("comms-reminder", self.holder, now, ttl_s=120):
            return  # another replica runs the reminder
        every = timedelta(minutes=self.cfg.comms.reminder_minutes)
        for incident in self.svc.store.incidents():
            if not incident.active:
                continue
            last = max(m for m in (incident.last_update_at, incident.last_reminder_at, incident.created_at) if m)
            if now - last < every:
                continue
            try:
                self._remind(incident, now)
            except Exception:  # one incident's failure must not stop the others'
                log.exception("stakeholder reminder failed for %s", incident.id)

    def _remind(self, incident: Incident, now: datetime) -> None:
        latest = max(incident.comms.values(), key=lambda p: p.claimed_at, default=None)
        if latest is not None and latest.ts is None:
            return  # a post is on its way right now
        if latest is None or self.render(incident).digest != latest.digest:
            self.post_now(incident, "bot")
            return

        def reminded(fresh: Incident) -> None:
            fresh.last_reminder_at = now

        self.svc.mutate(incident.id, reminded)
        when = latest.claimed_at.strftime("%H:%M UTC")
        self.svc.messenger.ephemeral(
            incident.channel, incident.commander,
            f"⏰ {incident.id}: nothing changed since the last stakeholder update ({when}), so none was posted. "
            f"`/rollback comms` previews one; `/rollback comms edit` fills in impact, next steps and ETA.")

    # ---- restarts -------------------------------------------------------------------------------------------
    def recover(self) -> None:
        """At start-up: a post claimed by a process that stopped before sending it is sent now; milestones
        reached while the bot was down are announced."""
        for incident in self.svc.store.incidents():
            for key, post in incident.comms.items():
                if post.ts is None:
                    try:
                        self._send(incident, key, post.headline, "bot")
                    except Exception:
                        log.exception("could not resend %s for %s", key, incident.id)
            if not _unannounced(incident):
                continue  # the common case at start-up: nothing to read again
            try:
                self.sync(incident.id)
            except Exception:
                log.exception("could not announce the milestones of %s", incident.id)


def _unannounced(incident: Incident) -> list[Milestone]:
    return [m for m in ANNOUNCED if m in incident.milestones and m.value not in incident.comms]
