"""The idempotent call: claim the key, run once, record the response, replay it.

One flow serves sync and async functions alike: :func:`_flow` is a generator that
*yields* what it needs done (a store operation, the call itself, a pause) and is sent
the outcome; :func:`_drive` does those steps with blocking calls, :func:`_adrive` with
awaits. The rules live once, in the generator.

The flow of one call with key ``K``:

1. create the record ``K`` as ``INPROGRESS`` (expiring after ``expires_after_seconds``,
   and, sooner, when the invocation would time out: its in-progress expiry);
2. created: run the function. It returns: the record becomes ``COMPLETED`` with the
   response (JSON), if it is still this call's (its version unchanged). It raises: the
   record is deleted, so a retry runs the function again; the exception propagates;
3. not created, the record is ``COMPLETED``: the stored response is returned (replayed);
4. not created, the record is ``INPROGRESS``: raise
   :class:`~sluicegate.errors.IdempotencyAlreadyInProgressError`, or wait (polling the
   record, 10 ms doubling to 250 ms) until it is completed (replay), or gone (the call
   failed, or died and its in-progress time lapsed: go to 1), or the wait runs out.

With payload validation, 3 and 4 first compare the stored payload hash with this call's,
and raise :class:`~sluicegate.errors.IdempotencyValidationError` when they differ.

Responses are stored as JSON and replayed as what JSON gives back (a tuple comes back a
list, a ``Decimal`` a number, a dataclass or pydantic model a dict, as a Lambda's caller
sees them anyway). A function that returns something JSON cannot hold fails with
:class:`~sluicegate.errors.IdempotencyResponseError`, and its record is deleted: a
duplicate must not replay a response that was never stored.
"""

from __future__ import annotations

import asyncio
import dataclasses
import decimal
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from sluicegate.errors import (
    IdempotencyAlreadyInProgressError,
    IdempotencyKeyError,
    IdempotencyResponseError,
    IdempotencyValidationError,
    StoreError,
)
from sluicegate.idempotency.config import DEFAULT_WAIT_TIMEOUT, IdempotencyConfig, missing
from sluicegate.idempotency.stores import Operation, Records

if TYPE_CHECKING:
    from sluicegate.store.base import Store
    from sluicegate.store.items import ItemWrite

__all__ = ["COMPLETED", "INPROGRESS", "Call"]

log = logging.getLogger("sluicegate.idempotency")

INPROGRESS: Final = "INPROGRESS"
"""Status of a record whose call is running."""

COMPLETED: Final = "COMPLETED"
"""Status of a record whose call returned; its data holds the response."""

FIRST_POLL: Final = 0.01
"""Seconds a waiting duplicate first waits before reading the record again."""

MAX_POLL: Final = 0.25
"""Longest pause between two reads of a waiting duplicate."""

MIN_IN_PROGRESS: Final = 0.001
"""Shortest in-progress time (an invocation with no time left still gets a record)."""


@dataclass(frozen=True, slots=True)
class _Store:
    """A step: run a store operation, send back its result."""

    operation: Operation[Any]


@dataclass(frozen=True, slots=True)
class _Pause:
    """A step: wait ``seconds``."""

    seconds: float


class _Invoke:
    """A step: call the function, send back its result (or throw in its exception)."""


_INVOKE: Final = _Invoke()
Step = _Store | _Pause | _Invoke


@dataclass(slots=True)
class Call:
    """One call of an idempotent function, before it runs.

    Attributes:
        name: the key's prefix (the function's ``module.qualname``, or ``key_prefix``).
        payload: what the key (and the payload hash) are made from.
        config: the function's configuration.
        context: a Lambda-style context for the invocation's remaining time (``None``:
            the config's registered one, if any).
    """

    name: str
    payload: Any
    config: IdempotencyConfig
    context: Any = None

    def key(self) -> str | None:
        """The record's key, ``NAME#HASH``; ``None`` (with a WARNING) when the payload
        has no key data and ``raise_on_no_idempotency_key`` is off.

        Raises:
            IdempotencyKeyError: no key data, with ``raise_on_no_idempotency_key``; key
                data that has no JSON form.
        """
        config = self.config
        data = config.key_data(self.payload)
        if missing(data):
            where = config.event_key_jmespath or "the payload"
            if config.raise_on_no_idempotency_key:
                raise IdempotencyKeyError(f"{self.name}: no idempotency key in {where}")
            log.warning("%s: no idempotency key in %s; running without idempotency",
                        self.name, where)
            return None
        return f"{self.name}#{config.digest(data)}"

    def _context(self) -> Any:
        return self.context if self.context is not None else self.config.lambda_context

    def in_progress_ttl(self) -> float | None:
        """Seconds the claim lasts: the invocation's remaining time, else the config's
        ``in_progress_timeout`` (``None``: as long as the record)."""
        remaining = getattr(self._context(), "get_remaining_time_in_millis", None)
        if callable(remaining):
            return max(float(remaining()) / 1000, MIN_IN_PROGRESS)
        return self.config.in_progress_timeout

    def wait_budget(self) -> float:
        """Seconds a duplicate may wait (``on_in_progress="wait"``)."""
        if self.config.wait_timeout is not None:
            return self.config.wait_timeout
        remaining = getattr(self._context(), "get_remaining_time_in_millis", None)
        if callable(remaining):
            return float(remaining()) / 1000
        return DEFAULT_WAIT_TIMEOUT


# ---------------------------------------------------------------------- the flow
def _flow(call: Call, key: str, clock: Callable[[], float]) -> Generator[Step, Any, Any]:
    """The rules of one call (see the module docstring), as steps."""
    config = call.config
    table = config.table
    payload_hash = config.validation_hash(call.payload)
    claim = json.dumps({"payload": payload_hash})
    budget = call.wait_budget() if config.on_in_progress == "wait" else 0.0
    deadline = clock() + budget
    while True:
        write = yield _Store(functools.partial(
            _create, table, key, claim, config.expires_after_seconds, call.in_progress_ttl()))
        held = write.item
        if write.written:
            version = held.version
            break
        while True:
            _check_payload(call, key, held.data, payload_hash)
            if held.status == COMPLETED:
                return _replay(held.data)
            if config.on_in_progress == "raise":
                raise IdempotencyAlreadyInProgressError(
                    f"{call.name}: a call with the same key ({_short(key)}) is in progress")
            left = deadline - clock()
            if left <= 0:
                raise IdempotencyAlreadyInProgressError(
                    f"{call.name}: a call with the same key ({_short(key)}) is still in "
                    f"progress after waiting {budget:g} s")
            pause = FIRST_POLL
            while True:  # poll until the record changes, goes, or the wait runs out
                yield _Pause(min(pause, left))
                pause = min(pause * 2, MAX_POLL)
                current = yield _Store(lambda s: s.get_item(table, key))
                left = deadline - clock()
                if current is None or current.version != held.version or left <= 0:
                    break
            if current is None:
                break  # gone: claim it
            held = current
    try:
        result = yield _INVOKE
    except GeneratorExit:  # the flow abandoned (never by the drivers): nothing to yield
        raise
    except BaseException:
        yield from _clear(call, table, key, version)
        raise
    try:
        response = _response_json(result)
    except (TypeError, ValueError) as exc:
        yield from _clear(call, table, key, version)
        raise IdempotencyResponseError(
            f"{call.name} returned {type(result).__name__}, which cannot be stored as JSON "
            f"for duplicates to replay ({exc}): return JSON-able data") from None
    record = f'{{"payload":{json.dumps(payload_hash)},"response":{response}}}'
    done = yield _Store(lambda s: s.update_item(
        table, key, status=COMPLETED, data=record, ttl=config.expires_after_seconds,
        in_progress_ttl=None, if_version=version))
    if not done.written:
        log.warning("%s: the record of %s was no longer this call's when it finished (its "
                    "in-progress time lapsed and another call took the key): the response "
                    "is not stored", call.name, _short(key))
    return result


async def _create(table: str, key: str, claim: str, ttl: float, in_progress: float | None,
                  store: Store) -> ItemWrite:
    return await store.create_item(table, key, status=INPROGRESS, data=claim, ttl=ttl,
                                   in_progress_ttl=in_progress)


def _clear(call: Call, table: str, key: str, version: int) -> Generator[Step, Any, None]:
    """Delete this call's record so that the key can run again; a store failure is
    logged (the record then lapses at its in-progress expiry), never raised."""
    try:
        yield _Store(lambda s: s.delete_item(table, key, if_version=version))
    except StoreError as exc:
        log.warning("%s: could not clear the record of %s after the call failed (%s); it "
                    "lapses at its in-progress expiry", call.name, _short(key), exc)


def _check_payload(call: Call, key: str, data: str, payload_hash: str) -> None:
    if not call.config.payload_validation_jmespath:
        return
    stored = json.loads(data).get("payload", "")
    if stored != payload_hash:
        raise IdempotencyValidationError(
            f"{call.name}: the payload differs from the one recorded under the same key "
            f"({_short(key)}; {call.config.payload_validation_jmespath})")


def _replay(data: str) -> Any:
    return json.loads(data).get("response")


def _short(key: str) -> str:
    """A key as messages show it: its hash part, shortened."""
    return key.rpartition("#")[2][:12]


def _response_json(value: Any) -> str:
    return json.dumps(value, default=_response_default, allow_nan=False,
                      separators=(",", ":"), ensure_ascii=False)


def _response_default(value: Any) -> Any:
    """Encode what the AWS Python runtime encodes too (decimals) and plain data objects
    (dataclasses, pydantic models)."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# ---------------------------------------------------------------------- drivers
def run(call: Call, records: Callable[[], Records], function: Callable[[], Any]) -> Any:
    """Run ``function`` idempotently from sync code (see :func:`_flow`)."""
    key = call.key()
    if key is None:
        return function()
    store = records()
    flow = _flow(call, key, time.monotonic)
    step = next(flow)
    while True:
        try:
            if isinstance(step, _Store):
                value = store.call(step.operation)
            elif isinstance(step, _Pause):
                time.sleep(step.seconds)
                value = None
            else:
                value = function()
        except BaseException as exc:  # noqa: BLE001 - handed to the flow, which re-raises
            try:
                step = flow.throw(exc)
            except StopIteration as stop:
                return stop.value
            continue
        try:
            step = flow.send(value)
        except StopIteration as stop:
            return stop.value


async def arun(call: Call, records: Callable[[], Records],
               function: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``function`` idempotently from a coroutine (see :func:`_flow`)."""
    key = call.key()
    if key is None:
        return await function()
    store = records()
    loop = asyncio.get_running_loop()
    flow = _flow(call, key, loop.time)
    step = next(flow)
    while True:
        try:
            if isinstance(step, _Store):
                # shielded: a record must be settled even when the caller is cancelled
                value = await asyncio.shield(store.acall(step.operation))
            elif isinstance(step, _Pause):
                await asyncio.sleep(step.seconds)
                value = None
            else:
                value = await function()
        except BaseException as exc:  # noqa: BLE001 - handed to the flow, which re-raises
            try:
                step = flow.throw(exc)
            except StopIteration as stop:
                return stop.value
            continue
        try:
            step = flow.send(value)
        except StopIteration as stop:
            return stop.value
