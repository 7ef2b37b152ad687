"""Samples: what a mapping tells its limit when an invocation ends or is throttled."""

from __future__ import annotations

import pytest

from sluicegate.core.config import FunctionConfig, MappingConfig
from sluicegate.core.limit import NO_LIMIT, ConcurrencyLimit, Fixed
from sluicegate.core.mapping import QueueMapping
from sluicegate.core.pool import ConcurrencyPool
from sluicegate.core.results import (
    SUCCESS_OUTCOME,
    exception_outcome,
    interpret_response,
    invocation_outcome,
    timeout_outcome,
    with_report,
)
from sluicegate.core.scaling import FixedScaling
from sluicegate.core.signals import Sample, SampleKind, sample_kind
from sluicegate.core.stream_mapping import StreamMapping
from sluicegate.core.streams import StreamConfig, StreamInvoke, StreamMappingConfig, StreamRecord
from sluicegate.core.types import Invoke, OutcomeKind

from .support import batch, records


class Recorder:
    """A term that observes: keeps every sample, never binds."""

    name = "recorder"

    def __init__(self) -> None:
        self.samples: list[tuple[float, Sample]] = []

    def value(self, now: float) -> int:
        return NO_LIMIT

    def next_change(self, now: float) -> float | None:
        return None

    def observe(self, now: float, sample: Sample) -> None:
        self.samples.append((now, sample))


class _Result:
    """An invocation result with the reports a handler made."""

    def __init__(self, *, latency: float | None = None, overload: bool = False,
                 timed_out: bool = False) -> None:
        self.response = None
        self.invalid_json = False
        self.error: BaseException | None = None
        self.error_text = ""
        self.timed_out = timed_out
        self.latency = latency
        self.overload = overload


def queue_mapping(limit: int = 3, pool: ConcurrencyPool | None = None) -> QueueMapping:
    return QueueMapping(MappingConfig("q", "f", batch_size=1), visibility_timeout=30.0,
                        pool=pool or ConcurrencyPool(), policy=FixedScaling(limit))


def start(m: QueueMapping, now: float, poller: int) -> Invoke:
    """Answer ``poller``'s outstanding receive with one record; return its Invoke."""
    m.received(now, poller, records(1))
    invokes = [a for a in m.poll(now) if isinstance(a, Invoke)]
    assert len(invokes) == 1
    return invokes[0]


# ---------------------------------------------------------------------- the limit


def test_limit_without_observing_terms_has_no_observers() -> None:
    limit = ConcurrencyLimit([Fixed("maximum_concurrency", 5)])
    assert limit.observers == ()
    limit.observe(1.0, Sample(0.0, 1.0, SampleKind.OK, 1, 1))  # nothing to call: no error


def test_observe_reaches_every_observing_term_in_order_and_follows_changes() -> None:
    a, b = Recorder(), Recorder()
    b.name = "other"
    limit = ConcurrencyLimit([Fixed("maximum_concurrency", 5), a])
    assert limit.fixed is None  # an observing term is dynamic
    limit.add(b)
    sample = Sample(0.0, 1.0, SampleKind.OK, 1, 1)
    limit.observe(1.0, sample)
    assert a.samples == [(1.0, sample)] and b.samples == [(1.0, sample)]
    limit.remove("recorder")
    limit.observe(2.0, sample)
    assert len(a.samples) == 1 and len(b.samples) == 2


def test_sample_duration_and_kinds_of_outcomes() -> None:
    assert Sample(2.0, 2.5, SampleKind.OK, 1, 1).duration == 0.5
    b = batch("a", "b")
    assert sample_kind(SUCCESS_OUTCOME) is SampleKind.OK
    partial = interpret_response({"batchItemFailures": [{"itemIdentifier": "a"}]}, b,
                                 report_batch_item_failures=True)
    assert partial.kind is OutcomeKind.PARTIAL and sample_kind(partial) is SampleKind.OK
    assert sample_kind(exception_outcome(b, "ValueError: x")) is SampleKind.ERROR
    assert sample_kind(timeout_outcome(b)) is SampleKind.TIMEOUT


def test_a_results_reports_travel_on_its_outcome() -> None:
    b = batch("a")
    outcome = invocation_outcome(_Result(latency=0.25, overload=True), b,
                                 report_batch_item_failures=False)
    assert (outcome.kind, outcome.latency, outcome.overload) == (OutcomeKind.SUCCESS, 0.25, True)
    timed = invocation_outcome(_Result(timed_out=True, latency=0.1), b,
                               report_batch_item_failures=False)
    assert sample_kind(timed) is SampleKind.TIMEOUT and timed.latency == 0.1
    plain = invocation_outcome(_Result(), b, report_batch_item_failures=False)
    assert plain is SUCCESS_OUTCOME  # nothing reported: the shared outcome


# ---------------------------------------------------------------------- queue mapping


@pytest.mark.parametrize("fused", [False, True], ids=["finished", "finished_poll"])
def test_queue_mapping_reports_start_end_in_flight_and_reports(fused: bool) -> None:
    m = queue_mapping()
    rec = Recorder()
    m.concurrency_limit.add(rec)
    m.poll(0.0)
    first = start(m, 1.0, 0)
    second = start(m, 2.0, 1)
    report = with_report(SUCCESS_OUTCOME, 0.3, False)
    if fused:
        m.finished_poll(4.0, first.batch, report)
    else:
        m.finished(4.0, first.batch.id, report)
        m.poll(4.0)
    failed = exception_outcome(second.batch, "ValueError: no")
    if fused:
        m.finished_poll(5.5, second.batch, with_report(failed, None, True))
    else:
        m.finished(5.5, second.batch.id, with_report(failed, None, True))
    assert rec.samples == [
        (4.0, Sample(1.0, 4.0, SampleKind.OK, 1, 1, 0.3, False)),
        (5.5, Sample(2.0, 5.5, SampleKind.ERROR, 1, 2, None, True)),
    ]


def test_queue_mapping_fused_receive_path_records_the_start() -> None:
    m = queue_mapping(limit=2)
    rec = Recorder()
    m.concurrency_limit.add(rec)
    m.poll(0.0)
    actions, _ = m.received_poll(1.5, 0, records(1))
    (invoke,) = [a for a in actions if isinstance(a, Invoke)]
    m.finished_poll(2.0, invoke.batch, timeout_outcome(invoke.batch))
    assert rec.samples == [(2.0, Sample(1.5, 2.0, SampleKind.TIMEOUT, 1, 1))]


def test_queue_mapping_reports_a_throttle() -> None:
    pool = ConcurrencyPool()
    pool.register(FunctionConfig("f", reserved_concurrency=0))
    m = queue_mapping(pool=pool)
    rec = Recorder()
    m.concurrency_limit.add(rec)
    m.poll(0.0)
    m.received(3.0, 0, records(1))
    m.poll(3.0)
    assert m.throttles == 1
    assert rec.samples == [(3.0, Sample(3.0, 3.0, SampleKind.THROTTLE, 0, 0))]


def test_queue_mapping_without_observers_builds_no_sample() -> None:
    m = queue_mapping()
    assert m.concurrency_limit.observers == ()
    m.poll(0.0)
    invoke = start(m, 1.0, 0)
    m.finished_poll(2.0, invoke.batch, with_report(SUCCESS_OUTCOME, 0.1, False))
    assert m.invocations == 1


# ---------------------------------------------------------------------- stream mapping


def test_stream_mapping_reports_samples() -> None:
    m = StreamMapping(StreamMappingConfig("s", "f", batch_size=2), StreamConfig("s"),
                      pool=ConcurrencyPool(), function_arn="arn:f", stream_arn="arn:s")
    rec = Recorder()
    m.concurrency_limit.add(rec)
    m.poll(0.0)
    m.fetched(1.0, 0, [StreamRecord(0, i, "k", b"x", 0.0, 10) for i in range(2)])
    (invoke,) = [a for a in m.poll(1.0) if isinstance(a, StreamInvoke)]
    m.finished(1.75, invoke.batch.id, with_report(SUCCESS_OUTCOME, 0.5, True))
    assert rec.samples == [(1.75, Sample(1.0, 1.75, SampleKind.OK, 2, 1, 0.5, True))]


def test_stream_mapping_reports_a_throttle() -> None:
    pool = ConcurrencyPool()
    pool.register(FunctionConfig("f", reserved_concurrency=0))
    m = StreamMapping(StreamMappingConfig("s", "f", batch_size=1), StreamConfig("s"),
                      pool=pool, function_arn="arn:f", stream_arn="arn:s")
    rec = Recorder()
    m.concurrency_limit.add(rec)
    m.poll(0.0)
    m.fetched(1.0, 0, [StreamRecord(0, 1, "k", b"x", 0.0, 10)])
    m.poll(1.0)
    assert rec.samples == [(1.0, Sample(1.0, 1.0, SampleKind.THROTTLE, 0, 0))]
