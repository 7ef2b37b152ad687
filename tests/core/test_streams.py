"""Streams: Kinesis routing, stream and mapping configuration, responses, on-failure records."""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sluicegate.core.results import (
    INVALID_JSON,
    exception_outcome,
    interpret_response,
    timeout_outcome,
)
from sluicegate.core.streams import (
    CONDITION_RETRY_ATTEMPTS_EXHAUSTED,
    DEFAULT_STREAM_RETENTION,
    HASH_KEY_SPACE,
    StreamBatch,
    StreamConfig,
    StreamMappingConfig,
    StreamRecord,
    check_partition_key,
    hash_key,
    hash_key_range,
    hash_key_ranges,
    lane_for_partition_key,
    on_failure_record,
    shard_for_hash_key,
    shard_for_partition_key,
    shard_id,
)
from sluicegate.core.types import OutcomeKind
from sluicegate.errors import ConfigError, InputError

# ---------------------------------------------------------------------- routing

KNOWN_MD5 = {
    # RFC 1321 test suite and widely published digests
    "a": "0cc175b9c0f1b6a831c399e269772661",
    "abc": "900150983cd24fb0d6963f7d28e17f72",
    "message digest": "f96b697d7cb7938d525a2f31aaf161d0",
    "hello": "5d41402abc4b2a76b9719d911017c592",
}


@pytest.mark.parametrize("key,digest", sorted(KNOWN_MD5.items()))
def test_hash_key_is_the_md5_as_a_big_endian_integer(key: str, digest: str) -> None:
    assert hash_key(key) == int(digest, 16)


@pytest.mark.parametrize(
    "key,shard_count,expected",
    [
        ("a", 1, 0),
        ("a", 2, 0),  # 0x0cc1... is in the lower half
        ("a", 16, 0),  # top nibble 0
        ("abc", 2, 1),  # 0x9001... upper half
        ("abc", 16, 9),  # top nibble 9
        ("message digest", 16, 15),  # top nibble f
        ("message digest", 4, 3),
        ("hello", 4, 1),  # 0x5d = 0101 1101: top two bits 01
        ("hello", 16, 5),
        ("hello", 3, 1),  # 0x5d41.../2**128 = 0.364, in [1/3, 2/3)
    ],
)
def test_routing_of_known_keys(key: str, shard_count: int, expected: int) -> None:
    assert shard_for_partition_key(key, shard_count) == expected


def test_ranges_match_kinesis_for_three_shards() -> None:
    # What Kinesis's DescribeStream shows for a new three-shard stream.
    ranges = hash_key_ranges(3)
    assert [(r.starting_hash_key, r.ending_hash_key) for r in ranges] == [
        (0, 113427455640312821154458202477256070484),
        (113427455640312821154458202477256070485, 226854911280625642308916404954512140969),
        (226854911280625642308916404954512140970, 340282366920938463463374607431768211455),
    ]
    assert [r.shard_id for r in ranges] == [
        "shardId-000000000000", "shardId-000000000001", "shardId-000000000002"
    ]


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 10, 13, 64, 1000])
def test_ranges_cover_the_space_and_every_boundary_routes_right(n: int) -> None:
    ranges = hash_key_ranges(n)
    assert ranges[0].starting_hash_key == 0
    assert ranges[-1].ending_hash_key == HASH_KEY_SPACE - 1
    for before, after in itertools.pairwise(ranges):
        assert after.starting_hash_key == before.ending_hash_key + 1
    for r in ranges:
        assert r.starting_hash_key == r.shard * HASH_KEY_SPACE // n
        assert shard_for_hash_key(r.starting_hash_key, n) == r.shard
        assert shard_for_hash_key(r.ending_hash_key, n) == r.shard
        assert hash_key_range(r.shard, n) == r


def test_routing_agrees_with_the_ranges_for_many_keys() -> None:
    for n in (3, 7, 11):
        ranges = hash_key_ranges(n)
        for i in range(500):
            key = f"order-{i}"
            h = int(hashlib.md5(key.encode()).hexdigest(), 16)
            shard = shard_for_partition_key(key, n)
            assert ranges[shard].starting_hash_key <= h <= ranges[shard].ending_hash_key


def test_routing_is_even() -> None:
    counts = Counter(shard_for_partition_key(f"key-{i}", 8) for i in range(40_000))
    assert sorted(counts) == list(range(8))
    for count in counts.values():
        assert abs(count - 5000) < 300  # about 4 standard deviations


def test_shard_ids() -> None:
    assert shard_id(0) == "shardId-000000000000"
    assert shard_id(12) == "shardId-000000000012"
    assert StreamConfig("s", shard_count=2).shard_ids() == [
        "shardId-000000000000", "shardId-000000000001"
    ]


def test_partition_key_length_is_checked_in_characters() -> None:
    assert check_partition_key("k" * 256) == "k" * 256
    assert shard_for_partition_key("é" * 256, 4) in range(4)  # 512 bytes, 256 characters
    with pytest.raises(InputError, match="1-256"):
        shard_for_partition_key("", 4)
    with pytest.raises(InputError, match="257 characters"):
        shard_for_partition_key("k" * 257, 4)
    with pytest.raises(InputError):
        check_partition_key(42)


def test_bad_shard_counts_and_hash_keys() -> None:
    with pytest.raises(ConfigError):
        shard_for_partition_key("a", 0)
    with pytest.raises(ValueError):
        shard_for_hash_key(HASH_KEY_SPACE, 2)
    with pytest.raises(ValueError):
        hash_key_range(2, 2)


def test_lanes_are_stable_in_range_and_spread() -> None:
    assert lane_for_partition_key("anything", 1) == 0
    lanes = [lane_for_partition_key(f"user-{i}", 10) for i in range(10_000)]
    assert lanes == [lane_for_partition_key(f"user-{i}", 10) for i in range(10_000)]
    counts = Counter(lanes)
    assert sorted(counts) == list(range(10))
    assert min(counts.values()) > 850


# ---------------------------------------------------------------------- configuration


def test_stream_config_defaults_and_ranges() -> None:
    s = StreamConfig("orders")
    assert (s.shard_count, s.retention_period) == (1, DEFAULT_STREAM_RETENTION) == (1, 86_400)
    assert StreamConfig("o.r-d_s", 4, timedelta(days=365)).retention_period == 31_536_000
    for bad in (
        dict(name=""),
        dict(name="has space"),
        dict(name="x" * 129),
        dict(name="s", shard_count=0),
        dict(name="s", shard_count=1.5),
        dict(name="s", retention_period=86_399),
        dict(name="s", retention_period=31_536_001),
    ):
        with pytest.raises(ConfigError):
            StreamConfig(**bad)  # type: ignore[arg-type]


def test_stream_config_error_is_one_line() -> None:
    with pytest.raises(ConfigError) as info:
        StreamConfig("s", retention_period=3600)
    assert str(info.value) == (
        "stream 's': retention_period=3600 is invalid: allowed 86,400-31,536,000 s"
    )
    assert info.value.parameter == "retention_period"


def test_mapping_config_defaults() -> None:
    c = StreamMappingConfig("s", "f")
    assert c.name == "s->f"
    assert c.starting_position == "TRIM_HORIZON"
    assert c.starting_position_timestamp is None
    assert (c.batch_size, c.maximum_batching_window, c.parallelization_factor) == (100, 0, 1)
    assert c.bisect_batch_on_function_error is False
    assert (c.maximum_retry_attempts, c.maximum_record_age) == (-1, -1)
    assert c.on_failure is None
    assert c.report_batch_item_failures is False
    assert c.enabled is True


def test_mapping_config_accepts_the_edges() -> None:
    c = StreamMappingConfig(
        "s", "f", starting_position="LATEST", batch_size=10_000, maximum_batching_window=300,
        parallelization_factor=10, maximum_retry_attempts=10_000, maximum_record_age=604_800,
        on_failure="dlq", bisect_batch_on_function_error=True, report_batch_item_failures=True,
    )
    assert c.batch_size == 10_000 and c.maximum_record_age == 604_800
    assert StreamMappingConfig("s", "f", maximum_record_age=60).maximum_record_age == 60
    assert StreamMappingConfig("s", "f", maximum_retry_attempts=0).maximum_retry_attempts == 0
    assert StreamMappingConfig(
        "s", "f", maximum_record_age=timedelta(minutes=2)  # type: ignore[arg-type]
    ).maximum_record_age == 120


def test_at_timestamp_needs_a_timestamp() -> None:
    c = StreamMappingConfig("s", "f", starting_position="AT_TIMESTAMP",
                            starting_position_timestamp=1_700_000_000)
    assert c.starting_position_timestamp == 1_700_000_000.0
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    c = StreamMappingConfig("s", "f", starting_position="AT_TIMESTAMP",
                            starting_position_timestamp=moment)  # type: ignore[arg-type]
    assert c.starting_position_timestamp == moment.timestamp()
    with pytest.raises(ConfigError, match="starting_position_timestamp=None"):
        StreamMappingConfig("s", "f", starting_position="AT_TIMESTAMP")
    with pytest.raises(ConfigError, match="only with starting_position AT_TIMESTAMP"):
        StreamMappingConfig("s", "f", starting_position="LATEST", starting_position_timestamp=5)
    with pytest.raises(ConfigError):
        StreamMappingConfig("s", "f", starting_position="AT_TIMESTAMP",
                            starting_position_timestamp=datetime(2024, 1, 1))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "parameter,value",
    [
        ("starting_position", "EARLIEST"),
        ("batch_size", 0),
        ("batch_size", 10_001),
        ("batch_size", True),
        ("maximum_batching_window", 301),
        ("maximum_batching_window", -1),
        ("parallelization_factor", 0),
        ("parallelization_factor", 11),
        ("maximum_retry_attempts", -2),
        ("maximum_retry_attempts", 10_001),
        ("maximum_retry_attempts", True),
        ("maximum_record_age", 0),
        ("maximum_record_age", 59),
        ("maximum_record_age", -2),
        ("maximum_record_age", 604_801),
        ("on_failure", ""),
        ("on_failure", "not a queue"),
        ("bisect_batch_on_function_error", 1),
        ("report_batch_item_failures", "yes"),
        ("enabled", None),
    ],
)
def test_mapping_config_refusals(parameter: str, value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        StreamMappingConfig("s", "f", **{parameter: value})
    assert info.value.parameter == parameter
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"mapping s->f: {parameter}=")


def test_age_refusal_names_both_forms() -> None:
    with pytest.raises(ConfigError, match=r"allowed -1 \(no limit\) or 60-604,800 s"):
        StreamMappingConfig("s", "f", maximum_record_age=30)


# ---------------------------------------------------------------------- responses


def _batch(*seqs: int, shard: int = 1, arrival: float = 1_700_000_000.0) -> StreamBatch:
    records = tuple(
        StreamRecord(shard, s, f"k{s}", b"x", arrival + i, 10) for i, s in enumerate(seqs)
    )
    return StreamBatch(7, shard, 0, records)


def test_stream_batch_views() -> None:
    b = _batch(5, 9, 12)
    assert (b.first_sequence_number, b.last_sequence_number, b.size) == (5, 12, 30)
    assert b.message_ids == frozenset({"5", "9", "12"})
    assert b.item_name == "sequence number"
    assert b.shard_id == "shardId-000000000001"


def test_item_identifiers_are_sequence_numbers() -> None:
    b = _batch(5, 9, 12)
    response = {"batchItemFailures": [{"itemIdentifier": "9"}, {"itemIdentifier": "12"}]}
    outcome = interpret_response(response, b, report_batch_item_failures=True)
    assert outcome.kind is OutcomeKind.PARTIAL
    assert outcome.failed == {"9", "12"}


@pytest.mark.parametrize(
    "response",
    [
        {"batchItemFailures": [{"itemIdentifier": "10"}]},  # not in the batch
        {"batchItemFailures": [{"itemIdentifier": 9}]},  # not a string
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"id": "9"}]},
        {"batchItemFailures": "9"},
        ["9"],
        INVALID_JSON,
    ],
)
def test_invalid_responses_fail_the_whole_batch(response: Any) -> None:
    outcome = interpret_response(response, _batch(5, 9), report_batch_item_failures=True)
    assert outcome.kind is OutcomeKind.ERROR
    assert "messageId" not in outcome.reason


def test_unknown_sequence_number_reason() -> None:
    outcome = interpret_response(
        {"batchItemFailures": [{"itemIdentifier": "10"}]}, _batch(5), report_batch_item_failures=True
    )
    assert outcome.reason == "invalid itemIdentifier '10': not a sequence number of the batch"


@pytest.mark.parametrize("response", [None, {}, {"batchItemFailures": []},
                                      {"batchItemFailures": None}])
def test_empty_responses_succeed(response: Any) -> None:
    outcome = interpret_response(response, _batch(5), report_batch_item_failures=True)
    assert outcome.kind is OutcomeKind.SUCCESS


def test_response_ignored_without_the_option() -> None:
    outcome = interpret_response(["garbage"], _batch(5), report_batch_item_failures=False)
    assert outcome.kind is OutcomeKind.SUCCESS


def test_exception_and_timeout_outcomes() -> None:
    b = _batch(5)
    assert exception_outcome(b, "ValueError: x").reason == "exception: ValueError: x"
    assert timeout_outcome(b).kind is OutcomeKind.ERROR


def test_on_failure_record_shape() -> None:
    b = _batch(5, 9, 12, arrival=1_573_691_884.835)
    b.invoke_count = 3
    record = on_failure_record(
        b,
        condition=CONDITION_RETRY_ATTEMPTS_EXHAUSTED,
        now=1_573_691_886.021,
        function_arn="arn:aws:lambda:us-east-2:123456789012:function:f",
        stream_arn="arn:aws:kinesis:us-east-2:123456789012:stream/s",
        request_id="req-1",
        function_error="Unhandled",
    )
    assert record == {
        "requestContext": {
            "requestId": "req-1",
            "functionArn": "arn:aws:lambda:us-east-2:123456789012:function:f",
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 3,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "version": "1.0",
        "timestamp": "2019-11-14T00:38:06.021Z",
        "KinesisBatchInfo": {
            "shardId": "shardId-000000000001",
            "startSequenceNumber": "5",
            "endSequenceNumber": "12",
            "approximateArrivalOfFirstRecord": "2019-11-14T00:38:04.835Z",
            "approximateArrivalOfLastRecord": "2019-11-14T00:38:06.835Z",
            "batchSize": 3,
            "streamArn": "arn:aws:kinesis:us-east-2:123456789012:stream/s",
        },
    }


def test_on_failure_record_of_a_batch_never_invoked() -> None:
    record = on_failure_record(
        _batch(5), condition="RecordAgeExceeded", now=0.0, function_arn="f",
        stream_arn="s", request_id=None, function_error=None,
    )
    assert record["responseContext"] == {}
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert record["requestContext"]["requestId"] is None
    assert record["timestamp"] == "1970-01-01T00:00:00.000Z"
