"""Private answers: the incident's status, what to do next, help, and the alternatives menu's explanations."""

from __future__ import annotations

from bot.commands import GROUPS, Usage
from bot.domain.checklists import ROLLBACK_CRITERIA
from bot.domain.guide import next_action
from bot.domain.incident import Incident, IncidentRole
from bot.domain.ports import Message
from bot.ids import SLASH_COMMAND
from bot.slack_ui.blocks import context, text_message
from bot.slack_ui.escape import escape, link
from bot.slack_ui.panel import next_line, phase_title
from bot.slack_ui.render import render

ALTERNATIVE_HELP = {
    "flag": "*Disable a feature flag* — `/rollback flag NAME=value` (e.g. "
            "`/rollback flag ENABLE_REALTIME_TIPS=false`): the name must be on `target.flag_allow_list`, or already "
            "in the target's `.env` and not a setting or secret. `.env` is backed up, edited in place, then the "
            "backend restarts and verify runs. `/rollback flag undo` puts the previous value back.",
    "partial": "*Partial rollback* — `/rollback partial <path> [commit]`: one tracked file back from a commit "
               "(default: the rollback target), then rebuild, restart, verify. The plan shows the diff stat.",
    "safe_revert": "*Safe revert* — `/rollback revert --safe [commit…]`: `git revert` of those commits (default: "
                   "everything after the rollback target) as new commits; no history is rewritten and a conflict "
                   "aborts cleanly. Then rebuild, restart, verify.",
    "hotfix": "*Forward fix* — `/rollback hotfix <name>` creates `hotfix/<name>` from HEAD; commit the fix there, "
              "then `/rollback hotfix ship` builds, restarts and verifies it and offers to push it (never forced).",
}


def status(incident: Incident, panel_link: str | None) -> Message:
    criteria = [item.text for item in ROLLBACK_CRITERIA if item.key in incident.criteria]
    return text_message(render("status.md.j2", incident=incident, criteria=criteria, panel_link=panel_link))


def help_text(subcommands: list[Usage], incident: Incident | None = None) -> Message:
    """The subcommands under their headings (the runbook's path first, the alternatives apart), and, in a channel
    with an active incident, what to do next there."""
    groups = [(group, [u for u in subcommands if u.group == group]) for group in GROUPS]
    return text_message(render("help.md.j2", command=SLASH_COMMAND, groups=[g for g in groups if g[1]],
                               incident=incident if incident is not None and incident.active else None,
                               upcoming=next_action(incident) if incident is not None else None))


def alternative_help(value: str) -> Message:
    return text_message(ALTERNATIVE_HELP.get(value, "Pick one of the alternatives."))


def started(text: tuple[object, ...]) -> Message:
    from bot.slack_ui.escape import mrkdwn

    return text_message(mrkdwn(text))  # type: ignore[arg-type]


# What each incident role is for, in the words of a refusal to its holder (bot/domain/incident.py: IncidentRole).
ROLE_IS_FOR = {IncidentRole.COMMS: "the stakeholder updates (`/rollback comms`) are yours",
               IncidentRole.SCRIBE: "the timeline is yours (`/rollback note …`, and 📌 on any message)"}


def with_next(reply: Message, incident: Incident, panel_link: str | None, user: str | None = None) -> Message:
    """A private reply (a refusal) with the incident's Next line under it and a link back to the panel; to someone
    who holds one of the incident's roles, also what that role lets them do (a refusal alone reads as "nothing")."""
    if not incident.active:
        return reply
    line = next_line(next_action(incident))
    if panel_link:
        line += " · " + link(panel_link, "Open the control panel")
    held = [f"You are {escape(incident.id)}'s {role.named}: {ROLE_IS_FOR.get(role, 'see the panel')}."
            for role, holder in incident.held_roles if user is not None and holder == user]
    return Message(reply.text, [*reply.blocks, *(context(h) for h in held), context(line)])


def next_step(incident: Incident, panel_link: str | None) -> Message:
    """`/rollback next`: the panel's Next line (and its optional hint), privately, under the incident's id and
    phase, with a link back to the panel for its buttons."""
    lines = [f"*{escape(incident.id)} — {escape(phase_title(incident))}*", next_line(next_action(incident))]
    if panel_link:
        lines.append(link(panel_link, "Open the control panel") + " for its buttons.")
    return text_message("\n".join(lines))
