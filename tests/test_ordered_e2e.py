"""Ordered sources end to end in the runtime: FIFO queues, streams, topics, filters.

Real handlers, a real SQLite store, a short real clock. Each test checks order per group
or per partition key, and that every accepted message or record was processed, is still
queued, or went to a dead-letter queue or on-failure destination.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections import defaultdict

import pytest

import sluicegate
from sluicegate.partial import process_fifo_batch
from sluicegate.runtime.driver import Runtime
from sluicegate.store import open_store
from sluicegate.store.base import PutEntry, SendEntry


@pytest.fixture
def store_url(tmp_path):
    return f"sqlite:///{tmp_path / 'ordered.db'}"


async def _with_store(url, work):
    store = open_store(url)
    await store.open()
    try:
        return await work(store)
    finally:
        await store.close()


def _data(record):
    return json.loads(base64.b64decode(record["kinesis"]["data"]))


# ---------------------------------------------------------------------- streams


def _stream_app(shards=4, factor=3, **mapping):
    app = sluicegate.App()
    app.stream("clicks", shard_count=shards)
    app.queue("failures")
    seen = defaultdict(list)
    lock = threading.Lock()

    @app.function(timeout=5)
    def handle(event, context):
        with lock:
            for record in event["Records"]:
                body = _data(record)
                seen[body["key"]].append(body["n"])

    app.map("clicks", handle, parallelization_factor=factor, batch_size=10, **mapping)
    return app, seen


async def _put(store, keys, per_key):
    entries = [PutEntry(f"k{k}", json.dumps({"key": f"k{k}", "n": n}))
               for n in range(per_key) for k in range(keys)]
    for i in range(0, len(entries), 500):
        await store.put_records("clicks", entries[i : i + 500])


def test_stream_keeps_order_per_key_across_shards_and_lanes(store_url):
    app, seen = _stream_app(shards=4, factor=3)

    async def work(store):
        runtime = Runtime(app, store)
        await runtime.prepare()
        await _put(store, keys=30, per_key=20)
        summary = await runtime.run(until_empty=True, duration=60)
        checkpoints = await store.get_checkpoints("clicks->handle")
        latest = [await store.latest_sequence("clicks", s) for s in range(4)]
        return summary, checkpoints, latest

    summary, checkpoints, latest = asyncio.run(_with_store(store_url, work))
    assert summary.stopped_by == "all drained"
    assert sorted(seen) == sorted(f"k{k}" for k in range(30))
    for numbers in seen.values():
        assert numbers == list(range(20))  # in order, each once
    assert summary.processed == 600
    assert {s: checkpoints.get(s) for s in range(4)} == {
        s: latest[s] for s in range(4) if latest[s] >= 0
    } | {s: None for s in range(4) if latest[s] < 0}
    (mapping,) = summary.mappings
    assert mapping.peak_concurrency <= 4 * 3


def test_poison_record_is_bisected_then_discarded_to_the_destination(store_url):
    app = sluicegate.App()
    app.stream("clicks")
    app.queue("failures")
    invoked = []

    @app.function(timeout=5)
    def handle(event, context):
        numbers = [_data(r)["n"] for r in event["Records"]]
        invoked.append(numbers)
        if 13 in numbers:
            raise ValueError("poison")

    app.map("clicks", handle, batch_size=20, bisect_batch_on_function_error=True,
            maximum_retry_attempts=1, on_failure="failures")

    async def work(store):
        runtime = Runtime(app, store)
        await runtime.prepare()
        await store.put_records(
            "clicks", [PutEntry("same-key", json.dumps({"n": n})) for n in range(20)]
        )
        await runtime.run(until_empty=True, duration=60)
        return await store.receive("failures", max_messages=10)

    failures = asyncio.run(_with_store(store_url, work))
    (failure,) = failures
    record = json.loads(failure.body)
    info = record["KinesisBatchInfo"]
    assert info["batchSize"] == 1 and info["shardId"] == "shardId-000000000000"
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    succeeded = {n for batch in invoked if 13 not in batch for n in batch}
    assert succeeded == set(range(20)) - {13}
    # order per key: the successful batches ran in sequence order
    flat = [n for batch in invoked if 13 not in batch for n in batch]
    assert flat == sorted(flat)


def test_a_restarted_runtime_resumes_after_its_checkpoints(store_url):
    app, seen = _stream_app(shards=2, factor=1)

    async def first(store):
        runtime = Runtime(app, store)
        await runtime.prepare()
        await _put(store, keys=5, per_key=10)
        await runtime.run(until_empty=True, duration=60)

    async def second(store):
        await _put(store, keys=5, per_key=3)  # n = 0..2 again, new records
        runtime = Runtime(app, store)
        return await runtime.run(until_empty=True, duration=60)

    asyncio.run(_with_store(store_url, first))
    assert all(len(v) == 10 for v in seen.values())
    summary = asyncio.run(_with_store(store_url, second))
    assert summary.processed == 15  # only the new records
    for numbers in seen.values():
        assert numbers == [*range(10), *range(3)]


def test_stream_filter_skips_records(store_url):
    app = sluicegate.App()
    app.stream("clicks")
    got = []

    @app.function(timeout=5)
    def handle(event, context):
        got.extend(_data(r)["n"] for r in event["Records"])

    app.map("clicks", handle, filter_criteria=[{"data": {"kind": ["buy"]}}])

    async def work(store):
        runtime = Runtime(app, store)
        await runtime.prepare()
        await store.put_records("clicks", [
            PutEntry("k", json.dumps({"n": n, "kind": "buy" if n % 3 == 0 else "view"}))
            for n in range(30)
        ])
        return await runtime.run(until_empty=True, duration=60)

    summary = asyncio.run(_with_store(store_url, work))
    assert got == [n for n in range(30) if n % 3 == 0]
    assert summary.mappings[0].filtered == 20


# ---------------------------------------------------------------------- FIFO


def test_fifo_keeps_group_order_with_partial_failures(store_url):
    app = sluicegate.App()
    app.queue("orders.fifo", visibility_timeout=1, content_based_deduplication=True,
              dead_letter_queue="dlq.fifo", max_receive_count=50)
    processed = defaultdict(list)
    attempts = defaultdict(int)
    lock = threading.Lock()

    def charge(record):
        body = json.loads(record["body"])
        key = (body["g"], body["n"])
        with lock:
            attempts[key] += 1
            if body["n"] % 7 == 3 and attempts[key] == 1:  # fails once, then succeeds
                raise RuntimeError("transient")
            processed[body["g"]].append(body["n"])

    @app.function(timeout=1)
    def handle(event, context):
        return process_fifo_batch(event, charge, skip_group_on_error=True)

    app.map("orders.fifo", handle, batch_size=10, report_batch_item_failures=True,
            scaling="fixed", maximum_concurrency=5)

    async def work(store):
        runtime = Runtime(app, store)
        await runtime.prepare()
        for n in range(20):
            await store.send_batch("orders.fifo", [
                SendEntry(json.dumps({"g": g, "n": n}), group_id=f"g{g}") for g in range(8)
            ])
        summary = await runtime.run(until_empty=True, duration=60)
        return summary, await store.counts("dlq.fifo")

    summary, dlq = asyncio.run(_with_store(store_url, work))
    assert dlq.total == 0
    assert sorted(processed) == list(range(8))
    for numbers in processed.values():
        assert numbers == list(range(20))  # every message once, in group order
    assert summary.processed == 160


def test_queue_filter_deletes_what_it_rejects(store_url):
    app = sluicegate.App()
    app.queue("q")
    got = []

    @app.function
    def handle(event, context):
        got.extend(json.loads(r["body"])["n"] for r in event["Records"])

    app.map("q", handle, filter_criteria=[{"body": {"n": [{"numeric": ["<", 5]}]}}],
            scaling="fixed", maximum_concurrency=2)

    async def work(store):
        runtime = Runtime(app, store)
        await runtime.prepare()
        await store.send_batch("q", [SendEntry(json.dumps({"n": n})) for n in range(10)])
        summary = await runtime.run(until_empty=True, duration=60)
        return await store.counts("q"), summary.mappings[0].filtered

    counts, filtered = asyncio.run(_with_store(store_url, work))
    assert sorted(got) == [0, 1, 2, 3, 4]
    assert counts.total == 0 and filtered == 5


def test_fifo_topic_fans_out_to_mapped_queues(store_url):
    app = sluicegate.App()
    a = app.queue("a.fifo")
    b = app.queue("b.fifo")
    topic = app.topic("events.fifo", subscribers=[a, b], content_based_deduplication=True)
    got = defaultdict(list)

    @app.function
    def handle(event, context):
        for r in event["Records"]:
            queue = r["eventSourceARN"].rsplit(":", 1)[1]
            got[queue].append((r["attributes"]["MessageGroupId"], r["body"]))

    app.map(a, handle, scaling="fixed", maximum_concurrency=2)
    app.map(b, handle, scaling="fixed", maximum_concurrency=2)

    async def work(store):
        runtime = Runtime(app, store)
        await runtime.prepare()
        for n in range(5):
            await store.publish(topic, f"m{n}", group_id="g")
            await store.publish(topic, f"m{n}", group_id="g")  # a duplicate
        await runtime.run(until_empty=True, duration=60)

    asyncio.run(_with_store(store_url, work))
    expected = [("g", f"m{n}") for n in range(5)]
    assert got == {"a.fifo": expected, "b.fifo": expected}
