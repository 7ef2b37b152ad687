"""The values the store contract exchanges: what a send takes and returns, what a
receive, a peek or a read of a stream returns, a queue's counts, a shard's positions,
and the limits they obey (SQS's and Kinesis's).

Plain data and pure functions on it (ids, MD5, message attributes' shape), with no
asyncio, no backend and no validation of requests: :mod:`sluicegate.store.base` holds the
contract (the :class:`~sluicegate.store.base.Store` class, which validates), and
re-exports every name defined here, so ``from sluicegate.store.base import Message``
keeps working. The simulator and the backends' synchronous engines use these values
without the asyncio side.
"""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sluicegate.errors import InputError

__all__ = [
    "DEDUPLICATION_WINDOW",
    "MAX_BATCH_ENTRIES",
    "MAX_DELAY_SECONDS",
    "MAX_GET_RECORDS",
    "MAX_PEEK",
    "MAX_PUT_BYTES",
    "MAX_PUT_RECORDS",
    "MAX_RECEIVE_MANY",
    "MAX_RECEIVE_WAIT",
    "MAX_RECORD_BYTES",
    "Clock",
    "FifoSent",
    "Message",
    "NewMessage",
    "PeekedMessage",
    "PutEntry",
    "PutResult",
    "QueueCounts",
    "SendEntry",
    "SendResult",
    "ShardInfo",
    "StreamMessage",
    "md5_hex",
    "new_message_id",
    "normalize_attributes",
    "peek_state",
]

Clock = Callable[[], float]
"""A function returning the current time in epoch seconds."""

MAX_BATCH_ENTRIES = 10
"""SQS accepts at most 10 entries per SendMessageBatch/DeleteMessageBatch and returns at most
10 messages per ReceiveMessage."""

MAX_RECEIVE_MANY = 1000
"""Most messages one :meth:`Store.receive_many` claims in one transaction."""

MAX_RECEIVE_WAIT = 20.0
"""The longest long-poll wait SQS allows (WaitTimeSeconds 0-20)."""

MAX_PEEK = 10_000
"""Most messages one :meth:`Store.peek` returns."""

MAX_DELAY_SECONDS = 900
"""Longest per-message delay SQS allows (DelaySeconds 0-900)."""

DEDUPLICATION_WINDOW = 300.0
"""Seconds a FIFO queue remembers a deduplication id (SQS: 5 minutes, kept after the
message is deleted)."""

MAX_PUT_RECORDS = 500
"""Most records one :meth:`Store.put_records` takes (Kinesis PutRecords)."""

MAX_RECORD_BYTES = 1024 * 1024
"""Largest record, data plus partition key (Kinesis: 1 MiB)."""

MAX_PUT_BYTES = 5 * 1024 * 1024
"""Largest :meth:`Store.put_records` request, all records together (Kinesis: 5 MiB)."""

MAX_GET_RECORDS = 10_000
"""Most records one :meth:`Store.get_records` returns (Kinesis GetRecords)."""


_ATTRIBUTE_TYPES = ("String", "Number", "Binary")

_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_message_id(getrandbits: Callable[[int], int] = random.getrandbits) -> str:
    """A random version-4 UUID string, what SQS uses as MessageId.

    About four times faster than ``str(uuid.uuid4())`` (no system call, no UUID object),
    which matters to the memory store at simulation speed.

    Parameters:
        getrandbits: the source of randomness; the default is the ``random`` module's
            shared generator, which is reseeded in a forked child. Pass a seeded
            ``random.Random().getrandbits`` for reproducible ids.

    Returns:
        ``xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`` in lowercase hex.
    """
    h = f"{(getrandbits(128) & _UUID4_CLEAR) | _UUID4_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def md5_hex(body: str) -> str:
    """MD5 of the UTF-8 body as lowercase hex, what SQS returns as MD5OfBody."""
    return hashlib.md5(body.encode("utf-8"), usedforsecurity=False).hexdigest()


def normalize_attributes(attributes: Mapping[str, Any] | None) -> dict[str, dict[str, str]]:
    """Bring message attributes to SQS's shape ``{name: {"DataType", "StringValue"|"BinaryValue"}}``.

    Accepted per value: a ``str`` (String), an ``int``/``float`` (Number), ``bytes``
    (Binary, stored base64), or a mapping already in SQS's shape with either the API's
    keys (``DataType``, ``StringValue``, ``BinaryValue``) or the event's
    (``dataType``, ``stringValue``, ``binaryValue``).

    Raises:
        InputError: a value of another type, an unknown data type or more than 10 attributes.
    """
    if not attributes:
        return {}
    if len(attributes) > 10:
        raise InputError(f"a message may carry at most 10 attributes, got {len(attributes)}")
    out: dict[str, dict[str, str]] = {}
    for name, value in attributes.items():
        if not isinstance(name, str) or not name or len(name) > 256:
            raise InputError(f"message attribute name {name!r} must be 1-256 characters")
        if isinstance(value, bool):
            raise InputError(f"message attribute {name!r}: booleans have no SQS type; use a str")
        if isinstance(value, str):
            out[name] = {"DataType": "String", "StringValue": value}
        elif isinstance(value, (int, float)):
            out[name] = {"DataType": "Number", "StringValue": repr(value)}
        elif isinstance(value, (bytes, bytearray)):
            out[name] = {
                "DataType": "Binary",
                "BinaryValue": base64.b64encode(bytes(value)).decode("ascii"),
            }
        elif isinstance(value, Mapping):
            dtype = value.get("DataType", value.get("dataType"))
            if not isinstance(dtype, str) or dtype.split(".", 1)[0] not in _ATTRIBUTE_TYPES:
                raise InputError(f"message attribute {name!r}: unknown DataType {dtype!r}")
            sval = value.get("StringValue", value.get("stringValue"))
            bval = value.get("BinaryValue", value.get("binaryValue"))
            if dtype.startswith("Binary"):
                if isinstance(bval, (bytes, bytearray)):
                    bval = base64.b64encode(bytes(bval)).decode("ascii")
                if not isinstance(bval, str):
                    raise InputError(f"message attribute {name!r}: Binary needs a BinaryValue")
                out[name] = {"DataType": dtype, "BinaryValue": bval}
            else:
                if not isinstance(sval, str):
                    raise InputError(f"message attribute {name!r}: {dtype} needs a StringValue")
                out[name] = {"DataType": dtype, "StringValue": sval}
        else:
            raise InputError(
                f"message attribute {name!r}: {type(value).__name__} is not str, number, "
                "bytes or an SQS attribute mapping"
            )
    return out


@dataclass(frozen=True, slots=True)
class SendEntry:
    """One message of a batch send."""

    body: str
    delay_seconds: int | None = None
    attributes: Mapping[str, Any] | None = None
    id: str | None = None
    group_id: str | None = None
    deduplication_id: str | None = None


@dataclass(frozen=True, slots=True)
class SendResult:
    """What a send returns per message.

    Attributes:
        sequence_number: FIFO queues: the message's sequence number (decimal digits,
            increasing across the queue); ``None`` for a standard queue.
        duplicate: FIFO queues: the deduplication id was seen in the last 5 minutes, so
            nothing was stored; ``message_id`` and ``sequence_number`` are the first
            message's.
    """

    message_id: str
    md5_of_body: str
    id: str | None = None
    sequence_number: str | None = None
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class FifoSent:
    """What a backend returns per message of a FIFO send (see :meth:`Store._send_fifo`)."""

    message_id: str
    sequence_number: str
    duplicate: bool


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A validated message as backends receive it from :meth:`Store.send_batch`."""

    body: str
    md5_of_body: str
    attributes: dict[str, dict[str, str]]
    delay_seconds: int
    sender_id: str
    group_id: str | None = None
    deduplication_id: str | None = None


@dataclass(slots=True)
class Message:
    """A received message, with what an SQS event record needs. Treat it as read-only.

    Not frozen on purpose: one is built per message received, and a frozen dataclass
    costs about four times as much to construct.

    Attributes:
        visible_at: epoch seconds when this receive's visibility timeout ends.
        group_id, deduplication_id, sequence_number: a FIFO queue's message's; ``None``
            for a standard queue's.
    """

    message_id: str
    receipt_handle: str
    body: str
    md5_of_body: str
    attributes: dict[str, dict[str, str]]
    sent_timestamp: float
    first_receive_timestamp: float
    receive_count: int
    sender_id: str
    visible_at: float
    queue: str = ""
    group_id: str | None = None
    deduplication_id: str | None = None
    sequence_number: str | None = None


@dataclass(frozen=True, slots=True)
class PeekedMessage:
    """A message as :meth:`Store.peek` shows it: what the queue holds, not a delivery.

    Attributes:
        state: ``"visible"`` (a receive may return it now), ``"in_flight"`` (received,
            its visibility timeout not over) or ``"delayed"`` (never received, its
            delivery delay not over). A message whose timeout or delay is over is
            visible, though no receive has moved it yet (as :meth:`Store.counts` counts).
        visible_at: epoch seconds when an in-flight or delayed message becomes visible;
            ``None`` for a visible one.
        sent_timestamp: epoch seconds when it was first sent (kept through a move to a
            dead-letter queue and back).
        first_receive_timestamp: epoch seconds of its first receive in this queue;
            ``None`` when it was never received here.
        receive_count: receives in this queue (a move to or from a dead-letter queue
            starts it again from zero).
        source_queue: in a dead-letter queue, the queue it was moved from; else ``None``.
        group_id, deduplication_id, sequence_number: a FIFO queue's message's; ``None``
            for a standard queue's.
    """

    message_id: str
    body: str
    md5_of_body: str
    attributes: dict[str, dict[str, str]]
    sender_id: str
    sent_timestamp: float
    first_receive_timestamp: float | None
    receive_count: int
    state: str
    visible_at: float | None
    source_queue: str | None = None
    group_id: str | None = None
    deduplication_id: str | None = None
    sequence_number: str | None = None


def peek_state(receive_count: int, visible_at: float | None, now: float) -> tuple[str, float | None]:
    """A held message's :attr:`PeekedMessage.state` and ``visible_at`` at ``now``.

    Parameters:
        receive_count: the message's receives so far (0: a hidden one is delayed).
        visible_at: epoch seconds when a hidden message becomes visible; ``None`` for one
            the backend holds as visible.
    """
    if visible_at is None or visible_at <= now:
        return "visible", None
    return ("in_flight" if receive_count > 0 else "delayed"), visible_at


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """A queue's approximate numbers, as SQS's CloudWatch metrics report them.

    Attributes:
        visible: messages available to receive now.
        in_flight: messages received and not yet deleted or visible again.
        delayed: messages not yet visible because of a delivery delay.
        oldest_age: seconds since the oldest message in the queue (visible or in flight)
            was sent; 0 for an empty queue.
        dead_lettered: messages this queue has moved to its dead-letter queue, ever.
        active_groups: FIFO queues: message groups holding at least one message (visible
            or in flight); 0 for a standard queue.
        groups_in_flight: FIFO queues: groups with a message in flight, whose other
            messages no receive returns until it is settled.
    """

    visible: int
    in_flight: int
    delayed: int
    oldest_age: float
    dead_lettered: int = 0
    active_groups: int = 0
    groups_in_flight: int = 0

    @property
    def total(self) -> int:
        return self.visible + self.in_flight + self.delayed


@dataclass(frozen=True, slots=True)
class PutEntry:
    """One record of :meth:`Store.put_records`.

    Attributes:
        partition_key: 1-256 characters; chooses the shard (by MD5) and, within a
            mapping, the parallelization lane.
        data: the payload; ``str`` is stored as UTF-8.
        explicit_hash_key: a decimal 128-bit integer that chooses the shard instead of the
            partition key's MD5, as Kinesis allows.
    """

    partition_key: str
    data: bytes | str
    explicit_hash_key: str | None = None


@dataclass(frozen=True, slots=True)
class PutResult:
    """Where a put record went."""

    shard: int
    shard_id: str
    sequence_number: int


@dataclass(slots=True)
class StreamMessage:
    """A record read from a shard. Treat it as read-only.

    Attributes:
        approximate_arrival: epoch seconds when the store accepted it.
    """

    shard: int
    sequence_number: int
    partition_key: str
    data: bytes
    approximate_arrival: float


@dataclass(frozen=True, slots=True)
class ShardInfo:
    """One shard of a stream, as ``sluicegate streams`` shows it.

    Attributes:
        first_sequence: the oldest retained record's sequence number (``None``: empty).
        latest_sequence: the last sequence number written (-1: never written).
        records: records retained.
    """

    shard: int
    shard_id: str
    starting_hash_key: int
    ending_hash_key: int
    first_sequence: int | None
    latest_sequence: int
    records: int
