"""Random sequences of store operations, checked against what must always hold.

The machine drives a backend's synchronous engine (``MemoryQueues``, or the SQLite
store's ``_Engine``) with sends, receives, deletes, visibility changes, redrives and
clock jumps, and checks after every step:

- every message ever sent is exactly one of: in the source queue (visible, in flight or
  delayed), in the dead-letter queue, or deleted (by a delete that returned True, or a
  purge);
- the counts add up to what each queue holds;
- a message is never delivered while a previous receive of it is still in flight, and is
  delivered at most ``max_receive_count`` times from the source queue;
- a delete succeeds exactly when the handle is the message's current one.
"""

from __future__ import annotations

import itertools
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from sluicegate.core.config import QueueConfig
from sluicegate.errors import InvalidReceiptHandle, StoreError
from sluicegate.store.base import NewMessage, md5_hex
from sluicegate.store.memory import MemoryQueues
from sluicegate.store.sqlite import _connect, _create_schema, _Engine
from sluicegate.testing import VirtualClock

from .conftest import START

MAX_RECEIVES = 3
"""max_receive_count of the source queue."""

QUEUES = ("q", "dlq")


class StoreMachine(RuleBasedStateMachine):
    """Subclasses set up ``self.engine`` and ``self.ids_in(queue)``."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = VirtualClock(START)
        self.engine = self.make_engine()
        self.engine.ensure_queue(QueueConfig("dlq", visibility_timeout=10))
        self.engine.ensure_queue(
            QueueConfig(
                "q", visibility_timeout=10, dead_letter_queue="dlq", max_receive_count=MAX_RECEIVES
            )
        )
        self.bodies = (f"m{i}" for i in itertools.count())
        self.sent: set[str] = set()
        self.deleted: set[str] = set()
        self.where: dict[str, str] = {}  # message id -> queue, as last seen
        self.deliveries: dict[str, int] = {}  # receives in the current queue
        self.current: dict[str, str] = {}  # message id -> current receipt handle
        self.hidden_until: dict[str, float] = {}  # message id -> end of its visibility timeout
        self.handles: list[tuple[str, str, str]] = []  # (queue, handle, message id)

    def make_engine(self) -> Any:
        raise NotImplementedError

    def ids_in(self, queue: str) -> set[str]:
        raise NotImplementedError

    # ------------------------------------------------------------------ rules
    @rule(
        queue=st.sampled_from(QUEUES),
        delays=st.lists(st.sampled_from([0, 0, 0, 1, 3]), min_size=1, max_size=4),
    )
    def send(self, queue: str, delays: list[int]) -> None:
        news = []
        for delay in delays:
            body = next(self.bodies)
            news.append(NewMessage(body, md5_hex(body), {}, delay, "test"))
        for mid in self.engine.send(queue, news):
            self.sent.add(mid)
            self.where[mid] = queue
            self.deliveries[mid] = 0

    @rule(
        queue=st.sampled_from(QUEUES),
        n=st.integers(1, 10),
        timeout=st.sampled_from([0.0, 1.0, 2.0, 10.0]),
    )
    def receive(self, queue: str, n: int, timeout: float) -> None:
        now = self.clock()
        self.sync_locations()
        messages = self.engine.receive(queue, n, timeout)
        assert len(messages) <= n
        assert [(m.sent_timestamp) for m in messages] == sorted(m.sent_timestamp for m in messages)
        for m in messages:
            assert m.queue == queue
            assert m.message_id not in self.deleted
            assert self.hidden_until.get(m.message_id, now) <= now, "delivered while in flight"
            self.sync_locations()
            assert self.where[m.message_id] == queue
            self.deliveries[m.message_id] += 1
            assert m.receive_count == self.deliveries[m.message_id]
            if queue == "q":
                assert m.receive_count <= MAX_RECEIVES
            assert m.visible_at == now + timeout
            self.current[m.message_id] = m.receipt_handle
            self.hidden_until[m.message_id] = now + timeout
            self.handles.append((queue, m.receipt_handle, m.message_id))

    @precondition(lambda self: self.handles)
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        picked = data.draw(st.lists(st.sampled_from(self.handles), min_size=1, max_size=4))
        by_queue: dict[str, list[tuple[str, str, str]]] = {}
        for entry in picked:
            by_queue.setdefault(entry[0], []).append(entry)
        for queue, entries in by_queue.items():
            self.sync_locations()
            expected = [
                self.current.get(mid) == handle and self.where.get(mid) == queue
                for _, handle, mid in entries
            ]
            result = self.engine.delete(queue, [h for _, h, _ in entries])
            assert result == expected
            for ok, (_, _, mid) in zip(result, entries, strict=True):
                if ok:
                    self.forget(mid)

    @precondition(lambda self: self.handles)
    @rule(data=st.data(), timeout=st.sampled_from([0.0, 1.0, 2.0, 20.0]))
    def change_visibility(self, data: st.DataObject, timeout: float) -> None:
        queue, handle, mid = data.draw(st.sampled_from(self.handles))
        now = self.clock()
        self.sync_locations()
        valid = (
            self.current.get(mid) == handle
            and self.where.get(mid) == queue
            and self.hidden_until[mid] > now
        )
        if valid:
            self.engine.change_visibility(queue, handle, timeout)
            self.hidden_until[mid] = now + timeout
        else:
            with pytest.raises(InvalidReceiptHandle):
                self.engine.change_visibility(queue, handle, timeout)

    @rule(to_source=st.booleans())
    def redrive(self, to_source: bool) -> None:
        self.sync_locations()
        in_dlq = self.ids_in("dlq")
        try:
            moved = self.engine.redrive("dlq", None if to_source else "q")
        except StoreError:
            assert to_source  # some message was sent straight to the DLQ
            assert self.ids_in("dlq") == in_dlq
            return
        assert sorted(moved) == ["q"] * len(in_dlq)
        for mid in in_dlq:
            self.where[mid] = "q"
            self.deliveries[mid] = 0
            self.current.pop(mid, None)
            self.hidden_until.pop(mid, None)

    @rule(queue=st.sampled_from(QUEUES))
    def purge(self, queue: str) -> None:
        self.sync_locations()
        held = self.ids_in(queue)
        assert self.engine.purge(queue) == len(held)
        for mid in held:
            self.forget(mid)

    @rule(seconds=st.sampled_from([0.5, 1.0, 2.0, 11.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    # ------------------------------------------------------------------ helpers
    def forget(self, mid: str) -> None:
        self.deleted.add(mid)
        self.where.pop(mid, None)
        self.current.pop(mid, None)
        self.hidden_until.pop(mid, None)

    def sync_locations(self) -> None:
        """Note messages the engine moved to the DLQ: a new life, no current handle."""
        for queue in QUEUES:
            for mid in self.ids_in(queue):
                if self.where[mid] != queue:
                    self.where[mid] = queue
                    self.deliveries[mid] = 0
                    self.current.pop(mid, None)
                    self.hidden_until.pop(mid, None)

    # ------------------------------------------------------------------ invariants
    @invariant()
    def every_message_is_in_exactly_one_place(self) -> None:
        in_q, in_dlq = self.ids_in("q"), self.ids_in("dlq")
        assert not in_q & in_dlq
        assert not (in_q | in_dlq) & self.deleted
        assert in_q | in_dlq | self.deleted == self.sent

    @invariant()
    def counts_add_up(self) -> None:
        for queue in QUEUES:
            counts = self.engine.counts(queue)
            assert counts.total == len(self.ids_in(queue))
            assert min(counts.visible, counts.in_flight, counts.delayed) >= 0


class MemoryMachine(StoreMachine):
    def make_engine(self) -> MemoryQueues:
        return MemoryQueues(self.clock, seed=0)

    def ids_in(self, queue: str) -> set[str]:
        ids: set[str] = self.engine.message_ids(queue)
        return ids


class SqliteMachine(StoreMachine):
    def make_engine(self) -> _Engine:
        self.tmp = tempfile.TemporaryDirectory()
        path = str(Path(self.tmp.name) / "machine.db")
        conn = _connect(path, busy_timeout=1.0, loop_side=False)
        _create_schema(conn, path)
        return _Engine(conn, self.clock)

    def ids_in(self, queue: str) -> set[str]:
        conn: sqlite3.Connection = self.engine.conn
        rows = conn.execute(
            "SELECT message_id FROM messages WHERE queue = (SELECT id FROM queues WHERE name = ?)",
            (queue,),
        )
        return {r[0] for r in rows}

    def teardown(self) -> None:
        self.engine.close()
        self.tmp.cleanup()


TestMemoryInvariants = MemoryMachine.TestCase
TestMemoryInvariants.settings = settings(
    max_examples=200,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

TestSqliteInvariants = SqliteMachine.TestCase
TestSqliteInvariants.settings = settings(
    max_examples=75,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
