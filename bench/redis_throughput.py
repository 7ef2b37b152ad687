"""Drain rates on one Redis: sluicegate (1 and 2 worker processes) against dramatiq and arq.

Everything runs in one invocation against one redis-server that this script starts on a
free 127.0.0.1 port (no persistence, the same for every contestant), and every
contestant's workers are separate processes started by this script:

- ``sluicegate``: ``sluicegate run APP --store redis://...`` (1 or 2 processes), the
  queue pre-filled through the store's ``send_batch``;
- ``dramatiq``: ``dramatiq MODULE --processes P --threads T`` on its Redis broker, the
  messages enqueued with ``actor.send``;
- ``arq``: ``arq MODULE.WorkerSettings`` (1 or 2 processes), the jobs enqueued with
  ``enqueue_job``; ``keep_result=0`` so arq writes no result keys (less work for it).

Workloads:

1. a no-op handler, batch size 1 (sluicegate) against the peers' per-message handler;
2. a no-op handler, batch size 10 (sluicegate); dramatiq and arq have no batching, so
   their figure is the no-op one of workload 1 (measured once, printed again);
3. a handler sleeping 50 ms at a concurrency of 100 (sluicegate: maximum_concurrency
   100 across all its workers; dramatiq: 100 threads in all; arq: max_jobs 100 in all),
   against Little's law's ideal of concurrency / duration = 2,000 messages/s.

sluicegate's no-op drains use more messages (``--sluicegate-messages``, 100,000) than the
peers' (``--messages``, 20,000), so that they too last seconds: a rate is a rate, and a
drain of half a second would mostly time its ramp-up. A drain is timed from the moment
the backlog first shrinks (so process start-up and
imports count for nobody) until the queue is empty, polling every 5 ms: for sluicegate
the store's counts (nothing visible, in flight or delayed), for dramatiq the length of
its message hash (a message leaves it when acknowledged), for arq the length of its
queue (a job leaves it when finished). Rate = messages drained in that window / window.

Targets: sluicegate at batch size 1 at least 3x the best peer; at batch size 10 at least
10x the best peer; the sleeping workload at least 90% of the ideal. After sluicegate's sleeping drain, the
script times the same number of 50 ms ``asyncio.sleep`` calls by 100 bare tasks in its
own process (no store, no runtime), the ceiling of an asyncio program on this machine at
that moment, and prints sluicegate's rate as a share of it too. This script runs on the
event loop sluicegate's workers run on (:mod:`sluicegate.loops`: uvloop where installed;
``SLUICEGATE_LOOP=asyncio`` for asyncio's own, in the workers too). The ratios compare
like with like: sluicegate with W worker processes against each peer with W processes.

Usage::

    .venv/bin/pip install -r bench/requirements.txt
    .venv/bin/python bench/redis_throughput.py [--messages 20000] [--sleep-messages 20000]
        [--sluicegate-messages 100000] [--only sluicegate,dramatiq,arq] [--rounds 1]
        [--workloads noop,sleep] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from redis_server import RedisServer, redis_binary  # noqa: E402
from sluicegate import loops  # noqa: E402

POLL = 0.005
"""Seconds between two looks at a backlog."""

DRAIN_TIMEOUT = 300.0
"""Seconds a drain may take before the run is declared stuck."""

SLEEP = 0.05
"""Seconds the sleeping handler sleeps."""

CONCURRENCY = 100
"""Concurrency of the sleeping workload, across all worker processes."""

NOOP_THREADS = 8
"""dramatiq threads per process for the no-op workload (its default)."""

NOOP_ARQ_JOBS = 10
"""arq max_jobs per process for the no-op workload (its default)."""

QUEUE = "bench"

SLUICEGATE_APP = '''
import asyncio, os
import sluicegate

BATCH = int(os.environ["BENCH_BATCH"])
SLEEP = float(os.environ["BENCH_SLEEP"])
CONCURRENCY = int(os.environ["BENCH_CONCURRENCY"])

app = sluicegate.App()
app.queue("bench", visibility_timeout=60)


@app.function(timeout=30)
async def handler(event, context):
    if SLEEP:
        await asyncio.sleep(SLEEP)


app.map("bench", handler, batch_size=BATCH, scaling="fixed",
        maximum_concurrency=CONCURRENCY)
'''

DRAMATIQ_APP = '''
import os, time
import dramatiq
from dramatiq.brokers.redis import RedisBroker

SLEEP = float(os.environ.get("BENCH_SLEEP", "0"))
broker = RedisBroker(url=os.environ["BENCH_REDIS"])
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name="bench", max_retries=0)
def handler(n):
    if SLEEP:
        time.sleep(SLEEP)
'''

ARQ_APP = '''
import asyncio, os
from arq.connections import RedisSettings

SLEEP = float(os.environ.get("BENCH_SLEEP", "0"))


async def handler(ctx, n):
    if SLEEP:
        await asyncio.sleep(SLEEP)


class WorkerSettings:
    functions = [handler]
    redis_settings = RedisSettings.from_dsn(os.environ["BENCH_REDIS"])
    max_jobs = int(os.environ["BENCH_JOBS"])
    keep_result = 0
    poll_delay = 0.05
'''


@dataclass
class Result:
    contestant: str
    workload: str
    workers: int
    messages: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


async def time_drain(backlog: Callable[[], Awaitable[int]], total: int,
                     workers: list[subprocess.Popen[bytes]]) -> tuple[int, float]:
    """Poll ``backlog`` until it is 0; return (messages drained, seconds) from the first
    shrink. Fails when a worker exits early or the drain exceeds :data:`DRAIN_TIMEOUT`."""
    start_wall = time.perf_counter()
    first: float | None = None
    at_first = total
    while True:
        left = await backlog()
        now = time.perf_counter()
        if first is None and left < total:
            first, at_first = now, left
        if left == 0:
            assert first is not None
            return at_first, now - first
        if now - start_wall > DRAIN_TIMEOUT:
            raise RuntimeError(f"drain stuck with {left} messages left")
        for worker in workers:
            if worker.poll() is not None:
                raise RuntimeError(f"a worker exited with {worker.returncode} before the end")
        await asyncio.sleep(POLL)


def stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGINT)
    for worker in workers:
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def spawn(argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(argv, env={**os.environ, **env}, cwd=cwd, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


class Bench:
    def __init__(self, server: RedisServer, work: Path) -> None:
        self.server = server
        self.work = work
        self.url = server.url
        self.bin = Path(sys.executable).parent
        (work / "sg_app.py").write_text(textwrap.dedent(SLUICEGATE_APP))
        (work / "dq_app.py").write_text(textwrap.dedent(DRAMATIQ_APP))
        (work / "arq_app.py").write_text(textwrap.dedent(ARQ_APP))

    def log(self, name: str) -> Path:
        return self.work / f"{name}.log"

    # ------------------------------------------------------------------ sluicegate
    async def sluicegate(self, workload: str, n: int, workers: int, batch: int,
                         sleep: float) -> Result:
        from sluicegate.runtime.driver import Runtime
        from sluicegate.store import open_store
        from sluicegate.store.base import SendEntry

        self.server.flushall()
        env = {"BENCH_BATCH": str(batch), "BENCH_SLEEP": str(sleep),
               "BENCH_CONCURRENCY": str(CONCURRENCY if sleep else 100)}
        os.environ.update(env)
        sys.path.insert(0, str(self.work))
        try:
            # the same App the workers load (reloaded: its settings come from the env)
            module = importlib.reload(importlib.import_module("sg_app"))
        finally:
            sys.path.pop(0)
        store = open_store(self.url)
        await store.open()
        try:
            await Runtime(module.app, store).prepare()
            for i in range(0, n, 10):
                await store.send_batch(
                    QUEUE, [SendEntry(f'{{"n": {j}}}') for j in range(i, min(i + 10, n))]
                )

            async def backlog() -> int:
                c = await store.counts(QUEUE)
                return c.visible + c.in_flight + c.delayed

            procs = [
                spawn([str(self.bin / "sluicegate"), "run", "sg_app.py", "--store", self.url],
                      env, self.work, self.log(f"sluicegate-{workload}-{workers}"))
                for _ in range(workers)
            ]
            try:
                drained, seconds = await time_drain(backlog, n, procs)
            finally:
                stop(procs)
        finally:
            await store.close()
        return Result("sluicegate", workload, workers, drained, seconds)

    # ------------------------------------------------------------------ dramatiq
    async def dramatiq(self, workload: str, n: int, workers: int, threads: int,
                       sleep: float) -> Result:
        from redis.asyncio import Redis

        self.server.flushall()
        env = {"BENCH_REDIS": self.url, "BENCH_SLEEP": str(sleep)}
        fill = (
            "import dq_app\n"
            f"for i in range({n}):\n"
            "    dq_app.handler.send(i)\n"
        )
        subprocess.run([sys.executable, "-c", fill], cwd=self.work, check=True,
                       env={**os.environ, **env})
        client = Redis.from_url(self.url)

        async def backlog() -> int:
            return int(await client.hlen("dramatiq:bench.msgs"))

        procs = [spawn([str(self.bin / "dramatiq"), "dq_app", "--processes", str(workers),
                        "--threads", str(threads), "--skip-logging"],
                       env, self.work, self.log(f"dramatiq-{workload}-{workers}"))]
        try:
            drained, seconds = await time_drain(backlog, n, procs)
        finally:
            stop(procs)
            await client.aclose()
        return Result("dramatiq", workload, workers, drained, seconds)

    # ------------------------------------------------------------------ arq
    async def arq(self, workload: str, n: int, workers: int, jobs: int, sleep: float) -> Result:
        from arq.connections import RedisSettings, create_pool

        self.server.flushall()
        env = {"BENCH_REDIS": self.url, "BENCH_SLEEP": str(sleep), "BENCH_JOBS": str(jobs)}
        pool = await create_pool(RedisSettings.from_dsn(self.url))
        for i in range(0, n, 500):
            await asyncio.gather(*(pool.enqueue_job("handler", j)
                                   for j in range(i, min(i + 500, n))))

        async def backlog() -> int:
            return int(await pool.zcard("arq:queue"))

        procs = [spawn([str(self.bin / "arq"), "arq_app.WorkerSettings"], env, self.work,
                       self.log(f"arq-{workload}-{workers}"))
                 for _ in range(workers)]
        try:
            drained, seconds = await time_drain(backlog, n, procs)
        finally:
            stop(procs)
            await pool.aclose()
        return Result("arq", workload, workers, drained, seconds)


CEILINGS: dict[int, float] = {}
"""Messages/s of bare asyncio sleepers measured right after sluicegate's sleeping drain
with that many workers (see :func:`bare_sleepers`)."""


async def bare_sleepers(n: int) -> float:
    """Messages/s of :data:`CONCURRENCY` bare tasks (no store, no runtime) sleeping
    :data:`SLEEP` ``n`` times in all: the ceiling an asyncio program reaches on this
    machine at that moment (timer rounding, scheduling on a loaded machine)."""

    async def worker(count: int) -> None:
        for _ in range(count):
            await asyncio.sleep(SLEEP)

    share, extra = divmod(n, CONCURRENCY)
    start = time.perf_counter()
    await asyncio.gather(*(worker(share + (i < extra)) for i in range(CONCURRENCY)))
    return n / (time.perf_counter() - start)


async def run(args: argparse.Namespace, bench: Bench) -> list[Result]:
    only = set(args.only.split(","))
    n, ns, nsg = args.messages, args.sleep_messages, args.sluicegate_messages
    results: list[Result] = []

    async def measure(make: Callable[[], Awaitable[Result]]) -> None:
        rounds = [await make() for _ in range(args.rounds)]
        best = statistics.median(r.rate for r in rounds)
        r = min(rounds, key=lambda x: abs(x.rate - best))
        results.append(r)
        print(f"  {r.contestant:<10} {r.workload:<8} workers={r.workers}  "
              f"{r.messages:>7,} msgs in {r.seconds:6.2f}s  {r.rate:>9,.0f} msg/s", flush=True)

    noop = "noop" in args.workloads.split(",")
    sleep = "sleep" in args.workloads.split(",")
    for workers in (int(w) for w in args.workers.split(",")):
        if "sluicegate" in only:
            if noop:
                await measure(lambda w=workers: bench.sluicegate("noop-1", nsg, w, 1, 0.0))
                await measure(lambda w=workers: bench.sluicegate("noop-10", nsg, w, 10, 0.0))
            if sleep:
                await measure(lambda w=workers: bench.sluicegate("sleep", ns, w, 1, SLEEP))
                CEILINGS[workers] = await bare_sleepers(ns)
        if "dramatiq" in only:
            if noop:
                await measure(lambda w=workers: bench.dramatiq("noop", n, w, NOOP_THREADS, 0.0))
            if sleep:
                await measure(lambda w=workers: bench.dramatiq("sleep", ns, w,
                                                               CONCURRENCY // w, SLEEP))
        if "arq" in only:
            if noop:
                await measure(lambda w=workers: bench.arq("noop", n, w, NOOP_ARQ_JOBS, 0.0))
            if sleep:
                await measure(lambda w=workers: bench.arq("sleep", ns, w, CONCURRENCY // w,
                                                          SLEEP))
    return results


def report(results: list[Result], worker_counts: list[int]) -> None:
    """Ratios per number of worker processes: sluicegate with W processes against the best
    peer with W processes (dramatiq's W processes, arq's W workers)."""

    def rate(contestant: str, workload: str, workers: int) -> float:
        rates = [r.rate for r in results if r.contestant == contestant
                 and r.workload == workload and r.workers == workers]
        return max(rates, default=0.0)

    ideal = CONCURRENCY / SLEEP
    for workers in worker_counts:
        peer_noop = max(rate("dramatiq", "noop", workers), rate("arq", "noop", workers))
        peer_sleep = max(rate("dramatiq", "sleep", workers), rate("arq", "sleep", workers))
        print(f"\n{workers} worker process(es):")
        if peer_noop:
            print(f"  best peer, no-op:       {peer_noop:>9,.0f} msg/s")
        if peer_sleep:
            print(f"  best peer, sleeping:    {peer_sleep:>9,.0f} msg/s  "
                  f"{peer_sleep / ideal:6.1%} of Little's law ideal {ideal:,.0f}")
        noop1 = rate("sluicegate", "noop-1", workers)
        noop10 = rate("sluicegate", "noop-10", workers)
        sleep = rate("sluicegate", "sleep", workers)
        if noop1 and peer_noop:
            print(f"  sluicegate, batch 1:    {noop1:>9,.0f} msg/s  "
                  f"{noop1 / peer_noop:5.1f}x best peer (target >= 3)")
        if noop10 and peer_noop:
            print(f"  sluicegate, batch 10:   {noop10:>9,.0f} msg/s  "
                  f"{noop10 / peer_noop:5.1f}x best peer (target >= 10)")
        if sleep:
            print(f"  sluicegate, sleeping:   {sleep:>9,.0f} msg/s  "
                  f"{sleep / ideal:6.1%} of the ideal (target >= 90%)")
            ceiling = CEILINGS.get(workers)
            if ceiling:
                print(f"  bare asyncio sleepers:  {ceiling:>9,.0f} msg/s  "
                      f"{ceiling / ideal:6.1%} of the ideal; sluicegate at "
                      f"{sleep / ceiling:6.1%} of it")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--sleep-messages", type=int, default=20_000)
    parser.add_argument("--sluicegate-messages", type=int, default=100_000,
                        help="messages of sluicegate's no-op drains: more than the peers' so "
                        "that its much shorter drain is still timed over seconds")
    parser.add_argument("--only", default="sluicegate,dramatiq,arq")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--workloads", default="noop,sleep",
                        help="noop (batch 1 and 10), sleep (50 ms at concurrency 100)")
    parser.add_argument("--workers", default="1,2", help="worker process counts to run")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args()
    if redis_binary() is None:
        sys.exit("redis_throughput: no redis-server binary on PATH (make redis-server)")
    missing = [peer for peer in ("dramatiq", "arq")
               if peer in args.only.split(",") and importlib.util.find_spec(peer) is None]
    if missing:
        sys.exit(f"redis_throughput: {' and '.join(missing)} not installed "
                 "(pip install -r bench/requirements.txt, or leave them out with --only)")
    work = Path(tempfile.mkdtemp(prefix="sluicegate-bench-"))
    server = RedisServer(work / "redis")
    server.start()
    print(f"redis-server on 127.0.0.1:{server.port}; {args.messages:,} no-op messages "
          f"({args.sluicegate_messages:,} for sluicegate), "
          f"{args.sleep_messages:,} sleeping ({SLEEP * 1000:.0f} ms) at concurrency "
          f"{CONCURRENCY}; work dir {work}", flush=True)
    try:
        # the loop sluicegate's workers run on (sluicegate.loops), for the bare sleepers
        results = loops.run(run(args, Bench(server, work)))
        report(results, [int(w) for w in args.workers.split(",")])
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
