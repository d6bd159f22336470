"""A terminal prompt onto the emulated workspace, for `rollback-bot local` (the browser page comes later)."""

from __future__ import annotations

import re
import time

from bot.emulator import Emulator

HELP = """Type what a Slack user would:
  /rollback start deploy broke health     a slash command, as the current user in the current channel
  @bot status                             mention the bot
  :as alex | :as casey | :as blake        switch user (casey commands, alex and dana approve, blake watches)
  :in #stakeholders                       switch channel
  :react white_check_mark                 react to the bot's latest message in this channel (:unreact to remove)
  :tick students professors …             tick checkboxes in the checklists message (e.g. success criteria)
  :form eta="Friday 12:00" students=…     fill in and submit the form the bot opened last (comms edit, rca)
  :quit                                   stop"""


def _plain(text: str) -> str:
    text = re.sub(r"<!date\^\d+\^[^|]*\|([^>]*)>", r"\1", text)
    text = re.sub(r"<@([A-Z0-9]+)>", r"@\1", text)
    return re.sub(r"<([^|>]+)\|([^>]+)>", r"\2", text)


def _render(message: dict[str, object]) -> str:
    blocks = message.get("blocks") or []
    parts = []
    for block in blocks:  # type: ignore[attr-defined]
        if block.get("type") == "header":
            parts.append(f"== {block['text']['text']} ==")
        elif block.get("type") == "section" and block.get("text"):
            parts.append(block["text"]["text"])
        elif block.get("type") == "actions":
            labels = [e.get("text", {}).get("text") for e in block["elements"] if e.get("type") == "button"]
            if labels:
                parts.append("[" + "] [".join(labels) + "]")
    return _plain("\n".join(parts) or str(message.get("text", "")))


def repl(emulator: Emulator) -> None:
    ws = emulator.ws
    user, channel = "casey", "incident-rollback"
    seen: set[str] = set()
    seen_eph = 0
    print(HELP)
    while True:
        try:
            line = input(f"{user}@#{channel}> ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return
        if not line:
            continue
        if line in (":quit", ":q"):
            return
        if line.startswith(":as "):
            user = ws.user_by_name(line[4:].strip()).name
            continue
        if line.startswith(":in "):
            channel = ws.channel_by_name(line[4:].strip()).name
            continue
        if line.startswith((":react ", ":unreact ")):
            cid = ws.channel_by_name(channel).id
            latest = [m for m in ws.channel_messages(cid) if m.get("bot_id")]
            if latest:
                emulator.react(user, channel, latest[-1]["ts"], line.split()[1].strip(":"),
                               added=line.startswith(":react")).wait(10)
        elif line.startswith(":tick"):
            _tick(emulator, user, channel, line.split()[1:])
        elif line.startswith(":form"):
            _form(emulator, user, line[len(":form"):])
        elif line.startswith("/"):
            command, _, text = line.partition(" ")
            emulator.slash(user, channel, text, command).wait(10)
        elif line.startswith("@bot"):
            emulator.mention(user, channel, line[4:].strip()).wait(10)
        else:
            emulator.post_as(user, channel, line)
        time.sleep(0.6)
        for ch in ws.channels.values():
            for message in ws.channel_messages(ch.id, include_replies=True):
                key = f"{ch.id}:{message['ts']}:{message.get('updates', 0)}"
                if key in seen or message.get("bot_id") is None:
                    continue
                seen.add(key)
                where = f"#{ch.name}" + (" (thread)" if message.get("thread_ts") not in (None, message["ts"]) else "")
                print(f"--- {where}{' (updated)' if message.get('updates') else ''}\n{_render(message)}")
        ephemerals = ws.ephemerals_for()
        for eph in ephemerals[seen_eph:]:
            who = ws.users[eph.user].name
            print(f"--- only visible to {who}\n{_render({'blocks': eph.blocks or [], 'text': eph.text})}")
        seen_eph = len(ephemerals)


def _tick(emulator: Emulator, user: str, channel: str, keys: list[str]) -> None:
    """Tick the given options of the checkbox group that offers them (the checklists message, in the thread)."""
    ws = emulator.ws
    cid = ws.channel_by_name(channel).id
    for message in reversed([m for m in ws.channel_messages(cid, include_replies=True) if m.get("blocks")]):
        for block in message["blocks"]:
            for element in block.get("elements", []):
                values = {o["value"] for o in element.get("options", [])}
                if element.get("type") == "checkboxes" and set(keys) <= values:
                    current = {o["value"] for o in element.get("initial_options", [])}
                    emulator.click(user, channel, message["ts"], element["action_id"],
                                   selected=sorted(current | set(keys))).wait(10)
                    return
    print(f"(no checkbox group offers {' '.join(keys)})")


def _form(emulator: Emulator, user: str, text: str) -> None:
    import shlex

    if not emulator.ws.views:
        print("(no form is open: try /rollback comms edit or /rollback rca)")
        return
    view = emulator.ws.views[-1]
    values: dict[str, str | list[str] | None] = {}
    for word in shlex.split(text):
        key, _, value = word.partition("=")
        values[key] = value.split(",") if key == "causes" else value
    emulator.submit_view(user, view["id"], values).wait(10)
