"""Idempotency under the real runtime: a queue mapping fed duplicates (the same order
sent twice, in batches that run concurrently), with per-record idempotent functions in
sync and async batch handlers, on every store; the records go to the run's own store
with no store named anywhere.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

import sluicegate
from sluicegate.idempotency import IdempotencyConfig, idempotent_function
from sluicegate.store import MemoryStore, Store, open_store

ORDERS = 8


async def fill(store: Store, app: sluicegate.App) -> None:
    """Every order twice: 0..7, then 0..7 again (so batches of 4 run duplicates side by
    side)."""
    async with store:
        for queue in app.queues.values():
            await store.ensure_queue(queue)
        for _ in range(2):
            for order in range(ORDERS):
                await store.send("orders", json.dumps({"order": order, "qty": 1}))


def prepared(backend: str, app: sluicegate.App, tmp_path: Path,
             request: pytest.FixtureRequest) -> Store | str:
    """Where the run goes, holding the messages: a URL, or the memory store itself."""
    if backend == "memory":
        store = MemoryStore()
        asyncio.run(fill(store, app))
        return store
    if backend == "redis":
        url = str(request.getfixturevalue("redis_url"))
    else:
        url = f"sqlite:///{tmp_path / 'run.db'}"
    asyncio.run(fill(open_store(url), app))
    return url


def orders_app(kind: str, done: list[int], results: list[Any]) -> sluicegate.App:
    app = sluicegate.App()
    app.queue("orders", visibility_timeout=30)
    config = IdempotencyConfig(event_key_jmespath="powertools_json(body).order",
                               payload_validation_jmespath="powertools_json(body).qty",
                               on_in_progress="wait")

    if kind == "sync":
        @idempotent_function(data_keyword_argument="record", config=config)
        def ship(record: dict[str, Any]) -> dict[str, Any]:
            order = json.loads(record["body"])["order"]
            time.sleep(0.02)  # long enough for its duplicate to arrive meanwhile
            done.append(order)
            return {"shipped": order, "by": record["messageId"]}

        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            config.register_lambda_context(context)
            results.extend(ship(record=r) for r in event["Records"])
            return {"batchItemFailures": []}
    else:
        @idempotent_function(data_keyword_argument="record", config=config)
        async def aship(record: dict[str, Any]) -> dict[str, Any]:
            order = json.loads(record["body"])["order"]
            await asyncio.sleep(0.02)
            done.append(order)
            return {"shipped": order, "by": record["messageId"]}

        async def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            config.register_lambda_context(context)
            results.extend([await aship(record=r) for r in event["Records"]])
            return {"batchItemFailures": []}

    app.function(name="ship", timeout=5)(handler)
    app.map("orders", "ship", batch_size=4, report_batch_item_failures=True)
    return app


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_duplicates_sent_to_a_queue_are_processed_once(
    backend: str, kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    done: list[int] = []
    results: list[Any] = []
    app = orders_app(kind, done, results)
    where = prepared(backend, app, tmp_path, request)
    summary = sluicegate.run(app, where, until_empty=True)
    # every message was handled and deleted, but each order shipped once
    assert summary.processed == 2 * ORDERS and summary.stopped_by == "queues empty"
    assert sorted(done) == list(range(ORDERS))
    # the duplicate of each order got the first delivery's response, replayed
    by_order: dict[int, set[str]] = {}
    for result in results:
        by_order.setdefault(result["shipped"], set()).add(result["by"])
    assert len(results) == 2 * ORDERS
    assert all(len(ids) == 1 for ids in by_order.values()) and len(by_order) == ORDERS
