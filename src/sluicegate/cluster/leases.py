"""Counted leases in Redis: how many slots of a cluster-wide limit each worker may use.

A lease is named (``mapping:orders``, ``function:resize``, ``account``, ``leader:orders``,
``shard:clicks:3``) and has holders; each holder holds a *count* until an *expiry*. One Lua
script (``lease.lua``, run with EVALSHA) does everything, atomically, on the server:

1. drops the holders whose expiry has passed (by the Redis server's clock),
2. grants the caller ``min(want, limit - others, fair share while someone waits)`` (the
   fair share only for a *fair* lease; a mutex is first come, first served),
3. stores ``max(grant, min(held before, in_use))``: slots that running invocations use
   are never taken back, so the sum of the stored counts never exceeds the limit,
4. renews the caller's expiry to server time + ttl.

A claim with ``want=0`` and ``in_use=0`` releases the lease. Holders renew every
``ttl / 3`` (or sooner, see :mod:`sluicegate.cluster.coordinator`).

Time. Expiry is decided by one clock, the Redis server's (``TIME`` inside the script),
so hosts with skewed clocks agree on who expired. A worker cannot read that clock, so it
keeps its own, stricter deadline: the monotonic time *before* it sent the claim, plus
``ttl`` less a margin (:data:`VALIDITY_MARGIN`). The server received the claim after that
moment and set the expiry from then on, so the worker's deadline always comes first, as
long as the two clocks run at about the same rate (the margin covers drift, not
skew). Past its deadline a worker treats its share as zero and starts nothing under it:
:meth:`Lease.share`.

What happens to invocations still running on a worker that was cut off from Redis: they
run to their end (a running handler cannot be recalled). Once the server expires the
worker's holder entry their slots count as free and other workers may use them, so for
the rest of those invocations the cluster may run more than the limit; the worker itself
starts nothing new from its deadline on. Their messages were received with a visibility
timeout; if they finish after it, they are delivered again (at-least-once). Keep
``lease_ttl`` well above the time a network partition should be tolerated silently, and
the function timeout short next to the visibility timeout, as on AWS.

Keys (prefix :data:`KEY_PREFIX`, then the lease's name):

- ``lease:{name}:held``  hash holder -> count
- ``lease:{name}:exp``   sorted set holder -> expiry (ms, server clock)
- ``lease:{name}:want``  hash holder -> count wanted
- ``leases``             set of every lease name in use

The three keys of a lease vanish by themselves one ttl after their last holder's expiry.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from sluicegate.store.redis_client import awaitable, store_error

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "DEFAULT_LEASE_TTL",
    "KEY_PREFIX",
    "VALIDITY_MARGIN",
    "Grant",
    "Holder",
    "Lease",
    "LeaseClient",
]

KEY_PREFIX = "sluicegate:cluster:"
"""Prefix of every key the cluster layer writes (the Redis store uses its own)."""

DEFAULT_LEASE_TTL = 30.0
"""Seconds a worker's leases outlive its last renewal: a dead worker's slots come back
after at most this long."""

VALIDITY_MARGIN = 0.1
"""Fraction of the ttl a worker deducts from its own deadline (see the module's "Time")."""

_SCRIPT = resources.files("sluicegate.cluster").joinpath("lease.lua").read_text("utf-8")


@dataclass(frozen=True, slots=True)
class Grant:
    """The answer to one claim.

    Attributes:
        granted: slots the holder may use now (may be below ``held``).
        held: the count stored for the holder: ``granted`` or, when running invocations
            use more, those.
        free: slots of the limit nobody holds after this claim.
        server_ms: the server's clock when the claim ran, in milliseconds.
    """

    granted: int
    held: int
    free: int
    server_ms: int


@dataclass(frozen=True, slots=True)
class Holder:
    """One holder of a lease, as :meth:`LeaseClient.holders` reads it."""

    holder: str
    count: int
    want: int
    expires_in: float
    """Seconds until the server drops it (server clock)."""


class Lease:
    """One worker's local view of a lease it claims: the grant and how long it holds.

    Parameters:
        name: the lease's name.
        ttl: seconds a claim holds on the server.
        clock: a monotonic clock in seconds (``time.monotonic``).
    """

    __slots__ = ("clock", "frozen", "granted", "held", "name", "ttl", "valid_until")

    def __init__(self, name: str, ttl: float, clock: Callable[[], float] = time.monotonic):
        self.name = name
        self.ttl = ttl
        self.clock = clock
        self.granted = 0
        self.held = 0
        self.valid_until = float("-inf")
        self.frozen: int | None = None
        """While a claim that reported ``in_use`` is on its way: that ``in_use``. The
        server may store as little as that for this worker, so until the answer is
        recorded nothing more may start here (the old grant would let the worker start
        work the server has already given to another)."""

    def __repr__(self) -> str:
        return f"Lease({self.name}, granted={self.granted}, held={self.held})"

    def update(self, grant: Grant, sent_at: float) -> None:
        """Record ``grant`` of a claim sent at ``sent_at`` (this lease's clock)."""
        self.granted = grant.granted
        self.held = grant.held
        self.valid_until = sent_at + self.ttl * (1.0 - VALIDITY_MARGIN)

    def unanswered(self, in_use: int) -> None:
        """A claim that reported ``in_use`` got no answer (the connection broke or timed
        out after sending it): the server may have run it and kept as little as
        ``min(held, in_use)`` for this worker, so assume it did until an answer says
        otherwise. The deadline stays: a claim that ran only moved the server's later."""
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
        reported (the server keeps ``min(held, in_use)`` at least, and may keep no more)."""
        if (self.clock() if now is None else now) >= self.valid_until:
            return 0
        frozen = self.frozen
        return self.held if frozen is None else min(self.held, frozen)

    def expired(self, now: float | None = None) -> bool:
        return (self.clock() if now is None else now) >= self.valid_until

    def lost(self) -> None:
        """Forget the grant (a release, or a stop)."""
        self.granted = self.held = 0
        self.valid_until = float("-inf")


def lease_keys(name: str) -> list[str]:
    base = f"{KEY_PREFIX}lease:{name}"
    return [f"{base}:held", f"{base}:exp", f"{base}:want", f"{KEY_PREFIX}leases"]


class LeaseClient:
    """Claims, renews and releases counted leases for one holder.

    Parameters:
        redis: a client from :func:`sluicegate.store.redis_client.connect`.
        holder: this worker's id.
        ttl: seconds a claim holds (see :data:`DEFAULT_LEASE_TTL`).
        url: the server's URL, for error messages.

    Every method raises :class:`~sluicegate.errors.StoreUnavailable` (or ``StoreError``)
    when Redis cannot be reached.
    """

    def __init__(self, redis: Redis, holder: str, *, ttl: float = DEFAULT_LEASE_TTL,
                 url: str = "") -> None:
        if not ttl > 0:
            raise ValueError(f"ttl={ttl!r}: need seconds > 0")
        self.redis = redis
        self.holder = holder
        self.ttl = ttl
        self.url = url
        self._script: Any = redis.register_script(_SCRIPT)

    async def claim(self, name: str, *, want: int, limit: int, in_use: int = 0,
                    fair: bool = True) -> Grant:
        """Set this holder's count of lease ``name`` (see the module docstring).

        Parameters:
            name: the lease.
            want: slots wanted (0 with ``in_use`` 0 releases).
            limit: the lease's cluster-wide limit; every holder must pass the same.
            in_use: slots this holder's running invocations use now.
            fair: holders above their fair share give back while another waits (counted
                shares); ``False``: first come, first served (mutexes such as a leader
                or a shard, which only a release or an expiry frees).
        """
        try:
            reply = await self._script(
                keys=lease_keys(name),
                args=[self.holder, max(0, want), max(0, limit), int(self.ttl * 1000),
                      max(0, in_use), name, "1" if fair else "0"],
            )
        except Exception as exc:  # redis-py's errors become sluicegate's
            raise store_error(exc, self.url) from exc
        granted, held, free, server_ms = (int(x) for x in reply)
        return Grant(granted, held, free, server_ms)

    async def release(self, name: str, *, in_use: int = 0) -> None:
        """Give lease ``name`` back, all but the ``in_use`` slots invocations still run
        on: those stay counted for this holder until its expiry (one ttl from now)."""
        await self.claim(name, want=0, limit=0, in_use=in_use)

    async def names(self) -> list[str]:
        """Every lease name claimed recently (some may have no holder left)."""
        try:
            return sorted(str(n) for n in await awaitable(self.redis.smembers(f"{KEY_PREFIX}leases")))
        except Exception as exc:
            raise store_error(exc, self.url) from exc

    async def holders(self, name: str) -> list[Holder]:
        """The live holders of lease ``name`` (expired ones left out)."""
        held_key, exp_key, want_key, _ = lease_keys(name)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.time()
                pipe.hgetall(held_key)
                pipe.hgetall(want_key)
                pipe.zrange(exp_key, 0, -1, withscores=True)
                server, held, wants, expiries = await pipe.execute()
        except Exception as exc:
            raise store_error(exc, self.url) from exc
        now_ms = server[0] * 1000 + server[1] // 1000
        out = []
        for holder, expiry in expiries:
            if expiry <= now_ms:
                continue
            out.append(Holder(holder, int(held.get(holder, 0)), int(wants.get(holder, 0)),
                              (expiry - now_ms) / 1000.0))
        return out
