"""The preset experiments (BEHAVIOURS.md): they list, build, run, and reproduce the
observations with the ``aws`` policy. Where an observation cannot hold as worded, or
departs from a documented rule, the test says why and pins what the model does."""

from __future__ import annotations

import functools

import pytest

from sluicegate.sim import Scenario, ScenarioError, StreamScenario, simulate
from sluicegate.sim.presets import (
    ERROR_PRODUCER_RATE,
    PRESETS,
    PROCESSING_TIMES_MS,
    PRODUCER_RATE,
    Preset,
    run_preset,
)
from sluicegate.sim.presets_margin import settled_concurrency
from sluicegate.sim.topic_scenario import TopicScenario
from sluicegate.sim.world import World

EXPECTED = {
    "aws-queue-depth", "aws-batch-size", "aws-processing-time", "aws-max-concurrency",
    "aws-errors", "aws-batch-item-failures", "aws-margin",
    "sg-queue-depth", "sg-processing-time", "sg-errors",
    "streams-parallelization", "streams-poison",  # pinned in test_streams_sim.py
    "fifo-groups",  # pinned in test_fifo_sim.py
    "topic-fanout",  # pinned in test_topic_sim.py
    "breaker-outage",  # pinned in test_presets_breaker.py
    "sg-adaptive-settle", "sg-adaptive-errors", "sg-adaptive-downstream",  # in
    # test_presets_adaptive.py
    "reserved-as-thread-pool",  # an App and a load: pinned in test_async_sim.py
}


@functools.cache
def _run(name: str, overrides: tuple[str, ...] = (), only: tuple[str, ...] = ()) -> dict:
    """Variant name -> {"scenario", "summary", "series"}, cached across tests.

    Every name in ``only`` must be a variant of the preset: a renamed variant fails here
    rather than leaving a test that loops over the result with nothing to check.
    """
    variants = PRESETS[name].variants(overrides)
    _check_variants(name, [v for v, _ in variants], only)
    return {variant: simulate(scenario).to_dict()
            for variant, scenario in variants if not only or variant in only}


def _check_variants(preset: str, names: list[str], only: tuple[str, ...]) -> None:
    missing = [v for v in only if v not in names]
    if missing or not names:
        raise LookupError(f"preset {preset!r} has no variant {missing or 'at all'} "
                          f"(its variants: {names})")


def _sum(series: list[dict], key: str, start: float, stop: float) -> int:
    return sum(b[key] for b in series if start <= b["t"] < stop)


def _rate(series: list[dict], key: str, start: float, stop: float) -> float:
    """``key`` per second over the buckets starting in [start, stop)."""
    buckets = [b for b in series if start <= b["t"] < stop]
    return sum(b[key] for b in buckets) / (10.0 * len(buckets))


# ---------------------------------------------------------------------- the registry


def test_selecting_a_variant_that_does_not_exist_fails() -> None:
    with pytest.raises(LookupError, match=r"no variant \['batch-3'\]"):
        _run("aws-batch-size", ("duration=10s",), ("batch-1", "batch-3"))
    with pytest.raises(LookupError, match="no variant at all"):
        _check_variants("empty", [], ())


@pytest.mark.parametrize(("name", "variants"), [
    ("aws-queue-depth", ("depth-10_000", "depth-100_000", "depth-1_000_000")),
    ("aws-batch-size", ("batch-1", "batch-2", "batch-5")),
    ("aws-processing-time", tuple(f"{ms}ms" for ms in PROCESSING_TIMES_MS)),
    ("aws-max-concurrency", ("unbounded", "cap-400", "cap-200")),
    ("aws-errors", ("errors-1%", "errors-5%", "errors-10%")),
    ("aws-batch-item-failures", ("errors-1%", "errors-10%")),
    ("sg-queue-depth", ("depth-1_000", "depth-10_000", "depth-100_000")),
    ("sg-processing-time", ("100ms", "200ms", "400ms", "600ms")),
    ("sg-errors", ("errors-10%",)),
])
def test_the_variants_the_observations_read_exist(name: str, variants: tuple[str, ...]) -> None:
    """The observation tests below pick variants by name, most of them only in the slow
    runs: a rename must fail in the fast suite too."""
    _check_variants(name, [v for v, _ in PRESETS[name].variants()], variants)


def test_every_preset_is_listed_with_a_one_line_description():
    assert set(PRESETS) == EXPECTED
    for name, preset in PRESETS.items():
        assert isinstance(preset, Preset)
        assert preset.name == name
        assert preset.description and "\n" not in preset.description


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_variants_build_and_overrides_apply_to_every_variant(name):
    plain = PRESETS[name].variants()
    assert len(plain) >= 3
    assert len({v for v, _ in plain}) == len(plain)
    changed = PRESETS[name].variants(["duration=30s", "seed=7"])
    assert [v for v, _ in changed] == [v for v, _ in plain]
    for _, scenario in changed:
        assert isinstance(scenario, (Scenario, StreamScenario, TopicScenario, World))
        assert scenario.duration == 30.0
        assert scenario.seed == 7


def test_a_bad_override_names_the_key():
    with pytest.raises(ScenarioError, match=r"mapping\.batch_size"):
        PRESETS["aws-batch-size"].variants(["mapping.batch_size=0"])


def test_run_preset_returns_every_variant_in_order_and_is_deterministic():
    first = run_preset("aws-batch-size", ["duration=20s"], seed=3)
    again = run_preset("aws-batch-size", ["duration=20s"], seed=3)
    assert first == again
    assert [v["name"] for v in first["variants"]] == ["batch-1", "batch-2", "batch-5"]
    for v in first["variants"]:
        assert set(v) == {"name", "scenario", "summary", "series"}
        assert v["scenario"]["seed"] == 3
        assert v["summary"]["duration"] == 20.0
    with pytest.raises(KeyError, match="aws-nope"):
        run_preset("aws-nope")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_preset_runs(name):
    # a short run of every variant: the whole experiment runs in the slow tests below
    result = run_preset(name, ["duration=15s"])
    assert len(result["variants"]) == len(PRESETS[name].patches)
    for v in result["variants"]:
        s = v["summary"]
        if "records_sent" in s:  # a stream preset
            assert s["records_sent"] == (s["records_processed"] + s["records_discarded"]
                                         + s["records_expired"] + s["records_unsettled"])
            continue
        if "messages_sent" not in s:  # an App's: every mapping accounts for its own
            for m in v["mappings"]:
                m = m["summary"]
                if "events_sent" in m:
                    assert m["events_sent"] == (m["events_succeeded"] + m["events_dropped"]
                                                + m["events_queued"])
                else:
                    assert m["messages_sent"] == (m["messages_processed"]
                                                  + m["messages_queued"]
                                                  + m["messages_dead_lettered"])
            continue
        assert s["messages_sent"] == (s["messages_processed"] + s["messages_queued"]
                                      + s["messages_dead_lettered"])


# ---------------------------------------------------------------------- observation 1

FIRST_MINUTE = (10.0, 70.0)  # the mapping resumes at 10 s


@pytest.mark.slow
def test_obs1_deep_queues_ramp_alike_from_five_pollers():
    runs = _run("aws-queue-depth")
    deep = [runs["depth-100_000"]["series"], runs["depth-1_000_000"]["series"]]
    for key in ("invocations", "cold_starts"):
        values = [_sum(s, key, *FIRST_MINUTE) for s in deep]
        assert values[0] == values[1]
    for series in deep:
        assert _sum(series, "invocations", 0, 10) == 0  # paused
        # the first minute after resuming runs the documented 5 batches of 200 ms
        # (ENABLE_SCALE_UP_DELAY), then +300/min
        for b in series[1:7]:
            assert b["concurrency"] == 5
            assert 240 <= b["invocations"] <= 250
        assert series[7]["concurrency"] > 5


@pytest.mark.slow
def test_obs1_first_minute_cold_starts_equal_for_every_depth():
    # Before the enable delay: 46 / 142 / 304 / 304 (1k and 10k drained inside the
    # minute). Now 5 for every depth. Invocations are equal for 10k-1M (1,495) but not
    # for 1k, which 5 pollers of 200 ms drain in ~40 s: AWS's poller cycle (receive,
    # invoke, delete) must be slower than the function alone; that latency is not
    # modelled (it needs a driver hook).
    runs = _run("aws-queue-depth")
    colds = [_sum(r["series"], "cold_starts", *FIRST_MINUTE) for r in runs.values()]
    assert max(colds) <= 1.05 * min(colds)
    invocations = [_sum(runs[d]["series"], "invocations", *FIRST_MINUTE)
                   for d in ("depth-10_000", "depth-100_000", "depth-1_000_000")]
    assert max(invocations) == min(invocations)


# ---------------------------------------------------------------------- observation 2


def test_obs2_bigger_batches_fewer_cold_starts_same_invocation_rate():
    runs = _run("aws-batch-size")
    colds = [runs[f"batch-{b}"]["summary"]["total_cold_starts"] for b in (1, 2, 5)]
    assert colds[0] > colds[1] > colds[2]
    # the first minute after resuming: 5 batches at a time for every batch size
    rates = [_rate(runs[f"batch-{b}"]["series"], "invocations", 10.0, 40.0)
             for b in (1, 2, 5)]
    assert max(rates) <= 1.05 * min(rates)
    for run in runs.values():
        assert run["summary"]["messages_queued"] == 0


# ---------------------------------------------------------------------- observation 3


@pytest.mark.slow
def test_obs3_ramp_up_then_sharp_drop_longer_for_longer_functions():
    """The ramp-up is the phase in which concurrency is still being added (buckets with
    cold starts); then invocations sit at the arrival rate until the producer stops.

    Concurrency shoots up to at least 1.4x its steady value and falls sharply for every
    processing time. The invocation rate can shoot up only where a backlog built: a
    10 s bucket cannot invoke more than what was visible at its start, what pollers
    hold (one message each at batch size 1, at most 1,250) and the 7,500 arrivals, so
    with the 100 ms queue near empty (next test) its invocations cannot exceed ~1.2x
    steady. For 200-600 ms the last ramp-up bucket is at least 1.25x steady (measured
    1.30, 1.36, 1.37) and the next one is steady: the sharp drop."""
    runs = _run("aws-processing-time")
    steady = PRODUCER_RATE * 10  # invocations per 10 s bucket (batch size 1)
    ramp_ends = []
    for ms in PROCESSING_TIMES_MS:
        series = runs[f"{ms}ms"]["series"]
        end = max(i for i, b in enumerate(series) if b["cold_starts"]) + 1
        assert 0 < end < 24
        assert all(abs(x["invocations"] - steady) <= 0.02 * steady for x in series[end:24])
        steady_concurrency = series[end + 2]["concurrency"]
        assert max(b["concurrency"] for b in series[:end]) >= 1.4 * steady_concurrency
        if ms >= 200:
            assert series[end - 1]["invocations"] >= 1.25 * steady
        ramp_ends.append(end)
    assert ramp_ends == sorted(ramp_ends) and ramp_ends[0] < ramp_ends[-1]
    assert ramp_ends[-1] >= 0.5 * 24  # 600 ms: the ramp covers most of the 4 minutes


@pytest.mark.slow
def test_obs3_queue_stays_near_empty_during_the_100ms_ramp():
    # Before the fast start: visible 4,657 and 4,307 at 10 s and 20 s. Now 0.
    series = _run("aws-processing-time")["100ms"]["series"]
    assert max(b["visible"] for b in series[:3]) <= PRODUCER_RATE


# ---------------------------------------------------------------------- observation 6


@pytest.mark.slow
def test_obs6_spare_environments_and_a_cap_below_them_loses_nothing():
    runs = _run("aws-max-concurrency")
    need = 300  # 750 msg/s x 400 ms
    unbounded = runs["unbounded"]
    # the concurrency it settles on: the pollers it keeps over the last minute (494)
    settled = settled_concurrency(unbounded["series"], 240.0)
    assert settled >= 1.5 * need
    assert unbounded["series"][-1]["environments"] >= settled  # the ramp's 538 stay warm
    cap400, cap200 = runs["cap-400"], runs["cap-200"]
    assert 400 < settled
    assert cap400["summary"]["throughput"] == pytest.approx(
        unbounded["summary"]["throughput"], rel=0.001)
    assert cap400["summary"]["messages_queued"] <= unbounded["summary"]["messages_queued"] + 10
    # a much lower cap slowly builds a backlog
    visible = [b["visible"] for b in cap200["series"]]
    assert visible[-1] > visible[len(visible) // 2] > 0
    assert cap200["summary"]["throughput"] < 0.7 * unbounded["summary"]["throughput"]
    # the level itself settles (it used to climb to the 1,250 ceiling under steady load):
    # a 400 ms function's fleet sheds its surplus only slowly (524 at 2 min, 492 at 4)
    limits = [b["limit"] for b in unbounded["series"] if 120 <= b["t"] < 240]
    assert limits == sorted(limits, reverse=True)
    assert limits[-1] >= 0.9 * limits[0] and limits[0] <= 2 * need


@pytest.mark.slow
def test_obs6_spare_margin_larger_for_longer_functions():
    """At one arrival rate the margin grows with duration, as spare pollers and as a
    multiple of the need: over the last minute of production (3 to 4 min) the mapping
    keeps 1.26x, 1.39x, 1.65x and 1.80x the need for 100, 200, 400 and 600 ms. Two
    causes add up: the ramp starts from a fixed capacity (5 pollers and the fast start)
    and overshoots the need by about need - that capacity (the high-water marks are
    1.47x, 1.62x, 1.79x, 1.86x), and the fleet then sheds its surplus per receive, which
    a long function's pollers make rarely. Across arrival rates (50 ms at 440 msg/s
    against 400 ms at 300 msg/s) only the second holds: tests/sim/test_presets_margin.py."""
    runs = _run("aws-processing-time")
    needs = [PRODUCER_RATE * ms / 1000 for ms in (100, 200, 400, 600)]
    settled = [settled_concurrency(runs[f"{ms}ms"]["series"], 240.0)
               for ms in (100, 200, 400, 600)]
    margins = [kept - need for kept, need in zip(settled, needs, strict=True)]
    assert margins == sorted(margins) and margins[0] > 0
    ratios = [kept / need for kept, need in zip(settled, needs, strict=True)]
    assert ratios == sorted(ratios) and ratios[0] >= 1.2
    peaks = [runs[f"{ms}ms"]["summary"]["peak_environments"] for ms in (100, 200, 400, 600)]
    assert all(peak >= kept for peak, kept in zip(peaks, settled, strict=True))


# ---------------------------------------------------------------------- observation 7

SLOW_RUN_TIMEOUT = 900
"""Seconds for a test that may pay for an uncached aws-errors run (two 10.5-minute
variants at 2,000 msg/s, whose recovery runs 1,000 invocations at once: over a minute of
wall time each on a small machine, beyond the suite's 120 s default)."""

ERRORS_SHORT = ("duration=10m30s",)  # the recovery spike is over by then
STEADY = (180.0, 300.0)
WINDOW = (330.0, 540.0)  # errors from 300 s; failed batches reappear after 30 s


def _cut(series: list[dict]) -> float:
    return 1.0 - _rate(series, "processed", *WINDOW) / _rate(series, "processed", *STEADY)


def _spike(series: list[dict]) -> float:
    peak = max(b["invocations"] for b in series if b["t"] >= 540.0) / 10.0
    return peak / _rate(series, "invocations", *STEADY)


def _errors(variant: str) -> dict:
    return _run("aws-errors", ERRORS_SHORT, ("errors-1%", "errors-5%", "errors-10%"))[variant]


@pytest.mark.slow
@pytest.mark.timeout(SLOW_RUN_TIMEOUT)
def test_obs7_ten_percent_errors_cut_throughput_70_to_95_percent():
    series = _errors("errors-10%")["series"]
    assert _rate(series, "processed", *STEADY) == pytest.approx(ERROR_PRODUCER_RATE)
    assert 0.70 <= _cut(series) <= 0.95


@pytest.mark.slow
@pytest.mark.timeout(SLOW_RUN_TIMEOUT)
def test_obs7_one_percent_errors_cut_throughput_10_to_30_percent():
    assert 0.10 <= _cut(_errors("errors-1%")["series"]) <= 0.30


@pytest.mark.slow
@pytest.mark.timeout(SLOW_RUN_TIMEOUT)
def test_obs7_recovery_spike_at_least_five_times_steady():
    # Before the error backoff ended at once (ERROR_RESTORE_AFTER): 2.8x after 1% and
    # 4.4x after 10%. Now 7.0x and 9.9x (the account's 1,000 bounds it).
    for variant in ("errors-1%", "errors-10%"):
        assert _spike(_errors(variant)["series"]) >= 5.0


@pytest.mark.slow
@pytest.mark.timeout(SLOW_RUN_TIMEOUT)
def test_obs7_error_counts_alike_at_five_and_ten_percent():
    # "Reported error counts are about the same at 5% and at 10%, because invocations
    # fall": twice the rate, far less than twice the errors, on far fewer invocations
    five, ten = _errors("errors-5%")["series"], _errors("errors-10%")["series"]
    assert _rate(ten, "errors", *WINDOW) <= 1.4 * _rate(five, "errors", *WINDOW)
    assert _rate(ten, "invocations", *WINDOW) <= 0.7 * _rate(five, "invocations", *WINDOW)


def _returned(variant: str) -> dict:
    """A variant of aws-batch-item-failures: failures returned as batch item failures."""
    return _run("aws-batch-item-failures", ERRORS_SHORT, ("errors-1%", "errors-10%"))[variant]


@pytest.mark.slow
@pytest.mark.timeout(SLOW_RUN_TIMEOUT)
def test_obs7_batch_item_failures_collapse_as_thrown_errors_do():
    """Observation 7's last point: returning the failures as batch item failures (with
    ReportBatchItemFailures) instead of throwing does not change the concurrency or
    invocation pattern: the same throughput cut, the same lowest concurrency, the same
    recovery spike. (That thrown errors with ReportBatchItemFailures do not back off, as
    AWS documents, is pinned in tests/core/test_scaling.py.)"""
    for variant in ("errors-1%", "errors-10%"):
        returned, thrown = _returned(variant)["series"], _errors(variant)["series"]
        assert _rate(returned, "errors", *WINDOW) == 0
        assert _rate(returned, "partial", *WINDOW) > 0
        assert _cut(returned) == pytest.approx(_cut(thrown), abs=0.03)
        lowest = [min(b["concurrency"] for b in series if WINDOW[0] <= b["t"] < WINDOW[1])
                  for series in (returned, thrown)]
        assert lowest[0] == pytest.approx(lowest[1], rel=0.15)
        assert _spike(returned) == pytest.approx(_spike(thrown), rel=0.1)
        assert _spike(returned) >= 5.0


# ---------------------------------------------------------------------- sluicegate's own


def test_sg_fixed_scaling_never_above_the_maximum():
    runs = _run("sg-queue-depth", ("duration=1m",),
                ("depth-1_000", "depth-10_000", "depth-100_000"))
    for run in runs.values():
        cap = run["scenario"]["mapping"]["maximum_concurrency"]
        assert run["summary"]["peak_concurrency"] <= cap
        assert run["summary"]["peak_environments"] <= cap
        assert all(b["limit"] <= cap for b in run["series"])


@pytest.mark.slow
def test_sg_processing_time_no_overshoot_no_over_provisioning():
    runs = _run("sg-processing-time")
    for ms in (100, 200, 400, 600):
        run = runs[f"{ms}ms"]
        need = PRODUCER_RATE * ms / 1000
        cap = run["scenario"]["mapping"]["maximum_concurrency"]
        assert run["summary"]["peak_environments"] <= cap <= 1.15 * need
        assert run["summary"]["messages_queued"] == 0


@pytest.mark.slow
@pytest.mark.timeout(SLOW_RUN_TIMEOUT)
def test_sg_errors_keep_the_rest_flowing_at_full_rate():
    """BEHAVIOURS' last requirement: under 10% errors sluicegate's own scaling keeps the
    other messages flowing at close to full rate (the aws policy cuts 70-95%), never above
    its maximum, and no more environments than the load needs plus the margin it was
    given."""
    run = _run("sg-errors", ERRORS_SHORT, ("errors-10%",))["errors-10%"]
    series, cap = run["series"], run["scenario"]["mapping"]["maximum_concurrency"]
    assert _rate(series, "errors", *WINDOW) > 0.05 * ERROR_PRODUCER_RATE  # errors did occur
    assert _cut(series) <= 0.05
    assert run["summary"]["peak_environments"] <= cap
    assert all(b["concurrency"] <= cap for b in series)
    assert run["summary"]["messages_dead_lettered"] == 0
