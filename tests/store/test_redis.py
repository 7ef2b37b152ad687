"""What only the Redis store has to show: URLs, an unreachable or restarted server, several
store objects (as several processes would hold) on one server, and key prefixes.

Every test talks to a real redis-server started by the fixtures in ``tests/conftest.py``;
time moves only through the injected clock, except where a test says otherwise.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from redis_server import RedisServer, free_port
from sluicegate.cli import main
from sluicegate.core.config import QueueConfig
from sluicegate.core.streams import StreamConfig
from sluicegate.errors import InputError, StoreUnavailable
from sluicegate.store import STORE_SCHEMES, RedisStore, SendEntry, Store, open_store
from sluicegate.store.base import Message
from sluicegate.testing import VirtualClock

from .conftest import START

NewStore = Callable[..., Store]


# ---------------------------------------------------------------------- URLs and opening
@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6390/3", "redis://localhost", "REDIS://h:1/0", "rediss://h:2/1"]
)
def test_redis_urls_make_redis_stores(url: str) -> None:
    clock = VirtualClock(START)
    store = open_store(url, clock=clock)
    assert isinstance(store, RedisStore)
    assert store.url == url and store.clock is clock
    assert store.prefix == "sluicegate:"
    assert {"redis", "rediss"} <= set(STORE_SCHEMES)


@pytest.mark.parametrize(
    "url", ["redis://", "redis://h/x", "redis://h:port/0", "redis://h/0?x=1", "redis://h/0/1"]
)
def test_bad_redis_urls_name_the_url(url: str) -> None:
    with pytest.raises(InputError) as info:
        open_store(url)
    assert repr(url) in str(info.value)


def test_prefix_must_not_hold_hash_tag_braces() -> None:
    with pytest.raises(InputError, match="prefix"):
        RedisStore("redis://localhost/0", prefix="a{b}:")


async def test_unreachable_server_is_one_line_naming_the_url() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    store = open_store(url)
    with pytest.raises(StoreUnavailable) as info:
        await store.open()
    message = str(info.value)
    assert url in message and "\n" not in message
    await store.close()


def test_cli_reports_an_unreachable_server_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    assert main(["queues", "--store", url]) != 0
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and url in lines[0]
    assert "Traceback" not in captured.err


# ---------------------------------------------------------------------- restarts
async def test_acknowledged_sends_survive_a_restart_and_the_store_reconnects(
    own_redis: RedisServer, new_store: NewStore, clock: VirtualClock
) -> None:
    # Given: a queue with messages sent (acknowledged) and one in flight
    store = new_store("redis", url=own_redis.url)
    await store.open()
    await store.ensure_queue(QueueConfig("q", visibility_timeout=30))
    await store.send_batch("q", [SendEntry(f"m{i}") for i in range(5)])
    (first,) = await store.receive("q", max_messages=1)

    # When: the server goes away, calls fail as unavailable...
    own_redis.stop()
    with pytest.raises(StoreUnavailable) as info:
        await store.receive("q", max_messages=10)
    assert own_redis.url in str(info.value)
    # ...and once it is back, the same store object works again
    own_redis.start()

    # Then: everything acknowledged is there, the in-flight message and its handle too
    counts = await store.counts("q")
    assert (counts.visible, counts.in_flight) == (4, 1)
    assert await store.delete("q", first.receipt_handle) is True
    got = await store.receive("q", max_messages=10)
    assert sorted(m.body for m in got) == ["m1", "m2", "m3", "m4"]
    await store.send("q", "after the restart")
    assert [m.body for m in await store.receive("q")] == ["after the restart"]


async def test_scripts_are_reloaded_after_a_restart_that_lost_them(
    own_redis: RedisServer, new_store: NewStore
) -> None:
    store = new_store("redis", url=own_redis.url)
    await store.open()
    await store.ensure_queue(QueueConfig("q"))
    own_redis.restart(kill=True)  # the script cache is gone, the data is in the AOF
    # the pooled connection died with the server: at most the first call fails
    try:
        await store.counts("q")
    except StoreUnavailable:
        pass
    await store.send("q", "m")
    assert (await store.counts("q")).visible == 1


async def test_data_outlives_the_store_object(new_store: NewStore, clock: VirtualClock) -> None:
    first = new_store("redis")
    await first.open()
    await first.ensure_queue(QueueConfig("q"))
    await first.ensure_stream(StreamConfig("s"))
    await first.send("q", "kept")
    put = await first.put_record("s", "k", b"record")
    await first.set_checkpoints("s->f", {0: put.sequence_number})
    await first.close()

    again = new_store("redis")
    await again.open()
    assert [m.body for m in await again.receive("q")] == ["kept"]
    assert [r.data for r in await again.get_records("s", 0)] == [b"record"]
    assert await again.get_checkpoints("s->f") == {0: put.sequence_number}


# ---------------------------------------------------------------------- several stores
async def test_two_stores_never_claim_the_same_message(new_store: NewStore) -> None:
    # Given: two store objects on one server (as two processes would hold), 600 messages
    a, b = new_store("redis"), new_store("redis")
    await a.open()
    await b.open()
    await a.ensure_queue(QueueConfig("q", visibility_timeout=300))
    for i in range(0, 600, 10):
        await a.send_batch("q", [SendEntry(f"m{i + j}") for j in range(10)])

    # When: eight pollers on each store receive concurrently until the queue is empty
    received: list[Message] = []

    async def poll(store: Store, many: bool) -> None:
        while True:
            if many:
                got = await store.receive_many(
                    "q", max_messages=7, visibility_timeout=300, wait_time=0
                )
            else:
                got = await store.receive("q", max_messages=3)
            if not got:
                return
            received.extend(got)

    await asyncio.gather(*(poll(s, i % 2 == 0) for i in range(8) for s in (a, b)))

    # Then: every message was delivered exactly once
    bodies = [m.body for m in received]
    assert len(bodies) == 600 and set(bodies) == {f"m{i}" for i in range(600)}
    assert all(m.receive_count == 1 for m in received)
    assert await a.delete_many("q", [m.receipt_handle for m in received]) == [True] * 600
    assert (await b.counts("q")).total == 0


async def test_fifo_groups_are_exclusive_across_stores(new_store: NewStore) -> None:
    # Given: a FIFO queue with 5 groups of 12 messages each, and two stores
    a, b = new_store("redis"), new_store("redis")
    await a.open()
    await b.open()
    await a.ensure_queue(QueueConfig("q.fifo", content_based_deduplication=True))
    groups = "vwxyz"
    for n in range(12):
        await a.send_batch(
            "q.fifo", [SendEntry(f"{g}{n:02d}", group_id=g) for g in groups]
        )

    # When: pollers on both stores receive and delete concurrently
    holder: dict[str, int] = {}
    seen: dict[str, list[str]] = {g: [] for g in groups}

    async def poll(store: Store, me: int) -> None:
        while True:
            got = await store.receive("q.fifo", max_messages=4)
            if not got:
                if (await store.counts("q.fifo")).total == 0:
                    return
                await asyncio.sleep(0)
                continue
            mine = {m.group_id for m in got}
            for group in mine:
                assert group is not None
                # Then: no group is given out while another poller holds it
                assert group not in holder, f"group {group} given to {me} while held"
                holder[group] = me
            for m in got:
                seen[m.group_id or ""].append(m.body)
            for group in mine:
                del holder[group or ""]
            assert all(await store.delete_batch("q.fifo", [m.receipt_handle for m in got]))

    await asyncio.gather(*(poll(s, i) for i, s in enumerate((a, b, a, b))))

    # And: each group was delivered once, in order
    for g in groups:
        assert seen[g] == [f"{g}{n:02d}" for n in range(12)]


async def test_a_send_from_another_store_wakes_a_long_poll(new_store: NewStore) -> None:
    """Real time: the poller waits up to 5 s, and must return well before."""
    a, b = new_store("redis", clock=time.time), new_store("redis", clock=time.time)
    await a.open()
    await b.open()
    await a.ensure_queue(QueueConfig("q"))
    started = time.monotonic()
    poller = asyncio.ensure_future(b.receive("q", wait_time=5))
    await asyncio.sleep(0)
    await a.send("q", "from a")
    assert [m.body for m in await poller] == ["from a"]
    assert time.monotonic() - started < 1.0


async def test_stale_cached_attributes_are_refreshed_before_a_send(
    new_store: NewStore, clock: VirtualClock
) -> None:
    # Given: store a knows queue q with no delay; store b then gives it a delay of 60 s
    a, b = new_store("redis"), new_store("redis")
    await a.open()
    await b.open()
    await a.ensure_queue(QueueConfig("q"))
    await a.send("q", "before")
    await b.ensure_queue(QueueConfig("q", delay_seconds=60, max_message_size=1024))

    # When: a sends again
    await a.send("q", "after")

    # Then: a's send used the new attributes
    assert (await a.counts("q")).delayed == 1
    with pytest.raises(Exception, match="1,024"):
        await a.send("q", "x" * 2000)


async def test_key_prefixes_keep_stores_apart(new_store: NewStore) -> None:
    a, b = new_store("redis", prefix="app-a:"), new_store("redis", prefix="app-b:")
    default = new_store("redis")
    for store in (a, b, default):
        await store.open()
    await a.ensure_queue(QueueConfig("q"))
    await b.ensure_queue(QueueConfig("q", visibility_timeout=5))
    await a.ensure_stream(StreamConfig("s"))
    await a.send("q", "for a")
    await a.set_checkpoints("s->f", {0: 3})

    assert await default.list_queues() == [] and await default.list_streams() == []
    assert (await b.get_queue("q")).visibility_timeout == 5
    assert await b.receive("q") == []
    assert await b.get_checkpoints("s->f") == {}
    await b.delete_queue("q")
    assert [m.body for m in await a.receive("q")] == ["for a"]


async def test_keys_carry_the_prefix_and_the_queue_hash_tag(
    new_store: NewStore, redis_url: str
) -> None:
    store = new_store("redis", prefix="pfx:")
    await store.open()
    await store.ensure_queue(QueueConfig("orders"))
    await store.send("orders", "m")
    from redis.asyncio import Redis

    client: Any = Redis.from_url(redis_url)
    try:
        keys = sorted(k.decode() for k in await client.keys("*"))
    finally:
        await client.aclose()
    assert keys and all(k.startswith("pfx:") for k in keys)
    queue_keys = [k for k in keys if k != "pfx:queues"]
    assert all(k.startswith("pfx:{q:orders}:") for k in queue_keys)


# ---------------------------------------------------------------------- time and precision
async def test_fractional_times_are_kept_exactly(new_store: NewStore) -> None:
    clock = VirtualClock(START + 0.123456789)
    store = new_store("redis", clock=clock)
    await store.open()
    await store.ensure_queue(QueueConfig("q"))
    sent_at = clock()
    await store.send("q", "m")
    clock.advance(0.1)
    received_at = clock()
    (msg,) = await store.receive("q", visibility_timeout=0.7)
    assert msg.sent_timestamp == sent_at
    assert msg.first_receive_timestamp == received_at
    assert msg.visible_at == received_at + 0.7
    # A microsecond before the visibility timeout ends (finer than VirtualClock's steps:
    # the store reads a fixed instant instead), then at its very end.
    store.clock = lambda: msg.visible_at - 1e-6
    assert await store.receive("q") == []
    assert await store._next_visible_at("q") == msg.visible_at
    store.clock = lambda: msg.visible_at
    (again,) = await store.receive("q")
    assert again.receive_count == 2 and again.first_receive_timestamp == received_at


async def test_stream_arrivals_never_go_back_within_a_shard(
    new_store: NewStore, clock: VirtualClock
) -> None:
    store = new_store("redis")
    await store.open()
    await store.ensure_stream(StreamConfig("s"))
    await store.put_record("s", "k", "first")
    store.clock = lambda: START - 5  # the clock steps back (a VirtualClock never does)
    await store.put_record("s", "k", "second")
    first, second = await store.get_records("s", 0)
    assert first.approximate_arrival == second.approximate_arrival == START
    assert [r.data for r in await store.get_records("s", 0, at_timestamp=START)] == [
        b"first", b"second"
    ]


# ---------------------------------------------------------------------- big batches
async def test_thousands_of_handles_in_one_delete(new_store: NewStore) -> None:
    """Beyond what one Lua ``unpack`` takes: the script works through them in slices."""
    store = new_store("redis")
    await store.open()
    await store.ensure_queue(QueueConfig("q"))
    for i in range(0, 12_000, 10):
        await store.send_batch("q", [SendEntry(f"m{i + j}") for j in range(10)])
    received: list[Message] = []
    while got := await store.receive_many(
        "q", max_messages=1000, visibility_timeout=30, wait_time=0
    ):
        assert len(got) == 1000
        received += got
    handles = [m.receipt_handle for m in received]
    assert len(set(handles)) == 12_000
    assert await store.delete_many("q", handles[:3]) == [True] * 3
    assert await store.delete_many("q", handles) == [False] * 3 + [True] * 11_997
    assert (await store.counts("q")).total == 0


async def test_messages_name_the_server_without_its_password() -> None:
    port = free_port()
    store = RedisStore(f"redis://user:s3cret@127.0.0.1:{port}/2")
    assert store.address == f"redis://127.0.0.1:{port}/2"
    with pytest.raises(StoreUnavailable) as info:
        await store.open()
    assert store.address in str(info.value) and "s3cret" not in str(info.value)


async def test_deduplication_holds_across_stores(new_store: NewStore) -> None:
    # Given: two stores sending the same deduplication ids at the same time
    a, b = new_store("redis"), new_store("redis")
    await a.open()
    await b.open()
    await a.ensure_queue(QueueConfig("q.fifo"))

    async def send(store: Store, i: int) -> bool:
        result = await store.send("q.fifo", f"from {i}", group_id="g", deduplication_id=f"d{i % 5}")
        return result.duplicate

    # When: 40 sends of 5 distinct ids race
    duplicates = await asyncio.gather(*(send(s, i) for i in range(20) for s in (a, b)))

    # Then: each id was stored once
    assert duplicates.count(False) == 5
    assert (await a.counts("q.fifo")).visible == 5


async def test_streams_and_checkpoints_are_shared_between_stores(new_store: NewStore) -> None:
    a, b = new_store("redis"), new_store("redis")
    await a.open()
    await b.open()
    await a.ensure_stream(StreamConfig("s", shard_count=2))
    puts = await asyncio.gather(
        *(s.put_record("s", f"k{i}", f"{i}") for i in range(50) for s in (a, b))
    )
    for shard in (0, 1):
        mine = sorted(p.sequence_number for p in puts if p.shard == shard)
        read = await b.get_records("s", shard)
        assert [r.sequence_number for r in read] == mine
        assert await a.latest_sequence("s", shard) == mine[-1]
    # checkpoints written concurrently never move back
    await asyncio.gather(*(s.set_checkpoints("s->f", {0: n}) for n in (5, 9, 7) for s in (a, b)))
    assert await b.get_checkpoints("s->f") == {0: 9}
    assert await a.stream_checkpoints("s") == {"s->f": {0: 9}}


async def test_a_settings_write_run_twice_answers_the_same_both_times(
    new_store: Callable[..., Store],
) -> None:
    """redis-py retries a command whose reply was lost: the settings script, run again
    with the same write token, must say it won (it did) rather than lose to itself."""
    store = new_store("redis")
    await store.open()
    assert isinstance(store, RedisStore)
    args = ("mapping:m", 0, '{"at": 1.0, "by": "t", "values": {"x": 1}}',
            '{"by":"t","new":{"x":1},"old":{"x":null},"scope":"mapping:m","version":1,'
            '"at":1.0,"why":""}', 10, "token-1")
    first = await store._run("settings", f"{store.prefix}settings", *args)
    again = await store._run("settings", f"{store.prefix}settings", *args)
    assert [int(x) for x in first] == [int(x) for x in again] == [1, 1]
    other = await store._run("settings", f"{store.prefix}settings", *args[:-1], "token-2")
    assert [int(x) for x in other] == [0, 1]  # another write on version 0 loses
    assert (await store.get_settings("mapping:m")).version == 1
    assert len(await store.settings_history()) == 1
