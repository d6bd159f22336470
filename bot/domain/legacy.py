"""Records written by older versions of the bot, mapped onto today's models when they are read (a one-way
migration: the next save writes the new shape). This module alone reads untyped JSON, so it alone may say
`Any` in the domain package; each function takes what a store returned and gives back what the model's
validator accepts."""

from __future__ import annotations

from typing import Any

from bot.domain.ownership import LEGACY_OWNER


def _step_name(run_id: str) -> str:
    """`RB-0001-backup-1a2b3c` → `backup` (legacy running_step values)."""
    parts = run_id.split("-")
    return parts[-2] if len(parts) >= 4 else run_id


def incident(raw: object) -> object:
    """Before owners and typed database state: `running_step`, `database_state`, `data_loss`."""
    if not isinstance(raw, dict):
        return raw
    data: dict[str, Any] = dict(raw)
    running = data.pop("running_step", None)
    if running and not data.get("busy"):
        data["busy"] = {"kind": "step", "ref": running, "name": _step_name(str(running)),
                        "actor": "unknown", "owner": LEGACY_OWNER.model_dump(),
                        "since": data.get("created_at")}
    legacy_state = data.pop("database_state", None)
    data.pop("data_loss", None)
    if legacy_state and "database" not in data:
        cleaned = [] if legacy_state.startswith("UNCHANGED") else ["(tenants not recorded)"]
        restored = cleaned if legacy_state.startswith("RESTORED") else []
        data["database"] = {"cleaned": cleaned, "restored": restored}
    if "lifecycle" not in data:
        data["lifecycle"] = _lifecycle(data)
    return data


def _lifecycle(data: dict[str, Any]) -> dict[str, Any]:
    """Before the lifecycle: the phase the milestones imply (only the runbook's rollback recorded them)."""
    reached = data.get("milestones") or {}
    back = "rollback_completed" in reached
    phase = ("closed" if data.get("state") == "closed" else "confirmed" if "system_restored" in reached
             else "restored" if back else "open")
    return {"phase": phase, "fix": "rollback" if back else None, "restored_with": "rollback" if back else None,
            "backed_up": back}


def step_run(raw: object) -> object:
    """Before typed artifacts: one untyped `result` dict read back by magic keys."""
    if not isinstance(raw, dict) or "result" not in raw:
        return raw
    data: dict[str, Any] = dict(raw)
    result = data.pop("result") or {}
    data.setdefault("checks", result.get("checks") or [])
    artifacts = result.get("artifacts") or {}
    data["artifacts"] = _artifacts(str(data.get("step")), artifacts) if artifacts else None
    return data


def _artifacts(step: str, old: dict[str, Any]) -> dict[str, Any] | None:
    """A shape that cannot be mapped is dropped, not guessed."""
    if step == "backup":
        return {"kind": "backup", "run_id": "legacy", "path": old.get("path", ""), "commit": old.get("commit", ""),
                "central": old.get("central", ""), "tenants": old.get("tenants", []),
                "documents": old.get("documents") or 0, "verified": False}  # re-verified before any use
    if step == "restart":
        return {"kind": "restart", "apps": old.get("apps", {})}
    if step == "verify":
        return {"kind": "verify", "health_ms": old.get("health_ms"), "status": old.get("status")}
    if step == "revert" and old.get("to"):
        return {"kind": "revert", "from_sha": old.get("from", ""), "to_sha": old["to"],
                "dropped": old.get("dropped", []), "stash": old.get("stash")}
    if step == "rebuild":
        return {"kind": "rebuild", "cleaned": bool(old.get("cleaned"))}
    return None


def check_state(raw: object) -> object:
    """Before ring-buffer history: the whole history inside the state."""
    if isinstance(raw, dict) and "history" in raw:
        data: dict[str, Any] = dict(raw)
        history = data.pop("history") or []
        data.setdefault("last", history[-1] if history else None)
        data.setdefault("runs", len(history))
        return data
    return raw


def check_result(raw: object) -> object:
    """Before a result could meet several criteria: one `criterion` (or null)."""
    if isinstance(raw, dict) and "criterion" in raw:
        data: dict[str, Any] = dict(raw)
        old = data.pop("criterion")
        data.setdefault("criteria", [old] if old else [])
        return data
    return raw
