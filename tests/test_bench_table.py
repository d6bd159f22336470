"""The benchmark table's rows (bench/common.py): a figure asked for 0 rounds says so instead of crashing the
run (`bench/tenant_data.py --informational 0` did), a ratio row summarises the per-round ratios, and a row
that this run did not measure is marked with the date and commit of the run it comes from."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench import common
from bench.common import Row, load_rows, ratio_row, table


def test_a_figure_with_no_rounds_is_shown_as_not_measured() -> None:
    informational = ratio_row("tenant_data", "restore plan", [], "bot", "raw", "s", None)
    assert informational.cells()[2:7] == ["not measured", "not measured", "", "-", "-"]
    with_target = ratio_row("tenant_data", "restore", [], "bot", "raw", "s", 1.5)
    assert with_target.holds is False and with_target.cells()[5] == "ratio <= 1.5"  # a target unmeasured never holds


def test_a_ratio_row_takes_min_median_max_of_the_per_round_ratios() -> None:
    rounds = [{"bot": 1.0, "raw": 2.0}, {"bot": 3.0, "raw": 2.0}, {"bot": 2.0, "raw": 2.0}]
    row = ratio_row("x", "y", rounds, "bot", "raw", "s", 1.2)
    assert row.ratio == {"min": 0.5, "median": 1.0, "max": 1.5} and row.holds is True


def _results(folder: Path, name: str, tier: str, figures: list[str], finished: str, commit: str) -> None:
    rows = [{k: v for k, v in Row(name, f, "1 s", "1 s", None, "-", None).__dict__.items() if k != "older_run"}
            for f in figures]
    path = folder / (f"{name}.json" if tier == "full" else f"{name}.{tier}.json")
    path.write_text(json.dumps({"rows": rows, "run": {"finished_at": finished, "commit": commit, "dirty": False}}))


def test_rows_not_measured_by_this_run_carry_their_runs_date_and_commit(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    _results(tmp_path, "tenant_data", "full", ["backup", "restore plan"], "2026-11-30T15:55:14+00:00", "0040375")
    _results(tmp_path, "tenant_data", "quick", ["backup"], "2026-12-03T15:00:00+00:00", "abc1234")
    since = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
    rows = {r.figure: r.older_run for r in load_rows(["tenant_data"], "quick", since)}
    # the quick tier's own row is this run's; the full tier's figure it does not measure is shown, marked
    assert rows == {"backup": "", "restore plan": "2026-11-30 15:55 UTC, 0040375"}
    assert "2026-11-30 15:55 UTC, 0040375" in table(load_rows(["tenant_data"], "quick", since))
    later = datetime(2026, 12, 3, 16, 0, tzinfo=UTC)  # the quick results are older than this run too
    assert load_rows(["tenant_data"], "quick", later)[0].older_run == "2026-12-03 15:00 UTC, abc1234"


def test_tenant_data_with_no_informational_rounds_reports_only_what_it_measured(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import tenant_data

    monkeypatch.setattr(common, "RESULTS", tmp_path)
    monkeypatch.setenv("BENCH_TIER", "quick")
    side = {"seconds": 1.0, "peak_above_start_mb": 1.0}
    restored = {**side, "documents": 10, "inserted": 4, "updated": 6}
    rounds = [{"round": i, "backup": {"bot": side, "raw": side}, "clean": {"bot": side, "raw": side},
               "restore": {"bot": restored, "raw": restored}} for i in range(3)]
    rounds[0]["plan"] = {"bot": {**side, "commands_per_tenant": {"aggregate": 1}}}  # the bot's plan, for the order
    scaled = {"backup": side, "clean": side, "restore": side}
    rows = tenant_data.report(rounds, scaled, {"large": 10 * 2**20, "scaled": 2**20}, 1000, 5, 0.0)
    figures = [r.figure for r in rows]
    # a figure measured 0 times is left to the full tier's results (shown there, marked with its run)
    assert not any("plan (" in f or "restore plan" in f for f in figures), figures
    assert all("nan " not in " ".join(r.cells()[2:]) + " " and "nan%" not in r.note for r in rows)
    assert "the same 10 documents" in next(r.note for r in rows if r.figure == "restore")
    assert (tmp_path / "tenant_data.quick.json").exists()
