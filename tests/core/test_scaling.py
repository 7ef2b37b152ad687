from __future__ import annotations

import math

import pytest

from sluicegate.core import scaling
from sluicegate.core.config import MappingConfig
from sluicegate.core.scaling import (
    BACKOFF_FLOOR,
    DEFAULT_FIXED_CONCURRENCY,
    ERROR_BACKOFF_FACTOR,
    ERROR_HOLD,
    IDLE_POLLERS,
    IDLE_SCALE_DOWN_AFTER,
    INITIAL_POLLERS,
    LONG_IDLE_AFTER,
    MIN_IDLE_POLLERS,
    SCALE_UP_RATE,
    SHED_PER_RECEIVE,
    SHED_WAIT_SHARE,
    SURPLUS_HOLD,
    SURPLUS_WAIT,
    THROTTLE_BACKOFF_FACTOR,
    THROTTLE_HOLD,
    AwsScaling,
    FixedScaling,
    ScalingPolicy,
    make_policy,
)
from sluicegate.core.types import BatchOutcome, OutcomeKind
from sluicegate.errors import ConfigError

ERROR = BatchOutcome(OutcomeKind.ERROR, frozenset({"a"}), "exception: boom")
PARTIAL = BatchOutcome(OutcomeKind.PARTIAL, frozenset({"a"}))
SUCCESS = BatchOutcome(OutcomeKind.SUCCESS)


@pytest.fixture(autouse=True)
def _steady_rate_only(request, monkeypatch):
    """Most tests here pin the documented +300/min mechanics; the fast start that traffic
    reaching an idle mapping gets first (FAST_START_*) would shift their numbers by a
    constant. Tests marked ``fast_start`` run with it."""
    if "fast_start" not in request.keywords:
        monkeypatch.setattr(scaling, "FAST_START_FOR", 0.0)


def test_documented_constants() -> None:
    assert INITIAL_POLLERS == 5
    assert SCALE_UP_RATE * 60 == 300
    assert IDLE_POLLERS == 5
    assert MIN_IDLE_POLLERS == 2
    assert DEFAULT_FIXED_CONCURRENCY == 10


def follows_the_policy_protocol(policy: object) -> bool:
    """Whether ``policy`` has every method of :class:`ScalingPolicy` (what isinstance would
    check if the protocol were runtime-checkable)."""
    methods = [name for name, value in vars(ScalingPolicy).items()
               if callable(value) and not name.startswith("_")]
    return len(methods) >= 6 and all(callable(getattr(policy, m, None)) for m in methods)


def test_fixed() -> None:
    p = FixedScaling(7)
    assert follows_the_policy_protocol(p)
    p.on_receive(0, 10)
    p.on_outcome(0, ERROR)
    p.on_throttle(0)
    assert p.limit(1e9) == 7
    assert p.next_change(0) is None
    assert p.statistics(0).limit == 7
    assert FixedScaling(0).limit(0) == 0
    with pytest.raises(ConfigError):
        FixedScaling(-1)


def grow(p: AwsScaling, start: float, end: float, step: float = 1.0) -> None:
    """Non-empty receives every ``step`` seconds from start to end."""
    t = start
    while t <= end + 1e-9:
        p.on_receive(t, 10)
        t += step


def test_aws_starts_at_five() -> None:
    p = AwsScaling(None, False)
    assert follows_the_policy_protocol(p)
    assert p.limit(0) == 5
    assert p.next_change(0) is None  # nothing seen yet: no growth
    p.on_receive(100.0, 3)
    assert p.limit(100.0) == 5


def test_aws_ramps_300_per_minute() -> None:
    p = AwsScaling(None, False)
    grow(p, 0.0, 60.0)
    assert p.limit(60.0) == 305
    assert p.limit(30.0) == 155
    assert p.level(60.0) == pytest.approx(305.0)
    # growth is continuous between receives
    assert p.limit(0.2) == 6
    assert p.limit(0.19) == 5


def test_aws_next_change_is_exact() -> None:
    p = AwsScaling(None, False)
    p.on_receive(1000.0, 10)
    t = 1000.0
    for expected in range(6, 40):
        nxt = p.next_change(t)
        assert nxt is not None
        assert nxt == pytest.approx(1000.0 + (expected - 5) / SCALE_UP_RATE)
        assert p.limit(nxt) == expected
        assert p.limit(nxt - 1e-3) == expected - 1
        t = nxt


def test_aws_next_change_with_epoch_times() -> None:
    p = AwsScaling(None, False)
    t0 = 1_767_225_600.123  # 2026 in epoch seconds
    p.on_receive(t0, 10)
    t = t0
    for expected in range(6, 200):
        nxt = p.next_change(t)
        assert nxt is not None and nxt > t
        assert p.limit(nxt) == expected
        t = nxt


def test_aws_ceiling_and_maximum_concurrency() -> None:
    p = AwsScaling(None, False)
    grow(p, 0.0, 600.0, step=10.0)
    assert p.limit(600.0) == 1250
    assert p.limit(10_000.0) == 1250
    assert p.next_change(600.0) is None
    p = AwsScaling(None, False, ceiling=1000)
    grow(p, 0.0, 600.0, step=10.0)
    assert p.limit(600.0) == 1000
    p = AwsScaling(50, False)
    grow(p, 0.0, 60.0)
    assert p.limit(60.0) == 50
    assert p.next_change(60.0) is None
    p = AwsScaling(2, False)
    assert p.limit(0) == 2
    p = AwsScaling(None, False, ceiling=3)
    assert p.limit(0) == 3


def test_aws_empty_receive_pauses_growth() -> None:
    p = AwsScaling(None, False)
    p.on_receive(0.0, 10)
    p.on_receive(10.0, 0)  # level 55 at t=10
    assert p.limit(10.0) == 55
    assert p.limit(100.0) == 55
    assert p.next_change(10.0) is None
    p.on_receive(15.0, 10)  # resumes from 55 (no scale-down: quiet for only 5 s)
    assert p.limit(15.0) == 55
    assert p.limit(16.0) == 60


def test_aws_scales_down_to_5_then_2_when_idle() -> None:
    p = AwsScaling(None, False)
    grow(p, 0.0, 60.0)
    assert p.limit(60.0) == 305
    p.on_receive(80.0, 0)  # the first empty receive: growth stops there
    assert p.limit(80.0) == 405
    p.on_receive(80.0 + IDLE_SCALE_DOWN_AFTER - 1, 0)
    assert p.limit(100.0) == 405
    p.on_receive(80.0 + IDLE_SCALE_DOWN_AFTER, 0)
    assert p.limit(100.0) == IDLE_POLLERS
    p.on_receive(80.0 + LONG_IDLE_AFTER, 0)
    assert p.limit(400.0) == MIN_IDLE_POLLERS
    # messages again: back to 5 and growing
    p.on_receive(500.0, 10)
    assert p.limit(500.0) == INITIAL_POLLERS
    assert p.limit(501.0) == INITIAL_POLLERS + 5


def test_aws_idle_mapping_without_messages_drops_to_two() -> None:
    p = AwsScaling(None, False)
    for t in range(0, 400, 20):
        p.on_receive(float(t), 0)
    assert p.limit(400.0) == MIN_IDLE_POLLERS


def test_aws_keeps_level_when_idle_with_maximum_concurrency() -> None:
    p = AwsScaling(100, False)
    grow(p, 0.0, 60.0)
    assert p.limit(60.0) == 100
    for t in range(80, 1000, 20):
        p.on_receive(float(t), 0)
    assert p.limit(1000.0) == 100


def steady(p: AwsScaling, start: float, end: float, duration: float, waited: float,
           every: float = 0.01) -> float:
    """A steady load after the ramp-up: every ``every`` seconds an invocation of
    ``duration`` ends and a receive that waited ``waited`` returns one message; returns
    the end time."""
    t = start
    while t < end - 1e-9:
        t = round(t + every, 6)
        p.on_outcome(t, SUCCESS, duration)
        p.on_receive(t, 1, waited)
    return t


def test_aws_sheds_surplus_pollers_per_receive_that_waited_an_invocation() -> None:
    # After the ramp-up the backlog is gone: receives that waited at least one mean
    # invocation time (and SURPLUS_WAIT) show a surplus poller, and each sheds a little
    p = AwsScaling(None, False)
    grow(p, 0.0, 20.0)
    assert p.limit(20.0) == 105
    duration = 0.4
    end = steady(p, 20.0, 21.0, duration, waited=0.0)  # pollers all busy: still growing
    assert p.invocation_time() == pytest.approx(duration)
    assert p.limit(end) == 110
    p.on_receive(end, 1, SHED_WAIT_SHARE * duration)  # surplus: holds growth and sheds
    assert p.level(end) == pytest.approx(110 - SHED_PER_RECEIVE)
    assert p.next_change(end) is None or p.next_change(end) >= end + SURPLUS_HOLD
    level = p.level(end)
    end2 = steady(p, end, end + 5.0, duration, waited=SHED_WAIT_SHARE * duration)
    assert p.level(end2) == pytest.approx(level - 500 * SHED_PER_RECEIVE)
    assert p.fleet_level(end2) == pytest.approx(p.level(end2))


def test_aws_waits_shorter_than_an_invocation_hold_growth_without_shedding() -> None:
    p = AwsScaling(None, False)
    grow(p, 0.0, 20.0)
    duration = 0.4
    waited = max(SURPLUS_WAIT, 0.5 * SHED_WAIT_SHARE * duration)
    end = steady(p, 20.0, 30.0, duration, waited=waited)
    assert p.level(end) == pytest.approx(105 + SCALE_UP_RATE * 0.01)  # held, not shed


def test_aws_shedding_needs_surplus_wait_even_for_short_functions() -> None:
    # a 5 ms function's "one invocation" of waiting is SQS latency, not a spare poller
    p = AwsScaling(None, False)
    grow(p, 0.0, 20.0)
    end = steady(p, 20.0, 22.0, 0.005, waited=SURPLUS_WAIT / 2)
    assert p.level(end) > 105


def test_aws_shedding_stops_at_the_idle_level_and_never_with_maximum_concurrency() -> None:
    p = AwsScaling(None, False)
    grow(p, 0.0, 2.0)  # 15
    steady(p, 2.0, 60.0, 0.1, waited=1.0)  # 5,800 surplus receives: 11.6 to shed
    assert p.limit(60.0) == IDLE_POLLERS
    capped = AwsScaling(100, False)
    grow(capped, 0.0, 60.0)
    steady(capped, 60.0, 70.0, 0.1, waited=1.0)
    assert capped.limit(70.0) == 100


def test_aws_invocation_times_in_bulk_are_the_same_as_one_by_one() -> None:
    one, bulk = AwsScaling(None, False), AwsScaling(None, False)
    for t, d in ((1.0, 0.3), (2.0, 0.05), (3.0, 0.05), (4.0, 0.05)):
        one.on_outcome(t, SUCCESS, d)
    bulk.on_invocation_times(1.0, 0.3, 1)
    bulk.on_invocation_times(4.0, 0.05, 3)
    assert bulk.invocation_time() == pytest.approx(one.invocation_time())
    bulk.on_invocation_times(5.0, 1.0, 0)  # nothing to fold in
    assert bulk.invocation_time() == pytest.approx(one.invocation_time())
    restored = AwsScaling(None, False)
    restored.restore(one.snapshot())
    assert restored.invocation_time() == one.invocation_time()


def test_aws_backs_off_on_errors_without_rbif() -> None:
    p = AwsScaling(None, False)
    grow(p, 0.0, 20.0)
    assert p.limit(20.0) == 105
    p.on_outcome(20.0, ERROR)
    assert p.level(20.0) == pytest.approx(105 * ERROR_BACKOFF_FACTOR)
    # held: no growth during ERROR_HOLD even though receives are non-empty
    p.on_receive(20.0 + ERROR_HOLD / 2, 10)
    assert p.level(20.0 + ERROR_HOLD) == pytest.approx(105 * ERROR_BACKOFF_FACTOR)
    assert p.next_change(20.0) is not None
    assert p.next_change(20.0) >= 20.0 + ERROR_HOLD  # type: ignore[operator]
    assert p.level(21.0 + ERROR_HOLD) == pytest.approx(105 * ERROR_BACKOFF_FACTOR + 5)
    assert p.statistics(20.0).held_until == 20.0 + ERROR_HOLD
    # successes and partial results change nothing
    before = p.level(30.0)
    p.on_outcome(30.0, SUCCESS)
    p.on_outcome(30.0, PARTIAL)
    assert p.level(30.0) == before


def test_aws_many_errors_collapse_to_the_floor() -> None:
    p = AwsScaling(None, False)
    grow(p, 0.0, 60.0)
    for i in range(10_000):
        p.on_outcome(60.0 + i * 0.001, ERROR)
    assert p.limit(70.0) == BACKOFF_FLOOR


def test_aws_errors_with_rbif_do_not_back_off() -> None:
    # AWS: with ReportBatchItemFailures it "does not scale down polling on invocation
    # failures"
    p = AwsScaling(None, True)
    grow(p, 0.0, 20.0)
    for _ in range(100):
        p.on_outcome(20.0, ERROR)
    assert p.limit(20.0) == 105
    assert p.limit(21.0) == 110


def test_aws_reported_failures_with_rbif_back_off_as_errors_do_without() -> None:
    # BEHAVIOURS.md observation 7: failures returned as batch item failures collapse
    # throughput as thrown errors do; a partial response is the failure signal with RBIF
    with_rbif, without = AwsScaling(None, True), AwsScaling(None, False)
    for p, failure in ((with_rbif, PARTIAL), (without, ERROR)):
        grow(p, 0.0, 20.0)
        p.on_outcome(20.0, failure)
        assert p.level(20.0) == pytest.approx(105 * ERROR_BACKOFF_FACTOR)
        p.on_receive(20.0 + ERROR_HOLD / 2, 10)
        assert p.level(20.0 + ERROR_HOLD) == pytest.approx(105 * ERROR_BACKOFF_FACTOR)
        assert p.statistics(20.0).held_until == 20.0 + ERROR_HOLD
    assert with_rbif.snapshot() == without.snapshot() | {"report_batch_item_failures": True}
    # a success is never a failure
    level = with_rbif.level(30.0)
    with_rbif.on_outcome(30.0, SUCCESS)
    assert with_rbif.level(30.0) == level


def test_aws_throttles_back_off() -> None:
    p = AwsScaling(None, True)  # throttles back off even with RBIF
    grow(p, 0.0, 20.0)
    p.on_throttle(20.0)
    assert p.level(20.0) == pytest.approx(105 * THROTTLE_BACKOFF_FACTOR)
    p.on_receive(20.5, 10)
    assert p.level(20.0 + THROTTLE_HOLD) == pytest.approx(105 * THROTTLE_BACKOFF_FACTOR)
    # a burst of throttles inside one hold cuts once; one cut per hold after that
    level = p.level(21.0)
    for i in range(1000):
        p.on_throttle(21.0 + i * 0.0009)
    assert p.level(21.9) == pytest.approx(level * THROTTLE_BACKOFF_FACTOR)
    for i in range(200):
        p.on_throttle(22.0 + i * 1.001 * THROTTLE_HOLD)
    assert p.limit(22.0 + 200 * THROTTLE_HOLD) == BACKOFF_FLOOR


def test_aws_floor_respects_a_lower_cap() -> None:
    p = AwsScaling(None, False, ceiling=1)
    p.on_receive(0.0, 10)
    p.on_throttle(0.0)
    p.on_outcome(0.0, ERROR)
    assert p.limit(10.0) == 1


def test_aws_error_calibration_shape() -> None:
    """A fluid check of the starting error-backoff values against observation 7:
    a handful of errors per second barely dents the level, ten times as many
    collapses it far more than ten-fold would suggest. Not a calibration."""

    def steady(error_share: float, needed: float = 100.0, duration: float = 0.05) -> float:
        p = AwsScaling(None, False)
        t = 0.0
        debt = 0.0
        dt = 0.01
        while t < 120.0:
            p.on_receive(t, 10)
            level = min(p.level(t), needed)
            debt += error_share * level / duration * dt
            while debt >= 1.0:
                p.on_outcome(t, ERROR)
                debt -= 1.0
            t += dt
        return min(p.level(t), needed)

    light = steady(0.01)
    heavy = steady(0.10)
    assert 0.6 * 100 < light < 0.95 * 100
    assert heavy < 0.25 * 100
    assert heavy < light / 3


def test_statistics() -> None:
    p = AwsScaling(None, False)
    s = p.statistics(0.0)
    assert (s.policy, s.limit, s.growing, s.held_until) == ("aws", 5, False, None)
    p.on_receive(0.0, 1)
    s = p.statistics(1.0)
    assert s.growing and s.limit == 10 and math.isclose(s.level, 10.0)


def test_invalid_aws_arguments() -> None:
    with pytest.raises(ConfigError):
        AwsScaling(None, False, ceiling=0)
    with pytest.raises(ConfigError):
        AwsScaling(0, False)


def test_make_policy() -> None:
    aws = make_policy(MappingConfig("q", "f", maximum_concurrency=40,
                                    report_batch_item_failures=True, scaling_ceiling=900))
    assert isinstance(aws, AwsScaling)
    assert (aws.maximum_concurrency, aws.report_batch_item_failures, aws.ceiling) == (
        40, True, 900)
    fixed = MappingConfig("q", "f", scaling="fixed")
    assert make_policy(fixed).limit(0) == DEFAULT_FIXED_CONCURRENCY
    assert make_policy(fixed, reserved_concurrency=0).limit(0) == DEFAULT_FIXED_CONCURRENCY
    assert make_policy(fixed, reserved_concurrency=25).limit(0) == 25
    capped = MappingConfig("q", "f", scaling="fixed", maximum_concurrency=4)
    assert make_policy(capped, reserved_concurrency=25).limit(0) == 4


def test_aws_live_maximum_concurrency_moves_the_cap() -> None:
    """A live change of maximum_concurrency: a raise lets the level grow on at the usual
    rate from where it is, a cut applies at once, unset gives the ceiling back."""
    p = AwsScaling(20, False)
    grow(p, 0.0, 60.0)
    assert p.limit(60.0) == 20 and p.next_change(60.0) is None
    p.set_maximum_concurrency(60.0, 50)
    assert p.maximum_concurrency == 50
    grow(p, 60.0, 61.0)  # growth goes on while receives bring messages
    assert p.limit(61.0) == 25  # 5 a second from 20, not a jump
    grow(p, 61.0, 120.0)
    assert p.limit(120.0) == 50
    p.set_maximum_concurrency(120.0, 4)
    assert p.limit(120.0) == 4 and p.fleet_level(120.0) == 4
    p.set_maximum_concurrency(120.0, None)
    grow(p, 120.0, 130.0)
    assert p.limit(130.0) == 54
    with pytest.raises(ConfigError, match="maximum_concurrency"):
        p.set_maximum_concurrency(130.0, 1)


def test_growth_pauses_while_the_mapping_is_held_at_zero() -> None:
    # Given a level growing under a backlog (receives come back full at once)
    policy = AwsScaling(None, False)
    policy.on_receive(0.0, 10)
    assert policy.limit(10.0) == INITIAL_POLLERS + int(SCALE_UP_RATE * 10)
    # When another term (a breaker, an operator) holds the mapping at 0 for 90 s
    policy.on_held(10.0)
    # Then nothing is received and the level stays where the hold found it ...
    assert policy.limit(100.0) == INITIAL_POLLERS + int(SCALE_UP_RATE * 10)
    assert policy.next_change(100.0) is None
    # ... without the idle scale-down (the mapping is held, not idle) ...
    assert policy.limit(100.0 + LONG_IDLE_AFTER) > IDLE_POLLERS
    # ... and the first full receive after the hold resumes growth from there
    policy.on_receive(100.0, 10)
    assert policy.limit(102.0) == INITIAL_POLLERS + int(SCALE_UP_RATE * 12)
