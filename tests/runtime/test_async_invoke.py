"""Asynchronous invocation end to end on every store: the internal queue under reserved
concurrency, retries and their waits, maximum event age, destinations' invocation record,
the dead-letter queue's attributes, topics delivering SNS's event to functions, and the
invariant (every accepted event succeeded, is still queued, or reached the failure path)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

import sluicegate
from sluicegate.errors import ConfigError, InputError, Throttled
from sluicegate.runtime.async_invoke import accept
from sluicegate.runtime.driver import RunSummary, Runtime
from sluicegate.store import MemoryStore, Store

RUN_TIMEOUT = 30


async def drain(app: sluicegate.App, store: Store, events: list[Any], function: str,
                **runtime: Any) -> tuple[RunSummary, Runtime]:
    """Accept ``events`` for ``function``, then run the App until every queue is empty."""
    rt = Runtime(app, store, **runtime)
    await rt.prepare()
    for event in events:
        await accept(store, app.functions[function].config, event)
    summary = await asyncio.wait_for(rt.run(until_empty=True), RUN_TIMEOUT)
    return summary, rt


async def bodies(store: Store, queue: str) -> list[tuple[Any, dict[str, Any]]]:
    """Every message of ``queue``: (parsed body, attributes)."""
    out = []
    while True:
        got = await store.receive(queue, max_messages=10, visibility_timeout=60)
        if not got:
            return out
        out += [(json.loads(m.body), m.attributes) for m in got]


def failing_app(scale: float = 0.01) -> sluicegate.App:
    app = sluicegate.App(async_time_scale=scale)
    app.queue("ok")
    app.queue("failed")
    app.queue("dlq")
    attempts: dict[int, list[float]] = {}

    @app.function(on_success="queue:ok", on_failure="queue:failed", dead_letter="queue:dlq",
                  timeout=5)
    async def work(event: dict[str, Any], context: Any) -> dict[str, Any]:
        attempts.setdefault(event["n"], []).append(time.monotonic())
        if event["n"] % 4 == 0:
            raise ValueError(f"bad {event['n']}")
        return {"double": event["n"] * 2}

    app.attempts = attempts  # type: ignore[attr-defined]
    return app


def test_events_succeed_or_fail_after_two_retries_with_aws_records(
        store_factory: Callable[[], Store]) -> None:
    app = failing_app()

    async def main() -> None:
        async with store_factory() as store:
            summary, rt = await drain(app, store, [{"n": n} for n in range(12)], "work")
            ok = await bodies(store, "ok")
            failed = await bodies(store, "failed")
            dlq = await bodies(store, "dlq")
            internal = await store.counts("async:work")
            totals = rt.metrics.totals("async:work->work")
        # the invariant: 12 accepted = 9 succeeded + 3 on the failure path + 0 queued
        assert internal.total == 0
        assert len(ok) == 9 and len(failed) == 3 and len(dlq) == 3
        assert summary.processed == 12
        # three attempts of each failing event (maximum_retry_attempts=2), one of the rest
        counts = {n: len(times) for n, times in app.attempts.items()}  # type: ignore[attr-defined]
        assert counts == {n: 3 if n % 4 == 0 else 1 for n in range(12)}
        # the success record, as AWS shapes it
        record = next(r for r, _ in ok if r["requestPayload"] == {"n": 1})
        assert record["version"] == "1.0"
        assert set(record) == {"version", "timestamp", "requestContext", "requestPayload",
                               "responseContext", "responsePayload"}
        assert record["requestContext"]["condition"] == "Success"
        assert record["requestContext"]["approximateInvokeCount"] == 1
        assert record["requestContext"]["functionArn"].endswith(":function:work")
        assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
        assert record["responsePayload"] == {"double": 2}
        # the failure record
        failure = next(r for r, _ in failed if r["requestPayload"] == {"n": 4})
        assert failure["requestContext"]["condition"] == "RetriesExhausted"
        assert failure["requestContext"]["approximateInvokeCount"] == 3
        assert failure["responseContext"]["functionError"] == "Unhandled"
        assert failure["responsePayload"] == {"errorMessage": "bad 4", "errorType": "ValueError"}
        # the dead-letter queue gets the event itself, with the three attributes
        attributes = next(a for e, a in dlq if e == {"n": 8})
        assert set(attributes) == {"RequestID", "ErrorCode", "ErrorMessage"}
        assert attributes["ErrorCode"]["StringValue"] == "200"
        assert attributes["ErrorMessage"]["StringValue"] == "bad 8"
        request_ids = {r["requestContext"]["requestId"] for r, _ in failed}
        assert {a["RequestID"]["StringValue"] for _, a in dlq} == request_ids
        # AWS's metrics
        assert totals.async_events_received == 12
        assert totals.async_events_dropped == 3
        assert totals.dead_letter_errors == 0 and totals.destination_delivery_failures == 0
        assert totals.invocations == 9 + 3 * 3 and totals.errors == 9

    asyncio.run(main())


def test_retries_wait_one_then_two_minutes_scaled() -> None:
    app = failing_app(scale=0.005)  # 0.3 s, then 0.6 s

    async def main() -> None:
        async with MemoryStore() as store:
            await drain(app, store, [{"n": 0}], "work")

    asyncio.run(main())
    first, second, third = app.attempts[0]  # type: ignore[attr-defined]
    assert 0.3 <= second - first < 0.3 + 0.25
    assert 0.6 <= third - second < 0.6 + 0.25


def test_reserved_concurrency_caps_the_internal_queue(store_factory: Callable[[], Store]
                                                      ) -> None:
    app = sluicegate.App()
    state = {"now": 0, "peak": 0}

    @app.function(reserved_concurrency=3, timeout=5)
    async def work(event: Any, context: Any) -> None:
        state["now"] += 1
        state["peak"] = max(state["peak"], state["now"])
        await asyncio.sleep(0.03)
        state["now"] -= 1

    async def main() -> RunSummary:
        async with store_factory() as store:
            summary, _ = await drain(app, store, [{"n": n} for n in range(40)], "work")
            return summary

    summary = asyncio.run(main())
    assert summary.processed == 40
    assert state["peak"] == 3  # reached, never passed


def test_reserved_concurrency_zero_sends_every_event_to_the_failure_path_untried() -> None:
    app = sluicegate.App()
    app.queue("dlq")
    app.queue("failed")
    calls: list[Any] = []

    @app.function(reserved_concurrency=0, dead_letter="queue:dlq", on_failure="queue:failed")
    def off(event: Any, context: Any) -> None:
        calls.append(event)

    async def main() -> None:
        async with MemoryStore() as store:
            await drain(app, store, [{"n": 1}, {"n": 2}], "off")
            dlq = await bodies(store, "dlq")
            failed = await bodies(store, "failed")
        assert calls == []
        assert sorted(e["n"] for e, _ in dlq) == [1, 2]
        assert {a["ErrorCode"]["StringValue"] for _, a in dlq} == {"ZeroReservedConcurrency"}
        assert {r["requestContext"]["condition"] for r, _ in failed} == {
            "ZeroReservedConcurrency"}
        assert {r["requestContext"]["approximateInvokeCount"] for r, _ in failed} == {0}

    asyncio.run(main())


def test_an_event_older_than_maximum_event_age_is_discarded_unrun() -> None:
    app = sluicegate.App()
    app.queue("failed")
    calls: list[Any] = []
    clock = [1_000_000.0]

    @app.function(maximum_event_age=60, on_failure="queue:failed")
    def slow(event: Any, context: Any) -> None:
        calls.append(event)

    async def main() -> None:
        async with MemoryStore(clock=lambda: clock[0]) as store:
            rt = Runtime(app, store)
            await rt.prepare()
            await accept(store, app.functions["slow"].config, {"old": True})
            clock[0] += 61  # the event waited 61 s before any poller read it
            await accept(store, app.functions["slow"].config, {"old": False})

            async def tick() -> None:
                while True:
                    await asyncio.sleep(0.01)
                    clock[0] += 0.01

            ticking = asyncio.get_running_loop().create_task(tick())
            await asyncio.wait_for(rt.run(until_empty=True), RUN_TIMEOUT)
            ticking.cancel()
            failed = await bodies(store, "failed")
        assert calls == [{"old": False}]
        (record,) = [r for r, _ in failed]
        assert record["requestContext"]["condition"] == "EventAgeExceeded"
        assert record["requestPayload"] == {"old": True}

    asyncio.run(main())


def test_a_topic_delivers_sns_s_event_to_a_subscribed_function(
        store_factory: Callable[[], Store]) -> None:
    app = sluicegate.App()
    app.queue("copy")
    seen: list[dict[str, Any]] = []

    @app.function
    def notified(event: dict[str, Any], context: Any) -> None:
        seen.append(event)

    topic = app.topic("news", subscribers=["copy", notified])

    async def main() -> None:
        async with store_factory() as store:
            rt = Runtime(app, store)
            await rt.prepare()
            await store.publish(topic, "hello", attributes={"kind": "greeting"})
            await asyncio.wait_for(rt.run(until_empty=True), RUN_TIMEOUT)
            copies = await store.receive("copy", max_messages=10)
        assert [m.body for m in copies] == ["hello"]
        (event,) = seen
        (record,) = event["Records"]
        assert record["EventSource"] == "aws:sns"
        sns = record["Sns"]
        assert sns["Type"] == "Notification"
        assert sns["Message"] == "hello"
        assert sns["TopicArn"].endswith(":news") and sns["TopicArn"].startswith("arn:aws:sns:")
        assert sns["MessageAttributes"] == {"kind": {"Type": "String", "Value": "greeting"}}
        assert sns["Timestamp"].endswith("Z")

    asyncio.run(main())


def test_a_fifo_topic_refuses_a_function_subscriber() -> None:
    app = sluicegate.App()

    @app.function
    def f(event: Any, context: Any) -> None:
        return None

    with pytest.raises(ConfigError, match="FIFO topic cannot deliver to a function"):
        app.topic("t.fifo", subscribers=[f])


def test_a_function_destination_chains_an_asynchronous_invocation() -> None:
    app = sluicegate.App()
    got: list[Any] = []

    @app.function
    def audit(event: Any, context: Any) -> None:
        got.append(event)

    @app.function(on_success=audit)
    def first(event: Any, context: Any) -> str:
        return "done"

    async def main() -> None:
        async with MemoryStore() as store:
            await drain(app, store, [{"x": 1}], "first")

    asyncio.run(main())
    (record,) = got
    assert record["requestContext"]["condition"] == "Success"
    assert record["responsePayload"] == "done"


def test_a_destination_that_refuses_is_counted_and_the_event_still_concludes() -> None:
    app = sluicegate.App()
    app.queue("ordered.fifo", content_based_deduplication=True)

    @app.function(on_success="queue:ordered.fifo")
    def work(event: Any, context: Any) -> int:
        return 1

    async def main() -> None:
        async with MemoryStore() as store:
            _, rt = await drain(app, store, [{"a": 1}, {"a": 2}], "work")
            totals = rt.metrics.totals("async:work->work")
            assert totals.destination_delivery_failures == 2
            assert (await store.counts("async:work")).total == 0
            assert (await store.counts("ordered.fifo")).total == 0

    asyncio.run(main())


def test_an_undefined_destination_is_a_one_line_config_error_at_start() -> None:
    app = sluicegate.App()

    @app.function(on_failure="queue:nowhere")
    def work(event: Any, context: Any) -> None:
        return None

    async def main() -> None:
        async with MemoryStore() as store:
            await Runtime(app, store).prepare()

    with pytest.raises(ConfigError, match="on_failure='queue:nowhere' is invalid: allowed a "
                                          "queue the App defines"):
        asyncio.run(main())


def test_app_invoke_runs_now_or_accepts_for_the_running_app() -> None:
    app = sluicegate.App()
    ran: list[Any] = []

    @app.function
    def echo(event: Any, context: Any) -> Any:
        ran.append(event)
        if event.get("fail"):
            raise RuntimeError("asked to")
        return {"echo": event}

    # no App running: RequestResponse runs the handler here
    result = app.invoke(echo, {"a": 1})
    assert (result.status_code, result.payload, result.function_error) == (
        200, {"echo": {"a": 1}}, None)
    failed = app.invoke("echo", {"fail": True})
    assert failed.function_error == "Unhandled"
    assert failed.payload == {"errorMessage": "asked to", "errorType": "RuntimeError"}
    with pytest.raises(InputError, match="needs a store"):
        app.invoke(echo, {}, invocation_type="Event")
    with pytest.raises(InputError, match="no function 'nope'"):
        app.invoke("nope", {})
    with pytest.raises(InputError, match="invocation_type 'Async'"):
        app.invoke(echo, {}, invocation_type="Async")  # type: ignore[arg-type]

    # while it runs in the background: Event goes to its internal queue (202)
    ran.clear()
    with sluicegate.start(app, "memory://") as running:
        accepted = app.invoke(echo, {"b": 2}, invocation_type="Event")
        assert accepted.status_code == 202 and accepted.payload is None
        sync = app.invoke(echo, {"c": 3})
        assert sync.payload == {"echo": {"c": 3}}
        deadline = time.monotonic() + 10
        while {"b": 2} not in ran and time.monotonic() < deadline:
            time.sleep(0.01)
        running.stop()
    assert {"b": 2} in ran and {"c": 3} in ran


def test_request_response_is_throttled_when_the_reservation_is_in_use() -> None:
    app = sluicegate.App()
    release = asyncio.Event()

    @app.function(reserved_concurrency=1, timeout=5)
    async def single(event: Any, context: Any) -> str:
        if event.get("hold"):
            await release.wait()
        return "ok"

    async def main() -> None:
        async with sluicegate.serve(app, MemoryStore()) as running:
            while not app._runtimes:
                await asyncio.sleep(0.01)
            holder = asyncio.get_running_loop().create_task(
                app.ainvoke(single, {"hold": True}))
            await asyncio.sleep(0.05)
            with pytest.raises(Throttled, match="ReservedFunctionConcurrentInvocationLimit"):
                await app.ainvoke(single, {})
            with pytest.raises(InputError, match=r"use await app\.ainvoke"):
                app.invoke(single, {})
            release.set()
            assert (await holder).payload == "ok"
            assert (await app.ainvoke(single, {})).payload == "ok"
            running.stop()

    asyncio.run(main())


def test_a_topic_as_on_failure_destination_and_as_dead_letter_topic() -> None:
    app = sluicegate.App(async_time_scale=0.001)
    app.queue("records")
    app.queue("events")
    failures = app.topic("failures", subscribers=["records"])
    dead = app.topic("dead", subscribers=["events"])

    @app.function(on_failure=failures, dead_letter=dead, maximum_retry_attempts=0)
    def broken(event: Any, context: Any) -> None:
        raise RuntimeError("always")

    async def main() -> None:
        async with MemoryStore() as store:
            await drain(app, store, [{"k": 1}], "broken")
            (record,) = [r for r, _ in await bodies(store, "records")]
            ((event, attributes),) = await bodies(store, "events")
        assert record["requestContext"]["condition"] == "RetriesExhausted"
        assert record["requestPayload"] == {"k": 1}
        assert event == {"k": 1}
        assert attributes["ErrorMessage"]["StringValue"] == "always"

    asyncio.run(main())
