"""The memory engine's simulator-facing methods: ``receive_records``, ``delete_records``
and ``send_receive_records``, which must act exactly as the calls they stand for."""

from __future__ import annotations

import itertools
import random
from functools import partial

import pytest

from sluicegate.core.config import QueueConfig
from sluicegate.core.types import QueueRecord
from sluicegate.store.base import NewMessage, md5_hex
from sluicegate.store.memory import MemoryQueues
from sluicegate.testing import VirtualClock

from .conftest import START

SIZE = 300


def message(delay: int = 0) -> NewMessage:
    return NewMessage("body", md5_hex("body"), {}, delay, "test")


def engine(clock: VirtualClock) -> MemoryQueues:
    ids = map(hex, itertools.count(1))
    e = MemoryQueues(clock, new_id=partial(next, ids))
    e.ensure_queue(QueueConfig("dlq", visibility_timeout=10))
    e.ensure_queue(
        QueueConfig("q", visibility_timeout=10, dead_letter_queue="dlq", max_receive_count=3)
    )
    return e


def fields(records: list[QueueRecord]) -> list[tuple[object, ...]]:
    return [
        (r.message_id, r.receipt_handle, r.size, r.visible_at, r.receive_count, r.payload)
        for r in records
    ]


def test_send_receive_records_claims_the_message_just_sent() -> None:
    # Given an empty queue
    clock = VirtualClock(START)
    e = engine(clock)
    # When a message is sent and received at once
    sent = message()
    records = e.send_receive_records("q", sent, 10, 30.0, SIZE)
    # Then it is in flight under the record's handle (carrying the message as sent, what
    # filter criteria read), and deleting the record deletes it
    assert fields(records) == [("0x1", "0x1#1#1", SIZE, START + 30.0, 1, sent)]
    counts = e.counts("q")
    assert (counts.visible, counts.in_flight, counts.delayed) == (0, 1, 0)
    assert e.delete_records("q", records) == 1
    assert e.message_ids("q") == set()


def test_send_receive_records_takes_older_visible_messages_first() -> None:
    # Given a visible message sent earlier
    clock = VirtualClock(START)
    e = engine(clock)
    (older,) = e.send("q", [message()])
    clock.advance(1.0)
    # When another is sent and received at once, one message at a time
    records = e.send_receive_records("q", message(), 1, 30.0, SIZE)
    # Then the older one is received, and the new one stays visible
    assert [r.message_id for r in records] == [older]
    assert e.counts("q").visible == 1


def test_delete_records_ignores_stale_records() -> None:
    # Given a message received, then received again after its visibility timeout
    clock = VirtualClock(START)
    e = engine(clock)
    first = e.send_receive_records("q", message(), 1, 5.0, SIZE)
    clock.advance(6.0)
    second = e.receive_records("q", 1, 5.0, SIZE)
    # When the first receive's record is deleted, nothing is; the second's deletes it
    assert e.delete_records("q", first) == 0
    assert e.delete_records("q", second) == 1
    assert e.message_ids("q") == set()


@pytest.mark.parametrize("seed", range(30))
def test_send_receive_records_acts_as_send_then_receive_records(seed: int) -> None:
    """Two engines run the same random operations; where one calls
    ``send_receive_records``, the other calls ``send`` then ``receive_records``. Every
    answer and every count must agree."""
    rng = random.Random(seed)
    clock = VirtualClock(START)
    fast, slow = engine(clock), engine(clock)
    held: list[QueueRecord] = []
    for _ in range(300):
        op = rng.random()
        if op < 0.35:
            max_messages = rng.choice([1, 1, 2, 10])
            timeout = rng.choice([1.0, 5.0, 10.0])
            delay = rng.choice([0, 0, 0, 0, 2])
            got = fast.send_receive_records("q", message(delay), max_messages, timeout, SIZE)
            slow.send("q", [message(delay)])
            want = slow.receive_records("q", max_messages, timeout, SIZE)
            assert fields(got) == fields(want)
            held.extend(got)
        elif op < 0.45:
            n = rng.randint(1, 3)
            assert fast.send("q", [message()] * n) == slow.send("q", [message()] * n)
        elif op < 0.55:
            max_messages = rng.choice([1, 10])
            got = fast.receive_records("q", max_messages, 5.0, SIZE)
            want = slow.receive_records("q", max_messages, 5.0, SIZE)
            assert fields(got) == fields(want)
            held.extend(got)
        elif op < 0.6:
            # full messages: sent and first-receive times, bodies, attributes, sender
            assert fast.receive("q", 10, 1.0) == slow.receive("q", 10, 1.0)
        elif op < 0.8 and held:
            picked = held.pop(rng.randrange(len(held)))
            twin = QueueRecord(picked.message_id, picked.receipt_handle, SIZE,
                               picked.visible_at, picked.receive_count)
            assert fast.delete_records("q", [picked]) == slow.delete_records("q", [twin])
        else:
            clock.advance(rng.choice([0.0, 0.5, 1.0, 3.0, 11.0]))
        for queue in ("q", "dlq"):
            assert fast.counts(queue) == slow.counts(queue)
            assert fast.message_ids(queue) == slow.message_ids(queue)
            assert fast.next_visible_at(queue) == slow.next_visible_at(queue)


def test_counted_ids_count_across_every_kind_of_send() -> None:
    # Given an engine counting its message ids
    clock = VirtualClock(START)
    e = MemoryQueues(clock, counted_ids=True)
    e.ensure_queue(QueueConfig("q", visibility_timeout=10))
    # When a message is sent and received at once, two are sent, one more is sent and
    # (the oldest visible) received at once, and one more is sent
    (record,) = e.send_receive_records("q", message(), 1, 30.0, SIZE)
    sent = e.send("q", [message(), message()])
    (oldest,) = e.send_receive_records("q", message(), 1, 30.0, SIZE)
    last = e.send("q", [message()])
    # Then their ids are hex(1), hex(2), ... in the order they were sent
    assert (record.message_id, record.receipt_handle) == ("0x1", "0x1#1#1")
    assert sent == ["0x2", "0x3"] and oldest.message_id == "0x2" and last == ["0x5"]
    assert e.message_ids("q") == {"0x1", "0x2", "0x3", "0x4", "0x5"}


def test_a_message_back_from_the_dead_letter_queue_is_held_once() -> None:
    # Given a message dead-lettered after three receives, whose first entry in its
    # queue's sent order is still there, then redriven back to that queue
    clock = VirtualClock(START)
    e = engine(clock)
    (sent,) = e.send("q", [message()])
    for _ in range(3):
        assert e.receive_records("q", 1, 10.0, SIZE)
        clock.advance(10.0)
    assert e.receive_records("q", 1, 10.0, SIZE) == []
    assert e.message_ids("dlq") == {sent}
    assert e.redrive("dlq", None) == ["q"]
    # Then the queue counts it once, shows it once, and delivers it once
    counts = e.counts("q")
    assert (counts.visible, counts.in_flight, counts.delayed) == (1, 0, 0)
    assert counts.oldest_age == 30.0
    assert [m.message_id for m in e.peek("q", 10)] == [sent]
    (again,) = e.receive_records("q", 10, 10.0, SIZE)
    assert (again.message_id, again.receive_count) == (sent, 1)
    # and once its retention period is over (counted from its first send), it is gone
    clock.advance(QueueConfig("q").retention_period - 30.0)
    assert e.counts("q").total == 0
    assert e.peek("q", 10) == []
    assert e.receive_records("q", 10, 10.0, SIZE) == []
    assert e.message_ids("q") == set()
