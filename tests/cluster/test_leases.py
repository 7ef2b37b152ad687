"""Counted leases under real concurrency, on one SQLite file and a real redis-server:
several store objects (as several processes would have) claim at once. The lease rules
themselves are checked on every backend in tests/store/test_lease_contract.py.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from sluicegate.cluster.leases import Lease, LeaseClient
from sluicegate.store import RedisStore, SqliteStore, Store


@pytest.fixture(params=["sqlite", "redis"])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Store]:
    """Stores of one kind sharing one database (not opened)."""
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        return lambda: RedisStore(url)
    return lambda: SqliteStore(tmp_path / "shared.db")


def run(new_store: Callable[[], Store], n: int,
        body: Callable[[list[Store]], Awaitable[None]]) -> None:
    async def main() -> None:
        stores = [new_store() for _ in range(n)]
        for store in stores:
            await store.open()
        try:
            await body(stores)
        finally:
            for store in stores:
                await store.close()

    asyncio.run(main())


def test_the_sum_of_held_counts_never_exceeds_the_limit(new_store: Callable[[], Store]) -> None:
    """Eight claimers, each with its own store object, with random wants and in-use counts
    (never above what they were granted) claim concurrently; after every claim the
    stored counts sum to at most the limit."""
    limit = 13

    async def body(stores: list[Store]) -> None:
        rng = random.Random(7)
        clients = [LeaseClient(store, f"w{i}", ttl=5) for i, store in enumerate(stores)]
        granted = dict.fromkeys(range(8), 0)
        violations: list[str] = []

        async def worker(i: int) -> None:
            for _ in range(40):
                in_use = rng.randint(0, granted[i])
                grant = await clients[i].claim("m", want=rng.randint(0, 20), limit=limit,
                                               in_use=in_use)
                granted[i] = grant.granted
                assert grant.held >= in_use
                total = sum(h.count for h in await clients[i].holders("m"))
                if total > limit:
                    violations.append(f"{total} > {limit}")

        await asyncio.gather(*(worker(i) for i in range(8)))
        assert violations == []

    run(new_store, 8, body)


def test_an_expired_holder_is_dropped_in_real_time(new_store: Callable[[], Store]) -> None:
    async def body(stores: list[Store]) -> None:
        dead = LeaseClient(stores[0], "dead", ttl=0.2)
        alive = LeaseClient(stores[1], "alive", ttl=5)
        await dead.claim("m", want=10, limit=10, in_use=10)
        assert (await alive.claim("m", want=10, limit=10)).granted == 0
        await asyncio.sleep(0.3)  # the dead worker never renews
        assert (await alive.claim("m", want=10, limit=10)).granted == 10
        assert [h.holder for h in await alive.holders("m")] == ["alive"]

    run(new_store, 2, body)


def test_a_worker_stops_using_its_share_before_the_store_expires_it(
        new_store: Callable[[], Store]) -> None:
    """The local deadline counts from before the claim was sent, less a margin."""
    now = [100.0]
    lease = Lease("m", ttl=1.0, clock=lambda: now[0])

    async def body(stores: list[Store]) -> None:
        client = LeaseClient(stores[0], "a", ttl=1.0)
        sent = now[0]
        lease.update(await client.claim("m", want=3, limit=5), sent)
        assert lease.share() == 3 and lease.token > 0
        now[0] = sent + 0.89
        assert lease.share() == 3
        now[0] = sent + 0.9
        assert lease.share() == 0  # lapsed by the worker's own clock; the store still has it
        assert [h.holder for h in await client.holders("m")] == ["a"]

    run(new_store, 1, body)
