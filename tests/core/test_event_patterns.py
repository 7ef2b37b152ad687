"""EventBridge event patterns (EventPattern): every operator both ways, wildcard escaping
and limits, cidr for IPv4 and IPv6, $or at any level, dotted keys, arrays, null and empty,
every refusal with its key path, and properties against reference readings."""

from __future__ import annotations

import copy
import ipaddress
import json
import math
import pickle
import re
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sluicegate.core.filters import (
    EVENT_PATTERN_OPERATORS,
    MAX_EVENT_PATTERN_LENGTH,
    OPERATORS,
    EventPattern,
    FilterCriteria,
)
from sluicegate.errors import ConfigError, InputError

MISSING = object()
"""Marks a field the event should not have."""


def field(value: Any) -> dict[str, Any]:
    return {} if value is MISSING else {"f": value}


def matches(leaf: Any, value: Any) -> bool:
    return EventPattern({"detail": {"f": leaf}}).matches({"detail": field(value)})


# The user guide's sample EC2 event, retold: the patterns below are checked against it.
EC2_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "111122223333",
    "time": "2017-12-22T18:43:48Z",
    "region": "us-west-1",
    "resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
    "detail": {
        "instance-id": "i-1234567890abcdef0",
        "state": "terminated",
        "c-count": 5,
        "d-count": 3,
        "x-limit": 301.8,
        "source-ip": "10.0.0.33",
    },
}


# --------------------------------------------------------------------------- operators

OPERATOR_CASES: list[tuple[Any, Any, bool]] = [
    # (leaf pattern for detail.f, event value or MISSING, expected)
    # exact values: strings by character; numbers by value (EventBridge adds numeric =)
    (["x"], "x", True),
    (["x"], "X", False),
    (["x"], MISSING, False),
    ([300], 300, True),
    ([300], 300.0, True),
    ([300.0], 300, True),
    ([3.0e2], 300, True),
    ([300], "300", False),
    ([1], True, False),
    ([0], False, False),
    ([True], True, True),
    ([True], "true", False),
    # null and empty are distinct from each other and from a missing field
    ([None], None, True),
    ([None], MISSING, False),
    ([None], "", False),
    ([""], "", True),
    ([""], None, False),
    ([""], MISSING, False),
    # prefix and suffix, plain and ignoring case
    ([{"prefix": "us-"}], "us-east-1", True),
    ([{"prefix": "us-"}], "US-east-1", False),
    ([{"prefix": {"equals-ignore-case": "EventB"}}], "eventbridge", True),
    ([{"prefix": {"equals-ignore-case": "EventB"}}], "EVENTBRIDGE", True),
    ([{"prefix": {"equals-ignore-case": "EventB"}}], "the EventB", False),
    ([{"suffix": ".png"}], "cat.png", True),
    ([{"suffix": ".png"}], "cat.PNG", False),
    ([{"suffix": {"equals-ignore-case": ".png"}}], "cat.PNG", True),
    ([{"suffix": {"equals-ignore-case": ".png"}}], "cat.jpg", False),
    ([{"suffix": {"equals-ignore-case": ".png"}}], 5, False),
    ([{"equals-ignore-case": "alice"}], "ALICE", True),
    ([{"equals-ignore-case": "alice"}], "alice2", False),
    # wildcard: * is any run of characters, including none; strings only
    ([{"wildcard": "*.png"}], "a.png", True),
    ([{"wildcard": "*.png"}], ".png", True),
    ([{"wildcard": "*.png"}], "a.png.gz", False),
    ([{"wildcard": "dir/*.png"}], "dir/a.png", True),
    ([{"wildcard": "dir/*.png"}], "dir/sub/a.png", True),
    ([{"wildcard": "dir/*.png"}], "other/dir/a.png", False),
    ([{"wildcard": "*Title*"}], "The Title Here", True),
    ([{"wildcard": "*Title*"}], "title", False),
    ([{"wildcard": "a*b*c"}], "abc", True),
    ([{"wildcard": "a*b*c"}], "aXbYc", True),
    ([{"wildcard": "a*b*c"}], "acb", False),
    ([{"wildcard": "exact"}], "exact", True),
    ([{"wildcard": "exact"}], "exactly", False),
    ([{"wildcard": "*"}], "", True),
    ([{"wildcard": "*"}], 5, False),
    ([{"wildcard": "*"}], None, False),
    ([{"wildcard": "line*end"}], "line\nend", True),
    ([{"wildcard": "a.c"}], "abc", False),
    ([{"wildcard": "[ab]"}], "a", False),
    ([{"wildcard": "[ab]"}], "[ab]", True),
    # escapes: \* is an asterisk, \\ a backslash
    ([{"wildcard": "2\\*3"}], "2*3", True),
    ([{"wildcard": "2\\*3"}], "2x3", False),
    ([{"wildcard": "a\\\\b"}], "a\\b", True),
    ([{"wildcard": "\\**"}], "*tail", True),
    ([{"wildcard": "\\**"}], "tail", False),
    ([{"wildcard": "*\\*"}], "ends*", True),
    # cidr: IPv4 and IPv6 blocks, strings that are addresses only
    ([{"cidr": "10.0.0.0/24"}], "10.0.0.33", True),
    ([{"cidr": "10.0.0.0/24"}], "10.0.0.255", True),
    ([{"cidr": "10.0.0.0/24"}], "10.0.1.0", False),
    ([{"cidr": "10.0.0.0/24"}], "10.0.0", False),
    ([{"cidr": "10.0.0.0/24"}], "not an ip", False),
    ([{"cidr": "10.0.0.0/24"}], 167772193, False),
    ([{"cidr": "10.0.0.0/24"}], "::ffff:10.0.0.33", False),
    ([{"cidr": "0.0.0.0/0"}], "255.255.255.255", True),
    ([{"cidr": "0.0.0.0/0"}], "::1", False),
    ([{"cidr": "2001:db8::/32"}], "2001:db8:1::7", True),
    ([{"cidr": "2001:db8::/32"}], "2001:DB8::7", True),
    ([{"cidr": "2001:db8::/32"}], "2001:db9::7", False),
    ([{"cidr": "2001:db8::/32"}], "10.0.0.1", False),
    ([{"cidr": "10.0.0.5/24"}], "10.0.0.5", True),
    ([{"cidr": "10.0.0.5/24"}], "10.0.0.200", True),
    ([{"cidr": "10.0.0.5/24"}], "10.0.0.4", False),
    # anything-but: a value, a list of strings, a list of numbers (compared by value)
    ([{"anything-but": "initializing"}], "running", True),
    ([{"anything-but": "initializing"}], "initializing", False),
    ([{"anything-but": "initializing"}], MISSING, False),
    ([{"anything-but": ["stopped", "overloaded"]}], "running", True),
    ([{"anything-but": ["stopped", "overloaded"]}], "stopped", False),
    ([{"anything-but": 123}], 124, True),
    ([{"anything-but": 123}], 123, False),
    ([{"anything-but": 123}], 123.0, False),
    ([{"anything-but": [100, 200, 300]}], 301.8, True),
    ([{"anything-but": [100, 200, 300]}], 200, False),
    # anything-but forms: strings only, single values and lists
    ([{"anything-but": {"prefix": "init"}}], "running", True),
    ([{"anything-but": {"prefix": "init"}}], "initializing", False),
    ([{"anything-but": {"prefix": "init"}}], 5, False),
    ([{"anything-but": {"prefix": ["us-", "eu-"]}}], "ap-south-1", True),
    ([{"anything-but": {"prefix": ["us-", "eu-"]}}], "eu-west-1", False),
    ([{"anything-but": {"suffix": ".png"}}], "a.jpg", True),
    ([{"anything-but": {"suffix": [".png", ".jpg"]}}], "a.jpg", False),
    ([{"anything-but": {"suffix": [".png", ".jpg"]}}], "a.gif", True),
    ([{"anything-but": {"equals-ignore-case": "initializing"}}], "INITIALIZING", False),
    ([{"anything-but": {"equals-ignore-case": ["a", "B"]}}], "b", False),
    ([{"anything-but": {"equals-ignore-case": ["a", "B"]}}], "c", True),
    ([{"anything-but": {"wildcard": "*/lib/*"}}], "/usr/lib/x", False),
    ([{"anything-but": {"wildcard": "*/lib/*"}}], "/usr/bin/x", True),
    ([{"anything-but": {"wildcard": ["*/lib/*", "*/bin/*"]}}], "/usr/bin/x", False),
    ([{"anything-but": {"wildcard": ["*/lib/*", "*/bin/*"]}}], "/etc/x", True),
    ([{"anything-but": {"wildcard": "*"}}], "anything", False),
    # numeric
    ([{"numeric": [">", 0, "<=", 5]}], 5, True),
    ([{"numeric": [">", 0, "<=", 5]}], 0, False),
    ([{"numeric": ["<", 10]}], 3, True),
    ([{"numeric": ["=", 3.018e2]}], 301.8, True),
    ([{"numeric": ["=", 3.018e2]}], "301.8", False),
    ([{"numeric": [">=", -5e9, "<=", 5e9]}], 0.000001, True),
    # exists, on leaves only
    ([{"exists": True}], "pending", True),
    ([{"exists": True}], MISSING, False),
    ([{"exists": True}], {"c1": 100}, False),
    ([{"exists": False}], MISSING, True),
    ([{"exists": False}], {"c1": 100}, True),
    ([{"exists": False}], "x", False),
    # arrays in the event: the pattern matches when one element matches
    (["x"], ["y", "x"], True),
    (["x"], [], False),
    ([{"wildcard": "*b"}], ["a", "ab"], True),
    ([{"cidr": "10.0.0.0/8"}], ["192.168.0.1", "10.1.2.3"], True),
    ([{"anything-but": ["a"]}], ["a", "a"], False),
]


@pytest.mark.parametrize(("leaf", "value", "expected"), OPERATOR_CASES)
def test_operator(leaf: Any, value: Any, expected: bool) -> None:
    assert matches(leaf, value) is expected


def test_the_user_guides_patterns_against_its_sample_event() -> None:
    match = [
        {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"],
         "detail": {"state": ["terminated"]}},
        {"time": [{"prefix": "2017-12-22"}]},
        {"resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f",
                       "arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"]},
        {"detail": {"state": [{"anything-but": "initializing"}],
                    "c-count": [{"numeric": [">", 0, "<=", 5]}],
                    "d-count": [{"numeric": ["<", 10]}],
                    "x-limit": [{"anything-but": [100, 200, 300]}],
                    "source-ip": [{"cidr": "10.0.0.0/8"}]}},
        {"detail": {"c-count": [{"exists": True}], "e-count": [{"exists": False}]}},
        {"source": [{"wildcard": "aws.*"}], "region": [{"suffix": "-1"}]},
    ]
    for pattern in match:
        assert EventPattern(pattern).matches(EC2_EVENT), pattern
    no_match = [
        {"source": ["aws.s3"]},
        {"detail": {"state": ["running", "pending"]}},
        {"detail": {"c-count": [{"numeric": [">", 5]}]}},
        {"detail": {"state": [{"exists": False}]}},
        {"account": ["111122223333"], "region": ["us-east-1"]},
        {"detail": {"source-ip": [{"cidr": "10.0.1.0/24"}]}},
    ]
    for pattern in no_match:
        assert not EventPattern(pattern).matches(EC2_EVENT), pattern


def test_an_event_given_as_json_text() -> None:
    pattern = EventPattern('{"source": ["aws.ec2"]}')
    assert pattern.matches(json.dumps(EC2_EVENT))
    assert pattern.matches(json.dumps(EC2_EVENT).encode())
    assert not pattern.matches("[1, 2]")
    assert not pattern.matches("5")
    with pytest.raises(InputError, match="not JSON"):
        pattern.matches("{nope")


# --------------------------------------------------------------------------- $or

OR_CASES: list[tuple[dict[str, Any], dict[str, Any], bool]] = [
    # "source" and ("metricName" or "namespace")
    ({"source": ["aws.cloudwatch"],
      "$or": [{"metricName": ["CPUUtilization"]}, {"namespace": ["AWS/EC2"]}]},
     {"source": "aws.cloudwatch", "namespace": "AWS/EC2"}, True),
    ({"source": ["aws.cloudwatch"],
      "$or": [{"metricName": ["CPUUtilization"]}, {"namespace": ["AWS/EC2"]}]},
     {"source": "aws.cloudwatch", "metricName": "CPUUtilization"}, True),
    ({"source": ["aws.cloudwatch"],
      "$or": [{"metricName": ["CPUUtilization"]}, {"namespace": ["AWS/EC2"]}]},
     {"source": "aws.cloudwatch", "metricName": "Other"}, False),
    ({"source": ["aws.cloudwatch"],
      "$or": [{"metricName": ["CPUUtilization"]}, {"namespace": ["AWS/EC2"]}]},
     {"source": "aws.other", "metricName": "CPUUtilization"}, False),
    # two $or at different levels: both must hold
    ({"$or": [{"a": ["1"]}, {"b": ["2"]}], "detail": {"$or": [{"c": ["3"]}, {"d": ["4"]}]}},
     {"b": "2", "detail": {"d": "4"}}, True),
    ({"$or": [{"a": ["1"]}, {"b": ["2"]}], "detail": {"$or": [{"c": ["3"]}, {"d": ["4"]}]}},
     {"b": "2", "detail": {"e": "5"}}, False),
    # an "and" inside an "or", and an "or" inside that
    ({"$or": [{"a": ["1"]}, {"b": ["2"], "c": ["3"], "$or": [{"d": [4]}, {"e": [5]}]}]},
     {"b": "2", "c": "3", "e": 5}, True),
    ({"$or": [{"a": ["1"]}, {"b": ["2"], "c": ["3"], "$or": [{"d": [4]}, {"e": [5]}]}]},
     {"b": "2", "c": "3"}, False),
    ({"$or": [{"a": ["1"]}, {"b": ["2"], "c": ["3"], "$or": [{"d": [4]}, {"e": [5]}]}]},
     {"a": "1"}, True),
    # branches reach into nested objects
    ({"$or": [{"detail": {"x": ["1"]}}, {"detail": {"y": {"z": ["2"]}}}]},
     {"detail": {"y": {"z": "2"}}}, True),
    # exists:false inside a branch
    ({"$or": [{"a": [{"exists": False}]}, {"a": ["x"]}]}, {}, True),
    ({"$or": [{"a": [{"exists": False}]}, {"a": ["x"]}]}, {"a": "y"}, False),
    # one branch per array element, with the fields beside it from the same element
    ({"items": {"kind": ["book"], "$or": [{"price": [{"numeric": ["<", 10]}]},
                                          {"sale": [True]}]}},
     {"items": [{"kind": "pen", "price": 1}, {"kind": "book", "price": 20}]}, False),
    ({"items": {"kind": ["book"], "$or": [{"price": [{"numeric": ["<", 10]}]},
                                          {"sale": [True]}]}},
     {"items": [{"kind": "pen", "price": 1}, {"kind": "book", "price": 20, "sale": True}]},
     True),
]


@pytest.mark.parametrize(("pattern", "event", "expected"), OR_CASES)
def test_or(pattern: dict[str, Any], event: dict[str, Any], expected: bool) -> None:
    assert EventPattern(pattern).matches(event) is expected
    assert EventPattern(json.dumps(pattern)).matches(json.dumps(event)) is expected


# --------------------------------------------------------------------------- structure


@pytest.mark.parametrize(
    ("pattern", "event", "expected"),
    [
        # dotted keys are nested paths, and merge with the nested spelling
        ({"detail.state": ["on"]}, {"detail": {"state": "on"}}, True),
        ({"detail.state": ["on"]}, {"detail": {"state": "off"}}, False),
        ({"a.b.c": [1], "a": {"d": [2]}}, {"a": {"b": {"c": 1}, "d": 2}}, True),
        ({"a.b.c": [1], "a": {"d": [2]}}, {"a": {"b": {"c": 1}}}, False),
        ({"a": {"b": ["x"]}, "a.b": ["y"]}, {"a": {"b": "y"}}, True),
        ({"a": {"b": ["x"]}, "a.b": ["y"]}, {"a": {"b": "x"}}, False),
        ({"$or": [{"d.x": ["1"]}, {"d.y": ["2"]}]}, {"d": {"y": "2"}}, True),
        # a key with an empty part is a field name as written
        ({"a.": ["x"]}, {"a.": "x"}, True),
        # fields the pattern does not name are ignored; named ones must exist
        ({"detail": {"state": ["on"]}}, {"detail": {"state": "on", "other": 1}, "x": 2}, True),
        ({"detail": {"state": ["on"]}}, {"detail": {}}, False),
        ({"detail": {"state": ["on"]}}, {"detail": "on"}, False),
        # arrays of objects: every field from the same element
        ({"employees": {"first": ["Anna"]}},
         {"employees": [{"first": "John"}, {"first": "Anna"}]}, True),
        ({"employees": {"first": ["Anna"], "last": ["Jones"]}},
         {"employees": [{"first": "Anna", "last": "Smith"}, {"first": "Peter", "last": "Jones"}]},
         False),
        ({"employees": {"first": ["Peter"]}},
         {"employees": [[{"first": "John"}], [{"first": "Peter"}]]}, True),
    ],
)
def test_structure(pattern: dict[str, Any], event: dict[str, Any], expected: bool) -> None:
    assert EventPattern(pattern).matches(event) is expected


def test_duplicate_keys_last_wins() -> None:
    pattern = EventPattern(
        '{"detail": {"location": [{"prefix": "us-"}], "location": [{"anything-but": "us-east"}]}}'
    )
    assert pattern.pattern == '{"detail":{"location":[{"anything-but":"us-east"}]}}'
    assert pattern.matches({"detail": {"location": "eu-west"}})
    assert not pattern.matches({"detail": {"location": "us-east"}})


def test_non_object_events_match_nothing() -> None:
    pattern = EventPattern({"a": [{"exists": False}]})
    assert pattern.matches({})
    for event in ([], ("a",), 5, None):
        assert not pattern.matches(event)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- refusals

REFUSED: list[tuple[str, str]] = [
    # (pattern, the key path the error names)
    ("", ""),
    ("{", ""),
    ("[]", ""),
    ('"x"', ""),
    ("{}", ""),
    ('{"a": {}}', "a"),
    ('{"a": []}', "a"),
    ('{"a": "x"}', "a"),
    ('{"a": [["x"]]}', "a"),
    ('{"a": [NaN]}', ""),
    ('{"a": [{}]}', "a"),
    ('{"a": [{"prefix": "x", "suffix": "y"}]}', "a"),
    ('{"a": [{"regex": "x"}]}', "a"),
    ('{"a": [{"exactly": "x"}]}', "a"),
    # prefix / suffix / equals-ignore-case
    ('{"a": [{"prefix": 5}]}', "a"),
    ('{"a": [{"prefix": ["x"]}]}', "a"),
    ('{"a": [{"prefix": {"equals-ignore-case": 5}}]}', "a"),
    ('{"a": [{"prefix": {"wildcard": "x"}}]}', "a"),
    ('{"a": [{"prefix": {"equals-ignore-case": "x", "other": 1}}]}', "a"),
    ('{"a": [{"suffix": {}}]}', "a"),
    ('{"a": [{"equals-ignore-case": ["x"]}]}', "a"),
    # wildcard: consecutive stars, bad escapes
    ('{"d": {"f": [{"wildcard": "a**b"}]}}', "d.f"),
    ('{"d": {"f": [{"wildcard": "**"}]}}', "d.f"),
    ('{"d": {"f": [{"wildcard": "a\\\\xb"}]}}', "d.f"),
    ('{"d": {"f": [{"wildcard": "trailing\\\\"}]}}', "d.f"),
    ('{"d": {"f": [{"wildcard": 5}]}}', "d.f"),
    ('{"d": {"f": [{"wildcard": ["*"]}]}}', "d.f"),
    # cidr
    ('{"ip": [{"cidr": "10.0.0.0"}]}', "ip"),
    ('{"ip": [{"cidr": "10.0.0.0/"}]}', "ip"),
    ('{"ip": [{"cidr": "10.0.0.0/x"}]}', "ip"),
    ('{"ip": [{"cidr": "10.0.0.0/-1"}]}', "ip"),
    ('{"ip": [{"cidr": "10.0.0.0/32"}]}', "ip"),
    ('{"ip": [{"cidr": "10.0.0.0/33"}]}', "ip"),
    ('{"ip": [{"cidr": "10.0.0/8"}]}', "ip"),
    ('{"ip": [{"cidr": "300.0.0.0/8"}]}', "ip"),
    ('{"ip": [{"cidr": "2001:db8::/128"}]}', "ip"),
    ('{"ip": [{"cidr": "fe80::1%eth0/64"}]}', "ip"),
    ('{"ip": [{"cidr": "example.com/8"}]}', "ip"),
    ('{"ip": [{"cidr": 10}]}', "ip"),
    # anything-but
    ('{"a": [{"anything-but": []}]}', "a"),
    ('{"a": [{"anything-but": null}]}', "a"),
    ('{"a": [{"anything-but": true}]}', "a"),
    ('{"a": [{"anything-but": [null]}]}', "a"),
    ('{"a": [{"anything-but": ["x", 1]}]}', "a"),
    ('{"a": [{"anything-but": [true]}]}', "a"),
    ('{"a": [{"anything-but": [6e9]}]}', "a"),
    ('{"a": [{"anything-but": 1.0000001}]}', "a"),
    ('{"a": [{"anything-but": {}}]}', "a"),
    ('{"a": [{"anything-but": {"numeric": [">", 1]}}]}', "a"),
    ('{"a": [{"anything-but": {"prefix": ""}}]}', "a"),
    ('{"a": [{"anything-but": {"suffix": ["x", ""]}}]}', "a"),
    ('{"a": [{"anything-but": {"prefix": []}}]}', "a"),
    ('{"a": [{"anything-but": {"prefix": [5]}}]}', "a"),
    ('{"a": [{"anything-but": {"equals-ignore-case": [1]}}]}', "a"),
    ('{"a": [{"anything-but": {"wildcard": "a**"}}]}', "a"),
    ('{"a": [{"anything-but": {"wildcard": ["ok*", "bad\\\\q"]}}]}', "a"),
    ('{"a": [{"anything-but": {"prefix": "a", "suffix": "b"}}]}', "a"),
    # numeric
    ('{"a": [{"numeric": ["<=", 20, ">", 10]}]}', "a"),
    ('{"a": [{"numeric": [">", 10, ">", 20]}]}', "a"),
    ('{"a": [{"numeric": ["=", 1, "<", 2]}]}', "a"),
    ('{"a": [{"numeric": [">", 5, "<", 5]}]}', "a"),
    ('{"a": [{"numeric": [">", 5000000001]}]}', "a"),
    ('{"a": [{"numeric": ["<", -5.0e9, ">", 1]}]}', "a"),
    ('{"a": [{"numeric": ["=", 0.0000001]}]}', "a"),
    ('{"a": [{"numeric": ["=", "5"]}]}', "a"),
    ('{"a": [{"numeric": ["!=", 5]}]}', "a"),
    # exists
    ('{"a": [{"exists": "yes"}]}', "a"),
    ('{"a": {"exists": true}}', "a.exists"),
    # $or
    ('{"$or": []}', "$or"),
    ('{"$or": [{"a": ["x"]}]}', "$or"),
    ('{"$or": {"a": ["x"]}}', "$or"),
    ('{"$or": [{"a": ["x"]}, ["b"]]}', "$or[1]"),
    ('{"$or": [{"a": ["x"]}, {}]}', "$or[1]"),
    ('{"$or": [{"a": ["x"]}, {"b": "y"}]}', "$or[1].b"),
    ('{"d": {"$or": [{"numeric": [1]}, {"b": ["y"]}]}}', "d.$or[0]"),
    ('{"$or": [{"a": ["x"]}, {"b": {"prefix": ["y"]}}]}', "$or[1].b"),
    ('{"$or": [{"a": ["x"]}, {"$or": [{"c": ["y"]}]}]}', "$or[1].$or"),
    # dotted keys that clash with the nested spelling
    ('{"a.b": ["x"], "a": ["y"]}', "a"),
    ('{"a": ["y"], "a.b": ["x"]}', "a"),
]


@pytest.mark.parametrize(("pattern", "path"), REFUSED)
def test_refused(pattern: str, path: str) -> None:
    with pytest.raises(ConfigError) as err:
        EventPattern.parse(pattern, context="rule r1")
    message = str(err.value)
    expected = f"event_pattern.{path}" if path else "event_pattern"
    assert err.value.parameter == expected
    assert err.value.context == "rule r1"
    assert message.startswith(f"rule r1: {expected}=")
    assert "is invalid: allowed " in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "pattern",
    [
        5,
        None,
        ["x"],
        {1: ["x"]},
        {"a": [math.nan]},
        {"a": [{"numeric": [">", math.inf]}]},
        {"a": [{1, 2}]},
        {"a": [{"anything-but": [math.inf]}]},
    ],
)
def test_refused_python_patterns(pattern: Any) -> None:
    with pytest.raises(ConfigError) as err:
        EventPattern(pattern)
    assert err.value.parameter.startswith("event_pattern")
    assert "\n" not in str(err.value)


def test_refusals_say_what_is_allowed() -> None:
    with pytest.raises(ConfigError, match=r'consecutive "\*" \(two at character 3\)'):
        EventPattern({"f": [{"wildcard": "abc**"}]})
    with pytest.raises(ConfigError, match="backslash escapes only"):
        EventPattern({"f": [{"wildcard": "a\\b"}]})
    with pytest.raises(ConfigError, match="six decimal places"):
        EventPattern({"f": [{"numeric": ["=", 1.1234567]}]})
    with pytest.raises(ConfigError, match="-5,000,000,000 to 5,000,000,000"):
        EventPattern({"f": [{"numeric": ["<", -5_000_000_001]}]})
    with pytest.raises(ConfigError, match=r"lower bound .* then an upper bound"):
        EventPattern({"f": [{"numeric": ["<", 5, ">", 1]}]})
    with pytest.raises(ConfigError, match='keeps "prefix" for its operators'):
        EventPattern({"$or": [{"prefix": ["x"]}, {"b": ["y"]}]})
    with pytest.raises(ConfigError, match="4,096 characters"):
        EventPattern({"a": ["x" * MAX_EVENT_PATTERN_LENGTH]})
    with pytest.raises(ConfigError) as err:
        EventPattern('{"a": ["' + "x" * 300 + '"')
    assert len(str(err.value)) < 300 and "..." in str(err.value)


def test_the_limits_are_inclusive() -> None:
    assert EventPattern({"f": [{"numeric": [">=", -5e9, "<=", 5_000_000_000]}]}).matches({"f": 0})
    assert EventPattern({"f": [{"numeric": ["=", 0.000001]}]}).matches({"f": 1e-6})
    assert EventPattern({"f": [{"numeric": ["=", 1.5e-3]}]}).matches({"f": 0.0015})
    assert EventPattern({"f": [{"cidr": "10.0.0.0/31"}]}).matches({"f": "10.0.0.1"})
    assert EventPattern({"f": [{"cidr": "::/127"}]}).matches({"f": "::1"})
    text = '{"a":["' + "x" * (MAX_EVENT_PATTERN_LENGTH - 10) + '"]}'
    assert len(text) == MAX_EVENT_PATTERN_LENGTH
    assert EventPattern(text).pattern == text
    with pytest.raises(ConfigError):
        EventPattern(text[:-2] + ' ]}')


def test_exact_numbers_need_no_limits() -> None:
    # An account number is a number beyond the numeric limits: exact match still works.
    pattern = EventPattern({"account": [123456789012]})
    assert pattern.matches({"account": 123456789012})
    assert not pattern.matches({"account": "123456789012"})


# --------------------------------------------------------------------------- the object


def test_patterns_are_kept_as_compact_json_and_compared_by_it() -> None:
    a = EventPattern('{ "source" : [ "aws.ec2" ] }')
    b = EventPattern({"source": ["aws.ec2"]})
    assert a.pattern == str(a) == '{"source":["aws.ec2"]}'
    assert a == b and hash(a) == hash(b)
    assert a != EventPattern({"source": ["aws.s3"]})
    assert "_match" not in repr(a)
    # dotted keys are kept as written, though they compile as nested fields
    assert EventPattern({"detail.state": ["on"]}).pattern == '{"detail.state":["on"]}'


def test_patterns_survive_pickle_and_copy() -> None:
    pattern = EventPattern({"source": [{"wildcard": "aws.*"}], "detail": {"ip": [{"cidr": "10.0.0.0/8"}]}})
    for clone in (pickle.loads(pickle.dumps(pattern)), copy.copy(pattern), copy.deepcopy(pattern)):
        assert clone == pattern
        assert clone.matches({"source": "aws.x", "detail": {"ip": "10.2.3.4"}})
        assert not clone.matches({"source": "aws.x", "detail": {"ip": "11.2.3.4"}})


def test_operator_names() -> None:
    assert set(OPERATORS) < set(EVENT_PATTERN_OPERATORS)
    assert set(EVENT_PATTERN_OPERATORS) - set(OPERATORS) == {"cidr", "wildcard"}


# --------------------------------------------------------------------------- filter criteria


@pytest.mark.parametrize(
    "leaf",
    [
        [{"wildcard": "*.png"}],
        [{"cidr": "10.0.0.0/24"}],
        [{"prefix": {"equals-ignore-case": "x"}}],
        [{"suffix": {"equals-ignore-case": "x"}}],
        [{"anything-but": {"wildcard": "*x"}}],
        [{"anything-but": {"prefix": ["a", "b"]}}],
    ],
)
def test_filter_criteria_keep_lambdas_subset(leaf: Any) -> None:
    assert EventPattern({"f": leaf})
    with pytest.raises(ConfigError) as err:
        FilterCriteria([{"f": leaf}])
    assert err.value.parameter == "filter_criteria[0]"
    with pytest.raises(ConfigError, match=r'"\$or"'):
        FilterCriteria([{"$or": [{"a": ["1"]}, {"b": ["2"]}]}])


def test_filter_criteria_point_at_event_patterns_for_eventbridge_operators() -> None:
    with pytest.raises(ConfigError, match='Lambda filter criteria have no "wildcard"'):
        FilterCriteria([{"f": [{"wildcard": "*"}]}])


def test_where_the_dialects_differ() -> None:
    # numbers: representation (filter criteria) or value (event patterns)
    assert not FilterCriteria([{"f": [300]}]).matches({"f": 300.0})
    assert EventPattern({"f": [300]}).matches({"f": 300.0})
    # numeric ranges: either order (filter criteria), lower bound first (event patterns)
    assert FilterCriteria([{"f": [{"numeric": ["<=", 20, ">", 10]}]}]).matches({"f": 15})
    with pytest.raises(ConfigError):
        EventPattern({"f": [{"numeric": ["<=", 20, ">", 10]}]})
    # anything-but lists: mixed (filter criteria), one type (event patterns)
    assert FilterCriteria([{"f": [{"anything-but": [1, "x"]}]}]).matches({"f": 2})
    with pytest.raises(ConfigError):
        EventPattern({"f": [{"anything-but": [1, "x"]}]})
    # dotted keys: a literal field name (filter criteria), a path (event patterns)
    assert FilterCriteria([{"a.b": ["x"]}]).matches({"a.b": "x"})
    assert not FilterCriteria([{"a.b": ["x"]}]).matches({"a": {"b": "x"}})
    assert EventPattern({"a.b": ["x"]}).matches({"a": {"b": "x"}})


# --------------------------------------------------------------------------- properties

names = st.text(alphabet="abcdef-_", min_size=1, max_size=3)
strings = st.text(alphabet="ab*\\.", max_size=6)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**6), max_value=10**6)
    | st.text(alphabet="abcAB-.", max_size=5)
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(names, children, max_size=3),
    max_leaves=10,
)
events = st.dictionaries(names, json_values, min_size=1, max_size=4)


def reference_wildcard(pattern: str, text: str) -> bool:
    """A plain reading of wildcard matching: the pattern as tokens (a literal character, or
    None for a star), matched by the textbook table of prefixes."""
    tokens: list[str | None] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\":
            tokens.append(pattern[i + 1])
            i += 2
        else:
            tokens.append(None if pattern[i] == "*" else pattern[i])
            i += 1
    # table[i][j]: the first i tokens match the first j characters
    table = [[False] * (len(text) + 1) for _ in range(len(tokens) + 1)]
    table[0][0] = True
    for i, token in enumerate(tokens, start=1):
        for j in range(len(text) + 1):
            if token is None:
                table[i][j] = table[i - 1][j] or (j > 0 and table[i][j - 1])
            else:
                table[i][j] = j > 0 and table[i - 1][j - 1] and text[j - 1] == token
    return table[len(tokens)][len(text)]


def valid_wildcard(pattern: str) -> bool:
    i = 0
    while i < len(pattern):
        if pattern[i] == "*" and i + 1 < len(pattern) and pattern[i + 1] == "*":
            return False
        if pattern[i] == "\\":
            if i + 1 >= len(pattern) or pattern[i + 1] not in "*\\":
                return False
            i += 2
            continue
        i += 1
    return True


@settings(max_examples=400, deadline=None)
@given(strings, st.text(alphabet="ab*\\.", max_size=8))
def test_wildcard_agrees_with_a_reference_reading(pattern: str, text: str) -> None:
    if not valid_wildcard(pattern):
        with pytest.raises(ConfigError):
            EventPattern({"f": [{"wildcard": pattern}]})
        return
    compiled = EventPattern({"f": [{"wildcard": pattern}]})
    assert compiled.matches({"f": text}) is reference_wildcard(pattern, text)
    negated = EventPattern({"f": [{"anything-but": {"wildcard": pattern}}]})
    assert negated.matches({"f": text}) is not reference_wildcard(pattern, text)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=0, max_value=2**32 - 1),
    st.integers(min_value=0, max_value=31),
    st.integers(min_value=0, max_value=2**32 - 1),
)
def test_ipv4_cidr_agrees_with_ipaddress(base: int, bits: int, probe: int) -> None:
    network = ipaddress.IPv4Network((base, bits), strict=False)
    pattern = EventPattern({"ip": [{"cidr": str(network)}]})
    address = ipaddress.IPv4Address(probe)
    assert pattern.matches({"ip": str(address)}) is (address in network)
    assert pattern.matches({"ip": str(network.network_address)})
    assert pattern.matches({"ip": str(network.broadcast_address)})


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=0, max_value=2**128 - 1),
    st.integers(min_value=0, max_value=127),
    st.integers(min_value=0, max_value=2**128 - 1),
)
def test_ipv6_cidr_agrees_with_ipaddress(base: int, bits: int, probe: int) -> None:
    network = ipaddress.IPv6Network((base, bits), strict=False)
    pattern = EventPattern({"ip": [{"cidr": str(network)}]})
    address = ipaddress.IPv6Address(probe)
    assert pattern.matches({"ip": address.exploded}) is (address in network)


def leaves(value: list[Any]) -> list[Any]:
    found: list[Any] = []
    for item in value:
        if isinstance(item, list):
            found.extend(leaves(item))
        elif not isinstance(item, dict):
            found.append(item)
    return found


def own_pattern(event: dict[str, Any]) -> dict[str, Any]:
    """A pattern built from the event's own values: one alternative per field."""
    pattern: dict[str, Any] = {}
    for key, value in event.items():
        if isinstance(value, dict):
            pattern[key] = own_pattern(value) if value else [{"exists": False}]
        elif isinstance(value, list):
            found = leaves(value)
            objects = [v for v in value if isinstance(v, dict) and v]
            if found:
                pattern[key] = [found[-1]]
            elif objects:
                pattern[key] = own_pattern(objects[0])
            else:
                pattern[key] = [{"exists": False}]
        else:
            pattern[key] = [value]
    return pattern


@settings(max_examples=150, deadline=None)
@given(events)
def test_a_pattern_of_an_events_own_values_matches_it(event: dict[str, Any]) -> None:
    own = own_pattern(event)
    assert EventPattern(own).matches(event)
    never = {"zz-not-there": ["x"]}
    assert EventPattern({"$or": [never, own]}).matches(event)
    assert not EventPattern({"$or": [never, {**own, **never}]}).matches(event)


leaf_rules = st.lists(
    st.none()
    | st.booleans()
    | st.text(alphabet="abAB", max_size=3)
    | st.builds(lambda s: {"prefix": s}, st.text(alphabet="abAB", max_size=2))
    | st.builds(lambda s: {"suffix": s}, st.text(alphabet="abAB", max_size=2))
    | st.builds(lambda s: {"equals-ignore-case": s}, st.text(alphabet="abAB", max_size=2))
    | st.builds(lambda b: {"exists": b}, st.booleans())
    | st.builds(lambda s: {"anything-but": s}, st.text(alphabet="abAB", min_size=1, max_size=2)),
    min_size=1,
    max_size=3,
)
string_values = st.none() | st.booleans() | st.text(alphabet="abAB", max_size=3)


@settings(max_examples=300, deadline=None)
@given(leaf_rules, st.lists(string_values, max_size=3) | string_values | st.just(MISSING))
def test_the_dialects_agree_on_their_shared_subset(rules: list[Any], value: Any) -> None:
    """Without numbers, dotted keys or EventBridge-only operators, a filter criteria pattern
    and an event pattern are one language and decide alike."""
    event = {"d": field(value)}
    pattern = {"d": {"f": rules}}
    assert EventPattern(pattern).matches(event) is FilterCriteria([pattern]).matches(event)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=-1000, max_value=1000) | st.floats(-1000, 1000).map(lambda x: round(x, 3)),
    st.integers(min_value=-1000, max_value=1000) | st.floats(-1000, 1000).map(lambda x: round(x, 3)),
)
def test_exact_numbers_and_anything_but_are_complements_by_value(listed: Any, value: Any) -> None:
    assume(not (isinstance(listed, float) and math.isnan(listed)))
    exact = EventPattern({"f": [listed]})
    anything_but = EventPattern({"f": [{"anything-but": listed}]})
    assert exact.matches({"f": value}) is (listed == value)
    assert anything_but.matches({"f": value}) is (listed != value)
    assert EventPattern({"f": [{"numeric": ["=", listed]}]}).matches({"f": value}) is (
        listed == value
    )


def test_matching_never_reparses_the_pattern(monkeypatch: pytest.MonkeyPatch) -> None:
    pattern = EventPattern({"f": [{"wildcard": "a*b"}], "g": [{"cidr": "10.0.0.0/8"}]})

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("compiled at match time")

    monkeypatch.setattr(re, "compile", boom)
    monkeypatch.setattr(json, "loads", boom)
    monkeypatch.setattr(ipaddress, "ip_network", boom)
    assert pattern.matches({"f": "axb", "g": "10.1.1.1"})
    assert not pattern.matches({"f": "axc", "g": "10.1.1.1"})
