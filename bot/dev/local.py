"""`rollback-bot local`: its folder (fresh each run unless --keep), and a terminal prompt onto the emulated
workspace (next to the browser page)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from bot.dev.emulator import Emulator
from bot.dev.fakeclock import LaterClock
from bot.errors import ConfigError
from bot.ops.process import alive

if TYPE_CHECKING:
    from bot.app import SocketModeBot

#: What a run of `rollback-bot local` makes in its folder: the sandbox target (git repository, pm2 home), its
#: local MongoDB's data (the tenant databases), the bot's state, and the config written for it.
RUN_PARTS = ("target", "mongo", "data", "rollback.yml")
LOCK = "local.pid"  # the process of the run using the folder, while it runs


def prepare(root: Path, *, keep: bool) -> str:
    """Ready ``root`` for a run and say how, in one line. What an earlier run left running there — its pm2
    daemon, its local MongoDB — is stopped first. Then, unless ``keep``, the sandbox target, its tenant data
    and the bot's state are removed, so this run starts from the broken sandbox again. Refuses while another
    `rollback-bot local` uses the folder."""
    root = Path(root).resolve()
    other = running_local(root)
    if other is not None:
        raise ConfigError(f"another `rollback-bot local` (pid {other}) is running in {root}; stop it first "
                          "(Ctrl-C in its terminal), or give this one another --dir")
    stopped = stop_leftovers(root)
    after = f"; stopped what the last run left running first ({', '.join(stopped)})" if stopped else ""
    if keep:
        if (root / "target" / "sandbox.json").exists():
            return f"keeping the sandbox and state from the last run (--keep) in {root}{after}"
        return f"--keep: no sandbox from an earlier run in {root}, so making a new one{after}"
    removed = [part for part in RUN_PARTS if (root / part).exists() or (root / part).is_symlink()]
    for part in removed:
        path = root / part
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    if removed:
        return (f"fresh sandbox: removed the last run's sandbox, tenant data and state in {root} "
                f"(--keep keeps them){after}")
    return f"fresh sandbox in {root} (next time --keep keeps its state){after}"


def stop_leftovers(root: Path) -> list[str]:
    """Stop the pm2 daemon and the local MongoDB an earlier run of ``root`` left running (killed, or a crash);
    what was stopped, in words."""
    from bot.dev.localmongo import stop_detached
    from bot.dev.sandbox import Sandbox
    from bot.ops.pm2 import Pm2

    stopped = []
    try:
        sandbox = Sandbox.find(root / "target")
    except (OSError, ValueError, KeyError, TypeError):  # a half-written sandbox.json: its folder is still known
        sandbox = None
    homes = dict.fromkeys([root / "target" / "pm2-home", *([sandbox.pm2_home] if sandbox and sandbox.pm2_home
                                                          else [])])
    for home in homes:
        pid = _pid_in(home / "pm2.pid")
        if pid is None or not alive(pid):
            continue
        result = Pm2(home=home).kill()
        if not _gone(pid, timeout=10):  # `pm2 kill` answers before the daemon has exited
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        if not _gone(pid, timeout=5):
            raise ConfigError(f"the pm2 daemon the last run left running (pid {pid}, PM2_HOME={home}) did not stop: "
                              f"{result.tail(3)} — stop it with `PM2_HOME={home} pm2 kill`, then run again")
        stopped.append(f"its pm2 daemon, pid {pid}")
    if stop_detached(root / "mongo"):
        stopped.append(f"its local MongoDB in {root / 'mongo'}")
    return stopped


def claim(root: Path) -> None:
    """Mark ``root`` as used by this process (``prepare`` in another process refuses it meanwhile)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / LOCK).write_text(f"{os.getpid()}\n", encoding="utf-8")


def release(root: Path) -> None:
    if _pid_in(root / LOCK) == os.getpid():
        (root / LOCK).unlink(missing_ok=True)


def running_local(root: Path) -> int | None:
    """The pid of another live `rollback-bot local` using ``root``, if there is one."""
    pid = _pid_in(root / LOCK)
    if pid is None or pid == os.getpid() or not alive(pid):
        return None
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return pid  # no /proc here: a live process with that pid is taken at its word
    return pid if b"local" in argv else None  # the pid was reused by something else


def _pid_in(path: Path) -> int | None:
    try:
        return int(path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None


def _gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


HELP = """Type what a Slack user would:
  /rollback start deploy broke health     a slash command, as the current user in the current channel
  @bot status                             mention the bot
  :as alex | :as casey | :as blake        switch user (casey commands, alex and dana approve, blake watches)
  :in #stakeholders                       switch channel
  :react white_check_mark                 react to the bot's latest message in this channel (:unreact to remove)
  :tick students professors …             tick checkboxes in the checklists message (e.g. success criteria)
  :form eta="Friday 12:00" students=…     fill in and submit the form the bot opened last (comms edit, rca)
  :later 7d | :later 3h | :later 90m      the bot's clock jumps ahead (a follow-up's reminder after the close)
  :quit                                   stop"""

LATER = re.compile(r"(\d+)\s*([dhm])")
UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def later(clock: LaterClock, bot: SocketModeBot) -> Callable[[str], str]:
    """`:later 7d`: the bot's clock jumps ahead, then the follow-up reminders' job runs (as the scheduler would
    within the hour), so a week after the close can be seen in a minute. Answers in words."""

    def jump(text: str) -> str:
        found = LATER.fullmatch(text.strip())
        if found is None:
            return "(say how far ahead: :later 7d, :later 3h or :later 90m)"
        unit = UNITS[found.group(2)]
        now = clock.advance(**{unit: int(found.group(1))})
        sent = bot.services.followups.remind()
        return (f"(the bot's clock is now {now:%Y-%m-%d %H:%M} UTC, {found.group(1)} {unit} ahead; "
                f"follow-up reminders sent: {sent})")

    return jump


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


def repl(emulator: Emulator, jump: Callable[[str], str] | None = None) -> None:
    """The prompt; ``jump`` (see :func:`later`) moves the bot's clock for `:later`."""
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
        elif line.startswith(":later"):
            print(jump(line[len(":later"):]) if jump else "(this prompt has no clock to move)")
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
