"""Helpers shared by the core tests: records and batches with explicit values."""

from __future__ import annotations

import itertools

from sluicegate.core.scaling import ScalingStatistics
from sluicegate.core.types import Batch, BatchOutcome, QueueRecord

_counter = itertools.count(1)


def record(
    message_id: str | None = None,
    *,
    size: int = 100,
    visible_at: float = 30.0,
    receive_count: int = 1,
) -> QueueRecord:
    """A record with a fresh id and receipt handle unless told otherwise."""
    n = next(_counter)
    return QueueRecord(
        message_id=message_id if message_id is not None else f"m{n}",
        receipt_handle=f"h{n}",
        size=size,
        visible_at=visible_at,
        receive_count=receive_count,
    )


def records(count: int, **kwargs: object) -> list[QueueRecord]:
    return [record(**kwargs) for _ in range(count)]  # type: ignore[arg-type]


def batch(*ids: str, batch_id: int = 1) -> Batch:
    return Batch(batch_id, 0, tuple(record(i) for i in ids))


class SetLimit:
    """A scaling policy whose limit a test sets by hand; records what it was told."""

    def __init__(self, limit: int) -> None:
        self.value = limit
        self.receives: list[tuple[float, int]] = []
        self.outcomes: list[tuple[float, BatchOutcome]] = []
        self.throttles: list[float] = []
        self.change: float | None = None

    def limit(self, now: float) -> int:
        return self.value

    def on_receive(self, now: float, count: int) -> None:
        self.receives.append((now, count))

    def on_outcome(self, now: float, outcome: BatchOutcome) -> None:
        self.outcomes.append((now, outcome))

    def on_throttle(self, now: float) -> None:
        self.throttles.append(now)

    def next_change(self, now: float) -> float | None:
        return self.change

    def statistics(self, now: float) -> ScalingStatistics:
        return ScalingStatistics("set", self.value, float(self.value), False, None)
