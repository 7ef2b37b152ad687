"""Every row of the ReportBatchItemFailures table (lambda-semantics.md section 4)."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest

from sluicegate.core.results import (
    INVALID_JSON,
    SUCCESS_OUTCOME,
    deletable,
    exception_outcome,
    interpret_response,
    timeout_outcome,
)
from sluicegate.core.types import BatchOutcome, OutcomeKind

from .support import batch

ALL = frozenset({"a", "b", "c"})


def interpret(response: Any, rbif: bool = True) -> BatchOutcome:
    return interpret_response(response, batch("a", "b", "c"), report_batch_item_failures=rbif)


@pytest.mark.parametrize(
    "response",
    [None, {}, {"batchItemFailures": None}, {"batchItemFailures": []}, {"other": 1},
     INVALID_JSON, [1], "x", 3, {"batchItemFailures": [{"itemIdentifier": "zzz"}]},
     {"batchItemFailures": [{"itemIdentifier": "a"}]}],
)
def test_option_off_ignores_the_response(response: Any) -> None:
    assert interpret(response, rbif=False) is SUCCESS_OUTCOME


@pytest.mark.parametrize(
    "response",
    [
        None,                               # null response
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
