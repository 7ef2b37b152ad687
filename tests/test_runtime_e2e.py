"""The runtime end to end: real handlers, a real SQLite store, a short real clock.

Every test that fails messages checks the invariant: each accepted message was
processed, is still in its queue, or is in the dead-letter queue.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter

import pytest

import sluicegate
from sluicegate.runtime.driver import Runtime
from sluicegate.store import open_store


@pytest.fixture
def store_url(tmp_path):
    return f"sqlite:///{tmp_path / 'e2e.db'}"


async def _fill(store, queue, n, start=0):
    from sluicegate.store.base import SendEntry

    for i in range(start, start + n, 10):
        await store.send_batch(
            queue, [SendEntry(json.dumps({"n": j})) for j in range(i, min(i + 10, start + n))]
        )


async def _run(app, url, *, n, until_empty=True, duration=None, queue="q", grace=5.0):
    store = open_store(url)
    await store.open()
    try:
        runtime = Runtime(app, store, grace_period=grace)
        await runtime.prepare()
        await _fill(store, queue, n)
        summary = await runtime.run(until_empty=until_empty, duration=duration)
        counts = {q: await store.counts(q) for q in app.queues}
        return summary, counts, runtime
    finally:
        await store.close()


def test_partial_failures_retry_only_failed_and_dead_letter_after_max_receive(store_url):
    app = sluicegate.App()
    app.queue("q", visibility_timeout=1, dead_letter_queue="dlq", max_receive_count=3)
    seen: Counter[int] = Counter()
    processed: set[int] = set()

    @app.function(timeout=1)
    def handler(event, context):
        failures = []
        for record in event["Records"]:
            n = json.loads(record["body"])["n"]
            seen[n] += 1
            assert record["attributes"]["ApproximateReceiveCount"] == str(seen[n])
            if n % 10 == 3:  # poison: always fails
                failures.append({"itemIdentifier": record["messageId"]})
            else:
                processed.add(n)
        return {"batchItemFailures": failures}

    app.map("q", handler, batch_size=10, report_batch_item_failures=True, scaling="fixed",
            maximum_concurrency=4)
    summary, counts, _ = asyncio.run(_run(app, store_url, n=100))

    poison = {n for n in range(100) if n % 10 == 3}
    assert processed == set(range(100)) - poison
    # succeeded messages were delivered exactly once: only the failed ones were retried
    assert all(seen[n] == 1 for n in processed)
    # poison messages were delivered max_receive_count times, then dead-lettered
    assert all(seen[n] == 3 for n in poison)
    assert counts["dlq"].visible == len(poison)
    assert counts["q"].total == 0
    assert summary.dead_lettered == len(poison)
    assert summary.processed == 90


def test_exception_fails_the_whole_batch_and_it_comes_back(store_url):
    app = sluicegate.App()
    app.queue("q", visibility_timeout=1)
    calls = Counter()

    @app.function(timeout=1)
    def handler(event, context):
        key = tuple(r["messageId"] for r in event["Records"])
        calls[key] += 1
        if calls[key] == 1:
            raise RuntimeError("first attempt fails")

    app.map("q", handler, batch_size=5, scaling="fixed", maximum_concurrency=2)
    summary, counts, _ = asyncio.run(_run(app, store_url, n=5))
    assert counts["q"].total == 0
    assert summary.mappings[0].errors >= 1
    assert summary.processed == 5


def test_timeout_counts_as_error_and_batch_is_not_deleted(store_url):
    app = sluicegate.App()
    app.queue("q", visibility_timeout=1, dead_letter_queue="dlq", max_receive_count=2)
    attempts = Counter()

    @app.function(timeout=1)
    async def slow(event, context):
        attempts["n"] += 1
        assert 0 < context.get_remaining_time_in_millis() <= 1000
        await asyncio.sleep(5)

    app.map("q", slow, batch_size=1, scaling="fixed", maximum_concurrency=2)
    summary, counts, _ = asyncio.run(_run(app, store_url, n=1))
    assert attempts["n"] == 2
    assert summary.mappings[0].errors == 2
    assert summary.processed == 0
    assert counts["dlq"].visible == 1  # nothing lost: the message is in the DLQ


def test_peak_in_flight_never_above_maximum_concurrency(store_url):
    app = sluicegate.App()
    app.queue("q", visibility_timeout=30)
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    @app.function(timeout=5)
    def handler(event, context):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.01)
        with lock:
            state["now"] -= 1

    app.map("q", handler, batch_size=1, maximum_concurrency=7)  # aws scaling starts at 5
    summary, _counts, _ = asyncio.run(_run(app, store_url, n=400))
    assert summary.processed == 400
    assert 5 <= state["peak"] <= 7
    assert summary.mappings[0].peak_concurrency <= 7


def test_reserved_concurrency_zero_throttles_and_messages_return(store_url):
    app = sluicegate.App()
    app.queue("q", visibility_timeout=1, dead_letter_queue="dlq", max_receive_count=2)
    called = []

    @app.function(timeout=1, reserved_concurrency=0)
    def handler(event, context):
        called.append(1)

    app.map("q", handler, batch_size=1, scaling="fixed", maximum_concurrency=2)
    summary, counts, _ = asyncio.run(_run(app, store_url, n=3))
    assert called == []
    m = summary.mappings[0]
    assert m.invocations == 0 and m.throttles >= 3
    # throttled messages came back with their receive count raised and were dead-lettered
    assert counts["dlq"].visible == 3
    assert counts["q"].total == 0


def test_reserved_concurrency_caps_a_function_shared_by_two_mappings(store_url):
    app = sluicegate.App()
    app.queue("a", visibility_timeout=30)
    app.queue("b", visibility_timeout=30)
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    @app.function(timeout=5, reserved_concurrency=3)
    def handler(event, context):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.02)
        with lock:
            state["now"] -= 1

    app.map("a", handler, batch_size=1, scaling="fixed", maximum_concurrency=3)
    app.map("b", handler, batch_size=1, scaling="fixed", maximum_concurrency=3)

    async def go():
        store = open_store(store_url)
        await store.open()
        try:
            runtime = Runtime(app, store)
            await runtime.prepare()
            await _fill(store, "a", 40)
            await _fill(store, "b", 40)
            return await runtime.run(until_empty=True)
        finally:
            await store.close()

    summary = asyncio.run(go())
    assert summary.processed == 80
    assert state["peak"] <= 3


def test_duration_stops_and_unfinished_messages_stay_queued(store_url):
    app = sluicegate.App()
    app.queue("q", visibility_timeout=30)

    @app.function(timeout=5)
    async def handler(event, context):
        await asyncio.sleep(0.05)

    app.map("q", handler, batch_size=1, scaling="fixed", maximum_concurrency=2)
    summary, counts, _ = asyncio.run(_run(app, store_url, n=500, until_empty=False, duration=0.5))
    assert summary.stopped_by == "duration reached"
    assert 0 < summary.processed < 500
    assert summary.processed + counts["q"].total == 500


def test_per_second_metrics_of_a_run(store_url):
    app = sluicegate.App()
    app.queue("q", visibility_timeout=2, dead_letter_queue="dlq", max_receive_count=1)

    @app.function(timeout=1)
    async def handler(event, context):
        await asyncio.sleep(0.01)
        n = json.loads(event["Records"][0]["body"])["n"]
        if n % 10 == 0:
            raise ValueError("boom")

    app.map("q", handler, batch_size=1, scaling="fixed", maximum_concurrency=3)
    seconds = []

    async def go():
        store = open_store(store_url)
        await store.open()
        try:
            runtime = Runtime(app, store)
            runtime.metrics.add_listener(lambda second, snapshots: seconds.append(snapshots))
            await runtime.prepare()
            await _fill(store, "q", 60)
            summary = await runtime.run(until_empty=True)
            return summary, runtime.metrics.totals()
        finally:
            await store.close()

    summary, totals = asyncio.run(go())
    assert seconds, "listeners hear of every completed second"
    # invocations, errors and deletes add up to what the run did
    assert totals.invocations == summary.mappings[0].invocations == 60
    assert totals.errors == 6
    assert totals.messages_deleted == summary.processed == 54
    assert totals.messages_received == 60
    assert summary.dead_lettered == 6  # failed once, max_receive_count=1
    assert max(s["q->handler"].concurrent_executions for s in seconds) <= 3
    assert all(s["q->handler"].concurrency_limit == 3 for s in seconds[1:])
    durations = [s["q->handler"].duration_p99 for s in seconds if s["q->handler"].invocations]
    assert durations and all(0.005 < d < 1 for d in durations)

