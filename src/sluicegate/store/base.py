"""The store contract: what every backend (memory, SQLite, Redis) does for queues.

A store keeps queues with SQS standard-queue semantics. Its public methods are
coroutines; this base class validates every request once (batch sizes, body size,
attribute shapes, queue names) and implements long polling on top of a backend's
non-blocking receive, so backends only implement the ``_``-prefixed primitives.

Time: a store reads time only from its ``clock`` (epoch seconds), which tests and the
simulator replace. Every timestamp a store returns is epoch seconds as a float.

Receipt handles: each receive of a message gets a new handle. Deleting with a handle
from an earlier receive (the message has been received again since) succeeds but does
not delete, as in SQS; changing visibility with such a handle raises
:class:`~sluicegate.errors.InvalidReceiptHandle`.

FIFO queues (names ending in ``.fifo``): every message carries a message group id; a
receive returns the messages of a group in the order they were sent and returns none of
a group while any of its messages is in flight (a receive may fill its batch from several
groups, oldest group first). A message carries a deduplication id (given, or the SHA-256
of its body when the queue has content-based deduplication); a send whose id was seen in
the last :data:`DEDUPLICATION_WINDOW` seconds is accepted, reported as a duplicate, and
not stored, even when the first message has been deleted since. Each stored message gets
a sequence number, increasing across the queue. Dead-lettering and redrive keep group
order.

Streams: a stream has a fixed number of shards; a record goes to the shard whose hash-key
range holds the MD5 of its partition key (or its explicit hash key), and gets a sequence
number that increases within its shard. Records are read in sequence order from a
position and dropped once older than the stream's retention period. Mappings' checkpoints
(the last settled sequence number per shard) live in the store too, so a restarted
runtime resumes after them.

Redrive: a receive never returns a message that has already been received
``max_receive_count`` times; such a message is moved to the queue's dead-letter queue
(keeping its id, body, attributes and sent time, with ``source_queue`` recorded) when it
would otherwise be delivered again.

Table items: small records with an expiry under a table and a key (idempotency
records, "once per tick" claims; rules in :mod:`sluicegate.store.items`): an atomic
create-if-absent, get, put, conditional update and delete, each item dying at its expiry
or, sooner, at its in-progress expiry (the claim of work that may crash mid-way).

Layout: this module is the contract, the :class:`Store` class (public coroutines that
validate, the ``_``-prefixed primitives a backend implements) and the rules that go with
it (:func:`publish_ids`); :mod:`sluicegate.store.values` holds the values it exchanges
and their limits, all re-exported here. A backend built on a synchronous engine (memory,
SQLite) implements the primitives through :class:`~sluicegate.store.engine.EngineStore`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Self, cast

from sluicegate.core.async_events import ASYNC_QUEUE_PREFIX, TOPIC_ATTRIBUTE
from sluicegate.core.config import QueueConfig, TopicConfig, is_fifo_queue
from sluicegate.core.streams import (
    StreamConfig,
    check_partition_key,
    hash_key,
    hash_key_ranges,
    shard_for_hash_key,
    shard_id,
)
from sluicegate.errors import (
    BatchRequestError,
    InputError,
    InvalidReceiptHandle,
    MessageTooLarge,
    StoreError,
    StoreNotOpen,
)
from sluicegate.store.coordination import (
    CoordinationReply,
    CoordinationRound,
    LeaseClaim,
    LeaseGrant,
    LeaseHolder,
)
from sluicegate.store.items import (
    KEEP,
    ItemChange,
    ItemWrite,
    TableItem,
    _Keep,
    check_data,
    check_item_key,
    check_item_ttl,
    check_status,
    check_version,
)
from sluicegate.store.live import LiveSettings, SettingsChange, SettingsWrite
from sluicegate.store.semaphores import ParkedBatch, SemaphoreGrant, SemaphoreState, Wake
from sluicegate.store.values import (
    DEDUPLICATION_WINDOW,
    MAX_BATCH_ENTRIES,
    MAX_DELAY_SECONDS,
    MAX_GET_RECORDS,
    MAX_PEEK,
    MAX_PUT_BYTES,
    MAX_PUT_RECORDS,
    MAX_RECEIVE_MANY,
    MAX_RECEIVE_WAIT,
    MAX_RECORD_BYTES,
    Clock,
    FifoSent,
    Message,
    NewMessage,
    PeekedMessage,
    PutEntry,
    PutResult,
    QueueCounts,
    SendEntry,
    SendResult,
    ShardInfo,
    StreamMessage,
    md5_hex,
    new_message_id,
    normalize_attributes,
    peek_state,
)
from sluicegate.wording import plural

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
    "Store",
    "StoreNotOpen",
    "StreamMessage",
    "check_store_error",
    "md5_hex",
    "new_message_id",
    "normalize_attributes",
    "peek_state",
    "publish_ids",
]

_HASH_KEY_MAX = (1 << 128) - 1

_FIFO_ID = re.compile(r"^[!-~]{1,128}$")
"""SQS message group and deduplication ids: 1-128 characters, letters, digits and
punctuation (printable ASCII without space)."""


def _attributes_size(attributes: Mapping[str, Mapping[str, str]]) -> int:
    size = 0
    for name, value in attributes.items():
        size += len(name.encode()) + len(value["DataType"].encode())
        if "BinaryValue" in value:
            size += len(base64.b64decode(value["BinaryValue"]))
        else:
            size += len(value["StringValue"].encode())
    return size


def _handles(receipt_handles: Sequence[object]) -> list[str]:
    """The handles as a list, every one checked to be a string, so that backends (and the
    compiled build of the memory engine, whose arguments are typed) only ever parse strings.

    Raises:
        InvalidReceiptHandle: a handle that is not a string.
    """
    handles = list(receipt_handles)
    for handle in handles:
        if not isinstance(handle, str):
            raise InvalidReceiptHandle(f"receipt handle must be a str, got {handle!r}")
    return cast(list[str], handles)


class Store(ABC):
    """Base of every backend. Subclasses implement the ``_``-prefixed primitives and
    :meth:`open`/:meth:`close`.

    A store is used between :meth:`open` and :meth:`close` (or inside ``async with``):
    before, and after, every call that reaches the backend raises
    :class:`~sluicegate.errors.StoreNotOpen`, on every backend.

    Parameters:
        clock: where the store reads time (epoch seconds); defaults to ``time.time``.
        poll_interval: how often a long-polling receive retries when the backend cannot
            notify it of new messages (other processes share the store).
    """

    url: str = ""
    #: Whether another process may change the store behind this one's back. A backend
    #: that is shared is polled during long polls; one that is not relies on notification.
    shared: bool = True

    def __init__(self, *, clock: Clock | None = None, poll_interval: float = 0.05) -> None:
        self.clock: Clock = clock or time.time
        self.poll_interval = poll_interval
        self._waiters: dict[str, asyncio.Event] = {}
        self._semaphore_wakers: dict[str, asyncio.Future[None]] = {}
        self._semaphore_nudges: dict[str, Callable[[], None]] = {}

    # ------------------------------------------------------------------ lifecycle
    @abstractmethod
    async def open(self) -> None:
        """Open connections, create the schema. Idempotent."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections. Idempotent; a closed store may be opened again."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ queues
    async def ensure_queue(self, config: QueueConfig) -> None:
        """Create the queue, or update its attributes to ``config`` when it exists."""
        await self._ensure_queue(config)

    async def get_queue(self, name: str) -> QueueConfig:
        """The queue's configuration. Raises :class:`QueueNotFound`."""
        return await self._get_queue(name)

    async def list_queues(self) -> list[QueueConfig]:
        """Every queue, sorted by name."""
        return sorted(await self._list_queues(), key=lambda q: q.name)

    async def delete_queue(self, name: str) -> None:
        """Delete the queue and its messages. Raises :class:`QueueNotFound`."""
        await self._delete_queue(name)

    # ------------------------------------------------------------------ messages
    async def send(
        self,
        queue: str,
        body: str,
        *,
        delay_seconds: int | None = None,
        attributes: Mapping[str, Any] | None = None,
        sender_id: str = "sluicegate",
        group_id: str | None = None,
        deduplication_id: str | None = None,
    ) -> SendResult:
        """Send one message. Durable once this returns (for durable backends).

        Parameters:
            group_id: the message group (required for a FIFO queue, refused otherwise).
            deduplication_id: a FIFO queue's deduplication id; without it, the queue must
                have content-based deduplication.

        Raises:
            QueueNotFound, MessageTooLarge, InputError.
        """
        entry = SendEntry(
            body, delay_seconds, attributes, group_id=group_id, deduplication_id=deduplication_id
        )
        (result,) = await self.send_batch(queue, [entry], sender_id=sender_id)
        return result

    async def send_batch(
        self, queue: str, entries: Sequence[SendEntry], *, sender_id: str = "sluicegate"
    ) -> list[SendResult]:
        """Send up to 10 messages atomically (all or none are stored).

        Raises:
            BatchRequestError: no entries, more than 10, or duplicate entry ids.
            QueueNotFound, MessageTooLarge, InputError.
        """
        if not entries:
            raise BatchRequestError("a batch send needs at least one entry")
        if len(entries) > MAX_BATCH_ENTRIES:
            raise BatchRequestError(
                f"a batch send takes at most {MAX_BATCH_ENTRIES} entries, got {len(entries)}"
            )
        ids = [e.id for e in entries if e.id is not None]
        if len(ids) != len(set(ids)):
            raise BatchRequestError("batch entry ids must be distinct")
        # cached: _send and _send_fifo refuse attributes that are not current
        config = await self._get_queue(queue, cached=True)
        fifo = config.fifo
        news: list[NewMessage] = []
        total = 0
        for entry in entries:
            if not isinstance(entry.body, str):
                raise InputError(f"message body must be a str, got {type(entry.body).__name__}")
            if not entry.body:
                raise InputError("message body must not be empty")
            attrs = normalize_attributes(entry.attributes)
            size = len(entry.body.encode("utf-8")) + _attributes_size(attrs)
            if size > config.max_message_size:
                raise MessageTooLarge(
                    f"message of {size:,} bytes is above the maximum of queue {queue!r}, "
                    f"{config.max_message_size:,}"
                )
            total += size
            delay = config.delay_seconds if entry.delay_seconds is None else entry.delay_seconds
            if isinstance(delay, bool) or not isinstance(delay, int) or not (
                0 <= delay <= MAX_DELAY_SECONDS
            ):
                raise InputError(f"delay_seconds={delay!r} is invalid: allowed 0-900")
            if fifo:
                group, dedup = _fifo_ids(config, entry)
                news.append(
                    NewMessage(entry.body, md5_hex(entry.body), attrs, delay, sender_id, group, dedup)
                )
            else:
                if entry.group_id is not None or entry.deduplication_id is not None:
                    which = "group_id" if entry.group_id is not None else "deduplication_id"
                    raise InputError(
                        f"{which} is only for FIFO queues; {queue!r} is a standard queue"
                    )
                news.append(NewMessage(entry.body, md5_hex(entry.body), attrs, delay, sender_id))
        if total > 262_144:
            raise MessageTooLarge(f"batch of {total:,} bytes is above the 262,144 bytes limit")
        if fifo:
            sent = await self._send_fifo(queue, news)
            self._notify(queue)
            return [
                SendResult(s.message_id, new.md5_of_body, entry.id, s.sequence_number, s.duplicate)
                for s, new, entry in zip(sent, news, entries, strict=True)
            ]
        message_ids = await self._send(queue, news)
        self._notify(queue)
        return [
            SendResult(mid, new.md5_of_body, entry.id)
            for mid, new, entry in zip(message_ids, news, entries, strict=True)
        ]

    async def receive(
        self,
        queue: str,
        *,
        max_messages: int = 1,
        visibility_timeout: float | None = None,
        wait_time: float | None = None,
    ) -> list[Message]:
        """Receive up to ``max_messages`` (1-10) visible messages, hiding them.

        Parameters:
            visibility_timeout: seconds the messages stay hidden; the queue's by default.
            wait_time: long-poll for up to this many seconds (0-20) until at least one
                message is visible; the queue's ``receive_wait_time`` by default.

        Raises:
            QueueNotFound, InputError.
        """
        if isinstance(max_messages, bool) or not isinstance(max_messages, int) or not (
            1 <= max_messages <= MAX_BATCH_ENTRIES
        ):
            raise InputError(f"max_messages={max_messages!r} is invalid: allowed 1-10")
        return await self._long_poll(queue, max_messages, visibility_timeout, wait_time)

    async def receive_many(
        self, queue: str, *, max_messages: int, visibility_timeout: float, wait_time: float
    ) -> list[Message]:
        """Receive up to ``max_messages`` (1-1,000) in one transaction, as :meth:`receive`.

        Not an SQS call: it lets a runtime serve several pollers' receives at once, as
        :meth:`delete_many` settles several batches at once. Each message is claimed
        exactly as by :meth:`receive`.
        """
        if isinstance(max_messages, bool) or not isinstance(max_messages, int) or not (
            1 <= max_messages <= MAX_RECEIVE_MANY
        ):
            raise InputError(
                f"max_messages={max_messages!r} is invalid: allowed 1-{MAX_RECEIVE_MANY:,}"
            )
        return await self._long_poll(queue, max_messages, visibility_timeout, wait_time)

    async def _long_poll(
        self,
        queue: str,
        max_messages: int,
        visibility_timeout: float | None,
        wait_time: float | None,
    ) -> list[Message]:
        vt, wait = visibility_timeout, wait_time
        if vt is None or wait is None:  # else _receive alone finds out whether it exists
            config = await self._get_queue(queue)
            vt = config.visibility_timeout if vt is None else vt
            wait = config.receive_wait_time if wait is None else wait
        if not 0 <= vt <= 43_200:
            raise InputError(f"visibility_timeout={vt!r} is invalid: allowed 0-43,200 s")
        if not 0 <= wait <= MAX_RECEIVE_WAIT:
            raise InputError(f"wait_time={wait!r} is invalid: allowed 0-20 s")
        # Take the queue's current wake-up event *before* the receive: a send that lands
        # after this point sets this very event, so the wait below cannot miss it.
        event = self._waiter(queue) if wait > 0 else None
        messages = await self._receive(queue, max_messages, float(vt))
        if messages or event is None:
            return messages
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        task = asyncio.current_task()
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            if task is not None and task.cancelling():
                # A cancel that an await below swallowed (on Python 3.11, asyncio.wait_for
                # returns the result of a call that completes as the cancel arrives, as
                # redis-py's socket writes do) still ends the wait: a stop would otherwise
                # wait out the whole long poll.
                raise asyncio.CancelledError
            next_visible = await self._next_visible_at(queue)
            pause = remaining
            if self.shared:
                pause = min(pause, self.poll_interval)
            if next_visible is not None:
                pause = min(pause, max(0.0, next_visible - self.clock()))
            if not event.is_set():
                try:
                    await asyncio.wait_for(event.wait(), pause)
                except TimeoutError:
                    pass
            event = self._waiter(queue)
            messages = await self._receive(queue, max_messages, float(vt))
            if messages:
                return messages

    async def delete(self, queue: str, receipt_handle: str) -> bool:
        """Delete the message received under ``receipt_handle``.

        Returns ``False`` (and deletes nothing) when the handle is stale: the message was
        already deleted or has been received again since. Raises :class:`QueueNotFound`.
        """
        return (await self.delete_batch(queue, [receipt_handle]))[0]

    async def delete_batch(self, queue: str, receipt_handles: Sequence[str]) -> list[bool]:
        """Delete up to 10 messages atomically; one flag per handle, as :meth:`delete`."""
        if not receipt_handles:
            raise BatchRequestError("a batch delete needs at least one receipt handle")
        if len(receipt_handles) > MAX_BATCH_ENTRIES:
            raise BatchRequestError(
                f"a batch delete takes at most {MAX_BATCH_ENTRIES} handles, "
                f"got {len(receipt_handles)}"
            )
        return self._deleted(queue, await self._delete(queue, _handles(receipt_handles)))

    def _deleted(self, queue: str, flags: list[bool]) -> list[bool]:
        """After a delete: a FIFO group whose last in-flight message went may deliver
        again, so long polls of a FIFO queue are woken (a standard queue's deletes make
        nothing visible)."""
        if is_fifo_queue(queue) and any(flags):
            self._notify(queue)
        return flags

    async def delete_many(self, queue: str, receipt_handles: Sequence[str]) -> list[bool]:
        """Delete any number of messages in one transaction (not an SQS call: the runtime
        uses it to settle a whole batch at once)."""
        if not receipt_handles:
            return []
        return self._deleted(queue, await self._delete(queue, _handles(receipt_handles)))

    async def change_visibility(
        self, queue: str, receipt_handle: str, visibility_timeout: float
    ) -> None:
        """Make an in-flight message visible ``visibility_timeout`` seconds from now.

        Raises:
            InvalidReceiptHandle: the handle is not the message's current one, or the
                message is no longer in flight.
        """
        if not 0 <= visibility_timeout <= 43_200:
            raise InputError(
                f"visibility_timeout={visibility_timeout!r} is invalid: allowed 0-43,200 s"
            )
        (handle,) = _handles([receipt_handle])
        await self._change_visibility(queue, handle, float(visibility_timeout))
        if visibility_timeout == 0:
            self._notify(queue)

    async def purge(self, queue: str) -> int:
        """Delete every message of the queue; returns how many."""
        return await self._purge(queue)

    async def counts(self, queue: str) -> QueueCounts:
        """The queue's approximate counts. Raises :class:`QueueNotFound`."""
        return await self._counts(queue)

    async def peek(self, queue: str, *, limit: int = 10) -> list[PeekedMessage]:
        """Up to ``limit`` (1-10,000) of the messages the queue holds, in any state, in
        the order they were sent (sent time, then send order), without changing any:
        receive counts, visibility, order of later receives and expiry stay as they were.

        Not an SQS call (SQS's console polls, which receives): for looking at a queue or
        a dead-letter queue. Messages past the retention period are not shown (no
        receive would return them); a due move to the dead-letter queue is not made.

        Raises:
            QueueNotFound, InputError (bad limit).
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or not (
            1 <= limit <= MAX_PEEK
        ):
            raise InputError(f"limit={limit!r} is invalid: allowed 1-{MAX_PEEK:,}")
        return await self._peek(queue, limit)

    async def redrive(self, dead_letter_queue: str, to: str | None = None) -> int:
        """Move every message of ``dead_letter_queue`` back to the queue it came from,
        or to ``to``. Receive counts start again from zero. Returns how many moved.

        Raises:
            QueueNotFound: either queue, or a message's recorded source queue, does not exist.
            InputError: ``to`` is ``dead_letter_queue`` itself.
            StoreError: a message has no recorded source and ``to`` is not given.
        """
        if to is not None:
            if to == dead_letter_queue:
                raise InputError(f"cannot redrive queue {to!r} into itself")
            await self._get_queue(to)
        moved = await self._redrive(dead_letter_queue, to)
        for name in set(moved):
            self._notify(name)
        return len(moved)

    async def publish(
        self,
        topic: TopicConfig,
        body: str,
        *,
        attributes: Mapping[str, Any] | None = None,
        group_id: str | None = None,
        deduplication_id: str | None = None,
        sender_id: str = "sluicegate",
    ) -> dict[str, SendResult]:
        """Deliver one message to every queue subscribed to ``topic``, and to the
        internal queue of asynchronous invocations of every function subscribed to it
        (``async:FUNCTION``, which must exist; the message carries the attribute
        :data:`TOPIC_ATTRIBUTE` naming the topic, from which the runtime builds SNS's
        event).

        A FIFO topic passes the group id and a deduplication id (the given one, or the
        SHA-256 of the body with content-based deduplication) to every queue, so a
        republished message is delivered once per queue; a standard topic takes neither.
        Every subscribed queue is checked before anything is sent.

        Returns:
            The send result per queue name.

        Raises:
            QueueNotFound: a subscribed queue does not exist in the store.
            InputError: a FIFO publish without a group id, or without a deduplication id
                on a topic without content-based deduplication; ids on a standard topic.
        """
        group_id, deduplication_id = publish_ids(topic, body, group_id, deduplication_id)
        internal = [ASYNC_QUEUE_PREFIX + function for function in topic.functions]
        for queue in (*topic.subscribers, *internal):
            await self._get_queue(queue)
        results: dict[str, SendResult] = {}
        for queue in topic.subscribers:
            results[queue] = await self.send(
                queue,
                body,
                attributes=attributes,
                sender_id=sender_id,
                group_id=group_id,
                deduplication_id=deduplication_id,
            )
        if internal:
            marked = {**(attributes or {}), TOPIC_ATTRIBUTE: topic.name}
            for queue in internal:
                results[queue] = await self.send(queue, body, attributes=marked,
                                                 sender_id=sender_id)
        return results

    # ------------------------------------------------------------------ streams
    async def ensure_stream(self, config: StreamConfig) -> None:
        """Create the stream, or update its retention period when it exists.

        Raises:
            StoreError: it exists with another shard count (sluicegate does not reshard).
        """
        try:
            existing = await self._get_stream(config.name)
        except KeyError:
            existing = None
        if existing is not None and existing.shard_count != config.shard_count:
            raise StoreError(
                f"stream {config.name!r} exists with {plural(existing.shard_count, 'shard')}, not "
                f"{config.shard_count}: delete it first to change its shard count"
            )
        await self._ensure_stream(config)

    async def get_stream(self, name: str) -> StreamConfig:
        """The stream's configuration. Raises :class:`StreamNotFound`."""
        return await self._get_stream(name)

    async def list_streams(self) -> list[StreamConfig]:
        """Every stream, sorted by name."""
        return sorted(await self._list_streams(), key=lambda s: s.name)

    async def delete_stream(self, name: str) -> None:
        """Delete the stream, its records and its mappings' checkpoints."""
        await self._delete_stream(name)

    async def put_record(
        self,
        stream: str,
        partition_key: str,
        data: bytes | str,
        *,
        explicit_hash_key: str | None = None,
    ) -> PutResult:
        """Append one record; durable once this returns (for durable backends).

        Raises:
            StreamNotFound, InputError, MessageTooLarge.
        """
        (result,) = await self.put_records(
            stream, [PutEntry(partition_key, data, explicit_hash_key)]
        )
        return result

    async def put_records(self, stream: str, entries: Sequence[PutEntry]) -> list[PutResult]:
        """Append up to 500 records atomically, each to its shard, in the given order.

        Raises:
            BatchRequestError: no entries or more than 500.
            StreamNotFound, InputError, MessageTooLarge.
        """
        if not entries:
            raise BatchRequestError("a put needs at least one record")
        if len(entries) > MAX_PUT_RECORDS:
            raise BatchRequestError(
                f"a put takes at most {MAX_PUT_RECORDS} records, got {len(entries)}"
            )
        # cached: _put refuses a shard count that is not current
        config = await self._get_stream(stream, cached=True)
        routed: list[tuple[int, str, bytes]] = []
        total = 0
        for entry in entries:
            key = check_partition_key(entry.partition_key)
            data = entry.data
            if isinstance(data, str):
                data = data.encode("utf-8")
            elif not isinstance(data, bytes | bytearray | memoryview):
                raise InputError(f"record data must be bytes or str, got {type(data).__name__}")
            data = bytes(data)
            size = len(data) + len(key.encode("utf-8"))
            if size > MAX_RECORD_BYTES:
                raise MessageTooLarge(
                    f"record of {size:,} bytes is above the {MAX_RECORD_BYTES:,} bytes limit"
                )
            total += size
            if entry.explicit_hash_key is None:
                hashed = hash_key(key)
            else:
                hashed = _explicit_hash_key(entry.explicit_hash_key)
            routed.append((shard_for_hash_key(hashed, config.shard_count), key, data))
        if total > MAX_PUT_BYTES:
            raise MessageTooLarge(
                f"put of {total:,} bytes is above the {MAX_PUT_BYTES:,} bytes limit"
            )
        sequences = await self._put(stream, routed)
        self._notify(_stream_key(stream))
        return [
            PutResult(shard, shard_id(shard), sequence)
            for (shard, _, _), sequence in zip(routed, sequences, strict=True)
        ]

    async def get_records(
        self,
        stream: str,
        shard: int,
        *,
        after: int | None = None,
        at_timestamp: float | None = None,
        limit: int = MAX_GET_RECORDS,
    ) -> list[StreamMessage]:
        """Read up to ``limit`` retained records of ``shard`` in sequence order.

        Parameters:
            after: read the records after this sequence number; ``None`` reads from the
                oldest retained record (TRIM_HORIZON), or from ``at_timestamp``.
            at_timestamp: with ``after=None``, start at the first record that arrived at
                or after this epoch second (AT_TIMESTAMP).
            limit: 1-10,000.

        Raises:
            StreamNotFound, InputError (bad shard or limit).
        """
        # cached: _get_records refuses a stream or shard that no longer exists
        await self._check_shard(stream, shard, cached=True)
        if isinstance(limit, bool) or not isinstance(limit, int) or not (
            1 <= limit <= MAX_GET_RECORDS
        ):
            raise InputError(f"limit={limit!r} is invalid: allowed 1-{MAX_GET_RECORDS:,}")
        if after is not None and at_timestamp is not None:
            raise InputError("give after or at_timestamp, not both")
        return await self._get_records(stream, shard, after, at_timestamp, limit)

    async def latest_sequence(self, stream: str, shard: int) -> int:
        """The last sequence number written to ``shard``, -1 when none ever was (where
        a LATEST iterator starts)."""
        await self._check_shard(stream, shard)
        return await self._latest_sequence(stream, shard)

    async def shards(self, stream: str) -> list[ShardInfo]:
        """The stream's shards with their hash-key ranges and positions."""
        config = await self._get_stream(stream)
        stats = await self._shard_stats(stream)
        return [
            ShardInfo(r.shard, r.shard_id, r.starting_hash_key, r.ending_hash_key, *stat)
            for r, stat in zip(hash_key_ranges(config.shard_count), stats, strict=True)
        ]

    async def get_checkpoints(self, mapping: str) -> dict[int, int]:
        """The mapping's checkpoints: shard index -> last settled sequence number."""
        return await self._get_checkpoints(mapping)

    async def set_checkpoints(self, mapping: str, checkpoints: Mapping[int, int]) -> None:
        """Store checkpoints of ``mapping``; a checkpoint never moves back (a lower value
        than the stored one is ignored), so a late writer cannot rewind a shard."""
        if checkpoints:
            await self._set_checkpoints(mapping, dict(checkpoints))

    async def stream_checkpoints(self, stream: str) -> dict[str, dict[int, int]]:
        """Every mapping's checkpoints on ``stream``: mapping name (``stream->function``)
        -> shard index -> last settled sequence number."""
        await self._get_stream(stream)
        return await self._stream_checkpoints(stream)

    async def _check_shard(self, stream: str, shard: int, *, cached: bool = False) -> StreamConfig:
        config = await self._get_stream(stream, cached=cached)
        if isinstance(shard, bool) or not isinstance(shard, int) or not (
            0 <= shard < config.shard_count
        ):
            raise InputError(
                f"shard={shard!r} is invalid: stream {stream!r} has shards "
                f"0-{config.shard_count - 1}"
            )
        return config

    async def wait_for_records(self, stream: str, timeout: float) -> None:
        """Return when a record is put to ``stream`` in this process, or after ``timeout``
        seconds (at most :attr:`poll_interval` for a shared store)."""
        event = self._waiter(_stream_key(stream))
        if self.shared:
            timeout = min(timeout, self.poll_interval)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass

    # ------------------------------------------------------------------ coordination
    # Counted leases, the worker registry, shared event logs and values: what processes
    # sharing this store coordinate through (rules in sluicegate.store.coordination).
    async def claim_lease(
        self, name: str, holder: str, *, want: int, limit: int, ttl: float, in_use: int = 0,
        fair: bool = True,
    ) -> LeaseGrant:
        """Claim (or renew, or with ``want = 0`` and ``in_use = 0`` release) ``holder``'s
        count of lease ``name`` for ``ttl`` seconds; see :class:`LeaseClaim`."""
        (grant,) = await self.claim_leases(holder, [LeaseClaim(name, want, limit, in_use, fair)],
                                           ttl=ttl)
        return grant

    async def claim_leases(
        self, holder: str, claims: Sequence[LeaseClaim], *, ttl: float
    ) -> list[LeaseGrant]:
        """Several claims by ``holder``, in order (one transaction where the backend has
        them); one grant per claim."""
        _check_ttl(ttl)
        if not claims:
            return []
        return await self._claim_leases(holder, list(claims), ttl)

    async def release_lease(
        self, name: str, holder: str, *, in_use: int = 0, ttl: float = 1.0
    ) -> None:
        """Give lease ``name`` back, all but the ``in_use`` slots invocations still run
        on: those stay counted for ``holder`` for ``ttl`` more seconds (then expire,
        unless claimed again)."""
        await self.claim_leases(holder, [LeaseClaim(name, 0, 0, in_use)], ttl=ttl)

    async def lease_holders(self, name: str) -> list[LeaseHolder]:
        """The live holders of lease ``name`` (expired ones left out), by holder id."""
        return sorted(await self._lease_holders(name), key=lambda h: h.holder)

    async def lease_names(self) -> list[str]:
        """Names of the leases claimed in this store (some may have no live holder)."""
        return sorted(await self._lease_names())

    async def register_worker(
        self, worker: str, info: Mapping[str, Any], *, ttl: float, exclusive: bool = False
    ) -> dict[str, Any] | None:
        """Store ``worker``'s registry entry (a JSON object) until ``ttl`` seconds from now.

        With ``exclusive``, an id a live entry already has is refused: nothing is written
        and that entry is returned. Returns ``None`` when written."""
        _check_ttl(ttl)
        other = await self._register_worker(worker, json.dumps(dict(info)), ttl, exclusive)
        return None if other is None else cast(dict[str, Any], json.loads(other))

    async def list_workers(self) -> list[dict[str, Any]]:
        """Every live worker's registry entry, by worker id (expired ones are dropped)."""
        return [cast(dict[str, Any], json.loads(raw)) for _, raw in
                sorted(await self._list_workers())]

    async def unregister_worker(self, worker: str) -> None:
        """Drop ``worker``'s registry entry."""
        await self._unregister_worker(worker)

    async def append_events(self, log: str, events: Sequence[str]) -> None:
        """Add ``events`` to shared log ``log`` (it keeps the newest
        :data:`~sluicegate.store.coordination.MAX_EVENTS`)."""
        if events:
            await self._append_events(log, list(events))

    async def take_events(self, log: str) -> list[str]:
        """Every event of shared log ``log``, oldest first, removing them."""
        return await self._take_events(log)

    async def write_shared(self, key: str, value: str) -> None:
        """Set shared value ``key``."""
        await self._write_shared(key, value)

    async def read_shared(self, key: str) -> str | None:
        """Shared value ``key`` (``None``: never written)."""
        return (await self._read_shared([key]))[key]

    async def coordinate(self, round: CoordinationRound) -> CoordinationReply:
        """Do one worker's sync round (see :class:`CoordinationRound` for the order).

        This implementation makes one call per step (each atomic); a backend with
        transactions does the whole round in one."""
        _check_ttl(round.ttl)
        grants = await self.claim_leases(round.holder, round.claims, ttl=round.ttl)
        held = {c.name: g.held > 0 for c, g in zip(round.claims, grants, strict=True)}

        async def holds(lease: str) -> bool:
            if lease not in held:
                held[lease] = any(h.holder == round.holder and h.count > 0
                                  for h in await self.lease_holders(lease))
            return held[lease]

        reply = CoordinationReply(grants)
        for log, events in round.append.items():
            await self.append_events(log, events)
        for log, lease in round.take.items():
            if await holds(lease):
                reply.taken[log] = await self.take_events(log)
        for key, (value, lease) in round.write.items():
            if await holds(lease):
                await self.write_shared(key, value)
        if round.read:
            reply.values = await self._read_shared(list(round.read))
        if round.heartbeat is not None:
            await self.register_worker(round.holder, round.heartbeat, ttl=round.ttl)
        return reply

    # ------------------------------------------------------------------ live settings
    # Settings changed while mappings run, with a version (compare and set) and a
    # history (rules in sluicegate.store.live).
    async def get_settings(self, scope: str) -> LiveSettings:
        """Scope ``scope``'s live settings (version 0 and no values: never written)."""
        _check_scope(scope)
        return await self._get_settings(scope)

    async def list_settings(self, *, since: int = 0) -> tuple[int, list[LiveSettings]]:
        """The store's settings revision and every scope written after revision
        ``since`` (all of them with 0), by scope."""
        if isinstance(since, bool) or not isinstance(since, int) or since < 0:
            raise InputError(f"settings revision must be an integer >= 0, got {since!r}")
        revision, scopes = await self._list_settings(since)
        return revision, sorted(scopes, key=lambda s: s.scope)

    async def write_settings(
        self, scope: str, changes: Mapping[str, Any], *, by: str, why: str = "",
        expected_version: int | None = None,
    ) -> SettingsWrite:
        """Merge ``changes`` into scope ``scope`` (a value ``None`` removes the name) and
        record the write in the history, as ``by``, for ``why``. With
        ``expected_version``, only if the scope's version is still that one (compare and
        set): otherwise nothing is written and ``won`` is ``False``.

        Raises:
            InputError: an empty scope or ``by``, a name that is not a non-empty str, a
                value that is not JSON, a version that is not an integer >= 0.
        """
        _check_scope(scope)
        if not isinstance(by, str) or not by:
            raise InputError("a settings write must say who makes it (by='...')")
        if not isinstance(why, str):
            raise InputError(f"why must be a str, got {why!r}")
        if expected_version is not None and (
                isinstance(expected_version, bool) or not isinstance(expected_version, int)
                or expected_version < 0):
            raise InputError(f"expected_version must be an integer >= 0, got "
                             f"{expected_version!r}")
        values = dict(changes)
        for name, value in values.items():
            if not isinstance(name, str) or not name:
                raise InputError(f"setting names must be non-empty str, got {name!r}")
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError):
                raise InputError(f"setting {name!r}: {value!r} is not a JSON value") from None
        return await self._write_settings(scope, values, expected_version, by, why)

    async def settings_history(
        self, scope: str | None = None, *, limit: int = 100
    ) -> list[SettingsChange]:
        """The newest ``limit`` writes (of ``scope`` only, when given), oldest first."""
        if scope is not None:
            _check_scope(scope)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise InputError(f"history limit must be an integer >= 0, got {limit!r}")
        return await self._settings_history(scope, limit)

    # ------------------------------------------------------------------ semaphores
    # Named counted semaphores with FIFO waiters woken by the release, and batches parked
    # behind task tokens (rules in sluicegate.store.semaphores). A backend implements
    # the _semaphore_* and _parked primitives and how a wake reaches another process
    # (_wake_address, _send_wakes); waiters of this store object are woken directly.
    async def acquire_semaphore(
        self, name: str, holder: str, *, limit: int, ttl: float,
        timeout: float | None = None, info: str = "",
        on_nudge: Callable[[], None] | None = None,
    ) -> SemaphoreGrant:
        """Take a slot of semaphore ``name`` for task token ``holder``, waiting in arrival
        order for up to ``timeout`` seconds (``None``: as long as it takes; 0: do not
        wait, do not queue). The hold lasts ``ttl`` seconds unless renewed
        (:meth:`renew_semaphore`); a waiter is woken by the release that lets it in, and
        attempts again on its own only when a holder's slot would free by expiry.

        ``on_nudge``: the holder may give its slot up when others want it (a mapping's
        spare slot): it is called, on this store's loop, each time a new waiter queues
        while ``holder`` holds (the grant's ``behind`` says how many waited already).

        Returns:
            The grant (``acquired`` is ``False`` when the timeout passed first).

        Raises:
            InputError: a bad name, token, limit, ttl or timeout.
        """
        _check_semaphore(name, holder)
        _check_ttl(ttl)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InputError(f"limit={limit!r} is invalid: need an integer >= 1")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0
        ):
            raise InputError(f"timeout={timeout!r} is invalid: need seconds >= 0 or None")
        yieldable = on_nudge is not None
        if not timeout and timeout is not None:
            address = await self._wake_address() if yieldable else ""
            grant = await self._semaphore_acquire(name, holder, limit, ttl, False, address,
                                                  info, yieldable)
            if grant.acquired and on_nudge is not None:
                self._semaphore_nudges[holder] = on_nudge
            return grant
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        address = await self._wake_address()
        wakers = self._semaphore_wakers
        woken: asyncio.Future[None] = loop.create_future()
        wakers[holder] = woken
        acquired = False
        try:
            while True:
                grant = await self._semaphore_acquire(name, holder, limit, ttl, True, address,
                                                      info, yieldable)
                if grant.acquired:
                    acquired = True
                    if on_nudge is not None:
                        self._semaphore_nudges[holder] = on_nudge
                    return grant
                if grant.nudges:
                    await self._nudge(grant.nudges)
                left = None if deadline is None else deadline - loop.time()
                if left is not None and left <= 0:
                    return grant
                # the safety net: a dead holder's slot frees at its expiry; a live waiter
                # also refreshes its entry at least once a ttl
                wait = min(ttl, max(0.001, grant.retry_at - self.clock() + 0.001))
                if left is not None:
                    wait = min(wait, left)
                if not woken.done():  # asyncio.wait: a cancel is never swallowed
                    await asyncio.wait((woken,), timeout=wait)
                if woken.done():
                    woken = loop.create_future()
                    wakers[holder] = woken
        finally:
            if wakers.get(holder) is woken:
                del wakers[holder]
            if not acquired:  # leave the queue (and pass a wake on) even when cancelled
                await asyncio.shield(self._leave_semaphore(name, holder))

    async def _leave_semaphore(self, name: str, holder: str) -> None:
        with contextlib.suppress(StoreError):
            await self._deliver(name, await self._semaphore_release(name, holder))

    async def release_semaphore(self, name: str, holder: str) -> None:
        """Free ``holder``'s slot of semaphore ``name`` (nothing when it holds none) and
        wake the waiters that may take one now."""
        _check_semaphore(name, holder)
        self._semaphore_nudges.pop(holder, None)
        await self._deliver(name, await self._semaphore_release(name, holder))

    async def _nudge(self, nudges: tuple[Wake, ...]) -> None:
        """Tell yieldable holders a new waiter queued: this object's directly, the others
        through the backend (a holder that is gone is left to expire)."""
        remote = []
        for nudge in nudges:
            callback = self._semaphore_nudges.get(nudge.waiter)
            if callback is not None:
                callback()
            else:
                remote.append(nudge)
        if remote:
            with contextlib.suppress(StoreError):
                await self._send_wakes(remote)

    async def renew_semaphore(
        self, name: str, holders: Sequence[str], *, ttl: float
    ) -> list[int]:
        """Extend the holds of ``holders`` on ``name`` by ``ttl`` seconds from now; per
        holder its fencing token, 0 when its hold had expired (the slot may be
        another's: stop using it)."""
        _check_ttl(ttl)
        for holder in holders:
            _check_semaphore(name, holder)
        if not holders:
            return []
        return await self._semaphore_renew(name, list(holders), ttl)

    async def list_semaphores(
        self, names: Sequence[str] | None = None
    ) -> list[SemaphoreState]:
        """The semaphores (all, or those of ``names`` that exist), by name, with their
        live holders and waiters."""
        states = await self._semaphore_states(None if names is None else list(names))
        return sorted(states, key=lambda s: s.name)

    async def _deliver(self, name: str, wakes: list[Wake]) -> None:
        """Wake ``wakes``: this object's own waiters directly, the others through the
        backend; a waiter whose process is gone leaves the queue, which may wake the
        next one."""
        for _ in range(64):  # each round drops at least one dead waiter
            remote = []
            for wake in wakes:
                woken = self._semaphore_wakers.get(wake.waiter)
                if woken is not None:
                    if not woken.done():
                        woken.set_result(None)
                else:
                    remote.append(wake)
            dead = await self._send_wakes(remote) if remote else []
            if not dead:
                return
            wakes = []
            for waiter in dead:
                wakes = await self._semaphore_release(name, waiter)

    def _wake_local(self, waiter: str) -> None:
        """A wake for ``waiter`` arrived from another process."""
        woken = self._semaphore_wakers.get(waiter)
        if woken is not None:
            if not woken.done():
                woken.set_result(None)
            return
        nudged = self._semaphore_nudges.get(waiter)
        if nudged is not None:
            nudged()

    async def park(self, batch: ParkedBatch, *, ttl: float) -> None:
        """Store ``batch`` under its task token for ``ttl`` seconds (a heartbeat stores
        it again)."""
        _check_ttl(ttl)
        await self._put_parked(batch.token, batch.to_json(), ttl)

    async def parked(self, token: str, *, take: bool = False) -> ParkedBatch | None:
        """The batch parked behind ``token`` (``None``: none, or its heartbeat ran out);
        with ``take``, removed atomically, so that only one completion acts on it."""
        if not isinstance(token, str) or not token:
            raise InputError(f"task token {token!r} is invalid")
        raw = await self._get_parked(token, take)
        return None if raw is None else ParkedBatch.from_json(raw)

    async def _wake_address(self) -> str:
        """Where other processes send this store's waiters their wakes (started on first
        use). The default, for a store no other process shares: ``"local"`` (every
        waiter and nudged holder is in this object's own tables)."""
        return "local"

    async def _send_wakes(self, wakes: list[Wake]) -> list[str]:
        """Send each wake to its address in another process; the waiters nobody listens
        for any more (their process is gone). The default: every one is gone."""
        return [w.waiter for w in wakes]

    async def _semaphore_acquire(
        self, name: str, holder: str, limit: int, ttl: float, queue: bool, address: str,
        info: str, yieldable: bool = False,
    ) -> SemaphoreGrant:
        """One attempt (see :func:`~sluicegate.store.semaphores.acquire_in`)."""
        raise StoreError(f"{type(self).__name__} has no semaphores")

    async def _semaphore_release(self, name: str, holder: str) -> list[Wake]:
        raise StoreError(f"{type(self).__name__} has no semaphores")

    async def _semaphore_renew(self, name: str, holders: list[str], ttl: float) -> list[int]:
        raise StoreError(f"{type(self).__name__} has no semaphores")

    async def _semaphore_states(self, names: list[str] | None) -> list[SemaphoreState]:
        raise StoreError(f"{type(self).__name__} has no semaphores")

    async def _put_parked(self, token: str, record: str, ttl: float) -> None:
        raise StoreError(f"{type(self).__name__} cannot park batches")

    async def _get_parked(self, token: str, take: bool) -> str | None:
        raise StoreError(f"{type(self).__name__} cannot park batches")

    # ------------------------------------------------------------------ table items
    # Items with expiry under a table and a key (rules in sluicegate.store.items):
    # idempotency records, "once per tick" claims. A backend implements the _item
    # primitives, each one atomic step at one reading of its clock.
    async def create_item(
        self, table: str, key: str, *, status: str, data: str = "", ttl: float,
        in_progress_ttl: float | None = None,
    ) -> ItemWrite:
        """Write an item under ``table`` and ``key`` unless a live one holds the key,
        atomically (across processes too): of several creates of one key, one writes.

        Parameters:
            status: free text, 1-100 characters.
            data: free text (JSON by convention), up to
                :data:`~sluicegate.store.items.MAX_ITEM_DATA` characters.
            ttl: seconds from now (store clock) until the item is gone.
            in_progress_ttl: seconds from now until the item is gone unless an update
                clears this time first (the claim of work that may die mid-way);
                ``None``: no such time.

        Returns:
            ``written=True`` and the new item; or ``written=False`` and the live item
            that holds the key.

        Raises:
            InputError: a bad table, key, status, data or ttl.
        """
        check_item_key(table, key)
        args = (check_status(status), check_data(data), check_item_ttl("ttl", ttl),
                _in_progress(in_progress_ttl))
        return await self._create_item(table, key, *args)

    async def put_item(
        self, table: str, key: str, *, status: str, data: str = "", ttl: float,
        in_progress_ttl: float | None = None,
    ) -> TableItem:
        """Write an item under ``table`` and ``key`` whatever holds the key (arguments as
        :meth:`create_item`); the item written."""
        check_item_key(table, key)
        args = (check_status(status), check_data(data), check_item_ttl("ttl", ttl),
                _in_progress(in_progress_ttl))
        return await self._put_item(table, key, *args)

    async def get_item(self, table: str, key: str) -> TableItem | None:
        """The live item under ``table`` and ``key``; ``None`` when none is (never
        written, deleted, or past its expiry or in-progress expiry)."""
        check_item_key(table, key)
        return await self._get_item(table, key)

    async def update_item(
        self, table: str, key: str, *, status: str | None = None, data: str | None = None,
        ttl: float | None = None, in_progress_ttl: float | _Keep | None = KEEP,
        if_version: int | None = None, if_status: str | None = None,
    ) -> ItemWrite:
        """Change the live item under ``table`` and ``key``, atomically, if its version
        is ``if_version`` and its status ``if_status`` (each ``None``: any). Every write
        gives the item a new version.

        Parameters:
            status, data: new values; ``None`` keeps the item's.
            ttl: seconds from now to its new expiry; ``None`` keeps it.
            in_progress_ttl: seconds from now to its new in-progress expiry, ``None`` to
                clear it (the work finished), or :data:`~sluicegate.store.items.KEEP`.

        Returns:
            ``written=True`` and the item as changed; else ``written=False`` and the live
            item (whose version or status differ), or ``None`` when no live item holds
            the key.

        Raises:
            InputError: bad arguments.
        """
        check_item_key(table, key)
        keep = in_progress_ttl is KEEP
        change = ItemChange(
            status=None if status is None else check_status(status),
            data=None if data is None else check_data(data),
            ttl=None if ttl is None else check_item_ttl("ttl", ttl),
            in_progress_ttl=None if keep else _in_progress(in_progress_ttl),
            keep_in_progress=keep,
        )
        if if_status is not None:
            check_status(if_status)
        return await self._update_item(table, key, change, check_version(if_version),
                                       if_status)

    async def delete_item(self, table: str, key: str, *, if_version: int | None = None
                          ) -> bool:
        """Remove the live item under ``table`` and ``key`` (only if its version is
        ``if_version``, when given); whether one was removed."""
        check_item_key(table, key)
        return await self._delete_item(table, key, check_version(if_version))

    async def _create_item(self, table: str, key: str, status: str, data: str, ttl: float,
                           in_progress_ttl: float | None) -> ItemWrite:
        raise StoreError(f"{type(self).__name__} has no table items")

    async def _put_item(self, table: str, key: str, status: str, data: str, ttl: float,
                        in_progress_ttl: float | None) -> TableItem:
        raise StoreError(f"{type(self).__name__} has no table items")

    async def _get_item(self, table: str, key: str) -> TableItem | None:
        raise StoreError(f"{type(self).__name__} has no table items")

    async def _update_item(self, table: str, key: str, change: ItemChange,
                           if_version: int | None, if_status: str | None) -> ItemWrite:
        raise StoreError(f"{type(self).__name__} has no table items")

    async def _delete_item(self, table: str, key: str, if_version: int | None) -> bool:
        raise StoreError(f"{type(self).__name__} has no table items")

    # ------------------------------------------------------------------ helpers
    def _waiter(self, queue: str) -> asyncio.Event:
        """The event the next :meth:`_notify` of ``queue`` sets (one per notification)."""
        event = self._waiters.get(queue)
        if event is None:
            event = self._waiters[queue] = asyncio.Event()
        return event

    def _notify(self, queue: str) -> None:
        """Wake every long poll of ``queue`` in this process: messages may be visible.

        The event is replaced rather than cleared, so a poller that took it before its
        last receive sees the notification even if another poller has been woken first.
        """
        event = self._waiters.pop(queue, None)
        if event is not None:
            event.set()

    # ------------------------------------------------------------------ primitives
    @abstractmethod
    async def _ensure_queue(self, config: QueueConfig) -> None: ...

    @abstractmethod
    async def _get_queue(self, name: str, *, cached: bool = False) -> QueueConfig:
        """The queue's attributes. Raises :class:`QueueNotFound`.

        ``cached=True`` is a hint from a caller whose next primitive checks that the
        attributes it validated against are still current (the Redis store's scripts
        compare a version and refuse a stale one): a backend may then answer from what
        it read last instead of asking its server. Backends that read their own state
        cheaply ignore it."""

    @abstractmethod
    async def _list_queues(self) -> list[QueueConfig]: ...

    @abstractmethod
    async def _delete_queue(self, name: str) -> None: ...

    @abstractmethod
    async def _send(self, queue: str, messages: list[NewMessage]) -> list[str]:
        """Store validated messages atomically; return their new message ids."""

    @abstractmethod
    async def _send_fifo(self, queue: str, messages: list[NewMessage]) -> list[FifoSent]:
        """Store validated messages of a FIFO queue atomically, in order, each with the
        next sequence number, except those whose ``deduplication_id`` was seen in the
        last :data:`DEDUPLICATION_WINDOW` seconds (earlier in the same call included)."""

    @abstractmethod
    async def _receive(self, queue: str, max_messages: int, visibility_timeout: float) -> list[
        Message
    ]:
        """Without waiting: expire messages past retention, dead-letter those received
        ``max_receive_count`` times that are visible, then claim up to ``max_messages``
        visible messages, oldest first, raising their receive count."""

    @abstractmethod
    async def _next_visible_at(self, queue: str) -> float | None:
        """Epoch seconds when the next hidden (delayed or in-flight) message becomes
        visible, or ``None`` when there is none."""

    @abstractmethod
    async def _delete(self, queue: str, receipt_handles: list[str]) -> list[bool]: ...

    @abstractmethod
    async def _change_visibility(
        self, queue: str, receipt_handle: str, visibility_timeout: float
    ) -> None: ...

    @abstractmethod
    async def _purge(self, queue: str) -> int: ...

    @abstractmethod
    async def _counts(self, queue: str) -> QueueCounts: ...

    @abstractmethod
    async def _peek(self, queue: str, limit: int) -> list[PeekedMessage]:
        """Read (never change) the ``limit`` first messages of the queue by sent time,
        then sequence, leaving out those past the retention period (see :meth:`peek`)."""

    @abstractmethod
    async def _redrive(self, dead_letter_queue: str, to: str | None) -> list[str]:
        """Move messages back; return the destination queue name of each moved message."""

    @abstractmethod
    async def _ensure_stream(self, config: StreamConfig) -> None: ...

    @abstractmethod
    async def _get_stream(self, name: str, *, cached: bool = False) -> StreamConfig:
        """Raises :class:`StreamNotFound`. ``cached``: as for :meth:`_get_queue`."""

    @abstractmethod
    async def _list_streams(self) -> list[StreamConfig]: ...

    @abstractmethod
    async def _delete_stream(self, name: str) -> None:
        """Raises :class:`StreamNotFound`; removes the checkpoints of its mappings too."""

    @abstractmethod
    async def _put(self, stream: str, records: list[tuple[int, str, bytes]]) -> list[int]:
        """Append ``(shard, partition_key, data)`` records atomically, dropping records
        past retention first; return each record's new sequence number."""

    @abstractmethod
    async def _get_records(
        self, stream: str, shard: int, after: int | None, at_timestamp: float | None, limit: int
    ) -> list[StreamMessage]:
        """Drop records past retention, then read (see :meth:`get_records`)."""

    @abstractmethod
    async def _latest_sequence(self, stream: str, shard: int) -> int: ...

    @abstractmethod
    async def _shard_stats(self, stream: str) -> list[tuple[int | None, int, int]]:
        """Per shard, in order: (first retained sequence or None, latest sequence or -1,
        retained records)."""

    @abstractmethod
    async def _get_checkpoints(self, mapping: str) -> dict[int, int]: ...

    @abstractmethod
    async def _stream_checkpoints(self, stream: str) -> dict[str, dict[int, int]]:
        """Checkpoints of every mapping whose name starts with ``stream->``."""

    @abstractmethod
    async def _set_checkpoints(self, mapping: str, checkpoints: dict[int, int]) -> None:
        """Raise each shard's checkpoint to the given value; never lower it."""


    # ------------------------------------------------------------------ coordination
    @abstractmethod
    async def _claim_leases(
        self, holder: str, claims: list[LeaseClaim], ttl: float
    ) -> list[LeaseGrant]:
        """Apply ``claims`` in order, each atomically, at the clock's time (see
        :func:`~sluicegate.store.coordination.claim_lease_in`)."""

    @abstractmethod
    async def _lease_holders(self, name: str) -> list[LeaseHolder]: ...

    @abstractmethod
    async def _lease_names(self) -> list[str]: ...

    @abstractmethod
    async def _register_worker(
        self, worker: str, info: str, ttl: float, exclusive: bool
    ) -> str | None:
        """Write the entry (JSON text) unless ``exclusive`` and a live one exists: then
        return that one's text."""

    @abstractmethod
    async def _list_workers(self) -> list[tuple[str, str]]:
        """(worker id, JSON text) of every live entry; drop expired ones."""

    @abstractmethod
    async def _unregister_worker(self, worker: str) -> None: ...

    @abstractmethod
    async def _append_events(self, log: str, events: list[str]) -> None: ...

    @abstractmethod
    async def _take_events(self, log: str) -> list[str]: ...

    @abstractmethod
    async def _write_shared(self, key: str, value: str) -> None: ...

    @abstractmethod
    async def _read_shared(self, keys: list[str]) -> dict[str, str | None]: ...

    # ------------------------------------------------------------------ live settings
    @abstractmethod
    async def _get_settings(self, scope: str) -> LiveSettings: ...

    @abstractmethod
    async def _list_settings(self, since: int) -> tuple[int, list[LiveSettings]]:
        """The revision and the scopes whose revision is above ``since``, in any order."""

    @abstractmethod
    async def _write_settings(
        self, scope: str, changes: dict[str, Any], expected_version: int | None, by: str,
        why: str,
    ) -> SettingsWrite:
        """One atomic write (see :mod:`sluicegate.store.live`): compare, merge, raise the
        version and the revision (also the shared value
        :data:`~sluicegate.store.live.SETTINGS_REVISION`), append to the history."""

    @abstractmethod
    async def _settings_history(self, scope: str | None, limit: int) -> list[SettingsChange]:
        """The newest ``limit`` entries (of ``scope``), oldest first."""


def _check_scope(scope: object) -> None:
    if not isinstance(scope, str) or not scope:
        raise InputError(f"a settings scope must be a non-empty str, got {scope!r}")


def _check_semaphore(name: object, holder: object) -> None:
    if not isinstance(name, str) or not name or len(name) > 200:
        raise InputError(f"semaphore name {name!r} is invalid: need 1-200 characters")
    if not isinstance(holder, str) or not holder or len(holder) > 200:
        raise InputError(f"task token {holder!r} is invalid: need 1-200 characters")


def _in_progress(ttl: object) -> float | None:
    return None if ttl is None else check_item_ttl("in_progress_ttl", ttl)


def _check_ttl(ttl: float) -> None:
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not ttl > 0:
        raise InputError(f"ttl={ttl!r} is invalid: need seconds > 0")


def _stream_key(stream: str) -> str:
    """The notification key of a stream (queues use their plain names)."""
    return f"stream:{stream}"


def _explicit_hash_key(value: str) -> int:
    try:
        key = int(value, 10) if isinstance(value, str) else -1
    except ValueError:
        key = -1
    if not 0 <= key <= _HASH_KEY_MAX:
        raise InputError(
            f"explicit_hash_key={value!r} is invalid: allowed a decimal integer 0-2**128-1"
        )
    return key


def _fifo_ids(config: QueueConfig, entry: SendEntry) -> tuple[str, str]:
    """The group and deduplication ids of a FIFO send, validated; raises InputError."""
    group, dedup = entry.group_id, entry.deduplication_id
    if group is None:
        raise InputError(f"group_id is required for FIFO queue {config.name!r}")
    if not isinstance(group, str) or not _FIFO_ID.match(group):
        raise InputError(
            f"group_id={group!r} is invalid: allowed 1-128 letters, digits or punctuation"
        )
    if entry.delay_seconds is not None:
        raise InputError(
            f"delay_seconds is per queue on FIFO queue {config.name!r}, not per message"
        )
    if dedup is None:
        if not config.content_based_deduplication:
            raise InputError(
                f"deduplication_id is required: FIFO queue {config.name!r} has no "
                "content-based deduplication"
            )
        return group, hashlib.sha256(entry.body.encode("utf-8")).hexdigest()
    if not isinstance(dedup, str) or not _FIFO_ID.match(dedup):
        raise InputError(
            f"deduplication_id={dedup!r} is invalid: allowed 1-128 letters, digits or "
            "punctuation"
        )
    return group, dedup


def publish_ids(
    topic: TopicConfig, body: str, group_id: str | None, deduplication_id: str | None
) -> tuple[str | None, str | None]:
    """The group and deduplication ids a publish to ``topic`` gives every subscribed queue.

    A FIFO topic passes the group id and a deduplication id (the given one, or the
    SHA-256 of the body with content-based deduplication), so every queue keeps the
    message's group and drops a republished message; a standard topic takes neither.
    :meth:`Store.publish` and the simulator's topic publishes both follow it.

    Returns:
        ``(group_id, deduplication_id)``: both set for a FIFO topic, both ``None`` for a
        standard one.

    Raises:
        InputError: a FIFO publish without a group id, or without a deduplication id on a
            topic without content-based deduplication; ids on a standard topic.
    """
    if topic.fifo:
        if group_id is None:
            raise InputError(f"group_id is required for FIFO topic {topic.name!r}")
        if deduplication_id is None:
            if not topic.content_based_deduplication:
                raise InputError(
                    f"deduplication_id is required: FIFO topic {topic.name!r} has no "
                    "content-based deduplication"
                )
            deduplication_id = hashlib.sha256(body.encode("utf-8")).hexdigest()
    elif group_id is not None or deduplication_id is not None:
        which = "group_id" if group_id is not None else "deduplication_id"
        raise InputError(f"{which} is only for FIFO topics; {topic.name!r} is standard")
    return group_id, deduplication_id


def check_store_error(exc: BaseException) -> StoreError:
    """Wrap a backend's own exception in a :class:`StoreError` keeping its message."""
    if isinstance(exc, StoreError):
        return exc
    return StoreError(f"{type(exc).__name__}: {exc}")
