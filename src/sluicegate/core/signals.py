"""What one invocation tells a mapping's limit: a :class:`Sample`.

A mapping core (:class:`~sluicegate.core.mapping.QueueMapping`,
:class:`~sluicegate.core.stream_mapping.StreamMapping`) records when each invocation
started and how many of its invocations were in flight then (itself included). When the
invocation ends it builds a :class:`Sample` and hands it to its
:class:`~sluicegate.core.limit.ConcurrencyLimit` (:meth:`ConcurrencyLimit.observe
<sluicegate.core.limit.ConcurrencyLimit.observe>`), which passes it to every term that
has an ``observe(now, sample)`` method: an adaptive limit
(:mod:`sluicegate.core.adaptive`), a circuit breaker. A batch refused a concurrency slot
by the pool (a throttle) is a sample too, of kind :attr:`SampleKind.THROTTLE`.

What the handler reported about the call it made (``context.report(latency=...)``,
``context.report(overload=True)``) travels back with the invocation's result and
arrives on the sample: ``latency`` (the largest reported, in seconds) and ``overload``.

Pure: nothing here reads a clock; times are the driver's (wall clock or virtual).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sluicegate.core.types import BatchOutcome, OutcomeKind

__all__ = ["TIMEOUT_REASON", "Sample", "SampleKind", "sample_kind"]

TIMEOUT_REASON = "timeout"
"""The ``reason`` of a timed-out invocation's outcome
(:func:`~sluicegate.core.results.timeout_outcome`)."""


class SampleKind(enum.Enum):
    """How an invocation ended, as a limit sees it."""

    OK = "ok"
    """The handler returned: success, or a response listing failed items (the function
    worked; the items failed on their own)."""
    ERROR = "error"
    """The function failed: an exception or a response that could not be read."""
    TIMEOUT = "timeout"
    """The handler ran past the function's timeout."""
    THROTTLE = "throttle"
    """The pool refused the batch a concurrency slot (no invocation took place)."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One invocation's signals.

    Attributes:
        start: when the invocation started, driver time in seconds (a throttle: when the
            slot was refused).
        end: when it ended (a throttle: ``start``).
        kind: see :class:`SampleKind`.
        size: records in the batch (0 for a throttle).
        in_flight: the mapping's invocations in flight when it started, itself included
            (a throttle: those in flight when it was refused).
        latency: the downstream latency the handler reported, in seconds (the largest of
            its reports); ``None`` when it reported none.
        overload: the handler reported that its downstream is overloaded ("slow down").
    """

    start: float
    end: float
    kind: SampleKind
    size: int
    in_flight: int
    latency: float | None = None
    overload: bool = False

    @property
    def duration(self) -> float:
        """``end - start``, in seconds."""
        return self.end - self.start


_OK = SampleKind.OK
_ERROR = SampleKind.ERROR
_TIMEOUT = SampleKind.TIMEOUT
_ERROR_OUTCOME = OutcomeKind.ERROR


def sample_kind(outcome: BatchOutcome) -> SampleKind:
    """The sample kind of an invocation that settled as ``outcome``: ERROR (TIMEOUT when
    its reason is :data:`TIMEOUT_REASON`), else OK (SUCCESS and PARTIAL)."""
    if outcome.kind is _ERROR_OUTCOME:
        return _TIMEOUT if outcome.reason == TIMEOUT_REASON else _ERROR
    return _OK
