"""Kinesis-shaped events: the documented record shape, base64 data, size estimates."""

from __future__ import annotations

import base64
import json

from hypothesis import given
from hypothesis import strategies as st

from sluicegate.runtime.stream_events import (
    kinesis_event,
    kinesis_record,
    kinesis_record_size,
    stream_arn,
)
from sluicegate.store.base import StreamMessage

ARN = "arn:aws:kinesis:us-east-1:000000000000:stream/clicks"


def test_record_shape_matches_the_documented_example() -> None:
    record = StreamMessage(6, 4959, "user-1", b"Hello, this is a test.", 1545084650.987)
    event = kinesis_event([record], stream_arn=ARN, region="us-east-1", account_id="0" * 12)
    (r,) = event["Records"]
    assert list(r) == ["kinesis", "eventSource", "eventVersion", "eventID", "eventName",
                       "invokeIdentityArn", "awsRegion", "eventSourceARN"]
    assert r["kinesis"] == {
        "kinesisSchemaVersion": "1.0",
        "partitionKey": "user-1",
        "sequenceNumber": "4959",
        "data": "SGVsbG8sIHRoaXMgaXMgYSB0ZXN0Lg==",
        "approximateArrivalTimestamp": 1545084650.987,
    }
    assert r["eventID"] == "shardId-000000000006:4959"
    assert (r["eventSource"], r["eventName"]) == ("aws:kinesis", "aws:kinesis:record")
    assert r["eventSourceARN"] == ARN and r["awsRegion"] == "us-east-1"


def test_stream_arn_uses_the_configured_identity(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SLUICEGATE_REGION", "eu-west-1")
    monkeypatch.setenv("SLUICEGATE_ACCOUNT_ID", "123456789012")
    assert stream_arn("s") == "arn:aws:kinesis:eu-west-1:123456789012:stream/s"


@given(
    data=st.binary(max_size=300),
    key=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1,
                max_size=256),
    sequence=st.integers(min_value=1, max_value=10**20),
    arrival=st.floats(min_value=1e9, max_value=4e9),
    shard=st.integers(min_value=0, max_value=9999),
)
def test_size_is_a_tight_upper_bound(
    data: bytes, key: str, sequence: int, arrival: float, shard: int
) -> None:
    record = StreamMessage(shard, sequence, key, data, arrival)
    built = kinesis_record(record, stream_arn=ARN, region="us-east-1", account_id="0" * 12)
    actual = len(json.dumps(built, separators=(",", ":")))
    estimate = kinesis_record_size(record, ARN)
    assert actual <= estimate < actual + 100
    quoted = StreamMessage(shard, sequence, "\"\\\\" * 100, data, arrival)
    built = kinesis_record(quoted, stream_arn=ARN, region="us-east-1", account_id="0" * 12)
    assert len(json.dumps(built, separators=(",", ":"))) <= kinesis_record_size(quoted, ARN)
    assert base64.b64decode(built["kinesis"]["data"]) == data
