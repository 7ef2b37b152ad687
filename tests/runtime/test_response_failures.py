"""No message deleted that AWS would retry (issue 11, item 3).

A handler whose return value cannot be serialized to JSON fails its invocation on AWS
(``Runtime.MarshalError``), whatever the mapping's options: the batch comes back and is
retried, then dead-lettered per ``max_receive_count`` (queues) or discarded to the
on-failure destination after ``maximum_retry_attempts`` (streams). These tests run the
real Runtime on the memory store, on threads and in execution environments of their own,
for a standard queue, a FIFO queue and a stream at once, and check the invariant: every
accepted message is processed, still queued, or dead-lettered.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from pathlib import Path
from typing import Any

import pytest

import sluicegate
from sluicegate.loader import load_app
from sluicegate.runtime.driver import RunSummary, Runtime
from sluicegate.store.base import PutEntry, SendEntry
from sluicegate.store.memory import MemoryStore

HANDLERS = '''
"""Handlers returning what cannot be serialized for records marked "bad"."""
import base64

import sluicegate

app = sluicegate.App()
app.queue("jobs", visibility_timeout={visibility}, dead_letter_queue="jobs-dlq",
          max_receive_count=2)
app.queue("jobs.fifo", visibility_timeout={visibility}, dead_letter_queue="jobs-dlq.fifo",
          max_receive_count=2, content_based_deduplication=True)
app.stream("clicks")
app.queue("clicks-failures")


def _bodies(event):
    for record in event["Records"]:
        if "kinesis" in record:
            yield base64.b64decode(record["kinesis"]["data"]).decode()
        else:
            yield record["body"]


@app.function(timeout=1, isolation={isolation!r})
def unmarshallable(event, context):
    if any(body.startswith("bad") for body in _bodies(event)):
        return object()  # Runtime.MarshalError on AWS
    return None


@app.function(timeout=1, isolation={isolation!r})
async def unmarshallable_async(event, context):
    return unmarshallable(event, context)


app.map("jobs", unmarshallable, batch_size=1, scaling="fixed", maximum_concurrency=2)
app.map("jobs.fifo", unmarshallable_async, batch_size=1)
app.map("clicks", unmarshallable, batch_size=1, starting_position="TRIM_HORIZON",
        maximum_retry_attempts=1, on_failure="clicks-failures")
'''

GOOD = ["good-1", "good-2", "good-3"]
BAD = ["bad-1"]


def _app(tmp_path: Path, isolation: str) -> sluicegate.App:
    path = tmp_path / f"marshal_{isolation}.py"
    # An environment's cold start takes 0.1-0.3 s, over a second on a loaded machine: a
    # visibility timeout of 1 s would then let good messages be received again mid-run.
    visibility = 1 if isolation == "thread" else 3
    path.write_text(HANDLERS.format(isolation=isolation, visibility=visibility))
    return load_app(str(path))


async def _drain(app: sluicegate.App) -> tuple[RunSummary, dict[str, list[str]], int]:
    store = MemoryStore()
    await store.open()
    runtime = Runtime(app, store, grace_period=5)
    await runtime.prepare()
    bodies = GOOD + BAD
    await store.send_batch("jobs", [SendEntry(b) for b in bodies])
    await store.send_batch("jobs.fifo", [SendEntry(b, group_id="g") for b in bodies])
    await store.put_records("clicks", [PutEntry(b, b.encode()) for b in bodies])
    summary = await asyncio.wait_for(runtime.run(until_empty=True), 60)
    left: dict[str, list[str]] = {}
    for queue in ("jobs", "jobs-dlq", "jobs.fifo", "jobs-dlq.fifo", "clicks-failures"):
        received = await store.receive(queue, max_messages=10, visibility_timeout=30)
        left[queue] = sorted(m.body for m in received)
    latest = await store.latest_sequence("clicks", 0)
    checkpoint = (await store.get_checkpoints(app.stream_mappings[0].name)).get(0, -1)
    await store.close()
    assert checkpoint == latest  # the stream is settled: nothing left to retry
    return summary, left, latest


@pytest.mark.parametrize("isolation", ["thread", pytest.param("process", marks=pytest.mark.slow)])
def test_an_unserializable_response_is_retried_then_dead_lettered(
    tmp_path: Path, isolation: str
) -> None:
    app = _app(tmp_path, isolation)
    summary, left, _ = asyncio.run(_drain(app))
    by_name = {m.name: m for m in summary.mappings}
    jobs, fifo, clicks = (by_name[m.name] for m in (*app.mappings, *app.stream_mappings))

    for mapping, dlq in ((jobs, "jobs-dlq"), (fifo, "jobs-dlq.fifo")):
        # the bad message failed on each of its max_receive_count=2 receives, counted as
        # errors; the good ones were deleted; the bad one is in the dead-letter queue
        assert mapping.errors == 2, mapping
        assert mapping.invocations == len(GOOD) + 2
        assert mapping.messages_deleted == len(GOOD)
        assert left[dlq] == BAD
    assert left["jobs"] == [] and left["jobs.fifo"] == []
    # invariant: accepted = processed + queued + dead-lettered, for both queues
    assert jobs.messages_deleted + len(left["jobs"]) + len(left["jobs-dlq"]) == 4
    assert summary.dead_lettered == 2

    # the stream: first attempt and one retry fail, then the record is discarded to the
    # on-failure destination; the good records are processed
    assert clicks.errors == 2
    assert clicks.messages_deleted == len(GOOD)
    (failure,) = left["clicks-failures"]
    info = json.loads(failure)["KinesisBatchInfo"]
    assert info["batchSize"] == 1
    assert json.loads(failure)["requestContext"]["condition"] == "RetryAttemptsExhausted"


BAD_IDS = '''
import sluicegate

app = sluicegate.App()
app.queue("orders", visibility_timeout=1, dead_letter_queue="orders-dlq", max_receive_count=1)
app.stream("clicks")


@app.function(timeout=1)
def misnamed(event, context):
    return {"batchItemFailures": [{"itemId": event["Records"][0]["messageId"]}]}


@app.function(timeout=1)
def unknown_sequence(event, context):
    return {"batchItemFailures": [{"itemIdentifier": "12345"}]}


app.map("orders", misnamed, batch_size=1, report_batch_item_failures=True)
app.map("clicks", unknown_sequence, starting_position="TRIM_HORIZON",
        report_batch_item_failures=True, maximum_retry_attempts=0)
'''


def test_a_refused_item_identifier_is_logged_once_at_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "bad_ids.py"
    path.write_text(BAD_IDS)
    app = load_app(str(path))

    async def main() -> tuple[RunSummary, int]:
        store = MemoryStore()
        await store.open()
        runtime = Runtime(app, store, grace_period=5)
        await runtime.prepare()
        await store.send("orders", "o-1")
        await store.put_record("clicks", "k", b"c-1")
        summary = await asyncio.wait_for(runtime.run(until_empty=True), 30)
        dead = (await store.counts("orders-dlq")).visible
        await store.close()
        return summary, dead

    caplog.set_level(logging.WARNING, logger="sluicegate")
    summary, dead = asyncio.run(main())
    assert dead == 1 and summary.processed == 0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING
                and r.name == "sluicegate.runtime" and "failed" in r.getMessage()]
    queue_lines = [r.getMessage() for r in warnings if "orders" in r.getMessage()]
    stream_lines = [r.getMessage() for r in warnings if "clicks" in r.getMessage()]
    queue_mapping = app.mappings[0].name
    stream_mapping = app.stream_mappings[0].name
    assert queue_lines == [
        f"{queue_mapping}: a batch of 1 message failed: invalid batchItemFailures[0]: "
        "no 'itemIdentifier' key (keys: 'itemId')"
    ]
    assert stream_lines == [
        f"{stream_mapping}: a batch of 1 record of shardId-000000000000 failed: invalid "
        "itemIdentifier '12345': not a sequence number of the batch"
    ]
    assert all("\n" not in line for line in queue_lines + stream_lines)


def test_bytes_that_are_not_json_are_a_response_ignored_without_the_option() -> None:
    # The AWS Python runtime passes bytes through unserialized: a success when the
    # mapping ignores responses, an invalid response when it reads them.
    app = sluicegate.App()
    app.queue("raw", visibility_timeout=1, dead_letter_queue="raw-dlq", max_receive_count=1)
    app.queue("read", visibility_timeout=1, dead_letter_queue="read-dlq", max_receive_count=1)

    @app.function(timeout=1)
    def raw_bytes(event: Any, context: Any) -> bytes:
        return b"\xff\x00"

    app.map("raw", raw_bytes)
    app.map("read", raw_bytes, report_batch_item_failures=True)

    async def main() -> tuple[RunSummary, int, int]:
        store = MemoryStore()
        await store.open()
        runtime = Runtime(app, store, grace_period=5)
        await runtime.prepare()
        await store.send("raw", base64.b64encode(b"x").decode())
        await store.send("read", "y")
        summary = await asyncio.wait_for(runtime.run(until_empty=True), 30)
        counts = (await store.counts("raw-dlq")).visible, (await store.counts("read-dlq")).visible
        await store.close()
        return summary, *counts

    summary, raw_dead, read_dead = asyncio.run(main())
    assert (raw_dead, read_dead) == (0, 1)
    assert summary.processed == 1
