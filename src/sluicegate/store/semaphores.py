"""Named counted semaphores and parked batches: the store contract's rules for both.

Semaphores. A semaphore is named (``db``) and has a *limit*, *holders* and *waiters*.
Every holder and every waiter is a *task token* (a random string the caller makes with
:func:`new_task_token`): the token names one acquisition, so one process may hold a
semaphore several times, once per token. An attempt by one token, atomically (at one
reading of the store's clock):

1. drops the holders whose expiry has passed (a holder renews while it holds: a process
   that dies stops renewing, and its slot frees one ttl later at most) and the waiters
   whose entry has expired (a waiter refreshes its entry at every attempt);
2. renews the token's hold when it already holds (same fencing token, new expiry);
3. grants a slot when the token is among the first ``free`` waiters, or is new and the
   queue is shorter than ``free`` (``free`` = limit minus holders): waiters are served
   in arrival order and a newcomer never overtakes one (FIFO). A grant raises the
   semaphore's fencing counter and gives the new value to the holder: fencing tokens
   strictly increase per semaphore, over every holder, for as long as the store lives;
4. otherwise queues the token (``queue=True``) at the back, with its *wake address*, or
   refreshes its place; the answer says when the earliest holder's slot would free by
   expiry (``retry_at``), the safety net of a waiter whose wake is lost.

A release (or a waiter giving up) returns the waiters that may now take a slot: the
first ``free`` of the queue, with their wake addresses. The store sends each a wake
(see :mod:`sluicegate.store.wake`); a wake that cannot be delivered (its process is
gone) drops that waiter and wakes the next one. Woken waiters attempt again: nobody
polls. The memory engine below and the SQLite engine apply these rules in Python; the
Redis store runs the same rules in ``lua/semaphore.lua``.

This is the classic FIFO (ticket) semaphore with leases for crash recovery and the
fencing tokens of M. Kleppmann's "How to do distributed locking" (2016).

Parked batches. A handler may park its batch behind a task token instead of holding a
concurrency slot: the runtime stores a :class:`ParkedBatch` (the queue, the receipt
handles, the heartbeat) under the token; whoever completes the token takes the record
atomically (:meth:`~sluicegate.store.base.Store.take_parked`), so of two completions
only one acts.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ParkedBatch",
    "SemaphoreGrant",
    "SemaphoreHolder",
    "SemaphoreState",
    "SemaphoreWaiter",
    "Wake",
    "acquire_in",
    "cancel_in",
    "new_task_token",
    "release_in",
    "renew_in",
]

WAITER_TTL_FACTOR = 3.0
"""A waiter's entry lives this many holder ttls after its last attempt: a live waiter
attempts again at least once a ttl (when the earliest holder's slot could free by
expiry), so only a dead waiter's entry runs out."""


def new_task_token() -> str:
    """A new task token: 32 hex digits (128 random bits)."""
    return secrets.token_hex(16)


@dataclass(slots=True)
class SemaphoreHolder:
    """One holder of a semaphore.

    Attributes:
        holder: its task token.
        token: its fencing token.
        since: when it took the slot (epoch seconds, store clock).
        expires: when the store frees the slot unless renewed.
        info: who holds it (free text: process, mapping), for displays.
    """

    holder: str
    token: int
    since: float
    expires: float
    info: str = ""
    address: str = ""
    """Where a *nudge* goes when a new waiter queues (a holder that may yield its slot:
    a mapping's spare); ``""``: never nudged."""


@dataclass(slots=True)
class SemaphoreWaiter:
    """One waiter of a semaphore, in arrival order.

    Attributes:
        waiter: its task token.
        since: when it arrived.
        expires: when its entry is dropped unless it attempts again.
        address: where its wake goes (see :mod:`sluicegate.store.wake`).
        info: who waits.
    """

    waiter: str
    since: float
    expires: float
    address: str
    info: str = ""


@dataclass(slots=True)
class SemaphoreState:
    """A semaphore as stored: its limit (the last attempt's), its fencing counter, its
    holders and its waiters in arrival order."""

    name: str
    limit: int = 1
    token: int = 0
    holders: list[SemaphoreHolder] = field(default_factory=list)
    waiters: list[SemaphoreWaiter] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps({
            "name": self.name, "limit": self.limit, "token": self.token,
            "holders": [[h.holder, h.token, h.since, h.expires, h.info, h.address]
                        for h in self.holders],
            "waiters": [[w.waiter, w.since, w.expires, w.address, w.info]
                        for w in self.waiters],
        })

    @classmethod
    def from_json(cls, text: str) -> SemaphoreState:
        raw: dict[str, Any] = json.loads(text)
        return cls(
            str(raw["name"]), int(raw["limit"]), int(raw["token"]),
            [SemaphoreHolder(str(h[0]), int(h[1]), float(h[2]), float(h[3]), str(h[4]),
                             str(h[5]) if len(h) > 5 else "")
             for h in raw["holders"]],
            [SemaphoreWaiter(str(w), float(s), float(e), str(a), str(i))
             for w, s, e, a, i in raw["waiters"]],
        )


@dataclass(frozen=True, slots=True)
class Wake:
    """A waiter to wake: its task token and wake address."""

    waiter: str
    address: str


@dataclass(frozen=True, slots=True)
class SemaphoreGrant:
    """The answer to one attempt.

    Attributes:
        acquired: the token holds a slot.
        token: its fencing token (0 when not acquired).
        expires: when the hold (or, not acquired, the waiter's entry) expires.
        position: 0 when acquired; else the token's place in the queue (1: next), or 0
            when it did not queue.
        retry_at: not acquired: when the earliest holder's slot frees by expiry, the
            latest a live waiter should attempt again even without a wake.
        behind: acquired: how many wait behind (a holder that may yield learns that it
            should, see :func:`acquire_in`).
        nudges: queued as a new waiter: the holders that asked to be nudged then.
    """

    acquired: bool
    token: int
    expires: float
    position: int = 0
    retry_at: float = 0.0
    behind: int = 0
    nudges: tuple[Wake, ...] = ()


def _expire(state: SemaphoreState, now: float) -> None:
    state.holders = [h for h in state.holders if h.expires > now]
    state.waiters = [w for w in state.waiters if w.expires > now]


def _due(state: SemaphoreState) -> list[Wake]:
    free = state.limit - len(state.holders)
    return [Wake(w.waiter, w.address) for w in state.waiters[:max(0, free)]]


def acquire_in(
    state: SemaphoreState, holder: str, *, limit: int, ttl: float, now: float, queue: bool,
    address: str = "", info: str = "", yieldable: bool = False,
) -> SemaphoreGrant:
    """One attempt by ``holder`` on ``state``, in place: the rules of the module
    docstring. ``limit`` becomes the semaphore's limit.

    ``yieldable``: the holder, once granted, may give its slot up when someone waits (a
    mapping's spare slot): the grant says how many wait behind it, and a waiter that
    queues later nudges it (the grant of that waiter lists the nudges to send to
    ``address``)."""
    _expire(state, now)
    state.limit = limit
    for h in state.holders:
        if h.holder == holder:
            h.expires = now + ttl
            return SemaphoreGrant(True, h.token, h.expires, behind=len(state.waiters))
    place = next((i for i, w in enumerate(state.waiters) if w.waiter == holder), None)
    ahead = len(state.waiters) if place is None else place
    if limit - len(state.holders) > ahead:
        if place is not None:
            del state.waiters[place]
        state.token += 1
        state.holders.append(SemaphoreHolder(holder, state.token, now, now + ttl, info,
                                             address if yieldable else ""))
        return SemaphoreGrant(True, state.token, now + ttl, behind=len(state.waiters))
    retry_at = min((h.expires for h in state.holders), default=now + ttl)
    if not queue:
        if place is not None:
            del state.waiters[place]
        return SemaphoreGrant(False, 0, now, 0, retry_at)
    expires = now + WAITER_TTL_FACTOR * ttl
    nudges: tuple[Wake, ...] = ()
    if place is None:
        state.waiters.append(SemaphoreWaiter(holder, now, expires, address, info))
        place = len(state.waiters) - 1
        nudges = tuple(Wake(h.holder, h.address) for h in state.holders if h.address)
    else:
        waiter = state.waiters[place]
        waiter.expires, waiter.address = expires, address or waiter.address
    return SemaphoreGrant(False, 0, expires, place + 1, retry_at, nudges=nudges)


def release_in(state: SemaphoreState, holder: str, *, now: float) -> list[Wake]:
    """Free ``holder``'s slot (nothing when it holds none), or drop it from the queue;
    the waiters that may now take a slot, in order."""
    state.holders = [h for h in state.holders if h.holder != holder]
    state.waiters = [w for w in state.waiters if w.waiter != holder]
    _expire(state, now)
    return _due(state)


cancel_in = release_in
"""A waiter giving up: the same step as a release (it leaves the queue)."""


def renew_in(
    state: SemaphoreState, holders: list[str], *, ttl: float, now: float
) -> list[int]:
    """Extend each of ``holders``' hold to ``now + ttl``; per holder its fencing token,
    or 0 when it no longer holds (its hold expired: another may have the slot)."""
    _expire(state, now)
    by_id = {h.holder: h for h in state.holders}
    out = []
    for holder in holders:
        h = by_id.get(holder)
        if h is None:
            out.append(0)
        else:
            h.expires = now + ttl
            out.append(h.token)
    return out


@dataclass(frozen=True, slots=True)
class ParkedBatch:
    """A batch parked behind a task token (see the module docstring).

    Attributes:
        token: the task token.
        mapping: the mapping whose batch it is.
        queue: the queue its messages came from.
        receipt_handles: message id -> receipt handle, in batch order.
        heartbeat: seconds each heartbeat keeps the messages hidden.
        report_batch_item_failures: whether a success's output may name failed items.
        parked_at: when it was parked (epoch seconds, store clock).
    """

    token: str
    mapping: str
    queue: str
    receipt_handles: dict[str, str]
    heartbeat: float
    report_batch_item_failures: bool = False
    parked_at: float = 0.0

    def to_json(self) -> str:
        return json.dumps({
            "token": self.token, "mapping": self.mapping, "queue": self.queue,
            "receipt_handles": self.receipt_handles, "heartbeat": self.heartbeat,
            "report_batch_item_failures": self.report_batch_item_failures,
            "parked_at": self.parked_at,
        })

    @classmethod
    def from_json(cls, text: str) -> ParkedBatch:
        raw: dict[str, Any] = json.loads(text)
        return cls(
            str(raw["token"]), str(raw["mapping"]), str(raw["queue"]),
            {str(k): str(v) for k, v in raw["receipt_handles"].items()},
            float(raw["heartbeat"]), bool(raw["report_batch_item_failures"]),
            float(raw["parked_at"]),
        )


class MemorySemaphores:
    """The semaphores and parked batches of one memory store (the
    :class:`~sluicegate.store.engine.SemaphoreEngine` of plain dicts), at ``clock``."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.states: dict[str, SemaphoreState] = {}
        self.parked: dict[str, tuple[float, str]] = {}

    def _state(self, name: str) -> SemaphoreState:
        state = self.states.get(name)
        if state is None:
            state = self.states[name] = SemaphoreState(name)
        return state

    def semaphore_acquire(self, name: str, holder: str, limit: int, ttl: float, queue: bool,
                          address: str, info: str, yieldable: bool) -> SemaphoreGrant:
        return acquire_in(self._state(name), holder, limit=limit, ttl=ttl, now=self.clock(),
                          queue=queue, address=address, info=info, yieldable=yieldable)

    def semaphore_release(self, name: str, holder: str) -> list[Wake]:
        return release_in(self._state(name), holder, now=self.clock())

    def semaphore_renew(self, name: str, holders: list[str], ttl: float) -> list[int]:
        return renew_in(self._state(name), holders, ttl=ttl, now=self.clock())

    def semaphore_states(self, names: list[str] | None) -> list[SemaphoreState]:
        now = self.clock()
        out = []
        for name in self.states if names is None else names:
            state = self.states.get(name)
            if state is not None:
                _expire(state, now)
                out.append(SemaphoreState.from_json(state.to_json()))
        return out

    def put_parked(self, token: str, record: str, ttl: float) -> None:
        self.parked[token] = (self.clock() + ttl, record)

    def get_parked(self, token: str, take: bool) -> str | None:
        entry = self.parked.get(token)
        if entry is None or entry[0] <= self.clock():
            self.parked.pop(token, None)
            return None
        if take:
            del self.parked[token]
        return entry[1]
