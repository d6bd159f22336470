"""What the type checker does not see in the wiring: the presenter's bound renderers take the port's argument
names (a keyword call would fail inside a danger run otherwise), and every feature-service method a listener
calls checks who may (``access.require``, or ``access.allows`` where a reaction
is decided by role) or is on the short list of things anyone's click may do."""

from __future__ import annotations

import ast
import inspect
import typing
from pathlib import Path

from bot.domain.api import Features
from bot.domain.ports import Presenter
from bot.slack_ui import SlackPresenter

ROOT = Path(__file__).resolve().parents[1]
#: methods a listener may call without an access check, and why each is harmless
HARMLESS = {
    ("desk", "once"): "claims a delivery id so a retry does nothing",
    ("desk", "tell"): "a private reply to the person who acted",
    ("desk", "channel_of"): "where a form's error reply goes",
    ("stakeholders", "validate_details"): "pure: checks a form's fields before the ack",
    ("closer", "validate_rca"): "pure: checks a form's fields before the ack",
}


def test_the_presenter_takes_the_ports_argument_names() -> None:
    for name, method in inspect.getmembers(Presenter, inspect.isfunction):
        if name.startswith("_"):
            continue
        wanted = [p.name for p in list(inspect.signature(method).parameters.values())[1:]]
        bound = inspect.signature(getattr(SlackPresenter(None, list), name))  # type: ignore[arg-type]
        assert [p.name for p in bound.parameters.values()] == wanted, name


def _calls_from_handlers() -> set[tuple[str, str]]:
    """(service, method) for every ``…features.<service>.<method>(`` and every call on a local bound to
    ``ctx.features.<service>`` in handlers/."""
    services = set(typing.get_type_hints(Features))
    found: set[tuple[str, str]] = set()
    for path in (ROOT / "handlers").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases: dict[str, str] = {}
        for node in ast.walk(tree):  # `stakeholders, closer = ctx.features.stakeholders, ctx.features.closer`
            if isinstance(node, ast.Assign):
                targets = node.targets[0].elts if isinstance(node.targets[0], ast.Tuple) else node.targets
                values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
                for target, value in zip(targets, values, strict=False):
                    if (isinstance(target, ast.Name) and isinstance(value, ast.Attribute)
                            and value.attr in services and "features" in ast.unparse(value)):
                        aliases[target.id] = value.attr
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            owner = node.func.value
            if isinstance(owner, ast.Attribute) and owner.attr in services and "features" in ast.unparse(owner):
                found.add((owner.attr, node.func.attr))
            elif isinstance(owner, ast.Name) and owner.id in aliases:
                found.add((aliases[owner.id], node.func.attr))
    return found


def _checks_access(cls: type, method: str, depth: int = 2) -> bool:
    source = inspect.getsource(getattr(cls, method))
    if "access.require(" in source or "access.allows(" in source:  # refuse, or decide by role (a reaction)
        return True
    helpers = {name for name in dir(cls) if f"self.{name}(" in source and name != method}
    return depth > 0 and any(_checks_access(cls, helper, depth - 1) for helper in helpers)


def test_every_service_method_a_listener_calls_checks_who_may_or_is_harmless() -> None:
    calls = _calls_from_handlers()
    assert ("runner", "run_named") in calls and ("danger", "on_reaction") in calls  # the scan sees them
    hints = typing.get_type_hints(Features)
    unchecked = {(service, method) for service, method in calls
                 if (service, method) not in HARMLESS and not _checks_access(hints[service], method)}
    assert unchecked == set(), f"listeners call these without an access check: {sorted(unchecked)}"
    assert set(HARMLESS) <= calls, "a harmless entry no listener calls any more: remove it"
