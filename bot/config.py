"""Settings: the runbook's facts from a YAML file, secrets from the environment.

Defaults reproduce ``rollback-runbook.md`` exactly, so an empty ``rollback.yml`` describes the
runbook's own target. Validation happens once at start-up; every error names the key.

One module for the whole schema of ``rollback.yml`` (a section class per top-level key), so the file and
the code that reads it can be compared side by side.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from dotenv import dotenv_values
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.errors import ConfigError

DEFAULT_SLACK_API_URL = "https://slack.com/api/"

# The ten fields step 6 of the runbook unsets on `internshipcases`.
RUNBOOK_CLEANUP_FIELDS = [
    "step",
    "case_type",
    "patient_base_id",
    "sequence_in_step",
    "emdr_phase_focus",
    "session_narrative",
    "assessment_criteria",
    "literature_references",
    "pass_threshold",
    "patient_state",
]

SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
SLACK_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,}$")
GROUP_HANDLE = re.compile(r"^@[a-z0-9][a-z0-9._-]{0,79}$")
COMMIT_ISH = re.compile(r"^[0-9a-f]{7,40}$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_people(values: list[str]) -> list[str]:
    for value in values:
        if not (SLACK_USER_ID.match(value) or GROUP_HANDLE.match(value)):
            raise ValueError(
                f"{value!r} is neither a Slack user id (like U012ABCDEF) nor a user-group handle (like @backend-leads)"
            )
    return values


class TargetConfig(_Section):
    repo_path: Path = Path("/opt/ai/ai-professor-backend")
    rollback_target: str = "df5b229"
    env_file: str = ".env"
    remote: str = "origin"
    flag_allow_list: list[str] = Field(default_factory=lambda: ["ENABLE_REALTIME_TIPS"])

    @field_validator("flag_allow_list")
    @classmethod
    def _flag_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.fullmatch(r"[A-Z_][A-Z0-9_]{0,63}", name):
                raise ValueError(f"{name!r} is not an environment variable name (like ENABLE_REALTIME_TIPS)")
        return value

    @field_validator("rollback_target")
    @classmethod
    def _commit_id(cls, value: str) -> str:
        if not COMMIT_ISH.match(value):
            raise ValueError("expected a commit id: 7 to 40 lowercase hex characters, like df5b229")
        return value

    @field_validator("env_file")
    @classmethod
    def _relative(cls, value: str) -> str:
        if value.startswith("/") or ".." in Path(value).parts:
            raise ValueError("expected a path inside the repository, like .env")
        return value

    @property
    def env_path(self) -> Path:
        return self.repo_path / self.env_file


class Pm2Config(_Section):
    apps: list[str] = Field(default_factory=lambda: ["ai-professor-backend-5000", "ai-professor-python"])
    # What step 4 restarts. The runbook restarts only the backend (`pm2 restart ai-professor-backend-5000`),
    # so the default is the first of `apps`; the others are watched and their logs saved, never restarted.
    restart_apps: list[str] | None = None
    executable: str = "pm2"
    home: Path | None = None
    restart_timeout_s: float = Field(default=30.0, gt=0)
    log_lines: int = Field(default=500, gt=0, le=100_000)

    @field_validator("apps", "restart_apps")
    @classmethod
    def _apps(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        if not value:
            raise ValueError("expected at least one pm2 app name")
        for name in value:
            if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$", name):
                raise ValueError(f"{name!r} is not a pm2 app name (letters, digits, . _ -)")
        return value

    @model_validator(mode="after")
    def _restart_known(self) -> Pm2Config:
        unknown = [app for app in self.restart_apps or [] if app not in self.apps]
        if unknown:
            raise ValueError(f"restart_apps names {unknown}, which are not in apps {self.apps}")
        return self

    @property
    def to_restart(self) -> list[str]:
        return list(self.restart_apps or self.apps[:1])


class BackupKeep(_Section):
    """Retention: which backup runs the scheduled prune (and ``rollback-bot backups prune``) may remove. A run is
    removed when it is beyond its incident's newest ``per_incident`` runs or older than ``max_age_days`` (null:
    no such limit), unless something relies on it (``bot/domain/backups.py``: never removed)."""

    per_incident: int | None = Field(default=3, ge=1)
    max_age_days: float | None = Field(default=30.0, gt=0)
    schedule: bool = True  # prune every `every_h` hours; false: only `rollback-bot backups prune --yes` does
    every_h: float = Field(default=6.0, gt=0, le=24 * 7)


class BackupConfig(_Section):
    parallel: int = Field(default=4, ge=1, le=64)  # tenant databases dumped at the same time
    # A backup is refused when its estimated size would leave less than this free on the data folder's file
    # system (MiB: 1,048,576 bytes). The state store and the postmortems live there too.
    reserve_mb: int = Field(default=1024, ge=0)
    keep: BackupKeep = Field(default_factory=BackupKeep)


class BuildKeep(_Section):
    """The last-known-good builds under ``<data_dir>/builds`` (``bot/ops/builds.py``): at most ``max_count``
    builds and ``max_mb`` MiB together, the newest kept, never the build of an open incident's rollback target."""

    max_count: int = Field(default=5, ge=0)  # 0: keep no build (every rebuild runs yarn)
    max_mb: int = Field(default=2048, ge=1)
    schedule: bool = True  # also keep a build of HEAD (made in a worktree) while the scheduled checks pass
    alongside_backup: bool = True  # build the rollback target in a worktree of its own while the backup runs


OUTPUT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")


class BuildConfig(_Section):
    executable: str = "yarn"
    timeout_s: float = Field(default=900.0, gt=0)
    node: str = "node"  # the node the app runs on: its `--version` is part of a kept build's key
    outputs: list[str] = Field(default_factory=lambda: ["dist", "node_modules"])  # what yarn install/build make
    keep: BuildKeep = Field(default_factory=BuildKeep)

    @field_validator("outputs")
    @classmethod
    def _plain_names(cls, values: list[str]) -> list[str]:
        for value in values:
            if not OUTPUT_NAME.match(value) or value in (".git", ".."):
                raise ValueError(f"{value!r} is not a folder name in the target's folder (like dist or node_modules)")
        if not values or len(set(values)) != len(values):
            raise ValueError("name each output folder once, at least one (like [dist, node_modules])")
        return values


class Endpoint(_Section):
    path: str
    bearer_token_env: str | None = None
    expect_status: int = 200

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("expected a path starting with /, like /api/internship")
        return value


class HealthConfig(_Section):
    url: AnyHttpUrl = AnyHttpUrl("http://localhost:3000/api/health")
    expect_json: dict[str, Any] = Field(default_factory=lambda: {"status": "ok"})
    core_endpoints: list[Endpoint] = Field(
        default_factory=lambda: [Endpoint(path="/api/internship", bearer_token_env="HEALTH_BEARER_TOKEN")]  # noqa: S106
    )
    timeout_s: float = Field(default=10.0, gt=0)
    # Right after a restart the app may still be starting: verify asks the health URL and the core endpoints
    # again (every 1-3 s) for up to this long before it fails. The thresholds still decide pass or fail.
    settle_s: float = Field(default=30.0, ge=0, le=600)


class TenantsConfig(_Section):
    central_db_uri_env: str = "CENTRAL_DB_URI"
    schools_collection: str = "schools"
    active_filter: dict[str, Any] = Field(default_factory=lambda: {"deleted_at": None})
    db_name_field: str = "db_name"
    name_field: str = "name"


class CleanupConfig(_Section):
    collection: str = "internshipcases"
    unset_fields: list[str] = Field(default_factory=lambda: list(RUNBOOK_CLEANUP_FIELDS))
    drop_collections: list[str] = Field(default_factory=lambda: ["internship_case_attempts"])
    approve_emoji: str = "white_check_mark"
    reject_emoji: str = "x"
    approval_ttl_minutes: int = Field(default=15, gt=0, le=24 * 60)
    approvals_required: int = Field(default=1, ge=1, le=5)
    start_delay_s: float = Field(default=10.0, ge=0, le=600)


class ThresholdsConfig(_Section):
    backend_response_s: float = Field(default=5.0, gt=0)
    assessment_timeout_s: float = Field(default=120.0, gt=0)
    assessment_failure_ratio: float = Field(default=0.5, gt=0, le=1)


class AccessConfig(_Section):
    incident_channels: list[str] = Field(default_factory=list)
    commanders: list[str] = Field(default_factory=list)
    approvers: list[str] = Field(default_factory=list)

    @field_validator("incident_channels")
    @classmethod
    def _channels(cls, value: list[str]) -> list[str]:
        for channel in value:
            if not SLACK_CHANNEL_ID.match(channel):
                raise ValueError(f"{channel!r} is not a Slack channel id (like C012ABCDEF)")
        return value

    @field_validator("commanders", "approvers")
    @classmethod
    def _people(cls, value: list[str]) -> list[str]:
        return _check_people(value)


class SlackConfig(_Section):
    api_url: AnyHttpUrl = AnyHttpUrl(DEFAULT_SLACK_API_URL)
    stakeholder_channel: str | None = None
    alerts_channel: str | None = None
    timeline_emoji: str = Field(default="pushpin", pattern=r"^[a-z0-9_+'-]{1,64}$")  # a commander's reaction adds
    # the message to the incident's timeline

    @field_validator("stakeholder_channel", "alerts_channel")
    @classmethod
    def _channel(cls, value: str | None) -> str | None:
        if value is not None and not SLACK_CHANNEL_ID.match(value):
            raise ValueError(f"{value!r} is not a Slack channel id (like C012ABCDEF)")
        return value


ContactRole = Literal["backend_lead", "ai_server_team", "frontend_team", "database_admin"]
AI_SERVER_APP: dict[str, ContactRole] = {"ai-professor-python": "ai_server_team"}
CONTACT_NAMES: dict[str, str] = {"backend_lead": "the backend lead", "ai_server_team": "the AI server team",
                                 "frontend_team": "the frontend team", "database_admin": "the database admin"}


class ContactsConfig(_Section):
    backend_lead: list[str] = Field(default_factory=list)
    ai_server_team: list[str] = Field(default_factory=list)
    frontend_team: list[str] = Field(default_factory=list)
    database_admin: list[str] = Field(default_factory=list)
    # Who runs each pm2 app, for a failed verify's "call …" (an app not named here: the backend lead).
    apps: dict[str, ContactRole] = Field(default_factory=lambda: dict(AI_SERVER_APP))

    @field_validator("backend_lead", "ai_server_team", "frontend_team", "database_admin")
    @classmethod
    def _people(cls, value: list[str]) -> list[str]:
        return _check_people(value)

    def people(self, role: ContactRole) -> list[str]:
        people: list[str] = getattr(self, role)
        return list(people)

    def role_of(self, app: str) -> ContactRole:
        return self.apps.get(app, "backend_lead")


class EmailConfig(_Section):
    """Optional: the stakeholder update's plain-text version by e-mail too."""

    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    starttls: bool = False
    username: str | None = None  # the password comes from SMTP_PASSWORD in the environment
    sender: str = "rollback-bot@localhost"
    recipients: list[str] = Field(default_factory=list)
    timeout_s: float = Field(default=10.0, gt=0)

    @field_validator("recipients")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", address):
                raise ValueError(f"{address!r} is not an e-mail address (like oncall@example.com)")
        return value


class CommsConfig(_Section):
    """The runbook's stakeholder communication template."""

    reminder_minutes: int = Field(default=30, ge=1, le=24 * 60)
    # How long a post whose sender died is looked for in Slack's history (which can show a post late) before
    # it is concluded that Slack never got it, and sent.
    lookup_s: float = Field(default=15.0, ge=0, le=300)
    product: str = "AI Professor Backend"
    system: str = "Comprehensive Assessment System"
    signature: str = "Backend Team"
    email: EmailConfig = Field(default_factory=EmailConfig)


class FollowUpsConfig(_Section):
    """Follow-ups after the close: each open one's owner is reminded every ``remind_days`` until it is done."""

    remind_days: int = Field(default=7, ge=1, le=365)


class MongoProbe(_Section):
    """A count ratio over the tenant databases, e.g. failed assessment generations over sessions."""

    name: str = Field(pattern=r"^[A-Za-z0-9 _.-]{1,60}$")
    collection: str
    failed_filter: dict[str, Any]
    total_filter: dict[str, Any] = Field(default_factory=dict)
    time_field: str | None = "created_at"
    window_minutes: int = Field(default=60, ge=1)
    max_ratio: float = Field(default=0.5, gt=0, le=1)
    min_total: int = Field(default=1, ge=1)
    criterion: str | None = "gen_fail"


class MonitorConfig(_Section):
    """Scheduled health checks: the runbook's "When to Rollback" criteria made measurable."""

    enabled: bool = True
    interval_s: float = Field(default=60.0, ge=1)
    jitter_s: float = Field(default=5.0, ge=0)
    check_timeout_s: float = Field(default=8.0, gt=0)
    failures_to_alert: int = Field(default=3, ge=1)
    healthy_to_restore: int = Field(default=5, ge=1)
    verdict_every: int = Field(default=3, ge=1)
    history: int = Field(default=120, ge=10, le=5000)
    lease_s: float = Field(default=150.0, gt=0)
    max_parallel: int = Field(default=32, ge=1, le=512)  # threads for the pm2 and MongoDB checks
    http_concurrency: int = Field(default=256, ge=1, le=4096)  # HTTP checks in flight at once (asyncio)
    pm2: bool = True
    mongo_probes: list[MongoProbe] = Field(default_factory=list)


class StoreConfig(_Section):
    data_dir: Path = Path("./data")
    incident_prefix: str = Field(default="RB", pattern=r"^[A-Z]{1,6}$")
    # Replicas: each renews its lease every heartbeat_s; another takes over its work owner_lease_s after it died.
    owner_lease_s: float = Field(default=30.0, gt=0, le=3600)
    heartbeat_s: float = Field(default=5.0, gt=0, le=600)
    sweep_s: float = Field(default=2.0, gt=0, le=600)  # how often recovery and due danger-zone starts are checked

    @model_validator(mode="after")
    def _beat_within_lease(self) -> StoreConfig:
        if self.heartbeat_s * 2 > self.owner_lease_s:
            raise ValueError("heartbeat_s must be at most half of owner_lease_s, or a live replica looks dead")
        return self


class OpsConfig(_Section):
    """Where Socket Mode serves /healthz, /readyz and /metrics (HTTP mode serves them beside /slack/events)."""

    host: str = "127.0.0.1"
    port: int | None = Field(default=None, ge=0, le=65535)  # None: no such server in Socket Mode; 0: any free port


class RunbookConfig(_Section):
    """Everything in ``rollback.yml``. Secrets never live here."""

    target: TargetConfig = Field(default_factory=TargetConfig)
    pm2: Pm2Config = Field(default_factory=Pm2Config)
    build: BuildConfig = Field(default_factory=BuildConfig)
    backup: BackupConfig = Field(default_factory=BackupConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    tenants: TenantsConfig = Field(default_factory=TenantsConfig)
    cleanup: CleanupConfig = Field(default_factory=CleanupConfig)
    thresholds: ThresholdsConfig = Field(default_factory=ThresholdsConfig)
    access: AccessConfig = Field(default_factory=AccessConfig)
    slack: SlackConfig = Field(default_factory=SlackConfig)
    contacts: ContactsConfig = Field(default_factory=ContactsConfig)
    comms: CommsConfig = Field(default_factory=CommsConfig)
    followups: FollowUpsConfig = Field(default_factory=FollowUpsConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    ops: OpsConfig = Field(default_factory=OpsConfig)


class Secrets(BaseModel):
    """Secrets and deployment overrides, only ever from the environment (or ./.env): see ``from_environment``."""

    model_config = ConfigDict(extra="ignore")

    slack_bot_token: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    state_store_uri: SecretStr | None = None
    smtp_password: SecretStr | None = None
    slack_api_url: str | None = None
    rollback_replica_id: str | None = None  # not a secret: this replica's stable id (default: host + data folder)

    @classmethod
    def from_environment(cls, env_file: Path | None = Path(".env")) -> Secrets:
        """Each field from the environment variable of its name, in any case, else from ``env_file`` when it exists.

        The file is read by python-dotenv as text: nothing in it is run, and ``${...}`` in a value is kept as it
        is (a password may hold one)."""
        found: dict[str, str | None] = {}
        if env_file is not None and (env_file.is_file() or env_file.is_fifo()):  # a pipe: a secrets tool's
            found.update((key.lower(), value) for key, value in dotenv_values(env_file, interpolate=False).items())
        found.update((key.lower(), value) for key, value in os.environ.items())
        return cls.model_validate({name: found[name] for name in cls.model_fields if found.get(name) is not None})

    def values(self) -> list[str]:
        """Every secret value, for redaction."""
        return [s.get_secret_value() for s in (self.slack_bot_token, self.slack_app_token, self.slack_signing_secret,
                                               self.state_store_uri, self.smtp_password) if s is not None]


class Settings(BaseModel):
    """The one settings object: validated runbook config plus secrets."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    runbook: RunbookConfig
    secrets: Secrets
    source: Path | None = None

    @property
    def api_url(self) -> str:
        url = self.secrets.slack_api_url or str(self.runbook.slack.api_url)
        return url if url.endswith("/") else url + "/"

    @property
    def data_dir(self) -> Path:
        data_dir = self.runbook.store.data_dir
        if not data_dir.is_absolute() and self.source is not None:
            data_dir = self.source.parent / data_dir
        return data_dir

    def require_people(self) -> None:
        """Fail at start-up when nobody could do anything: no incident channel, commander or approver."""
        access = self.runbook.access
        empty = [f"access.{key}" for key, value in (("incident_channels", access.incident_channels),
                                                    ("commanders", access.commanders),
                                                    ("approvers", access.approvers)) if not value]
        if empty:
            verb = "is" if len(empty) == 1 else "are"
            raise ConfigError(
                f"{', '.join(empty)} {verb} empty in {self.source or 'the config'}: the bot would answer every "
                "command with a refusal. Add the incident channel ids (C…), and user ids (U…) or @group handles "
                "for the commanders and the approvers (see rollback.example.yml)"
            )

    def require(self, *names: Literal["slack_bot_token", "slack_app_token", "slack_signing_secret"]) -> None:
        """Fail at start-up, naming the variable, when a secret the mode needs is missing."""
        missing = [name.upper() for name in names if getattr(self.secrets, name) is None]
        if missing:
            raise ConfigError(
                "missing secret(s): "
                + ", ".join(missing)
                + " — set them in the environment or in a .env file in the working directory"
            )


def format_validation_error(error: ValidationError, source: str) -> str:
    lines = [f"{source} is not valid:"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key (see rollback.example.yml for the keys that exist)"
        elif item["type"] == "missing":
            message = "required key is missing"
        shown = "" if item["type"] in ("extra_forbidden", "missing") else f" (got {item.get('input')!r})"
        lines.append(f"  {key}: {message}{shown}")
    return "\n".join(lines)


def parse_runbook(data: Any, source: str = "rollback.yml") -> RunbookConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source} is not valid:\n  (top level): expected a mapping of sections like target:, pm2:")
    try:
        return RunbookConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, source)) from None


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    if explicit:
        return Path(explicit)
    from_env = os.environ.get("ROLLBACK_CONFIG")
    if from_env:
        return Path(from_env)
    default = Path("rollback.yml")
    return default if default.exists() else None


def load_settings(explicit: str | os.PathLike[str] | None = None, *, env_file: bool = True) -> Settings:
    """Read ``rollback.yml`` (``--config`` > ``ROLLBACK_CONFIG`` > ``./rollback.yml``) and the environment."""
    path = config_path(explicit)
    data: Any = {}
    if path is not None:
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist (pass --config or set ROLLBACK_CONFIG)")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            raise ConfigError(f"{path} is not valid YAML: {error}") from None
    runbook = parse_runbook(data, str(path or "built-in defaults"))
    secrets = Secrets.from_environment(Path(".env") if env_file else None)
    return Settings(runbook=runbook, secrets=secrets, source=path.resolve() if path else None)
