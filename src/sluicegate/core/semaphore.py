"""A counted semaphore shared by the mappings of one event loop, as terms of their limits.

``app.semaphore("db", limit=3)`` and ``app.map(..., semaphores=("db",))`` mean: every
invocation of the mapping holds one slot of ``db`` from its start to its end, and the
mappings naming ``db`` never hold more than 3 slots together. When every holder lives
in one event loop (the simulator), the semaphore is one :class:`SharedSemaphore` and
each mapping's share of it is a :class:`SemaphoreTerm` of its
:class:`~sluicegate.core.limit.ConcurrencyLimit`, named ``semaphore:NAME``. (The
runtime's semaphores live in the store, shared across processes; its terms have the
same name.)

A term's value is the slots its mapping holds, plus the slots it may take now:

- while nobody waits, every free slot (``limit`` minus the slots held and handed out):
  an uncontended semaphore lets any mapping start;
- while mappings wait, only the slots handed to it (:attr:`SemaphoreTerm.reserved`).

Waiting, in arrival order. A mapping *waits* when no slot is free and its limit is
bound by the semaphore (it could run more): its driver calls :meth:`SharedSemaphore.wait`
then. Each slot released while mappings wait is handed to the first of them, which may
start on it (its driver wakes it: :meth:`SharedSemaphore.release` says whom); the one
that released it, if it could run more, gets in line behind those already waiting. So a
busy mapping cannot keep a semaphore to itself by taking back each slot it frees, as a
plain "held plus free" would let the first mapping to poll do. A slot handed out and not taken within
``yield_after`` seconds (the holder had nothing to start) goes on to the next waiter
(:meth:`SharedSemaphore.expire`), as the runtime hands back an idle spare slot.

A driver calls :meth:`SemaphoreTerm.take` when an invocation starts and
:meth:`SemaphoreTerm.release` when it ends; a mapping starts an invocation only while
its limit (this term included) is above its invocations in flight, so a take always
finds a slot. Both happen at events, so the term says no change by itself
(:meth:`SemaphoreTerm.next_change` is ``None``); the driver wakes the mappings whose
value rose.

Pure: every method that depends on time takes ``now`` (seconds) and none reads a clock.
"""

from __future__ import annotations

from collections import deque
from typing import Final

__all__ = [
    "SEMAPHORE_TERM_PREFIX",
    "YIELD_AFTER",
    "SemaphoreTerm",
    "SharedSemaphore",
    "semaphore_term_name",
]

SEMAPHORE_TERM_PREFIX: Final = "semaphore:"
"""What a semaphore's limit term is named: this prefix and the semaphore's name."""

YIELD_AFTER: Final = 0.05
"""Seconds a slot handed to a waiting mapping stays with it untaken before it goes on to
the next waiter (the runtime's idle spare hand-back)."""


def semaphore_term_name(semaphore: str) -> str:
    """The limit term of a mapping that needs ``semaphore``: ``semaphore:NAME``."""
    return SEMAPHORE_TERM_PREFIX + semaphore


class SemaphoreTerm:
    """One mapping's share of a :class:`SharedSemaphore`: a limit term (see the module
    docstring). Made by :meth:`SharedSemaphore.term`.

    Attributes:
        name: ``semaphore:NAME``.
        index: its position among the semaphore's terms (for a driver's own tables).
        held: slots held (invocations running).
        reserved: slots handed to it while it waited, not yet taken.
        reserved_at: when the oldest of them was handed over.
        queued: whether it waits in line.
    """

    __slots__ = ("held", "index", "name", "queued", "reserved", "reserved_at", "semaphore")

    def __init__(self, semaphore: SharedSemaphore, index: int) -> None:
        self.semaphore = semaphore
        self.index = index
        self.name = semaphore_term_name(semaphore.name)
        self.held = 0
        self.reserved = 0
        self.reserved_at = 0.0
        self.queued = False

    def __repr__(self) -> str:
        return (f"SemaphoreTerm({self.name!r}, held={self.held}, "
                f"reserved={self.reserved}, queued={self.queued})")

    def value(self, now: float) -> int:
        """Slots held, plus those it may take now (see the module docstring)."""
        s = self.semaphore
        if s.waiting:
            return self.held + self.reserved
        return self.held + self.reserved + s.limit - s.held - s.reserved

    def next_change(self, now: float) -> float | None:
        """``None``: the value changes at takes, releases and hand-overs, which the
        driver performs (and wakes the mappings concerned)."""
        return None

    def take(self, now: float) -> None:
        """An invocation starts: hold a slot (a handed one first).

        Raises:
            RuntimeError: no slot to take (a driver that started an invocation above
                its mapping's limit).
        """
        self.semaphore.take(self, now)

    def release(self, now: float) -> list[SemaphoreTerm]:
        """An invocation ended: :meth:`SharedSemaphore.release` of this term."""
        return self.semaphore.release(self, now)


class SharedSemaphore:
    """A counted semaphore of ``limit`` slots shared by the mappings of one event loop.

    Parameters:
        name: the semaphore's name (``app.semaphore``'s).
        limit: slots, an integer >= 1.
        yield_after: seconds a handed slot stays untaken before it goes on to the next
            waiter.

    Raises:
        ValueError: a limit below 1, or a negative ``yield_after``.

    Attributes:
        held: slots held, over every term.
        reserved: slots handed to waiting terms, not yet taken.
        peak: the most slots held at once.
        waiting: the terms waiting for a slot, first in line first.
        terms: every term, in the order made.
    """

    __slots__ = ("held", "limit", "name", "peak", "reserved", "terms", "waiting",
                 "yield_after")

    def __init__(self, name: str, limit: int, *, yield_after: float = YIELD_AFTER) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"semaphore {name!r}: limit {limit!r} is not an integer >= 1")
        if yield_after < 0:
            raise ValueError(f"semaphore {name!r}: yield_after {yield_after!r} is negative")
        self.name = name
        self.limit = limit
        self.yield_after = yield_after
        self.held = 0
        self.reserved = 0
        self.peak = 0
        self.waiting: deque[SemaphoreTerm] = deque()
        self.terms: list[SemaphoreTerm] = []

    def __repr__(self) -> str:
        return (f"SharedSemaphore({self.name!r}, limit={self.limit}, held={self.held}, "
                f"reserved={self.reserved}, waiting={len(self.waiting)})")

    @property
    def free(self) -> int:
        """Slots neither held nor handed out."""
        return self.limit - self.held - self.reserved

    def term(self) -> SemaphoreTerm:
        """A new holder's term (one per mapping that names the semaphore)."""
        term = SemaphoreTerm(self, len(self.terms))
        self.terms.append(term)
        return term

    def take(self, term: SemaphoreTerm, now: float) -> None:
        """``term``'s mapping starts an invocation at ``now``: it holds one more slot, a
        handed one if it has any, else a free one (only while nobody waits).

        Raises:
            RuntimeError: ``term`` has no slot to take.
        """
        if term.reserved:
            term.reserved -= 1
            self.reserved -= 1
            if term.reserved:
                term.reserved_at = now  # the next one's idle time starts now
        elif self.waiting or self.held + self.reserved >= self.limit:
            raise RuntimeError(f"semaphore {self.name!r}: no slot for {term.name} "
                               f"(held {self.held}/{self.limit}); an invocation started "
                               "above its mapping's limit")
        term.held += 1
        self.held += 1
        self.peak = max(self.peak, self.held)

    def release(self, term: SemaphoreTerm, now: float) -> list[SemaphoreTerm]:
        """``term``'s mapping ended an invocation at ``now``: its slot goes to the first
        waiter, else back to the free slots.

        Returns:
            The terms whose value rose, whose mappings may start now: the waiter handed
            the slot; or, when no slot was free and nobody waited, every other term (one
            may be bound by the semaphore without having got in line yet); else none.

        Raises:
            RuntimeError: ``term`` holds no slot.
        """
        if term.held <= 0:
            raise RuntimeError(f"semaphore {self.name!r}: {term.name} holds no slot")
        was_full = self.held + self.reserved >= self.limit
        term.held -= 1
        self.held -= 1
        waiting = self.waiting
        if waiting:
            return [self._hand(waiting.popleft(), now)]
        if was_full:
            return [t for t in self.terms if t is not term]
        return []

    def wait(self, term: SemaphoreTerm) -> bool:
        """``term``'s mapping is bound by the semaphore: get in line for the next slot
        released. Only while no slot is free (a free slot is its to take).

        Returns:
            Whether it got in line (``False``: in line already, or a slot is free).
        """
        if term.queued or self.held + self.reserved < self.limit:
            return False
        term.queued = True
        self.waiting.append(term)
        return True

    def expire(self, term: SemaphoreTerm, now: float) -> list[SemaphoreTerm]:
        """Pass on ``term``'s handed slots that stayed untaken ``yield_after`` seconds by
        ``now``, one to each other waiter in line; ``term`` gets in line behind them.

        Returns:
            The terms handed a slot (their mappings may start now).
        """
        if not term.reserved or now < term.reserved_at + self.yield_after:
            return []
        waiting = self.waiting
        handed: list[SemaphoreTerm] = []
        while term.reserved and any(t is not term for t in waiting):
            other = waiting.popleft()
            if other is term:
                waiting.append(other)
                continue
            term.reserved -= 1
            self.reserved -= 1
            handed.append(self._hand(other, now))
        if handed and not term.queued:
            term.queued = True
            waiting.append(term)
        return handed

    def yield_at(self, term: SemaphoreTerm) -> float | None:
        """When :meth:`expire` would pass on ``term``'s handed slots (someone else
        waits); ``None`` when it would not."""
        if term.reserved and any(t is not term for t in self.waiting):
            return term.reserved_at + self.yield_after
        return None

    def close(self) -> None:
        """Forget the terms and the line: the semaphore and its terms refer to each
        other, and a driver that pauses the cyclic garbage collector (the simulator)
        breaks the cycle once its run is over. The terms keep their last values."""
        self.terms = []
        self.waiting.clear()

    def _hand(self, term: SemaphoreTerm, now: float) -> SemaphoreTerm:
        term.queued = False
        if not term.reserved:
            term.reserved_at = now
        term.reserved += 1
        self.reserved += 1
        return term
