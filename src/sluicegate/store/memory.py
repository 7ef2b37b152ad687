"""The in-memory store: queues held in Python structures, for tests and the simulator.

:class:`MemoryQueues` is the queue engine (a
:class:`~sluicegate.store.engine.QueueEngine`): plain synchronous methods, time read only
from its injected clock, so the discrete-event simulator can drive it directly at heap
speed. :class:`MemoryStore` is the :class:`~sluicegate.store.base.Store` face of it, of a
:class:`~sluicegate.store.memory_streams.MemoryStreams` and of a
:class:`~sluicegate.store.coordination.MemoryCoordination` for asyncio code, through
:class:`~sluicegate.store.engine.EngineStore`; nothing in it ever suspends.

Data structures, per queue (every operation is O(log n) amortized in the queue's size):

- ``messages``: message id -> message, every message the queue holds;
- ``ready``: a heap of visible messages keyed by (sent time, insertion sequence), so a
  receive claims the oldest first;
- ``hidden``: a heap of delayed and in-flight messages keyed by the time they become
  visible; a receive first moves the due ones to ``ready`` (or to the dead-letter queue);
- ``sent``: every message sent to the queue, in sent order (a deque of the messages
  themselves: sends come in clock order, so appending keeps it sorted), and ``expiry``:
  a heap of the messages that arrived out of that order (moved from another queue, or
  sent while the clock went back); together, every message keyed by sent time, for the
  retention period.

FIFO queues keep their visible messages per message group instead: each group holds a
heap of its visible messages by sequence, and ``ready`` holds one entry per group that may
deliver (not in flight), keyed by its first message; a receive pops groups in that order
and takes their messages in sequence, so a group's messages never overtake each other and
a group in flight delivers nothing. Deduplication ids are remembered, with the message
they named, for :data:`~sluicegate.store.base.DEDUPLICATION_WINDOW` seconds.

Heap entries are never removed from the middle: each carries the generation its message
had when it was pushed, and an entry whose message has changed since is skipped when it
surfaces. A heap is rebuilt when stale entries outnumber live ones two to one. ``sent``
holds no generation: a message object enters a queue once in its life (a message moved
to another queue is a new object, which goes on with the old one's generations), so its
entry there is stale once it is gone from the queue, and so skipped at the head and
dropped when the deque is rebuilt (on the same terms as a heap).
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any, Final, TypeVar, cast

from sluicegate.core.config import QueueConfig
from sluicegate.core.types import QueueRecord
from sluicegate.errors import InvalidReceiptHandle, QueueNotFound, StoreError, StoreNotOpen
from sluicegate.store.coordination import MemoryCoordination
from sluicegate.store.engine import Engine, EngineStore
from sluicegate.store.items import MemoryItems
from sluicegate.store.live import MemorySettings
from sluicegate.store.memory_streams import MemoryStreams
from sluicegate.store.semaphores import MemorySemaphores
from sluicegate.store.values import (
    DEDUPLICATION_WINDOW,
    Clock,
    FifoSent,
    Message,
    NewMessage,
    PeekedMessage,
    QueueCounts,
    new_message_id,
    peek_state,
)

__all__ = ["MemoryEngine", "MemoryQueues", "MemoryStore"]

T = TypeVar("T")

READY: Final = 0
"""State of a message that is visible (in the ``ready`` heap)."""
DELAYED: Final = 1
"""State of a message never received whose delivery delay may not be over."""
IN_FLIGHT: Final = 2
"""State of a received message whose visibility timeout may not be over."""
GONE: Final = 3
"""State of a message deleted, purged, expired or moved out of its queue object."""

_COMPILED: Final = __file__.endswith((".so", ".pyd"))
"""Whether this module runs compiled (setup.py)."""

_heappush: Final = heapq.heappush
_heappop: Final = heapq.heappop
_append: Final = deque.append
_hex: Final = hex
# module constants: a compiled build (setup.py) reads them natively, where ``heapq.heappush``
# is a lookup in the module's namespace per call, and ``a_deque.append`` a method lookup

COMPACT_SLACK: Final = 256
"""A heap is rebuilt once it holds more than twice its live entries plus this many. The
rebuild copies the live entries (a compiled build makes each of them anew): a larger
slack copies them less often, for a few more stale entries held."""


class _Msg:
    """One stored message; mutable, owned by exactly one queue at a time.

    ``content`` is the :class:`NewMessage` it was sent as (body, MD5, attributes, sender;
    never changed). The constructor's defaults describe a message never received;
    :meth:`MemoryQueues.send_receive_records` passes a received one's values instead of
    setting them afterwards.
    """

    __slots__ = (
        "content",
        "first_receive",
        "gen",
        "handle",
        "message_id",
        "qgen",
        "receive_count",
        "sent",
        "seq",
        "source_queue",
        "state",
        "visible_at",
    )

    def __init__(
        self,
        message_id: str,
        seq: int,
        content: NewMessage,
        sent: float,
        state: int = GONE,
        visible_at: float | None = None,
        receive_count: int = 0,
        handle: str | None = None,
        gen: int = 0,
    ) -> None:
        self.message_id = message_id
        self.seq = seq
        self.content = content
        self.sent = sent
        self.first_receive = sent if receive_count else 0.0
        self.receive_count = receive_count
        self.visible_at = sent if visible_at is None else visible_at
        self.handle = handle
        self.source_queue: str | None = None
        self.state = state
        #: bumped on every change of state or visibility: stale ``ready``/``hidden`` entries
        self.gen = gen
        #: bumped whenever the message leaves a queue: stale ``expiry`` entries
        self.qgen = 0


class _Group:
    """A FIFO queue's message group: its visible messages, by sequence, and how many of
    its messages the queue holds and has in flight."""

    __slots__ = ("busy", "count", "gen", "name", "ready")

    def __init__(self, name: str) -> None:
        self.name = name
        self.ready: list[tuple[int, int, _Msg]] = []
        self.count = 0
        self.busy = 0
        #: bumped whenever the group's entry in the queue's ``ready`` must be replaced
        self.gen = 0


class _Queue:
    """One queue's state. See the module docstring for the structures."""

    __slots__ = (
        "config",
        "dead_lettered",
        "dedup",
        "dedup_expiry",
        "expiry",
        "fifo",
        "groups",
        "groups_busy",
        "hidden",
        "messages",
        "n_delayed",
        "n_in_flight",
        "n_ready",
        "ready",
        "redrive_check",
        "retention",
        "sent",
    )

    def __init__(self, config: QueueConfig) -> None:
        self.config = config
        self.fifo = config.fifo
        #: ``config.retention_period``, read per send and delete (kept with ``config``)
        self.retention: int = config.retention_period
        self.messages: dict[str, _Msg] = {}
        #: visible messages; for a FIFO queue, groups that may deliver (see the module)
        self.ready: list[tuple[float, int, int, Any]] = []
        self.groups: dict[str, _Group] = {}
        self.groups_busy = 0
        #: deduplication id -> (when it is forgotten, message id, sequence)
        self.dedup: dict[str, tuple[float, str, int]] = {}
        self.dedup_expiry: deque[tuple[float, str]] = deque()
        self.hidden: list[tuple[float, int, int, _Msg]] = []
        self.expiry: list[tuple[float, int, int, _Msg]] = []
        self.sent: deque[_Msg] = deque()
        self.n_ready = 0
        self.n_delayed = 0
        self.n_in_flight = 0
        self.dead_lettered = 0
        #: set when the redrive policy (or its target) changed: the next receive moves
        #: visible messages already received max_receive_count times
        self.redrive_check = False


class _CountedIds:
    """Message ids ``hex(1)``, ``hex(2)``, ... (see ``counted_ids`` at
    :class:`MemoryQueues`): each call makes the next. An object of its own, not a method
    of the engine, which would keep itself alive through its bound method (a reference
    cycle: the simulator runs with the cyclic collector paused)."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last = 0
        """The number of the last id made."""

    def __call__(self) -> str:
        n = self.last = self.last + 1
        return _hex(n)


def _sent_entries(sent: deque[_Msg]) -> Iterator[tuple[float, int, int, _Msg]]:
    """A queue's ``sent`` messages as ``expiry`` entries, ``(sent time, sequence, qgen,
    message)``, a stale one's ``qgen`` -1, one at a time (a generator function: a
    compiled build makes a generator expression's whole list at once)."""
    for m in sent:
        yield (m.sent, m.seq, -1 if m.state == GONE else m.qgen, m)


def _in_order(heap: list[Any]) -> Iterator[Any]:
    """Yield a heap's entries in ascending order without modifying it.

    Costs O(k log k) for the first k entries, so a caller that stops early pays only for
    what it looked at.
    """
    if not heap:
        return
    size = len(heap)
    frontier = [(heap[0], 0)]
    while frontier:
        entry, i = _heappop(frontier)
        yield entry
        child = 2 * i + 1
        if child < size:
            _heappush(frontier, (heap[child], child))
            if child + 1 < size:
                _heappush(frontier, (heap[child + 1], child + 1))


class MemoryQueues:
    """Synchronous queue engine with SQS standard-queue semantics, all in memory.

    Every method is one atomic step (nothing else runs in between), reads the time once
    from ``clock`` and raises :class:`~sluicegate.errors.QueueNotFound` for an unknown
    queue. Inputs are expected to be validated already (:class:`~sluicegate.store.base.Store`
    does it).

    Parameters:
        clock: current time in epoch seconds; the simulator passes its virtual clock.
        seed: seed of the generator behind message ids, for reproducible runs; ``None``
            uses the ``random`` module's shared generator.
        notify: called with a queue's name when messages arrive in it other than by a
            send (moved to a dead-letter queue), so long polls can wake.
        new_id: makes a new message id; random version-4 UUIDs (from ``seed``) by
            default.
        counted_ids: message ids are ``hex(1)``, ``hex(2)``, ... in the order messages
            are stored (``new_id`` is then ignored): the simulator's, which needs them
            unique only, made without a call per message.
        clock_cell: a one-item list holding, at every moment, the time ``clock`` returns
            (the simulator's virtual clock is such a cell): the methods the simulator
            calls per message (sends, receives, deletes) then read it there instead of
            calling ``clock``.

    Receipt handles are ``"{message_id}#{receive_count}#{serial}"``, where the serial
    counts receives across the engine, so every receive gets a new handle.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        seed: int | None = None,
        notify: Callable[[str], None] | None = None,
        new_id: Callable[[], str] | None = None,
        counted_ids: bool = False,
        clock_cell: list[float] | None = None,
    ) -> None:
        self.clock = clock
        self._cell = clock_cell
        self.notify = notify
        self._queues: dict[str, _Queue] = {}
        getrandbits = random.getrandbits if seed is None else random.Random(seed).getrandbits
        self._counted_ids = counted_ids
        self._ids = _CountedIds()
        """The message ids with ``counted_ids``."""
        self._new_id: Callable[[], str] = (
            self._ids if counted_ids
            else partial(new_message_id, getrandbits) if new_id is None else new_id
        )
        self._seq = 0
        self._serial = 0

    # ------------------------------------------------------------------ queues
    def _queue(self, name: str) -> _Queue:
        q = self._queues.get(name)
        if q is None:
            raise QueueNotFound(name)
        return q

    def ensure_queue(self, config: QueueConfig) -> None:
        """Create the queue, or give an existing one ``config``'s attributes.

        Raises:
            QueueNotFound: ``config.dead_letter_queue`` names no existing queue.
        """
        dlq = config.dead_letter_queue
        if dlq is not None and dlq not in self._queues:
            raise QueueNotFound(dlq)
        q = self._queues.get(config.name)
        if q is None:
            self._queues[config.name] = _Queue(config)
            for other in self._queues.values():  # a re-created dead-letter queue
                if other.config.dead_letter_queue == config.name:
                    other.redrive_check = True
            return
        old = q.config
        q.config = config
        q.retention = config.retention_period
        if (old.dead_letter_queue, old.max_receive_count) != (dlq, config.max_receive_count):
            q.redrive_check = dlq is not None

    def get_queue(self, name: str) -> QueueConfig:
        """The queue's configuration."""
        return self._queue(name).config

    def list_queues(self) -> list[QueueConfig]:
        """Every queue's configuration, in creation order."""
        return [q.config for q in self._queues.values()]

    def delete_queue(self, name: str) -> None:
        """Delete the queue and its messages. Queues that named it as their dead-letter
        queue deliver as if they had none until it exists again."""
        q = self._queue(name)
        for msg in q.messages.values():
            msg.state = GONE
            msg.gen += 1
            msg.qgen += 1
        del self._queues[name]

    # ------------------------------------------------------------------ state changes
    def _add(self, q: _Queue, msg: _Msg, state: int) -> None:
        """Put ``msg`` (not in any queue) into ``q`` in ``state`` (READY or DELAYED)."""
        q.messages[msg.message_id] = msg
        sent = q.sent
        last = sent[-1] if sent else None
        if last is None or last.sent < msg.sent or (last.sent == msg.sent and last.seq < msg.seq):
            _append(sent, msg)
        else:
            _heappush(q.expiry, (msg.sent, msg.seq, msg.qgen, msg))
        msg.state = state
        if q.fifo:
            name = msg.content.group_id
            assert name is not None  # every message of a FIFO queue has a group
            group = q.groups.get(name)
            if group is None:
                group = q.groups[name] = _Group(name)
            group.count += 1
        if state == READY:
            q.n_ready += 1
            if q.fifo:
                self._group_ready(q, msg)
            else:
                _heappush(q.ready, (msg.sent, msg.seq, msg.gen, msg))
        else:
            q.n_delayed += 1
            _heappush(q.hidden, (msg.visible_at, msg.seq, msg.gen, msg))

    def _remove(self, q: _Queue, msg: _Msg) -> None:
        """Take ``msg`` out of ``q``; every heap entry of it becomes stale."""
        del q.messages[msg.message_id]
        state = msg.state
        if state == READY:
            q.n_ready -= 1
        elif state == DELAYED:
            q.n_delayed -= 1
        else:
            q.n_in_flight -= 1
        msg.state = GONE
        msg.gen += 1
        msg.qgen += 1
        if q.fifo:
            group = q.groups[msg.content.group_id]  # type: ignore[index]
            group.count -= 1
            if state == IN_FLIGHT:
                self._group_settled(q, group)
            if not group.count:
                del q.groups[group.name]
                group.gen += 1

    # ------------------------------------------------------------------ FIFO groups
    def _group_ready(self, q: _Queue, msg: _Msg) -> None:
        """``msg`` (READY, counted) of a FIFO queue joins its group's visible messages."""
        group = q.groups[msg.content.group_id]  # type: ignore[index]
        _heappush(group.ready, (msg.seq, msg.gen, msg))
        if not group.busy:
            self._offer(q, group)

    def _offer(self, q: _Queue, group: _Group) -> None:
        """(Re)list ``group`` in ``ready`` under its first visible message, if any."""
        heap = group.ready
        while heap and heap[0][2].gen != heap[0][1]:
            _heappop(heap)
        group.gen += 1
        if heap:
            head = heap[0][2]
            _heappush(q.ready, (head.sent, head.seq, group.gen, group))

    def _group_settled(self, q: _Queue, group: _Group) -> None:
        """One in-flight message of ``group`` left flight (deleted, visible, moved)."""
        group.busy -= 1
        if not group.busy:
            q.groups_busy -= 1
            self._offer(q, group)

    def _claim_fifo(self, q: _Queue, max_messages: int, deadline: float, now: float) -> list[_Msg]:
        """Claim from groups in the order of their first visible message; a group once
        claimed from is in flight and offers nothing more until settled."""
        out: list[_Msg] = []
        ready = q.ready
        pop = heapq.heappop
        while ready and len(out) < max_messages:
            _, _, gen, group = pop(ready)
            if group.gen != gen or group.busy:
                continue
            heap = group.ready
            taken = 0
            while heap and len(out) < max_messages:
                _, mgen, msg = pop(heap)
                if msg.gen != mgen:
                    continue
                self._hide(q, msg, deadline, now)
                out.append(msg)
                taken += 1
            if taken:
                group.busy = taken
                q.groups_busy += 1
                group.gen += 1
        return out

    def _hide(self, q: _Queue, msg: _Msg, deadline: float, now: float) -> None:
        """Claim ``msg``: new handle, raised receive count, hidden until ``deadline``."""
        count = msg.receive_count + 1
        msg.receive_count = count
        if count == 1:
            msg.first_receive = now
        self._serial += 1
        msg.handle = f"{msg.message_id}#{count}#{self._serial}"
        msg.visible_at = deadline
        msg.state = IN_FLIGHT
        msg.gen += 1
        _heappush(q.hidden, (deadline, msg.seq, msg.gen, msg))

    def _move(self, src: _Queue, msg: _Msg, dest: _Queue, now: float, source: str | None) -> None:
        """Move ``msg`` to ``dest``, visible now, never received, keeping id and sent time.

        ``dest`` gets a new message object (a message object enters a queue once: see
        the module docstring), with the old one's generations, so that no entry of
        the old one is taken for one of the new one, or compares equal to it."""
        self._remove(src, msg)
        moved = _Msg(msg.message_id, msg.seq, msg.content, msg.sent, GONE, now, 0, None,
                     msg.gen)
        moved.qgen = msg.qgen
        moved.source_queue = source
        self._add(dest, moved, READY)

    def _expire(self, q: _Queue, now: float) -> None:
        """Drop messages whose retention period is over, whatever their state, and stale
        entries at the head of ``sent`` and ``expiry``."""
        cutoff = now - q.retention
        ordered = q.sent
        while ordered:
            msg = ordered[0]
            if msg.state == GONE:
                ordered.popleft()
            elif msg.sent <= cutoff:
                ordered.popleft()
                self._remove(q, msg)
            else:
                break
        heap = q.expiry
        while heap:
            sent, _, qgen, msg = heap[0]
            if msg.qgen != qgen:
                _heappop(heap)
            elif sent <= cutoff:
                _heappop(heap)
                self._remove(q, msg)
            else:
                break
        if len(ordered) + len(heap) > 2 * len(q.messages) + COMPACT_SLACK:
            q.sent = deque([m for m in ordered if m.state != GONE])
            q.expiry = [e for e in heap if e[3].qgen == e[2]]
            heapq.heapify(q.expiry)

    def _expiring(self, q: _Queue) -> Iterator[tuple[float, int, int, _Msg]]:
        """Every entry of ``sent`` and ``expiry`` (stale ones too) in sent-time order,
        without modifying either, as ``expiry`` holds them: ``(sent time, sequence,
        qgen, message)``, where a stale entry's ``qgen`` is not its message's (-1 for
        one of ``sent``)."""
        ordered = _sent_entries(q.sent)
        if not q.expiry:
            return ordered
        return heapq.merge(ordered, _in_order(q.expiry))

    def _dead_letter_queue(self, q: _Queue) -> _Queue | None:
        name = q.config.dead_letter_queue
        return None if name is None else self._queues.get(name)

    def _compact(self, q: _Queue) -> None:
        if len(q.ready) > 2 * q.n_ready + COMPACT_SLACK:
            q.ready = [e for e in q.ready if e[3].gen == e[2]]
            heapq.heapify(q.ready)
        if len(q.hidden) > 2 * (q.n_delayed + q.n_in_flight) + COMPACT_SLACK:
            q.hidden = [e for e in q.hidden if e[3].gen == e[2]]
            heapq.heapify(q.hidden)

    # ------------------------------------------------------------------ messages
    def send(self, queue: str, messages: list[NewMessage]) -> list[str]:
        """Store validated messages; return their new message ids."""
        q = self._queues.get(queue) or self._queue(queue)
        cell = self._cell
        now = cell[0] if cell is not None else self.clock()
        ids = []
        new_id = self._new_id
        seq = self._seq
        ordered = q.sent
        for new in messages:
            seq += 1
            mid = new_id()
            msg = _Msg(mid, seq, new, now)
            if new.delay_seconds > 0:
                msg.visible_at = now + new.delay_seconds
                self._add(q, msg, DELAYED)
            else:  # _add(q, msg, READY), inlined: sends are the simulator's hot path
                q.messages[mid] = msg
                # seq grows with every send, so (now, seq) sorts last unless the clock
                # went back
                if not ordered or ordered[-1].sent <= now:
                    _append(ordered, msg)
                else:
                    _heappush(q.expiry, (now, seq, 0, msg))
                msg.state = READY
                q.n_ready += 1
                _heappush(q.ready, (now, seq, 0, msg))
            ids.append(mid)
        self._seq = seq
        return ids

    def send_fifo(self, queue: str, messages: list[NewMessage]) -> list[FifoSent]:
        """Store validated messages of a FIFO queue, dropping duplicates (see
        :meth:`Store._send_fifo <sluicegate.store.base.Store._send_fifo>`)."""
        q = self._queues.get(queue) or self._queue(queue)
        now = self.clock()
        dedup = q.dedup
        expiry = q.dedup_expiry
        while expiry and expiry[0][0] <= now:
            _, old = expiry.popleft()
            entry = dedup.get(old)
            if entry is not None and entry[0] <= now:
                del dedup[old]
        delay = q.config.delay_seconds
        out: list[FifoSent] = []
        for new in messages:
            key = new.deduplication_id
            assert key is not None  # the store computed it when the send gave none
            seen = dedup.get(key)
            if seen is not None and seen[0] > now:
                out.append(FifoSent(seen[1], _sequence(seen[2]), True))
                continue
            self._seq += 1
            mid = self._new_id()
            msg = _Msg(mid, self._seq, new, now)
            forget = now + DEDUPLICATION_WINDOW
            dedup[key] = (forget, mid, msg.seq)
            expiry.append((forget, key))
            if delay > 0:
                msg.visible_at = now + delay
                self._add(q, msg, DELAYED)
            else:
                self._add(q, msg, READY)
            out.append(FifoSent(mid, _sequence(msg.seq), False))
        return out

    def receive(self, queue: str, max_messages: int, visibility_timeout: float) -> list[Message]:
        """Claim up to ``max_messages`` visible messages, oldest first, without waiting.

        First drops messages past retention, then moves every message that became visible
        after ``max_receive_count`` receives to the dead-letter queue (if the queue has
        one and it exists), then claims.

        Parameters:
            visibility_timeout: seconds the claimed messages stay hidden.

        Returns:
            The claimed messages, oldest (sent time, then insertion order) first.
        """
        claimed = self._claim(queue, max_messages, visibility_timeout)
        if not claimed:
            return []
        return [
            Message(
                msg.message_id,
                msg.handle,  # type: ignore[arg-type]  # set by the claim
                msg.content.body,
                msg.content.md5_of_body,
                msg.content.attributes,
                msg.sent,
                msg.first_receive,
                msg.receive_count,
                msg.content.sender_id,
                msg.visible_at,
                queue,
                msg.content.group_id,
                msg.content.deduplication_id,
                None if msg.content.group_id is None else _sequence(msg.seq),
            )
            for msg in claimed
        ]

    def receive_records(
        self, queue: str, max_messages: int, visibility_timeout: float, size: int
    ) -> list[QueueRecord]:
        """:meth:`receive`, returning the core's records instead of messages.

        For the simulator, which needs no message bodies: it skips building a
        :class:`~sluicegate.store.base.Message` per message.

        Parameters:
            visibility_timeout: seconds the claimed messages stay hidden.
            size: the ``size`` every record gets (bytes counted against the payload cap).

        Returns:
            One record per claimed message (``payload``: the message as sent, a
            :class:`~sluicegate.store.base.NewMessage`), oldest first.
        """
        out: list[QueueRecord] = []
        for msg in self._claim(queue, max_messages, visibility_timeout):
            # a loop, not a comprehension: most receives return one message, and a
            # comprehension's own frame would cost more than the record
            out.append(QueueRecord(msg.message_id, msg.handle,  # type: ignore[arg-type]
                                   size, msg.visible_at, msg.receive_count, msg.content,
                                   msg.content.group_id))
        return out

    def send_receive_records(
        self, queue: str, message: NewMessage, max_messages: int, visibility_timeout: float,
        size: int,
    ) -> list[QueueRecord]:
        """:meth:`send` of one message, then :meth:`receive_records`, at the same instant.

        For the simulator, which hands a message to a waiting long poll as it arrives.
        The result and every state change are those of the two calls; when the receive
        would claim exactly the message just sent (no delay, nothing else visible or due,
        nothing to expire or redrive), the message is stored in flight directly, without
        passing through ``ready``.

        Returns:
            One record per claimed message (``payload``: the message as sent, a
            :class:`~sluicegate.store.base.NewMessage`), oldest first.
        """
        q = self._queues.get(queue) or self._queue(queue)
        cell = self._cell
        now = cell[0] if cell is not None else self.clock()
        ordered = q.sent
        hidden = q.hidden
        if q.fifo:
            self.send_fifo(queue, [message])
            return self.receive_records(queue, max_messages, visibility_timeout, size)
        if (
            message.delay_seconds > 0
            or max_messages < 1
            or q.n_ready
            or q.redrive_check
            or q.expiry
            or (hidden and hidden[0][0] <= now)
            or (ordered and (ordered[-1].sent > now
                             or ordered[0].sent <= now - q.retention))
        ):
            self.send(queue, [message])
            return self.receive_records(queue, max_messages, visibility_timeout, size)
        if len(ordered) >= 2 * len(q.messages) + COMPACT_SLACK:
            # Mostly entries of messages deleted since: drop them all, in one pass, as
            # the receive's _expire would (it pops them from the front one by one, then
            # rebuilds). None is past retention, since the oldest entry is not.
            ordered = q.sent = deque([m for m in ordered if m.state != GONE])
        # What send() then _claim() would do to this message, in one step: it is pushed
        # to ``ready`` at generation 0 and claimed at generation 1.
        seq = self._seq = self._seq + 1
        if self._counted_ids:  # _new_id, written out
            ids = self._ids
            count = ids.last = ids.last + 1
            mid = _hex(count)
        else:
            mid = self._new_id()
        serial = self._serial = self._serial + 1
        handle = f"{mid}#1#{serial}"
        deadline = now + visibility_timeout
        if _COMPILED:
            msg = _Msg(mid, seq, message, now, IN_FLIGHT, deadline, 1, handle, 1)
        else:
            # the same _Msg, without the call to its __init__ (a Python build's costliest
            # step here; a compiled build constructs natively)
            msg = object.__new__(_Msg)
            msg.message_id = mid
            msg.seq = seq
            msg.content = message
            msg.sent = now
            msg.first_receive = now
            msg.receive_count = 1
            msg.visible_at = deadline
            msg.handle = handle
            msg.source_queue = None
            msg.state = IN_FLIGHT
            msg.gen = 1
            msg.qgen = 0
        q.messages[mid] = msg
        _append(ordered, msg)
        _heappush(hidden, (deadline, seq, 1, msg))
        n = q.n_in_flight = q.n_in_flight + 1
        if len(hidden) > 2 * (q.n_delayed + n) + COMPACT_SLACK:
            self._compact(q)
        return [QueueRecord(mid, handle, size, deadline, 1, message)]

    def _claim(self, queue: str, max_messages: int, visibility_timeout: float) -> list[_Msg]:
        """The work of a receive: expire, redrive, make due messages visible, then claim
        (new handle, raised receive count, hidden until the visibility deadline)."""
        q = self._queues.get(queue) or self._queue(queue)
        cell = self._cell
        now = cell[0] if cell is not None else self.clock()
        ordered = q.sent
        if (ordered and ordered[0].sent <= now - q.retention) or (
            len(ordered) > 2 * len(q.messages) + COMPACT_SLACK
        ) or q.expiry:
            self._expire(q, now)
        hidden = q.hidden
        ready = q.ready
        if q.redrive_check or (hidden and hidden[0][0] <= now):
            self._make_visible(q, queue, now)
        if not q.n_ready:
            return []
        deadline = now + visibility_timeout
        if q.fifo:
            claimed = self._claim_fifo(q, max_messages, deadline, now)
            q.n_ready -= len(claimed)
            q.n_in_flight += len(claimed)
            return claimed
        out: list[_Msg] = []
        pop = _heappop
        push = _heappush
        while ready and len(out) < max_messages:
            _, seq, gen, msg = pop(ready)
            if msg.gen != gen:
                continue
            count = msg.receive_count + 1
            msg.receive_count = count
            if count == 1:
                msg.first_receive = now
            self._serial += 1
            msg.handle = f"{msg.message_id}#{count}#{self._serial}"
            msg.visible_at = deadline
            msg.state = IN_FLIGHT
            gen = msg.gen = msg.gen + 1
            push(hidden, (deadline, seq, gen, msg))
            out.append(msg)
        q.n_ready -= len(out)
        q.n_in_flight += len(out)
        if len(hidden) > 2 * (q.n_delayed + q.n_in_flight) + COMPACT_SLACK:
            self._compact(q)
        return out

    def _make_visible(self, q: _Queue, queue: str, now: float) -> None:
        """Move due delayed and in-flight messages to ``ready``, or to the dead-letter queue
        when they were received ``max_receive_count`` times already."""
        dlq = self._dead_letter_queue(q)
        limit = q.config.max_receive_count or 0
        moved = 0
        if q.redrive_check:
            q.redrive_check = False
            if dlq is not None:
                for msg in [m for m in q.messages.values() if m.state == READY]:
                    if msg.receive_count >= limit:
                        self._move(q, msg, dlq, now, queue)
                        moved += 1
        hidden = q.hidden
        ready = q.ready
        while hidden and hidden[0][0] <= now:
            _, seq, gen, msg = _heappop(hidden)
            if msg.gen != gen:
                continue
            if dlq is not None and msg.receive_count >= limit:
                self._move(q, msg, dlq, now, queue)
                moved += 1
                continue
            was = msg.state
            if was == DELAYED:
                q.n_delayed -= 1
            else:
                q.n_in_flight -= 1
            q.n_ready += 1
            msg.state = READY
            msg.gen += 1
            if q.fifo:
                self._group_ready(q, msg)
                if was == IN_FLIGHT:
                    self._group_settled(q, q.groups[msg.content.group_id])  # type: ignore[index]
            else:
                _heappush(ready, (msg.sent, seq, msg.gen, msg))
        if moved:
            q.dead_lettered += moved
            if self.notify is not None and dlq is not None:
                self.notify(dlq.config.name)

    def has_visible(self, queue: str) -> bool:
        """Whether a receive now may return messages: ``False`` means it would return
        none (nothing visible, nothing due to become visible). Changes no state beyond
        dropping stale heap entries.

        For a driver serving long polls (the simulator), which asks before receiving.
        """
        q = self._queues.get(queue) or self._queue(queue)
        if q.n_ready:
            return True
        hidden = q.hidden
        while hidden and hidden[0][3].gen != hidden[0][2]:
            _heappop(hidden)
        cell = self._cell
        return bool(hidden) and hidden[0][0] <= (cell[0] if cell is not None else self.clock())

    def next_visible_at(self, queue: str) -> float | None:
        """Epoch seconds when the next delayed or in-flight message becomes visible."""
        q = self._queue(queue)
        hidden = q.hidden
        while hidden and hidden[0][3].gen != hidden[0][2]:
            _heappop(hidden)
        return hidden[0][0] if hidden else None

    def _current(self, q: _Queue, handle: str, now: float) -> _Msg | None:
        """The message ``handle`` is the current handle of (and not past retention)."""
        if not isinstance(handle, str):
            raise InvalidReceiptHandle(f"receipt handle must be a str, got {handle!r}")
        parts = handle.split("#")
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
            raise InvalidReceiptHandle(f"malformed receipt handle {handle!r}")
        msg = q.messages.get(parts[0])
        if msg is None or msg.handle != handle:
            return None
        if msg.sent <= now - q.retention:
            return None
        return msg

    def delete(self, queue: str, receipt_handles: list[str]) -> list[bool]:
        """Delete the messages received under these handles, all or nothing.

        Returns:
            Per handle, ``True`` when it was the message's current handle (the message is
            deleted; a handle repeated in the list gets the same answer), ``False`` when
            stale: the message was deleted, expired, or received again since.

        Raises:
            InvalidReceiptHandle: a malformed handle (nothing is deleted).
        """
        q = self._queue(queue)
        now = self.clock()
        found = [self._current(q, h, now) for h in receipt_handles]
        deleted: set[str] = set()
        for handle, msg in zip(receipt_handles, found, strict=True):
            if msg is not None and handle not in deleted:
                self._remove(q, msg)
                deleted.add(handle)
        if deleted:
            self._compact(q)
        return [h in deleted for h in receipt_handles]

    def delete_records(self, queue: str, records: Iterable[QueueRecord]) -> int:
        """Delete the messages of records from :meth:`receive_records` (or built from a
        receive): like :meth:`delete` with their receipt handles, without parsing them.

        Deleting an in-flight message leaves its ``hidden`` entry stale without checking
        whether the heap needs compacting: every call that pushes to ``hidden`` checks
        after its push, so the heap never holds more than that check allows at the last
        push (memory stays bounded) and this call, the simulator's once per invocation,
        skips the check.

        Returns:
            How many messages were deleted; a record whose handle is stale (the message
            was deleted, expired, or received again since) deletes nothing.
        """
        q = self._queues.get(queue) or self._queue(queue)
        messages = q.messages
        cell = self._cell
        cutoff = (cell[0] if cell is not None else self.clock()) - q.retention
        deleted = 0
        # a tuple (what the simulator passes) is walked natively by a compiled build
        items = records if isinstance(records, tuple) else tuple(records)
        for record in items:
            mid = record.message_id
            msg = messages.get(mid)
            if msg is not None and msg.handle == record.receipt_handle and msg.sent > cutoff:
                deleted += 1
                if msg.state == IN_FLIGHT and not q.fifo:  # _remove, inlined: usual case
                    del messages[mid]
                    q.n_in_flight -= 1
                    msg.state = GONE
                    msg.gen += 1
                    msg.qgen += 1
                else:
                    self._remove(q, msg)
                    if len(q.ready) > 2 * q.n_ready + COMPACT_SLACK:
                        self._compact(q)
        return deleted

    def change_visibility(self, queue: str, receipt_handle: str, visibility_timeout: float) -> None:
        """Make the in-flight message of ``receipt_handle`` visible ``visibility_timeout``
        seconds from now.

        Raises:
            InvalidReceiptHandle: the handle is malformed or stale, or its message is no
                longer in flight (its visibility timeout is over).
        """
        q = self._queue(queue)
        now = self.clock()
        msg = self._current(q, receipt_handle, now)
        if msg is None or msg.state != IN_FLIGHT or msg.visible_at <= now:
            raise InvalidReceiptHandle(
                f"receipt handle {receipt_handle!r} names no message in flight in {queue!r}"
            )
        msg.visible_at = now + visibility_timeout
        msg.gen += 1
        _heappush(q.hidden, (msg.visible_at, msg.seq, msg.gen, msg))
        self._compact(q)

    def purge(self, queue: str) -> int:
        """Delete every message of the queue; return how many (expired ones not counted)."""
        q = self._queue(queue)
        self._expire(q, self.clock())
        count = len(q.messages)
        for msg in q.messages.values():
            msg.state = GONE
            msg.gen += 1
            msg.qgen += 1
        q.messages = {}
        q.ready, q.hidden, q.expiry = [], [], []
        q.sent = deque()
        q.n_ready = q.n_delayed = q.n_in_flight = 0
        for group in q.groups.values():
            group.gen += 1
        q.groups = {}
        q.groups_busy = 0
        return count

    def counts(self, queue: str) -> QueueCounts:
        """The queue's counts at this instant; changes no state beyond dropping stale
        entries at the head of the queue's sent order.

        A message whose delay or visibility timeout is over counts as visible even before
        a receive moves it; messages past retention are not counted.

        The walk in sent order starts past the messages gone since they were sent (a
        deque whose head is mostly deleted messages until it is rebuilt: a backlog
        being drained), which are dropped for good: a message object never comes back.
        """
        q = self._queue(queue)
        now = self.clock()
        cutoff = now - q.retention
        ordered = q.sent
        while ordered and ordered[0].state == GONE:
            ordered.popleft()
        n = [q.n_ready, q.n_delayed, q.n_in_flight]
        expired: set[int] = set()
        # FIFO: per group, messages past retention (``gone``) and in-flight messages that
        # no longer hold it (``freed``: past retention, or their visibility timeout over)
        gone: dict[str, int] = {}
        freed: dict[str, int] = {}
        for sent, seq, qgen, msg in self._expiring(q):
            if msg.qgen != qgen:
                continue
            if sent > cutoff:
                break
            expired.add(seq)
            n[msg.state] -= 1
            if q.fifo:
                group_id = cast(str, msg.content.group_id)
                gone[group_id] = gone.get(group_id, 0) + 1
                if msg.state == IN_FLIGHT:
                    freed[group_id] = freed.get(group_id, 0) + 1
        for visible_at, seq, gen, msg in _in_order(q.hidden):
            if visible_at > now:
                break
            if msg.gen == gen and seq not in expired:
                if q.fifo and msg.state == IN_FLIGHT:
                    group_id = cast(str, msg.content.group_id)
                    freed[group_id] = freed.get(group_id, 0) + 1
                n[msg.state] -= 1
                n[READY] += 1
        groups = groups_busy = 0
        if q.fifo:
            groups = len(q.groups) - sum(
                1 for g, k in gone.items() if q.groups[g].count == k)
            groups_busy = q.groups_busy - sum(
                1 for g, k in freed.items() if q.groups[g].busy == k)
        oldest_age = 0.0
        for sent, seq, qgen, msg in self._expiring(q):
            if msg.qgen != qgen or seq in expired:
                continue
            if msg.state != DELAYED or msg.visible_at <= now:
                oldest_age = max(0.0, now - sent)
                break
        return QueueCounts(
            n[READY], n[IN_FLIGHT], n[DELAYED], oldest_age, q.dead_lettered,
            groups, groups_busy,
        )

    def redrive(self, dead_letter_queue: str, to: str | None) -> list[str]:
        """Move every message of ``dead_letter_queue`` to ``to`` or to the queue it came
        from, visible now, receive count zero; all or nothing.

        Returns:
            The destination queue's name, once per moved message.

        Raises:
            QueueNotFound: ``to`` or a recorded source queue does not exist.
            StoreError: a message has no recorded source and ``to`` is ``None``.
        """
        q = self._queue(dead_letter_queue)
        now = self.clock()
        self._expire(q, now)
        messages = sorted(q.messages.values(), key=lambda m: m.seq)
        dests: list[_Queue] = []
        for msg in messages:
            name = to if to is not None else msg.source_queue
            if name is None:
                raise StoreError(
                    f"message {msg.message_id} in {dead_letter_queue!r} has no source queue; "
                    "name the destination queue"
                )
            dests.append(self._queue(name))
        for msg, dest in zip(messages, dests, strict=True):
            self._move(q, msg, dest, now, None)
        self._compact(q)
        return [dest.config.name for dest in dests]

    # ------------------------------------------------------------------ inspection
    def message_ids(self, queue: str) -> set[str]:
        """Ids of every message the queue holds, in any state (for tests and reports)."""
        return set(self._queue(queue).messages)

    def peek(self, queue: str, limit: int) -> list[PeekedMessage]:
        """Up to ``limit`` messages the queue holds, by sent time then sequence, leaving
        out those past the retention period. Changes nothing, not even stale heap
        entries: it walks ``sent`` and ``expiry`` in order (O(k log k) for the first k).
        """
        q = self._queue(queue)
        now = self.clock()
        cutoff = now - q.retention
        out: list[PeekedMessage] = []
        for sent, _, qgen, msg in self._expiring(q):
            if len(out) >= limit:
                break
            if msg.qgen != qgen or sent <= cutoff:
                continue
            content = msg.content
            count = msg.receive_count
            state, visible_at = peek_state(
                count, None if msg.state == READY else msg.visible_at, now
            )
            group = content.group_id
            out.append(PeekedMessage(
                msg.message_id, content.body, content.md5_of_body, dict(content.attributes),
                content.sender_id, msg.sent, msg.first_receive if count else None, count,
                state, visible_at, msg.source_queue, group,
                content.deduplication_id if group is not None else None,
                None if group is None else _sequence(msg.seq),
            ))
        return out


def _sequence(seq: int) -> str:
    """A FIFO message's sequence number as SQS writes it: decimal digits, here padded to
    20 so that text order is numeric order."""
    return f"{seq:020d}"


class MemoryEngine:
    """The three engines of one memory store, as an
    :class:`~sluicegate.store.engine.Engine`: queues, streams and coordination."""

    __slots__ = ("coordination", "items", "queues", "semaphores", "settings", "streams")

    def __init__(
        self, queues: MemoryQueues, streams: MemoryStreams, coordination: MemoryCoordination,
        settings: MemorySettings, semaphores: MemorySemaphores, items: MemoryItems,
    ) -> None:
        self.queues = queues
        self.streams = streams
        self.coordination = coordination
        self.settings = settings
        self.semaphores = semaphores
        self.items = items


class MemoryStore(EngineStore):
    """A :class:`~sluicegate.store.base.Store` whose queues live in this process's memory (nothing persists).

    Its engines run on the event loop's thread, at once (quick primitives call them
    directly: :attr:`EngineStore._inline`): nothing in it ever suspends.
    What it holds outlives :meth:`close` (a closed store opened again finds it), but
    between the two every call raises :class:`~sluicegate.errors.StoreNotOpen`, as on
    the other backends.

    Parameters:
        clock: where time is read (epoch seconds); ``time.time`` by default.
        seed: seed for message ids (see :class:`MemoryQueues`).
        poll_interval: unused by this store (it is not shared, long polls are woken by
            sends); accepted for symmetry with the other backends.

    Attributes:
        engine: the synchronous :class:`MemoryQueues` behind the queue coroutines.
        streams: the synchronous :class:`MemoryStreams` behind the stream coroutines.
        coordination: the synchronous :class:`MemoryCoordination` behind leases, the
            worker registry and shared values.
        settings: the synchronous :class:`~sluicegate.store.live.MemorySettings` behind
            live settings.
        items: the synchronous :class:`~sluicegate.store.items.MemoryItems` behind
            table items.
    """

    shared = False
    url = "memory://"

    def __init__(
        self, *, clock: Clock | None = None, seed: int | None = None, poll_interval: float = 0.05
    ) -> None:
        super().__init__(clock=clock, poll_interval=poll_interval)
        self.engine = MemoryQueues(self._now, seed=seed, notify=self._notify)
        self.streams = MemoryStreams(self._now)
        self.coordination = MemoryCoordination(self._now)
        self.settings = MemorySettings(self._now, self.coordination.shared)
        self.semaphore_engine = MemorySemaphores(self._now)
        self.items = MemoryItems(self._now)
        self._engines = MemoryEngine(self.engine, self.streams, self.coordination,
                                     self.settings, self.semaphore_engine, self.items)

    def _now(self) -> float:
        # Read through the attribute so that replacing ``store.clock`` takes effect.
        return self.clock()

    async def open(self) -> None:
        """Make the store usable (nothing to connect). Idempotent."""
        self._inline = self._engines

    async def close(self) -> None:
        """Refuse calls until :meth:`open` again; keeps what the store holds. Idempotent."""
        self._inline = None

    async def _quick(self, call: Callable[[Engine], T]) -> T:
        # Quick primitives call the engines directly while open (_inline): only a call
        # on a closed store comes here.
        return await self._slow(call)

    async def _slow(self, call: Callable[[Engine], T]) -> T:
        engines = self._inline
        if engines is None:
            raise StoreNotOpen("memory store is not open (use 'async with' or open())")
        return call(engines)
