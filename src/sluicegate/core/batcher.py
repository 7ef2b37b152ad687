"""One batch buffer: records gathered until a batch is released.

A queue mapping's poller has one, and so has each lane of a stream mapping: the rules
below are the same for both sources (records of any kind with a ``size``).

A batch is released on the FIRST of (Lambda developer guide, "batching behaviour"):

- ``batch_size`` records are buffered;
- the payload cap is reached: the buffered records weigh 6 MB or more, so the next record
  would not fit (record metadata counts, which is why a batch can hold fewer than
  ``batch_size`` records);
- the batching window has expired;
- the window is 0 and at least one record is buffered (no batching: invoke at once).

When the window opens: at the moment the first record enters an EMPTY buffer. AWS says the
window starts "when the previous invocation completes" for SQS and streams; a poller does
not receive while its invocation runs, so the first record it receives afterwards is the
earliest moment a batch can start, and opening the window there (rather than at the end
of the invocation) means an idle queue never starts a timer that has nothing to wait for.
Records left over after a release (payload split) start a new window at the release. A
stream lane is read while its invocation runs, so records may wait in its buffer: when
the invocation ends, :meth:`Batcher.reopen` moves their window's start to that moment.

The class is pure: every method that depends on time takes ``now`` (seconds, any epoch,
as long as the caller is consistent).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, Protocol, TypeVar

from sluicegate.core.config import MAX_PAYLOAD_BYTES
from sluicegate.errors import ConfigError

__all__ = ["MAX_RECEIVE_MESSAGES", "Batcher", "SizedRecord"]


class SizedRecord(Protocol):
    """What a batcher reads of a record: the bytes it adds to an invocation payload
    (:class:`~sluicegate.core.types.QueueRecord`,
    :class:`~sluicegate.core.streams.StreamRecord`)."""

    @property
    def size(self) -> int: ...


R = TypeVar("R", bound=SizedRecord)

MAX_RECEIVE_MESSAGES = 10
"""Most messages one SQS ReceiveMessage call returns (``MaxNumberOfMessages`` 1-10, SQS API
reference). A poller never asks for more than this in one receive."""


class Batcher(Generic[R]):
    """A buffer of records for one poller (or one stream lane).

    Parameters:
        batch_size: most records per released batch (>= 1).
        window: the batching window in seconds (>= 0); 0 releases whatever is buffered.
        max_payload: the payload cap in bytes (default 6 MB, Lambda's synchronous invoke
            limit); a batch never weighs more, except a single record that alone exceeds
            it, which is released alone (the invocation will then fail on its own merits).

    Raises:
        ConfigError: a batch size below 1, a negative or non-finite window, or a cap
            below 1 byte.

    Attributes:
        buffer: the records buffered, in order received. Read-only outside this class
            (public so that a mapping's hot path can test it without a call).
    """

    __slots__ = (
        "_opened", "_payload", "batch_size", "buffer", "empty_room", "max_payload", "window"
    )

    def __init__(
        self, batch_size: object, window: object, max_payload: object = MAX_PAYLOAD_BYTES
    ) -> None:
        # Arguments typed ``object``: they are checked here, and in the compiled build an
        # ``int`` parameter would take ``True`` as 1 before the check could refuse it.
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError("batch_size", batch_size, "an integer >= 1", "batcher")
        if not isinstance(window, (int, float)) or not 0 <= window < float("inf"):
            raise ConfigError("window", window, "a finite number of seconds >= 0", "batcher")
        if isinstance(max_payload, bool) or not isinstance(max_payload, int) or max_payload < 1:
            raise ConfigError("max_payload", max_payload, "an integer >= 1 byte", "batcher")
        self.batch_size = batch_size
        self.window = float(window)
        self.max_payload = max_payload
        self.buffer: list[R] = []
        self._payload = 0
        self._opened = 0.0
        self.empty_room = self.room()
        """What :meth:`room` answers while nothing is buffered (read without a call)."""

    def __len__(self) -> int:
        """Number of records buffered."""
        return len(self.buffer)

    def __repr__(self) -> str:
        return (
            f"Batcher(batch_size={self.batch_size}, window={self.window:g}, "
            f"buffered={len(self.buffer)}, payload={self._payload})"
        )

    @property
    def payload(self) -> int:
        """Bytes buffered (sum of the records' ``size``)."""
        return self._payload

    @property
    def opened(self) -> float | None:
        """When the current window opened (seconds), or ``None`` when nothing is buffered."""
        return self._opened if self.buffer else None

    def add(self, now: float, records: Sequence[R]) -> None:
        """Buffer ``records`` received at ``now``.

        Parameters:
            now: the time of the receive, in seconds. Opens the window if the buffer was
                empty.
            records: the records, in the order they were received (may be empty).
        """
        if not records:
            return
        buffered = self.buffer
        if not buffered:
            self._opened = now
        payload = self._payload
        for record in records:
            payload += record.size
        self._payload = payload
        buffered.extend(records)

    def room(self) -> int:
        """How many more records the next receive should ask for.

        Returns:
            ``min(10, batch_size - buffered)``, or 0 when the batch is full by count or by
            payload.
        """
        left = self.batch_size - len(self.buffer)
        if left <= 0 or self._payload >= self.max_payload:
            return 0
        return left if left < MAX_RECEIVE_MESSAGES else MAX_RECEIVE_MESSAGES

    def ready(self, now: float) -> bool:
        """Whether a batch should be released at ``now`` (see the module docstring).

        Parameters:
            now: the current time in seconds.

        Returns:
            ``True`` when at least one record is buffered and the batch is full by count,
            full by payload, or its window has expired (always, with a window of 0).
        """
        n = len(self.buffer)
        if not n:
            return False
        if n >= self.batch_size or self._payload >= self.max_payload:
            return True
        return now >= self._opened + self.window

    def take_ready(self, now: float) -> tuple[R, ...]:
        """:meth:`take` when :meth:`ready` says so, in one call.

        Returns:
            The released records; empty when no batch is ready (nothing changes then).
        """
        buffered = self.buffer
        n = len(buffered)
        if not n:
            return ()
        size = self.batch_size
        payload = self._payload
        cap = self.max_payload
        if n < size and payload < cap and now < self._opened + self.window:
            return ()  # not ready
        if n <= size and payload <= cap:
            # take's usual case: the whole buffer
            out = tuple(buffered)
            buffered.clear()
            self._payload = 0
            return out
        return self.take(now)

    def deadline(self) -> float | None:
        """When the current window expires (seconds), or ``None`` when nothing is buffered."""
        return self._opened + self.window if self.buffer else None

    def reopen(self, now: float) -> None:
        """The window of the records buffered starts no earlier than ``now`` (a stream
        lane's invocation ended: AWS starts the next window "when the previous invocation
        completes"). Nothing buffered: nothing to do (the next record opens it)."""
        if self.buffer and self._opened < now:
            self._opened = now

    def take(self, now: float) -> tuple[R, ...]:
        """Release the next batch, whether or not :meth:`ready` says so.

        The batch is the longest prefix of the buffer holding at most ``batch_size``
        records and weighing at most ``max_payload`` bytes (at least one record).
        Records left behind stay buffered, in order, under a new window opened at ``now``.

        Parameters:
            now: the current time in seconds.

        Returns:
            The released records, in the order received; empty when nothing is buffered.
        """
        buffered = self.buffer
        n = len(buffered)
        if not n:
            return ()
        size = self.batch_size
        cap = self.max_payload
        if n <= size and self._payload <= cap:
            out = tuple(buffered)
            buffered.clear()
            self._payload = 0
            return out
        limit = min(size, n)
        total = buffered[0].size
        k = 1
        while k < limit:
            s = buffered[k].size
            if total + s > cap:
                break
            total += s
            k += 1
        out = tuple(buffered[:k])
        del buffered[:k]
        self._payload -= total
        self._opened = now
        return out
