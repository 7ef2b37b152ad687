"""Per-record handlers on top of AWS-style batch handlers, with partial batch responses.

A mapping with ``report_batch_item_failures=True`` calls its handler with a whole batch
and expects ``{"batchItemFailures": [{"itemIdentifier": ...}, ...]}`` back. Writing that
loop by hand is where ordering bugs creep in, so this module writes it once, for the three
kinds of source:

- standard queue (:func:`process_batch`): every record is processed; each failure is
  reported by its ``messageId``; the others are deleted.
- FIFO queue (:func:`process_fifo_batch`): order within a message group must hold, so a
  failure stops processing. By default (AWS's documented response) it stops *everything*:
  the failed record and every later record of the batch are reported. With
  ``skip_group_on_error=True`` only the failed record's group stops: its later records are
  reported without being processed, and the other groups go on.
- stream (:func:`process_batch` on a Kinesis-shaped event): processing stops at the first
  failure and its sequence number is reported; the mapping checkpoints just before it and
  retries from there, so the later records are not processed twice in this invocation.

Example::

    from sluicegate import App
    from sluicegate.partial import process_fifo_batch

    app = App()

    @app.function
    def handle(event, context):
        return process_fifo_batch(event, charge_card, skip_group_on_error=True)

The record handler receives one record of the event (the dict AWS would send) and fails by
raising. An ``async def`` record handler is awaited: use the ``aprocess_*`` functions from
an ``async def`` batch handler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

__all__ = [
    "aprocess_batch",
    "aprocess_fifo_batch",
    "item_identifier",
    "process_batch",
    "process_fifo_batch",
]

Record = Mapping[str, Any]
RecordHandler = Callable[[Record], Any]
AsyncRecordHandler = Callable[[Record], Awaitable[Any]]


def item_identifier(record: Record) -> str:
    """What ``itemIdentifier`` names ``record`` by: a queue message's ``messageId``, a
    stream record's ``kinesis.sequenceNumber``.

    Raises:
        ValueError: the record is neither.
    """
    if "messageId" in record:
        return str(record["messageId"])
    kinesis = record.get("kinesis")
    if isinstance(kinesis, Mapping) and "sequenceNumber" in kinesis:
        return str(kinesis["sequenceNumber"])
    raise ValueError("record has neither a messageId nor a kinesis.sequenceNumber")


def _is_stream(record: Record) -> bool:
    return "messageId" not in record and isinstance(record.get("kinesis"), Mapping)


def _group(record: Record) -> str | None:
    attributes = record.get("attributes")
    if isinstance(attributes, Mapping):
        group = attributes.get("MessageGroupId")
        return None if group is None else str(group)
    return None


def _records(event: Mapping[str, Any]) -> list[Record]:
    records = event.get("Records")
    if not isinstance(records, list):
        raise ValueError("event has no 'Records' list")
    return records


class _Plan:
    """Which records to run and which to report, decided record by record: the one
    place the three ordering rules live, shared by the sync and async loops."""

    def __init__(self, records: list[Record], *, fifo: bool, skip_group_on_error: bool):
        for record in records:  # refuse a malformed event before running anything
            item_identifier(record)
        self.records = records
        self.stream = bool(records) and _is_stream(records[0])
        self.fifo = fifo
        self.skip_group = skip_group_on_error
        self.failed: list[str] = []
        self.stopped = False
        self.blocked: set[str | None] = set()

    def should_run(self, record: Record) -> bool:
        """Whether to call the handler on ``record``; reports it as failed when not."""
        if self.stopped or (self.fifo and _group(record) in self.blocked):
            self.failed.append(item_identifier(record))
            return False
        return True

    def failure(self, record: Record) -> None:
        self.failed.append(item_identifier(record))
        if self.fifo:
            if self.skip_group:
                self.blocked.add(_group(record))
            else:
                self.stopped = True

    @property
    def done(self) -> bool:
        """A stream batch stops at its first failure: the mapping retries from its
        sequence number, so nothing after it is run or reported."""
        return self.stream and bool(self.failed)

    def to_run(self) -> Iterator[Record]:
        """The records to call the handler on, in order; the caller reports each failure
        with :meth:`failure` before taking the next."""
        for record in self.records:
            if self.done:
                return
            if self.should_run(record):
                yield record

    @property
    def response(self) -> dict[str, list[dict[str, str]]]:
        return {"batchItemFailures": [{"itemIdentifier": i} for i in self.failed]}


def _run(
    event: Mapping[str, Any], handler: RecordHandler, *, fifo: bool, skip_group: bool
) -> dict[str, list[dict[str, str]]]:
    plan = _Plan(_records(event), fifo=fifo, skip_group_on_error=skip_group)
    for record in plan.to_run():
        try:
            handler(record)
        except Exception:  # noqa: BLE001 - any exception fails the record, as in a handler
            plan.failure(record)
    return plan.response


async def _arun(
    event: Mapping[str, Any], handler: AsyncRecordHandler, *, fifo: bool, skip_group: bool
) -> dict[str, list[dict[str, str]]]:
    plan = _Plan(_records(event), fifo=fifo, skip_group_on_error=skip_group)
    for record in plan.to_run():
        try:
            await handler(record)
        except Exception:  # noqa: BLE001 - any exception fails the record, as in a handler
            plan.failure(record)
    return plan.response


def process_batch(
    event: Mapping[str, Any], handler: RecordHandler
) -> dict[str, list[dict[str, str]]]:
    """Run ``handler`` on every record of a standard-queue or stream event.

    Parameters:
        event: the event the batch handler received.
        handler: called with each record; a record fails when it raises.

    Returns:
        The partial batch response: every failed ``messageId`` (queue), or the first
        failed sequence number (stream: processing stops there).
    """
    return _run(event, handler, fifo=False, skip_group=False)


def process_fifo_batch(
    event: Mapping[str, Any], handler: RecordHandler, *, skip_group_on_error: bool = False
) -> dict[str, list[dict[str, str]]]:
    """Run ``handler`` on the records of a FIFO-queue event, keeping group order.

    Parameters:
        event: the event the batch handler received.
        handler: called with each record, in order; a record fails when it raises.
        skip_group_on_error: ``False`` (AWS's documented response): at the first failure,
            stop and report it and every later record. ``True``: stop only the failed
            record's message group; other groups are still processed.

    Returns:
        The partial batch response.
    """
    return _run(event, handler, fifo=True, skip_group=skip_group_on_error)


async def aprocess_batch(
    event: Mapping[str, Any], handler: AsyncRecordHandler
) -> dict[str, list[dict[str, str]]]:
    """:func:`process_batch` with an ``async def`` record handler."""
    return await _arun(event, handler, fifo=False, skip_group=False)


async def aprocess_fifo_batch(
    event: Mapping[str, Any], handler: AsyncRecordHandler, *, skip_group_on_error: bool = False
) -> dict[str, list[dict[str, str]]]:
    """:func:`process_fifo_batch` with an ``async def`` record handler."""
    return await _arun(event, handler, fifo=True, skip_group=skip_group_on_error)
