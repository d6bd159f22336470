"""Parsing what people type: never executed, always answered with what to type instead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.commands import Subcommand, parse, parse_moment
from bot.errors import BadInput

NOW = datetime(2026, 2, 7, 3, 30, tzinfo=UTC)


def test_start_takes_a_free_text_reason_and_a_detected_time() -> None:
    parsed = parse('start "health 500" after deploy --detected 03:05')
    assert parsed.sub is Subcommand.START and parsed.args == ["health 500", "after", "deploy"]
    assert parsed.options == {"--detected": "03:05"}


def test_empty_text_means_help() -> None:
    assert parse("").sub is Subcommand.HELP


@pytest.mark.parametrize("text", ["; rm -rf /", "$(reboot)", "`id`", "revert 'unclosed", "x" * 501,
                                  "status --upload-pack=evil", "stat\u00fcs"])
def test_bad_input_is_refused_with_usage(text: str) -> None:
    with pytest.raises(BadInput) as error:
        parse(text)
    assert "/rollback" in str(error.value)


@pytest.mark.parametrize(("text", "expected"), [
    ("03:05", NOW.replace(minute=5)), ("20m ago", NOW - timedelta(minutes=20)), ("2h ago", NOW - timedelta(hours=2)),
    ("2026-02-07T01:00Z", NOW.replace(hour=1, minute=0)), ("04:00", NOW.replace(hour=4, minute=0) - timedelta(days=1)),
])
def test_detected_times(text: str, expected: datetime) -> None:
    assert parse_moment(text, NOW) == expected


@pytest.mark.parametrize("text", ["tomorrow", "2026-02-08T01:00Z", "2025-01-01T00:00Z", "25:00"])
def test_impossible_detected_times_are_refused(text: str) -> None:
    with pytest.raises(BadInput) as error:
        parse_moment(text, NOW)
    assert "Examples: --detected 14:05" in str(error.value)


@pytest.mark.parametrize(("text", "words"), [("start can't log in", ["can't", "log", "in"]),
                                             ("note it's 502s since 14:02", ["it's", "502s", "since", "14:02"]),
                                             ("followup @alex don't ship on Fridays", ["@alex", "don't", "ship", "on",
                                                                                       "Fridays"])])
def test_an_apostrophe_in_free_text_is_just_an_apostrophe(text: str, words: list[str]) -> None:
    assert parse(text).args == words


def test_a_near_miss_names_the_subcommand_meant() -> None:
    with pytest.raises(BadInput) as error:
        parse("verfy")
    assert "Did you mean /rollback verify [--again]?" in error.value.plain()
