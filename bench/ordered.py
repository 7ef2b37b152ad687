"""Drain rates of sluicegate's ordered sources on the SQLite store, against the bare loop.

In one process, over interleaved rounds:

- stream: ``N`` records over 1,000 partition keys put to a 4-shard stream, drained by a
  mapping with ``parallelization_factor`` 10 (40 lanes) and a no-op async handler, batch
  size 100; the time from start until every shard's checkpoint reaches its last record;
- FIFO: ``N`` messages over 100 message groups on a FIFO queue, drained by a mapping with
  batch size 10 and ``maximum_concurrency`` 100 (so every group can have its batch in
  flight) and a no-op async handler;
- reference: :func:`throughput.bare_loop`, the bare sqlite3 claim-then-delete loop of
  ``bench/throughput.py``, at batch size 10.

Prints the median rate of each and its ratio to the reference's median, with the lowest
and highest ratio of a single round. The reference loop does less than either mapping:
no group or lane bookkeeping, no checkpoints, no events; the ratio says what the ordered
machinery costs on top of durable claim-and-delete work.

Usage: ``python bench/ordered.py [N]`` (default 20,000; env BENCH_ROUNDS, default 3).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import sluicegate
from sluicegate.runtime.driver import Runtime
from sluicegate.store import open_store
from sluicegate.store.base import PutEntry, SendEntry

sys.path.insert(0, str(Path(__file__).parent))
from throughput import bare_loop

SHARDS = 4
FACTOR = 10
KEYS = 1_000
GROUPS = 100


def stream_app() -> sluicegate.App:
    app = sluicegate.App()
    app.stream("bench", shard_count=SHARDS)

    @app.function(timeout=10)
    async def noop(event, context):
        return None

    app.map("bench", noop, batch_size=100, parallelization_factor=FACTOR)
    return app


def fifo_app() -> sluicegate.App:
    app = sluicegate.App()
    app.queue("bench.fifo", visibility_timeout=30)

    @app.function(timeout=10)
    async def noop(event, context):
        return None

    app.map("bench.fifo", noop, batch_size=10, scaling="fixed", maximum_concurrency=GROUPS)
    return app


async def _drain(path: Path, app: sluicegate.App, fill) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    store = open_store(f"sqlite:///{path}")
    await store.open()
    try:
        runtime = Runtime(app, store)
        await runtime.prepare()
        await fill(store)
        start = time.perf_counter()
        summary = await runtime.run(until_empty=True)
        elapsed = time.perf_counter() - start
    finally:
        await store.close()
    return elapsed, summary.processed


async def stream_drain(path: Path, n: int) -> float:
    async def fill(store) -> None:  # type: ignore[no-untyped-def]
        for i in range(0, n, 500):
            await store.put_records("bench", [
                PutEntry(f"key-{j % KEYS}", f'{{"n": {j}}}') for j in range(i, min(i + 500, n))
            ])

    elapsed, processed = await _drain(path, stream_app(), fill)
    assert processed == n, processed
    return n / elapsed


async def fifo_drain(path: Path, n: int) -> float:
    async def fill(store) -> None:  # type: ignore[no-untyped-def]
        for i in range(0, n, 10):
            await store.send_batch("bench.fifo", [
                SendEntry(f'{{"n": {j}}}', group_id=f"g{j % GROUPS}", deduplication_id=str(j))
                for j in range(i, min(i + 10, n))
            ])

    elapsed, processed = await _drain(path, fifo_app(), fill)
    assert processed == n, processed
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Drain rates of sluicegate's ordered sources (stream, FIFO) on SQLite "
                    "against the bare sqlite3 loop (env BENCH_ROUNDS: rounds, default 3).")
    parser.add_argument("n", nargs="?", type=int, default=20_000,
                        help="records/messages per drain (default 20,000)")
    n = parser.parse_args().n
    if n < 1:
        parser.error(f"N must be at least 1, not {n}")
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    print(f"{n:,} records/messages, median of {rounds} interleaved rounds; reference: the bare "
          "sqlite3 loop of bench/throughput.py at batch 10")
    rates: dict[str, list[float]] = {"bare": [], "stream": [], "fifo": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            rates["bare"].append(bare_loop(Path(tmp) / f"bare-{r}.db", n, 10))
            rates["stream"].append(asyncio.run(stream_drain(Path(tmp) / f"s-{r}.db", n)))
            rates["fifo"].append(asyncio.run(fifo_drain(Path(tmp) / f"f-{r}.db", n)))
    bare = statistics.median(rates["bare"])
    print(f"{'workload':<44} {'per s':>9} {'ratio':>6} {'per round':>11}")
    print(f"{'bare sqlite3 loop, batch 10':<44} {bare:>9,.0f}")
    labels = {
        "stream": f"stream, {SHARDS} shards x factor {FACTOR}, batch 100",
        "fifo": f"FIFO, {GROUPS} active groups, batch 10",
    }
    for name, label in labels.items():
        median = statistics.median(rates[name])
        ratios = [x / y for x, y in zip(rates[name], rates["bare"], strict=True)]
        print(f"{label:<44} {median:>9,.0f} {median / bare:>6.2f} "
              f"{min(ratios):.2f}-{max(ratios):.2f}")


if __name__ == "__main__":
    main()
