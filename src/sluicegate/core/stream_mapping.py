"""The stream event source mapping (Kinesis-style) as a state machine.

Model: one :class:`StreamMapping` serves every shard of one stream for one function. Each
shard has one reader and ``parallelization_factor`` *lanes*:

- the **reader** fetches the shard in sequence order from its checkpoint
  (:class:`~sluicegate.core.streams.Fetch`; the driver reads the store and reports with
  :meth:`StreamMapping.fetched`). After a fetch that came back with fewer records than it
  asked for, the next one waits :data:`POLL_INTERVAL` (AWS polls a shard about once a
  second); after a full one, :data:`FULL_FETCH_INTERVAL`. It never holds more than a
  bounded *read-ahead* of unsettled records (:data:`READ_AHEAD_BATCHES`): a blocked shard
  is not read to its end into memory.
- every record read goes to the lane of its partition key
  (:func:`~sluicegate.core.streams.lane_for_partition_key`), so the records of one key
  always travel in one lane, in sequence order. A lane forms batches with a
  :class:`~sluicegate.core.batcher.Batcher`, as a queue poller does (``batch_size``
  records, the 6 MB payload cap, or the batching window, whichever comes first; the
  window opens when the first record reaches an empty lane, or when the lane's previous
  invocation ends, whichever is later: AWS starts the next window "when the previous
  invocation completes") and has at most ONE batch in flight. So up to ``shards x
  parallelization_factor`` invocations run at once (the limit's ``shards`` term, see
  :attr:`StreamMapping.concurrency_limit`), and the order of each key holds. A term
  below that (added by a driver) makes a lane with a batch due wait for a slot.
- an invocation takes a slot from the :class:`~sluicegate.core.pool.ConcurrencyPool`. No
  slot is a throttle: the same batch is retried after :data:`THROTTLE_BACKOFF_BASE`
  doubling up to :data:`THROTTLE_BACKOFF_MAX`, and throttles never count as retry
  attempts (lambda-semantics.md 6).

Failures, per lane (lambda-semantics.md 6.1, 6.2). The lane blocks: nothing after the
failed records is invoked until they are settled.

- ERROR (function error, timeout, invalid response): the whole batch is retried after
  :data:`RETRY_DELAY`, using one retry attempt. With ``bisect_batch_on_function_error``
  a batch of two or more records is instead split in halves, retried first half first;
  a split uses no retry attempt (so a poison record is isolated in about log2(n) splits,
  then uses retries alone).
- PARTIAL (``batchItemFailures`` of sequence numbers): the records before the lowest
  failed sequence number succeed; the rest is retried as one batch (with or without
  bisect: AWS "splits at" the reported number, which is the same cut), using one retry
  attempt. An item identifier that is not a sequence number of the batch fails the whole
  batch (:func:`~sluicegate.core.results.interpret_response`).
- A failed batch that has used ``maximum_retry_attempts`` retries is discarded instead of
  retried; a batch holding a record older than ``maximum_record_age`` is discarded
  instead of invoked (checked before every attempt, the first included). A discarded
  batch produces a :class:`~sluicegate.core.streams.SendToDestination` when the mapping
  has ``on_failure``; its records are settled either way.
- Records past the stream's retention are gone from the shard: they are settled without
  a destination record when next due (``expired_records``), as a blocked AWS shard loses
  them.

Where AWS differs or is vague, sluicegate's choices:

- AWS retries by re-reading the shard from the checkpoint, so its retry batch may pick
  up records the failed one did not have. sluicegate retries exactly the failed records:
  the retry counter then belongs to a fixed set of records, and a retry never drags
  fresh records into a batch about to be discarded.
- Halves of a bisected batch keep their parent's retry count and invoke count.

Checkpoints, per shard: the highest sequence number at or below which every record read
is settled (succeeded, filtered out, discarded or expired), across all lanes. It only
moves up; each :meth:`StreamMapping.poll` emits at most one
:class:`~sluicegate.core.streams.Checkpoint` per shard whose checkpoint moved since the
previous one, after every ``SendToDestination`` of that poll. A mapping built with stored
``checkpoints`` reads each shard after its checkpoint: records after it may be delivered
again (at-least-once, as on AWS).

Pause (``Enabled=false``) stops fetches and new invocations; invocations in flight run to
their end. Records read but not invoked are simply held (they are above the checkpoint,
so a restart reads them again): :attr:`StreamMapping.idle` does not wait for them.

Every method takes ``now`` in seconds; none reads a clock. Timers sit in a heap; lanes
and shards needing attention in a list, so work per call follows what changed.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from sluicegate.core.batcher import Batcher
from sluicegate.core.config import MAX_PAYLOAD_BYTES
from sluicegate.core.limit import TERM_SHARDS, ConcurrencyLimit, Fixed
from sluicegate.core.pool import ConcurrencyPool
from sluicegate.core.results import InvocationResult, invocation_outcome
from sluicegate.core.signals import Sample, SampleKind, sample_kind
from sluicegate.core.streams import (
    CONDITION_RECORD_AGE_EXCEEDED,
    CONDITION_RETRY_ATTEMPTS_EXHAUSTED,
    Checkpoint,
    Fetch,
    SendToDestination,
    StreamAction,
    StreamBatch,
    StreamConfig,
    StreamInvoke,
    StreamMappingConfig,
    StreamRecord,
    fetch_position,
    lane_for_partition_key,
    on_failure_record,
    shard_id,
)
from sluicegate.core.types import BatchOutcome, OutcomeKind
from sluicegate.errors import ConfigError

__all__ = [
    "FULL_FETCH_INTERVAL",
    "GET_RECORDS_LIMIT",
    "POLL_INTERVAL",
    "READ_AHEAD_BATCHES",
    "RETRY_DELAY",
    "STREAM_THROTTLE_BACKOFF_BASE",
    "STREAM_THROTTLE_BACKOFF_MAX",
    "ShardStatistics",
    "StreamMapping",
    "StreamMappingStatistics",
    "stream_settlement",
]

POLL_INTERVAL: Final = 1.0
"""Seconds between two fetches of a shard when the last one did not come back full.
Lambda's standard (shared-throughput) Kinesis consumer polls each shard about once a
second (lambda-semantics.md 6.1; a shard allows 5 reads/s shared by all its consumers)."""

FULL_FETCH_INTERVAL: Final = 0.2
"""Seconds between two fetches of a shard when the last one came back full (a backlog):
Kinesis allows 5 GetRecords calls per second per shard (Kinesis quotas), and a mapping
catching up uses them all. Throughput limits (2 MB/s per shard) are the store's or the
simulator's to model, not the core's."""

GET_RECORDS_LIMIT: Final = 10_000
"""Most records one fetch asks for: the ``Limit`` maximum of Kinesis GetRecords."""

READ_AHEAD_BATCHES: Final = 2
"""A shard's reader stops fetching while it holds ``READ_AHEAD_BATCHES x
parallelization_factor x batch_size`` unsettled records, or as many times 6 MB (records
read and not yet settled: buffered, in flight or waiting for a retry). sluicegate's
choice: enough for every lane to have one batch in flight and the next one gathered, so
reading never starves a lane, while a blocked shard holds a bounded amount in memory."""

RETRY_DELAY: Final = 1.0
"""Seconds between a failed invocation and the retry of its records (or of the first
half of a bisected batch). AWS publishes no figure; its poller retries by reading the
shard again from the checkpoint, so sluicegate uses the shard's poll cadence
(:data:`POLL_INTERVAL`). A poison record with the default unlimited retries is thus
retried about once a second plus its run time, until it expires or ages out."""

STREAM_THROTTLE_BACKOFF_BASE: Final = 1.0
"""Seconds before retrying a throttled stream batch; doubled by each further throttle of
the same batch. AWS retries throttles with an unpublished backoff; one second, as the
queue mapping uses (:data:`~sluicegate.core.mapping.THROTTLE_BACKOFF_BASE`)."""

STREAM_THROTTLE_BACKOFF_MAX: Final = 60.0
"""Longest wait between two retries of a throttled stream batch, in seconds. sluicegate's
choice: a stream batch has no visibility timeout to fit in (throttles go on until the
records expire or age out), and a lane whose function regains capacity should resume
within a minute."""

_FREE = 0
"""Nothing in flight; no timer pending (records may be queued, about to be examined)."""
_WINDOW = 1
"""Queued records wait for the batching window's deadline (a timer)."""
_DELAYED = 2
"""``todo[0]`` waits for a timer: a retry after a failure, or after a throttle."""
_INVOKING = 3
"""``current`` is being invoked."""

_SUCCESS = OutcomeKind.SUCCESS
_ERROR = OutcomeKind.ERROR
_UNHANDLED = "Unhandled"


class _Shard:
    __slots__ = (
        "after",
        "asked",
        "checkpoint",
        "dirty",
        "emitted",
        "fetching",
        "flagged",
        "gen",
        "held",
        "held_bytes",
        "index",
        "iterator_age_ms",
        "lanes",
        "last_read",
        "name",
        "next_fetch",
        "order",
        "settled",
    )

    def __init__(self, index: int, checkpoint: int | None) -> None:
        self.index = index
        self.name = shard_id(index)
        self.checkpoint = checkpoint
        """Highest sequence number at or below which everything read is settled."""
        self.emitted = checkpoint
        """The checkpoint last emitted (or loaded)."""
        self.after = checkpoint
        """The next fetch reads after this sequence number; ``None``: starting position."""
        self.last_read = checkpoint
        """Highest sequence number read (or skipped over)."""
        self.order: deque[int] = deque()
        """Sequence numbers read and above the checkpoint, in order."""
        self.settled: set[int] = set()
        """Those of ``order`` that are settled."""
        self.held = 0
        self.held_bytes = 0
        self.fetching = False
        self.asked = 0
        self.next_fetch = float("-inf")
        self.gen = 0
        self.flagged = False
        self.dirty = False
        self.iterator_age_ms: float | None = None
        self.lanes: list[_Lane] = []


class _Lane:
    __slots__ = (
        "batcher",
        "current",
        "flagged",
        "function_error",
        "gen",
        "index",
        "request_id",
        "shard",
        "started",
        "started_in_flight",
        "state",
        "todo",
        "waiting",
    )

    def __init__(self, shard: _Shard, index: int, batcher: Batcher[StreamRecord]) -> None:
        self.shard = shard
        self.index = index
        self.batcher = batcher
        """Records read and not yet in a batch, in sequence order: the same batching
        rules as a queue poller's (:class:`~sluicegate.core.batcher.Batcher`); the window
        opens when the first record reaches the empty lane, or when the lane's previous
        invocation ends (:meth:`~sluicegate.core.batcher.Batcher.reopen`), whichever is
        later."""
        self.todo: deque[StreamBatch] = deque()
        """Batches formed and due before anything in ``queue`` (retries, halves)."""
        self.current: StreamBatch | None = None
        self.state = _FREE
        self.gen = 0
        self.flagged = False
        self.request_id: str | None = None
        """Request id of the lane's last finished invocation."""
        self.function_error: str | None = None
        """``"Unhandled"`` when the lane's last finished invocation was a function error."""
        self.waiting = False
        """Whether it is in the mapping's list of lanes waiting for a slot of the limit."""
        self.started = 0.0
        """When its invocation in flight started (for the limit's
        :class:`~sluicegate.core.signals.Sample`)."""
        self.started_in_flight = 0
        """The mapping's invocations in flight when it started, itself included."""


@dataclass(frozen=True, slots=True)
class ShardStatistics:
    """A snapshot of one shard of a stream mapping.

    Attributes:
        shard: the shard index.
        shard_id: its Kinesis-style name.
        checkpoint: the settled position (``None``: nothing settled yet).
        held: records read and not yet settled.
        in_flight: its lanes with an invocation running.
        fetching: whether a fetch is outstanding.
        iterator_age_ms: age of the last record of its last invoked batch when invoked.
    """

    shard: int
    shard_id: str
    checkpoint: int | None
    held: int
    in_flight: int
    fetching: bool
    iterator_age_ms: float | None


@dataclass(frozen=True, slots=True)
class StreamMappingStatistics:
    """A snapshot of a stream mapping's counters (names after AWS's ESM metrics).

    Attributes:
        shards: shards read.
        lanes: ``shards x parallelization_factor``, the most invocations at once.
        in_flight: invocations running.
        fetching: fetches outstanding.
        held_records: records read and not yet settled.
        polled_records: records read (PolledEventCount).
        filtered_records: records the filter rejected (FilteredOutEventCount).
        invocations: ``StreamInvoke`` actions issued.
        invoked_records: records in them (InvokedEventCount).
        errors: invocations that ended in ERROR.
        partial: invocations that ended in PARTIAL.
        failed_records: records of failed invocations, and the failed part of partial
            ones (FailedInvokeEventCount).
        throttles: failed slot acquisitions.
        discarded_records: records of discarded batches (age or retries).
        dropped_records: discarded records with no on-failure destination
            (DroppedEventCount).
        expired_records: records lost to the stream's retention.
        iterator_age_ms: IteratorAge of the last invoked batch, ``None`` before any.
        paused: whether fetches and new invocations are stopped.
    """

    shards: int
    lanes: int
    in_flight: int
    fetching: int
    held_records: int
    polled_records: int
    filtered_records: int
    invocations: int
    invoked_records: int
    errors: int
    partial: int
    failed_records: int
    throttles: int
    discarded_records: int
    dropped_records: int
    expired_records: int
    iterator_age_ms: float | None
    paused: bool


class StreamMapping:
    """One stream mapping's decisions, over every shard of its stream.

    Parameters:
        config: the mapping's configuration (``config.stream`` must be ``stream.name``).
        stream: the stream: its shard count and retention.
        pool: the account's concurrency pool, shared with every other mapping.
        checkpoints: stored checkpoints by shard index; those shards are read after
            them, the others from ``config.starting_position``.
        now: when the mapping is created, in seconds.
        function_arn: the function's ARN for on-failure records (default: its name).
        stream_arn: the stream's ARN for on-failure records (default: its name).
        record_filter: ``FilterCriteria`` as a predicate; a record it rejects is settled
            at once without being invoked (the iterator moves past it, as AWS does).
        read_ahead: most unsettled records a shard holds before its reader stops
            (default: see :data:`READ_AHEAD_BATCHES`); at least ``batch_size``.

    Raises:
        ConfigError: ``config`` is for another stream, a checkpoint names no shard, or
            ``read_ahead`` is below ``batch_size``.

    Attributes:
        polled_records, filtered_records, invocations, invoked_records, errors, partial,
        failed_records, throttles, discarded_records, dropped_records, expired_records:
            counters, see :class:`StreamMappingStatistics`.
        processed_records: records settled by a successful invocation: every record of
            a SUCCESS, and those before the lowest failed sequence number of a PARTIAL
            (what a driver reports as processed; retried records count once, when they
            succeed).
    """

    __slots__ = (
        "_attention",
        "_by_batch",
        "_climit",
        "_dirty",
        "_factor",
        "_fetching",
        "_function",
        "_in_flight",
        "_iterator_age_ms",
        "_limit",
        "_max_iterator_age_ms",
        "_next_batch_id",
        "_paused",
        "_pool",
        "_read_ahead",
        "_read_ahead_bytes",
        "_retention",
        "_sends",
        "_seq",
        "_shards",
        "_slot_wait",
        "_timers",
        "config",
        "discarded_records",
        "dropped_records",
        "errors",
        "expired_records",
        "failed_records",
        "filtered_records",
        "function_arn",
        "invocations",
        "invoked_records",
        "partial",
        "polled_records",
        "processed_records",
        "record_filter",
        "stream",
        "stream_arn",
        "throttles",
    )

    def __init__(
        self,
        config: StreamMappingConfig,
        stream: StreamConfig,
        *,
        pool: ConcurrencyPool,
        checkpoints: Mapping[int, int] | None = None,
        now: float = 0.0,
        function_arn: str | None = None,
        stream_arn: str | None = None,
        record_filter: Callable[[StreamRecord], bool] | None = None,
        read_ahead: int | None = None,
    ) -> None:
        ctx = f"mapping {config.name}"
        if config.stream != stream.name:
            raise ConfigError("stream", stream.name, f"the mapping's stream {config.stream!r}",
                              ctx)
        self.config = config
        self.stream = stream
        self.function_arn = function_arn if function_arn is not None else config.function
        self.stream_arn = stream_arn if stream_arn is not None else stream.name
        self.record_filter = record_filter
        self._function = config.function
        self._pool = pool
        self._factor = config.parallelization_factor
        self._retention = float(stream.retention_period)
        if read_ahead is None:
            read_ahead = READ_AHEAD_BATCHES * self._factor * config.batch_size
        elif isinstance(read_ahead, bool) or not isinstance(read_ahead, int) or (
            read_ahead < config.batch_size
        ):
            raise ConfigError("read_ahead", read_ahead,
                              f"an integer >= batch_size ({config.batch_size})", ctx)
        self._read_ahead = read_ahead
        self._read_ahead_bytes = READ_AHEAD_BATCHES * self._factor * MAX_PAYLOAD_BYTES
        stored = dict(checkpoints or {})
        for index in stored:
            if not 0 <= index < stream.shard_count:
                raise ConfigError("checkpoints", index,
                                  f"shard indices 0-{stream.shard_count - 1}", ctx)
        self._shards: list[_Shard] = []
        for i in range(stream.shard_count):
            shard = _Shard(i, stored.get(i))
            shard.lanes = [
                _Lane(shard, k, Batcher(config.batch_size, config.maximum_batching_window))
                for k in range(self._factor)
            ]
            self._shards.append(shard)
        self._paused = not config.enabled
        self._attention: list[_Shard | _Lane] = []
        self._timers: list[tuple[float, int, _Shard | _Lane, int]] = []
        self._seq = 0
        self._by_batch: dict[int, _Lane] = {}
        self._sends: list[SendToDestination] = []
        self._dirty: list[_Shard] = []
        self._next_batch_id = 1
        self._fetching = 0
        self._in_flight = 0
        self._iterator_age_ms: float | None = None
        self._max_iterator_age_ms: float | None = None
        self.polled_records = 0
        self.filtered_records = 0
        self.invocations = 0
        self.invoked_records = 0
        self.errors = 0
        self.partial = 0
        self.failed_records = 0
        self.throttles = 0
        self.discarded_records = 0
        self.dropped_records = 0
        self.expired_records = 0
        self.processed_records = 0
        self._climit = ConcurrencyLimit(
            [Fixed(TERM_SHARDS, stream.shard_count * self._factor)]
        )
        self._limit = stream.shard_count * self._factor
        """The limit's value as computed by the last :meth:`poll`."""
        self._slot_wait: list[_Lane] = []
        """Lanes with a batch due that found the limit reached (only when a term below
        ``shards`` binds: with ``shards`` alone a free lane always has a slot)."""
        for shard in self._shards:
            self._flag(shard)

    def __repr__(self) -> str:
        return (
            f"StreamMapping({self.config.name}, shards={len(self._shards)}, "
            f"in_flight={self._in_flight}, paused={self._paused})"
        )

    # ------------------------------------------------------------------ properties

    @property
    def name(self) -> str:
        """``stream->function``, as errors, logs and status show the mapping."""
        return self.config.name

    @property
    def concurrency_limit(self) -> ConcurrencyLimit:
        """The mapping's one limit: ``shards`` (``shard_count x parallelization_factor``,
        one batch in flight per lane) and any term a driver adds."""
        return self._climit

    @property
    def limit(self) -> int:
        """The limit's value as of the last :meth:`poll`."""
        return self._limit

    def limit_reason(self, now: float) -> str:
        """The name of the limit's term that binds at ``now``."""
        return self._climit.reason(now)

    @property
    def in_flight(self) -> int:
        """Invocations running (``StreamInvoke`` issued, ``finished`` not yet reported)."""
        return self._in_flight

    @property
    def reading(self) -> int:
        """Fetches outstanding (the protocol's name for :attr:`fetching`)."""
        return self._fetching

    @property
    def fetching(self) -> int:
        """Fetches outstanding."""
        return self._fetching

    @property
    def paused(self) -> bool:
        """Whether fetches and new invocations are stopped."""
        return self._paused

    @property
    def idle(self) -> bool:
        """No fetch outstanding, no invocation in flight, no action waiting to be emitted.

        Records read and not invoked do not count: they lie above the checkpoint and are
        read again after a restart. A graceful shutdown pauses and waits for this."""
        return not (self._fetching or self._in_flight or self._sends or self._dirty)

    @property
    def stopping(self) -> bool:
        """Paused but still finishing work in hand (not yet :attr:`idle`)."""
        return self._paused and not self.idle

    @property
    def checkpoints(self) -> dict[int, int]:
        """The settled position of every shard that has one (what a restart resumes
        after), whether or not its ``Checkpoint`` was emitted yet."""
        return {s.index: s.checkpoint for s in self._shards if s.checkpoint is not None}

    @property
    def iterator_age_ms(self) -> float | None:
        """IteratorAge of the last batch invoked: milliseconds from its last record's
        arrival in the stream to its invocation; ``None`` before the first."""
        return self._iterator_age_ms

    def take_max_iterator_age(self) -> float | None:
        """The largest IteratorAge since the previous call (CloudWatch's Max over a
        period), then forget it; ``None`` when nothing was invoked meanwhile (AWS emits
        no IteratorAge while idle)."""
        age = self._max_iterator_age_ms
        self._max_iterator_age_ms = None
        return age

    def statistics(self) -> StreamMappingStatistics:
        """A snapshot of the counters."""
        return StreamMappingStatistics(
            shards=len(self._shards),
            lanes=len(self._shards) * self._factor,
            in_flight=self._in_flight,
            fetching=self._fetching,
            held_records=sum(s.held for s in self._shards),
            polled_records=self.polled_records,
            filtered_records=self.filtered_records,
            invocations=self.invocations,
            invoked_records=self.invoked_records,
            errors=self.errors,
            partial=self.partial,
            failed_records=self.failed_records,
            throttles=self.throttles,
            discarded_records=self.discarded_records,
            dropped_records=self.dropped_records,
            expired_records=self.expired_records,
            iterator_age_ms=self._iterator_age_ms,
            paused=self._paused,
        )

    def shard_statistics(self) -> list[ShardStatistics]:
        """A snapshot of every shard, in shard order."""
        return [
            ShardStatistics(
                shard=s.index,
                shard_id=s.name,
                checkpoint=s.checkpoint,
                held=s.held,
                in_flight=sum(1 for lane in s.lanes if lane.state == _INVOKING),
                fetching=s.fetching,
                iterator_age_ms=s.iterator_age_ms,
            )
            for s in self._shards
        ]

    # ------------------------------------------------------------------ control

    def pause(self, now: float) -> None:
        """Stop fetches and new invocations from ``now`` on; invocations run to their end."""
        self._paused = True

    def resume(self, now: float) -> None:
        """Fetch and invoke again (at the next :meth:`poll`). No-op when not paused."""
        if not self._paused:
            return
        self._paused = False
        for shard in self._shards:
            self._flag(shard)
            for lane in shard.lanes:
                self._flag(lane)

    # ------------------------------------------------------------------ driver API

    def poll(self, now: float) -> list[StreamAction]:
        """Every action that should start at ``now``.

        Parameters:
            now: the current time in seconds.

        Returns:
            ``SendToDestination`` actions first, then ``Checkpoint`` actions (perform
            them in this order: a destination record before the checkpoint that passes
            its records), then ``StreamInvoke`` and ``Fetch`` actions in no promised
            order.
        """
        actions: list[StreamAction] = []
        limit = self._climit.fixed
        if limit is None:
            limit = self._climit.value(now)
        self._limit = limit
        if self._slot_wait and self._in_flight < limit:
            self._wake_waiting()
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, _, item, gen = heapq.heappop(timers)
            if item.gen != gen:
                continue
            if isinstance(item, _Lane):
                item.state = _FREE
                item.gen += 1
                self._advance_lane(item, now, actions)
            else:
                self._advance_shard(item, now, actions)
        attention = self._attention
        i = 0
        while i < len(attention):
            item = attention[i]
            i += 1
            item.flagged = False
            if isinstance(item, _Lane):
                self._advance_lane(item, now, actions)
            else:
                self._advance_shard(item, now, actions)
        attention.clear()
        if not (self._sends or self._dirty):
            return actions
        out: list[StreamAction] = list(self._sends)
        self._sends.clear()
        for shard in self._dirty:
            shard.dirty = False
            checkpoint = shard.checkpoint
            if checkpoint is not None and checkpoint != shard.emitted:
                out.append(Checkpoint(shard.index, shard.name, checkpoint))
                shard.emitted = checkpoint
        self._dirty.clear()
        out.extend(actions)
        return out

    def read_done(
        self,
        now: float,
        read: Fetch,
        records: Sequence[StreamRecord],
        *,
        latest: int | None = None,
    ) -> None:
        """The fetch ``read`` returned ``records``; ``latest`` is the shard's latest
        sequence number, read before them (``None``: the shard was not read).

        The protocol's report of a read (:class:`~sluicegate.core.protocol.MappingCore`):
        where the shard's iterator now stands (a first read at ``LATEST``, a retention
        gap) is decided here, by :func:`~sluicegate.core.streams.fetch_position`, then
        reported as :meth:`fetched` does.
        """
        self.fetched(now, read.shard, records,
                     position=fetch_position(read, latest, bool(records)))

    def outcome_of(self, result: InvocationResult, batch: StreamBatch) -> BatchOutcome:
        """How an invocation of ``batch`` that ended as ``result`` settles it: the one
        rule (:func:`~sluicegate.core.results.invocation_outcome`), with sequence numbers
        as item identifiers and the mapping's ReportBatchItemFailures."""
        return invocation_outcome(
            result, batch, report_batch_item_failures=self.config.report_batch_item_failures
        )

    def fetched(
        self,
        now: float,
        shard: int,
        records: Sequence[StreamRecord],
        *,
        position: int | None = None,
    ) -> None:
        """The fetch issued for ``shard`` returned ``records`` (empty: nothing there).

        Parameters:
            now: when the fetch returned, in seconds.
            shard: the ``Fetch.shard`` of the fetch.
            records: what it returned, in sequence order, all above the position asked.
            position: where the shard's iterator now stands, when that is past the last
                record returned: the sequence number the next read starts after. A
                driver MUST give it when it resolves ``LATEST`` (the shard's last
                sequence number at that moment, or -1 for an empty shard), or else each
                fetch resolves ``LATEST`` again and misses what arrived in between; it
                may give it when it skipped records (trimmed by retention). The
                mapping treats what lies up to it as settled, so the checkpoint can move
                there.

        Raises:
            RuntimeError: no fetch of ``shard`` is outstanding, or records out of order,
                of another shard, or at or below what was read already (a driver bug).
        """
        s = self._shards[shard] if 0 <= shard < len(self._shards) else None
        if s is None or not s.fetching:
            raise RuntimeError(f"shard {shard} of {self.config.name} has no fetch outstanding")
        last = s.last_read
        for r in records:
            seq = r.sequence_number
            if r.shard != shard or (last is not None and seq <= last):
                raise RuntimeError(
                    f"{self.config.name}: record {seq} of shard {r.shard} out of order in a "
                    f"fetch of shard {shard} (last read {last})"
                )
            last = seq
        if position is not None and last is not None and position < last:
            raise RuntimeError(
                f"{self.config.name}: position {position} below the last record read ({last})"
            )
        s.fetching = False
        self._fetching -= 1
        count = len(records)
        if count:
            self.polled_records += count
            accept = self.record_filter
            order = s.order
            lanes = s.lanes
            factor = self._factor
            rejected: list[StreamRecord] = []
            incoming: dict[int, list[StreamRecord]] = {}
            for r in records:
                order.append(r.sequence_number)
                s.held += 1
                s.held_bytes += r.size
                if accept is not None and not accept(r):
                    rejected.append(r)
                    continue
                k = 0 if factor == 1 else lane_for_partition_key(r.partition_key, factor)
                got = incoming.get(k)
                if got is None:
                    got = incoming[k] = []
                    lane = lanes[k]
                    if not lane.flagged:
                        lane.flagged = True
                        self._attention.append(lane)
                got.append(r)
            for k, got in incoming.items():
                lanes[k].batcher.add(now, got)
            if rejected:
                self.filtered_records += len(rejected)
                self._settle(s, rejected)
        if position is not None and (last is None or position > last):
            s.order.append(position)
            s.settled.add(position)
            last = position
            self._advance_checkpoint(s)
        s.last_read = last
        if last is not None:
            s.after = last
        delay = FULL_FETCH_INTERVAL if count and count >= s.asked else POLL_INTERVAL
        s.next_fetch = now + delay
        self._push_timer(s.next_fetch, s)

    def finished(
        self,
        now: float,
        batch_id: int,
        outcome: BatchOutcome,
        *,
        request_id: str | None = None,
    ) -> None:
        """The invocation of batch ``batch_id`` ended with ``outcome``; releases its slot.

        Parameters:
            now: when it ended, in seconds.
            batch_id: ``StreamInvoke.batch.id``.
            outcome: how it settled (:meth:`outcome_of`;
                for PARTIAL, ``failed`` holds sequence numbers as strings; for ERROR,
                ``failed`` is not looked at).
            request_id: the invocation's request id, quoted by an on-failure record.

        Raises:
            RuntimeError: no invocation of that batch is in flight (a driver bug).
        """
        lane = self._by_batch.pop(batch_id, None)
        if lane is None:
            raise RuntimeError(f"batch {batch_id} of {self.config.name} is not in flight")
        batch = lane.current
        assert batch is not None
        lane.current = None
        lane.state = _FREE
        lane.batcher.reopen(now)
        lane.request_id = request_id
        self._in_flight -= 1
        self._pool.release(self._function)
        if self._climit.observers:
            self._climit.observe(now, Sample(
                lane.started, now, sample_kind(outcome), len(batch.records),
                lane.started_in_flight, outcome.latency, outcome.overload))
        if self._slot_wait:
            self._wake_waiting()
        shard = lane.shard
        kind, cut = stream_settlement(batch, outcome)
        if kind is _SUCCESS:
            lane.function_error = None
            self.processed_records += len(batch.records)
            self._settle(shard, batch.records)
            self._flag(lane)
            return
        records = batch.records
        if kind is _ERROR:
            self.errors += 1
            self.failed_records += len(records)
            lane.function_error = _UNHANDLED
            if self.config.bisect_batch_on_function_error and len(records) > 1:
                middle = len(records) // 2
                lane.todo.appendleft(self._derive(batch, records[middle:], batch.retries))
                lane.todo.appendleft(self._derive(batch, records[:middle], batch.retries))
                self._delay(lane, now + RETRY_DELAY)
                return
        else:
            self.partial += 1
            lane.function_error = None
            if cut:
                self.processed_records += cut
                self._settle(shard, records[:cut])
                records = records[cut:]
            self.failed_records += len(records)
        limit = self.config.maximum_retry_attempts
        if 0 <= limit <= batch.retries:
            self._discard(lane, self._derive(batch, records, batch.retries),
                          CONDITION_RETRY_ATTEMPTS_EXHAUSTED, now)
            self._flag(lane)
            return
        lane.todo.appendleft(self._derive(batch, records, batch.retries + 1))
        self._delay(lane, now + RETRY_DELAY)

    def next_wakeup(self, now: float) -> float | None:
        """When :meth:`poll` may next have something to do without any report arriving.

        Parameters:
            now: the current time in seconds.

        Returns:
            ``now`` when :meth:`poll` has work already; else the earliest pending timer
            (a shard's next fetch, a batching window, a retry, a throttle backoff);
            ``None`` when nothing timed is pending, or while paused.
        """
        if self._attention or self._sends or self._dirty:
            return now
        if self._paused:
            return None
        if self._slot_wait:
            limit = self._climit.fixed
            if limit is None:
                limit = self._climit.value(now)
            if self._in_flight < limit:
                return now  # a slot is free (a term changed): the waiting lanes take it
        timers = self._timers
        while timers and timers[0][2].gen != timers[0][3]:
            heapq.heappop(timers)
        if not timers:
            return None
        when = timers[0][0]
        return now if when < now else when

    # ------------------------------------------------------------------ internals

    def _flag(self, item: _Shard | _Lane) -> None:
        if not item.flagged:
            item.flagged = True
            self._attention.append(item)

    def _wake_waiting(self) -> None:
        """Put the lanes waiting for a slot back on the attention list, in the order they
        came (each takes a slot in :meth:`_advance_lane` if one is free, else waits
        again)."""
        for lane in self._slot_wait:
            lane.waiting = False
            self._flag(lane)
        self._slot_wait.clear()

    def _push_timer(self, when: float, item: _Shard | _Lane) -> None:
        item.gen += 1
        self._seq += 1
        heapq.heappush(self._timers, (when, self._seq, item, item.gen))

    def _delay(self, lane: _Lane, when: float) -> None:
        lane.state = _DELAYED
        self._push_timer(when, lane)

    def _derive(
        self, parent: StreamBatch, records: tuple[StreamRecord, ...], retries: int
    ) -> StreamBatch:
        batch = StreamBatch(
            self._next_batch_id, parent.shard, parent.lane, records, retries,
            parent.invoke_count,
        )
        self._next_batch_id += 1
        return batch

    def _advance_shard(self, s: _Shard, now: float, actions: list[StreamAction]) -> None:
        """Fetch when the shard is due, has room, and the mapping is not paused."""
        if s.fetching or self._paused or now < s.next_fetch:
            return  # a timer for next_fetch is pending; a settle re-flags a full shard
        room = self._read_ahead - s.held
        if room <= 0 or s.held_bytes >= self._read_ahead_bytes:
            return
        asked = room if room < GET_RECORDS_LIMIT else GET_RECORDS_LIMIT
        s.fetching = True
        s.asked = asked
        self._fetching += 1
        cfg = self.config
        actions.append(
            Fetch(s.index, s.name, s.after, cfg.starting_position,
                  cfg.starting_position_timestamp, asked)
        )

    def _advance_lane(self, lane: _Lane, now: float, actions: list[StreamAction]) -> None:
        """Decide for a lane: invoke its next batch, wait for its window, or nothing."""
        state = lane.state
        if state == _INVOKING or state == _DELAYED:
            return
        if state == _WINDOW:
            lane.state = _FREE
            lane.gen += 1  # cancel the window timer: it is examined afresh
        if self._paused:
            return
        cfg = self.config
        todo = lane.todo
        shard = lane.shard
        while True:
            if todo:
                batch = todo[0]
            else:
                batcher = lane.batcher
                if not batcher.buffer:
                    return
                taken = batcher.take_ready(now)
                if not taken:
                    deadline = batcher.deadline()
                    assert deadline is not None
                    lane.state = _WINDOW
                    self._push_timer(deadline, lane)
                    return
                batch = StreamBatch(self._next_batch_id, shard.index, lane.index, taken)
                self._next_batch_id += 1
                todo.append(batch)
            records = batch.records
            oldest = min([r.approximate_arrival for r in records])
            if oldest + self._retention <= now:
                horizon = now - self._retention
                expired = [r for r in records if r.approximate_arrival <= horizon]
                self.expired_records += len(expired)
                self._settle(shard, expired)
                kept = tuple([r for r in records if r.approximate_arrival > horizon])
                if not kept:
                    todo.popleft()
                    continue
                batch = StreamBatch(batch.id, batch.shard, batch.lane, kept, batch.retries,
                                    batch.invoke_count, batch.throttles)
                todo[0] = batch
                records = kept
                oldest = min([r.approximate_arrival for r in records])
            max_age = cfg.maximum_record_age
            if max_age >= 0 and now - oldest > max_age:
                todo.popleft()
                self._discard(lane, batch, CONDITION_RECORD_AGE_EXCEEDED, now)
                continue
            if self._in_flight >= self._limit:
                # the limit binds below one batch per lane: wait for a slot (a finishing
                # invocation or a poll that finds the limit raised wakes the lane)
                if not lane.waiting:
                    lane.waiting = True
                    self._slot_wait.append(lane)
                return
            if not self._pool.try_acquire(self._function):
                self.throttles += 1
                batch.throttles += 1
                if self._climit.observers:
                    self._climit.observe(now, Sample(now, now, SampleKind.THROTTLE, 0,
                                                     self._in_flight))
                shift = batch.throttles - 1
                delay = (STREAM_THROTTLE_BACKOFF_MAX if shift >= 30 else
                         min(STREAM_THROTTLE_BACKOFF_BASE * (1 << shift),
                             STREAM_THROTTLE_BACKOFF_MAX))
                self._delay(lane, now + delay)
                return
            todo.popleft()
            batch.invoke_count += 1
            lane.state = _INVOKING
            lane.current = batch
            self._by_batch[batch.id] = lane
            self._in_flight += 1
            lane.started = now
            lane.started_in_flight = self._in_flight
            self.invocations += 1
            self.invoked_records += len(records)
            age = (now - records[-1].approximate_arrival) * 1000.0
            if age < 0:
                age = 0.0
            self._iterator_age_ms = age
            shard.iterator_age_ms = age
            top = self._max_iterator_age_ms
            if top is None or age > top:
                self._max_iterator_age_ms = age
            actions.append(StreamInvoke(batch))
            return

    def _discard(self, lane: _Lane, batch: StreamBatch, condition: str, now: float) -> None:
        """Give up on ``batch``: on-failure record (if configured), then settle it."""
        count = len(batch.records)
        self.discarded_records += count
        destination = self.config.on_failure
        if destination is not None:
            invoked = batch.invoke_count > 0
            record = on_failure_record(
                batch,
                condition=condition,
                now=now,
                function_arn=self.function_arn,
                stream_arn=self.stream_arn,
                request_id=lane.request_id if invoked else None,
                function_error=lane.function_error if invoked else None,
            )
            self._sends.append(SendToDestination(destination, record, batch, condition))
        else:
            self.dropped_records += count
        self._settle(lane.shard, batch.records)

    def _settle(self, s: _Shard, records: Sequence[StreamRecord]) -> None:
        """Mark records settled, free their read-ahead, move the checkpoint."""
        settled = s.settled
        freed = 0
        for r in records:
            settled.add(r.sequence_number)
            freed += r.size
        s.held -= len(records)
        s.held_bytes -= freed
        self._advance_checkpoint(s)
        if not s.fetching:
            self._flag(s)

    def _advance_checkpoint(self, s: _Shard) -> None:
        order = s.order
        settled = s.settled
        moved = False
        while order and order[0] in settled:
            seq = order.popleft()
            settled.remove(seq)
            s.checkpoint = seq
            moved = True
        if moved and not s.dirty:
            s.dirty = True
            self._dirty.append(s)


def stream_settlement(batch: StreamBatch, outcome: BatchOutcome) -> tuple[OutcomeKind, int]:
    """How ``outcome`` settles the records of a stream ``batch`` (lambda-semantics.md 6.2).

    SUCCESS settles every record: the checkpoint may move to the batch's last sequence
    number. ERROR settles none: the whole batch is retried (or bisected, or discarded
    once out of retries). PARTIAL settles the records before the lowest reported
    sequence number (AWS checkpoints just before it) and retries that record and every
    later one, even those not reported; a PARTIAL that lists nothing is SUCCESS, and one
    naming a sequence number the batch does not hold is ERROR.

    Parameters:
        batch: the invoked batch.
        outcome: how its invocation settled (from
            :meth:`StreamMapping.outcome_of`, i.e.
            :func:`~sluicegate.core.results.invocation_outcome`).

    Returns:
        ``(kind, settled)``: the kind after those rules, and how many leading records of
        ``batch.records`` are settled (all for SUCCESS, 0 for ERROR).
    """
    kind = outcome.kind
    if kind is _SUCCESS:
        return kind, len(batch.records)
    if kind is _ERROR:
        return kind, 0
    found = _lowest_failed(batch, outcome.failed)
    if found is None:
        return _ERROR, 0  # an identifier the batch does not hold: the batch failed
    if found < 0:
        return _SUCCESS, len(batch.records)  # nothing listed
    return kind, found


def _lowest_failed(batch: StreamBatch, failed: frozenset[str]) -> int | None:
    """Position in ``batch`` of the lowest failed sequence number; -1 when ``failed`` is
    empty; ``None`` when one of them is not a sequence number of the batch."""
    if not failed:
        return -1
    positions = {str(r.sequence_number): i for i, r in enumerate(batch.records)}
    lowest = len(batch.records)
    for identifier in failed:
        i = positions.get(identifier)
        if i is None:
            return None
        lowest = min(lowest, i)
    return lowest
