"""StreamMapping: reading shards, lanes, retries, bisecting, discards and checkpoints."""

from __future__ import annotations

from typing import Any, TypeVar

import pytest

from sluicegate.core.config import MAX_PAYLOAD_BYTES, AccountConfig, FunctionConfig
from sluicegate.core.pool import ConcurrencyPool
from sluicegate.core.results import SUCCESS_OUTCOME, exception_outcome, interpret_response
from sluicegate.core.stream_mapping import (
    FULL_FETCH_INTERVAL,
    POLL_INTERVAL,
    RETRY_DELAY,
    STREAM_THROTTLE_BACKOFF_BASE,
    StreamMapping,
)
from sluicegate.core.streams import (
    Checkpoint,
    Fetch,
    SendToDestination,
    StreamAction,
    StreamBatch,
    StreamConfig,
    StreamInvoke,
    StreamMappingConfig,
    StreamRecord,
    lane_for_partition_key,
)
from sluicegate.core.types import BatchOutcome, OutcomeKind
from sluicegate.errors import ConfigError

T = TypeVar("T")
DAY = 86_400.0


def keys_by_lane(factor: int) -> list[str]:
    """One partition key for each lane of a shard with ``factor`` lanes."""
    found: dict[int, str] = {}
    i = 0
    while len(found) < factor:
        key = f"key{i}"
        found.setdefault(lane_for_partition_key(key, factor), key)
        i += 1
    return [found[lane] for lane in range(factor)]


def rec(seq: int, key: str = "k", *, shard: int = 0, at: float = 0.0,
        size: int = 100) -> StreamRecord:
    return StreamRecord(shard, seq, key, b"data", at, size)


def make(
    shards: int = 1,
    pool: ConcurrencyPool | None = None,
    checkpoints: dict[int, int] | None = None,
    **options: Any,
) -> StreamMapping:
    read_ahead = options.pop("read_ahead", None)
    record_filter = options.pop("record_filter", None)
    config = StreamMappingConfig("s", "f", **options)
    return StreamMapping(
        config, StreamConfig("s", shard_count=shards), pool=pool or ConcurrencyPool(),
        checkpoints=checkpoints, read_ahead=read_ahead, record_filter=record_filter,
        function_arn="arn:f", stream_arn="arn:s",
    )


def of(actions: list[StreamAction], kind: type[T]) -> list[T]:
    return [a for a in actions if isinstance(a, kind)]


def only(actions: list[StreamAction], kind: type[T]) -> T:
    found = of(actions, kind)
    assert len(found) == 1, actions
    return found[0]


def seqs(batch: StreamBatch) -> list[int]:
    return [r.sequence_number for r in batch.records]


def error(batch: StreamBatch) -> BatchOutcome:
    return exception_outcome(batch, "RuntimeError: boom")


def partial(batch: StreamBatch, *failed: int) -> BatchOutcome:
    response = {"batchItemFailures": [{"itemIdentifier": str(s)} for s in failed]}
    return interpret_response(response, batch, report_batch_item_failures=True)


def feed(m: StreamMapping, now: float, records: list[StreamRecord], shard: int = 0) -> list[
        StreamAction]:
    """Answer the outstanding fetch of ``shard`` with ``records``, then poll."""
    m.fetched(now, shard, records)
    return m.poll(now)


# ---------------------------------------------------------------------- reading


def test_first_poll_fetches_every_shard_from_the_starting_position() -> None:
    m = make(shards=3, starting_position="LATEST")
    actions = m.poll(0.0)
    assert actions == [
        Fetch(i, f"shardId-00000000000{i}", None, "LATEST", None, 200) for i in range(3)
    ]
    assert m.fetching == 3
    assert m.poll(0.0) == []
    assert m.next_wakeup(0.0) is None
    assert not m.idle


def test_at_timestamp_is_passed_to_the_driver() -> None:
    m = make(starting_position="AT_TIMESTAMP", starting_position_timestamp=1234)
    fetch = only(m.poll(0.0), Fetch)
    assert (fetch.starting_position, fetch.starting_position_timestamp) == ("AT_TIMESTAMP", 1234.0)


def test_empty_fetch_polls_again_after_a_second() -> None:
    m = make()
    m.poll(0.0)
    m.fetched(0.3, 0, [])
    assert m.poll(0.3) == []
    assert m.next_wakeup(0.3) == 0.3 + POLL_INTERVAL
    assert m.poll(1.2) == []
    fetch = only(m.poll(1.3), Fetch)
    assert fetch.after_sequence is None  # still unresolved: TRIM_HORIZON again


def test_full_fetch_reads_again_soon_after_the_last_record() -> None:
    m = make(batch_size=10, maximum_batching_window=5, read_ahead=50)
    assert only(m.poll(0.0), Fetch).max_records == 50
    m.fetched(0.0, 0, [rec(i) for i in range(1, 51)])
    assert m.next_wakeup(0.0) == 0.0  # a full batch to invoke
    only(m.poll(0.0), StreamInvoke)
    assert m.next_wakeup(0.0) == FULL_FETCH_INTERVAL
    assert m.poll(FULL_FETCH_INTERVAL) == []  # 50 held: no room to read ahead


def test_read_ahead_is_bounded_and_resumes_from_the_last_record_read() -> None:
    m = make(batch_size=2, read_ahead=4)
    assert only(m.poll(0.0), Fetch).max_records == 4
    actions = feed(m, 0.0, [rec(1), rec(2), rec(3), rec(4)])
    invoke = only(actions, StreamInvoke)
    assert seqs(invoke.batch) == [1, 2]
    assert m.poll(5.0) == []  # 4 held: the reader waits
    m.finished(5.0, invoke.batch.id, SUCCESS_OUTCOME)
    actions = m.poll(5.0)
    assert only(actions, Checkpoint) == Checkpoint(0, "shardId-000000000000", 2)
    assert seqs(only(actions, StreamInvoke).batch) == [3, 4]
    fetch = only(actions, Fetch)
    assert (fetch.after_sequence, fetch.max_records) == (4, 2)


def test_latest_position_is_kept_and_checkpointed() -> None:
    m = make(starting_position="LATEST")
    m.poll(0.0)
    m.fetched(0.0, 0, [], position=41)
    assert m.poll(0.0) == [Checkpoint(0, "shardId-000000000000", 41)]
    assert m.checkpoints == {0: 41}
    assert only(m.poll(1.0), Fetch).after_sequence == 41


def test_restart_resumes_after_stored_checkpoints() -> None:
    m = make(shards=2, checkpoints={1: 99})
    fetches = of(m.poll(0.0), Fetch)
    assert [(f.shard, f.after_sequence) for f in fetches] == [(0, None), (1, 99)]
    assert m.checkpoints == {1: 99}
    with pytest.raises(RuntimeError, match="out of order"):
        m.fetched(0.0, 1, [rec(99, shard=1)])
    actions = feed(m, 0.0, [rec(100, shard=1)], shard=1)
    batch = only(actions, StreamInvoke).batch
    m.finished(1.0, batch.id, SUCCESS_OUTCOME)
    assert m.poll(1.0)[0] == Checkpoint(1, "shardId-000000000001", 100)


def test_unknown_checkpoint_shard_is_refused() -> None:
    with pytest.raises(ConfigError, match="checkpoints"):
        make(shards=2, checkpoints={2: 5})


def test_mapping_for_another_stream_is_refused() -> None:
    with pytest.raises(ConfigError, match="stream"):
        StreamMapping(StreamMappingConfig("a", "f"), StreamConfig("b"), pool=ConcurrencyPool())


def test_driver_bugs_raise() -> None:
    m = make()
    with pytest.raises(RuntimeError, match="no fetch outstanding"):
        m.fetched(0.0, 0, [])
    m.poll(0.0)
    with pytest.raises(RuntimeError, match="out of order"):
        m.fetched(0.0, 0, [rec(2), rec(1)])
    with pytest.raises(RuntimeError, match="out of order"):
        m.fetched(0.0, 0, [rec(1, shard=1)])
    with pytest.raises(RuntimeError, match="position"):
        m.fetched(0.0, 0, [rec(5)], position=3)
    with pytest.raises(RuntimeError, match="not in flight"):
        m.finished(0.0, 12, SUCCESS_OUTCOME)


# ---------------------------------------------------------------------- batching


def test_success_invokes_then_checkpoints_the_last_record() -> None:
    m = make()
    m.poll(0.0)
    records = [rec(1, at=0.0), rec(2, at=1.0), rec(3, at=2.0)]
    actions = feed(m, 5.0, records)
    invoke = only(actions, StreamInvoke)
    assert invoke.batch.records == tuple(records)
    assert (invoke.batch.retries, invoke.batch.invoke_count, invoke.batch.lane) == (0, 1, 0)
    assert m.iterator_age_ms == 3000.0  # the last record's age
    assert m.take_max_iterator_age() == 3000.0
    assert m.take_max_iterator_age() is None
    assert m.in_flight == 1
    m.finished(5.5, invoke.batch.id, SUCCESS_OUTCOME)
    assert m.poll(5.5) == [Checkpoint(0, "shardId-000000000000", 3)]
    stats = m.statistics()
    assert (stats.invocations, stats.invoked_records, stats.polled_records) == (1, 3, 3)
    assert m.idle  # the next fetch is only a timer
    assert m.next_wakeup(5.5) == 5.0 + POLL_INTERVAL


def test_batch_size_splits_and_one_batch_per_lane() -> None:
    m = make(batch_size=2)
    m.poll(0.0)
    actions = feed(m, 0.0, [rec(i) for i in range(1, 6)])
    first = only(actions, StreamInvoke).batch
    assert seqs(first) == [1, 2]
    assert m.poll(0.0) == [] and m.in_flight == 1
    m.finished(1.0, first.id, SUCCESS_OUTCOME)
    actions = m.poll(1.0)
    assert only(actions, Checkpoint).sequence_number == 2
    second = only(actions, StreamInvoke).batch
    assert seqs(second) == [3, 4]


def test_payload_cap_splits_batches() -> None:
    m = make(batch_size=100)
    m.poll(0.0)
    big = 2 * 1024 * 1024
    actions = feed(m, 0.0, [rec(i, size=big) for i in range(1, 6)])
    batch = only(actions, StreamInvoke).batch
    assert seqs(batch) == [1, 2, 3] and batch.size <= MAX_PAYLOAD_BYTES


def test_batching_window_waits_unless_full() -> None:
    m = make(batch_size=4, maximum_batching_window=2)
    m.poll(0.0)
    m.fetched(0.5, 0, [rec(1), rec(2)])
    assert of(m.poll(0.5), StreamInvoke) == []
    assert m.next_wakeup(0.5) == 1.5  # the next fetch comes before the window ends
    assert only(m.poll(1.5), Fetch).after_sequence == 2
    m.fetched(1.5, 0, [rec(3)])
    assert of(m.poll(1.5), StreamInvoke) == []
    assert m.next_wakeup(1.6) == 2.5  # window opened at 0.5
    actions = m.poll(2.5)
    batch = only(actions, StreamInvoke).batch
    assert seqs(batch) == [1, 2, 3]
    # the next window opens no earlier than the end of the invocation
    assert only(actions, Fetch).after_sequence == 3
    m.fetched(3.0, 0, [rec(4)])
    m.finished(4.0, batch.id, SUCCESS_OUTCOME)
    assert of(m.poll(4.0), StreamInvoke) == []
    assert of(m.poll(5.9), StreamInvoke) == []
    assert seqs(only(m.poll(6.0), StreamInvoke).batch) == [4]


def test_a_full_lane_does_not_wait_for_its_window() -> None:
    m = make(batch_size=2, maximum_batching_window=60)
    m.poll(0.0)
    assert seqs(only(feed(m, 0.0, [rec(1), rec(2)]), StreamInvoke).batch) == [1, 2]


# ---------------------------------------------------------------------- lanes


def test_keys_keep_their_order_across_lanes() -> None:
    a, b = keys_by_lane(2)
    m = make(parallelization_factor=2, batch_size=10)
    m.poll(0.0)
    actions = feed(m, 0.0, [rec(1, a), rec(2, b), rec(3, a), rec(4, b)])
    invokes = {i.batch.lane: i.batch for i in of(actions, StreamInvoke)}
    assert seqs(invokes[0]) == [1, 3] and seqs(invokes[1]) == [2, 4]
    assert m.in_flight == 2
    # more of key a arrive: its lane is busy, so they wait; key b's lane too
    m.poll(1.0)
    actions = feed(m, 1.0, [rec(5, a), rec(6, b)])
    assert of(actions, StreamInvoke) == []
    m.finished(2.0, invokes[1].id, SUCCESS_OUTCOME)
    actions = m.poll(2.0)
    assert seqs(only(actions, StreamInvoke).batch) == [6]
    assert of(actions, Checkpoint) == []  # record 1 (lane 0) is not settled yet


def test_concurrency_is_shards_times_factor() -> None:
    keys = keys_by_lane(3)
    m = make(shards=2, parallelization_factor=3)
    m.poll(0.0)
    for shard in (0, 1):
        m.fetched(0.0, shard, [rec(10 + i, k, shard=shard) for i, k in enumerate(keys * 2)])
    invokes = of(m.poll(0.0), StreamInvoke)
    assert len(invokes) == 6 == m.in_flight == m.statistics().lanes
    assert {(i.batch.shard, i.batch.lane) for i in invokes} == {
        (s, lane) for s in (0, 1) for lane in range(3)
    }
    assert sorted(s.in_flight for s in m.shard_statistics()) == [3, 3]


def test_checkpoint_never_passes_an_unsettled_record_of_another_lane() -> None:
    a, b = keys_by_lane(2)
    m = make(parallelization_factor=2)
    m.poll(0.0)
    actions = feed(m, 0.0, [rec(1, a), rec(2, b), rec(3, a), rec(4, b)])
    by_lane = {i.batch.lane: i.batch for i in of(actions, StreamInvoke)}
    m.finished(1.0, by_lane[1].id, SUCCESS_OUTCOME)  # 2 and 4 settled, 1 and 3 not
    assert of(m.poll(1.0), Checkpoint) == []
    assert m.checkpoints == {}
    m.finished(2.0, by_lane[0].id, SUCCESS_OUTCOME)
    assert of(m.poll(2.0), Checkpoint) == [Checkpoint(0, "shardId-000000000000", 4)]


def test_checkpoint_stops_below_the_first_unsettled_record() -> None:
    a, b = keys_by_lane(2)
    m = make(parallelization_factor=2)
    m.poll(0.0)
    actions = feed(m, 0.0, [rec(1, a), rec(2, b), rec(3, a)])
    by_lane = {i.batch.lane: i.batch for i in of(actions, StreamInvoke)}
    m.finished(1.0, by_lane[0].id, SUCCESS_OUTCOME)  # 1 and 3 settled, 2 not
    assert only(m.poll(1.0), Checkpoint).sequence_number == 1


# ---------------------------------------------------------------------- failures


def test_function_error_retries_the_whole_batch_and_blocks_the_lane() -> None:
    m = make(batch_size=2)
    m.poll(0.0)
    first = only(feed(m, 0.0, [rec(1), rec(2), rec(3)]), StreamInvoke).batch
    m.finished(1.0, first.id, error(first))
    assert of(m.poll(1.0), StreamInvoke) == []
    assert m.next_wakeup(1.0) == 1.0 + RETRY_DELAY
    retry = only(m.poll(1.0 + RETRY_DELAY), StreamInvoke).batch
    assert retry.records == first.records and retry.id != first.id
    assert (retry.retries, retry.invoke_count) == (1, 2)
    assert m.checkpoints == {}
    assert (m.errors, m.failed_records) == (1, 2)
    m.finished(3.0, retry.id, SUCCESS_OUTCOME)
    actions = m.poll(3.0)
    assert only(actions, Checkpoint).sequence_number == 2
    assert seqs(only(actions, StreamInvoke).batch) == [3]


def test_retry_exhaustion_discards_to_the_destination_and_moves_on() -> None:
    m = make(batch_size=2, maximum_retry_attempts=2, on_failure="dlq")
    m.poll(0.0)
    batch = only(feed(m, 10.0, [rec(1, at=9.0), rec(2, at=9.5), rec(3)]), StreamInvoke).batch
    now = 10.0
    for attempt in range(3):
        assert batch.retries == attempt
        now += 1
        m.finished(now, batch.id, error(batch), request_id=f"req-{attempt}")
        if attempt < 2:
            now += RETRY_DELAY
            batch = only(m.poll(now), StreamInvoke).batch
    actions = m.poll(now)
    send = actions[0]
    assert isinstance(send, SendToDestination)
    assert actions[1] == Checkpoint(0, "shardId-000000000000", 2)  # after the send
    assert send.destination == "dlq" and send.condition == "RetryAttemptsExhausted"
    assert send.record["requestContext"] == {
        "requestId": "req-2", "functionArn": "arn:f", "condition": "RetryAttemptsExhausted",
        "approximateInvokeCount": 3,
    }
    assert send.record["responseContext"]["functionError"] == "Unhandled"
    info = send.record["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (
        "1", "2", 2)
    assert info["streamArn"] == "arn:s" and info["shardId"] == "shardId-000000000000"
    assert seqs(only(actions, StreamInvoke).batch) == [3]
    stats = m.statistics()
    assert (stats.discarded_records, stats.dropped_records) == (2, 0)


def test_zero_retries_without_destination_drops() -> None:
    m = make(maximum_retry_attempts=0)
    m.poll(0.0)
    batch = only(feed(m, 0.0, [rec(1), rec(2)]), StreamInvoke).batch
    m.finished(0.5, batch.id, error(batch))
    assert m.poll(0.5) == [Checkpoint(0, "shardId-000000000000", 2)]
    assert (m.discarded_records, m.dropped_records) == (2, 2)


def test_bisect_splits_without_using_retries() -> None:
    m = make(bisect_batch_on_function_error=True, maximum_retry_attempts=0, on_failure="dlq")
    m.poll(0.0)
    whole = only(feed(m, 0.0, [rec(i) for i in range(1, 5)]), StreamInvoke).batch
    m.finished(1.0, whole.id, error(whole))
    half = only(m.poll(2.0), StreamInvoke).batch
    assert seqs(half) == [1, 2] and half.retries == 0 and half.invoke_count == 2
    m.finished(3.0, half.id, error(half))
    quarter = only(m.poll(4.0), StreamInvoke).batch
    assert seqs(quarter) == [1] and quarter.retries == 0 and quarter.invoke_count == 3
    m.finished(5.0, quarter.id, error(quarter))  # one record, no retries left: discarded
    actions = m.poll(5.0)
    send = only(actions, SendToDestination)
    assert send.record["KinesisBatchInfo"]["batchSize"] == 1
    assert send.record["requestContext"]["approximateInvokeCount"] == 3
    assert only(actions, Checkpoint).sequence_number == 1
    other = only(actions, StreamInvoke).batch  # the other quarter, without waiting
    assert seqs(other) == [2]
    m.finished(6.0, other.id, SUCCESS_OUTCOME)
    second_half = only(m.poll(6.0), StreamInvoke).batch
    assert seqs(second_half) == [3, 4] and second_half.retries == 0
    m.finished(7.0, second_half.id, SUCCESS_OUTCOME)
    assert only(m.poll(7.0), Checkpoint).sequence_number == 4
    assert (m.processed_records, m.discarded_records) == (3, 1)


def test_partial_failure_checkpoints_before_the_lowest_failed_record() -> None:
    m = make(report_batch_item_failures=True)
    m.poll(0.0)
    batch = only(feed(m, 0.0, [rec(i) for i in range(1, 6)]), StreamInvoke).batch
    m.finished(0.5, batch.id, partial(batch, 4, 3))
    assert m.poll(0.5) == [Checkpoint(0, "shardId-000000000000", 2)]
    assert of(m.poll(0.5 + RETRY_DELAY - 0.01), StreamInvoke) == []
    retry = only(m.poll(0.5 + RETRY_DELAY), StreamInvoke).batch
    assert seqs(retry) == [3, 4, 5] and retry.retries == 1
    assert (m.partial, m.failed_records) == (1, 3)
    assert m.processed_records == 2  # the records before the lowest failed one
    m.finished(3.0, retry.id, SUCCESS_OUTCOME)
    assert only(m.poll(3.0), Checkpoint).sequence_number == 5
    assert m.processed_records == 5  # each record counted once, when it succeeded


def test_partial_failure_with_bisect_retries_the_remainder() -> None:
    m = make(report_batch_item_failures=True, bisect_batch_on_function_error=True,
             maximum_retry_attempts=1)
    m.poll(0.0)
    batch = only(feed(m, 0.0, [rec(i) for i in range(1, 7)]), StreamInvoke).batch
    m.finished(1.0, batch.id, partial(batch, 5))
    retry = only(m.poll(2.0), StreamInvoke).batch
    assert seqs(retry) == [5, 6] and retry.retries == 1
    m.finished(3.0, retry.id, partial(retry, 6))  # partial failures use retries too
    actions = m.poll(3.0)
    assert only(actions, Checkpoint).sequence_number == 6  # 5 done, 6 discarded
    assert m.discarded_records == 1


def test_invalid_item_identifier_fails_the_whole_batch() -> None:
    m = make(report_batch_item_failures=True)
    m.poll(0.0)
    batch = only(feed(m, 0.0, [rec(1), rec(2)]), StreamInvoke).batch
    outcome = partial(batch, 99)
    assert outcome.kind is OutcomeKind.ERROR
    m.finished(1.0, batch.id, outcome)
    assert of(m.poll(1.0), Checkpoint) == []
    retry = only(m.poll(2.0), StreamInvoke).batch
    assert seqs(retry) == [1, 2]
    # a PARTIAL naming a record outside the batch (built by hand) is treated the same
    m.finished(3.0, retry.id, BatchOutcome(OutcomeKind.PARTIAL, frozenset({"7"})))
    assert m.errors == 2 and m.partial == 0
    assert seqs(only(m.poll(4.0), StreamInvoke).batch) == [1, 2]


def test_record_age_discards_before_a_retry() -> None:
    m = make(maximum_record_age=60, on_failure="dlq")
    m.poll(0.0)
    batch = only(feed(m, 10.0, [rec(1, at=5.0), rec(2, at=6.0)]), StreamInvoke).batch
    m.finished(30.0, batch.id, error(batch), request_id="r1")
    retry = only(m.poll(31.0), StreamInvoke).batch
    m.finished(66.0, retry.id, error(retry), request_id="r2")
    actions = m.poll(67.0)  # record 1 is 62 s old
    send = only(actions, SendToDestination)
    assert send.condition == "RecordAgeExceeded"
    assert send.record["requestContext"]["requestId"] == "r2"
    assert send.record["requestContext"]["approximateInvokeCount"] == 2
    assert only(actions, Checkpoint).sequence_number == 2


def test_records_already_too_old_are_discarded_without_invoking() -> None:
    m = make(maximum_record_age=60, on_failure="dlq", batch_size=1)
    m.poll(0.0)
    actions = feed(m, 100.0, [rec(1, at=10.0), rec(2, at=90.0)])
    send = only(actions, SendToDestination)
    assert send.record["responseContext"] == {}
    assert send.record["requestContext"]["approximateInvokeCount"] == 0
    assert seqs(only(actions, StreamInvoke).batch) == [2]
    assert only(actions, Checkpoint).sequence_number == 1


def test_records_past_retention_expire_silently() -> None:
    m = make(on_failure="dlq")
    m.poll(0.0)
    batch = only(feed(m, 0.0, [rec(1, at=0.0), rec(2, at=100.0)]), StreamInvoke).batch
    m.finished(1.0, batch.id, error(batch))
    retry = only(m.poll(2.0), StreamInvoke).batch
    assert seqs(retry) == [1, 2]
    m.finished(DAY + 10, retry.id, error(retry))
    actions = m.poll(DAY + 11)  # record 1 arrived a day ago: gone from the shard
    assert of(actions, SendToDestination) == []
    assert only(actions, Checkpoint).sequence_number == 1
    assert seqs(only(actions, StreamInvoke).batch) == [2]
    assert m.expired_records == 1 and m.discarded_records == 0


def test_filtered_records_are_settled_without_invoking() -> None:
    m = make(record_filter=lambda r: r.partition_key != "skip")
    m.poll(0.0)
    actions = feed(m, 0.0, [rec(1, "skip"), rec(2), rec(3, "skip")])
    assert seqs(only(actions, StreamInvoke).batch) == [2]
    assert only(actions, Checkpoint).sequence_number == 1
    assert m.filtered_records == 2


# ---------------------------------------------------------------------- throttles


def test_throttles_back_off_and_do_not_count_as_retries() -> None:
    pool = ConcurrencyPool(AccountConfig(concurrency_limit=200, min_unreserved=100))
    pool.register(FunctionConfig("f", reserved_concurrency=1))
    assert pool.try_acquire("f")  # another mapping holds the only slot
    m = make(pool=pool, maximum_retry_attempts=0)
    m.poll(0.0)
    assert of(feed(m, 0.0, [rec(1)]), StreamInvoke) == []
    assert m.throttles == 1
    assert m.next_wakeup(0.0) == STREAM_THROTTLE_BACKOFF_BASE
    m.poll(1.0)
    assert m.throttles == 2
    assert m.next_wakeup(1.0) == 3.0  # doubled
    pool.release("f")
    m.fetched(1.0, 0, [])
    invoke = only(m.poll(3.0), StreamInvoke)
    assert (invoke.batch.retries, invoke.batch.throttles, invoke.batch.invoke_count) == (0, 2, 1)
    assert pool.in_use("f") == 1
    m.finished(4.0, invoke.batch.id, SUCCESS_OUTCOME)
    assert pool.in_use("f") == 0 and m.discarded_records == 0


def test_pool_slots_follow_invocations() -> None:
    pool = ConcurrencyPool()
    keys = keys_by_lane(4)
    m = make(pool=pool, parallelization_factor=4)
    m.poll(0.0)
    invokes = of(feed(m, 0.0, [rec(i + 1, k) for i, k in enumerate(keys)]), StreamInvoke)
    assert pool.in_use("f") == 4
    for i in invokes:
        m.finished(1.0, i.batch.id, SUCCESS_OUTCOME)
    assert pool.in_use("f") == 0


# ---------------------------------------------------------------------- pause


def test_pause_stops_fetching_and_invoking_and_resume_continues() -> None:
    m = make(batch_size=1)
    m.poll(0.0)
    first = only(feed(m, 0.0, [rec(1), rec(2)]), StreamInvoke).batch
    m.pause(0.5)
    assert m.stopping
    m.finished(1.0, first.id, SUCCESS_OUTCOME)
    actions = m.poll(1.0)
    assert actions == [Checkpoint(0, "shardId-000000000000", 1)]
    assert m.poll(5.0) == []
    assert m.idle and not m.stopping and m.paused
    assert m.next_wakeup(5.0) is None
    m.resume(6.0)
    actions = m.poll(6.0)
    assert seqs(only(actions, StreamInvoke).batch) == [2]
    assert only(actions, Fetch).after_sequence == 2


def test_disabled_mapping_starts_paused() -> None:
    m = make(enabled=False)
    assert m.paused and m.poll(0.0) == [] and m.idle
    m.resume(0.0)
    only(m.poll(0.0), Fetch)
