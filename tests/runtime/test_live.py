"""Live limits in one runtime: a change written to the store is applied within a second
(maximum concurrency, pause and resume, reserved concurrency, a breaker by name), and a
handler changes its own limits through ``context.limits`` with compare-and-set, in
module, shared and process isolation."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import sluicegate
from sluicegate.core.limit import TERM_MAXIMUM_CONCURRENCY, TERM_SCALING
from sluicegate.errors import ConfigError
from sluicegate.runtime.driver import Runtime
from sluicegate.store import MemoryStore, SendEntry, SqliteStore


def _app(*, breaker: str | None = None, **mapping: Any) -> sluicegate.App:
    app = sluicegate.App()
    app.queue("q", visibility_timeout=30)
    if breaker is not None:
        app.breaker(breaker)
        mapping["breaker"] = breaker

    @app.function(timeout=5)
    async def work(event: object, context: object) -> None:
        await asyncio.sleep(0.01)

    app.map("q", work, batch_size=1, **mapping)
    return app


async def _until(check: Callable[[], bool], within: float = 3.0) -> float:
    """Seconds until ``check()`` holds (fails the test after ``within``)."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > within:
            raise AssertionError("not within time")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def _running(runtime: Runtime, body: Callable[[], Awaitable[None]]) -> None:
    task = asyncio.create_task(runtime.run())
    try:
        await _until(lambda: bool(runtime.runners) and runtime.live.revision >= 0
                     and runtime.pool is not None)
        await asyncio.sleep(0.05)
        await body()
    finally:
        runtime.stop()
        await asyncio.wait_for(task, 10)


def test_maximum_concurrency_pause_resume_reserved_and_breakers_apply_within_a_second(
) -> None:
    app = _app(scaling="fixed", maximum_concurrency=10, breaker="db")

    async def main() -> None:
        async with MemoryStore() as store:
            runtime = Runtime(app, store)

            async def body() -> None:
                breaker = runtime.breakers()["db"]
                changes: list[tuple[object, object, object, object]] = []
                breaker.on_change(lambda *change: changes.append(change))
                (runner,) = [r for r in runtime.runners if r.name == "q->work"]
                limit = runner.core.concurrency_limit
                now = store.clock()
                assert limit.describe(now)[TERM_MAXIMUM_CONCURRENCY] == 10
                # a live maximum below, then above the App's: the fixed policy follows
                await store.write_settings("mapping:q->work", {"maximum_concurrency": 4},
                                           by="cli:test")
                await _until(lambda: limit.value(store.clock()) == 4, 1.0)
                await store.write_settings("mapping:q->work", {"maximum_concurrency": 30},
                                           by="cli:test")
                await _until(lambda: limit.value(store.clock()) == 30, 1.0)
                assert limit.describe(store.clock())[TERM_SCALING] == 30
                # the workers follow the limit (and the one long poll of the function's
                # idle internal queue of asynchronous invocations)
                assert runner.invoker.max_workers == 31
                # unset: back to the App's
                await store.write_settings("mapping:q->work", {"maximum_concurrency": None},
                                           by="cli:test")
                await _until(lambda: limit.value(store.clock()) == 10, 1.0)
                # pause and resume
                await store.write_settings("mapping:q->work", {"enabled": False}, by="t")
                await _until(lambda: runner.core.paused, 1.0)
                await store.write_settings("mapping:q->work", {"enabled": True}, by="t")
                await _until(lambda: not runner.core.paused, 1.0)
                # reserved concurrency: the pool takes it
                await store.write_settings("function:work", {"reserved_concurrency": 7},
                                           by="t")
                assert runtime.pool is not None
                pool = runtime.pool
                await _until(lambda: pool.reserved_concurrency("work") == 7, 1.0)
                # a breaker by name
                await store.write_settings("breaker:db", {"state": "open", "reason": "db down"},
                                           by="cli:ann")
                await _until(lambda: breaker.state(store.clock()) == "open", 1.0)
                assert limit.value(store.clock()) == 0  # an open breaker: nothing is read
                await store.write_settings("breaker:db", {"state": "closed"}, by="cli:bob")
                await _until(lambda: breaker.state(store.clock()) == "closed", 1.0)
                assert [(c[1], c[3]) for c in changes] == [("open", "cli:ann"),
                                                           ("closed", "cli:bob")]
                assert changes[0][2] == "db down"
                # each change the breaker makes (by hand or by itself) is published
                breaker.trip(store.clock(), "failure rate 0.8", by="breaker")
                await asyncio.sleep(0.05)
                seen = json.loads(await store.read_shared("breaker-state:db") or "{}")
                assert (seen["state"], seen["previous"], seen["reason"]) == (
                    "open", "closed", "failure rate 0.8")

            await _running(runtime, body)

    asyncio.run(main())


def test_a_mapping_paused_before_a_start_starts_paused_and_receives_nothing() -> None:
    app = _app()

    async def main() -> None:
        async with MemoryStore() as store:
            runtime = Runtime(app, store)
            await runtime.prepare()
            await store.send_batch("q", [SendEntry(str(i)) for i in range(5)])
            await store.write_settings("mapping:q->work", {"enabled": False}, by="t")

            async def body() -> None:
                await asyncio.sleep(0.3)
                assert (await store.counts("q")).visible == 5  # nothing received
                await store.write_settings("mapping:q->work", {"enabled": True}, by="t")
                await _until(lambda: runtime.metrics.totals().invocations == 5, 3.0)

            await _running(runtime, body)

    asyncio.run(main())


def _cas_app(isolation: str, handler_kind: str, barrier_size: int) -> sluicegate.App:
    app = sluicegate.App()
    app.queue("q", visibility_timeout=60)
    barrier = threading.Barrier(barrier_size, timeout=10)
    wins: list[bool] = []

    if handler_kind == "sync":
        @app.function(name="cas", timeout=20, isolation=isolation)  # type: ignore[arg-type]
        def cas(event: object, context: Any) -> None:
            current = context.limits.mapping.get()
            barrier.wait()  # every invocation read the same version
            wins.append(context.limits.mapping.set(
                maximum_concurrency=current.values.get("maximum_concurrency", 10) + 1,
                expected_version=current.version, why="slow down"))
    else:
        gate = asyncio.Event()
        reads: list[int] = []

        @app.function(name="cas", timeout=20, isolation=isolation)  # type: ignore[arg-type]
        async def cas(event: object, context: Any) -> None:
            current = await context.limits.mapping.aget()
            reads.append(current.version)
            if len(reads) == barrier_size:
                gate.set()
            await gate.wait()
            wins.append(await context.limits.mapping.aset(
                maximum_concurrency=20, expected_version=current.version))

    app.map("q", "cas", batch_size=1, scaling="fixed", maximum_concurrency=barrier_size)
    app.wins = wins  # type: ignore[attr-defined]
    return app


@pytest.mark.parametrize(("isolation", "kind"), [("module", "sync"), ("shared", "sync"),
                                                 ("module", "async")])
def test_of_concurrent_invocations_setting_on_one_version_exactly_one_wins(
    isolation: str, kind: str
) -> None:
    n = 4
    app = _cas_app(isolation, kind, n)

    async def main() -> None:
        async with MemoryStore() as store:
            runtime = Runtime(app, store)
            await runtime.prepare()
            await store.send_batch("q", [SendEntry(str(i)) for i in range(n)])

            async def body() -> None:
                await _until(lambda: len(app.wins) == n, 10)  # type: ignore[attr-defined]

            await _running(runtime, body)
            assert sorted(app.wins) == [False] * (n - 1) + [True]  # type: ignore[attr-defined]
            settings = await store.get_settings("mapping:q->cas")
            assert settings.version == 1 and settings.changed_by == "function:cas"
            (change,) = await store.settings_history()
            assert change.by == "function:cas"

    asyncio.run(main())


def test_a_sync_call_on_the_event_loop_is_refused_with_one_line() -> None:
    app = sluicegate.App()
    app.queue("q")
    errors: list[str] = []

    @app.function(timeout=5)
    async def wrong(event: object, context: Any) -> None:
        try:
            context.limits.mapping.get()
        except ConfigError as exc:
            errors.append(str(exc))
        try:
            await context.limits.mapping.aset(maximum_concurrency=1)
        except ConfigError as exc:
            errors.append(str(exc))
        try:
            await context.limits.function.aset(maximum_concurrency=5)
        except ConfigError as exc:
            errors.append(str(exc))

    app.map("q", wrong)

    async def main() -> None:
        async with MemoryStore() as store:
            runtime = Runtime(app, store)
            await runtime.prepare()
            await store.send("q", "x")
            await _running(runtime, lambda: _until(lambda: len(errors) == 3))

    asyncio.run(main())
    assert "aget()/aset()" in errors[0]
    assert "maximum_concurrency=1" in errors[1] and "2-1,000" in errors[1]
    assert "reserved_concurrency" in errors[2]
    assert all("\n" not in e for e in errors)


def test_a_handler_in_a_process_environment_sets_through_its_own_store_connection(
    tmp_path: Path
) -> None:
    from tests.runtime import live_process_app

    async def main() -> None:
        async with SqliteStore(tmp_path / "s.db") as store:
            app = live_process_app.app
            runtime = Runtime(app, store, cluster=None)
            await runtime.prepare()
            await store.send("q", "x")

            async def body() -> None:
                pool = runtime.pool
                assert pool is not None
                await _until(lambda: pool.reserved_concurrency("selfset") == 3, 20)

            await _running(runtime, body)
            (change,) = await store.settings_history()
            assert (change.scope, change.by, change.why, change.new) == (
                "function:selfset", "function:selfset", "from a process",
                {"reserved_concurrency": 3})

    asyncio.run(main())


def test_a_process_environment_refuses_a_memory_store_with_one_line() -> None:
    from tests.runtime import live_process_app

    async def main() -> None:
        async with MemoryStore() as store:
            runtime = Runtime(live_process_app.app, store)
            await runtime.prepare()
            await store.send("q", "x")

            async def body() -> None:
                await _until(lambda: runtime.metrics.totals().errors >= 1, 20)

            await _running(runtime, body)
            assert (await store.get_settings("function:selfset")).version == 0

    asyncio.run(main())
