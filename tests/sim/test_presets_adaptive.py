"""The ``sg-adaptive-*`` presets' targets, on smaller runs of the same experiments (the
presets themselves run at full size: their figures are in docs/control.md)."""

from __future__ import annotations

from typing import Any

import pytest

from sluicegate.sim import load_scenario, simulate
from sluicegate.sim.presets import PRESETS, _merge
from sluicegate.sim.presets_adaptive import (
    ALGORITHM_VARIANTS,
    BEST,
    downstream_base,
    errors_base,
    figures,
    settle_base,
    variants,
)


def run(base: dict[str, Any], variant: str) -> dict[str, Any]:
    patch = dict(variants())[variant]
    return simulate(load_scenario(_merge(base, patch))).to_dict()


def test_the_presets_are_registered_with_aws_and_every_algorithm() -> None:
    for name in ("sg-adaptive-settle", "sg-adaptive-errors", "sg-adaptive-downstream"):
        preset = PRESETS[name]
        assert [v for v, _ in preset.patches] == ["aws", *ALGORITHM_VARIANTS]
        for _, scenario in preset.variants():
            assert scenario.mapping.scaling in ("aws", "adaptive")
    assert BEST == "vegas"


def test_settled_concurrency_within_a_quarter_of_the_need() -> None:
    # 150 msg/s x 0.4 s needs 60 (the preset: 750 msg/s, 300)
    base = settle_base(duration="150s", rate=150)
    adaptive = figures("settle", run(base, BEST))
    assert adaptive["queued"] <= 60  # kept up
    assert adaptive["limit_ratio"] <= 1.25
    assert adaptive["concurrency"] <= 1.25 * adaptive["need"]
    aws = figures("settle", run(base, "aws"))
    assert aws["limit_ratio"] > 1.4  # aws keeps spare pollers (1.46 x the need)


def test_ten_percent_errors_keep_the_good_messages_flowing_without_a_spike() -> None:
    # 400 msg/s of 50 ms; 10% of invocations throw from 2 to 4 minutes
    base = errors_base(duration="5m", start="2m", stop="4m", rate=400)
    adaptive = figures("errors", run(base, BEST))
    assert adaptive["good_share"] >= 0.85
    assert adaptive["spike"] <= 1.5
    aws = figures("errors", run(base, "aws"))  # at this scale aws loses ~20% (300/s: ~1%)
    assert aws["good_share"] < adaptive["good_share"] - 0.1


@pytest.mark.timeout(120)
def test_a_slowed_down_downstream_is_held_near_its_capacity() -> None:
    base = downstream_base(duration="100s")
    adaptive = figures("downstream", run(base, BEST))
    assert adaptive["within_1.1c"] >= 0.95
    assert adaptive["throughput_share"] >= 0.90
