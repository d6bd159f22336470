"""Block Kit for every message the bot posts. Text comes from templates/, ids from bot.ids."""

from __future__ import annotations

from typing import Any

from bot.comms import render, slack_date, slack_escape
from bot.ids import SLASH_COMMAND, Action, Block, View
from bot.incident import (
    MILESTONE_LABELS,
    PRE_ROLLBACK_CHECKLIST,
    RCA_CAUSES,
    RCA_PHASES,
    ROLLBACK_CRITERIA,
    SUCCESS_CRITERIA,
    Incident,
    Item,
    StepRun,
)
from bot.runbook import STEPS, Step

Blocks = list[dict[str, Any]]


def _text(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _option(item: Item) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": item.text[:75]}, "value": item.key}


def _groups() -> list[tuple[str, list[Item]]]:
    groups: dict[str, list[Item]] = {}
    for item in ROLLBACK_CRITERIA:
        groups.setdefault(item.group, []).append(item)
    return list(groups.items())


def _step_button(step: Step, incident: Incident, target: str) -> dict[str, Any]:
    button: dict[str, Any] = {"type": "button", "action_id": f"{Action.STEP}:{step.name}",
                              "text": {"type": "plain_text", "text": step.title}, "value": incident.id}
    if step.name == "revert":
        button["style"] = "danger"
        button["confirm"] = {
            "title": {"type": "plain_text", "text": "Revert the code?"},
            "text": {"type": "mrkdwn", "text": f"`git reset --hard {target}` in `{incident.target}`. The bot shows the "
                                               "commits it drops and stashes uncommitted work first."},
            "confirm": {"type": "plain_text", "text": "Revert"},
            "deny": {"type": "plain_text", "text": "Cancel"},
            "style": "danger",
        }
    return button


def panel(incident: Incident, runs: list[StepRun] | None = None, target: str = "the rollback target"
          ) -> tuple[str, Blocks]:
    """The control panel: posted by `start`, updated in place as the incident changes."""
    latest: dict[str, StepRun] = {}
    for run in runs or []:
        latest[run.step] = run
    state = "active" if incident.active else "closed"
    title = f"🚨 Rollback {incident.id} — {state}"
    blocks: Blocks = [
        {"type": "header", "block_id": Block.PANEL_HEADER, "text": {"type": "plain_text", "text": title}},
        {"type": "section", "text": _text(render("panel.md.j2", incident=incident,
                                                 milestones=list(MILESTONE_LABELS.items())))},
        {"type": "divider"},
        {"type": "section", "text": _text("*When to rollback* — tick what you see:")},
    ]
    criteria_elements = []
    for index, (group, items) in enumerate(_groups()):
        element: dict[str, Any] = {
            "type": "checkboxes",
            "action_id": f"{Action.CRITERION}:{index}",
            "options": [_option(i) for i in items],
        }
        ticked = [_option(i) for i in items if i.key in incident.criteria]
        if ticked:
            element["initial_options"] = ticked
        criteria_elements.append(element)
        del group
    blocks.append({"type": "actions", "block_id": Block.CRITERIA, "elements": criteria_elements})
    blocks.append({"type": "section", "block_id": Block.STEPS, "text": _text(
        render("steps.md.j2", steps=list(STEPS.values()), latest=latest))})
    if incident.active:
        danger = {
            "type": "button", "action_id": Action.CLEANUP, "style": "danger", "value": incident.id,
            "text": {"type": "plain_text", "text": "DB cleanup (danger zone)"},
            "confirm": {
                "title": {"type": "plain_text", "text": "Prepare the database cleanup?"},
                "text": {"type": "mrkdwn", "text": "This computes a dry run per tenant and asks a second approver. "
                                                   "Nothing is deleted until another approver reacts."},
                "confirm": {"type": "plain_text", "text": "Dry run and ask"},
                "deny": {"type": "plain_text", "text": "Cancel"},
                "style": "danger",
            },
        }
        alternatives = {
            "type": "static_select", "action_id": Action.ALTERNATIVES,
            "placeholder": {"type": "plain_text", "text": "Alternatives…"},
            "options": [{"text": {"type": "plain_text", "text": text}, "value": value} for value, text in (
                ("flag", "Disable a feature flag"), ("partial", "Partial rollback (one file)"),
                ("safe_revert", "Safe revert (git revert)"), ("hotfix", "Forward fix (hotfix branch)"))],
        }
        blocks.append({"type": "actions", "block_id": Block.STEP_BUTTONS,
                       "elements": [*(_step_button(step, incident, target) for step in STEPS.values()), danger,
                                    alternatives]})
    blocks.append({"type": "section", "block_id": Block.CHECKLIST, "text": _text(
        render("checklist.md.j2", incident=incident, items=PRE_ROLLBACK_CHECKLIST))})
    manual = [item for item in PRE_ROLLBACK_CHECKLIST if not item.automatic]
    checklist: dict[str, Any] = {
        "type": "checkboxes", "action_id": Action.CHECKLIST, "options": [_option(i) for i in manual],
    }
    done = [_option(i) for i in manual if i.key in incident.checklist]
    if done:
        checklist["initial_options"] = done
    buttons: list[dict[str, Any]] = [
        {"type": "button", "action_id": Action.STATUS, "text": {"type": "plain_text", "text": "Status"},
         "value": incident.id},
        {"type": "button", "action_id": Action.HELP, "text": {"type": "plain_text", "text": "Help"},
         "value": incident.id},
    ]
    if incident.active:
        buttons += [
            {"type": "button", "action_id": Action.COMMS_EDIT, "value": incident.id,
             "text": {"type": "plain_text", "text": "Stakeholder details"}},
            {"type": "button", "action_id": Action.RCA, "value": incident.id,
             "text": {"type": "plain_text", "text": "Root cause"}},
        ]
    blocks.append({"type": "actions", "block_id": Block.ACTIONS,
                   "elements": [checklist, *buttons] if incident.active else buttons})
    blocks.append({"type": "section", "block_id": Block.SUCCESS, "text": _text(
        render("success.md.j2", incident=incident, items=SUCCESS_CRITERIA))})
    if incident.active:
        manual_success = [item for item in SUCCESS_CRITERIA if not item.automatic]
        confirm: dict[str, Any] = {"type": "checkboxes", "action_id": Action.SUCCESS,
                                   "options": [_option(i) for i in manual_success]}
        confirmed = [_option(i) for i in manual_success if i.key in incident.success]
        if confirmed:
            confirm["initial_options"] = confirmed
        close = {"type": "button", "action_id": Action.CLOSE, "value": incident.id,
                 "text": {"type": "plain_text", "text": "Close incident"},
                 "confirm": {"title": {"type": "plain_text", "text": "Close the incident?"},
                             "text": {"type": "mrkdwn", "text": "The bot checks the success criteria first and "
                                                                "refuses while one fails."},
                             "confirm": {"type": "plain_text", "text": "Check and close"},
                             "deny": {"type": "plain_text", "text": "Cancel"}}}
        blocks.append({"type": "actions", "elements": [confirm, close]})
    blocks.append({"type": "context", "elements": [_text(
        f"Steps: `{SLASH_COMMAND} help` · details of each step go in this thread")]})
    return f"{title}: {incident.reason}" if incident.reason else title, blocks


def section(text: str) -> Blocks:
    return [{"type": "section", "text": _text(text[:2900])}]


def status(incident: Incident, panel_link: str | None) -> tuple[str, Blocks]:
    criteria = [item.text for item in ROLLBACK_CRITERIA if item.key in incident.criteria]
    text = render("status.md.j2", incident=incident, criteria=criteria, panel_link=panel_link)
    return f"{incident.id} status", section(text)


def error(message: str) -> tuple[str, Blocks]:
    text = f":warning: {message}"  # BotError messages escape what users typed (bot.errors.quote)
    return text, section(text)


def _input(block_id: str, label: str, initial: str | None, *, multiline: bool = True, optional: bool = True,
           hint: str | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": "value", "multiline": multiline,
                               "max_length": 2000}
    if initial:
        element["initial_value"] = initial
    block: dict[str, Any] = {"type": "input", "block_id": block_id, "optional": optional, "element": element,
                             "label": {"type": "plain_text", "text": label}}
    if hint:
        block["hint"] = {"type": "plain_text", "text": hint}
    return block


def comms_edit_view(incident: Incident) -> dict[str, Any]:
    """`/rollback comms edit`: what only people know, for the stakeholder update."""
    d = incident.comms_details
    return {
        "type": "modal", "callback_id": View.COMMS_EDIT, "private_metadata": incident.id,
        "title": {"type": "plain_text", "text": "Stakeholder details"},
        "submit": {"type": "plain_text", "text": "Save"}, "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            _input("students", "Impact on students", d.students),
            _input("professors", "Impact on professors", d.professors),
            _input("data", "Impact on data", d.data, hint="Left empty, the update says what the bot recorded."),
            _input("next_steps", "Next steps (one per line)", d.next_steps,
                   hint="Left empty: the runbook's (RCA underway, fix offline, testing before re-deployment)."),
            _input("eta", "ETA for the fix", d.eta, multiline=False),
        ],
    }


def rca_view(incident: Incident) -> dict[str, Any]:
    """`/rollback rca`: the runbook's root-cause questions."""
    rca = incident.rca
    phase: dict[str, Any] = {"type": "static_select", "action_id": "value",
                             "options": [{"text": {"type": "plain_text", "text": p}, "value": p} for p in RCA_PHASES]}
    if rca and rca.phase:
        phase["initial_option"] = {"text": {"type": "plain_text", "text": rca.phase}, "value": rca.phase}
    causes: dict[str, Any] = {"type": "checkboxes", "action_id": "value",
                              "options": [{"text": {"type": "plain_text", "text": text}, "value": key}
                                          for key, text in RCA_CAUSES.items()]}
    if rca and rca.causes:
        causes["initial_options"] = [o for o in causes["options"] if o["value"] in rca.causes]
    return {
        "type": "modal", "callback_id": View.RCA, "private_metadata": incident.id,
        "title": {"type": "plain_text", "text": f"Root cause {incident.id}"[:24]},
        "submit": {"type": "plain_text", "text": "Save"}, "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            _input("what_went_wrong", "What went wrong? (user reports)", rca.what_went_wrong if rca else None),
            _input("errors", "The exact error messages", rca.errors if rca else None),
            {"type": "input", "block_id": "phase", "optional": True, "element": phase,
             "label": {"type": "plain_text", "text": "Which phase caused it?"}},
            {"type": "input", "block_id": "causes", "optional": True, "element": causes,
             "label": {"type": "plain_text", "text": "Why did it go wrong?"}},
            _input("why", "Why, in more detail", rca.why if rca else None),
            _input("prevention", "How to prevent it in future? (more testing, gradual rollout, monitoring…)",
                   rca.prevention if rca else None),
        ],
    }


def view_values(view: dict[str, Any]) -> dict[str, Any]:
    """A submitted modal's state as {block_id: text | option value | [option values]}."""
    out: dict[str, Any] = {}
    for block_id, actions in (view.get("state") or {}).get("values", {}).items():
        for element in actions.values():
            if "selected_options" in element:
                out[block_id] = [o["value"] for o in element.get("selected_options") or []]
            elif "selected_option" in element:
                out[block_id] = (element.get("selected_option") or {}).get("value")
            else:
                out[block_id] = element.get("value")
    return out


def comms_preview(incident: Incident, update: Any, channel: str | None) -> tuple[str, Blocks]:
    """`/rollback comms`: the next update, privately, with a button to post it now."""
    where = f"<#{channel}>" if channel else "no stakeholder channel (set `slack.stakeholder_channel`)"
    blocks: Blocks = [
        {"type": "context", "elements": [_text(f"Preview of the next stakeholder update for {where}:")]},
        *update.blocks(),
        {"type": "actions", "elements": [
            {"type": "button", "action_id": Action.COMMS_POST, "style": "primary", "value": incident.id,
             "text": {"type": "plain_text", "text": "Post now"}},
            {"type": "button", "action_id": Action.COMMS_EDIT, "value": incident.id,
             "text": {"type": "plain_text", "text": "Edit details"}},
        ]},
    ]
    return f"Preview: {update.subject}", blocks


def health(checks: list[Any], monitor: Any) -> tuple[str, Blocks]:
    """`/rollback health`: each check's state and its latest measurement."""
    if not checks:
        text = (f"No scheduled check has run yet (every {monitor.interval_s:g}s"
                + ("" if monitor.enabled else "; `monitor.enabled` is false") + ").")
        return text, section(text)
    lines = ["*Scheduled checks*: each one's state and latest result"]
    for check in checks:
        last = check.last
        mark = {"healthy": "🟢", "failing": "🔴"}.get(check.status, "⚪")
        latency = f" · {last.latency_ms:.0f} ms" if last and last.latency_ms is not None else ""
        when = f" · {slack_date(last.at)}" if last else ""
        detail = slack_escape(last.detail) if last else "no result yet"
        lines.append(f"{mark} *{slack_escape(check.id)}* — {check.status}: {detail}{latency}{when}")
    text = "\n".join(lines)
    return text, section(text)


ALTERNATIVE_HELP = {
    "flag": "*Disable a feature flag* — `/rollback flag NAME=value` "
            "(e.g. `/rollback flag ENABLE_REALTIME_TIPS=false`): the name must be in the target's `.env` or on "
            "`target.flag_allow_list`. `.env` is backed up, edited in place, then the apps restart and verify runs. "
            "`/rollback flag undo` puts the previous value back.",
    "partial": "*Partial rollback* — `/rollback partial <path> [commit]`: one tracked file back from a commit "
               "(default: the rollback target), then rebuild, restart, verify. The plan shows the diff stat.",
    "safe_revert": "*Safe revert* — `/rollback revert --safe [commit…]`: `git revert` of those commits (default: "
                   "everything after the rollback target) as new commits; no history is rewritten and a conflict "
                   "aborts cleanly. Then rebuild, restart, verify.",
    "hotfix": "*Forward fix* — `/rollback hotfix <name>` creates `hotfix/<name>` from HEAD; commit the fix there, "
              "then `/rollback hotfix ship` builds, restarts and verifies it and offers to push it (never forced).",
}


def alternative_help(value: str) -> tuple[str, Blocks]:
    text = ALTERNATIVE_HELP.get(value, "Pick one of the alternatives.")
    return text, section(text)
