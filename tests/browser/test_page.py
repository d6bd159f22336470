"""The page `make local` opens, in the tests' chromium: it has an icon (no 404 in the console), it loads without
a console error, and its emoji come out in colour."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest

from bot.dev.emulator import Emulator
from tests.browser.console import watch
from tests.emulator.conftest import web

pytestmark = pytest.mark.slow

#: Draws ✅ with the font stack of the page's body on a canvas and counts the coloured pixels: a colour emoji
#: font gives green ones; without one the glyph is black (a text font's) or an empty box.
COLOURED_PIXELS = """() => {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 64;
  const ctx = canvas.getContext("2d");
  ctx.font = "48px " + getComputedStyle(document.body).fontFamily;
  ctx.textBaseline = "top";
  ctx.fillStyle = "#000";
  ctx.fillText("\\u2705", 4, 4);
  const data = ctx.getImageData(0, 0, 64, 64).data;
  let coloured = 0;
  for (let i = 0; i < data.length; i += 4) {
    const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
    if (a > 128 && Math.max(r, g, b) - Math.min(r, g, b) > 60) coloured++;
  }
  return coloured;
}"""


def open_page(emulator: Emulator, browser: Any) -> tuple[Any, list[str]]:
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    problems = watch(page)
    page.goto(f"{emulator.url}/?as=casey")
    page.wait_for_selector("#channels li[data-channel='incident-rollback'].active")
    return page, problems


def test_the_page_has_an_icon_and_nothing_in_the_console(emulator: Emulator, browser: Any) -> None:
    page, problems = open_page(emulator, browser)
    icon = page.evaluate("document.querySelector(\"link[rel='icon']\")?.getAttribute('href')")
    assert icon == "/_emulator/web/favicon.svg"
    for path in (icon, "/favicon.ico"):  # the page's own, and where a browser looks when a page names none
        answer = page.request.get(f"{emulator.url}{path}")
        assert answer.status == 200 and answer.headers["content-type"].startswith("image/svg+xml"), path
    # the icon is an image the browser can draw, not just any 200
    size = page.evaluate("""href => new Promise((resolve) => {
        const img = new Image(); img.onload = () => resolve(img.naturalWidth); img.onerror = () => resolve(0);
        img.src = href; })""", icon)
    assert size > 0
    # a message round trip: the page is live (positive sign) before saying nothing went wrong
    page.fill("#text", "hello from the browser")
    page.press("#text", "Enter")
    page.wait_for_selector("#messages .msg:has-text('hello from the browser')")
    assert problems == []
    page.close()


def test_emoji_come_out_in_colour(emulator: Emulator, browser: Any) -> None:
    fonts = subprocess.run(["fc-list"], capture_output=True, text=True, check=False).stdout if shutil.which(
        "fc-list") else ""
    if "Noto Color Emoji" not in fonts:
        pytest.skip("the Noto Color Emoji font is not installed (make test installs Debian's fonts-noto-color-emoji "
                    "where it runs as root with apt): emoji show as empty boxes")
    page, problems = open_page(emulator, browser)
    assert "Noto Color Emoji" in page.evaluate("getComputedStyle(document.body).fontFamily")
    assert page.evaluate(COLOURED_PIXELS) > 50
    assert problems == []
    page.close()


def _form(title: str) -> dict[str, Any]:
    return {"type": "modal", "title": {"type": "plain_text", "text": title},
            "submit": {"type": "plain_text", "text": "Save"},
            "blocks": [{"type": "input", "block_id": "eta", "label": {"type": "plain_text", "text": "ETA"},
                        "element": {"type": "plain_text_input", "action_id": "value"}}]}


def _open(emulator: Emulator, title: str) -> str:
    """Opens a form for casey as the bot would: a fresh trigger of hers, then views.open."""
    trigger = emulator.slash_payload("casey", "incident-rollback", "comms edit")["trigger_id"]
    return str(web(emulator).views_open(trigger_id=trigger, view=_form(title))["view"]["id"])


def test_a_modal_left_open_is_gone_after_a_reload(emulator: Emulator, browser: Any) -> None:
    page, problems = open_page(emulator, browser)
    _open(emulator, "Stakeholder details")
    page.wait_for_selector("#dialog h3:has-text('Stakeholder details')")
    page.reload()  # Slack's client drops an open modal when it reloads
    page.wait_for_selector("#channels li[data-channel='incident-rollback'].active")
    page.fill("#text", "back after the reload")
    page.press("#text", "Enter")
    page.wait_for_selector("#messages .msg:has-text('back after the reload')")  # the page is live
    assert page.locator("#overlay").is_hidden()
    _open(emulator, "Root cause")  # a form opened after the reload shows
    page.wait_for_selector("#dialog h3:has-text('Root cause')")
    assert problems == []
    page.close()


def test_a_second_form_stacks_on_the_first_and_keeps_what_was_typed(emulator: Emulator, browser: Any) -> None:
    page, problems = open_page(emulator, browser)
    _open(emulator, "Stakeholder details")
    page.wait_for_selector("#dialog h3:has-text('Stakeholder details')")
    page.fill("#dialog input[name='eta']", "Friday 12:00")
    _open(emulator, "Root cause")  # another form opens on top
    page.wait_for_selector("#dialog h3:has-text('Root cause')")
    assert page.input_value("#dialog input[name='eta']") == ""
    page.click("#modal-close")
    page.wait_for_selector("#dialog h3:has-text('Stakeholder details')")  # back to the first, as typed
    assert page.input_value("#dialog input[name='eta']") == "Friday 12:00"
    assert problems == []
    page.close()
