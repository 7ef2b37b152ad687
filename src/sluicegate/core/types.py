"""Values the core exchanges with its drivers: records in, actions out, outcomes back.

The core never performs I/O. A driver (the asyncio runtime or the simulator) asks a
mapping what to do at time ``now`` (:meth:`QueueMapping.poll`), performs the returned
actions, and reports back what happened (messages received, invocation finished).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

__all__ = [
    "Abandon",
    "Action",
    "Batch",
    "BatchOutcome",
    "Delete",
    "Invoke",
    "ItemBatch",
    "OutcomeKind",
    "QueueRecord",
    "Receive",
]


@dataclass(slots=True, eq=False, init=False)
class QueueRecord:
    """What the core needs to know of one received queue message. Treat it as read-only.

    Not frozen on purpose: one is built per message received, and a frozen dataclass
    costs about four times as much to construct. Its ``__init__`` is written out (the
    dataclass only adds ``__repr__``) so that the compiled build (setup.py) constructs it
    natively, as it does the other values built per message or per poll below. Compared
    and hashed by identity: each record is one receive of one message.

    Attributes:
        message_id: the message's id (what ``itemIdentifier`` refers to).
        receipt_handle: the handle of this receive, used to delete.
        size: bytes the record adds to an invocation payload (body, attributes and event
            metadata), counted against the 6 MB cap.
        visible_at: epoch seconds when this receive's visibility timeout ends.
        receive_count: how many times the message has been received, this time included.
        payload: the driver's own object for the message, carried through untouched.
        group_id: the message group of a FIFO queue's message; ``None`` for a standard
            queue.
    """

    message_id: str
    receipt_handle: str
    size: int
    visible_at: float
    receive_count: int
    payload: Any
    group_id: str | None

    def __init__(self, message_id: str, receipt_handle: str, size: int, visible_at: float,
                 receive_count: int = 1, payload: Any = None,
                 group_id: str | None = None) -> None:
        self.message_id = message_id
        self.receipt_handle = receipt_handle
        self.size = size
        self.visible_at = visible_at
        self.receive_count = receive_count
        self.payload = payload
        self.group_id = group_id


@dataclass(slots=True, init=False)
class Batch:
    """Records handed to one invocation. Treat it as read-only.

    Not frozen, for the reason given at :class:`QueueRecord`: one is built per
    invocation, and the simulator builds hundreds of thousands per second.

    Attributes:
        id: unique within its mapping.
        poller: the poller that formed it.
        records: in the order they were received.
        throttles: how many times invoking it was throttled so far.
    """

    id: int
    poller: int
    records: tuple[QueueRecord, ...]
    throttles: int

    def __init__(self, id: int, poller: int, records: tuple[QueueRecord, ...],
                 throttles: int = 0) -> None:
        self.id = id
        self.poller = poller
        self.records = records
        self.throttles = throttles

    item_name: ClassVar[str] = "messageId"
    """What a handler's ``itemIdentifier`` names in this batch, as reasons say it."""

    @property
    def message_ids(self) -> frozenset[str]:
        return frozenset(r.message_id for r in self.records)

    @property
    def size(self) -> int:
        return sum(r.size for r in self.records)


class ItemBatch(Protocol):
    """What the result rules (:mod:`sluicegate.core.results`) read of a batch: the ids a
    handler may report in ``itemIdentifier``, and what they are called. A queue
    :class:`Batch` has its message ids (``"messageId"``); a stream batch
    (:class:`~sluicegate.core.streams.StreamBatch`) its sequence numbers
    (``"sequence number"``)."""

    @property
    def message_ids(self) -> frozenset[str]: ...

    @property
    def item_name(self) -> str: ...


class OutcomeKind(enum.Enum):
    """How an invocation ended, as the mapping sees it."""

    SUCCESS = "success"
    """Every record succeeded: delete them all."""
    PARTIAL = "partial"
    """The handler reported some records as failed (report_batch_item_failures)."""
    ERROR = "error"
    """The function failed: an exception, a timeout or an invalid response. Nothing is
    deleted; the records reappear after their visibility timeout."""


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """The settled result of one invocation.

    Attributes:
        kind: see :class:`OutcomeKind`.
        failed: message ids to keep (not delete); every id of the batch for ``ERROR``.
        reason: why it failed, for logs and metrics ("exception: ValueError: ...",
            "timeout", "invalid itemIdentifier ..."); empty on success.
        latency: the downstream latency the handler reported for this invocation
            (``context.report(latency=...)``; the largest of its reports), in seconds;
            ``None`` when it reported none. Read by the mapping's limit
            (:class:`~sluicegate.core.signals.Sample`), not by the settlement rules.
        overload: the handler reported its downstream overloaded
            (``context.report(overload=True)``).
    """

    kind: OutcomeKind
    failed: frozenset[str] = frozenset()
    reason: str = ""
    latency: float | None = None
    overload: bool = False

    @property
    def function_error(self) -> bool:
        return self.kind is OutcomeKind.ERROR


# ---------------------------------------------------------------------- actions
# Actions are built on every poll, so they are plain (not frozen) slotted dataclasses,
# compared by value; treat them as read-only.


@dataclass(slots=True, init=False)
class Receive:
    """Issue one receive on the mapping's queue for ``poller``.

    The driver reports the result with :meth:`QueueMapping.received` (an empty list when
    the long poll ran out).
    """

    poller: int
    max_messages: int
    wait: float
    visibility_timeout: float

    def __init__(self, poller: int, max_messages: int, wait: float,
                 visibility_timeout: float) -> None:
        self.poller = poller
        self.max_messages = max_messages
        self.wait = wait
        self.visibility_timeout = visibility_timeout


@dataclass(slots=True, init=False)
class Invoke:
    """Invoke the function with ``batch``; a concurrency slot is already held for it.

    The driver reports the end with :meth:`QueueMapping.finished`.
    """

    batch: Batch

    def __init__(self, batch: Batch) -> None:
        self.batch = batch


@dataclass(slots=True, init=False)
class Delete:
    """Delete these records from the queue: their invocation succeeded for them."""

    records: tuple[QueueRecord, ...]

    def __init__(self, records: tuple[QueueRecord, ...]) -> None:
        self.records = records


@dataclass(slots=True)
class Abandon:
    """The core gave up on a batch without invoking it (throttled until its visibility
    timeout ran out). Nothing to do in the store: the records reappear by themselves,
    with their receive count already raised. Reported for metrics."""

    batch: Batch
    reason: str


Action = Receive | Invoke | Delete | Abandon
