"""One worker's view of the counted leases it holds in the store.

The leases themselves are part of the store contract (claim, renew, release, expiry,
fencing tokens: :mod:`sluicegate.store.coordination`), implemented by every backend, so
processes sharing an SQLite file coordinate exactly as those sharing a Redis server. This
module keeps, per lease, what this worker was granted and until when it may use it
(:class:`Lease`), and offers :class:`LeaseClient`, a holder's handle on the store's leases.

Time. The store expires a holder at the store clock's ``now + ttl`` of the claim (the
Redis store too: its scripts take the caller's clock, as for visibility timeouts). A
worker keeps its own, stricter deadline: the monotonic time *before* it sent the claim,
plus ``ttl`` less a margin (:data:`VALIDITY_MARGIN`, a tenth of the ttl: 3 s of the
default 30). The store read its clock after that moment, so the worker's deadline comes
first as long as the hosts' clocks agree within the margin (NTP keeps them within
milliseconds). Past its deadline a worker treats its share as zero and starts nothing
under it: :meth:`Lease.share`.

What happens to invocations still running on a worker cut off from the store: they run
to their end (a running handler cannot be recalled). Once the store expires the worker's
holder entry their slots count as free and other workers may use them, so for the rest of
those invocations the cluster may run more than the limit; the worker itself starts
nothing new from its deadline on. Their messages were received with a visibility timeout;
if they finish after it, they are delivered again (at-least-once). Keep ``lease_ttl``
well above the time a store outage should be tolerated silently, and the function
timeout short next to the visibility timeout, as on AWS. A process killed with ``kill -9``
holds its slots until its entries expire: at most ``lease_ttl`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sluicegate.store.base import Store
from sluicegate.store.coordination import LeaseClaim, LeaseGrant, LeaseHolder

__all__ = [
    "DEFAULT_LEASE_TTL",
    "VALIDITY_MARGIN",
    "Grant",
    "Holder",
    "Lease",
    "LeaseClient",
]

DEFAULT_LEASE_TTL = 30.0
"""Seconds a worker's leases outlive its last renewal: a dead worker's slots come back
after at most this long."""

VALIDITY_MARGIN = 0.1
"""Fraction of the ttl a worker deducts from its own deadline (see the module's "Time")."""

Grant = LeaseGrant
Holder = LeaseHolder


class Lease:
    """One worker's local view of a lease it claims: the grant and how long it holds.

    Parameters:
        name: the lease's name.
        ttl: seconds a claim holds in the store.
        clock: a monotonic clock in seconds (``time.monotonic``).
    """

    __slots__ = ("clock", "frozen", "granted", "held", "holders", "name", "rank", "token", "ttl",
                 "valid_until")

    def __init__(self, name: str, ttl: float, clock: Callable[[], float] = time.monotonic):
        self.name = name
        self.ttl = ttl
        self.clock = clock
        self.granted = 0
        self.held = 0
        self.token = 0
        """The fencing token of the last grant (0 while nothing is held)."""
        self.holders = 1
        """The lease's live holders at the last grant, this worker included (at least 1):
        the processes taking part, for what they share beyond slots (adaptive limits'
        increases)."""
        self.rank = 0
        """This worker's place among :attr:`holders` (by holder id) at the last grant."""
        self.valid_until = float("-inf")
        self.frozen: int | None = None
        """While a claim that reported ``in_use`` is on its way: that ``in_use``. The
        store may keep as little as that for this worker, so until the answer is
        recorded nothing more may start here (the old grant would let the worker start
        work the store has already given to another)."""

    def __repr__(self) -> str:
        return f"Lease({self.name}, granted={self.granted}, held={self.held})"

    def update(self, grant: LeaseGrant, sent_at: float) -> None:
        """Record ``grant`` of a claim sent at ``sent_at`` (this lease's clock)."""
        self.granted = grant.granted
        self.held = grant.held
        self.token = grant.token
        self.holders = max(1, grant.holders)
        self.rank = min(grant.rank, self.holders - 1)
        self.valid_until = sent_at + self.ttl * (1.0 - VALIDITY_MARGIN)

    def unanswered(self, in_use: int) -> None:
        """A claim that reported ``in_use`` got no answer (the connection broke or timed
        out after sending it): the store may have run it and kept as little as
        ``min(held, in_use)`` for this worker, so assume it did until an answer says
        otherwise. The deadline stays: a claim that ran only moved the store's later."""
        self.granted = min(self.granted, in_use)
        self.held = min(self.held, in_use)

    def share(self, now: float | None = None) -> int:
        """Slots this worker may use: the grant while the lease is valid, else 0."""
        if (self.clock() if now is None else now) >= self.valid_until:
            return 0
        frozen = self.frozen
        return self.granted if frozen is None else min(self.granted, frozen)

    def held_share(self, now: float | None = None) -> int:
        """Slots surely stored for this worker while the lease is valid, else 0: the count
        of the last answer or, while a claim is on its way, no more than the ``in_use`` it
        reported (the store keeps ``min(held, in_use)`` at least, and may keep no more)."""
        if (self.clock() if now is None else now) >= self.valid_until:
            return 0
        frozen = self.frozen
        return self.held if frozen is None else min(self.held, frozen)

    def expired(self, now: float | None = None) -> bool:
        return (self.clock() if now is None else now) >= self.valid_until

    def lost(self) -> None:
        """Forget the grant (a release, or a stop)."""
        self.granted = self.held = self.token = 0
        self.valid_until = float("-inf")


class LeaseClient:
    """Claims, renews and releases counted leases of one store for one holder.

    Parameters:
        store: an open store (any backend).
        holder: this worker's id.
        ttl: seconds a claim holds (see :data:`DEFAULT_LEASE_TTL`).

    Every method raises :class:`~sluicegate.errors.StoreUnavailable` (or ``StoreError``)
    when the store cannot be reached.
    """

    def __init__(self, store: Store, holder: str, *, ttl: float = DEFAULT_LEASE_TTL) -> None:
        if not ttl > 0:
            raise ValueError(f"ttl={ttl!r}: need seconds > 0")
        self.store = store
        self.holder = holder
        self.ttl = ttl

    async def claim(self, name: str, *, want: int, limit: int, in_use: int = 0,
                    fair: bool = True) -> LeaseGrant:
        """Set this holder's count of lease ``name``
        (see :class:`~sluicegate.store.coordination.LeaseClaim`)."""
        return await self.store.claim_lease(name, self.holder, want=want, limit=limit,
                                            ttl=self.ttl, in_use=in_use, fair=fair)

    async def claim_many(self, claims: list[LeaseClaim]) -> list[LeaseGrant]:
        """Several claims in one store call (one transaction where the store has them)."""
        return await self.store.claim_leases(self.holder, claims, ttl=self.ttl)

    async def release(self, name: str, *, in_use: int = 0) -> None:
        """Give lease ``name`` back, all but the ``in_use`` slots invocations still run
        on: those stay counted for this holder for one more ttl."""
        await self.store.release_lease(name, self.holder, in_use=in_use, ttl=self.ttl)

    async def names(self) -> list[str]:
        """Every lease name claimed in the store (some may have no holder left)."""
        return await self.store.lease_names()

    async def holders(self, name: str) -> list[LeaseHolder]:
        """The live holders of lease ``name`` (expired ones left out)."""
        return await self.store.lease_holders(name)
