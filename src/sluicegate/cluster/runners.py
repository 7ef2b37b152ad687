"""What the cluster needs of the mappings a worker runs: a small interface, so that the
cluster does not depend on the runtime (the runtime builds a cluster; the cluster never
imports the runtime).

The runtime's source adapters (:class:`~sluicegate.runtime.sources.QueueIO`,
:class:`~sluicegate.runtime.sources.StreamIO`) satisfy these protocols.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from sluicegate.core.config import MappingConfig
from sluicegate.core.limit import ConcurrencyLimit
from sluicegate.core.streams import StreamMappingConfig

__all__ = ["CoreView", "QueueRunner", "ShardedRunner"]


class CoreView(Protocol):
    """What the cluster reads of a mapping's core."""

    @property
    def in_flight(self) -> int: ...

    @property
    def concurrency_limit(self) -> ConcurrencyLimit: ...

    def statistics(self) -> Any: ...


class QueueRunner(Protocol):
    """A queue mapping as the cluster sees it: its configuration, its core (whose limit
    takes the cluster's share as the term ``cluster``) and the event that wakes its
    loop when the share changes."""

    @property
    def config(self) -> MappingConfig: ...

    @property
    def core(self) -> CoreView: ...

    @property
    def wake(self) -> asyncio.Event: ...


class ShardedRunner(Protocol):
    """A stream mapping as the cluster sees it: the shards it serves here are the ones
    the cluster leases to this worker."""

    owned: set[int] | None
    """The shards served here (``None``: every shard)."""
    holds: Callable[[int], bool] | None
    """Whether this worker's lease of a shard is still valid."""

    @property
    def name(self) -> str: ...

    @property
    def config(self) -> StreamMappingConfig: ...

    @property
    def shard_count(self) -> int: ...

    @property
    def core(self) -> CoreView: ...

    @property
    def wake(self) -> asyncio.Event: ...

    @property
    def stopping(self) -> bool: ...

    async def reassign(self, owned: set[int]) -> None:
        """Serve ``owned`` from now on, once what is in hand is settled and
        checkpointed."""
        ...
