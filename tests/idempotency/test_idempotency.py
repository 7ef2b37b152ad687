"""sluicegate.idempotency on every store (memory, SQLite, Redis), sync and async: duplicates
delivered later replay the stored response, concurrent ones raise or wait, payload
validation, expiry and in-progress expiry on the store's injected clock, failures that
clear the record, responses that cannot be stored, missing keys.

Store time moves only through ``clock``; a waiting duplicate polls in real time (tens of
milliseconds).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import threading
from typing import Any

import pytest

from sluicegate.errors import ConfigError, InputError
from sluicegate.idempotency import (
    IdempotencyAlreadyInProgressError,
    IdempotencyConfig,
    IdempotencyKeyError,
    IdempotencyResponseError,
    IdempotencyValidationError,
    idempotent,
    idempotent_function,
)
from sluicegate.runtime.events import LambdaContext
from sluicegate.store import Store
from sluicegate.testing import VirtualClock

from .conftest import START, call

KINDS = ["sync", "async"]


class Work:
    """A function body that counts its calls, fails on ``{"fail": true}`` and, with
    ``hold``, holds its first call until ``release`` is set."""

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.hold = False
        self.started = threading.Event()
        self.release = threading.Event()

    def _start(self, record: dict[str, Any]) -> int:
        self.calls.append(record)
        self.started.set()
        return len(self.calls)

    def _finish(self, record: dict[str, Any], n: int) -> dict[str, Any]:
        if record.get("fail"):
            raise ValueError(f"cannot process {record['id']}")
        return {"id": record.get("id"), "call": n}

    def run(self, record: dict[str, Any]) -> Any:
        n = self._start(record)
        if self.hold and n == 1:
            assert self.release.wait(10)
        return self._finish(record, n)

    async def arun(self, record: dict[str, Any]) -> Any:
        n = self._start(record)
        while self.hold and n == 1 and not self.release.is_set():
            await asyncio.sleep(0.002)
        return self._finish(record, n)

    async def wait_started(self) -> None:
        for _ in range(5000):
            if self.started.is_set():
                return
            await asyncio.sleep(0.002)
        raise AssertionError("the call never started")


def function(kind: str, work: Work, **options: Any) -> Any:
    """An idempotent function of ``kind`` whose key is the record's ``id``."""
    options.setdefault("config", IdempotencyConfig(event_key_jmespath="id"))
    if kind == "sync":
        @idempotent_function(data_keyword_argument="record", **options)
        def process(record: dict[str, Any]) -> Any:
            return work.run(record)

        return process

    @idempotent_function(data_keyword_argument="record", **options)
    async def aprocess(record: dict[str, Any]) -> Any:
        return await work.arun(record)

    return aprocess


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# ---------------------------------------------------------------------- duplicates
async def test_a_later_duplicate_replays_the_stored_response(bound: Store, kind: str) -> None:
    work = Work()
    process = function(kind, work)
    first = await call(process, record={"id": "o-1", "qty": 2})
    # When the same record comes again (another delivery), the function does not run
    again = await call(process, record={"id": "o-1", "qty": 2})
    assert first == again == {"id": "o-1", "call": 1}
    assert len(work.calls) == 1
    # Then another key runs
    assert (await call(process, record={"id": "o-2"}))["call"] == 2
    # and the record holds the response, under the function's name and the key's hash
    (item,) = [i for i in [await bound.get_item("idempotency", _key(process, "o-1"))] if i]
    assert item.status == "COMPLETED"
    assert json.loads(item.data)["response"] == {"id": "o-1", "call": 1}


def _key(process: Any, value: Any) -> str:
    import hashlib

    name = f"{process.__module__}.{process.__qualname__}"
    return f"{name}#{hashlib.md5(json.dumps(value).encode()).hexdigest()}"


async def test_a_concurrent_duplicate_raises_while_the_first_runs(
    bound: Store, kind: str
) -> None:
    work = Work()
    work.hold = True
    process = function(kind, work)
    first = asyncio.ensure_future(call(process, record={"id": "o-1"}))
    await work.wait_started()
    with pytest.raises(IdempotencyAlreadyInProgressError, match="in progress"):
        await call(process, record={"id": "o-1"})
    work.release.set()
    assert await first == {"id": "o-1", "call": 1}
    # once it finished, a duplicate replays
    assert await call(process, record={"id": "o-1"}) == {"id": "o-1", "call": 1}
    assert len(work.calls) == 1


async def test_a_concurrent_duplicate_may_wait_for_the_first(bound: Store, kind: str) -> None:
    work = Work()
    work.hold = True
    process = function(kind, work, config=IdempotencyConfig(
        event_key_jmespath="id", on_in_progress="wait", wait_timeout=10))
    first = asyncio.ensure_future(call(process, record={"id": "o-1"}))
    await work.wait_started()
    waiting = [asyncio.ensure_future(call(process, record={"id": "o-1"})) for _ in range(3)]
    await asyncio.sleep(0.05)
    assert not any(w.done() for w in waiting)  # they wait...
    work.release.set()
    # ...and get the first one's response, which ran alone
    assert await asyncio.gather(first, *waiting) == [{"id": "o-1", "call": 1}] * 4
    assert len(work.calls) == 1


async def test_a_waiting_duplicate_runs_when_the_first_fails(bound: Store, kind: str) -> None:
    work = Work()
    work.hold = True
    process = function(kind, work, config=IdempotencyConfig(
        event_key_jmespath="id", on_in_progress="wait", wait_timeout=10))
    first = asyncio.ensure_future(call(process, record={"id": "o-1", "fail": True}))
    await work.wait_started()
    second = asyncio.ensure_future(call(process, record={"id": "o-1"}))
    await asyncio.sleep(0.02)
    work.release.set()
    with pytest.raises(ValueError, match="cannot process o-1"):
        await first
    assert await second == {"id": "o-1", "call": 2}  # it ran itself
    assert len(work.calls) == 2


async def test_a_wait_that_runs_out_raises(bound: Store, kind: str) -> None:
    work = Work()
    work.hold = True
    process = function(kind, work, config=IdempotencyConfig(
        event_key_jmespath="id", on_in_progress="wait", wait_timeout=0.05))
    first = asyncio.ensure_future(call(process, record={"id": "o-1"}))
    await work.wait_started()
    with pytest.raises(IdempotencyAlreadyInProgressError, match=r"after waiting 0\.05 s"):
        await call(process, record={"id": "o-1"})
    work.release.set()
    await first


async def test_a_failed_call_clears_its_record(bound: Store, kind: str) -> None:
    work = Work()
    process = function(kind, work)
    with pytest.raises(ValueError):
        await call(process, record={"id": "o-1", "fail": True})
    assert await bound.get_item("idempotency", _key(process, "o-1")) is None
    # the retry runs
    assert await call(process, record={"id": "o-1"}) == {"id": "o-1", "call": 2}


# ---------------------------------------------------------------------- validation
async def test_a_different_payload_under_the_same_key_is_an_error(
    bound: Store, kind: str
) -> None:
    work = Work()
    process = function(kind, work, config=IdempotencyConfig(
        event_key_jmespath="id", payload_validation_jmespath="[qty, price]"))
    await call(process, record={"id": "o-1", "qty": 2, "price": 5, "note": "a"})
    # a field outside the validated ones may differ: a replay
    assert (await call(process, record={"id": "o-1", "qty": 2, "price": 5, "note": "b"})
            == {"id": "o-1", "call": 1})
    with pytest.raises(IdempotencyValidationError, match=r"\[qty, price\]"):
        await call(process, record={"id": "o-1", "qty": 3, "price": 5})
    assert len(work.calls) == 1


async def test_validation_applies_to_a_call_in_progress_too(bound: Store, kind: str) -> None:
    work = Work()
    work.hold = True
    process = function(kind, work, config=IdempotencyConfig(
        event_key_jmespath="id", payload_validation_jmespath="qty", on_in_progress="wait"))
    first = asyncio.ensure_future(call(process, record={"id": "o-1", "qty": 1}))
    await work.wait_started()
    with pytest.raises(IdempotencyValidationError):
        await call(process, record={"id": "o-1", "qty": 9})
    work.release.set()
    await first


# ---------------------------------------------------------------------- expiry
async def test_a_record_expires_after_expires_after_seconds(
    bound: Store, kind: str, clock: VirtualClock
) -> None:
    work = Work()
    process = function(kind, work, config=IdempotencyConfig(event_key_jmespath="id",
                                                            expires_after_seconds=60))
    await call(process, record={"id": "o-1"})
    clock.advance(59.9)
    assert (await call(process, record={"id": "o-1"}))["call"] == 1
    clock.advance(0.1)
    assert (await call(process, record={"id": "o-1"}))["call"] == 2  # expired: runs again


async def test_a_dead_call_s_record_lapses_with_the_invocation_s_time(
    bound: Store, kind: str, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A call that never finishes (its process hung or died) holds its key only until
    its invocation would have timed out: then a duplicate runs; the late finisher's
    response is not stored over the new one's (its claim's version is stale)."""
    config = IdempotencyConfig(event_key_jmespath="id")
    stuck = Work()
    stuck.hold = True
    process = function(kind, stuck, config=config)
    context = LambdaContext(function_name="orders", timeout=30, clock=clock)

    async def invocation(record: dict[str, Any]) -> Any:
        config.register_lambda_context(context)  # as a batch handler does first
        return await call(process, record=record)

    first = asyncio.ensure_future(invocation({"id": "o-1"}))
    await stuck.wait_started()
    (item,) = [await bound.get_item("idempotency", _key(process, "o-1"))]
    assert item is not None and item.in_progress_expires == pytest.approx(START + 30)
    clock.advance(29)
    with pytest.raises(IdempotencyAlreadyInProgressError):
        await invocation({"id": "o-1"})
    clock.advance(1)  # the first invocation's timeout: its claim lapses
    assert await invocation({"id": "o-1"}) == {"id": "o-1", "call": 2}
    with caplog.at_level(logging.WARNING, "sluicegate.idempotency"):
        stuck.release.set()
        assert await first == {"id": "o-1", "call": 1}  # its caller still gets it
    assert "no longer this call's" in caplog.text
    assert await call(process, record={"id": "o-1"}) == {"id": "o-1", "call": 2}


async def test_without_a_context_in_progress_timeout_bounds_the_claim(
    bound: Store, kind: str, clock: VirtualClock
) -> None:
    stuck = Work()
    stuck.hold = True
    config = IdempotencyConfig(event_key_jmespath="id", in_progress_timeout=5)
    process = function(kind, stuck, config=config)
    first = asyncio.ensure_future(call(process, record={"id": "o-1"}))
    await stuck.wait_started()
    item = await bound.get_item("idempotency", _key(process, "o-1"))
    assert item is not None and item.in_progress_expires == START + 5
    clock.advance(5)
    assert await bound.get_item("idempotency", _key(process, "o-1")) is None
    stuck.release.set()
    await first


# ---------------------------------------------------------------------- handlers
async def test_an_idempotent_handler_keys_on_the_event(bound: Store, kind: str,
                                                       clock: VirtualClock) -> None:
    seen: list[Any] = []
    config = IdempotencyConfig(event_key_jmespath="powertools_json(body).order_id")
    if kind == "sync":
        @idempotent(config=config)
        def handler(event: dict[str, Any], context: Any) -> Any:
            seen.append(event)
            return {"statusCode": 200, "order": json.loads(event["body"])["order_id"]}
    else:
        @idempotent(config=config)
        async def handler(event: dict[str, Any], context: Any) -> Any:
            seen.append(event)
            return {"statusCode": 200, "order": json.loads(event["body"])["order_id"]}

    context = LambdaContext(function_name="api", timeout=3, clock=clock)
    event = {"body": json.dumps({"order_id": 7, "note": "x"})}
    duplicate = {"body": json.dumps({"note": "y", "order_id": 7})}
    assert await call(handler, event, context) == {"statusCode": 200, "order": 7}
    assert await call(handler, duplicate, context) == {"statusCode": 200, "order": 7}
    assert len(seen) == 1
    # the handler's record lapses with its context (3 s here), as the first one did
    item = await bound.get_item("idempotency", _key(handler, 7))
    assert item is not None and item.status == "COMPLETED" and item.in_progress_expires is None


async def test_a_bare_idempotent_handler_keys_on_the_whole_event(bound: Store) -> None:
    seen = []

    @idempotent
    async def handler(event: Any, context: Any) -> Any:
        seen.append(event)
        return len(seen)

    assert [await handler({"a": 1, "b": 2}, None), await handler({"b": 2, "a": 1}, None),
            await handler({"a": 2}, None)] == [1, 1, 2]


async def test_positional_arguments_and_methods(bound: Store) -> None:
    class Processor:
        def __init__(self) -> None:
            self.seen: list[Any] = []

        @idempotent_function(data_keyword_argument="order",
                             config=IdempotencyConfig(event_key_jmespath="id"))
        async def process(self, order: dict[str, Any], note: str = "") -> str:
            self.seen.append(order)
            return f"{order['id']}{note}"

    p = Processor()
    assert await p.process({"id": 1}, "!") == "1!"
    assert await p.process(order={"id": 1}) == "1!"
    assert len(p.seen) == 1


@dataclasses.dataclass
class Order:
    id: int
    lines: tuple[str, ...]


async def test_dataclass_payloads_and_json_round_tripped_responses(bound: Store) -> None:
    calls = []

    @idempotent_function(data_keyword_argument="order")
    async def total(order: Order) -> Any:
        calls.append(order)
        return {"order": order, "lines": order.lines}

    first = await total(order=Order(1, ("a", "b")))
    again = await total(order=Order(1, ("a", "b")))
    assert first == {"order": Order(1, ("a", "b")), "lines": ("a", "b")}  # as returned
    assert again == {"order": {"id": 1, "lines": ["a", "b"]}, "lines": ["a", "b"]}  # JSON
    assert len(calls) == 1


async def test_a_result_json_cannot_hold_fails_and_clears_the_record(
    bound: Store, kind: str
) -> None:
    calls = []
    if kind == "sync":
        @idempotent_function(data_keyword_argument="record")
        def process(record: Any) -> Any:
            calls.append(record)
            return object()
    else:
        @idempotent_function(data_keyword_argument="record")
        async def process(record: Any) -> Any:
            calls.append(record)
            return object()

    with pytest.raises(IdempotencyResponseError, match="returned object, which cannot be "
                                                       "stored as JSON"):
        await call(process, record={"id": 1})
    with pytest.raises(IdempotencyResponseError):
        await call(process, record={"id": 1})
    assert len(calls) == 2  # not replayed: the record was cleared


async def test_a_missing_key_runs_without_idempotency_or_raises(
    bound: Store, caplog: pytest.LogCaptureFixture
) -> None:
    work = Work()
    lenient = function("async", work)
    with caplog.at_level(logging.WARNING, "sluicegate.idempotency"):
        await lenient(record={"other": 1})
        await lenient(record={"other": 1})
    assert len(work.calls) == 2
    assert "no idempotency key in id; running without idempotency" in caplog.text
    strict = function("async", work, config=IdempotencyConfig(
        event_key_jmespath="[id, tenant]", raise_on_no_idempotency_key=True))
    with pytest.raises(IdempotencyKeyError, match=r"no idempotency key in \[id, tenant\]"):
        await strict(record={"other": 1})
    # 0 and False are keys
    assert (await strict(record={"id": 0, "tenant": False}))["id"] == 0


# ---------------------------------------------------------------------- where the store is
async def test_a_store_url_serves_sync_and_async_functions_outside_a_run(
    store_url: str, kind: str
) -> None:
    work = Work()
    process = function(kind, work, store=store_url)
    assert await call(process, record={"id": "o-1"}) == {"id": "o-1", "call": 1}
    assert await call(process, record={"id": "o-1"}) == {"id": "o-1", "call": 1}
    assert len(work.calls) == 1


def test_a_store_url_serves_plain_sync_code(store_url: str) -> None:
    work = Work()
    process = function("sync", work, store=store_url)
    assert [process(record={"id": 1}), process(record={"id": 1})] == [{"id": 1, "call": 1}] * 2


async def test_without_a_store_a_call_says_how_to_give_one(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLUICEGATE_STORE", raising=False)
    process = function("async", Work())
    with pytest.raises(InputError, match="no store for idempotency records: run the handler "
                                         "under sluicegate"):
        await process(record={"id": 1})


async def test_sluicegate_store_names_the_store_outside_a_run(
    monkeypatch: pytest.MonkeyPatch, store_url: str
) -> None:
    monkeypatch.setenv("SLUICEGATE_STORE", store_url)
    work = Work()
    process = function("async", work)
    await process(record={"id": 1})
    await process(record={"id": 1})
    assert len(work.calls) == 1


async def test_a_sync_function_on_the_loop_s_thread_is_refused_on_shared_stores(
    bound: Store, backend: str
) -> None:
    work = Work()
    process = function("sync", work)
    if backend == "memory":  # its operations never wait: allowed
        assert process(record={"id": 1}) == process(record={"id": 1})
        return
    with pytest.raises(InputError, match="would block the loop: make it 'async def'"):
        process(record={"id": 1})


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ConfigError, match="event_key_jmespath='id\\[' is invalid"):
        IdempotencyConfig(event_key_jmespath="id[")
    with pytest.raises(ConfigError, match="on_in_progress='later'"):
        IdempotencyConfig(on_in_progress="later")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="expires_after_seconds=0"):
        IdempotencyConfig(expires_after_seconds=0)
    with pytest.raises(ConfigError, match="hash_function='nope'"):
        IdempotencyConfig(hash_function="nope")
    with pytest.raises(ConfigError, match="data_keyword_argument='record' is invalid: "
                                          "allowed a parameter of"):
        @idempotent_function(data_keyword_argument="record")
        def f(order: Any) -> None: ...
    with pytest.raises(ConfigError, match="store=42"):
        idempotent(store=42)(lambda event, context: None)  # type: ignore[arg-type]


def test_keys_do_not_depend_on_key_order_or_process() -> None:
    config = IdempotencyConfig(hash_function="sha256")
    assert config.digest({"a": 1, "b": [1, 2]}) == config.digest({"b": [1, 2], "a": 1})
    # a fixed value: the same in every process and on every machine
    assert config.digest({"a": 1}) == (
        "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862")
