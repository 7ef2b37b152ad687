"""Tools for testing handlers and whole Apps in-process, from pytest or any test runner.

Two levels, both running sluicegate's own code rather than a stand-in for it:

**One invocation.** Build the event AWS would deliver from plain bodies or record data
(:func:`sqs_event`, :func:`fifo_event`, :func:`kinesis_event`; the records are made by
the same builders the runtime uses), invoke a handler with :func:`invoke` (or
:func:`ainvoke` from async code), and read the :class:`Outcome` as AWS reads it: which
messages would be deleted and which would come back, or for a stream, where the
checkpoint moves and which records are retried. :func:`invoke` runs the handler through
the runtime's :class:`~sluicegate.runtime.invoker.Invoker` (sync handlers on a worker
thread, async ones on the loop, the same timeout and JSON marshalling) and settles the
batch with the core's rules (:func:`~sluicegate.core.results.invocation_outcome`,
:func:`~sluicegate.core.results.deletable` and its FIFO variant,
:func:`~sluicegate.core.stream_mapping.stream_settlement`)::

    event = sqs_event(["ok", "fail"])
    outcome = invoke(handler, event, report_batch_item_failures=True)
    assert outcome.retried == (event["Records"][1]["messageId"],)

**A whole App.** :class:`AppHarness` holds a :class:`~sluicegate.store.memory.MemoryStore`
on a :class:`VirtualClock`, sends messages and puts records, and runs the real
:class:`~sluicegate.runtime.driver.Runtime` until every queue and stream is settled, on an
event loop whose time is virtual (:class:`VirtualTimeLoop`): whenever nothing is ready
to run, the clock jumps to the next timer, so visibility timeouts, retries, batching
windows and dead-lettering take milliseconds instead of minutes::

    with AppHarness(app) as harness:
        harness.send("orders", "good", "bad")
        report = harness.run()
    assert report.dead_lettered["orders"] == ("bad",)

Virtual time jumps only while no handler runs outside the event loop: while a sync
handler runs on its thread, or any handler in a process of its own, the clock follows
real time, so such a handler never sees its timeout expire early. An async handler runs
on the loop, in virtual time: ``await asyncio.sleep(60)`` in it returns at once, and an
invocation that sleeps past its timeout times out at once. (An async handler awaiting
real I/O or a thread under the harness would see time jump meanwhile; test such a handler
with :func:`invoke`.)
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import math
import selectors
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Literal, Self

from sluicegate.app import App
from sluicegate.core.config import FunctionConfig, MappingConfig
from sluicegate.core.results import deletable, fifo_deletable, invocation_outcome
from sluicegate.core.stream_mapping import stream_settlement
from sluicegate.core.streams import (
    SEQUENCE_NUMBER,
    StreamBatch,
    StreamMappingConfig,
    StreamRecord,
)
from sluicegate.core.types import Batch, BatchOutcome, OutcomeKind, QueueRecord
from sluicegate.runtime.driver import MappingSummary, RunSummary, Runtime
from sluicegate.runtime.events import (
    LambdaContext,
    aws_identity,
    queue_arn,
)
from sluicegate.runtime.events import sqs_event as _sqs_event
from sluicegate.runtime.invoker import Handler, HandlerResult, Invoker
from sluicegate.runtime.stream_events import kinesis_event as _kinesis_event
from sluicegate.runtime.stream_events import stream_arn
from sluicegate.store.base import (
    Message,
    PutEntry,
    SendEntry,
    StreamMessage,
    md5_hex,
    new_message_id,
    normalize_attributes,
)
from sluicegate.store.memory import MemoryStore

__all__ = [
    "DEFAULT_FIFO_QUEUE",
    "DEFAULT_FUNCTION",
    "DEFAULT_GROUP",
    "DEFAULT_PARTITION_KEY",
    "DEFAULT_QUEUE",
    "DEFAULT_START",
    "DEFAULT_STREAM",
    "AppHarness",
    "HarnessReport",
    "MemoryStore",
    "Outcome",
    "VirtualClock",
    "VirtualTimeLoop",
    "ainvoke",
    "fifo_event",
    "invoke",
    "kinesis_event",
    "lambda_context",
    "sqs_event",
]

DEFAULT_QUEUE: Final = "test-queue"
"""Queue named in the ARN of :func:`sqs_event`'s records unless told otherwise."""
DEFAULT_FIFO_QUEUE: Final = "test-queue.fifo"
"""Queue named in the ARN of :func:`fifo_event`'s records unless told otherwise."""
DEFAULT_STREAM: Final = "test-stream"
"""Stream named in the ARN of :func:`kinesis_event`'s records unless told otherwise."""
DEFAULT_FUNCTION: Final = "test-function"
"""Function name of :func:`lambda_context` and :func:`invoke` unless told otherwise."""
DEFAULT_GROUP: Final = "group-1"
"""Message group of :func:`fifo_event`'s records unless told otherwise."""
DEFAULT_PARTITION_KEY: Final = "partition-key"
"""Partition key of :func:`kinesis_event`'s records and :meth:`AppHarness.put` unless told
otherwise: one key, so the records keep their order whatever the parallelization."""
DEFAULT_START: Final = 1_767_225_600.0
"""Where a :class:`VirtualClock` starts: 2026-01-01T00:00:00Z in epoch seconds (a fixed
instant, so that runs are reproducible)."""

_STEPS: Final = 1 << 20
_RESOLUTION: Final = 1.0 / _STEPS
"""The step of a :class:`VirtualClock`'s elapsed time, in seconds."""
_JUMP_EPSILON = _RESOLUTION
"""Seconds a jump of virtual time goes past the timer it jumps to, so that the timer is
due despite float rounding."""
_SETTLED_REASONS: Final = frozenset({"queues empty", "all drained"})
""":attr:`RunSummary.stopped_by` of a run that ended because everything was settled."""

Body = str | bytes | Mapping[str, Any] | Sequence[Any] | int | float | bool | None
"""A message body or record data: ``str`` as is, ``bytes`` as UTF-8 text (record data:
as is), anything else as its JSON text."""


# --------------------------------------------------------------------------- events


def _text(body: Any) -> str:
    if isinstance(body, str):
        return body
    if isinstance(body, (bytes, bytearray)):
        return bytes(body).decode("utf-8")
    return json.dumps(body)


def _data(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    return _text(value).encode("utf-8")


def _per_item(value: str | Sequence[str], count: int, what: str) -> list[str]:
    """One value for every item: ``value`` repeated, or a sequence of ``count`` values."""
    if isinstance(value, str):
        return [value] * count
    values = list(value)
    if len(values) != count:
        raise ValueError(f"{what}: {len(values)} values for {count} items")
    return values


def _messages(
    bodies: Iterable[Body],
    *,
    queue: str,
    attributes: Mapping[str, Any] | None,
    receive_count: int,
    sent_at: float | None,
    groups: list[str] | None = None,
    deduplication_ids: list[str] | None = None,
    first_sequence: int = 1,
) -> list[Message]:
    texts = [_text(b) for b in bodies]
    sent = time.time() if sent_at is None else sent_at
    attrs = normalize_attributes(attributes)
    messages = []
    for n, text in enumerate(texts):
        message = Message(
            message_id=new_message_id(),
            receipt_handle=new_message_id(),
            body=text,
            md5_of_body=md5_hex(text),
            attributes=dict(attrs),
            sent_timestamp=sent,
            first_receive_timestamp=sent,
            receive_count=receive_count,
            sender_id="sluicegate",
            visible_at=sent + 30.0,
            queue=queue,
        )
        if groups is not None:
            message.group_id = groups[n]
            message.deduplication_id = (
                deduplication_ids[n] if deduplication_ids is not None
                else hashlib.sha256(text.encode("utf-8")).hexdigest()
            )
            message.sequence_number = f"{first_sequence + n:020d}"
        messages.append(message)
    return messages


def sqs_event(
    bodies: Iterable[Body],
    *,
    queue: str = DEFAULT_QUEUE,
    attributes: Mapping[str, Any] | None = None,
    receive_count: int = 1,
    sent_at: float | None = None,
    region: str | None = None,
    account_id: str | None = None,
) -> dict[str, Any]:
    """The event of an SQS event source mapping delivering ``bodies`` from a standard queue.

    Built by the runtime's own event builder, so it is exactly what a handler receives
    under ``sluicegate run``: ``{"Records": [...]}`` with a fresh ``messageId`` and
    ``receiptHandle`` per record, ``attributes``, ``messageAttributes``, ``md5OfBody``,
    ``eventSource`` ``"aws:sqs"``, ``eventSourceARN`` and ``awsRegion``.

    Parameters:
        bodies: message bodies: ``str`` as is, ``bytes`` decoded as UTF-8, anything else
            (a dict, a list, a number) as its JSON text.
        queue: the queue named in ``eventSourceARN``.
        attributes: message attributes of every record: ``{"name": "text"}``, numbers,
            bytes, or SQS's ``{"DataType": ..., "StringValue": ...}`` mappings.
        receive_count: ``ApproximateReceiveCount`` (1 on a first delivery).
        sent_at: ``SentTimestamp`` in epoch seconds; now when omitted.
        region, account_id: of the ARN and ``awsRegion``; sluicegate's defaults
            (``SLUICEGATE_REGION``, ``SLUICEGATE_ACCOUNT_ID``) when omitted.

    Returns:
        The event dict; the handler may mutate it.

    Raises:
        InputError: an attribute sluicegate's stores would refuse.
    """
    region, account_id = _identity(region, account_id)
    messages = _messages(
        bodies, queue=queue, attributes=attributes, receive_count=receive_count,
        sent_at=sent_at,
    )
    arn = queue_arn(queue, region=region, account_id=account_id)
    return _sqs_event(messages, queue_arn=arn, region=region)


def fifo_event(
    bodies: Iterable[Body],
    *,
    group_id: str | Sequence[str] = DEFAULT_GROUP,
    deduplication_id: Sequence[str] | None = None,
    queue: str = DEFAULT_FIFO_QUEUE,
    attributes: Mapping[str, Any] | None = None,
    receive_count: int = 1,
    sent_at: float | None = None,
    first_sequence: int = 1,
    region: str | None = None,
    account_id: str | None = None,
) -> dict[str, Any]:
    """The event of an SQS event source mapping delivering ``bodies`` from a FIFO queue.

    As :func:`sqs_event`, with the FIFO attributes ``SequenceNumber``,
    ``MessageGroupId`` and ``MessageDeduplicationId`` in every record.

    Parameters:
        bodies: message bodies (see :func:`sqs_event`), in the queue's order.
        group_id: the message group of every record, or one group per record (a batch
            may hold several groups, each in order).
        deduplication_id: one id per record; the SHA-256 of the body (content-based
            deduplication) when omitted.
        first_sequence: ``SequenceNumber`` of the first record; the next ones follow.
        queue, attributes, receive_count, sent_at, region, account_id: see
            :func:`sqs_event`.

    Returns:
        The event dict.

    Raises:
        ValueError: a sequence of group or deduplication ids whose length is not the
            number of bodies.
    """
    region, account_id = _identity(region, account_id)
    texts = [_text(b) for b in bodies]
    groups = _per_item(group_id, len(texts), "group_id")
    dedups = (
        None if deduplication_id is None
        else _per_item(deduplication_id, len(texts), "deduplication_id")
    )
    messages = _messages(
        texts, queue=queue, attributes=attributes, receive_count=receive_count,
        sent_at=sent_at, groups=groups, deduplication_ids=dedups,
        first_sequence=first_sequence,
    )
    arn = queue_arn(queue, region=region, account_id=account_id)
    return _sqs_event(messages, queue_arn=arn, region=region)


def kinesis_event(
    data: Iterable[Body],
    *,
    partition_key: str | Sequence[str] = DEFAULT_PARTITION_KEY,
    stream: str = DEFAULT_STREAM,
    shard: int = 0,
    first_sequence: int = 1,
    arrived_at: float | None = None,
    region: str | None = None,
    account_id: str | None = None,
) -> dict[str, Any]:
    """The event of a Kinesis event source mapping delivering ``data`` from one shard.

    Built by the runtime's own builder: ``kinesis.data`` in base64, ``partitionKey``,
    ``sequenceNumber`` as a string, ``approximateArrivalTimestamp`` in epoch seconds,
    ``eventID`` ``"shardId-...:sequence"``.

    Parameters:
        data: record payloads: ``bytes`` as is, ``str`` as UTF-8, anything else as its
            JSON text.
        partition_key: of every record, or one key per record.
        stream: the stream named in ``eventSourceARN``.
        shard: the shard index the records come from.
        first_sequence: the first record's sequence number; the next ones follow.
        arrived_at: ``approximateArrivalTimestamp``; now when omitted.
        region, account_id: see :func:`sqs_event`.

    Returns:
        The event dict.

    Raises:
        ValueError: a sequence of partition keys whose length is not the number of
            records.
    """
    region, account_id = _identity(region, account_id)
    payloads = [_data(d) for d in data]
    keys = _per_item(partition_key, len(payloads), "partition_key")
    arrival = time.time() if arrived_at is None else arrived_at
    records = [
        StreamMessage(shard, first_sequence + n, keys[n], payload, arrival)
        for n, payload in enumerate(payloads)
    ]
    arn = stream_arn(stream, region=region, account_id=account_id)
    return _kinesis_event(records, stream_arn=arn, region=region, account_id=account_id)


def _identity(region: str | None, account_id: str | None) -> tuple[str, str]:
    if region is None or account_id is None:
        default_region, default_account = aws_identity()
        return region or default_region, account_id or default_account
    return region, account_id


def lambda_context(
    function_name: str = DEFAULT_FUNCTION,
    *,
    timeout: float = 3.0,
    memory_size: int = 128,
    aws_request_id: str | None = None,
) -> LambdaContext:
    """A context as the runtime gives a handler, for an invocation starting now.

    Parameters:
        function_name: ``context.function_name`` (and the function's ARN).
        timeout: seconds until ``get_remaining_time_in_millis()`` reaches 0.
        memory_size: ``memory_limit_in_mb`` (a string of digits, as on AWS).
        aws_request_id: a new random id when omitted.

    Returns:
        A :class:`~sluicegate.runtime.events.LambdaContext`.
    """
    return LambdaContext(
        function_name=function_name,
        memory_limit_in_mb=memory_size,
        timeout=timeout,
        aws_request_id=aws_request_id,
    )


# --------------------------------------------------------------------------- outcomes

Source = Literal["sqs", "fifo", "kinesis"]


@dataclass(frozen=True)
class Outcome:
    """How one invocation settled its batch, as AWS would read it.

    Attributes:
        source: ``"sqs"`` (standard queue), ``"fifo"`` or ``"kinesis"``, from the event.
        result: how the invocation ended (response, exception, timeout, marshal error,
            duration), as the runtime's invoker reported it.
        batch: the core's outcome: ``kind``, ``failed`` and ``reason``.
        succeeded: ids done with, in the event's order: the ``messageId`` of every message
            AWS would delete (queues), or the ``sequenceNumber`` of every record the
            checkpoint moves past (streams).
        retried: ids that come back, in the event's order: messages left in the queue to
            reappear after their visibility timeout (on a FIFO queue, with every later
            message of their group), or records retried from the checkpoint (streams:
            every record from the lowest failure on; after a function error, the whole
            batch, split in halves first with ``bisect_batch_on_function_error``).
        checkpoint: streams: the sequence number the checkpoint moves to; ``None`` when
            it does not move (and always for queues).
    """

    source: Source
    result: HandlerResult
    batch: BatchOutcome
    succeeded: tuple[str, ...]
    retried: tuple[str, ...]
    checkpoint: str | None = None

    @property
    def kind(self) -> Literal["success", "partial", "error"]:
        """``"success"``, ``"partial"`` (some items reported failed) or ``"error"`` (the
        whole batch failed: an exception, a timeout, an unserializable or invalid
        response)."""
        return self.batch.kind.value

    @property
    def function_error(self) -> bool:
        """The whole batch failed (what AWS counts in the ``Errors`` metric)."""
        return self.batch.kind is OutcomeKind.ERROR

    @property
    def reason(self) -> str:
        """Why the batch, or part of it, failed; empty on success."""
        return self.batch.reason

    @property
    def deleted(self) -> tuple[str, ...]:
        """Queues: the ``messageId`` of every message AWS would delete. Streams delete
        nothing (see :attr:`succeeded`): empty."""
        return () if self.source == "kinesis" else self.succeeded

    @property
    def response(self) -> Any:
        """The handler's return value after the JSON round trip AWS's runtime makes
        (``None`` when the invocation failed)."""
        return self.result.response

    @property
    def error(self) -> BaseException | None:
        """The exception the handler raised, if any."""
        return self.result.error

    @property
    def timed_out(self) -> bool:
        """The handler ran past its timeout."""
        return self.result.timed_out


@dataclass(frozen=True)
class _EventBatch:
    """The core's view of an event's records, taken before the handler may mutate them."""

    source: Source
    batch: Batch | StreamBatch
    ids: tuple[str, ...]


def _event_batch(event: Any) -> _EventBatch:
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list) or not records or not all(
        isinstance(r, Mapping) for r in records
    ):
        raise ValueError(
            "the event is not an SQS or Kinesis event: it needs a non-empty 'Records' list "
            "of objects (build one with sqs_event, fifo_event or kinesis_event)"
        )
    sources = {r.get("eventSource") for r in records}
    if sources == {"aws:sqs"}:
        ids = tuple(str(r["messageId"]) for r in records)
        groups = [(r.get("attributes") or {}).get("MessageGroupId") for r in records]
        queue_records = tuple(
            QueueRecord(i, str(r.get("receiptHandle", i)), 0, 0.0, 1, None, g)
            for i, r, g in zip(ids, records, groups, strict=True)
        )
        source: Source = "fifo" if any(g is not None for g in groups) else "sqs"
        return _EventBatch(source, Batch(1, 0, queue_records), ids)
    if sources == {"aws:kinesis"}:
        ids = tuple(str(r["kinesis"]["sequenceNumber"]) for r in records)
        stream_records = tuple(
            StreamRecord(0, int(i), str(r["kinesis"].get("partitionKey", "")), None, 0.0, 0)
            for i, r in zip(ids, records, strict=True)
        )
        return _EventBatch("kinesis", StreamBatch(1, 0, 0, stream_records), ids)
    raise ValueError(
        f"the event's records come from {sorted(map(str, sources))}: invoke reads the "
        "outcome of SQS ('aws:sqs') or Kinesis ('aws:kinesis') events, one source at a time"
    )


def _settle(
    target: _EventBatch, result: HandlerResult, report_batch_item_failures: bool
) -> Outcome:
    batch = target.batch
    if isinstance(batch, StreamBatch):
        outcome = invocation_outcome(
            result, batch, report_batch_item_failures=report_batch_item_failures,
            item_name=SEQUENCE_NUMBER,
        )
        _, settled = stream_settlement(batch, outcome)
        return Outcome(
            target.source, result, outcome, target.ids[:settled], target.ids[settled:],
            target.ids[settled - 1] if settled else None,
        )
    outcome = invocation_outcome(
        result, batch, report_batch_item_failures=report_batch_item_failures
    )
    rule = fifo_deletable if target.source == "fifo" else deletable
    gone = {r.message_id for r in rule(batch, outcome)}
    return Outcome(
        target.source, result, outcome,
        tuple(i for i in target.ids if i in gone),
        tuple(i for i in target.ids if i not in gone),
    )


async def ainvoke(
    handler: Handler,
    event: Any,
    context: Any = None,
    *,
    report_batch_item_failures: bool = False,
    timeout: float = 3.0,
    function_name: str = DEFAULT_FUNCTION,
) -> Outcome:
    """:func:`invoke`, awaited from a running event loop (an async test).

    An async handler runs on the caller's loop, a sync one on a worker thread.
    """
    target = _event_batch(event)
    config = FunctionConfig(function_name, timeout=min(900.0, max(1.0, float(timeout))))
    invoker = Invoker(handler, function=config, max_workers=1, timeout=timeout)
    try:
        if context is None:
            context = invoker.new_context()
        result = await invoker.invoke(event, context)
    finally:
        invoker.close(wait=False)
    return _settle(target, result, report_batch_item_failures)


def invoke(
    handler: Handler,
    event: Any,
    context: Any = None,
    *,
    report_batch_item_failures: bool = False,
    timeout: float = 3.0,
    function_name: str = DEFAULT_FUNCTION,
) -> Outcome:
    """Invoke ``handler`` once with ``event``, as the runtime does, and settle the batch.

    The handler runs through the runtime's invoker: a sync handler on a worker thread, an
    async one (or a sync one returning an awaitable) on an event loop, under ``timeout``;
    its return value is round-tripped through JSON as AWS's Python runtime does. Nothing
    the handler raises escapes: an exception, a ``sys.exit``, a timeout or a return value
    that cannot be serialized is a function error, reported in the :class:`Outcome` (and
    logged on the ``sluicegate.handler`` logger, as under ``sluicegate run``).

    Parameters:
        handler: ``handler(event, context)``, sync or async.
        event: an SQS, FIFO or Kinesis event (:func:`sqs_event`, :func:`fifo_event`,
            :func:`kinesis_event`, or one captured from AWS).
        context: what the handler gets as its context; :func:`lambda_context` with this
            ``timeout`` and ``function_name`` when omitted.
        report_batch_item_failures: read the response as a mapping with
            ``ReportBatchItemFailures`` does; without it the response is ignored (but a
            return value that cannot be serialized still fails the batch).
        timeout: seconds the invocation may run (fractions allowed, unlike Lambda's
            whole seconds from 1, so timeouts can be tested quickly). A sync handler that
            outlives it runs on in its thread and its result is discarded, as under the
            runtime.
        function_name: the function's name, in the context and the logs.

    Returns:
        The :class:`Outcome`.

    Raises:
        ValueError: ``event`` is not an SQS or Kinesis event.
        RuntimeError: called from a running event loop: ``await ainvoke(...)`` there.
    """
    _refuse_running_loop("invoke", "await ainvoke(...)")
    return asyncio.run(
        ainvoke(
            handler, event, context, report_batch_item_failures=report_batch_item_failures,
            timeout=timeout, function_name=function_name,
        )
    )


def _refuse_running_loop(what: str, instead: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(f"{what} cannot run inside a running event loop; use {instead}")


# --------------------------------------------------------------------------- virtual time


class VirtualClock:
    """A clock that moves only when told to: epoch seconds for stores and the runtime,
    elapsed seconds for an event loop (:class:`VirtualTimeLoop`).

    Parameters:
        start: the epoch seconds it reads at first (:data:`DEFAULT_START`); kept as the
            attribute ``start``, the reading at elapsed time 0 (setting :attr:`now`
            moves it).

    Calling it returns the current time in epoch seconds, so it can be passed wherever
    sluicegate takes a clock (``MemoryStore(clock=...)``, ``Runtime(clock=...)``); so does
    :attr:`now`, which can also be set, forwards or back, as a wall clock is set (the one
    clock for tests of code that reads epoch seconds: stores, metrics, contexts).

    Its elapsed time moves in steps of :data:`_RESOLUTION` (2**-20 s, about a
    microsecond; an advance is rounded up to a whole step): readings are then exact
    binary fractions, so ``(now + 20.0) - now`` is exactly ``20.0``, as code written for
    a clock that never stands still expects. With ``exact=True`` an advance adds exactly
    the seconds given instead, as a plain float clock does: for tests that compare
    readings with sums they write (``START + 31 + 10`` after advancing 1, 29.9 and 0.1
    seconds), which the rounding would miss by a step. A :class:`VirtualTimeLoop` (and
    so :class:`AppHarness`) wants the steps.
    """

    def __init__(self, start: float = DEFAULT_START, *, exact: bool = False) -> None:
        self.start = float(start)
        self.exact = exact
        self._elapsed = 0.0

    def __call__(self) -> float:
        return self.start + self._elapsed

    def __repr__(self) -> str:
        exact = ", exact=True" if self.exact else ""
        return f"VirtualClock(start={self.start!r}, elapsed={self._elapsed!r}{exact})"

    @property
    def elapsed(self) -> float:
        """Seconds the clock has moved since it started: what a :class:`VirtualTimeLoop`
        runs on, as a real loop runs on ``time.monotonic``. Only :meth:`advance` moves it."""
        return self._elapsed

    @property
    def now(self) -> float:
        """The current time in epoch seconds, as calling the clock returns it.

        Setting it sets the reading to that instant exactly, forwards or back, as NTP or
        an operator steps a wall clock: :attr:`start` moves so that the reading is the
        new value, and :attr:`elapsed` (the loop's monotonic time) does not move. For a
        test of what happens at an instant (``clock.now = message.visible_at``) or when
        the wall clock steps back; :meth:`advance` is for time that passes.
        """
        return self.start + self._elapsed

    @now.setter
    def now(self, value: float) -> None:
        if not math.isfinite(value):
            raise ValueError(f"a clock reads a finite time, not {value!r}")
        self.start = float(value) - self._elapsed

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward.

        Raises:
            ValueError: ``seconds`` is negative or not finite (a clock never goes back).
        """
        if not 0 <= seconds < float("inf"):
            raise ValueError(f"a clock moves forward: cannot advance by {seconds!r} seconds")
        if self.exact:
            self._elapsed += seconds
        else:
            self._elapsed = math.ceil((self._elapsed + seconds) * _STEPS) / _STEPS


class _JumpingSelector(selectors.BaseSelector):
    """The selector of a :class:`VirtualTimeLoop`: waits for I/O as the wrapped selector
    does, but where it would sleep until the loop's next timer with nothing to do, it
    moves the clock to that timer instead."""

    def __init__(self, clock: VirtualClock, may_jump: Callable[[], bool]) -> None:
        self._inner = selectors.DefaultSelector()
        self._clock = clock
        self._may_jump = may_jump

    def register(
        self, fileobj: Any, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._inner.get_map()

    def close(self) -> None:
        self._inner.close()

    def select(
        self, timeout: float | None = None
    ) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is not None and timeout <= 0:
            return self._inner.select(0)
        if timeout is not None and self._may_jump():
            events = self._inner.select(0)
            if not events:
                self._clock.advance(timeout + _JUMP_EPSILON)
            return events
        # Something runs outside the loop (a thread, a process): wait for it in real
        # time, and let virtual time run at least as fast.
        started = time.perf_counter()
        events = self._inner.select(timeout)
        self._clock.advance(time.perf_counter() - started)
        return events


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio event loop on a :class:`VirtualClock`.

    ``loop.time()`` is the clock's elapsed seconds, so ``asyncio.sleep``, timeouts and
    ``call_later`` run on virtual time. When no callback is ready and no I/O is pending,
    the clock jumps to the next timer at once, unless ``may_jump()`` says that something
    runs outside the loop (a sync handler's thread, a process): the loop then waits for
    it in real time, and the clock follows real time meanwhile.

    Parameters:
        clock: the clock to run on (a new :class:`VirtualClock` by default).
        may_jump: whether the clock may jump now; always, by default.
    """

    def __init__(
        self, clock: VirtualClock | None = None, *, may_jump: Callable[[], bool] | None = None
    ) -> None:
        self.clock = clock if clock is not None else VirtualClock()
        super().__init__(_JumpingSelector(self.clock, may_jump or (lambda: True)))

    def time(self) -> float:
        return self.clock.elapsed


# --------------------------------------------------------------------------- whole Apps


@dataclass(frozen=True)
class HarnessReport:
    """What a run of :meth:`AppHarness.run` did, and where every message the harness sent
    is now.

    Attributes:
        summary: the runtime's own summary of the run (per mapping: invocations, errors,
            throttles, messages deleted, peak concurrency); its ``elapsed`` is real time.
        elapsed: virtual seconds the run took.
        settled: the run ended because every mapped queue was empty and every mapped
            stream checkpointed to its end (not because ``max_time`` ran out).
        processed: per queue, the bodies sent by :meth:`AppHarness.send` that are gone
            from it: deleted after their batch succeeded (or filtered out by the mapping's
            filter criteria, which AWS deletes too). In send order.
        dead_lettered: per queue, the bodies it sent that are now in its dead-letter
            queue. In send order.
        remaining: per queue, the bodies it sent still in it (visible, delayed or in
            flight). In send order.
        checkpoints: per stream mapping, its checkpoint per shard index (the highest
            sequence number settled); shards never checkpointed are absent.
    """

    summary: RunSummary
    elapsed: float
    settled: bool
    processed: dict[str, tuple[str, ...]] = field(default_factory=dict)
    dead_lettered: dict[str, tuple[str, ...]] = field(default_factory=dict)
    remaining: dict[str, tuple[str, ...]] = field(default_factory=dict)
    checkpoints: dict[str, dict[int, int]] = field(default_factory=dict)

    def mapping(self, name: str) -> MappingSummary:
        """The summary of one mapping, by its name (``"orders->process"``) or, when only
        one mapping reads it, by its queue or stream's name.

        Raises:
            KeyError: no mapping, or several, go by that name.
        """
        found = [m for m in self.summary.mappings if m.name == name]
        if not found:
            found = [m for m in self.summary.mappings if m.name.split("->", 1)[0] == name]
        if len(found) != 1:
            known = ", ".join(m.name for m in self.summary.mappings) or "none"
            raise KeyError(f"{len(found)} mappings named or reading {name!r} (mappings: {known})")
        return found[0]

    @property
    def invocations(self) -> int:
        """Invocations of every mapping during the run."""
        return sum(m.invocations for m in self.summary.mappings)

    @property
    def errors(self) -> int:
        """Function errors (whole batches failed) of every mapping during the run."""
        return sum(m.errors for m in self.summary.mappings)


class AppHarness:
    """An App on a memory store and virtual time, for tests of the whole App.

    Sends messages and puts records into the App's queues and streams, then runs the real
    :class:`~sluicegate.runtime.driver.Runtime` on a :class:`VirtualTimeLoop` until
    everything is settled: a message that keeps failing reappears after its visibility
    timeout and is dead-lettered after ``max_receive_count`` receives in milliseconds of
    real time. State persists between calls: a second :meth:`run` serves what the first
    left, on the same clock.

    Use it as a context manager (or call :meth:`close`). Its methods are synchronous and
    drive their own event loop, so call them from plain (non-async) tests.

    Parameters:
        app: the App to run; its queues and streams are created in the store at once.
        clock: the virtual clock (a new :class:`VirtualClock` by default).
        seed: seed of the store's message ids, for reproducible ids; ``None``: random.

    Attributes:
        app, clock: as given.
        store: the :class:`~sluicegate.store.memory.MemoryStore`, for direct inspection.
        loop: the :class:`VirtualTimeLoop` everything runs on.

    Raises:
        RuntimeError: created or used inside a running event loop.
    """

    def __init__(
        self, app: App, *, clock: VirtualClock | None = None, seed: int | None = 0
    ) -> None:
        _refuse_running_loop("AppHarness", "a plain (non-async) test")
        self.app = app
        self.clock = clock if clock is not None else VirtualClock()
        self.store = MemoryStore(clock=self.clock, seed=seed)
        self._runtime: Runtime | None = None
        self._outside_loop = self._mappings_outside_loop()
        self.loop = VirtualTimeLoop(self.clock, may_jump=self._may_jump)
        self._sent: dict[str, dict[str, str]] = {}
        self._closed = False
        self._call(self.store.open())
        self._call(Runtime(app, self.store).prepare())

    def __repr__(self) -> str:
        return f"<AppHarness {self.app.name} at +{self.clock.elapsed:g}s>"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the store and the loop; the harness cannot be used afterwards."""
        if self._closed:
            return
        self._closed = True
        try:
            self.loop.run_until_complete(self.store.close())
        finally:
            self.loop.close()

    # ------------------------------------------------------------------ input
    def send(
        self,
        queue: str,
        *bodies: Body,
        group_id: str | None = None,
        deduplication_id: str | None = None,
        attributes: Mapping[str, Any] | None = None,
        delay_seconds: int | None = None,
    ) -> list[str]:
        """Send messages to one of the App's queues, as ``sluicegate send`` does.

        Parameters:
            queue: the queue's name.
            bodies: message bodies (``str``, ``bytes`` as UTF-8, anything else as JSON).
            group_id: a FIFO queue's message group (required there).
            deduplication_id: a FIFO queue's deduplication id of one message; without it
                the queue needs content-based deduplication.
            attributes: message attributes of every message.
            delay_seconds: delivery delay of a standard queue's messages.

        Returns:
            The message ids, in order (a FIFO duplicate gets the id of the message it
            repeats).

        Raises:
            QueueNotFound, InputError, MessageTooLarge: as the store's send.
        """
        entries = [
            SendEntry(_text(b), delay_seconds, attributes, group_id=group_id,
                      deduplication_id=deduplication_id)
            for b in bodies
        ]
        ids: list[str] = []
        sent = self._sent.setdefault(queue, {})
        for start in range(0, len(entries), 10):
            chunk = entries[start : start + 10]
            results = self._call(self.store.send_batch(queue, chunk))
            for entry, result in zip(chunk, results, strict=True):
                sent.setdefault(result.message_id, entry.body)
                ids.append(result.message_id)
        return ids

    def put(
        self, stream: str, *data: Body, partition_key: str = DEFAULT_PARTITION_KEY
    ) -> list[int]:
        """Put records into one of the App's streams.

        Parameters:
            stream: the stream's name.
            data: record payloads (``bytes`` as is, ``str`` as UTF-8, anything else as
                JSON).
            partition_key: the key of every record (it chooses the shard and the lane).

        Returns:
            The records' sequence numbers, in order.
        """
        entries = [PutEntry(partition_key, _data(d)) for d in data]
        results = self._call(self.store.put_records(stream, entries)) if entries else []
        return [r.sequence_number for r in results]

    def advance(self, seconds: float) -> None:
        """Move the virtual clock forward without running anything (to let delays,
        visibility timeouts or retention pass between runs)."""
        self.clock.advance(seconds)

    # ------------------------------------------------------------------ running
    def run(self, *, max_time: float = 3600.0) -> HarnessReport:
        """Run the App's mappings until every mapped queue is empty and every mapped
        stream is checkpointed to its end, or ``max_time`` virtual seconds passed.

        Parameters:
            max_time: longest run in virtual seconds (a handler that always fails on a
                queue without a dead-letter queue would otherwise run for ever).

        Returns:
            The :class:`HarnessReport`.
        """
        runtime = Runtime(self.app, self.store)
        started = self.clock.elapsed
        self._runtime = runtime
        try:
            summary = self._call(runtime.run(until_empty=True, duration=max_time))
        finally:
            self._runtime = None
        return self._report(summary, self.clock.elapsed - started)

    def take(self, queue: str) -> list[str]:
        """Receive and delete every visible message of a queue (an on-failure destination,
        a dead-letter queue, a queue a handler sends to).

        Returns:
            Their bodies, in the order received.
        """
        bodies: list[str] = []
        while True:
            messages = self._call(
                self.store.receive(queue, max_messages=10, visibility_timeout=30)
            )
            if not messages:
                return bodies
            bodies += [m.body for m in messages]
            self._call(self.store.delete_batch(queue, [m.receipt_handle for m in messages]))

    # ------------------------------------------------------------------ internals
    def _call(self, coro: Any) -> Any:
        if self._closed:
            coro.close()
            raise RuntimeError("this AppHarness is closed")
        _refuse_running_loop("AppHarness", "a plain (non-async) test")
        return self.loop.run_until_complete(coro)

    def _mappings_outside_loop(self) -> frozenset[str]:
        """Mappings whose handler runs outside the event loop: sync handlers (threads)
        and any handler in worker processes (``isolation="process"``), during whose
        invocations the clock must not jump. Async handlers of the in-process isolations
        run on the loop, on virtual time."""
        outside = set()
        configs: list[MappingConfig | StreamMappingConfig] = [
            *self.app.mappings, *self.app.stream_mappings
        ]
        for config in configs:
            function = self.app.functions[config.function]
            handler = function.handler
            on_loop = inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
                getattr(handler, "__call__", None)  # noqa: B004 - a coroutine __call__
            )
            if not on_loop or function.config.isolation == "process":
                outside.add(config.name)
        return frozenset(outside)

    def _may_jump(self) -> bool:
        runtime = self._runtime
        if runtime is None:
            return True
        metrics = runtime.metrics
        return not any(metrics.active(name) for name in self._outside_loop)

    def _report(self, summary: RunSummary, elapsed: float) -> HarnessReport:
        engine = self.store.engine
        held = {name: engine.message_ids(name) for name in self.app.queues}
        processed: dict[str, tuple[str, ...]] = {}
        dead: dict[str, tuple[str, ...]] = {}
        remaining: dict[str, tuple[str, ...]] = {}
        for queue, sent in self._sent.items():
            dlq = self.app.queues[queue].dead_letter_queue
            in_dlq = held.get(dlq, set()) if dlq is not None else set()
            in_queue = held.get(queue, set())
            processed[queue] = tuple(
                b for i, b in sent.items() if i not in in_queue and i not in in_dlq
            )
            dead[queue] = tuple(b for i, b in sent.items() if i in in_dlq)
            remaining[queue] = tuple(b for i, b in sent.items() if i in in_queue)
        checkpoints = {
            m.name: dict(self._call(self.store.get_checkpoints(m.name)))
            for m in self.app.stream_mappings
        }
        return HarnessReport(
            summary=summary,
            elapsed=elapsed,
            settled=summary.stopped_by in _SETTLED_REASONS,
            processed=processed,
            dead_lettered=dead,
            remaining=remaining,
            checkpoints=checkpoints,
        )
