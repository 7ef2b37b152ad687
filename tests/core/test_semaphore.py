"""A semaphore shared by mappings of one event loop: terms, takes, releases, the line."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sluicegate.core.limit import ConcurrencyLimit, Fixed
from sluicegate.core.semaphore import (
    YIELD_AFTER,
    SharedSemaphore,
    semaphore_term_name,
)


def test_a_term_is_its_slots_held_plus_the_free_ones_while_nobody_waits() -> None:
    # Given a semaphore of 3 shared by two mappings
    db = SharedSemaphore("db", 3)
    a, b = db.term(), db.term()
    assert a.name == b.name == semaphore_term_name("db") == "semaphore:db"
    assert (a.value(0.0), b.value(0.0)) == (3, 3)
    # When a takes two slots
    a.take(0.0)
    a.take(0.1)
    # Then each sees what it holds plus the one free slot
    assert (a.value(0.1), b.value(0.1)) == (3, 1)
    assert (db.held, db.free, db.peak) == (2, 1, 2)
    assert a.next_change(0.1) is None


def test_a_take_without_a_slot_is_a_driver_bug() -> None:
    db = SharedSemaphore("db", 1)
    a, b = db.term(), db.term()
    a.take(0.0)
    with pytest.raises(RuntimeError, match="no slot for semaphore:db"):
        b.take(0.0)
    with pytest.raises(RuntimeError, match="holds no slot"):
        b.release(0.0)


def test_a_release_while_nobody_waits_frees_the_slot_and_wakes_the_others_when_it_was_full(
) -> None:
    db = SharedSemaphore("db", 2)
    a, b, c = db.term(), db.term(), db.term()
    a.take(0.0)
    # not full before: nobody needs waking
    assert a.release(1.0) == []
    a.take(1.0)
    a.take(1.0)
    # full before, nobody in line: the others may start now
    assert a.release(2.0) == [b, c]
    assert (b.value(2.0), a.value(2.0)) == (1, 2)


def test_a_released_slot_goes_to_the_first_in_line_not_back_to_the_one_that_freed_it(
) -> None:
    # Given a holding all 3 slots and b waiting (bound by the semaphore)
    db = SharedSemaphore("db", 3)
    a, b = db.term(), db.term()
    for _ in range(3):
        a.take(0.0)
    assert db.wait(b) is True
    assert db.wait(b) is False  # once in line
    # When a's invocation ends
    assert a.release(1.0) == [b]
    # Then the slot is b's: a cannot take it back
    assert (a.value(1.0), b.value(1.0)) == (2, 1)
    with pytest.raises(RuntimeError):
        a.take(1.0)
    b.take(1.0)
    assert (b.held, b.reserved, db.held, db.reserved) == (1, 0, 3, 0)
    # and a, in line now, gets the next slot freed, whoever frees it
    assert db.wait(a) is True
    assert b.release(1.5) == [a]
    assert (a.value(1.5), b.value(1.5)) == (3, 0)


def test_nobody_gets_in_line_while_a_slot_is_free() -> None:
    db = SharedSemaphore("db", 2)
    a, b = db.term(), db.term()
    a.take(0.0)
    assert db.wait(b) is False
    assert not db.waiting


def test_a_handed_slot_left_untaken_goes_on_to_the_next_in_line() -> None:
    # Given a full semaphore with b then c in line
    db = SharedSemaphore("db", 2)
    a, b, c = db.term(), db.term(), db.term()
    a.take(0.0)
    a.take(0.0)
    db.wait(b)
    db.wait(c)
    # When a frees a slot at t=1: handed to b
    assert a.release(1.0) == [b]
    assert db.yield_at(b) == pytest.approx(1.0 + YIELD_AFTER)
    # Then before the idle time is up b keeps it; after, c gets it and b is in line
    assert db.expire(b, 1.0 + YIELD_AFTER / 2) == []
    assert db.expire(b, 1.0 + YIELD_AFTER) == [c]
    assert (b.value(1.1), c.value(1.1)) == (0, 1)
    assert list(db.waiting) == [b]
    # and c's, idle in turn, goes back to b, the only other one in line
    assert db.expire(c, 5.0) == [b]
    assert list(db.waiting) == [c]
    assert db.yield_at(b) == pytest.approx(5.0 + YIELD_AFTER)


def test_a_handed_slot_nobody_else_waits_for_stays() -> None:
    db = SharedSemaphore("db", 1)
    a, b = db.term(), db.term()
    a.take(0.0)
    db.wait(b)
    assert a.release(1.0) == [b]
    assert db.yield_at(b) is None
    assert db.expire(b, 9.0) == []
    assert b.value(9.0) == 1


def test_a_slot_taken_in_time_is_not_passed_on() -> None:
    db = SharedSemaphore("db", 1)
    a, b, c = db.term(), db.term(), db.term()
    a.take(0.0)
    db.wait(b)
    db.wait(c)
    a.release(1.0)
    b.take(1.01)
    assert db.expire(b, 2.0) == []
    assert (db.held, db.reserved, b.held) == (1, 0, 1)


def test_as_a_limit_term_the_semaphore_binds_and_is_named() -> None:
    # Given two mappings' limits: maximum_concurrency 5 each, one semaphore of 3
    db = SharedSemaphore("db", 3)
    a, b = db.term(), db.term()
    limit_a = ConcurrencyLimit([Fixed("maximum_concurrency", 5), a])
    limit_b = ConcurrencyLimit([Fixed("maximum_concurrency", 5), b])
    assert limit_a.fixed is None  # dynamic: read at every poll
    assert (limit_a.value(0.0), limit_a.reason(0.0)) == (3, "semaphore:db")
    # When a holds 3
    for _ in range(3):
        a.take(0.0)
    # Then b's limit is 0, bound by the semaphore
    assert (limit_b.value(0.0), limit_b.reason(0.0)) == (0, "semaphore:db")
    assert limit_b.describe(0.0) == {"maximum_concurrency": 5, "semaphore:db": 0}


def test_a_large_semaphore_does_not_bind() -> None:
    db = SharedSemaphore("db", 12)
    a, b = db.term(), db.term()
    limit_a = ConcurrencyLimit([Fixed("maximum_concurrency", 5), a])
    for _ in range(5):
        b.take(0.0)
    assert (limit_a.value(0.0), limit_a.reason(0.0)) == (5, "maximum_concurrency")


@pytest.mark.parametrize("limit", [0, -1, True, 1.5])
def test_a_limit_below_one_is_refused(limit: object) -> None:
    with pytest.raises(ValueError, match="semaphore 'db': limit"):
        SharedSemaphore("db", limit)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- properties

_STEPS = st.lists(
    st.tuples(st.sampled_from(["start", "end", "line", "expire"]),
              st.integers(0, 3), st.floats(0.0, 0.2)),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(limit=st.integers(1, 5), caps=st.lists(st.integers(1, 6), min_size=1, max_size=4),
       steps=_STEPS)
def test_whatever_the_order_the_slots_held_never_exceed_the_limit(
        limit: int, caps: list[int], steps: list[tuple[str, int, float]]) -> None:
    # Given mappings with their own caps sharing one semaphore, driven as a driver does:
    # an invocation starts only below the mapping's limit (its cap and the term)
    db = SharedSemaphore("db", limit)
    terms = [db.term() for _ in caps]
    limits = [ConcurrencyLimit([Fixed("maximum_concurrency", c), t])
              for c, t in zip(caps, terms, strict=True)]
    now = 0.0
    for op, i, dt in steps:
        now += dt
        k = i % len(terms)
        term, lim = terms[k], limits[k]
        if op == "start" and term.held < lim.value(now):
            term.take(now)
        elif op == "end" and term.held:
            first = db.waiting[0] if db.waiting else None
            handed = term.release(now)
            if first is not None:  # the slot goes to the first in line, whoever freed it
                assert handed == [first]
        elif op == "line" and lim.reason(now) == term.name:
            db.wait(term)
        elif op == "expire":
            assert term not in db.expire(term, now)
        # Then
        assert 0 <= db.held <= db.peak <= limit
        assert db.held + db.reserved <= limit
        assert db.held == sum(t.held for t in terms)
        assert db.reserved == sum(t.reserved for t in terms)
        assert not db.waiting or db.free == 0
        assert len(set(map(id, db.waiting))) == len(db.waiting)
        assert all(t.queued == (t in db.waiting) for t in terms)
        assert all(t.value(now) >= t.held for t in terms)
