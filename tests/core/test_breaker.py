"""The circuit breaker's rules, with explicit times (no clock), and its properties."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sluicegate.core.breaker import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    Breaker,
    BreakerConfig,
)
from sluicegate.core.limit import NO_LIMIT, ConcurrencyLimit, Fixed
from sluicegate.core.signals import Sample, SampleKind
from sluicegate.errors import ConfigError

OK = SampleKind.OK
ERROR = SampleKind.ERROR
TIMEOUT = SampleKind.TIMEOUT
THROTTLE = SampleKind.THROTTLE


def call(start: float, end: float, kind: SampleKind = OK, **kw: Any) -> Sample:
    return Sample(start=start, end=end, kind=kind, size=1, in_flight=1, **kw)


def breaker(**settings: Any) -> Breaker:
    settings.setdefault("minimum_calls", 4)
    settings.setdefault("sliding_window_size", 4)
    settings.setdefault("open_wait", 10.0)
    return Breaker(BreakerConfig(**settings), label="db", now=-100.0)


def fail(b: Breaker, n: int, at: float) -> None:
    for i in range(n):
        b.observe(at + i * 0.01, call(at - 0.5, at + i * 0.01, ERROR))


# ---------------------------------------------------------------- closed -> open


def test_closed_is_no_limit_and_announces_no_change() -> None:
    b = breaker()
    assert b.state(0.0) == CLOSED
    assert b.value(0.0) == NO_LIMIT
    assert b.next_change(0.0) is None


def test_trips_on_failure_rate_once_the_minimum_calls_are_in() -> None:
    # Given a window of 4 calls, a minimum of 4 and a 50% threshold
    b = breaker()
    b.observe(1.0, call(0.5, 1.0, ERROR))
    b.observe(1.1, call(0.5, 1.1, ERROR))
    b.observe(1.2, call(0.5, 1.2, OK))
    # When 3 calls (2 failed) are in: below the minimum
    assert b.state(1.2) == CLOSED
    # When the 4th (ok) makes 2 failures of 4 = 50%
    b.observe(1.3, call(0.5, 1.3, OK))
    # Then it opens for open_wait
    assert b.state(1.3) == OPEN
    assert b.value(1.3) == 0
    assert b.next_change(1.3) == pytest.approx(11.3)
    assert "failure rate 50%" in b.statistics(1.3).reason


def test_below_the_threshold_it_stays_closed() -> None:
    b = breaker(failure_rate_threshold=60)
    for i, kind in enumerate([ERROR, OK, ERROR, OK, OK, ERROR, OK, OK]):
        b.observe(float(i), call(i - 0.5, float(i), kind))
    assert b.state(10.0) == CLOSED


def test_timeouts_count_as_failures_and_throttles_not_at_all() -> None:
    b = breaker()
    for i in range(10):
        b.observe(float(i), call(float(i), float(i), THROTTLE))
    assert b.state(10.0) == CLOSED
    assert b.statistics(10.0).calls == 0
    for i in range(4):
        b.observe(11.0 + i, call(10.0, 11.0 + i, TIMEOUT))
    assert b.state(15.0) == OPEN


def test_count_window_forgets_calls_beyond_its_size() -> None:
    b = breaker(sliding_window_size=4, minimum_calls=4, failure_rate_threshold=75)
    for i, kind in enumerate([ERROR, ERROR, OK, OK, OK, ERROR, ERROR]):
        b.observe(float(i), call(i - 0.5, float(i), kind))
    # the window is [OK, OK, ERROR, ERROR]: 50% < 75%
    stats = b.statistics(7.0)
    assert (stats.state, stats.calls, stats.failure_rate) == (CLOSED, 4, 50.0)
    b.observe(7.0, call(6.5, 7.0, ERROR))  # [OK, ERROR, ERROR, ERROR]
    assert b.state(7.0) == OPEN


def test_time_window_keeps_the_calls_of_the_last_seconds() -> None:
    b = breaker(sliding_window_type="time", sliding_window_size=10, minimum_calls=3)
    b.observe(0.5, call(0.0, 0.5, ERROR))
    b.observe(1.5, call(1.0, 1.5, ERROR))
    # 11 s later those two have left the window: one failure and two successes
    b.observe(12.0, call(11.5, 12.0, OK))
    b.observe(12.1, call(11.5, 12.1, OK))
    b.observe(12.2, call(11.5, 12.2, ERROR))
    stats = b.statistics(12.2)
    assert (stats.state, stats.calls) == (CLOSED, 3)
    assert stats.failure_rate == pytest.approx(100 / 3)
    b.observe(13.0, call(12.5, 13.0, ERROR))
    assert b.state(13.0) == OPEN


def test_slow_calls_by_reported_latency_else_duration() -> None:
    b = breaker(slow_call_duration=2.0, slow_call_rate_threshold=50)
    # quick invocations whose handler reported a slow downstream
    b.observe(1.0, call(0.9, 1.0, latency=2.5))
    b.observe(1.1, call(1.0, 1.1, latency=0.1))
    # no report: the duration decides
    b.observe(5.0, call(2.0, 5.0))
    assert b.state(5.0) == CLOSED
    b.observe(5.1, call(5.0, 5.1))
    assert b.state(5.1) == OPEN
    assert "slow-call rate 50%" in b.statistics(5.1).reason


def test_a_reported_overload_is_a_slow_call() -> None:
    b = breaker(slow_call_rate_threshold=50)
    for i in range(4):
        b.observe(float(i), call(i - 0.1, float(i), overload=i % 2 == 0))
    assert b.state(4.0) == OPEN


def test_a_call_that_started_before_the_breaker_closed_does_not_count() -> None:
    b = breaker()
    fail(b, 4, at=1.0)
    b.reset(2.0)
    # invocations that were in flight when it was reset fail afterwards
    for i in range(4):
        b.observe(3.0 + i, call(1.5, 3.0 + i, ERROR))
    assert b.state(7.0) == CLOSED


# ---------------------------------------------------------------- open -> half-open


def test_open_wait_ends_in_half_open_with_probes() -> None:
    b = breaker(half_open_calls=2)
    fail(b, 4, at=1.0)
    until = b.next_change(1.1)
    assert until is not None
    assert until == pytest.approx(11.03)
    assert b.value(until - 0.001) == 0
    assert b.state(until) == HALF_OPEN
    assert b.value(until) == 2
    assert b.next_change(until) is None


def test_calls_finishing_while_open_are_ignored() -> None:
    b = breaker()
    fail(b, 4, at=1.0)
    for i in range(20):
        b.observe(2.0 + i * 0.1, call(0.5, 2.0 + i * 0.1, OK))
    assert b.state(5.0) == OPEN


def test_half_open_closes_after_enough_successes() -> None:
    b = breaker(half_open_calls=2)
    fail(b, 4, at=0.0)
    t = 10.03
    assert b.state(t) == HALF_OPEN
    b.observe(t + 1, call(t, t + 1))
    assert (b.state(t + 1), b.value(t + 1)) == (HALF_OPEN, 1)
    b.observe(t + 2, call(t + 0.5, t + 2))
    assert b.state(t + 2) == CLOSED
    assert b.value(t + 2) == NO_LIMIT
    assert b.statistics(t + 2).calls == 0  # the window starts empty


def test_a_call_from_before_half_open_is_not_a_probe() -> None:
    b = breaker()
    fail(b, 4, at=0.0)
    b.observe(10.5, call(9.0, 10.5))  # started while open
    assert b.state(10.5) == HALF_OPEN
    b.observe(10.6, call(9.0, 10.6, ERROR))
    assert b.state(10.6) == HALF_OPEN


def test_a_failed_probe_reopens_with_a_growing_wait_up_to_the_cap() -> None:
    b = breaker(open_wait=10, open_wait_multiplier=2, open_wait_max=35)
    fail(b, 4, at=0.0)
    t = b.next_change(0.0)
    assert t == pytest.approx(10.03)
    waits = []
    for _ in range(4):
        assert t is not None
        assert b.state(t) == HALF_OPEN
        b.observe(t + 1, call(t, t + 1, ERROR))
        assert b.state(t + 1) == OPEN
        nxt = b.next_change(t + 1)
        assert nxt is not None
        waits.append(round(nxt - (t + 1), 6))
        t = nxt
    assert waits == [20.0, 35.0, 35.0, 35.0]
    assert t is not None
    # closing forgets the trips: the next trip waits open_wait again
    b.observe(t + 1, call(t, t + 1))
    assert b.state(t + 1) == CLOSED
    fail(b, 4, at=t + 2)
    assert b.next_change(t + 3) == pytest.approx(t + 2.03 + 10)


def test_a_slow_probe_reopens() -> None:
    b = breaker(slow_call_duration=1.0)
    fail(b, 4, at=0.0)
    b.observe(12.0, call(10.5, 12.0))
    assert b.state(12.0) == OPEN


# ---------------------------------------------------------------- by hand, probes


def test_trip_by_hand_holds_it_open_until_reset() -> None:
    b = breaker()
    changes: list[tuple[str, str, str, str]] = []
    b.on_change(lambda *change: changes.append(change))
    b.trip(1.0, "maintenance", by="alice")
    assert b.state(1000.0) == OPEN
    assert b.next_change(1000.0) is None
    b.probe_result(1000.0, True)
    assert b.state(1000.0) == OPEN
    b.reset(1001.0, by="alice")
    assert b.state(1001.0) == CLOSED
    assert changes == [
        (CLOSED, OPEN, "maintenance", "alice"),
        (OPEN, CLOSED, "reset by hand", "alice"),
    ]


def test_reset_closes_an_open_breaker_and_forgets_its_trips() -> None:
    b = breaker(open_wait_multiplier=3, open_wait_max=100)
    fail(b, 4, at=0.0)
    b.reset(1.0)
    fail(b, 4, at=2.0)
    assert b.next_change(3.0) == pytest.approx(12.03)


def test_with_an_external_probe_only_the_probe_ends_the_open_state() -> None:
    b = breaker(probe="http://localhost:1/health")
    fail(b, 4, at=0.0)
    assert b.next_change(0.1) is None
    assert b.probe_due(100.0)
    assert b.state(100.0) == OPEN
    b.probe_result(100.0, False)
    assert b.state(100.0) == OPEN
    b.probe_result(105.0, True, "200")
    assert b.state(105.0) == HALF_OPEN
    assert not b.probe_due(105.0)
    assert b.statistics(105.0).reason == "probe succeeded: 200"


def test_on_change_sees_the_timed_transition() -> None:
    b = breaker()
    changes: list[tuple[str, str, str, str]] = []
    b.on_change(lambda *change: changes.append(change))
    fail(b, 4, at=0.0)
    b.value(20.0)
    b.observe(21.0, call(20.5, 21.0))
    assert [(old, new) for old, new, _, _ in changes] == [
        (CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED)
    ]
    assert all(by == "breaker" for *_, by in changes)


def test_snapshot_is_json_and_restores_with_the_remaining_wait() -> None:
    b = breaker()
    fail(b, 4, at=0.0)
    data = json.loads(json.dumps(b.snapshot(4.0)))
    assert data["state"] == OPEN
    assert data["remaining"] == pytest.approx(6.03)
    other = breaker()
    seen: list[str] = []
    other.on_change(lambda old, new, reason, by: seen.append(new))
    other.restore(data, now=1000.0)  # another process, another clock
    assert other.state(1000.0) == OPEN
    assert other.next_change(1000.0) == pytest.approx(1006.03)
    assert seen == [OPEN]
    with pytest.raises(ValueError, match="state"):
        other.restore({"state": "ajar"})


def test_as_a_term_the_breaker_binds_the_limit() -> None:
    b = breaker()
    limit = ConcurrencyLimit([Fixed("maximum_concurrency", 20), b])
    assert limit.fixed is None  # a dynamic term
    assert limit.value(0.0) == 20
    fail(b, 4, at=0.0)
    assert limit.value(1.0) == 0
    assert limit.reason(1.0) == "breaker"
    assert limit.next_change(1.0) == pytest.approx(10.03)
    assert limit.value(10.03) == 1


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"failure_rate_threshold": 0}, "failure_rate_threshold=0 is invalid: allowed 1-100"),
        ({"slow_call_duration": -1}, "slow_call_duration=-1 is invalid"),
        ({"sliding_window_type": "calls"}, "sliding_window_type='calls'"),
        ({"minimum_calls": 30, "sliding_window_size": 20}, "at most sliding_window_size"),
        ({"open_wait": 60, "open_wait_max": 30}, ">= open_wait"),
        ({"half_open_calls": 0}, "half_open_calls=0"),
        ({"probe": "ftp://x"}, "a callable or an http"),
        ({"open_wait": "10"}, "open_wait='10' is invalid: allowed a number"),
        ({"open_wait": True}, "open_wait=True"),
    ],
)
def test_bad_settings_are_one_line_config_errors(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        BreakerConfig(**settings)
    assert "\n" not in str(info.value)


def test_from_settings_names_an_unknown_setting_and_the_breaker() -> None:
    with pytest.raises(ConfigError, match="breaker 'db': wait=3 is invalid"):
        BreakerConfig.from_settings({"wait": 3}, "breaker 'db'")
    with pytest.raises(ConfigError, match="breaker 'db': open_wait=0"):
        BreakerConfig.from_settings({"open_wait": 0}, "breaker 'db'")
    cfg = BreakerConfig.from_settings({"open_wait": 5}, "breaker 'db'")
    assert cfg.open_wait == 5.0


# ---------------------------------------------------------------- properties

event = st.one_of(
    st.tuples(st.just("start"), st.floats(0, 3)),
    st.tuples(st.just("finish"), st.sampled_from([OK, ERROR, TIMEOUT]), st.floats(0, 3)),
    st.tuples(st.just("wait"), st.floats(0, 40)),
    st.tuples(st.just("trip"), st.just(0.0)),
    st.tuples(st.just("reset"), st.just(0.0)),
)


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(event, max_size=120),
    probes=st.integers(1, 4),
    window=st.sampled_from(["count", "time"]),
)
def test_a_driver_obeying_the_term_never_reads_while_open_nor_exceeds_the_probes(
    events: list[tuple[Any, ...]], probes: int, window: str
) -> None:
    # Given a driver that starts an invocation only while in flight < the term's value
    b = Breaker(BreakerConfig(minimum_calls=3, sliding_window_size=5, open_wait=10,
                              open_wait_multiplier=2, open_wait_max=50,
                              half_open_calls=probes, sliding_window_type=window))  # type: ignore[arg-type]
    now = 0.0
    in_flight: list[float] = []
    started_in_half_open = 0
    half_open_since: float | None = None
    for ev in events:
        what = ev[0]
        if what == "wait":
            now += ev[1]
        elif what == "start":
            now += ev[1]
            if len(in_flight) < b.value(now):
                state = b.state(now)
                # Then an open breaker never lets an invocation (a read) through
                assert state != OPEN
                if state == HALF_OPEN:
                    if half_open_since != b.since:
                        half_open_since, started_in_half_open = b.since, 0
                    started_in_half_open += 1
                    # and a half-open one never more than its probes in one period
                    assert started_in_half_open <= probes
                in_flight.append(now)
        elif what == "finish" and in_flight:
            now += ev[2]
            start = in_flight.pop(0)
            b.observe(now, Sample(start, now, ev[1], 1, len(in_flight) + 1))
        elif what == "trip":
            b.trip(now)
        elif what == "reset":
            b.reset(now)
        state = b.state(now)
        value = b.value(now)
        assert (state, value == 0) in {(CLOSED, False), (OPEN, True), (HALF_OPEN, False)}
        if state == HALF_OPEN:
            assert 1 <= value <= probes
        if state == OPEN:
            change = b.next_change(now)
            assert change is None or change > now
