"""AWS-shaped invocation payloads and context objects.

A handler written for AWS Lambda receives two arguments: an event (for an SQS event
source mapping, ``{"Records": [...]}``) and a context object. This module builds both
the way AWS does, so that an unmodified handler (including one built on
aws-lambda-powertools' batch utilities) runs under sluicegate.

Record shape: the "Example standard queue message event" of the Lambda developer guide
(``with-sqs``), with keys in the same order. ``md5OfMessageAttributes`` is not emitted:
the guide's example omits it, and nothing in the mapping semantics depends on it.

ARNs: queues and functions get ARNs in an AWS region and account. Both default to
:data:`DEFAULT_REGION` and :data:`DEFAULT_ACCOUNT_ID` and may be set through the
environment variables :data:`REGION_ENV` and :data:`ACCOUNT_ID_ENV`, which are read when
:func:`default_region` / :func:`default_account_id` are called, never at import.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sluicegate.core.async_events import TOPIC_ATTRIBUTE
from sluicegate.core.config import FunctionConfig
from sluicegate.core.streams import iso_instant
from sluicegate.errors import ConfigError
from sluicegate.store.base import Message, new_message_id

__all__ = [
    "ACCOUNT_ID_ENV",
    "ATTRIBUTE_SKELETON_BYTES",
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_MEMORY_MB",
    "DEFAULT_REGION",
    "DEFAULT_TIMEOUT",
    "EVENT_ENVELOPE_BYTES",
    "FUNCTION_VERSION",
    "RECORD_SKELETON_BYTES",
    "REGION_ENV",
    "SQS_EVENT_SOURCE",
    "LambdaContext",
    "aws_identity",
    "default_account_id",
    "default_region",
    "function_arn",
    "new_log_stream_name",
    "queue_arn",
    "record_size",
    "record_sizes",
    "sqs_event",
    "sqs_record",
]

DEFAULT_REGION = "us-east-1"
"""Region of every ARN and of ``awsRegion`` when neither an argument nor
:data:`REGION_ENV` says otherwise."""

DEFAULT_ACCOUNT_ID = "000000000000"
"""Twelve-digit account id of every ARN when neither an argument nor
:data:`ACCOUNT_ID_ENV` says otherwise (the placeholder local AWS emulators use)."""

REGION_ENV = "SLUICEGATE_REGION"
"""Environment variable overriding :data:`DEFAULT_REGION`."""

ACCOUNT_ID_ENV = "SLUICEGATE_ACCOUNT_ID"
"""Environment variable overriding :data:`DEFAULT_ACCOUNT_ID`."""

SQS_EVENT_SOURCE = "aws:sqs"
"""``eventSource`` of every SQS record."""

FUNCTION_VERSION = "$LATEST"
"""``context.function_version``: sluicegate has no published versions."""

_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z0-9]+)+-\d+$")
_ACCOUNT_RE = re.compile(r"^\d{12}$")


# --------------------------------------------------------------------------- ARNs


def default_region() -> str:
    """The region to use when none is given: ``$SLUICEGATE_REGION`` or ``us-east-1``.

    Returns:
        A region name such as ``"eu-west-1"``.

    Raises:
        ConfigError: the environment variable is set to something that is not a region
            name (lowercase, ``xx-name-N``).
    """
    value = os.environ.get(REGION_ENV)
    if not value:
        return DEFAULT_REGION
    if not _REGION_RE.match(value):
        raise ConfigError(REGION_ENV, value, "a region name such as 'eu-west-1'", "environment")
    return value


def default_account_id() -> str:
    """The account id to use when none is given: ``$SLUICEGATE_ACCOUNT_ID`` or 12 zeros.

    Returns:
        A string of 12 digits.

    Raises:
        ConfigError: the environment variable is set to something other than 12 digits.
    """
    value = os.environ.get(ACCOUNT_ID_ENV)
    if not value:
        return DEFAULT_ACCOUNT_ID
    if not _ACCOUNT_RE.match(value):
        raise ConfigError(ACCOUNT_ID_ENV, value, "12 digits", "environment")
    return value


def aws_identity() -> tuple[str, str]:
    """The default region and account id, read from the environment now.

    Returns:
        ``(default_region(), default_account_id())``.

    Raises:
        ConfigError: the environment holds an invalid region or account id.
    """
    return default_region(), default_account_id()


def queue_arn(name: str, *, region: str | None = None, account_id: str | None = None) -> str:
    """The ARN of queue ``name``: ``arn:aws:sqs:{region}:{account_id}:{name}``.

    Parameters:
        name: the queue's name.
        region: defaults to :func:`default_region`.
        account_id: defaults to :func:`default_account_id`.

    Returns:
        The ARN, as an event record's ``eventSourceARN``.

    Raises:
        ConfigError: a default was needed and the environment holds an invalid one.
    """
    region = region or default_region()
    account_id = account_id or default_account_id()
    return f"arn:aws:sqs:{region}:{account_id}:{name}"


def function_arn(name: str, *, region: str | None = None, account_id: str | None = None) -> str:
    """The ARN of function ``name``: ``arn:aws:lambda:{region}:{account_id}:function:{name}``.

    Parameters:
        name: the function's name.
        region: defaults to :func:`default_region`.
        account_id: defaults to :func:`default_account_id`.

    Returns:
        The unqualified function ARN, as ``context.invoked_function_arn``.

    Raises:
        ConfigError: a default was needed and the environment holds an invalid one.
    """
    region = region or default_region()
    account_id = account_id or default_account_id()
    return f"arn:aws:lambda:{region}:{account_id}:function:{name}"


def topic_arn(name: str, *, region: str | None = None, account_id: str | None = None) -> str:
    """The ARN of topic ``name``: ``arn:aws:sns:{region}:{account_id}:{name}``."""
    region = region or default_region()
    account_id = account_id or default_account_id()
    return f"arn:aws:sns:{region}:{account_id}:{name}"


SNS_EVENT_SOURCE = "aws:sns"


def sns_event(message: Message, *, topic: str, function: str, region: str,
              account_id: str) -> dict[str, Any]:
    """The event a function subscribed to ``topic`` receives for one published message
    (SNS's event for Lambda): one record, the message's text in ``Sns.Message``, its
    attributes as SNS's ``{"Type", "Value"}``. ``Signature`` and the two URLs are
    placeholders (nothing signs sluicegate's notifications); ``Subject`` is ``None`` (a
    publish has none)."""
    arn = topic_arn(topic, region=region, account_id=account_id)
    attributes = {
        name: {"Type": value["DataType"],
               "Value": value.get("StringValue", value.get("BinaryValue", ""))}
        for name, value in message.attributes.items() if name != TOPIC_ATTRIBUTE
    }
    return {"Records": [{
        "EventSource": SNS_EVENT_SOURCE,
        "EventVersion": "1.0",
        "EventSubscriptionArn": f"{arn}:{function}",
        "Sns": {
            "Type": "Notification",
            "MessageId": message.message_id,
            "TopicArn": arn,
            "Subject": None,
            "Message": message.body,
            "Timestamp": iso_instant(message.sent_timestamp),
            "SignatureVersion": "1",
            "Signature": "",
            "SigningCertUrl": "",
            "UnsubscribeUrl": "",
            "MessageAttributes": attributes,
        },
    }]}


# --------------------------------------------------------------------------- records


def _epoch_ms(seconds: float) -> str:
    """Epoch seconds as the decimal string of whole epoch milliseconds SQS reports."""
    return str(int(seconds * 1000))


_THIRTEEN_DIGITS = (1_000_000_000.0, 10_000_000_000.0)
"""Epoch seconds whose millisecond form has 13 digits: September 2001 to November 2286."""


def _event_attributes(attributes: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, Any]]:
    """Message attributes from the SQS API's shape to the Lambda event's.

    ``{"DataType": "String", "StringValue": "v"}`` becomes ``{"stringValue": "v",
    "stringListValues": [], "binaryListValues": [], "dataType": "String"}``; a Binary
    attribute carries ``binaryValue`` (base64 text) in place of ``stringValue``.
    """
    out: dict[str, dict[str, Any]] = {}
    for name, value in attributes.items():
        binary = value.get("BinaryValue")
        if binary is not None:
            out[name] = {
                "binaryValue": binary,
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value["DataType"],
            }
        else:
            out[name] = {
                "stringValue": value["StringValue"],
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value["DataType"],
            }
    return out


def sqs_record(message: Message, *, queue_arn: str, region: str) -> dict[str, Any]:
    """One record of an SQS event, as Lambda's event source mapping builds it.

    Every call builds new dicts, so a handler may mutate its event freely.

    Parameters:
        message: a message as a store's receive returns it.
        queue_arn: the source queue's ARN (``eventSourceARN``); see :func:`queue_arn`.
        region: ``awsRegion``.

    Returns:
        ``{"messageId", "receiptHandle", "body", "attributes": {"ApproximateReceiveCount",
        "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"},
        "messageAttributes", "md5OfBody", "eventSource", "eventSourceARN", "awsRegion"}``,
        in that order. Counts and timestamps are strings, timestamps in epoch milliseconds.
    """
    return sqs_event((message,), queue_arn=queue_arn, region=region)["Records"][0]


def sqs_event(
    messages: Iterable[Message], *, queue_arn: str, region: str
) -> dict[str, list[dict[str, Any]]]:
    """The event of one invocation: ``{"Records": [record, ...]}`` in the given order.

    Parameters:
        messages: the batch's messages.
        queue_arn: the source queue's ARN.
        region: ``awsRegion`` of every record.

    Returns:
        The event dict; see :func:`sqs_record` for a record's shape.
    """
    # The records are built here, not by a call to sqs_record each: a tenth less time
    # per record, once per message delivered.
    messages = list(messages)
    if any(m.group_id is not None for m in messages):
        return {"Records": [_fifo_record(m, queue_arn, region) for m in messages]}
    return {
        "Records": [
            {
                "messageId": m.message_id,
                "receiptHandle": m.receipt_handle,
                "body": m.body,
                "attributes": {
                    "ApproximateReceiveCount": str(m.receive_count),
                    "SentTimestamp": str(int(m.sent_timestamp * 1000)),  # _epoch_ms, inline
                    "SenderId": m.sender_id,
                    "ApproximateFirstReceiveTimestamp": str(int(m.first_receive_timestamp * 1000)),
                },
                "messageAttributes": _event_attributes(m.attributes) if m.attributes else {},
                "md5OfBody": m.md5_of_body,
                "eventSource": SQS_EVENT_SOURCE,
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


def _fifo_record(m: Message, queue_arn: str, region: str) -> dict[str, Any]:
    """A FIFO queue's record: the standard one with ``SequenceNumber``,
    ``MessageGroupId`` and ``MessageDeduplicationId`` among its attributes, in the order
    of the Lambda developer guide's FIFO example."""
    (record,) = sqs_event((_standard(m),), queue_arn=queue_arn, region=region)["Records"]
    standard = record["attributes"]
    record["attributes"] = {
        "ApproximateReceiveCount": standard["ApproximateReceiveCount"],
        "SentTimestamp": standard["SentTimestamp"],
        "SequenceNumber": m.sequence_number,
        "MessageGroupId": m.group_id,
        "SenderId": standard["SenderId"],
        "MessageDeduplicationId": m.deduplication_id,
        "ApproximateFirstReceiveTimestamp": standard["ApproximateFirstReceiveTimestamp"],
    }
    return record


def _standard(m: Message) -> Message:
    """``m`` without its FIFO ids, so :func:`sqs_event` builds the standard shape."""
    return dataclasses.replace(m, group_id=None, deduplication_id=None, sequence_number=None)


# --------------------------------------------------------------------------- sizes

_encode_json_string: Callable[[str], str] = json.encoder.encode_basestring


def _json_len(text: str) -> int:
    """UTF-8 bytes of ``text`` inside a JSON string literal, without the quotes.

    Counts escapes (``\\"``, ``\\\\``, control characters); non-ASCII characters are
    counted as their UTF-8 bytes, not as ``\\uXXXX`` escapes.
    """
    if text.isascii():
        # The common case (ids, handles, ARNs, most bodies, JSON ones included): in
        # printable ASCII only a quote or a backslash is escaped, by one more character;
        # counting them runs at C speed and builds nothing.
        if text.isprintable():
            return len(text) + text.count('"') + text.count("\\")
        return len(_encode_json_string(text)) - 2
    return len(_encode_json_string(text).encode("utf-8", "surrogatepass")) - 2


def _compact_json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


_EMPTY_MESSAGE = Message(
    message_id="",
    receipt_handle="",
    body="",
    md5_of_body="",
    attributes={},
    sent_timestamp=0.0,
    first_receive_timestamp=0.0,
    receive_count=0,
    sender_id="",
    visible_at=0.0,
)

RECORD_SKELETON_BYTES = (
    _compact_json_size(sqs_record(_EMPTY_MESSAGE, queue_arn="", region=""))
    - 3  # the three one-digit numbers rendered for the empty message ("0")
    - 2  # the empty ``messageAttributes`` object "{}", counted per record below
)
"""Compact-JSON bytes of a record whose every variable string is empty, without its
``messageAttributes`` value: the fixed metadata every record adds to a payload."""

ATTRIBUTE_SKELETON_BYTES = (
    _compact_json_size(_event_attributes({"": {"DataType": "", "StringValue": ""}})) - 2
)
"""Compact-JSON bytes of one message attribute entry with empty name, value and data type
(``binaryValue`` and ``stringValue`` are the same length), without the enclosing braces."""

FIFO_ATTRIBUTE_BYTES = len(',"SequenceNumber":"","MessageGroupId":"","MessageDeduplicationId":""')
"""Bytes the three FIFO attributes add to a record besides their values."""

EVENT_ENVELOPE_BYTES = len('{"Records":[]}')
"""Bytes of ``{"Records":[]}`` around the records of an event."""


@functools.lru_cache(maxsize=256)
def _static_bytes(queue_arn: str, region: str) -> int:
    """Bytes every record of one queue and region carries whatever its message: the
    skeleton, the separating comma, the ARN, the region and the braces of
    ``messageAttributes``."""
    return RECORD_SKELETON_BYTES + 1 + _json_len(queue_arn) + _json_len(region) + 2


def record_size(
    message: Message, *, queue_arn: str | None = None, region: str | None = None
) -> int:
    """Bytes the record of ``message`` adds to an invocation payload (for the 6 MB cap).

    The count is the record's compact JSON (``separators=(",", ":")``, UTF-8, non-ASCII
    not escaped) plus one byte for the comma separating it from the next record, so the
    event of a batch is at most ``EVENT_ENVELOPE_BYTES + sum(record_size(m) ...)`` bytes
    (exactly one byte less). It is computed without serializing: the fixed metadata is
    the constant :data:`RECORD_SKELETON_BYTES`, measured once at import, and only the
    variable strings are measured. The cost is linear in the body length (a C-speed scan
    for characters JSON escapes).

    Parameters:
        message: the received message.
        queue_arn: the ARN the record will carry; when omitted, the ARN of
            ``message.queue`` in the default region and account.
        region: the region the record will carry; :func:`default_region` when omitted.

    Returns:
        Bytes, a positive int.
    """
    if region is None:
        region = default_region()
    if queue_arn is None:
        queue_arn = f"arn:aws:sqs:{region}:{default_account_id()}:{message.queue}"
    return record_sizes([message], queue_arn=queue_arn, region=region)[0]


def record_sizes(messages: Iterable[Message], *, queue_arn: str, region: str) -> list[int]:
    """:func:`record_size` of each message of one queue, in order; what a driver calls
    once per receive.

    The strings a record carries whole (message id, receipt handle, body, sender id) are
    measured as one: JSON escapes each character on its own, so the escaped length of
    their concatenation is the sum of theirs, and one scan costs less than four.

    Parameters:
        messages: received messages.
        queue_arn: the ARN their records will carry.
        region: the region their records will carry.

    Returns:
        Bytes per message.
    """
    static = _static_bytes(queue_arn, region)
    low, high = _THIRTEEN_DIGITS
    sizes = []
    for m in messages:
        count = m.receive_count
        sent = m.sent_timestamp
        first = m.first_receive_timestamp
        size = (
            static
            + _json_len(m.message_id + m.receipt_handle + m.body + m.sender_id)
            + len(m.md5_of_body)
            + (1 if 0 <= count < 10 else len(str(count)))
            + (13 if low <= sent < high else len(_epoch_ms(sent)))
            + (13 if low <= first < high else len(_epoch_ms(first)))
        )
        if m.group_id is not None:
            size += (
                FIFO_ATTRIBUTE_BYTES
                + _json_len(m.group_id)
                + _json_len(m.deduplication_id or "")
                + len(m.sequence_number or "")
            )
        attributes = m.attributes
        if attributes:
            size += (ATTRIBUTE_SKELETON_BYTES + 1) * len(attributes) - 1
            for name, value in attributes.items():
                text = value.get("BinaryValue")
                if text is None:
                    text = value["StringValue"]
                size += _json_len(name) + _json_len(value["DataType"]) + _json_len(text)
        sizes.append(size)
    return sizes


# --------------------------------------------------------------------------- context

DEFAULT_MEMORY_MB = 128
"""``memory_limit_in_mb`` of a context built without a memory size (Lambda's default)."""

DEFAULT_TIMEOUT = 3.0
"""Seconds to the deadline of a context built without a deadline or timeout (Lambda's
default function timeout)."""


class LambdaContext:
    """The context object a handler receives as its second argument.

    It carries the attributes of the AWS Python runtime's context. ``memory_limit_in_mb``
    is a **string** of digits (``"128"``) because the AWS runtime reads it from the
    environment variable ``AWS_LAMBDA_FUNCTION_MEMORY_SIZE`` unconverted: code that runs on
    AWS therefore already copes with a string, and ``int(context.memory_limit_in_mb)``
    works in both places. aws-lambda-powertools only copies the value into its logs.

    Parameters:
        function_name: the function's name.
        memory_limit_in_mb: memory size in MB (stored as its decimal string).
        invoked_function_arn: the ARN the function was invoked with; when omitted, the
            function's unqualified ARN in ``region`` and ``account_id``.
        region, account_id: used only to build the ARN; the defaults when omitted.
        deadline: the time, on ``clock``'s scale, at which the invocation times out.
        timeout: alternatively, seconds from now (``clock()``) to the deadline. Give one
            of ``deadline`` and ``timeout``; with neither, the deadline is
            :data:`DEFAULT_TIMEOUT` seconds from now.
        clock: a monotonic clock in seconds (default :func:`time.monotonic`), the same
            one ``deadline`` was computed from.
        aws_request_id: the invocation's id; a new random version-4 UUID string when
            omitted.
        log_stream_name: the log stream; when omitted, one stream per function name and
            version for the whole process (as one long-lived execution environment), named
            in AWS's ``YYYY/MM/DD/[$LATEST]<32 hex>`` form on first use. A driver that
            models execution environments may pass one per environment.
        function_version: ``"$LATEST"`` unless given.

    Attributes:
        function_name, function_version, invoked_function_arn, memory_limit_in_mb,
        aws_request_id, log_group_name (``/aws/lambda/{function_name}``),
        log_stream_name, identity (``None``), client_context (``None``), tenant_id
        (``None``), limits (sluicegate's live limits: ``context.limits.mapping`` and
        ``context.limits.function``, see :mod:`sluicegate.runtime.live`).
        reported_latency: the largest downstream latency reported with :meth:`report`,
            in seconds; ``None`` before any.
        reported_overload: whether :meth:`report` was called with ``overload=True``.

    Raises:
        ValueError: both ``deadline`` and ``timeout`` were given.
        ConfigError: a default region or account id was needed and the environment holds
            an invalid one.
    """

    def __init__(
        self,
        *,
        function_name: str,
        memory_limit_in_mb: int | str = DEFAULT_MEMORY_MB,
        invoked_function_arn: str | None = None,
        region: str | None = None,
        account_id: str | None = None,
        deadline: float | None = None,
        timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        aws_request_id: str | None = None,
        log_stream_name: str | None = None,
        function_version: str = FUNCTION_VERSION,
    ) -> None:
        if deadline is None:
            deadline = clock() + (DEFAULT_TIMEOUT if timeout is None else timeout)
        elif timeout is not None:
            raise ValueError("give a LambdaContext either a deadline or a timeout, not both")
        self.function_name = function_name
        self.function_version = function_version
        self.invoked_function_arn = invoked_function_arn or function_arn(
            function_name, region=region, account_id=account_id
        )
        self.memory_limit_in_mb = str(memory_limit_in_mb)
        self.aws_request_id = aws_request_id or new_message_id()
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = log_stream_name or _process_log_stream(
            function_name, function_version
        )
        self.identity: Any = None
        self.client_context: Any = None
        self.tenant_id: str | None = None
        self.limits: Any = None
        """The live limits of the invocation's mapping and function
        (:class:`~sluicegate.runtime.live.Limits`), set by the runtime; ``None`` for a
        context built by hand."""
        self._deadline = deadline
        self._clock = clock
        self._sluicegate: Any = None
        """The runtime's semaphores and task tokens for this invocation
        (:class:`~sluicegate.runtime.semaphores.InvocationTools`), set by the runtime."""
        self._sluicegate_fields: Any = None
        """In an execution environment of another process: what its tools are built from
        on first use (:class:`~sluicegate.runtime.semaphores.ChildTools`)."""
        self.reported_latency: float | None = None
        self.reported_overload = False

    @classmethod
    def for_function(
        cls,
        function: FunctionConfig,
        *,
        timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        region: str | None = None,
        account_id: str | None = None,
        aws_request_id: str | None = None,
        log_stream_name: str | None = None,
    ) -> LambdaContext:
        """A context for one invocation of ``function`` starting now.

        Parameters:
            function: the function's configuration (name, memory size, timeout).
            timeout: seconds until the deadline; ``function.timeout`` when omitted.
            clock: the monotonic clock the deadline is measured on.
            region, account_id: of the function's ARN; the defaults when omitted.
            aws_request_id, log_stream_name: as in the constructor.

        Returns:
            A context whose deadline is ``clock() + timeout``.

        Raises:
            ConfigError: a default region or account id was needed and the environment
                holds an invalid one.
        """
        limit = function.timeout if timeout is None else timeout
        return cls(
            function_name=function.name,
            invoked_function_arn=function_arn(function.name, region=region, account_id=account_id),
            memory_limit_in_mb=function.memory_size,
            deadline=clock() + limit,
            clock=clock,
            aws_request_id=aws_request_id,
            log_stream_name=log_stream_name,
        )

    @property
    def deadline(self) -> float:
        """When the invocation times out, in seconds on the context's clock."""
        return self._deadline

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the invocation times out; never below 0.

        Returns:
            Whole milliseconds (truncated), as the AWS runtime returns them.
        """
        # The epsilon keeps float noise (0.29999... s) from costing a whole millisecond.
        remaining = int((self._deadline - self._clock()) * 1000 + 1e-6)
        return max(0, remaining)

    # ------------------------------------------------------------------ semaphores, task tokens
    def semaphore(self, name: str, timeout: float | None = None) -> Any:
        """A slot of the App's semaphore ``name`` for a ``with`` or ``async with`` block,
        taken in arrival order, waiting at most ``timeout`` seconds and never past this
        invocation's remaining time (``None``: the remaining time). The block gets the
        :class:`~sluicegate.runtime.semaphores.Hold` (its ``fencing_token``).

        Raises (on entering the block):
            SemaphoreTimeout: not taken in time.
            ConfigError: no semaphore of that name in the App, or no runtime.
        """
        return self._tools().semaphore(self, name, timeout)

    def park(self, heartbeat: float = 30.0) -> str:
        """Park this invocation's batch behind a new task token and return the token.

        When the handler returns, its concurrency slot is free, and the batch's messages
        stay in flight, hidden ``heartbeat`` seconds at a time, until another process
        completes the token (``sluicegate callback TOKEN success|failure`` or
        :func:`~sluicegate.runtime.semaphores.send_task_success`) or a heartbeat is
        missed (the messages then come back). What the handler returns is ignored.

        Raises:
            InputError: not a queue mapping's invocation, or a heartbeat outside 1-43,200 s.
        """
        return str(self._tools().park(heartbeat))

    @property
    def fencing_tokens(self) -> dict[str, int]:
        """The fencing token of each semaphore slot the mapping took for this invocation
        (``app.map(..., semaphores=...)``), by semaphore name; empty without any."""
        tools = self._sluicegate
        if tools is None:
            fields = self._sluicegate_fields or {}
            return {str(k): int(v) for k, v in fields.get("fencing_tokens", {}).items()}
        return dict(tools.fencing_tokens)

    def _tools(self) -> Any:
        tools = self._sluicegate
        if tools is None and self._sluicegate_fields is not None:
            from sluicegate.runtime.semaphores import ChildTools

            tools = self._sluicegate = ChildTools(self._sluicegate_fields)
        if tools is None:
            from sluicegate.errors import InputError

            raise InputError("context.semaphore and context.park need a sluicegate runtime "
                             "(this context was built outside one)")
        return tools
    def report(self, latency: float | None = None, overload: bool = False) -> None:
        """Tell the mapping how the downstream this invocation called is doing (a
        sluicegate extension: AWS's context has no such method).

        The report travels back with the invocation's result, in every isolation, and
        reaches the mapping's limit: an adaptive limit (``scaling="adaptive"``) reads
        ``latency`` in place of the invocation's duration and takes ``overload`` as a
        drop (it backs off); a breaker may count it. Call it as often as you like: the
        largest latency is kept, and one ``overload=True`` marks the invocation.

        Parameters:
            latency: how long the downstream took to answer, in seconds (a finite number
                >= 0); ``None`` to report none.
            overload: the downstream asked to slow down (HTTP 429/503, a "throttled"
                error, a full connection pool).

        Raises:
            ValueError: ``latency`` is not a finite number >= 0.
        """
        if latency is not None:
            if (
                isinstance(latency, bool)
                or not isinstance(latency, (int, float))
                or not 0 <= latency < float("inf")
            ):
                raise ValueError(f"report(latency={latency!r}): need finite seconds >= 0")
            if self.reported_latency is None or latency > self.reported_latency:
                self.reported_latency = float(latency)
        if overload:
            self.reported_overload = True

    def __repr__(self) -> str:
        return (
            f"LambdaContext(function_name={self.function_name!r}, "
            f"aws_request_id={self.aws_request_id!r}, "
            f"remaining_ms={self.get_remaining_time_in_millis()})"
        )


_log_streams: dict[tuple[str, str], str] = {}


def _process_log_stream(function_name: str, function_version: str) -> str:
    key = (function_name, function_version)
    name = _log_streams.get(key)
    if name is None:
        name = _log_streams.setdefault(key, new_log_stream_name(function_version))
    return name


def new_log_stream_name(function_version: str = FUNCTION_VERSION) -> str:
    """A log stream name in AWS's form: ``2024/05/01/[$LATEST]`` + 32 hex digits.

    Parameters:
        function_version: the version in brackets.

    Returns:
        The name, dated today in UTC (wall clock).
    """
    return f"{time.strftime('%Y/%m/%d', time.gmtime())}/[{function_version}]{uuid.uuid4().hex}"
