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
:func:`margin_rows` turns a run into the figures to compare: settled concurrency, need,
margin, throughput and backlog.

*Settled* is the concurrency the mapping runs over the run's last minute: its limit,
the pollers it keeps (:data:`SETTLED_WINDOW`). Not the environments alive: those stay
warm for ``idle_timeout`` (10 minutes) after the pollers that used them are shed, so
within a 4-minute run they are the ramp-up's high-water mark. Not the invocations in
flight either: with a constant producer and a fixed duration they are the need itself
(plus one), however many pollers wait for messages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sluicegate.sim.presets import Preset

__all__ = ["CAP_FRACTIONS", "LOADS", "MARGIN_PRESET", "SETTLED", "SETTLED_WINDOW",
           "margin_rows", "settled_concurrency"]

LOADS: tuple[tuple[int, int], ...] = ((50, 440), (400, 300))
"""``(function duration in ms, producer rate in msg/s)`` of the short and the long
function."""

COLD_START = "300ms"
"""The cold start of both functions."""

RUN = "4m"
"""Run length: both ramps are over within the first 30 s; the rest shows what the fleet
keeps once it sheds its surplus."""

SETTLED_WINDOW = 60.0
"""Seconds at the end of a run over which the settled concurrency is averaged (one
minute, the period of AWS's concurrency metric)."""

SETTLED: Mapping[int, int] = {50: 28, 400: 170}
"""Concurrency the unbounded ``aws`` mapping settles on over the last minute, by
duration in ms (measured, :func:`settled_concurrency`; the caps below are fractions of
them). Before the fleet shed its surplus (``SHED_PER_RECEIVE``) these were the ramp's
high-water marks, 53 and 184."""

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


def settled_concurrency(series: Sequence[Mapping[str, Any]], end: float,
                        window: float = SETTLED_WINDOW) -> float:
    """The mean of the ``limit`` gauge over the buckets that start in the last
    ``window`` seconds before ``end`` (0 for an empty series): the concurrency the
    mapping runs there, as the number of pollers it keeps."""
    limits = [b["limit"] for b in series if end - window <= b["t"] < end]
    return sum(limits) / len(limits) if limits else 0.0


def margin_rows(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Observation 6's figures of a :func:`~sluicegate.sim.presets.run_preset` result of
    ``aws-margin``, one row per variant.

    Returns:
        ``{"variant", "cap", "settled", "need", "margin", "environments", "in_flight",
        "throughput", "backlog"}``: the concurrency settled on over the last minute
        (:func:`settled_concurrency`, rounded to 0.1), the load's need (rate x
        duration), margin (settled / need), the environments alive at the end (the
        ramp's high-water mark while ``idle_timeout`` lasts), the most invocations in
        flight in the last bucket, throughput (msg/s) and messages still queued.
    """
    rows = []
    for variant in result["variants"]:
        scenario, summary, series = variant["scenario"], variant["summary"], variant["series"]
        rate = sum(p["rate"] for p in scenario["producers"])
        need = rate * scenario["function"]["duration"]
        settled = round(settled_concurrency(series, summary["duration"]), 1)
        rows.append({
            "variant": variant["name"],
            "cap": scenario["mapping"]["maximum_concurrency"],
            "settled": settled,
            "need": need,
            "margin": settled / need if need else 0.0,
            "environments": series[-1]["environments"] if series else 0,
            "in_flight": series[-1]["concurrency"] if series else 0,
            "throughput": summary["throughput"],
            "backlog": summary["messages_queued"],
        })
    return rows
