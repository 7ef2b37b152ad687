"""Chaos: three ``sluicegate run`` processes on one App, a worker killed with SIGKILL, Redis
restarted and connections dropped mid-run.

The App has a FIFO queue mapping (maximum_concurrency 4) and a stream mapping (4 shards,
parallelization factor 2). Its handlers record, in a Redis database of their own (the
*gauge*, never the one being restarted), every message or record they saw in order, and
the set of invocations running right now, whose peak size a Lua script keeps: the
cluster-wide concurrency measured where it happens.

Every test asserts: every message and record processed (nothing dead-lettered, queue
empty, streams checkpointed to their end), per-group and per-key order never violated
(redelivery after a kill may repeat a suffix, never skip ahead), and the peak never above
the limit.

The store is parametrized: ``sqlite`` (one file shared by the processes, coordinated
through ``--cluster redis://`` beside it) and ``redis`` (the Redis store, coordinating
through itself). tests/cluster/test_sqlite_processes.py runs processes on one SQLite file
coordinated through the file.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from redis_server import RedisServer
from sluicegate.errors import InputError
from sluicegate.loader import load_app
from sluicegate.runtime.driver import Runtime
from sluicegate.store import SendEntry, open_store
from sluicegate.store.base import PutEntry
from sluicegate.store.redis_client import connect

pytestmark = pytest.mark.slow

GROUPS = 12
PER_GROUP = 25
KEYS = 8
PER_KEY = 30
LIMIT = 4
LEASE_TTL = 2.0
GAUGE_DB = 7

APP = textwrap.dedent('''
    import asyncio, base64, json, os

    import sluicegate
    from redis.asyncio import Redis

    GAUGE = os.environ.get("CHAOS_GAUGE_URL", "redis://127.0.0.1:1/7")
    ENTER = """
    redis.call('ZADD', KEYS[1], 0, ARGV[1])
    local n = redis.call('ZCARD', KEYS[1])
    if n > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], n) end
    return n
    """
    _gauge = None


    def gauge():
        global _gauge
        if _gauge is None:
            _gauge = Redis.from_url(GAUGE, decode_responses=True)
        return _gauge


    app = sluicegate.App()
    app.queue("orders.fifo", visibility_timeout=3, content_based_deduplication=True)
    app.stream("clicks", shard_count=4)


    @app.function(timeout=2)
    async def work(event, context):
        g = gauge()
        token = f"{os.getpid()}:{context.aws_request_id}"
        await g.eval(ENTER, 2, "running", "peak", token)
        try:
            for record in event["Records"]:
                body = json.loads(record["body"])
                await g.rpush(f"group:{body['g']}", body["i"])
            await g.incrby("done", len(event["Records"]))
            await asyncio.sleep(0.1)
        finally:
            await g.zrem("running", token)


    @app.function(timeout=2)
    async def consume(event, context):
        g = gauge()
        for record in event["Records"]:
            data = json.loads(base64.b64decode(record["kinesis"]["data"]))
            await g.rpush(f"key:{data['k']}", data["i"])
        await g.incrby("done", len(event["Records"]))
        await asyncio.sleep(0.05)


    app.map("orders.fifo", work, batch_size=5, scaling="fixed", maximum_concurrency=@LIMIT@)
    app.map("clicks", consume, batch_size=10, starting_position="TRIM_HORIZON",
            parallelization_factor=2)
''').replace("@LIMIT@", str(LIMIT))


def store_url(kind: str, tmp_path: Path, coordination: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    try:
        open_store(coordination)
    except InputError as exc:
        pytest.skip(f"the Redis store is not available on this branch: {exc}")
    return coordination


async def fill(app_path: Path, url: str) -> None:
    app = load_app(str(app_path))
    store = open_store(url)
    await store.open()
    try:
        await Runtime(app, store).prepare()
        for g in range(GROUPS):
            for i in range(0, PER_GROUP, 10):
                await store.send_batch("orders.fifo", [
                    SendEntry(json.dumps({"g": g, "i": j}), group_id=f"g{g}")
                    for j in range(i, min(PER_GROUP, i + 10))
                ])
        for i in range(PER_KEY):
            await store.put_records("clicks", [PutEntry(f"k{k}", json.dumps({"k": k, "i": i}))
                                               for k in range(KEYS)])
    finally:
        await store.close()


async def final_counts(url: str) -> tuple[int, int, bool]:
    store = open_store(url)
    await store.open()
    try:
        counts = await store.counts("orders.fifo")
        checkpoints = await store.get_checkpoints("clicks->consume")
        done = True
        for shard in range(4):
            latest = await store.latest_sequence("clicks", shard)
            if latest >= 0 and checkpoints.get(shard, -1) < latest:
                done = False
        return counts.total, counts.dead_lettered, done
    finally:
        await store.close()


class Workers:
    """Three ``sluicegate run --until-empty`` processes."""

    def __init__(self, app: Path, store: str, cluster: str, gauge: str, logs: Path) -> None:
        env = dict(os.environ, CHAOS_GAUGE_URL=gauge, PYTHONUNBUFFERED="1")
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []
        self.files = []
        for n in range(3):
            out = (logs / f"worker{n}.log").open("wb")
            self.files.append(out)
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "sluicegate.cli", "run", str(app), "--store", store,
                 "--cluster", cluster, "--until-empty", "--status", "none",
                 "--lease-ttl", str(LEASE_TTL), "--worker-id", f"chaos{n}",
                 "--grace-period", "5", "--log-level", "WARNING"],
                stdout=out, stderr=subprocess.STDOUT, env=env,
            ))

    def wait(self, timeout: float) -> list[int | None]:
        deadline = time.monotonic() + timeout
        codes: list[int | None] = []
        for p in self.procs:
            try:
                codes.append(p.wait(timeout=max(0.1, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                codes.append(None)
        return codes

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for f in self.files:
            f.close()

    def output(self) -> str:
        return "\n".join(f"--- {f.name}\n{f.read_text()[-3000:]}"
                         for f in sorted(self.logs.glob("worker*.log")))


def wait_for_workers(url: str, count: int = 3, timeout: float = 30) -> None:
    """Until ``count`` workers are in the registry: the chaos starts mid-run, not while
    a worker is still opening its store."""
    import redis

    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len([n for n in range(count)
                    if client.hexists("sluicegate:workers", f"chaos{n}")]) == count:
                return
            time.sleep(0.02)
        raise AssertionError(f"fewer than {count} workers registered in {timeout}s")
    finally:
        client.close()


def wait_for_progress(gauge: Any, at_least: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if int(gauge.get("done") or 0) >= at_least:
            return
        time.sleep(0.02)
    raise AssertionError(f"fewer than {at_least} messages processed in {timeout}s")


def busiest(url: str) -> int:
    """The index of the worker with the most invocations in flight (as its registry
    entry says), so that the kill hurts."""
    import redis

    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        best, most = 1, -1
        for n in range(3):
            raw = client.hget("sluicegate:workers", f"chaos{n}")
            if raw is None:
                continue
            running = sum(json.loads(raw)["in_flight"].values())
            if running > most:
                best, most = n, running
        return best
    finally:
        client.close()


def in_order(seen: list[int], n: int) -> bool:
    """Every value 0..n-1 seen, and each first seen only after all smaller ones (a
    redelivery may repeat values already seen, never skip ahead)."""
    firsts: list[int] = []
    for v in seen:
        if v not in firsts:
            firsts.append(v)
    return firsts == list(range(n))


def check(gauge: Any, url: str, workers: Workers) -> None:
    for g in range(GROUPS):
        seen = [int(v) for v in gauge.lrange(f"group:{g}", 0, -1)]
        assert in_order(seen, PER_GROUP), (g, seen, workers.output())
    for k in range(KEYS):
        seen = [int(v) for v in gauge.lrange(f"key:{k}", 0, -1)]
        assert in_order(seen, PER_KEY), (k, seen, workers.output())
    peak = int(gauge.get("peak") or 0)
    assert 0 < peak <= LIMIT, (peak, workers.output())
    total, dead, streams_done = asyncio.run(final_counts(url))
    assert (total, dead, streams_done) == (0, 0, True), workers.output()


@pytest.fixture
def gauge(redis_server: RedisServer) -> Iterator[Any]:
    import redis

    client = redis.Redis.from_url(redis_server.url_for(GAUGE_DB), decode_responses=True)
    client.flushdb()
    yield client
    client.close()


def write_app(tmp_path: Path) -> Path:
    path = tmp_path / "chaos_app.py"
    path.write_text(APP)
    return path


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_a_worker_killed_mid_run_loses_nothing_and_breaks_no_limit(
        kind: str, tmp_path: Path, redis_url: str, redis_server: RedisServer,
        gauge: Any) -> None:
    # Given three workers on one App (store: sqlite file or Redis; coordination: Redis)
    app = write_app(tmp_path)
    gauge_url = redis_server.url_for(GAUGE_DB)
    os.environ["CHAOS_GAUGE_URL"] = gauge_url
    url = store_url(kind, tmp_path, redis_url)
    asyncio.run(fill(app, url))
    workers = Workers(app, url, redis_url, gauge_url, tmp_path)
    try:
        # When one of them is killed with SIGKILL after a third of the work
        wait_for_workers(redis_url)
        wait_for_progress(gauge, (GROUPS * PER_GROUP + KEYS * PER_KEY) // 3)
        victim = workers.procs[busiest(redis_url)]
        victim.kill()
        victim.wait()
        # its invocations died with it: take them off the gauge's running set
        for member in gauge.zrange("running", 0, -1):
            if member.startswith(f"{victim.pid}:"):
                gauge.zrem("running", member)
        # Then the others finish everything (its leases expire, its messages reappear)
        codes = workers.wait(timeout=60)
        assert [c for p, c in zip(workers.procs, codes, strict=True) if p is not victim] == [
            0, 0], (codes, workers.output())
    finally:
        workers.stop()
    check(gauge, url, workers)


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_workers_carry_on_through_a_redis_restart_and_dropped_connections(
        kind: str, tmp_path: Path, own_redis: RedisServer, redis_server: RedisServer,
        gauge: Any) -> None:
    # Given three workers coordinated through a Redis with persistence on
    app = write_app(tmp_path)
    gauge_url = redis_server.url_for(GAUGE_DB)
    os.environ["CHAOS_GAUGE_URL"] = gauge_url
    url = store_url(kind, tmp_path, own_redis.url)
    asyncio.run(fill(app, url))
    workers = Workers(app, url, own_redis.url, gauge_url, tmp_path)
    try:
        # When every client connection is dropped after a fifth of the work ...
        total = GROUPS * PER_GROUP + KEYS * PER_KEY
        wait_for_workers(own_redis.url)
        wait_for_progress(gauge, total // 5)

        async def drop() -> None:
            client = connect(own_redis.url)
            await client.execute_command("CLIENT", "KILL", "TYPE", "normal")
            await client.aclose()

        asyncio.run(drop())
        # ... and Redis restarts after two fifths
        wait_for_progress(gauge, 2 * total // 5)
        own_redis.restart()
        # Then the workers reconnect and finish without loss
        codes = workers.wait(timeout=60)
        assert codes == [0, 0, 0], (codes, workers.output())
    finally:
        workers.stop()
    check(gauge, url, workers)
