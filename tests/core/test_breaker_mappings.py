"""A breaker as a term of a queue's and a stream's mapping: while it is open the mapping
does not read (no receive count burnt) and a shard holds at its checkpoint."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st

from sluicegate.core.breaker import CLOSED, HALF_OPEN, OPEN, Breaker, BreakerConfig
from sluicegate.core.config import MappingConfig
from sluicegate.core.mapping import QueueMapping
from sluicegate.core.pool import ConcurrencyPool
from sluicegate.core.results import SUCCESS_OUTCOME, exception_outcome
from sluicegate.core.scaling import AwsScaling, FixedScaling
from sluicegate.core.stream_mapping import RETRY_DELAY, StreamMapping
from sluicegate.core.streams import (
    Checkpoint,
    StreamConfig,
    StreamInvoke,
    StreamMappingConfig,
    StreamRecord,
)
from sluicegate.core.types import Invoke, Receive

from .support import records

T = TypeVar("T")


def breaker(**options: object) -> Breaker:
    options = {"minimum_calls": 2, "sliding_window_size": 2, "open_wait": 10.0, **options}
    return Breaker(BreakerConfig(**options), label="db", now=0.0)  # type: ignore[arg-type]


def of(actions: Sequence[object], kind: type[T]) -> list[T]:
    return [a for a in actions if isinstance(a, kind)]


def test_an_open_breaker_stops_a_queue_mapping_from_receiving() -> None:
    # Given a queue mapping with two pollers and a breaker that trips on 2 failures of 2
    b = breaker()
    m = QueueMapping(MappingConfig("q", "f"), visibility_timeout=5.0,
                     pool=ConcurrencyPool(), policy=FixedScaling(2))
    m.concurrency_limit.add(b)
    receives = of(m.poll(0.0), Receive)
    assert len(receives) == 2
    for r in receives:
        m.received(0.0, r.poller, records(1, visible_at=5.0))
    invokes = of(m.poll(0.0), Invoke)
    assert len(invokes) == 2
    # When both invocations fail (the downstream is down)
    for inv in invokes:
        m.finished(1.0, inv.batch.id, exception_outcome(inv.batch, "ConnectionRefused"))
    # Then the breaker is open and no receive goes out until its wait ends
    assert b.state(1.0) == OPEN
    assert m.limit_reason(1.0) == "breaker"
    for now in (1.0, 2.0, 5.0, 10.9):
        assert of(m.poll(now), Receive) == []
    assert m.next_wakeup(1.0) == 11.0
    # Half-open: one probe poller receives; its invocation succeeds and closes it
    actions = m.poll(11.0)
    assert b.state(11.0) == HALF_OPEN
    probe = of(actions, Receive)
    assert len(probe) == 1
    m.received(11.0, probe[0].poller, records(1, visible_at=16.0))
    invoke = of(m.poll(11.0), Invoke)
    assert len(invoke) == 1
    m.finished(11.5, invoke[0].batch.id, SUCCESS_OUTCOME)
    assert b.state(11.5) == CLOSED
    assert len(of(m.poll(11.5), Receive)) == 2


def test_an_aws_level_does_not_grow_while_a_breaker_holds_the_mapping() -> None:
    # Given an aws-scaled mapping whose receives came back full (growing), then tripped
    b = breaker(open_wait=90.0)
    policy = AwsScaling(None, False)
    m = QueueMapping(MappingConfig("q", "f"), visibility_timeout=5.0,
                     pool=ConcurrencyPool(), policy=policy)
    m.concurrency_limit.add(b)
    receives = of(m.poll(0.0), Receive)
    for r in receives:
        m.received(0.0, r.poller, records(10, visible_at=5.0))
    invokes = of(m.poll(0.0), Invoke)
    for inv in invokes[:2]:
        m.finished(1.0, inv.batch.id, exception_outcome(inv.batch, "ConnectionRefused"))
    assert m.limit_reason(1.0) == "breaker"
    # When it stays open for 90 s (the driver polls at each wake-up the mapping asks for)
    level = policy.level(1.0)
    now = 1.0
    while (wake := m.next_wakeup(now)) is not None and wake < 90.0:
        now = max(now + 0.01, wake)
        assert of(m.poll(now), Receive) == []
    # Then the level did not grow while nothing could be received (89 s at 5/s would
    # have added 445): the backlog built behind the breaker is not released at once
    assert policy.level(90.0) == level


def rec(seq: int, at: float = 0.0) -> StreamRecord:
    return StreamRecord(0, seq, "k", b"data", at, 100)


def stream_mapping(**options: object) -> StreamMapping:
    config = StreamMappingConfig("s", "f", batch_size=2, **options)  # type: ignore[arg-type]
    return StreamMapping(config, StreamConfig("s"), pool=ConcurrencyPool(),
                         function_arn="arn:f", stream_arn="arn:s")


def test_an_open_breaker_holds_a_shard_at_its_checkpoint_without_spending_retries() -> None:
    # Given a stream mapping with a breaker, and a first batch that succeeds
    b = breaker(failure_rate_threshold=100)
    m = stream_mapping(maximum_retry_attempts=2)
    m.concurrency_limit.add(b)
    m.poll(0.0)
    m.fetched(0.0, 0, [rec(i) for i in range(1, 9)])
    first = of(m.poll(0.0), StreamInvoke)[0].batch
    m.finished(0.5, first.id, SUCCESS_OUTCOME)
    actions = m.poll(0.5)
    assert of(actions, Checkpoint)[0].sequence_number == 2
    second = of(actions, StreamInvoke)[0].batch
    # When the next batch and its one retry fail: the breaker opens (its window of 2
    # calls all failed)
    m.finished(1.0, second.id, exception_outcome(second, "down"))
    retry = of(m.poll(1.0 + RETRY_DELAY), StreamInvoke)[0].batch
    assert retry.retries == 1
    m.finished(2.0 + RETRY_DELAY, retry.id, exception_outcome(retry, "down"))
    opened = 2.0 + RETRY_DELAY
    assert b.state(opened) == OPEN
    # Then, while open, nothing is invoked, nothing discarded, the checkpoint stays
    for now in (opened, opened + 1, opened + 5, opened + 9.9):
        actions = m.poll(now)
        assert of(actions, StreamInvoke) == [] and of(actions, Checkpoint) == []
    assert m.checkpoints == {0: 2}
    assert (m.discarded_records, m.held_aged_records) == (0, 0)
    # no fetch timer is pending (one is outstanding): the wait's end is the wake-up
    assert m.next_wakeup(opened + 9.9) == opened + 10
    # The probe is the held batch on its last retry: the wait spent none (with
    # maximum_retry_attempts=2 one more would have discarded it)
    probe = of(m.poll(opened + 10), StreamInvoke)[0].batch
    assert probe.records == second.records and probe.retries == 2
    m.finished(opened + 10.5, probe.id, SUCCESS_OUTCOME)
    assert b.state(opened + 10.5) == CLOSED
    assert of(m.poll(opened + 10.5), Checkpoint)[0].sequence_number == 4


def test_records_that_age_out_while_the_breaker_is_open_are_discarded_and_counted() -> None:
    b = breaker()
    m = stream_mapping(maximum_record_age=60, on_failure="dlq")
    m.concurrency_limit.add(b)
    b.trip(0.0)
    m.poll(0.0)
    m.fetched(0.0, 0, [rec(1), rec(2)])
    assert of(m.poll(0.0), StreamInvoke) == []
    assert of(m.poll(30.0), StreamInvoke) == []
    b.reset(100.0)
    actions = m.poll(100.0)
    assert of(actions, StreamInvoke) == []
    assert m.statistics().discarded_records == 2
    assert m.statistics().held_aged_records == 2
    assert of(actions, Checkpoint)[0].sequence_number == 2


# ---------------------------------------------------------------- property

step = st.one_of(
    st.tuples(st.just("wait"), st.floats(0.0, 4.0)),
    st.tuples(st.just("return"), st.integers(0, 3)),
    st.tuples(st.just("finish"), st.booleans()),
)


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(step, max_size=80), probes=st.integers(1, 3))
def test_a_queue_mapping_never_reads_through_an_open_breaker(
    steps: list[tuple[str, object]], probes: int
) -> None:
    # Given a queue mapping of 4 pollers behind a breaker, driven at random
    b = breaker(half_open_calls=probes, open_wait=3.0)
    m = QueueMapping(MappingConfig("q", "f"), visibility_timeout=5.0,
                     pool=ConcurrencyPool(), policy=FixedScaling(4))
    m.concurrency_limit.add(b)
    now = 0.0
    receives: list[Receive] = []
    running: list[Invoke] = []
    period: float | None = None
    started = 0

    def poll() -> None:
        nonlocal period, started
        for action in m.poll(now):
            state = b.state(now)
            if isinstance(action, Receive):
                # Then no read goes out while it is open
                assert state != OPEN
                receives.append(action)
            elif isinstance(action, Invoke):
                assert state != OPEN
                if state == HALF_OPEN:
                    if period != b.since:
                        period, started = b.since, 0
                    started += 1
                    # and never more than its probes in one half-open period
                    assert started <= probes
                running.append(action)

    poll()
    for what, arg in steps:
        if what == "wait":
            assert isinstance(arg, float)
            now += arg
        elif what == "return" and receives:
            assert isinstance(arg, int)
            r = receives.pop(0)
            m.received(now, r.poller, records(min(arg, r.max_messages), visible_at=now + 5))
        elif what == "finish" and running:
            inv = running.pop(0)
            outcome = SUCCESS_OUTCOME if arg else exception_outcome(inv.batch, "down")
            m.finished(now, inv.batch.id, outcome)
        poll()
        assert m.in_flight == len(running)
