"""Per-second metrics of event source mappings, in CloudWatch's terms.

The driver reports what happens (an invocation started or finished, a throttle,
messages received, deleted or dead-lettered) and sets gauges it reads from the store
(visible and in-flight messages, age of the oldest message, the mapping's concurrency
limit). :class:`Metrics` aggregates them into one-second buckets per mapping, plus the
aggregate of all mappings under the name :data:`ALL_MAPPINGS`.

Time: every bucket is a whole epoch second ``int(clock())`` read from the injected clock
(``time.time`` by default). All mappings share the current second; when the clock has
moved past it, the next call (any report, :meth:`Metrics.tick`, :meth:`Metrics.last_complete`)
closes it, files a :class:`MetricsSecond` per mapping in a bounded history, and calls the
listeners. A clock that steps backwards is treated as standing still. Seconds in which
nothing was reported still get a bucket (zero counts, the concurrency then in flight, the
last gauges), so a series has no holes; a driver calls :meth:`Metrics.tick` at least once a
second to have listeners called on time.

Counting rules (CloudWatch's): an invocation and its errors count in the second it
finished, with its duration; ``concurrent_executions`` is the most invocations in flight
at any moment of the second (an invocation running through a whole second counts in it).
Durations are kept for the current second only, so memory stays flat; the history keeps
:data:`DEFAULT_HISTORY` seconds by default.

Not thread-safe: call it from the event loop's thread.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from sluicegate.errors import ConfigError

__all__ = [
    "ALL_MAPPINGS",
    "DEFAULT_HISTORY",
    "Metrics",
    "MetricsListener",
    "MetricsSecond",
    "MetricsTotals",
]

ALL_MAPPINGS = "*"
"""Name of the series that aggregates every mapping: counts are summed, concurrency is
the true peak of all invocations in flight together, gauges are summed (the oldest age is
the maximum). A queue feeding two mappings counts its messages twice in the gauges."""

DEFAULT_HISTORY = 3600
"""Completed seconds kept per mapping (one hour)."""

_P99 = 0.99

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MetricsSecond:
    """One mapping's metrics for one second.

    Attributes:
        mapping: the mapping's name, or :data:`ALL_MAPPINGS`.
        second: the bucket, in whole epoch seconds (it covers ``[second, second + 1)``).
        invocations: invocations that finished in the second (success or function error).
        errors: those of them that failed (exception, timeout, invalid response).
        throttles: invocations refused for lack of concurrency.
        messages_received, messages_deleted, messages_dead_lettered: messages.
        concurrent_executions: most invocations in flight at once during the second.
        duration_mean, duration_p99: seconds, over the invocations that finished in the
            second (p99 by nearest rank); ``None`` when none finished.
        visible, in_flight: the queue's messages, as last set; ``None`` if never set.
        oldest_age: seconds since the oldest message was sent, as last set.
        concurrency_limit: the mapping's concurrency limit, as last set.
        limit_reason: the term of the mapping's limit that binds, as last set
            (``"scaling"``, ``"maximum_concurrency"``, ``"cluster"``, ``"shards"``, ...:
            :meth:`sluicegate.core.limit.ConcurrencyLimit.reason`); ``None`` if never set.
            For :data:`ALL_MAPPINGS`, the term when every mapping's is the same one.
        iterator_age_ms: stream mappings: the largest IteratorAge of the batches invoked
            in the second (milliseconds from a batch's last record's arrival to its
            invocation); ``None`` when none was (AWS emits none while idle).
        cold_starts: execution environments started in the second for the mapping's
            function (the simulator's ``cold_starts``); a function feeding several
            mappings counts its cold starts in the aggregate only.
        breaker: the state of the mapping's circuit breaker (``"closed"``, ``"open"``,
            ``"half_open"``), as last set; ``None`` for a mapping without one (and for
            :data:`ALL_MAPPINGS`).
        paused: whether the mapping was paused (``sluicegate pause``, a live
            ``enabled=false``), as last set; for :data:`ALL_MAPPINGS`, whether all were.
        semaphores: for a mapping that needs semaphores (``app.map(...,
            semaphores=...)``), ``(name, held, limit)`` of each: the slots this process's
            mapping holds of it (its invocations' and the spare it keeps ready) and the
            semaphore's limit, as last set; empty otherwise. For :data:`ALL_MAPPINGS`,
            the slots of each semaphore all of this process's mappings hold.
            ``sluicegate semaphores`` lists every process's holders.
        async_events_received: a function's internal queue of asynchronous invocations
            (mapping ``async:FUNCTION->FUNCTION``): events read for their first attempt
            (AWS's ``AsyncEventsReceived``).
        async_event_age_ms: the longest an event read for its first attempt in the
            second had waited, in milliseconds (``AsyncEventAge``); ``None`` when none.
        async_events_dropped: events discarded on the failure path (retries exhausted,
            too old, reserved concurrency 0), whether or not a destination or
            dead-letter queue received them (``AsyncEventsDropped``).
        dead_letter_errors: discarded events the dead-letter queue or topic could not
            take (``DeadLetterErrors``).
        destination_delivery_failures: invocation records a destination could not take
            (``DestinationDeliveryFailures``).
    """

    mapping: str
    second: int
    invocations: int = 0
    errors: int = 0
    throttles: int = 0
    messages_received: int = 0
    messages_deleted: int = 0
    messages_dead_lettered: int = 0
    concurrent_executions: int = 0
    duration_mean: float | None = None
    duration_p99: float | None = None
    visible: int | None = None
    in_flight: int | None = None
    oldest_age: float | None = None
    concurrency_limit: int | None = None
    iterator_age_ms: float | None = None
    cold_starts: int = 0
    limit_reason: str | None = None
    breaker: str | None = None
    paused: bool = False
    semaphores: tuple[tuple[str, int, int], ...] = ()
    async_events_received: int = 0
    async_event_age_ms: float | None = None
    async_events_dropped: int = 0
    dead_letter_errors: int = 0
    destination_delivery_failures: int = 0


@dataclass(frozen=True, slots=True)
class MetricsTotals:
    """Cumulative counts of one mapping (or all) since the metrics were created.

    Attributes:
        mapping: the mapping's name, or :data:`ALL_MAPPINGS`.
        invocations, errors, throttles, messages_received, messages_deleted,
        messages_dead_lettered: sums over every second, the current one included.
        peak_concurrency: most invocations in flight at once, ever.
        duration_total: seconds spent in finished invocations.
        cold_starts: execution environments started (see :class:`MetricsSecond`).
        async_events_received, async_events_dropped, dead_letter_errors,
        destination_delivery_failures: see :class:`MetricsSecond`.
    """

    mapping: str
    invocations: int = 0
    errors: int = 0
    throttles: int = 0
    messages_received: int = 0
    messages_deleted: int = 0
    messages_dead_lettered: int = 0
    peak_concurrency: int = 0
    duration_total: float = 0.0
    cold_starts: int = 0
    async_events_received: int = 0
    async_events_dropped: int = 0
    dead_letter_errors: int = 0
    destination_delivery_failures: int = 0

    @property
    def duration_mean(self) -> float | None:
        """Mean duration in seconds of finished invocations; ``None`` before the first."""
        return self.duration_total / self.invocations if self.invocations else None

    @property
    def error_rate(self) -> float:
        """Errors per invocation, 0-1 (0 before the first invocation)."""
        return self.errors / self.invocations if self.invocations else 0.0


MetricsListener = Callable[[int, Mapping[str, MetricsSecond]], None]
"""Called with each closed second and its snapshot per mapping (:data:`ALL_MAPPINGS`
included, last)."""


class _Series:
    """The live counters of one mapping (the current second) and its past."""

    __slots__ = (
        "active",
        "async_age_ms",
        "async_dropped",
        "async_received",
        "breaker",
        "cold_starts",
        "concurrency_limit",
        "dead_lettered",
        "deleted",
        "destination_failures",
        "dlq_errors",
        "durations",
        "errors",
        "history",
        "in_flight",
        "invocations",
        "iterator_age_ms",
        "limit_reason",
        "name",
        "oldest_age",
        "paused",
        "peak",
        "received",
        "semaphores",
        "throttles",
        "total_async_dropped",
        "total_async_received",
        "total_cold_starts",
        "total_dead_lettered",
        "total_deleted",
        "total_destination_failures",
        "total_dlq_errors",
        "total_duration",
        "total_errors",
        "total_invocations",
        "total_peak",
        "total_received",
        "total_throttles",
        "visible",
    )

    def __init__(self, name: str, history: int) -> None:
        self.name = name
        self.history: deque[MetricsSecond] = deque(maxlen=history)
        self.active = 0
        self.visible: int | None = None
        self.in_flight: int | None = None
        self.oldest_age: float | None = None
        self.concurrency_limit: int | None = None
        self.limit_reason: str | None = None
        self.breaker: str | None = None
        self.paused = False
        self.semaphores: tuple[tuple[str, int, int], ...] = ()
        self.total_invocations = self.total_errors = self.total_throttles = 0
        self.total_received = self.total_deleted = self.total_dead_lettered = 0
        self.total_peak = 0
        self.total_cold_starts = 0
        self.total_async_received = self.total_async_dropped = 0
        self.total_dlq_errors = self.total_destination_failures = 0
        self.total_duration = 0.0
        self._reset()

    def _reset(self) -> None:
        self.invocations = self.errors = self.throttles = 0
        self.received = self.deleted = self.dead_lettered = self.cold_starts = 0
        self.iterator_age_ms: float | None = None
        self.async_received = self.async_dropped = 0
        self.dlq_errors = self.destination_failures = 0
        self.async_age_ms: float | None = None
        self.peak = self.active
        self.durations: list[float] = []

    def snapshot(self, second: int) -> MetricsSecond:
        durations = self.durations
        mean = p99 = None
        if durations:
            mean = math.fsum(durations) / len(durations)
            ordered = sorted(durations)
            p99 = ordered[max(0, math.ceil(_P99 * len(ordered)) - 1)]
        return MetricsSecond(
            mapping=self.name,
            second=second,
            invocations=self.invocations,
            errors=self.errors,
            throttles=self.throttles,
            messages_received=self.received,
            messages_deleted=self.deleted,
            messages_dead_lettered=self.dead_lettered,
            concurrent_executions=self.peak,
            duration_mean=mean,
            duration_p99=p99,
            visible=self.visible,
            in_flight=self.in_flight,
            oldest_age=self.oldest_age,
            concurrency_limit=self.concurrency_limit,
            iterator_age_ms=self.iterator_age_ms,
            cold_starts=self.cold_starts,
            limit_reason=self.limit_reason,
            breaker=self.breaker,
            paused=self.paused,
            semaphores=self.semaphores,
            async_events_received=self.async_received,
            async_event_age_ms=self.async_age_ms,
            async_events_dropped=self.async_dropped,
            dead_letter_errors=self.dlq_errors,
            destination_delivery_failures=self.destination_failures,
        )

    def close(self, second: int) -> MetricsSecond:
        snap = self.snapshot(second)
        self.history.append(snap)
        self._reset()
        return snap

    def totals(self) -> MetricsTotals:
        return MetricsTotals(
            mapping=self.name,
            invocations=self.total_invocations,
            errors=self.total_errors,
            throttles=self.total_throttles,
            messages_received=self.total_received,
            messages_deleted=self.total_deleted,
            messages_dead_lettered=self.total_dead_lettered,
            peak_concurrency=self.total_peak,
            duration_total=self.total_duration,
            cold_starts=self.total_cold_starts,
            async_events_received=self.total_async_received,
            async_events_dropped=self.total_async_dropped,
            dead_letter_errors=self.total_dlq_errors,
            destination_delivery_failures=self.total_destination_failures,
        )


class Metrics:
    """Per-second metrics of every mapping, with a bounded history.

    Parameters:
        clock: epoch seconds (default :func:`time.time`); the only source of time.
        history: completed seconds kept per mapping, 1 or more (default 3,600).
        listeners: called with each closed second; see :meth:`add_listener`.

    Raises:
        ConfigError: ``history`` below 1.
    """

    def __init__(
        self,
        clock: Callable[[], float] | None = None,
        *,
        history: int = DEFAULT_HISTORY,
        listeners: Iterable[MetricsListener] = (),
    ) -> None:
        if isinstance(history, bool) or not isinstance(history, int) or history < 1:
            raise ConfigError("history", history, "an integer >= 1", "metrics")
        self.clock: Callable[[], float] = clock or time.time
        self.history = history
        self._listeners: list[MetricsListener] = list(listeners)
        self._all = _Series(ALL_MAPPINGS, history)
        self._series: dict[str, _Series] = {}
        self._queues: dict[str, str] = {}
        self._second = int(self.clock())
        self._first = self._second

    # ------------------------------------------------------------------ plumbing
    def _now(self) -> None:
        now = int(self.clock())
        if now > self._second:
            self._roll(now)

    def _get(self, mapping: str) -> _Series:
        series = self._series.get(mapping)
        if series is None:
            if mapping == ALL_MAPPINGS:
                raise ValueError(f"{ALL_MAPPINGS!r} names the aggregate, not a mapping")
            series = self._series[mapping] = _Series(mapping, self.history)
        return series

    def _roll(self, now: int) -> None:
        """Close every second from the current one up to ``now`` (excluded)."""
        second = self._second
        if now - second > self.history:
            # After a long pause only the last ``history`` seconds can be kept anyway:
            # close the open second (it holds data), then skip the idle ones that the
            # history could not keep. The open second is pushed out of the history by
            # the seconds that follow, so the history stays contiguous.
            self._close(second)
            second = now - self.history
        while second < now:
            self._close(second)
            second += 1
        self._second = now

    def _close(self, second: int) -> None:
        snaps = {name: series.close(second) for name, series in self._series.items()}
        self._aggregate_gauges()
        snaps[ALL_MAPPINGS] = self._all.close(second)
        for listener in self._listeners:
            try:
                listener(second, snaps)
            except Exception:  # noqa: BLE001 - a listener's bug must not stop the driver
                _log.exception("metrics listener %r failed", listener)

    def _aggregate_gauges(self) -> None:
        visible: int | None = None
        in_flight: int | None = None
        limit: int | None = None
        oldest: float | None = None
        reasons: set[str] = set()
        paused = bool(self._series)
        held: dict[str, list[int]] = {}  # semaphore -> [slots held here, its limit]
        for series in self._series.values():
            paused = paused and series.paused
            for name, count, cap in series.semaphores:
                held.setdefault(name, [0, cap])[0] += count
            if series.limit_reason is not None:
                reasons.add(series.limit_reason)
            if series.visible is not None:
                visible = (visible or 0) + series.visible
            if series.in_flight is not None:
                in_flight = (in_flight or 0) + series.in_flight
            if series.concurrency_limit is not None:
                limit = (limit or 0) + series.concurrency_limit
            if series.oldest_age is not None:
                oldest = series.oldest_age if oldest is None else max(oldest, series.oldest_age)
        everything = self._all
        everything.visible, everything.in_flight = visible, in_flight
        everything.oldest_age, everything.concurrency_limit = oldest, limit
        # the sum of limits is bound by a term only when every mapping's is the same one
        everything.limit_reason = reasons.pop() if len(reasons) == 1 else None
        everything.paused = paused
        everything.semaphores = tuple((name, count, cap)
                                      for name, (count, cap) in sorted(held.items()))

    # ------------------------------------------------------------------ listeners
    def add_listener(self, listener: MetricsListener) -> None:
        """Call ``listener(second, snapshots)`` when each second closes.

        ``snapshots`` maps each mapping's name (and :data:`ALL_MAPPINGS`, last) to its
        :class:`MetricsSecond`. A listener that raises is logged and otherwise ignored.
        """
        self._listeners.append(listener)

    def remove_listener(self, listener: MetricsListener) -> None:
        """Stop calling ``listener``. Raises ``ValueError`` if it was not added."""
        self._listeners.remove(listener)

    # ------------------------------------------------------------------ reports
    def invocation_started(self, mapping: str) -> None:
        """An invocation of ``mapping``'s function began (raises concurrency by one)."""
        self._now()
        series = self._get(mapping)
        series.active += 1
        if series.active > series.peak:
            series.peak = series.active
            series.total_peak = max(series.total_peak, series.active)
        everything = self._all
        everything.active += 1
        if everything.active > everything.peak:
            everything.peak = everything.active
            everything.total_peak = max(everything.total_peak, everything.active)

    def invocation_finished(self, mapping: str, duration: float, error: bool) -> None:
        """An invocation ended after ``duration`` seconds, failed if ``error``.

        Lowers concurrency by one (never below 0) and counts the invocation.
        """
        self._now()
        for series in (self._get(mapping), self._all):
            if series.active > 0:
                series.active -= 1
            series.invocations += 1
            series.total_invocations += 1
            series.durations.append(duration)
            series.total_duration += duration
            if error:
                series.errors += 1
                series.total_errors += 1

    def _add(self, mapping: str, counter: str, count: int) -> None:
        """Add ``count`` to ``counter`` (and its running total) of ``mapping`` and of all."""
        self._now()
        total = "total_" + counter
        for series in (self._get(mapping), self._all):
            setattr(series, counter, getattr(series, counter) + count)
            setattr(series, total, getattr(series, total) + count)

    def throttled(self, mapping: str, count: int = 1) -> None:
        """``count`` invocations were refused for lack of concurrency."""
        self._add(mapping, "throttles", count)

    def received(self, mapping: str, count: int) -> None:
        """``count`` messages were received from the mapping's queue."""
        self._add(mapping, "received", count)

    def deleted(self, mapping: str, count: int) -> None:
        """``count`` messages were deleted after a successful invocation."""
        self._add(mapping, "deleted", count)

    def iterator_age(self, mapping: str, age_ms: float) -> None:
        """A stream mapping invoked a batch whose last record arrived ``age_ms``
        milliseconds before; the second keeps the largest (and so does the aggregate)."""
        self._now()
        for series in (self._get(mapping), self._all):
            current = series.iterator_age_ms
            if current is None or age_ms > current:
                series.iterator_age_ms = age_ms

    def cold_started(self, mapping: str | None, count: int = 1) -> None:
        """``count`` execution environments were started for ``mapping``'s function;
        ``None`` counts them in the aggregate only (a function with several mappings)."""
        if mapping is not None:
            self._add(mapping, "cold_starts", count)
            return
        self._now()
        self._all.cold_starts += count
        self._all.total_cold_starts += count

    def async_received(self, mapping: str, count: int, age_ms: float) -> None:
        """``count`` asynchronous events were read for their first attempt, the oldest
        having waited ``age_ms`` milliseconds (the second keeps the largest)."""
        self._add(mapping, "async_received", count)
        for series in (self._get(mapping), self._all):
            current = series.async_age_ms
            if current is None or age_ms > current:
                series.async_age_ms = age_ms

    def async_dropped(self, mapping: str, count: int) -> None:
        """``count`` asynchronous events were discarded on the failure path."""
        self._add(mapping, "async_dropped", count)

    def dead_letter_error(self, mapping: str) -> None:
        """A discarded event could not be written to the dead-letter queue or topic."""
        self._add(mapping, "dlq_errors", 1)

    def destination_failure(self, mapping: str) -> None:
        """An invocation record could not be delivered to its destination."""
        self._add(mapping, "destination_failures", 1)

    def dead_lettered(self, mapping: str, count: int) -> None:
        """``count`` messages of the mapping's queue moved to its dead-letter queue."""
        self._add(mapping, "dead_lettered", count)

    def set_gauges(
        self,
        mapping: str,
        *,
        visible: int | None = None,
        in_flight: int | None = None,
        oldest_age: float | None = None,
        concurrency_limit: int | None = None,
    ) -> None:
        """Set the gauges given (others keep their value); they hold until set again.

        Parameters:
            visible, in_flight: the queue's visible and in-flight messages.
            oldest_age: seconds since the oldest message in the queue was sent.
            concurrency_limit: the mapping's current concurrency limit.
        """
        self._now()
        series = self._get(mapping)
        if visible is not None:
            series.visible = visible
        if in_flight is not None:
            series.in_flight = in_flight
        if oldest_age is not None:
            series.oldest_age = oldest_age
        if concurrency_limit is not None:
            series.concurrency_limit = concurrency_limit

    def set_limits(self, limits: Mapping[str, int],
                   reasons: Mapping[str, str] | None = None, *,
                   breakers: Mapping[str, str] | None = None,
                   paused: Mapping[str, bool] | None = None,
                   semaphores: Mapping[str, tuple[tuple[str, int, int], ...]] | None = None,
                   ) -> None:
        """Set the ``concurrency_limit`` gauge of several mappings at once.

        Parameters:
            limits: mapping name to its current concurrency limit.
            reasons: mapping name to the term of its limit that binds (the
                ``limit_reason`` gauge); mappings it leaves out keep theirs.
            breakers: mapping name to its breaker's state (the ``breaker`` gauge), for
                the mappings that have one.
            paused: mapping name to whether it is paused (the ``paused`` gauge).
            semaphores: mapping name to ``(name, held, limit)`` of each semaphore it
                needs (the ``semaphores`` gauge).
        """
        self._now()
        for mapping, limit in limits.items():
            self._get(mapping).concurrency_limit = limit
        for mapping, reason in (reasons or {}).items():
            self._get(mapping).limit_reason = reason
        for mapping, state in (breakers or {}).items():
            self._get(mapping).breaker = state
        for mapping, flag in (paused or {}).items():
            self._get(mapping).paused = flag
        for mapping, held in (semaphores or {}).items():
            self._get(mapping).semaphores = held

    def register(self, mapping: str, *, queue: str) -> None:
        """Declare ``mapping`` and the queue it reads, for :meth:`queue_gauges`.

        A mapping never registered is taken to read the queue named before ``->`` in its
        name (``MappingConfig.name`` is ``"queue->function"``).
        """
        self._get(mapping)
        self._queues[mapping] = queue

    def queue_gauges(
        self,
        queue: str,
        *,
        visible: int | None = None,
        in_flight: int | None = None,
        oldest_age: float | None = None,
        dead_lettered: int = 0,
    ) -> None:
        """Set the queue gauges of every mapping reading ``queue``.

        Parameters:
            queue: the queue's name.
            visible, in_flight, oldest_age: as in :meth:`set_gauges`.
            dead_lettered: messages the queue moved to its dead-letter queue since the
                last call; counted once, on the first mapping (by name) reading the queue,
                so that the aggregate counts them once.
        """
        names = sorted(
            name
            for name in self._series
            if self._queues.get(name, name.partition("->")[0]) == queue
        )
        for name in names:
            self.set_gauges(name, visible=visible, in_flight=in_flight, oldest_age=oldest_age)
        if dead_lettered and names:
            self.dead_lettered(names[0], dead_lettered)

    def tick(self) -> None:
        """Close the seconds that have ended by the clock, calling the listeners."""
        self._now()

    def flush(self) -> None:
        """Close the current second now, although it has not ended (at the end of a run).

        Listeners get it at once. Reports made later within the same clock second count
        in the next second's bucket.
        """
        self._now()
        self._close(self._second)
        self._second += 1

    # ------------------------------------------------------------------ queries
    @property
    def mappings(self) -> list[str]:
        """Names of the mappings reported so far, in the order first seen."""
        return list(self._series)

    @property
    def current_second(self) -> int:
        """The open bucket (whole epoch seconds)."""
        self._now()
        return self._second

    def active(self, mapping: str = ALL_MAPPINGS) -> int:
        """Invocations in flight now for ``mapping`` (all by default)."""
        series = self._all if mapping == ALL_MAPPINGS else self._series.get(mapping)
        return series.active if series is not None else 0

    def snapshot(self, second: int, mapping: str = ALL_MAPPINGS) -> MetricsSecond:
        """The metrics of ``mapping`` (all by default) for epoch second ``second``.

        Parameters:
            second: a completed second still in the history, or the current second (a
                partial, live view).
            mapping: a mapping's name or :data:`ALL_MAPPINGS`.

        Returns:
            The :class:`MetricsSecond`.

        Raises:
            KeyError: unknown mapping, or a second outside the history (too old, before
                the mapping was first reported, or in the future).
        """
        self._now()
        series = self._series_of(mapping)
        if second == self._second:
            if series is self._all:
                self._aggregate_gauges()
            return series.snapshot(second)
        history = series.history
        if history:
            index = second - history[0].second
            if 0 <= index < len(history):
                return history[index]
        raise KeyError(f"no metrics of {mapping!r} for second {second}")

    def last_complete(self, mapping: str = ALL_MAPPINGS) -> MetricsSecond | None:
        """The most recent closed second of ``mapping``, or ``None`` before the first.

        Raises:
            KeyError: unknown mapping.
        """
        self._now()
        history = self._series_of(mapping).history
        return history[-1] if history else None

    def series(self, mapping: str = ALL_MAPPINGS) -> list[MetricsSecond]:
        """Every closed second of ``mapping`` still in the history, oldest first.

        Raises:
            KeyError: unknown mapping.
        """
        self._now()
        return list(self._series_of(mapping).history)

    def totals(self, mapping: str = ALL_MAPPINGS) -> MetricsTotals:
        """Cumulative counts of ``mapping`` (all by default), the current second included.

        Raises:
            KeyError: unknown mapping.
        """
        self._now()
        return self._series_of(mapping).totals()

    def _series_of(self, mapping: str) -> _Series:
        if mapping == ALL_MAPPINGS:
            return self._all
        try:
            return self._series[mapping]
        except KeyError:
            raise KeyError(f"no metrics for mapping {mapping!r}") from None
