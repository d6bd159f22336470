"""What the browser's console would show in red, for the page tests."""

from __future__ import annotations

from typing import Any


def watch(page: Any) -> list[str]:
    """Everything that would show in red in the browser's console, collected as it happens: console errors,
    uncaught exceptions, failed requests and answers of 400 or more (a missing favicon among them)."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.method} {r.url} {r.failure}"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.request.method} {r.url}")
            if r.status >= 400 else None)
    return problems
