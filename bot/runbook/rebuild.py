"""Step 3: rebuild. When the bot keeps a build of exactly what is checked out (the same git tree, yarn.lock and
Node version: ``bot/ops/builds.py``), it restores that build instead of running yarn, checked by its content
hash before it is swapped in (moved out of the store and kept again from the app's folder afterwards, or copied
when they are on different file systems); the build alongside the backup is waited for first if it is still
running and has begun compiling. One that has not (the backup was short: it is still checking out or installing)
is stopped, and yarn builds here: all of its compile is still ahead of it, and the app's folder needs none of
that, provided the folder was at no commit with another yarn.lock during the incident. Otherwise, or when
anything differs, the runbook's rebuild with yarn: on failure clear node_modules and dist, install and build
again (each phase reported as it starts, and the first build's error kept). The plan says which path."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from bot.domain.runs import BuildAttempt, RebuildArtifacts, RevertArtifacts, StepName
from bot.domain.steps import Plan, StepContext, StepResult, check
from bot.errors import StepFailed
from bot.ops import builds, commit_builds
from bot.ops.build import BUILD, Yarn
from bot.ops.git import GitRepo
from bot.runbook.target import build_store, describe_entry
from bot.text import Code, Rich, rich

TAIL = 20


@dataclass(frozen=True)
class RebuildPlan:
    key: builds.BuildKey | None  # what is checked out; None: no key describes it
    kept: builds.Entry | None  # the kept build to restore
    alongside: commit_builds.Alongside | None  # the build alongside the backup to wait for
    why_yarn: str | None  # why yarn builds (no kept build, or what differs)
    stop: commit_builds.Alongside | None = None  # the build alongside the backup that yarn here overtakes


class Rebuild:
    name = StepName.REBUILD
    follow_ups: tuple[StepName, ...] = ()

    def plan(self, ctx: StepContext) -> Plan[RebuildPlan]:
        facts = self._choose(ctx)
        yarn_lines: list[Rich] = [(Code("yarn build"),),
                                  ("if it fails: remove ", Code("node_modules"), " and ", Code("dist"), ", ",
                                   Code("yarn install"), ", ", Code("yarn build"), " (as the runbook does)")]
        if facts.kept is not None:
            summary = rich("Restore the last-known-good build of ", describe_entry(facts.kept), " instead of ",
                           Code("yarn build"))
            lines: list[Rich] = [
                (f"content hash {facts.kept.content_sha256[:12]}… checked before it is swapped in "
                 f"({facts.kept.files} files, {facts.kept.bytes / (1 << 20):.1f} MiB: "
                 f"{', '.join(o for o, had in facts.kept.outputs.items() if had)})",),
                ("if anything differs: ", Code("yarn build"), " in ", Code(str(ctx.repo)), " as the runbook does")]
        elif facts.alongside is not None:
            summary = rich("Wait for the build of ", Code(facts.alongside.commit[:7]), " started alongside the backup "
                           f"({facts.alongside.seconds:.0f}s so far), then restore it instead of ", Code("yarn build"))
            lines = [(f"its key: {facts.alongside.key.describe()}; content hash checked before it is "
                      "swapped in",),
                     ("if it fails or anything differs: ", Code("yarn build"), " as the runbook does")]
        else:
            summary = rich(Code("yarn build"), " in ", Code(str(ctx.repo)), f": {facts.why_yarn}")
            lines = yarn_lines
        return Plan(facts=facts, summary=summary, lines=lines)

    def _choose(self, ctx: StepContext) -> RebuildPlan:
        cfg = ctx.config.build
        if cfg.keep.max_count == 0:
            return RebuildPlan(None, None, None, "build.keep.max_count is 0: no builds are kept")
        try:
            key = builds.folder_key(ctx.repo, builds.node_version(cfg.node))
        except StepFailed as error:
            return RebuildPlan(None, None, None, f"no kept build can be matched ({error.plain()})")
        if key is None:
            return RebuildPlan(None, None, None, "a tracked file differs from HEAD, so no kept build can match it")
        store = build_store(ctx.config, ctx.data_dir)
        store.recover_taken(ctx.repo)  # what a restore killed before its swap took out of the store goes back
        kept = store.find(key)
        if kept is not None:
            return RebuildPlan(key, kept, None, None)
        alongside = commit_builds.in_flight(key, _incident(ctx))
        if alongside is not None and not alongside.done.is_set():
            sooner = _sooner_here(ctx, alongside, key)
            if sooner is not None:
                return RebuildPlan(key, None, None, sooner, stop=alongside)
            return RebuildPlan(key, None, alongside, None)
        why = f"no kept build for {key.describe()}"
        if alongside is not None and alongside.failure:
            why += f"; the build alongside the backup failed: {alongside.failure}"
        for other in store.same_tree(key.tree):
            if other.key.lock != key.lock:
                why += f"; the kept build of this tree has another yarn.lock ({other.key.describe()})"
            elif other.key.node != key.node:
                why += f"; the kept build of this tree was made with node {other.key.node}"
        return RebuildPlan(key, None, None, why)

    def run(self, ctx: StepContext, plan: Plan[RebuildPlan]) -> StepResult:
        facts = plan.facts
        fallback = facts.why_yarn
        if facts.stop is not None and facts.stop.done.is_set() and facts.stop.entry is not None:
            facts = replace(facts, alongside=facts.stop, stop=None)  # kept since the plan: restoring it is sooner
        elif facts.stop is not None:
            commit_builds.forget(facts.stop)  # its yarn is stopped (if it is still running), as the plan said
        if facts.key is not None and (done := commit_builds.in_flight(facts.key, _incident(ctx))) is not None \
                and done.done.is_set():
            commit_builds.forget(done)  # used now (or its failure said): no later plan quotes it
        if facts.key is not None and (facts.kept is not None or facts.alongside is not None):
            started = time.monotonic()
            kept, fallback = self._kept_build(ctx, facts, facts.key)
            if kept is not None:
                problem = build_store(ctx.config, ctx.data_dir).restore(
                    kept, ctx.repo, ctx.config.build.outputs, progress=lambda text: ctx.progress((text,)), take=True)
                if problem is None:
                    return self._restored(ctx, kept, time.monotonic() - started)
                fallback = f"the kept build of {kept.key.describe()} was not used: {problem.why}"
                if problem.changed_folder:  # never a build on what a restore left half-way: a clean install
                    ctx.progress((f"falling back to a clean install and yarn build: {fallback}",))
                    return self._yarn(ctx, fallback, fell_back=True, clean_first=True)
            ctx.progress((f"falling back to yarn build: {fallback}",))
            return self._yarn(ctx, fallback, fell_back=True)
        return self._yarn(ctx, fallback, fell_back=False)

    def _kept_build(self, ctx: StepContext, facts: RebuildPlan,
                    key: builds.BuildKey) -> tuple[builds.Entry | None, str | None]:
        """The entry to restore (after waiting for the build alongside the backup), or why there is none."""
        store = build_store(ctx.config, ctx.data_dir)
        if facts.alongside is not None:
            deadline = time.monotonic() + ctx.config.build.timeout_s
            while not facts.alongside.wait(1.0):
                ctx.progress((f"waiting for the build of {facts.alongside.commit[:7]} started alongside the backup "
                              f"({facts.alongside.seconds:.0f}s so far)",))
                if time.monotonic() > deadline:
                    commit_builds.forget(facts.alongside)  # its yarn is stopped; yarn builds here
                    return None, ("the build alongside the backup did not finish within build.timeout_s (it is "
                                  "stopped)")
            commit_builds.forget(facts.alongside)
            if facts.alongside.failure:
                return None, f"the build alongside the backup failed: {facts.alongside.failure}"
        now = builds.folder_key(ctx.repo, key.node)
        if now != key:
            return None, "what is checked out changed since the plan"
        kept = store.find(key)
        return (kept, None) if kept is not None else (None, f"no kept build for {key.describe()} any more")

    def _restored(self, ctx: StepContext, kept: builds.Entry, seconds: float) -> StepResult:
        described = describe_entry(kept)
        summary = rich("restored the last-known-good build of ", described, " instead of ", Code("yarn build"),
                       f" in {seconds:.1f}s; content hash verified before it was swapped in")
        details: list[Rich] = [(f"{kept.files} files, {kept.bytes / (1 << 20):.1f} MiB "
                                f"({', '.join(o for o, had in kept.outputs.items() if had)}) from ",
                                Code(str(kept.path)), f"; content hash {kept.content_sha256[:12]}…")]
        return StepResult(ok=True, summary=summary, details=details,
                          checks=[check("kept build restored", True, f"content hash {kept.content_sha256}")],
                          artifacts=RebuildArtifacts(restored=described))

    def _yarn(self, ctx: StepContext, fallback: str | None, *, fell_back: bool,
              clean_first: bool = False) -> StepResult:
        yarn = Yarn(ctx.config.build.executable, ctx.config.build.timeout_s)
        outcome = yarn.rebuild(ctx.repo, on_phase=lambda phase: ctx.progress((phase,)), clean_first=clean_first)
        attempts = [BuildAttempt(phase=a.phase, command=a.command,
                                 returncode=a.completed.returncode, seconds=round(a.completed.seconds, 2),
                                 tail=ctx.secrets.redact(a.completed.tail(TAIL)))
                    for a in outcome.attempts]
        steps = " → ".join(f"{a.phase}: {a.command} exit {a.returncode} ({a.seconds:.1f}s)" for a in attempts)
        details: list[Rich] = [(steps,)]
        if fallback:
            details.insert(0, (f"yarn build because {fallback}",))
        for attempt in attempts:
            if attempt.returncode != 0 or attempt is attempts[-1]:
                details.append((f"{attempt.phase} ({attempt.command}), last {TAIL} lines:",))
                details.append((Code(attempt.tail or "(no output)"),))
        if outcome.ok:
            summary: Rich = ("built" + (" after a clean install" if outcome.cleaned else "") + f": {steps}",)
        else:
            last_line = attempts[-1].tail.splitlines()[-1] if attempts and attempts[-1].tail else "no output"
            summary = (f"build failed ({steps}): ", Code(last_line))
        if fell_back:
            summary = rich(summary, f" (fell back to yarn build: {fallback})")
        return StepResult(ok=outcome.ok, summary=summary, details=details,
                          checks=[check("yarn build", outcome.ok, steps)],
                          artifacts=RebuildArtifacts(cleaned=outcome.cleaned, attempts=attempts, fallback=fallback))


def _sooner_here(ctx: StepContext, build: commit_builds.Alongside, key: builds.BuildKey) -> str | None:
    """Why yarn build in the app's folder is sooner than waiting for ``build`` (alongside the backup, still
    running), or None. It is when that build has not begun compiling: all of its `yarn build` is ahead of it, then
    the restore, where the app's folder has only the `yarn build` to run, on the node_modules it has, provided
    those were installed for the target's yarn.lock (:func:`_installed_for`); else the build in the worktree, on
    a clean install of the target's lock file, is waited for."""
    phase = build.phase  # read once: the build moves on meanwhile
    if phase == BUILD or not _installed_for(ctx, key.lock):
        return None
    doing = "checking out" if phase == commit_builds.CHECKOUT else "at yarn install"
    return (f"the build of {build.commit[:7]} alongside the backup has not begun compiling ({doing}, "
            f"{build.seconds:.0f}s so far), so building here is sooner; that build is stopped")


def _installed_for(ctx: StepContext, lock: str) -> bool:
    """The app's node_modules are for ``lock``, as far as this incident knows: the folder was at no commit with
    another yarn.lock since the incident opened (its commit then, and each revert's commit before it), and it
    was reverted at least once (the folder is at the target because the bot put it there)."""
    commits = {r.artifacts.from_sha for r in ctx.history
               if r.step is StepName.REVERT and r.succeeded and isinstance(r.artifacts, RevertArtifacts)}
    if not commits:
        return False
    if ctx.incident is not None and ctx.incident.start_commit:
        commits.add(ctx.incident.start_commit)
    git = GitRepo(ctx.repo)
    return all(git.resolve(c) is not None and builds.lock_hash(git.file_at(c, builds.LOCK_FILE)) == lock
               for c in commits)


def _incident(ctx: StepContext) -> str:
    return ctx.incident.id if ctx.incident is not None else ""
