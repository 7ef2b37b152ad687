"""sluicegate.testing: events from plain bodies, in-process invocations read as AWS reads
them, and whole Apps on a memory store and virtual time (issue 11, item 6)."""

from __future__ import annotations

import asyncio
import base64
import decimal
import hashlib
import inspect
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import sluicegate
import sluicegate.testing as testing
from sluicegate.runtime.events import LambdaContext
from sluicegate.testing import (
    AppHarness,
    VirtualClock,
    VirtualTimeLoop,
    ainvoke,
    fifo_event,
    invoke,
    kinesis_event,
    lambda_context,
    sqs_event,
)


def report_failures(bad: str = "bad") -> Any:
    """A handler reporting the records whose body (or decoded data) is ``bad``."""

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        failed = []
        for record in event["Records"]:
            if "kinesis" in record:
                data = base64.b64decode(record["kinesis"]["data"]).decode()
                if data == bad:
                    failed.append(record["kinesis"]["sequenceNumber"])
            elif record["body"] == bad:
                failed.append(record["messageId"])
        return {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}

    return handler


def ids(event: dict[str, Any]) -> list[str]:
    return [r["messageId"] for r in event["Records"]]


# --------------------------------------------------------------------------- the module


def test_exported_names_are_documented_and_nothing_else_is_public() -> None:
    assert testing.__all__ == sorted(testing.__all__, key=lambda n: (not n.isupper(), n))
    for name in testing.__all__:
        value = getattr(testing, name)
        # Names defined here; a re-export (MemoryStore) is documented where it is
        # defined, and the compiled build's classes carry no docstring.
        if (inspect.isclass(value) or inspect.isfunction(value)) and (
            value.__module__ == testing.__name__
        ):
            assert inspect.getdoc(value), name
    public = {
        name for name, value in vars(testing).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == testing.__name__
        and (inspect.isclass(value) or inspect.isfunction(value))
    }
    assert public <= set(testing.__all__)
    assert testing.MemoryStore is sluicegate.store.memory.MemoryStore
    assert "pytest" not in vars(testing)


# --------------------------------------------------------------------------- builders


def test_sqs_event_has_the_runtime_record_shape() -> None:
    event = sqs_event(["text", {"id": 2}, b"raw"], queue="orders",
                      attributes={"kind": "order", "n": 3}, receive_count=2, sent_at=1.7e9,
                      region="eu-west-1", account_id="123456789012")
    records = event["Records"]
    assert [r["body"] for r in records] == ["text", '{"id": 2}', "raw"]
    assert len(set(ids(event))) == 3
    first = records[0]
    assert list(first) == ["messageId", "receiptHandle", "body", "attributes",
                           "messageAttributes", "md5OfBody", "eventSource", "eventSourceARN",
                           "awsRegion"]
    assert first["eventSource"] == "aws:sqs"
    assert first["eventSourceARN"] == "arn:aws:sqs:eu-west-1:123456789012:orders"
    assert first["awsRegion"] == "eu-west-1"
    assert first["md5OfBody"] == hashlib.md5(b"text").hexdigest()
    assert first["attributes"]["ApproximateReceiveCount"] == "2"
    assert first["attributes"]["SentTimestamp"] == "1700000000000"
    assert first["messageAttributes"]["kind"]["stringValue"] == "order"
    assert first["messageAttributes"]["n"]["dataType"] == "Number"
    assert "MessageGroupId" not in first["attributes"]


def test_fifo_event_carries_groups_sequence_numbers_and_deduplication_ids() -> None:
    event = fifo_event(["a", "b", "c"], group_id=["g1", "g2", "g1"], first_sequence=7)
    attributes = [r["attributes"] for r in event["Records"]]
    assert [a["MessageGroupId"] for a in attributes] == ["g1", "g2", "g1"]
    sequences = [a["SequenceNumber"] for a in attributes]
    assert sequences == sorted(sequences) and int(sequences[0]) == 7
    assert attributes[0]["MessageDeduplicationId"] == hashlib.sha256(b"a").hexdigest()
    assert event["Records"][0]["eventSourceARN"].endswith(":test-queue.fifo")
    one_group = fifo_event(["x", "y"], deduplication_id=["d1", "d2"])
    assert {r["attributes"]["MessageGroupId"] for r in one_group["Records"]} == {"group-1"}
    assert [r["attributes"]["MessageDeduplicationId"] for r in one_group["Records"]] == [
        "d1", "d2"]
    with pytest.raises(ValueError, match="group_id: 1 values for 2 items"):
        fifo_event(["x", "y"], group_id=["g"])


def test_kinesis_event_has_base64_data_keys_and_sequence_numbers() -> None:
    event = kinesis_event([b"\x00\xff", "text", {"n": 1}], partition_key=["a", "b", "c"],
                          stream="clicks", shard=2, first_sequence=41, arrived_at=1.7e9)
    records = event["Records"]
    data = [base64.b64decode(r["kinesis"]["data"]) for r in records]
    assert data == [b"\x00\xff", b"text", b'{"n": 1}']
    assert [r["kinesis"]["partitionKey"] for r in records] == ["a", "b", "c"]
    assert [r["kinesis"]["sequenceNumber"] for r in records] == ["41", "42", "43"]
    assert records[0]["eventID"] == "shardId-000000000002:41"
    assert records[0]["eventSource"] == "aws:kinesis"
    assert records[0]["eventSourceARN"].endswith(":stream/clicks")
    assert records[0]["kinesis"]["approximateArrivalTimestamp"] == 1.7e9


def test_lambda_context_is_the_runtime_context() -> None:
    context = lambda_context("billing", timeout=2.5, memory_size=256, aws_request_id="r-1")
    assert isinstance(context, LambdaContext)
    assert context.function_name == "billing"
    assert context.memory_limit_in_mb == "256"
    assert context.aws_request_id == "r-1"
    assert context.invoked_function_arn.endswith(":function:billing")
    assert 2000 < context.get_remaining_time_in_millis() <= 2500


# --------------------------------------------------------------------------- invoke


def test_a_successful_invocation_deletes_the_batch_and_round_trips_the_response() -> None:
    seen: list[Any] = []

    def handler(event: dict[str, Any], context: Any) -> Any:
        seen.append(context)
        return {"total": decimal.Decimal("1.50"), "pair": (1, 2)}

    event = sqs_event(["a", "b"])
    outcome = invoke(handler, event)
    assert outcome.kind == "success" and not outcome.function_error
    assert outcome.deleted == outcome.succeeded == tuple(ids(event))
    assert outcome.retried == () and outcome.checkpoint is None
    assert outcome.response == {"total": 1.5, "pair": [1, 2]}  # as AWS's runtime returns it
    assert seen[0].function_name == "test-function"


def test_an_async_handler_is_awaited() -> None:
    async def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        await asyncio.sleep(0)
        return report_failures()(event, context)

    event = sqs_event(["ok", "bad"])
    outcome = invoke(handler, event, report_batch_item_failures=True)
    assert outcome.kind == "partial"
    assert outcome.deleted == (ids(event)[0],) and outcome.retried == (ids(event)[1],)


def test_partial_batch_responses_are_read_only_with_the_option() -> None:
    event = sqs_event(["ok", "bad", "fine", "bad"])
    every = tuple(ids(event))
    with_option = invoke(report_failures(), event, report_batch_item_failures=True)
    assert with_option.kind == "partial"
    assert with_option.deleted == (every[0], every[2])
    assert with_option.retried == (every[1], every[3])
    assert with_option.reason == "2 of 4 items reported as failed"
    without = invoke(report_failures(), event)
    assert without.kind == "success" and without.deleted == every


def test_a_handler_mutating_its_event_does_not_change_what_is_settled() -> None:
    def handler(event: dict[str, Any], context: Any) -> None:
        event["Records"].clear()
        raise ValueError("after clearing")

    event = sqs_event(["a", "b"])
    every = tuple(ids(event))
    outcome = invoke(handler, event)
    assert outcome.retried == every


@pytest.mark.parametrize("rbif", [False, True])
def test_function_errors_fail_the_whole_batch(rbif: bool) -> None:
    def raises(event: Any, context: Any) -> None:
        raise KeyError("order")

    def exits(event: Any, context: Any) -> None:
        sys.exit(3)

    def unserializable(event: Any, context: Any) -> object:
        return object()

    async def fails_later() -> None:
        raise ConnectionError("refused")

    def returns_awaitable(event: Any, context: Any) -> Any:
        return fails_later()

    event = sqs_event(["a", "b"])
    every = tuple(ids(event))
    for handler, reason in [(raises, "exception: KeyError: 'order'"),
                            (exits, "exception: SystemExit: 3"),
                            (unserializable, "Runtime.MarshalError: Unable to marshal"),
                            (returns_awaitable, "exception: ConnectionError: refused")]:
        outcome = invoke(handler, event, report_batch_item_failures=rbif)
        assert outcome.function_error and outcome.kind == "error", handler
        assert outcome.deleted == () and outcome.retried == every
        assert outcome.reason.startswith(reason)
    assert isinstance(invoke(raises, event).error, KeyError)


def test_a_refused_item_identifier_fails_the_whole_batch() -> None:
    def handler(event: Any, context: Any) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": ""}]}

    event = sqs_event(["a", "b"])
    outcome = invoke(handler, event, report_batch_item_failures=True)
    assert outcome.function_error and outcome.retried == tuple(ids(event))
    assert outcome.reason == "invalid itemIdentifier '' at batchItemFailures[0]: an empty string"


def test_fifo_keeps_a_failed_message_and_the_rest_of_its_group() -> None:
    event = fifo_event(["g1-a", "bad", "g2-a", "g1-c", "g2-b"],
                       group_id=["g1", "g1", "g2", "g1", "g2"])
    a, bad, g2a, g1c, g2b = ids(event)
    outcome = invoke(report_failures(), event, report_batch_item_failures=True)
    assert outcome.source == "fifo" and outcome.kind == "partial"
    # g1-c succeeded but stays behind the failed message of its group, so order holds
    assert outcome.deleted == (a, g2a, g2b)
    assert outcome.retried == (bad, g1c)


def test_stream_outcomes_move_the_checkpoint_as_aws_does() -> None:
    event = kinesis_event(["r1", "r2", "bad", "r4"], first_sequence=10)
    partial = invoke(report_failures(), event, report_batch_item_failures=True)
    assert partial.source == "kinesis" and partial.kind == "partial"
    assert partial.checkpoint == "11"  # just before the lowest failure
    assert partial.succeeded == ("10", "11") and partial.retried == ("12", "13")
    assert partial.deleted == ()  # a stream deletes nothing

    success = invoke(lambda event, context: None, event)
    assert success.checkpoint == "13" and success.retried == ()

    def raises(event: Any, context: Any) -> None:
        raise RuntimeError("down")

    failed = invoke(raises, event)
    assert failed.function_error and failed.checkpoint is None
    assert failed.retried == ("10", "11", "12", "13")

    def unknown(event: Any, context: Any) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": "99"}]}

    refused = invoke(unknown, event, report_batch_item_failures=True)
    assert refused.function_error and refused.checkpoint is None
    assert refused.reason == "invalid itemIdentifier '99': not a sequence number of the batch"


def test_timeouts_end_sync_and_async_invocations() -> None:
    def sleeps(event: Any, context: Any) -> None:
        time.sleep(0.5)

    async def sleeps_async(event: Any, context: Any) -> None:
        await asyncio.sleep(5)

    event = sqs_event(["a"])
    for handler in (sleeps, sleeps_async):
        started = time.perf_counter()
        outcome = invoke(handler, event, timeout=0.05)
        assert time.perf_counter() - started < 0.4
        assert outcome.timed_out and outcome.function_error and outcome.reason == "timeout"
        assert outcome.retried == tuple(ids(event))


def test_ainvoke_runs_in_the_callers_loop_and_invoke_refuses_to() -> None:
    async def handler(event: Any, context: Any) -> None:
        return None

    async def main() -> testing.Outcome:
        with pytest.raises(RuntimeError, match=r"use await ainvoke\(\.\.\.\)"):
            invoke(handler, sqs_event(["a"]))
        return await ainvoke(handler, sqs_event(["a"]), lambda_context(timeout=1))

    assert asyncio.run(main()).kind == "success"


def test_an_event_without_records_is_refused() -> None:
    with pytest.raises(ValueError, match="not an SQS or Kinesis event"):
        invoke(lambda event, context: None, {"detail": {}})
    with pytest.raises(ValueError, match=r"come from \['aws:s3'\]"):
        invoke(lambda event, context: None, {"Records": [{"eventSource": "aws:s3"}]})


# --------------------------------------------------------------------------- virtual time


def test_the_virtual_clock_moves_forward_only_and_exactly() -> None:
    clock = VirtualClock(start=1000.0)
    assert clock() == 1000.0 and clock.elapsed == 0.0
    clock.advance(0.1)
    now = clock.elapsed
    assert 0.1 <= now < 0.1 + 1e-6
    assert (now + 20.0) - now == 20.0
    with pytest.raises(ValueError, match="moves forward"):
        clock.advance(-1)


def test_setting_the_virtual_clock_steps_its_reading_not_its_elapsed_time() -> None:
    clock = VirtualClock(start=1000.0)
    clock.advance(2.5)
    assert clock.now == clock() == 1002.5
    clock.now = 1700000000.123456  # exactly the instant set, off the advance's steps
    assert clock() == clock.now == 1700000000.123456
    assert clock.elapsed == 2.5 and clock.start == 1700000000.123456 - 2.5
    clock.now = 999.0  # back, as a wall clock may step
    assert clock() == 999.0 and clock.elapsed == 2.5
    clock.advance(1)
    assert clock() == 1000.0 and clock.elapsed == 3.5
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite"):
            clock.now = bad
    assert clock() == 1000.0


def test_an_exact_virtual_clock_adds_what_it_is_told() -> None:
    stepped, exact = VirtualClock(start=1000.0), VirtualClock(start=1000.0, exact=True)
    for clock in (stepped, exact):
        for seconds in (1, 29.9, 0.1):
            clock.advance(seconds)
    assert exact() == 1000.0 + 31 and exact.elapsed == 1 + 29.9 + 0.1
    assert 1031.0 < stepped() < 1031.0 + 1e-5  # each advance rounded up to a step
    assert "exact=True" in repr(exact) and "exact" not in repr(stepped)
    with pytest.raises(ValueError, match="moves forward"):
        exact.advance(-5)
    exact.now -= 5  # a step back is a setting, not an advance
    assert exact() == 1026.0


def test_setting_the_clock_does_not_move_the_virtual_loop() -> None:
    clock = VirtualClock(start=50.0)
    loop = VirtualTimeLoop(clock)
    try:
        before = loop.time()
        clock.now = 5000.0
        assert loop.time() == before
        loop.run_until_complete(asyncio.sleep(10))
        assert loop.time() >= before + 10 and clock() >= 5010.0
    finally:
        loop.close()


def test_the_virtual_loop_jumps_over_sleeps() -> None:
    loop = VirtualTimeLoop()
    try:
        started = time.perf_counter()
        loop.run_until_complete(asyncio.sleep(3600))
        assert time.perf_counter() - started < 0.5
        assert 3600 <= loop.time() < 3600.01 and loop.clock.elapsed == loop.time()
    finally:
        loop.close()


# --------------------------------------------------------------------------- whole Apps


def _orders_app(handler: Any, **queue: Any) -> sluicegate.App:
    app = sluicegate.App()
    app.queue("orders", visibility_timeout=60, dead_letter_queue="orders-dlq",
              max_receive_count=3, **queue)
    app.function(timeout=10)(handler)
    app.map("orders", handler, batch_size=10, report_batch_item_failures=True)
    return app


def test_the_harness_retries_and_dead_letters_on_virtual_time() -> None:
    attempts: dict[str, int] = {}

    def process(event: dict[str, Any], context: Any) -> dict[str, Any]:
        for record in event["Records"]:
            attempts[record["body"]] = attempts.get(record["body"], 0) + 1
        return report_failures()(event, context)

    app = _orders_app(process)
    started = time.perf_counter()
    with AppHarness(app) as harness:
        sent = harness.send("orders", "a", "bad", "b", {"c": 3})
        report = harness.run()
    real = time.perf_counter() - started

    assert len(sent) == 4
    assert report.settled
    assert report.processed == {"orders": ("a", "b", '{"c": 3}')}
    assert report.dead_lettered == {"orders": ("bad",)}
    assert report.remaining == {"orders": ()}
    assert attempts == {"a": 1, "bad": 3, "b": 1, '{"c": 3}': 1}
    # three receives 60 s apart, then the dead-letter queue: minutes of virtual time
    assert report.elapsed >= 120
    assert real < 2.0, real
    orders = report.mapping("orders")
    assert orders is report.mapping("orders->process")
    assert orders.invocations == 3 and orders.errors == 0 and orders.messages_deleted == 3
    assert report.invocations == 3 and report.errors == 0


def test_the_harness_runs_fifo_queues_in_group_order() -> None:
    seen: list[str] = []

    def process(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.extend(r["body"] for r in event["Records"])
        return report_failures()(event, context)

    app = sluicegate.App()
    app.queue("pay.fifo", visibility_timeout=30, dead_letter_queue="pay-dlq.fifo",
              max_receive_count=2, content_based_deduplication=True)
    app.function(timeout=5)(process)
    app.map("pay.fifo", process, report_batch_item_failures=True)
    with AppHarness(app) as harness:
        harness.send("pay.fifo", "first", "bad", "last", group_id="customer-1")
        report = harness.run()
    assert report.settled
    # "last" stays behind "bad" in its group: returned with it on every failure, so its
    # receive count rises with bad's and both reach max_receive_count, as on SQS
    assert seen == ["first", "bad", "last", "bad", "last"]
    assert report.processed == {"pay.fifo": ("first",)}
    assert report.dead_lettered == {"pay.fifo": ("bad", "last")}


def test_the_harness_runs_streams_with_retries_and_an_on_failure_destination() -> None:
    app = sluicegate.App()
    app.stream("clicks", shard_count=1)
    app.queue("clicks-failures")
    handler = report_failures()
    app.function(name="count", timeout=5)(handler)
    app.map("clicks", "count", starting_position="TRIM_HORIZON",
            report_batch_item_failures=True, maximum_retry_attempts=2,
            on_failure="clicks-failures")
    with AppHarness(app) as harness:
        sequences = harness.put("clicks", "c1", "bad", "c3")
        report = harness.run()
        failures = [json.loads(body) for body in harness.take("clicks-failures")]
        assert harness.take("clicks-failures") == []
    assert report.settled
    assert report.checkpoints == {"clicks->count": {0: sequences[-1]}}
    clicks = report.mapping("clicks")
    # c1 succeeded; a partial failure retries from the lowest failure on, so "bad" and
    # c3 are retried together and, out of retries, discarded together (AWS 6.2)
    assert clicks.messages_deleted == 1 and clicks.invocations == 3
    (failure,) = failures
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    info = failure["KinesisBatchInfo"]
    assert info["startSequenceNumber"] == str(sequences[1]) and info["batchSize"] == 2


def test_async_handlers_sleep_and_time_out_on_virtual_time() -> None:
    async def slow(event: dict[str, Any], context: Any) -> None:
        if any(r["body"] == "hang" for r in event["Records"]):
            await asyncio.sleep(600)  # past the 10 s timeout
        await asyncio.sleep(2)  # virtual seconds

    app = _orders_app(slow)
    started = time.perf_counter()
    with AppHarness(app) as harness:
        harness.send("orders", "hang")
        report = harness.run()
    assert time.perf_counter() - started < 2.0
    assert report.dead_lettered == {"orders": ("hang",)}
    assert report.errors == 3 and report.mapping("orders").errors == 3


def test_time_does_not_jump_while_a_sync_handler_runs_on_its_thread() -> None:
    # The handler's 1 s timeout is a virtual-time timer; were the clock to jump while
    # the thread works, every invocation would time out at once.
    def process(event: dict[str, Any], context: Any) -> None:
        time.sleep(0.05)

    app = _orders_app(process)
    with AppHarness(app) as harness:
        harness.send("orders", "a")
        report = harness.run()
    assert report.errors == 0 and report.processed == {"orders": ("a",)}
    assert report.elapsed >= 0.05


def test_a_run_stops_after_max_time_and_the_next_one_resumes() -> None:
    broken = {"on": True}

    def process(event: dict[str, Any], context: Any) -> None:
        if broken["on"]:
            raise RuntimeError("downstream unavailable")

    app = sluicegate.App()
    app.queue("jobs", visibility_timeout=30)  # no dead-letter queue: retried for ever
    app.function(timeout=5)(process)
    app.map("jobs", process)
    with AppHarness(app) as harness:
        harness.send("jobs", "job")
        first = harness.run(max_time=100)
        assert not first.settled and first.remaining == {"jobs": ("job",)}
        assert 3 <= first.mapping("jobs").errors <= 4  # every 30 virtual seconds
        broken["on"] = False
        harness.advance(30)
        second = harness.run()
    assert second.settled and second.processed == {"jobs": ("job",)}


def test_a_closed_harness_and_a_running_loop_are_refused() -> None:
    app = _orders_app(report_failures())
    harness = AppHarness(app)
    harness.close()
    harness.close()  # closing twice is fine
    with pytest.raises(RuntimeError, match="closed"):
        harness.send("orders", "x")

    async def inside() -> None:
        AppHarness(app)

    with pytest.raises(RuntimeError, match="plain"):
        asyncio.run(inside())


def test_the_readme_example_runs_as_written(tmp_path: Path) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("## Testing your handlers", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```python\n(.*?)```", section, re.S)
    (tmp_path / "test_orders.py").write_text(block)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_orders.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
