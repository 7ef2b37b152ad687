"""Counted leases against a real redis-server: grants, expiry, renewal, fairness, release.

Timing-dependent tests use ttls of a fraction of a second; the invariant tests run many
concurrent claimers and check the sum of stored counts after every claim.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

from sluicegate.cluster.leases import Lease, LeaseClient
from sluicegate.store.redis_client import connect


def run(url: str, body: Callable[[Any], Awaitable[None]]) -> None:
    async def main() -> None:
        redis = connect(url)
        try:
            await body(redis)
        finally:
            await redis.aclose()

    asyncio.run(main())


def test_a_holder_gets_what_it_wants_within_the_limit(redis_url: str) -> None:
    async def body(redis: Any) -> None:
        a = LeaseClient(redis, "a", ttl=5)
        b = LeaseClient(redis, "b", ttl=5)
        # Given a limit of 10, a takes 7
        assert (await a.claim("m", want=7, limit=10)).granted == 7
        # When b wants 10, it gets the 3 left
        grant = await b.claim("m", want=10, limit=10)
        assert (grant.granted, grant.free) == (3, 0)
        # Then a, renewing, gives back down to its fair share (b is waiting) ...
        grant = await a.claim("m", want=7, limit=10, in_use=0)
        assert grant.granted == 5
        # ... and b grows into it
        assert (await b.claim("m", want=10, limit=10)).granted == 5

    run(redis_url, body)


def test_running_invocations_are_never_taken_back(redis_url: str) -> None:
    async def body(redis: Any) -> None:
        a = LeaseClient(redis, "a", ttl=5)
        b = LeaseClient(redis, "b", ttl=5)
        await a.claim("m", want=10, limit=10)
        await b.claim("m", want=10, limit=10)  # hungry: a must come down to 5
        grant = await a.claim("m", want=10, limit=10, in_use=8)
        # a may start nothing (granted 5 < 8 running) but keeps 8 counted ...
        assert (grant.granted, grant.held) == (5, 8)
        # ... so b still gets only the 2 nobody holds
        assert (await b.claim("m", want=10, limit=10)).granted == 2
        grant = await a.claim("m", want=10, limit=10, in_use=4)
        assert (grant.granted, grant.held) == (5, 5)
        assert (await b.claim("m", want=10, limit=10)).granted == 5

    run(redis_url, body)


def test_three_workers_on_ten_share_all_ten_evenly(redis_url: str) -> None:
    async def body(redis: Any) -> None:
        clients = [LeaseClient(redis, name, ttl=5) for name in "abc"]
        grants = [0, 0, 0]
        for _ in range(4):  # a few renewal rounds
            for i, c in enumerate(clients):
                grants[i] = (await c.claim("m", want=10, limit=10, in_use=0)).granted
        assert sum(grants) == 10
        assert sorted(grants) == [3, 3, 4]

    run(redis_url, body)


def test_an_expired_holder_is_dropped_and_its_slots_return(redis_url: str) -> None:
    async def body(redis: Any) -> None:
        dead = LeaseClient(redis, "dead", ttl=0.2)
        alive = LeaseClient(redis, "alive", ttl=5)
        await dead.claim("m", want=10, limit=10, in_use=10)
        assert (await alive.claim("m", want=10, limit=10)).granted == 0
        await asyncio.sleep(0.3)  # the dead worker never renews
        assert (await alive.claim("m", want=10, limit=10)).granted == 10
        assert [h.holder for h in await alive.holders("m")] == ["alive"]

    run(redis_url, body)


def test_renewal_keeps_a_lease_alive_past_its_ttl(redis_url: str) -> None:
    async def body(redis: Any) -> None:
        a = LeaseClient(redis, "a", ttl=0.3)
        b = LeaseClient(redis, "b", ttl=5)
        await a.claim("m", want=1, limit=1, fair=False)
        for _ in range(6):  # 0.6 s: twice the ttl, renewed every ttl/3
            await asyncio.sleep(0.1)
            assert (await a.claim("m", want=1, limit=1, in_use=1, fair=False)).granted == 1
            assert (await b.claim("m", want=1, limit=1, fair=False)).granted == 0

    run(redis_url, body)


def test_release_frees_at_once(redis_url: str) -> None:
    async def body(redis: Any) -> None:
        a = LeaseClient(redis, "a", ttl=30)
        b = LeaseClient(redis, "b", ttl=30)
        await a.claim("m", want=4, limit=4)
        await a.release("m")
        assert (await b.claim("m", want=4, limit=4)).granted == 4
        assert [h.holder for h in await b.holders("m")] == ["b"]
        assert "m" in await b.names()

    run(redis_url, body)


def test_the_sum_of_held_counts_never_exceeds_the_limit(redis_url: str) -> None:
    """Eight claimers with random wants and in-use counts (never above what they were
    granted) claim concurrently; after every claim the stored counts sum to at most the
    limit, and every holder's in-use stays within what it holds."""
    limit = 13

    async def body(redis: Any) -> None:
        rng = random.Random(7)
        clients = [LeaseClient(redis, f"w{i}", ttl=5) for i in range(8)]
        granted = dict.fromkeys(range(8), 0)
        violations: list[str] = []

        async def worker(i: int) -> None:
            for _ in range(60):
                in_use = rng.randint(0, granted[i])
                grant = await clients[i].claim("m", want=rng.randint(0, 20), limit=limit,
                                               in_use=in_use)
                granted[i] = grant.granted
                assert grant.held >= min(in_use, grant.held)
                held = await redis.hgetall("sluicegate:cluster:lease:m:held")
                total = sum(int(v) for v in held.values())
                if total > limit:
                    violations.append(f"{total} > {limit}: {held}")

        await asyncio.gather(*(worker(i) for i in range(8)))
        assert violations == []

    run(redis_url, body)


def test_a_worker_stops_using_its_share_before_the_server_expires_it(redis_url: str) -> None:
    """The local deadline counts from before the claim was sent, less a margin."""
    now = [100.0]
    lease = Lease("m", ttl=1.0, clock=lambda: now[0])

    async def body(redis: Any) -> None:
        client = LeaseClient(redis, "a", ttl=1.0)
        sent = now[0]
        lease.update(await client.claim("m", want=3, limit=5), sent)
        assert lease.share() == 3
        now[0] = sent + 0.89
        assert lease.share() == 3
        now[0] = sent + 0.9
        assert lease.share() == 0  # lapsed by the worker's own clock; the server still has it
        assert [h.holder for h in await client.holders("m")] == ["a"]

    run(redis_url, body)
