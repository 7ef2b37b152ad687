"""Event buses end to end: PutEvents, rules routing matched events to functions, queues,
topics and buses (with target input), destinations on a bus, scheduled rules firing once
per tick across runtimes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import sluicegate
from sluicegate import Target
from sluicegate.errors import ConfigError, InputError
from sluicegate.runtime.driver import Runtime
from sluicegate.store import MemoryStore, RedisStore, SqliteStore, Store

RUN_TIMEOUT = 30


def entry(detail: dict[str, Any], *, source: str = "shop", bus: str = "orders",
          detail_type: str = "Order") -> dict[str, Any]:
    return {"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail),
            "EventBusName": bus}


async def bodies(store: Store, queue: str) -> list[Any]:
    out: list[Any] = []
    while True:
        got = await store.receive(queue, max_messages=10, visibility_timeout=60)
        if not got:
            return out
        out += [json.loads(m.body) for m in got]


def shop_app(seen: list[Any]) -> sluicegate.App:
    app = sluicegate.App()
    app.queue("big")
    app.queue("audit")
    app.queue("copies")
    news = app.topic("news", subscribers=["copies"])
    orders = app.event_bus("orders")
    app.event_bus("archive")

    @app.function(reserved_concurrency=2)
    def ship(event: Any, context: Any) -> None:
        seen.append(event)

    app.rule(orders, {"source": ["shop"], "detail": {"total": [{"numeric": [">", 100]}]}},
             name="big-orders", targets=[ship, Target("queue:big", input_path="$.detail")])
    app.rule(orders, {"source": [{"prefix": "sh"}], "detail": {"id": [{"exists": True}]}},
             name="everything", targets=["queue:audit", news],
             input_transformer={"InputPathsMap": {"id": "$.detail.id"},
                                "InputTemplate": '{"order": <id>}'})
    app.rule(orders, {"detail-type": ["Refund"]}, name="refunds", targets=["bus:archive"])
    app.rule("archive", {"source": ["shop"]}, name="archived", targets=["queue:audit"])
    return app


def test_put_events_routes_matched_events_to_every_kind_of_target(
        store_factory: Callable[[], Store]) -> None:
    seen: list[Any] = []
    app = shop_app(seen)

    async def main() -> None:
        async with store_factory() as store:
            rt = Runtime(app, store)
            await rt.prepare()
            result = await rt.put_events([
                entry({"id": 1, "total": 150}),
                entry({"id": 2, "total": 50}),
                entry({"id": 3}, detail_type="Refund"),
                entry({"id": 4}, bus="nowhere"),
                {"Source": "shop", "DetailType": "Order", "Detail": "not json",
                 "EventBusName": "orders"},
            ])
            assert [e.ok for e in result.entries] == [True, True, True, False, False]
            assert result.entries[3].error_code == "ResourceNotFoundException"
            await asyncio.wait_for(rt.run(until_empty=True), RUN_TIMEOUT)
            big = await bodies(store, "big")
            audit = await bodies(store, "audit")
            copies = await bodies(store, "copies")
        # the function got the whole event, in EventBridge's shape
        (event,) = seen
        assert set(event) == {"version", "id", "detail-type", "source", "account", "time",
                              "region", "resources", "detail"}
        assert event["detail"] == {"id": 1, "total": 150} and event["source"] == "shop"
        assert big == [{"id": 1, "total": 150}]  # InputPath
        # InputTransformer, to a queue and to a topic; the refund also came through the
        # archive bus, whole
        transformed = [b for b in audit if "order" in b]
        assert sorted(b["order"] for b in transformed) == [1, 2, 3]
        assert sorted(b["order"] for b in copies) == [1, 2, 3]
        archived = [b for b in audit if "detail" in b]
        assert [b["detail"] for b in archived] == [{"id": 3}]

    asyncio.run(main())


def test_a_rule_that_sends_back_to_its_own_bus_stops_after_five_buses() -> None:
    app = sluicegate.App()
    app.queue("seen")
    loop = app.event_bus("loop")
    app.rule(loop, {"source": ["x"]}, targets=["bus:loop", "queue:seen"])

    async def main() -> None:
        async with MemoryStore() as store:
            rt = Runtime(app, store)
            await rt.prepare()
            await rt.put_events([entry({}, source="x", bus="loop")])
            await asyncio.wait_for(rt.run(until_empty=True), RUN_TIMEOUT)
            assert len(await bodies(store, "seen")) == 5

    asyncio.run(main())


def test_an_invocation_record_destination_on_a_bus_reaches_its_rules() -> None:
    app = sluicegate.App()
    app.queue("results")
    app.event_bus("results-bus")
    app.rule("results-bus", {"source": ["lambda"],
                             "detail-type": ["Lambda Function Invocation Result - Success"]},
             targets=["queue:results"], input_path="$.detail.responsePayload")

    @app.function(on_success="bus:results-bus")
    def work(event: Any, context: Any) -> dict[str, int]:
        return {"answer": 42}

    async def main() -> None:
        async with MemoryStore() as store:
            rt = Runtime(app, store)
            await rt.prepare()
            await app.ainvoke(work, {}, invocation_type="Event", store=store)
            await asyncio.wait_for(rt.run(until_empty=True), RUN_TIMEOUT)
            assert await bodies(store, "results") == [{"answer": 42}]

    asyncio.run(main())


@pytest.mark.parametrize("backend", ["memory", "sqlite", "redis"])
def test_a_scheduled_rule_fires_each_tick_once_across_runtimes(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    app = sluicegate.App()
    app.queue("ticks")
    app.rule(schedule="rate(1 minute)", name="every-minute", targets=["queue:ticks"])
    # a clock that reaches a minute's boundary 0.3 s from now
    now = time.time()
    offset = (60 - (now % 60)) - 0.3

    def clock() -> float:
        return time.time() + offset

    memory = MemoryStore(clock=clock)
    url = str(request.getfixturevalue("redis_url")) if backend == "redis" else ""

    def store() -> Store:
        """Each runtime's own store object (a connection of its own, as a process has),
        all on one store."""
        if backend == "memory":
            return memory
        if backend == "sqlite":
            return SqliteStore(tmp_path / "s.db", clock=clock)
        return RedisStore(url, clock=clock)

    async def main() -> None:
        stores = [store() for _ in range(3)]
        for opened in stores:
            await opened.open()
        try:
            runtimes = [Runtime(app, s, cluster=None) for s in stores]
            await runtimes[0].prepare()
            tasks = [asyncio.get_running_loop().create_task(r.run()) for r in runtimes]
            await asyncio.sleep(1.0)
            for r in runtimes:
                r.stop()
            await asyncio.wait_for(asyncio.gather(*tasks), RUN_TIMEOUT)
            ticks = await bodies(stores[0], "ticks")
            fired = [r.scheduler.fired for r in runtimes if r.scheduler is not None]
        finally:
            for opened in stores:
                await opened.close()
        (event,) = ticks
        assert sorted(fired) == [0, 0, 1]
        assert event["detail-type"] == "Scheduled Event"
        assert event["source"] == "aws.events"
        assert event["detail"] == {}
        assert event["resources"][0].endswith(":rule/every-minute")
        assert event["time"].endswith(":00Z")

    asyncio.run(main())


def test_rules_refuse_bad_patterns_schedules_and_targets_in_one_line() -> None:
    app = sluicegate.App()
    app.queue("q")
    app.event_bus("b")
    with pytest.raises(ConfigError, match=r"rule 'b-rule-1': .*source"):
        app.rule("b", {"source": "shop"}, targets=["queue:q"])
    with pytest.raises(ConfigError, match="schedule='rate\\(5 minute\\)' is invalid"):
        app.rule(schedule="rate(5 minute)", targets=["queue:q"])
    with pytest.raises(ConfigError, match="'default' for a scheduled rule"):
        app.rule("b", schedule="rate(5 minutes)", targets=["queue:q"])
    with pytest.raises(ConfigError, match="a queue the App defines"):
        app.rule("b", {"source": ["x"]}, targets=["queue:missing"])
    with pytest.raises(ConfigError, match="1-5 targets"):
        app.rule("b", {"source": ["x"]}, targets=["queue:q"] * 6)
    with pytest.raises(ConfigError, match=r"a bus defined with app\.event_bus"):
        app.rule("nope", {"source": ["x"]}, targets=["queue:q"])
    with pytest.raises(ConfigError, match="an event pattern or a schedule"):
        app.rule("b", targets=["queue:q"])


def test_put_events_refuses_a_call_eventbridge_refuses_whole() -> None:
    app = sluicegate.App()
    app.event_bus("b")

    async def main() -> None:
        async with MemoryStore() as store:
            rt = Runtime(app, store)
            await rt.prepare()
            with pytest.raises(InputError):
                await rt.put_events([entry({}, bus="b")] * 11)

    asyncio.run(main())


def test_unmodified_powertools_handlers_read_the_bus_and_topic_events() -> None:
    """Handlers written for EventBridge and SNS with Powertools' event classes run
    unchanged on sluicegate's events."""
    from aws_lambda_powertools.utilities.data_classes import (
        EventBridgeEvent,
        SNSEvent,
        event_source,
    )

    app = sluicegate.App()
    app.event_bus("orders")
    seen: dict[str, Any] = {}

    @app.function
    @event_source(data_class=EventBridgeEvent)
    def on_order(event: EventBridgeEvent, context: Any) -> None:
        seen["order"] = (event.source, event.detail_type, event.detail["id"],
                         event.region, event.get_id)

    @app.function
    @event_source(data_class=SNSEvent)
    def on_news(event: SNSEvent, context: Any) -> None:
        record = next(event.records)
        seen["news"] = (record.sns.message, record.sns.topic_arn.rsplit(":", 1)[1],
                        record.sns.message_attributes["kind"].value)

    app.rule("orders", {"source": ["shop"]}, targets=[on_order])
    news = app.topic("news", subscribers=[on_news])

    async def main() -> None:
        async with MemoryStore() as store:
            rt = Runtime(app, store)
            await rt.prepare()
            await rt.put_events([entry({"id": 7})])
            await store.publish(news, "extra", attributes={"kind": "flash"})
            await asyncio.wait_for(rt.run(until_empty=True), RUN_TIMEOUT)

    asyncio.run(main())
    source, detail_type, order_id, region, event_id = seen["order"]
    assert (source, detail_type, order_id) == ("shop", "Order", 7)
    assert region and event_id
    assert seen["news"] == ("extra", "news", "flash")
