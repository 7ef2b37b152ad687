"""Hand-off latency of a semaphore between processes, on SQLite and on Redis.

Two worker processes share one slot (a semaphore of limit 1) and take it in turn ``N``
times each: acquire (waiting in the FIFO queue), note the time, hold it ``--hold``
seconds, note the time, release. Every hand-off is a wake: the releaser's store sends the
waiter in the other process its task token (a datagram on SQLite, a publish from the
release script on Redis), and the waiter attempts again. Nothing polls, so the latency
is the release's transaction plus the wake plus the waiter's attempt.

Prints, per store, the hand-off latency (from just before one worker's release to the
other's grant: median, 90th and 99th percentiles, maximum) and the hand-offs per second.

Usage: ``python bench/semaphore_wake.py [--rounds N] [--hold SECONDS] [--redis URL]``
(default 200 rounds per worker, hold 0.001 s; without ``--redis``, a redis-server on
PATH is started for the run, or Redis is skipped).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKER = r"""
import asyncio, sys, time
from sluicegate.store import open_store

async def main(url, rounds, hold, me):
    async with open_store(url) as store:
        out = []
        for i in range(rounds):
            token = f"{me}-{i}"
            await store.acquire_semaphore("bench", token, limit=1, ttl=10)
            out.append(("acq", time.time()))
            await asyncio.sleep(hold)
            out.append(("rel", time.time()))
            await store.release_semaphore("bench", token)
        for kind, at in out:
            print(kind, repr(at), me)

asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]))
"""


def _run(url: str, rounds: int, hold: float) -> tuple[list[float], float]:
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, url, str(rounds), str(hold), me],
                                stdout=subprocess.PIPE, text=True) for me in ("a", "b")]
    events = []
    for w in workers:
        out, _ = w.communicate(timeout=600)
        for line in out.splitlines():
            kind, at, me = line.split()
            events.append((float(at), kind, me))
    events.sort()
    elapsed = events[-1][0] - events[0][0]
    latencies = []
    last_release: tuple[float, str] | None = None
    for at, kind, me in events:
        if kind == "rel":
            last_release = (at, me)
        elif last_release is not None and last_release[1] != me:
            latencies.append(at - last_release[0])
            last_release = None
    return latencies, 2 * rounds / elapsed  # grants per second, first to last


def _report(name: str, latencies: list[float], rate: float) -> None:
    ms = sorted(x * 1000 for x in latencies)
    q = statistics.quantiles(ms, n=100)
    print(f"{name:7} hand-offs {len(ms):4d}: median {statistics.median(ms):6.2f} ms, "
          f"p90 {q[89]:6.2f} ms, p99 {q[98]:6.2f} ms, max {ms[-1]:6.2f} ms; "
          f"{rate:6.0f} grants/s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="grants per worker")
    parser.add_argument("--hold", type=float, default=0.001, help="seconds each grant holds")
    parser.add_argument("--redis", metavar="URL", help="a Redis server to use")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        asyncio.run(_create(url))
        _report("sqlite", *_run(url, args.rounds, args.hold))
        server = None
        redis = args.redis
        if redis is None and shutil.which("redis-server"):
            port = _free_port()
            server = subprocess.Popen(["redis-server", "--port", str(port), "--save", "",
                                       "--appendonly", "no", "--dir", tmp],
                                      stdout=subprocess.DEVNULL)
            time.sleep(0.3)
            redis = f"redis://127.0.0.1:{port}/0"
        try:
            if redis is not None:
                _report("redis", *_run(redis, args.rounds, args.hold))
        finally:
            if server is not None:
                server.terminate()
                server.wait()


async def _create(url: str) -> None:
    from sluicegate.store import open_store

    async with open_store(url):
        pass  # the schema, before two workers race to create it


if __name__ == "__main__":
    main()
