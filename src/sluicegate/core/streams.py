"""Partitioned streams, Kinesis-style: routing, configuration, records and actions.

A stream is split into ``shard_count`` shards. A record's partition key chooses its shard
the way Kinesis does: the MD5 of the key (UTF-8) read as an unsigned 128-bit big-endian
integer, the *hash key*, falls in exactly one shard's range, and the range 0..2**128-1 is
split evenly, shard ``i`` starting at ``i * 2**128 // shard_count`` (Kinesis
CreateStream; the ranges ``sluicegate streams`` shows are :func:`hash_key_ranges`).
Within a shard every record gets a sequence number, increasing in the order records were
put; sluicegate keeps them as Python ints (Kinesis shows them as decimal strings).

An event source mapping reads each shard in sequence-number order and invokes its
function with batches (see :mod:`sluicegate.core.stream_mapping`). This module holds the
values it exchanges with a driver:

- :class:`StreamConfig` and :class:`StreamMappingConfig`, frozen and validated with AWS's
  names and ranges (a value outside them raises
  :class:`~sluicegate.errors.ConfigError` when the object is built);
- :class:`StreamRecord` (one record read from a shard) and :class:`StreamBatch` (the
  records of one invocation);
- the actions: :class:`Fetch`, :class:`StreamInvoke`, :class:`Checkpoint`,
  :class:`SendToDestination`;
- the result rules are :mod:`sluicegate.core.results`' for every source: a
  :class:`StreamBatch` names its sequence numbers as item identifiers
  (:attr:`StreamBatch.message_ids`, :attr:`StreamBatch.item_name`), and a stream
  mapping's ``outcome_of`` applies :func:`~sluicegate.core.results.invocation_outcome`;
- :func:`on_failure_record`: the record an on-failure destination receives when a batch
  is discarded.
"""

from __future__ import annotations

import hashlib
import math
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal

from sluicegate.core.adaptive import AdaptiveConfig
from sluicegate.core.config import as_breaker, as_filter_criteria, check_semaphore_names
from sluicegate.core.filters import FilterCriteria
from sluicegate.core.settings import SETTINGS, STREAM
from sluicegate.errors import ConfigError, InputError

if TYPE_CHECKING:
    from sluicegate.core.breaker import BreakerConfig

__all__ = [
    "CONDITION_RECORD_AGE_EXCEEDED",
    "CONDITION_RETRY_ATTEMPTS_EXHAUSTED",
    "DEFAULT_STREAM_RETENTION",
    "HASH_KEY_SPACE",
    "MAX_PARTITION_KEY_LENGTH",
    "MAX_STREAM_RETENTION",
    "MAX_STREAM_SHARDS",
    "MIN_STREAM_RETENTION",
    "SEQUENCE_NUMBER",
    "Checkpoint",
    "Fetch",
    "HashKeyRange",
    "SendToDestination",
    "StartingPosition",
    "StreamAction",
    "StreamBatch",
    "StreamConfig",
    "StreamInvoke",
    "StreamMappingConfig",
    "StreamRecord",
    "check_partition_key",
    "fetch_position",
    "hash_key",
    "hash_key_range",
    "hash_key_ranges",
    "iso_instant",
    "lane_for_partition_key",
    "on_failure_record",
    "shard_for_hash_key",
    "shard_for_partition_key",
    "shard_id",
]

# ---------------------------------------------------------------------- routing

HASH_KEY_SPACE: Final = 1 << 128
"""Number of hash keys: MD5 digests read as unsigned 128-bit integers (Kinesis
PutRecord, "partition key ... MD5 hash function is used to map partition keys to 128-bit
integer values")."""

MAX_PARTITION_KEY_LENGTH: Final = 256
"""Longest partition key, in Unicode characters (Kinesis PutRecord: 1-256)."""


def check_partition_key(key: Any) -> str:
    """Refuse a partition key Kinesis would refuse.

    Parameters:
        key: the partition key as given by the user.

    Returns:
        ``key`` unchanged.

    Raises:
        InputError: not a string, empty, or longer than 256 characters.
    """
    if not isinstance(key, str):
        raise InputError(f"partition key {key!r} is invalid: allowed a string of 1-256 characters")
    if not 1 <= len(key) <= MAX_PARTITION_KEY_LENGTH:
        shown = key if len(key) <= 40 else key[:37] + "..."
        raise InputError(
            f"partition key {shown!r} ({len(key)} characters) is invalid: "
            f"allowed 1-{MAX_PARTITION_KEY_LENGTH} characters"
        )
    return key


def hash_key(partition_key: str) -> int:
    """The 128-bit hash key of ``partition_key``: its UTF-8 MD5, big-endian, unsigned.

    Raises:
        InputError: an invalid partition key (see :func:`check_partition_key`).
    """
    check_partition_key(partition_key)
    digest = hashlib.md5(partition_key.encode("utf-8"), usedforsecurity=False).digest()
    return int.from_bytes(digest, "big")


def _range_start(shard: int, shard_count: int) -> int:
    return shard * HASH_KEY_SPACE // shard_count


def _check_shard_count(shard_count: int) -> None:
    if isinstance(shard_count, bool) or not isinstance(shard_count, int) or shard_count < 1:
        raise ConfigError("shard_count", shard_count, "an integer >= 1", "routing")


def shard_for_hash_key(key: int, shard_count: int) -> int:
    """The shard whose hash-key range holds ``key``.

    Parameters:
        key: a hash key, 0 to 2**128-1.
        shard_count: shards of the stream (>= 1), splitting the space evenly.

    Returns:
        The shard index, 0 to ``shard_count - 1``.

    Raises:
        ConfigError: ``shard_count`` below 1.
        ValueError: ``key`` outside the hash-key space.
    """
    _check_shard_count(shard_count)
    if not 0 <= key < HASH_KEY_SPACE:
        raise ValueError(f"hash key {key} outside 0..2**128-1")
    shard = (key * shard_count) >> 128
    # shard * 2**128 / n <= key holds exactly; the range of shard + 1 starts at the floor
    # of a fraction, so a key equal to that floor belongs to the next shard.
    if shard + 1 < shard_count and _range_start(shard + 1, shard_count) <= key:
        shard += 1
    return shard


def shard_for_partition_key(key: str, shard_count: int) -> int:
    """The shard a record with partition key ``key`` goes to, as Kinesis routes it.

    Parameters:
        key: the partition key, 1-256 characters.
        shard_count: shards of the stream (>= 1).

    Returns:
        The shard index, 0 to ``shard_count - 1``.

    Raises:
        InputError: an invalid partition key.
        ConfigError: ``shard_count`` below 1.
    """
    return shard_for_hash_key(hash_key(key), shard_count)


def shard_id(shard: int) -> str:
    """Kinesis's name of shard ``shard``: ``shardId-`` and twelve digits."""
    return f"shardId-{shard:012d}"


@dataclass(frozen=True, slots=True)
class HashKeyRange:
    """The hash keys one shard owns (both ends included), as Kinesis's ListShards shows.

    Attributes:
        shard: the shard index.
        shard_id: its Kinesis-style name.
        starting_hash_key: the first hash key of the range.
        ending_hash_key: the last hash key of the range.
    """

    shard: int
    shard_id: str
    starting_hash_key: int
    ending_hash_key: int


def hash_key_range(shard: int, shard_count: int) -> HashKeyRange:
    """The hash-key range of ``shard`` in a stream of ``shard_count`` shards.

    Raises:
        ConfigError: ``shard_count`` below 1.
        ValueError: ``shard`` outside 0..shard_count-1.
    """
    _check_shard_count(shard_count)
    if not 0 <= shard < shard_count:
        raise ValueError(f"shard {shard} outside 0..{shard_count - 1}")
    return HashKeyRange(
        shard,
        shard_id(shard),
        _range_start(shard, shard_count),
        _range_start(shard + 1, shard_count) - 1,
    )


def hash_key_ranges(shard_count: int) -> list[HashKeyRange]:
    """Every shard's hash-key range, in shard order; together they cover 0..2**128-1."""
    _check_shard_count(shard_count)
    return [hash_key_range(i, shard_count) for i in range(shard_count)]


def lane_for_partition_key(key: str, parallelization_factor: int) -> int:
    """The lane, among a shard's ``parallelization_factor`` lanes, that carries ``key``.

    AWS says only that records of one partition key are processed in order when
    ``ParallelizationFactor`` > 1. sluicegate's rule: the CRC-32 of the key's UTF-8 bytes
    modulo the factor. It is stable across processes and restarts (unlike ``hash()``),
    cheap on the hot path, and independent of the MD5 that chose the shard, so keys of one
    shard spread evenly over its lanes.

    Parameters:
        key: the partition key.
        parallelization_factor: lanes per shard, >= 1.

    Returns:
        The lane index, 0 to ``parallelization_factor - 1``.
    """
    if parallelization_factor == 1:
        return 0
    return zlib.crc32(key.encode("utf-8")) % parallelization_factor


# ---------------------------------------------------------------------- configuration

MIN_STREAM_RETENTION: Final[int] = SETTINGS["retention_period"].range_for(STREAM)[0]
"""Shortest retention of a stream, in seconds (24 hours, Kinesis's minimum and default)."""

DEFAULT_STREAM_RETENTION: Final[int] = SETTINGS["retention_period"].default_for(STREAM)
"""Retention of a new stream, in seconds (24 hours, Kinesis's default)."""

MAX_STREAM_RETENTION: Final[int] = SETTINGS["retention_period"].range_for(STREAM)[1]
"""Longest retention of a stream, in seconds (8,760 hours = 365 days, Kinesis's maximum
with long-term retention)."""

MAX_STREAM_SHARDS: Final[int] = SETTINGS["shard_count"].range_for(STREAM)[1]
"""Most shards sluicegate accepts for one stream. Kinesis's shard quota is per account and
raisable (500 or 200 by region); this bound is sluicegate's guard against a typo that
would create millions of shards, not an AWS limit."""

StartingPosition = Literal["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"]
STARTING_POSITIONS: tuple[str, ...] = SETTINGS["starting_position"].choices

CONDITION_RETRY_ATTEMPTS_EXHAUSTED: Final = "RetryAttemptsExhausted"
"""``requestContext.condition`` of a batch discarded after ``maximum_retry_attempts``
(Lambda developer guide, Kinesis on-failure destinations)."""

CONDITION_RECORD_AGE_EXCEEDED: Final = "RecordAgeExceeded"
"""``requestContext.condition`` of a batch discarded for a record older than
``maximum_record_age``. AWS's exact word is not verified (lambda-semantics.md 6.1);
sluicegate uses this one, parallel to the async ``EventAgeExceeded``."""

NO_STREAM_FILTER = FilterCriteria(source="stream")
"""The criteria of a stream mapping without filters (immutable, shared)."""

_STREAM_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """A Kinesis-style stream.

    Parameters:
        name: 1-128 letters, digits, ``_``, ``-`` or ``.`` (Kinesis's stream names).
        shard_count: shards, 1-10,000 (default 1); see :data:`MAX_STREAM_SHARDS`.
        retention_period: seconds a record stays readable, 86,400-31,536,000 (24 hours
            to 365 days, Kinesis's range; default 24 hours); a ``timedelta`` is accepted.
    """

    name: str
    shard_count: int = SETTINGS["shard_count"].default_for(STREAM)
    retention_period: int = DEFAULT_STREAM_RETENTION

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _STREAM_NAME.match(self.name):
            raise ConfigError(
                "name", self.name, "1-128 letters, digits, '_', '-' or '.'", "stream"
            )
        ctx = f"stream {self.name!r}"
        set_ = object.__setattr__
        for name in ("shard_count", "retention_period"):
            set_(self, name, SETTINGS[name].check(getattr(self, name), ctx, STREAM))

    def shard_ids(self) -> list[str]:
        """The names of the stream's shards, in order."""
        return [shard_id(i) for i in range(self.shard_count)]


def _timestamp(value: Any, ctx: str) -> float:
    """``starting_position_timestamp`` as Unix seconds (number or aware datetime)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ConfigError(
                "starting_position_timestamp", value, "Unix seconds or an aware datetime", ctx
            )
        return value.timestamp()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(
            "starting_position_timestamp", value, "Unix seconds or an aware datetime", ctx
        )
    if value < 0:
        raise ConfigError("starting_position_timestamp", value, "Unix seconds >= 0", ctx)
    return float(value)


@dataclass(frozen=True, slots=True)
class StreamMappingConfig:
    """An event source mapping from a stream to a function (AWS's Kinesis parameters).

    Parameters:
        stream: the source stream's name.
        function: the target function's name.
        starting_position: where a shard without a checkpoint is first read:
            ``"TRIM_HORIZON"`` (its oldest record; the default), ``"LATEST"`` (records
            put after the mapping first reads it) or ``"AT_TIMESTAMP"``. AWS requires it;
            sluicegate defaults to ``TRIM_HORIZON`` so that records put before the
            runtime started are processed, which is what a local user expects.
        starting_position_timestamp: Unix seconds (or an aware ``datetime``); required
            with ``AT_TIMESTAMP``, refused otherwise.
        batch_size: records per invocation, 1-10,000 (default 100).
        maximum_batching_window: seconds to gather a batch, 0-300 (default 0).
        parallelization_factor: concurrent batches per shard, 1-10 (default 1); records
            of one partition key stay in order.
        bisect_batch_on_function_error: on a function error, split the batch in two and
            retry each half (default ``False``); splits do not count as retries.
        maximum_retry_attempts: retries of a failed batch before it is discarded, 0-10,000,
            or -1 for no limit (the default: retry until the records expire).
        maximum_record_age: seconds, 60-604,800, or -1 for no limit (the default); a
            batch holding an older record is discarded instead of invoked. 0-59 are
            refused, as AWS refuses them.
        on_failure: the queue that receives an on-failure record (metadata, no records)
            for every discarded batch; ``None`` for none.
        report_batch_item_failures: honour ``batchItemFailures`` (sequence numbers) in
            handler responses.
        enabled: ``False`` creates the mapping paused.
        filter_criteria: only records matching one of these patterns (applied to the
            record's ``data`` and metadata) reach the function; the others are skipped,
            as AWS does (a list of patterns is accepted).
        breaker: the circuit breaker in front of the function's downstream (a shared
            breaker's name, a :class:`~sluicegate.core.breaker.BreakerConfig` or a dict
            of its settings; see :class:`~sluicegate.core.config.MappingConfig`). While
            it is open, the shards hold at their checkpoints: no retry is spent.
        adaptive: an adaptive limit below ``shard_count x parallelization_factor``
            (:class:`~sluicegate.core.adaptive.AdaptiveConfig`, or a dict of its
            parameters): the mapping's limit gets the ``adaptive`` term, so a stream
            that calls a downstream runs fewer lanes at once when it slows down;
            ``None`` (default): none.
    """

    stream: str
    function: str
    starting_position: StartingPosition = SETTINGS["starting_position"].default
    starting_position_timestamp: float | None = None
    batch_size: int = SETTINGS["batch_size"].default_for(STREAM)
    maximum_batching_window: int = SETTINGS["maximum_batching_window"].default_for(STREAM)
    parallelization_factor: int = SETTINGS["parallelization_factor"].default
    bisect_batch_on_function_error: bool = SETTINGS["bisect_batch_on_function_error"].default
    maximum_retry_attempts: int = SETTINGS["maximum_retry_attempts"].default
    maximum_record_age: int = SETTINGS["maximum_record_age"].default
    on_failure: str | None = None
    report_batch_item_failures: bool = SETTINGS["report_batch_item_failures"].default
    enabled: bool = SETTINGS["enabled"].default
    filter_criteria: FilterCriteria = NO_STREAM_FILTER
    semaphores: tuple[str, ...] = ()
    breaker: str | BreakerConfig | None = None
    adaptive: AdaptiveConfig | None = None

    @property
    def name(self) -> str:
        """``stream->function``, how the mapping is shown in errors and status."""
        return f"{self.stream}->{self.function}"

    def __post_init__(self) -> None:
        ctx = f"mapping {self.stream}->{self.function}"
        set_ = object.__setattr__
        if self.starting_position not in STARTING_POSITIONS:
            raise ConfigError(
                "starting_position",
                self.starting_position,
                ", ".join(STARTING_POSITIONS),
                ctx,
            )
        if self.starting_position == "AT_TIMESTAMP":
            if self.starting_position_timestamp is None:
                raise ConfigError(
                    "starting_position_timestamp", None, "Unix seconds with AT_TIMESTAMP", ctx
                )
            set_(self, "starting_position_timestamp",
                 _timestamp(self.starting_position_timestamp, ctx))
        elif self.starting_position_timestamp is not None:
            raise ConfigError(
                "starting_position_timestamp",
                self.starting_position_timestamp,
                "only with starting_position AT_TIMESTAMP",
                ctx,
            )
        for name in ("batch_size", "maximum_batching_window", "parallelization_factor",
                     "bisect_batch_on_function_error", "maximum_retry_attempts",
                     "maximum_record_age"):
            set_(self, name, SETTINGS[name].check(getattr(self, name), ctx, STREAM))
        if self.on_failure is not None and (
            not isinstance(self.on_failure, str) or not _QUEUE_NAME.match(self.on_failure)
        ):
            raise ConfigError("on_failure", self.on_failure, "a queue name or None", ctx)
        for name in ("report_batch_item_failures", "enabled"):
            set_(self, name, SETTINGS[name].check(getattr(self, name), ctx, STREAM))
        set_(self, "filter_criteria", as_filter_criteria(self.filter_criteria, "stream"))
        set_(self, "semaphores", check_semaphore_names(self.semaphores, ctx))
        set_(self, "breaker", as_breaker(self.breaker, ctx))
        adaptive: Any = self.adaptive
        if isinstance(adaptive, Mapping):
            set_(self, "adaptive", AdaptiveConfig.from_mapping(adaptive, ctx))
        elif adaptive is not None and not isinstance(adaptive, AdaptiveConfig):
            raise ConfigError("adaptive", adaptive,
                              "an AdaptiveConfig or a dict of its parameters", ctx)


# ---------------------------------------------------------------------- records


@dataclass(slots=True, eq=False)
class StreamRecord:
    """What the core needs to know of one record read from a shard. Treat it as read-only.

    Not frozen, for the reason given at :class:`~sluicegate.core.types.QueueRecord`;
    compared and hashed by identity.

    Attributes:
        shard: the index of the shard it was read from.
        sequence_number: its sequence number, increasing within the shard.
        partition_key: the key that chose its shard and chooses its lane.
        data: the record's bytes, or the driver's own object for it, carried through.
        approximate_arrival: epoch seconds when the stream accepted it.
        size: bytes it adds to an invocation payload (data as base64 plus the event's
            metadata), counted against the 6 MB cap.
    """

    shard: int
    sequence_number: int
    partition_key: str
    data: Any
    approximate_arrival: float
    size: int


@dataclass(slots=True)
class StreamBatch:
    """Records of one lane handed to one invocation, in sequence order. Read-only for
    drivers.

    A retry (after a function error or a partial failure) or a half of a bisected batch
    is a new ``StreamBatch`` with a new ``id``; a throttled batch keeps its ``id``.

    Attributes:
        id: unique within its mapping.
        shard: the shard its records come from.
        lane: the lane, 0 to ``parallelization_factor - 1``, that formed it.
        records: in sequence-number order.
        retries: retry attempts these records have used (0 on a first attempt; halves
            of a bisected batch keep their parent's count).
        invoke_count: invocations of these records so far, this batch's own included
            once it is invoked (so 1 on a first attempt; the on-failure record's
            ``approximateInvokeCount``).
        throttles: times invoking this batch was throttled so far.
    """

    id: int
    shard: int
    lane: int
    records: tuple[StreamRecord, ...]
    retries: int = 0
    invoke_count: int = 0
    throttles: int = 0

    @property
    def shard_id(self) -> str:
        return shard_id(self.shard)

    @property
    def first_sequence_number(self) -> int:
        return self.records[0].sequence_number

    @property
    def last_sequence_number(self) -> int:
        return self.records[-1].sequence_number

    item_name: ClassVar[str] = "sequence number"
    """What a handler's ``itemIdentifier`` names in a stream batch, as reasons say it
    (:data:`SEQUENCE_NUMBER`)."""

    @property
    def message_ids(self) -> frozenset[str]:
        """The item identifiers a handler may report in ``itemIdentifier``: the sequence
        numbers as strings (the name :mod:`sluicegate.core.results` reads for every
        source)."""
        return frozenset(str(r.sequence_number) for r in self.records)

    @property
    def size(self) -> int:
        return sum(r.size for r in self.records)


# ---------------------------------------------------------------------- actions
# Plain slotted dataclasses compared by value, like the queue actions; read-only.


@dataclass(slots=True)
class Fetch:
    """Read up to ``max_records`` records of shard ``shard``, in sequence order.

    Where to start: after ``after_sequence`` when it is not ``None``; otherwise at the
    mapping's starting position (``TRIM_HORIZON``: the oldest record retained;
    ``LATEST``: records put from now on, so none yet; ``AT_TIMESTAMP``: the first record
    that arrived at or after ``starting_position_timestamp``). The driver reports the
    result with :meth:`StreamMapping.fetched` (an empty list when nothing is there), and
    for an unresolved ``LATEST`` must pass the ``position`` it resolved to (see there).
    """

    shard: int
    shard_id: str
    after_sequence: int | None
    starting_position: str
    starting_position_timestamp: float | None
    max_records: int

    @property
    def reads_records(self) -> bool:
        """Whether the driver reads records for it. ``False`` for a shard read at
        ``LATEST`` for the first time: only the shard's latest sequence number is read
        (the position to start after); nothing before it is delivered. Either way the
        driver reads the latest sequence number first and passes it as ``latest`` to
        :meth:`~sluicegate.core.stream_mapping.StreamMapping.read_done`."""
        return self.after_sequence is not None or self.starting_position != "LATEST"

    @property
    def at_timestamp(self) -> float | None:
        """The timestamp to read from (``AT_TIMESTAMP`` on a shard's first read), else
        ``None``: read after :attr:`after_sequence` (``None``: the oldest record)."""
        if self.after_sequence is None and self.starting_position == "AT_TIMESTAMP":
            return self.starting_position_timestamp
        return None


def fetch_position(fetch: Fetch, latest: int | None, returned: bool) -> int | None:
    """Where a shard's iterator stands after ``fetch``, beyond its last record returned:
    the ``position`` :meth:`~sluicegate.core.stream_mapping.StreamMapping.fetched` takes.

    The rule both drivers follow, in one place:

    - a first read at ``LATEST`` (``fetch.reads_records`` false) starts after the
      shard's latest sequence number at that moment (-1 for an empty shard);
    - a read after a position that returned nothing although the shard's latest
      sequence number (read before the records) lies beyond that position: retention
      dropped the records in between, and the iterator moves past them to ``latest``;
    - otherwise ``None``: the records returned say where the shard stands.

    Parameters:
        fetch: the fetch performed.
        latest: the shard's latest sequence number, read before the records; ``None``
            when the driver did not read the shard (it belongs to another worker).
        returned: whether the read returned any record.
    """
    if latest is None:
        return None
    after = fetch.after_sequence
    if after is None:
        return latest if fetch.starting_position == "LATEST" else None
    if not returned and latest > after:
        return latest
    return None


@dataclass(slots=True)
class StreamInvoke:
    """Invoke the function with ``batch``; a concurrency slot is already held for it.

    The driver reports the end with :meth:`StreamMapping.finished`.
    """

    batch: StreamBatch


@dataclass(slots=True)
class Checkpoint:
    """Store ``sequence_number`` as the checkpoint of ``shard``: every record at or below
    it is settled. A restarted mapping resumes after it. Coalesced: one per shard per
    :meth:`StreamMapping.poll` at most, always higher than the previous one."""

    shard: int
    shard_id: str
    sequence_number: int


@dataclass(slots=True)
class SendToDestination:
    """Send ``record`` (see :func:`on_failure_record`) to the on-failure queue
    ``destination``: ``batch`` was discarded. Perform it before any :class:`Checkpoint`
    that follows it in the same list, so that a crash never loses the record."""

    destination: str
    record: dict[str, Any]
    batch: StreamBatch
    condition: str


StreamAction = Fetch | StreamInvoke | Checkpoint | SendToDestination


# ---------------------------------------------------------------------- responses


SEQUENCE_NUMBER: Final = StreamBatch.item_name
"""What a stream's ``itemIdentifier`` must be, as reasons name it."""


def iso_instant(seconds: float) -> str:
    """Epoch seconds as AWS writes instants in these records: ``2019-11-14T00:38:04.835Z``."""
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def on_failure_record(
    batch: StreamBatch,
    *,
    condition: str,
    now: float,
    function_arn: str,
    stream_arn: str,
    request_id: str | None,
    function_error: str | None,
) -> dict[str, Any]:
    """The invocation record an on-failure destination receives for a discarded batch.

    Shaped as AWS documents it for Kinesis (lambda-semantics.md 6.1): metadata only, no
    record data; sequence numbers as decimal strings, instants as ISO 8601 UTC.

    Parameters:
        batch: the discarded batch.
        condition: :data:`CONDITION_RETRY_ATTEMPTS_EXHAUSTED` or
            :data:`CONDITION_RECORD_AGE_EXCEEDED`.
        now: when it was discarded (the record's ``timestamp``).
        function_arn, stream_arn: as the driver names them.
        request_id: the request id of the last invocation of these records, ``None``
            when they were never invoked.
        function_error: ``"Unhandled"`` when the last invocation failed with a function
            error, ``None`` when it was a partial failure or there was none.

    Returns:
        ``{"requestContext": {...}, "responseContext": {...}, "version": "1.0",
        "timestamp": ..., "KinesisBatchInfo": {...}}``. ``responseContext`` is empty when
        the records were never invoked (sluicegate's choice: AWS does not document it).
    """
    records = batch.records
    response: dict[str, Any] = {}
    if batch.invoke_count:
        response = {"statusCode": 200, "executedVersion": "$LATEST"}
        if function_error:
            response["functionError"] = function_error
    return {
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": batch.invoke_count,
        },
        "responseContext": response,
        "version": "1.0",
        "timestamp": iso_instant(now),
        "KinesisBatchInfo": {
            "shardId": batch.shard_id,
            "startSequenceNumber": str(records[0].sequence_number),
            "endSequenceNumber": str(records[-1].sequence_number),
            "approximateArrivalOfFirstRecord": iso_instant(records[0].approximate_arrival),
            "approximateArrivalOfLastRecord": iso_instant(records[-1].approximate_arrival),
            "batchSize": len(records),
            "streamArn": stream_arn,
        },
    }
