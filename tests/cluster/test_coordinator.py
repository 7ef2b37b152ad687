"""What a worker may start while a claim is on its way, on SQLite and a real redis-server.

The worker's invocations running under a lease must never exceed the count the server
stores for it: that is what makes the stored counts' sum (at most the limit) bound the
cluster. A claim reports ``in_use``, and the server may store as little as that, so
until the answer is recorded the worker may start only on slots it is sure to keep.
These tests drive one worker's real core and cluster by hand, step by step: the claim is
sent, a receive comes back while it is on its way, the core decides; then the server's
stored count is read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

import sluicegate
from sluicegate.cluster import Cluster, LeaseClient
from sluicegate.cluster.leases import Lease
from sluicegate.core.adaptive import TERM_ADAPTIVE, AdaptiveLimit
from sluicegate.core.config import MappingConfig
from sluicegate.core.limit import ConcurrencyLimit, Fixed
from sluicegate.core.mapping import QueueMapping
from sluicegate.core.pool import ConcurrencyPool
from sluicegate.core.scaling import FixedScaling
from sluicegate.core.types import Invoke, QueueRecord, Receive
from sluicegate.errors import ConfigError, StoreUnavailable
from sluicegate.store import RedisStore, SqliteStore, Store
from sluicegate.store.coordination import CoordinationReply, CoordinationRound

LEASE = "mapping:q->work"


def mapping() -> MappingConfig:
    app = sluicegate.App()
    app.queue("q")

    @app.function(timeout=5)
    async def work(event: object, context: object) -> None:
        return None

    config = app.map("q", work, batch_size=1, scaling="fixed", maximum_concurrency=2)
    assert isinstance(config, MappingConfig)
    return config


def record(n: int) -> QueueRecord:
    return QueueRecord(f"m{n}", f"h{n}", 10, visible_at=1000.0)


class LosesAnswers:
    """Mixed into a store: once ``lose`` is set, rounds run in the store but their answer
    never arrives, as when the connection breaks or times out after the call was sent."""

    lose = False

    async def coordinate(self, round: CoordinationRound) -> CoordinationReply:
        reply: CoordinationReply = await super().coordinate(round)  # type: ignore[misc]
        if self.lose:
            raise StoreUnavailable("store: unreachable (the answer was lost)")
        return reply


class LossyRedis(LosesAnswers, RedisStore):
    pass


class LossySqlite(LosesAnswers, SqliteStore):
    pass


@pytest.fixture(params=["sqlite", "redis"])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Store]:
    """Stores of one kind sharing one database (not opened). SQLite runs every call on its
    worker thread (as it does when another process holds the lock), so a claim may be on
    its way while the loop runs."""
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        return lambda: LossyRedis(url)
    return lambda: LossySqlite(tmp_path / "shared.db", inline=False)


class Worker:
    """One worker's cluster and the real core of its one mapping (the runtime's part, the
    loop that performs actions, is played by the test)."""

    def __init__(self, store: Store, name: str) -> None:
        self.store = store
        self.cluster = Cluster(store, worker_id=name, lease_ttl=30)
        config = mapping()
        self.policy = self.cluster.queue_policy(config, FixedScaling(2), lambda: 0.0)
        self.core = QueueMapping(config, visibility_timeout=30, pool=ConcurrencyPool(),
                                 policy=self.policy)
        self.wake = asyncio.Event()
        self.cluster.attach_queue(SimpleNamespace(  # type: ignore[arg-type]
            config=config, core=self.core, wake=self.wake))

    @classmethod
    async def open(cls, store: Store, name: str) -> Worker:
        await store.open()
        return cls(store, name)

    async def close(self) -> None:
        await self.store.close()

    def poll(self, now: float) -> tuple[list[Receive], list[Invoke]]:
        """What the runtime's loop would start at ``now``: it polls again as long as the
        core says it has more to do at once."""
        actions = self.core.poll(now)
        while self.core.next_wakeup(now) == now:
            actions += self.core.poll(now)
        return ([a for a in actions if isinstance(a, Receive)],
                [a for a in actions if isinstance(a, Invoke)])


def run(new_store: Callable[[], Store], body: Callable[[Store], Awaitable[None]]) -> None:
    """Run ``body`` with an observer's store of the kind under test."""
    async def main() -> None:
        store = new_store()
        await store.open()
        try:
            await body(store)
        finally:
            await store.close()

    asyncio.run(main())


async def stored(store: Store, holder: str) -> int:
    counts = {h.holder: h.count for h in await LeaseClient(store, "observer").holders(LEASE)}
    return counts.get(holder, 0)


def test_a_batch_arriving_while_a_claim_is_on_its_way_runs_only_on_a_kept_slot(
        new_store: Callable[[], Store]) -> None:
    async def body(observer: Store) -> None:
        # Given worker a alone on a mapping of limit 2: it holds both slots, and its two
        # pollers receive
        a = await Worker.open(new_store(), "a")
        try:
            await a.cluster.sync()
            receives, _ = a.poll(0.0)
            assert len(receives) == 2
            # and b and c join and wait for slots (a's fair share becomes 0)
            for name in "bc":
                grant = await LeaseClient(observer, name).claim(LEASE, want=2, limit=2)
                assert grant.granted == 0
            # When a renews with nothing in use, and while that claim is on its way a
            # receive brings a batch
            sync = asyncio.get_running_loop().create_task(a.cluster.sync())
            await asyncio.sleep(0)
            a.core.received(1.0, receives[0].poller, [record(1)])
            _, started = a.poll(1.0)
            await sync
            # Then a started no more than the server now stores for it (b and c may take
            # whatever it does not)
            assert len(started) <= await stored(observer, "a")
        finally:
            await a.close()

    run(new_store, body)


def test_a_claim_whose_answer_is_lost_leaves_only_what_the_server_surely_kept(
        new_store: Callable[[], Store]) -> None:
    async def body(observer: Store) -> None:
        # Given worker a alone on a mapping of limit 2, holding both slots, receiving
        a = await Worker.open(new_store(), "a")
        try:
            await a.cluster.sync()
            receives, _ = a.poll(0.0)
            # and b and c waiting for slots
            for name in "bc":
                await LeaseClient(observer, name).claim(LEASE, want=2, limit=2)
            # When a renews with nothing in use and the claim runs, but its answer is lost
            assert isinstance(a.store, LosesAnswers)
            a.store.lose = True
            with pytest.raises(StoreUnavailable):
                await a.cluster.sync()
            # and then both receives bring a batch
            for n, receive in enumerate(receives):
                a.core.received(1.0, receive.poller, [record(n)])
            _, started = a.poll(1.0)
            # Then a starts no more than the server stores for it
            assert len(started) <= await stored(observer, "a")
        finally:
            await a.close()

    run(new_store, body)


def test_a_batch_held_back_while_a_claim_was_on_its_way_is_woken_by_the_answer(
        new_store: Callable[[], Store]) -> None:
    async def body(observer: Store) -> None:
        # Given worker a alone on a mapping of limit 2, both pollers receiving
        a = await Worker.open(new_store(), "a")
        try:
            await a.cluster.sync()
            receives, _ = a.poll(0.0)
            # When a batch arrives while a claim reporting nothing in use is on its way,
            # the core holds it back, and the runtime's loop sleeps until its deadline
            sync = asyncio.get_running_loop().create_task(a.cluster.sync())
            await asyncio.sleep(0)
            a.core.received(1.0, receives[0].poller, [record(1)])
            _, started = a.poll(1.0)
            assert started == []
            assert a.core.next_wakeup(1.0) != 1.0
            a.wake.clear()
            await sync
            # Then the answer (the same two slots) wakes the loop, which starts the batch
            assert a.wake.is_set()
            _, started = a.poll(1.0)
            assert len(started) == 1
        finally:
            await a.close()

    run(new_store, body)


def test_the_held_batch_rule_stays_within_the_functions_share() -> None:
    """Explicit lease states, no Redis call: the one batch a worker may run on the
    mapping slot still stored for it waits (rather than being throttled) while the
    function's pool gives this worker no slot."""
    now = [0.0]
    cluster = Cluster(SqliteStore(":memory:"), worker_id="w", lease_ttl=1.0,
                      clock=lambda: now[0])
    app = sluicegate.App()
    app.queue("q")

    @app.function(timeout=5)
    async def work(event: object, context: object) -> None:
        return None

    config = app.map("q", work, maximum_concurrency=4, scaling="fixed")
    assert isinstance(config, MappingConfig)
    cluster.new_pool(app)
    cluster.queue_policy(config, FixedScaling(4), lambda: 0.0)
    stats = SimpleNamespace(held=1, in_flight=0)
    limit = ConcurrencyLimit([Fixed("maximum_concurrency", 4)])
    cluster.attach_queue(SimpleNamespace(  # type: ignore[arg-type]
        config=config, wake=asyncio.Event(),
        core=SimpleNamespace(statistics=lambda: stats, in_flight=0, concurrency_limit=limit)))
    mapping_lease = cluster._queues[0].lease
    mapping_lease.granted, mapping_lease.held, mapping_lease.valid_until = 0, 1, 0.9
    account = cluster._pool_leases["account"] = Lease("account", 1.0, lambda: now[0])
    account.granted, account.held, account.valid_until = 0, 0, 0.9
    assert limit.value(0.0) == 0
    account.granted = account.held = 2
    assert limit.value(0.0) == 1


def test_a_worker_id_in_use_by_a_live_worker_is_refused(
        new_store: Callable[[], Store]) -> None:
    async def body(observer: Store) -> None:
        # Given worker "w" holding both slots of a mapping
        first = await Worker.open(new_store(), "w")
        try:
            await first.cluster.start()
            first.poll(0.0)
            await first.cluster.sync()
            held = {h.holder: h.count for h in
                    await LeaseClient(observer, "observer").holders(LEASE)}
            # When a second worker starts with the same id
            second = await Worker.open(new_store(), "w")
            with pytest.raises(ConfigError, match=r"worker_id='w' is invalid.*pid"):
                await second.cluster.start()
            await second.cluster.stop()
            await second.close()
            # Then it is refused, and stopping it gave back nothing of the first's
            after = {h.holder: h.count for h in
                     await LeaseClient(observer, "observer").holders(LEASE)}
            assert after == held and held["w"] > 0
            # and once the first stopped, the id is free again
            await first.cluster.stop()
            third = await Worker.open(new_store(), "w")
            await third.cluster.start()
            await third.cluster.stop()
            await third.close()
        finally:
            await first.close()

    run(new_store, body)


def test_a_start_retried_after_a_failed_sync_is_not_refused_its_own_id(
        new_store: Callable[[], Store]) -> None:
    """The runtime retries a start that failed (the store went away mid-way): the worker's
    own registry entry from the first try must not refuse it as another live worker."""
    async def body(observer: Store) -> None:
        a = await Worker.open(new_store(), "a")
        try:
            assert isinstance(a.store, LosesAnswers)
            a.store.lose = True
            with pytest.raises(StoreUnavailable):
                await a.cluster.start()  # registered, then the first round's answer is lost
            a.store.lose = False
            await a.cluster.start()
            assert [w["worker"] for w in await observer.list_workers()] == ["a"]
            await a.cluster.stop()
        finally:
            await a.close()

    run(new_store, body)


def test_adaptive_limits_learn_how_many_workers_share_their_mapping(
    new_store: Callable[[], Store],
) -> None:
    # Given two workers of one mapping with an adaptive limit each
    def adaptive_worker(store: Store, name: str) -> tuple[Cluster, AdaptiveLimit]:
        app = sluicegate.App()
        app.queue("q")

        @app.function(timeout=5)
        async def work(event: object, context: object) -> None:
            return None

        config = app.map("q", work, batch_size=1, scaling="adaptive", algorithm="aimd")
        assert isinstance(config, MappingConfig)
        cluster = Cluster(store, worker_id=name, lease_ttl=30)
        policy = cluster.queue_policy(config, FixedScaling(100), lambda: 0.0)
        core = QueueMapping(config, visibility_timeout=30, pool=ConcurrencyPool(),
                            policy=policy)
        cluster.attach_queue(SimpleNamespace(  # type: ignore[arg-type]
            config=config, core=core, wake=asyncio.Event()))
        term = core.concurrency_limit.get(TERM_ADAPTIVE)
        assert isinstance(term, AdaptiveLimit)
        return cluster, term

    async def body(observer: Store) -> None:
        a_store, b_store = new_store(), new_store()
        await a_store.open()
        await b_store.open()
        try:
            a, a_term = adaptive_worker(a_store, "w-a")
            b, b_term = adaptive_worker(b_store, "w-b")
            assert a_term.processes == b_term.processes == 1
            for _ in range(2):
                await a.sync()
                await b.sync()
            # Then each shares its growth with the other, with a rank of its own
            assert (a_term.processes, a_term.rank) == (2, 0)
            assert (b_term.processes, b_term.rank) == (2, 1)
            # When b leaves, a grows alone again at its next round
            await b.stop()
            await a.sync()
            assert (a_term.processes, a_term.rank) == (1, 0)
        finally:
            await a_store.close()
            await b_store.close()

    run(new_store, body)
