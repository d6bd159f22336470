"""Block Kit building blocks, within Slack's limits: long text is split at line boundaries, never mid-word or
mid-entity, into sections of at most 3,000 characters and messages of at most 50 blocks (the rest becomes
thread replies), so nothing a person must read is cut off."""

from __future__ import annotations

from typing import Any

from bot.domain.ports import Message
from bot.slack_ui.escape import plain_text

Block = dict[str, Any]
SECTION_MAX = 3000
MESSAGE_BLOCKS = 50
TEXT_MAX = 3000  # the notification/fallback text: kept short, the blocks carry the content


def mrkdwn_obj(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def plain_obj(text: str, limit: int = 75) -> dict[str, Any]:
    return {"type": "plain_text", "text": plain_text(text, limit), "emoji": True}


def header(text: str, block_id: str | None = None) -> Block:
    block: Block = {"type": "header", "text": plain_obj(text, 150)}
    if block_id:
        block["block_id"] = block_id
    return block


def context(text: str) -> Block:
    return {"type": "context", "elements": [mrkdwn_obj(text[:SECTION_MAX])]}


def divider() -> Block:
    return {"type": "divider"}


def _inside_entity(line: str, cut: int) -> bool:
    """Would cutting `line` before index `cut` split an entity (``&amp;``) or a Slack link/mention (``<…>``)?"""
    amp, semi = line.rfind("&", 0, cut), line.rfind(";", 0, cut)
    if amp > semi and amp >= cut - 8:
        return True
    return line.rfind("<", 0, cut) > line.rfind(">", 0, cut)


def _cut_at(line: str, limit: int) -> int:
    """Where to cut one over-long line: the last space before the limit outside any entity, else the last
    position outside one, else the limit itself (a single entity longer than a section cannot be kept whole)."""
    for cut in range(limit, limit // 2, -1):
        if line[cut - 1] == " " and not _inside_entity(line, cut):
            return cut
    for cut in range(limit, 0, -1):
        if not _inside_entity(line, cut):
            return cut
    return limit


def split_text(text: str, limit: int = SECTION_MAX) -> list[str]:
    """Chunks of at most ``limit`` characters, cut at line ends (or, for one very long line, at a space),
    never inside an entity like ``&amp;`` or a link/mention like ``<https://…|label>``."""
    chunks: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            cut = _cut_at(line, limit)
            if current:
                chunks.append(current)
                current = ""
            chunks.append(line[:cut].rstrip(" "))
            line = line[cut:].lstrip(" ")
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            chunks.append(current)
            current = line
        else:
            current = candidate
    if current or not chunks:
        chunks.append(current)
    return [c for c in chunks if c.strip()] or [text[:limit]]


def sections(text: str, block_id: str | None = None) -> list[Block]:
    blocks: list[Block] = [{"type": "section", "text": mrkdwn_obj(chunk)} for chunk in split_text(text)]
    if block_id and blocks:
        blocks[0]["block_id"] = block_id
    return blocks


def fallback(text: str) -> str:
    """The top-level `text` (notifications, screen readers, clients without blocks): the same mrkdwn (already
    escaped), cut at a line boundary to one section's length."""
    return split_text(text.strip(), TEXT_MAX)[0]


def message(text: str, blocks: list[Block], *, notification: str | None = None) -> Message:
    """A message within Slack's 50-block limit; blocks beyond it go into follow-up thread replies."""
    head, rest = blocks[:MESSAGE_BLOCKS], blocks[MESSAGE_BLOCKS:]
    overflow = [Message(text="(continued)", blocks=rest[i:i + MESSAGE_BLOCKS])
                for i in range(0, len(rest), MESSAGE_BLOCKS)]
    return Message(text=fallback(notification or text), blocks=head, overflow=overflow)


def text_message(text: str) -> Message:
    return message(text, sections(text))


def button(label: str, action_id: str, value: str, *, style: str | None = None,
           confirm: Block | None = None) -> Block:
    element: Block = {"type": "button", "action_id": action_id, "text": plain_obj(label, 75), "value": value[:2000]}
    if style:
        element["style"] = style
    if confirm:
        element["confirm"] = confirm
    return element


def confirm(title: str, text: str, yes: str, no: str = "Cancel", *, danger: bool = False) -> Block:
    dialog: Block = {"title": plain_obj(title, 100), "text": mrkdwn_obj(text[:300]),
                     "confirm": plain_obj(yes, 30), "deny": plain_obj(no, 30)}
    if danger:
        dialog["style"] = "danger"
    return dialog


def option(label: str, value: str) -> Block:
    return {"text": plain_obj(label, 75), "value": value[:150]}
