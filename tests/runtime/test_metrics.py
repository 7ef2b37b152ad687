"""Per-second mapping metrics on a virtual clock set to explicit instants."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import pytest

from sluicegate.errors import ConfigError
from sluicegate.runtime.metrics import (
    ALL_MAPPINGS,
    DEFAULT_HISTORY,
    Metrics,
    MetricsSecond,
)
from sluicegate.testing import VirtualClock


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(1000.0)


@pytest.fixture
def metrics(clock: VirtualClock) -> Metrics:
    return Metrics(clock)


def test_counters_land_in_the_second_they_happen(clock: VirtualClock, metrics: Metrics) -> None:
    metrics.received("q->f", 10)
    metrics.invocation_started("q->f")
    clock.now = 1000.4
    metrics.invocation_finished("q->f", 0.4, error=False)
    metrics.deleted("q->f", 10)
    metrics.throttled("q->f")
    metrics.dead_lettered("q->f", 2)
    clock.now = 1001.1
    metrics.invocation_started("q->f")
    metrics.invocation_finished("q->f", 0.2, error=True)

    first = metrics.snapshot(1000, "q->f")
    assert first == MetricsSecond(
        mapping="q->f",
        second=1000,
        invocations=1,
        errors=0,
        throttles=1,
        messages_received=10,
        messages_deleted=10,
        messages_dead_lettered=2,
        concurrent_executions=1,
        duration_mean=0.4,
        duration_p99=0.4,
    )
    live = metrics.snapshot(1001, "q->f")
    assert (live.invocations, live.errors, live.messages_received) == (1, 1, 0)
    assert metrics.last_complete("q->f") == first
    assert metrics.current_second == 1001


def test_concurrency_is_the_peak_within_the_second_and_carries_over(
    clock: VirtualClock, metrics: Metrics
) -> None:
    for _ in range(3):
        metrics.invocation_started("m")
    metrics.invocation_finished("m", 0.1, error=False)
    metrics.invocation_finished("m", 0.1, error=False)
    assert metrics.active("m") == 1
    clock.now = 1001.5  # one invocation still runs through second 1001
    metrics.tick()
    clock.now = 1002.0
    metrics.tick()
    assert metrics.snapshot(1000, "m").concurrent_executions == 3
    assert metrics.snapshot(1001, "m").concurrent_executions == 1
    metrics.invocation_finished("m", 2.0, error=False)
    assert metrics.active("m") == 0
    clock.now = 1003.0
    assert metrics.snapshot(1002, "m").concurrent_executions == 1
    assert metrics.totals("m").peak_concurrency == 3


def test_duration_mean_and_p99_of_the_second(clock: VirtualClock, metrics: Metrics) -> None:
    for i in range(1, 201):
        metrics.invocation_started("m")
        metrics.invocation_finished("m", i / 1000, error=False)
    clock.now = 1001.0
    snap = metrics.snapshot(1000, "m")
    assert snap.invocations == 200
    assert snap.duration_mean == pytest.approx(0.1005)
    assert snap.duration_p99 == pytest.approx(0.198)  # nearest rank: the 198th of 200
    empty = metrics.last_complete("m")
    assert empty is not None and empty.second == 1000
    clock.now = 1002.0
    quiet = metrics.snapshot(1001, "m")
    assert quiet.invocations == 0 and quiet.duration_mean is None and quiet.duration_p99 is None


def test_quiet_seconds_are_filled_with_the_last_gauges(clock: VirtualClock, metrics: Metrics) -> None:
    metrics.set_gauges("m", visible=50, in_flight=10, oldest_age=3.5, concurrency_limit=5)
    clock.now = 1004.2
    metrics.set_gauges("m", visible=40)
    series = metrics.series("m")
    assert [s.second for s in series] == [1000, 1001, 1002, 1003]
    assert all(
        (s.visible, s.in_flight, s.oldest_age, s.concurrency_limit) == (50, 10, 3.5, 5)
        for s in series
    )
    assert metrics.snapshot(1004, "m").visible == 40
    assert metrics.snapshot(1004, "m").in_flight == 10


def test_aggregate_sums_mappings_and_tracks_true_peak_concurrency(
    clock: VirtualClock, metrics: Metrics
) -> None:
    metrics.invocation_started("a")
    metrics.invocation_started("b")
    metrics.invocation_finished("a", 0.5, error=True)
    metrics.invocation_started("a")  # a peaks at 1, b at 1, together at 2
    metrics.received("a", 3)
    metrics.received("b", 4)
    metrics.set_gauges("a", visible=1, oldest_age=2.0, concurrency_limit=10)
    metrics.set_gauges("b", visible=2, oldest_age=7.0, concurrency_limit=5)
    live = metrics.snapshot(1000)
    assert live.visible == 3
    clock.now = 1001.0
    total = metrics.snapshot(1000)
    assert total.mapping == ALL_MAPPINGS
    assert total.concurrent_executions == 2
    assert (total.invocations, total.errors, total.messages_received) == (1, 1, 7)
    assert (total.visible, total.oldest_age, total.concurrency_limit) == (3, 7.0, 15)
    assert total.in_flight is None
    assert metrics.snapshot(1000, "a").concurrent_executions == 1
    assert metrics.mappings == ["a", "b"]


def test_totals_are_cumulative(clock: VirtualClock, metrics: Metrics) -> None:
    for second in range(5):
        clock.now = 1000 + second
        metrics.invocation_started("m")
        metrics.invocation_finished("m", 0.25, error=second % 2 == 0)
        metrics.received("m", 10)
        metrics.deleted("m", 7)
        metrics.dead_lettered("m", 1)
        metrics.throttled("m", 2)
    totals = metrics.totals("m")
    assert (totals.invocations, totals.errors, totals.throttles) == (5, 3, 10)
    assert (totals.messages_received, totals.messages_deleted) == (50, 35)
    assert totals.messages_dead_lettered == 5
    assert totals.peak_concurrency == 1
    assert totals.duration_total == pytest.approx(1.25)
    assert totals.duration_mean == pytest.approx(0.25)
    assert totals.error_rate == pytest.approx(0.6)
    assert metrics.totals() == metrics.totals(ALL_MAPPINGS)
    assert metrics.totals().invocations == 5
    assert metrics.totals().duration_mean is not None


def test_listeners_get_every_closed_second_once(clock: VirtualClock) -> None:
    calls: list[tuple[int, Mapping[str, MetricsSecond]]] = []
    metrics = Metrics(clock, listeners=[lambda second, snaps: calls.append((second, snaps))])
    metrics.received("m", 1)
    metrics.tick()
    assert calls == []
    clock.now = 1003.5
    metrics.tick()
    metrics.tick()
    assert [second for second, _ in calls] == [1000, 1001, 1002]
    _, snaps = calls[0]
    assert list(snaps) == ["m", ALL_MAPPINGS]
    assert snaps["m"].messages_received == 1 and snaps[ALL_MAPPINGS].messages_received == 1
    assert calls[1][1]["m"].messages_received == 0


def test_a_failing_listener_is_logged_and_others_still_run(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[int] = []

    def broken(second: int, snaps: Mapping[str, MetricsSecond]) -> None:
        raise RuntimeError("listener bug")

    metrics = Metrics(clock)
    metrics.add_listener(broken)
    metrics.add_listener(lambda second, snaps: seen.append(second))
    clock.now = 1001.0
    with caplog.at_level(logging.ERROR):
        metrics.tick()
    assert seen == [1000]
    assert "listener" in caplog.records[0].getMessage()
    metrics.remove_listener(broken)
    clock.now = 1002.0
    metrics.tick()
    assert seen == [1000, 1001]


def test_history_is_bounded_and_long_pauses_do_not_loop_forever(clock: VirtualClock) -> None:
    calls: list[int] = []
    metrics = Metrics(clock, history=10, listeners=[lambda s, _: calls.append(s)])
    metrics.received("m", 5)
    clock.now = 1025.0
    metrics.tick()
    series = metrics.series("m")
    assert len(series) == 10
    assert [s.second for s in series] == list(range(1015, 1025))
    assert calls[0] == 1000  # the second holding data was still reported
    assert calls[1:] == list(range(1015, 1025))
    clock.now = 1_000_000_000.0  # a huge jump costs at most `history` closes
    metrics.tick()
    assert len(metrics.series("m")) == 10
    assert metrics.totals("m").messages_received == 5
    with pytest.raises(KeyError):
        metrics.snapshot(1000, "m")


def test_unknown_seconds_and_mappings_raise_key_error(clock: VirtualClock, metrics: Metrics) -> None:
    metrics.received("m", 1)
    with pytest.raises(KeyError):
        metrics.snapshot(999, "m")
    with pytest.raises(KeyError):
        metrics.snapshot(1005, "m")
    with pytest.raises(KeyError):
        metrics.totals("nope")
    assert metrics.last_complete("m") is None
    assert metrics.active("nope") == 0
    with pytest.raises(ValueError):
        metrics.received(ALL_MAPPINGS, 1)


def test_clock_stepping_back_counts_in_the_current_second(clock: VirtualClock, metrics: Metrics) -> None:
    clock.now = 1002.0
    metrics.received("m", 1)
    clock.now = 1001.0  # a wall-clock step backwards
    metrics.received("m", 1)
    assert metrics.snapshot(1002, "m").messages_received == 2


def test_mapping_first_seen_later_has_history_from_then(clock: VirtualClock, metrics: Metrics) -> None:
    clock.now = 1003.0
    metrics.received("late", 1)
    clock.now = 1005.0
    assert [s.second for s in metrics.series("late")] == [1003, 1004]
    assert [s.second for s in metrics.series()] == [1000, 1001, 1002, 1003, 1004]


def test_invalid_history_is_refused() -> None:
    assert DEFAULT_HISTORY == 3600
    with pytest.raises(ConfigError):
        Metrics(history=0)


def test_queue_gauges_reach_every_mapping_of_the_queue(clock: VirtualClock, metrics: Metrics) -> None:
    metrics.set_limits({"orders->a": 5, "orders->b": 7, "other->c": 2})
    metrics.register("renamed", queue="orders")
    metrics.queue_gauges("orders", visible=12, in_flight=3, oldest_age=4.5, dead_lettered=2)
    for name in ("orders->a", "orders->b", "renamed"):
        snap = metrics.snapshot(1000, name)
        assert (snap.visible, snap.in_flight, snap.oldest_age) == (12, 3, 4.5)
    assert metrics.snapshot(1000, "other->c").visible is None
    assert metrics.snapshot(1000, "orders->a").concurrency_limit == 5
    dead = [metrics.snapshot(1000, n).messages_dead_lettered for n in metrics.mappings]
    assert sorted(dead) == [0, 0, 0, 2]  # counted once, so the aggregate counts it once
    assert metrics.snapshot(1000).messages_dead_lettered == 2
    assert metrics.snapshot(1000).concurrency_limit == 14


def test_flush_closes_the_current_second_early(clock: VirtualClock) -> None:
    closed: list[int] = []
    metrics = Metrics(clock, listeners=[lambda s, _: closed.append(s)])
    clock.now = 1000.3
    metrics.received("m", 4)
    metrics.flush()
    assert closed == [1000]
    assert metrics.last_complete("m") == metrics.snapshot(1000, "m")
    assert metrics.snapshot(1000, "m").messages_received == 4
    metrics.received("m", 1)  # same clock second, after the flush: the next bucket
    clock.now = 1002.0
    metrics.tick()
    assert closed == [1000, 1001]
    assert metrics.snapshot(1001, "m").messages_received == 1


def test_the_binding_limit_term_is_a_gauge_and_the_total_names_it_when_all_agree(
    clock: VirtualClock, metrics: Metrics
) -> None:
    metrics.set_limits({"a": 20, "b": 5}, {"a": "maximum_concurrency", "b": "cluster"})
    assert metrics.snapshot(1000, "a").limit_reason == "maximum_concurrency"
    assert metrics.snapshot(1000, "b").limit_reason == "cluster"
    metrics.tick()
    clock.now = 1001.0
    metrics.tick()
    assert metrics.last_complete(ALL_MAPPINGS).limit_reason is None  # two terms bind
    metrics.set_limits({"b": 20}, {"b": "maximum_concurrency"})
    clock.now = 1002.0
    metrics.tick()
    total = metrics.last_complete(ALL_MAPPINGS)
    assert (total.concurrency_limit, total.limit_reason) == (40, "maximum_concurrency")
    metrics.set_limits({"a": 3})  # no reasons given: the last one holds
    assert metrics.snapshot(1002, "a").limit_reason == "maximum_concurrency"


def test_semaphore_slots_are_a_gauge_and_the_total_sums_them_per_semaphore(
    clock: VirtualClock, metrics: Metrics
) -> None:
    metrics.set_limits({"a": 2, "b": 1, "c": 4},
                       semaphores={"a": (("db", 2, 3),), "b": (("db", 1, 3), ("api", 1, 1))})
    assert metrics.snapshot(1000, "a").semaphores == (("db", 2, 3),)
    assert metrics.snapshot(1000, "c").semaphores == ()
    metrics.tick()
    clock.now = 1001.0
    metrics.tick()
    # this process holds 3 of db's 3 (2 by a, 1 by b) and api's 1
    assert metrics.last_complete(ALL_MAPPINGS).semaphores == (("api", 1, 1), ("db", 3, 3))
