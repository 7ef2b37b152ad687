"""Semaphores across processes, on the stores other processes share (SQLite, Redis):
waiters in other processes are woken by the release in arrival order (no polling), a
``kill -9``'d holder's slot frees by expiry, a ``kill -9``'d waiter is skipped.

Each waiter is a child process (``python -c``) that prints when it got its slot (epoch
seconds) on its standard output.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sluicegate.store import Store, open_store

CHILD = r"""
import asyncio, sys, time
from sluicegate.store import open_store

async def main(url, name, token, hold, ttl):
    store = open_store(url)
    async with store:
        print("waiting", flush=True)
        grant = await store.acquire_semaphore(name, token, limit=1, ttl=ttl, timeout=20)
        print(f"acquired {time.time()!r} {grant.token}", flush=True)
        if hold < 0:
            await asyncio.sleep(3600)  # held until killed
        await asyncio.sleep(hold)
        await store.release_semaphore(name, token)

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])))
"""

SHARED = ["sqlite", "redis"]


@pytest.fixture(params=SHARED)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return f"sqlite:///{tmp_path / 'store.db'}"


_started: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _reap() -> Iterator[None]:
    """Kill and reap every child a test started, closing its pipe."""
    yield
    while _started:
        child = _started.pop()
        if child.poll() is None:
            child.kill()
        child.wait(10)
        if child.stdout is not None:
            child.stdout.close()


def _child(url: str, token: str, *, hold: float = 0.05, ttl: float = 30) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, "db", token, str(hold), str(ttl)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    _started.append(child)
    return child


async def _queued(store: Store, token: str, timeout: float = 10.0) -> None:
    """Return once ``token`` waits on semaphore ``db``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        states = await store.list_semaphores(["db"])
        if states and token in [w.waiter for w in states[0].waiters]:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{token} never queued")


def _acquired(child: subprocess.Popen[str]) -> tuple[float, int]:
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith("acquired"):
            _, at, token = line.split()
            return float(at), int(token)
    raise AssertionError(f"child exited ({child.wait()}) without acquiring")


def _run(coro_fn: Callable[[], object]) -> None:
    asyncio.run(coro_fn())  # type: ignore[arg-type]


def test_waiters_in_other_processes_are_woken_in_arrival_order(url: str) -> None:
    async def main() -> None:
        async with open_store(url) as store:
            # Given the slot held here, three processes queue for it, in order
            await store.acquire_semaphore("db", "here", limit=1, ttl=30, timeout=0)
            children = []
            for token in ("p1", "p2", "p3"):
                children.append(_child(url, token))
                await _queued(store, token)
            # When it is released
            released = time.time()
            await store.release_semaphore("db", "here")
            results = [await asyncio.to_thread(_acquired, c) for c in children]
            for c in children:
                assert c.wait(10) == 0
        # Then they got it one after the other, in arrival order, with rising tokens
        times = [at for at, _ in results]
        assert times == sorted(times)
        tokens = [tok for _, tok in results]
        assert tokens == sorted(tokens) and len(set(tokens)) == 3
        # each woken by the one before it, not by a poll (hold 50 ms each)
        assert times[0] - released < 0.5
        assert times[2] - times[0] < 1.0
        print(f"wake latency across processes: first {1000 * (times[0] - released):.1f} ms")

    _run(main)


def test_a_killed_holder_frees_its_slot_by_expiry(url: str) -> None:
    async def main() -> None:
        async with open_store(url) as store:
            holder = _child(url, "doomed", hold=-1, ttl=1.0)  # holds with a 1 s lease
            first = await asyncio.to_thread(_acquired, holder)
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait(5)
            killed = time.time()
            # a waiter here is never woken (nobody releases): it takes the slot once the
            # dead holder's lease expires, not before
            grant = await store.acquire_semaphore("db", "next", limit=1, ttl=5, timeout=5)
            got = time.time()
            assert grant.acquired and grant.token > first[1]
            assert got - first[0] >= 0.99  # not before the lease ran out ...
            assert got - killed < 1.5  # ... and soon after
    _run(main)


def test_a_killed_waiter_is_skipped(url: str) -> None:
    async def main() -> None:
        async with open_store(url) as store:
            await store.acquire_semaphore("db", "here", limit=1, ttl=30, timeout=0)
            dead = _child(url, "dead")
            await _queued(store, "dead")
            alive = _child(url, "alive")
            await _queued(store, "alive")
            os.kill(dead.pid, signal.SIGKILL)
            dead.wait(5)
            released = time.time()
            await store.release_semaphore("db", "here")
            at, _ = await asyncio.to_thread(_acquired, alive)
            assert alive.wait(10) == 0
            assert at - released < 0.5  # its wake did not wait for the dead one's expiry
    _run(main)
