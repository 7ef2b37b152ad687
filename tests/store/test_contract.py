"""The store contract: every test here runs against every backend (see conftest.py).

Time moves only through the injected ``clock``, except in the long-poll tests, which wait
(briefly) in real time.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from sluicegate.core.config import QueueConfig
from sluicegate.errors import (
    BatchRequestError,
    InputError,
    InvalidReceiptHandle,
    MessageTooLarge,
    QueueNotFound,
    StoreError,
    StoreNotOpen,
)
from sluicegate.store import Message, QueueCounts, SendEntry, Store
from sluicegate.store.base import md5_hex
from sluicegate.testing import VirtualClock

from .conftest import START


async def make_queues(store: Store, *, max_receive_count: int = 3, **attrs: Any) -> None:
    """Queue ``q`` (visibility 30 s) with dead-letter queue ``dlq``."""
    await store.ensure_queue(QueueConfig("dlq"))
    await store.ensure_queue(
        QueueConfig("q", dead_letter_queue="dlq", max_receive_count=max_receive_count, **attrs)
    )


async def receive_all(store: Store, queue: str, **kwargs: Any) -> list[Message]:
    """Receive until the queue has nothing visible."""
    out: list[Message] = []
    while batch := await store.receive(queue, max_messages=10, **kwargs):
        out += batch
    return out


def counts(visible: int = 0, in_flight: int = 0, delayed: int = 0, **kw: Any) -> QueueCounts:
    return QueueCounts(visible, in_flight, delayed, kw.pop("oldest_age", 0.0), **kw)


# ---------------------------------------------------------------------- send, receive, delete
# ---------------------------------------------------------------------- lifecycle
NOT_OPEN_CALLS: list[tuple[str, Callable[[Store], Awaitable[object]]]] = [
    ("list_queues", lambda s: s.list_queues()),
    ("get_queue", lambda s: s.get_queue("q")),
    ("send", lambda s: s.send("q", "m")),
    ("receive", lambda s: s.receive("q", wait_time=0)),
    ("delete", lambda s: s.delete("q", "h")),
    ("counts", lambda s: s.counts("q")),
    ("put_record", lambda s: s.put_record("s", "k", b"d")),
    ("get_checkpoints", lambda s: s.get_checkpoints("s->f")),
    ("claim_lease", lambda s: s.claim_lease("l", "h", want=1, limit=1, ttl=5)),
    ("list_workers", lambda s: s.list_workers()),
]


@pytest.mark.parametrize("call", [c for _, c in NOT_OPEN_CALLS],
                         ids=[name for name, _ in NOT_OPEN_CALLS])
async def test_a_store_not_open_refuses_every_call(
    new_store: Callable[..., Store], backend: str,
    call: Callable[[Store], Awaitable[object]],
) -> None:
    # Given a store never opened, then the same store opened and closed
    store = new_store(backend)
    # Then each call raises StoreNotOpen, naming the state, before open and after close
    with pytest.raises(StoreNotOpen, match="not open"):
        await call(store)
    await store.open()
    await store.ensure_queue(QueueConfig("q"))
    await store.close()
    with pytest.raises(StoreNotOpen, match="not open"):
        await call(store)


async def test_a_closed_store_opened_again_works(
    new_store: Callable[..., Store], backend: str, tmp_path: Any
) -> None:
    # Given a store closed after a send (a durable one keeps it; memory keeps it too)
    store = new_store(backend)
    await store.open()
    await store.ensure_queue(QueueConfig("q"))
    await store.send("q", "kept")
    await store.close()
    await store.close()  # idempotent
    # When it is opened again, it serves calls and still holds the message
    await store.open()
    (msg,) = await store.receive("q", wait_time=0)
    assert msg.body == "kept"


async def test_send_receive_delete(store: Store, clock: VirtualClock) -> None:
    await store.ensure_queue(QueueConfig("q"))
    sent = await store.send("q", "hello", sender_id="tester")
    assert sent.md5_of_body == md5_hex("hello")

    clock.advance(2)
    (msg,) = await store.receive("q", max_messages=10)

    assert msg.message_id == sent.message_id
    assert msg.body == "hello"
    assert msg.md5_of_body == md5_hex("hello")
    assert msg.sender_id == "tester"
    assert msg.queue == "q"
    assert msg.receive_count == 1
    assert msg.sent_timestamp == START
    assert msg.first_receive_timestamp == START + 2
    assert msg.visible_at == START + 2 + 30
    assert await store.receive("q") == []
    assert await store.delete("q", msg.receipt_handle) is True
    assert (await store.counts("q")).total == 0


async def test_message_ids_and_handles_are_unique(store: Store) -> None:
    await store.ensure_queue(QueueConfig("q", visibility_timeout=0))
    results = await store.send_batch("q", [SendEntry(f"m{i}", id=str(i)) for i in range(10)])
    assert [r.id for r in results] == [str(i) for i in range(10)]
    assert len({r.message_id for r in results}) == 10
    handles = set()
    for _ in range(3):
        handles |= {m.receipt_handle for m in await store.receive("q", max_messages=10)}
    assert len(handles) == 30


@pytest.mark.parametrize(
    "entries",
    [[], [SendEntry("x")] * 11, [SendEntry("a", id="1"), SendEntry("b", id="1")]],
    ids=["empty", "eleven", "duplicate-ids"],
)
async def test_send_batch_rejects_bad_batches(store: Store, entries: list[SendEntry]) -> None:
    await store.ensure_queue(QueueConfig("q"))
    with pytest.raises(BatchRequestError):
        await store.send_batch("q", entries)
    assert (await store.counts("q")).total == 0


async def test_delete_batch_limits(store: Store) -> None:
    await store.ensure_queue(QueueConfig("q"))
    with pytest.raises(BatchRequestError):
        await store.delete_batch("q", [])
    with pytest.raises(BatchRequestError):
        await store.delete_batch("q", ["x"] * 11)


async def test_message_size_limit_counts_attributes(store: Store) -> None:
    await store.ensure_queue(QueueConfig("q"))
    limit = 262_144
    await store.send("q", "x" * limit)
    with pytest.raises(MessageTooLarge):
        await store.send("q", "x" * (limit + 1))
    # name "a" (1) + "String" (6) + value (1) = 8 bytes of attributes
    await store.send("q", "x" * (limit - 8), attributes={"a": "v"})
    with pytest.raises(MessageTooLarge):
        await store.send("q", "x" * (limit - 7), attributes={"a": "v"})
    with pytest.raises(MessageTooLarge):  # each fits, together they do not
        await store.send_batch("q", [SendEntry("x" * 200_000), SendEntry("y" * 100_000)])
    assert (await store.counts("q")).visible == 2


async def test_queue_max_message_size(store: Store) -> None:
    await store.ensure_queue(QueueConfig("q", max_message_size=1024))
    with pytest.raises(MessageTooLarge):
        await store.send("q", "é" * 513)  # 1,026 bytes in UTF-8


async def test_attributes_round_trip_normalised(store: Store) -> None:
    await store.ensure_queue(QueueConfig("q"))
    attributes = {
        "text": "hello",
        "int": 42,
        "float": 1.5,
        "raw": b"\x00\x01",
        "api": {"DataType": "Number.int", "StringValue": "7"},
        "event": {"dataType": "Binary", "binaryValue": base64.b64encode(b"z").decode()},
    }
    await store.send("q", "body", attributes=attributes)
    await store.send("q", "plain")
    first, second = await store.receive("q", max_messages=2)
    assert first.attributes == {
        "text": {"DataType": "String", "StringValue": "hello"},
        "int": {"DataType": "Number", "StringValue": "42"},
        "float": {"DataType": "Number", "StringValue": "1.5"},
        "raw": {"DataType": "Binary", "BinaryValue": "AAE="},
        "api": {"DataType": "Number.int", "StringValue": "7"},
        "event": {"DataType": "Binary", "BinaryValue": "eg=="},
    }
    assert second.attributes == {}
    with pytest.raises(InputError):
        await store.send("q", "x", attributes={"flag": True})


async def test_body_must_be_non_empty_str(store: Store) -> None:
    await store.ensure_queue(QueueConfig("q"))
    with pytest.raises(InputError):
        await store.send("q", "")
    with pytest.raises(InputError):
        await store.send("q", b"bytes")  # type: ignore[arg-type]


async def test_receive_validates_arguments(store: Store) -> None:
    await store.ensure_queue(QueueConfig("q"))
    for kwargs in (
        {"max_messages": 0},
        {"max_messages": 11},
        {"visibility_timeout": -1},
        {"wait_time": 21},
    ):
        with pytest.raises(InputError):
            await store.receive("q", **kwargs)


# ---------------------------------------------------------------------- delay and visibility
async def test_delay_seconds(store: Store, clock: VirtualClock) -> None:
    await store.ensure_queue(QueueConfig("q", delay_seconds=5))
    await store.send("q", "queue default")
    await store.send("q", "own delay", delay_seconds=10)
    await store.send("q", "no delay", delay_seconds=0)
    assert await store.counts("q") == counts(visible=1, delayed=2, oldest_age=0.0)

    assert [m.body for m in await store.receive("q", max_messages=10)] == ["no delay"]
    clock.advance(5)
    assert await store.counts("q") == counts(visible=1, in_flight=1, delayed=1, oldest_age=5.0)
    assert [m.body for m in await store.receive("q", max_messages=10)] == ["queue default"]
    clock.advance(4.9)
    assert await store.receive("q") == []
    clock.advance(0.1)
    assert [m.body for m in await store.receive("q")] == ["own delay"]


async def test_delay_seconds_is_validated(store: Store) -> None:
    await store.ensure_queue(QueueConfig("q"))
    with pytest.raises(InputError):
        await store.send("q", "x", delay_seconds=901)


async def test_visibility_timeout_reappearance(store: Store, clock: VirtualClock) -> None:
    await store.ensure_queue(QueueConfig("q", visibility_timeout=30))
    await store.send("q", "m")
    clock.advance(1)
    (first,) = await store.receive("q")
    clock.advance(29.9)
    assert await store.receive("q") == []
    clock.advance(0.1)
    (second,) = await store.receive("q", visibility_timeout=10)

    assert second.message_id == first.message_id
    assert second.receive_count == 2
    assert second.first_receive_timestamp == first.first_receive_timestamp == START + 1
    assert second.receipt_handle != first.receipt_handle
    # 31 s on (VirtualClock rounds each advance up to a whole step of ~1 us)
    assert clock() - START == pytest.approx(31, abs=1e-5)
    assert second.visible_at == clock() + 10


async def test_stale_handle_deletes_nothing(store: Store, clock: VirtualClock) -> None:
    await store.ensure_queue(QueueConfig("q", visibility_timeout=10))
    await store.send("q", "m")
    (first,) = await store.receive("q")
    clock.advance(10)
    (second,) = await store.receive("q")

    assert await store.delete("q", first.receipt_handle) is False
    assert (await store.counts("q")).in_flight == 1
    assert await store.delete("q", second.receipt_handle) is True
    assert await store.delete("q", second.receipt_handle) is False


async def test_delete_with_current_handle_after_timeout(store: Store, clock: VirtualClock) -> None:
    """As in SQS: a handle stays good until the message is received again."""
    await store.ensure_queue(QueueConfig("q", visibility_timeout=10))
    await store.send("q", "m")
    (msg,) = await store.receive("q")
    clock.advance(60)
    assert (await store.counts("q")).visible == 1
    assert await store.delete("q", msg.receipt_handle) is True
    assert await store.receive("q") == []


async def test_delete_batch_reports_each_handle(store: Store) -> None:
    await store.ensure_queue(QueueConfig("q"))
    await store.send_batch("q", [SendEntry("a"), SendEntry("b"), SendEntry("c")])
    a, b, c = await store.receive("q", max_messages=3)
    assert await store.delete("q", b.receipt_handle)
    result = await store.delete_batch("q", [a.receipt_handle, b.receipt_handle, c.receipt_handle])
    assert result == [True, False, True]
    assert (await store.counts("q")).total == 0


async def test_delete_many_takes_any_number(store: Store) -> None:
    await store.ensure_queue(QueueConfig("q"))
    for i in range(0, 1000, 10):
        await store.send_batch("q", [SendEntry(f"m{i + j}") for j in range(10)])
    handles = [m.receipt_handle for m in await receive_all(store, "q")]
    assert len(handles) == 1000
    assert await store.delete_many("q", handles[:5]) == [True] * 5
    assert await store.delete_many("q", handles) == [False] * 5 + [True] * 995
    assert await store.delete_many("q", []) == []
    assert (await store.counts("q")).total == 0


async def test_delete_many_across_receives_checks_each_handle(
    store: Store, clock: VirtualClock
) -> None:
    """Handles from several receives in one call: each is checked against its own receive,
    and one re-received in between is stale while its batch-mates are not."""
    # Given: a and b received together, c and d together; then a is received again
    await store.ensure_queue(QueueConfig("q", visibility_timeout=10))
    await store.send_batch("q", [SendEntry(x) for x in "abcd"])
    a1, b1 = await store.receive("q", max_messages=2)
    c1, d1 = await store.receive("q", max_messages=2, visibility_timeout=100)
    await store.change_visibility("q", a1.receipt_handle, 0)
    (a2,) = await store.receive("q")
    assert a2.message_id == a1.message_id

    # When: one call deletes with the handles of all three receives, interleaved
    handles = [c1, a1, b1, d1, a2, b1]
    result = await store.delete_many("q", [m.receipt_handle for m in handles])

    # Then: only the stale first handle of a fails; a repeated handle reports alike
    assert result == [True, False, True, True, True, True]
    assert (await store.counts("q")).total == 0


async def test_delete_many_with_a_repeated_current_handle(store: Store) -> None:
    await store.ensure_queue(QueueConfig("q"))
    await store.send_batch("q", [SendEntry("a"), SendEntry("b")])
    a, b = await store.receive("q", max_messages=2)
    handles = [a.receipt_handle, a.receipt_handle, b.receipt_handle]
    assert await store.delete_many("q", handles) == [True, True, True]
    assert (await store.counts("q")).total == 0


async def test_handle_from_before_a_redrive_is_stale(store: Store, clock: VirtualClock) -> None:
    """Back from its dead-letter queue, a message is received with the same receive count
    as in its first life; the handle of that first life must not delete it."""
    await make_queues(store, max_receive_count=1, visibility_timeout=10)
    await store.send("q", "m")
    (first,) = await store.receive("q")
    clock.advance(10)
    await store.receive("q")  # moves it to the DLQ
    assert await store.redrive("dlq") == 1
    (again,) = await store.receive("q")
    assert again.receive_count == first.receive_count == 1

    assert await store.delete("q", first.receipt_handle) is False
    with pytest.raises(InvalidReceiptHandle):
        await store.change_visibility("q", first.receipt_handle, 0)
    assert (await store.counts("q")).in_flight == 1
    assert await store.delete("q", again.receipt_handle) is True


@pytest.mark.parametrize("handle", ["", "garbage", "a#b#c#d", 42], ids=repr)
async def test_malformed_handle_raises(store: Store, handle: Any) -> None:
    await store.ensure_queue(QueueConfig("q"))
    await store.send("q", "m")
    (msg,) = await store.receive("q")
    with pytest.raises(InvalidReceiptHandle):
        await store.delete_batch("q", [msg.receipt_handle, handle])
    with pytest.raises(InvalidReceiptHandle):
        await store.change_visibility("q", handle, 5)
    assert (await store.counts("q")).in_flight == 1  # the batch deleted nothing


async def test_change_visibility(store: Store, clock: VirtualClock) -> None:
    await store.ensure_queue(QueueConfig("q", visibility_timeout=30))
    await store.send("q", "m")
    (msg,) = await store.receive("q")

    clock.advance(20)
    await store.change_visibility("q", msg.receipt_handle, 60)  # now 80 s from receive
    clock.advance(59)
    assert await store.receive("q") == []
    await store.change_visibility("q", msg.receipt_handle, 0)
    assert await store.counts("q") == counts(visible=1, oldest_age=79.0)
    (again,) = await store.receive("q")
    assert again.receive_count == 2

    with pytest.raises(InvalidReceiptHandle):  # stale: received again since
        await store.change_visibility("q", msg.receipt_handle, 10)
    await store.delete("q", again.receipt_handle)
    with pytest.raises(InvalidReceiptHandle):  # deleted
        await store.change_visibility("q", again.receipt_handle, 10)


async def test_change_visibility_needs_message_in_flight(store: Store, clock: VirtualClock) -> None:
    await store.ensure_queue(QueueConfig("q", visibility_timeout=10))
    await store.send("q", "m")
    (msg,) = await store.receive("q")
    clock.advance(10)  # visible again, not yet received
    with pytest.raises(InvalidReceiptHandle):
        await store.change_visibility("q", msg.receipt_handle, 30)
    with pytest.raises(InputError):
        await store.change_visibility("q", msg.receipt_handle, 43_201)


async def test_ordering_oldest_first(store: Store, clock: VirtualClock) -> None:
    await store.ensure_queue(QueueConfig("q", visibility_timeout=10))
    await store.send_batch("q", [SendEntry("a"), SendEntry("b")])
    clock.advance(1)
    await store.send("q", "c")
    (a,) = await store.receive("q")
    assert a.body == "a"
    clock.advance(20)  # "a" is visible again; it was sent before "d"
    await store.send("q", "d")
    await store.send("q", "e", delay_seconds=1)
    clock.advance(1)
    assert [m.body for m in await store.receive("q", max_messages=10)] == ["a", "b", "c", "d", "e"]


# ---------------------------------------------------------------------- dead letters
async def test_dead_letter_after_max_receive_count(store: Store, clock: VirtualClock) -> None:
    await make_queues(store, max_receive_count=3, visibility_timeout=10)
    sent = await store.send("q", "poison", attributes={"k": "v"})
    await store.send("q", "fine")

    deliveries = 0
    for _ in range(6):
        for msg in await store.receive("q", max_messages=10):
            if msg.body == "fine":
                await store.delete("q", msg.receipt_handle)
            else:
                deliveries += 1
                assert msg.receive_count == deliveries
        clock.advance(10)
    assert deliveries == 3
    assert await store.counts("q") == counts(dead_lettered=1)

    (dead,) = await store.receive("dlq")
    assert dead.message_id == sent.message_id
    assert dead.body == "poison"
    assert dead.md5_of_body == md5_hex("poison")
    assert dead.attributes == {"k": {"DataType": "String", "StringValue": "v"}}
    assert dead.sent_timestamp == START
    assert dead.receive_count == 1
    assert dead.first_receive_timestamp == clock()


async def test_dead_letter_moves_all_due_messages_at_next_receive(
    store: Store, clock: VirtualClock
) -> None:
    await make_queues(store, max_receive_count=1, visibility_timeout=10)
    await store.send_batch("q", [SendEntry(str(i)) for i in range(5)])
    assert len(await store.receive("q", max_messages=10)) == 5
    clock.advance(10)
    assert (await store.counts("q")).visible == 5  # moved by a receive, as SQS does
    assert await store.receive("q") == []
    assert await store.counts("q") == counts(dead_lettered=5)
    assert (await store.counts("dlq")).visible == 5


async def test_lowering_max_receive_count_applies_to_visible_messages(
    store: Store, clock: VirtualClock
) -> None:
    await make_queues(store, max_receive_count=5, visibility_timeout=10)
    await store.send("q", "m")
    await store.receive("q")
    clock.advance(10)
    await store.receive("q")
    clock.advance(10)
    assert (await store.counts("q")).visible == 1
    await make_queues(store, max_receive_count=2, visibility_timeout=10)
    assert await store.receive("q") == []
    assert (await store.counts("dlq")).visible == 1
    assert (await store.counts("q")).dead_lettered == 1


async def test_redrive_back_to_source(store: Store, clock: VirtualClock) -> None:
    await make_queues(store, max_receive_count=1, visibility_timeout=10)
    sent = await store.send("q", "m")
    await store.receive("q")
    clock.advance(10)
    await store.receive("q")  # moves it
    (dead,) = await store.receive("dlq")  # in flight in the DLQ: moves all the same

    assert await store.redrive("dlq") == 1
    assert (await store.counts("dlq")).total == 0
    with pytest.raises(InvalidReceiptHandle):
        await store.change_visibility("dlq", dead.receipt_handle, 1)
    (back,) = await store.receive("q")
    assert back.message_id == sent.message_id
    assert back.receive_count == 1
    assert back.sent_timestamp == START
    assert (await store.counts("q")).dead_lettered == 1


async def test_redrive_to_named_queue(store: Store, clock: VirtualClock) -> None:
    await make_queues(store, max_receive_count=1, visibility_timeout=10)
    await store.ensure_queue(QueueConfig("other"))
    await store.send("q", "m")
    await store.send("dlq", "sent straight to the DLQ")
    await store.receive("q")
    clock.advance(10)
    await store.receive("q")

    with pytest.raises(StoreError, match="no source"):
        await store.redrive("dlq")
    assert (await store.counts("dlq")).visible == 2  # nothing moved
    with pytest.raises(InputError):
        await store.redrive("dlq", to="dlq")
    assert await store.redrive("dlq", to="other") == 2
    assert sorted(m.body for m in await store.receive("other", max_messages=10)) == [
        "m",
        "sent straight to the DLQ",
    ]


async def test_redrive_to_missing_source_raises(store: Store, clock: VirtualClock) -> None:
    await make_queues(store, max_receive_count=1, visibility_timeout=10)
    await store.send("q", "m")
    await store.receive("q")
    clock.advance(10)
    await store.receive("q")
    await store.delete_queue("q")
    with pytest.raises(QueueNotFound, match="'q'"):
        await store.redrive("dlq")
    assert (await store.counts("dlq")).visible == 1


async def test_ensure_queue_needs_existing_dead_letter_queue(store: Store) -> None:
    with pytest.raises(QueueNotFound, match="'missing'"):
        await store.ensure_queue(QueueConfig("q", dead_letter_queue="missing", max_receive_count=2))
    with pytest.raises(QueueNotFound):
        await store.get_queue("q")


async def test_ensure_queue_creates_then_updates(store: Store) -> None:
    await store.ensure_queue(QueueConfig("q"))
    await store.send("q", "kept")
    await store.ensure_queue(QueueConfig("q", visibility_timeout=99, delay_seconds=3))
    assert await store.get_queue("q") == QueueConfig("q", visibility_timeout=99, delay_seconds=3)
    (msg,) = await store.receive("q")
    assert msg.body == "kept"
    assert [q.name for q in await store.list_queues()] == ["q"]


async def test_delete_queue(store: Store) -> None:
    await store.ensure_queue(QueueConfig("b"))
    await store.ensure_queue(QueueConfig("a"))
    await store.send("a", "m")
    assert [q.name for q in await store.list_queues()] == ["a", "b"]
    await store.delete_queue("a")
    assert [q.name for q in await store.list_queues()] == ["b"]
    await store.ensure_queue(QueueConfig("a"))
    assert (await store.counts("a")).total == 0


# ---------------------------------------------------------------------- retention, purge, counts
async def test_retention_expiry(store: Store, clock: VirtualClock) -> None:
    await store.ensure_queue(QueueConfig("q", retention_period=60, visibility_timeout=300))
    await store.send("q", "in flight")
    (inflight,) = await store.receive("q")
    await store.send("q", "visible")
    clock.advance(30)
    await store.send("q", "younger")
    clock.advance(30)  # the first two are 60 s old now
    assert await store.counts("q") == counts(visible=1, oldest_age=30.0)
    assert await store.delete("q", inflight.receipt_handle) is False
    assert [m.body for m in await store.receive("q", max_messages=10)] == ["younger"]
    clock.advance(300)
    assert await store.receive("q") == []
    assert (await store.counts("q")).total == 0


async def test_a_message_past_retention_is_not_dead_lettered(
    store: Store, clock: VirtualClock
) -> None:
    """Retention ends a message's life whatever else is due: one whose receives are used
    up but which is past the retention period when its visibility timeout ends is
    deleted, not moved to the dead-letter queue."""
    await store.ensure_queue(QueueConfig("dlq"))
    await store.ensure_queue(QueueConfig("q", retention_period=60, visibility_timeout=100,
                                         dead_letter_queue="dlq", max_receive_count=1))
    await store.send("q", "old")
    await store.receive("q")
    clock.advance(120)
    assert await store.receive("q") == []
    assert await store.counts("q") == counts()
    assert (await store.counts("dlq")).total == 0


async def test_purge(store: Store, clock: VirtualClock) -> None:
    await store.ensure_queue(QueueConfig("q"))
    await store.ensure_queue(QueueConfig("other"))
    await store.send_batch("q", [SendEntry("a"), SendEntry("b"), SendEntry("c", delay_seconds=60)])
    await store.send("other", "untouched")
    (msg,) = await store.receive("q")
    assert await store.purge("q") == 3
    assert (await store.counts("q")).total == 0
    assert await store.delete("q", msg.receipt_handle) is False
    assert await store.purge("q") == 0
    assert (await store.counts("other")).visible == 1


async def test_counts_and_oldest_age(store: Store, clock: VirtualClock) -> None:
    await store.ensure_queue(QueueConfig("q", visibility_timeout=30))
    assert await store.counts("q") == counts()
    await store.send("q", "delayed, oldest", delay_seconds=100)
    clock.advance(10)
    await store.send("q", "in flight")
    clock.advance(10)
    await store.send_batch("q", [SendEntry("v1"), SendEntry("v2")])
    (msg,) = await store.receive("q")
    assert msg.body == "in flight"
    clock.advance(5)

    got = await store.counts("q")
    assert got == counts(visible=2, in_flight=1, delayed=1, oldest_age=15.0)
    assert got.total == 4
    await store.delete("q", msg.receipt_handle)
    assert (await store.counts("q")).oldest_age == 5.0
    clock.advance(80)  # the delayed one is visible now
    assert await store.counts("q") == counts(visible=3, oldest_age=105.0)


async def test_next_visible_at(store: Store, clock: VirtualClock) -> None:
    await store.ensure_queue(QueueConfig("q", visibility_timeout=30))
    assert await store._next_visible_at("q") is None
    await store.send("q", "a", delay_seconds=50)
    await store.send("q", "b")
    await store.receive("q")
    assert await store._next_visible_at("q") == START + 30


# ---------------------------------------------------------------------- unknown queues
OPERATIONS: dict[str, Callable[[Store], Awaitable[object]]] = {
    "get_queue": lambda s: s.get_queue("nope"),
    "delete_queue": lambda s: s.delete_queue("nope"),
    "send": lambda s: s.send("nope", "m"),
    "send_batch": lambda s: s.send_batch("nope", [SendEntry("m")]),
    "receive": lambda s: s.receive("nope"),
    "receive_explicit": lambda s: s.receive("nope", visibility_timeout=5, wait_time=0),
    "receive_long_poll": lambda s: s.receive("nope", visibility_timeout=5, wait_time=1),
    "delete": lambda s: s.delete("nope", "00000000-0000-4000-8000-000000000000#1#1.ab"),
    "delete_memory_handle": lambda s: s.delete("nope", "m#1#1"),
    "delete_many": lambda s: s.delete_many("nope", ["00000000-0000-4000-8000-000000000000#1#1.a"]),
    "change_visibility": lambda s: s.change_visibility(
        "nope", "00000000-0000-4000-8000-000000000000#1#1.ab", 5
    ),
    "purge": lambda s: s.purge("nope"),
    "counts": lambda s: s.counts("nope"),
    "redrive": lambda s: s.redrive("nope"),
    "redrive_to": lambda s: s.redrive("q", to="nope"),
    "next_visible_at": lambda s: s._next_visible_at("nope"),
}


@pytest.mark.parametrize("operation", list(OPERATIONS))
async def test_unknown_queue_raises(store: Store, operation: str) -> None:
    await store.ensure_queue(QueueConfig("q"))
    with pytest.raises((QueueNotFound, InvalidReceiptHandle)) as info:
        await OPERATIONS[operation](store)
    if info.type is InvalidReceiptHandle:  # the other backend's handle format: malformed
        assert operation in ("delete", "delete_memory_handle", "delete_many", "change_visibility")
    else:
        assert "'nope'" in str(info.value)


async def test_unknown_queue_raises_with_well_formed_handle(store: Store) -> None:
    await store.ensure_queue(QueueConfig("q"))
    await store.send("q", "m")
    (msg,) = await store.receive("q")
    with pytest.raises(QueueNotFound):
        await store.delete("nope", msg.receipt_handle)
    with pytest.raises(QueueNotFound):
        await store.change_visibility("nope", msg.receipt_handle, 3)
    assert await store.delete("q", msg.receipt_handle) is True


# ---------------------------------------------------------------------- long polling
async def test_long_poll_returns_when_a_message_arrives(store: Store) -> None:
    store.clock = time.time
    await store.ensure_queue(QueueConfig("q"))

    async def send_later() -> None:
        await asyncio.sleep(0.1)
        await store.send("q", "late")

    started = time.monotonic()
    sender = asyncio.ensure_future(send_later())
    messages = await store.receive("q", wait_time=5)
    elapsed = time.monotonic() - started
    await sender
    assert [m.body for m in messages] == ["late"]
    assert 0.09 <= elapsed < 2.0  # far from the 5 s wait


async def test_long_poll_returns_empty_after_wait(store: Store) -> None:
    store.clock = time.time
    await store.ensure_queue(QueueConfig("q"))
    started = time.monotonic()
    assert await store.receive("q", wait_time=0.3) == []
    assert 0.29 <= time.monotonic() - started < 2.0


async def test_long_poll_wakes_when_a_message_becomes_visible(store: Store) -> None:
    store.clock = time.time
    await store.ensure_queue(QueueConfig("q"))
    await store.send("q", "m")
    await store.receive("q", visibility_timeout=0.2)
    started = time.monotonic()
    (msg,) = await store.receive("q", wait_time=5)
    assert msg.receive_count == 2
    assert 0.15 <= time.monotonic() - started < 2.0


async def test_concurrent_long_polls_all_served(store: Store) -> None:
    store.clock = time.time
    await store.ensure_queue(QueueConfig("q"))
    pollers = [asyncio.ensure_future(store.receive("q", wait_time=5)) for _ in range(3)]
    await asyncio.sleep(0.05)
    for i in range(3):
        await store.send("q", f"m{i}")
        await asyncio.sleep(0)
    started = time.monotonic()
    results = await asyncio.gather(*pollers)
    assert sorted(m.body for batch in results for m in batch) == ["m0", "m1", "m2"]
    assert time.monotonic() - started < 2.0


# ---------------------------------------------------------------------- peek
async def test_peek_shows_every_state_without_changing_anything(
    store: Store, clock: VirtualClock
) -> None:
    await make_queues(store, visibility_timeout=30)
    first = await store.send("q", "first", attributes={"k": "v"}, sender_id="tester")
    clock.advance(1)
    await store.send("q", "second")
    clock.advance(1)
    await store.send("q", "later", delay_seconds=60)
    clock.advance(1)
    await store.send("q", "third")
    (received,) = await store.receive("q")
    assert received.body == "first"
    clock.advance(2)
    before = await store.counts("q")

    peeked = await store.peek("q", limit=10)

    assert [(m.body, m.state) for m in peeked] == [
        ("first", "in_flight"), ("second", "visible"), ("later", "delayed"), ("third", "visible"),
    ]
    head = peeked[0]
    assert head.message_id == first.message_id
    assert head.md5_of_body == md5_hex("first")
    assert head.attributes == {"k": {"DataType": "String", "StringValue": "v"}}
    assert head.sender_id == "tester"
    assert head.sent_timestamp == START
    assert head.first_receive_timestamp == START + 3
    assert head.receive_count == 1
    assert head.visible_at == START + 3 + 30
    assert head.group_id is head.deduplication_id is head.sequence_number is None
    assert head.source_queue is None
    assert peeked[1].receive_count == 0 and peeked[1].first_receive_timestamp is None
    assert peeked[1].visible_at is None
    assert peeked[2].visible_at == START + 2 + 60
    # nothing moved: counts, the handle, receive counts and the order of later receives
    assert await store.peek("q", limit=10) == peeked
    assert await store.counts("q") == before
    await store.change_visibility("q", received.receipt_handle, 0)
    again = await store.receive("q", max_messages=10)
    assert [(m.body, m.receive_count) for m in again] == [
        ("first", 2), ("second", 1), ("third", 1),
    ]


async def test_peek_limit_keeps_sent_order(store: Store, clock: VirtualClock) -> None:
    await store.ensure_queue(QueueConfig("q"))
    for i in range(12):
        await store.send("q", f"m{i}")
        if i % 3 == 0:
            clock.advance(0.5)
    assert [m.body for m in await store.peek("q", limit=5)] == [f"m{i}" for i in range(5)]
    assert [m.body for m in await store.peek("q")] == [f"m{i}" for i in range(10)]
    assert len(await store.peek("q", limit=10_000)) == 12
    for limit in (0, 10_001, True, "3", 2.0):
        with pytest.raises(InputError):
            await store.peek("q", limit=limit)  # type: ignore[arg-type]
    with pytest.raises(QueueNotFound):
        await store.peek("nope")
    assert await store.peek("q", limit=1) != []  # nothing was taken


async def test_peek_shows_a_due_message_as_visible(store: Store, clock: VirtualClock) -> None:
    await store.ensure_queue(QueueConfig("q", visibility_timeout=10))
    await store.send("q", "delayed", delay_seconds=5)
    await store.send("q", "taken")
    await store.receive("q")
    clock.advance(10)
    assert [(m.body, m.state, m.visible_at) for m in await store.peek("q")] == [
        ("delayed", "visible", None), ("taken", "visible", None),
    ]


async def test_peek_leaves_out_messages_past_retention(store: Store, clock: VirtualClock) -> None:
    await store.ensure_queue(QueueConfig("q", retention_period=60))
    await store.send("q", "old")
    clock.advance(30)
    await store.send("q", "young")
    clock.advance(30)
    assert [m.body for m in await store.peek("q")] == ["young"]


async def test_peek_does_not_dead_letter_and_shows_a_dead_letter_queue(
    store: Store, clock: VirtualClock
) -> None:
    await make_queues(store, max_receive_count=1, visibility_timeout=10)
    sent = await store.send("q", "poison", attributes={"k": "v"})
    await store.receive("q")
    clock.advance(10)
    # due to move to the dead-letter queue: a peek shows it where it is and moves nothing
    (due,) = await store.peek("q")
    assert (due.state, due.receive_count) == ("visible", 1)
    assert await store.peek("dlq") == []
    assert (await store.counts("q")).dead_lettered == 0

    assert await store.receive("q") == []  # the receive moves it
    clock.advance(1)
    (dead,) = await store.peek("dlq")
    assert dead.message_id == sent.message_id
    assert dead.body == "poison"
    assert dead.attributes == {"k": {"DataType": "String", "StringValue": "v"}}
    assert dead.source_queue == "q"
    assert dead.sent_timestamp == START
    assert (dead.state, dead.receive_count, dead.first_receive_timestamp) == ("visible", 0, None)
    (got,) = await store.receive("dlq")
    assert got.message_id == sent.message_id and got.receive_count == 1


async def test_peek_fifo_keeps_groups_and_order(store: Store, clock: VirtualClock) -> None:
    await store.ensure_queue(QueueConfig("q.fifo", content_based_deduplication=True))
    results = []
    for body, group in (("a1", "a"), ("b1", "b"), ("a2", "a"), ("b2", "b")):
        results.append(await store.send("q.fifo", body, group_id=group))
        clock.advance(0.25)
    (taken,) = await store.receive("q.fifo", max_messages=1)
    assert taken.body == "a1"

    peeked = await store.peek("q.fifo")

    assert [(m.body, m.group_id, m.state) for m in peeked] == [
        ("a1", "a", "in_flight"), ("b1", "b", "visible"), ("a2", "a", "visible"),
        ("b2", "b", "visible"),
    ]
    assert [m.sequence_number for m in peeked] == [r.sequence_number for r in results]
    assert peeked[0].deduplication_id == taken.deduplication_id is not None
    assert [m.message_id for m in peeked] == [r.message_id for r in results]
    # group a stays held: the next receive gets b's messages only, in order
    assert [m.body for m in await store.receive("q.fifo", max_messages=10)] == ["b1", "b2"]
    assert await store.delete("q.fifo", taken.receipt_handle) is True
    assert [m.body for m in await store.receive("q.fifo", max_messages=10)] == ["a2"]
