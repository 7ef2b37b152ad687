"""Drain rate of sluicegate on the SQLite store against a bare sqlite3 loop.

For batch sizes 1 and 10, in one process:

- reference: a bare sqlite3 loop doing the same durable work per batch (WAL,
  synchronous=NORMAL, as the store): one transaction claiming ``batch`` messages with a
  visibility deadline and a raised receive count, then one transaction deleting them;
- sluicegate: the queue pre-filled with the same number of messages, a no-op async
  handler (defined at module level, so execution environments copy this script's module),
  the ``fixed`` policy, and the time from start until the queue is empty; once per
  isolation named in BENCH_ISOLATION (default ``module,shared``: the default execution
  environments and the shared module; add ``process`` for worker processes).

Prints the median messages/s of each over interleaved rounds, the ratio of the medians,
and the lowest and highest ratio of a single round (a round runs the bare loop and every
isolation back to back, the isolations in turn first, so its ratio shows how much the
machine's load moved the figures).
Usage: ``python bench/throughput.py [N]`` (env BENCH_CONCURRENCY, BENCH_ROUNDS,
BENCH_ISOLATION).

``python bench/throughput.py --sleep [N]``: instead, the sleeping workload: a handler
sleeping 50 ms, batch size 1, ``maximum_concurrency`` 100 (env BENCH_CONCURRENCY), against
Little's law's ideal of concurrency / duration (2,000 messages/s). Timed from the first
invocation's start until the queue is empty (so start-up counts for nothing), N messages
(default 20,000), BENCH_ROUNDS rounds, BENCH_ISOLATION (default ``module``, the default); prints each round's rate and share of the ideal and
the median. Each round also times the same number of 50 ms ``asyncio.sleep`` calls by
``concurrency`` bare tasks (no store, no runtime): the ceiling an asyncio program reaches
on this machine at that moment (timer rounding, scheduling on a loaded machine), printed
beside.

Every drain runs on the event loop ``sluicegate run`` uses (:mod:`sluicegate.loops`:
uvloop where installed); ``SLUICEGATE_LOOP=asyncio`` measures asyncio's own loop.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import sluicegate
from sluicegate import loops
from sluicegate.runtime.driver import Runtime
from sluicegate.runtime.metrics import Metrics
from sluicegate.store import open_store
from sluicegate.store.base import SendEntry

VISIBILITY = 30.0


def bare_loop(path: Path, n: int, batch: int) -> float:
    """Messages/s of the reference loop draining ``n`` messages ``batch`` at a time."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE m (id INTEGER PRIMARY KEY, body TEXT NOT NULL, visible_at REAL NOT NULL,"
        " receive_count INTEGER NOT NULL DEFAULT 0)"
    )
    db.execute("CREATE INDEX m_visible ON m (visible_at, id)")
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO m (body, visible_at) VALUES (?, 0)", ((f'{{"n": {i}}}',) for i in range(n))
    )
    db.execute("COMMIT")
    start = time.perf_counter()
    done = 0
    while True:
        now = time.time()
        db.execute("BEGIN IMMEDIATE")
        ids = [row[0] for row in db.execute(
            "SELECT id FROM m WHERE visible_at <= ? ORDER BY visible_at, id LIMIT ?", (now, batch)
        )]
        if not ids:
            db.execute("COMMIT")
            break
        marks = ",".join("?" * len(ids))
        db.execute(
            f"UPDATE m SET visible_at = ?, receive_count = receive_count + 1 WHERE id IN ({marks})",
            (now + VISIBILITY, *ids),
        )
        db.execute("COMMIT")
        db.execute("BEGIN IMMEDIATE")
        db.execute(f"DELETE FROM m WHERE id IN ({marks})", ids)
        db.execute("COMMIT")
        done += len(ids)
    elapsed = time.perf_counter() - start
    db.close()
    assert done == n
    return n / elapsed


async def noop(event, context):
    return None


SLEEP = 0.05
"""Seconds the sleeping handler sleeps."""


async def sleeper(event, context):
    await asyncio.sleep(SLEEP)


class FirstStart(Metrics):
    """Metrics that remember when the first invocation started."""

    first: float | None = None

    def invocation_started(self, mapping: str) -> None:
        if self.first is None:
            self.first = time.perf_counter()
        super().invocation_started(mapping)


async def sleeping_drain(path: Path, n: int, concurrency: int, isolation: str) -> float:
    """Messages/s of sluicegate draining ``n`` messages with the sleeping handler."""
    app = sluicegate.App()
    app.queue("bench", visibility_timeout=VISIBILITY)
    app.function(timeout=10, isolation=isolation)(sleeper)
    app.map("bench", sleeper, batch_size=1, scaling="fixed", maximum_concurrency=concurrency)
    store = open_store(f"sqlite:///{path}")
    await store.open()
    try:
        metrics = FirstStart()
        runtime = Runtime(app, store, metrics=metrics)
        await runtime.prepare()
        for i in range(0, n, 10):
            await store.send_batch(
                "bench", [SendEntry(f'{{"n": {j}}}') for j in range(i, min(i + 10, n))]
            )
        summary = await runtime.run(until_empty=True)
        end = time.perf_counter()
    finally:
        await store.close()
    assert summary.processed == n, summary
    assert metrics.first is not None
    return n / (end - metrics.first)


async def bare_sleepers(n: int, concurrency: int) -> float:
    """Messages/s of ``concurrency`` bare tasks sleeping :data:`SLEEP` ``n`` times in all."""

    async def worker(count: int) -> None:
        for _ in range(count):
            await asyncio.sleep(SLEEP)

    share, extra = divmod(n, concurrency)
    start = time.perf_counter()
    await asyncio.gather(*(worker(share + (i < extra)) for i in range(concurrency)))
    return n / (time.perf_counter() - start)


def sleeping(n: int) -> None:
    concurrency = int(os.environ.get("BENCH_CONCURRENCY", "100"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    isolation = os.environ.get("BENCH_ISOLATION", "module")
    ideal = concurrency / SLEEP
    print(f"draining {n:,} messages with a {SLEEP * 1000:.0f} ms handler at "
          f"maximum_concurrency={concurrency}, batch 1, isolation {isolation}, "
          f"event loop {loops.loop_name()}; Little's law: {ideal:,.0f} msg/s")
    rates: list[float] = []
    ceilings: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            rate = loops.run(sleeping_drain(Path(tmp) / f"sleep-{r}.db", n, concurrency,
                                            isolation))
            ceiling = loops.run(bare_sleepers(n, concurrency))
            rates.append(rate)
            ceilings.append(ceiling)
            print(f"  round {r + 1}: {rate:>7,.0f} msg/s  {rate / ideal:6.1%} of the ideal; "
                  f"bare asyncio sleepers {ceiling / ideal:6.1%}", flush=True)
    m = statistics.median(rates)
    c = statistics.median(ceilings)
    print(f"median: {m:,.0f} msg/s  {m / ideal:.1%} of the ideal; bare asyncio sleepers "
          f"{c / ideal:.1%}")


def make_app(batch: int, concurrency: int, isolation: str) -> sluicegate.App:
    app = sluicegate.App()
    app.queue("bench", visibility_timeout=VISIBILITY)
    app.function(timeout=10, isolation=isolation)(noop)
    window = 1 if batch > 10 else 0
    app.map("bench", noop, batch_size=batch, maximum_batching_window=window,
            scaling="fixed", maximum_concurrency=concurrency)
    return app


async def sluicegate_drain(
    path: Path, n: int, batch: int, concurrency: int, isolation: str
) -> float:
    """Messages/s of sluicegate draining ``n`` pre-filled messages."""
    app = make_app(batch, concurrency, isolation)
    store = open_store(f"sqlite:///{path}")
    await store.open()
    try:
        runtime = Runtime(app, store)
        await runtime.prepare()
        for i in range(0, n, 10):
            await store.send_batch(
                "bench", [SendEntry(f'{{"n": {j}}}') for j in range(i, min(i + 10, n))]
            )
        start = time.perf_counter()
        summary = await runtime.run(until_empty=True)
        elapsed = time.perf_counter() - start
    finally:
        await store.close()
    assert summary.processed == n, summary
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Drain rates of sluicegate on SQLite against the bare sqlite3 loop "
                    "(env BENCH_CONCURRENCY, BENCH_ROUNDS, BENCH_ISOLATION).")
    parser.add_argument("n", nargs="?", type=int,
                        help="messages per drain (default 50,000; 20,000 with --sleep)")
    parser.add_argument("--sleep", action="store_true",
                        help="50 ms handlers at concurrency 100 against Little's law")
    args = parser.parse_args()
    if args.n is not None and args.n < 1:
        parser.error(f"N must be at least 1, not {args.n}")
    if args.sleep:
        sleeping(args.n or 20_000)
        return
    n = args.n or 50_000
    concurrency = int(os.environ.get("BENCH_CONCURRENCY", "20"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    isolations = os.environ.get("BENCH_ISOLATION", "module,shared").split(",")
    print(f"draining {n:,} messages, median of {rounds} interleaved rounds; "
          f"sluicegate at maximum_concurrency={concurrency}")
    print(f"{'batch':>5} {'isolation':>9} {'bare sqlite3 msg/s':>19} {'sluicegate msg/s':>17} "
          f"{'ratio':>6} {'per round':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        for batch in (1, 10):
            bare: list[float] = []
            ours: dict[str, list[float]] = {i: [] for i in isolations}
            for r in range(rounds):
                bare.append(bare_loop(Path(tmp) / f"bare{batch}-{r}.db", n, batch))
                k = r % len(isolations)  # each isolation takes its turn first
                for isolation in isolations[k:] + isolations[:k]:
                    ours[isolation].append(loops.run(sluicegate_drain(
                        Path(tmp) / f"sg{batch}-{r}-{isolation}.db", n, batch, concurrency,
                        isolation,
                    )))
            b = statistics.median(bare)
            for isolation, figures in ours.items():
                o = statistics.median(figures)
                ratios = [x / y for x, y in zip(figures, bare, strict=True)]
                spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
                print(f"{batch:>5} {isolation:>9} {b:>19,.0f} {o:>17,.0f} {o / b:>6.2f} "
                      f"{spread:>11}")


if __name__ == "__main__":
    main()
