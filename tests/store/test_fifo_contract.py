"""The FIFO part of the store contract, run against every backend (see conftest.py).

FIFO queues (names ending in ``.fifo``): per-group order, one group's messages hidden
while any of them is in flight, deduplication for 5 minutes, dead-lettering and redrive
that keep group order.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from sluicegate.core.config import QueueConfig
from sluicegate.errors import InputError
from sluicegate.store import Message, SendEntry, Store
from sluicegate.store.base import DEDUPLICATION_WINDOW
from sluicegate.testing import VirtualClock


async def fifo(store: Store, name: str = "q.fifo", **attrs: Any) -> None:
    attrs.setdefault("content_based_deduplication", True)
    await store.ensure_queue(QueueConfig(name, **attrs))


async def fifo_with_dlq(store: Store, max_receive_count: int = 2) -> None:
    await store.ensure_queue(QueueConfig("dlq.fifo", content_based_deduplication=True))
    await fifo(store, dead_letter_queue="dlq.fifo", max_receive_count=max_receive_count)


def bodies(messages: list[Message]) -> list[str]:
    return [m.body for m in messages]


async def send_groups(store: Store, spec: str, queue: str = "q.fifo") -> None:
    """``spec`` like ``"a1 b1 a2"``: body ``a1`` in group ``a`` and so on, in that order."""
    for body in spec.split():
        await store.send(queue, body, group_id=body[0])


async def test_order_within_a_group_and_groups_in_one_receive(store: Store) -> None:
    await fifo(store)
    await send_groups(store, "a1 b1 a2 b2 a3 c1")
    got = await store.receive("q.fifo", max_messages=10)
    assert sorted(bodies(got)) == ["a1", "a2", "a3", "b1", "b2", "c1"]
    for group in "abc":
        mine = [m.body for m in got if m.group_id == group]
        assert mine == sorted(mine)
    assert all(m.group_id == m.body[0] for m in got)


async def test_a_receive_fills_group_by_group_oldest_group_first(store: Store) -> None:
    """SQS returns as many messages of one group as it can: a batch takes the whole of
    the group whose oldest message is oldest, then the next group, and so on."""
    await fifo(store)
    await send_groups(store, "a1 b1 a2 c1 b2 a3 c2")
    assert bodies(await store.receive("q.fifo", max_messages=4)) == ["a1", "a2", "a3", "b1"]
    assert bodies(await store.receive("q.fifo", max_messages=10)) == ["c1", "c2"]


async def test_an_expired_message_in_flight_no_longer_holds_its_group(
    store: Store, clock: VirtualClock
) -> None:
    """A message past the retention period is gone, in flight or not: its group's next
    message can be received before the old one's visibility timeout ends."""
    await fifo(store, retention_period=60, visibility_timeout=300)
    await send_groups(store, "a1")
    (old,) = await store.receive("q.fifo")
    clock.advance(30)
    await send_groups(store, "a2")
    clock.advance(31)  # a1 is 61 s old, within its visibility timeout
    assert bodies(await store.receive("q.fifo", max_messages=10)) == ["a2"]
    assert await store.delete("q.fifo", old.receipt_handle) is False


async def test_a_group_in_flight_is_hidden(store: Store, clock: VirtualClock) -> None:
    await fifo(store)
    await send_groups(store, "a1 a2 b1")
    (first,) = await store.receive("q.fifo", max_messages=1)
    assert first.body == "a1"
    # a2 is visible but its group is in flight: only b1 can be received
    (second,) = await store.receive("q.fifo", max_messages=10)
    assert second.body == "b1"
    assert await store.receive("q.fifo", max_messages=10) == []
    counts = await store.counts("q.fifo")
    assert (counts.visible, counts.in_flight) == (1, 2)
    assert await store.delete("q.fifo", first.receipt_handle)
    (third,) = await store.receive("q.fifo", max_messages=10)
    assert third.body == "a2"


async def test_returned_messages_come_back_first_in_order(store: Store, clock: VirtualClock) -> None:
    await fifo(store, visibility_timeout=30)
    await send_groups(store, "a1 a2 a3 a4")
    got = await store.receive("q.fifo", max_messages=3)
    assert bodies(got) == ["a1", "a2", "a3"]
    assert await store.delete("q.fifo", got[0].receipt_handle)  # a1 done, a2 a3 not
    clock.advance(31)
    again = await store.receive("q.fifo", max_messages=10)
    assert bodies(again) == ["a2", "a3", "a4"]
    assert [m.receive_count for m in again] == [2, 2, 1]


async def test_sequence_numbers_increase(store: Store) -> None:
    await fifo(store)
    results = [await store.send("q.fifo", f"m{i}", group_id="g") for i in range(5)]
    numbers = [int(r.sequence_number) for r in results]
    assert numbers == sorted(numbers) and len(set(numbers)) == 5
    got = await store.receive("q.fifo", max_messages=10)
    assert [m.sequence_number for m in got] == [r.sequence_number for r in results]


async def test_standard_queues_have_no_sequence_numbers(store: Store) -> None:
    await store.ensure_queue(QueueConfig("std"))
    result = await store.send("std", "x")
    assert result.sequence_number is None and result.duplicate is False
    (msg,) = await store.receive("std")
    assert msg.group_id is None and msg.sequence_number is None


async def test_content_based_deduplication(store: Store, clock: VirtualClock) -> None:
    await fifo(store)
    first = await store.send("q.fifo", "same", group_id="g")
    clock.advance(DEDUPLICATION_WINDOW - 1)
    again = await store.send("q.fifo", "same", group_id="other")
    assert again.duplicate and not first.duplicate
    assert again.message_id == first.message_id
    assert again.sequence_number == first.sequence_number
    assert (await store.counts("q.fifo")).visible == 1
    (msg,) = await store.receive("q.fifo", max_messages=10)
    assert msg.deduplication_id == hashlib.sha256(b"same").hexdigest()
    assert await store.delete("q.fifo", msg.receipt_handle)
    # still a duplicate after the delete, until the window from the first send ends
    assert (await store.send("q.fifo", "same", group_id="g")).duplicate
    clock.advance(1)
    fresh = await store.send("q.fifo", "same", group_id="g")
    assert not fresh.duplicate and fresh.message_id != first.message_id
    assert bodies(await store.receive("q.fifo", max_messages=10)) == ["same"]


async def test_explicit_deduplication_id_wins(store: Store) -> None:
    await fifo(store)
    await store.send("q.fifo", "one", group_id="g", deduplication_id="k")
    assert (await store.send("q.fifo", "two", group_id="g", deduplication_id="k")).duplicate
    assert not (await store.send("q.fifo", "one", group_id="g", deduplication_id="k2")).duplicate
    assert (await store.counts("q.fifo")).visible == 2


async def test_duplicates_within_one_batch(store: Store) -> None:
    await fifo(store)
    results = await store.send_batch(
        "q.fifo",
        [
            SendEntry("x", group_id="g", id="1"),
            SendEntry("x", group_id="g", id="2"),
            SendEntry("y", group_id="g", id="3"),
        ],
    )
    assert [r.duplicate for r in results] == [False, True, False]
    assert results[0].message_id == results[1].message_id
    assert bodies(await store.receive("q.fifo", max_messages=10)) == ["x", "y"]


@pytest.mark.parametrize(
    "queue, kwargs, match",
    [
        ("q.fifo", {}, "group_id is required"),
        ("q.fifo", {"group_id": ""}, "group_id"),
        ("q.fifo", {"group_id": "x" * 129}, "group_id"),
        ("q.fifo", {"group_id": "bad group"}, "group_id"),
        ("q.fifo", {"group_id": "g", "delay_seconds": 5}, "delay_seconds"),
        ("q.fifo", {"group_id": "g", "deduplication_id": "y" * 129}, "deduplication_id"),
        ("std", {"group_id": "g"}, "only for FIFO"),
        ("std", {"deduplication_id": "d"}, "only for FIFO"),
        ("strict.fifo", {"group_id": "g"}, "deduplication_id is required"),
    ],
)
async def test_bad_fifo_sends_are_refused(
    store: Store, queue: str, kwargs: dict[str, Any], match: str
) -> None:
    await fifo(store)
    await fifo(store, "strict.fifo", content_based_deduplication=False)
    await store.ensure_queue(QueueConfig("std"))
    with pytest.raises(InputError, match=match):
        await store.send(queue, "body", **kwargs)
    assert (await store.counts(queue)).total == 0


async def test_dead_letter_keeps_group_order(store: Store, clock: VirtualClock) -> None:
    await fifo_with_dlq(store, max_receive_count=2)
    await send_groups(store, "a1 a2 b1")
    for _ in range(2):  # received twice, never deleted
        got = await store.receive("q.fifo", max_messages=10)
        assert sorted(bodies(got)) == ["a1", "a2", "b1"]
        clock.advance(31)
    assert await store.receive("q.fifo", max_messages=10) == []
    assert (await store.counts("q.fifo")).dead_lettered == 3
    moved = await store.receive("dlq.fifo", max_messages=10)
    assert [m.body for m in moved if m.group_id == "a"] == ["a1", "a2"]
    assert {m.group_id for m in moved} == {"a", "b"}


async def test_a_dead_lettered_head_unblocks_its_group(store: Store, clock: VirtualClock) -> None:
    await fifo_with_dlq(store, max_receive_count=1)
    await send_groups(store, "a1")
    (first,) = await store.receive("q.fifo", max_messages=10)
    assert first.body == "a1"
    await send_groups(store, "a2")
    clock.advance(31)
    (a2,) = await store.receive("q.fifo", max_messages=10)
    assert a2.body == "a2"
    assert bodies(await store.receive("dlq.fifo", max_messages=10)) == ["a1"]


async def test_redrive_keeps_group_order(store: Store, clock: VirtualClock) -> None:
    await fifo_with_dlq(store, max_receive_count=1)
    await send_groups(store, "a1 a2 a3 b1")
    await store.receive("q.fifo", max_messages=10)
    clock.advance(31)
    assert await store.receive("q.fifo", max_messages=10) == []
    assert await store.redrive("dlq.fifo") == 4
    got = await store.receive("q.fifo", max_messages=10)
    assert [m.body for m in got if m.group_id == "a"] == ["a1", "a2", "a3"]
    assert all(m.receive_count == 1 for m in got)


async def test_counts_report_active_groups(store: Store) -> None:
    await fifo(store)
    await send_groups(store, "a1 a2 b1 c1")
    assert (await store.counts("q.fifo")).active_groups == 3
    (first,) = await store.receive("q.fifo", max_messages=1)
    counts = await store.counts("q.fifo")
    assert (counts.active_groups, counts.groups_in_flight) == (3, 1)
    got = await store.receive("q.fifo", max_messages=10)
    for m in [first, *got]:
        await store.delete("q.fifo", m.receipt_handle)
    assert bodies(got) in (["b1", "c1"], ["c1", "b1"])
    counts = await store.counts("q.fifo")
    assert (counts.active_groups, counts.groups_in_flight) == (1, 0)  # a2 is left
    await store.ensure_queue(QueueConfig("std"))
    await store.send("std", "x")
    assert (await store.counts("std")).active_groups == 0


async def test_counts_follow_timeouts_and_retention_without_a_receive(
    store: Store, clock: VirtualClock
) -> None:
    """A group whose message's visibility timeout ended is no longer in flight, and one
    whose messages are all past retention is no longer active, before any receive moves
    them (the counts change no state)."""
    await fifo(store, retention_period=100, visibility_timeout=30)
    await send_groups(store, "a1 b1")
    clock.advance(50)
    await send_groups(store, "c1")
    await store.receive("q.fifo", max_messages=10)
    counts = await store.counts("q.fifo")
    assert (counts.active_groups, counts.groups_in_flight) == (3, 3)
    clock.advance(31)  # every visibility timeout is over
    counts = await store.counts("q.fifo")
    assert (counts.visible, counts.in_flight) == (3, 0)
    assert (counts.active_groups, counts.groups_in_flight) == (3, 0)
    (c1,) = [m for m in await store.receive("q.fifo", max_messages=10) if m.group_id == "c"]
    clock.advance(20)  # a1 and b1 are past retention (101 s old), c1 is in flight
    counts = await store.counts("q.fifo")
    assert (counts.visible, counts.in_flight) == (0, 1)
    assert (counts.active_groups, counts.groups_in_flight) == (1, 1)
    assert await store.delete("q.fifo", c1.receipt_handle)


async def test_purge_clears_groups(store: Store) -> None:
    await fifo(store)
    await send_groups(store, "a1 b1")
    await store.receive("q.fifo", max_messages=1)
    assert await store.purge("q.fifo") == 2
    assert (await store.counts("q.fifo")).active_groups == 0
    await send_groups(store, "a2")
    assert bodies(await store.receive("q.fifo", max_messages=10)) == ["a2"]


async def test_fifo_topic_fans_out_keeping_group_and_deduplication(store: Store) -> None:
    from sluicegate.core.config import TopicConfig

    await fifo(store, "a.fifo", content_based_deduplication=False)
    await fifo(store, "b.fifo")
    topic = TopicConfig("t.fifo", ("a.fifo", "b.fifo"), content_based_deduplication=True)
    first = await store.publish(topic, "hello", group_id="g")
    again = await store.publish(topic, "hello", group_id="g")
    assert set(first) == {"a.fifo", "b.fifo"}
    assert all(r.duplicate for r in again.values())
    for queue in ("a.fifo", "b.fifo"):
        (msg,) = await store.receive(queue, max_messages=10)
        assert (msg.body, msg.group_id) == ("hello", "g")
        assert msg.deduplication_id == hashlib.sha256(b"hello").hexdigest()
    with pytest.raises(InputError, match="group_id is required"):
        await store.publish(topic, "x")


async def test_topic_checks_every_queue_before_sending(store: Store) -> None:
    from sluicegate.core.config import TopicConfig
    from sluicegate.errors import QueueNotFound

    await store.ensure_queue(QueueConfig("a"))
    topic = TopicConfig("t", ("a", "missing"))
    with pytest.raises(QueueNotFound):
        await store.publish(topic, "x")
    assert (await store.counts("a")).total == 0
    with pytest.raises(InputError, match="only for FIFO topics"):
        await store.publish(TopicConfig("t2", ("a",)), "x", group_id="g")
    assert set(await store.publish(TopicConfig("t3", ("a",)), "x")) == {"a"}
