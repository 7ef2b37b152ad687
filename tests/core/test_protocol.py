"""The one mapping protocol: queue and stream mappings are driven by the same calls, and
the shard-reading rule (starting position, retention gap) lives in core."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from sluicegate.core.config import MappingConfig
from sluicegate.core.mapping import QueueMapping
from sluicegate.core.pool import ConcurrencyPool
from sluicegate.core.protocol import MappingCore
from sluicegate.core.stream_mapping import StreamMapping
from sluicegate.core.streams import (
    Fetch,
    StreamAction,
    StreamBatch,
    StreamConfig,
    StreamInvoke,
    StreamMappingConfig,
    StreamRecord,
    fetch_position,
)
from sluicegate.core.types import Action, Batch, Invoke, OutcomeKind, QueueRecord, Receive

from .support import records


@dataclass
class Result:
    """How an invocation ended, as a driver reports it (an ``InvocationResult``)."""

    response: Any = None
    invalid_json: bool = False
    error: BaseException | None = None
    error_text: str = ""
    timed_out: bool = False


def queue_mapping(**options: Any) -> MappingCore[Receive, QueueRecord, Batch, Action]:
    return QueueMapping(MappingConfig("q", "f", scaling="fixed", maximum_concurrency=2,
                                      **options),
                        visibility_timeout=30, pool=ConcurrencyPool())


def stream_mapping(
    **options: Any,
) -> MappingCore[Fetch, StreamRecord, StreamBatch, StreamAction]:
    return StreamMapping(StreamMappingConfig("s", "f", **options), StreamConfig("s"),
                         pool=ConcurrencyPool())


def test_queue_mapping_through_the_protocol() -> None:
    m = queue_mapping(report_batch_item_failures=True)
    assert m.name == "q->f"
    receive = next(a for a in m.poll(0.0) if isinstance(a, Receive))
    assert m.reading == 2
    m.read_done(0.5, receive, records(2))
    invoke = next(a for a in m.poll(0.5) if isinstance(a, Invoke))
    assert m.in_flight == 1
    first = sorted(invoke.batch.message_ids)[0]
    outcome = m.outcome_of(Result({"batchItemFailures": [{"itemIdentifier": first}]}),
                           invoke.batch)
    assert outcome.kind is OutcomeKind.PARTIAL
    m.finished(1.0, invoke.batch.id, outcome, request_id="r1")
    assert m.in_flight == 0
    assert m.limit == 2
    assert m.limit_reason(1.0) == "maximum_concurrency"
    assert m.concurrency_limit.value(1.0) == 2


def test_stream_mapping_through_the_protocol() -> None:
    m = stream_mapping(parallelization_factor=3)
    assert m.name == "s->f"
    fetch = next(a for a in m.poll(0.0) if isinstance(a, Fetch))
    assert m.reading == 1
    assert fetch.reads_records
    m.read_done(0.0, fetch, [StreamRecord(0, 1, "k", b"", 0.0, 10)], latest=1)
    invoke = next(a for a in m.poll(0.0) if isinstance(a, StreamInvoke))
    outcome = m.outcome_of(Result(error=ValueError("x"), error_text="ValueError: x"),
                           invoke.batch)
    assert outcome.kind is OutcomeKind.ERROR
    assert outcome.reason == "exception: ValueError: x"
    m.finished(0.5, invoke.batch.id, outcome, request_id="r1")
    assert m.limit == 3
    assert m.limit_reason(0.5) == "shards"


def test_stream_outcome_names_sequence_numbers() -> None:
    m = stream_mapping(report_batch_item_failures=True)
    fetch = next(a for a in m.poll(0.0) if isinstance(a, Fetch))
    m.read_done(0.0, fetch, [StreamRecord(0, 7, "k", b"", 0.0, 10)], latest=7)
    invoke = next(a for a in m.poll(0.0) if isinstance(a, StreamInvoke))
    bad = m.outcome_of(Result({"batchItemFailures": [{"itemIdentifier": "8"}]}),
                       invoke.batch)
    assert bad.kind is OutcomeKind.ERROR
    assert "not a sequence number of the batch" in bad.reason


# ---------------------------------------------------------------------- shard reading


def fetch(after: int | None, position: str = "TRIM_HORIZON",
          timestamp: float | None = None) -> Fetch:
    return Fetch(0, "shardId-000000000000", after, position, timestamp, 100)


@pytest.mark.parametrize(
    ("action", "latest", "returned", "expected"),
    [
        # a first read at LATEST starts after the shard's latest record
        (fetch(None, "LATEST"), 41, False, 41),
        (fetch(None, "LATEST"), -1, False, -1),
        # a first read elsewhere: the records say where the shard stands
        (fetch(None), 41, True, None),
        (fetch(None), 41, False, None),
        (fetch(None, "AT_TIMESTAMP", 5.0), 41, False, None),
        # after a position: nothing came back although the shard went further before
        # the read: retention dropped what lay between
        (fetch(10), 41, False, 41),
        (fetch(10), 10, False, None),
        (fetch(10), 41, True, None),
        # the driver did not read the shard (another worker owns it)
        (fetch(None, "LATEST"), None, False, None),
        (fetch(10), None, False, None),
    ],
)
def test_fetch_position(action: Fetch, latest: int | None, returned: bool,
                        expected: int | None) -> None:
    assert fetch_position(action, latest, returned) == expected


def test_what_a_driver_reads_for_a_fetch() -> None:
    assert not fetch(None, "LATEST").reads_records
    assert fetch(3, "LATEST").reads_records
    assert fetch(None).reads_records
    assert fetch(None, "AT_TIMESTAMP", 5.0).at_timestamp == 5.0
    assert fetch(3, "AT_TIMESTAMP", 5.0).at_timestamp is None
    assert fetch(None).at_timestamp is None


def test_latest_read_starts_after_the_latest_record() -> None:
    m = stream_mapping(starting_position="LATEST")
    first = next(a for a in m.poll(0.0) if isinstance(a, Fetch))
    m.read_done(0.0, first, [], latest=12)
    nxt = next(a for a in m.poll(1.0) if isinstance(a, Fetch))
    assert nxt.after_sequence == 12


def test_retention_gap_moves_the_iterator_and_the_checkpoint() -> None:
    m = StreamMapping(StreamMappingConfig("s", "f"), StreamConfig("s"),
                      pool=ConcurrencyPool(), checkpoints={0: 10})
    first = next(a for a in m.poll(0.0) if isinstance(a, Fetch))
    assert first.after_sequence == 10
    m.read_done(0.0, first, [], latest=30)
    actions = m.poll(1.0)
    assert m.checkpoints == {0: 30}
    nxt = next(a for a in actions if isinstance(a, Fetch))
    assert nxt.after_sequence == 30
