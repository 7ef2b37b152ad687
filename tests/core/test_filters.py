"""Event filtering (lambda-semantics.md section 7): every operator, both ways; AND/OR;
nested keys and arrays; the SQS body and stream data format rules; every refusal."""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import math
import pickle
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import sluicegate.core.filters as filters_module
from sluicegate.core.filters import (
    DATA_KEYS,
    MAX_PATTERN_LENGTH,
    FilterCriteria,
)
from sluicegate.errors import ConfigError

MISSING = object()
"""Marks a field the record should not have."""


def b64(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.b64encode(raw).decode()


def match(pattern: dict[str, Any], record: dict[str, Any], via: str = "metadata") -> bool:
    """Match ``pattern`` against ``record`` through one of the three ways a record arrives:
    as metadata, as an SQS body of JSON text, or as base64 Kinesis data."""
    if via == "metadata":
        return FilterCriteria([pattern]).matches(record)
    if via == "body":
        criteria = FilterCriteria([json.dumps({"body": pattern})])
        return criteria.matches({"messageId": "m1", "body": json.dumps(record)})
    assert via == "stream"
    criteria = FilterCriteria([{"data": pattern}], source="stream")
    return criteria.matches({"partitionKey": "k", "data": b64(record)})


VIAS = ["metadata", "body", "stream"]


def field(value: Any) -> dict[str, Any]:
    return {} if value is MISSING else {"f": value}


# --------------------------------------------------------------------------- operators

OPERATOR_CASES: list[tuple[Any, Any, bool]] = [
    # (leaf pattern for field f, record value of f or MISSING, expected)
    # exact strings: character by character, no normalisation
    (["x"], "x", True),
    (["x"], "X", False),
    (["x"], "x ", False),
    (["x"], "xy", False),
    (["x"], MISSING, False),
    (["x"], None, False),
    (["é"], "e\u0301", False),
    (["5"], 5, False),
    # numbers by representation: int and float are distinct, booleans are not numbers
    ([5], 5, True),
    ([5], 5.0, False),
    ([5], "5", False),
    ([1], True, False),
    ([0], False, False),
    ([300.0], 300.0, True),
    ([300.0], 300, False),
    ([3.0e2], 300.0, True),
    ([-1.5], -1.5, True),
    ([10**20], 10**20, True),
    # booleans
    ([True], True, True),
    ([True], 1, False),
    ([True], "true", False),
    ([False], False, True),
    ([False], 0, False),
    ([False], None, False),
    # null vs missing vs empty string
    ([None], None, True),
    ([None], MISSING, False),
    ([None], "", False),
    ([None], "null", False),
    ([""], "", True),
    ([""], None, False),
    ([""], MISSING, False),
    ([""], " ", False),
    # OR within a list, mixed types
    (["a", "b"], "b", True),
    (["a", "b"], "c", False),
    ([1, "1", None], 1, True),
    ([1, "1", None], "1", True),
    ([1, "1", None], None, True),
    ([1, "1", None], 2, False),
    # prefix / suffix
    ([{"prefix": "us-"}], "us-east-1", True),
    ([{"prefix": "us-"}], "eu-west-1", False),
    ([{"prefix": "us-"}], "US-east-1", False),
    ([{"prefix": "us-"}], "us", False),
    ([{"prefix": "1"}], 12, False),
    ([{"prefix": "us-"}], MISSING, False),
    ([{"prefix": ""}], "anything", True),
    ([{"suffix": ".png"}], "cat.png", True),
    ([{"suffix": ".png"}], "cat.PNG", False),
    ([{"suffix": ".png"}], "png", False),
    ([{"suffix": ".png"}, {"suffix": ".jpg"}], "cat.jpg", True),
    # equals-ignore-case (casefold)
    ([{"equals-ignore-case": "Hello"}], "hELLo", True),
    ([{"equals-ignore-case": "Hello"}], "hello!", False),
    ([{"equals-ignore-case": "straße"}], "STRASSE", True),
    ([{"equals-ignore-case": "5"}], 5, False),
    ([{"equals-ignore-case": "x"}], MISSING, False),
    # anything-but: values of any type, compared as exact match compares
    ([{"anything-but": ["a", "b"]}], "c", True),
    ([{"anything-but": ["a", "b"]}], "a", False),
    ([{"anything-but": ["a", "b"]}], "A", True),
    ([{"anything-but": ["a", "b"]}], 5, True),
    ([{"anything-but": ["a", "b"]}], None, True),
    ([{"anything-but": ["a", "b"]}], True, True),
    ([{"anything-but": ["a", "b"]}], MISSING, False),
    ([{"anything-but": "a"}], "a", False),
    ([{"anything-but": "a"}], "b", True),
    ([{"anything-but": 5}], 5, False),
    ([{"anything-but": 5}], 5.0, True),
    ([{"anything-but": 5}], "5", True),
    ([{"anything-but": [1, "x"]}], 1, False),
    ([{"anything-but": [1, "x"]}], "x", False),
    ([{"anything-but": [1]}], True, True),
    # anything-but on string forms: strings only
    ([{"anything-but": {"prefix": "us-"}}], "eu-west-1", True),
    ([{"anything-but": {"prefix": "us-"}}], "us-east-1", False),
    ([{"anything-but": {"prefix": "us-"}}], 5, False),
    ([{"anything-but": {"suffix": ".tmp"}}], "a.txt", True),
    ([{"anything-but": {"suffix": ".tmp"}}], "a.tmp", False),
    ([{"anything-but": {"equals-ignore-case": "test"}}], "TEST", False),
    ([{"anything-but": {"equals-ignore-case": "test"}}], "prod", True),
    # numeric: compared as numbers, JSON numbers only
    ([{"numeric": ["=", 100]}], 100, True),
    ([{"numeric": ["=", 100]}], 100.0, True),
    ([{"numeric": ["=", 100.0]}], 100, True),
    ([{"numeric": ["=", 100]}], 100.5, False),
    ([{"numeric": ["=", 100]}], "100", False),
    ([{"numeric": ["=", 1]}], True, False),
    ([{"numeric": ["=", 0]}], False, False),
    ([{"numeric": ["=", 0]}], None, False),
    ([{"numeric": ["=", 0]}], MISSING, False),
    ([{"numeric": [">", 10, "<=", 20]}], 10, False),
    ([{"numeric": [">", 10, "<=", 20]}], 10.0001, True),
    ([{"numeric": [">", 10, "<=", 20]}], 20, True),
    ([{"numeric": [">", 10, "<=", 20]}], 20.5, False),
    ([{"numeric": ["<=", 20, ">", 10]}], 15, True),
    ([{"numeric": ["<=", 20, ">", 10]}], 25, False),
    ([{"numeric": [">=", 10, "<", 20]}], 10, True),
    ([{"numeric": [">=", 10, "<", 20]}], 20, False),
    ([{"numeric": [">=", 5, "<=", 5]}], 5, True),
    ([{"numeric": ["<", 0]}], -0.5, True),
    ([{"numeric": ["<", 0]}], 0, False),
    ([{"numeric": [">=", 0]}], 0, True),
    ([{"numeric": [">", 0]}], 0.0, False),
    ([{"numeric": ["=", 2**53 + 1]}], 2**53 + 1, True),
    ([{"numeric": ["=", 2**53 + 1]}], float(2**53), False),
    ([{"numeric": [">", 10]}, {"numeric": ["<", 0]}], -3, True),
    # exists: leaf values only
    ([{"exists": True}], "x", True),
    ([{"exists": True}], "", True),
    ([{"exists": True}], None, True),
    ([{"exists": True}], 0, True),
    ([{"exists": True}], False, True),
    ([{"exists": True}], MISSING, False),
    ([{"exists": True}], {"g": 1}, False),
    ([{"exists": True}], [], False),
    ([{"exists": True}], [1], True),
    ([{"exists": False}], MISSING, True),
    ([{"exists": False}], "x", False),
    ([{"exists": False}], None, False),
    ([{"exists": False}], {"g": 1}, True),
    ([{"exists": False}], [], True),
    ([{"exists": False}], [{"g": 1}], True),
    ([{"exists": False}], ["x"], False),
    ([{"exists": False}, "x"], MISSING, True),
    ([{"exists": False}, "x"], "x", True),
    ([{"exists": False}, "x"], "y", False),
    # arrays in the record: any element
    (["x"], ["y", "x"], True),
    (["x"], ["y", "z"], False),
    (["x"], [], False),
    (["x"], [["y", ["x"]]], True),
    (["x"], [{"f": "x"}], False),
    ([{"prefix": "a"}], ["ba", "ab"], True),
    ([{"numeric": [">", 5]}], [1, 2, 9], True),
    ([{"numeric": [">", 5]}], [1, 2, "9"], False),
    ([{"anything-but": ["a"]}], ["a", "b"], True),
    ([{"anything-but": ["a"]}], ["a", "a"], False),
    ([None], [1, None], True),
]


@pytest.mark.parametrize(("leaf", "value", "expected"), OPERATOR_CASES)
def test_operator(leaf: Any, value: Any, expected: bool) -> None:
    for via in VIAS:
        assert match({"f": leaf}, field(value), via) is expected, via


def test_numeric_ignores_nan_and_infinite_record_values() -> None:
    criteria = FilterCriteria([{"f": [{"numeric": [">", 0]}, {"anything-but": [1]}]}])
    assert criteria.matches({"f": math.inf})  # a JSON-ish number, greater than 0
    assert criteria.matches({"f": math.nan})  # not listed: anything-but matches
    assert not FilterCriteria([{"f": [{"numeric": ["=", 0]}]}]).matches({"f": math.nan})


def test_subclasses_of_json_types_in_metadata_are_matched_as_their_values() -> None:
    import enum

    class Colour(enum.StrEnum):
        RED = "red"

    class Size(enum.IntEnum):
        BIG = 3

    criteria = FilterCriteria([{"c": ["red"], "s": [{"numeric": ["=", 3]}], "t": [3]}])
    assert criteria.matches({"c": Colour.RED, "s": Size.BIG, "t": Size.BIG})
    assert FilterCriteria([{"c": [{"prefix": "re"}]}]).matches({"c": Colour.RED})


def test_metadata_values_of_unknown_types_only_exist() -> None:
    record = {"f": object()}
    assert FilterCriteria([{"f": [{"exists": True}]}]).matches(record)
    assert not FilterCriteria([{"f": [{"exists": False}]}]).matches(record)
    assert not FilterCriteria([{"f": ["x", 1, None, {"prefix": ""}]}]).matches(record)


def test_tuples_in_metadata_are_arrays() -> None:
    assert FilterCriteria([{"f": ["x"]}]).matches({"f": ("y", "x")})
    assert FilterCriteria([{"f": {"g": [1]}}]).matches({"f": ({"g": 2}, {"g": 1})})


# --------------------------------------------------------------------------- AND, OR, nesting


@pytest.mark.parametrize("via", VIAS)
def test_fields_within_a_pattern_are_anded(via: str) -> None:
    pattern = {"city": ["Seattle"], "temp": [{"numeric": [">", 50]}]}
    assert match(pattern, {"city": "Seattle", "temp": 60, "other": 1}, via)
    assert not match(pattern, {"city": "Seattle", "temp": 40}, via)
    assert not match(pattern, {"city": "Boston", "temp": 60}, via)
    assert not match(pattern, {"city": "Seattle"}, via)  # every named field must exist


def test_patterns_are_ored() -> None:
    criteria = FilterCriteria(['{"a": ["1"]}', '{"b": ["2"]}'])
    assert criteria.matches({"a": "1"})
    assert criteria.matches({"b": "2"})
    assert criteria.matches({"a": "1", "b": "2"})
    assert not criteria.matches({"a": "2", "b": "1"})
    assert not criteria.matches({})


NESTED_CASES: list[tuple[dict[str, Any], dict[str, Any], bool]] = [
    ({"a": {"b": ["x"]}}, {"a": {"b": "x"}}, True),
    ({"a": {"b": ["x"]}}, {"a": {"b": "y"}}, False),
    ({"a": {"b": ["x"]}}, {"a": "x"}, False),
    ({"a": {"b": ["x"]}}, {"b": "x"}, False),
    ({"a": {"b": ["x"]}}, {}, False),
    ({"a": {"b": {"c": [1]}}}, {"a": {"b": {"c": 1, "d": 2}}}, True),
    ({"a": {"b": {"c": [1]}}}, {"a": {"b": {"c": 2}}}, False),
    # arrays of objects: one element must match the whole nested pattern
    ({"a": {"b": ["x"]}}, {"a": [{"b": "y"}, {"b": "x"}]}, True),
    ({"a": {"b": ["x"]}}, {"a": [{"b": "y"}, "x"]}, False),
    ({"a": {"b": ["1"], "c": ["2"]}}, {"a": [{"b": "1", "c": "2"}]}, True),
    ({"a": {"b": ["1"], "c": ["2"]}}, {"a": [{"b": "1", "c": "x"}, {"b": "y", "c": "2"}]}, False),
    ({"a": {"b": ["x"]}}, {"a": [[{"b": "x"}]]}, True),
    # exists:false below a missing or non-object parent
    ({"a": {"b": [{"exists": False}]}}, {}, True),
    ({"a": {"b": [{"exists": False}]}}, {"a": "scalar"}, True),
    ({"a": {"b": [{"exists": False}]}}, {"a": {"c": 1}}, True),
    ({"a": {"b": [{"exists": False}]}}, {"a": {"b": 1}}, False),
    ({"a": {"b": [{"exists": False}]}}, {"a": [{"b": 1}, {"c": 1}]}, True),
    ({"a": {"b": [{"exists": False}]}}, {"a": [{"b": 1}]}, False),
    ({"a": {"b": [{"exists": False}]}}, {"a": [1, 2]}, True),
    ({"a": {"b": [{"exists": False}], "c": ["x"]}}, {}, False),
]


@pytest.mark.parametrize(("pattern", "record", "expected"), NESTED_CASES)
def test_nested(pattern: dict[str, Any], record: dict[str, Any], expected: bool) -> None:
    for via in VIAS:
        assert match(pattern, record, via) is expected, via


def test_duplicate_keys_in_a_json_pattern_last_wins() -> None:
    criteria = FilterCriteria(['{"a": ["1"], "a": ["2"]}'])
    assert criteria.patterns == ('{"a":["2"]}',)
    assert criteria.matches({"a": "2"})
    assert not criteria.matches({"a": "1"})


# --------------------------------------------------------------------------- SQS body rules


def sqs(body: Any, **metadata: Any) -> dict[str, Any]:
    return {"messageId": "m1", "body": body, "attributes": {"SenderId": "s1"}, **metadata}


JSON_BODY = '{"type": "order", "amount": 12}'


@pytest.mark.parametrize(
    ("pattern", "body", "expected"),
    [
        # plain string body, plain string pattern: filtered on the raw body
        ({"body": ["hello"]}, "hello", True),
        ({"body": ["hello"]}, "Hello", False),
        ({"body": [{"prefix": "ERR"}]}, "ERROR: disk full", True),
        ({"body": [{"prefix": "ERR"}]}, "ok", False),
        ({"body": [{"anything-but": ["ping"]}]}, "pong", True),
        ({"body": [""]}, "", True),
        # JSON scalars and broken JSON are plain strings
        ({"body": ["42"]}, "42", True),
        ({"body": ['"quoted"']}, '"quoted"', True),
        ({"body": [{"prefix": '{"a"'}]}, '{"a": ', True),
        # plain string body, JSON pattern: dropped
        ({"body": {"type": ["order"]}}, "order", False),
        ({"body": {"type": [{"exists": False}]}}, "plain", False),
        ({"body": {"type": ["order"]}}, "42", False),
        # JSON body, plain string pattern: dropped
        ({"body": [{"prefix": "{"}]}, JSON_BODY, False),
        ({"body": [{"exists": True}]}, JSON_BODY, False),
        ({"body": [JSON_BODY]}, JSON_BODY, False),
        ({"body": [{"prefix": "["}]}, "[1, 2]", False),
        # JSON body, JSON pattern: filtered on the document
        ({"body": {"type": ["order"]}}, JSON_BODY, True),
        ({"body": {"type": ["refund"]}}, JSON_BODY, False),
        ({"body": {"amount": [{"numeric": [">", 10]}]}}, JSON_BODY, True),
        ({"body": {"type": ["order"]}}, ' \n\t{"type": "order"}', True),
        ({"body": {"a": [1]}}, '[{"a": 2}, {"a": 1}]', True),
        # no body in the pattern: metadata only, whatever the body
        ({"attributes": {"SenderId": ["s1"]}}, "not json", True),
        ({"attributes": {"SenderId": ["s1"]}}, JSON_BODY, True),
        ({"attributes": {"SenderId": ["s2"]}}, JSON_BODY, False),
        ({"messageId": ["m1"], "body": {"type": ["order"]}}, JSON_BODY, True),
        ({"messageId": ["m2"], "body": {"type": ["order"]}}, JSON_BODY, False),
    ],
)
def test_sqs_body_format_rules(pattern: dict[str, Any], body: str, expected: bool) -> None:
    criteria = FilterCriteria([pattern])
    assert criteria.matches(sqs(body)) is expected
    metadata = {k: v for k, v in sqs(body).items() if k != "body"}
    assert criteria.matches_payload(body, metadata) is expected
    assert criteria.matches_payload(body.encode(), metadata) is expected


def test_plain_and_json_body_patterns_side_by_side() -> None:
    criteria = FilterCriteria([{"body": ["ping"]}, {"body": {"type": ["order"]}}])
    assert criteria.matches(sqs("ping"))
    assert criteria.matches(sqs('{"type": "order"}'))
    assert not criteria.matches(sqs('"ping"'))
    assert not criteria.matches(sqs('{"type": "ping"}'))


def test_a_body_given_already_parsed_is_the_document() -> None:
    criteria = FilterCriteria([{"body": {"type": ["order"]}}])
    assert criteria.matches(sqs({"type": "order"}))
    assert criteria.matches_payload({"type": "order"})
    assert not FilterCriteria([{"body": ["x"]}]).matches(sqs({"type": "x"}))


def test_a_record_without_its_body_matches_no_body_pattern() -> None:
    criteria = FilterCriteria([{"body": [{"exists": False}]}, {"body": {"a": [{"exists": False}]}}])
    assert not criteria.matches({"messageId": "m1"})
    assert not criteria.matches_payload(None)


def test_the_body_is_parsed_at_most_once_and_only_when_needed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    real = filters_module._json_document

    def counting(text: str) -> Any:
        calls.append(text)
        return real(text)

    monkeypatch.setattr(filters_module, "_json_document", counting)
    criteria = FilterCriteria(
        [
            {"body": {"a": ["1"]}},
            {"body": {"b": ["2"]}},
            {"body": ["plain"]},
            {"messageId": ["wanted"], "body": {"c": ["3"]}},
            {"messageId": ["m9"]},
        ]
    )
    # Three patterns need the body and none matches: decoded once.
    assert not criteria.matches(sqs('{"a": "x", "b": "y"}'))
    assert len(calls) == 1
    # A metadata-only pattern matches first: never decoded.
    calls.clear()
    assert criteria.matches(sqs("{}", messageId="m9"))
    assert calls == []
    # Every body pattern's metadata fails: never decoded.
    calls.clear()
    only_guarded = FilterCriteria([{"messageId": ["wanted"], "body": {"c": ["3"]}}])
    assert not only_guarded.matches(sqs('{"c": "3"}'))
    assert calls == []


# --------------------------------------------------------------------------- stream data rules


def kinesis(data: Any, partition_key: str = "k1") -> dict[str, Any]:
    return {"partitionKey": partition_key, "sequenceNumber": "1", "data": data}


def test_stream_data_is_base64_json() -> None:
    criteria = FilterCriteria(
        ['{"partitionKey": ["k1"], "data": {"Location": ["Los Angeles"]}}'], source="stream"
    )
    assert criteria.data_key == "data"
    assert criteria.matches(kinesis(b64({"Location": "Los Angeles"})))
    assert not criteria.matches(kinesis(b64({"Location": "Boston"})))
    assert not criteria.matches(kinesis(b64({"Location": "Los Angeles"}), "k2"))
    # raw bytes, and an already-decoded document, through the hot-path form
    assert criteria.matches_payload(b'{"Location": "Los Angeles"}', {"partitionKey": "k1"})
    assert criteria.matches_payload({"Location": "Los Angeles"}, {"partitionKey": "k1"})


@pytest.mark.parametrize(
    "data",
    [
        b64(b"hello"),          # not JSON
        b64(b"42"),             # a JSON scalar: not a document
        b64(b"\xff\xfe{}"),     # not UTF-8
        "not base64!",          # not base64
        b"hello",
        None,
    ],
)
def test_stream_records_that_are_not_json_match_no_data_pattern(data: Any) -> None:
    criteria = FilterCriteria(
        [{"data": {"a": [{"exists": False}]}}, {"partitionKey": ["k9"]}], source="stream"
    )
    assert not criteria.matches(kinesis(data))
    # but metadata-only patterns still apply
    assert criteria.matches(kinesis(data, "k9"))


def test_stream_refuses_plain_string_data_patterns() -> None:
    with pytest.raises(ConfigError) as err:
        FilterCriteria([{"data": ["hello"]}], source="stream")
    assert err.value.parameter == "filter_criteria[0]"
    assert "data" in str(err.value)
    # the same pattern is fine for a queue, where "data" is a metadata key
    assert FilterCriteria([{"data": ["hello"]}]).matches({"data": "hello", "body": "x"})


def test_data_keys() -> None:
    assert dict(DATA_KEYS) == {"queue": "body", "stream": "data"}
    assert FilterCriteria().data_key == "body"


# --------------------------------------------------------------------------- construction


def test_no_patterns_means_no_filtering() -> None:
    criteria = FilterCriteria()
    assert len(criteria) == 0
    assert not criteria
    assert criteria.matches({})
    assert criteria.matches_payload("anything")
    assert FilterCriteria([], source="stream").matches_payload(b"\xff")
    assert criteria.to_aws() == {}


def test_patterns_are_kept_as_compact_json_and_compared_by_it() -> None:
    a = FilterCriteria(['{ "body" : { "type" : [ "order" ] } }'])
    b = FilterCriteria([{"body": {"type": ["order"]}}])
    assert a.patterns == ('{"body":{"type":["order"]}}',)
    assert a == b
    assert hash(a) == hash(b)
    assert len(a) == 1 and a
    assert a != FilterCriteria([{"body": {"type": ["order"]}}], source="stream")
    assert "patterns=" in repr(a) and "_with_data" not in repr(a)


def test_criteria_are_frozen_and_survive_pickle_copy_and_replace() -> None:
    criteria = FilterCriteria([{"body": {"type": ["order"]}}, {"messageId": ["m7"]}])
    with pytest.raises(dataclasses.FrozenInstanceError):
        criteria.source = "stream"  # type: ignore[misc]
    for clone in (
        pickle.loads(pickle.dumps(criteria)),
        copy.copy(criteria),
        copy.deepcopy(criteria),
    ):
        assert clone == criteria
        assert clone.matches(sqs('{"type": "order"}'))
        assert not clone.matches(sqs('{"type": "x"}'))
        assert clone.matches(sqs("x", messageId="m7"))
    raised = dataclasses.replace(criteria, max_patterns=10)
    assert raised.max_patterns == 10 and raised.patterns == criteria.patterns


def test_aws_shape_round_trip() -> None:
    aws = {"Filters": [{"Pattern": '{"body": {"a": [1, 2]}}'}, {"Pattern": '{"messageId": ["x"]}'}]}
    criteria = FilterCriteria.from_aws(aws)
    assert criteria.to_aws() == {
        "Filters": [{"Pattern": '{"body":{"a":[1,2]}}'}, {"Pattern": '{"messageId":["x"]}'}]
    }
    assert FilterCriteria.from_aws(criteria.to_aws()) == criteria
    assert FilterCriteria.from_aws(None) == FilterCriteria()
    assert FilterCriteria.from_aws({}) == FilterCriteria()
    assert FilterCriteria.from_aws(
        {"Filters": [{"Pattern": '{"data": {"a": [1]}}'}]}, source="stream"
    ).source == "stream"


@pytest.mark.parametrize(
    ("value", "parameter"),
    [
        ([], "filter_criteria"),
        ("{}", "filter_criteria"),
        ({"Filters": {"Pattern": "{}"}}, "filter_criteria"),
        ({"filters": []}, "filter_criteria"),
        ({"Filters": ['{"a": ["x"]}']}, "filter_criteria[0]"),
        ({"Filters": [{"Pattern": '{"a": ["x"]}', "Other": 1}]}, "filter_criteria[0]"),
        ({"Filters": [{"Pattern": '{"a": ["x"]}'}, {"Pattern": "{"}]}, "filter_criteria[1]"),
    ],
)
def test_aws_shape_refusals(value: Any, parameter: str) -> None:
    with pytest.raises(ConfigError) as err:
        FilterCriteria.from_aws(value)
    assert err.value.parameter == parameter
    assert "\n" not in str(err.value)


def test_at_most_five_patterns_by_default_ten_with_a_raised_quota() -> None:
    five = [{"f": [str(i)]} for i in range(5)]
    assert len(FilterCriteria(five)) == 5
    with pytest.raises(ConfigError) as err:
        FilterCriteria([*five, {"f": ["5"]}])
    assert err.value.parameter == "filter_criteria"
    assert err.value.value == 6
    assert "at most 5" in str(err.value)
    ten = [{"f": [str(i)]} for i in range(10)]
    assert len(FilterCriteria(ten, max_patterns=10)) == 10
    with pytest.raises(ConfigError, match="at most 10"):
        FilterCriteria([*ten, {"f": ["x"]}], max_patterns=10)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"max_patterns": 4}, "max_patterns"),
        ({"max_patterns": 11}, "max_patterns"),
        ({"max_patterns": True}, "max_patterns"),
        ({"max_patterns": 5.0}, "max_patterns"),
        ({"source": "kinesis"}, "source"),
        ({"source": None}, "source"),
        ({"patterns": '{"a": ["x"]}'}, "filter_criteria"),
        ({"patterns": {"a": ["x"]}}, "filter_criteria"),
        ({"patterns": b"[]"}, "filter_criteria"),
        ({"patterns": 5}, "filter_criteria"),
        ({"patterns": [5]}, "filter_criteria[0]"),
        ({"patterns": [b'{"a": ["x"]}']}, "filter_criteria[0]"),
        ({"patterns": [None]}, "filter_criteria[0]"),
        ({"patterns": [{"a": ["x"]}, '{"a": "x"}']}, "filter_criteria[1]"),
    ],
)
def test_argument_refusals(kwargs: dict[str, Any], parameter: str) -> None:
    with pytest.raises(ConfigError) as err:
        FilterCriteria(**kwargs)
    assert err.value.parameter == parameter
    assert "\n" not in str(err.value)


def test_pattern_length_limit() -> None:
    def of_length(n: int) -> str:
        text = '{"a":["' + "x" * (n - 10) + '"]}'
        assert len(text) == n
        return text

    assert FilterCriteria([of_length(MAX_PATTERN_LENGTH)])
    with pytest.raises(ConfigError, match="4,096 characters"):
        FilterCriteria([of_length(MAX_PATTERN_LENGTH + 1)])
    with pytest.raises(ConfigError, match="4,096 characters"):
        FilterCriteria([{"a": ["x" * MAX_PATTERN_LENGTH]}])


REFUSED = [
    # not a JSON object
    "",
    "{",
    "not json",
    '{"a": ["x"],}',
    "[]",
    '[{"a": ["x"]}]',
    '"x"',
    "5",
    "null",
    '{"a": [NaN]}',
    '{"a": [Infinity]}',
    # empty things
    "{}",
    '{"a": {}}',
    '{"a": []}',
    '{"body": {}}',
    # leaves that are not lists
    '{"a": "x"}',
    '{"a": 5}',
    '{"a": null}',
    '{"a": true}',
    '{"a": {"exists": true}}',
    '{"a": {"prefix": "x"}}',
    # bad alternatives
    '{"a": [["x"]]}',
    '{"a": [{}]}',
    '{"a": [{"prefix": "x", "suffix": "y"}]}',
    # unknown operators
    '{"a": [{"wildcard": "*.png"}]}',
    '{"a": [{"cidr": "10.0.0.0/24"}]}',
    '{"a": [{"Prefix": "x"}]}',
    '{"a": [{"anything_but": ["x"]}]}',
    '{"$or": [{"a": ["x"]}, {"b": ["y"]}]}',
    # wrong operand types
    '{"a": [{"prefix": 5}]}',
    '{"a": [{"prefix": ["x"]}]}',
    '{"a": [{"prefix": {"equals-ignore-case": "x"}}]}',
    '{"a": [{"suffix": null}]}',
    '{"a": [{"equals-ignore-case": true}]}',
    '{"a": [{"exists": "yes"}]}',
    '{"a": [{"exists": 1}]}',
    '{"a": [{"exists": null}]}',
    '{"a": [{"anything-but": []}]}',
    '{"a": [{"anything-but": null}]}',
    '{"a": [{"anything-but": true}]}',
    '{"a": [{"anything-but": [null]}]}',
    '{"a": [{"anything-but": [["x"]]}]}',
    '{"a": [{"anything-but": {}}]}',
    '{"a": [{"anything-but": {"wildcard": "x"}}]}',
    '{"a": [{"anything-but": {"prefix": 5}}]}',
    '{"a": [{"anything-but": {"prefix": ["a", "b"]}}]}',
    '{"a": [{"anything-but": {"prefix": "a", "suffix": "b"}}]}',
    # numeric: bad shapes and operator sequences
    '{"a": [{"numeric": 5}]}',
    '{"a": [{"numeric": []}]}',
    '{"a": [{"numeric": [">"]}]}',
    '{"a": [{"numeric": [">", 1, "<"]}]}',
    '{"a": [{"numeric": [">", 1, "<", 5, "=", 3]}]}',
    '{"a": [{"numeric": ["=", "5"]}]}',
    '{"a": [{"numeric": ["=", true]}]}',
    '{"a": [{"numeric": ["=", null]}]}',
    '{"a": [{"numeric": ["==", 5]}]}',
    '{"a": [{"numeric": ["!=", 5]}]}',
    '{"a": [{"numeric": [5, ">"]}]}',
    '{"a": [{"numeric": [">", 1, ">", 2]}]}',
    '{"a": [{"numeric": ["<", 1, "<=", 2]}]}',
    '{"a": [{"numeric": ["=", 1, "<", 2]}]}',
    '{"a": [{"numeric": [">", 5, "<", 5]}]}',
    '{"a": [{"numeric": [">=", 5, "<", 5]}]}',
    '{"a": [{"numeric": [">", 6, "<", 5]}]}',
    '{"a": [{"numeric": [">", 1e400]}]}',
]


@pytest.mark.parametrize("pattern", REFUSED)
def test_refused_patterns(pattern: str) -> None:
    with pytest.raises(ConfigError) as err:
        FilterCriteria(['{"ok": ["x"]}', pattern])
    message = str(err.value)
    assert err.value.parameter == "filter_criteria[1]"
    assert message.startswith("filter_criteria[1]=")
    assert "is invalid: allowed " in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "pattern",
    [
        {1: ["x"]},
        {"a": [math.nan]},
        {"a": [{"numeric": [">", math.inf]}]},
        {"a": [{"anything-but": [math.nan]}]},
        {"a": [{1, 2}]},
        {"a": {"b": ("x", object())}},
    ],
)
def test_refused_dict_patterns(pattern: Any) -> None:
    with pytest.raises(ConfigError) as err:
        FilterCriteria([pattern])
    assert err.value.parameter == "filter_criteria[0]"
    assert "\n" not in str(err.value)


def test_refusals_name_the_fragment_and_its_path() -> None:
    with pytest.raises(ConfigError) as err:
        FilterCriteria(['{"body": {"order": {"price": [{"numeric": [">", "ten"]}]}}}'])
    assert err.value.value == {"numeric": [">", "ten"]}
    assert "(at body.order.price)" in str(err.value)
    with pytest.raises(ConfigError, match='operators inside a list'):
        FilterCriteria(['{"a": {"exists": true}}'])
    with pytest.raises(ConfigError, match=r'"\$or"'):
        FilterCriteria(['{"$or": [{"a": ["x"]}]}'])
    with pytest.raises(ConfigError, match="invalid JSON"):
        FilterCriteria(["{"])


def test_python_tuples_are_accepted_as_lists() -> None:
    criteria = FilterCriteria([{"a": ("x", {"numeric": (">", 1)})}])
    assert criteria.patterns == ('{"a":["x",{"numeric":[">",1]}]}',)
    assert criteria.matches({"a": 2})


def test_public_names() -> None:
    for name in filters_module.__all__:
        assert hasattr(filters_module, name), name


# --------------------------------------------------------------------------- properties

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=4).filter(lambda name: name != "$or"), children, max_size=3),
    max_leaves=12,
)
# "$or" is reserved by EventBridge; "body" and "data" are the data keys at the top level.
top_level_names = st.text(max_size=4).filter(lambda name: name not in ("$or", "body", "data"))
records = st.dictionaries(top_level_names, json_values, min_size=1, max_size=4)


def leaves(value: list[Any]) -> list[Any]:
    found: list[Any] = []
    for item in value:
        if isinstance(item, list):
            found.extend(leaves(item))
        elif not isinstance(item, dict):
            found.append(item)
    return found


def own_pattern(record: dict[str, Any]) -> dict[str, Any]:
    """A pattern built from the record's own values: one alternative per field."""
    pattern: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            pattern[key] = own_pattern(value) if value else [{"exists": False}]
        elif isinstance(value, list):
            scalars_in = leaves(value)
            objects = [v for v in value if isinstance(v, dict) and v]
            if scalars_in:
                pattern[key] = [scalars_in[-1]]
            elif objects:
                pattern[key] = own_pattern(objects[0])
            else:
                pattern[key] = [{"exists": False}]
        else:
            pattern[key] = [value]
    return pattern


@settings(max_examples=100, deadline=None)
@given(records)
def test_a_pattern_of_a_records_own_values_matches_it(record: dict[str, Any]) -> None:
    pattern = own_pattern(record)
    criteria = FilterCriteria([pattern])
    assert criteria.matches(record)
    assert FilterCriteria(criteria.patterns) == criteria
    assert FilterCriteria([{"body": pattern}]).matches_payload(json.dumps(record))
    stream = FilterCriteria([{"data": pattern}], source="stream")
    assert stream.matches_payload(b64(record))


def same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


@settings(max_examples=200, deadline=None)
@given(
    st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=4),
    scalars,
)
def test_anything_but_is_the_complement_of_exact_match(listed: Any, value: Any) -> None:
    exact = FilterCriteria([{"f": [listed]}])
    anything_but = FilterCriteria([{"f": [{"anything-but": listed}]}])
    assert not anything_but.matches({"f": listed})
    assert not anything_but.matches({"f": [listed, listed]})
    assert exact.matches({"f": value}) is same(listed, value)
    assert anything_but.matches({"f": value}) is not same(listed, value)


numbers = st.integers(min_value=-(10**6), max_value=10**6) | st.floats(
    min_value=-1e6, max_value=1e6, allow_nan=False
)


@settings(max_examples=100, deadline=None)
@given(numbers, numbers, numbers)
def test_numeric_ranges_compare_values(low: float, high: float, x: float) -> None:
    assume(low < high)
    criteria = FilterCriteria([{"f": [{"numeric": [">", low, "<=", high]}]}])
    assert criteria.matches({"f": x}) is (low < x <= high)
    equal = FilterCriteria([{"f": [{"numeric": ["=", low]}]}])
    assert equal.matches({"f": x}) is (x == low)
    assert not criteria.matches({"f": str(x)})
