"""The two forms (modals): stakeholder details and the root-cause analysis; reading and answering them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.domain.checklists import RCA_CAUSES, RCA_PHASES
from bot.domain.incident import Incident
from bot.domain.ports import View
from bot.ids import View as ViewId
from bot.slack_ui.blocks import option, plain_obj
from bot.text import Rich, plain

MAX_INPUT = 2000


def _input(block_id: str, label: str, initial: str | None, *, multiline: bool = True, optional: bool = True,
           hint: str | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": "value", "multiline": multiline,
                               "max_length": MAX_INPUT}
    if initial:
        element["initial_value"] = initial[:MAX_INPUT]
    block: dict[str, Any] = {"type": "input", "block_id": block_id, "optional": optional, "element": element,
                             "label": plain_obj(label, 2000)}
    if hint:
        block["hint"] = plain_obj(hint, 2000)
    return block


def _modal(callback_id: str, title: str, incident: Incident, blocks: list[dict[str, Any]],
           reply_to: str | None = None) -> View:
    metadata = f"{incident.id} {reply_to}" if reply_to else incident.id
    return View({"type": "modal", "callback_id": callback_id, "private_metadata": metadata,
                 "title": plain_obj(title, 24), "submit": plain_obj("Save", 24), "close": plain_obj("Cancel", 24),
                 "blocks": blocks})


def form_origin(view: dict[str, Any]) -> tuple[str, str | None]:
    """A submitted form's incident id, and the response_url of the preview it was opened from (None when it was
    opened another way): the form carries both in its private_metadata."""
    incident_id, _, reply_to = str(view.get("private_metadata") or "").partition(" ")
    return incident_id, reply_to or None


def comms_edit_view(incident: Incident, reply_to: str | None = None) -> View:
    """`/rollback comms edit`: what only people know, for the stakeholder update. Opened from a preview's *Edit
    details*, ``reply_to`` is that click's response_url: saving the form replaces the preview in place."""
    d = incident.comms_details
    return _modal(ViewId.COMMS_EDIT, "Stakeholder details", incident, [
        _input("students", "Impact on students", d.students),
        _input("professors", "Impact on professors", d.professors),
        _input("data", "Impact on data", d.data, hint="Left empty, the update says what the bot recorded."),
        _input("next_steps", "Next steps (one per line)", d.next_steps,
               hint="Left empty: the runbook's (RCA underway, fix offline, testing before re-deployment)."),
        _input("eta", "ETA for the fix", d.eta, multiline=False),
    ], reply_to)


def rca_view(incident: Incident) -> View:
    """`/rollback rca`: the runbook's root-cause questions."""
    rca = incident.rca
    phase: dict[str, Any] = {"type": "static_select", "action_id": "value",
                             "options": [option(p, p) for p in RCA_PHASES]}
    if rca and rca.phase:
        phase["initial_option"] = option(rca.phase, rca.phase)
    causes: dict[str, Any] = {"type": "checkboxes", "action_id": "value",
                              "options": [option(text, key) for key, text in RCA_CAUSES.items()]}
    if rca and rca.causes:
        causes["initial_options"] = [o for o in causes["options"] if o["value"] in rca.causes]
    return _modal(ViewId.RCA, f"Root cause {incident.id}", incident, [
        _input("what_went_wrong", "What went wrong? (user reports)", rca.what_went_wrong if rca else None),
        _input("errors", "The exact error messages", rca.errors if rca else None),
        {"type": "input", "block_id": "phase", "optional": True, "element": phase,
         "label": plain_obj("Which phase caused it?", 2000)},
        {"type": "input", "block_id": "causes", "optional": True, "element": causes,
         "label": plain_obj("Why did it go wrong?", 2000)},
        _input("why", "Why, in more detail", rca.why if rca else None),
        _input("prevention", "How to prevent it in future? (more testing, gradual rollout, monitoring…)",
               rca.prevention if rca else None),
    ])


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


def form_errors(errors: Mapping[str, Rich]) -> dict[str, Any]:
    """Slack's answer to a view_submission that shows the problems next to the fields."""
    return {"response_action": "errors", "errors": {block: plain(text)[:150] for block, text in errors.items()}}
