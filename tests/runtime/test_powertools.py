"""Unmodified handlers written for AWS Lambda run through the Invoker.

The batch handler is the one aws-lambda-powertools documents for SQS partial batch
responses; it gets an event built by ``sqs_event`` from store ``Message`` objects and a
``LambdaContext``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

pytest.importorskip("aws_lambda_powertools")

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes import SQSEvent
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext as PowertoolsContext

from sluicegate.core.config import FunctionConfig
from sluicegate.runtime.events import queue_arn, sqs_event
from sluicegate.runtime.invoker import HandlerResult, Invoker
from sluicegate.store.base import Message, md5_hex, normalize_attributes

FUNCTION = FunctionConfig("orders-worker", timeout=3, memory_size=256)
REGION = "eu-west-1"
ARN = queue_arn("orders", region=REGION, account_id="123456789012")

# --------------------------------------------------------------------------- handler
# Written as in the powertools documentation; nothing sluicegate-specific below.

processor = BatchProcessor(event_type=EventType.SQS)
parsed: list[dict[str, Any]] = []


def record_handler(record: SQSRecord) -> None:
    payload = record.json_body
    parsed.append(
        {
            "id": record.message_id,
            "receive_count": record.attributes.approximate_receive_count,
            "sent": record.attributes.sent_timestamp,
            "tenant": record.message_attributes["tenant"].string_value,
            "queue_url": record.queue_url,
            "region": record.aws_region,
        }
    )
    if payload.get("fail"):
        raise ValueError(f"cannot process order {payload['order']}")


def lambda_handler(event: dict[str, Any], context: PowertoolsContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )


# --------------------------------------------------------------------------- helpers


def message(n: int, *, fail: bool = False, receive_count: int = 1) -> Message:
    body = json.dumps({"order": n, "fail": fail})
    return Message(
        message_id=f"msg-{n}",
        receipt_handle=f"handle-{n}",
        body=body,
        md5_of_body=md5_hex(body),
        attributes=normalize_attributes({"tenant": f"t{n % 2}", "priority": 3}),
        sent_timestamp=1_700_000_000.0 + n,
        first_receive_timestamp=1_700_000_005.0 + n,
        receive_count=receive_count,
        sender_id="AIDAEXAMPLE",
        visible_at=1_700_000_035.0,
        queue="orders",
    )


def invoke(handler: Any, event: dict[str, Any]) -> HandlerResult:
    async def main() -> HandlerResult:
        invoker = Invoker(handler, function=FUNCTION, max_workers=1)
        try:
            return await invoker.invoke(event, invoker.new_context())
        finally:
            invoker.close()

    return asyncio.run(main())


# --------------------------------------------------------------------------- tests


def test_powertools_batch_handler_reports_failed_message_ids() -> None:
    parsed.clear()
    messages = [
        message(1),
        message(2, fail=True, receive_count=3),
        message(3),
        message(4, fail=True),
    ]
    result = invoke(lambda_handler, sqs_event(messages, queue_arn=ARN, region=REGION))
    assert result.ok, result.error_text
    assert result.response == {
        "batchItemFailures": [{"itemIdentifier": "msg-2"}, {"itemIdentifier": "msg-4"}]
    }
    assert [p["id"] for p in parsed] == ["msg-1", "msg-2", "msg-3", "msg-4"]
    assert parsed[1]["receive_count"] == "3"
    assert parsed[0]["sent"] == "1700000001000"
    assert parsed[0]["tenant"] == "t1" and parsed[1]["tenant"] == "t0"
    assert parsed[0]["queue_url"] == "https://sqs.eu-west-1.amazonaws.com/123456789012/orders"
    assert parsed[0]["region"] == REGION


def test_powertools_batch_handler_with_no_failures_returns_an_empty_list() -> None:
    result = invoke(
        lambda_handler, sqs_event([message(1), message(2)], queue_arn=ARN, region=REGION)
    )
    assert result.response == {"batchItemFailures": []}


def test_powertools_raises_when_every_record_fails_and_that_is_a_function_error() -> None:
    result = invoke(
        lambda_handler, sqs_event([message(1, fail=True)], queue_arn=ARN, region=REGION)
    )
    assert result.function_error
    assert result.error_text.startswith("BatchProcessingError")


def test_powertools_data_classes_read_every_field() -> None:
    event = SQSEvent(sqs_event([message(7)], queue_arn=ARN, region=REGION))
    (record,) = list(event.records)
    assert record.message_id == "msg-7"
    assert record.receipt_handle == "handle-7"
    assert record.json_body == {"order": 7, "fail": False}
    assert record.md5_of_body == md5_hex(record.body)
    assert record.event_source == "aws:sqs"
    assert record.event_source_arn == ARN
    assert record.attributes.sender_id == "AIDAEXAMPLE"
    assert record.attributes.approximate_first_receive_timestamp == "1700000012000"
    assert record.attributes.message_group_id is None
    priority = record.message_attributes["priority"]
    assert priority is not None
    assert (priority.data_type, priority.string_value) == ("Number", "3")


def test_plain_and_async_handlers() -> None:
    def plain(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {
            "ids": [r["messageId"] for r in event["Records"]],
            "remaining_positive": context.get_remaining_time_in_millis() > 0,
            "function": context.function_name,
        }

    async def asynchronous(event: dict[str, Any], context: Any) -> dict[str, Any]:
        await asyncio.sleep(0)
        failures = [
            {"itemIdentifier": r["messageId"]}
            for r in event["Records"]
            if json.loads(r["body"])["fail"]
        ]
        return {"batchItemFailures": failures}

    event = sqs_event([message(1), message(2, fail=True)], queue_arn=ARN, region=REGION)
    assert invoke(plain, event).response == {
        "ids": ["msg-1", "msg-2"],
        "remaining_positive": True,
        "function": "orders-worker",
    }
    event = sqs_event([message(1), message(2, fail=True)], queue_arn=ARN, region=REGION)
    assert invoke(asynchronous, event).response == {
        "batchItemFailures": [{"itemIdentifier": "msg-2"}]
    }
