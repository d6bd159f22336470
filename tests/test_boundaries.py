"""The layers, checked on the source: every module of `bot/` and `handlers/` sits in exactly one layer of `LAYERS`,
and every import it makes (absolute or relative, `import x.y` or `from x import y`, at the top, inside a
function or under `if TYPE_CHECKING:`) points at a layer it may import. Only the presenter writes Block Kit or
Slack markup, found in the syntax tree (a dict with a Block Kit `"type"`, a string that is Slack markup), not in
the text. The import graph has no circles. CONTRIBUTING.md says the same in words.

Each rule is proved by a small synthetic tree under `tmp_path` on which the checker must report exactly the
violation the rule is for (the `test_the_checker_*` tests at the end).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "handlers")


@dataclass(frozen=True)
class Unit:
    """Modules that are judged together: a folder (`"bot/app/"`) or single files, in one layer.

    A module may import its own unit, the units named in `may_import`, and anything outside `bot/` and
    `handlers/` except the Slack libraries (`SLACK_LIBRARIES`, a unit of its own here) and the metrics library
    (`METRICS_LIBRARIES`: only the composition root counts with it; the domain has its `Metrics` port)."""

    name: str
    layer: float
    holds: tuple[str, ...]
    may_import: tuple[str, ...]


SLACK_LIBRARIES = ("slack_bolt", "slack_sdk")
METRICS_LIBRARIES = ("prometheus_client",)
LIBRARY_UNITS = ("slack_libraries", "metrics_library")
FOUNDATION_LEAVES = ("text", "ids", "clock", "faults", "logctx", "audit", "redact", "resources", "bot")
FOUNDATION = ("config", "commands", "errors", *FOUNDATION_LEAVES)
DOMAIN_AND_BELOW = ("domain", *FOUNDATION)
ADAPTERS = ("slack_ui", "runbook", "store", "slack")
EVERYTHING_BELOW_APP = ("handlers", *ADAPTERS, "domain", "ops", *FOUNDATION)

#: The target layering, top (1) to bottom (7, the foundation, in three tiers 7.1-7.3). A unit may import only
#: units of a lower layer (a higher number) that it names; the same layer only where named (the command line runs
#: `check`, and `bot/dev` lazily).
LAYERS: tuple[Unit, ...] = (
    # 1. Entry points. bot/dev (the emulator, local MongoDB, sandbox, `rollback-bot local`, fakes) may import
    #    anything, and nothing may import it but bot/cli.py, inside a function (see LAZY_ONLY).
    Unit("dev", 1, ("bot/dev/",), ("*",)),
    Unit("cli", 1, ("bot/cli.py",), ("dev", "check", "app", *EVERYTHING_BELOW_APP, "slack_libraries")),
    Unit("check", 1, ("bot/check.py",), ("app", *EVERYTHING_BELOW_APP, "slack_libraries")),
    # 2. The composition root: builds Deps, the services, the scheduler, the Bolt app, logging.
    #    bot/app/metrics.py and bot/app/opsweb.py: the bot's own metrics (prometheus_client), /healthz, /readyz.
    Unit("app", 2, ("bot/app/",), (*EVERYTHING_BELOW_APP, "slack_libraries", "metrics_library")),
    # 3. Bolt listeners: parse, one call to the domain's API (`HANDLERS_SEE_OF_THE_DOMAIN`), render.
    Unit("handlers", 3, ("handlers/",), ("slack_ui", "domain", *FOUNDATION, "slack_libraries")),
    # 4. Adapters: each the domain's and what is below it, never another adapter.
    #    bot/preflight.py is the Slack side's start-up question (auth.test, the scopes, Slack's error codes
    #    said as one line) asked through bot/slack's client: part of that adapter, used by the entry points.
    Unit("slack_ui", 4, ("bot/slack_ui/",), DOMAIN_AND_BELOW),
    Unit("runbook", 4, ("bot/runbook/",), ("domain", "ops", *FOUNDATION)),
    Unit("store", 4, ("bot/store/",), DOMAIN_AND_BELOW),
    Unit("slack", 4, ("bot/slack/", "bot/preflight.py"), (*DOMAIN_AND_BELOW, "slack_libraries")),
    # 5. The domain: records, rules, services, and the contracts (Protocols) the adapters implement.
    Unit("domain", 5, ("bot/domain/",), FOUNDATION),
    # 6. Thin adapters over git, pm2, yarn, processes, MongoDB, HTTP and .env; they know no domain.
    Unit("ops", 6, ("bot/ops/",), FOUNDATION),
    # 7. Foundation, in the order its modules really import each other: settings and the subcommand grammar
    #    (7.1) raise the domain errors (7.2), which are made of domain text (7.3); the rest imports nothing of bot.
    Unit("config", 7.1, ("bot/config.py",), ("errors", *FOUNDATION_LEAVES)),
    Unit("commands", 7.1, ("bot/commands.py",), ("errors", *FOUNDATION_LEAVES)),
    Unit("errors", 7.2, ("bot/errors.py",), ("text",)),
    *(Unit(name, 7.3, (f"bot/{name}.py",), ()) for name in FOUNDATION_LEAVES if name != "bot"),
    Unit("bot", 7.3, ("bot/__init__.py",), ()),  # the package's face: a docstring
)

#: Imports allowed only inside a function body: the command line starts the development tools on demand,
#: so an installed wheel without bot/dev still runs `rollback-bot run`.
LAZY_ONLY = {("cli", "dev")}
#: What the listeners may see of the domain: its narrow API, and the checklists' item ids the checkbox
#: actions carry.
HANDLERS_SEE_OF_THE_DOMAIN = ("bot.domain.api", "bot.domain.checklists")
#: The presenter renders the domain's records; it never holds a service (a module built on the ports bundle
#: `bot.domain.deps`: the coordination object, the runner, the API) — the composition root hands it data.
DOMAIN_PORTS_BUNDLE = "bot.domain.deps"
#: Where Block Kit and Slack markup may be written (bot/dev: the emulator reads and draws them).
MAY_WRITE_SLACK = ("slack_ui", "dev")

BLOCK_KIT_TYPES = frozenset({
    # blocks
    "section", "actions", "context", "header", "divider", "image", "input", "rich_text", "file", "video",
    # composition objects
    "mrkdwn", "plain_text", "option",
    # elements
    "button", "checkboxes", "radio_buttons", "overflow", "datepicker", "timepicker", "datetimepicker",
    "plain_text_input", "number_input", "email_text_input", "url_text_input", "static_select",
    "external_select", "users_select", "conversations_select", "channels_select", "multi_static_select",
    "multi_external_select", "multi_users_select", "multi_conversations_select", "multi_channels_select",
    # surfaces
    "modal", "home",
})
#: Slack markup in a string constant; in an f-string a placeholder (`\0` here) stands for an id or a URL.
SLACK_MARKUP = re.compile(r"<@[UW\0]|<!subteam\^|<#[CGD\0]|<!date\^|<(?:https?://|mailto:|\0)[^<>|\s]*\||"
                          r"<!(?:here|channel|everyone)\b")


@dataclass(frozen=True)
class Import:
    path: str          # the importing file, relative to the root: "bot/domain/runner.py"
    name: str          # the absolute name imported: "bot.store.sqlite.SQLiteStore", "slack_sdk.WebClient"
    target: str        # the module of this tree it lives in ("bot.store.sqlite"), or the library ("slack_sdk")
    lazy: bool         # inside a function body
    line: int


@dataclass(frozen=True)
class Violation:
    text: str          # "module imports name" / "module is in no layer" / "module writes …"
    why: str

    def __str__(self) -> str:
        return f"{self.text}: {self.why}"


def modules(root: Path = ROOT) -> dict[str, str]:
    """Dotted module name → its file relative to the root, for every module of `bot/` and `handlers/`."""
    found: dict[str, str] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root)
            parts = relative.with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = relative.as_posix()
    return found


def _walk(node: ast.AST, lazy: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    """Every node with whether it sits inside a function body."""
    for child in ast.iter_child_nodes(node):
        yield child, lazy
        inner = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        yield from _walk(child, inner)


def _owner(name: str, known: dict[str, str]) -> str:
    """The module of this tree `name` lives in (the longest dotted prefix that is a module), or its top package."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in known:
            return ".".join(parts[:end])
    return parts[0]


def imports(root: Path = ROOT) -> list[Import]:
    known = modules(root)
    found: list[Import] = []
    for module, file in known.items():
        package = module if file.endswith("__init__.py") else module.rpartition(".")[0]
        tree = ast.parse((root / file).read_text(encoding="utf-8"), filename=file)
        for node, lazy in _walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base_parts = package.split(".")
                    base_parts = base_parts[:len(base_parts) - (node.level - 1)]
                    base = ".".join([*base_parts, node.module] if node.module else base_parts)
                else:
                    base = node.module or ""
                names = [f"{base}.{alias.name}" if alias.name != "*" else base for alias in node.names]
            found += [Import(file, name, _owner(name, known), lazy, getattr(node, "lineno", 0)) for name in names]
    return found


def unit_of(file: str) -> list[Unit]:
    return [unit for unit in LAYERS
            if any(file == place or (place.endswith("/") and file.startswith(place)) for place in unit.holds)]


def _services(known: dict[str, str], found: list[Import]) -> set[str]:
    """Domain modules built on the ports bundle: the bundle itself and every module importing it."""
    files = {file: module for module, file in known.items()}
    return {DOMAIN_PORTS_BUNDLE} | {files[i.path] for i in found
                                    if i.target == DOMAIN_PORTS_BUNDLE and files[i.path].startswith("bot.domain")}


def _said(names: tuple[str, ...]) -> str:
    if set(FOUNDATION) <= set(names):
        names = (*(name for name in names if name not in FOUNDATION), "the foundation")
    return ", ".join(names) or "nothing of bot"


def layer_violations(root: Path = ROOT) -> list[Violation]:
    known = modules(root)
    found = imports(root)
    services = _services(known, found)
    out: list[Violation] = []
    for file in known.values():
        units = unit_of(file)
        if len(units) != 1:
            where = f"in {', '.join(u.name for u in units)}" if units else "in no layer"
            out.append(Violation(f"{file} is {where}",
                                 "add it to exactly one unit of LAYERS in tests/test_boundaries.py (and the "
                                 "README's map)"))
    files = {file: module for module, file in known.items()}
    for imp in found:
        units = unit_of(imp.path)
        if len(units) != 1 or imp.target == files[imp.path]:
            continue  # a module in no layer is reported above; a module importing itself is no arrow
        own = units[0]
        if imp.target in known:
            units = unit_of(known[imp.target])
            if len(units) != 1:
                out.append(Violation(f"{imp.path} imports {imp.name}", f"{imp.target} is in no layer"))
                continue
            target = units[0].name
        elif imp.target in SLACK_LIBRARIES:
            target = "slack_libraries"
        elif imp.target in METRICS_LIBRARIES:
            target = "metrics_library"
        else:
            continue  # the standard library and other libraries
        text = f"{imp.path} imports {imp.name}"
        if target == own.name:
            continue
        if (own.name, target) in LAZY_ONLY and not imp.lazy:
            out.append(Violation(text, f"{own.name} may import {target} only inside a function"))
        elif target == "dev" and (own.name, target) not in LAZY_ONLY:
            out.append(Violation(text, "nothing outside bot/dev imports it but bot/cli.py, inside a function"))
        elif "*" not in own.may_import and target not in own.may_import:
            out.append(Violation(text, f"{own.name} (layer {own.layer}) may import only {_said(own.may_import)}"))
        elif own.name == "handlers" and target == "domain" and imp.target not in HANDLERS_SEE_OF_THE_DOMAIN:
            out.append(Violation(text, f"handlers see of the domain only {', '.join(HANDLERS_SEE_OF_THE_DOMAIN)}"))
        elif own.name == "slack_ui" and imp.target in services:
            out.append(Violation(text, "the presenter renders the domain's records; it holds no service built on "
                                       f"{DOMAIN_PORTS_BUNDLE}"))
    return out


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _template(node: ast.JoinedStr) -> str:
    return "".join(part.value if isinstance(part, ast.Constant) and isinstance(part.value, str) else "\0"
                   for part in node.values)


def slack_writers(root: Path = ROOT, may_write: tuple[str, ...] = MAY_WRITE_SLACK) -> list[Violation]:
    """Block Kit dicts and Slack markup strings outside the units that may write them."""
    out: list[Violation] = []
    for file in modules(root).values():
        units = unit_of(file)
        if len(units) != 1 or units[0].name in may_write:
            continue
        tree = ast.parse((root / file).read_text(encoding="utf-8"), filename=file)
        docstrings = _docstrings(tree)
        inside_fstring = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr)
                          for part in node.values}
        for node in ast.walk(tree):
            kind = None
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if (isinstance(key, ast.Constant) and key.value == "type" and isinstance(value, ast.Constant)
                            and value.value in BLOCK_KIT_TYPES):
                        kind = f"Block Kit {{'type': {value.value!r}}}"
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
                for keyword in node.keywords:
                    if (keyword.arg == "type" and isinstance(keyword.value, ast.Constant)
                            and keyword.value.value in BLOCK_KIT_TYPES):
                        kind = f"Block Kit dict(type={keyword.value.value!r})"
            elif isinstance(node, ast.JoinedStr) and (match := SLACK_MARKUP.search(_template(node))):
                kind = f"Slack markup {match.group(0).replace(chr(0), '{…}')!r}"
            elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
                  and id(node) not in inside_fstring and (match := SLACK_MARKUP.search(node.value))):
                kind = f"Slack markup {match.group(0)!r}"
            if kind:
                out.append(Violation(f"{file} writes {kind}", f"line {getattr(node, 'lineno', 0)}: only "
                                                                "bot/slack_ui writes Block Kit and Slack markup"))
    return out


def circles(root: Path = ROOT) -> list[list[str]]:
    """Every strongly connected set of more than one module in the import graph (Tarjan)."""
    known = modules(root)
    graph: dict[str, set[str]] = {module: set() for module in known}
    files = {file: module for module, file in known.items()}
    for imp in imports(root):
        if imp.target in known and imp.target != files[imp.path]:
            graph[files[imp.path]].add(imp.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def violations(root: Path = ROOT) -> list[str]:
    return sorted({v.text for v in layer_violations(root) + slack_writers(root)})


# --- the real tree ---------------------------------------------------------------------------------------------


def test_the_table_points_only_down() -> None:
    """A rule of LAYERS never lets a unit import a higher layer, nor (outside the stated pairs) its own."""
    by_name = {unit.name: unit for unit in LAYERS}
    stated_same_layer = {("cli", "check"), ("cli", "dev")}
    assert len(by_name) == len(LAYERS)
    for unit in LAYERS:
        for target in unit.may_import:
            if target in ("*", *LIBRARY_UNITS):
                continue
            assert by_name[target].layer > unit.layer or (unit.name, target) in stated_same_layer, (unit, target)


def test_every_module_is_in_one_layer_and_imports_only_what_it_may() -> None:
    found = layer_violations() + slack_writers()
    assert sorted(str(v) for v in found) == []


def test_the_presenter_writes_block_kit() -> None:
    """The structural search finds the presenter's own Block Kit, so it is looking at the right thing."""
    writers = {v.text.split(" ", 1)[0] for v in slack_writers(may_write=("dev",))}
    assert {"bot/slack_ui/blocks.py", "bot/slack_ui/escape.py"} <= writers


def test_the_import_graph_has_no_circles() -> None:
    assert circles() == []


# --- the checker, on synthetic trees ---------------------------------------------------------------------------


def tree(root: Path, files: dict[str, str]) -> Path:
    """A small tree mimicking the layout: every package gets its `__init__.py`."""
    for name, text in files.items():
        path = root / name
        for parent in reversed(path.relative_to(root).parents[:-1]):
            (root / parent).mkdir(exist_ok=True)
            (root / parent / "__init__.py").touch()
        path.write_text(text, encoding="utf-8")
    return root


ESCAPE = {"bot/slack_ui/escape.py": "def escape(text):\n    return text\n"}
STORE = {"bot/store/sqlite.py": "class SQLiteStore:\n    pass\n",
         "bot/store/__init__.py": "from bot.store.sqlite import SQLiteStore\n"}


def test_the_checker_passes_a_tree_that_keeps_the_rules(tmp_path: Path) -> None:
    root = tree(tmp_path, {
        **ESCAPE, **STORE,
        "bot/domain/deps.py": "from bot.text import Rich\n",
        "bot/domain/incident.py": '"""A mention is written `<@U123>` by the presenter."""\n'
                                  'KIND = {"type": "message"}\n',
        "bot/domain/ports.py": "from . import incident\nfrom .incident import KIND\n",
        "bot/slack_ui/panel.py": 'from bot.domain.incident import KIND\nfrom .escape import escape\n'
                                 'B = {"type": "section", "text": f"<@{KIND}>"}\n',
        "bot/runbook/revert.py": "from bot.ops.git import WorkTree\nfrom bot.domain.incident import KIND\n",
        "bot/ops/git.py": "import subprocess\nclass WorkTree:\n    pass\n",
        "bot/text.py": "Rich = list\n",
        "bot/cli.py": "def local():\n    from bot.dev.local import prepare\n",
        "bot/dev/local.py": "from bot.store import SQLiteStore\nprepare = None\nB = {'type': 'button'}\n",
        "handlers/commands/__init__.py": "from bot.domain.api import Rollback\nfrom bot.slack_ui import panel\n",
        "bot/domain/api.py": "from bot.domain.deps import Rich\nclass Rollback:\n    pass\n",
    })
    assert violations(root) == []
    assert circles(root) == []


@pytest.mark.parametrize(("source", "expected"), [
    ("from ..slack_ui import escape\n", "bot.slack_ui.escape"),
    ("from ..slack_ui.escape import escape\n", "bot.slack_ui.escape.escape"),
    ("from .. import slack_ui\n", "bot.slack_ui"),
    ("import bot.slack_ui.escape\n", "bot.slack_ui.escape"),
    ("from bot.slack_ui import escape\n", "bot.slack_ui.escape"),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bot.slack_ui.escape import escape\n",
     "bot.slack_ui.escape.escape"),
    ("def later():\n    from ..slack_ui import escape\n", "bot.slack_ui.escape"),
], ids=["relative", "relative-name", "relative-package", "import-x.y", "from-x-import-y", "type-checking", "lazy"])
def test_the_checker_catches_the_domain_importing_the_presenter(tmp_path: Path, source: str, expected: str) -> None:
    """The issue's first case: `from ..slack_ui import escape` inside bot/domain passed the old test."""
    root = tree(tmp_path, {**ESCAPE, "bot/domain/probe.py": source})
    assert violations(root) == [f"bot/domain/probe.py imports {expected}"]


@pytest.mark.parametrize("where", ["bot/domain/runner.py", "bot/slack/client.py", "handlers/listener.py"])
def test_the_checker_catches_prometheus_client_outside_the_composition_root(tmp_path: Path, where: str) -> None:
    """The domain records through its `Metrics` port; only bot/app (the port's implementation) uses the library."""
    root = tree(tmp_path, {where: "from prometheus_client import Counter\n",
                           "bot/app/metrics.py": "from prometheus_client import Counter\n"})
    assert violations(root) == [f"{where} imports prometheus_client.Counter"]


@pytest.mark.parametrize(("source", "expected"), [
    ("from bot.store import SQLiteStore\n", "bot.store.SQLiteStore"),
    ("from bot.store.sqlite import SQLiteStore\n", "bot.store.sqlite.SQLiteStore"),
    ("from ..store.sqlite import SQLiteStore\n", "bot.store.sqlite.SQLiteStore"),
    ("import bot.store.sqlite\n", "bot.store.sqlite"),
])
def test_the_checker_catches_the_domain_importing_the_store(tmp_path: Path, source: str, expected: str) -> None:
    root = tree(tmp_path, {**STORE, "bot/domain/incidents.py": source})
    assert violations(root) == [f"bot/domain/incidents.py imports {expected}"]


@pytest.mark.parametrize(("literal", "found"), [
    ("{'type': 'section', 'text': {'type': 'mrkdwn', 'text': 'hi'}}", ["{'type': 'mrkdwn'}", "{'type': 'section'}"]),
    ('{"type": "button", "text": """Go"""}', ["{'type': 'button'}"]),
    ("{'block_id': 'x', **{}, 'type': 'actions'}", ["{'type': 'actions'}"]),
    ("dict(type='divider')", ["dict(type='divider')"]),
], ids=["single-quoted", "double-quoted", "with-splat", "dict-call"])
@pytest.mark.parametrize("place", ["bot/domain/updates.py", "handlers/commands/__init__.py", "bot/runbook/verify.py"])
def test_the_checker_catches_block_kit_outside_the_presenter(tmp_path: Path, literal: str, found: list[str],
                                                             place: str) -> None:
    """Found in the syntax tree, so the quotes, the spacing and the keys' order do not matter."""
    root = tree(tmp_path, {place: f"BLOCKS = [{literal}]\n"})
    assert violations(root) == [f"{place} writes Block Kit {kind}" for kind in found]


@pytest.mark.parametrize(("source", "shown"), [
    ('APPROVED = "<@U024BE7LH> approved"\n', "'<@U'"),
    ("def who(user):\n    return f'<@{user}> approved'\n", "'<@{…}'"),
    ('PING = "<!subteam^S0614TZR7>"\n', "'<!subteam^'"),
    ('WHERE = "in <#C0123ABC>"\n', "'<#C'"),
    ("def when(t):\n    return f'<!date^{t}^{{time}}|{t}>'\n", "'<!date^'"),
    ('RUNBOOK = "<https://wiki.example/runbook|runbook>"\n', "'<https://wiki.example/runbook|'"),
    ("def link(url, label):\n    return f'<{url}|{label}>'\n", "'<{…}|'"),
    ('ALL = "<!channel> look"\n', "'<!channel'"),
])
def test_the_checker_catches_slack_markup_in_the_domain(tmp_path: Path, source: str, shown: str) -> None:
    root = tree(tmp_path, {"bot/domain/access.py": '"""Refusals name people: `<@U123>` comes from the presenter."""\n'
                                                    + source})
    assert violations(root) == [f"bot/domain/access.py writes Slack markup {shown}"]


@pytest.mark.parametrize(("source", "expected"), [
    ("from bot.domain.desk import Desk\n", "bot.domain.desk.Desk"),
    ("from ..domain import desk\n", "bot.domain.desk"),
    ("from bot.domain.deps import Deps\n", "bot.domain.deps.Deps"),
    ("from bot.runbook import STEPS\n", "bot.runbook.STEPS"),
], ids=["coordination-object", "coordination-relative", "ports-bundle", "step-registry"])
def test_the_checker_catches_the_presenter_holding_a_service(tmp_path: Path, source: str, expected: str) -> None:
    root = tree(tmp_path, {
        "bot/domain/deps.py": "class Deps:\n    pass\n",
        "bot/domain/desk.py": "from bot.domain.deps import Deps\nclass Desk:\n    pass\n",
        "bot/domain/incident.py": "class Incident:\n    pass\n",
        "bot/runbook/__init__.py": "STEPS = {}\n",
        "bot/slack_ui/panel.py": "from bot.domain.incident import Incident\n" + source,
    })
    assert violations(root) == [f"bot/slack_ui/panel.py imports {expected}"]


@pytest.mark.parametrize(("files", "expected"), [
    ({"bot/helpers.py": "import os\n"}, ["bot/helpers.py is in no layer"]),
    ({"bot/emulator/server.py": "from bot.text import Rich\n", "bot/text.py": ""},
     ["bot/emulator/__init__.py is in no layer", "bot/emulator/server.py is in no layer"]),
    ({"bot/sandbox.py": "", "bot/cli.py": "def local():\n    from bot.sandbox import Sandbox\n"},
     ["bot/cli.py imports bot.sandbox.Sandbox", "bot/sandbox.py is in no layer"]),
], ids=["loose-module", "loose-package", "and-who-imports-it"])
def test_the_checker_names_a_module_in_no_layer(tmp_path: Path, files: dict[str, str], expected: list[str]) -> None:
    """The issue's 17 loose bot/*.py modules were under no rule: now a new file must be placed in LAYERS."""
    root = tree(tmp_path, {**files, "bot/domain/incident.py": ""})
    assert violations(root) == expected
    assert all("add it to exactly one unit of LAYERS in tests/test_boundaries.py" in v.why
               for v in layer_violations(root) if v.text.endswith("is in no layer"))


@pytest.mark.parametrize(("files", "expected"), [
    ({"bot/domain/runner.py": "from bot.runbook import STEPS\n", "bot/runbook/__init__.py": "STEPS = {}\n"},
     "bot/domain/runner.py imports bot.runbook.STEPS"),
    ({"bot/domain/incidents.py": "from bot.ops.git import GitRepo\n", "bot/ops/git.py": "GitRepo = 1\n"},
     "bot/domain/incidents.py imports bot.ops.git.GitRepo"),
    ({"bot/store/base.py": "from bot.runbook.base import Step\n", "bot/runbook/base.py": "Step = 1\n"},
     "bot/store/base.py imports bot.runbook.base.Step"),
    ({"bot/store/base.py": "from ..slack_ui import escape\n", **ESCAPE},
     "bot/store/base.py imports bot.slack_ui.escape"),
    ({"bot/store/mongo.py": "from bot.ops import tenants\n", "bot/ops/tenants.py": ""},
     "bot/store/mongo.py imports bot.ops.tenants"),
    ({"bot/redact.py": "from bot.ops.envfile import read_env_file\n", "bot/ops/envfile.py": ""},
     "bot/redact.py imports bot.ops.envfile.read_env_file"),
    ({"bot/ops/cleanup.py": "from bot.domain.approvals import DangerPlan\n", "bot/domain/approvals.py": ""},
     "bot/ops/cleanup.py imports bot.domain.approvals.DangerPlan"),
    ({"bot/domain/ports.py": "from bot.app.services import Services\n", "bot/app/services.py": ""},
     "bot/domain/ports.py imports bot.app.services.Services"),
    ({"bot/domain/ports.py": "import typing\nif typing.TYPE_CHECKING:\n    from slack_sdk import WebClient\n"},
     "bot/domain/ports.py imports slack_sdk.WebClient"),
    ({"bot/slack_ui/panel.py": "import slack_bolt\n"}, "bot/slack_ui/panel.py imports slack_bolt"),
    ({"handlers/commands/__init__.py": "from bot.store import Store\n", "bot/store/__init__.py": "Store = 1\n"},
     "handlers/commands/__init__.py imports bot.store.Store"),
    ({"handlers/actions/__init__.py": "from bot.domain.desk import Desk\n", "bot/domain/desk.py": ""},
     "handlers/actions/__init__.py imports bot.domain.desk.Desk"),
    ({"bot/runbook/revert.py": "from bot.slack import messenger\n", "bot/slack/messenger.py": ""},
     "bot/runbook/revert.py imports bot.slack.messenger"),
    ({"bot/config.py": "from bot.commands import parse\n", "bot/commands.py": ""},
     "bot/config.py imports bot.commands.parse"),
    ({"bot/errors.py": "from bot import config\n", "bot/config.py": ""}, "bot/errors.py imports bot.config"),
    ({"bot/app/services.py": "from bot.dev.clock import FakeClock\n", "bot/dev/clock.py": ""},
     "bot/app/services.py imports bot.dev.clock.FakeClock"),
    ({"bot/cli.py": "from bot.dev import local\n", "bot/dev/local.py": ""}, "bot/cli.py imports bot.dev.local"),
], ids=["domain-runbook", "domain-ops", "store-runbook", "store-presenter", "store-ops", "redact-ops",
        "ops-domain", "domain-app", "domain-slack_sdk", "presenter-slack_bolt", "handlers-store",
        "handlers-domain-internals", "runbook-slack", "foundation-sideways", "foundation-up", "dev-imported",
        "dev-imported-eagerly"])
def test_the_checker_catches_an_arrow_that_runs_back_up(tmp_path: Path, files: dict[str, str],
                                                        expected: str) -> None:
    assert violations(tree(tmp_path, files)) == [expected]


def test_the_checker_finds_a_circle(tmp_path: Path) -> None:
    root = tree(tmp_path, {"bot/domain/desk.py": "from bot.domain import runner\n",
                           "bot/domain/runner.py": "def run():\n    from .desk import Desk\n",
                           "bot/domain/incident.py": "from bot.text import Rich\n",
                           "bot/text.py": ""})
    assert violations(root) == []
    assert circles(root) == [["bot.domain.desk", "bot.domain.runner"]]


def test_the_checker_says_why(tmp_path: Path) -> None:
    root = tree(tmp_path, {"bot/cli.py": "from bot.dev import local\n", "bot/dev/local.py": "",
                           "bot/app/services.py": "from bot.dev.clock import FakeClock\n", "bot/dev/clock.py": "",
                           "bot/domain/incidents.py": "from bot.ops.git import GitRepo\n", "bot/ops/git.py": ""})
    assert sorted(map(str, layer_violations(root))) == [
        "bot/app/services.py imports bot.dev.clock.FakeClock: nothing outside bot/dev imports it but bot/cli.py, "
        "inside a function",
        "bot/cli.py imports bot.dev.local: cli may import dev only inside a function",
        "bot/domain/incidents.py imports bot.ops.git.GitRepo: domain (layer 5) may import only the foundation",
    ]
