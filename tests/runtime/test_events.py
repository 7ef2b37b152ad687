"""AWS-shaped SQS events, payload sizes, ARNs and the Lambda context."""

from __future__ import annotations

import base64
import json
import re
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sluicegate.core.config import FunctionConfig
from sluicegate.errors import ConfigError
from sluicegate.runtime import events
from sluicegate.runtime.events import (
    DEFAULT_ACCOUNT_ID,
    DEFAULT_REGION,
    EVENT_ENVELOPE_BYTES,
    LambdaContext,
    aws_identity,
    default_account_id,
    default_region,
    function_arn,
    queue_arn,
    record_size,
    record_sizes,
    sqs_event,
    sqs_record,
)
from sluicegate.store.base import Message, md5_hex, normalize_attributes
from sluicegate.testing import VirtualClock

ARN = "arn:aws:sqs:eu-west-1:123456789012:orders"


def make_message(
    body: str = "hello",
    *,
    message_id: str = "059f36b4-87a3-44ab-83d2-661975830a7d",
    attributes: dict[str, object] | None = None,
    receive_count: int = 1,
    sent: float = 1_545_082_649.183,
    first_receive: float = 1_545_082_649.185,
    queue: str = "orders",
) -> Message:
    return Message(
        message_id=message_id,
        receipt_handle="AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
        body=body,
        md5_of_body=md5_hex(body),
        attributes=normalize_attributes(attributes),
        sent_timestamp=sent,
        first_receive_timestamp=first_receive,
        receive_count=receive_count,
        sender_id="AIDAIENQZJOLO23YVJ4VO",
        visible_at=sent + 30,
        queue=queue,
    )


def compact_size(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


# --------------------------------------------------------------------------- records


def test_record_has_the_lambda_developer_guide_shape_and_key_order() -> None:
    record = sqs_record(make_message("Test message."), queue_arn=ARN, region="eu-west-1")
    assert list(record) == [
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    ]
    assert record == {
        "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
        "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
        "body": "Test message.",
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1545082649183",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1545082649185",
        },
        "messageAttributes": {},
        "md5OfBody": md5_hex("Test message."),
        "eventSource": "aws:sqs",
        "eventSourceARN": ARN,
        "awsRegion": "eu-west-1",
    }
    assert list(record["attributes"]) == [
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    ]


def test_receive_count_and_timestamps_are_strings_of_integers() -> None:
    record = sqs_record(
        make_message(receive_count=7, sent=1_700_000_000.9999, first_receive=1_700_000_001.0),
        queue_arn=ARN,
        region="eu-west-1",
    )
    assert record["attributes"]["ApproximateReceiveCount"] == "7"
    assert record["attributes"]["SentTimestamp"] == "1700000000999"
    assert record["attributes"]["ApproximateFirstReceiveTimestamp"] == "1700000001000"


def test_message_attributes_take_the_event_shape() -> None:
    message = make_message(
        attributes={
            "myAttribute": "myValue",
            "count": 42,
            "blob": b"\x00\x01binary",
            "custom": {"DataType": "Number.float", "StringValue": "1.5"},
        }
    )
    attrs = sqs_record(message, queue_arn=ARN, region="eu-west-1")["messageAttributes"]
    assert attrs["myAttribute"] == {
        "stringValue": "myValue",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert list(attrs["myAttribute"]) == [
        "stringValue",
        "stringListValues",
        "binaryListValues",
        "dataType",
    ]
    assert attrs["count"]["dataType"] == "Number"
    assert attrs["count"]["stringValue"] == "42"
    assert attrs["blob"] == {
        "binaryValue": base64.b64encode(b"\x00\x01binary").decode(),
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "Binary",
    }
    assert attrs["custom"]["dataType"] == "Number.float"


def test_every_event_is_built_afresh_so_handlers_may_mutate_it() -> None:
    messages = [make_message("a", message_id="1"), make_message("b", message_id="2")]
    first = sqs_event(messages, queue_arn=ARN, region="eu-west-1")
    assert [r["messageId"] for r in first["Records"]] == ["1", "2"]
    first["Records"][0]["attributes"]["SenderId"] = "changed"
    first["Records"][1]["messageAttributes"]["x"] = {}
    second = sqs_event(messages, queue_arn=ARN, region="eu-west-1")
    assert second["Records"][0]["attributes"]["SenderId"] == "AIDAIENQZJOLO23YVJ4VO"
    assert second["Records"][1]["messageAttributes"] == {}


def test_an_empty_batch_is_an_event_without_records() -> None:
    assert sqs_event([], queue_arn=ARN, region="eu-west-1") == {"Records": []}


# --------------------------------------------------------------------------- sizes

_attribute_value = st.one_of(
    st.text(min_size=1, max_size=30),
    st.integers(-(10**12), 10**12),
    st.binary(min_size=1, max_size=30),
)


@settings(max_examples=150, deadline=None)
@given(
    body=st.text(min_size=1, max_size=300),
    message_id=st.one_of(st.uuids().map(str), st.text(min_size=1, max_size=40)),
    attributes=st.dictionaries(
        st.text(st.characters(codec="utf-8"), min_size=1, max_size=20),
        _attribute_value,
        max_size=10,
    ),
    receive_count=st.integers(1, 10_000),
    sent=st.floats(0, 4_000_000_000, allow_nan=False),
    region=st.sampled_from(["us-east-1", "ap-southeast-3", "eu-west-1"]),
)
def test_record_size_is_the_compact_json_size_plus_a_separator(
    body: str,
    message_id: str,
    attributes: dict[str, object],
    receive_count: int,
    sent: float,
    region: str,
) -> None:
    message = make_message(
        body,
        message_id=message_id,
        attributes=attributes,
        receive_count=receive_count,
        sent=sent,
        first_receive=sent + 0.5,
    )
    arn = queue_arn("q", region=region, account_id="123456789012")
    record = sqs_record(message, queue_arn=arn, region=region)
    assert record_size(message, queue_arn=arn, region=region) == compact_size(record) + 1


def test_event_size_is_the_envelope_plus_the_record_sizes_less_one() -> None:
    messages = [
        make_message(
            '{"a": "quote \\" and ünïcødé \n"}', message_id=str(i), attributes={"k": "v", "b": b"x"}
        )
        for i in range(25)
    ]
    event = sqs_event(messages, queue_arn=ARN, region="eu-west-1")
    total = EVENT_ENVELOPE_BYTES + sum(
        record_size(m, queue_arn=ARN, region="eu-west-1") for m in messages
    )
    assert total - 1 == compact_size(event)


def test_record_sizes_measure_each_message_of_a_receive() -> None:
    """One call for a whole receive: each message's size as if measured alone, whatever
    its neighbours need escaped."""
    messages = [
        make_message("plain", message_id="1"),
        make_message('{"quoted": "\\ and \u00e9"}', message_id="2", attributes={"k": "v"}),
        make_message("control \x01 char", message_id="3", receive_count=12),
        make_message("plain again", message_id="4", sent=5.0, first_receive=5.5),
    ]
    sizes = record_sizes(messages, queue_arn=ARN, region="eu-west-1")
    assert sizes == [
        compact_size(sqs_record(m, queue_arn=ARN, region="eu-west-1")) + 1 for m in messages
    ]
    assert record_sizes([], queue_arn=ARN, region="eu-west-1") == []


def test_record_size_defaults_to_the_messages_queue_in_the_default_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(events.REGION_ENV, raising=False)
    monkeypatch.delenv(events.ACCOUNT_ID_ENV, raising=False)
    message = make_message(queue="a-rather-long-queue-name")
    record = sqs_record(
        message, queue_arn=queue_arn("a-rather-long-queue-name"), region=DEFAULT_REGION
    )
    assert record_size(message) == compact_size(record) + 1


def test_record_metadata_makes_a_tiny_message_cost_hundreds_of_bytes() -> None:
    size = record_size(make_message("x"), queue_arn=ARN, region="eu-west-1")
    assert 400 < size < 600
    assert events.RECORD_SKELETON_BYTES > 200


# --------------------------------------------------------------------------- ARNs


def test_arns_use_the_default_region_and_account(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(events.REGION_ENV, raising=False)
    monkeypatch.delenv(events.ACCOUNT_ID_ENV, raising=False)
    assert DEFAULT_REGION == "us-east-1"
    assert DEFAULT_ACCOUNT_ID == "000000000000"
    assert queue_arn("orders") == "arn:aws:sqs:us-east-1:000000000000:orders"
    assert function_arn("process") == "arn:aws:lambda:us-east-1:000000000000:function:process"
    assert (
        queue_arn("orders", region="eu-west-1", account_id="123456789012")
        == "arn:aws:sqs:eu-west-1:123456789012:orders"
    )
    assert (
        function_arn("f", region="eu-west-1", account_id="123456789012")
        == "arn:aws:lambda:eu-west-1:123456789012:function:f"
    )


def test_environment_overrides_are_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(events.REGION_ENV, "ap-southeast-2")
    monkeypatch.setenv(events.ACCOUNT_ID_ENV, "111122223333")
    assert default_region() == "ap-southeast-2"
    assert default_account_id() == "111122223333"
    assert queue_arn("q") == "arn:aws:sqs:ap-southeast-2:111122223333:q"
    assert aws_identity() == ("ap-southeast-2", "111122223333")
    monkeypatch.setenv(events.REGION_ENV, "us-gov-west-1")
    assert default_region() == "us-gov-west-1"


@pytest.mark.parametrize(
    ("variable", "value"),
    [("SLUICEGATE_REGION", "Mars"), ("SLUICEGATE_ACCOUNT_ID", "12345")],
)
def test_invalid_environment_values_are_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        queue_arn("q")


# --------------------------------------------------------------------------- context


def test_context_carries_the_aws_runtime_attributes() -> None:
    clock = VirtualClock(100.0)
    context = LambdaContext(
        function_name="process",
        invoked_function_arn=function_arn("process"),
        memory_limit_in_mb=512,
        deadline=clock() + 3,
        clock=clock,
    )
    assert context.function_name == "process"
    assert context.function_version == "$LATEST"
    assert context.invoked_function_arn.endswith(":function:process")
    assert context.memory_limit_in_mb == "512"
    assert int(context.memory_limit_in_mb) == 512
    assert uuid.UUID(context.aws_request_id).version == 4
    assert context.log_group_name == "/aws/lambda/process"
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", context.log_stream_name)
    assert context.identity is None
    assert context.client_context is None
    assert "process" in repr(context)
    again = LambdaContext(function_name="process", invoked_function_arn="arn", deadline=0)
    assert again.log_stream_name == context.log_stream_name  # one environment per process
    assert again.aws_request_id != context.aws_request_id
    other = LambdaContext(function_name="other", invoked_function_arn="arn", deadline=0)
    assert other.log_stream_name != context.log_stream_name
    explicit = LambdaContext(
        function_name="process", invoked_function_arn="arn", deadline=0, log_stream_name="s"
    )
    assert explicit.log_stream_name == "s"


def test_remaining_time_counts_down_on_the_injected_clock_and_stops_at_zero() -> None:
    clock = VirtualClock(50.0)
    context = LambdaContext(
        function_name="f", invoked_function_arn="arn", deadline=53.0, clock=clock
    )
    assert context.get_remaining_time_in_millis() == 3000
    clock.now = 52.2505
    assert context.get_remaining_time_in_millis() == 749
    clock.now = 53.0
    assert context.get_remaining_time_in_millis() == 0
    clock.now = 60.0
    assert context.get_remaining_time_in_millis() == 0


def test_each_context_gets_its_own_request_id() -> None:
    ids = {
        LambdaContext(function_name="f", invoked_function_arn="a", deadline=0).aws_request_id
        for _ in range(50)
    }
    assert len(ids) == 50


def test_context_for_a_function_uses_its_timeout_and_memory() -> None:
    clock = VirtualClock(10.0)
    function = FunctionConfig("process", timeout=30, memory_size=1024)
    context = LambdaContext.for_function(
        function, clock=clock, region="eu-west-1", account_id="123456789012"
    )
    assert context.invoked_function_arn == "arn:aws:lambda:eu-west-1:123456789012:function:process"
    assert context.memory_limit_in_mb == "1024"
    assert context.deadline == 40.0
    assert context.get_remaining_time_in_millis() == 30_000
    short = LambdaContext.for_function(function, clock=clock, timeout=0.25, aws_request_id="r1")
    assert short.get_remaining_time_in_millis() == 250
    assert short.aws_request_id == "r1"


def test_context_from_a_timeout_and_an_identity() -> None:
    clock = VirtualClock(5.0)
    context = LambdaContext(
        function_name="f",
        memory_limit_in_mb=256,
        timeout=2.5,
        region="eu-west-1",
        account_id="123456789012",
        clock=clock,
    )
    assert context.invoked_function_arn == "arn:aws:lambda:eu-west-1:123456789012:function:f"
    assert context.deadline == 7.5
    assert context.get_remaining_time_in_millis() == 2500
    default = LambdaContext(function_name="f", clock=clock)
    assert default.get_remaining_time_in_millis() == 3000  # Lambda's default timeout
    assert default.memory_limit_in_mb == "128"
    with pytest.raises(ValueError, match="deadline or a timeout"):
        LambdaContext(function_name="f", deadline=1.0, timeout=1.0)


# --------------------------------------------------------------------------- FIFO


def _fifo(message: Message, group: str, dedup: str, sequence: str) -> Message:
    message.group_id, message.deduplication_id, message.sequence_number = group, dedup, sequence
    message.queue = "orders.fifo"
    return message


def test_fifo_records_carry_group_deduplication_and_sequence() -> None:
    message = _fifo(make_message("hi"), "g-1", "d-1", "00000000000000000042")
    (record,) = sqs_event([message], queue_arn=ARN, region="eu-west-1")["Records"]
    assert list(record["attributes"]) == [
        "ApproximateReceiveCount", "SentTimestamp", "SequenceNumber", "MessageGroupId",
        "SenderId", "MessageDeduplicationId", "ApproximateFirstReceiveTimestamp",
    ]
    assert record["attributes"]["MessageGroupId"] == "g-1"
    assert record["attributes"]["MessageDeduplicationId"] == "d-1"
    assert record["attributes"]["SequenceNumber"] == "00000000000000000042"
    assert sqs_record(message, queue_arn=ARN, region="eu-west-1") == record


@settings(max_examples=60, deadline=None)
@given(
    group=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=128),
    dedup=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=128),
    sequence=st.integers(0, 10**19).map(lambda n: f"{n:020d}"),
    body=st.text(min_size=1, max_size=100),
)
def test_fifo_record_size_is_exact(group: str, dedup: str, sequence: str, body: str) -> None:
    message = _fifo(make_message(body, attributes={"k": "v"}), group, dedup, sequence)
    record = sqs_record(message, queue_arn=ARN, region="eu-west-1")
    assert record_size(message, queue_arn=ARN, region="eu-west-1") == compact_size(record) + 1
