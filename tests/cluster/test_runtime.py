"""Several runtimes in one process on one SQLite file, coordinated through that file (no
flag) or through a real redis-server beside it: limits hold across them, shares
rebalance, shards are served once."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import pytest

import sluicegate
from sluicegate.cluster import Cluster, LeaseClient, list_workers
from sluicegate.runtime.driver import RunSummary, Runtime
from sluicegate.store import RedisStore, SendEntry, SqliteStore, Store
from sluicegate.store.base import PutEntry


@pytest.fixture(params=["sqlite", "redis"])
def coordinator(request: pytest.FixtureRequest) -> str | None:
    """Where the runtimes coordinate: ``None`` the SQLite store itself, or a Redis URL."""
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return None


def cluster_for(coordinator: str | None, store: Store, worker: str, ttl: float) -> Cluster:
    return Cluster(coordinator if coordinator is not None else store, worker_id=worker,
                   lease_ttl=ttl)


def observer(coordinator: str | None, path: Path) -> Store:
    """A store to look at the coordination state with (not opened)."""
    return RedisStore(coordinator) if coordinator is not None else SqliteStore(path)


class Gauge:
    """Concurrent handler executions across every runtime of the test (one process)."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self.seen: list[int] = []

    def enter(self) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)

    def leave(self) -> None:
        self.now -= 1


def queue_app(gauge: Gauge, *, maximum: int, scaling: str = "fixed",
              reserved: int | None = None) -> sluicegate.App:
    app = sluicegate.App()
    app.queue("q", visibility_timeout=30, receive_wait_time=1)

    @app.function(timeout=5, reserved_concurrency=reserved)
    async def work(event: dict[str, Any], context: object) -> None:
        gauge.enter()
        try:
            await asyncio.sleep(0.02)
            for record in event["Records"]:
                gauge.seen.append(json.loads(record["body"])["n"])
        finally:
            gauge.leave()

    app.map("q", work, batch_size=2, scaling=scaling, maximum_concurrency=maximum)
    return app


async def run_workers(apps: list[sluicegate.App], path: Path, url: str | None, *,
                      ttl: float = 1.0,
                      fill: Any = None, timeout: float = 40) -> list[RunSummary]:
    stores = [SqliteStore(path) for _ in apps]
    for store in stores:
        await store.open()
    try:
        runtimes = [
            Runtime(app, store, grace_period=5,
                    cluster=cluster_for(url, store, f"w{i}", ttl))
            for i, (app, store) in enumerate(zip(apps, stores, strict=True))
        ]
        await runtimes[0].prepare()
        if fill is not None:
            await fill(stores[0])
        return list(await asyncio.wait_for(
            asyncio.gather(*(r.run(until_empty=True) for r in runtimes)), timeout))
    finally:
        for store in stores:
            await store.close()


async def send(store: SqliteStore, n: int) -> None:
    for i in range(0, n, 10):
        await store.send_batch("q", [SendEntry(json.dumps({"n": j}))
                                     for j in range(i, min(n, i + 10))])


def test_three_runtimes_never_exceed_maximum_concurrency_together(
        tmp_path: Path, coordinator: str | None) -> None:
    # Given three runtimes on one mapping with maximum_concurrency=4
    gauge = Gauge()
    apps = [queue_app(gauge, maximum=4) for _ in range(3)]

    async def fill(store: SqliteStore) -> None:
        await send(store, 300)

    # When they drain 300 messages
    summaries = asyncio.run(run_workers(apps, tmp_path / "s.db", coordinator, fill=fill))
    # Then every message was processed, and never more than 4 ran at once
    assert sorted(set(gauge.seen)) == list(range(300))
    assert sum(s.processed for s in summaries) >= 300
    assert gauge.peak <= 4
    # and the cluster reached its limit (not 3 x 4, not stuck below)
    assert gauge.peak == 4


def test_reserved_concurrency_holds_across_runtimes(tmp_path: Path, coordinator: str | None) -> None:
    gauge = Gauge()
    apps = [queue_app(gauge, maximum=10, reserved=3) for _ in range(3)]

    async def fill(store: SqliteStore) -> None:
        await send(store, 120)

    asyncio.run(run_workers(apps, tmp_path / "s.db", coordinator, fill=fill))
    assert sorted(set(gauge.seen)) == list(range(120))
    assert gauge.peak <= 3


def test_aws_scaling_is_shared_so_the_cluster_runs_the_published_limit(
        tmp_path: Path, coordinator: str | None) -> None:
    """With the aws policy the cluster's concurrency follows the one limit the scaling
    leader publishes (the limit of the mapping's lease), not three policies' sum."""
    gauge = Gauge()
    apps = [queue_app(gauge, maximum=50, scaling="aws") for _ in range(3)]
    published: list[int] = []

    async def fill(store: SqliteStore) -> None:
        await send(store, 300)

    async def main() -> None:
        look = observer(coordinator, tmp_path / "s.db")
        await look.open()

        async def watch() -> None:
            while True:
                raw = await look.read_shared("scale:q->work")
                if raw is not None:
                    published.append(int(json.loads(raw)["limit"]))
                await asyncio.sleep(0.01)

        watcher = asyncio.get_running_loop().create_task(watch())
        try:
            await run_workers(apps, tmp_path / "s.db", coordinator, fill=fill)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await look.close()

    asyncio.run(main())
    assert sorted(set(gauge.seen)) == list(range(300))
    assert published, "no leader published a limit"
    assert gauge.peak <= max(published)


def test_stream_shards_are_served_by_one_runtime_each_in_key_order(
        tmp_path: Path, coordinator: str | None) -> None:
    order: dict[str, list[int]] = {}
    workers: dict[int, set[str]] = {}

    def app_for(index: int) -> sluicegate.App:
        app = sluicegate.App()
        app.stream("s", shard_count=4)

        @app.function(timeout=5)
        async def consume(event: dict[str, Any], context: object) -> None:
            await asyncio.sleep(0.005)
            for record in event["Records"]:
                import base64

                data = json.loads(base64.b64decode(record["kinesis"]["data"]))
                order.setdefault(data["k"], []).append(data["i"])
                workers.setdefault(index, set()).add(record["eventID"].split(":")[0])

        app.map("s", consume, batch_size=5, starting_position="TRIM_HORIZON",
                       parallelization_factor=2)
        return app

    async def fill(store: SqliteStore) -> None:
        for i in range(40):
            await store.put_records("s", [PutEntry(f"key{k}", json.dumps({"k": f"key{k}", "i": i}))
                                          for k in range(8)])

    summaries = asyncio.run(run_workers([app_for(i) for i in range(3)], tmp_path / "s.db",
                                        coordinator, fill=fill))
    assert sorted(order) == [f"key{k}" for k in range(8)]
    for key, seen in order.items():
        # at-least-once: a handover may deliver again, but never out of order
        firsts = [i for n, i in enumerate(seen) if i not in seen[:n]]
        assert firsts == list(range(40)), key
    assert sum(s.processed for s in summaries) >= 320


def test_workers_are_listed_while_they_run(tmp_path: Path, coordinator: str | None) -> None:
    gauge = Gauge()
    listed: list[list[dict[str, Any]]] = []

    async def main() -> None:
        watcher = observer(coordinator, tmp_path / "s.db")
        await watcher.open()

        async def fill(store: SqliteStore) -> None:
            await send(store, 100)

            async def look() -> None:
                await asyncio.sleep(0.5)
                listed.append(await list_workers(watcher))

            asyncio.get_running_loop().create_task(look())

        await run_workers([queue_app(gauge, maximum=2) for _ in range(2)], tmp_path / "s.db",
                          coordinator, fill=fill)
        listed.append(await list_workers(watcher))
        # a worker that stops gives its leases back at once
        client = LeaseClient(watcher, "observer")
        for name in await client.names():
            assert await client.holders(name) == [], name
        await watcher.close()

    asyncio.run(main())
    during, after = listed
    assert sorted(w["worker"] for w in during) == ["w0", "w1"]
    assert all("mapping:q->work" in w["leases"] or w["leases"] for w in during)
    assert after == []  # a worker that stops leaves the registry


def test_shards_rebalance_when_a_worker_joins_and_leaves(tmp_path: Path, coordinator: str | None) -> None:
    """A alone serves all 4 shards; B joins and they serve 2 each; B stops and A serves 4
    again. Every record of every key is seen, in order, throughout."""
    order: dict[int, list[int]] = {}

    def app() -> sluicegate.App:
        a = sluicegate.App()
        a.stream("s", shard_count=4)

        @a.function(timeout=5)
        async def consume(event: dict[str, Any], context: object) -> None:
            import base64

            for record in event["Records"]:
                data = json.loads(base64.b64decode(record["kinesis"]["data"]))
                order.setdefault(data["k"], []).append(data["i"])
            await asyncio.sleep(0.01)

        a.map("s", consume, batch_size=5, starting_position="TRIM_HORIZON")
        return a

    def owned(runtime: Runtime) -> set[int]:
        owned = runtime.stream_sources[0].owned
        assert owned is not None
        return owned

    async def until(condition: Any, timeout: float = 10) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not condition():
            assert asyncio.get_running_loop().time() < deadline, "no rebalance in time"
            await asyncio.sleep(0.05)

    async def main() -> None:
        path = tmp_path / "s.db"
        stores = [SqliteStore(path), SqliteStore(path)]
        for store in stores:
            await store.open()
        a = Runtime(app(), stores[0], grace_period=5,
                    cluster=cluster_for(coordinator, stores[0], "a", 1.0))
        b = Runtime(app(), stores[1], grace_period=5,
                    cluster=cluster_for(coordinator, stores[1], "b", 1.0))
        await a.prepare()
        produced = 0

        async def produce() -> None:
            nonlocal produced
            while True:
                await stores[0].put_records("s", [PutEntry(f"key{k}", json.dumps(
                    {"k": k, "i": produced})) for k in range(8)])
                produced += 1
                await asyncio.sleep(0.01)

        producer = asyncio.get_running_loop().create_task(produce())
        run_a = asyncio.get_running_loop().create_task(a.run())
        await until(lambda: a.stream_sources and len(owned(a)) == 4)
        run_b = asyncio.get_running_loop().create_task(b.run())
        await until(lambda: b.stream_sources and len(owned(a)) == 2 and len(owned(b)) == 2)
        assert owned(a).isdisjoint(owned(b))
        b.stop()
        await run_b
        await until(lambda: len(owned(a)) == 4)
        producer.cancel()
        await asyncio.sleep(1.0)  # let A catch up with the last records
        a.stop()
        await run_a
        for store in stores:
            await store.close()

    asyncio.run(asyncio.wait_for(main(), 40))
    assert sorted(order) == list(range(8))
    for k, seen in order.items():
        firsts = [i for n, i in enumerate(seen) if i not in seen[:n]]
        assert firsts == sorted(firsts), k  # never out of order, even across handovers
        assert firsts == list(range(len(firsts))), k  # and nothing skipped


def test_a_worker_cut_off_from_redis_starts_nothing_after_its_lease_lapses(
        tmp_path: Path, own_redis: Any) -> None:
    """Redis goes away: within the lease ttl the worker stops starting invocations
    (running ones finish); when Redis is back it renews and carries on."""
    ttl = 0.6
    starts: list[float] = []

    app = sluicegate.App()
    app.queue("q", visibility_timeout=30, receive_wait_time=1)

    @app.function(timeout=5)
    async def work(event: dict[str, Any], context: object) -> None:
        starts.append(asyncio.get_running_loop().time())
        await asyncio.sleep(0.02)

    app.map("q", work, batch_size=1, scaling="fixed", maximum_concurrency=2)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with SqliteStore(tmp_path / "s.db") as store:
            runtime = Runtime(app, store, grace_period=5,
                              cluster=Cluster(own_redis.url, worker_id="w", lease_ttl=ttl))
            await runtime.prepare()
            await send(store, 2000)
            task = loop.create_task(runtime.run())
            while len(starts) < 20:
                await asyncio.sleep(0.01)
            await loop.run_in_executor(None, own_redis.stop)
            cut = loop.time()
            await asyncio.sleep(2 * ttl)
            late = [t for t in starts if t > cut + ttl]
            assert late == [], f"{len(late)} invocations started after the lease lapsed"
            before = len(starts)
            await loop.run_in_executor(None, own_redis.start)
            deadline = loop.time() + 10
            while len(starts) == before:
                assert loop.time() < deadline, "no invocation after Redis came back"
                await asyncio.sleep(0.05)
            runtime.stop()
            await task

    asyncio.run(asyncio.wait_for(main(), 40))


def test_a_cancelled_run_keeps_the_slots_of_invocations_still_running(
        tmp_path: Path, redis_url: str) -> None:
    """A run cancelled from outside (not stopped) leaves its invocations to finish; the
    slots they use stay counted for the worker (until its lease ttl), so another worker
    cannot take them meanwhile."""
    gauge = Gauge()

    def app() -> sluicegate.App:
        a = sluicegate.App()
        a.queue("q", visibility_timeout=30, receive_wait_time=1)

        @a.function(timeout=5)
        async def work(event: dict[str, Any], context: object) -> None:
            gauge.enter()
            try:
                await asyncio.sleep(0.5)
            finally:
                gauge.leave()

        a.map("q", work, batch_size=1, scaling="fixed", maximum_concurrency=2)
        return a

    async def main() -> None:
        loop = asyncio.get_running_loop()
        path = tmp_path / "s.db"
        async with SqliteStore(path) as first, SqliteStore(path) as second:
            a = Runtime(app(), first, cluster=Cluster(redis_url, worker_id="a", lease_ttl=5))
            await a.prepare()
            await send(first, 10)
            # Given worker a running two invocations (the limit)
            run_a = loop.create_task(a.run())
            while gauge.now < 2:
                await asyncio.sleep(0.01)
            # When its run is cancelled and worker b starts at once
            run_a.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await run_a
            b = Runtime(app(), second, cluster=Cluster(redis_url, worker_id="b",
                                                       lease_ttl=5))
            await b.run(duration=1.0)
        # Then b waited for a's invocations to end: never more than 2 ran at once
        assert gauge.peak == 2

    asyncio.run(asyncio.wait_for(main(), 30))


def test_shards_taken_on_start_get_their_share_of_the_account_before_their_lanes_run(
        tmp_path: Path, coordinator: str | None) -> None:
    # A worker's share of the account's unreserved pool follows the shards it serves.
    # Shards handed to it by a sync used to count only once the runner had taken them,
    # one round later: their lanes started under the old share, were refused a slot, and
    # backed off a second as after a throttle (30-40 "throttles" in every drain)
    app = sluicegate.App()
    app.stream("s", shard_count=4)

    @app.function(timeout=5)
    async def consume(event: dict[str, Any], context: object) -> None:
        return None

    app.map("s", consume, batch_size=100, starting_position="TRIM_HORIZON",
            parallelization_factor=10)

    async def fill(store: SqliteStore) -> None:
        for i in range(0, 4000, 500):
            await store.put_records("s", [PutEntry(f"key{k}", json.dumps({"n": k}))
                                          for k in range(i, i + 500)])

    (summary,) = asyncio.run(run_workers([app], tmp_path / "s.db", coordinator, fill=fill))
    assert summary.processed == 4000
    assert summary.mappings[0].throttles == 0
