"""Step 1: back up the current state — commit, every tenant database, pm2 logs, .env."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from bot.errors import StepFailed
from bot.ops import tenants
from bot.ops.git import GitRepo
from bot.ops.pm2 import Pm2, tail_file
from bot.ops.process import find_executable
from bot.redact import redact_uri
from bot.runbook.base import Check, Plan, StepContext, StepResult
from bot.runbook.envfile import read_env_file


def _private_write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)


class Backup:
    name = "backup"
    title = "Backup current state"
    usage = "backup"

    def plan(self, ctx: StepContext) -> Plan:
        cfg = ctx.config
        uri = central_uri(ctx)
        client = tenants.connect(uri)
        try:
            found = tenants.list_tenants(client, uri, cfg.tenants)
        except Exception as error:  # noqa: BLE001 - the database may be what is broken
            raise StepFailed(f"cannot list the tenant databases at {redact_uri(uri)}: "
                             f"{redact_uri(str(error))[:200]}") from None
        finally:
            tenants.close(client)
        out = ctx.backup_dir()
        return Plan(
            summary=f"Back up {len(found)} tenant database(s), the central `{cfg.tenants.schools_collection}`, "
                    f"pm2 logs and .env to `{out}`",
            lines=[f"record the current commit ({GitRepo(ctx.repo).head().oneline()})",
                   "dump every collection of: " + ", ".join(f"`{t.db_name}`" for t in found),
                   f"save the last {cfg.pm2.log_lines} lines of each pm2 app's logs: "
                   + ", ".join(f"`{a}`" for a in cfg.pm2.apps),
                   f"copy `{cfg.target.env_file}` (mode 0600; its contents are never shown)"],
            data={"tenants": [t.db_name for t in found], "names": {t.db_name: t.name for t in found}},
        )

    def run(self, ctx: StepContext, plan: Plan) -> StepResult:
        cfg = ctx.config
        out = ctx.backup_dir()
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True, mode=0o700)
        head = GitRepo(ctx.repo).head()
        (out / "rollback_from_commit.txt").write_text(head.oneline() + "\n", encoding="utf-8")

        uri = central_uri(ctx)
        central = tenants.default_database(uri)
        dbs: list[str] = plan.data["tenants"]
        manifest: dict[str, Any] = {"incident": ctx.incident.id, "commit": head.sha, "central_database": central,
                                    "tenants": dbs, "databases": {}}
        checks: list[Check] = []
        client = tenants.connect(uri)
        try:
            ctx.progress(f"tenants 0/{len(dbs)} · central `{cfg.tenants.schools_collection}`")
            jobs = [(central, [cfg.tenants.schools_collection])] + [(db, None) for db in dbs]
            for done, (db, only) in enumerate(jobs):
                dumped = tenants.dump_database(client, db, out, only)
                manifest["databases"][db] = {name: {"count": d.count, "bytes": d.bytes, "sha256": d.sha256}
                                             for name, d in dumped.items()}
                for name, d in dumped.items():
                    on_disk = tenants.count_bson(out / db / f"{name}.bson")
                    checks.append(Check(f"{db}.{name}", d.verified and on_disk == d.count,
                                        f"{d.count} documents (source {d.source_count}, file {on_disk})"))
                if done:
                    ctx.progress(f"tenants {done}/{len(dbs)}")
        finally:
            tenants.close(client)
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")

        logs_saved = self._pm2_logs(ctx, out)
        checks.append(Check("pm2 logs", bool(logs_saved), ", ".join(logs_saved) or "pm2 logs could not be read"))
        env_path = cfg.target.env_path
        _private_write(out / "env.backup", env_path.read_bytes())
        checks.append(Check(".env", True, f"copied to {out / 'env.backup'} (mode 0600)"))

        verified = all(c.ok for c in checks if c.name not in ("pm2 logs",))
        totals = sum(v["count"] for db in manifest["databases"].values() for v in db.values())
        details = [f"*Saved in* `{out}`", f"• commit: `{head.short}` → `rollback_from_commit.txt`"]
        for db, collections in manifest["databases"].items():
            parts = ", ".join(f"{name} {info['count']}" for name, info in collections.items())
            details.append(f"• `{db}`: {parts}")
        details.append(f"• pm2 logs: {', '.join(logs_saved) or 'not saved'}")
        details.append("• `.env` → `env.backup` (mode 0600)")
        summary = (f"{len(dbs)} tenant database(s) backed up, {totals} documents, counts verified"
                   if verified else "backup written but the counts do not match the source")
        return StepResult(
            ok=verified, summary=summary, details=details, checks=checks,
            artifacts={"path": str(out), "tenants": dbs, "central": central, "verified": verified,
                       "documents": totals, "manifest": str(out / "manifest.json"), "commit": head.sha},
            ticks=["backup_db", "commit"] + (["pm2_logs"] if logs_saved else []),
        )

    def _pm2_logs(self, ctx: StepContext, out: Path) -> list[str]:
        cfg = ctx.config
        if find_executable(cfg.pm2.executable) is None:
            return []
        folder = out / "pm2"
        folder.mkdir(mode=0o700)
        saved = []
        try:
            states = {s.name: s for s in Pm2(cfg.pm2.executable, cfg.pm2.home).jlist()}
        except StepFailed:
            return []
        for app in cfg.pm2.apps:
            state = states.get(app)
            if state is None:
                continue
            lines = tail_file(state.out_log, cfg.pm2.log_lines) + ["--- stderr ---"] + tail_file(
                state.err_log, cfg.pm2.log_lines)
            _private_write(folder / f"{app}.log", ("\n".join(lines) + "\n").encode())
            saved.append(f"{app} ({len(lines) - 1} lines)")
        return saved


def central_uri(ctx: StepContext) -> str:
    cfg = ctx.config
    try:
        env = read_env_file(cfg.target.env_path)
    except OSError:
        raise StepFailed(f"cannot read {cfg.target.env_path}",
                         hint=f"The runbook reads {cfg.tenants.central_db_uri_env} from the target's .env.") from None
    uri = env.get(cfg.tenants.central_db_uri_env)
    if not uri:
        raise StepFailed(f"{cfg.tenants.central_db_uri_env} is not set in {cfg.target.env_path}")
    return uri
