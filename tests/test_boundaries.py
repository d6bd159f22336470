"""The layers, checked on the source (every import, read with `ast`): the domain knows no Slack, handlers know
no store or adapters, adapters know no domain, and only the presenter writes Block Kit."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imports(package: str, root: Path = ROOT) -> dict[str, set[str]]:
    """Module path → every absolute module it imports (including `if TYPE_CHECKING:` imports)."""
    found: dict[str, set[str]] = {}
    for path in sorted((root / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
                names |= {f"{node.module}.{alias.name}" for alias in node.names}
        found[str(path.relative_to(root))] = names
    return found


def offenders(package: str, forbidden: tuple[str, ...], allowed: tuple[str, ...] = (), root: Path = ROOT) -> list[str]:
    return sorted(f"{module} imports {name}" for module, names in imports(package, root).items() for name in names
                  if name.startswith(forbidden) and not name.startswith(allowed))


SLACK = ("slack_bolt", "slack_sdk")


@pytest.mark.parametrize(("package", "forbidden", "allowed"), [
    # The domain: no Slack library, no presenter, no Slack adapter, no wiring, no handlers.
    ("bot/domain", (*SLACK, "bot.slack_ui", "bot.slack.", "bot.slack", "bot.app", "handlers", "bot.dev"), ()),
    ("bot/runbook", (*SLACK, "bot.slack_ui", "bot.slack", "bot.app", "handlers", "bot.dev", "bot.store"), ()),
    # Handlers speak to the domain through its narrow API only: no store, no adapters, no steps.
    ("handlers", ("bot.store", "bot.ops", "bot.runbook", "bot.slack.", "bot.domain", "bot.dev"),
     ("bot.domain.api", "bot.domain.checklists")),
    # Adapters to the outside world know nothing of the domain or of Slack.
    ("bot/ops", ("bot.domain", "bot.runbook", "bot.slack", "bot.store", "bot.app", "handlers", *SLACK), ()),
    # The presenter turns data into Block Kit; it calls nobody.
    ("bot/slack_ui", (*SLACK, "bot.store", "bot.ops", "bot.slack.", "bot.app", "handlers"), ()),
    ("bot/store", (*SLACK, "bot.slack", "bot.app", "handlers", "bot.ops", "bot.runbook"), ()),
], ids=["domain", "runbook", "handlers", "ops", "presenter", "store"])
def test_each_layer_imports_only_what_it_may(package: str, forbidden: tuple[str, ...],
                                             allowed: tuple[str, ...]) -> None:
    assert offenders(package, forbidden, allowed) == []


BLOCK_KIT = ('"type": "section"', '"type": "actions"', '"type": "header"', '"type": "mrkdwn"', '"type": "button"',
             '"type": "modal"', '"type": "context"', '"type": "input"')


def test_only_the_presenter_builds_block_kit() -> None:
    sources = [path for folder in ("bot", "handlers") for path in (ROOT / folder).rglob("*.py")
               if "emulator" not in path.parts]
    writers = sorted(str(path.relative_to(ROOT)) for path in sources
                     if any(literal in path.read_text(encoding="utf-8") for literal in BLOCK_KIT))
    assert writers and all(w.startswith("bot/slack_ui/") for w in writers), writers


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    """The rules above would catch a domain module importing Slack, even only for type checking."""
    (tmp_path / "bot" / "domain").mkdir(parents=True)
    (tmp_path / "bot" / "domain" / "probe.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from slack_sdk import WebClient\n")
    assert offenders("bot/domain", SLACK, root=tmp_path) == ["bot/domain/probe.py imports slack_sdk",
                                                            "bot/domain/probe.py imports slack_sdk.WebClient"]


def test_redaction_reads_no_files_of_its_own() -> None:
    """bot/redact.py is used by the adapters (bot/ops/tenants.py) and the steps; it must not import them back: the
    composition root hands SecretBook the function that reads the target's .env."""
    names = imports("bot")["bot/redact.py"]
    assert sorted(n for n in names if n.startswith(("bot.", "handlers"))) == []
