"""The ``sg-adaptive-*`` presets: BEHAVIOURS.md's experiments with ``aws`` scaling and
with ``scaling="adaptive"`` (each algorithm) side by side, and the figures of issue 13's
targets for adaptive limits.

Every preset has the variants ``aws``, ``aimd``, ``gradient2`` and ``vegas``: the same
scenario with the ``aws`` policy, then with the adaptive limit and each update rule
(:mod:`sluicegate.core.adaptive`, its defaults otherwise). :func:`figures` reads a run's
result and gives the figures its target is judged on.

``sg-adaptive-settle`` (observation 6, and 3's steady state)
    750 msg/s of 400 ms for 4 minutes, unbounded: the load needs 300 concurrent
    invocations. Target: the settled concurrency (the mapping's limit, which is how
    many pollers it keeps, over the last minute) at most 1.25 x 300, where ``aws``
    keeps about 1.8 x. Figures also give the environments alive at the end: they keep
    the peak a drained backlog called up until their idle timeout (10 minutes).
``sg-adaptive-errors`` (observation 7)
    2,000 msg/s of 50 ms for 10.5 minutes, 10% of invocations throwing from minute 5 to
    minute 9. Targets: messages processed while the errors last at least 85% of the
    error-free rate (the producer's 2,000/s, which every variant processes without
    errors: ``aws`` loses about 85%), and after the errors no 10 s bucket above 1.5 x
    the steady invocation rate (``aws``: about 10 x).
``sg-adaptive-downstream``
    2,400 msg/s against a downstream of capacity C = 200 concurrent calls of 100 ms
    whose latency grows with load above C (``latency x load``, no errors: it only slows
    down), for 5 minutes; the handler (1 ms of its own) reports the call's latency.
    The downstream can give C / 100 ms = 2,000 calls/s. Targets: the downstream's
    concurrency at most 1.1 C for at least 95% of the time, and at least 90% of its
    2,000/s processed (after the first minute).

Measured with the defaults (seed 1; the figures of docs/control.md): Vegas meets every
target; see :data:`BEST`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from sluicegate.sim.presets import Preset

__all__ = [
    "ALGORITHM_VARIANTS",
    "BEST",
    "DOWNSTREAM_CAPACITY",
    "DOWNSTREAM_LATENCY",
    "adaptive_presets",
    "downstream_base",
    "errors_base",
    "figures",
    "settle_base",
    "variants",
]

ALGORITHM_VARIANTS: Final = ("aimd", "gradient2", "vegas")
"""The adaptive variants of every preset, after ``aws``."""

BEST: Final = "vegas"
"""The algorithm that meets every target in these presets (the default ``algorithm``):
its queue estimate holds a slowed-down downstream within capacity + ``beta``, and it
grows by ``beta`` per window, fast enough to keep up with the ramps. AIMD and Gradient2
grow by about 1 per window (1 s), too slowly for 300 concurrent invocations within a few
minutes, and AIMD sees no drop from a downstream that only slows down."""

SETTLE_RATE: Final = 750
SETTLE_DURATION_MS: Final = 400
"""``sg-adaptive-settle``: observation 6's load, needing 750 x 0.4 = 300 concurrent."""

ERRORS_RATE: Final = 2000
ERRORS_DURATION_MS: Final = 50
ERRORS_SHARE: Final = 0.10
"""``sg-adaptive-errors``: observation 7's load and its 10% error rate."""

DOWNSTREAM_CAPACITY: Final = 200
DOWNSTREAM_LATENCY: Final = 0.1
DOWNSTREAM_RATE: Final = 2400
DOWNSTREAM_OWN_MS: Final = 1
"""``sg-adaptive-downstream``: C = 200 calls of 100 ms (2,000/s at most), offered
2,400 msg/s by a handler that spends 1 ms of its own."""


def variants() -> tuple[tuple[str, Mapping[str, Any]], ...]:
    """``aws`` and each algorithm, as patches of a preset's base."""
    out: list[tuple[str, Mapping[str, Any]]] = [("aws", {"mapping": {"scaling": "aws"}})]
    for algorithm in ALGORITHM_VARIANTS:
        out.append((algorithm, {"mapping": {"scaling": "adaptive",
                                            "adaptive": {"algorithm": algorithm}}}))
    return tuple(out)


def settle_base(*, duration: str = "4m", rate: float = SETTLE_RATE,
                duration_ms: int = SETTLE_DURATION_MS) -> dict[str, Any]:
    """``sg-adaptive-settle``'s scenario (smaller ones for tests)."""
    return {
        "seed": 1,
        "duration": duration,
        "producer": {"rate": rate},
        "function": {"duration": f"{duration_ms}ms"},
        "mapping": {"batch_size": 1},
    }


def errors_base(*, duration: str = "10m30s", start: str = "5m", stop: str = "9m",
                rate: float = ERRORS_RATE) -> dict[str, Any]:
    """``sg-adaptive-errors``'s scenario (smaller ones for tests)."""
    return {
        "seed": 1,
        "duration": duration,
        "producer": {"rate": rate},
        "function": {"duration": f"{ERRORS_DURATION_MS}ms", "errors": [
            {"start": start, "stop": stop, "rate": ERRORS_SHARE, "kind": "raise"}]},
        "mapping": {"batch_size": 1},
    }


def downstream_base(*, duration: str = "5m", capacity: int = DOWNSTREAM_CAPACITY,
                    rate: float = DOWNSTREAM_RATE) -> dict[str, Any]:
    """``sg-adaptive-downstream``'s scenario (smaller ones for tests)."""
    return {
        "seed": 1,
        "duration": duration,
        "producer": {"rate": rate},
        "function": {"duration": f"{DOWNSTREAM_OWN_MS}ms"},
        "downstream": {"concurrency": capacity, "latency": f"{DOWNSTREAM_LATENCY * 1000:g}ms",
                       "overload_errors": 0.0},
        "mapping": {"batch_size": 1},
    }


def adaptive_presets() -> list[Preset]:
    """The ``sg-adaptive-*`` presets (registered by :mod:`sluicegate.sim.presets`)."""
    return [
        Preset("sg-adaptive-settle",
               "obs 6: 750 msg/s, 400 ms (needs 300); aws vs adaptive aimd, gradient2, vegas",
               settle_base(), variants()),
        Preset("sg-adaptive-errors",
               "obs 7: 2,000 msg/s, 50 ms, 10% thrown errors min 5-9; aws vs adaptive",
               errors_base(), variants()),
        Preset("sg-adaptive-downstream",
               "2,400 msg/s to a downstream of capacity 200 x 100 ms that slows down "
               "above it; aws vs adaptive",
               downstream_base(), variants()),
    ]


# ---------------------------------------------------------------------- the figures


def _rate(series: Sequence[Mapping[str, Any]], key: str, start: float, stop: float,
          bucket: float) -> float:
    entries = [e[key] for e in series if start <= e["t"] < stop]
    return sum(entries) / (bucket * len(entries)) if entries else 0.0


def _seconds(value: Any) -> float:
    """A fixed duration of a scenario's plain form (seconds, or ``{"value": ...}``)."""
    return float(value["value"] if isinstance(value, Mapping) else value)


def figures(kind: str, run: Mapping[str, Any]) -> dict[str, float]:
    """The target figures of one variant's run (a ``run_preset`` variant or a
    :meth:`~sluicegate.sim.driver.SimResult.to_dict`).

    Parameters:
        kind: ``"settle"``, ``"errors"`` or ``"downstream"``.
        run: ``{"scenario", "summary", "series"}``.

    Returns:
        ``settle``: ``need`` (rate x duration), ``limit`` (mean over the last minute),
        ``limit_ratio`` (to the need), ``concurrency`` (most at once in the last minute),
        ``environments`` (alive at the end) and ``environments_ratio``.
        ``errors``: ``good_share`` (messages processed per second while errors lasted,
        after the first visibility timeout, over the producer's rate) and ``spike`` (the
        busiest 10 s of invocations after the errors over the steady rate before them).
        ``downstream``: ``within_1.1c`` (share of the time the downstream's concurrency
        was at most 1.1 C), ``throughput_share`` (processed per second after the first
        minute over C / latency), ``peak`` and ``mean`` downstream concurrency.
    """
    scenario, series = run["scenario"], run["series"]
    bucket = float(scenario["bucket"])
    end = float(scenario["duration"])
    rate = float(scenario["producers"][0]["rate"])
    if kind == "settle":
        duration = _seconds(scenario["function"]["duration"])
        need = rate * duration
        last = [e for e in series if e["t"] >= end - 60.0]
        limit = sum(e["limit"] for e in last) / len(last)
        environments = series[-1]["environments"]
        return {"need": need, "limit": round(limit, 1), "limit_ratio": round(limit / need, 3),
                "concurrency": max(e["concurrency"] for e in last),
                "environments": environments,
                "environments_ratio": round(environments / need, 3),
                "queued": run["summary"]["messages_queued"]}
    if kind == "errors":
        window = scenario["function"]["errors"][0]
        start, stop = float(window["start"]), float(window["stop"])
        visibility = float(scenario["queue"]["visibility_timeout"])
        good = _rate(series, "processed", start + visibility, stop, bucket)
        steady = _rate(series, "invocations", start - 120.0, start, bucket)
        after = [e["invocations"] for e in series if e["t"] >= stop]
        peak = max(after) / bucket if after else 0.0
        return {"good_share": round(good / rate, 3),
                "spike": round(peak / steady, 3) if steady else 0.0}
    if kind == "downstream":
        down = run["summary"]["downstream_concurrency"]
        latency = _seconds(scenario["downstream"]["latency"])
        capacity = float(down["capacity"])
        processed = _rate(series, "processed", 60.0, end, bucket)
        return {"within_1.1c": round(1.0 - down["over_1.1_capacity"], 3),
                "throughput_share": round(processed / (capacity / latency), 3),
                "peak": down["peak"], "mean": down["mean"]}
    raise ValueError(f"unknown kind {kind!r}: 'settle', 'errors' or 'downstream'")
