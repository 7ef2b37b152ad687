"""A function's internal queue of asynchronous invocations, as one more mapping.

On AWS an event invoked asynchronously (``InvocationType=Event``, an event bus rule, a
topic subscription, a destination) waits in the function's internal queue; Lambda's
pollers run it under the function's reserved concurrency (or the account's unreserved
pool), retry function errors up to ``maximum_retry_attempts`` times (0-2, default 2),
about one minute after the first failure and two after the second, discard events older
than ``maximum_event_age`` (60 s - 6 h, default 6 h), and hand the outcome to the
function's destinations (on success, on failure) and dead-letter queue
(lambda-semantics.md section 2).

In sluicegate the internal queue is a standard queue of the store named
``async:FUNCTION`` (:func:`async_queue`): durable, shared by every process, its depth and
oldest age in status like any queue's. :class:`AsyncEventMapping` is the
:class:`~sluicegate.core.mapping.QueueMapping` of that queue (batch size 1; configured as
``fixed`` so the function's reserved concurrency and pool share are terms of its limit:
it never runs more than the function may), with the async rules around it:

- each event is checked before its attempt (:meth:`AsyncEventMapping.admit`): one older
  than ``maximum_event_age`` is concluded ``EventAgeExceeded``, and every event of a
  function whose reserved concurrency is 0 is concluded ``ZeroReservedConcurrency`` at
  once, without retries (both without invoking);
- its pollers follow its traffic (:class:`EventLevel`, a term of its limit): one while
  idle, up to the function's concurrency under a burst;
- the one outcome rule (:func:`~sluicegate.core.results.invocation_outcome`) with no
  partial batch responses: a returned value is success, an exception, a timeout or a
  response that is not JSON is a function error;
- success: :class:`Conclude` ``Success`` (the on-success destination gets the invocation
  record); a function error with retries left: :class:`Retry` (the event hides for the
  retry's wait, :data:`RETRY_DELAYS`, then runs again); with none left:
  :class:`Conclude` ``RetriesExhausted`` (the on-failure destination gets the record, the
  dead-letter queue the event itself).

A :class:`Conclude` is performed as deliveries first, then the event's delete, so a crash
between them delivers again rather than loses (destinations are at least once, as on
AWS). The inner queue mapping is told every invocation failed, so it never deletes an
event itself: the settle actions here do.

How many times an event was attempted is its receive count
(``approximateInvokeCount``): a crash during an attempt counts as one, as does a
throttle that outlived the event's hiding time (rare: the mapping's limit keeps it within
the function's concurrency).

Every method takes ``now`` in seconds; none reads a clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from sluicegate.core.config import ASYNC_QUEUE_NAME, FunctionConfig, MappingConfig, QueueConfig
from sluicegate.core.limit import ConcurrencyLimit
from sluicegate.core.mapping import MappingStatistics, QueueMapping
from sluicegate.core.pool import ConcurrencyPool
from sluicegate.core.results import InvocationResult, invocation_outcome
from sluicegate.core.scaling import ScalingPolicy, ScalingStatistics
from sluicegate.core.settings import ASYNC, SETTINGS
from sluicegate.core.streams import iso_instant
from sluicegate.core.types import (
    Abandon,
    Action,
    Batch,
    BatchOutcome,
    Invoke,
    OutcomeKind,
    QueueRecord,
    Receive,
)
from sluicegate.errors import ConfigError

__all__ = [
    "ASYNC_QUEUE_PREFIX",
    "CONDITION_EVENT_AGE_EXCEEDED",
    "CONDITION_RETRIES_EXHAUSTED",
    "CONDITION_SUCCESS",
    "CONDITION_ZERO_RESERVED",
    "RETRY_DELAYS",
    "TERM_EVENTS",
    "THROTTLE_BACKOFF_MAX",
    "TOPIC_ATTRIBUTE",
    "AsyncAction",
    "AsyncConfig",
    "AsyncEventMapping",
    "AsyncStatistics",
    "Conclude",
    "Destination",
    "EventLevel",
    "EventPolicy",
    "Retry",
    "async_queue",
    "async_queue_config",
    "function_of_async_queue",
    "invocation_record",
]

ASYNC_QUEUE_PREFIX: Final = "async:"
"""Names of the internal queues: ``async:FUNCTION`` (a ``:`` no user queue may have)."""

TOPIC_ATTRIBUTE: Final = "sluicegate.topic"
"""The message attribute that marks an event published to a topic a function subscribes
to: the topic's name (the runtime delivers SNS's event for it)."""

RETRY_DELAYS: Final = (60.0, 120.0)
"""Seconds before the second and the third attempt of a failed event: about one minute
after the first failure, two after the second (lambda-semantics.md section 2)."""

THROTTLE_BACKOFF_MAX: Final = 300.0
"""The longest wait between two retries of a throttled event: 5 minutes, AWS's
(lambda-semantics.md section 2)."""

THROTTLE_REQUEUE_BASE: Final = 30.0
"""The first wait of a throttled event put back in its queue: where the queue mapping's
own throttle backoff (1 s doubling to 30 s while the event stays hidden) leaves off."""

CONDITION_SUCCESS: Final = "Success"
CONDITION_RETRIES_EXHAUSTED: Final = "RetriesExhausted"
CONDITION_EVENT_AGE_EXCEEDED: Final = "EventAgeExceeded"
CONDITION_ZERO_RESERVED: Final = "ZeroReservedConcurrency"
"""An event of a function with reserved concurrency 0: AWS sends it to the failure path at
once without documenting the condition's name; sluicegate writes this one."""

ERROR_CODE_FUNCTION: Final = "200"
"""A dead-lettered event's ``ErrorCode`` after a function error: the status of the
invoke that returned the function's error."""

MAX_ERROR_MESSAGE: Final = 1024
"""Characters of the error message a dead-lettered event carries (its first 1 KB)."""

DestinationKind = Literal["queue", "topic", "function", "bus"]
_KINDS: Final = ("queue", "topic", "function", "bus")


def async_queue(function: str) -> str:
    """The name of ``function``'s internal queue of asynchronous invocations."""
    return ASYNC_QUEUE_PREFIX + function


VISIBILITY_MARGIN: Final = 30
"""Seconds beyond the function's timeout an event stays hidden while it runs, so a slow
shutdown or a cold start does not let it reappear during its attempt."""

ASYNC_RETENTION: Final = 6 * 3600 + 24 * 3600
"""Seconds an internal queue keeps an event: the longest ``maximum_event_age`` and a day
beyond (events older than their function's setting are discarded when read, not lost to
retention)."""


def async_queue_config(function: FunctionConfig, *, max_message_size: int = 262_144
                       ) -> QueueConfig:
    """The internal queue of ``function``: its visibility timeout covers an attempt
    (the function's timeout and :data:`VISIBILITY_MARGIN`), and it keeps events for
    :data:`ASYNC_RETENTION`; the runtime and the simulator both build it here."""
    return QueueConfig(
        async_queue(function.name),
        visibility_timeout=math.ceil(function.timeout) + VISIBILITY_MARGIN,
        retention_period=ASYNC_RETENTION,
        max_message_size=max_message_size,
    )


def function_of_async_queue(name: str) -> str | None:
    """The function whose internal queue ``name`` is, or ``None`` for any other queue."""
    match = ASYNC_QUEUE_NAME.match(name)
    return match.group(1) if match else None


@dataclass(frozen=True, slots=True)
class Destination:
    """Where an outcome goes: a queue, a topic, a function (invoked asynchronously) or an
    event bus.

    Written ``"queue:NAME"``, ``"topic:NAME"``, ``"function:NAME"`` or ``"bus:NAME"``
    (see :meth:`parse`).
    """

    kind: DestinationKind
    name: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"

    @classmethod
    def parse(cls, value: Any, parameter: str, context: str,
              kinds: tuple[str, ...] = _KINDS) -> Destination:
        """``value`` (a :class:`Destination` or ``"KIND:NAME"``) as a destination.

        Raises:
            ConfigError: not one of ``kinds``, or no name.
        """
        allowed = " or ".join(f"'{k}:NAME'" for k in kinds)
        if isinstance(value, Destination):
            if value.kind not in kinds:
                raise ConfigError(parameter, str(value), allowed, context)
            return value
        if not isinstance(value, str) or ":" not in value:
            raise ConfigError(parameter, value, allowed, context)
        kind, _, name = value.partition(":")
        if kind not in kinds or not name:
            raise ConfigError(parameter, value, allowed, context)
        return cls(kind, name)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class AsyncConfig:
    """A function's settings for asynchronous invocation (AWS's event invoke config and
    dead-letter queue).

    Parameters:
        function: the function's name.
        maximum_retry_attempts: retries after a function error, 0-2 (default 2).
        maximum_event_age: seconds an event may wait, 60-21,600 (default 6 hours).
        on_success: where the invocation record of a success goes (``None``: nowhere).
        on_failure: where the invocation record of a discarded event goes.
        dead_letter: a queue or topic that receives a discarded event itself, with
            attributes ``RequestID``, ``ErrorCode`` and ``ErrorMessage``.
        async_time_scale: multiplies the waits before retries (:data:`RETRY_DELAYS`); 1 is
            AWS's, less for tests and demos.
    """

    function: str
    maximum_retry_attempts: int = SETTINGS["maximum_retry_attempts"].default_for(ASYNC)
    maximum_event_age: int = SETTINGS["maximum_event_age"].default
    on_success: Destination | None = None
    on_failure: Destination | None = None
    dead_letter: Destination | None = None
    async_time_scale: float = SETTINGS["async_time_scale"].default

    def __post_init__(self) -> None:
        ctx = f"function {self.function!r}"
        set_ = object.__setattr__
        set_(self, "maximum_retry_attempts", SETTINGS["maximum_retry_attempts"].check(
            self.maximum_retry_attempts, ctx, ASYNC))
        set_(self, "maximum_event_age",
             SETTINGS["maximum_event_age"].check(self.maximum_event_age, ctx))
        set_(self, "async_time_scale",
             SETTINGS["async_time_scale"].check(self.async_time_scale, ctx))
        for name in ("on_success", "on_failure"):
            value = getattr(self, name)
            if value is not None:
                set_(self, name, Destination.parse(value, name, ctx))
        if self.dead_letter is not None:
            set_(self, "dead_letter", Destination.parse(
                self.dead_letter, "dead_letter", ctx, kinds=("queue", "topic")))

    def retry_delay(self, attempts: int) -> float:
        """Seconds before the next attempt of an event attempted ``attempts`` times."""
        return RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1] * self.async_time_scale

    @property
    def mapping(self) -> MappingConfig:
        """The queue mapping of the internal queue: one event per invocation, configured
        as ``fixed`` so that the function's reserved concurrency and pool share are terms
        of its limit (and :class:`EventLevel` another)."""
        return MappingConfig(async_queue(self.function), self.function, batch_size=1,
                             scaling="fixed")


# ---------------------------------------------------------------------- scaling


TERM_EVENTS: Final = "events"
"""The name of an internal queue's :class:`EventLevel` term."""


class EventLevel:
    """How many pollers an internal queue runs: a term of its limit (``"events"``),
    one while it is idle, one more for every receive that brings an event, one fewer for
    every receive that comes back empty, between 1 and ``maximum``.

    A burst doubles the pollers with every round of reads until the function's
    concurrency binds, and an idle queue keeps one long poll; so a function's execution
    environments and threads (sized from this level) follow its asynchronous traffic
    instead of its reservation. It is each process's own (a cluster shares the
    function's concurrency, not this level), like an adaptive limit. sluicegate's
    choice: AWS does not document how its internal pollers scale, only that they respect
    the function's concurrency. Errors and throttles do not move it (the retries' waits
    already space a failing event).
    """

    __slots__ = ("_level", "_maximum")

    name: Final = TERM_EVENTS

    def __init__(self, maximum: int) -> None:
        if isinstance(maximum, bool) or not isinstance(maximum, int) or maximum < 1:
            raise ConfigError("maximum", maximum, "an integer >= 1", "event level")
        self._maximum = maximum
        self._level = 1

    def __repr__(self) -> str:
        return f"EventLevel({self._level}/{self._maximum})"

    @property
    def maximum(self) -> int:
        return self._maximum

    def value(self, now: float) -> int:
        return self._level

    def next_change(self, now: float) -> float | None:
        return None

    def read(self, count: int) -> None:
        """A receive brought ``count`` events (0: it came back empty)."""
        if count:
            if self._level < self._maximum:
                self._level += 1
        elif self._level > 1:
            self._level -= 1


class EventPolicy:
    """The scaling policy of an internal queue: its limit is the most the function may
    run (a constant the cluster shares, as a fixed policy's); every receive is reported to
    the queue's :class:`EventLevel`, the term that follows the traffic below it."""

    __slots__ = ("_level", "_maximum")

    def __init__(self, maximum: int, level: EventLevel) -> None:
        self._maximum = maximum
        self._level = level

    def __repr__(self) -> str:
        return f"EventPolicy({self._maximum}, {self._level!r})"

    def limit(self, now: float) -> int:
        return self._maximum

    def on_receive(self, now: float, count: int) -> None:
        self._level.read(count)

    def on_outcome(self, now: float, outcome: BatchOutcome) -> None:
        """Ignored."""

    def on_throttle(self, now: float) -> None:
        """Ignored."""

    def next_change(self, now: float) -> float | None:
        return None

    def statistics(self, now: float) -> ScalingStatistics:
        level = self._level.value(now)
        return ScalingStatistics("event", level, float(level), False, None)


# ---------------------------------------------------------------------- actions


@dataclass(slots=True)
class Retry:
    """Hide the event of ``record`` for ``delay`` seconds: it runs again after them
    (its receive count, the attempts, goes up when it is read again)."""

    record: QueueRecord
    delay: float
    reason: str


@dataclass(slots=True)
class Conclude:
    """The event of ``record`` is done: deliver, then delete it.

    In order: ``record_for`` (the invocation record) to ``destination`` when there is
    one, the event itself to ``dead_letter`` (with ``RequestID``, ``ErrorCode`` and
    ``ErrorMessage`` attributes) when there is one, then delete the event from the
    internal queue. A delivery that fails is counted (``DestinationDeliveryFailures``,
    ``DeadLetterErrors``) and the event is still deleted, as AWS does.

    Attributes:
        record: the event's queue record.
        condition: ``Success``, ``RetriesExhausted``, ``EventAgeExceeded`` or
            ``ZeroReservedConcurrency``.
        request_id: the event's request id (its message id: the same for every attempt).
        destination: on success the on-success destination, else the on-failure one.
        invocation_record: what ``destination`` receives (``None`` without one).
        dead_letter: the dead-letter queue or topic of a failure (``None``: none).
        error_code, error_message: the dead-lettered event's attributes.
    """

    record: QueueRecord
    condition: str
    request_id: str
    destination: Destination | None
    invocation_record: dict[str, Any] | None
    dead_letter: Destination | None
    error_code: str = ""
    error_message: str = ""

    @property
    def success(self) -> bool:
        return self.condition == CONDITION_SUCCESS


AsyncAction = Action | Retry | Conclude


def invocation_record(
    *,
    now: float,
    request_id: str,
    function_arn: str,
    condition: str,
    invoke_count: int,
    request_payload: Any,
    response_payload: Any,
    function_error: str | None,
) -> dict[str, Any]:
    """The invocation record a destination receives, shaped as AWS documents it
    (lambda-semantics.md section 2).

    Parameters:
        now: when the event concluded (the record's ``timestamp``).
        request_id: the event's request id.
        function_arn: the function's ARN (``...:function:NAME:$LATEST`` on AWS; the
            driver names it).
        condition: see :class:`Conclude`.
        invoke_count: the attempts made (0: never invoked).
        request_payload: the event.
        response_payload: what the last attempt returned, or its error document
            (``{"errorMessage", "errorType"}``); ``None`` when never invoked.
        function_error: ``"Unhandled"`` after a function error, else ``None``.

    Returns:
        ``{"version": "1.0", "timestamp", "requestContext", "requestPayload",
        "responseContext", "responsePayload"}``; ``responseContext`` is empty and
        ``responsePayload`` absent when the event was never invoked (sluicegate's
        choice: AWS does not document that case).
    """
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": iso_instant(now),
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "requestPayload": request_payload,
        "responseContext": {},
    }
    if invoke_count:
        response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
        if function_error:
            response["functionError"] = function_error
        record["responseContext"] = response
        record["responsePayload"] = response_payload
    return record


@dataclass(frozen=True, slots=True)
class AsyncStatistics:
    """An async mapping's counters, in AWS's metric names where it has them.

    Attributes:
        received: events read for their first attempt (``AsyncEventsReceived`` counts
            them when they are accepted; see the runtime's metrics).
        last_age: seconds the last event read for its first attempt had waited
            (``AsyncEventAge``).
        succeeded: events whose attempt succeeded.
        retried: attempts that failed with retries left.
        dropped: events discarded on the failure path (``AsyncEventsDropped``), by
            condition in ``by_condition``.
    """

    received: int
    last_age: float
    succeeded: int
    retried: int
    dropped: int
    by_condition: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Result:
    response: Any
    error_type: str
    error_message: str


class AsyncEventMapping:
    """The mapping of one function's internal queue (see the module docstring); a
    :class:`~sluicegate.core.protocol.MappingCore` like a queue mapping, whose records
    are events.

    Parameters:
        config: the function's asynchronous settings.
        reserved_concurrency: the function's reservation (0: every event fails at once).
        function_arn: the function's ARN, quoted in invocation records.
        visibility_timeout: seconds a read event stays hidden while it runs (at least
            the function's timeout).
        pool, policy, now: as :class:`~sluicegate.core.mapping.QueueMapping`'s.
        accepted_at: when a record's event was accepted (its enqueue time), in seconds.
        event_of: a record's event (the invoked payload), for invocation records and
            error documents; called only when one is built.
    """

    def __init__(
        self,
        config: AsyncConfig,
        *,
        reserved_concurrency: int | None,
        function_arn: str,
        visibility_timeout: float,
        pool: ConcurrencyPool,
        now: float,
        accepted_at: Callable[[QueueRecord], float],
        event_of: Callable[[QueueRecord], Any],
        policy: ScalingPolicy | None = None,
    ) -> None:
        self.config = config
        self.mapping_config = config.mapping
        self._zero = reserved_concurrency == 0
        if policy is None:
            policy = self.default_policy(config.function, reserved_concurrency, pool)
        self.level: EventLevel = policy._level  # type: ignore[attr-defined]
        if self._zero:
            # AWS fails these events at once: the attempt is where sluicegate checks, and
            # a reservation of 0 would throttle every attempt in the account's pool
            pool = ConcurrencyPool()
        self.inner = QueueMapping(self.mapping_config, visibility_timeout=visibility_timeout,
                                  pool=pool, policy=policy, now=now)
        self.inner.concurrency_limit.add(self.level)
        self._arn = function_arn
        self._accepted_at = accepted_at
        self._event_of = event_of
        self._results: dict[int, _Result] = {}
        self._batches: dict[int, Batch] = {}
        """The batches in flight, by id (the queue mapping keeps its own privately)."""
        self._pending: list[Retry | Conclude] = []
        self._throttled: dict[str, int] = {}
        """Per event, its throttles that outlived its hiding time (forgotten when it
        concludes)."""
        self._counted: set[str] = set()
        """Events counted as received (their first attempt), until they conclude."""
        self.requeued = 0
        """Throttled events put back in the queue."""
        self.received = 0
        self.last_age = 0.0
        self.succeeded = 0
        self.retried = 0
        self.dropped = 0
        self.errors = 0
        """Attempts that ended in a function error."""
        self.by_condition: dict[str, int] = {}

    @staticmethod
    def default_policy(function: str, reserved_concurrency: int | None,
                       pool: ConcurrencyPool) -> EventPolicy:
        """The policy of an internal queue (:class:`EventPolicy`): at most as many
        pollers as the function may run, its reservation or else its share of the pool
        (whose term binds when other functions use it); a reservation of 0 keeps one, to
        fail its events. The pollers actually running follow the traffic below it
        (:class:`EventLevel`)."""
        maximum = 1 if reserved_concurrency == 0 else (
            reserved_concurrency or pool.capacity(function))
        return EventPolicy(maximum, EventLevel(max(1, maximum)))

    def __getattr__(self, name: str) -> Any:
        # what the drivers read of a queue mapping beside the protocol (counters such as
        # ``partial``, ``abandoned``, ``receiving``): the inner mapping's
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"AsyncEventMapping({self.config.function}, inner={self.inner!r})"

    # ------------------------------------------------------------------ protocol
    @property
    def name(self) -> str:
        return self.mapping_config.name

    def poll(self, now: float) -> list[AsyncAction]:
        """The settle actions of this mapping first (in the order they were decided),
        then the queue mapping's reads and the invocations of the events that passed
        their check before the attempt (:meth:`admit`; it never deletes)."""
        actions: list[AsyncAction] = []
        inner = self.inner
        while True:
            settled = False
            for action in inner.poll(now):
                kind = type(action)
                if kind is Invoke and not self.admit(now, action.batch):  # type: ignore[union-attr]
                    settled = True  # its poller is free: the next poll has its receive
                    continue
                if kind is Abandon:
                    self._requeue(action)  # type: ignore[arg-type]
                    continue
                actions.append(action)
            if not settled:
                break
        if self._pending:
            actions[:0] = self._pending
            self._pending.clear()
        return actions

    def _requeue(self, abandoned: Abandon) -> None:
        """A throttled event outlived its hiding time (the queue mapping gave it up): put
        it back for a wait that doubles from :data:`THROTTLE_REQUEUE_BASE` up to
        :data:`THROTTLE_BACKOFF_MAX`, until its maximum age; a throttle is not an
        attempt (its receive is not counted as one, see :meth:`attempts`)."""
        for record in abandoned.batch.records:
            n = self._throttled.get(record.message_id, 0) + 1
            self._throttled[record.message_id] = n
            delay = min(THROTTLE_BACKOFF_MAX, THROTTLE_REQUEUE_BASE * (1 << min(n - 1, 8)))
            self.requeued += 1
            self._pending.append(Retry(record, delay, f"throttled: {abandoned.reason}"))

    def _forget(self, message_id: str) -> None:
        self._throttled.pop(message_id, None)
        self._counted.discard(message_id)

    def attempts(self, record: QueueRecord) -> int:
        """Attempts of the event, this read's included: its receives, less those that
        ended in a throttle that outlived the event's hiding time (as this process saw
        them: approximate across processes, as ``approximateInvokeCount`` is on AWS)."""
        return record.receive_count - self._throttled.get(record.message_id, 0)

    def admit(self, now: float, batch: Batch) -> bool:
        """Check an event before its attempt, as AWS does: one older than
        ``maximum_event_age``, or any of a function with reserved concurrency 0, is
        concluded on the failure path without running (its slot freed at once), and
        ``False`` returned; else it is noted for :meth:`finished` and ``True`` returned.
        A driver that takes invocations from :meth:`poll` never needs to call it."""
        (record,) = batch.records
        age = now - self._accepted_at(record)
        if self.attempts(record) == 1 and record.message_id not in self._counted:
            self._counted.add(record.message_id)
            self.received += 1
            self.last_age = age if age > 0.0 else 0.0
        limit = self.config.maximum_event_age
        if self._zero:
            condition, why = CONDITION_ZERO_RESERVED, "the function's reserved concurrency is 0"
        elif age > limit:
            condition = CONDITION_EVENT_AGE_EXCEEDED
            why = f"the event waited {age:.0f} s, more than maximum_event_age {limit} s"
        else:
            self._batches[batch.id] = batch
            return True
        self.inner.finished(now, batch.id, BatchOutcome(OutcomeKind.ERROR, batch.message_ids,
                                                        why))
        # an earlier attempt's response is not kept across reads: the record says how
        # many attempts there were, not what they returned
        self._fail(now, record, condition, self.attempts(record) - 1, None, condition, why)
        return False

    def read_done(self, now: float, read: Receive, records: Sequence[QueueRecord], *,
                  latest: int | None = None) -> None:
        """A receive's events, to the queue mapping (its policy tells the
        :class:`EventLevel`)."""
        self.inner.read_done(now, read, records)

    def outcome_of(self, result: InvocationResult, batch: Batch) -> BatchOutcome:
        """The one rule, without partial batch responses; the response or the error is
        kept for the invocation record."""
        outcome = invocation_outcome(result, batch, report_batch_item_failures=False)
        if outcome.kind is OutcomeKind.SUCCESS:
            self._results[batch.id] = _Result(result.response, "", "")
        else:
            error = result.error
            error_type = ("TimeoutError" if result.timed_out else
                          type(error).__name__ if error is not None else "Runtime.MarshalError")
            message = (str(error) if error is not None and not result.timed_out
                       else outcome.reason)
            self._results[batch.id] = _Result(None, error_type, message)
        return outcome

    def finished(self, now: float, batch_id: int, outcome: BatchOutcome, *,
                 request_id: str | None = None) -> None:
        """Settle the event: success, a retry, or the failure path."""
        batch = self._batches.pop(batch_id)
        result = self._results.pop(batch_id, None)
        # the queue mapping deletes nothing: every settlement is an action of this one
        self.inner.finished(now, batch_id, BatchOutcome(
            OutcomeKind.ERROR, batch.message_ids, outcome.reason, outcome.latency,
            outcome.overload))
        (record,) = batch.records
        attempts = self.attempts(record)
        if outcome.kind is OutcomeKind.SUCCESS:
            self.succeeded += 1
            self._forget(record.message_id)
            destination = self.config.on_success
            self._pending.append(Conclude(
                record, CONDITION_SUCCESS, record.message_id, destination,
                None if destination is None else self._record(
                    now, record, CONDITION_SUCCESS, attempts, result, None),
                None,
            ))
            return
        self.errors += 1
        if attempts <= self.config.maximum_retry_attempts:
            self.retried += 1
            self._pending.append(Retry(record, self.config.retry_delay(attempts),
                                       outcome.reason))
            return
        error_type = result.error_type if result is not None else "Unhandled"
        error_message = result.error_message if result is not None else outcome.reason
        self._fail(now, record, CONDITION_RETRIES_EXHAUSTED, attempts, result,
                   error_type, error_message, error_code=ERROR_CODE_FUNCTION)

    def next_wakeup(self, now: float) -> float | None:
        if self._pending:
            return now
        return self.inner.next_wakeup(now)

    # ------------------------------------------------------------------ the failure path
    def _fail(self, now: float, record: QueueRecord, condition: str, attempts: int,
              result: _Result | None, error_type: str, error_message: str, *,
              error_code: str | None = None) -> None:
        self.dropped += 1
        self._forget(record.message_id)
        self.by_condition[condition] = self.by_condition.get(condition, 0) + 1
        destination = self.config.on_failure
        self._pending.append(Conclude(
            record, condition, record.message_id, destination,
            None if destination is None else self._record(
                now, record, condition, attempts, result, error_type),
            self.config.dead_letter,
            error_code if error_code is not None else condition,
            error_message[:MAX_ERROR_MESSAGE],
        ))

    def _record(self, now: float, record: QueueRecord, condition: str, attempts: int,
                result: _Result | None, error_type: str | None) -> dict[str, Any]:
        response: Any = None
        function_error = None
        if result is not None:
            if result.error_type:
                function_error = "Unhandled"
                response = {"errorMessage": result.error_message,
                            "errorType": result.error_type}
            else:
                response = result.response
        return invocation_record(
            now=now, request_id=record.message_id, function_arn=self._arn,
            condition=condition, invoke_count=attempts, request_payload=self._event_of(record),
            response_payload=response, function_error=function_error,
        )

    # ------------------------------------------------------------------ limit, control
    @property
    def concurrency_limit(self) -> ConcurrencyLimit:
        return self.inner.concurrency_limit

    @property
    def limit(self) -> int:
        return self.inner.limit

    def limit_reason(self, now: float) -> str:
        return self.inner.limit_reason(now)

    def pause(self, now: float) -> None:
        self.inner.pause(now)

    def resume(self, now: float) -> None:
        self.inner.resume(now)

    @property
    def paused(self) -> bool:
        return self.inner.paused

    @property
    def idle(self) -> bool:
        return not self._pending and self.inner.idle

    @property
    def stopping(self) -> bool:
        return self.inner.paused and not self.idle

    @property
    def in_flight(self) -> int:
        return self.inner.in_flight

    @property
    def reading(self) -> int:
        return self.inner.reading

    @property
    def throttles(self) -> int:
        return self.inner.throttles

    @property
    def invocations(self) -> int:
        return self.inner.invocations

    @property
    def filtered_records(self) -> int:
        return 0

    def statistics(self) -> MappingStatistics:
        inner = self.inner.statistics()
        return MappingStatistics(
            limit=inner.limit, in_flight=inner.in_flight, receiving=inner.receiving,
            buffered=inner.buffered, held=inner.held, invocations=inner.invocations,
            errors=self.errors, partial=0, throttles=inner.throttles,
            abandoned=inner.abandoned, received_records=inner.received_records,
            deleted_records=self.succeeded + self.dropped, paused=inner.paused,
        )

    def async_statistics(self) -> AsyncStatistics:
        return AsyncStatistics(self.received, self.last_age, self.succeeded, self.retried,
                               self.dropped, dict(self.by_condition))
