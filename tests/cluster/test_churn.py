"""Churn: runtimes join and leave every few hundredths of a second while handlers of a few
milliseconds run, so shares move all the time. The handlers measure, in Redis, in one
script at each start and at each end:

- the cluster-wide concurrency under every limit (a mapping's maximum_concurrency, a
  function's reserved concurrency, the account's unreserved pool): its peak never
  exceeds the limit;
- the rule that makes it hold: a worker's invocations running under a lease are never
  more than the count the lease's script stores for that worker (the stored counts sum
  to at most the limit). This catches a worker running on a slot the server no longer
  counts for it even when no other worker happened to take that slot meanwhile.

The limits are small (2 and 3) and up to six runtimes serve them, so shares keep falling
to zero and growing back, and claims are often on their way while a worker starts an
invocation. Every runtime lives in this process (one event loop), on the Redis store.
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest

import sluicegate
from sluicegate.cluster import Cluster
from sluicegate.runtime.driver import Runtime
from sluicegate.store import SendEntry, open_store
from sluicegate.store.redis import DEFAULT_PREFIX
from sluicegate.store.redis_client import connect

pytestmark = pytest.mark.slow

CHURN_SECONDS = 6.0
MOST_WORKERS = 6
MESSAGES = 1000
"""Per queue: more than the cluster gets through in CHURN_SECONDS, so nobody idles."""
SYNC_INTERVAL = 0.1
"""Seconds between a worker's syncs: shares move faster than with the default 0.25 s.
The ttl stays long (2 s), so that no lease lapses on a loop this busy."""

# queues a and b feed `loose`, a function without reservation, which draws from the
# account's unreserved pool (6 - 3 reserved); queues c and d feed `tight` (reserved 3)
LIMITS = {"mapping:a->loose": 2, "mapping:b->loose": 2, "account": 3,
          "mapping:c->tight": 3, "mapping:d->tight": 3, "function:tight": 3}
"""Lease name -> the limit it enforces cluster-wide."""

GAUGE = """
-- KEYS, per lease: the cluster's count, this worker's count, the lease's held hash and
-- expiry set (epoch seconds). ARGV[1]: the worker; ARGV[2]: 1 when an invocation starts,
-- -1 when it ends.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local step = tonumber(ARGV[2])
for i = 1, #KEYS, 4 do
  local n = redis.call('INCRBY', KEYS[i], step)
  if n > tonumber(redis.call('GET', KEYS[i] .. ':peak') or '0') then
    redis.call('SET', KEYS[i] .. ':peak', n)
  end
  local mine = redis.call('INCRBY', KEYS[i + 1], step)
  if step < 0 then mine = mine + 1 end  -- at an end: what ran until now
  local stored = tonumber(redis.call('HGET', KEYS[i + 2], ARGV[1]) or '0')
  local expiry = tonumber(redis.call('ZSCORE', KEYS[i + 3], ARGV[1]) or '0')
  if expiry <= now then stored = 0 end
  if mine > stored then
    local at = step > 0 and ' starting: ' or ' ending: '
    redis.call('RPUSH', 'gauge:beyond', KEYS[i + 1] .. at .. mine .. ' on ' .. stored)
  end
end
return 0
"""


class Gauge:
    """Invocations running now under each lease, for the cluster and for each worker,
    counted in Redis by the handlers."""

    def __init__(self, url: str) -> None:
        self.redis = connect(url)
        self.script: Any = self.redis.register_script(GAUGE)
        self.started = 0

    async def run(self, worker: str, leases: list[str], rng: random.Random) -> None:
        keys = []
        for lease in leases:
            keys += [f"gauge:{lease}", f"gauge:{lease}:{worker}",
                     f"{DEFAULT_PREFIX}lease:{{{lease}}}:held",
                     f"{DEFAULT_PREFIX}lease:{{{lease}}}:exp"]
        await self.script(keys=keys, args=[worker, 1])
        self.started += 1
        try:
            await asyncio.sleep(rng.uniform(0.0005, 0.004))
        finally:
            await self.script(keys=keys, args=[worker, -1])

    async def peaks(self) -> dict[str, int]:
        values = await self.redis.mget([f"gauge:{lease}:peak" for lease in LIMITS])
        return {lease: int(v or 0) for lease, v in zip(LIMITS, values, strict=True)}

    async def left(self) -> dict[str, int]:
        """Counts not back to zero once every runtime stopped: the measure is broken."""
        keys = [k async for k in self.redis.scan_iter("gauge:*")
                if not k.endswith(":peak") and k != "gauge:beyond"]
        values = await self.redis.mget(keys) if keys else []
        return {k: int(v) for k, v in zip(keys, values, strict=True) if int(v)}

    async def beyond(self) -> list[str]:
        return [str(x) for x in await self.redis.lrange("gauge:beyond", 0, 20)]


def churn_app(gauge: Gauge, worker: str, rng: random.Random) -> sluicegate.App:
    app = sluicegate.App(account_concurrency=6, min_unreserved=3)
    for name in "abcd":
        # a batch held for a slot a stopping worker never gets is given up within 2 s
        app.queue(name, visibility_timeout=2, receive_wait_time=1)

    @app.function(timeout=2)
    async def loose(event: dict[str, Any], context: object) -> None:
        queue = event["Records"][0]["eventSourceARN"].rsplit(":", 1)[1]
        await gauge.run(worker, [f"mapping:{queue}->loose", "account"], rng)

    @app.function(timeout=2, reserved_concurrency=LIMITS["function:tight"])
    async def tight(event: dict[str, Any], context: object) -> None:
        queue = event["Records"][0]["eventSourceARN"].rsplit(":", 1)[1]
        await gauge.run(worker, [f"mapping:{queue}->tight", "function:tight"], rng)

    for name, function in (("a", loose), ("b", loose), ("c", tight), ("d", tight)):
        app.map(name, function, batch_size=1, scaling="fixed",
                maximum_concurrency=LIMITS[f"mapping:{name}->{function.__name__}"])
    return app


def test_limits_hold_while_runtimes_join_and_leave(redis_url: str) -> None:
    rng = random.Random(5)

    async def worker(gauge: Gauge, n: int, stop: asyncio.Event) -> None:
        store = open_store(redis_url)
        await store.open()
        try:
            cluster = Cluster(redis_url, worker_id=f"w{n}", lease_ttl=2.0)
            cluster.interval = SYNC_INTERVAL
            # the grace period outlasts a held batch's visibility timeout: no invocation
            # is ever cancelled (a handler cancelled inside its gauge script would leave
            # its count behind)
            runtime = Runtime(churn_app(gauge, f"w{n}", rng), store, grace_period=5,
                              cluster=cluster)
            run = asyncio.get_running_loop().create_task(runtime.run())
            await stop.wait()
            runtime.stop()
            await run
        finally:
            await store.close()

    async def churn(loop: asyncio.AbstractEventLoop, gauge: Gauge) -> None:
        store = open_store(redis_url)
        await store.open()
        try:
            await Runtime(churn_app(gauge, "filler", rng), store).prepare()
            for name in "abcd":
                for i in range(0, MESSAGES, 10):
                    await store.send_batch(name, [SendEntry(json.dumps({"n": j}))
                                                  for j in range(i, i + 10)])
        finally:
            await store.close()
        alive: list[tuple[asyncio.Event, asyncio.Task[None]]] = []
        gone: list[asyncio.Task[None]] = []
        joined = 0

        def join() -> None:
            nonlocal joined
            stop = asyncio.Event()
            alive.append((stop, loop.create_task(worker(gauge, joined, stop))))
            joined += 1

        for _ in range(3):
            join()
        end = loop.time() + CHURN_SECONDS
        while loop.time() < end:
            await asyncio.sleep(rng.uniform(0.02, 0.1))
            if len(alive) < MOST_WORKERS and (len(alive) < 2 or rng.random() < 0.5):
                join()
            else:
                stop, task = alive.pop(rng.randrange(len(alive)))
                stop.set()
                gone.append(task)
        for stop, task in alive:
            stop.set()
            gone.append(task)
        await asyncio.gather(*gone)

    async def main() -> tuple[int, dict[str, int], list[str], dict[str, int]]:
        loop = asyncio.get_running_loop()
        gauge = Gauge(redis_url)
        try:
            await churn(loop, gauge)
            return gauge.started, await gauge.peaks(), await gauge.beyond(), await gauge.left()
        finally:
            await gauge.redis.aclose()

    started, peaks, beyond, left = asyncio.run(asyncio.wait_for(main(), 60))
    assert started > 100, f"only {started} invocations: the churn tested little"
    assert left == {}, "a handler's count was left behind: the measure is broken"
    assert all(peaks[lease] <= limit for lease, limit in LIMITS.items()), (peaks, LIMITS)
    assert beyond == [], "a worker ran more than the lease stored for it"
