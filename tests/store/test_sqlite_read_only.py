"""A SQLite store opened read-only (``SqliteStore(read_only=True)``, what inspection
commands use): it reads everything, writes nothing, creates nothing, and reads what is
still only in the write-ahead log. Reading in a directory this process cannot write is
in tests/test_cli_inspect.py (it needs a process without write permission)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sluicegate.core.config import QueueConfig
from sluicegate.core.streams import StreamConfig
from sluicegate.errors import StoreError, StoreUnavailable
from sluicegate.store import SendEntry, SqliteStore
from sluicegate.testing import VirtualClock

from .test_sqlite import _back_to_version_2, _back_to_version_3


async def _fill(path: Path, clock: VirtualClock) -> str:
    """A file with a queue and its dead-letter queue, a message in flight, one visible,
    a stream record and a checkpoint; returns the in-flight message's body."""
    async with SqliteStore(path, clock=clock) as store:
        await store.ensure_queue(QueueConfig("dlq"))
        await store.ensure_queue(
            QueueConfig("q", dead_letter_queue="dlq", max_receive_count=2, visibility_timeout=30)
        )
        await store.send_batch("q", [SendEntry("first"), SendEntry("second")])
        (flying,) = await store.receive("q")
        await store.ensure_stream(StreamConfig("s"))
        await store.put_record("s", "k", b"\x00data")
        await store.set_checkpoints("s->f", {0: 1})
    return flying.body


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


async def test_read_only_store_reads_everything_and_changes_no_byte(
    tmp_path: Path, clock: VirtualClock
) -> None:
    path = tmp_path / "store.db"
    assert await _fill(path, clock) == "first"
    before = _files(tmp_path)
    assert list(before) == ["store.db"]  # a clean close leaves no -wal or -shm

    async with SqliteStore(path, clock=clock, read_only=True) as store:
        assert [q.name for q in await store.list_queues()] == ["dlq", "q"]
        counts = await store.counts("q")
        assert (counts.visible, counts.in_flight) == (1, 1)
        assert [(m.body, m.state) for m in await store.peek("q")] == [
            ("first", "in_flight"), ("second", "visible"),
        ]
        assert [r.data for r in await store.get_records("s", 0)] == [b"\x00data"]
        assert await store.stream_checkpoints("s") == {"s->f": {0: 1}}
        assert [s.records for s in await store.shards("s")] == [1]
        for write in (
            store.send("q", "x"),
            store.receive("q"),
            store.purge("q"),
            store.ensure_queue(QueueConfig("new")),
            store.set_checkpoints("s->f", {0: 5}),
        ):
            with pytest.raises(StoreError, match="cannot be written"):
                await write

    after = _files(tmp_path)
    assert after.pop("store.db") == before["store.db"]
    # SQLite's reader makes the WAL index (and an empty log) beside the file; nothing else
    assert set(after) <= {"store.db-wal", "store.db-shm"}
    assert after.get("store.db-wal", b"") == b""


async def test_read_only_open_of_a_missing_file_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "typo.db"
    store = SqliteStore(path, read_only=True)
    with pytest.raises(StoreUnavailable, match="the file does not exist"):
        await store.open()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(StoreUnavailable, match=r"directory .* does not exist"):
        await SqliteStore(tmp_path / "no" / "x.db", read_only=True).open()


async def test_read_only_store_reads_what_is_only_in_the_log(
    tmp_path: Path, clock: VirtualClock
) -> None:
    path = tmp_path / "store.db"
    async with SqliteStore(path, clock=clock) as writer:
        await writer.ensure_queue(QueueConfig("q"))
        await writer.send("q", "only-in-the-log")
        assert b"only-in-the-log" not in path.read_bytes()  # not checkpointed yet
        async with SqliteStore(path, clock=clock, read_only=True) as reader:
            assert [m.body for m in await reader.peek("q")] == ["only-in-the-log"]
            await writer.send("q", "sent-while-reading")
            assert [m.body for m in await reader.peek("q")] == [
                "only-in-the-log", "sent-while-reading",
            ]


async def test_read_only_store_reads_version_3_as_is_and_refuses_older(
    tmp_path: Path, clock: VirtualClock
) -> None:
    path = tmp_path / "old.db"
    await _fill(path, clock)
    with sqlite3.connect(path, isolation_level=None) as conn:
        _back_to_version_3(conn)
    conn.close()
    before = path.read_bytes()
    async with SqliteStore(path, clock=clock, read_only=True) as store:
        assert [m.body for m in await store.peek("q")] == ["first", "second"]
    assert path.read_bytes() == before  # read as it is: not upgraded

    older = tmp_path / "older.db"
    await _fill(older, clock)
    with sqlite3.connect(older, isolation_level=None) as conn:
        _back_to_version_2(conn)
    conn.close()
    with pytest.raises(StoreUnavailable, match=r"schema version 2 predates .* run a command "
                                                "that writes"):
        await SqliteStore(older, read_only=True).open()
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()
    with pytest.raises(StoreUnavailable, match="schema version 99"):
        await SqliteStore(path, read_only=True).open()


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "holds no sluicegate tables yet"), (b"x" * 4096, "not a sqlite database")],
)
async def test_read_only_open_of_a_file_that_is_not_a_store(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "other.db"
    path.write_bytes(content)
    with pytest.raises(StoreUnavailable, match=message):
        await SqliteStore(path, read_only=True).open()
    assert path.read_bytes() == content
