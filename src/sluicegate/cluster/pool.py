"""The account's concurrency pool, bounded also by this worker's leased shares.

:class:`ClusterPool` is the core's :class:`~sluicegate.core.pool.ConcurrencyPool` (reserved
and unreserved concurrency as Lambda has them, within this process) with one more check
in :meth:`ClusterPool.try_acquire`: the function's slots in use on this worker stay below
this worker's share of the function's cluster-wide limit:

- a function with reserved concurrency R: its share of lease ``function:NAME`` (limit R);
- every other function: its part of this worker's share of lease ``account`` (limit: the
  account's unreserved capacity), which all of them draw from together.

A refusal is a throttle, exactly as a full local pool is: the core backs off and retries.
The shares come from :class:`~sluicegate.cluster.coordinator.Cluster`.
"""

from __future__ import annotations

from collections.abc import Callable

from sluicegate.core.config import AccountConfig
from sluicegate.core.pool import ConcurrencyPool

__all__ = ["ACCOUNT_LEASE", "ClusterPool", "function_lease"]

ACCOUNT_LEASE = "account"
"""The lease of the account's unreserved concurrency."""


def function_lease(function: str) -> str:
    """The lease of a function's reserved concurrency."""
    return f"function:{function}"


class ClusterPool(ConcurrencyPool):
    """A :class:`ConcurrencyPool` that also keeps within leased shares.

    Parameters:
        account: the account's limit and unreserved minimum.
        share: the slots this worker may use under a lease name, now (0 once the lease
            lapsed).
    """

    def __init__(self, account: AccountConfig, share: Callable[[str], int]) -> None:
        super().__init__(account)
        self._share = share
        self.cluster_throttles = 0
        """Acquisitions refused by a leased share (the local pool had room)."""

    def lease_of(self, function: str) -> str:
        """The lease that bounds ``function`` cluster-wide."""
        if self.reserved_concurrency(function) is None:
            return ACCOUNT_LEASE
        return function_lease(function)

    def lease_in_use(self, lease: str) -> int:
        """Slots this worker uses now under lease ``lease`` (``account`` or
        ``function:NAME``)."""
        if lease == ACCOUNT_LEASE:
            return self.unreserved_in_use
        return self.in_use(lease.removeprefix(function_lease("")))

    def try_acquire(self, function: str) -> bool:
        if not super().try_acquire(function):
            return False
        if self.reserved_concurrency(function) is None:
            used = self.unreserved_in_use
            allowed = self._share(ACCOUNT_LEASE)
        else:
            used = self.in_use(function)
            allowed = self._share(function_lease(function))
        if used > allowed:
            super().release(function)
            self.cluster_throttles += 1
            return False
        return True
