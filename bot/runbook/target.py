"""Facts about the target every step needs: where its tenant databases are, and which they are."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from bot.config import RunbookConfig
from bot.errors import StepFailed
from bot.ops import tenants
from bot.ops.builds import BuildStore, Entry
from bot.ops.envfile import read_env_file
from bot.ops.git import GitRepo
from bot.redact import redact_uri
from bot.text import Code


def central_uri(config: RunbookConfig) -> str:
    """``CENTRAL_DB_URI`` from the target's ``.env``, as the runbook's scripts read it."""
    try:
        env = read_env_file(config.target.env_path)
    except OSError:
        raise StepFailed(("cannot read ", Code(str(config.target.env_path))),
                         hint=("The runbook reads ", Code(config.tenants.central_db_uri_env),
                               " from the target's .env.")) from None
    uri = env.get(config.tenants.central_db_uri_env)
    if not uri:
        raise StepFailed((Code(config.tenants.central_db_uri_env), " is not set in ",
                          Code(str(config.target.env_path))))
    return uri


def list_tenants(config: RunbookConfig) -> list[tenants.Tenant]:
    """The tenant databases: the non-deleted ``schools`` in the central database."""
    uri = central_uri(config)
    client = tenants.connect(uri)
    try:
        return tenants.list_tenants(client, uri, config.tenants)
    except StepFailed:
        raise
    except Exception as error:  # noqa: BLE001 - the database may be what is broken; say so, change nothing
        raise StepFailed(("cannot list the tenant databases at ", Code(redact_uri(uri)), ": ",
                          redact_uri(str(error))[:200])) from None
    finally:
        tenants.close(client)


_protected: list[Callable[[], Sequence[str]]] = []  # the commits active incidents go back to (set by the app)


def protect_commits(commits: Callable[[], Sequence[str]]) -> None:
    """The commits whose kept builds the bounds never evict, asked each time the store evicts (the domain's
    ``protected_commits``: the rollback and revert targets of active incidents)."""
    _protected[:] = [commits]


def build_store(config: RunbookConfig, data_dir: Path) -> BuildStore:
    """The kept builds, bounded as ``build.keep`` says, protecting the trees of ``protect_commits``."""
    keep = config.build.keep

    def trees() -> list[str]:
        git = GitRepo(config.target.repo_path)
        return [git.tree(found.sha) for ask in _protected for commit in ask()
                if (found := git.resolve(commit)) is not None]

    return BuildStore(data_dir / "builds", max_count=keep.max_count, max_bytes=keep.max_mb << 20, protect=trees)


def describe_entry(entry: Entry) -> str:
    """A kept build as the plan names it: its key, when and why it was kept."""
    return (f"{entry.key.describe().removesuffix(')')}, kept {entry.kept_at:%Y-%m-%d %H:%M} UTC "
            f"{entry.reason})")
