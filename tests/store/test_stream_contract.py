"""The stream part of the store contract, run against every backend (see conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sluicegate.core.streams import StreamConfig, hash_key_ranges, shard_for_partition_key
from sluicegate.errors import (
    BatchRequestError,
    InputError,
    MessageTooLarge,
    StoreError,
    StreamNotFound,
)
from sluicegate.store import Store
from sluicegate.store.base import MAX_RECORD_BYTES, PutEntry
from sluicegate.testing import VirtualClock

from .conftest import START

DAY = 86_400


async def test_put_routes_by_md5_and_numbers_increase_per_shard(store: Store) -> None:
    await store.ensure_stream(StreamConfig("s", shard_count=4))
    keys = [f"key-{i}" for i in range(200)]
    results = [await store.put_record("s", key, f"data-{key}") for key in keys]
    for key, result in zip(keys, results, strict=True):
        assert result.shard == shard_for_partition_key(key, 4)
        assert result.shard_id == f"shardId-{result.shard:012d}"
    per_shard: dict[int, list[int]] = {}
    for result in results:
        per_shard.setdefault(result.shard, []).append(result.sequence_number)
    assert len(per_shard) == 4
    for shard, sequences in per_shard.items():
        assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
        read = await store.get_records("s", shard)
        assert [r.sequence_number for r in read] == sequences
        assert all(r.shard == shard for r in read)


async def test_records_round_trip(store: Store, clock: VirtualClock) -> None:
    await store.ensure_stream(StreamConfig("s"))
    await store.put_record("s", "k", b"\x00\xffbinary")
    clock.advance(1.5)
    await store.put_record("s", "k", "text é")
    first, second = await store.get_records("s", 0)
    assert (first.partition_key, first.data, first.approximate_arrival) == (
        "k", b"\x00\xffbinary", START
    )
    assert (second.data, second.approximate_arrival) == ("text é".encode(), START + 1.5)


async def test_read_after_a_position_and_limit(store: Store) -> None:
    await store.ensure_stream(StreamConfig("s"))
    results = [await store.put_record("s", "k", str(i)) for i in range(10)]
    sequences = [r.sequence_number for r in results]
    after = await store.get_records("s", 0, after=sequences[3], limit=4)
    assert [r.data for r in after] == [b"4", b"5", b"6", b"7"]
    assert await store.get_records("s", 0, after=sequences[-1]) == []
    assert await store.latest_sequence("s", 0) == sequences[-1]


async def test_at_timestamp(store: Store, clock: VirtualClock) -> None:
    await store.ensure_stream(StreamConfig("s"))
    for i in range(5):
        await store.put_record("s", "k", str(i))
        clock.advance(10)
    read = await store.get_records("s", 0, at_timestamp=START + 20)
    assert [r.data for r in read] == [b"2", b"3", b"4"]
    with pytest.raises(InputError, match="not both"):
        await store.get_records("s", 0, after=1, at_timestamp=START)


async def test_latest_of_an_empty_shard(store: Store) -> None:
    await store.ensure_stream(StreamConfig("s", shard_count=2))
    assert await store.latest_sequence("s", 0) == -1


async def test_put_records_batch_is_ordered_and_atomic(store: Store) -> None:
    await store.ensure_stream(StreamConfig("s"))
    results = await store.put_records("s", [PutEntry("k", str(i)) for i in range(500)])
    assert [r.sequence_number for r in results] == sorted(r.sequence_number for r in results)
    with pytest.raises(BatchRequestError, match="at most 500"):
        await store.put_records("s", [PutEntry("k", "x")] * 501)
    with pytest.raises(InputError, match="partition"):
        await store.put_records("s", [PutEntry("k", "fine"), PutEntry("", "bad key")])
    assert len(await store.get_records("s", 0)) == 500


async def test_explicit_hash_key_chooses_the_shard(store: Store) -> None:
    await store.ensure_stream(StreamConfig("s", shard_count=3))
    ranges = hash_key_ranges(3)
    for r in ranges:
        put = await store.put_record(
            "s", "same-key", "x", explicit_hash_key=str(r.ending_hash_key)
        )
        assert put.shard == r.shard
    with pytest.raises(InputError, match="explicit_hash_key"):
        await store.put_record("s", "k", "x", explicit_hash_key=str(1 << 128))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"partition_key": ""}, InputError, "partition"),
        ({"partition_key": "k" * 257}, InputError, "partition"),
        ({"data": 12}, InputError, "bytes or str"),
        ({"data": b"x" * MAX_RECORD_BYTES}, MessageTooLarge, "1,048,576"),
    ],
)
async def test_bad_puts_are_refused(
    store: Store, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    await store.ensure_stream(StreamConfig("s"))
    args = {"partition_key": "k", "data": "x", **kwargs}
    with pytest.raises(error, match=match):
        await store.put_record("s", args["partition_key"], args["data"])
    assert await store.latest_sequence("s", 0) == -1


async def test_unknown_stream_and_shard(store: Store) -> None:
    with pytest.raises(StreamNotFound, match="stream 'nope' does not exist"):
        await store.put_record("nope", "k", "x")
    with pytest.raises(StreamNotFound):
        await store.get_records("nope", 0)
    await store.ensure_stream(StreamConfig("s", shard_count=2))
    with pytest.raises(InputError, match="shards 0-1"):
        await store.get_records("s", 2)
    with pytest.raises(InputError, match="limit"):
        await store.get_records("s", 0, limit=0)


async def test_retention_drops_old_records(store: Store, clock: VirtualClock) -> None:
    await store.ensure_stream(StreamConfig("s", retention_period=DAY))
    old = await store.put_record("s", "k", "old")
    clock.advance(DAY - 10)
    await store.put_record("s", "k", "new")
    clock.advance(11)
    read = await store.get_records("s", 0)
    assert [r.data for r in read] == [b"new"]
    (info,) = await store.shards("s")
    assert info.records == 1 and info.first_sequence == read[0].sequence_number
    assert info.latest_sequence == read[0].sequence_number
    assert old.sequence_number < read[0].sequence_number
    clock.advance(DAY)
    assert await store.get_records("s", 0) == []
    (info,) = await store.shards("s")
    assert (info.records, info.first_sequence) == (0, None)
    assert await store.latest_sequence("s", 0) == read[0].sequence_number


async def test_streams_are_listed_updated_and_deleted(store: Store) -> None:
    await store.ensure_stream(StreamConfig("b", shard_count=2))
    await store.ensure_stream(StreamConfig("a"))
    assert [s.name for s in await store.list_streams()] == ["a", "b"]
    await store.ensure_stream(StreamConfig("b", shard_count=2, retention_period=2 * DAY))
    assert (await store.get_stream("b")).retention_period == 2 * DAY
    with pytest.raises(StoreError, match="exists with 2 shards, not 3"):
        await store.ensure_stream(StreamConfig("b", shard_count=3))
    await store.set_checkpoints("b->f", {0: 5})
    await store.delete_stream("b")
    assert [s.name for s in await store.list_streams()] == ["a"]
    with pytest.raises(StreamNotFound):
        await store.delete_stream("b")
    await store.ensure_stream(StreamConfig("b", shard_count=3))
    assert await store.get_checkpoints("b->f") == {}


async def test_shards_report_hash_ranges(store: Store) -> None:
    await store.ensure_stream(StreamConfig("s", shard_count=3))
    await store.put_record("s", "k", "x")
    infos = await store.shards("s")
    assert [(i.shard_id, i.starting_hash_key, i.ending_hash_key) for i in infos] == [
        (r.shard_id, r.starting_hash_key, r.ending_hash_key) for r in hash_key_ranges(3)
    ]
    assert sum(i.records for i in infos) == 1


async def test_checkpoints_only_move_forward(store: Store) -> None:
    assert await store.get_checkpoints("s->f") == {}
    await store.set_checkpoints("s->f", {0: 10, 1: 3})
    await store.set_checkpoints("s->f", {0: 7, 1: 4})
    assert await store.get_checkpoints("s->f") == {0: 10, 1: 4}
    assert await store.get_checkpoints("s->g") == {}
    await store.ensure_stream(StreamConfig("s"))
    await store.ensure_stream(StreamConfig("s2"))
    await store.set_checkpoints("s2->f", {0: 1})
    assert await store.stream_checkpoints("s") == {"s->f": {0: 10, 1: 4}}
    with pytest.raises(StreamNotFound):
        await store.stream_checkpoints("nope")


async def test_sqlite_streams_survive_reopening(new_store: Any, tmp_path: Path) -> None:
    path = tmp_path / "streams.db"
    store = new_store("sqlite", path=path)
    await store.open()
    await store.ensure_stream(StreamConfig("s", shard_count=2))
    put = await store.put_record("s", "k", b"kept")
    await store.set_checkpoints("s->f", {put.shard: put.sequence_number})
    await store.close()
    again = new_store("sqlite", path=path)
    await again.open()
    (record,) = await again.get_records("s", put.shard)
    assert record.data == b"kept"
    assert await again.get_checkpoints("s->f") == {put.shard: put.sequence_number}
    later = await again.put_record("s", "k", b"next")
    assert later.sequence_number > put.sequence_number
