"""The standard-queue event source mapping as a state machine (API; body to be written).

Model: the mapping runs ``limit`` pollers, where ``limit`` is what the scaling policy
allows (never above ``maximum_concurrency``). A poller receives (up to 10 messages per
receive, never more than its batch still has room for), gathers records in its
:class:`~sluicegate.core.batcher.Batcher`, and when the batch is released takes a slot
from the :class:`~sluicegate.core.pool.ConcurrencyPool` and invokes, synchronously: it
does not receive again until the invocation has finished. So invocations in flight never
exceed the number of active pollers, which never exceeds the limit.
"""

from __future__ import annotations

from sluicegate.core.config import MappingConfig
from sluicegate.core.pool import ConcurrencyPool
from sluicegate.core.scaling import ScalingPolicy
from sluicegate.core.types import Action, BatchOutcome, QueueRecord


class QueueMapping:
    """One standard-queue mapping's decisions.

    Parameters:
        config: the mapping's configuration.
        visibility_timeout: the visibility timeout its receives use (see
            :func:`~sluicegate.core.config.effective_visibility_timeout`).
        pool: the account's concurrency pool, shared with every other mapping.
        policy: the scaling policy; built from ``config`` when omitted.
        now: when the mapping is created.
    """

    def __init__(
        self,
        config: MappingConfig,
        *,
        visibility_timeout: float,
        pool: ConcurrencyPool,
        policy: ScalingPolicy | None = None,
        now: float = 0.0,
    ) -> None:
        raise NotImplementedError

    def poll(self, now: float) -> list[Action]:
        """Every action that should start at ``now``."""
        raise NotImplementedError

    def received(self, now: float, poller: int, records: list[QueueRecord]) -> None:
        """The receive issued for ``poller`` returned ``records`` (empty: nothing came)."""
        raise NotImplementedError

    def finished(self, now: float, batch_id: int, outcome: BatchOutcome) -> None:
        """The invocation of batch ``batch_id`` ended with ``outcome``; releases its slot."""
        raise NotImplementedError

    def next_wakeup(self, now: float) -> float | None:
        """When :meth:`poll` may next have something to do without any report arriving."""
        raise NotImplementedError
