"""Step runs: one record per runbook step (or safer alternative) run, with typed artifacts.

Each step's artifacts are their own model, discriminated by ``kind``; nothing reads a step's result by
magic dictionary keys. Records written before these models existed load through a one-way migration.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, Field, model_validator

from bot.domain import legacy
from bot.domain.ownership import Owner


class StepName(StrEnum):
    BACKUP = "backup"
    REVERT = "revert"
    REBUILD = "rebuild"
    RESTART = "restart"
    VERIFY = "verify"
    FLAG = "flag"
    PARTIAL = "partial"
    SAFE_REVERT = "safe_revert"
    HOTFIX = "hotfix"



class StepStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class CheckOutcome(BaseModel):
    name: str
    ok: bool
    detail: str


class Advice(BaseModel):
    """What a failed check most likely means, in words for people (including what the bot will not do about
    it), and whom to call: a role of ``contacts`` in rollback.yml and that role's people."""

    cause: str
    contact: str  # backend_lead, ai_server_team, frontend_team or database_admin
    people: list[str] = Field(default_factory=list)  # user ids, or subteam:<id> / @handle for a group


class BackupArtifacts(BaseModel):
    """One immutable backup run: ``<data_dir>/backups/<incident>/<run_id>/`` with ``manifest.json`` last."""

    kind: Literal["backup"] = "backup"
    run_id: str
    path: str
    manifest_sha256: str | None = None
    commit: str = ""
    central: str = ""
    tenants: list[str] = Field(default_factory=list)
    documents: int = 0
    verified: bool = False
    logs_saved: list[str] = Field(default_factory=list)


class RevertArtifacts(BaseModel):
    kind: Literal["revert"] = "revert"
    from_sha: str
    to_sha: str
    dropped: list[str] = Field(default_factory=list)
    stash: str | None = None


class BuildAttempt(BaseModel):
    phase: str  # "build", "clean install", "build again"
    command: str
    returncode: int
    seconds: float
    tail: str = ""


class RebuildArtifacts(BaseModel):
    kind: Literal["rebuild"] = "rebuild"
    cleaned: bool = False
    attempts: list[BuildAttempt] = Field(default_factory=list)  # none when a kept build was restored
    restored: str | None = None  # the kept build restored instead of running yarn (its key, when and why kept)
    fallback: str | None = None  # why yarn built (no kept build, or why the kept one was not used)


class RestartedApp(BaseModel):
    status: str
    restarts: int
    pid: int | None = None
    err_offset: int = 0
    stable_at_ms: int | None = None  # pm2's start of it plus its min_uptime (epoch ms): from then on it stayed up


class RestartArtifacts(BaseModel):
    kind: Literal["restart"] = "restart"
    apps: dict[str, RestartedApp] = Field(default_factory=dict)


class VerifyArtifacts(BaseModel):
    kind: Literal["verify"] = "verify"
    health_ms: float | None = None
    status: int | None = None


class FlagArtifacts(BaseModel):
    kind: Literal["flag"] = "flag"
    key: str
    existed: bool  # whether the key was in .env before (undo removes it when it was not)
    backup: str  # the 0600 copy of .env taken before the edit
    undo_of: str | None = None  # the flag run this one undid


class PartialArtifacts(BaseModel):
    kind: Literal["partial"] = "partial"
    path: str
    commit: str
    stash: str | None = None


class SafeRevertArtifacts(BaseModel):
    kind: Literal["safe_revert"] = "safe_revert"
    head: str | None = None
    added: list[str] = Field(default_factory=list)
    conflicts: list[str] = Field(default_factory=list)
    stash: str | None = None


class HotfixArtifacts(BaseModel):
    kind: Literal["hotfix"] = "hotfix"
    branch: str
    head: str | None = None
    ship: bool = False


Artifacts = Annotated[
    BackupArtifacts | RevertArtifacts | RebuildArtifacts | RestartArtifacts | VerifyArtifacts | FlagArtifacts
    | PartialArtifacts | SafeRevertArtifacts | HotfixArtifacts,
    Field(discriminator="kind"),
]


class StepRun(BaseModel):
    id: str
    incident_id: str
    step: StepName
    actor: str
    status: StepStatus = StepStatus.RUNNING
    started_at: AwareDatetime
    finished_at: AwareDatetime | None = None
    summary: str = ""
    plan: list[str] = Field(default_factory=list)
    artifacts: Artifacts | None = None
    checks: list[CheckOutcome] = Field(default_factory=list)
    owner: Owner | None = None
    version: int = 0

    @property
    def succeeded(self) -> bool:
        return self.status is StepStatus.SUCCEEDED

    @model_validator(mode="before")
    @classmethod
    def _from_older_records(cls, data: object) -> object:
        return legacy.step_run(data)
