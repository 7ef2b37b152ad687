"""Asynchronous invocation in the runtime: accepting events into a function's internal
queue, the adapter that runs them (:class:`AsyncIO`), and deliveries to destinations.

An event is accepted (:func:`accept`) by a send to the function's internal queue
``async:FUNCTION`` in the store: durable once :func:`accept` returns, the message id its
request id. Every process running the App serves every function's internal queue
through one more mapping (:class:`~sluicegate.core.async_events.AsyncEventMapping`) and
the one runner; in a cluster its invocations count against the function's reserved
concurrency across processes like any mapping's.

:class:`AsyncIO` is the queue adapter with the async settle actions:

- :class:`~sluicegate.core.async_events.Retry`: the event's visibility is set to the
  retry's wait (it is read again after it, its receive count one higher);
- :class:`~sluicegate.core.async_events.Conclude`: the invocation record goes to its
  destination, a discarded event to the dead-letter queue or topic, and then the event
  is deleted. A destination or dead-letter queue that refuses (missing, FIFO, too large)
  is counted (``DestinationDeliveryFailures``, ``DeadLetterErrors``) and the event is
  deleted anyway, as AWS does; a store that cannot be reached leaves the event in its
  queue, to be concluded again when it reappears.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from sluicegate.core.async_events import (
    TOPIC_ATTRIBUTE,
    AsyncConfig,
    AsyncEventMapping,
    Conclude,
    Destination,
    Retry,
    async_queue,
)
from sluicegate.core.async_events import async_queue_config as core_async_queue_config
from sluicegate.core.config import FunctionConfig, QueueConfig
from sluicegate.core.pool import ConcurrencyPool
from sluicegate.core.scaling import ScalingPolicy
from sluicegate.core.types import Batch, QueueRecord
from sluicegate.errors import InputError, SluicegateError, StoreNotOpen, StoreUnavailable
from sluicegate.runtime.events import sns_event
from sluicegate.runtime.sources import QueueIO
from sluicegate.store.base import Message, Store

if TYPE_CHECKING:
    from sluicegate.app import App
    from sluicegate.runtime.driver import MappingSummary
    from sluicegate.runtime.runner import MappingRunner

__all__ = [
    "ASYNC_SENDER",
    "MAX_ASYNC_PAYLOAD",
    "AsyncIO",
    "Deliveries",
    "EventDecoder",
    "accept",
    "async_mapping",
    "async_queue_config",
    "ensure_async_queue",
]

log = logging.getLogger("sluicegate.runtime")

ASYNC_SENDER = "sluicegate-async"
"""The sender id of accepted events (the queue's ``SenderId``)."""

MAX_ASYNC_PAYLOAD = 262_144
"""Bytes an asynchronous event may have: 256 KB, the internal queue's message size (AWS
raised its own limit to 1 MB in 2025; a store's queue holds 256 KB)."""

def async_queue_config(function: FunctionConfig) -> QueueConfig:
    """The internal queue of ``function`` (:func:`sluicegate.core.async_events.async_queue_config`),
    holding events of up to :data:`MAX_ASYNC_PAYLOAD` bytes."""
    return core_async_queue_config(function, max_message_size=MAX_ASYNC_PAYLOAD)


async def ensure_async_queue(store: Store, function: FunctionConfig) -> None:
    """Create ``function``'s internal queue in ``store`` (no-op when it exists)."""
    await store.ensure_queue(async_queue_config(function))


async def accept(store: Store, function: FunctionConfig, event: Any) -> str:
    """Accept ``event`` for an asynchronous invocation of ``function``: durable in the
    store when this returns.

    Returns:
        The request id (the id every attempt of the event runs under).

    Raises:
        InputError: an event that is not JSON, or larger than 256 KB.
        StoreError: the store could not take it.
    """
    try:
        body = json.dumps(event, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InputError(f"the event for {function.name!r} is not JSON: {exc}") from None
    if len(body.encode()) > MAX_ASYNC_PAYLOAD:
        raise InputError(
            f"the event for {function.name!r} has {len(body.encode()):,} bytes: an "
            f"asynchronous event may have {MAX_ASYNC_PAYLOAD:,}"
        )
    await ensure_async_queue(store, function)
    sent = await store.send(async_queue(function.name), body, sender_id=ASYNC_SENDER)
    return sent.message_id


def async_mapping(
    config: AsyncConfig,
    function: FunctionConfig,
    *,
    pool: ConcurrencyPool,
    function_arn: str,
    now: float,
    decode: EventDecoder,
    policy: ScalingPolicy | None = None,
) -> AsyncEventMapping:
    """The core of ``function``'s internal queue, reading the runtime's messages."""

    def accepted_at(record: QueueRecord) -> float:
        message: Message = record.payload
        return message.sent_timestamp

    def event_of(record: QueueRecord) -> Any:
        message: Message = record.payload
        return decode(message)

    return AsyncEventMapping(
        config,
        reserved_concurrency=pool.reserved_concurrency(function.name),
        function_arn=function_arn,
        visibility_timeout=async_queue_config(function).visibility_timeout,
        pool=pool,
        now=now,
        accepted_at=accepted_at,
        event_of=event_of,
        policy=policy,
    )


class EventDecoder:
    """A message of an internal queue as the event its function receives: the accepted
    JSON, or SNS's event for a message published to a topic the function subscribes to.

    Parameters:
        function: the function's name (in an SNS event's subscription ARN).
        region, account_id: for ARNs.
    """

    def __init__(self, function: str, region: str, account_id: str) -> None:
        self.function = function
        self.region = region
        self.account_id = account_id

    def __call__(self, message: Message) -> Any:
        topic = message.attributes.get(TOPIC_ATTRIBUTE)
        if topic is not None:
            return sns_event(message, topic=topic.get("StringValue", ""),
                             function=self.function, region=self.region,
                             account_id=self.account_id)
        try:
            return json.loads(message.body)
        except ValueError:
            return message.body  # sent to the internal queue as text by other means


class Deliveries:
    """Delivers to destinations: queues and topics of the store, functions (accepted for
    an asynchronous invocation), event buses (through ``put_event``, when the App has
    any).

    Parameters:
        app: the App (its topics, functions).
        store: where to deliver.
        put_event: delivers a ``(bus, source, detail_type, detail)`` to an event bus; ``None``
            when the runtime has no buses.
    """

    def __init__(self, app: App, store: Store,
                 put_event: Callable[[str, str, str, Any], Awaitable[None]] | None = None
                 ) -> None:
        self.app = app
        self.store = store
        self.put_event = put_event

    async def deliver(self, destination: Destination, document: Any, *,
                      attributes: dict[str, Any] | None = None,
                      detail_type: str = "") -> None:
        """Deliver ``document`` (JSON-serialisable) to ``destination``.

        Raises:
            SluicegateError: the destination refused it (missing, FIFO, too large, ...);
                :class:`~sluicegate.errors.StoreUnavailable` when the store failed.
        """
        kind, name = destination.kind, destination.name
        if kind == "function":
            function = self.app.functions.get(name)
            if function is None:
                raise InputError(f"no function {name!r} in the App")
            await accept(self.store, function.config, document)
            return
        if kind == "bus":
            if self.put_event is None:
                raise InputError(f"no event bus {name!r} in the App")
            await self.put_event(name, "lambda", detail_type, document)
            return
        body = json.dumps(document, separators=(",", ":"))
        if kind == "queue":
            if name.endswith(".fifo"):
                raise InputError(f"queue {name!r} is FIFO: destinations must be standard")
            await self.store.send(name, body, attributes=attributes, sender_id=ASYNC_SENDER)
            return
        topic = self.app.topics.get(name)
        if topic is None:
            raise InputError(f"no topic {name!r} in the App")
        if topic.fifo:
            raise InputError(f"topic {name!r} is FIFO: destinations must be standard")
        await self.store.publish(topic, body, attributes=attributes, sender_id=ASYNC_SENDER)


_TRANSIENT = (StoreUnavailable, StoreNotOpen)
"""Store failures after which an event is left to reappear rather than concluded."""

_RESULT_DETAIL_TYPE = {True: "Lambda Function Invocation Result - Success",
                       False: "Lambda Function Invocation Result - Failure"}


class AsyncIO(QueueIO):
    """The adapter of a function's internal queue: receives and deletes as a queue's,
    plus retries and conclusions (see the module docstring)."""

    def __init__(self, runner: MappingRunner, config: AsyncConfig, queue: QueueConfig,
                 arn: str, deliveries: Deliveries, decode: EventDecoder) -> None:
        super().__init__(runner, config.mapping, queue, arn)
        self.async_config = config
        self.deliveries = deliveries
        self.decode = decode
        self.settling: set[asyncio.Task[None]] = set()
        self._seen_received = 0
        self._seen_dropped = 0
        self._sized = 0
        """The level the function's invoker was last sized for."""

    @property
    def async_core(self) -> AsyncEventMapping:
        core: AsyncEventMapping = self.runner.core
        return core

    # ------------------------------------------------------------------ SourceIO
    def perform(self, now: float, actions: list[Any]) -> None:
        rest: list[Any] = []
        loop = asyncio.get_running_loop()
        for action in actions:
            if isinstance(action, Retry):
                self._spawn(loop, self._retry(action))
            elif isinstance(action, Conclude):
                self._spawn(loop, self._conclude(action))
            else:
                rest.append(action)
        self._count()
        level = self.async_core.limit
        if level != self._sized:
            self._sized = level
            self.runner.runtime.resize_invoker(self.runner.function.name)
        if rest:
            super().perform(now, rest)

    def event(self, batch: Batch) -> Any:
        (record,) = batch.records
        return self.decode(record.payload)

    def describe(self, batch: Batch) -> str:
        return f"event {batch.records[0].message_id}"

    def settled(self) -> bool:
        return super().settled() and not self.settling

    def summary(self) -> MappingSummary:
        return dataclasses.replace(super().summary(), maximum_concurrency=None,
                                   events=self.async_core.async_statistics())

    # ------------------------------------------------------------------ settle
    def _spawn(self, loop: asyncio.AbstractEventLoop,
               work: Coroutine[Any, Any, None]) -> None:
        task = loop.create_task(work)
        self.settling.add(task)
        task.add_done_callback(self._settled_one)

    def _settled_one(self, task: asyncio.Task[None]) -> None:
        self.settling.discard(task)
        self.runner.wake.set()

    def _count(self) -> None:
        """Report the core's new first reads and discards to the metrics."""
        core = self.async_core
        metrics = self.runner.runtime.metrics
        if core.received != self._seen_received:
            metrics.async_received(self.name, core.received - self._seen_received,
                                   core.last_age * 1000.0)
            self._seen_received = core.received
        if core.dropped != self._seen_dropped:
            metrics.async_dropped(self.name, core.dropped - self._seen_dropped)
            self._seen_dropped = core.dropped

    async def _retry(self, action: Retry) -> None:
        record = action.record
        log.info("%s: event %s failed (%s); attempt %d in %.3g s", self.name,
                 record.message_id, action.reason, record.receive_count + 1, action.delay)
        try:
            await self.runner.runtime.store.change_visibility(
                self.config.queue, record.receipt_handle, action.delay)
        except SluicegateError as exc:
            # the event reappears at its visibility timeout instead: retried a little
            # later than planned, never lost
            log.warning("%s: could not schedule the retry of event %s: %s", self.name,
                        record.message_id, exc)

    async def _conclude(self, action: Conclude) -> None:
        runtime = self.runner.runtime
        metrics = runtime.metrics
        record = action.record
        try:
            if action.destination is not None and action.invocation_record is not None:
                try:
                    await self.deliveries.deliver(
                        action.destination, action.invocation_record,
                        detail_type=_RESULT_DETAIL_TYPE[action.success])
                except _TRANSIENT:
                    raise
                except SluicegateError as exc:
                    metrics.destination_failure(self.name)
                    log.warning("%s: the invocation record of event %s could not be "
                                "delivered to %s: %s", self.name, record.message_id,
                                action.destination, exc)
            if action.dead_letter is not None:
                try:
                    await self._dead_letter(action)
                except _TRANSIENT:
                    raise
                except SluicegateError as exc:
                    metrics.dead_letter_error(self.name)
                    log.warning("%s: event %s could not be written to %s: %s", self.name,
                                record.message_id, action.dead_letter, exc)
            elif not action.success and action.destination is None:
                log.warning("%s: event %s dropped (%s) with no destination or dead-letter "
                            "queue", self.name, record.message_id, action.condition)
            await runtime.store.delete(self.config.queue, record.receipt_handle)
        except _TRANSIENT as exc:
            log.warning("%s: concluding event %s failed: %s; it will be concluded again "
                        "when it reappears", self.name, record.message_id, exc)
            return
        self.deleted += 1
        metrics.deleted(self.name, 1)
        if self.starved:
            runtime.settled.set()

    async def _dead_letter(self, action: Conclude) -> None:
        """The discarded event itself, with AWS's three attributes."""
        message: Message = action.record.payload
        attributes = {
            "RequestID": {"DataType": "String", "StringValue": action.request_id},
            "ErrorCode": {"DataType": "String", "StringValue": action.error_code or "-"},
            "ErrorMessage": {"DataType": "String",
                             "StringValue": action.error_message or "-"},
        }
        destination = action.dead_letter
        assert destination is not None
        store = self.deliveries.store
        if destination.kind == "queue":
            await store.send(destination.name, message.body, attributes=attributes,
                             sender_id=ASYNC_SENDER)
            return
        topic = self.deliveries.app.topics.get(destination.name)
        if topic is None:
            raise InputError(f"no topic {destination.name!r} in the App")
        await store.publish(topic, message.body, attributes=attributes,
                            sender_id=ASYNC_SENDER)
