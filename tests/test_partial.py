"""Per-record helpers: which records run and which are reported, for each kind of source."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sluicegate.partial import (
    aprocess_batch,
    aprocess_fifo_batch,
    item_identifier,
    process_batch,
    process_fifo_batch,
)


def _sqs(*specs: tuple[str, str | None]) -> dict[str, Any]:
    records = []
    for mid, group in specs:
        attributes = {"ApproximateReceiveCount": "1"}
        if group is not None:
            attributes["MessageGroupId"] = group
        records.append({"messageId": mid, "body": mid, "attributes": attributes})
    return {"Records": records}


def _kinesis(*sequences: str) -> dict[str, Any]:
    return {
        "Records": [
            {"eventSource": "aws:kinesis", "kinesis": {"sequenceNumber": s, "data": ""}}
            for s in sequences
        ]
    }


class Handler:
    """Fails on the given identifiers; records what it ran."""

    def __init__(self, *failing: str) -> None:
        self.failing = set(failing)
        self.ran: list[str] = []

    def __call__(self, record: dict[str, Any]) -> None:
        identifier = item_identifier(record)
        self.ran.append(identifier)
        if identifier in self.failing:
            raise RuntimeError(f"{identifier} failed")

    async def run_async(self, record: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        self(record)


def _failed(response: dict[str, Any]) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


def test_standard_queue_runs_everything_and_reports_each_failure() -> None:
    handler = Handler("m2", "m4")
    response = process_batch(_sqs(*[(f"m{i}", None) for i in range(1, 6)]), handler)
    assert handler.ran == ["m1", "m2", "m3", "m4", "m5"]
    assert _failed(response) == ["m2", "m4"]


def test_all_good_is_an_empty_list() -> None:
    assert process_batch(_sqs(("m1", None)), Handler()) == {"batchItemFailures": []}


def test_fifo_stops_everything_at_the_first_failure() -> None:
    handler = Handler("a2")
    event = _sqs(("a1", "A"), ("b1", "B"), ("a2", "A"), ("b2", "B"), ("c1", "C"))
    response = process_fifo_batch(event, handler)
    assert handler.ran == ["a1", "b1", "a2"]
    assert _failed(response) == ["a2", "b2", "c1"]


def test_fifo_skip_group_keeps_other_groups_flowing() -> None:
    handler = Handler("a2")
    event = _sqs(("a1", "A"), ("a2", "A"), ("b1", "B"), ("a3", "A"), ("b2", "B"))
    response = process_fifo_batch(event, handler, skip_group_on_error=True)
    assert handler.ran == ["a1", "a2", "b1", "b2"]
    assert _failed(response) == ["a2", "a3"]


def test_stream_stops_at_the_first_failure_and_reports_it_alone() -> None:
    handler = Handler("102")
    response = process_batch(_kinesis("101", "102", "103"), handler)
    assert handler.ran == ["101", "102"]
    assert _failed(response) == ["102"]


def test_async_variants_follow_the_same_rules() -> None:
    handler = Handler("a1")
    event = _sqs(("a1", "A"), ("b1", "B"), ("a2", "A"))
    response = asyncio.run(
        aprocess_fifo_batch(event, handler.run_async, skip_group_on_error=True)
    )
    assert handler.ran == ["a1", "b1"]
    assert _failed(response) == ["a1", "a2"]
    handler = Handler("m1")
    response = asyncio.run(aprocess_batch(_sqs(("m1", None), ("m2", None)), handler.run_async))
    assert _failed(response) == ["m1"] and handler.ran == ["m1", "m2"]


def test_malformed_events_are_refused() -> None:
    with pytest.raises(ValueError, match="Records"):
        process_batch({}, Handler())
    with pytest.raises(ValueError, match="neither a messageId"):
        process_batch({"Records": [{"body": "x"}]}, Handler())
