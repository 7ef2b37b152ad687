"""How an invocation's end settles its batch: function errors and the
ReportBatchItemFailures rules.

:func:`invocation_outcome` is the one rule every driver applies to how an invocation
ended (a :class:`InvocationResult`: timed out, raised, returned something that could not
be serialized, or returned a response): a timeout or an exception is a function error,
and so is a response the runtime cannot serialize to JSON (AWS's
``Runtime.MarshalError``: the invocation fails before any event source mapping sees a
response, whatever the mapping's options). A response that was returned is then read by
:func:`interpret_response`.

With ``report_batch_item_failures`` on, a handler returns
``{"batchItemFailures": [{"itemIdentifier": "<messageId>"}, ...]}`` to keep only the listed
messages; the others are deleted. The rules (Lambda developer guide, "Handling errors for
an SQS event source"; lambda-semantics.md section 4):

======================================================  ==========================
response                                                outcome
======================================================  ==========================
could not be serialized to JSON (option on or off)      ERROR (Runtime.MarshalError)
option off: any serializable response                   SUCCESS (response ignored)
``None`` (null response), ``b""`` (empty response)      SUCCESS
an object without ``batchItemFailures``, or with it     SUCCESS
``null`` or ``[]`` (empty response, empty/null list)
not an object or null (a list, a string, a number,      ERROR (invalid shape)
bytes that are not JSON)
``batchItemFailures`` not a list                        ERROR
an entry that is not an object, has no                  ERROR (whole batch failed)
``itemIdentifier`` key (bad key name), or whose
``itemIdentifier`` is null, ``""``, not a string, or
not a messageId of the batch
otherwise                                               PARTIAL: the listed ids fail
======================================================  ==========================

An ERROR's ``reason`` names what was wrong: the entry's position in
``batchItemFailures``, the offending identifier and why it was refused, so that a driver
can log one line a user can act on.

Two choices are sluicegate's where AWS says nothing:

- With the option off a serializable response is not looked at: AWS ignores the
  response entirely unless the mapping has ``ReportBatchItemFailures``. An unserializable
  one is not a response at all but a failed invocation, so it fails the batch either way.
- With the option on, a response that is neither an object nor null is a full failure:
  it cannot say which items failed, and failing keeps the messages (they reappear) where
  guessing success would delete messages the handler may not have processed.

A PARTIAL outcome that lists every id of the batch deletes nothing, like ERROR, but stays
PARTIAL: the handler did answer correctly, and scaling treats it as such.
"""

from __future__ import annotations

from typing import Any, Final, Protocol

from sluicegate.core.signals import TIMEOUT_REASON
from sluicegate.core.types import Batch, BatchOutcome, ItemBatch, OutcomeKind, QueueRecord

__all__ = [
    "INVALID_JSON",
    "MESSAGE_ID",
    "SUCCESS_OUTCOME",
    "InvocationResult",
    "deletable",
    "exception_outcome",
    "fifo_deletable",
    "interpret_response",
    "invocation_outcome",
    "timeout_outcome",
    "with_report",
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

MESSAGE_ID: Final = Batch.item_name
"""What a queue's ``itemIdentifier`` must be, as reasons name it (a stream's is a
sequence number: ``StreamBatch.item_name``)."""

_BATCH_ITEM_FAILURES: Final = "batchItemFailures"
_ITEM_IDENTIFIER: Final = "itemIdentifier"
_REPR_LIMIT = 80
"""Longest repr of an offending value quoted in a reason (sluicegate's choice: enough to
recognise it in a log line)."""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."


def _a(value: Any) -> str:
    """``"a str"``, ``"an int"``: the type of ``value`` with its article."""
    name = type(value).__name__
    return f"an {name}" if name[:1] in "aeiouAEIOU" else f"a {name}"


def _failure(batch: ItemBatch, reason: str) -> BatchOutcome:
    return BatchOutcome(OutcomeKind.ERROR, batch.message_ids, reason)


class InvocationResult(Protocol):
    """How one invocation ended, as a driver's invoker reports it (the runtime's
    :class:`~sluicegate.runtime.invoker.HandlerResult` is one).

    Attributes:
        response: the handler's return value after a JSON round trip; ``None`` when the
            invocation failed.
        invalid_json: the return value could not be serialized (``Runtime.MarshalError``).
        error: the exception the handler raised, if any.
        error_text: one line describing the failure; empty on success.
        timed_out: the handler ran past the function's timeout.
    """

    @property
    def response(self) -> Any: ...

    @property
    def invalid_json(self) -> bool: ...

    @property
    def error(self) -> BaseException | None: ...

    @property
    def error_text(self) -> str: ...

    @property
    def timed_out(self) -> bool: ...


def invocation_outcome(
    result: InvocationResult,
    batch: ItemBatch,
    *,
    report_batch_item_failures: bool,
    item_name: str | None = None,
) -> BatchOutcome:
    """Settle a batch from how its invocation ended: the rule every driver applies, for
    every source (a mapping's ``outcome_of`` calls it with its options).

    In order: a timeout is ERROR (:func:`timeout_outcome`), an exception is ERROR
    (:func:`exception_outcome`), a return value that could not be serialized is ERROR
    whatever the mapping's options (the runtime fails the invocation, as AWS's
    ``Runtime.MarshalError`` does), and a response is read by :func:`interpret_response`.

    Parameters:
        result: how the invocation ended.
        batch: the batch it was invoked with.
        report_batch_item_failures: whether the mapping honours ``batchItemFailures``.
        item_name: what an ``itemIdentifier`` must name, for reasons; default
            ``batch.item_name`` (``"messageId"``, or ``"sequence number"`` for a stream).

    Returns:
        SUCCESS, PARTIAL or ERROR (``reason`` says why), carrying what the handler
        reported (a result's ``latency`` and ``overload`` attributes, when it has them:
        see :class:`~sluicegate.core.types.BatchOutcome`).
    """
    if result.timed_out:
        outcome = timeout_outcome(batch)
    elif result.error is not None:
        outcome = exception_outcome(batch, result.error_text or type(result.error).__name__)
    elif result.invalid_json:
        outcome = _failure(batch, result.error_text or _NOT_SERIALIZABLE)
    else:
        outcome = interpret_response(
            result.response, batch, report_batch_item_failures=report_batch_item_failures,
            item_name=item_name,
        )
    latency = getattr(result, "latency", None)
    overload = getattr(result, "overload", False)
    if latency is not None or overload:
        outcome = with_report(outcome, latency, bool(overload))
    return outcome


def with_report(outcome: BatchOutcome, latency: float | None, overload: bool) -> BatchOutcome:
    """``outcome`` carrying a handler's report: the downstream ``latency`` it reported
    (seconds, or ``None``) and whether it reported ``overload``."""
    return BatchOutcome(outcome.kind, outcome.failed, outcome.reason, latency, overload)


_NOT_SERIALIZABLE: Final = "invalid response: not serializable to JSON (Runtime.MarshalError)"


def interpret_response(
    response: Any,
    batch: ItemBatch,
    *,
    report_batch_item_failures: bool,
    item_name: str | None = None,
) -> BatchOutcome:
    """Settle a batch from its handler's response (see the module table).

    Parameters:
        response: the handler's return value after a JSON round trip (``dict``, ``list``,
            ``str``, ``int``, ``float``, ``bool`` or ``None``; ``bytes`` that are not
            JSON, which the runtime passes through), or :data:`INVALID_JSON`.
        batch: the batch the handler was invoked with.
        report_batch_item_failures: whether the mapping honours ``batchItemFailures``.
        item_name: what an ``itemIdentifier`` must name, for reasons (default
            ``batch.item_name``).

    Returns:
        SUCCESS, PARTIAL (``failed`` = the listed ids) or ERROR (``failed`` = every id of
        the batch, ``reason`` says what was wrong with the response: for an entry of
        ``batchItemFailures``, its position, the identifier and why it was refused).
    """
    if response is INVALID_JSON:
        return _failure(batch, _NOT_SERIALIZABLE)
    if not report_batch_item_failures or response is None:
        return SUCCESS_OUTCOME
    if not isinstance(response, dict):
        if isinstance(response, (bytes, bytearray)):
            if not response:
                return SUCCESS_OUTCOME  # an empty response
            return _failure(batch, "invalid response: bytes that are not JSON")
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
        where = f"batchItemFailures[{position}]"
        if not isinstance(item, dict):
            return _failure(
                batch,
                f"invalid {where}: {_short(item)} is not an object ({_a(item)})",
            )
        if _ITEM_IDENTIFIER not in item:
            keys = ", ".join(_short(k) for k in list(item)[:5]) or "none"
            return _failure(
                batch, f"invalid {where}: no 'itemIdentifier' key (keys: {keys})"
            )
        identifier = item[_ITEM_IDENTIFIER]
        if identifier is None or identifier == "" or not isinstance(identifier, str):
            why = (
                "null" if identifier is None
                else "an empty string" if identifier == ""
                else f"{_a(identifier)}, not a string"
            )
            return _failure(
                batch, f"invalid itemIdentifier {_short(identifier)} at {where}: {why}"
            )
        if identifier not in ids:
            return _failure(
                batch,
                f"invalid itemIdentifier {_short(identifier)}: not a "
                f"{batch.item_name if item_name is None else item_name} of the batch",
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
    return _failure(batch, TIMEOUT_REASON)


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
