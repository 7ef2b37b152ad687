"""Every row of the ReportBatchItemFailures table (lambda-semantics.md section 4)."""

from __future__ import annotations

import copy
import pickle
from dataclasses import dataclass
from typing import Any

import pytest

from sluicegate.core.results import (
    INVALID_JSON,
    SUCCESS_OUTCOME,
    deletable,
    exception_outcome,
    fifo_deletable,
    interpret_response,
    invocation_outcome,
    timeout_outcome,
)
from sluicegate.core.stream_mapping import stream_settlement
from sluicegate.core.streams import SEQUENCE_NUMBER, StreamBatch, StreamRecord
from sluicegate.core.types import BatchOutcome, OutcomeKind

from .support import batch

ALL = frozenset({"a", "b", "c"})


def interpret(response: Any, rbif: bool = True) -> BatchOutcome:
    return interpret_response(response, batch("a", "b", "c"), report_batch_item_failures=rbif)


@pytest.mark.parametrize(
    "response",
    [None, {}, {"batchItemFailures": None}, {"batchItemFailures": []}, {"other": 1},
     [1], "x", 3, b"not json", {"batchItemFailures": [{"itemIdentifier": "zzz"}]},
     {"batchItemFailures": [{"itemIdentifier": "a"}]}],
)
def test_option_off_ignores_the_response(response: Any) -> None:
    assert interpret(response, rbif=False) is SUCCESS_OUTCOME


@pytest.mark.parametrize(
    "response",
    [
        None,                               # null response
        b"",                                # empty response (bytes pass through)
        {},                                 # empty response
        {"batchItemFailures": None},        # null list
        {"batchItemFailures": []},          # empty list
        {"somethingElse": [1, 2]},          # no batchItemFailures key
    ],
)
def test_full_success(response: Any) -> None:
    out = interpret(response)
    assert out.kind is OutcomeKind.SUCCESS
    assert out.failed == frozenset()


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (INVALID_JSON, "not serializable"),
        ([], "got list"),
        ([{"itemIdentifier": "a"}], "got list"),
        ("", "got str"),
        ("ok", "got str"),
        (0, "got int"),
        (1.5, "got float"),
        (True, "got bool"),
        ({"batchItemFailures": {}}, "not a list"),
        ({"batchItemFailures": "a"}, "not a list"),
        ({"batchItemFailures": {"itemIdentifier": "a"}}, "not a list"),
        ({"batchItemFailures": ["a"]}, "is not an object"),
        ({"batchItemFailures": [None]}, "is not an object"),
        ({"batchItemFailures": [{"itemIdentifier": "a"}, 7]}, "is not an object"),
        ({"batchItemFailures": [{"ItemIdentifier": "a"}]}, "no 'itemIdentifier' key"),
        ({"batchItemFailures": [{"itemidentifier": "a"}]}, "no 'itemIdentifier' key"),
        ({"batchItemFailures": [{}]}, "no 'itemIdentifier' key"),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, "invalid itemIdentifier None"),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, "invalid itemIdentifier ''"),
        ({"batchItemFailures": [{"itemIdentifier": 1}]}, "invalid itemIdentifier 1"),
        ({"batchItemFailures": [{"itemIdentifier": ["a"]}]}, "invalid itemIdentifier"),
        ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, "not a messageId"),
        ({"batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "zzz"}]},
         "not a messageId"),
        (b"not json", "bytes that are not JSON"),
    ],
)
def test_full_failure(response: Any, reason: str) -> None:
    out = interpret(response)
    assert out.kind is OutcomeKind.ERROR
    assert out.function_error
    assert out.failed == ALL
    assert reason in out.reason


def test_partial() -> None:
    out = interpret({"batchItemFailures": [{"itemIdentifier": "b"}]})
    assert out.kind is OutcomeKind.PARTIAL
    assert out.failed == {"b"}
    assert not out.function_error


def test_partial_with_duplicates_and_extra_keys() -> None:
    out = interpret(
        {
            "batchItemFailures": [
                {"itemIdentifier": "a", "note": "x"},
                {"itemIdentifier": "a"},
                {"itemIdentifier": "c"},
            ],
            "extra": True,
        }
    )
    assert out.kind is OutcomeKind.PARTIAL
    assert out.failed == {"a", "c"}


def test_partial_listing_every_id_is_still_partial() -> None:
    out = interpret({"batchItemFailures": [{"itemIdentifier": i} for i in "abc"]})
    assert out.kind is OutcomeKind.PARTIAL
    assert out.failed == ALL


def test_long_values_are_shortened_in_reasons() -> None:
    out = interpret({"batchItemFailures": [{"itemIdentifier": "x" * 1000}]})
    assert out.kind is OutcomeKind.ERROR
    assert len(out.reason) < 200


def test_exception_and_timeout_outcomes() -> None:
    b = batch("a", "b", "c")
    e = exception_outcome(b, "ValueError: bad")
    assert e.kind is OutcomeKind.ERROR and e.failed == ALL
    assert e.reason == "exception: ValueError: bad"
    t = timeout_outcome(b)
    assert t.kind is OutcomeKind.ERROR and t.failed == ALL and t.reason == "timeout"


def test_deletable() -> None:
    b = batch("a", "b", "c")
    assert deletable(b, SUCCESS_OUTCOME) == b.records
    assert deletable(b, exception_outcome(b, "x")) == ()
    partial = interpret_response(
        {"batchItemFailures": [{"itemIdentifier": "b"}]}, b, report_batch_item_failures=True
    )
    assert [r.message_id for r in deletable(b, partial)] == ["a", "c"]
    everything = BatchOutcome(OutcomeKind.PARTIAL, ALL)
    assert deletable(b, everything) == ()


def test_invalid_json_sentinel_is_unique() -> None:
    assert repr(INVALID_JSON) == "INVALID_JSON"
    assert pickle.loads(pickle.dumps(INVALID_JSON)) is INVALID_JSON
    assert copy.deepcopy(INVALID_JSON) is INVALID_JSON
    assert copy.copy(INVALID_JSON) is INVALID_JSON


# --------------------------------------------------------------------------- issue 11, item 3


@dataclass(frozen=True)
class Ended:
    """How an invocation ended, with HandlerResult's fields (an InvocationResult)."""

    response: Any = None
    invalid_json: bool = False
    error: BaseException | None = None
    error_text: str = ""
    timed_out: bool = False


MARSHAL = "Runtime.MarshalError: Unable to marshal response: Object of type object is not"


@pytest.mark.parametrize("rbif", [False, True])
def test_an_unserializable_response_fails_the_batch_with_the_option_on_or_off(
    rbif: bool,
) -> None:
    # AWS: the runtime cannot marshal the response, so the invocation is a function error
    # and the batch comes back; the mapping never sees a response to ignore.
    b = batch("a", "b", "c")
    out = interpret_response(INVALID_JSON, b, report_batch_item_failures=rbif)
    assert out.kind is OutcomeKind.ERROR and out.failed == ALL
    assert deletable(b, out) == ()
    ended = invocation_outcome(
        Ended(invalid_json=True, error_text=MARSHAL), b, report_batch_item_failures=rbif
    )
    assert ended.kind is OutcomeKind.ERROR and ended.failed == ALL
    assert ended.reason == MARSHAL
    assert fifo_deletable(b, ended) == ()


@pytest.mark.parametrize("rbif", [False, True])
def test_invocation_outcome_orders_timeout_exception_marshal_error_then_response(
    rbif: bool,
) -> None:
    b = batch("a", "b", "c")
    timed_out = invocation_outcome(
        Ended(timed_out=True, error_text="Task timed out after 3.00 seconds"), b,
        report_batch_item_failures=rbif,
    )
    assert timed_out == timeout_outcome(b)
    raised = invocation_outcome(
        Ended(error=SystemExit(3), error_text="SystemExit: 3"), b,
        report_batch_item_failures=rbif,
    )
    assert raised == exception_outcome(b, "SystemExit: 3")
    unnamed = invocation_outcome(Ended(error=KeyError()), b, report_batch_item_failures=rbif)
    assert unnamed.reason == "exception: KeyError"
    reported = {"batchItemFailures": [{"itemIdentifier": "b"}]}
    returned = invocation_outcome(Ended(response=reported), b, report_batch_item_failures=rbif)
    assert returned == interpret_response(reported, b, report_batch_item_failures=rbif)
    assert returned.kind is (OutcomeKind.PARTIAL if rbif else OutcomeKind.SUCCESS)


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"itemIdentifier": "zzz"}, "invalid itemIdentifier 'zzz': not a messageId of the batch"),
        ({"itemIdentifier": None},
         "invalid itemIdentifier None at batchItemFailures[1]: null"),
        ({"itemIdentifier": ""},
         "invalid itemIdentifier '' at batchItemFailures[1]: an empty string"),
        ({"itemIdentifier": 7},
         "invalid itemIdentifier 7 at batchItemFailures[1]: an int, not a string"),
        ({"ItemIdentifier": "a"},
         "invalid batchItemFailures[1]: no 'itemIdentifier' key (keys: 'ItemIdentifier')"),
        ({}, "invalid batchItemFailures[1]: no 'itemIdentifier' key (keys: none)"),
        ("a", "invalid batchItemFailures[1]: 'a' is not an object (a str)"),
    ],
)
def test_a_refused_identifier_is_named_with_its_position_and_why(
    entry: Any, reason: str
) -> None:
    out = interpret({"batchItemFailures": [{"itemIdentifier": "a"}, entry]})
    assert out.kind is OutcomeKind.ERROR and out.failed == ALL
    assert out.reason == reason


def test_stream_reasons_name_sequence_numbers() -> None:
    b = batch("1", "2")
    out = interpret_response(
        {"batchItemFailures": [{"itemIdentifier": "9"}]}, b,
        report_batch_item_failures=True, item_name=SEQUENCE_NUMBER,
    )
    assert out.reason == "invalid itemIdentifier '9': not a sequence number of the batch"


def _stream_batch(*sequences: int) -> StreamBatch:
    return StreamBatch(
        1, 0, 0, tuple(StreamRecord(0, n, "k", b"", 0.0, 1) for n in sequences)
    )


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (SUCCESS_OUTCOME, (OutcomeKind.SUCCESS, 3)),
        (BatchOutcome(OutcomeKind.ERROR, frozenset({"10", "11", "12"}), "x"),
         (OutcomeKind.ERROR, 0)),
        (BatchOutcome(OutcomeKind.PARTIAL, frozenset({"12", "11"})), (OutcomeKind.PARTIAL, 1)),
        (BatchOutcome(OutcomeKind.PARTIAL, frozenset({"10"})), (OutcomeKind.PARTIAL, 0)),
        (BatchOutcome(OutcomeKind.PARTIAL, frozenset()), (OutcomeKind.SUCCESS, 3)),
        (BatchOutcome(OutcomeKind.PARTIAL, frozenset({"99"})), (OutcomeKind.ERROR, 0)),
    ],
)
def test_stream_settlement_checkpoints_before_the_lowest_failure(
    outcome: BatchOutcome, expected: tuple[OutcomeKind, int]
) -> None:
    assert stream_settlement(_stream_batch(10, 11, 12), outcome) == expected


def test_an_unserializable_stream_response_settles_nothing() -> None:
    b = _stream_batch(10, 11)
    out = invocation_outcome(
        Ended(invalid_json=True, error_text=MARSHAL), b, report_batch_item_failures=False,
        item_name=SEQUENCE_NUMBER,
    )
    assert stream_settlement(b, out) == (OutcomeKind.ERROR, 0)
