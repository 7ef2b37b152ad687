from __future__ import annotations

import heapq
import itertools
from typing import Any, TypeVar

import pytest

from sluicegate.core.config import AccountConfig, FunctionConfig, MappingConfig
from sluicegate.core.mapping import (
    LONG_POLL_WAIT,
    THROTTLE_BACKOFF_BASE,
    THROTTLE_BACKOFF_MAX,
    QueueMapping,
)
from sluicegate.core.pool import ConcurrencyPool
from sluicegate.core.results import SUCCESS_OUTCOME, exception_outcome
from sluicegate.core.scaling import AwsScaling, FixedScaling, ScalingPolicy
from sluicegate.core.types import (
    Abandon,
    Action,
    Batch,
    BatchOutcome,
    Delete,
    Invoke,
    OutcomeKind,
    Receive,
)

from .support import SetLimit, record, records

MB = 1024 * 1024
T = TypeVar("T")


def make(
    config: MappingConfig | None = None,
    *,
    limit: int | None = None,
    policy: Any = None,
    pool: ConcurrencyPool | None = None,
    vt: float = 30.0,
) -> QueueMapping:
    config = config or MappingConfig("q", "f")
    if limit is not None:
        policy = FixedScaling(limit)
    return QueueMapping(
        config, visibility_timeout=vt, pool=pool or ConcurrencyPool(), policy=policy
    )


def of(actions: list[Action], kind: type[T]) -> list[T]:
    return [a for a in actions if isinstance(a, kind)]


def only(actions: list[Action], kind: type[T]) -> T:
    found = of(actions, kind)
    assert len(found) == 1, actions
    return found[0]


# ---------------------------------------------------------------------- receiving


def test_starts_one_receive_per_poller() -> None:
    m = make(limit=3)
    actions = m.poll(0.0)
    assert actions == [Receive(i, 10, LONG_POLL_WAIT, 30.0) for i in range(3)]
    assert m.receiving == 3
    assert m.poll(0.0) == []  # receives outstanding: nothing more
    assert m.next_wakeup(0.0) is None
    assert not m.idle


def test_receive_asks_for_room_left() -> None:
    m = make(MappingConfig("q", "f", batch_size=4), limit=1)
    assert only(m.poll(0.0), Receive).max_messages == 4


def test_policy_sees_every_receive() -> None:
    policy = SetLimit(1)
    m = make(policy=policy)
    m.poll(0.0)
    m.received(1.0, 0, [])
    m.poll(1.0)
    m.received(2.0, 0, records(3))
    assert policy.receives == [(1.0, 0), (2.0, 3)]


def test_default_policy_comes_from_config_and_pool() -> None:
    pool = ConcurrencyPool()
    pool.register(FunctionConfig("f", reserved_concurrency=7))
    m = QueueMapping(MappingConfig("q", "f", scaling="fixed"), visibility_timeout=30, pool=pool)
    assert isinstance(m.policy, FixedScaling)
    assert len(m.poll(0.0)) == 7
    m = QueueMapping(MappingConfig("q", "f"), visibility_timeout=30, pool=pool)
    assert isinstance(m.policy, AwsScaling)
    assert len(m.poll(0.0)) == 5


# ---------------------------------------------------------------------- batching


def test_full_batch_is_invoked_at_once_and_deleted_on_success() -> None:
    m = make(limit=1)
    m.poll(0.0)
    rs = records(10)
    m.received(1.0, 0, rs)
    actions = m.poll(1.0)
    invoke = only(actions, Invoke)
    assert not of(actions, Receive)  # the poller waits for its invocation
    assert invoke.batch == Batch(1, 0, tuple(rs))
    assert m.in_flight == 1 and m.invocations == 1
    assert m.poll(1.0) == []
    m.finished(2.0, 1, SUCCESS_OUTCOME)
    assert m.in_flight == 0
    assert not m.idle  # the Delete is still to be emitted
    actions = m.poll(2.0)
    assert only(actions, Delete) == Delete(tuple(rs))
    assert only(actions, Receive).poller == 0
    assert m.deleted_records == 10


def test_window_zero_invokes_whatever_came() -> None:
    m = make(limit=1)
    m.poll(0.0)
    m.received(0.5, 0, records(3))
    assert len(only(m.poll(0.5), Invoke).batch.records) == 3


def test_batching_window_gathers_until_deadline() -> None:
    m = make(MappingConfig("q", "f", batch_size=100, maximum_batching_window=5), limit=1)
    assert only(m.poll(0.0), Receive).wait == LONG_POLL_WAIT  # empty buffer: long poll
    m.received(1.0, 0, records(3))  # window opens at 1.0, ends at 6.0
    r = only(m.poll(1.0), Receive)
    assert (r.max_messages, r.wait) == (10, 5.0)
    m.received(3.0, 0, records(10))
    r = only(m.poll(3.0), Receive)
    assert (r.max_messages, r.wait) == (10, 3.0)
    m.received(6.0, 0, [])  # the long poll ran out at the deadline
    batch = only(m.poll(6.0), Invoke).batch
    assert len(batch.records) == 13


def test_receive_returning_after_the_deadline_releases_with_its_records() -> None:
    m = make(MappingConfig("q", "f", batch_size=100, maximum_batching_window=5), limit=1)
    m.poll(0.0)
    m.received(0.0, 0, records(2))
    assert only(m.poll(0.0), Receive).wait == 5.0
    assert m.next_wakeup(1.0) is None  # the receive covers the window
    m.received(5.5, 0, records(4))  # late (driver latency)
    batch = only(m.poll(5.5), Invoke).batch
    assert len(batch.records) == 6


def test_batch_size_reached_before_window() -> None:
    m = make(MappingConfig("q", "f", batch_size=25, maximum_batching_window=60), limit=1)
    m.poll(0.0)
    m.received(0.0, 0, records(10))
    assert only(m.poll(0.0), Receive).max_messages == 10
    m.received(1.0, 0, records(10))
    assert only(m.poll(1.0), Receive).max_messages == 5
    m.received(2.0, 0, records(5))
    assert len(only(m.poll(2.0), Invoke).batch.records) == 25


def test_payload_cap_splits_batches() -> None:
    m = make(limit=1)
    m.poll(0.0)
    rs = records(4, size=5 * MB // 2)  # 2.5 MB each: two per 6 MB batch
    m.received(0.0, 0, rs)
    first = only(m.poll(0.0), Invoke).batch
    assert first.records == tuple(rs[:2])
    assert m.buffered == 2
    m.finished(1.0, first.id, SUCCESS_OUTCOME)
    actions = m.poll(1.0)
    second = only(actions, Invoke).batch
    assert second.records == tuple(rs[2:])
    assert only(actions, Delete).records == tuple(rs[:2])
    assert not of(actions, Receive)
    assert second.id > first.id


def test_batch_ids_are_unique_and_increasing() -> None:
    m = make(limit=3)
    m.poll(0.0)
    for p in range(3):
        m.received(0.0, p, records(1))
    ids = [a.batch.id for a in of(m.poll(0.0), Invoke)]
    assert ids == sorted(ids) and len(set(ids)) == 3


# ---------------------------------------------------------------------- settling


def test_error_deletes_nothing() -> None:
    m = make(limit=1)
    m.poll(0.0)
    m.received(0.0, 0, records(3))
    batch = only(m.poll(0.0), Invoke).batch
    m.finished(1.0, batch.id, exception_outcome(batch, "ValueError: x"))
    actions = m.poll(1.0)
    assert not of(actions, Delete)
    assert of(actions, Receive)
    assert m.errors == 1


def test_partial_deletes_the_others() -> None:
    m = make(limit=1)
    m.poll(0.0)
    rs = records(3)
    m.received(0.0, 0, rs)
    batch = only(m.poll(0.0), Invoke).batch
    m.finished(1.0, batch.id, BatchOutcome(OutcomeKind.PARTIAL, frozenset({rs[1].message_id})))
    assert only(m.poll(1.0), Delete).records == (rs[0], rs[2])
    assert m.partial == 1


def test_policy_sees_outcomes() -> None:
    policy = SetLimit(1)
    m = make(policy=policy)
    m.poll(0.0)
    m.received(0.0, 0, records(1))
    batch = only(m.poll(0.0), Invoke).batch
    m.finished(3.0, batch.id, SUCCESS_OUTCOME)
    assert policy.outcomes == [(3.0, SUCCESS_OUTCOME)]


def test_driver_bugs_are_refused() -> None:
    m = make(limit=1)
    with pytest.raises(RuntimeError):
        m.received(0.0, 0, [])  # no receive issued yet
    m.poll(0.0)
    with pytest.raises(RuntimeError):
        m.received(0.0, 5, [])
    with pytest.raises(RuntimeError):
        m.finished(0.0, 99, SUCCESS_OUTCOME)
    m.received(0.0, 0, [])
    with pytest.raises(RuntimeError):
        m.received(0.0, 0, [])


# ---------------------------------------------------------------------- limits


def test_maximum_concurrency_caps_any_policy() -> None:
    m = make(MappingConfig("q", "f", maximum_concurrency=3), limit=50)
    assert len(of(m.poll(0.0), Receive)) == 3
    assert m.limit == 3


def test_in_flight_never_exceeds_the_pool() -> None:
    pool = ConcurrencyPool(AccountConfig(concurrency_limit=10, min_unreserved=2))
    pool.register(FunctionConfig("f", reserved_concurrency=2))
    m = make(limit=4, pool=pool)
    m.poll(0.0)
    for p in range(4):
        m.received(0.0, p, records(1, visible_at=30.0))
    actions = m.poll(0.0)
    assert len(of(actions, Invoke)) == 2
    assert m.throttles == 2
    assert pool.in_use("f") == m.in_flight == 2


def test_shrinking_limit_retires_pollers() -> None:
    policy = SetLimit(4)
    m = make(policy=policy)
    assert len(m.poll(0.0)) == 4
    policy.value = 2
    m.received(1.0, 3, [])
    m.received(1.0, 2, records(2))
    actions = m.poll(1.0)
    # poller 3 retires; poller 2 still invokes what it holds, then retires
    assert not of(actions, Receive)
    batch = only(actions, Invoke).batch
    assert batch.poller == 2
    m.finished(2.0, batch.id, SUCCESS_OUTCOME)
    actions = m.poll(2.0)
    assert of(actions, Delete) and not of(actions, Receive)
    m.received(3.0, 0, [])
    assert only(m.poll(3.0), Receive).poller == 0
    # growing again restarts the retired pollers
    policy.value = 4
    assert m.next_wakeup(3.0) == 3.0
    assert sorted(r.poller for r in of(m.poll(3.0), Receive)) == [2, 3]


def test_retiring_poller_waits_out_its_window() -> None:
    policy = SetLimit(2)
    m = make(MappingConfig("q", "f", batch_size=50, maximum_batching_window=10), policy=policy)
    m.poll(0.0)
    m.received(0.0, 1, records(3))
    m.poll(0.0)  # poller 1 receives again, window ends at 10
    policy.value = 1
    m.received(4.0, 1, records(2))
    assert m.poll(4.0) == []  # above the limit: no receive, waits for the window
    assert m.next_wakeup(4.0) == 10.0
    assert len(only(m.poll(10.0), Invoke).batch.records) == 5


def test_held_batch_waits_for_a_slot_when_the_limit_drops() -> None:
    policy = SetLimit(3)
    m = make(policy=policy)
    m.poll(0.0)
    m.received(0.0, 0, records(1))
    m.received(0.0, 1, records(1))
    a, b = (x.batch for x in of(m.poll(0.0), Invoke))
    policy.value = 1
    m.received(1.0, 2, records(1, visible_at=31.0))
    assert m.poll(1.0) == []  # 2 in flight, limit 1: no slot
    assert m.next_wakeup(1.0) == 31.0  # its visibility deadline
    m.finished(2.0, a.id, SUCCESS_OUTCOME)
    assert not of(m.poll(2.0), Invoke)  # 1 in flight, still at the limit
    m.finished(3.0, b.id, SUCCESS_OUTCOME)
    assert m.next_wakeup(3.0) == 3.0
    invoke = only(m.poll(3.0), Invoke)
    assert invoke.batch.poller == 2
    assert m.in_flight == 1


def test_held_batch_is_abandoned_at_its_visibility_deadline() -> None:
    policy = SetLimit(2)
    m = make(policy=policy)
    m.poll(0.0)
    m.received(0.0, 0, records(1))
    m.poll(0.0)
    policy.value = 1
    m.received(1.0, 1, records(2, visible_at=31.0))
    m.poll(1.0)
    assert not m.idle
    abandon = only(m.poll(31.0), Abandon)
    assert len(abandon.batch.records) == 2
    assert "slot" in abandon.reason
    assert m.abandoned == 1


# ---------------------------------------------------------------------- throttles


def test_throttle_backoff_then_abandon_with_reserved_zero() -> None:
    pool = ConcurrencyPool()
    pool.register(FunctionConfig("f", reserved_concurrency=0))
    policy = SetLimit(1)
    m = make(pool=pool, policy=policy)
    m.poll(0.0)
    rs = records(3, visible_at=30.0)
    m.received(0.0, 0, rs)
    retries = []
    now = 0.0
    actions = m.poll(now)
    while not of(actions, Abandon):
        assert not of(actions, Invoke) and not of(actions, Receive)
        wake = m.next_wakeup(now)
        assert wake is not None and wake > now
        retries.append(wake)
        now = wake
        actions = m.poll(now)
    # 1, 2, 4, 8 s apart; the retry after 15 s would come at 31 >= 30: abandoned at 15
    assert retries == [1.0, 3.0, 7.0, 15.0]
    abandon = only(actions, Abandon)
    assert abandon.batch.records == tuple(rs)
    assert abandon.batch.throttles == 5
    assert "throttled 5" in abandon.reason
    assert m.throttles == 5 and m.abandoned == 1
    assert policy.throttles == [0.0, 1.0, 3.0, 7.0, 15.0]
    # the poller is free again and receives at once
    assert only(actions, Receive).poller == 0
    assert m.in_flight == 0 and pool.in_use("f") == 0


def test_throttle_backoff_is_capped() -> None:
    pool = ConcurrencyPool()
    pool.register(FunctionConfig("f", reserved_concurrency=0))
    m = make(pool=pool, limit=1, vt=1000.0)
    m.poll(0.0)
    m.received(0.0, 0, records(1, visible_at=1000.0))
    now = 0.0
    m.poll(now)
    gaps = []
    for _ in range(8):
        wake = m.next_wakeup(now)
        assert wake is not None
        gaps.append(wake - now)
        now = wake
        m.poll(now)
    assert gaps == [THROTTLE_BACKOFF_BASE * 2**i for i in range(5)] + [THROTTLE_BACKOFF_MAX] * 3


def test_throttled_batch_is_invoked_when_a_slot_frees() -> None:
    pool = ConcurrencyPool()
    pool.register(FunctionConfig("f", reserved_concurrency=1))
    assert pool.try_acquire("f")  # someone else holds the only slot
    m = make(pool=pool, limit=1)
    m.poll(0.0)
    m.received(0.0, 0, records(2))
    assert m.poll(0.0) == []
    assert m.throttles == 1
    pool.release("f")
    assert m.poll(0.5) == []  # not before the retry time
    invoke = only(m.poll(1.0), Invoke)
    assert invoke.batch.throttles == 1
    assert m.in_flight == 1


# ---------------------------------------------------------------------- pause


def test_pause_stops_receives_but_finishes_work_in_hand() -> None:
    m = make(limit=2)
    m.poll(0.0)
    m.pause(1.0)
    assert m.paused and m.stopping
    rs = records(3)
    m.received(2.0, 0, rs)
    actions = m.poll(2.0)
    batch = only(actions, Invoke).batch  # buffered records are still invoked
    assert not of(actions, Receive)
    m.received(3.0, 1, [])
    assert m.poll(3.0) == []
    m.finished(4.0, batch.id, SUCCESS_OUTCOME)
    assert not m.idle
    actions = m.poll(4.0)
    assert actions == [Delete(tuple(rs))]
    assert m.idle and not m.stopping
    assert m.next_wakeup(4.0) is None
    m.resume(5.0)
    assert not m.paused
    assert sorted(r.poller for r in of(m.poll(5.0), Receive)) == [0, 1]


def test_paused_poller_releases_its_window() -> None:
    m = make(MappingConfig("q", "f", batch_size=50, maximum_batching_window=10), limit=1)
    m.poll(0.0)
    m.pause(0.5)
    m.received(1.0, 0, records(3))
    assert m.poll(1.0) == []
    assert m.next_wakeup(1.0) == 11.0
    assert m.poll(10.9) == []
    assert len(only(m.poll(11.0), Invoke).batch.records) == 3


def test_resume_cancels_a_window_wait() -> None:
    m = make(MappingConfig("q", "f", batch_size=50, maximum_batching_window=10), limit=1)
    m.poll(0.0)
    m.pause(0.5)
    m.received(1.0, 0, records(3))
    m.poll(1.0)
    m.resume(2.0)
    r = only(m.poll(2.0), Receive)
    assert r.wait == 9.0
    assert m.next_wakeup(2.0) is None  # the old window timer is gone


def test_created_disabled_is_paused() -> None:
    m = make(MappingConfig("q", "f", enabled=False), limit=3)
    assert m.paused and m.idle
    assert m.poll(0.0) == []
    m.resume(1.0)
    assert len(m.poll(1.0)) == 3


def test_statistics() -> None:
    m = make(limit=2)
    m.poll(0.0)
    m.received(0.0, 0, records(4))
    m.poll(0.0)
    s = m.statistics()
    assert (s.limit, s.in_flight, s.receiving, s.invocations, s.received_records) == (
        2, 1, 1, 1, 4)


# ---------------------------------------------------------------------- aws scaling


class Backlog:
    """A deterministic driver: an endless (or finite) backlog, receives answered at once
    (or after the full wait when the queue is empty), invocations lasting ``duration``."""

    def __init__(self, m: QueueMapping, *, messages: float, duration: float,
                 error: bool = False) -> None:
        self.m = m
        self.left = messages
        self.duration = duration
        self.error = error
        self.events: list[tuple[float, int, str, Any]] = []
        self.seq = itertools.count()
        self.max_over_limit = 0
        self.receives: list[tuple[float, int]] = []
        self.max_in_flight = 0

    def run(self, until: float, now: float = 0.0) -> float:
        m = self.m
        while now <= until:
            while self.events and self.events[0][0] <= now:
                _, _, kind, arg = heapq.heappop(self.events)
                if kind == "receive":
                    poller, got = arg
                    m.received(now, poller, got)
                else:
                    m.finished(now, arg.id, exception_outcome(arg, "boom")
                               if self.error else SUCCESS_OUTCOME)
            for action in m.poll(now):
                if isinstance(action, Receive):
                    self.receives.append((now, action.poller))
                    n = int(min(action.max_messages, self.left))
                    self.left -= n
                    got = [record(visible_at=now + 30) for _ in range(n)]
                    when = now if n else now + action.wait
                    heapq.heappush(self.events, (when, next(self.seq), "receive",
                                                 (action.poller, got)))
                elif isinstance(action, Invoke):
                    assert m.in_flight <= m.limit
                    heapq.heappush(self.events, (now + self.duration, next(self.seq),
                                                 "finish", action.batch))
            self.max_in_flight = max(self.max_in_flight, m.in_flight)
            candidates = [self.events[0][0]] if self.events else []
            wake = m.next_wakeup(now)
            if wake is not None:
                candidates.append(wake)
            if not candidates:
                break
            nxt = min(candidates)
            assert nxt >= now
            now = nxt
        return now


def test_aws_ramp_through_the_mapping() -> None:
    m = make(MappingConfig("q", "f", batch_size=1), policy=AwsScaling(None, False))
    d = Backlog(m, messages=float("inf"), duration=0.1)
    d.run(60.0)
    # 5, then the fast start (25/s for 3 s), then +300/min: 5 + 75 + 5 * 57 = 365
    assert m.limit == 365
    assert d.max_in_flight == 365
    # it started with 5 pollers
    assert {p for t, p in d.receives if t == 0.0} == set(range(5))


def test_aws_cap_by_maximum_concurrency_through_the_mapping() -> None:
    m = make(MappingConfig("q", "f", maximum_concurrency=20),
             policy=AwsScaling(20, False))
    d = Backlog(m, messages=float("inf"), duration=0.5)
    d.run(30.0)
    assert d.max_in_flight == 20
    assert {p for _, p in d.receives} == set(range(20))


def test_aws_scales_down_when_the_queue_drains() -> None:
    m = make(MappingConfig("q", "f", batch_size=1), policy=AwsScaling(None, False))
    d = Backlog(m, messages=3000, duration=0.1)
    now = d.run(200.0)
    assert d.left == 0
    assert m.limit == 5
    late = {p for t, p in d.receives if t > now - 60}
    assert late <= set(range(5))


def test_aws_keeps_its_level_idle_with_maximum_concurrency() -> None:
    m = make(MappingConfig("q", "f", batch_size=1, maximum_concurrency=50),
             policy=AwsScaling(50, False))
    d = Backlog(m, messages=3000, duration=0.1)
    now = d.run(200.0)
    assert d.left == 0
    assert m.limit == 50
    late = {p for t, p in d.receives if t > now - 60}
    assert len(late) == 50


@pytest.mark.parametrize(("rbif", "backs_off"), [(False, True), (True, False)])
def test_aws_errors_back_off_only_without_rbif(rbif: bool, backs_off: bool) -> None:
    policy: ScalingPolicy = AwsScaling(None, rbif)
    m = make(MappingConfig("q", "f", report_batch_item_failures=rbif), policy=policy)
    d = Backlog(m, messages=float("inf"), duration=0.05, error=True)
    d.run(20.0)
    if backs_off:
        assert m.limit < 20
    else:
        assert m.limit == 165  # 5 + 25 * 3 + 5 * 17 (fast start, then +300/min)


# ---------------------------------------------------------------------- purity


def test_core_imports_nothing_impure() -> None:
    import ast
    import pathlib

    import sluicegate.core

    forbidden = {"asyncio", "threading", "time", "sqlite3", "redis", "random", "socket",
                 "subprocess", "multiprocessing", "concurrent", "datetime.datetime"}
    root = pathlib.Path(sluicegate.core.__file__).parent
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"

