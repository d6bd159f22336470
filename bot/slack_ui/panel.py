"""The control panel: posted by `start`, updated in place. Compact on purpose — it is the parent of the
incident's thread, so every thread view starts with it: the state, a one-line progress row, the **Next**
action and the buttons. The checklists live in their own thread message (:mod:`bot.slack_ui.checklists`)."""

from __future__ import annotations

from typing import Any

from bot.domain.guide import Next, NextKind, next_action, next_step
from bot.domain.incident import Incident, Milestone
from bot.domain.lifecycle import FIX_NAMES, Fix, Phase
from bot.domain.ports import Message
from bot.domain.runs import StepName, StepRun, StepStatus
from bot.domain.steps import RUNBOOK_STEPS, SHORT_NAMES, TITLES
from bot.domain.updates import database_status
from bot.ids import SLASH_COMMAND, Action, Block
from bot.slack_ui.blocks import button, confirm, context, header, message, mrkdwn_obj, option, plain_obj
from bot.slack_ui.escape import clock, escape, mrkdwn
from bot.slack_ui.render import render

Blocks = list[dict[str, Any]]
MARK = {StepStatus.SUCCEEDED: "✅", StepStatus.RUNNING: "⏳", StepStatus.INTERRUPTED: "⚠️", StepStatus.FAILED: "❌"}
MILESTONES = [(Milestone.ISSUE_DETECTED, "Detected"), (Milestone.ROLLBACK_STARTED, "Started"),
              (Milestone.ROLLBACK_COMPLETED, "Rolled back"), (Milestone.SYSTEM_RESTORED, "Restored"),
              (Milestone.CLOSED, "Closed")]
FIXED = {Fix.FLAG: "Flag off", Fix.PARTIAL: "File back", Fix.SAFE_REVERT: "Reverted", Fix.HOTFIX: "Hotfixed"}


def database_line(incident: Incident) -> str:
    database, data_loss, _ = database_status(incident)
    return database + ("" if data_loss == "NO" else f" — data loss: {data_loss}")


def progress(incident: Incident, runs: list[StepRun]) -> str:
    """✅ Backup → ✅ Revert → ⏳ Rebuild → ⬜ Restart → ⬜ Verify: backup, then the path of the fix under way (the
    runbook's rollback until one is chosen; a feature flag's is flag → restart → verify), from the lifecycle."""
    latest = {run.step: run for run in runs}
    return "  →  ".join(f"{MARK[latest[s].status] if s in latest else '⬜'} {SHORT_NAMES[s]}"
                        for s in incident.lifecycle.path())


def phase_title(incident: Incident) -> str:
    """The lifecycle's phase in words: active, mitigating (rollback), service restored (feature flag), …"""
    life = incident.lifecycle
    fix = FIX_NAMES[life.fix] if life.fix else None
    if life.phase is Phase.MITIGATING and fix:
        return f"mitigating ({fix})"
    if life.phase is Phase.RESTORED and fix:
        return f"service restored ({fix}), watching"
    if life.phase is Phase.CONFIRMED:
        return "service restored and confirmed"
    return "closed" if life.phase is Phase.CLOSED or not incident.active else "active"


def next_line(upcoming: Next) -> str:
    text = f"👉 *Next:* {mrkdwn(upcoming.text)}"
    return text + (f"\n◦ {upcoming.also_is}: {mrkdwn(upcoming.also)}" if upcoming.also else "")


def milestones(incident: Incident) -> str:
    """Detected · Started · Rolled back (or how service came back: Flag off, File back…) · Restored · Closed."""
    fix = incident.lifecycle.restored_with or incident.lifecycle.fix

    def label(m: Milestone, text: str) -> str:
        return FIXED.get(fix, text) if m is Milestone.ROLLBACK_COMPLETED and fix is not None else text

    return "  ·  ".join(f"{label(m, text)} {clock(incident.milestones.get(m))}" for m, text in MILESTONES)


def _step_buttons(incident: Incident, upcoming: Next, target: str) -> Blocks:
    revert_dialog = confirm("Revert the code?", f"git reset --hard {escape(target)} in {escape(incident.target)}. "
                            "The bot shows the commits it drops and stashes uncommitted work first.", "Revert",
                            danger=True)
    buttons: Blocks = []
    for name in RUNBOOK_STEPS:
        revert = name is StepName.REVERT
        if revert and not incident.lifecycle.backed_up:
            continue  # the runbook backs up before reverting: no button that can only refuse
        style = "primary" if upcoming.step is name else None  # only the next step draws the eye; revert's
        # weight is in its confirm dialog (red), which names the commit and the folder before anything happens
        buttons.append(button(TITLES[name], f"{Action.STEP}:{name.value}", incident.id, style=style,
                              confirm=revert_dialog if revert else None))
    cleanup = button("DB cleanup (danger zone)", Action.CLEANUP, incident.id, confirm=confirm(
        "Prepare the database cleanup?", "This computes a dry run per tenant and asks a second approver. "
        "Nothing is deleted until another approver reacts.", "Dry run and ask", danger=True))
    alternatives = {"type": "static_select", "action_id": Action.ALTERNATIVES,
                    "placeholder": plain_obj("Alternatives…"),
                    "options": [option(text, value) for value, text in (
                        ("flag", "Disable a feature flag"), ("partial", "Partial rollback (one file)"),
                        ("safe_revert", "Safe revert (git revert)"), ("hotfix", "Forward fix (hotfix branch)"))]}
    if incident.autopilot is not None:
        buttons.append(button("⏸️ Pause autopilot", Action.PAUSE, incident.id))
    elif (first := next_step(incident)) is not None:
        buttons.append(button("▶️ Run the rest", Action.RUN_REST, incident.id, confirm=confirm(
            "Run the remaining steps?", f"From {first.value} on, each step runs as if typed, with its plan and result "
            "in the thread" + (f"; revert resets the code to {escape(target)}" if first in (StepName.BACKUP,
                                                                                       StepName.REVERT) else "")
            + ". It stops at the first failure, and any commander can pause it. Never the danger zone.", "Run them")))
    return [*buttons, cleanup, alternatives]


def panel(incident: Incident, runs: list[StepRun], target: str) -> Message:
    upcoming = next_action(incident)
    sev = f" {incident.severity.value}" if incident.severity else ""
    title = f"{'🚨' if incident.active else '🏁'} Rollback {incident.id}{sev} — {phase_title(incident)}"
    blocks: Blocks = [
        header(title, Block.PANEL_HEADER),
        {"type": "section", "text": mrkdwn_obj(render("panel.md.j2", incident=incident,
                                                      database=database_line(incident)))},
        {"type": "section", "block_id": Block.STEPS, "text": mrkdwn_obj(progress(incident, runs))},
        {"type": "section", "block_id": Block.NEXT, "text": mrkdwn_obj(next_line(upcoming))},
    ]
    if incident.active:
        blocks.append({"type": "actions", "block_id": Block.STEP_BUTTONS,
                       "elements": _step_buttons(incident, upcoming, target)})
    more: Blocks = []
    if incident.checklist_link:
        checklists: dict[str, Any] = {"type": "button", "action_id": Action.OPEN_CHECKLISTS,
                                      "text": plain_obj("📋 Checklists"), "url": incident.checklist_link,
                                      "value": incident.id}
        if upcoming.kind is NextKind.CONFIRM:
            checklists["style"] = "primary"  # the next thing to do is in there
        more.append(checklists)
    more += [button("Status", Action.STATUS, incident.id)]
    if incident.active:
        more += [button("Stakeholder details", Action.COMMS_EDIT, incident.id),
                 button("Root cause", Action.RCA, incident.id),
                 button("Close incident", Action.CLOSE, incident.id,
                        style="primary" if upcoming.kind is NextKind.CLOSE else None, confirm=confirm(
                            "Close the incident?", "The bot checks the success criteria first and refuses while one "
                            "fails.", "Check and close"))]
    elif incident.rca is None:
        more.append(button("Root cause", Action.RCA, incident.id, style="primary"))
    more.append(button("Help", Action.HELP, incident.id))
    blocks.append({"type": "actions", "block_id": Block.ACTIONS, "elements": more})
    blocks.append(context(f"{milestones(incident)}\nEach step posts its plan and result in this thread · "
                          f"`{SLASH_COMMAND} help`"))
    notification = f"{title}: {escape(incident.reason)}" if incident.reason else title
    return message(notification, blocks)
