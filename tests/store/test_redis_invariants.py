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

from sluicegate.core.config import QueueConfig
from sluicegate.store.base import Message, NewMessage, QueueCounts
from sluicegate.store.redis import RedisStore

from .conftest import FakeClock
from .test_invariants import StoreMachine

T = TypeVar("T")

_examples = itertools.count()


class SyncRedis:
    """The engine interface the machine uses, on a RedisStore."""

    url = ""

    def __init__(self, clock: FakeClock) -> None:
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

    def receive(self, queue: str, n: int, timeout: float) -> list[Message]:
        return self.run(self.store._receive(queue, n, timeout))

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
