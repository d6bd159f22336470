"""Block Kit validation: each documented limit refused one past it, accepted at it, with Slack's pointer."""

from __future__ import annotations

from typing import Any

from bot.dev.emulator.blockkit import is_block_list, message_errors, view_errors


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def section(text: str = "hi") -> dict[str, Any]:
    return {"type": "section", "text": mrkdwn(text)}


def button(action_id: str = "go", text: str = "Go", **extra: Any) -> dict[str, Any]:
    return {"type": "button", "action_id": action_id, "text": plain(text), **extra}


def option(text: str = "One", value: str = "1") -> dict[str, Any]:
    return {"text": plain(text), "value": value}


def modal(blocks: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"type": "modal", "title": plain("RCA"), "blocks": blocks, **extra}


def test_a_plain_message_of_every_block_the_bot_uses_is_valid() -> None:
    blocks = [
        {"type": "header", "text": plain("Rollback RB-0001")},
        {"type": "section", "block_id": "s", "text": mrkdwn("*Step 1*"), "fields": [mrkdwn("a"), plain("b")],
         "accessory": button("run")},
        {"type": "divider"},
        {"type": "context", "elements": [mrkdwn("by <@U1>"), {"type": "image", "image_url": "https://x/i.png",
                                                              "alt_text": "i"}]},
        {"type": "actions", "elements": [button("a", style="primary", value="v"), button("b", style="danger"),
                                         {"type": "checkboxes", "action_id": "c", "options": [
                                             {"text": mrkdwn("*x*"), "value": "x"}]},
                                         {"type": "static_select", "action_id": "s", "placeholder": plain("Pick"),
                                          "options": [option()]}]},
    ]
    assert message_errors(blocks) == []


def test_more_than_50_blocks_in_a_message_are_refused_at_the_array() -> None:
    assert message_errors([{"type": "divider"}] * 50) == []
    assert message_errors([{"type": "divider"}] * 51) == ["no more than 50 items allowed [json-pointer:/blocks]"]


def test_a_modal_takes_100_blocks_not_101() -> None:
    assert view_errors(modal([{"type": "divider"}] * 100)) == []
    assert view_errors(modal([{"type": "divider"}] * 101)) == [
        "no more than 100 items allowed [json-pointer:/view/blocks]"]


def test_section_text_is_at_most_3000_characters_as_slack_words_it() -> None:
    assert message_errors([section("x" * 3000)]) == []
    assert message_errors([section("x" * 3001)]) == [
        "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"]


def test_section_fields_are_at_most_10_of_2000_characters() -> None:
    assert message_errors([{"type": "section", "fields": [mrkdwn("f")] * 11}]) == [
        "no more than 10 items allowed [json-pointer:/blocks/0/fields]"]
    assert message_errors([{"type": "section", "fields": [mrkdwn("f"), mrkdwn("y" * 2001)]}]) == [
        "must be less than 2001 characters [json-pointer:/blocks/0/fields/1/text]"]


def test_a_section_needs_text_or_fields_and_text_is_never_empty() -> None:
    assert message_errors([{"type": "section"}]) == ["must provide text or fields [json-pointer:/blocks/0]"]
    assert message_errors([section("")]) == ["must be more than 0 characters [json-pointer:/blocks/0/text/text]"]


def test_a_header_is_plain_text_of_at_most_150() -> None:
    assert message_errors([{"type": "header", "text": plain("h" * 151)}]) == [
        "must be less than 151 characters [json-pointer:/blocks/0/text/text]"]
    assert message_errors([{"type": "header", "text": mrkdwn("*h*")}]) == [
        "must be one of [plain_text] [json-pointer:/blocks/0/text/type]"]


def test_a_text_object_must_have_a_known_type() -> None:
    assert message_errors([{"type": "section", "text": {"type": "markdown", "text": "x"}}]) == [
        "must be one of [plain_text, mrkdwn] [json-pointer:/blocks/0/text/type]"]
    assert message_errors([{"type": "section", "text": "just a string"}]) == [
        "must be a text object [json-pointer:/blocks/0/text]"]


def test_context_takes_at_most_10_elements_and_actions_25() -> None:
    assert message_errors([{"type": "context", "elements": [mrkdwn("c")] * 11}]) == [
        "no more than 10 items allowed [json-pointer:/blocks/0/elements]"]
    buttons = [button(f"b{i}") for i in range(26)]
    assert message_errors([{"type": "actions", "elements": buttons[:25]}]) == []
    assert message_errors([{"type": "actions", "elements": buttons}]) == [
        "no more than 25 items allowed [json-pointer:/blocks/0/elements]"]


def test_button_text_value_and_ids_have_their_limits() -> None:
    errors = message_errors([{"type": "actions", "block_id": "b" * 256, "elements": [
        button("a" * 256, "t" * 76, value="v" * 2001)]}])
    assert errors == [
        "must be less than 256 characters [json-pointer:/blocks/0/block_id]",
        "must be less than 256 characters [json-pointer:/blocks/0/elements/0/action_id]",
        "must be less than 76 characters [json-pointer:/blocks/0/elements/0/text/text]",
        "must be less than 2001 characters [json-pointer:/blocks/0/elements/0/value]",
    ]
    assert message_errors([{"type": "actions", "elements": [button(text="t" * 75, value="v" * 2000)]}]) == []


def test_button_text_must_be_plain_text() -> None:
    assert message_errors([{"type": "actions", "elements": [{"type": "button", "action_id": "a",
                                                             "text": mrkdwn("*Go*")}]}]) == [
        "must be one of [plain_text] [json-pointer:/blocks/0/elements/0/text/type]"]


def test_options_have_text_of_75_and_value_of_150() -> None:
    select = {"type": "static_select", "action_id": "s", "options": [option("o" * 76, "v" * 151)]}
    assert message_errors([{"type": "actions", "elements": [select]}]) == [
        "must be less than 76 characters [json-pointer:/blocks/0/elements/0/options/0/text/text]",
        "must be less than 151 characters [json-pointer:/blocks/0/elements/0/options/0/value]",
    ]


def test_checkboxes_take_10_options_and_a_static_select_100() -> None:
    boxes = {"type": "checkboxes", "action_id": "c", "options": [option(value=str(i)) for i in range(11)]}
    assert message_errors([{"type": "actions", "elements": [boxes]}]) == [
        "no more than 10 items allowed [json-pointer:/blocks/0/elements/0/options]"]
    select = {"type": "static_select", "action_id": "s", "options": [option(value=str(i)) for i in range(101)]}
    assert message_errors([{"type": "actions", "elements": [select]}]) == [
        "no more than 100 items allowed [json-pointer:/blocks/0/elements/0/options]"]
    select["options"] = select["options"][:100]
    assert message_errors([{"type": "actions", "elements": [select]}]) == []


def test_a_select_option_is_plain_text_but_a_checkbox_may_be_mrkdwn() -> None:
    select = {"type": "static_select", "action_id": "s", "options": [{"text": mrkdwn("*o*"), "value": "o"}]}
    assert message_errors([{"type": "actions", "elements": [select]}]) == [
        "must be one of [plain_text] [json-pointer:/blocks/0/elements/0/options/0/text/type]"]


def test_a_confirm_dialog_has_its_four_limits() -> None:
    confirm = {"title": plain("t" * 101), "text": plain("x" * 301), "confirm": plain("c" * 31),
               "deny": plain("d" * 31)}
    assert message_errors([{"type": "actions", "elements": [button(confirm=confirm)]}]) == [
        f"must be less than {n} characters [json-pointer:/blocks/0/elements/0/confirm/{f}/text]"
        for n, f in ((101, "title"), (301, "text"), (31, "confirm"), (31, "deny"))]


def test_block_ids_are_unique_in_the_message() -> None:
    blocks = [{**section(), "block_id": "same"}, {"type": "divider"}, {"type": "divider", "block_id": "same"}]
    assert message_errors(blocks) == ["duplicate block_id 'same' [json-pointer:/blocks/2/block_id]"]


def test_action_ids_are_unique_within_a_block_but_may_repeat_across_blocks() -> None:
    same_block = [{"type": "actions", "elements": [button("go"), button("go")]}]
    assert message_errors(same_block) == [
        "duplicate action_id 'go' in the block [json-pointer:/blocks/0/elements/1/action_id]"]
    across = [{"type": "actions", "elements": [button("go")]}, {"type": "actions", "elements": [button("go")]}]
    assert message_errors(across) == []


def test_unknown_blocks_and_misplaced_elements_are_refused() -> None:
    assert message_errors([{"type": "sectionz"}]) == ["unsupported block type 'sectionz' [json-pointer:/blocks/0/type]"]
    text_input = {"type": "plain_text_input", "action_id": "t"}
    assert message_errors([{"type": "actions", "elements": [text_input]}]) == [
        "element type 'plain_text_input' is not allowed here [json-pointer:/blocks/0/elements/0/type]"]


def test_modal_title_submit_and_close_are_at_most_24() -> None:
    view = modal([], title=plain("t" * 25), submit=plain("s" * 25), close=plain("c" * 25))
    assert view_errors(view) == [
        f"must be less than 25 characters [json-pointer:/view/{f}/text]" for f in ("title", "submit", "close")]
    assert view_errors(modal([], title=plain("t" * 24))) == []


def test_a_modal_with_an_input_needs_a_submit_button() -> None:
    field = {"type": "input", "block_id": "why", "label": plain("Why"),
             "element": {"type": "plain_text_input", "action_id": "why"}}
    assert view_errors(modal([field])) == [
        "submit is required when the view has an input block [json-pointer:/view/submit]"]
    assert view_errors(modal([field], submit=plain("Save"))) == []


def test_only_arrays_of_objects_are_blocks_at_all() -> None:
    assert is_block_list([{"type": "divider"}]) and is_block_list([])
    assert not is_block_list("[{") and not is_block_list({"type": "divider"}) and not is_block_list(["x"])
