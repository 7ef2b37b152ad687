"""aws-lambda-powertools' own idempotency decorators on sluicegate's persistence layer, on
every store: replay, a concurrent duplicate refused, failures clearing the record, payload
validation, expiry and in-progress expiry on the store's injected clock; then handlers
written as Powertools documents them, run by the real runtime.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("aws_lambda_powertools")

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    IdempotencyConfig,
    idempotent,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)

import sluicegate
from sluicegate.idempotency.powertools import SluicegatePersistenceLayer
from sluicegate.runtime.events import LambdaContext
from sluicegate.store import MemoryStore, Store, open_store
from sluicegate.testing import VirtualClock

from .conftest import START

pytestmark = pytest.mark.filterwarnings("error")


class Orders:
    """A Powertools-decorated function (sync, as Powertools wants) counting its runs; its
    first run may be held until released."""

    def __init__(self, clock: VirtualClock, **config: Any) -> None:
        self.runs: list[Any] = []
        self.hold = False
        self.started = threading.Event()
        self.release = threading.Event()
        self.config = IdempotencyConfig(event_key_jmespath="id", **config)
        self.context = LambdaContext(function_name="orders", timeout=30, clock=clock)

        @idempotent_function(data_keyword_argument="order", config=self.config,
                             persistence_store=SluicegatePersistenceLayer())
        def process(order: dict[str, Any]) -> dict[str, Any]:
            self.runs.append(order)
            self.started.set()
            if self.hold and len(self.runs) == 1:
                assert self.release.wait(10)
            if order.get("fail"):
                raise ValueError("cannot ship")
            return {"id": order["id"], "run": len(self.runs)}

        self._process = process

    def __call__(self, **order: Any) -> Any:
        """One invocation calling it, on a worker thread (as the runtime runs it)."""
        def invocation() -> Any:
            self.config.register_lambda_context(self.context)
            return self._process(order=order)

        return asyncio.to_thread(invocation)


async def test_a_later_duplicate_replays(bound: Store, clock: VirtualClock) -> None:
    orders = Orders(clock)
    assert await orders(id=1) == await orders(id=1) == {"id": 1, "run": 1}
    assert await orders(id=2) == {"id": 2, "run": 2}
    assert len(orders.runs) == 2


async def test_a_concurrent_duplicate_is_refused(bound: Store, clock: VirtualClock) -> None:
    orders = Orders(clock)
    orders.hold = True
    first = asyncio.ensure_future(orders(id=1))
    while not orders.started.is_set():
        await asyncio.sleep(0.002)
    with pytest.raises(IdempotencyAlreadyInProgressError):
        await orders(id=1)
    orders.release.set()
    assert await first == {"id": 1, "run": 1}
    assert await orders(id=1) == {"id": 1, "run": 1}


async def test_a_failure_clears_the_record(bound: Store, clock: VirtualClock) -> None:
    orders = Orders(clock)
    with pytest.raises(ValueError, match="cannot ship"):
        await orders(id=1, fail=True)
    assert await orders(id=1) == {"id": 1, "run": 2}


async def test_a_different_payload_is_refused(bound: Store, clock: VirtualClock) -> None:
    orders = Orders(clock, payload_validation_jmespath="qty")
    await orders(id=1, qty=2)
    assert await orders(id=1, qty=2, note="x") == {"id": 1, "run": 1}
    with pytest.raises(IdempotencyValidationError):
        await orders(id=1, qty=3)


async def test_records_expire_on_the_store_s_clock(bound: Store, clock: VirtualClock) -> None:
    orders = Orders(clock, expires_after_seconds=60)
    await orders(id=1)
    clock.advance(59)
    assert await orders(id=1) == {"id": 1, "run": 1}
    clock.advance(2)
    assert await orders(id=1) == {"id": 1, "run": 2}


async def test_an_in_progress_record_lapses_with_the_invocation(
    bound: Store, clock: VirtualClock
) -> None:
    """The first invocation hangs past its timeout (30 s of the context): Powertools' own
    rule takes the key over, here on the store's clock."""
    orders = Orders(clock)
    orders.hold = True
    first = asyncio.ensure_future(orders(id=1))
    while not orders.started.is_set():
        await asyncio.sleep(0.002)
    (item,) = [i async for i in _items(bound)]
    assert item.status == "INPROGRESS"
    assert item.in_progress_expires == pytest.approx(START + 30, abs=1)
    clock.advance(20)
    with pytest.raises(IdempotencyAlreadyInProgressError):
        await orders(id=1)
    clock.advance(11)
    # a fresh context for the next invocation (the old one's time is up)
    orders.context = LambdaContext(function_name="orders", timeout=30, clock=clock)
    assert await orders(id=1) == {"id": 1, "run": 2}
    orders.release.set()
    await first


async def _items(store: Store) -> Any:
    """The store's idempotency items (the key is Powertools': we read it back)."""
    import hashlib

    name = f"test-func.{Orders.__module__}.Orders.__init__.<locals>.process"
    key = f"{name}#{hashlib.md5(b'1').hexdigest()}"
    item = await store.get_item("idempotency", key)
    if item is not None:
        yield item


# ---------------------------------------------------------------------- the runtime
def _fill(store: Store | str, bodies: list[str]) -> None:
    async def fill() -> None:
        target = open_store(store) if isinstance(store, str) else store
        async with target:
            await target.ensure_queue(sluicegate.QueueConfig("orders", visibility_timeout=30))
            for body in bodies:
                await target.send("orders", body)

    asyncio.run(fill())


def _where(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Store | str:
    if backend == "memory":
        return MemoryStore()
    if backend == "redis":
        return str(request.getfixturevalue("redis_url"))
    return f"sqlite:///{tmp_path / 'run.db'}"


def test_powertools_idempotent_handler_under_the_runtime(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """``@idempotent`` on a whole handler (one record per batch, keyed by its body): an
    order delivered again in a later run is not processed again."""
    shipped: list[str] = []
    persistence = SluicegatePersistenceLayer()

    @idempotent(persistence_store=persistence,
                config=IdempotencyConfig(event_key_jmespath="Records[0].body"))
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        shipped.append(event["Records"][0]["body"])
        return {"batchItemFailures": []}

    app = sluicegate.App()
    app.queue("orders", visibility_timeout=30)
    app.function(name="ship", timeout=5)(handler)
    app.map("orders", "ship", batch_size=1, report_batch_item_failures=True)
    where = _where(backend, tmp_path, request)
    _fill(where, ["A", "B"])
    assert sluicegate.run(app, where, until_empty=True).processed == 2
    _fill(where, ["A", "C"])  # A again: a duplicate delivered later
    assert sluicegate.run(app, where, until_empty=True).processed == 2
    assert sorted(shipped) == ["A", "B", "C"]


def test_powertools_batch_processor_with_idempotent_records_under_the_runtime(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The pattern Powertools documents for SQS: a BatchProcessor whose record handler is
    an ``idempotent_function`` keyed by the order in the body."""
    shipped: list[int] = []
    processor = BatchProcessor(event_type=EventType.SQS)
    config = IdempotencyConfig(event_key_jmespath="powertools_json(body).order")

    @idempotent_function(data_keyword_argument="record", config=config,
                         persistence_store=SluicegatePersistenceLayer())
    def record_handler(record: SQSRecord) -> dict[str, Any]:
        shipped.append(json.loads(record.body)["order"])
        return {"order": json.loads(record.body)["order"]}

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        config.register_lambda_context(context)
        return process_partial_response(event=event, record_handler=record_handler,
                                        processor=processor, context=context)

    app = sluicegate.App()
    app.queue("orders", visibility_timeout=30)
    app.function(name="ship", timeout=5)(handler)
    app.map("orders", "ship", batch_size=10, report_batch_item_failures=True)
    where = _where(backend, tmp_path, request)
    _fill(where, [json.dumps({"order": n % 5}) for n in range(10)])  # each order twice
    summary = sluicegate.run(app, where, until_empty=True)
    assert summary.processed == 10 and summary.mappings[0].errors == 0
    assert sorted(shipped) == [0, 1, 2, 3, 4]


def test_without_powertools_the_layer_fails_on_use_with_one_line() -> None:
    code = (
        "import sys\n"
        "sys.modules['aws_lambda_powertools'] = None\n"
        "from sluicegate.idempotency.powertools import SluicegatePersistenceLayer\n"
        "from sluicegate.idempotency import idempotent\n"
        "try:\n"
        "    SluicegatePersistenceLayer()\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out == ("InputError SluicegatePersistenceLayer needs aws-lambda-powertools' "
                   "idempotency (module aws_lambda_powertools is missing): pip install "
                   "'aws-lambda-powertools[aws-sdk]'\n")
