"""What processes sharing a store use to coordinate: counted leases, a worker registry,
and shared event logs and values (the store contract's coordination part).

Counted leases. A lease is named (``mapping:orders``, ``function:resize``, ``account``,
``leader:orders``, ``shard:clicks:3``) and has holders; each holder stores a *count* (slots
it may have in use) and a *want* until an *expiry*. A claim (:class:`LeaseClaim`) by one
holder, atomically:

1. drops the holders whose expiry has passed (by the store's clock): their slots are free;
2. grants ``min(want, limit - others, cap)``: ``cap`` is the holder's fair share (water
   filling over every holder's want, the smallest wants served first) while another
   holder wants more than it holds and the lease is *fair*; otherwise the limit, so free
   capacity may be taken and is given back at the next claim once someone waits. A lease
   that is not fair is first come, first served (a mutex: a leader, a stream shard);
3. stores ``max(grant, min(held before, in_use))``: slots that running invocations use
   are never taken back, so the stored counts of a lease never sum above its limit (a
   holder only grows into capacity nobody else holds);
4. sets the holder's expiry to ``now + ttl``.

Renewing is claiming again. A claim with ``want = 0`` and ``in_use = 0`` releases.
Every holder passes the same ``limit`` (the lease's cluster-wide limit); while a limit
changes, each claim is judged against its own.

Fencing tokens. Each lease keeps a counter that only grows. When a holder's stored count
goes from nothing (no entry, an expired one, or a count of 0) to above 0, the counter is
raised and the new value becomes the holder's token, kept while it holds the lease. So a
holder that lost a lease (it expired, or was released) and got it back has a higher token
than before, and than any holder who had the lease in between: a write stamped with a
token can be refused when a higher one was seen. Tokens are returned with each grant and
listed with the holders.

Worker registry: one entry per worker id (a JSON object) with an expiry; registering
with ``exclusive`` refuses an id a live entry already has (two workers sharing an id
would share their leases). Shared event logs (append, take all) and shared values carry
the ``aws`` scaling policy's observations and published state between workers
(:mod:`sluicegate.cluster.scaling`).

A :class:`CoordinationRound` bundles what one worker's sync does (claims, appends, takes,
writes, reads, heartbeat) so a backend may run it in one transaction
(:meth:`~sluicegate.store.base.Store.coordinate`).

Time is the store's clock on every backend (the Redis store passes its caller's clock to
its scripts, as for visibility timeouts): processes sharing a store should share a clock
(NTP is plenty: a worker stops using a lease a margin of its ttl before the store expires
it, see :mod:`sluicegate.cluster.leases`).

:func:`claim_lease_in` is the rules above in Python, used by the memory store (through
:class:`MemoryCoordination`, its :class:`~sluicegate.store.engine.CoordinationEngine`)
and the SQLite store (the Redis store runs the same rules in ``lua/lease.lua``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CoordinationReply",
    "CoordinationRound",
    "LeaseClaim",
    "LeaseEntry",
    "LeaseGrant",
    "LeaseHolder",
    "MemoryCoordination",
    "claim_lease_in",
    "fair_cap",
]

MAX_EVENTS = 10_000
"""Most events a shared log keeps (the oldest go first) while nobody takes them."""


@dataclass(frozen=True, slots=True)
class LeaseClaim:
    """One holder's claim on lease ``name`` (see the module docstring).

    Attributes:
        name: the lease.
        want: slots wanted (0 with ``in_use`` 0 releases).
        limit: the lease's limit for every holder together.
        in_use: slots this holder's running invocations use now (never taken back).
        fair: holders above their fair share give back while another waits; ``False``:
            first come, first served (a mutex).
    """

    name: str
    want: int
    limit: int
    in_use: int = 0
    fair: bool = True


@dataclass(frozen=True, slots=True)
class LeaseGrant:
    """The answer to one claim.

    Attributes:
        granted: slots the holder may use now (may be below ``held``).
        held: the count stored for the holder: ``granted`` or, when running invocations
            use more, those.
        free: slots of the limit nobody holds after this claim.
        token: the holder's fencing token (0 while it holds nothing).
        expires: when the store drops the holder unless it claims again (epoch seconds,
            store clock).
        holders: the lease's live holders after the claim, this one included while it
            holds an entry (a holder waiting with a count of 0 is one): how many
            processes take part in it, as the claim saw them.
        rank: this holder's place among them, 0 to ``holders - 1``, by holder id (0 when
            it holds no entry): distinct per holder within one round of claims.
    """

    granted: int
    held: int
    free: int
    token: int
    expires: float
    holders: int = 1
    rank: int = 0


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    """One live holder of a lease."""

    holder: str
    count: int
    want: int
    expires: float
    """Epoch seconds (store clock) when the store drops it unless it claims again."""
    token: int


@dataclass(slots=True)
class LeaseEntry:
    """A holder's stored state in one lease (the memory and SQLite stores' rows)."""

    count: int
    want: int
    expires: float
    token: int


def fair_cap(wants: Sequence[tuple[str, int]], holder: str, limit: int) -> int:
    """``holder``'s fair share of ``limit`` among ``wants`` (water filling: the smallest
    wants are served in full first, the rest split evenly, ties by holder id; the last
    in that order takes the remainder of the division)."""
    order = sorted(wants, key=lambda hw: (hw[1], hw[0]))
    remaining = limit
    n = len(order)
    for i, (h, w) in enumerate(order):
        share = min(w, remaining) if i == n - 1 else min(w, remaining // (n - i))
        if h == holder:
            return share
        remaining -= share
    return limit


def claim_lease_in(
    entries: dict[str, LeaseEntry],
    holder: str,
    claim: LeaseClaim,
    *,
    now: float,
    ttl: float,
    next_token: Callable[[], int],
) -> LeaseGrant:
    """Apply ``claim`` by ``holder`` to one lease's ``entries`` (holder -> entry), in
    place: the rules of the module docstring. ``next_token`` raises the lease's token
    counter and returns the new value (called only when the holder newly acquires)."""
    for h in [h for h, e in entries.items() if e.expires <= now]:
        del entries[h]
    want, limit, in_use = max(0, claim.want), max(0, claim.limit), max(0, claim.in_use)
    mine = entries.get(holder)
    held_before = mine.count if mine is not None else 0
    others = sum(e.count for h, e in entries.items() if h != holder)
    cap = limit
    if want > 0 and claim.fair:
        hungry = [(h, e.want) for h, e in entries.items() if h != holder and e.want > 0]
        if any(entries[h].want > entries[h].count for h, _ in hungry):
            cap = fair_cap([*hungry, (holder, want)], holder, limit)
    grant = max(0, min(want, cap, limit - others))
    stored = max(grant, min(held_before, in_use))
    if stored == 0 and want <= 0:
        entries.pop(holder, None)
        return LeaseGrant(0, 0, limit - others, 0, now, len(entries), 0)
    expires = now + ttl
    if mine is None:
        mine = entries[holder] = LeaseEntry(0, 0, expires, 0)
    if stored > 0 and held_before == 0:
        mine.token = next_token()
    elif stored == 0:
        mine.token = 0
    mine.count, mine.want, mine.expires = stored, want, expires
    rank = sum(1 for h in entries if h < holder)
    return LeaseGrant(grant, stored, limit - others - stored, mine.token, expires,
                      len(entries), rank)


@dataclass(slots=True)
class CoordinationRound:
    """What one worker's sync asks of the store, done in this order:

    1. ``claims``, each as :meth:`~sluicegate.store.base.Store.claim_lease`;
    2. ``append``: shared log -> events to add (strings; the log keeps
       :data:`MAX_EVENTS`);
    3. ``take``: shared log -> lease: the log's events are taken (returned and removed)
       only if ``holder`` holds that lease (a count above 0) after step 1;
    4. ``write``: shared value -> (value, lease): written only if ``holder`` holds the
       lease;
    5. ``read``: shared values to read (after step 4);
    6. ``heartbeat``: when set, ``holder``'s registry entry is replaced by it with
       expiry ``now + ttl``.
    """

    holder: str
    ttl: float
    claims: Sequence[LeaseClaim] = ()
    append: Mapping[str, Sequence[str]] = field(default_factory=dict)
    take: Mapping[str, str] = field(default_factory=dict)
    write: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    read: Sequence[str] = ()
    heartbeat: Mapping[str, Any] | None = None


@dataclass(slots=True)
class CoordinationReply:
    """The store's answer to a :class:`CoordinationRound`.

    Attributes:
        grants: one per claim, in order.
        taken: shared log -> the events taken (only the logs whose lease was held).
        values: shared value -> its value (``None``: never written).
    """

    grants: list[LeaseGrant]
    taken: dict[str, list[str]] = field(default_factory=dict)
    values: dict[str, str | None] = field(default_factory=dict)


class MemoryCoordination:
    """The coordination state of one memory store: the
    :class:`~sluicegate.store.engine.CoordinationEngine` of plain Python dicts, reading
    time from ``clock`` (epoch seconds) once per call."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.leases: dict[str, dict[str, LeaseEntry]] = {}
        self.tokens: dict[str, int] = {}
        self.workers: dict[str, tuple[float, str]] = {}
        self.logs: dict[str, deque[str]] = {}
        self.shared: dict[str, str] = {}

    def claim_leases(self, holder: str, claims: Sequence[LeaseClaim],
                     ttl: float) -> list[LeaseGrant]:
        now = self.clock()
        out = []
        for claim in claims:
            name = claim.name
            entries = self.leases.setdefault(name, {})
            self.tokens.setdefault(name, 0)

            def next_token(name: str = name) -> int:
                self.tokens[name] += 1
                return self.tokens[name]

            out.append(claim_lease_in(entries, holder, claim, now=now, ttl=ttl,
                                      next_token=next_token))
        return out

    def lease_holders(self, name: str) -> list[LeaseHolder]:
        now = self.clock()
        return [LeaseHolder(h, e.count, e.want, e.expires, e.token)
                for h, e in self.leases.get(name, {}).items() if e.expires > now]

    def lease_names(self) -> list[str]:
        return list(self.leases)

    def register_worker(self, worker: str, info: str, ttl: float,
                        exclusive: bool) -> str | None:
        now = self.clock()
        current = self.workers.get(worker)
        if exclusive and current is not None and current[0] > now:
            return current[1]
        self.workers[worker] = (now + ttl, info)
        return None

    def list_workers(self) -> list[tuple[str, str]]:
        now = self.clock()
        for w in [w for w, (exp, _) in self.workers.items() if exp <= now]:
            del self.workers[w]
        return [(w, info) for w, (_, info) in self.workers.items()]

    def unregister_worker(self, worker: str) -> None:
        self.workers.pop(worker, None)

    def append_events(self, log: str, events: Sequence[str]) -> None:
        self.logs.setdefault(log, deque(maxlen=MAX_EVENTS)).extend(events)

    def take_events(self, log: str) -> list[str]:
        events = self.logs.pop(log, None)
        return list(events) if events else []

    def write_shared(self, key: str, value: str) -> None:
        self.shared[key] = value

    def read_shared(self, keys: Sequence[str]) -> dict[str, str | None]:
        return {k: self.shared.get(k) for k in keys}
