"""The one protocol every mapping core object presents to the drivers.

A standard queue (:class:`~sluicegate.core.mapping.QueueMapping`), a FIFO queue (the same
class, with FIFO rules) and a stream (:class:`~sluicegate.core.stream_mapping.StreamMapping`)
are state machines a driver speaks to the same way, whether the driver is the asyncio
runtime or the simulator:

1. :meth:`MappingCore.poll` returns the actions to start at ``now``:

   - *read* actions: :class:`~sluicegate.core.types.Receive` (a queue) or
     :class:`~sluicegate.core.streams.Fetch` (a shard);
   - *invoke* actions: :class:`~sluicegate.core.types.Invoke` or
     :class:`~sluicegate.core.streams.StreamInvoke`; a concurrency slot is already held;
   - *settle* actions: :class:`~sluicegate.core.types.Delete`,
     :class:`~sluicegate.core.types.Abandon` (nothing to perform but a log line),
     :class:`~sluicegate.core.streams.SendToDestination`,
     :class:`~sluicegate.core.streams.Checkpoint`; perform them in the order given.

2. The driver performs a read and reports what the store returned with
   :meth:`MappingCore.read_done`, passing the read action itself. A stream's driver also
   passes ``latest``, the shard's latest sequence number read *before* the records (see
   :meth:`~sluicegate.core.streams.Fetch.reads_records`): the core, not the driver,
   decides where the shard's iterator stands (starting position, retention gap).

3. The driver runs the handler and turns how the invocation ended into an outcome with
   :meth:`MappingCore.outcome_of` (the one rule from handler result to outcome,
   :func:`~sluicegate.core.results.invocation_outcome`, with the mapping's options),
   then reports it with :meth:`MappingCore.finished`.

4. :meth:`MappingCore.next_wakeup` says when to poll again if nothing is reported
   before; ``None``: only after a report.

Concurrency: :attr:`MappingCore.concurrency_limit` is the mapping's one
:class:`~sluicegate.core.limit.ConcurrencyLimit` (the minimum of its terms);
:meth:`MappingCore.limit_reason` names the binding term. The mapping already obeys it
(it issues an invoke only when a slot of its limit and of the account's pool is free);
drivers read it for status and metrics and never cap on their own. A term added at run
time (the cluster's share) takes effect at the next :meth:`~MappingCore.poll`.

Control: :meth:`~MappingCore.pause` (AWS's ``Enabled=false``) stops new reads (and, for a
stream, new invocations); work in hand finishes; :attr:`~MappingCore.idle` then says when
nothing is left in hand, and :attr:`~MappingCore.stopping` while it is not yet.

Every method takes ``now`` in seconds; none reads a clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from sluicegate.core.limit import ConcurrencyLimit
from sluicegate.core.results import InvocationResult
from sluicegate.core.types import BatchOutcome

__all__ = ["MappingCore"]

ReadT = TypeVar("ReadT", contravariant=True)
"""The read action a mapping issues: ``Receive`` or ``Fetch``."""
RecordT = TypeVar("RecordT", contravariant=True)
"""What a read returns: ``QueueRecord`` or ``StreamRecord``."""
BatchT = TypeVar("BatchT", contravariant=True)
"""What an invoke action carries: ``Batch`` or ``StreamBatch``."""
ActionT = TypeVar("ActionT", covariant=True)
"""The actions :meth:`MappingCore.poll` returns."""


class MappingCore(Protocol[ReadT, RecordT, BatchT, ActionT]):
    """What a driver asks of a mapping's core object (see the module docstring).

    ``QueueMapping`` is a ``MappingCore[Receive, QueueRecord, Batch, Action]``,
    ``StreamMapping`` a ``MappingCore[Fetch, StreamRecord, StreamBatch, StreamAction]``.
    A static protocol (not ``runtime_checkable``: the compiled build cannot have that).
    """

    @property
    def name(self) -> str:
        """``source->function``, as errors, logs and status show the mapping."""
        ...

    # ---------------------------------------------------------------- the loop

    def poll(self, now: float) -> Sequence[ActionT]:
        """Every action to start at ``now`` (settle actions in the order to perform)."""
        ...

    def read_done(
        self, now: float, read: ReadT, records: Sequence[RecordT], *, latest: int | None = None
    ) -> None:
        """The read action ``read`` returned ``records`` (empty: nothing); ``latest``:
        a stream shard's latest sequence number read before them (``None``: not read;
        ignored by queues)."""
        ...

    def outcome_of(self, result: InvocationResult, batch: BatchT) -> BatchOutcome:
        """How an invocation of ``batch`` that ended as ``result`` settles it."""
        ...

    def finished(
        self, now: float, batch_id: int, outcome: BatchOutcome, *,
        request_id: str | None = None,
    ) -> None:
        """The invocation of batch ``batch_id`` ended with ``outcome``; frees its slot.
        ``request_id``: the invocation's id (quoted in a stream's on-failure record)."""
        ...

    def next_wakeup(self, now: float) -> float | None:
        """When :meth:`poll` may next have work without a report (``None``: none)."""
        ...

    # ---------------------------------------------------------------- concurrency

    @property
    def concurrency_limit(self) -> ConcurrencyLimit:
        """The mapping's one limit (its terms; add one with ``.add``)."""
        ...

    @property
    def limit(self) -> int:
        """The limit's value as last computed by a call that took ``now``."""
        ...

    def limit_reason(self, now: float) -> str:
        """The name of the term that binds at ``now`` (e.g. ``"scaling"``)."""
        ...

    # ---------------------------------------------------------------- control, state

    def pause(self, now: float) -> None:
        """Stop new reads from ``now`` on; work in hand finishes."""
        ...

    def resume(self, now: float) -> None:
        """Read again from the next :meth:`poll`; no-op when not paused."""
        ...

    @property
    def paused(self) -> bool:
        """Whether it is paused."""
        ...

    @property
    def idle(self) -> bool:
        """Nothing in hand: no read outstanding, nothing in flight, no action waiting."""
        ...

    @property
    def stopping(self) -> bool:
        """Paused and not yet :attr:`idle`."""
        ...

    @property
    def in_flight(self) -> int:
        """Invocations running."""
        ...

    @property
    def reading(self) -> int:
        """Reads outstanding (receives or fetches)."""
        ...

    def statistics(self) -> Any:
        """A snapshot of the counters (``MappingStatistics`` or
        ``StreamMappingStatistics``)."""
        ...
