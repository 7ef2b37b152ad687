"""Observation 6's spare margin at two function durations: preset ``aws-margin``.

BEHAVIOURS.md observation 6: unbounded, the mapping settles on a concurrency well above
what the load needs (arrival rate x duration), the spare margin is larger for longer
functions, and a maximum concurrency a good fraction below the settled value loses no
throughput while a much lower one slowly builds a backlog.

The preset runs a short function (50 ms at 440 msg/s: need 22) and a long one (400 ms at
300 msg/s: need 120), both with 300 ms cold starts, first unbounded, then with
``maximum_concurrency`` at :data:`CAP_FRACTIONS` of the settled unbounded value
(:data:`SETTLED`, measured with the ``aws`` policy; tests/sim/test_presets_margin.py
checks that it is still what the unbounded variants settle on).
:func:`margin_rows` turns a run into the figures to compare: settled environments,
need, margin, throughput and backlog.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sluicegate.sim.presets import Preset

__all__ = ["CAP_FRACTIONS", "LOADS", "MARGIN_PRESET", "SETTLED", "margin_rows"]

LOADS: tuple[tuple[int, int], ...] = ((50, 440), (400, 300))
"""``(function duration in ms, producer rate in msg/s)`` of the short and the long
function."""

COLD_START = "300ms"
"""The cold start of both functions."""

RUN = "4m"
"""Run length: both ramps are over within the first 30 s."""

SETTLED: Mapping[int, int] = {50: 53, 400: 184}
"""Environments the unbounded ``aws`` mapping settles on, by duration in ms (measured;
the caps below are fractions of them)."""

CAP_FRACTIONS = (0.9, 0.75, 0.5)
"""``maximum_concurrency`` as fractions of :data:`SETTLED`."""


def _cap(ms: int, fraction: float) -> int:
    return max(2, round(SETTLED[ms] * fraction))


def _variants() -> tuple[tuple[str, dict[str, Any]], ...]:
    out: list[tuple[str, dict[str, Any]]] = []
    for ms, rate in LOADS:
        load = {"producer": {"rate": rate}, "function": {"duration": f"{ms}ms"}}
        out.append((f"{ms}ms-unbounded", load))
        for fraction in CAP_FRACTIONS:
            out.append((f"{ms}ms-cap-{fraction:.0%}",
                        {**load, "mapping": {"maximum_concurrency": _cap(ms, fraction)}}))
    return tuple(out)


MARGIN_PRESET: Preset = Preset(
    "aws-margin",
    "obs 6: spare margin at 50 ms (440 msg/s) and 400 ms (300 msg/s), 300 ms cold "
    "starts; unbounded, then caps at 90%, 75%, 50% of the settled value",
    {"seed": 1, "duration": RUN, "function": {"cold_start": COLD_START},
     "mapping": {"batch_size": 1}},
    _variants(),
)
"""Preset ``aws-margin`` (registered in :data:`sluicegate.sim.presets.PRESETS`)."""


def margin_rows(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Observation 6's figures of a :func:`~sluicegate.sim.presets.run_preset` result of
    ``aws-margin``, one row per variant.

    Returns:
        ``{"variant", "cap", "environments", "need", "margin", "throughput",
        "backlog"}``: environments alive at the end of the run (what AWS's concurrency
        metric shows once settled), the load's need (rate x duration), margin
        (environments / need), throughput (msg/s) and messages still queued.
    """
    rows = []
    for variant in result["variants"]:
        scenario, summary = variant["scenario"], variant["summary"]
        rate = sum(p["rate"] for p in scenario["producers"])
        need = rate * scenario["function"]["duration"]
        environments = variant["series"][-1]["environments"] if variant["series"] else 0
        rows.append({
            "variant": variant["name"],
            "cap": scenario["mapping"]["maximum_concurrency"],
            "environments": environments,
            "need": need,
            "margin": environments / need if need else 0.0,
            "throughput": summary["throughput"],
            "backlog": summary["messages_queued"],
        })
    return rows
