"""A QueueMapping driven at random against a fake queue: its invariants always hold.

- invocations in flight never exceed the limit, maximum_concurrency or the pool;
- no receive is issued for a poller that has one outstanding, is retired, or while paused;
- batches respect batch_size and the 6 MB cap;
- every received record is settled exactly once: deleted, left to reappear (ERROR or a
  failed item) or abandoned; never both deleted and abandoned;
- paused and drained, the mapping becomes idle.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sluicegate.core.config import MAX_PAYLOAD_BYTES, AccountConfig, FunctionConfig, MappingConfig
from sluicegate.core.mapping import LONG_POLL_WAIT, QueueMapping
from sluicegate.core.pool import ConcurrencyPool
from sluicegate.core.results import SUCCESS_OUTCOME, exception_outcome
from sluicegate.core.scaling import ScalingPolicy, make_policy
from sluicegate.core.types import (
    Abandon,
    Batch,
    BatchOutcome,
    Delete,
    Invoke,
    OutcomeKind,
    QueueRecord,
    Receive,
)

from .support import SetLimit

MB = 1024 * 1024


@dataclass
class Harness:
    m: QueueMapping
    pool: ConcurrencyPool
    config: MappingConfig
    vt: float
    now: float = 0.0
    receives: dict[int, Receive] = field(default_factory=dict)
    in_flight: dict[int, Batch] = field(default_factory=dict)
    received: set[str] = field(default_factory=set)
    batched: set[str] = field(default_factory=set)
    deletable: set[str] = field(default_factory=set)
    settled: dict[str, str] = field(default_factory=dict)
    ids: Any = field(default_factory=lambda: itertools.count(1))
    hogged: int = 0
    slot_abandons: int = 0

    def settle(self, handle: str, how: str) -> None:
        assert handle in self.received
        assert handle not in self.settled, (handle, self.settled[handle], how)
        self.settled[handle] = how

    def poll(self) -> None:
        m, config = self.m, self.config
        actions = m.poll(self.now)
        invoked = False
        for a in actions:
            if isinstance(a, Receive):
                assert not m.paused
                assert a.poller not in self.receives
                assert a.poller < m.limit, "a retired poller received"
                assert 1 <= a.max_messages <= min(10, config.batch_size)
                assert 0 < a.wait <= LONG_POLL_WAIT
                assert a.visibility_timeout == self.vt
                self.receives[a.poller] = a
            elif isinstance(a, Invoke):
                invoked = True
                b = a.batch
                assert b.id not in self.in_flight
                assert 1 <= len(b.records) <= config.batch_size
                assert len(b.records) == 1 or b.size <= MAX_PAYLOAD_BYTES
                for r in b.records:
                    assert r.receipt_handle in self.received
                    assert r.receipt_handle not in self.batched
                    self.batched.add(r.receipt_handle)
                self.in_flight[b.id] = b
            elif isinstance(a, Delete):
                assert a.records
                for r in a.records:
                    assert r.receipt_handle in self.deletable
                    self.deletable.discard(r.receipt_handle)
                    self.settle(r.receipt_handle, "deleted")
            elif isinstance(a, Abandon):
                assert a.reason
                self.slot_abandons += "slot" in a.reason
                for r in a.batch.records:
                    assert r.receipt_handle not in self.batched
                    self.batched.add(r.receipt_handle)
                    self.settle(r.receipt_handle, "abandoned")
        if invoked:
            assert m.in_flight <= m.limit
        self.check()

    def check(self) -> None:
        m = self.m
        assert m.in_flight == len(self.in_flight)
        assert m.receiving == len(self.receives)
        if self.config.maximum_concurrency is not None:
            assert m.in_flight <= self.config.maximum_concurrency
        assert self.pool.in_use("f") == m.in_flight
        assert self.pool.in_use("f") <= self.pool.capacity("f")
        stats = self.pool.statistics()
        assert stats.in_use <= stats.concurrency_limit

    def deliver(self, index: int, count: int, big: bool) -> None:
        if not self.receives:
            return
        poller = sorted(self.receives)[index % len(self.receives)]
        receive = self.receives.pop(poller)
        got = []
        for _ in range(min(count, receive.max_messages)):
            n = next(self.ids)
            got.append(
                QueueRecord(
                    message_id=f"m{n}",
                    receipt_handle=f"h{n}",
                    size=(2 * MB + n % 7) if big else 200,
                    visible_at=self.now + self.vt,
                )
            )
            self.received.add(f"h{n}")
        self.m.received(self.now, poller, got)

    def finish(self, index: int, kind: int, mask: int) -> None:
        if not self.in_flight:
            return
        batch_id = sorted(self.in_flight)[index % len(self.in_flight)]
        batch = self.in_flight.pop(batch_id)
        if kind == 0:
            outcome = SUCCESS_OUTCOME
            keep: set[str] = set()
        elif kind == 1:
            outcome = exception_outcome(batch, "boom")
            keep = {r.message_id for r in batch.records}
        else:
            keep = {r.message_id for i, r in enumerate(batch.records) if mask >> i & 1}
            outcome = BatchOutcome(OutcomeKind.PARTIAL, frozenset(keep))
        for r in batch.records:
            if r.message_id in keep:
                self.settle(r.receipt_handle, "left")
            else:
                self.deletable.add(r.receipt_handle)
        self.m.finished(self.now, batch_id, outcome)

    def drain(self) -> None:
        m = self.m
        m.pause(self.now)
        self.poll()
        for _ in range(10_000):
            if m.idle:
                break
            while self.receives:
                self.deliver(0, 0, False)
            while self.in_flight:
                self.finish(0, 0, 0)
            self.poll()
            if m.idle:
                break
            if self.receives or self.in_flight:
                continue  # the poll started more work: settle it first
            wake = m.next_wakeup(self.now)
            assert wake is not None, "not idle, yet nothing will happen"
            assert wake >= self.now
            self.now = wake
            self.poll()
        assert m.idle and not m.stopping
        assert m.next_wakeup(self.now) is None
        assert not self.deletable
        assert set(self.settled) == self.received
        assert set(self.settled) == self.batched
        assert m.received_records == len(self.received)
        assert m.deleted_records == sum(1 for v in self.settled.values() if v == "deleted")


KINDS = (
    ["deliver"] * 6 + ["finish"] * 4 + ["advance"] * 2 + ["wake"] * 2 + ["poll"] * 2
    + ["pause", "resume", "hog", "unhog", "limit"]
)
"""Operation kinds, repeated to weight them: mostly receives coming back and invocations
ending, sometimes time passing, pausing, another function taking a slot, or (with a
hand-set policy) the limit changing."""

operations = st.lists(
    st.tuples(
        st.sampled_from(KINDS),
        st.integers(0, 20),  # which outstanding receive / in-flight batch
        st.integers(0, 10),  # records delivered / outcome kind (mod 3)
        st.integers(0, 1023),  # which items of a PARTIAL fail
        st.floats(0.0, 12.0),  # seconds to advance
        st.booleans(),  # big (2 MB) records / skip the poll after this operation
    ),
    min_size=30,
    max_size=200,
)


@st.composite
def configurations(draw: st.DrawFn) -> tuple[MappingConfig, int | None, float]:
    batch_size = draw(st.sampled_from([1, 2, 5, 10, 25]))
    if batch_size > 10:
        window = draw(st.sampled_from([1, 4]))
    else:
        window = draw(st.sampled_from([0, 0, 2, 6]))
    config = MappingConfig(
        "q",
        "f",
        batch_size=batch_size,
        maximum_batching_window=window,
        maximum_concurrency=draw(st.none() | st.integers(2, 6)),
        report_batch_item_failures=draw(st.booleans()),
        scaling=draw(st.sampled_from(["aws", "fixed"])),
        scaling_ceiling=draw(st.sampled_from([3, 8, 1250])),
        enabled=draw(st.sampled_from([True, True, True, False])),
    )
    reserved = draw(st.sampled_from([None, None, 0, 1, 3]))
    vt = draw(st.sampled_from([8.0, 30.0]))
    return config, reserved, vt


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(setup=configurations(), ops=operations, hand_set=st.booleans())
def test_random_driving_keeps_the_invariants(
    setup: tuple[MappingConfig, int | None, float],
    ops: list[tuple[Any, ...]],
    hand_set: bool,
) -> None:
    config, reserved, vt = setup
    pool = ConcurrencyPool(AccountConfig(concurrency_limit=8, min_unreserved=3))
    pool.register(FunctionConfig("f", reserved_concurrency=reserved))
    policy: ScalingPolicy = make_policy(config, reserved_concurrency=reserved)
    if hand_set:
        policy = SetLimit(3)
    m = QueueMapping(config, visibility_timeout=vt, pool=pool, policy=policy)
    h = Harness(m, pool, config, vt)
    h.poll()
    for position, (name, index, count, mask, seconds, flag) in enumerate(ops):
        if name == "advance":
            h.now += seconds
        elif name == "wake":
            wake = m.next_wakeup(h.now)
            if wake is not None:
                assert wake >= h.now
                h.now = wake
        elif name == "deliver":
            h.deliver(index, count, flag and position % 3 == 0)
        elif name == "finish":
            h.finish(index, count % 3, mask)
        elif name == "pause":
            m.pause(h.now)
        elif name == "resume":
            m.resume(h.now)
        elif name == "hog":
            h.hogged += pool.try_acquire("other")
        elif name == "unhog" and h.hogged:
            pool.release("other")
            h.hogged -= 1
        elif name == "limit" and isinstance(policy, SetLimit):
            policy.value = count % 7
        if name in ("advance", "wake", "poll") or not flag:
            h.poll()
    for name, happened in [
        ("throttled", m.throttles), ("abandoned", m.abandoned), ("partial", m.partial),
        ("errors", m.errors), ("invoked", m.invocations),
    ]:
        event(f"{name}: {'yes' if happened else 'no'}")
    event(f"abandoned waiting for a slot: {'yes' if h.slot_abandons else 'no'}")
    h.drain()
    while h.hogged:
        pool.release("other")
        h.hogged -= 1
    assert pool.statistics().in_use == 0
