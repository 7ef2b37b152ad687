"""The synchronous engine contract, and the one adapter that gives an engine the store's
asynchronous face.

The memory and SQLite stores keep their state behind plain synchronous methods (an
*engine*): one call is one atomic step, it reads the time from the engine's clock, takes
arguments the :class:`~sluicegate.store.base.Store` has already validated and raises the
store's errors (:class:`~sluicegate.errors.QueueNotFound`, ...). The simulator drives the
memory engines directly, at heap speed, with no event loop.

:class:`Engine` declares that shape in parts (:class:`QueueEngine`,
:class:`StreamEngine`, :class:`CoordinationEngine`, :class:`SettingsEngine`,
:class:`SemaphoreEngine`, :class:`ItemEngine`), one method per primitive of the
store contract (the ``_``-prefixed coroutines of :class:`~sluicegate.store.base.Store`,
without the underscore). An engine may implement every part itself (the SQLite
engine: one connection does everything) or hand out three objects (the memory store:
:class:`~sluicegate.store.memory.MemoryQueues`,
:class:`~sluicegate.store.memory_streams.MemoryStreams`,
:class:`~sluicegate.store.coordination.MemoryCoordination`).

:class:`EngineStore` implements every primitive once, as a call on an engine. A backend
says only *where* a call runs, through two hooks: :meth:`EngineStore._quick` for the small
operations on the hot path of a running mapping (send, receive, delete, a queue's
attributes, stream reads and writes, lease claims) and :meth:`EngineStore._slow` for
those that may scan or wait (counts, peek, purge, redrive, creating and listing). The
memory store runs both at once on the event loop's thread (quick primitives call its
engines directly, see :attr:`EngineStore._inline`); the SQLite store tries quick calls on
the loop's own connection and runs slow ones on its worker thread. Each hook raises
:class:`~sluicegate.errors.StoreNotOpen` when the store is not open. The ``cached`` hint
of ``_get_queue``/``_get_stream`` is ignored: an engine reads its own state cheaply.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from sluicegate.core.config import QueueConfig
from sluicegate.core.streams import StreamConfig
from sluicegate.store.base import Store
from sluicegate.store.coordination import LeaseClaim, LeaseGrant, LeaseHolder
from sluicegate.store.items import ItemChange, ItemWrite, TableItem
from sluicegate.store.live import LiveSettings, SettingsChange, SettingsWrite
from sluicegate.store.semaphores import SemaphoreGrant, SemaphoreState, Wake
from sluicegate.store.values import (
    Clock,
    FifoSent,
    Message,
    NewMessage,
    PeekedMessage,
    QueueCounts,
    StreamMessage,
)

__all__ = [
    "CoordinationEngine",
    "Engine",
    "EngineStore",
    "ItemEngine",
    "QueueEngine",
    "SemaphoreEngine",
    "SettingsEngine",
    "StreamEngine",
]

T = TypeVar("T")


class QueueEngine(Protocol):
    """Queues: SQS standard and FIFO semantics (see :mod:`sluicegate.store.base`).

    Every method is one atomic step at one reading of the engine's clock, and raises
    :class:`~sluicegate.errors.QueueNotFound` for an unknown queue.
    """

    def ensure_queue(self, config: QueueConfig, /) -> None:
        """Create the queue, or give an existing one ``config``'s attributes. Raises
        QueueNotFound when ``config.dead_letter_queue`` names no queue."""
        ...

    def get_queue(self, name: str, /) -> QueueConfig:
        """The queue's attributes."""
        ...

    def list_queues(self) -> list[QueueConfig]:
        """Every queue's attributes, in any order."""
        ...

    def delete_queue(self, name: str, /) -> None:
        """Delete the queue and its messages."""
        ...

    def send(self, queue: str, messages: list[NewMessage], /) -> list[str]:
        """Store validated messages of a standard queue atomically; their new ids."""
        ...

    def send_fifo(self, queue: str, messages: list[NewMessage], /) -> list[FifoSent]:
        """Store validated messages of a FIFO queue atomically, in order, each with the
        next sequence number, except those whose deduplication id was seen in the last
        :data:`~sluicegate.store.values.DEDUPLICATION_WINDOW` seconds (earlier in the
        same call included)."""
        ...

    def receive(
        self, queue: str, max_messages: int, visibility_timeout: float, /
    ) -> list[Message]:
        """Without waiting: expire messages past retention, dead-letter those received
        ``max_receive_count`` times that are visible, then claim up to ``max_messages``
        visible messages, oldest first (FIFO: by group), raising their receive count."""
        ...

    def next_visible_at(self, queue: str, /) -> float | None:
        """Epoch seconds when the next hidden (delayed or in-flight) message becomes
        visible; ``None`` when none is hidden."""
        ...

    def delete(self, queue: str, receipt_handles: list[str], /) -> list[bool]:
        """Delete the messages of the current handles; one flag per handle (a stale or
        malformed handle deletes nothing)."""
        ...

    def change_visibility(
        self, queue: str, receipt_handle: str, visibility_timeout: float, /
    ) -> None:
        """Make the in-flight message of the handle visible ``visibility_timeout``
        seconds from now. Raises InvalidReceiptHandle when it is not in flight under
        that handle."""
        ...

    def purge(self, queue: str, /) -> int:
        """Delete every message; how many there were."""
        ...

    def counts(self, queue: str, /) -> QueueCounts:
        """The queue's counts now; changes nothing."""
        ...

    def peek(self, queue: str, limit: int, /) -> list[PeekedMessage]:
        """The first ``limit`` messages by sent time then sequence, past retention left
        out; changes nothing."""
        ...

    def redrive(self, dead_letter_queue: str, to: str | None, /) -> list[str]:
        """Move every message back to ``to`` or its source queue, all or nothing; the
        destination of each moved message. Raises StoreError for a message without a
        source when ``to`` is ``None``."""
        ...


class StreamEngine(Protocol):
    """Streams and mappings' checkpoints. Every method raises
    :class:`~sluicegate.errors.StreamNotFound` for an unknown stream."""

    def ensure_stream(self, config: StreamConfig, /) -> None:
        """Create the stream, or update its retention (the shard count is checked by
        the store)."""
        ...

    def get_stream(self, name: str, /) -> StreamConfig:
        """The stream's configuration."""
        ...

    def list_streams(self) -> list[StreamConfig]:
        """Every stream's configuration, in any order."""
        ...

    def delete_stream(self, name: str, /) -> None:
        """Delete the stream, its records and the checkpoints of its mappings."""
        ...

    def put(self, stream: str, records: list[tuple[int, str, bytes]], /) -> list[int]:
        """Append ``(shard, partition_key, data)`` records atomically, dropping records
        past retention first; each record's new sequence number."""
        ...

    def get_records(
        self, stream: str, shard: int, after: int | None, at_timestamp: float | None,
        limit: int, /,
    ) -> list[StreamMessage]:
        """Drop records past retention, then read up to ``limit`` of ``shard`` in
        sequence order: after sequence ``after``, else from the first arrived at or
        after ``at_timestamp``, else from the oldest."""
        ...

    def latest_sequence(self, stream: str, shard: int, /) -> int:
        """The last sequence number written to ``shard``; -1 when none was."""
        ...

    def shard_stats(self, stream: str, /) -> list[tuple[int | None, int, int]]:
        """Per shard, in order: (first retained sequence or None, latest sequence or -1,
        retained records)."""
        ...

    def get_checkpoints(self, mapping: str, /) -> dict[int, int]:
        """The mapping's checkpoints: shard -> last settled sequence number."""
        ...

    def stream_checkpoints(self, stream: str, /) -> dict[str, dict[int, int]]:
        """Checkpoints of every mapping whose name starts with ``stream->``."""
        ...

    def set_checkpoints(self, mapping: str, checkpoints: dict[int, int], /) -> None:
        """Raise each shard's checkpoint to the given value; never lower it."""
        ...


class CoordinationEngine(Protocol):
    """Counted leases, the worker registry, shared logs and values (rules in
    :mod:`sluicegate.store.coordination`), at the engine's clock."""

    def claim_leases(
        self, holder: str, claims: list[LeaseClaim], ttl: float, /
    ) -> list[LeaseGrant]:
        """Apply ``claims`` in order, each atomically, at one clock reading (see
        :func:`~sluicegate.store.coordination.claim_lease_in`)."""
        ...

    def lease_holders(self, name: str, /) -> list[LeaseHolder]:
        """The live holders of lease ``name``, in any order."""
        ...

    def lease_names(self) -> list[str]:
        """Names of the leases ever claimed, in any order."""
        ...

    def register_worker(
        self, worker: str, info: str, ttl: float, exclusive: bool, /
    ) -> str | None:
        """Write the entry (JSON text) until ``ttl`` seconds from now, unless
        ``exclusive`` and a live one exists: then return that one's text."""
        ...

    def list_workers(self) -> list[tuple[str, str]]:
        """(worker id, JSON text) of every live entry, in any order."""
        ...

    def unregister_worker(self, worker: str, /) -> None:
        """Drop the worker's entry (none: nothing happens)."""
        ...

    def append_events(self, log: str, events: list[str], /) -> None:
        """Add events to the log, which keeps the newest
        :data:`~sluicegate.store.coordination.MAX_EVENTS`."""
        ...

    def take_events(self, log: str, /) -> list[str]:
        """Every event of the log, oldest first, removing them."""
        ...

    def write_shared(self, key: str, value: str, /) -> None:
        """Set shared value ``key``."""
        ...

    def read_shared(self, keys: list[str], /) -> dict[str, str | None]:
        """Each key's shared value (``None``: never written)."""
        ...


# ---------------------------------------------------------------------- live settings
class SettingsEngine(Protocol):
    """Live settings with a version and a history (rules in
    :mod:`sluicegate.store.live`), at the engine's clock."""

    def get_settings(self, scope: str, /) -> LiveSettings:
        """The scope's settings (version 0: never written)."""
        ...

    def list_settings(self, since: int, /) -> tuple[int, list[LiveSettings]]:
        """The store's settings revision and the scopes written after ``since``."""
        ...

    def write_settings(
        self, scope: str, changes: dict[str, Any], expected_version: int | None, by: str,
        why: str, /,
    ) -> SettingsWrite:
        """One atomic write: compare (when ``expected_version`` is given), merge, raise
        the version and the revision (and the shared value
        :data:`~sluicegate.store.live.SETTINGS_REVISION`), append to the history."""
        ...

    def settings_history(self, scope: str | None, limit: int, /) -> list[SettingsChange]:
        """The newest ``limit`` entries (of ``scope``), oldest first."""
        ...


# ---------------------------------------------------------------------- semaphores
class SemaphoreEngine(Protocol):
    """Named counted semaphores and parked batches (rules in
    :mod:`sluicegate.store.semaphores`), at the engine's clock."""

    def semaphore_acquire(
        self, name: str, holder: str, limit: int, ttl: float, queue: bool, address: str,
        info: str, yieldable: bool, /,
    ) -> SemaphoreGrant:
        """One attempt, atomically (see :func:`~sluicegate.store.semaphores.acquire_in`)."""
        ...

    def semaphore_release(self, name: str, holder: str, /) -> list[Wake]:
        """Free the slot or leave the queue; the waiters that may take a slot now."""
        ...

    def semaphore_renew(self, name: str, holders: list[str], ttl: float, /) -> list[int]:
        """Extend holds; per holder its fencing token, 0 when it no longer holds."""
        ...

    def semaphore_states(self, names: list[str] | None, /) -> list[SemaphoreState]:
        """The semaphores (all, or the named ones that exist), expired entries dropped."""
        ...

    def put_parked(self, token: str, record: str, ttl: float, /) -> None:
        """Store a parked batch's record (JSON text) until ``ttl`` seconds from now."""
        ...

    def get_parked(self, token: str, take: bool, /) -> str | None:
        """The live record of ``token``; removed too with ``take``."""
        ...


# ---------------------------------------------------------------------- table items
class ItemEngine(Protocol):
    """Table items with expiry (rules in :mod:`sluicegate.store.items`), at the
    engine's clock; every method is one atomic step."""

    def create_item(self, table: str, key: str, status: str, data: str, ttl: float,
                    in_progress_ttl: float | None, /) -> ItemWrite:
        """Write the item unless a live one holds the key; that one when it does."""
        ...

    def put_item(self, table: str, key: str, status: str, data: str, ttl: float,
                 in_progress_ttl: float | None, /) -> TableItem:
        """Write the item whatever holds the key."""
        ...

    def get_item(self, table: str, key: str, /) -> TableItem | None:
        """The live item under the key, or ``None``."""
        ...

    def update_item(self, table: str, key: str, change: ItemChange,
                    if_version: int | None, if_status: str | None, /) -> ItemWrite:
        """Apply ``change`` to the live item if its version and status match."""
        ...

    def delete_item(self, table: str, key: str, if_version: int | None, /) -> bool:
        """Remove the live item (if its version matches); whether one was removed."""
        ...


class Engine(Protocol):
    """A whole engine: its parts (one object may be all of them)."""

    @property
    def items(self) -> ItemEngine: ...

    @property
    def semaphores(self) -> SemaphoreEngine: ...

    @property
    def queues(self) -> QueueEngine: ...

    @property
    def streams(self) -> StreamEngine: ...

    @property
    def coordination(self) -> CoordinationEngine: ...

    @property
    def settings(self) -> SettingsEngine: ...


class EngineStore(Store):
    """A :class:`~sluicegate.store.base.Store` whose primitives are calls on an
    :class:`Engine`; a subclass implements :meth:`_quick`, :meth:`_slow`, ``open`` and
    ``close`` (see the module docstring for which primitive takes which hook).

    Attributes:
        _inline: an engine whose calls never block, set by a backend while it is open
            (the memory store): quick primitives then call it directly, without a hook,
            a closure or a second coroutine, which keeps the memory store's face about
            as fast as its engine. ``None`` (the default, and the SQLite store's) sends
            every call through the hooks.
    """

    def __init__(self, *, clock: Clock | None = None, poll_interval: float = 0.05) -> None:
        super().__init__(clock=clock, poll_interval=poll_interval)
        self._inline: Engine | None = None

    @abstractmethod
    async def _quick(self, call: Callable[[Engine], T]) -> T:
        """Run ``call`` on an engine: a small operation a running mapping makes all the
        time. Raises :class:`~sluicegate.errors.StoreNotOpen` when not open."""

    @abstractmethod
    async def _slow(self, call: Callable[[Engine], T]) -> T:
        """Run ``call`` on an engine: an operation that may scan a queue or wait for a
        lock. Raises :class:`~sluicegate.errors.StoreNotOpen` when not open."""

    # ------------------------------------------------------------------ queues
    async def _ensure_queue(self, config: QueueConfig) -> None:
        await self._slow(lambda e: e.queues.ensure_queue(config))

    async def _get_queue(self, name: str, *, cached: bool = False) -> QueueConfig:
        inline = self._inline
        if inline is not None:
            return inline.queues.get_queue(name)
        return await self._quick(lambda e: e.queues.get_queue(name))

    async def _list_queues(self) -> list[QueueConfig]:
        return await self._slow(lambda e: e.queues.list_queues())

    async def _delete_queue(self, name: str) -> None:
        await self._slow(lambda e: e.queues.delete_queue(name))

    async def _send(self, queue: str, messages: list[NewMessage]) -> list[str]:
        inline = self._inline
        if inline is not None:
            return inline.queues.send(queue, messages)
        return await self._quick(lambda e: e.queues.send(queue, messages))

    async def _send_fifo(self, queue: str, messages: list[NewMessage]) -> list[FifoSent]:
        inline = self._inline
        if inline is not None:
            return inline.queues.send_fifo(queue, messages)
        return await self._quick(lambda e: e.queues.send_fifo(queue, messages))

    async def _receive(
        self, queue: str, max_messages: int, visibility_timeout: float
    ) -> list[Message]:
        inline = self._inline
        if inline is not None:
            return inline.queues.receive(queue, max_messages, visibility_timeout)
        return await self._quick(
            lambda e: e.queues.receive(queue, max_messages, visibility_timeout)
        )

    async def _next_visible_at(self, queue: str) -> float | None:
        inline = self._inline
        if inline is not None:
            return inline.queues.next_visible_at(queue)
        return await self._quick(lambda e: e.queues.next_visible_at(queue))

    async def _delete(self, queue: str, receipt_handles: list[str]) -> list[bool]:
        inline = self._inline
        if inline is not None:
            return inline.queues.delete(queue, receipt_handles)
        return await self._quick(lambda e: e.queues.delete(queue, receipt_handles))

    async def _change_visibility(
        self, queue: str, receipt_handle: str, visibility_timeout: float
    ) -> None:
        inline = self._inline
        if inline is not None:
            inline.queues.change_visibility(queue, receipt_handle, visibility_timeout)
            return
        await self._quick(
            lambda e: e.queues.change_visibility(queue, receipt_handle, visibility_timeout)
        )

    async def _purge(self, queue: str) -> int:
        return await self._slow(lambda e: e.queues.purge(queue))

    async def _counts(self, queue: str) -> QueueCounts:
        return await self._slow(lambda e: e.queues.counts(queue))

    async def _peek(self, queue: str, limit: int) -> list[PeekedMessage]:
        return await self._slow(lambda e: e.queues.peek(queue, limit))

    async def _redrive(self, dead_letter_queue: str, to: str | None) -> list[str]:
        return await self._slow(lambda e: e.queues.redrive(dead_letter_queue, to))

    # ------------------------------------------------------------------ streams
    async def _ensure_stream(self, config: StreamConfig) -> None:
        await self._slow(lambda e: e.streams.ensure_stream(config))

    async def _get_stream(self, name: str, *, cached: bool = False) -> StreamConfig:
        inline = self._inline
        if inline is not None:
            return inline.streams.get_stream(name)
        return await self._quick(lambda e: e.streams.get_stream(name))

    async def _list_streams(self) -> list[StreamConfig]:
        return await self._slow(lambda e: e.streams.list_streams())

    async def _delete_stream(self, name: str) -> None:
        await self._slow(lambda e: e.streams.delete_stream(name))

    async def _put(self, stream: str, records: list[tuple[int, str, bytes]]) -> list[int]:
        inline = self._inline
        if inline is not None:
            return inline.streams.put(stream, records)
        return await self._quick(lambda e: e.streams.put(stream, records))

    async def _get_records(
        self, stream: str, shard: int, after: int | None, at_timestamp: float | None, limit: int
    ) -> list[StreamMessage]:
        inline = self._inline
        if inline is not None:
            return inline.streams.get_records(stream, shard, after, at_timestamp, limit)
        return await self._quick(
            lambda e: e.streams.get_records(stream, shard, after, at_timestamp, limit)
        )

    async def _latest_sequence(self, stream: str, shard: int) -> int:
        inline = self._inline
        if inline is not None:
            return inline.streams.latest_sequence(stream, shard)
        return await self._quick(lambda e: e.streams.latest_sequence(stream, shard))

    async def _shard_stats(self, stream: str) -> list[tuple[int | None, int, int]]:
        return await self._slow(lambda e: e.streams.shard_stats(stream))

    async def _get_checkpoints(self, mapping: str) -> dict[int, int]:
        inline = self._inline
        if inline is not None:
            return inline.streams.get_checkpoints(mapping)
        return await self._quick(lambda e: e.streams.get_checkpoints(mapping))

    async def _stream_checkpoints(self, stream: str) -> dict[str, dict[int, int]]:
        return await self._slow(lambda e: e.streams.stream_checkpoints(stream))

    async def _set_checkpoints(self, mapping: str, checkpoints: dict[int, int]) -> None:
        inline = self._inline
        if inline is not None:
            inline.streams.set_checkpoints(mapping, checkpoints)
            return
        await self._quick(lambda e: e.streams.set_checkpoints(mapping, checkpoints))

    # ------------------------------------------------------------------ coordination
    async def _claim_leases(
        self, holder: str, claims: list[LeaseClaim], ttl: float
    ) -> list[LeaseGrant]:
        inline = self._inline
        if inline is not None:
            return inline.coordination.claim_leases(holder, claims, ttl)
        return await self._quick(lambda e: e.coordination.claim_leases(holder, claims, ttl))

    async def _lease_holders(self, name: str) -> list[LeaseHolder]:
        inline = self._inline
        if inline is not None:
            return inline.coordination.lease_holders(name)
        return await self._quick(lambda e: e.coordination.lease_holders(name))

    async def _lease_names(self) -> list[str]:
        return await self._slow(lambda e: e.coordination.lease_names())

    async def _register_worker(
        self, worker: str, info: str, ttl: float, exclusive: bool
    ) -> str | None:
        return await self._slow(
            lambda e: e.coordination.register_worker(worker, info, ttl, exclusive)
        )

    async def _list_workers(self) -> list[tuple[str, str]]:
        return await self._slow(lambda e: e.coordination.list_workers())

    async def _unregister_worker(self, worker: str) -> None:
        await self._slow(lambda e: e.coordination.unregister_worker(worker))

    async def _append_events(self, log: str, events: list[str]) -> None:
        inline = self._inline
        if inline is not None:
            inline.coordination.append_events(log, events)
            return
        await self._quick(lambda e: e.coordination.append_events(log, events))

    async def _take_events(self, log: str) -> list[str]:
        inline = self._inline
        if inline is not None:
            return inline.coordination.take_events(log)
        return await self._quick(lambda e: e.coordination.take_events(log))

    async def _write_shared(self, key: str, value: str) -> None:
        inline = self._inline
        if inline is not None:
            inline.coordination.write_shared(key, value)
            return
        await self._quick(lambda e: e.coordination.write_shared(key, value))

    async def _read_shared(self, keys: list[str]) -> dict[str, str | None]:
        inline = self._inline
        if inline is not None:
            return inline.coordination.read_shared(keys)
        return await self._quick(lambda e: e.coordination.read_shared(keys))

    # ------------------------------------------------------------------ live settings
    async def _get_settings(self, scope: str) -> LiveSettings:
        inline = self._inline
        if inline is not None:
            return inline.settings.get_settings(scope)
        return await self._quick(lambda e: e.settings.get_settings(scope))

    async def _list_settings(self, since: int) -> tuple[int, list[LiveSettings]]:
        inline = self._inline
        if inline is not None:
            return inline.settings.list_settings(since)
        return await self._quick(lambda e: e.settings.list_settings(since))

    async def _write_settings(
        self, scope: str, changes: dict[str, Any], expected_version: int | None, by: str,
        why: str,
    ) -> SettingsWrite:
        inline = self._inline
        if inline is not None:
            return inline.settings.write_settings(scope, changes, expected_version, by, why)
        return await self._slow(
            lambda e: e.settings.write_settings(scope, changes, expected_version, by, why))

    async def _settings_history(self, scope: str | None, limit: int) -> list[SettingsChange]:
        return await self._slow(lambda e: e.settings.settings_history(scope, limit))

    # ------------------------------------------------------------------ semaphores
    async def _semaphore_acquire(
        self, name: str, holder: str, limit: int, ttl: float, queue: bool, address: str,
        info: str, yieldable: bool = False,
    ) -> SemaphoreGrant:
        return await self._quick(
            lambda e: e.semaphores.semaphore_acquire(name, holder, limit, ttl, queue, address,
                                                     info, yieldable))

    async def _semaphore_release(self, name: str, holder: str) -> list[Wake]:
        return await self._quick(lambda e: e.semaphores.semaphore_release(name, holder))

    async def _semaphore_renew(self, name: str, holders: list[str], ttl: float) -> list[int]:
        return await self._quick(lambda e: e.semaphores.semaphore_renew(name, holders, ttl))

    async def _semaphore_states(self, names: list[str] | None) -> list[SemaphoreState]:
        return await self._slow(lambda e: e.semaphores.semaphore_states(names))

    async def _put_parked(self, token: str, record: str, ttl: float) -> None:
        await self._quick(lambda e: e.semaphores.put_parked(token, record, ttl))

    async def _get_parked(self, token: str, take: bool) -> str | None:
        return await self._quick(lambda e: e.semaphores.get_parked(token, take))

    # ------------------------------------------------------------------ table items
    async def _create_item(self, table: str, key: str, status: str, data: str, ttl: float,
                           in_progress_ttl: float | None) -> ItemWrite:
        inline = self._inline
        if inline is not None:
            return inline.items.create_item(table, key, status, data, ttl, in_progress_ttl)
        return await self._quick(
            lambda e: e.items.create_item(table, key, status, data, ttl, in_progress_ttl))

    async def _put_item(self, table: str, key: str, status: str, data: str, ttl: float,
                        in_progress_ttl: float | None) -> TableItem:
        inline = self._inline
        if inline is not None:
            return inline.items.put_item(table, key, status, data, ttl, in_progress_ttl)
        return await self._quick(
            lambda e: e.items.put_item(table, key, status, data, ttl, in_progress_ttl))

    async def _get_item(self, table: str, key: str) -> TableItem | None:
        inline = self._inline
        if inline is not None:
            return inline.items.get_item(table, key)
        return await self._quick(lambda e: e.items.get_item(table, key))

    async def _update_item(self, table: str, key: str, change: ItemChange,
                           if_version: int | None, if_status: str | None) -> ItemWrite:
        inline = self._inline
        if inline is not None:
            return inline.items.update_item(table, key, change, if_version, if_status)
        return await self._quick(
            lambda e: e.items.update_item(table, key, change, if_version, if_status))

    async def _delete_item(self, table: str, key: str, if_version: int | None) -> bool:
        inline = self._inline
        if inline is not None:
            return inline.items.delete_item(table, key, if_version)
        return await self._quick(lambda e: e.items.delete_item(table, key, if_version))
