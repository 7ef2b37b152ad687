"""The in-memory stream engine: shards as lists, for tests and the simulator.

:class:`MemoryStreams` is to streams what :class:`~sluicegate.store.memory.MemoryQueues` is
to queues: plain synchronous methods, time read only from an injected clock, so the
simulator can drive it directly.

Per shard, records are kept in two parallel lists (sequence numbers, records) in sequence
order, plus an offset of the first retained one: a read finds its start by bisection, and
retention drops a prefix by moving the offset (the lists are compacted when the dropped
prefix outgrows the live part). Sequence numbers come from one counter per stream, so they
increase within every shard and are unique within the stream.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable

from sluicegate.core.streams import StreamConfig
from sluicegate.errors import StreamNotFound
from sluicegate.store.base import StreamMessage

__all__ = ["MemoryStreams"]

COMPACT_MIN = 1024
"""A shard's lists are compacted once at least this many dropped records precede the
live ones and they outnumber them."""


class _Shard:
    __slots__ = ("arrivals", "latest", "offset", "records", "sequences")

    def __init__(self) -> None:
        self.sequences: list[int] = []
        self.arrivals: list[float] = []
        self.records: list[StreamMessage] = []
        self.offset = 0
        """Index of the first retained record."""
        self.latest = -1
        """The last sequence number written, kept when retention drops the record."""

    def trim(self, horizon: float) -> None:
        """Drop records that arrived before ``horizon``."""
        arrivals = self.arrivals
        start = self.offset
        if start < len(arrivals) and arrivals[start] < horizon:
            self.offset = start = bisect_left(arrivals, horizon, start)
        if start >= COMPACT_MIN and start * 2 > len(arrivals):
            del self.sequences[:start], self.arrivals[:start], self.records[:start]
            self.offset = 0

    @property
    def live(self) -> int:
        return len(self.records) - self.offset


class _Stream:
    __slots__ = ("config", "next_sequence", "shards")

    def __init__(self, config: StreamConfig) -> None:
        self.config = config
        self.shards = [_Shard() for _ in range(config.shard_count)]
        self.next_sequence = 1


class MemoryStreams:
    """Streams and checkpoints held in Python lists and dicts.

    Parameters:
        clock: returns the current time in epoch seconds.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._streams: dict[str, _Stream] = {}
        self._checkpoints: dict[str, dict[int, int]] = {}

    def _stream(self, name: str) -> _Stream:
        stream = self._streams.get(name)
        if stream is None:
            raise StreamNotFound(name)
        return stream

    def _trimmed(self, name: str) -> _Stream:
        stream = self._stream(name)
        horizon = self._clock() - stream.config.retention_period
        for shard in stream.shards:
            shard.trim(horizon)
        return stream

    def ensure_stream(self, config: StreamConfig) -> None:
        stream = self._streams.get(config.name)
        if stream is None:
            self._streams[config.name] = _Stream(config)
        else:  # same shard count: the base class checked
            stream.config = config

    def get_stream(self, name: str) -> StreamConfig:
        return self._stream(name).config

    def list_streams(self) -> list[StreamConfig]:
        return [s.config for s in self._streams.values()]

    def delete_stream(self, name: str) -> None:
        self._stream(name)
        del self._streams[name]
        prefix = f"{name}->"
        for mapping in [m for m in self._checkpoints if m.startswith(prefix)]:
            del self._checkpoints[mapping]

    def put(self, name: str, records: list[tuple[int, str, bytes]]) -> list[int]:
        stream = self._trimmed(name)
        now = self._clock()
        sequences = []
        shards = stream.shards
        for shard_index, key, data in records:
            sequence = stream.next_sequence
            stream.next_sequence = sequence + 1
            shard = shards[shard_index]
            # The clock may step back (tests, a corrected system clock): keep arrivals
            # sorted so retention and AT_TIMESTAMP can bisect.
            arrival = now
            if shard.arrivals and shard.arrivals[-1] > arrival:
                arrival = shard.arrivals[-1]
            shard.sequences.append(sequence)
            shard.arrivals.append(arrival)
            shard.records.append(StreamMessage(shard_index, sequence, key, data, arrival))
            shard.latest = sequence
            sequences.append(sequence)
        return sequences

    def get_records(
        self, name: str, shard_index: int, after: int | None, at_timestamp: float | None, limit: int
    ) -> list[StreamMessage]:
        shard = self._trimmed(name).shards[shard_index]
        if after is not None:
            start = bisect_right(shard.sequences, after, shard.offset)
        elif at_timestamp is not None:
            start = bisect_left(shard.arrivals, at_timestamp, shard.offset)
        else:
            start = shard.offset
        return shard.records[start : start + limit]

    def latest_sequence(self, name: str, shard_index: int) -> int:
        return self._stream(name).shards[shard_index].latest

    def count_after(self, name: str, shard_index: int, after: int | None) -> int:
        """Records retained in a shard after sequence number ``after`` (all of them when
        ``after`` is ``None``): how far a consumer checkpointed at ``after`` is behind.
        O(log n); the simulator reads it every bucket."""
        shard = self._trimmed(name).shards[shard_index]
        if after is None:
            return shard.live
        return len(shard.sequences) - bisect_right(shard.sequences, after, shard.offset)

    def shard_stats(self, name: str) -> list[tuple[int | None, int, int]]:
        stream = self._trimmed(name)
        return [
            (
                s.sequences[s.offset] if s.live else None,
                s.latest,
                s.live,
            )
            for s in stream.shards
        ]

    def get_checkpoints(self, mapping: str) -> dict[int, int]:
        return dict(self._checkpoints.get(mapping, {}))

    def stream_checkpoints(self, name: str) -> dict[str, dict[int, int]]:
        prefix = f"{name}->"
        return {m: dict(c) for m, c in self._checkpoints.items() if m.startswith(prefix)}

    def set_checkpoints(self, mapping: str, checkpoints: dict[int, int]) -> None:
        stored = self._checkpoints.setdefault(mapping, {})
        for shard, sequence in checkpoints.items():
            if sequence > stored.get(shard, -1):
                stored[shard] = sequence
