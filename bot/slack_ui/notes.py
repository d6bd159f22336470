"""Thread messages: step plans, progress and results, notes, the kickoff, RCA, follow-ups, watch verdicts."""

from __future__ import annotations

from bot.domain.checklists import RCA_CAUSES
from bot.domain.checks import WatchVerdict
from bot.domain.incident import Incident, Rca
from bot.domain.ports import Message
from bot.ids import Action
from bot.slack_ui.blocks import button, confirm, message, sections, text_message
from bot.slack_ui.escape import code, escape, mrkdwn, person
from bot.slack_ui.render import render
from bot.text import Rich


def note(text: Rich) -> Message:
    return text_message(mrkdwn(text))


STEP_MARKS = {"running": ("⏳", ""), "succeeded": ("✅", "succeeded: "), "failed": ("❌", "failed: ")}


def step(title: str, actor: str, plan: Rich, lines: list[Rich], state: str, text: Rich,
         details: list[Rich]) -> Message:
    """One message per step run: the plan first, then the live status line, then (when it ends) the details.
    Posted once and updated in place, so a step is one entry in the thread."""
    mark, word = STEP_MARKS[state]
    status = f"{mark} *{escape(title)}* — {word}{mrkdwn(text)}"
    head = f"📋 *{escape(title)}* requested by {person(actor)} — plan: {mrkdwn(plan)}"
    body = "\n".join(f"• {mrkdwn(line)}" for line in lines)
    parts = [status, head, body] if state != "running" else [head, body, status]
    text_out = "\n".join(p for p in parts if p)
    if details:
        text_out += "\n" + "\n".join(mrkdwn(line) for line in details)
    return message(text_out, sections(text_out), notification=status)


def step_interrupted(name: str, who: str) -> Message:
    return text_message(f"⚠️ *{escape(name)}* was interrupted: the process running it stopped ({escape(who)}). "
                        "Nothing is holding the incident now; run the step again.")


def kickoff(incident: Incident, contacts: list[str]) -> Message:
    return text_message(render("started.md.j2", incident=incident, contacts=[person(c) for c in contacts]))


def rca(record: Rca) -> Message:
    return text_message(render("rca.md.j2", rca=record, causes=RCA_CAUSES))


def follow_ups(incident: Incident, items: list[str]) -> Message:
    return text_message(render("prevention.md.j2", items=items, incident=incident))


def followup_reminder(incident: Incident, number: int, days_open: int, every_days: int) -> Message:
    """The reminder of one open follow-up, in the incident's thread, mentioning its owner; with *Mark done*."""
    item = incident.follow_ups[number - 1]
    owner = person(item.owner or item.by)
    age = "today" if days_open < 1 else f"{days_open} day{'s' if days_open != 1 else ''} ago"
    text = (f"⏰ {owner}, follow-up #{number} of {escape(incident.id)} is still open: {escape(item.text)}\n"
            f"Agreed {age} (added by {person(item.by)}); the incident is closed. Mark it done with the button or "
            f"{code(f'/rollback followup done {number} {incident.id}')}; until then you are reminded here every "
            f"{every_days} day{'s' if every_days != 1 else ''}.")
    done = button("Mark done", Action.FOLLOWUP_DONE, f"{incident.id}:{number}", style="primary")
    return message(text, [*sections(text), {"type": "actions", "elements": [done]}])


def watch_verdict(verdict: WatchVerdict) -> Message:
    if verdict.kind == "restored":
        text = (f"✅ Healthy for {verdict.minutes} min ({verdict.streak} checks in a row): *system restored* "
                "recorded.")
    elif verdict.kind == "failing":
        text = "🔴 Still failing: " + "; ".join(f"{escape(r.name)} — {escape(r.detail)}" for r in verdict.failing)
    else:
        text = f"🟡 Looking better: {verdict.streak}/{verdict.need} healthy checks in a row."
    return text_message(f"👀 Watch: {text}")


def hotfix_offer(branch: str, head: str, remote: str, pushable: bool) -> Message:
    done = f"🚀 {code(branch)} at {code(head[:7])} is built, running and verified."
    if not pushable:  # no button that can only refuse
        return text_message(f"{done} The repository has no remote {code(remote)}, so the bot cannot push it: "
                            f"set {code('target.remote')} in rollback.yml, or push the branch by hand.")
    text = (f"{done} Push it to {code(remote)}? "
            f"(a plain push: if {code(remote)} has moved on, the push is refused, never forced)")
    push = button(f"Push {branch} to {remote}", Action.HOTFIX_PUSH, branch, confirm=confirm(
        "Push the hotfix?", f"git push {escape(remote)} {escape(branch)} (no force)", "Push", "Not now"))
    return message(text, [*sections(text), {"type": "actions", "elements": [push]}])


def private(text: Rich) -> Message:
    return text_message(mrkdwn(text))


def error(text: Rich) -> Message:
    return text_message(f":warning: {mrkdwn(text)}")
