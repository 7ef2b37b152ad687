from __future__ import annotations

import pytest

from sluicegate.core.batcher import MAX_RECEIVE_MESSAGES, Batcher
from sluicegate.core.config import MAX_PAYLOAD_BYTES
from sluicegate.errors import ConfigError

from .support import record, records

MB = 1024 * 1024


def test_empty_batcher() -> None:
    b = Batcher(10, 0)
    assert len(b) == 0
    assert b.payload == 0
    assert not b.ready(0.0)
    assert b.deadline() is None
    assert b.opened is None
    assert b.take(0.0) == ()
    assert b.room() == MAX_RECEIVE_MESSAGES == 10
    assert b.max_payload == MAX_PAYLOAD_BYTES


@pytest.mark.parametrize(
    ("batch_size", "buffered", "room"),
    [(1, 0, 1), (5, 0, 5), (10, 0, 10), (10, 3, 7), (100, 0, 10), (100, 95, 5), (100, 100, 0)],
)
def test_room(batch_size: int, buffered: int, room: int) -> None:
    b = Batcher(batch_size, 5)
    b.add(0.0, records(buffered))
    assert b.room() == room


def test_room_is_zero_when_payload_cap_reached() -> None:
    b = Batcher(100, 5, max_payload=1000)
    b.add(0.0, records(2, size=500))
    assert b.room() == 0
    assert b.ready(0.0)


def test_window_zero_releases_at_once() -> None:
    b = Batcher(10, 0)
    b.add(3.0, records(2))
    assert b.ready(3.0)
    out = b.take(3.0)
    assert len(out) == 2
    assert len(b) == 0 and b.payload == 0


def test_full_batch_released_before_window() -> None:
    b = Batcher(10, 60)
    b.add(0.0, records(10))
    assert b.ready(0.0)
    assert len(b.take(0.0)) == 10


def test_window_opens_with_first_record_in_empty_buffer() -> None:
    b = Batcher(100, 5)
    b.add(1.0, [])  # an empty receive opens nothing
    assert b.deadline() is None
    b.add(2.0, records(3))
    assert b.opened == 2.0
    assert b.deadline() == 7.0
    b.add(4.0, records(3))  # later records do not move the window
    assert b.deadline() == 7.0
    assert not b.ready(6.999)
    assert b.ready(7.0)
    out = b.take(7.0)
    assert len(out) == 6
    assert b.deadline() is None


def test_order_is_kept() -> None:
    b = Batcher(10, 0)
    rs = records(5)
    b.add(0.0, rs[:2])
    b.add(0.0, rs[2:])
    assert b.take(0.0) == tuple(rs)


def test_payload_cap_splits_batches() -> None:
    b = Batcher(10, 60)
    rs = records(4, size=2 * MB + 1)  # two fit under 6 MB, three do not
    b.add(0.0, rs)
    assert b.payload == 4 * (2 * MB + 1)
    assert b.ready(0.0)
    first = b.take(1.0)
    assert first == tuple(rs[:2])
    assert len(b) == 2
    assert b.payload == 2 * (2 * MB + 1)
    # leftovers start a new window at the release
    assert b.deadline() == 61.0
    assert not b.ready(30.0)
    assert b.ready(61.0)
    assert b.take(61.0) == tuple(rs[2:])


def test_payload_exactly_at_cap_is_one_batch() -> None:
    b = Batcher(10, 60)
    rs = records(3, size=2 * MB)
    b.add(0.0, rs)
    assert b.payload == MAX_PAYLOAD_BYTES
    assert b.ready(0.0)
    assert b.take(0.0) == tuple(rs)


def test_payload_below_cap_waits_for_window() -> None:
    b = Batcher(10, 60)
    b.add(0.0, records(2, size=2 * MB))
    assert not b.ready(0.0)
    assert b.room() == 8


def test_single_record_above_cap_is_released_alone() -> None:
    b = Batcher(10, 60, max_payload=100)
    rs = [record(size=500), record(size=10)]
    b.add(0.0, rs)
    assert b.take(0.0) == (rs[0],)
    assert b.take(0.0) == (rs[1],)


def test_take_never_exceeds_batch_size() -> None:
    b = Batcher(3, 5)
    rs = records(7)
    b.add(0.0, rs)  # a driver that returned more than asked
    assert b.take(0.0) == tuple(rs[:3])
    assert b.take(0.0) == tuple(rs[3:6])
    assert b.take(0.0) == tuple(rs[6:])
    assert len(b) == 0


@pytest.mark.parametrize(
    ("args", "parameter"),
    [((0, 0), "batch_size"), ((True, 0), "batch_size"), ((1, -1), "window"),
     ((1, float("inf")), "window"), ((1, 0, 0), "max_payload")],
)
def test_invalid_arguments(args: tuple[object, ...], parameter: str) -> None:
    with pytest.raises(ConfigError) as info:
        Batcher(*args)  # type: ignore[arg-type]
    assert info.value.parameter == parameter


def test_empty_room_is_what_room_answers_with_nothing_buffered() -> None:
    for batch_size in (1, 3, 10, 11, 10_000):
        for cap in (1, 100, MAX_PAYLOAD_BYTES):
            b = Batcher(batch_size, 5, max_payload=cap)
            assert b.empty_room == b.room()


def test_take_ready_is_ready_then_take() -> None:
    # Two batchers fed the same records at random: take_ready answers as ready() + take()
    import random

    rng = random.Random(7)
    for _ in range(300):
        size, window, cap = rng.choice((1, 2, 5, 10)), rng.choice((0, 0.5, 2)), rng.choice(
            (250, 1000, MAX_PAYLOAD_BYTES))
        fused, plain = Batcher(size, window, cap), Batcher(size, window, cap)
        now = 0.0
        for _ in range(20):
            now += rng.choice((0.0, 0.1, 0.7))
            if rng.random() < 0.5:
                got = records(rng.randrange(0, 4), size=rng.choice((10, 200, 600)))
                fused.add(now, got)
                plain.add(now, got)
            expected = plain.take(now) if plain.ready(now) else ()
            assert fused.take_ready(now) == expected
            assert (fused.buffer, fused.payload, fused.opened, fused.deadline()) == (
                plain.buffer, plain.payload, plain.opened, plain.deadline())
