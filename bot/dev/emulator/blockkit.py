"""Block Kit validation as Slack's Web API does it, so a message or view Slack would refuse fails here too.

``message_errors(blocks)`` checks the ``blocks`` of ``chat.postMessage``, ``chat.update``,
``chat.postEphemeral`` and ``response_url`` posts; ``view_errors(view)`` checks a ``views.open`` /
``views.update`` payload. Both return Slack-style messages, each ending in a JSON pointer to the
offending field, e.g. ``must be less than 3001 characters [json-pointer:/blocks/0/text/text]``
(the shape of Slack's real answers; the emulator's wording of other messages is its own).

The limits below are the documented ones (docs.slack.dev, Block Kit reference: blocks, block
elements, composition objects, modal views), checked while writing this module:

- 50 blocks per message, 100 per modal or Home tab; ``block_id`` and ``action_id`` at most 255
  characters; a ``block_id`` is unique within the message or view; an ``action_id`` is unique
  within its block (Slack's rule: "unique among all other action_ids in the containing block").
- section: ``text`` at most 3000, ``fields`` at most 10 items of at most 2000 each, text or fields.
- header: ``plain_text`` only, at most 150. context: 1-10 elements (text objects and images).
  actions: 1-25 elements. input: ``label`` (plain_text) at most 2000, ``hint`` at most 2000.
  markdown block: at most 12000. image: ``alt_text`` at most 2000, ``image_url`` at most 3000.
- button: text (plain_text) at most 75, ``value`` at most 2000, ``url`` at most 3000.
- option: text at most 75, ``value`` at most 150, description at most 75; checkboxes and radio
  buttons 1-10 options; static selects at most 100 options (or 100 groups of 100); overflow 1-5.
- confirm dialog: title at most 100, text at most 300, confirm and deny at most 30.
- select and input placeholders at most 150.
- modal: ``title`` (required), ``submit`` and ``close`` plain_text of at most 24; ``submit`` is
  required when the view has an input block; ``private_metadata`` at most 3000, ``callback_id``
  and ``external_id`` at most 255.
"""

from __future__ import annotations

from typing import Any

MESSAGE_MAX_BLOCKS = 50
VIEW_MAX_BLOCKS = 100
ID_MAX = 255

#: Block types Slack knows. Unknown types are refused; the ones not in ``_BLOCKS`` are accepted unchecked.
KNOWN_BLOCKS = {"actions", "context", "divider", "file", "header", "image", "input", "markdown", "rich_text",
                "section", "video", "table", "context_actions", "call"}
TEXT_TYPES = ("plain_text", "mrkdwn")
SELECTS = {"static_select", "external_select", "users_select", "conversations_select", "channels_select"}
MULTI_SELECTS = {"multi_" + s for s in SELECTS}
INPUTS = {"plain_text_input", "email_text_input", "url_text_input", "number_input", "rich_text_input", "file_input"}
PICKERS = {"datepicker", "timepicker", "datetimepicker"}
ACTION_ELEMENTS = {"button", "checkboxes", "radio_buttons", "overflow", "workflow_button", "icon_button",
                   "feedback_buttons"} | SELECTS | MULTI_SELECTS | PICKERS
ACCESSORY_ELEMENTS = {"button", "checkboxes", "radio_buttons", "overflow", "image", "workflow_button"} \
    | SELECTS | MULTI_SELECTS | PICKERS
INPUT_ELEMENTS = {"checkboxes", "radio_buttons"} | SELECTS | MULTI_SELECTS | PICKERS | INPUTS


def message_errors(blocks: Any, pointer: str = "/blocks") -> list[str]:
    """Every reason Slack would refuse these message blocks (empty: valid)."""
    check = _Check()
    check.blocks(blocks, pointer, MESSAGE_MAX_BLOCKS)
    return check.errors


def view_errors(view: Any, pointer: str = "/view") -> list[str]:
    """Every reason Slack would refuse this view payload (empty: valid)."""
    check = _Check()
    check.view(view, pointer)
    return check.errors


def is_block_list(blocks: Any) -> bool:
    """A JSON array of objects: anything else is ``invalid_blocks_format`` rather than ``invalid_blocks``."""
    return isinstance(blocks, list) and all(isinstance(b, dict) for b in blocks)


class _Check:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self._block_ids: set[str] = set()

    def fail(self, message: str, pointer: str) -> None:
        self.errors.append(f"{message} [json-pointer:{pointer}]")

    # ---- primitives -------------------------------------------------------------------------------------
    def string(self, value: Any, pointer: str, limit: int, *, required: bool = False, min_length: int = 0) -> None:
        if value is None:
            if required:
                self.fail("is required", pointer)
            return
        if not isinstance(value, str):
            self.fail("must be a string", pointer)
        elif len(value) > limit:
            self.fail(f"must be less than {limit + 1} characters", pointer)
        elif len(value) < min_length:
            self.fail(f"must be more than {min_length - 1} characters", pointer)

    def text(self, obj: Any, pointer: str, limit: int, *, plain_only: bool = False, required: bool = True) -> None:
        """A text object: ``{"type": "plain_text"|"mrkdwn", "text": ...}``."""
        if obj is None:
            if required:
                self.fail("is required", pointer)
            return
        if not isinstance(obj, dict):
            self.fail("must be a text object", pointer)
            return
        allowed = ("plain_text",) if plain_only else TEXT_TYPES
        if obj.get("type") not in allowed:
            self.fail(f"must be one of [{', '.join(allowed)}]", pointer + "/type")
            return
        if obj["type"] == "mrkdwn" and "emoji" in obj:
            self.fail("emoji is only allowed on plain_text", pointer + "/emoji")
        self.string(obj.get("text"), pointer + "/text", limit, required=True, min_length=1)

    def items(self, value: Any, pointer: str, limit: int, *, minimum: int = 0) -> list[Any]:
        if not isinstance(value, list):
            self.fail("must be an array", pointer)
            return []
        if len(value) > limit:
            self.fail(f"no more than {limit} items allowed", pointer)
        elif len(value) < minimum:
            self.fail(f"must provide at least {minimum} items", pointer)
        return value

    # ---- surfaces ---------------------------------------------------------------------------------------
    def blocks(self, blocks: Any, pointer: str, limit: int) -> None:
        for i, block in enumerate(self.items(blocks, pointer, limit)):
            self.block(block, f"{pointer}/{i}")

    def view(self, view: Any, pointer: str) -> None:
        if not isinstance(view, dict):
            self.fail("must be a view object", pointer)
            return
        kind = view.get("type")
        if kind not in ("modal", "home"):
            self.fail("must be one of [modal, home]", pointer + "/type")
            return
        if kind == "modal":
            self.text(view.get("title"), pointer + "/title", 24, plain_only=True)
            self.text(view.get("submit"), pointer + "/submit", 24, plain_only=True, required=False)
            self.text(view.get("close"), pointer + "/close", 24, plain_only=True, required=False)
            has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in view.get("blocks") or [])
            if has_input and not view.get("submit"):
                self.fail("submit is required when the view has an input block", pointer + "/submit")
        self.string(view.get("private_metadata"), pointer + "/private_metadata", 3000)
        self.string(view.get("callback_id"), pointer + "/callback_id", ID_MAX)
        self.string(view.get("external_id"), pointer + "/external_id", ID_MAX)
        if "blocks" not in view:
            self.fail("is required", pointer + "/blocks")
            return
        self.blocks(view["blocks"], pointer + "/blocks", VIEW_MAX_BLOCKS)

    # ---- blocks -----------------------------------------------------------------------------------------
    def block(self, block: Any, pointer: str) -> None:
        if not isinstance(block, dict):
            self.fail("must be a block object", pointer)
            return
        kind = block.get("type")
        if kind not in KNOWN_BLOCKS:
            self.fail(f"unsupported block type {kind!r}", pointer + "/type")
            return
        block_id = block.get("block_id")
        if block_id is not None:
            self.string(block_id, pointer + "/block_id", ID_MAX, min_length=1)
            if isinstance(block_id, str):
                if block_id in self._block_ids:
                    self.fail(f"duplicate block_id {block_id!r}", pointer + "/block_id")
                self._block_ids.add(block_id)
        check = _BLOCKS.get(str(kind))
        if check is not None:
            check(self, block, pointer)

    def section(self, block: dict[str, Any], pointer: str) -> None:
        if block.get("text") is None and block.get("fields") is None:
            self.fail("must provide text or fields", pointer)
        self.text(block.get("text"), pointer + "/text", 3000, required=False)
        if block.get("fields") is not None:
            for i, field in enumerate(self.items(block["fields"], pointer + "/fields", 10, minimum=1)):
                self.text(field, f"{pointer}/fields/{i}", 2000)
        if block.get("accessory") is not None:
            self.element(block["accessory"], pointer + "/accessory", ACCESSORY_ELEMENTS, set())

    def header(self, block: dict[str, Any], pointer: str) -> None:
        self.text(block.get("text"), pointer + "/text", 150, plain_only=True)

    def context(self, block: dict[str, Any], pointer: str) -> None:
        for i, element in enumerate(self.items(block.get("elements"), pointer + "/elements", 10, minimum=1)):
            at = f"{pointer}/elements/{i}"
            if isinstance(element, dict) and element.get("type") == "image":
                self.image(element, at)
            else:
                self.text(element, at, 3000)

    def actions(self, block: dict[str, Any], pointer: str) -> None:
        seen: set[str] = set()
        for i, element in enumerate(self.items(block.get("elements"), pointer + "/elements", 25, minimum=1)):
            self.element(element, f"{pointer}/elements/{i}", ACTION_ELEMENTS, seen)

    def input(self, block: dict[str, Any], pointer: str) -> None:
        self.text(block.get("label"), pointer + "/label", 2000, plain_only=True)
        self.text(block.get("hint"), pointer + "/hint", 2000, plain_only=True, required=False)
        if block.get("element") is None:
            self.fail("is required", pointer + "/element")
        else:
            self.element(block["element"], pointer + "/element", INPUT_ELEMENTS, set())

    def markdown(self, block: dict[str, Any], pointer: str) -> None:
        self.string(block.get("text"), pointer + "/text", 12000, required=True, min_length=1)

    def image(self, block: dict[str, Any], pointer: str) -> None:
        if block.get("image_url") is None and block.get("slack_file") is None:
            self.fail("must provide image_url or slack_file", pointer)
        self.string(block.get("image_url"), pointer + "/image_url", 3000)
        self.string(block.get("alt_text"), pointer + "/alt_text", 2000, required=True)
        if block.get("title") is not None:
            self.text(block["title"], pointer + "/title", 2000, plain_only=True)

    # ---- elements ---------------------------------------------------------------------------------------
    def element(self, element: Any, pointer: str, allowed: set[str], action_ids: set[str]) -> None:
        if not isinstance(element, dict):
            self.fail("must be an element object", pointer)
            return
        kind = element.get("type")
        if kind not in allowed:
            self.fail(f"element type {kind!r} is not allowed here", pointer + "/type")
            return
        if kind == "image":
            self.image(element, pointer)
            return
        action_id = element.get("action_id")
        self.string(action_id, pointer + "/action_id", ID_MAX, min_length=1)
        if isinstance(action_id, str):
            if action_id in action_ids:
                self.fail(f"duplicate action_id {action_id!r} in the block", pointer + "/action_id")
            action_ids.add(action_id)
        if element.get("confirm") is not None:
            self.confirm(element["confirm"], pointer + "/confirm")
        if element.get("placeholder") is not None:
            self.text(element["placeholder"], pointer + "/placeholder", 150, plain_only=True)
        if kind == "button":
            self.text(element.get("text"), pointer + "/text", 75, plain_only=True)
            self.string(element.get("value"), pointer + "/value", 2000)
            self.string(element.get("url"), pointer + "/url", 3000)
            self.string(element.get("accessibility_label"), pointer + "/accessibility_label", 75)
            if element.get("style") not in (None, "primary", "danger"):
                self.fail("must be one of [primary, danger]", pointer + "/style")
        elif kind in ("checkboxes", "radio_buttons"):
            self.options(element.get("options"), pointer + "/options", 10, minimum=1, plain_only=False)
        elif kind == "overflow":
            self.options(element.get("options"), pointer + "/options", 5, minimum=1, plain_only=True, urls=True)
        elif kind in ("static_select", "multi_static_select"):
            if (element.get("options") is None) == (element.get("option_groups") is None):
                self.fail("must provide exactly one of options or option_groups", pointer)
            if element.get("options") is not None:
                self.options(element["options"], pointer + "/options", 100, minimum=1, plain_only=True)
            if element.get("option_groups") is not None:
                for i, group in enumerate(self.items(element["option_groups"], pointer + "/option_groups", 100,
                                                     minimum=1)):
                    at = f"{pointer}/option_groups/{i}"
                    if not isinstance(group, dict):
                        self.fail("must be an option group", at)
                        continue
                    self.text(group.get("label"), at + "/label", 75, plain_only=True)
                    self.options(group.get("options"), at + "/options", 100, minimum=1, plain_only=True)
        elif kind == "plain_text_input":
            self.string(element.get("initial_value"), pointer + "/initial_value", 3000)
            for key in ("min_length", "max_length"):
                value = element.get(key)
                if value is not None and (not isinstance(value, int) or not 0 <= value <= 3000):
                    self.fail("must be between 0 and 3000", f"{pointer}/{key}")

    def options(self, options: Any, pointer: str, limit: int, *, minimum: int, plain_only: bool,
                urls: bool = False) -> None:
        for i, option in enumerate(self.items(options, pointer, limit, minimum=minimum)):
            at = f"{pointer}/{i}"
            if not isinstance(option, dict):
                self.fail("must be an option object", at)
                continue
            self.text(option.get("text"), at + "/text", 75, plain_only=plain_only)
            self.string(option.get("value"), at + "/value", 150, required=True)
            self.text(option.get("description"), at + "/description", 75, plain_only=plain_only, required=False)
            if option.get("url") is not None:
                if urls:
                    self.string(option["url"], at + "/url", 3000)
                else:
                    self.fail("url is only allowed in overflow menu options", at + "/url")

    def confirm(self, confirm: Any, pointer: str) -> None:
        if not isinstance(confirm, dict):
            self.fail("must be a confirmation dialog object", pointer)
            return
        self.text(confirm.get("title"), pointer + "/title", 100, plain_only=True)
        self.text(confirm.get("text"), pointer + "/text", 300)
        self.text(confirm.get("confirm"), pointer + "/confirm", 30, plain_only=True)
        self.text(confirm.get("deny"), pointer + "/deny", 30, plain_only=True)
        if confirm.get("style") not in (None, "primary", "danger"):
            self.fail("must be one of [primary, danger]", pointer + "/style")


_BLOCKS = {
    "section": _Check.section, "header": _Check.header, "context": _Check.context, "actions": _Check.actions,
    "input": _Check.input, "markdown": _Check.markdown, "image": _Check.image,
}
