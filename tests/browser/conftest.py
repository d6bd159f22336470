"""The browser the page tests drive: Debian's chromium under Playwright, skipped with the reason where it is not
installed (`make test` installs it with apt when it runs as root)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def browser() -> Iterator[Any]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (make test installs Debian's chromium where it runs as root with "
                    "apt; install it with `apt-get install chromium` to run the browser walkthrough)")
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed: run `make deps` (it is in the test extras)")
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        except PlaywrightError as error:  # the reason is shown in the skip
            pytest.skip(f"chromium at {chromium} did not start under Playwright: {str(error)[:200]}")
        try:
            yield launched
        finally:
            launched.close()

