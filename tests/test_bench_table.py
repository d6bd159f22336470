"""The benchmark table's rows (bench/common.py): a figure asked for 0 rounds says so instead of crashing the
run (`bench/tenant_data.py --informational 0` did), and a ratio row summarises the per-round ratios."""

from __future__ import annotations

from bench.common import ratio_row


def test_a_figure_with_no_rounds_is_shown_as_not_measured() -> None:
    informational = ratio_row("tenant_data", "restore plan", [], "bot", "raw", "s", None)
    assert informational.cells()[2:] == ["not measured", "not measured", "", "-", "-"]
    with_target = ratio_row("tenant_data", "restore", [], "bot", "raw", "s", 1.5)
    assert with_target.holds is False and with_target.cells()[5] == "ratio <= 1.5"  # a target unmeasured never holds


def test_a_ratio_row_takes_min_median_max_of_the_per_round_ratios() -> None:
    rounds = [{"bot": 1.0, "raw": 2.0}, {"bot": 3.0, "raw": 2.0}, {"bot": 2.0, "raw": 2.0}]
    row = ratio_row("x", "y", rounds, "bot", "raw", "s", 1.2)
    assert row.ratio == {"min": 0.5, "median": 1.0, "max": 1.5} and row.holds is True
