"""Find the shipped resources (templates/, manifest.yml) in a checkout and in an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_root() -> Path:
    """The folder holding templates/ and manifest.yml.

    An installed wheel carries them in ``bot/_resources`` (see pyproject's force-include);
    a source checkout or an editable install keeps them at the top of the repository.
    """
    installed = _PACKAGE / "_resources"
    if (installed / "templates").is_dir():
        return installed
    checkout = _PACKAGE.parent
    if (checkout / "templates").is_dir():
        return checkout
    raise FileNotFoundError(f"rollback-bot's templates/ were found neither in {installed} nor in {checkout}")


def templates_dir() -> Path:
    return resource_root() / "templates"


def manifest_path() -> Path:
    return resource_root() / "manifest.yml"


def example_config_path() -> Path:
    return resource_root() / "rollback.example.yml"


def http_manifest_path() -> Path:
    return resource_root() / "manifest.http.yml"


def manifest_scopes(path: Path | None = None) -> set[str]:
    """The bot scopes an app manifest asks for."""
    import yaml

    data = yaml.safe_load((path or manifest_path()).read_text(encoding="utf-8"))
    return set(data["oauth_config"]["scopes"]["bot"])
