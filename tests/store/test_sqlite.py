"""What only the SQLite store promises: persistence, sharing a file, crash safety."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sluicegate.core.config import QueueConfig
from sluicegate.core.streams import StreamConfig
from sluicegate.errors import InvalidReceiptHandle, StoreUnavailable
from sluicegate.store import MemoryStore, QueueCounts, SendEntry, SqliteStore, Store
from sluicegate.store import sqlite as sqlite_module
from sluicegate.store.sqlite import SCHEMA_VERSION
from sluicegate.testing import VirtualClock

MakeStore = Callable[..., Store]


async def test_messages_persist_across_reopen(
    tmp_path: Path, clock: VirtualClock, new_store: MakeStore
) -> None:
    path = tmp_path / "persist.db"
    async with SqliteStore(path, clock=clock) as first:
        await first.ensure_queue(QueueConfig("dlq"))
        await first.ensure_queue(
            QueueConfig("q", dead_letter_queue="dlq", max_receive_count=2, visibility_timeout=60)
        )
        await first.send_batch("q", [SendEntry("a"), SendEntry("b", attributes={"k": 1})])
        (a,) = await first.receive("q")

    second = new_store("sqlite", path=path)
    await second.open()
    assert await second.get_queue("q") == QueueConfig(
        "q", dead_letter_queue="dlq", max_receive_count=2, visibility_timeout=60
    )
    assert (await second.counts("q")).in_flight == 1
    (b,) = await second.receive("q")
    assert b.body == "b" and b.attributes == {"k": {"DataType": "Number", "StringValue": "1"}}
    assert await second.delete("q", a.receipt_handle) is True  # handles survive a restart


async def test_two_stores_share_one_file(tmp_path: Path, new_store: MakeStore) -> None:
    one = new_store("sqlite", path=tmp_path / "shared.db")
    await one.open()
    two = new_store("sqlite", path=tmp_path / "shared.db")
    await two.open()
    await one.ensure_queue(QueueConfig("q"))
    await two.send("q", "from two")
    (msg,) = await one.receive("q")
    assert msg.body == "from two"
    assert await two.receive("q") == []
    assert await two.delete("q", msg.receipt_handle) is True
    assert (await one.counts("q")).total == 0


def test_concurrent_receivers_claim_disjoint_sets(tmp_path: Path) -> None:
    """Four stores on one file, each draining from its own thread and event loop."""
    path = tmp_path / "race.db"
    total = 4000

    async def fill() -> None:
        async with SqliteStore(path) as store:
            await store.ensure_queue(QueueConfig("q", visibility_timeout=600))
            for i in range(0, total, 10):
                await store.send_batch("q", [SendEntry(f"m{i + j}") for j in range(10)])

    asyncio.run(fill())
    received: list[list[str]] = [[] for _ in range(4)]
    start = threading.Barrier(4)

    first = threading.Barrier(4)

    async def drain(out: list[str]) -> None:
        async with SqliteStore(path) as store:
            start.wait()
            out += [m.message_id for m in await store.receive("q", max_messages=3)]
            # Every thread holds a claim before any drains the rest, so a loaded
            # machine cannot let one thread empty the queue alone.
            first.wait()
            while batch := await store.receive("q", max_messages=3):
                out += [m.message_id for m in batch]

    threads = [threading.Thread(target=asyncio.run, args=(drain(r),)) for r in received]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [mid for r in received for mid in r]
    assert len(every) == total
    assert len(set(every)) == total
    assert all(received)  # they did run side by side


async def test_busy_file_falls_back_to_the_worker(tmp_path: Path, new_store: MakeStore) -> None:
    """Another connection holds the write lock: the loop is not blocked, the call waits."""
    path = tmp_path / "busy.db"
    store = new_store("sqlite", path=path)
    await store.open()
    await store.ensure_queue(QueueConfig("q"))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    send = asyncio.ensure_future(store.send("q", "waited"))
    ticks = 0
    while ticks < 5:  # the loop keeps running while the send waits for the lock
        await asyncio.sleep(0.01)
        ticks += 1
    assert not send.done()
    other.execute("COMMIT")
    other.close()
    await send
    assert (await store.counts("q")).visible == 1


async def test_worker_only_mode(tmp_path: Path, new_store: MakeStore) -> None:
    store = new_store("sqlite", path=tmp_path / "worker.db", inline=False)
    await store.open()
    await store.ensure_queue(QueueConfig("q"))
    await store.send("q", "m")
    (msg,) = await store.receive("q")
    assert await store.delete("q", msg.receipt_handle) is True


async def test_many_writes_checkpoint_in_background(tmp_path: Path, new_store: MakeStore) -> None:
    """The log is checkpointed as it grows (by the loop's connection), so it stays small."""
    path = tmp_path / "wal.db"
    store = new_store("sqlite", path=path)
    await store.open()
    await store.ensure_queue(QueueConfig("q"))
    for _ in range(1500):  # ~9 KB of log each: 13 MB if nothing were checkpointed
        await store.send("q", "x" * 200)
    await asyncio.sleep(0.05)
    assert Path(f"{path}-wal").stat().st_size < 8 * 1024 * 1024
    await store.close()
    await store.close()  # idempotent


_CRASH_SCRIPT = """
import asyncio, sys
from sluicegate.core.config import QueueConfig
from sluicegate.store import SendEntry, SqliteStore

async def main(path, n):
    store = SqliteStore(path)
    await store.open()
    await store.ensure_queue(QueueConfig("q"))
    for i in range(0, n, 10):
        await store.send_batch("q", [SendEntry(f"m{i + j}") for j in range(10)])
    print("sent", flush=True)
    await asyncio.sleep(60)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def test_sent_messages_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    n = 500
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_CRASH_SCRIPT), str(path), str(n)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "sent"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL

    async def check() -> list[str]:
        async with SqliteStore(path) as store:
            assert (await store.counts("q")).visible == n
            bodies: list[str] = []
            while batch := await store.receive("q", max_messages=10):
                bodies += [m.body for m in batch]
            return bodies

    assert asyncio.run(check()) == [f"m{i}" for i in range(n)]


async def test_missing_directory_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "dir" / "x.db"
    with pytest.raises(StoreUnavailable) as info:
        await SqliteStore(path).open()
    message = str(info.value)
    assert str(path) in message and "\n" not in message


async def test_non_database_file_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"this is not a database, just some text\n" * 200)
    with pytest.raises(StoreUnavailable, match="not a sqlite database") as info:
        await SqliteStore(path).open()
    assert str(path) in str(info.value) and "\n" not in str(info.value)


async def test_other_applications_database_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE accounts (id INTEGER)")
    conn.close()
    with pytest.raises(StoreUnavailable, match="another application"):
        await SqliteStore(path).open()


async def test_newer_schema_version_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    async with SqliteStore(path):
        pass
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()
    with pytest.raises(StoreUnavailable, match="schema version 99"):
        await SqliteStore(path).open()


async def test_version_1_file_is_upgraded(tmp_path: Path, clock: VirtualClock) -> None:
    """Version 1 kept the whole handle string per row; version 2 keeps an integer token.

    Opening a version 1 file upgrades it: its messages stay, handles issued before the
    upgrade are stale (they delete nothing, and do not raise), and an in-flight message
    comes back when its visibility timeout ends.
    """
    # Given: a version 1 file with a visible and an in-flight message (made by turning a
    # new file back into version 1's shape: a handle column instead of the token)
    path = tmp_path / "v1.db"
    async with SqliteStore(path, clock=clock) as store:
        await store.ensure_queue(QueueConfig("q", visibility_timeout=30))
        await store.send_batch("q", [SendEntry("in flight"), SendEntry("visible")])
        (flying,) = await store.receive("q")
    with sqlite3.connect(path, isolation_level=None) as conn:
        _back_to_version_2(conn)
        conn.execute("ALTER TABLE messages ADD COLUMN handle TEXT")
        mid, _, rest = flying.receipt_handle.partition("#")
        seq = rest.split("#")[1].split(".")[0]
        old_handles = [f"{mid}#1#{seq}.{token}" for token in ("f" * 16, "0123456789abcdef")]
        conn.execute("UPDATE messages SET handle = ? WHERE token IS NOT NULL", (old_handles[0],))
        conn.execute("ALTER TABLE messages DROP COLUMN token")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.close()

    # When: the current version opens it
    async with SqliteStore(path, clock=clock) as store:
        # Then: the file is version 2, with every message kept
        assert await store.counts("q") == QueueCounts(1, 1, 0, 0.0, 0)
        for handle in [*old_handles, flying.receipt_handle]:
            assert await store.delete("q", handle) is False
        clock.advance(30)
        bodies = {m.body: m for m in await store.receive("q", max_messages=10)}
        assert sorted(bodies) == ["in flight", "visible"]
        assert bodies["in flight"].receive_count == 2
        assert await store.delete_many("q", [m.receipt_handle for m in bodies.values()]) == [
            True,
            True,
        ]
    with sqlite3.connect(path) as conn:
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        columns = {row[1] for row in conn.execute("PRAGMA table_info(messages)")}
    conn.close()
    assert version == (str(SCHEMA_VERSION),)
    assert "token" in columns and "handle" not in columns


def _back_to_version_7(conn: sqlite3.Connection) -> None:
    """Remove what version 8 added (table items)."""
    conn.execute("DROP INDEX items_expires")
    for table in ("items", "item_tables"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")


def _back_to_version_6(conn: sqlite3.Connection) -> None:
    """Remove what version 7 added (semaphores and parked batches)."""
    _back_to_version_7(conn)
    for table in ("semaphores", "parked"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("UPDATE meta SET value = '6' WHERE key = 'schema_version'")


def _back_to_version_5(conn: sqlite3.Connection) -> None:
    """Remove what version 6 added (live settings and their history)."""
    _back_to_version_6(conn)
    for table in ("live_settings", "live_history"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")


def _back_to_version_4(conn: sqlite3.Connection) -> None:
    """Remove what version 5 added (leases, the worker registry, shared logs and values)."""
    _back_to_version_5(conn)
    for table in ("lease_names", "leases", "workers", "shared_events", "shared_values"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")


def _back_to_version_3(conn: sqlite3.Connection) -> None:
    """Remove what version 4 added (the index of visible FIFO messages by group)."""
    _back_to_version_4(conn)
    conn.execute("DROP INDEX messages_fifo_groups")
    conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")


def _back_to_version_2(conn: sqlite3.Connection) -> None:
    """Remove what version 3 added (FIFO columns and tables, streams) from a new file."""
    _back_to_version_3(conn)
    for index in ("messages_fifo_ready", "messages_fifo_busy", "fifo_dedup_expiry",
                  "stream_records_arrival"):
        conn.execute(f"DROP INDEX {index}")
    for table in ("fifo_dedup", "streams", "stream_shards", "stream_records", "checkpoints"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("ALTER TABLE queues DROP COLUMN content_based_deduplication")
    conn.execute("ALTER TABLE messages DROP COLUMN group_id")
    conn.execute("ALTER TABLE messages DROP COLUMN dedup_id")
    conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")


async def test_version_2_file_is_upgraded(tmp_path: Path, clock: VirtualClock) -> None:
    """Version 3 added FIFO queues and streams: a version 2 file keeps its messages and
    handles (in flight stays in flight) and gains the new tables."""
    path = tmp_path / "v2.db"
    async with SqliteStore(path, clock=clock) as store:
        await store.ensure_queue(QueueConfig("q", visibility_timeout=30))
        await store.send_batch("q", [SendEntry("in flight"), SendEntry("visible")])
        (flying,) = await store.receive("q")
    with sqlite3.connect(path, isolation_level=None) as conn:
        _back_to_version_2(conn)
    conn.close()
    async with SqliteStore(path, clock=clock) as store:
        assert await store.counts("q") == QueueCounts(1, 1, 0, 0.0, 0)
        assert await store.delete("q", flying.receipt_handle) is True
        await store.ensure_queue(QueueConfig("f.fifo", content_based_deduplication=True))
        assert not (await store.send("f.fifo", "x", group_id="g")).duplicate
        assert (await store.send("f.fifo", "x", group_id="g")).duplicate
        await store.ensure_stream(StreamConfig("s"))
        assert (await store.put_record("s", "k", b"d")).shard == 0
    with sqlite3.connect(path) as conn:
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    conn.close()
    assert version == (str(SCHEMA_VERSION),)


async def test_version_3_file_is_upgraded(tmp_path: Path, clock: VirtualClock) -> None:
    """Version 4 added an index of visible FIFO messages by group: a version 3 file keeps
    its FIFO messages, in flight stays in flight, and receives keep group order."""
    path = tmp_path / "v3.db"
    async with SqliteStore(path, clock=clock) as store:
        await store.ensure_queue(QueueConfig("f.fifo", content_based_deduplication=True))
        await store.send_batch("f.fifo", [SendEntry(f"{g}{i}", group_id=g)
                                          for i in range(3) for g in "ab"])
        (flying,) = await store.receive("f.fifo", visibility_timeout=30)
    with sqlite3.connect(path, isolation_level=None) as conn:
        _back_to_version_3(conn)
    conn.close()
    async with SqliteStore(path, clock=clock) as store:
        assert flying.body == "a0"
        assert [m.body for m in await store.receive("f.fifo", max_messages=10)] == [
            "b0", "b1", "b2"
        ]
        assert await store.delete("f.fifo", flying.receipt_handle) is True
    with sqlite3.connect(path) as conn:
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    conn.close()
    assert version == (str(SCHEMA_VERSION),)
    assert "messages_fifo_groups" in indexes


async def test_version_4_file_is_upgraded(tmp_path: Path, clock: VirtualClock) -> None:
    """Version 5 added the coordination tables: a version 4 file keeps its messages and
    gains leases, the worker registry and shared logs."""
    path = tmp_path / "v4.db"
    async with SqliteStore(path, clock=clock) as store:
        await store.ensure_queue(QueueConfig("q", visibility_timeout=30))
        await store.send("q", "kept")
    with sqlite3.connect(path, isolation_level=None) as conn:
        _back_to_version_4(conn)
    conn.close()
    async with SqliteStore(path, clock=clock) as store:
        assert [m.body for m in await store.receive("q")] == ["kept"]
        assert (await store.claim_lease("m", "a", want=2, limit=3, ttl=5)).granted == 2
        assert await store.register_worker("a", {"pid": 1}, ttl=5) is None
        assert await store.list_workers() == [{"pid": 1}]
    with sqlite3.connect(path) as conn:
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    conn.close()
    assert version == (str(SCHEMA_VERSION),)


async def test_version_6_file_is_upgraded(tmp_path: Path, clock: VirtualClock) -> None:
    """Version 7 added semaphores and parked batches: a version 6 file keeps its messages,
    leases and live settings and gains both; a read-only open of it sees no semaphore."""
    path = tmp_path / "v6.db"
    async with SqliteStore(path, clock=clock) as store:
        await store.ensure_queue(QueueConfig("q", visibility_timeout=30))
        await store.send("q", "kept")
        await store.claim_lease("m", "a", want=2, limit=3, ttl=5)
        await store.write_settings("mapping:m", {"maximum_concurrency": 5}, by="t")
    with sqlite3.connect(path, isolation_level=None) as conn:
        _back_to_version_6(conn)
    conn.close()
    async with SqliteStore(path, clock=clock, read_only=True) as store:
        assert await store.list_semaphores() == []
    async with SqliteStore(path, clock=clock) as store:
        assert [m.body for m in await store.receive("q")] == ["kept"]
        assert [h.count for h in await store.lease_holders("m")] == [2]
        assert (await store.get_settings("mapping:m")).values == {"maximum_concurrency": 5}
        grant = await store.acquire_semaphore("db", "t1", limit=1, ttl=5, timeout=0)
        assert (grant.acquired, grant.token) == (True, 1)
    with sqlite3.connect(path) as conn:
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    conn.close()
    assert version == (str(SCHEMA_VERSION),)


async def test_version_7_file_is_upgraded(tmp_path: Path, clock: VirtualClock) -> None:
    """Version 8 added table items: a version 7 file keeps its messages and semaphores
    and gains them; a read-only open of it finds no item."""
    path = tmp_path / "v7.db"
    async with SqliteStore(path, clock=clock) as store:
        await store.ensure_queue(QueueConfig("q", visibility_timeout=30))
        await store.send("q", "kept")
        assert (await store.acquire_semaphore("db", "t1", limit=1, ttl=5, timeout=0)).acquired
    with sqlite3.connect(path, isolation_level=None) as conn:
        _back_to_version_7(conn)
    conn.close()
    async with SqliteStore(path, clock=clock, read_only=True) as store:
        assert await store.get_item("t", "k") is None
    async with SqliteStore(path, clock=clock) as store:
        assert [m.body for m in await store.receive("q")] == ["kept"]
        assert [s.name for s in await store.list_semaphores()] == ["db"]
        write = await store.create_item("t", "k", status="S", ttl=5)
        assert (write.written, write.item.version if write.item else 0) == (True, 1)
    with sqlite3.connect(path) as conn:
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    conn.close()
    assert version == (str(SCHEMA_VERSION),)


@pytest.mark.parametrize("window", [1, 3, 1000])
@pytest.mark.parametrize("seed", range(4))
async def test_fifo_receives_match_the_memory_store_whatever_the_scan_window(
    tmp_path: Path, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch, window: int, seed: int
) -> None:
    """A FIFO receive looks through a window of the oldest messages, then group by group
    when the window is not enough: either way it returns what the memory store returns
    (the oldest visible messages of groups with nothing in flight, in order), through
    random sends, receives, deletes and visibility timeouts running out."""
    import random

    monkeypatch.setattr(sqlite_module, "FIFO_SCAN_WINDOW", window)
    rng = random.Random(seed)
    reference = MemoryStore(clock=clock)
    tested = SqliteStore(tmp_path / f"window{window}.db", clock=clock)
    config = QueueConfig("f.fifo", visibility_timeout=5)
    stores: list[Store] = [reference, tested]
    for store in stores:
        await store.open()
        await store.ensure_queue(config)
    in_flight: list[tuple[str, str]] = []  # (reference handle, tested handle)
    sent = 0
    try:
        for _ in range(150):
            action = rng.random()
            if action < 0.4:
                entries = [
                    SendEntry(f"m{sent + i}", group_id=f"g{rng.randrange(6)}",
                              deduplication_id=f"d{sent + i}")
                    for i in range(rng.randint(1, 10))
                ]
                sent += len(entries)
                for store in stores:
                    await store.send_batch("f.fifo", entries)
            elif action < 0.75:
                wanted = rng.randint(1, 10)
                got = [await store.receive("f.fifo", max_messages=wanted) for store in stores]
                assert [m.body for m in got[1]] == [m.body for m in got[0]]
                in_flight += [(a.receipt_handle, b.receipt_handle)
                              for a, b in zip(got[0], got[1], strict=True)]
            elif action < 0.95 and in_flight:
                ref_handle, tested_handle = in_flight.pop(rng.randrange(len(in_flight)))
                assert (await tested.delete("f.fifo", tested_handle)) == (
                    await reference.delete("f.fifo", ref_handle)
                )
            else:
                clock.advance(rng.choice([1.0, 6.0]))
    finally:
        for store in stores:
            await store.close()


async def test_claims_and_deletes_of_scattered_and_consecutive_keys(
    tmp_path: Path, clock: VirtualClock
) -> None:
    """Keys received together are either one run of consecutive integers (a range in
    SQL) or scattered (a list): both claim and delete exactly the messages received, and
    a stale handle within a run leaves its message alone."""
    async with SqliteStore(tmp_path / "keys.db", clock=clock) as store:
        await store.ensure_queue(QueueConfig("q", visibility_timeout=30))
        await store.ensure_queue(QueueConfig("other"))
        # Given: q's first six messages interleaved with other's (scattered keys), then five
        # sent together (consecutive keys)
        for i in range(6):
            await store.send("q", f"q{i}")
            await store.send("other", f"o{i}")
        await store.send_batch("q", [SendEntry(f"r{i}") for i in range(5)])

        # When/Then: the scattered six are claimed and deleted, other's untouched
        scattered = await store.receive("q", max_messages=6)
        assert [m.body for m in scattered] == [f"q{i}" for i in range(6)]
        assert await store.delete_many("q", [m.receipt_handle for m in scattered]) == [True] * 6
        assert (await store.counts("other")).visible == 6

        # When: the run is received, one of it is received again, then all five first
        # handles are deleted
        run = await store.receive("q", max_messages=5)
        assert [m.body for m in run] == [f"r{i}" for i in range(5)]
        await store.change_visibility("q", run[2].receipt_handle, 0)
        (again,) = await store.receive("q")
        flags = await store.delete_many("q", [m.receipt_handle for m in run])

        # Then: the stale one stays in flight; nothing of other's moved
        assert flags == [True, True, False, True, True]
        assert (await store.counts("q")).in_flight == 1
        assert await store.delete("q", again.receipt_handle) is True
        assert await store.counts("other") == QueueCounts(6, 0, 0, 0.0, 0)


@pytest.mark.parametrize(
    "handle",
    ["x#1#\u00b2\u00b3.ab", "x#1#5.", "x#1#5.zz", "x#1#5.12345678901234567", "#1#5.ab", "x#1#5#6.ab"],
)
async def test_malformed_sqlite_handles_raise(tmp_path: Path, handle: str) -> None:
    """Well-shaped but wrong parts (superscript digits once escaped as ValueError)."""
    async with SqliteStore(tmp_path / "bad.db") as store:
        await store.ensure_queue(QueueConfig("q"))
        with pytest.raises(InvalidReceiptHandle):
            await store.delete("q", handle)
        with pytest.raises(InvalidReceiptHandle):
            await store.delete_many("q", [handle, handle])


def test_receive_does_not_block_the_loop_long(tmp_path: Path) -> None:
    """A receive on the loop's thread takes well under a millisecond on a free file."""

    async def main() -> float:
        async with SqliteStore(tmp_path / "fast.db") as store:
            await store.ensure_queue(QueueConfig("q"))
            for _ in range(20):
                await store.send_batch("q", [SendEntry("x")] * 10)
            started = time.perf_counter()
            for _ in range(100):
                await store.receive("q", visibility_timeout=30, wait_time=0)
            return (time.perf_counter() - started) / 100

    assert asyncio.run(main()) < 0.005


async def test_version_5_file_is_upgraded(tmp_path: Path, clock: VirtualClock) -> None:
    """Version 6 added live settings: a version 5 file keeps its messages and leases and
    gains the tables; a read-only open of a version 5 file sees no settings set."""
    path = tmp_path / "v5.db"
    async with SqliteStore(path, clock=clock) as store:
        await store.ensure_queue(QueueConfig("q"))
        await store.send("q", "kept")
        await store.claim_lease("l", "a", want=1, limit=1, ttl=60)
    with sqlite3.connect(path, isolation_level=None) as conn:
        _back_to_version_5(conn)
    conn.close()
    async with SqliteStore(path, clock=clock, read_only=True) as store:
        assert await store.list_settings() == (0, [])
        assert (await store.get_settings("mapping:m")).version == 0
        assert await store.settings_history() == []
    async with SqliteStore(path, clock=clock) as store:
        assert (await store.counts("q")).visible == 1
        assert [h.holder for h in await store.lease_holders("l")] == ["a"]
        write = await store.write_settings("mapping:m", {"maximum_concurrency": 5}, by="t")
        assert write.won and write.settings.version == 1
    with sqlite3.connect(path) as conn:
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    conn.close()
    assert version == (str(SCHEMA_VERSION),)
