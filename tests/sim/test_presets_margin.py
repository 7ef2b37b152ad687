"""Preset ``aws-margin``: BEHAVIOURS.md observation 6 at 50 ms and 400 ms."""

from __future__ import annotations

import functools

import pytest

from sluicegate.sim.presets import PRESETS, run_preset
from sluicegate.sim.presets_margin import CAP_FRACTIONS, LOADS, SETTLED, margin_rows

VARIANTS = [f"{ms}ms-{v}" for ms, _ in LOADS
            for v in ("unbounded", *(f"cap-{f:.0%}" for f in CAP_FRACTIONS))]


@functools.cache
def _rows() -> dict[str, dict]:
    return {row["variant"]: row for row in margin_rows(run_preset("aws-margin"))}


def test_the_preset_is_registered_with_its_variants() -> None:
    preset = PRESETS["aws-margin"]
    assert [v for v, _ in preset.variants()] == VARIANTS
    caps = {v: s.mapping.maximum_concurrency for v, s in preset.variants()}  # type: ignore[union-attr]
    assert caps["50ms-unbounded"] is None
    assert caps["400ms-cap-50%"] == round(0.5 * SETTLED[400])


def test_margin_rows_report_need_and_margin() -> None:
    rows = margin_rows(run_preset("aws-margin", ["duration=5s"]))
    assert [r["variant"] for r in rows] == VARIANTS
    assert rows[0]["need"] == pytest.approx(22.0)
    assert rows[4]["need"] == pytest.approx(120.0)
    for row in rows:
        assert row["margin"] == pytest.approx(row["environments"] / row["need"])


@pytest.mark.slow
def test_unbounded_settles_well_above_need_at_the_recorded_values() -> None:
    # the caps are fractions of SETTLED: it must still be what the model settles on
    rows = _rows()
    for ms, _ in LOADS:
        row = rows[f"{ms}ms-unbounded"]
        assert row["environments"] == SETTLED[ms]
        assert row["margin"] >= 1.5


@pytest.mark.slow
def test_caps_a_good_fraction_below_the_settled_value_lose_nothing() -> None:
    rows = _rows()
    for ms, _ in LOADS:
        unbounded = rows[f"{ms}ms-unbounded"]
        for fraction in CAP_FRACTIONS:
            row = rows[f"{ms}ms-cap-{fraction:.0%}"]
            assert row["environments"] <= row["cap"]
            if row["cap"] >= row["need"]:
                assert row["throughput"] == pytest.approx(unbounded["throughput"], rel=0.001)
                assert row["backlog"] <= unbounded["backlog"] + 10


@pytest.mark.slow
def test_a_cap_below_need_slowly_builds_a_backlog() -> None:
    rows = _rows()
    row = rows["400ms-cap-50%"]  # 92 < 120 needed
    assert row["cap"] < row["need"]
    assert row["throughput"] < 0.8 * rows["400ms-unbounded"]["throughput"]
    assert row["backlog"] > 10 * row["need"]


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason=(
    "known departure (docs/scenarios.md, 'The spare margin of obs 6 across arrival rates'):"
    " 2.41x at 50 ms and 440 msg/s against 1.53x at 400 ms and 300 msg/s; at one rate "
    "the margin does grow with duration (tests/sim/test_presets.py)"))
def test_obs6_spare_margin_larger_for_the_longer_function() -> None:
    rows = _rows()
    assert rows["400ms-unbounded"]["margin"] > rows["50ms-unbounded"]["margin"]
