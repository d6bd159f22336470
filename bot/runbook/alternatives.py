"""The runbook's safer alternatives to a full reset: a feature flag, one file back, `git revert`, a hotfix.

Each is a step like the others (plan first, progress, recorded, audited); the service then runs the
follow-ups each needs (rebuild, restart, verify) as ordinary recorded steps.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path, PurePosixPath

from bot.errors import BadInput, Conflict, StepFailed, quote
from bot.ops.git import Alternatives, validate_hotfix_name
from bot.redact import SECRET_KEY
from bot.runbook.base import Check, Plan, StepContext, StepResult
from bot.runbook.envfile import read_env_file

FLAG_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")
MAX_VALUE = 500


def _mask(key: str, value: str | None) -> str:
    if value is None:
        return "(not set)"
    if SECRET_KEY.search(key) or len(value) >= 12:
        return "•••••• (hidden)"
    return f"`{value}`" if value else "(empty)"


def _env_line(key: str, line: str) -> bool:
    stripped = line.strip()
    return not stripped.startswith("#") and stripped.removeprefix("export ").split("=", 1)[0].strip() == key


def set_env_value(path: Path, key: str, value: str | None) -> None:
    """Edit `.env` in place: the first line for `key` gets the value (None removes it), duplicates are
    removed, every other line and comment stays as it was. Written atomically with the file's mode."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True) if path.exists() else []
    out, done = [], False
    for line in lines:
        if _env_line(key, line):
            if not done and value is not None:
                prefix = "export " if line.strip().startswith("export ") else ""
                out.append(f"{prefix}{key}={value}\n")
            done = True
            continue
        out.append(line)
    if not done and value is not None:
        if out and not out[-1].endswith("\n"):
            out[-1] += "\n"
        out.append(f"{key}={value}\n")
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    temp = path.with_name(path.name + ".rollback-bot.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("".join(out))
    os.replace(temp, path)


class Flag:
    name = "flag"
    title = "Feature flag"
    usage = "flag NAME=value | flag undo"
    follow_ups = ("restart", "verify")

    def public_args(self, args: list[str]) -> list[str]:
        """What the audit log keeps of the command: a secret-looking value is masked there too."""
        out = []
        for arg in args:
            key, sep, value = arg.partition("=")
            out.append(f"{key}={_mask(key, value).strip('`')}" if sep else arg)
        return out

    def plan(self, ctx: StepContext) -> Plan:
        env_path = ctx.config.target.env_path
        current = read_env_file(env_path) if env_path.exists() else {}
        if ctx.args == ["undo"]:
            last = _last_flag(ctx)
            if last is None:
                raise Conflict("No flag change of this incident is left to undo.",
                               hint="`/rollback flag NAME=value` changes one.")
            key, before = str(last["key"]), last["old"]
            old = _previous_value(last)
            return Plan(summary=f"Undo the flag change: `{key}` back to its previous value",
                        lines=[f"`{key}`: {_mask(key, current.get(key))} → {_mask(key, old)}",
                               "back up `.env` first (mode 0600), edit it in place, then restart and verify"],
                        data={"key": key, "value": old, "undo": last["run"], "existed": before is not None})
        if len(ctx.args) != 1 or "=" not in ctx.args[0]:
            raise BadInput("Say which flag and its new value.",
                           hint="Example: `/rollback flag ENABLE_REALTIME_TIPS=false`, or `/rollback flag undo`.")
        key, value = ctx.args[0].split("=", 1)
        if not FLAG_NAME.match(key):
            raise BadInput(f"`{quote(key)}` is not a flag name.",
                           hint="Names are upper case letters, digits and `_`, like `ENABLE_REALTIME_TIPS`.")
        if key not in current and key not in ctx.config.target.flag_allow_list:
            raise BadInput(f"`{key}` is not in the target's `.env` and not on `target.flag_allow_list`.",
                           hint="Known flags: " + ", ".join(f"`{k}`" for k in sorted(
                               {*(k for k in current if k.startswith(("ENABLE_", "FEATURE_", "DISABLE_"))),
                                *ctx.config.target.flag_allow_list})))
        if len(value) > MAX_VALUE or any(ch in value for ch in "\n\r\0") or not value.isprintable():
            raise BadInput("That value cannot go in `.env`: one printable line, at most 500 characters.",
                           hint="Example: `/rollback flag ENABLE_REALTIME_TIPS=false`.")
        if current.get(key) == value:
            raise Conflict(f"`{key}` is already {_mask(key, value)}.")
        return Plan(summary=f"Set `{key}` in `.env`, then restart and verify",
                    lines=[f"`{key}`: {_mask(key, current.get(key))} → {_mask(key, value)}",
                           "back up `.env` first (mode 0600), edit it in place (other lines and comments kept, "
                           "no duplicate key appended)", "then restart the pm2 apps and verify"],
                    data={"key": key, "value": value, "existed": key in current})

    def run(self, ctx: StepContext, plan: Plan) -> StepResult:
        env_path = ctx.config.target.env_path
        key, value = plan.data["key"], plan.data["value"]
        before = read_env_file(env_path).get(key) if env_path.exists() else None
        backups = ctx.backup_dir() / "env"
        backups.mkdir(parents=True, exist_ok=True, mode=0o700)
        copy = backups / f"env-before-flag-{len(ctx.history) + 1}-{uuid.uuid4().hex[:6]}"
        if env_path.exists():
            shutil.copy2(env_path, copy)
        else:
            copy.write_text("", encoding="utf-8")
        os.chmod(copy, 0o600)
        ctx.progress(f"editing `{key}`")
        set_env_value(env_path, key, value)
        after = read_env_file(env_path).get(key)
        ok = after == value
        return StepResult(ok=ok, summary=f"`{key}`: {_mask(key, before)} → {_mask(key, after)}",
                          details=[f".env backed up to `{copy}`"],
                          checks=[Check(f".env {key}", ok, "set" if ok else "the file did not take the value")],
                          artifacts={"key": key, "old": None if before is None else "backed-up", "backup": str(copy),
                                     "undo": plan.data.get("undo")})


def _last_flag(ctx: StepContext) -> dict[str, str | None] | None:
    undone = {r.result.get("artifacts", {}).get("undo") for r in ctx.history if r.step == "flag"}
    for run in reversed(ctx.history):
        if run.step == "flag" and run.status.value == "succeeded" and run.id not in undone:
            artifacts = run.result.get("artifacts", {})
            if artifacts.get("undo"):
                continue  # an undo itself is not undone again
            return {"key": artifacts.get("key"), "old": artifacts.get("old"), "backup": artifacts.get("backup"),
                    "run": run.id}
    return None


def _previous_value(last: dict[str, str | None]) -> str | None:
    if last["old"] is None:
        return None  # it was not set before: undo removes it
    backup = Path(str(last["backup"]))
    try:
        return read_env_file(backup).get(str(last["key"]))
    except OSError:
        raise StepFailed(f"the .env backup `{backup}` is gone, so the previous value is unknown") from None


def _safe_path(ctx: StepContext, text: str) -> str:
    value = text.strip()
    pure = PurePosixPath(value)
    if (not value or value.startswith(("-", "/", "~")) or "\\" in value or ".." in pure.parts
            or any(ch in value for ch in "\n\r\0:*?[") or pure.parts[:1] == (".git",)):
        raise BadInput(f"`{quote(value)}` is not a path inside the repository.",
                       hint="Give a tracked file relative to the repo, like `src/modules/internship/"
                            "internship-feedback.service.ts`.")
    repo = ctx.repo.resolve()
    full = (ctx.repo / value)
    if full.is_symlink() or not str(full.resolve()).startswith(str(repo) + os.sep):
        raise BadInput(f"`{quote(value)}` leads outside the repository.", hint="Give a regular tracked file.")
    return str(pure)


class Partial:
    name = "partial"
    title = "Partial rollback"
    usage = "partial <path> [commit]"
    follow_ups = ("rebuild", "restart", "verify")

    def plan(self, ctx: StepContext) -> Plan:
        if not ctx.args or len(ctx.args) > 2:
            raise BadInput("Say which file to roll back, and optionally from which commit.",
                           hint="Example: `/rollback partial src/modules/internship/internship-feedback.service.ts`.")
        path = _safe_path(ctx, ctx.args[0])
        tree = Alternatives(ctx.repo)
        target = tree.require(ctx.args[1] if len(ctx.args) > 1 else ctx.config.target.rollback_target)
        if not tree.tracked(path, target.sha):
            raise BadInput(f"`{path}` is not a tracked file at `{target.short}`.",
                           hint="Give a file git tracks (`git ls-files`), relative to the repository.")
        dirty = path in tree.dirty_files()
        lines = [f"`git checkout {target.short} -- {path}` ({target.summary})", "diff stat:",
                 "```" + tree.diff_stat(target.sha, path) + "```"]
        if dirty:
            lines.append(f"first stashes the uncommitted changes to `{path}`")
        lines.append("then rebuild, restart and verify")
        return Plan(summary=f"Roll `{path}` back to `{target.oneline()}`", lines=lines,
                    data={"path": path, "commit": target.sha, "dirty": dirty})

    def run(self, ctx: StepContext, plan: Plan) -> StepResult:
        tree = Alternatives(ctx.repo)
        path, commit = plan.data["path"], plan.data["commit"]
        stash = None
        if path in tree.dirty_files():
            stash = tree.stash_paths(f"rollback-bot {ctx.incident.id}: before partial rollback of {path}", [path])
        ctx.progress(f"checking out {path}")
        tree.checkout_file(commit, path)
        ok = tree.diff_stat(commit, path) == "no difference"
        details = [f"`{path}` is now as in `{commit[:7]}`"]
        if stash:
            details.append(f"Its uncommitted changes are safe in the stash `{stash[:10]}`.")
        return StepResult(ok=ok, summary=f"`{path}` rolled back to `{commit[:7]}`", details=details,
                          checks=[Check(f"{path} at {commit[:7]}", ok, "matches" if ok else "differs")],
                          artifacts={"path": path, "commit": commit, "stash": stash})


class SafeRevert:
    name = "safe_revert"
    title = "Safe revert"
    usage = "revert --safe [commit…]"
    follow_ups = ("rebuild", "restart", "verify")

    def plan(self, ctx: StepContext) -> Plan:
        tree = Alternatives(ctx.repo)
        head = tree.head()
        if ctx.args:
            commits = []
            for text in ctx.args:
                found = tree.require(text)
                if not tree.is_ancestor(found.sha, head.sha):
                    raise BadInput(f"`{found.short}` is not in the history of HEAD, so there is nothing to revert.")
                commits.append(found)
            commits.sort(key=lambda c: len(tree.commits_between(c.sha, head.sha)))  # newest first
        else:
            target = tree.resolve(ctx.config.target.rollback_target)
            if target is None or not tree.is_ancestor(target.sha, head.sha):
                raise BadInput("The rollback target is not below HEAD.", hint="Name the commits to revert.")
            commits = tree.commits_between(target.sha, head.sha)
        if not commits:
            raise Conflict("There are no commits to revert.")
        dirty = tree.dirty_files()
        lines = [f"`git revert --no-edit` {len(commits)} commit(s), newest first, as new commits (history is not "
                 "rewritten): " + ", ".join(f"`{c.oneline()}`" for c in commits[:10])]
        if dirty:
            lines.append(f"first stashes {len(dirty)} uncommitted file(s)")
        lines.append("a conflict aborts the revert and leaves the tree as it was; then rebuild, restart, verify")
        return Plan(summary=f"Revert {len(commits)} commit(s) with new commits", lines=lines,
                    data={"commits": [c.sha for c in commits], "from": head.sha})

    def run(self, ctx: StepContext, plan: Plan) -> StepResult:
        tree = Alternatives(ctx.repo)
        if tree.head().sha != plan.data["from"]:
            raise Conflict("HEAD moved since the plan was made; run it again to see the new plan.")
        stash = None
        if tree.is_dirty():
            stash = tree.stash(f"rollback-bot {ctx.incident.id}: before safe revert")
        ctx.progress("git revert")
        conflicts = tree.revert_commits(plan.data["commits"])
        head = tree.head()
        if conflicts:
            return StepResult(ok=False, summary="conflicts: the revert was aborted, nothing changed (" +
                              ", ".join(conflicts) + ")", details=[f"HEAD is still `{head.oneline()}`"],
                              checks=[Check("git revert", False, "conflict in " + ", ".join(conflicts))],
                              artifacts={"conflicts": conflicts, "stash": stash})
        added = tree.commits_between(plan.data["from"], head.sha)
        return StepResult(ok=True, summary=f"{len(added)} revert commit(s) added; HEAD `{head.oneline()}`",
                          details=["`git log --oneline -5`:", "```" + "\n".join(
                              c.oneline() for c in tree.log(5)) + "```"]
                          + ([f"Uncommitted work is in the stash `{stash[:10]}`."] if stash else []),
                          checks=[Check("git revert", True, f"{len(added)} new commit(s)")],
                          artifacts={"head": head.sha, "added": [c.sha for c in added], "stash": stash})


class Hotfix:
    name = "hotfix"
    title = "Hotfix branch"
    usage = "hotfix <name> | hotfix ship"
    follow_ups: tuple[str, ...] = ()

    def plan(self, ctx: StepContext) -> Plan:
        tree = Alternatives(ctx.repo)
        if len(ctx.args) != 1:
            raise BadInput("Say the hotfix's name, or `ship`.",
                           hint="Example: `/rollback hotfix fix-feedback-timeout`, then `/rollback hotfix ship`.")
        if ctx.args[0] == "ship":
            branch = tree.branch()
            if not branch or not branch.startswith("hotfix/"):
                raise Conflict(f"The repository is on `{branch or 'a detached HEAD'}`, not a hotfix branch.",
                               hint="Create one with `/rollback hotfix <name>` and commit the fix there.")
            head = tree.head()
            return Plan(summary=f"Ship `{branch}` at `{head.oneline()}`: rebuild, restart, verify",
                        lines=[f"build `{branch}` at `{head.oneline()}`", "restart the pm2 apps and verify",
                               f"then offer to push `{branch}` to `{ctx.config.target.remote}` (never forced)"],
                        data={"ship": True, "branch": branch, "head": head.sha})
        name = validate_hotfix_name(ctx.args[0])
        head = tree.head()
        return Plan(summary=f"Create `hotfix/{name}` from `{head.oneline()}`",
                    lines=[f"`git checkout -b hotfix/{name}` at `{head.oneline()}`",
                           "commit the fix there, then `/rollback hotfix ship`"],
                    data={"ship": False, "branch": f"hotfix/{name}", "name": name, "head": head.sha})

    def run(self, ctx: StepContext, plan: Plan) -> StepResult:
        tree = Alternatives(ctx.repo)
        if plan.data["ship"]:
            head = tree.head()
            return StepResult(ok=True, summary=f"shipping `{plan.data['branch']}` at `{head.oneline()}`",
                              checks=[Check("branch", True, plan.data["branch"])],
                              artifacts={"branch": plan.data["branch"], "head": head.sha, "ship": True})
        tree.create_branch(plan.data["name"])
        ok = tree.branch() == plan.data["branch"]
        return StepResult(ok=ok, summary=f"on `{plan.data['branch']}` from `{plan.data['head'][:7]}`",
                          checks=[Check("branch", ok, str(tree.branch()))],
                          artifacts={"branch": plan.data["branch"], "ship": False})


ALTERNATIVES = {step.name: step for step in (Flag(), Partial(), SafeRevert(), Hotfix())}
