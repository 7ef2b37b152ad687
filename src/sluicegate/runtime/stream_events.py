"""Kinesis-shaped invocation payloads for stream mappings.

A handler written for a Kinesis event source mapping receives ``{"Records": [...]}``
where each record is shaped as the "Example Kinesis record event" of the Lambda
developer guide (``with-kinesis``), keys in the same order: the payload under
``kinesis.data`` as base64, the partition key and sequence number as strings, the arrival
time as epoch seconds (a number, unlike SQS's millisecond strings).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

from sluicegate.core.streams import shard_id
from sluicegate.runtime.events import aws_identity
from sluicegate.store.base import StreamMessage

__all__ = [
    "KINESIS_EVENT_NAME",
    "KINESIS_EVENT_SOURCE",
    "KINESIS_SCHEMA_VERSION",
    "kinesis_event",
    "kinesis_record",
    "kinesis_record_size",
    "stream_arn",
]

KINESIS_EVENT_SOURCE = "aws:kinesis"
KINESIS_EVENT_NAME = "aws:kinesis:record"
KINESIS_SCHEMA_VERSION = "1.0"
EVENT_VERSION = "1.0"


def stream_arn(name: str, *, region: str | None = None, account_id: str | None = None) -> str:
    """``arn:aws:kinesis:{region}:{account}:stream/{name}``, in the configured region and
    account unless given (see :func:`sluicegate.runtime.events.aws_identity`)."""
    if region is None or account_id is None:
        default_region, default_account = aws_identity()
        region = region or default_region
        account_id = account_id or default_account
    return f"arn:aws:kinesis:{region}:{account_id}:stream/{name}"


def invoke_identity_arn(account_id: str) -> str:
    """The execution role the record names (``invokeIdentityArn``); sluicegate has no
    IAM, so a fixed role name in the account."""
    return f"arn:aws:iam::{account_id}:role/sluicegate"


def kinesis_record(
    record: StreamMessage, *, stream_arn: str, region: str, account_id: str
) -> dict[str, Any]:
    """One record of a Kinesis event. Every call builds new dicts.

    Returns:
        ``{"kinesis": {"kinesisSchemaVersion", "partitionKey", "sequenceNumber", "data",
        "approximateArrivalTimestamp"}, "eventSource", "eventVersion", "eventID",
        "eventName", "invokeIdentityArn", "awsRegion", "eventSourceARN"}``; ``eventID`` is
        ``"shardId-...:sequenceNumber"``.
    """
    sequence = str(record.sequence_number)
    return {
        "kinesis": {
            "kinesisSchemaVersion": KINESIS_SCHEMA_VERSION,
            "partitionKey": record.partition_key,
            "sequenceNumber": sequence,
            "data": base64.b64encode(record.data).decode("ascii"),
            "approximateArrivalTimestamp": round(record.approximate_arrival, 3),
        },
        "eventSource": KINESIS_EVENT_SOURCE,
        "eventVersion": EVENT_VERSION,
        "eventID": f"{shard_id(record.shard)}:{sequence}",
        "eventName": KINESIS_EVENT_NAME,
        "invokeIdentityArn": invoke_identity_arn(account_id),
        "awsRegion": region,
        "eventSourceARN": stream_arn,
    }


def kinesis_event(
    records: Iterable[StreamMessage], *, stream_arn: str, region: str, account_id: str
) -> dict[str, list[dict[str, Any]]]:
    """The event of one invocation: ``{"Records": [record, ...]}`` in sequence order."""
    return {
        "Records": [
            kinesis_record(r, stream_arn=stream_arn, region=region, account_id=account_id)
            for r in records
        ]
    }


_RECORD_OVERHEAD = 360
"""Bytes of a Kinesis event record besides its data, partition key, sequence number and
ARNs (keys, fixed values, punctuation; measured on the compact JSON of
:func:`kinesis_record`), rounded up."""


def kinesis_record_size(record: StreamMessage, arn: str) -> int:
    """Bytes ``record`` adds to an invocation payload, counted against the 6 MB cap: its
    data as base64, partition key, sequence number (twice), the ARNs and the fixed part.

    Cheap to compute, and an upper bound of the compact JSON's length by less than 100
    bytes for printable ASCII partition keys (other characters count their UTF-8 bytes,
    which is what a UTF-8 payload carries).
    """
    data = (len(record.data) + 2) // 3 * 4
    key = record.partition_key
    return (
        _RECORD_OVERHEAD
        + data
        + len(key.encode("utf-8"))
        + key.count('"')  # JSON escapes these two with a backslash
        + key.count("\\")
        + 2 * len(str(record.sequence_number))
        + 2 * len(arn)
    )
