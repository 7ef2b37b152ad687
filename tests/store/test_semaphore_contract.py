"""The semaphore part of the store contract, on every backend (see conftest.py): limit,
FIFO waiters woken by the release, fencing tokens, expiry of dead holders and waiters,
renewal, parked batches.

Time moves only through the injected ``clock``, except where a waiter really waits for a
wake (a release wakes it at once; nothing sleeps for long).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sluicegate.errors import InputError
from sluicegate.store import Store
from sluicegate.store.semaphores import ParkedBatch
from sluicegate.testing import VirtualClock

from .conftest import START


async def test_a_semaphore_grants_up_to_its_limit(store: Store) -> None:
    # Given a limit of 2, two tokens take a slot each
    a = await store.acquire_semaphore("db", "a", limit=2, ttl=5, timeout=0)
    b = await store.acquire_semaphore("db", "b", limit=2, ttl=5, timeout=0)
    assert a.acquired and b.acquired and a.expires == START + 5
    # When a third tries without waiting, it is refused and not queued
    c = await store.acquire_semaphore("db", "c", limit=2, ttl=5, timeout=0)
    assert (c.acquired, c.token, c.position) == (False, 0, 0)
    assert c.retry_at == START + 5  # the earliest holder's expiry
    (state,) = await store.list_semaphores()
    assert (state.name, state.limit) == ("db", 2)
    assert [h.holder for h in state.holders] == ["a", "b"] and state.waiters == []
    # Then a release lets it in
    await store.release_semaphore("db", "a")
    assert (await store.acquire_semaphore("db", "c", limit=2, ttl=5, timeout=0)).acquired


async def test_fencing_tokens_strictly_increase(store: Store, clock: VirtualClock) -> None:
    tokens = []
    for i in range(6):
        grant = await store.acquire_semaphore("lock", f"t{i}", limit=1, ttl=5, timeout=0)
        assert grant.acquired
        tokens.append(grant.token)
        if i % 2:
            await store.release_semaphore("lock", f"t{i}")
        else:
            clock.advance(5)  # the holder "dies": its slot frees by expiry
    assert tokens == sorted(set(tokens)) and tokens[0] >= 1
    # a holder attempting again keeps its token (a renewal), and renew says it holds
    again = await store.acquire_semaphore("lock", "t6", limit=1, ttl=5, timeout=0)
    assert (await store.acquire_semaphore("lock", "t6", limit=1, ttl=5, timeout=0)).token == (
        again.token)
    assert await store.renew_semaphore("lock", ["t6", "gone"], ttl=5) == [again.token, 0]


async def test_a_dead_holder_frees_its_slot_by_expiry_unless_it_renews(
    store: Store, clock: VirtualClock
) -> None:
    await store.acquire_semaphore("db", "alive", limit=2, ttl=5, timeout=0)
    await store.acquire_semaphore("db", "dead", limit=2, ttl=5, timeout=0)
    clock.advance(4)
    assert await store.renew_semaphore("db", ["alive"], ttl=5) != [0]
    clock.advance(2)  # dead's hold ran out at START+5; alive's lasts to START+9
    grant = await store.acquire_semaphore("db", "next", limit=2, ttl=5, timeout=0)
    assert grant.acquired
    (state,) = await store.list_semaphores(["db"])
    assert sorted(h.holder for h in state.holders) == ["alive", "next"]
    assert await store.renew_semaphore("db", ["dead"], ttl=5) == [0]


async def test_waiters_are_served_in_arrival_order_and_woken_by_the_release(
    store: Store,
) -> None:
    # Given one slot held, three waiters queue in order
    await store.acquire_semaphore("db", "holder", limit=1, ttl=30, timeout=0)
    order: list[str] = []

    async def wait(token: str) -> None:
        grant = await store.acquire_semaphore("db", token, limit=1, ttl=30, timeout=10)
        assert grant.acquired
        order.append(token)
        await asyncio.sleep(0.01)
        await store.release_semaphore("db", token)

    tasks = []
    for token in ("w1", "w2", "w3"):
        tasks.append(asyncio.ensure_future(wait(token)))
        for _ in range(50):  # until it is queued
            await asyncio.sleep(0.002)
            (state,) = await store.list_semaphores(["db"])
            if token in [w.waiter for w in state.waiters]:
                break
    (state,) = await store.list_semaphores(["db"])
    assert [w.waiter for w in state.waiters] == ["w1", "w2", "w3"]
    # A newcomer does not overtake them, even when a slot is free for an instant
    assert not (await store.acquire_semaphore("db", "late", limit=2, ttl=30, timeout=0)).acquired
    # When the holder releases, they follow one another, in order, each woken by the last
    await store.release_semaphore("db", "holder")
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert order == ["w1", "w2", "w3"]
    (state,) = await store.list_semaphores(["db"])
    assert state.holders == [] and state.waiters == []


async def test_a_waiter_that_times_out_leaves_the_queue(store: Store) -> None:
    await store.acquire_semaphore("db", "holder", limit=1, ttl=30, timeout=0)
    grant = await store.acquire_semaphore("db", "impatient", limit=1, ttl=30, timeout=0.05)
    assert not grant.acquired
    (state,) = await store.list_semaphores(["db"])
    assert state.waiters == []


async def test_a_cancelled_waiter_leaves_the_queue_and_passes_the_wake_on(store: Store) -> None:
    await store.acquire_semaphore("db", "holder", limit=1, ttl=30, timeout=0)
    first = asyncio.ensure_future(store.acquire_semaphore("db", "w1", limit=1, ttl=30))
    await asyncio.sleep(0.02)
    second = asyncio.ensure_future(store.acquire_semaphore("db", "w2", limit=1, ttl=30))
    await asyncio.sleep(0.02)
    await store.release_semaphore("db", "holder")  # wakes w1 ...
    first.cancel()  # ... which gives up before it attempts: w2 must still get in
    grant = await asyncio.wait_for(second, 5)
    assert grant.acquired


async def test_a_dead_waiter_is_dropped_by_the_wake_or_by_expiry(
    store: Store, clock: VirtualClock
) -> None:
    # a waiter whose process died (its wake address answers nobody) is dropped when a
    # release tries to wake it ...
    await store.acquire_semaphore("db", "holder", limit=1, ttl=5, timeout=0)
    assert not (await store._semaphore_acquire("db", "dead", 1, 5, True, "", "")).acquired
    await store.release_semaphore("db", "holder")
    assert (await store.acquire_semaphore("db", "b", limit=1, ttl=5, timeout=0)).acquired
    # ... and, when no release comes, when its entry runs out (3 ttls after it queued)
    assert not (await store._semaphore_acquire("db", "dead", 1, 5, True, "", "")).acquired
    clock.advance(6)  # b's hold has expired, but the dead waiter is still ahead
    assert not (await store.acquire_semaphore("db", "c", limit=1, ttl=5, timeout=0)).acquired
    clock.advance(9)
    assert (await store.acquire_semaphore("db", "c", limit=1, ttl=5, timeout=0)).acquired


async def test_a_yieldable_holder_is_nudged_when_someone_queues(
    store: Store, new_store: Any, backend: str
) -> None:
    nudged: list[str] = []
    grant = await store.acquire_semaphore("db", "spare", limit=1, ttl=30, timeout=0,
                                          on_nudge=lambda: nudged.append("spare"))
    assert grant.acquired and grant.behind == 0
    # a waiter in this store object, or (shared backends) in another one, nudges it
    other = store
    if backend != "memory":
        other = new_store(backend)
        await other.open()
    waiter = asyncio.ensure_future(other.acquire_semaphore("db", "w", limit=1, ttl=30))
    for _ in range(100):
        await asyncio.sleep(0.01)
        if nudged:
            break
    assert nudged[:1] == ["spare"]
    # the holder hands the slot back: the waiter gets it
    await store.release_semaphore("db", "spare")
    assert (await asyncio.wait_for(waiter, 5)).acquired
    # a yieldable holder granted while others wait learns how many
    third = asyncio.ensure_future(other.acquire_semaphore("db", "x", limit=1, ttl=30))
    await asyncio.sleep(0.05)
    await other.release_semaphore("db", "w")
    assert (await asyncio.wait_for(third, 5)).acquired
    await other.release_semaphore("db", "x")


async def test_bad_arguments_are_refused(store: Store) -> None:
    with pytest.raises(InputError, match="limit"):
        await store.acquire_semaphore("db", "a", limit=0, ttl=5)
    with pytest.raises(InputError, match="ttl"):
        await store.acquire_semaphore("db", "a", limit=1, ttl=0)
    with pytest.raises(InputError, match="semaphore name"):
        await store.acquire_semaphore("", "a", limit=1, ttl=5)
    with pytest.raises(InputError, match="timeout"):
        await store.acquire_semaphore("db", "a", limit=1, ttl=5, timeout=-1)


async def test_a_parked_batch_is_taken_once_and_expires(store: Store, clock: VirtualClock) -> None:
    batch = ParkedBatch("tok", "q->f", "q", {"m1": "h1"}, 30.0, True, START)
    await store.park(batch, ttl=30)
    assert await store.parked("tok") == batch
    assert await store.parked("tok", take=True) == batch
    assert await store.parked("tok", take=True) is None  # a second completion finds nothing
    await store.park(batch, ttl=30)
    clock.advance(31)  # no heartbeat: gone
    assert await store.parked("tok") is None


async def test_every_backend_follows_the_rules_of_the_pure_model(
    store: Store, clock: VirtualClock
) -> None:
    """A random history of attempts, releases, renewals and waits gives the same answers
    on every backend as sluicegate.store.semaphores applied to a plain state."""
    import random

    from sluicegate.store.semaphores import SemaphoreState, acquire_in, release_in, renew_in

    rng = random.Random(7)
    model = SemaphoreState("db")
    address = await store._wake_address()  # a live one: the Redis release drops the dead
    for _ in range(150):
        op = rng.choice(["try", "try", "release", "renew", "wait"])
        token = f"t{rng.randrange(5)}"
        now = clock()
        if op == "try":
            want = acquire_in(model, token, limit=2, ttl=5, now=now, queue=True,
                              address=address)
            got = await store._semaphore_acquire("db", token, 2, 5, True, address, "")
            assert (got.acquired, got.token, got.position) == (
                want.acquired, want.token, want.position)
        elif op == "release":
            release_in(model, token, now=now)
            await store._semaphore_release("db", token)
        elif op == "renew":
            assert await store.renew_semaphore("db", [token], ttl=5) == renew_in(
                model, [token], ttl=5, now=now)
        else:
            clock.advance(rng.choice([0.5, 3.0, 7.0]))
    (state,) = await store.list_semaphores(["db"])
    assert [h.holder for h in state.holders] == [
        h.holder for h in model.holders if h.expires > clock()]
    assert [w.waiter for w in state.waiters] == [
        w.waiter for w in model.waiters if w.expires > clock()]
