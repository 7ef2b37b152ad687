"""The internal queue of asynchronous invocations: AWS's rules for retries, event age,
reserved concurrency 0, destinations and dead-letter queues, on explicit times."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from sluicegate.core.async_events import (
    CONDITION_EVENT_AGE_EXCEEDED,
    CONDITION_RETRIES_EXHAUSTED,
    CONDITION_SUCCESS,
    CONDITION_ZERO_RESERVED,
    AsyncConfig,
    AsyncEventMapping,
    Conclude,
    Destination,
    Retry,
    async_queue,
    function_of_async_queue,
    invocation_record,
)
from sluicegate.core.config import AccountConfig, FunctionConfig, QueueConfig
from sluicegate.core.pool import ConcurrencyPool
from sluicegate.core.types import Abandon, Batch, Invoke, OutcomeKind, QueueRecord, Receive
from sluicegate.errors import ConfigError

ARN = "arn:aws:lambda:us-east-1:123456789012:function:f"


@dataclass
class Result:
    response: Any = None
    invalid_json: bool = False
    error: BaseException | None = None
    error_text: str = ""
    timed_out: bool = False


@dataclass
class Event:
    """What a driver carries as a record's payload here: when it was accepted, and the
    event."""

    accepted_at: float
    event: Any


def mapping(reserved: int | None = None, *, account: int = 1000, **settings: Any
            ) -> AsyncEventMapping:
    pool = ConcurrencyPool(AccountConfig(account, min(100, account)))
    pool.register(FunctionConfig("f", reserved_concurrency=reserved))
    return AsyncEventMapping(
        AsyncConfig("f", **settings), reserved_concurrency=reserved, function_arn=ARN,
        visibility_timeout=10, pool=pool, now=0.0,
        accepted_at=lambda r: r.payload.accepted_at, event_of=lambda r: r.payload.event,
    )


def record(n: int, *, accepted_at: float = 0.0, receive_count: int = 1) -> QueueRecord:
    return QueueRecord(f"m{n}", f"h{n}-{receive_count}", 10, 1e9, receive_count,
                       Event(accepted_at, {"n": n}))


class Driver:
    """Polls a mapping as a driver would, keeping the invocations it was handed."""

    def __init__(self, m: AsyncEventMapping) -> None:
        self.m = m
        self.invokes: list[Invoke] = []
        self.receives: list[Receive] = []

    def poll(self, now: float) -> list[Any]:
        actions = self.m.poll(now)
        self.invokes += [a for a in actions if isinstance(a, Invoke)]
        self.receives += [a for a in actions if isinstance(a, Receive)]
        return actions

    def read(self, now: float, records: list[QueueRecord]) -> list[Any]:
        """Serve the latest receive with ``records``; the next poll's actions."""
        self.poll(now)
        self.m.read_done(now, self.receives.pop(), records)
        return self.poll(now)

    def run(self, now: float, result: Result) -> list[Any]:
        """Finish the oldest invocation with ``result``; the next poll's actions."""
        invoke = self.invokes.pop(0)
        self.m.finished(now, invoke.batch.id, self.m.outcome_of(result, invoke.batch))
        return self.poll(now)


def settle_of(actions: list[Any]) -> list[Retry | Conclude]:
    return [a for a in actions if isinstance(a, Retry | Conclude)]


def test_internal_queue_names() -> None:
    assert async_queue("f") == "async:f"
    assert function_of_async_queue("async:f") == "f"
    assert function_of_async_queue("orders") is None
    QueueConfig(async_queue("f"))  # a valid queue name for the store
    with pytest.raises(ConfigError):
        QueueConfig("async:a:b")


def test_one_event_per_invocation_and_pollers_follow_the_traffic_up_to_the_reservation(
) -> None:
    m = mapping(reserved=3)
    d = Driver(m)
    receive = next(a for a in d.poll(0.0) if isinstance(a, Receive))
    assert receive.max_messages == 1
    assert m.limit == 1 and m.reading == 1  # idle: one long poll
    levels = []
    for n in range(3):
        d.read(float(n), [record(n)])
        levels.append(m.limit)
    assert levels == [2, 3, 3]  # one more per event read, up to the reservation
    assert m.in_flight == 3
    assert m.limit_reason(5.0) == "reserved_concurrency"
    for _ in range(3):
        d.run(6.0, Result("ok"))
    d.read(7.0, [])
    assert m.limit == 2  # one fewer per empty receive


def test_without_a_reservation_the_pollers_may_reach_the_unreserved_pool() -> None:
    m = mapping(account=400)
    assert m.level.maximum == 400


def test_success_concludes_and_sends_the_record_to_on_success() -> None:
    m = mapping(on_success="queue:ok")
    d = Driver(m)
    actions = d.read(1.0, [record(1)])
    assert [a for a in actions if isinstance(a, Invoke)]
    (conclude,) = settle_of(d.run(2.5, Result({"done": 1})))
    assert isinstance(conclude, Conclude)
    assert conclude.success and conclude.condition == CONDITION_SUCCESS
    assert conclude.destination == Destination("queue", "ok")
    assert conclude.dead_letter is None
    rec = conclude.invocation_record
    assert rec is not None
    assert rec["version"] == "1.0"
    assert rec["timestamp"] == "1970-01-01T00:00:02.500Z"
    assert rec["requestContext"] == {"requestId": "m1", "functionArn": ARN,
                                     "condition": "Success", "approximateInvokeCount": 1}
    assert rec["requestPayload"] == {"n": 1}
    assert rec["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert rec["responsePayload"] == {"done": 1}
    assert m.async_statistics().succeeded == 1
    assert m.in_flight == 0


def test_success_without_a_destination_still_concludes_so_the_event_is_deleted() -> None:
    m = mapping()
    d = Driver(m)
    d.read(0.0, [record(1)])
    (conclude,) = settle_of(d.run(0.1, Result("ok")))
    assert isinstance(conclude, Conclude)
    assert conclude.destination is None and conclude.invocation_record is None


def test_the_queue_mapping_never_deletes_an_event_itself() -> None:
    m = mapping()
    d = Driver(m)
    d.read(0.0, [record(1)])
    actions = d.run(0.1, Result("ok"))
    assert not [a for a in actions if type(a).__name__ == "Delete"]


def test_function_errors_retry_after_one_then_two_minutes_then_fail() -> None:
    m = mapping(on_failure="topic:failed", dead_letter="queue:dlq")
    d = Driver(m)
    error = Result(error=ValueError("bad input"), error_text="ValueError: bad input")
    d.read(0.0, [record(1, receive_count=1)])
    (retry,) = settle_of(d.run(0.2, error))
    assert isinstance(retry, Retry)
    assert retry.delay == 60.0
    d.read(60.2, [record(1, receive_count=2)])
    (retry,) = settle_of(d.run(60.4, error))
    assert isinstance(retry, Retry)
    assert retry.delay == 120.0
    d.read(180.4, [record(1, receive_count=3)])
    (conclude,) = settle_of(d.run(180.5, error))
    assert isinstance(conclude, Conclude)
    assert conclude.condition == CONDITION_RETRIES_EXHAUSTED
    assert conclude.destination == Destination("topic", "failed")
    assert conclude.dead_letter == Destination("queue", "dlq")
    assert conclude.error_code == "200"
    assert conclude.error_message == "bad input"
    rec = conclude.invocation_record
    assert rec is not None
    assert rec["requestContext"]["approximateInvokeCount"] == 3
    assert rec["requestContext"]["condition"] == "RetriesExhausted"
    assert rec["responseContext"]["functionError"] == "Unhandled"
    assert rec["responsePayload"] == {"errorMessage": "bad input", "errorType": "ValueError"}
    stats = m.async_statistics()
    assert (stats.retried, stats.dropped, stats.succeeded) == (2, 1, 0)
    assert stats.by_condition == {CONDITION_RETRIES_EXHAUSTED: 1}


@pytest.mark.parametrize("retries", [0, 1, 2])
def test_maximum_retry_attempts_bounds_the_attempts(retries: int) -> None:
    m = mapping(maximum_retry_attempts=retries)
    d = Driver(m)
    attempts = 0
    now = 0.0
    while True:
        attempts += 1
        d.read(now, [record(1, receive_count=attempts)])
        (action,) = settle_of(d.run(now, Result(error=RuntimeError("x"))))
        if isinstance(action, Conclude):
            break
        now += action.delay
    assert attempts == retries + 1


def test_time_scale_shortens_the_retry_waits() -> None:
    m = mapping(async_time_scale=0.01)
    d = Driver(m)
    d.read(0.0, [record(1)])
    (retry,) = settle_of(d.run(0.0, Result(timed_out=True)))
    assert isinstance(retry, Retry)
    assert retry.delay == pytest.approx(0.6)


def test_a_timeout_is_a_function_error() -> None:
    m = mapping(maximum_retry_attempts=0, on_failure="queue:f")
    d = Driver(m)
    d.read(0.0, [record(1)])
    (conclude,) = settle_of(d.run(3.0, Result(timed_out=True, error_text="timeout")))
    assert isinstance(conclude, Conclude)
    assert conclude.invocation_record is not None
    assert conclude.invocation_record["responsePayload"]["errorType"] == "TimeoutError"


def test_a_response_is_never_read_as_partial_batch_failures() -> None:
    m = mapping()
    d = Driver(m)
    d.read(0.0, [record(1)])
    invoke = d.invokes[0]
    outcome = m.outcome_of(Result({"batchItemFailures": [{"itemIdentifier": "m1"}]}),
                           invoke.batch)
    assert outcome.kind is OutcomeKind.SUCCESS


def test_an_event_older_than_maximum_event_age_is_discarded_before_its_attempt() -> None:
    m = mapping(maximum_event_age=60, on_failure="queue:failed")
    d = Driver(m)
    actions = d.read(100.0, [record(1, accepted_at=30.0), record(2, accepted_at=50.0)])
    (conclude,) = settle_of(actions)
    assert isinstance(conclude, Conclude)
    assert conclude.record.message_id == "m1"
    assert conclude.condition == CONDITION_EVENT_AGE_EXCEEDED
    rec = conclude.invocation_record
    assert rec is not None
    assert rec["requestContext"]["approximateInvokeCount"] == 0
    assert rec["responseContext"] == {}
    assert "responsePayload" not in rec
    # the younger one runs (age 50 s)
    (invoke,) = [a for a in actions if isinstance(a, Invoke)]
    assert invoke.batch.records[0].message_id == "m2"


def test_age_is_checked_before_each_retry_too() -> None:
    m = mapping(maximum_event_age=90)
    d = Driver(m)
    d.read(0.0, [record(1)])
    (retry,) = settle_of(d.run(1.0, Result(error=RuntimeError("x"))))
    assert isinstance(retry, Retry)
    actions = d.read(61.0, [record(1, receive_count=2)])  # age 61 s: runs
    assert [a for a in actions if isinstance(a, Invoke)]
    (retry,) = settle_of(d.run(62.0, Result(error=RuntimeError("x"))))
    assert isinstance(retry, Retry)
    (conclude,) = settle_of(d.read(182.0, [record(1, receive_count=3)]))
    assert isinstance(conclude, Conclude)
    assert conclude.condition == CONDITION_EVENT_AGE_EXCEEDED
    assert conclude.invocation_record is None  # no on-failure destination


def test_reserved_concurrency_zero_fails_every_event_at_once_without_retries() -> None:
    m = mapping(reserved=0, dead_letter="queue:dlq")
    d = Driver(m)
    actions = d.read(0.0, [record(1)])
    (conclude,) = settle_of(actions)
    assert isinstance(conclude, Conclude)
    assert conclude.condition == CONDITION_ZERO_RESERVED
    assert conclude.dead_letter == Destination("queue", "dlq")
    assert not [a for a in actions if isinstance(a, Invoke)]
    assert m.async_statistics().dropped == 1


def test_first_reads_count_as_received_with_their_age() -> None:
    m = mapping()
    d = Driver(m)
    d.read(5.0, [record(1, accepted_at=2.0)])
    stats = m.async_statistics()
    assert stats.received == 1
    assert stats.last_age == pytest.approx(3.0)
    d.run(5.1, Result(error=RuntimeError("x")))
    d.read(66.0, [record(1, accepted_at=2.0, receive_count=2)])
    assert m.async_statistics().received == 1  # a retry is not a new event


def test_invocation_record_shape_for_a_never_invoked_event() -> None:
    rec = invocation_record(now=0.0, request_id="r", function_arn=ARN,
                            condition=CONDITION_EVENT_AGE_EXCEEDED, invoke_count=0,
                            request_payload={"a": 1}, response_payload=None,
                            function_error=None)
    assert set(rec) == {"version", "timestamp", "requestContext", "requestPayload",
                        "responseContext"}


@pytest.mark.parametrize("settings, message", [
    ({"maximum_retry_attempts": 3}, "maximum_retry_attempts=3 is invalid: allowed 0-2"),
    ({"maximum_retry_attempts": -1}, "maximum_retry_attempts=-1 is invalid: allowed 0-2"),
    ({"maximum_event_age": 59}, "allowed 60-21,600 s"),
    ({"maximum_event_age": 21_601}, "allowed 60-21,600 s"),
    ({"dead_letter": "function:g"}, "dead_letter='function:g' is invalid"),
    ({"on_failure": "bucket:b"}, "on_failure='bucket:b' is invalid"),
    ({"async_time_scale": 0}, "async_time_scale=0 is invalid"),
])
def test_settings_out_of_range_name_the_setting(settings: dict[str, Any], message: str
                                                ) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        AsyncConfig("f", **settings)


def test_defaults_are_aws_s() -> None:
    config = AsyncConfig("f")
    assert config.maximum_retry_attempts == 2
    assert config.maximum_event_age == 6 * 3600
    assert config.retry_delay(1) == 60.0 and config.retry_delay(2) == 120.0


def test_a_throttle_that_outlives_the_hiding_time_requeues_without_costing_an_attempt(
) -> None:
    pool = ConcurrencyPool(AccountConfig(100, 100))
    pool.register(FunctionConfig("f"))
    pool.register(FunctionConfig("g"))
    m = AsyncEventMapping(
        AsyncConfig("f", on_success="queue:ok"), reserved_concurrency=None,
        function_arn=ARN, visibility_timeout=10, pool=pool, now=0.0,
        accepted_at=lambda r: r.payload.accepted_at, event_of=lambda r: r.payload.event)
    d = Driver(m)
    for _ in range(100):  # another function holds the whole pool
        assert pool.try_acquire("g")
    first = QueueRecord("m1", "h1", 10, 10.0, 1, Event(0.0, {"n": 1}))
    d.read(0.0, [first])
    retries: list[Retry] = []
    now = 0.0
    while not retries:
        wake = m.next_wakeup(now)
        assert wake is not None and wake < 10.0
        now = wake
        retries = [a for a in d.poll(now) if isinstance(a, Retry)]
    assert m.throttles >= 3  # the queue mapping's own backoff first (1, 2, 4 s)
    (retry,) = retries
    assert retry.delay == 30.0 and "throttled" in retry.reason
    assert m.requeued == 1
    # the pool frees; the event comes back (its second receive) and succeeds: one attempt
    for _ in range(100):
        pool.release("g")
    d.read(now + 30.0, [QueueRecord("m1", "h2", 10, now + 40.0, 2, Event(0.0, {"n": 1}))])
    (conclude,) = settle_of(d.run(now + 30.1, Result("ok")))
    assert isinstance(conclude, Conclude)
    assert conclude.invocation_record is not None
    assert conclude.invocation_record["requestContext"]["approximateInvokeCount"] == 1
    assert m.async_statistics().received == 1


def test_requeue_waits_double_up_to_five_minutes() -> None:
    from sluicegate.core.async_events import THROTTLE_BACKOFF_MAX

    m = mapping()
    record_ = record(1)
    waits = []
    for _ in range(6):
        m._requeue(Abandon(Batch(0, 0, (record_,)), "throttled"))
        (retry,) = [a for a in m.poll(0.0) if isinstance(a, Retry)]
        waits.append(retry.delay)
    assert waits == [30.0, 60.0, 120.0, 240.0, 300.0, 300.0]
    assert THROTTLE_BACKOFF_MAX == 300.0
