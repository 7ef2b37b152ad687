"""The standard-queue event source mapping as a state machine.

Model: the mapping runs ``limit`` pollers, where ``limit`` is the value of its
:class:`~sluicegate.core.limit.ConcurrencyLimit` (:attr:`QueueMapping.concurrency_limit`),
the minimum of its terms:

- ``maximum_concurrency``: the mapping's setting (unbounded when unset);
- ``reserved_concurrency`` and ``pool`` (the function's reserved concurrency, and the
  most slots it can ever hold in the account's pool), for sluicegate's own policies
  only (``scaling`` other than ``"aws"``): they never run more pollers than the function
  can take, so they are not throttled by their own function's capacity. A reservation
  of 0 binds neither: it is AWS's switch that throttles every invocation of the
  function, and the mapping keeps receiving and being throttled, its messages
  returning, as with the ``aws`` policy. The ``aws``
  policy models AWS's pollers, which reserved concurrency and the pool do not bound: over
  a function's capacity they are throttled and back off, which is the behaviour the
  ``aws-*`` presets reproduce; so an ``aws`` mapping has neither term;
- ``adaptive`` (``scaling="adaptive"``): the adaptive limit
  (:class:`~sluicegate.core.adaptive.AdaptiveLimit`), which observes every invocation's
  :class:`~sluicegate.core.signals.Sample` (the mapping reports one from
  :meth:`QueueMapping.finished` and on each throttle, whenever a term observes);
- ``scaling``: the scaling policy's level;
- any term a driver adds (the cluster's share, ``"cluster"``).

A poller receives (up to 10 messages per
receive, never more than its batch still has room for), gathers records in its
:class:`~sluicegate.core.batcher.Batcher`, and when the batch is released takes a slot
from the :class:`~sluicegate.core.pool.ConcurrencyPool` and invokes, synchronously: it
does not receive again until the invocation has finished. So invocations in flight never
exceed the number of active pollers, which never exceeds the limit.

Pollers are numbered 0, 1, ...; those below the current limit are *active*. When the limit
grows, new pollers start; when it shrinks, a poller at or above it finishes what it has
in hand (an outstanding receive, buffered records, an invocation) and retires: it never
issues another receive. An invocation is started only while fewer than ``limit`` are in
flight, so a shrinking limit is honoured too: a poller holding a released batch waits for
a slot (and gives the batch up when its visibility timeout ends first).

A poller's cycle:

1. no receive outstanding, no invocation, nothing held, room in its batch, mapping not
   paused: :class:`~sluicegate.core.types.Receive` (``wait`` = :data:`LONG_POLL_WAIT` with
   an empty buffer, else the time left in the batching window);
2. :meth:`QueueMapping.received` buffers the records; the batch is released when the
   batcher says so (full, 6 MB, window expired; the window is checked when the receive
   returns, since its ``wait`` ends at the window's deadline);
3. a slot from the pool: :class:`~sluicegate.core.types.Invoke`; no slot (throttle): retry
   after :data:`THROTTLE_BACKOFF_BASE` doubling up to :data:`THROTTLE_BACKOFF_MAX`, or
   :class:`~sluicegate.core.types.Abandon` when the retry would come at or after the
   moment the batch's first record becomes visible again (the messages reappear by
   themselves, receive count already raised, as on AWS);
4. :meth:`QueueMapping.finished` frees the slot and queues a
   :class:`~sluicegate.core.types.Delete` of what the outcome lets go
   (:func:`~sluicegate.core.results.deletable`, or
   :func:`~sluicegate.core.results.fifo_deletable` for a FIFO queue), emitted by the next
   :meth:`poll`.

Pause (AWS's ``Enabled=false``) stops new receives; receives already outstanding come
back, buffered records are still invoked when their batch is released, invocations run to
their end. :attr:`QueueMapping.idle` then tells a driver when nothing is left in hand.

Every method takes ``now`` in seconds; none reads a clock. Work per call is proportional
to what changed (timers sit in a heap, pollers needing attention in a list), never to the
number of pollers, except :meth:`QueueMapping.resume`.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from sluicegate.core.adaptive import AdaptiveLimit
from sluicegate.core.batcher import Batcher
from sluicegate.core.config import MappingConfig
from sluicegate.core.limit import (
    TERM_MAXIMUM_CONCURRENCY,
    TERM_POOL,
    TERM_RESERVED_CONCURRENCY,
    ConcurrencyLimit,
    Fixed,
    PolicyTerm,
)
from sluicegate.core.pool import ConcurrencyPool
from sluicegate.core.results import (
    InvocationResult,
    deletable,
    fifo_deletable,
    invocation_outcome,
)
from sluicegate.core.scaling import FixedScaling, ScalingPolicy, make_policy
from sluicegate.core.signals import Sample, SampleKind, sample_kind
from sluicegate.core.types import (
    Abandon,
    Action,
    Batch,
    BatchOutcome,
    Delete,
    Invoke,
    OutcomeKind,
    QueueRecord,
    Receive,
)

__all__ = [
    "LONG_POLL_WAIT",
    "THROTTLE_BACKOFF_BASE",
    "THROTTLE_BACKOFF_MAX",
    "MappingStatistics",
    "QueueMapping",
]

LONG_POLL_WAIT: Final = 20.0
"""Seconds a receive with an empty buffer waits for messages: the longest SQS long poll
(WaitTimeSeconds 0-20), which Lambda's pollers use while idle (lambda-semantics.md section
4: ~15 empty receives per minute = 5 pollers x 3)."""

THROTTLE_BACKOFF_BASE: Final = 1.0
"""Seconds before the first retry of a throttled batch; each further throttle of the same
batch doubles it. AWS retries throttles "with backoff" without publishing the schedule;
sluicegate's choice: one second gives a finishing invocation time to free a slot, and the
doubling lets a batch survive about five throttles inside a 30 s visibility timeout."""

THROTTLE_BACKOFF_MAX: Final = 30.0
"""Longest wait between two retries of a throttled batch, in seconds (sluicegate's choice:
the SQS default visibility timeout, so a long-held batch is still retried a few times)."""

_heappush: Final = heapq.heappush
_heappop: Final = heapq.heappop
# module constants: a compiled build (setup.py) reads them natively, where ``heapq.heappush``
# is a lookup in the module's namespace per call

_FREE: Final = 0
"""Nothing in hand, or only buffered records about to be examined."""
_RECEIVING: Final = 1
"""A receive is outstanding."""
_INVOKING: Final = 2
"""Its batch is being invoked (``held``)."""
_THROTTLED: Final = 3
"""Holds a throttled batch (``held``) until a retry timer."""
_WINDOW: Final = 4
"""Holds buffered records until the window's deadline (paused, or above the limit)."""
_SLOT: Final = 5
"""Holds a released batch (``held``) until fewer than ``limit`` are in flight."""
_TURN: Final = 6
"""Wants to receive and waits for its turn (FIFO receive turns, see
:class:`QueueMapping`)."""

_SUCCESS: Final = OutcomeKind.SUCCESS
_THROTTLE: Final = SampleKind.THROTTLE
_ERROR: Final = OutcomeKind.ERROR

_REASON_THROTTLED: Final = "throttled {n} time(s); the visibility timeout ends before the next retry"
_REASON_NO_SLOT: Final = "visibility timeout reached while waiting for a concurrency slot"


class _Poller:
    __slots__ = ("asked", "batcher", "flagged", "gen", "held", "index", "receive", "started",
                 "started_in_flight", "state")

    def __init__(self, index: int, batcher: Batcher[QueueRecord]) -> None:
        self.index = index
        self.batcher = batcher
        self.state = _FREE
        self.held: Batch | None = None
        self.gen = 0
        """Bumped whenever a timer or slot-queue entry of this poller becomes stale."""
        self.flagged = False
        """Whether it is in the attention list."""
        self.asked = 0.0
        """When its latest receive was issued."""
        self.receive: Receive | None = None
        """The last ``Receive`` issued, reused when the next one is equal (actions are
        read-only and compared by value; this saves an allocation per receive)."""
        self.started = 0.0
        """When its invocation in flight started (for the limit's
        :class:`~sluicegate.core.signals.Sample`)."""
        self.started_in_flight = 0
        """The mapping's invocations in flight when it started, itself included."""


@dataclass(frozen=True, slots=True)
class MappingStatistics:
    """A snapshot of a mapping's counters, for status displays and metrics.

    Attributes:
        limit: concurrent batches allowed when last computed.
        in_flight: invocations running.
        receiving: receives outstanding.
        buffered: records received but not yet released in a batch.
        held: released batches waiting (throttle retry or concurrency slot).
        invocations: ``Invoke`` actions issued.
        errors: invocations that ended in ERROR.
        partial: invocations that ended in PARTIAL.
        throttles: failed slot acquisitions.
        abandoned: batches given up without invoking.
        received_records: records received.
        deleted_records: records handed to ``Delete`` actions.
        paused: whether receives are stopped.
    """

    limit: int
    in_flight: int
    receiving: int
    buffered: int
    held: int
    invocations: int
    errors: int
    partial: int
    throttles: int
    abandoned: int
    received_records: int
    deleted_records: int
    paused: bool


class QueueMapping:
    """One standard-queue mapping's decisions.

    Parameters:
        config: the mapping's configuration (``config.function`` names the function in
            the pool; ``enabled=False`` creates it paused).
        visibility_timeout: the visibility timeout its receives use, in seconds (see
            :func:`~sluicegate.core.config.effective_visibility_timeout`).
        pool: the account's concurrency pool, shared with every other mapping.
        policy: the scaling policy; built from ``config`` when omitted (with the
            function's reserved concurrency as registered in ``pool``).
        now: when the mapping is created, in seconds.
        record_filter: the mapping's filter criteria as a predicate (``None``: none).
        receive_turns: for a FIFO queue, its pollers take turns: at most one receive is
            outstanding at a time, and a poller that wants to receive while another's
            receive is out waits for its turn, in the order they asked (a poller whose
            receive just came back goes behind those already waiting). Each FIFO receive
            is a claim of its own on the store, which hands out only groups with
            nothing in flight; with turns, the messages a settled batch frees are
            claimed by one poller instead of raced for by every waiting one (with 100
            pollers on a real store the race costs more than the work). The runtime
            turns them on. Off (the default), every poller has its receive out at once,
            as AWS's concurrent long polls do: the simulator's model, whose receives are
            atomic and whose long polls share new messages at random
            (:class:`~sluicegate.sim.models.LongPolls`); the ``fifo-*`` presets are
            calibrated on it. Ignored for a standard queue.

    Raises:
        ValueError: a negative or non-finite visibility timeout.

    Attributes:
        invocations: ``Invoke`` actions issued.
        errors: invocations that ended in ERROR (exception, timeout, invalid response).
        partial: invocations that ended in PARTIAL.
        throttles: times a batch found no slot in the pool.
        abandoned: batches given up without invoking (``Abandon`` actions).
        received_records: records received.
        deleted_records: records handed to ``Delete`` actions.
    """

    __slots__ = (
        "_active",
        "_attention",
        "_buffered",
        "_by_batch",
        "_climit",
        "_deletable",
        "_function",
        "_granted",
        "_held",
        "_in_flight",
        "_limit",
        "_next_batch_id",
        "_paused",
        "_pending_deletes",
        "_policy",
        "_policy_holds",
        "_policy_inert",
        "_policy_times",
        "_policy_waits",
        "_pollers",
        "_pool",
        "_receiving",
        "_record_filter",
        "_seq",
        "_slot_wait",
        "_timers",
        "_turn_wait",
        "_turns",
        "_visibility_timeout",
        "abandoned",
        "config",
        "deleted_records",
        "errors",
        "filtered_records",
        "invocations",
        "partial",
        "received_records",
        "throttles",
    )

    def __init__(
        self,
        config: MappingConfig,
        *,
        visibility_timeout: float,
        pool: ConcurrencyPool,
        policy: ScalingPolicy | None = None,
        now: float = 0.0,
        record_filter: Callable[[QueueRecord], bool] | None = None,
        receive_turns: bool = False,
    ) -> None:
        if not 0 <= visibility_timeout < float("inf"):
            raise ValueError(f"visibility_timeout={visibility_timeout!r}: need finite seconds >= 0")
        self.config = config
        self._function = config.function
        self._visibility_timeout = float(visibility_timeout)
        self._pool = pool
        self._deletable = fifo_deletable if config.fifo else deletable
        """Which records a partial failure lets go: within a FIFO group, none after the
        group's first failed record."""
        if policy is None:
            policy = make_policy(
                config, reserved_concurrency=pool.reserved_concurrency(config.function)
            )
        self._policy = policy
        self._policy_waits = bool(getattr(policy, "observes_receive_wait", False))
        """Whether the policy's ``on_receive`` takes ``waited`` (seconds the receive was
        outstanding): :class:`~sluicegate.core.scaling.AwsScaling` does."""
        self._policy_times = bool(getattr(policy, "observes_invocation_time", False))
        """Whether the policy's ``on_outcome`` takes ``duration`` (seconds the invocation
        ran, init included): :class:`~sluicegate.core.scaling.AwsScaling` does."""
        self._policy_inert = type(policy) is FixedScaling
        self._policy_holds = bool(getattr(policy, "observes_hold", False))
        """Whether the policy has ``on_held`` (told, at each :meth:`poll` that finds the
        limit at 0, that nothing is received): :class:`~sluicegate.core.scaling.AwsScaling`
        stops growing then, so a breaker or an operator holding the mapping at 0 for long
        does not release its backlog to a level that grew all the while."""
        """Whether the policy's hooks do nothing (a :class:`FixedScaling`, exactly): the
        hot paths then skip calling them."""
        self._climit = _build_limit(config, policy, pool)
        """The limit. Its ``fixed`` (the value when every term is static) is read afresh
        by the hot paths, so a term added or changed at run time is seen at once; when
        it is ``None`` they ask for the value."""
        self._paused = not config.enabled
        self._pollers: list[_Poller] = []
        self._active = 0
        """Pollers 0.._active-1 are active: the limit when last applied by poll()."""
        self._attention: list[_Poller] = []
        self._timers: list[tuple[float, int, _Poller, int]] = []
        self._seq = 0
        self._slot_wait: deque[tuple[_Poller, int]] = deque()
        self._by_batch: dict[int, _Poller] | None = None
        """Batch id -> the poller invoking it (state ``_INVOKING``), for :meth:`finished`,
        which is told a batch's id; built at its first call and kept from then on
        (:meth:`finished_poll` is given the batch, whose poller it names)."""
        self._pending_deletes: list[tuple[QueueRecord, ...]] = []
        self._record_filter = record_filter
        self._turns: bool = bool(receive_turns) and config.fifo
        """Whether receives take turns (``receive_turns`` on a FIFO queue)."""
        self._turn_wait: deque[_Poller] = deque()
        """Pollers waiting for their turn to receive (state ``_TURN``), in order."""
        self._granted: _Poller | None = None
        """The poller being given the turn (by :meth:`_grant_turn`)."""
        """The mapping's filter criteria as a predicate (the driver knows how to read a
        record's body and metadata); ``None`` when the mapping has none."""
        self._next_batch_id = 1
        self._receiving = 0
        self._in_flight = 0
        self._held = 0
        self._buffered = 0
        self._limit = 0
        self._compute_limit(now)
        self.invocations = 0
        self.errors = 0
        self.partial = 0
        self.throttles = 0
        self.abandoned = 0
        self.received_records = 0
        self.filtered_records = 0
        self.deleted_records = 0

    def __repr__(self) -> str:
        return (
            f"QueueMapping({self.config.name}, limit={self._limit}, "
            f"in_flight={self._in_flight}, paused={self._paused})"
        )

    # ------------------------------------------------------------------ properties

    @property
    def policy(self) -> ScalingPolicy:
        """The scaling policy in use."""
        return self._policy

    @property
    def name(self) -> str:
        """``queue->function``, as errors, logs and status show the mapping."""
        return self.config.name

    @property
    def concurrency_limit(self) -> ConcurrencyLimit:
        """The mapping's one limit (see the class docstring for its terms). A term added,
        replaced or removed takes effect at the next :meth:`poll`."""
        return self._climit

    @property
    def limit(self) -> int:
        """Concurrent batches allowed, as of the last call that took ``now``."""
        return self._limit

    def limit_reason(self, now: float) -> str:
        """The name of the limit's term that binds at ``now`` (e.g. ``"scaling"``)."""
        return self._climit.reason(now)

    @property
    def reading(self) -> int:
        """Receives outstanding (the protocol's name for :attr:`receiving`)."""
        return self._receiving

    @property
    def in_flight(self) -> int:
        """Invocations running (``Invoke`` issued, ``finished`` not yet reported)."""
        return self._in_flight

    @property
    def receiving(self) -> int:
        """Receives outstanding."""
        return self._receiving

    @property
    def buffered(self) -> int:
        """Records received and not yet released in a batch."""
        return self._buffered

    @property
    def paused(self) -> bool:
        """Whether receives are stopped (:meth:`pause`, or created with ``enabled=False``)."""
        return self._paused

    @property
    def idle(self) -> bool:
        """Nothing in hand: no receive outstanding, nothing buffered, nothing in flight, no
        batch held for a throttle retry or a slot, no ``Delete`` waiting to be emitted.

        A paused mapping that is idle stays idle; a graceful shutdown pauses and waits
        for this."""
        return not (
            self._receiving
            or self._in_flight
            or self._held
            or self._buffered
            or self._pending_deletes
        )

    @property
    def stopping(self) -> bool:
        """Paused but still finishing work in hand (not yet :attr:`idle`)."""
        return self._paused and not self.idle

    def statistics(self) -> MappingStatistics:
        """A snapshot of the counters."""
        return MappingStatistics(
            limit=self._limit,
            in_flight=self._in_flight,
            receiving=self._receiving,
            buffered=self._buffered,
            held=self._held,
            invocations=self.invocations,
            errors=self.errors,
            partial=self.partial,
            throttles=self.throttles,
            abandoned=self.abandoned,
            received_records=self.received_records,
            deleted_records=self.deleted_records,
            paused=self._paused,
        )

    # ------------------------------------------------------------------ control

    def pause(self, now: float) -> None:
        """Stop issuing receives from ``now`` on. Work in hand continues."""
        self._paused = True

    def resume(self, now: float) -> None:
        """Issue receives again (at the next :meth:`poll`). No-op when not paused."""
        if not self._paused:
            return
        self._paused = False
        on_resume = getattr(self._policy, "on_resume", None)
        if on_resume is not None:
            on_resume(now)
        limit = self._compute_limit(now)
        self._active = max(self._active, limit)
        for i in range(self._active):
            self._wake(self._poller(i))

    # ------------------------------------------------------------------ driver API

    def poll(self, now: float) -> list[Action]:
        """Every action that should start at ``now``.

        Parameters:
            now: the current time in seconds.

        Returns:
            ``Delete`` actions for invocations settled since the last poll, then
            ``Invoke``, ``Abandon`` and ``Receive`` actions, in no promised order.
        """
        limit = self._climit.fixed  # _compute_limit, inlined: poll is the hot path
        if limit is None:
            limit = self._climit.value(now)
        self._limit = limit
        if not limit and self._policy_holds:
            self._policy.on_held(now)  # type: ignore[attr-defined]
        actions: list[Action] = []
        pending = self._pending_deletes
        if pending:
            for records in pending:
                actions.append(Delete(records))
            pending.clear()
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, _, poller, gen = _heappop(timers)
            if poller.gen == gen:
                self._on_timer(poller, now, limit, actions)
        active = self._active
        if limit != active:
            if limit > active and not self._paused:
                for i in range(active, limit):
                    self._wake(self._poller(i))
            self._active = limit
        slot_wait = self._slot_wait
        while slot_wait and self._in_flight < limit:
            poller, gen = slot_wait.popleft()
            if poller.gen != gen:
                continue
            batch = self._release_held(poller)
            self._dispatch(poller, batch, now, limit, actions)
        if self._attention:
            self._visit_attention(now, limit, actions)
        if self._turn_wait and not self._receiving:
            self._grant_turn(now, limit, actions)
        return actions

    def read_done(
        self,
        now: float,
        read: Receive,
        records: Sequence[QueueRecord],
        *,
        latest: int | None = None,
    ) -> None:
        """The receive ``read`` returned ``records``: :meth:`received` under the
        protocol's name (:class:`~sluicegate.core.protocol.MappingCore`); ``latest`` is
        for streams and ignored here."""
        self.received(now, read.poller, records if isinstance(records, list) else list(records))

    def outcome_of(self, result: InvocationResult, batch: Batch) -> BatchOutcome:
        """How an invocation of ``batch`` that ended as ``result`` settles it: the one
        rule (:func:`~sluicegate.core.results.invocation_outcome`) with the mapping's
        ReportBatchItemFailures."""
        return invocation_outcome(
            result, batch, report_batch_item_failures=self.config.report_batch_item_failures
        )

    def received(self, now: float, poller: int, records: list[QueueRecord]) -> None:
        """The receive issued for ``poller`` returned ``records`` (empty: nothing came).

        Parameters:
            now: when the receive returned, in seconds.
            poller: the ``Receive.poller`` of the receive.
            records: what it returned, in order.

        Raises:
            RuntimeError: ``poller`` has no receive outstanding (a driver bug).
        """
        p = self._receipt(now, poller, records)
        if not p.flagged:
            p.flagged = True
            self._attention.append(p)

    def received_poll(
        self, now: float, poller: int, records: list[QueueRecord]
    ) -> tuple[list[Action], float | None]:
        """:meth:`received`, then :meth:`poll`, then :meth:`next_wakeup`, in one call.

        For a driver that reports one receive at a time (the simulator): the result is
        exactly what the three calls would return, through the same rules, with less
        bookkeeping when nothing else needs attention at ``now``.

        Returns:
            ``(actions, wakeup)``: :meth:`poll`'s actions, and :meth:`next_wakeup` as it
            stands after them; ``wakeup`` holds until something more is reported.

        Raises:
            RuntimeError: ``poller`` has no receive outstanding (a driver bug).
        """
        # _receipt, then poll and next_wakeup, written out (the simulator's busiest call).
        # When nothing else is in hand at `now` (no other poller needing attention, no
        # Delete queued, no timer due, no batch waiting for a slot or a turn, the limit as
        # last applied), poll would visit p alone: that is done here directly, without the
        # attention list; otherwise p goes on the list, as received() puts it, and poll
        # runs. And when the records make a full batch on their own (nothing buffered
        # before them, as many as batch_size, within the payload cap) and p is visited
        # alone, they are released as _advance would release them, without passing
        # through the batcher (which would be left as it was: empty).
        try:
            p = self._pollers[poller] if poller >= 0 else None
        except IndexError:
            p = None
        if p is None or p.state != _RECEIVING:
            raise RuntimeError(f"poller {poller} of {self.config.name} has no receive outstanding")
        p.state = _FREE
        self._receiving -= 1
        count = len(records)
        batcher = p.batcher
        whole = False
        if count:
            self.received_records += count
            accept = self._record_filter
            n = count
            if accept is not None:
                records = self._filter(records, accept)
                n = len(records)
            if n:
                if n == batcher.batch_size and not batcher.buffer and (
                    records[0].size <= batcher.max_payload if n == 1
                    else sum([r.size for r in records]) <= batcher.max_payload
                ):
                    whole = True
                else:
                    batcher.add(now, records)
                    self._buffered += n
        if self._policy_waits:
            self._policy.on_receive(now, count, now - p.asked)  # type: ignore[call-arg]
        elif not self._policy_inert:  # FixedScaling.on_receive does nothing
            self._policy.on_receive(now, count)
        fixed = self._climit.fixed
        limit = fixed if fixed is not None else self._compute_limit(now)
        timers = self._timers
        if (
            self._attention
            or self._pending_deletes
            or self._slot_wait
            or self._turn_wait
            or p.flagged
            or limit != self._active
            or (timers and timers[0][0] <= now)
        ):
            if whole:
                batcher.add(now, records)
                self._buffered += len(records)
            if not p.flagged:
                p.flagged = True
                self._attention.append(p)
            actions = self.poll(now)
            return actions, self.next_wakeup(now)
        self._limit = limit
        actions = []
        if whole:
            batch = Batch(self._next_batch_id, p.index, tuple(records))
            self._next_batch_id += 1
            # _dispatch, written out for its usual case
            if self._in_flight >= limit:
                self._dispatch(p, batch, now, limit, actions)
            elif self._pool.try_acquire(self._function):
                p.state = _INVOKING
                p.held = batch
                self._in_flight += 1
                p.started = now
                p.started_in_flight = self._in_flight
                if self._by_batch is not None:
                    self._by_batch[batch.id] = p
                self.invocations += 1
                actions.append(Invoke(batch))
            else:
                self._throttled(p, batch, now, actions)
        else:
            self._advance(p, now, limit, actions)
        if self._attention:  # an abandon put a poller back on the list
            self._visit_attention(now, limit, actions)
        elif fixed is not None:
            # next_wakeup, past what is known here: nothing needs attention, no Delete
            # is queued, and the limit (fixed) is the one applied; _next_timed's answer
            # without the call when no batch waits for a slot and no timer is set
            if not self._slot_wait and not timers:
                return actions, None
            return actions, self._next_timed(now, limit)
        return actions, self.next_wakeup(now)

    def _receipt(self, now: float, poller: int, records: list[QueueRecord]) -> _Poller:
        """:meth:`received` but for putting the poller on the attention list."""
        try:
            p = self._pollers[poller] if poller >= 0 else None
        except IndexError:
            p = None
        if p is None or p.state != _RECEIVING:
            raise RuntimeError(f"poller {poller} of {self.config.name} has no receive outstanding")
        p.state = _FREE
        self._receiving -= 1
        count = len(records)
        if count:
            self.received_records += count
            accept = self._record_filter
            if accept is not None:
                records = self._filter(records, accept)
            if records:
                p.batcher.add(now, records)
                self._buffered += len(records)
        if self._policy_waits:
            self._policy.on_receive(now, count, now - p.asked)  # type: ignore[call-arg]
        elif not self._policy_inert:  # FixedScaling.on_receive does nothing
            self._policy.on_receive(now, count)
        return p

    def _filter(
        self, records: list[QueueRecord], accept: Callable[[QueueRecord], bool]
    ) -> list[QueueRecord]:
        """The records the filter criteria let through; the others are deleted, as AWS
        deletes the queue messages a mapping's filter rejects (lambda-semantics.md 7)."""
        kept: list[QueueRecord] = []
        rejected: list[QueueRecord] = []
        for record in records:
            (kept if accept(record) else rejected).append(record)
        if rejected:
            self._pending_deletes.append(tuple(rejected))
            self.filtered_records += len(rejected)
            self.deleted_records += len(rejected)
        return kept

    def _report(self, now: float, p: _Poller, batch: Batch, outcome: BatchOutcome) -> None:
        """Tell the policy (unless it is inert: ``FixedScaling.on_outcome`` does nothing)
        and the limit's observing terms how poller ``p``'s invocation of ``batch`` ended;
        shared by :meth:`finished` and :meth:`finished_poll`."""
        if not self._policy_inert:
            if self._policy_times:
                self._policy.on_outcome(now, outcome, now - p.started)  # type: ignore[call-arg]
            else:
                self._policy.on_outcome(now, outcome)
        if self._climit.observers:
            self._climit.observe(now, Sample(
                p.started, now, sample_kind(outcome), len(batch.records),
                p.started_in_flight, outcome.latency, outcome.overload))

    def finished(
        self, now: float, batch_id: int, outcome: BatchOutcome, *,
        request_id: str | None = None,
    ) -> None:
        """The invocation of batch ``batch_id`` ended with ``outcome``; releases its slot.

        Parameters:
            now: when it ended, in seconds.
            batch_id: ``Invoke.batch.id``.
            outcome: how it settled (see :mod:`sluicegate.core.results`).
            request_id: the invocation's request id; not used by a queue mapping
                (the protocol's streams quote it).

        Raises:
            RuntimeError: no invocation of that batch is in flight (a driver bug).
        """
        p, records = self._settle(now, batch_id, outcome)
        if records:
            self._pending_deletes.append(records)
        if not p.flagged:
            p.flagged = True
            self._attention.append(p)

    def finished_poll(
        self, now: float, batch: Batch, outcome: BatchOutcome
    ) -> tuple[tuple[QueueRecord, ...], list[Action], float | None]:
        """:meth:`finished` of ``batch`` (the ``Invoke.batch`` object itself, told whole
        rather than by its id), then :meth:`poll`, then :meth:`next_wakeup`, in one call.

        For a driver that reports one end at a time (the simulator); see
        :meth:`received_poll`. The ``Delete`` that :meth:`poll` would emit first for this
        invocation's records usually comes back as the records alone, which saves the
        action and the driver's test of its type. The batch names its poller, so no
        index by batch id is needed (:meth:`finished` builds one).

        Returns:
            ``(deleted, actions, wakeup)``: records to delete before performing
            ``actions`` (empty: none; their ``Delete`` is then among ``actions`` if
            there is one), :meth:`poll`'s other actions, and :meth:`next_wakeup` as in
            :meth:`received_poll`.

        Raises:
            RuntimeError: no invocation of that batch is in flight (a driver bug).
        """
        # _settle, then poll and next_wakeup, written out as in received_poll (the
        # simulator's second busiest call)
        pollers = self._pollers
        poller = batch.poller
        p = pollers[poller] if 0 <= poller < len(pollers) else None
        if p is None or p.held is not batch or p.state != _INVOKING:
            raise RuntimeError(f"batch {batch.id} of {self.config.name} is not in flight")
        by_batch = self._by_batch
        if by_batch is not None:
            del by_batch[batch.id]
        p.held = None
        p.state = _FREE
        self._in_flight -= 1
        self._pool.release(self._function)
        if not self._policy_inert or self._climit.observers:
            self._report(now, p, batch, outcome)
        kind = outcome.kind
        records: tuple[QueueRecord, ...]
        if kind is _SUCCESS:
            records = batch.records
        elif kind is _ERROR:
            self.errors += 1
            records = ()
        else:
            self.partial += 1
            records = self._deletable(batch, outcome)
        if records:
            self.deleted_records += len(records)
            if self._pending_deletes:
                # poll emits the Deletes queued earlier first: this one goes after them
                self._pending_deletes.append(records)
                records = ()
        # else poll would emit this Delete (if any) first, then what visiting p gives
        fixed = self._climit.fixed
        limit = fixed if fixed is not None else self._compute_limit(now)
        timers = self._timers
        if (
            self._attention
            or self._pending_deletes
            or self._slot_wait
            or self._turn_wait
            or p.flagged
            or limit != self._active
            or (timers and timers[0][0] <= now)
        ):
            if not p.flagged:
                p.flagged = True
                self._attention.append(p)
            actions = self.poll(now)
            return records, actions, self.next_wakeup(now)
        self._limit = limit
        actions = []
        batcher = p.batcher
        if batcher.buffer or self._turns:
            self._advance(p, now, limit, actions)
        elif p.index < limit and not self._paused:
            # _advance, written out for its usual case here: nothing buffered, receive
            p.state = _RECEIVING
            p.asked = now
            self._receiving += 1
            room = batcher.empty_room
            receive = p.receive
            if receive is None or receive.max_messages != room or receive.wait != LONG_POLL_WAIT:
                receive = p.receive = Receive(p.index, room, LONG_POLL_WAIT,
                                              self._visibility_timeout)
            actions.append(receive)
        # else parked (paused) or retired (above the limit), as _advance leaves it
        if self._attention:  # an abandon put a poller back on the list
            self._visit_attention(now, limit, actions)
        elif fixed is not None:
            if not self._slot_wait and not timers:
                return records, actions, None
            return records, actions, self._next_timed(now, limit)
        return records, actions, self.next_wakeup(now)

    def _settle(
        self, now: float, batch_id: int, outcome: BatchOutcome
    ) -> tuple[_Poller, tuple[QueueRecord, ...]]:
        """:meth:`finished` but for queueing the ``Delete`` and putting the poller on the
        attention list; returns the poller and the records to delete."""
        by_batch = self._by_batch
        if by_batch is None:
            by_batch = self._by_batch = {
                q.held.id: q for q in self._pollers if q.state == _INVOKING and q.held
            }
        p = by_batch.get(batch_id)
        if p is None:
            raise RuntimeError(f"batch {batch_id} of {self.config.name} is not in flight")
        del by_batch[batch_id]
        batch = p.held
        assert batch is not None
        p.held = None
        p.state = _FREE
        self._in_flight -= 1
        self._pool.release(self._function)
        if not self._policy_inert or self._climit.observers:
            self._report(now, p, batch, outcome)
        kind = outcome.kind
        if kind is _SUCCESS:
            records = batch.records
        elif kind is _ERROR:
            self.errors += 1
            records = ()
        else:
            self.partial += 1
            records = self._deletable(batch, outcome)
        if records:
            self.deleted_records += len(records)
        return p, records

    def next_wakeup(self, now: float) -> float | None:
        """When :meth:`poll` may next have something to do without any report arriving.

        Parameters:
            now: the current time in seconds.

        Returns:
            ``now`` when :meth:`poll` has work already; else the earliest of: a paused or
            retiring poller's window deadline, a throttle retry, a held batch's
            visibility deadline, and (unless paused) the time the limit next changes by
            itself (the policy's growth), which starts a poller; ``None`` when nothing
            timed is pending.
        """
        if self._attention or self._pending_deletes:
            return now
        limit = self._climit.fixed  # _compute_limit, inlined: called after each poll
        if limit is None:
            limit = self._climit.value(now)
        self._limit = limit
        if limit > self._active:
            return now
        return self._next_timed(now, limit)

    def _next_timed(self, now: float, limit: int) -> float | None:
        """:meth:`next_wakeup` once nothing needs attention, no ``Delete`` is queued and
        no poller is to start (``limit``, as just computed, is not above ``_active``)."""
        if self._slot_wait and self._in_flight < limit:
            return now
        timers = self._timers
        while timers and timers[0][2].gen != timers[0][3]:
            _heappop(timers)
        when = timers[0][0] if timers else None
        if self._climit.fixed is None and (not self._paused or self._slot_wait):
            # a term at its bound announces no change (the aws policy's level at its
            # cap, which includes maximum_concurrency, says None)
            change = self._climit.next_change(now)
            if change is not None and (when is None or change < when):
                when = change
        if when is not None and when < now:
            return now
        return when

    # ------------------------------------------------------------------ internals

    def _compute_limit(self, now: float) -> int:
        limit = self._climit.fixed
        if limit is None:
            limit = self._climit.value(now)
        self._limit = limit
        return limit

    def _visit_attention(self, now: float, limit: int, actions: list[Action]) -> None:
        """Advance every poller on the attention list that has nothing outstanding."""
        attention = self._attention
        # a for loop also visits pollers appended while it runs (an abandon flags its
        # poller again)
        for poller in attention:
            poller.flagged = False
            if poller.state == _FREE:
                self._advance(poller, now, limit, actions)
        attention.clear()

    def _poller(self, index: int) -> _Poller:
        pollers = self._pollers
        while len(pollers) <= index:
            cfg = self.config
            pollers.append(_Poller(len(pollers), Batcher(cfg.batch_size,
                                                         cfg.maximum_batching_window)))
        return pollers[index]

    def _wake(self, p: _Poller) -> None:
        """Put a poller that has nothing outstanding on the attention list (cancelling a
        window wait: it may receive again)."""
        if p.state == _WINDOW:
            p.state = _FREE
            p.gen += 1
        if p.state == _FREE and not p.flagged:
            p.flagged = True
            self._attention.append(p)

    def _push_timer(self, when: float, p: _Poller) -> None:
        p.gen += 1
        self._seq += 1
        _heappush(self._timers, (when, self._seq, p, p.gen))

    def _release_held(self, p: _Poller) -> Batch:
        batch = p.held
        assert batch is not None
        p.held = None
        p.state = _FREE
        p.gen += 1
        self._held -= 1
        return batch

    def _on_timer(self, p: _Poller, now: float, limit: int, actions: list[Action]) -> None:
        state = p.state
        if state == _THROTTLED:
            self._dispatch(p, self._release_held(p), now, limit, actions)
        elif state == _SLOT:
            self._abandon(p, self._release_held(p), _REASON_NO_SLOT, actions)
        elif state == _WINDOW:
            p.state = _FREE
            p.gen += 1
            self._advance(p, now, limit, actions)

    def _advance(self, p: _Poller, now: float, limit: int, actions: list[Action]) -> None:
        """Decide for a poller with nothing outstanding: release, wait, receive or retire."""
        batcher = p.batcher
        if batcher.buffer:
            records = batcher.take_ready(now)
            if records:
                self._buffered -= len(records)
                batch = Batch(self._next_batch_id, p.index, records)
                self._next_batch_id += 1
                self._dispatch(p, batch, now, limit, actions)
                return
            deadline = batcher.deadline()
            assert deadline is not None
            if p.index >= limit or self._paused:
                p.state = _WINDOW
                self._push_timer(deadline, p)
                return
            wait = deadline - now
            room = batcher.room()
        elif p.index >= limit or self._paused:
            return  # parked (paused) or retired (above the limit)
        else:
            wait = LONG_POLL_WAIT
            room = batcher.empty_room
        if self._turns and (
            self._receiving or (self._turn_wait and self._granted is not p)
        ):
            # another poller's receive is out, or others wait already: wait for the turn
            # (behind them: one whose receive just came back asks again last)
            p.state = _TURN
            self._turn_wait.append(p)
            return
        p.state = _RECEIVING
        p.asked = now
        self._receiving += 1
        receive = p.receive
        if receive is None or receive.max_messages != room or receive.wait != wait:
            receive = p.receive = Receive(p.index, room, wait, self._visibility_timeout)
        actions.append(receive)

    def _grant_turn(self, now: float, limit: int, actions: list[Action]) -> None:
        """No receive is out: the first poller waiting for its turn receives (one that
        no longer wants to, paused or retired, passes the turn on by not asking)."""
        waiting = self._turn_wait
        while waiting and not self._receiving:
            q = waiting.popleft()
            if q.state != _TURN:
                continue
            q.state = _FREE
            self._granted = q
            self._advance(q, now, limit, actions)
            self._granted = None

    def _dispatch(
        self, p: _Poller, batch: Batch, now: float, limit: int, actions: list[Action]
    ) -> None:
        """Invoke a released batch, or hold it for a slot, or handle a throttle."""
        if self._in_flight >= limit:
            p.state = _SLOT
            p.held = batch
            self._held += 1
            self._push_timer(_earliest_visible(batch), p)
            self._slot_wait.append((p, p.gen))
            return
        if self._pool.try_acquire(self._function):
            p.state = _INVOKING
            p.held = batch
            self._in_flight += 1
            p.started = now
            p.started_in_flight = self._in_flight
            if self._by_batch is not None:
                self._by_batch[batch.id] = p
            self.invocations += 1
            actions.append(Invoke(batch))
            return
        self._throttled(p, batch, now, actions)

    def _throttled(self, p: _Poller, batch: Batch, now: float, actions: list[Action]) -> None:
        """The pool refused ``batch`` a slot: retry after a backoff, or abandon it when
        the retry would come after its visibility timeout."""
        self.throttles += 1
        self._policy.on_throttle(now)
        if self._climit.observers:
            self._climit.observe(now, Sample(now, now, _THROTTLE, 0, self._in_flight))
        n = batch.throttles + 1
        batch = Batch(batch.id, batch.poller, batch.records, n)
        shift = n - 1
        if shift >= 30:
            delay = THROTTLE_BACKOFF_MAX
        else:
            delay = THROTTLE_BACKOFF_BASE * (1 << shift)
            delay = min(delay, THROTTLE_BACKOFF_MAX)
        retry = now + delay
        if retry >= _earliest_visible(batch):
            self._abandon(p, batch, _REASON_THROTTLED.format(n=n), actions)
            return
        p.state = _THROTTLED
        p.held = batch
        self._held += 1
        self._push_timer(retry, p)

    def _abandon(self, p: _Poller, batch: Batch, reason: str, actions: list[Action]) -> None:
        actions.append(Abandon(batch, reason))
        self.abandoned += 1
        p.state = _FREE
        p.held = None
        if not p.flagged:
            p.flagged = True
            self._attention.append(p)


def _build_limit(
    config: MappingConfig, policy: ScalingPolicy, pool: ConcurrencyPool
) -> ConcurrencyLimit:
    """A queue mapping's limit: ``maximum_concurrency``, then for sluicegate's own
    policies (``scaling`` other than ``"aws"``) ``reserved_concurrency`` and ``pool``,
    then with ``scaling="adaptive"`` the ``adaptive`` term
    (:class:`~sluicegate.core.adaptive.AdaptiveLimit`, which observes the samples), then
    ``scaling`` (the policy's level). See :class:`QueueMapping`."""
    limit = ConcurrencyLimit([Fixed(TERM_MAXIMUM_CONCURRENCY, config.maximum_concurrency)])
    if config.scaling != "aws":
        function = config.function
        limit.add(_reserved_term(pool, function))
        limit.add(_pool_term(pool, function))
        pool.watch(_PoolTerms(limit, function))
    if config.scaling == "adaptive":
        limit.add(AdaptiveLimit(config.adaptive))
    limit.add(PolicyTerm(policy))
    return limit


class _PoolTerms:
    """Puts a fixed mapping's ``reserved_concurrency`` and ``pool`` terms as they stand
    when a function is registered or re-registered (:meth:`ConcurrencyPool.watch`).

    An object rather than a closure: a compiled build's closure keeps itself in its own
    environment, a reference cycle (the simulator runs with the cyclic collector paused).
    """

    __slots__ = ("function", "limit")

    def __init__(self, limit: ConcurrencyLimit, function: str) -> None:
        self.limit = limit
        self.function = function

    def __call__(self, pool: ConcurrencyPool) -> None:
        self.limit.replace(_reserved_term(pool, self.function))
        self.limit.replace(_pool_term(pool, self.function))


# A reservation of 0 is AWS's off switch for the function: every invocation is throttled
# and the messages return (to the dead-letter queue in the end). It stops the function,
# not the mapping: a zero binds neither term, and the pool's throttles do what they do
# for an aws mapping.


def _reserved_term(pool: ConcurrencyPool, function: str) -> Fixed:
    """The ``reserved_concurrency`` term: the function's reservation (unbounded when it
    has none, or 0)."""
    return Fixed(TERM_RESERVED_CONCURRENCY, pool.reserved_concurrency(function) or None)


def _pool_term(pool: ConcurrencyPool, function: str) -> Fixed:
    """The ``pool`` term: the most slots the function can ever hold (unbounded at 0)."""
    return Fixed(TERM_POOL, pool.capacity(function) or None)


def _earliest_visible(batch: Batch) -> float:
    """When the first record of ``batch`` becomes visible again in its queue."""
    return min([r.visible_at for r in batch.records])
