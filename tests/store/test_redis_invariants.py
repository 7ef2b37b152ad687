"""The random operation sequences of ``test_invariants.py``, run against the Redis store.

The state machine drives a synchronous face of a :class:`RedisStore` (each call runs the
store's primitive on an event loop of its own) and checks the same invariants as for the
memory and SQLite engines. Each example gets its own key prefix on the session's server.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from sluicegate.core.config import QueueConfig
from sluicegate.errors import InvalidReceiptHandle, StoreError
from sluicegate.store.base import FifoSent, Message, NewMessage, QueueCounts, md5_hex
from sluicegate.store.memory import MemoryQueues
from sluicegate.store.redis import RedisStore
from sluicegate.testing import VirtualClock

from .conftest import START
from .test_invariants import MAX_RECEIVES, StoreMachine

T = TypeVar("T")

_examples = itertools.count()

ALL_QUEUES = ["q", "dlq", "f.fifo", "dlq.fifo"]


class SyncRedis:
    """The engine interface the machine uses, on a RedisStore."""

    url = ""

    def __init__(self, clock: VirtualClock) -> None:
        self.loop = asyncio.new_event_loop()
        self.prefix = f"inv{next(_examples)}:"
        self.store = RedisStore(self.url, clock=clock, prefix=self.prefix)
        self.run(self.store.open())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.run(self.store.close())
        self.loop.close()

    def ensure_queue(self, config: QueueConfig) -> None:
        self.run(self.store._ensure_queue(config))

    def send(self, queue: str, messages: list[NewMessage]) -> list[str]:
        return self.run(self.store._send(queue, messages))

    def send_fifo(self, queue: str, messages: list[NewMessage]) -> list[FifoSent]:
        return self.run(self.store._send_fifo(queue, messages))

    def receive(self, queue: str, n: int, timeout: float) -> list[Message]:
        return self.run(self.store._receive(queue, n, timeout))

    def next_visible_at(self, queue: str) -> float | None:
        return self.run(self.store._next_visible_at(queue))

    def delete(self, queue: str, handles: list[str]) -> list[bool]:
        return self.run(self.store._delete(queue, handles))

    def change_visibility(self, queue: str, handle: str, timeout: float) -> None:
        self.run(self.store._change_visibility(queue, handle, timeout))

    def redrive(self, queue: str, to: str | None) -> list[str]:
        return self.run(self.store._redrive(queue, to))

    def purge(self, queue: str) -> int:
        return self.run(self.store._purge(queue))

    def counts(self, queue: str) -> QueueCounts:
        return self.run(self.store._counts(queue))

    def ids_in(self, queue: str) -> set[str]:
        key = f"{self.prefix}{{q:{queue}}}:m"
        keys = self.run(self.store._redis().hkeys(key))  # type: ignore[misc]
        return {k.decode()[17:] for k in keys}


class RedisMachine(StoreMachine):
    def make_engine(self) -> SyncRedis:
        return SyncRedis(self.clock)

    def ids_in(self, queue: str) -> set[str]:
        ids: set[str] = self.engine.ids_in(queue)
        return ids

    def teardown(self) -> None:
        self.engine.close()


@pytest.fixture(autouse=True)
def _server(redis_url: str) -> Iterator[None]:
    SyncRedis.url = redis_url
    yield


TestRedisInvariants = RedisMachine.TestCase
TestRedisInvariants.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# ---------------------------------------------------------------------- same as memory
class SameAsMemory(RuleBasedStateMachine):
    """Random operations on a memory engine and a Redis store side by side, each step's
    results compared: the Redis store must behave exactly as the memory store.

    Every send first moves the clock by a millisecond, so no two sends share a sent time
    (ties between messages of different queues would order by sequence numbers, which the
    memory store counts across queues and the Redis store per queue). For the same reason
    nothing is sent straight to the FIFO dead-letter queue: there, a group's messages
    order by sequence number, and one sent directly could have the same as one moved in.
    """

    def __init__(self) -> None:
        super().__init__()
        self.clock = VirtualClock(START)
        self.memory = MemoryQueues(self.clock, seed=0)
        self.redis = SyncRedis(self.clock)
        for engine in (self.memory, self.redis):
            engine.ensure_queue(QueueConfig("dlq", visibility_timeout=10))
            engine.ensure_queue(QueueConfig("q", visibility_timeout=10, dead_letter_queue="dlq",
                                            max_receive_count=MAX_RECEIVES))
            engine.ensure_queue(QueueConfig("dlq.fifo", visibility_timeout=10,
                                            content_based_deduplication=True))
            engine.ensure_queue(QueueConfig("f.fifo", visibility_timeout=10,
                                            dead_letter_queue="dlq.fifo",
                                            max_receive_count=MAX_RECEIVES))
        self.bodies = (f"m{i}" for i in itertools.count())
        #: per queue, (memory handle, redis handle) of every receive so far
        self.handles: dict[str, list[tuple[str, str]]] = {q: [] for q in ALL_QUEUES}

    def teardown(self) -> None:
        self.redis.close()

    @rule(queue=st.sampled_from(["q", "dlq"]),
          delays=st.lists(st.sampled_from([0, 0, 1, 3]), min_size=1, max_size=4))
    def send(self, queue: str, delays: list[int]) -> None:
        self.clock.advance(0.001)
        news = []
        for delay in delays:
            body = next(self.bodies)
            news.append(NewMessage(body, md5_hex(body), {}, delay, "test"))
        assert len(self.memory.send(queue, news)) == len(self.redis.send(queue, news))

    @rule(queue=st.just("f.fifo"),
          entries=st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from(["x", "y", ""])),
                           min_size=1, max_size=4))
    def send_fifo(self, queue: str, entries: list[tuple[str, str]]) -> None:
        self.clock.advance(0.001)
        news = []
        for group, dedup in entries:
            body = next(self.bodies)
            news.append(NewMessage(body, md5_hex(body), {}, 0, "test", group, dedup or body))
        memory = self.memory.send_fifo(queue, news)
        redis = self.redis.send_fifo(queue, news)
        assert [s.duplicate for s in memory] == [s.duplicate for s in redis]

    @rule(queue=st.sampled_from(ALL_QUEUES), n=st.integers(1, 10),
          timeout=st.sampled_from([0.0, 1.0, 2.0, 10.0]))
    def receive(self, queue: str, n: int, timeout: float) -> None:
        memory = self.memory.receive(queue, n, timeout)
        redis = self.redis.receive(queue, n, timeout)
        assert [_seen(m) for m in memory] == [_seen(m) for m in redis]
        self.handles[queue] += [
            (a.receipt_handle, b.receipt_handle) for a, b in zip(memory, redis, strict=True)
        ]

    @rule(queue=st.sampled_from(ALL_QUEUES), data=st.data())
    def delete(self, queue: str, data: st.DataObject) -> None:
        known = self.handles[queue]
        if not known:
            return
        picked = data.draw(st.lists(st.sampled_from(known), min_size=1, max_size=5))
        memory = self.memory.delete(queue, [a for a, _ in picked])
        assert memory == self.redis.delete(queue, [b for _, b in picked])

    @rule(queue=st.sampled_from(ALL_QUEUES), data=st.data(),
          timeout=st.sampled_from([0.0, 1.0, 20.0]))
    def change_visibility(self, queue: str, data: st.DataObject, timeout: float) -> None:
        known = self.handles[queue]
        if not known:
            return
        a, b = data.draw(st.sampled_from(known))
        outcomes = []
        for engine, handle in ((self.memory, a), (self.redis, b)):
            try:
                engine.change_visibility(queue, handle, timeout)
                outcomes.append(True)
            except InvalidReceiptHandle:
                outcomes.append(False)
        assert outcomes[0] == outcomes[1]

    @rule(dlq=st.sampled_from(["dlq", "dlq.fifo"]), to_source=st.booleans())
    def redrive(self, dlq: str, to_source: bool) -> None:
        to = None if to_source else ("q" if dlq == "dlq" else "f.fifo")
        outcomes = []
        for engine in (self.memory, self.redis):
            try:
                outcomes.append(sorted(engine.redrive(dlq, to)))
            except StoreError:
                outcomes.append(None)
        assert outcomes[0] == outcomes[1]

    @rule(queue=st.sampled_from(ALL_QUEUES))
    def purge(self, queue: str) -> None:
        assert self.memory.purge(queue) == self.redis.purge(queue)

    @rule(seconds=st.sampled_from([0.5, 1.0, 2.0, 11.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @invariant()
    def same_counts(self) -> None:
        for queue in ALL_QUEUES:
            assert self.memory.counts(queue) == self.redis.counts(queue), queue
            assert self.memory.next_visible_at(queue) == self.redis.next_visible_at(queue)


def _seen(m: Message) -> tuple[Any, ...]:
    """What a receive must agree on (ids, handles and sequence numbers are the store's)."""
    return (m.body, m.receive_count, m.first_receive_timestamp, m.sent_timestamp,
            m.visible_at, m.group_id, m.deduplication_id, m.queue)


TestSameAsMemory = SameAsMemory.TestCase
TestSameAsMemory.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
