"""Adaptive limits: the published update rules with explicit times, their clamps, and the
"adaptive" term of a mapping's limit."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sluicegate
from sluicegate.core.adaptive import (
    TERM_ADAPTIVE,
    AdaptiveConfig,
    AdaptiveLimit,
    Aimd,
    Gradient2,
    Vegas,
)
from sluicegate.core.config import MappingConfig
from sluicegate.core.limit import NO_LIMIT
from sluicegate.core.mapping import QueueMapping
from sluicegate.core.pool import ConcurrencyPool
from sluicegate.core.signals import Sample, SampleKind
from sluicegate.errors import ConfigError

OK, ERROR, TIMEOUT, THROTTLE = (SampleKind.OK, SampleKind.ERROR, SampleKind.TIMEOUT,
                                SampleKind.THROTTLE)


def sample(end: float, *, latency: float | None = None, duration: float = 0.1,
           in_flight: int = 100, kind: SampleKind = OK, overload: bool = False) -> Sample:
    return Sample(end - duration, end, kind, 1, in_flight, latency, overload)


def limit(algorithm: str, **settings_: object) -> AdaptiveLimit:
    """A per-sample limit (window 0) unless told otherwise, no decay."""
    settings_.setdefault("window", 0.0)
    settings_.setdefault("decay_time", 0.0)
    return AdaptiveLimit(AdaptiveConfig(algorithm, **settings_))  # type: ignore[arg-type]


# ---------------------------------------------------------------------- configuration


def test_defaults_and_initial_limits() -> None:
    config = AdaptiveConfig()
    assert (config.algorithm, config.minimum, config.maximum, config.window) == (
        "vegas", 1, 1000, 1.0)
    assert AdaptiveConfig("aimd").initial_limit == 10
    assert AdaptiveConfig("gradient2").initial_limit == 20
    assert AdaptiveConfig("vegas", minimum=30).initial_limit == 30  # clamped
    assert AdaptiveConfig("vegas", maximum=5).initial_limit == 5
    assert AdaptiveLimit(AdaptiveConfig("aimd", initial=7)).value(0.0) == 7


@pytest.mark.parametrize(("values", "message"), [
    ({"algorithm": "bbr"}, "algorithm='bbr' is invalid: allowed 'aimd' or 'gradient2' or"),
    ({"minimum": 10, "maximum": 5}, "minimum=10 is invalid: allowed <= maximum (5)"),
    ({"backoff_ratio": 0.2}, "backoff_ratio=0.2 is invalid: allowed 0.5-0.999"),
    ({"utilization": "high"}, "utilization='high' is invalid: allowed a number 0.1-1"),
    ({"window": -1}, "window=-1 is invalid"),
    ({"speed": 3}, "speed=3 is invalid: allowed a parameter of the adaptive limit"),
])
def test_bad_settings_are_one_line_errors(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match="^adaptive limit: " + message.replace("(", r"\(")
                       .replace(")", r"\)")):
        AdaptiveConfig.from_mapping(values)


# ---------------------------------------------------------------------- AIMD


def test_aimd_adds_one_while_used_and_backs_off_on_drops() -> None:
    term = limit("aimd", initial=10)
    term.observe(1.0, sample(1.0, in_flight=10))
    assert term.value(1.0) == 11
    term.observe(1.1, sample(1.1, in_flight=5))  # not used (5 < 0.9 x 11): no growth
    assert term.value(1.1) == 11
    term.observe(1.2, sample(1.2, kind=TIMEOUT))
    assert term.value(1.2) == 9  # max(1, min(11 - 1, int(11 x 0.9)))
    term.observe(1.3, sample(1.3, kind=THROTTLE, in_flight=9))
    assert term.value(1.3) == 8
    term.observe(1.4, sample(1.4, latency=0.2, overload=True))
    assert term.value(1.4) == 7
    term.observe(1.5, sample(1.5, latency=6.0, in_flight=7))  # above drop_latency (5 s)
    assert term.value(1.5) == 6
    assert (term.samples, term.drops, term.ignored) == (6, 3, 0)


def test_function_errors_are_ignored_unless_told() -> None:
    term = limit("aimd", initial=10)
    term.observe(1.0, sample(1.0, kind=ERROR, in_flight=10))
    assert term.value(1.0) == 10 and term.ignored == 1
    term.observe(1.1, sample(1.1, kind=ERROR, overload=True))  # an overload report wins
    assert term.value(1.1) == 9
    strict = limit("aimd", initial=10, drop_on_error=True)
    strict.observe(1.0, sample(1.0, kind=ERROR))
    assert strict.value(1.0) == 9


# ---------------------------------------------------------------------- Gradient2


def test_gradient2_rule() -> None:
    term = limit("gradient2", initial=20)
    g = term.algorithm
    assert isinstance(g, Gradient2)
    term.observe(1.0, sample(1.0, latency=0.1, in_flight=20))
    # long = short = 0.1: gradient 1; new = 20 + 4; 20 x 0.8 + 24 x 0.2 = 20.8
    assert g.estimate == pytest.approx(20.8)
    for i in range(9):  # warm-up: long is the plain mean
        term.observe(2.0 + i, sample(2.0 + i, latency=0.1, in_flight=20))
    before = g.estimate
    term.observe(20.0, sample(20.0, latency=0.2, in_flight=30))
    long = 0.1 * (1 - 2 / 601) + 0.2 * 2 / 601
    gradient = long / 0.2
    assert g.estimate == pytest.approx(before * 0.8 + (before * gradient + 4) * 0.2)
    assert g.estimate < before  # latency doubled: the limit shrinks


def test_gradient2_cuts_a_stale_long_latency() -> None:
    term = limit("gradient2")
    for i in range(10):
        term.observe(float(i), sample(float(i), latency=1.0, in_flight=1))
    g = term.algorithm
    assert isinstance(g, Gradient2)
    term.observe(11.0, sample(11.0, latency=0.1, in_flight=1))
    assert g.long == pytest.approx((1.0 * (1 - 2 / 601) + 0.1 * 2 / 601) * 0.9)


# ---------------------------------------------------------------------- Vegas


def test_vegas_rule() -> None:
    term = limit("vegas", initial=100, probe_multiplier=1000)
    v = term.algorithm
    assert isinstance(v, Vegas)
    term.observe(1.0, sample(1.0, latency=0.1))
    assert v.no_load == 0.1 and v.estimate == 100  # the first sample sets no-load
    term.observe(2.0, sample(2.0, latency=0.1))  # queue 0 <= log10(100) = 2: + beta (12)
    assert v.estimate == 112
    term.observe(3.0, sample(3.0, latency=0.104, in_flight=112))
    # queue = ceil(112 x (1 - 0.1/0.104)) = 5 < alpha (6): + 2
    assert v.queue == 5 and v.estimate == 114
    term.observe(4.0, sample(4.0, latency=0.15, in_flight=114))  # queue 38 > beta: - 2
    assert v.estimate == 112
    term.observe(5.0, sample(5.0, latency=0.108, in_flight=112))  # queue 9: hold
    assert v.estimate == 112
    term.observe(6.0, sample(6.0, latency=0.1, overload=True))  # a drop: - 2
    assert v.estimate == 110
    term.observe(7.0, sample(7.0, latency=0.05))  # a lower latency: the new no-load
    assert v.no_load == 0.05 and v.estimate == 110


def test_vegas_probes_the_no_load_latency_again() -> None:
    term = limit("vegas", initial=1, minimum=1, maximum=1, probe_multiplier=4)
    v = term.algorithm
    assert isinstance(v, Vegas)
    for i in range(4):
        term.observe(float(i), sample(float(i), latency=0.1 + i))
    # within 4 x 1 x jitter (in [0.5, 1)) samples the no-load latency was reset upwards
    assert v.no_load > 0.1


# ---------------------------------------------------------------------- windows, decay


def test_windows_update_once_per_window_of_enough_samples() -> None:
    term = AdaptiveLimit(AdaptiveConfig("aimd", initial=10, window=1.0, window_size=3,
                                        decay_time=0.0))
    term.observe(0.5, sample(0.5, in_flight=10))  # the first sample opens a window
    assert term.updates == 0
    for t in (0.6, 0.7, 1.2, 1.4):
        term.observe(t, sample(t, in_flight=10))
    assert term.updates == 0
    term.observe(1.6, sample(1.6, in_flight=10))  # past the window's end, 5 samples
    assert term.updates == 1 and term.value(1.6) == 11
    term.observe(2.0, sample(2.0, kind=TIMEOUT))
    term.observe(2.7, sample(2.7, in_flight=11))  # a window with a drop, too few samples
    assert term.updates == 2 and term.value(2.7) == 9


def test_a_window_shorter_than_window_size_calls_waits_for_them() -> None:
    # Given a limit of 3 whose calls take 250 ms and windows of 0.25 s: 3 samples a
    # window, below window_size (5). A window closed with too few samples used to be
    # dropped, so the limit never grew (a live process stayed at 3 of a capacity of 10).
    # The calls end spread out, as on the runtime: a replay whose calls end together
    # (3 at 0.25 s, 3 at 0.5 s) puts two rounds in a window and hides it
    term = AdaptiveLimit(AdaptiveConfig("aimd", initial=3, window=0.25, window_size=5))
    now = 0.0
    while now < 2.0:  # the limit used in full: one call ends every 0.25 s / limit
        now += 0.25 / term.value(now)
        term.observe(now, sample(now, in_flight=term.value(now), latency=0.25, duration=0.25))
    # When a window goes on until it holds 5, the limit grows (by one a window while
    # the windows are short of samples, then as the windows are long)
    assert term.updates >= 4 and term.value(now) >= 7


def test_an_unused_limit_decays_toward_in_flight_over_utilization() -> None:
    term = limit("aimd", initial=100, decay_time=10.0)
    term.observe(0.0, sample(0.0, in_flight=100))
    assert term.value(0.0) == 101
    term.observe(10.0, sample(10.0, in_flight=45))  # floor 50: 1 - e^-1 of the way
    assert term.algorithm.estimate == pytest.approx(101 - 51 * (1 - math.exp(-1)))
    for t in range(11, 200):
        term.observe(float(t), sample(float(t), in_flight=45))
    assert term.value(200.0) == 50


def test_a_limit_used_in_full_grows_after_a_decay_left_a_fraction() -> None:
    # Given a limit of 4 that one window with 3 in flight decayed to 3.98 (limit 3)
    term = limit("aimd", initial=4, decay_time=10.0)
    term.observe(0.25, sample(0.25, in_flight=3))
    assert term.algorithm.estimate == pytest.approx(4 - (4 - 3 / 0.9) * (1 - math.exp(-0.025)))
    assert term.value(0.25) == 3
    # When the 3 slots it gives are used in full, it grows again, rather than holding
    # at 3 because 3 < 0.9 x 3.98 (a live run stayed at 3 of a capacity of 10)
    term.observe(0.5, sample(0.5, in_flight=3))
    assert term.value(0.5) == 4


@settings(max_examples=150, deadline=None)
@given(limit_=st.integers(1, 50), dip=st.integers(0, 50), elapsed=st.floats(0.01, 100.0))
def test_aimd_grows_by_one_while_its_limit_is_used_in_full(
    limit_: int, dip: int, elapsed: float
) -> None:
    # whatever fraction an unused window's decay left in the estimate
    term = limit("aimd", initial=limit_ + 1, decay_time=10.0, maximum=1000)
    term.observe(elapsed, sample(elapsed, in_flight=min(dip, limit_), latency=0.1))
    now = elapsed
    for _ in range(5):
        before = term.value(now)
        now += 0.5
        term.observe(now, sample(now, in_flight=before, latency=0.1))
        assert term.value(now) == before + 1


# ---------------------------------------------------------------------- properties

_kinds = st.sampled_from([OK, OK, OK, ERROR, TIMEOUT, THROTTLE])
_samples = st.lists(st.tuples(
    st.floats(0.0, 2.0), st.one_of(st.none(), st.floats(0.0, 10.0)), st.integers(0, 2000),
    _kinds, st.booleans()), max_size=60)


@settings(max_examples=150, deadline=None)
@given(algorithm=st.sampled_from(["aimd", "gradient2", "vegas"]),
       bounds=st.tuples(st.integers(1, 300), st.integers(0, 300)),
       window=st.sampled_from([0.0, 0.5]), steps=_samples)
def test_the_clamp_always_holds(algorithm: str, bounds: tuple[int, int], window: float,
                                steps: list[tuple[float, float | None, int, SampleKind, bool]]
                                ) -> None:
    minimum, extra = bounds
    term = AdaptiveLimit(AdaptiveConfig(algorithm, minimum=minimum,  # type: ignore[arg-type]
                                        maximum=minimum + extra, window=window))
    now = 0.0
    assert minimum <= term.value(now) <= minimum + extra
    for gap, latency, in_flight, kind, overload in steps:
        now += gap
        term.observe(now, Sample(now - 0.05, now, kind, 1, in_flight, latency, overload))
        assert minimum <= term.value(now) <= minimum + extra


@settings(max_examples=150, deadline=None)
@given(initial=st.integers(1, 1000), minimum=st.integers(1, 50),
       kind=st.sampled_from([TIMEOUT, THROTTLE]), overload=st.booleans())
def test_aimd_decreases_on_every_drop(initial: int, minimum: int, kind: SampleKind,
                                      overload: bool) -> None:
    term = limit("aimd", initial=max(initial, minimum), minimum=minimum)
    before = term.value(0.0)
    term.observe(1.0, sample(1.0, kind=kind if not overload else OK, overload=overload,
                             in_flight=before))
    after = term.value(1.0)
    assert after < before or after == before == minimum
    assert isinstance(term.algorithm, Aimd)


@settings(max_examples=100, deadline=None)
@given(initial=st.integers(2, 900), latency=st.floats(0.01, 1.0))
def test_latency_rules_never_grow_on_a_steady_unused_limit(initial: int, latency: float) -> None:
    for algorithm in ("gradient2", "vegas"):
        term = limit(algorithm, initial=initial)
        for t in range(20):
            term.observe(float(t), sample(float(t), latency=latency, in_flight=0))
        assert term.value(20.0) <= initial


# ---------------------------------------------------------------------- the mapping's term


def test_adaptive_scaling_adds_the_term_below_every_other() -> None:
    config = MappingConfig("q", "f", scaling="adaptive", maximum_concurrency=15,
                           adaptive={"algorithm": "aimd", "initial": 10, "window": 0})
    assert isinstance(config.adaptive, AdaptiveConfig)
    m = QueueMapping(config, visibility_timeout=30.0, pool=ConcurrencyPool())
    names = [t.name for t in m.concurrency_limit.terms]
    assert names == ["maximum_concurrency", "reserved_concurrency", "pool", TERM_ADAPTIVE,
                     "scaling"]
    assert m.concurrency_limit.observers  # it observes: samples are reported
    assert m.limit_reason(0.0) == TERM_ADAPTIVE and m.concurrency_limit.value(0.0) == 10
    term = m.concurrency_limit.get(TERM_ADAPTIVE)
    assert isinstance(term, AdaptiveLimit)
    for i in range(20):  # grown by the samples, but never above maximum_concurrency
        m.concurrency_limit.observe(float(i), sample(float(i), in_flight=term.value(0.0)))
    assert term.value(0.0) > 15
    assert m.concurrency_limit.value(20.0) == 15
    assert m.limit_reason(20.0) == "maximum_concurrency"


def test_adaptive_settings_need_adaptive_scaling() -> None:
    with pytest.raises(ConfigError, match=r'adaptive=.* allowed only with scaling="adaptive"'):
        MappingConfig("q", "f", adaptive=AdaptiveConfig())
    assert MappingConfig("q", "f", scaling="adaptive").adaptive == AdaptiveConfig()
    assert MappingConfig("q", "f").adaptive is None


def test_app_map_takes_the_algorithm_and_its_parameters() -> None:
    app = sluicegate.App()
    app.queue("q")
    app.queue("r")

    @app.function()
    def handler(event: object, context: object) -> None:
        return None

    config = app.map("q", handler, scaling="adaptive", algorithm="gradient2",
                     adaptive={"minimum": 2, "maximum": 50})
    assert isinstance(config, MappingConfig) and config.adaptive is not None
    assert (config.adaptive.algorithm, config.adaptive.minimum, config.adaptive.maximum) == (
        "gradient2", 2, 50)
    with pytest.raises(ConfigError, match=r'algorithm=.aimd. is invalid: allowed only with '
                                          r'scaling="adaptive"'):
        app.map("r", handler, algorithm="aimd")
    with pytest.raises(ConfigError, match="maximum=0 is invalid"):
        app.map("r", handler, scaling="adaptive", adaptive={"maximum": 0})
    assert NO_LIMIT > 0


def test_a_stream_mapping_may_have_an_adaptive_limit_below_its_lanes() -> None:
    from sluicegate.core.stream_mapping import StreamMapping
    from sluicegate.core.streams import StreamConfig, StreamMappingConfig

    config = StreamMappingConfig("s", "f", parallelization_factor=10,
                                 adaptive={"algorithm": "aimd", "initial": 3, "window": 0})
    m = StreamMapping(config, StreamConfig("s", shard_count=2), pool=ConcurrencyPool(),
                      function_arn="arn:f", stream_arn="arn:s")
    assert [t.name for t in m.concurrency_limit.terms] == ["shards", TERM_ADAPTIVE]
    assert m.concurrency_limit.value(0.0) == 3 and m.limit_reason(0.0) == TERM_ADAPTIVE
    m.concurrency_limit.observe(1.0, sample(1.0, kind=THROTTLE))
    assert m.concurrency_limit.value(1.0) == 2
    assert StreamMappingConfig("s", "f").adaptive is None

    app = sluicegate.App()
    app.stream("clicks")

    @app.function()
    def handler(event: object, context: object) -> None:
        return None

    mapped = app.map("clicks", handler, algorithm="vegas", adaptive={"maximum": 8})
    assert isinstance(mapped, StreamMappingConfig) and mapped.adaptive is not None
    assert (mapped.adaptive.algorithm, mapped.adaptive.maximum) == ("vegas", 8)
