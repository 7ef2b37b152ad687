"""The asyncio driver's own duties: noticing promptly that an ``until_empty`` run is done;
one runner for every source, and the limit's terms as the runtime reads them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

import sluicegate
from sluicegate.runtime import driver
from sluicegate.runtime.driver import Runtime
from sluicegate.runtime.runner import MappingRunner
from sluicegate.store import QueueCounts, SendEntry, SqliteStore

SLOW = 60.0
"""A drain-check interval no test may wait for: a run that ends promptly did not."""


def _app() -> sluicegate.App:
    app = sluicegate.App()
    app.queue("q", visibility_timeout=30, receive_wait_time=20)

    @app.function(timeout=5)
    async def noop(event: object, context: object) -> None:
        return None

    app.map("q", noop, batch_size=10, scaling="fixed", maximum_concurrency=4)
    return app


async def _drain(path: Path, n: int, *, slow_counts: float = 0.0) -> tuple[float, int]:
    """Fill queue ``q`` with ``n`` messages and run until it is empty.

    Returns: (seconds the run took, messages processed).
    """
    app = _app()
    async with SqliteStore(path) as store:
        runtime = Runtime(app, store)
        await runtime.prepare()
        for i in range(0, n, 10):
            await store.send_batch("q", [SendEntry(json.dumps({"n": j})) for j in range(i, i + 10)])
        if slow_counts:
            counts = store.counts

            async def slow(queue: str) -> QueueCounts:
                result = await counts(queue)
                await asyncio.sleep(slow_counts)  # deletes land while the monitor counts
                return result

            store.counts = slow  # type: ignore[method-assign]
        loop = asyncio.get_running_loop()
        started = loop.time()
        summary = await asyncio.wait_for(runtime.run(until_empty=True), 30)
        return loop.time() - started, summary.processed


def test_drain_ends_when_the_queue_runs_short_not_when_the_long_poll_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pollers long-poll for 20 s; the first receive that comes back short must tell the
    run to look, or the run would end only when the long polls (or the timer) run out."""
    # Given: a drain-check timer that never fires within the test
    monkeypatch.setattr(driver, "DRAIN_CHECK_INTERVAL", SLOW)

    # When: 200 messages are drained with long polls of 20 s
    elapsed, processed = asyncio.run(_drain(tmp_path / "short.db", 200))

    # Then: the run ends within a few seconds of the last delete
    assert processed == 200
    assert elapsed < 10


def test_drain_ends_when_the_last_deletes_land_during_a_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The signal that a mapping settled may arrive while the monitor is counting: it
    must wake the monitor's next wait rather than be cleared after the count."""
    monkeypatch.setattr(driver, "DRAIN_CHECK_INTERVAL", SLOW)
    monkeypatch.setattr(driver, "DRAIN_CHECK_MIN_GAP", 0.0)

    elapsed, processed = asyncio.run(_drain(tmp_path / "race.db", 200, slow_counts=0.2))

    assert processed == 200
    assert elapsed < 10


def test_a_run_ends_even_when_the_store_loses_the_monitors_cancel(tmp_path: Path) -> None:
    """On Python 3.11 redis-py's ``asyncio.wait_for`` around a socket write swallows a
    cancel that arrives as the write completes; the monitor, cancelled at the end of the
    run, then went on counting the queues for ever and the run never returned."""

    class LosesCancels(SqliteStore):
        run: asyncio.Task[object] | None = None
        lost = False

        async def counts(self, queue: str) -> QueueCounts:
            if not self.lost and asyncio.current_task() is not self.run:  # the monitor
                try:
                    await asyncio.sleep(SLOW)  # it is in here when the run ends
                except asyncio.CancelledError:
                    self.lost = True  # as a cancel meeting a finished write is on 3.11
            return await super().counts(queue)

    async def main() -> float:
        async with LosesCancels(tmp_path / "s.db") as store:
            loop = asyncio.get_running_loop()
            started = loop.time()
            store.run = loop.create_task(Runtime(_app(), store).run(duration=0.2))
            done, _ = await asyncio.wait({store.run}, timeout=10)
            assert done, "the run did not end"
            return loop.time() - started

    assert asyncio.run(main()) < 5


def test_one_runner_drives_queues_and_streams_and_the_cluster_share_is_a_limit_term(
    tmp_path: Path,
) -> None:
    """Every mapping, whatever its source, has the same runner; on a shared store the
    worker's share is the ``cluster`` term of each queue mapping's one limit (nothing
    wraps the policy), and the runtime reads each limit's binding term from the core."""
    app = sluicegate.App()
    app.queue("q", visibility_timeout=30)
    app.stream("s", shard_count=2)

    @app.function(timeout=5)
    async def noop(event: object, context: object) -> None:
        return None

    app.map("q", noop, batch_size=10, scaling="fixed", maximum_concurrency=4)
    app.map("s", noop, starting_position="TRIM_HORIZON")
    seen: dict[str, object] = {}

    async def main() -> None:
        async with SqliteStore(tmp_path / "s.db") as store:
            runtime = Runtime(app, store)
            task = asyncio.create_task(runtime.run())
            while len(seen) < 1:
                await asyncio.sleep(0.05)
                if runtime.runners and runtime.cluster is not None:
                    queue_runner, stream_runner, async_runner = runtime.runners
                    assert async_runner.name == "async:noop->noop"
                    seen["runner types"] = {type(queue_runner), type(stream_runner)}
                    limit = queue_runner.core.concurrency_limit
                    seen["terms"] = [t.name for t in limit.terms]
                    seen["reasons"] = runtime.limit_reasons()
            runtime.stop()
            await asyncio.wait_for(task, 30)

    asyncio.run(main())
    assert seen["runner types"] == {MappingRunner}
    assert "cluster" in seen["terms"]  # type: ignore[operator]
    reasons = seen["reasons"]
    # the function's idle internal queue of asynchronous invocations is not shown
    assert isinstance(reasons, dict) and set(reasons) == {m.name for m in
                                                          (*app.mappings, *app.stream_mappings)}
    assert reasons[app.stream_mappings[0].name] == "shards"


def test_a_functions_workers_follow_its_mappings_limits(tmp_path: Path) -> None:
    """A function's environments and threads are sized from its mappings' limits (the
    sum of their ceilings within its reservation), and again when a limit changes: a
    ``maximum_concurrency`` raised at run time gets the workers to go with it."""
    from sluicegate.core.limit import TERM_MAXIMUM_CONCURRENCY, Fixed

    app = sluicegate.App()
    app.queue("a", visibility_timeout=30)
    app.queue("b", visibility_timeout=30)
    app.stream("s", shard_count=2)

    @app.function(timeout=5, reserved_concurrency=40)
    def work(event: object, context: object) -> None:
        return None

    @app.function(timeout=5)
    def other(event: object, context: object) -> None:
        return None

    app.map("a", work, maximum_concurrency=5)
    app.map("b", work, maximum_concurrency=7)
    app.map("s", other, starting_position="TRIM_HORIZON", parallelization_factor=3)
    seen: dict[str, int] = {}

    async def main() -> None:
        async with SqliteStore(tmp_path / "w.db") as store:
            runtime = Runtime(app, store)
            task = asyncio.create_task(runtime.run())
            while len(runtime.runners) < 5:
                await asyncio.sleep(0.02)
            a, b, s, *internal = runtime.runners
            # each function's idle internal queue of asynchronous invocations runs one
            # long poll, and adds that one to its function's workers
            assert [r.core.limit for r in internal] == [1, 1]
            seen["work"] = a.invoker.max_workers
            seen["other"] = s.invoker.max_workers
            a.core.concurrency_limit.replace(Fixed(TERM_MAXIMUM_CONCURRENCY, 20))
            seen["raised"] = a.invoker.max_workers
            b.core.concurrency_limit.replace(Fixed(TERM_MAXIMUM_CONCURRENCY, 100))
            seen["capped"] = b.invoker.max_workers
            a.core.concurrency_limit.replace(Fixed(TERM_MAXIMUM_CONCURRENCY, 2))
            b.core.concurrency_limit.replace(Fixed(TERM_MAXIMUM_CONCURRENCY, 3))
            seen["lowered"] = b.invoker.max_workers
            runtime.stop()
            await asyncio.wait_for(task, 30)

    asyncio.run(main())
    assert seen == {"work": 13, "other": 7, "raised": 28, "capped": 40, "lowered": 6}


async def _tasks_per_invocation(path: Path, handler_sleep: float, n: int) -> tuple[int, int]:
    """Run ``n`` single-message invocations at concurrency 2 with a handler sleeping
    ``handler_sleep``; (distinct asyncio tasks the handler ran in, messages processed)."""
    app = sluicegate.App()
    app.queue("q", visibility_timeout=30)
    tasks: dict[int, object] = {}  # the tasks kept alive: an id is not reused

    @app.function(timeout=5, isolation="shared")
    async def handle(event: object, context: object) -> None:
        task = asyncio.current_task()
        tasks[id(task)] = task
        if handler_sleep:  # spread out: the two invocations do not finish together
            body = int(event["Records"][0]["body"])  # type: ignore[index]
            await asyncio.sleep(handler_sleep * (1 + body % 3))

    app.map("q", handle, batch_size=1, scaling="fixed", maximum_concurrency=2)
    async with SqliteStore(path) as store:
        runtime = Runtime(app, store)
        await runtime.prepare()
        for i in range(0, n, 10):
            await store.send_batch("q", [SendEntry(str(j)) for j in range(i, i + 10)])
        summary = await asyncio.wait_for(runtime.run(until_empty=True), 30)
    return len(tasks), summary.processed


def test_a_long_invocation_finishing_alone_runs_its_pollers_next_batch_in_its_own_task(
    tmp_path: Path,
) -> None:
    # 20, 40 or 60 ms handlers finish one at a time: each task polls, receives and runs
    # the next batch itself, so 20 invocations need far fewer than 20 tasks (a loaded
    # machine may still end two in one turn of the loop: a new task then)
    tasks, processed = asyncio.run(_tasks_per_invocation(tmp_path / "long.db", 0.02, 20))
    assert processed == 20
    assert tasks <= 10
    # no-op handlers finish together, in the turn they start: the loop's task follows
    # them up at once (one poll, one store call for their receives), a new task each
    # (but for one a loaded machine stalls past FOLLOW_UP_AFTER, now and then)
    tasks, processed = asyncio.run(_tasks_per_invocation(tmp_path / "short.db", 0.0, 20))
    assert processed == 20
    assert tasks >= 16
