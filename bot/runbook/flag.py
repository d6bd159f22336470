"""Safer alternative 1: set a feature flag in the target's `.env` (backed up first), then restart and verify.

Only flags: a name on ``target.flag_allow_list``, or one already in ``.env`` that does not look like a
setting or a secret (``*_URI``, ``*_URL``, ``*SECRET*``, ``*TOKEN*``, ``*PASSWORD*``, ``*KEY*``, ``PORT``,
hosts, databases …); a value of one short line with no shell syntax. Everything else is refused, saying why.
"""

from __future__ import annotations

import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from bot.domain.runs import FlagArtifacts, StepName
from bot.domain.steps import Plan, StepContext, StepResult, check
from bot.errors import BadInput, Conflict, StepFailed, echo
from bot.ops import bsonfiles
from bot.ops.envfile import read_env_file, set_env_value
from bot.text import Code, Rich, join, rich

FLAG_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")
NOT_A_FLAG = re.compile(r"(SECRET|TOKEN|PASSWORD|PASSWD|PWD|KEY|URI|URL|DSN|CREDENTIAL|AUTH|CERT|PRIVATE|HOST|PORT"
                        r"|DATABASE|^DB_|_DB$|_DB_|MONGO|REDIS|PATH|ENDPOINT|USER|EMAIL|SMTP)")
FLAG_VALUE = re.compile(r"^[A-Za-z0-9_.,:/+=@%-]{1,200}$")
EXAMPLE = Code("/rollback flag ENABLE_REALTIME_TIPS=false")


def _mask(key: str, value: str | None) -> Rich:
    if value is None:
        return ("(not set)",)
    if NOT_A_FLAG.search(key) or len(value) >= 12:
        return ("•••••• (hidden)",)
    return (Code(value),) if value else ("(empty)",)


def is_flag(name: str, existing: set[str], allow_list: list[str]) -> bool:
    return name in allow_list or (name in existing and not NOT_A_FLAG.search(name))


@dataclass(frozen=True)
class FlagPlan:
    key: str
    value: str | None  # None: remove the line (undoing a flag that was not set before)
    existed: bool
    undo_of: str | None = None


class Flag:
    name = StepName.FLAG
    follow_ups: tuple[StepName, ...] = (StepName.RESTART, StepName.VERIFY)

    def plan(self, ctx: StepContext) -> Plan[FlagPlan]:
        env_path = ctx.config.target.env_path
        current = read_env_file(env_path) if env_path.exists() else {}
        if ctx.args == ["undo"]:
            return self._undo_plan(ctx, current)
        if len(ctx.args) != 1 or "=" not in ctx.args[0]:
            raise BadInput("Say which flag and its new value.", hint=("Example: ", EXAMPLE, ", or ",
                                                                       Code("/rollback flag undo"), "."))
        key, value = ctx.args[0].split("=", 1)
        allow = ctx.config.target.flag_allow_list
        if not FLAG_NAME.match(key):
            raise BadInput((echo(key), " is not a flag name."),
                           hint=("Names are upper case letters, digits and _, like ", Code("ENABLE_REALTIME_TIPS"),
                                 "."))
        if not is_flag(key, set(current), allow):
            known = sorted({k for k in current if is_flag(k, set(current), allow)} | set(allow))
            why = (" looks like a setting or a secret, not a feature flag" if key in current and key not in allow
                   else " is not in the target's .env and not on ")
            raise BadInput(rich(Code(key), why, () if key in current else (Code("target.flag_allow_list"),), "."),
                           hint=rich("Flags you can set: ", join([(Code(k),) for k in known]) or ("none",),
                                     ". Add more to ", Code("target.flag_allow_list"), " in rollback.yml."))
        if not FLAG_VALUE.match(value):
            raise BadInput("That value cannot go in .env: one short word or number (letters, digits and . , : / + = "
                           "@ % _ -), no spaces, quotes or shell syntax.", hint=("Example: ", EXAMPLE, "."))
        if current.get(key) == value:
            raise Conflict((Code(key), " is already ", *_mask(key, value), "."))
        return Plan(summary=rich("Set ", Code(key), " in ", Code(".env"), ", then restart and verify"),
                    lines=[rich(Code(key), ": ", _mask(key, current.get(key)), " → ", _mask(key, value)),
                           ("back up .env first (mode 0600), edit it in place (other lines and comments kept, "
                            "no duplicate key appended)",),
                           ("then restart the pm2 app(s) and verify",)],
                    facts=FlagPlan(key, value, key in current))

    def _undo_plan(self, ctx: StepContext, current: dict[str, str]) -> Plan[FlagPlan]:
        last = _last_flag(ctx)
        if last is None:
            raise Conflict("No flag change of this incident is left to undo.")
        old = _previous_value(last)
        return Plan(summary=rich("Undo the flag change: ", Code(last.key), " back to its previous value"),
                    lines=[rich(Code(last.key), ": ", _mask(last.key, current.get(last.key)), " → ",
                                _mask(last.key, old)),
                           ("back up .env first (mode 0600), edit it in place, then restart and verify",)],
                    facts=FlagPlan(last.key, old, last.existed, undo_of=_run_of(ctx, last)))

    def run(self, ctx: StepContext, plan: Plan[FlagPlan]) -> StepResult:
        facts = plan.facts
        env_path = ctx.config.target.env_path
        before = read_env_file(env_path).get(facts.key) if env_path.exists() else None
        folder = bsonfiles.private_dir(ctx.backups / "env")
        copy = folder / f"env-before-flag-{uuid.uuid4().hex[:8]}"
        if env_path.exists():
            shutil.copyfile(env_path, copy)
            copy.chmod(0o600)
        else:
            bsonfiles.private_write(copy, b"")
        ctx.progress(("editing ", Code(facts.key)))
        set_env_value(env_path, facts.key, facts.value)
        after = read_env_file(env_path).get(facts.key)
        ok = after == facts.value
        return StepResult(ok=ok, summary=rich(Code(facts.key), ": ", _mask(facts.key, before), " → ",
                                              _mask(facts.key, after)),
                          details=[(".env backed up to ", Code(str(copy)))],
                          checks=[check(f".env {facts.key}", ok, "set" if ok else "the file did not take the value")],
                          artifacts=FlagArtifacts(key=facts.key, existed=before is not None, backup=str(copy),
                                                  undo_of=facts.undo_of))


def _last_flag(ctx: StepContext) -> FlagArtifacts | None:
    runs = [r for r in ctx.history
            if r.step is StepName.FLAG and r.succeeded and isinstance(r.artifacts, FlagArtifacts)]
    undone = {r.artifacts.undo_of for r in runs if isinstance(r.artifacts, FlagArtifacts)}
    for run in reversed(runs):
        assert isinstance(run.artifacts, FlagArtifacts)
        if run.artifacts.undo_of is None and run.id not in undone:
            return run.artifacts
    return None


def _run_of(ctx: StepContext, artifacts: FlagArtifacts) -> str | None:
    return next((r.id for r in ctx.history if r.artifacts == artifacts), None)


def _previous_value(last: FlagArtifacts) -> str | None:
    if not last.existed:
        return None  # it was not set before: undo removes it
    try:
        return read_env_file(Path(last.backup)).get(last.key)
    except OSError:
        raise StepFailed(("the .env backup ", Code(last.backup), " is gone, so the previous value is unknown")) \
            from None
