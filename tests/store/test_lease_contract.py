"""The coordination part of the store contract, on every backend (see conftest.py):
counted leases (claim, renew, release, expiry, fairness, slots in use, fencing tokens,
holders), the worker registry, shared logs and values, and a whole sync round.

Time moves only through the injected ``clock``.
"""

from __future__ import annotations

import random

import pytest

from sluicegate.errors import InputError
from sluicegate.store import Store
from sluicegate.store.coordination import CoordinationRound, LeaseClaim
from sluicegate.testing import VirtualClock

from .conftest import START


async def test_a_holder_gets_what_it_wants_within_the_limit(store: Store) -> None:
    # Given a limit of 10, a takes 7
    grant = await store.claim_lease("m", "a", want=7, limit=10, ttl=5)
    assert (grant.granted, grant.held, grant.free) == (7, 7, 3)
    assert grant.expires == START + 5
    # When b wants 10, it gets the 3 left
    grant = await store.claim_lease("m", "b", want=10, limit=10, ttl=5)
    assert (grant.granted, grant.free) == (3, 0)
    # Then a, renewing, gives back down to its fair share (b is waiting) ...
    assert (await store.claim_lease("m", "a", want=7, limit=10, ttl=5)).granted == 5
    # ... and b grows into it
    assert (await store.claim_lease("m", "b", want=10, limit=10, ttl=5)).granted == 5


async def test_running_invocations_are_never_taken_back(store: Store) -> None:
    await store.claim_lease("m", "a", want=10, limit=10, ttl=5)
    await store.claim_lease("m", "b", want=10, limit=10, ttl=5)  # hungry: a must come down
    grant = await store.claim_lease("m", "a", want=10, limit=10, ttl=5, in_use=8)
    # a may start nothing (granted 5 < 8 running) but keeps 8 counted ...
    assert (grant.granted, grant.held) == (5, 8)
    # ... so b gets only the 2 nobody holds
    assert (await store.claim_lease("m", "b", want=10, limit=10, ttl=5)).granted == 2
    grant = await store.claim_lease("m", "a", want=10, limit=10, ttl=5, in_use=4)
    assert (grant.granted, grant.held) == (5, 5)
    assert (await store.claim_lease("m", "b", want=10, limit=10, ttl=5)).granted == 5


async def test_three_holders_share_ten_fairly(store: Store) -> None:
    grants = {}
    for _ in range(4):  # a few renewal rounds
        for h in "abc":
            grants[h] = (await store.claim_lease("m", h, want=10, limit=10, ttl=5)).granted
    assert sorted(grants.values()) == [3, 3, 4]
    # small wants are served in full first: water filling
    for _ in range(3):
        for h, want in (("a", 1), ("b", 10), ("c", 10)):
            grants[h] = (await store.claim_lease("f", h, want=want, limit=10, ttl=5)).granted
    assert (grants["a"], sorted([grants["b"], grants["c"]])) == (1, [4, 5])


async def test_a_mutex_is_first_come_first_served(store: Store) -> None:
    assert (await store.claim_lease("leader", "a", want=1, limit=1, ttl=5, fair=False)).granted == 1
    for _ in range(3):
        assert (await store.claim_lease("leader", "b", want=1, limit=1, ttl=5,
                                        fair=False)).granted == 0
        assert (await store.claim_lease("leader", "a", want=1, limit=1, ttl=5, in_use=1,
                                        fair=False)).granted == 1


async def test_an_expired_holder_is_dropped_and_its_slots_return(
    store: Store, clock: VirtualClock
) -> None:
    await store.claim_lease("m", "dead", want=10, limit=10, ttl=2, in_use=10)
    assert (await store.claim_lease("m", "alive", want=10, limit=10, ttl=30)).granted == 0
    clock.advance(1.9)
    assert (await store.claim_lease("m", "alive", want=10, limit=10, ttl=30)).granted == 0
    clock.advance(0.1)  # the dead holder never renewed: its expiry has come
    assert (await store.claim_lease("m", "alive", want=10, limit=10, ttl=30)).granted == 10
    assert [h.holder for h in await store.lease_holders("m")] == ["alive"]


async def test_a_grant_counts_the_live_holders_and_ranks_the_claimant(
    store: Store, clock: VirtualClock
) -> None:
    # the processes taking part in a mapping, for what they share beyond slots (adaptive
    # limits' growth): a waiting holder (granted 0) is one, an expired one is not
    a = await store.claim_lease("m", "w-b", want=10, limit=10, ttl=2, in_use=10)
    assert (a.holders, a.rank) == (1, 0)
    waiting = await store.claim_lease("m", "w-a", want=10, limit=10, ttl=30)
    assert (waiting.granted, waiting.holders, waiting.rank) == (0, 2, 0)
    c = await store.claim_lease("m", "w-c", want=10, limit=10, ttl=30)
    assert (c.holders, c.rank) == (3, 2)  # ranked by holder id
    clock.advance(2)  # w-b never renewed
    c = await store.claim_lease("m", "w-c", want=10, limit=10, ttl=30)
    assert (c.holders, c.rank) == (2, 1)
    # a release leaves the others
    gone = await store.claim_lease("m", "w-a", want=0, limit=10, ttl=30)
    assert (gone.holders, gone.rank) == (1, 0)


async def test_renewal_keeps_a_lease_past_its_ttl(store: Store, clock: VirtualClock) -> None:
    await store.claim_lease("m", "a", want=1, limit=1, ttl=3, fair=False)
    for _ in range(6):  # twice the ttl, renewed every ttl/3
        clock.advance(1)
        assert (await store.claim_lease("m", "a", want=1, limit=1, ttl=3, in_use=1,
                                        fair=False)).granted == 1
        assert (await store.claim_lease("m", "b", want=1, limit=1, ttl=3,
                                        fair=False)).granted == 0


async def test_release_frees_at_once_but_keeps_slots_in_use(
    store: Store, clock: VirtualClock
) -> None:
    await store.claim_lease("m", "a", want=4, limit=4, ttl=30)
    await store.release_lease("m", "a", in_use=1, ttl=10)
    (a,) = await store.lease_holders("m")
    assert (a.holder, a.count, a.want, a.expires) == ("a", 1, 0, START + 10)
    assert (await store.claim_lease("m", "b", want=4, limit=4, ttl=30)).granted == 3
    await store.release_lease("m", "a")
    assert [h.holder for h in await store.lease_holders("m")] == ["b"]
    assert (await store.claim_lease("m", "b", want=4, limit=4, ttl=30)).granted == 4
    assert await store.lease_names() == ["m"]


async def test_fencing_tokens_grow_with_every_new_acquisition(
    store: Store, clock: VirtualClock
) -> None:
    first = await store.claim_lease("leader", "a", want=1, limit=1, ttl=2, fair=False)
    renewed = await store.claim_lease("leader", "a", want=1, limit=1, ttl=2, fair=False)
    assert first.token > 0 and renewed.token == first.token  # a renewal keeps it
    waiting = await store.claim_lease("leader", "b", want=1, limit=1, ttl=2, fair=False)
    assert (waiting.granted, waiting.token) == (0, 0)  # holds nothing: no token
    clock.advance(2)  # a expires; b takes over
    b = await store.claim_lease("leader", "b", want=1, limit=1, ttl=2, fair=False)
    assert b.granted == 1 and b.token > first.token
    assert [(h.holder, h.token) for h in await store.lease_holders("leader")] == [("b", b.token)]
    await store.release_lease("leader", "b")
    again = await store.claim_lease("leader", "a", want=1, limit=1, ttl=2, fair=False)
    assert again.token > b.token  # a lost it and got it back: told apart
    # tokens survive every holder leaving
    await store.release_lease("leader", "a")
    clock.advance(100)
    assert (await store.claim_lease("leader", "c", want=1, limit=1, ttl=2,
                                    fair=False)).token > again.token


async def test_holders_list_counts_wants_and_expiry(store: Store, clock: VirtualClock) -> None:
    await store.claim_lease("m", "b", want=6, limit=8, ttl=10)
    clock.advance(1)
    await store.claim_lease("m", "a", want=5, limit=8, ttl=4)
    holders = await store.lease_holders("m")
    assert [(h.holder, h.count, h.want, h.expires) for h in holders] == [
        ("a", 2, 5, START + 5), ("b", 6, 6, START + 10)]
    assert all(h.token > 0 for h in holders) and holders[0].token != holders[1].token
    clock.advance(4)
    assert [h.holder for h in await store.lease_holders("m")] == ["b"]
    assert await store.lease_holders("nothing") == []


async def test_the_stored_counts_never_sum_above_the_limit(store: Store) -> None:
    """Eight holders with random wants and in-use counts (never above what they were
    granted) claim in random order; the stored counts never sum above the limit."""
    limit = 13
    rng = random.Random(7)
    granted = dict.fromkeys(range(8), 0)
    for _ in range(200):
        i = rng.randrange(8)
        in_use = rng.randint(0, granted[i])
        grant = await store.claim_lease("m", f"w{i}", want=rng.randint(0, 20), limit=limit,
                                        ttl=5, in_use=in_use)
        granted[i] = grant.granted
        assert grant.held >= in_use
        assert sum(h.count for h in await store.lease_holders("m")) <= limit


async def test_claims_in_one_call_apply_in_order(store: Store) -> None:
    grants = await store.claim_leases("a", [LeaseClaim("x", 3, 5), LeaseClaim("y", 1, 1,
                                                                          fair=False)], ttl=5)
    assert [(g.granted, g.held) for g in grants] == [(3, 3), (1, 1)]
    assert await store.lease_names() == ["x", "y"]


async def test_a_bad_ttl_is_refused(store: Store) -> None:
    with pytest.raises(InputError, match="ttl"):
        await store.claim_lease("m", "a", want=1, limit=1, ttl=0)


async def test_the_worker_registry(store: Store, clock: VirtualClock) -> None:
    assert await store.register_worker("w1", {"pid": 1}, ttl=3, exclusive=True) is None
    # a live id is refused with its entry, and nothing is written
    assert await store.register_worker("w1", {"pid": 2}, ttl=3, exclusive=True) == {"pid": 1}
    assert await store.register_worker("w2", {"pid": 3}, ttl=10) is None
    assert await store.list_workers() == [{"pid": 1}, {"pid": 3}]
    clock.advance(3)  # w1 expired: gone from the list, its id free again
    assert await store.list_workers() == [{"pid": 3}]
    assert await store.register_worker("w1", {"pid": 4}, ttl=3, exclusive=True) is None
    await store.unregister_worker("w2")
    assert await store.list_workers() == [{"pid": 4}]


async def test_shared_logs_and_values(store: Store) -> None:
    assert await store.take_events("log") == []
    await store.append_events("log", ["1", "2"])
    await store.append_events("log", ["3"])
    assert await store.take_events("log") == ["1", "2", "3"]
    assert await store.take_events("log") == []
    assert await store.read_shared("k") is None
    await store.write_shared("k", "v1")
    await store.write_shared("k", "v2")
    assert await store.read_shared("k") == "v2"


async def test_a_sync_round_takes_and_writes_only_under_the_lease(store: Store) -> None:
    await store.append_events("obs", ["e1"])
    leader = CoordinationRound(
        "a", 5, claims=[LeaseClaim("leader", 1, 1, fair=False), LeaseClaim("m", 4, 4)],
        append={"obs": ["e2"]}, take={"obs": "leader"},
        write={"state": ("from-a", "leader")}, read=["state"], heartbeat={"worker": "a"},
    )
    reply = await store.coordinate(leader)
    assert [(g.granted, g.held) for g in reply.grants] == [(1, 1), (4, 4)]
    assert reply.taken == {"obs": ["e1", "e2"]}
    assert reply.values == {"state": "from-a"}
    follower = CoordinationRound(
        "b", 5, claims=[LeaseClaim("leader", 1, 1, fair=False)],
        append={"obs": ["e3"]}, take={"obs": "leader"},
        write={"state": ("from-b", "leader")}, read=["state", "other"],
    )
    reply = await store.coordinate(follower)
    assert reply.grants[0].granted == 0
    assert reply.taken == {}
    assert reply.values == {"state": "from-a", "other": None}
    assert await store.take_events("obs") == ["e3"]
    assert await store.list_workers() == [{"worker": "a"}]
