"""A StreamMapping driven at random by a tiny fake driver: AWS's stream rules always hold.

The fake driver keeps each shard's records (routed by partition key as Kinesis routes
them), answers fetches (sometimes late), finishes invocations with random outcomes
(success, function error, partial failure of a random item), and moves time forward.
It settles records itself from the outcomes it chose, by AWS's rules, and checks:

- every invoked batch comes from one lane of one shard, its records in sequence order and
  routed to that lane by their key; at most one batch per lane in flight; never more than
  shards x parallelization_factor in flight, never more than the pool allows;
- per partition key, records are first delivered in sequence order, and succeed in
  sequence order; no record is invoked again after it succeeded or was discarded;
- retry attempts never exceed maximum_retry_attempts; a RetryAttemptsExhausted discard
  comes only with the attempts used; a RecordAgeExceeded discard only with a record older
  than maximum_record_age;
- checkpoints only go up, and never pass a record that is not settled;
- drained with successes only, every record is settled exactly once (succeeded or
  discarded), every shard's checkpoint reaches its last record, and paused the mapping
  becomes idle.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sluicegate.core.config import AccountConfig, FunctionConfig
from sluicegate.core.pool import ConcurrencyPool
from sluicegate.core.results import SUCCESS_OUTCOME, exception_outcome, interpret_response
from sluicegate.core.stream_mapping import StreamMapping
from sluicegate.core.streams import (
    CONDITION_RECORD_AGE_EXCEEDED,
    CONDITION_RETRY_ATTEMPTS_EXHAUSTED,
    Checkpoint,
    Fetch,
    SendToDestination,
    StreamBatch,
    StreamConfig,
    StreamInvoke,
    StreamMappingConfig,
    StreamRecord,
    lane_for_partition_key,
    shard_for_partition_key,
)

KEYS = ["a", "b", "c", "d", "e", "f", "g"]


@dataclass
class Driver:
    m: StreamMapping
    config: StreamMappingConfig
    shards: int
    pool: ConcurrencyPool
    now: float = 0.0
    log: dict[int, list[StreamRecord]] = field(default_factory=lambda: defaultdict(list))
    next_seq: dict[int, int] = field(default_factory=lambda: defaultdict(lambda: 100))
    fetches: dict[int, Fetch] = field(default_factory=dict)
    in_flight: dict[int, StreamBatch] = field(default_factory=dict)
    lanes_busy: set[tuple[int, int]] = field(default_factory=set)
    settled: dict[tuple[int, int], str] = field(default_factory=dict)
    first_delivered: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    seen: set[tuple[int, int]] = field(default_factory=set)
    succeeded: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    checkpoints: dict[int, int] = field(default_factory=dict)
    pending_discards: list[StreamBatch] = field(default_factory=list)
    hogged: int = 0
    age_discards: int = 0
    attempts_used: dict[tuple[int, int], int] = field(default_factory=lambda: defaultdict(int))
    """Per record: failed invocations that used a retry attempt (AWS's rules: a function
    error that was not bisected, or a partial failure at or after the lowest failed item)."""

    # -- the stream

    def put(self, key: str) -> None:
        shard = shard_for_partition_key(key, self.shards)
        seq = self.next_seq[shard]
        self.next_seq[shard] = seq + 1 + seq % 3  # gaps, as real sequence numbers have
        self.log[shard].append(StreamRecord(shard, seq, key, None, self.now, 50))

    def settle(self, record: StreamRecord, how: str) -> None:
        ident = (record.shard, record.sequence_number)
        assert ident not in self.settled, (ident, self.settled[ident], how)
        self.settled[ident] = how

    # -- actions

    def poll(self) -> None:
        m = self.m
        actions = m.poll(self.now)
        seen_checkpoint = False
        for a in actions:
            if isinstance(a, SendToDestination):
                assert not seen_checkpoint, "a destination record after a checkpoint"
                self.on_discard(a)
            elif isinstance(a, Checkpoint):
                seen_checkpoint = True
                self.on_checkpoint(a)
            elif isinstance(a, Fetch):
                assert a.shard not in self.fetches
                assert not m.paused
                assert a.max_records >= 1
                self.fetches[a.shard] = a
            else:
                assert isinstance(a, StreamInvoke)
                assert not m.paused
                self.on_invoke(a.batch)
        assert m.in_flight == len(self.in_flight) <= self.shards * self.config.parallelization_factor
        assert self.pool.in_use("f") == m.in_flight + self.hogged
        assert self.pool.in_use("f") <= self.pool.capacity("f")

    def on_invoke(self, batch: StreamBatch) -> None:
        config = self.config
        assert batch.id not in self.in_flight
        lane = (batch.shard, batch.lane)
        assert lane not in self.lanes_busy, "two batches in flight in one lane"
        self.lanes_busy.add(lane)
        self.in_flight[batch.id] = batch
        assert 1 <= len(batch.records) <= config.batch_size
        assert batch.invoke_count >= 1
        if config.maximum_retry_attempts >= 0:
            assert batch.retries <= config.maximum_retry_attempts
        previous = -1
        for r in batch.records:
            assert r.shard == batch.shard
            assert lane_for_partition_key(r.partition_key,
                                          config.parallelization_factor) == batch.lane
            assert r.sequence_number > previous
            previous = r.sequence_number
            ident = (r.shard, r.sequence_number)
            assert ident not in self.settled, f"{ident} invoked after it was settled"
            assert self.attempts_used[ident] == batch.retries, "retry attempts miscounted"
            if ident not in self.seen:
                self.seen.add(ident)
                self.first_delivered[r.partition_key].append(r.sequence_number)
            if config.maximum_record_age >= 0:
                assert self.now - r.approximate_arrival <= config.maximum_record_age

    def on_discard(self, a: SendToDestination) -> None:
        config = self.config
        batch = a.batch
        info = a.record["KinesisBatchInfo"]
        assert info["batchSize"] == len(batch.records)
        assert info["startSequenceNumber"] == str(batch.records[0].sequence_number)
        assert a.record["requestContext"]["condition"] == a.condition
        if a.condition == CONDITION_RETRY_ATTEMPTS_EXHAUSTED:
            assert batch.retries == config.maximum_retry_attempts
            for r in batch.records:
                assert self.attempts_used[(r.shard, r.sequence_number)] == batch.retries + 1
        else:
            assert a.condition == CONDITION_RECORD_AGE_EXCEEDED
            self.age_discards += 1
            oldest = min(r.approximate_arrival for r in batch.records)
            assert self.now - oldest > config.maximum_record_age
        for r in batch.records:
            self.settle(r, "discarded")

    def on_checkpoint(self, a: Checkpoint) -> None:
        before = self.checkpoints.get(a.shard)
        assert before is None or a.sequence_number > before, "checkpoint went back"
        self.checkpoints[a.shard] = a.sequence_number
        for r in self.log[a.shard]:
            if r.sequence_number > a.sequence_number:
                break
            assert (r.shard, r.sequence_number) in self.settled, (
                f"checkpoint {a.sequence_number} passes unsettled {r.sequence_number}"
            )

    def fetch(self, index: int) -> None:
        if not self.fetches:
            return
        shard = sorted(self.fetches)[index % len(self.fetches)]
        f = self.fetches.pop(shard)
        after = f.after_sequence
        available = [r for r in self.log[shard] if after is None or r.sequence_number > after]
        self.m.fetched(self.now, shard, available[: f.max_records])

    def finish(self, index: int, kind: int, pick: int) -> None:
        if not self.in_flight:
            return
        batch_id = sorted(self.in_flight)[index % len(self.in_flight)]
        batch = self.in_flight.pop(batch_id)
        self.lanes_busy.discard((batch.shard, batch.lane))
        records = batch.records
        if kind == 0:
            outcome = SUCCESS_OUTCOME
            done = records
        elif kind == 1 or not self.config.report_batch_item_failures:
            outcome = exception_outcome(batch, "boom")
            done = ()
            if not (self.config.bisect_batch_on_function_error and len(records) > 1):
                for r in records:
                    self.attempts_used[(r.shard, r.sequence_number)] += 1
        else:
            cut = pick % len(records)
            response = {"batchItemFailures": [
                {"itemIdentifier": str(r.sequence_number)}
                for r in records[cut:] if (r.sequence_number + pick) % 2 == 0 or r is records[cut]
            ]}
            outcome = interpret_response(response, batch, report_batch_item_failures=True)
            done = records[:cut]
            for r in records[cut:]:
                self.attempts_used[(r.shard, r.sequence_number)] += 1
        for r in done:
            self.settle(r, "succeeded")
            self.succeeded[r.partition_key].append(r.sequence_number)
        self.m.finished(self.now, batch_id, outcome, request_id=f"req-{batch_id}")

    # -- the end

    def check_orders(self) -> None:
        for key, order in self.first_delivered.items():
            assert order == sorted(order), f"key {key} first delivered out of order"
        for key, order in self.succeeded.items():
            assert order == sorted(order), f"key {key} succeeded out of order"

    def drain(self) -> None:
        m = self.m
        if m.paused:
            m.resume(self.now)
        total = sum(len(v) for v in self.log.values())
        for _ in range(20_000):
            self.poll()
            while self.fetches:
                self.fetch(0)
            while self.in_flight:
                self.finish(0, 0, 0)
            self.poll()
            if len(self.settled) == total and all(
                self.checkpoints.get(s) == records[-1].sequence_number
                for s, records in self.log.items() if records
            ):
                break
            if self.fetches or self.in_flight:
                continue
            wake = m.next_wakeup(self.now)
            assert wake is not None, "records unsettled, yet nothing will happen"
            assert wake >= self.now
            self.now = wake
        else:
            raise AssertionError("did not drain")
        assert set(self.settled) == {
            (r.shard, r.sequence_number) for records in self.log.values() for r in records
        }
        assert m.checkpoints == self.checkpoints
        assert m.statistics().held_records == 0
        discarded = sum(1 for how in self.settled.values() if how == "discarded")
        assert m.discarded_records == discarded
        self.check_orders()
        m.pause(self.now)
        self.poll()
        while self.fetches:
            self.fetch(0)
        self.poll()
        assert m.idle and not m.stopping


KINDS = (["put"] * 6 + ["fetch"] * 4 + ["finish"] * 5 + ["advance"] * 2 + ["wake"] * 2
         + ["poll"] * 2 + ["pause", "resume", "hog", "unhog"])
"""Operation kinds, repeated to weight them."""

operations = st.lists(
    st.tuples(
        st.sampled_from(KINDS),
        st.integers(0, 30),  # key / which fetch / which batch
        st.integers(0, 9),  # outcome kind
        st.integers(0, 50),  # which item fails first
        st.floats(0.0, 40.0),  # seconds to advance
    ),
    min_size=20,
    max_size=160,
)


@st.composite
def configurations(draw: st.DrawFn) -> tuple[StreamMappingConfig, int, int | None]:
    config = StreamMappingConfig(
        "s",
        "f",
        batch_size=draw(st.sampled_from([1, 2, 3, 5])),
        maximum_batching_window=draw(st.sampled_from([0, 0, 1, 3])),
        parallelization_factor=draw(st.sampled_from([1, 2, 3])),
        bisect_batch_on_function_error=draw(st.booleans()),
        maximum_retry_attempts=draw(st.sampled_from([-1, 0, 1, 3])),
        maximum_record_age=draw(st.sampled_from([-1, -1, 60])),
        report_batch_item_failures=draw(st.booleans()),
        on_failure="dlq",  # every discard is visible to the driver
        enabled=draw(st.sampled_from([True, True, True, False])),
    )
    shards = draw(st.integers(1, 3))
    reserved = draw(st.sampled_from([None, None, 1, 2, 4]))
    return config, shards, reserved


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(setup=configurations(), ops=operations, read_ahead=st.sampled_from([None, 5]))
def test_random_driving_keeps_aws_rules(
    setup: tuple[StreamMappingConfig, int, int | None],
    ops: list[tuple[Any, ...]],
    read_ahead: int | None,
) -> None:
    config, shards, reserved = setup
    pool = ConcurrencyPool(AccountConfig(concurrency_limit=200, min_unreserved=100))
    pool.register(FunctionConfig("f", reserved_concurrency=reserved))
    if read_ahead is not None:
        read_ahead = max(read_ahead, config.batch_size)
    m = StreamMapping(config, StreamConfig("s", shard_count=shards), pool=pool,
                      read_ahead=read_ahead)
    d = Driver(m, config, shards, pool)
    d.poll()
    for name, index, kind, pick, seconds in ops:
        if name == "put":
            d.put(KEYS[index % len(KEYS)])
        elif name == "fetch":
            d.fetch(index)
        elif name == "finish":
            d.finish(index, kind % 3, pick)
        elif name == "advance":
            d.now += seconds
        elif name == "wake":
            wake = m.next_wakeup(d.now)
            if wake is not None:
                assert wake >= d.now
                d.now = wake
        elif name == "pause":
            m.pause(d.now)
        elif name == "resume":
            m.resume(d.now)
        elif name == "hog":
            if pool.try_acquire("f"):
                d.hogged += 1
        elif name == "unhog" and d.hogged:
            pool.release("f")
            d.hogged -= 1
        d.poll()
        d.check_orders()
    while d.hogged:
        pool.release("f")
        d.hogged -= 1
    d.drain()
    stats = m.statistics()
    for what, count in (("errors", stats.errors), ("partial", stats.partial),
                        ("throttles", stats.throttles),
                        ("discarded", stats.discarded_records)):
        event(f"{what}: {'some' if count else 'none'}")
    event(f"discarded for age: {'some' if d.age_discards else 'none'}")


def test_restart_from_checkpoints_delivers_only_what_was_not_settled() -> None:
    # Given a mapping that settled part of a shard
    config = StreamMappingConfig("s", "f", batch_size=2)
    stream = StreamConfig("s")
    pool = ConcurrencyPool()
    d = Driver(StreamMapping(config, stream, pool=pool), config, 1, pool)
    for key in KEYS:
        d.put(key)
    d.poll()
    d.fetch(0)
    d.poll()
    d.finish(0, 0, 0)
    d.poll()
    assert d.checkpoints == {0: d.log[0][1].sequence_number}
    # When a new mapping starts from the stored checkpoints
    restarted = StreamMapping(config, stream, pool=ConcurrencyPool(), checkpoints=d.checkpoints)
    fetch = restarted.poll(0.0)[0]
    assert isinstance(fetch, Fetch)
    # Then it reads after the checkpoint: the first two records are not delivered again
    assert fetch.after_sequence == d.log[0][1].sequence_number
