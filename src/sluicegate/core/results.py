"""How an invocation's result settles its batch: the ReportBatchItemFailures rules.

With ``report_batch_item_failures`` on, a handler returns
``{"batchItemFailures": [{"itemIdentifier": "<messageId>"}, ...]}`` to keep only the listed
messages; the others are deleted. The rules (Lambda developer guide, "Handling errors for
an SQS event source"; lambda-semantics.md section 4):

======================================================  ==========================
response                                                outcome
======================================================  ==========================
option off: anything at all (even unserializable)       SUCCESS (response ignored)
``None`` (null response)                                SUCCESS
an object without ``batchItemFailures``, or with it     SUCCESS
``null`` or ``[]`` (empty response, empty/null list)
the return value could not be serialized to JSON        ERROR (invalid JSON)
not an object or null (a list, a string, a number)      ERROR (invalid shape)
``batchItemFailures`` not a list                        ERROR
an entry that is not an object, has no                  ERROR (whole batch failed)
``itemIdentifier`` key (bad key name), or whose
``itemIdentifier`` is null, ``""``, not a string, or
not a messageId of the batch
otherwise                                               PARTIAL: the listed ids fail
======================================================  ==========================

Two choices are sluicegate's where AWS says nothing:

- With the option off the response is not looked at, so even a value that cannot be
  serialized is a success: AWS ignores the response entirely unless the mapping has
  ``ReportBatchItemFailures``.
- With the option on, a response that is neither an object nor null is a full failure:
  it cannot say which items failed, and failing keeps the messages (they reappear) where
  guessing success would delete messages the handler may not have processed.

A PARTIAL outcome that lists every id of the batch deletes nothing, like ERROR, but stays
PARTIAL: the handler did answer correctly, and scaling treats it as such.
"""

from __future__ import annotations

from typing import Any, Final

from sluicegate.core.types import Batch, BatchOutcome, ItemBatch, OutcomeKind, QueueRecord

__all__ = [
    "INVALID_JSON",
    "SUCCESS_OUTCOME",
    "deletable",
    "exception_outcome",
    "fifo_deletable",
    "interpret_response",
    "timeout_outcome",
]


class _InvalidJson:
    """Type of :data:`INVALID_JSON`; pickling and copying give back the one instance."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "INVALID_JSON"

    def __reduce__(self) -> str:
        return "INVALID_JSON"


INVALID_JSON: Final = _InvalidJson()
"""What a driver passes as ``response`` when the handler's return value could not be
serialized to JSON (AWS: "invalid JSON response")."""

SUCCESS_OUTCOME: Final = BatchOutcome(OutcomeKind.SUCCESS)
"""The one SUCCESS outcome, shared so that settling a success allocates nothing."""

_BATCH_ITEM_FAILURES: Final = "batchItemFailures"
_ITEM_IDENTIFIER: Final = "itemIdentifier"
_REPR_LIMIT = 80
"""Longest repr of an offending value quoted in a reason (sluicegate's choice: enough to
recognise it in a log line)."""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."


def _failure(batch: ItemBatch, reason: str) -> BatchOutcome:
    return BatchOutcome(OutcomeKind.ERROR, batch.message_ids, reason)


def interpret_response(
    response: Any, batch: ItemBatch, *, report_batch_item_failures: bool
) -> BatchOutcome:
    """Settle a batch from its handler's response (see the module table).

    Parameters:
        response: the handler's return value after a JSON round trip (``dict``, ``list``,
            ``str``, ``int``, ``float``, ``bool`` or ``None``), or :data:`INVALID_JSON`.
        batch: the batch the handler was invoked with.
        report_batch_item_failures: whether the mapping honours ``batchItemFailures``.

    Returns:
        SUCCESS, PARTIAL (``failed`` = the listed ids) or ERROR (``failed`` = every id of
        the batch, ``reason`` says what was wrong with the response).
    """
    if not report_batch_item_failures or response is None:
        return SUCCESS_OUTCOME
    if response is INVALID_JSON:
        return _failure(batch, "invalid response: not serializable to JSON")
    if not isinstance(response, dict):
        return _failure(
            batch,
            f"invalid response: expected an object or null, got {type(response).__name__}",
        )
    failures = response.get(_BATCH_ITEM_FAILURES)
    if failures is None:
        return SUCCESS_OUTCOME
    if not isinstance(failures, list):
        return _failure(
            batch,
            f"invalid response: batchItemFailures is {type(failures).__name__}, not a list",
        )
    if not failures:
        return SUCCESS_OUTCOME
    ids = batch.message_ids
    failed: set[str] = set()
    for position, item in enumerate(failures):
        if not isinstance(item, dict):
            return _failure(
                batch, f"invalid batchItemFailures[{position}]: {_short(item)} is not an object"
            )
        if _ITEM_IDENTIFIER not in item:
            return _failure(
                batch, f"invalid batchItemFailures[{position}]: no 'itemIdentifier' key"
            )
        identifier = item[_ITEM_IDENTIFIER]
        if not isinstance(identifier, str) or not identifier:
            return _failure(
                batch, f"invalid itemIdentifier {_short(identifier)} at position {position}"
            )
        if identifier not in ids:
            return _failure(
                batch, f"invalid itemIdentifier {_short(identifier)}: not a messageId of the batch"
            )
        failed.add(identifier)
    return BatchOutcome(
        OutcomeKind.PARTIAL,
        frozenset(failed),
        f"{len(failed)} of {len(ids)} items reported as failed",
    )


def exception_outcome(batch: ItemBatch, description: str) -> BatchOutcome:
    """The outcome of a handler that raised.

    Parameters:
        batch: the batch it was invoked with.
        description: the exception as text, e.g. ``"ValueError: bad order"``.

    Returns:
        ERROR with every id failed and reason ``"exception: <description>"``.
    """
    return _failure(batch, f"exception: {description}")


def timeout_outcome(batch: ItemBatch) -> BatchOutcome:
    """The outcome of an invocation that ran past the function's timeout.

    Returns:
        ERROR with every id failed and reason ``"timeout"``.
    """
    return _failure(batch, "timeout")


def deletable(batch: Batch, outcome: BatchOutcome) -> tuple[QueueRecord, ...]:
    """The records of ``batch`` to delete from the queue after ``outcome``.

    Parameters:
        batch: the invoked batch.
        outcome: how its invocation settled.

    Returns:
        Every record for SUCCESS, the records not listed in ``outcome.failed`` for
        PARTIAL, none for ERROR; in the batch's order.
    """
    kind = outcome.kind
    if kind is OutcomeKind.SUCCESS:
        return batch.records
    if kind is OutcomeKind.ERROR:
        return ()
    failed = outcome.failed
    return tuple([r for r in batch.records if r.message_id not in failed])


def fifo_deletable(batch: Batch, outcome: BatchOutcome) -> tuple[QueueRecord, ...]:
    """The records of a FIFO queue's ``batch`` to delete after ``outcome``.

    As :func:`deletable`, except after a partial failure: within each message group, the
    records before the group's first failed record are deleted and that record and every
    later record of its group are kept, so they are all retried, in order, before anything
    newer of the group is received (lambda-semantics.md section 5). Deleting a later record
    that the handler reported as done would let it overtake the failed one.

    Parameters:
        batch: the invoked batch, in the queue's order (groups may be interleaved).
        outcome: how its invocation settled.

    Returns:
        The records to delete, in the batch's order.
    """
    kind = outcome.kind
    if kind is OutcomeKind.SUCCESS:
        return batch.records
    if kind is OutcomeKind.ERROR:
        return ()
    failed = outcome.failed
    blocked: set[str | None] = set()
    keep: list[QueueRecord] = []
    for record in batch.records:
        group = record.group_id
        if group in blocked:
            continue
        if record.message_id in failed:
            blocked.add(group)
            continue
        keep.append(record)
    return tuple(keep)
