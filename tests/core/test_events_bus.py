"""The EventBridge envelope: PutEvents entries to events, per-entry errors as AWS reports
them, call-level refusals, entry sizes and batching, ARNs, and scheduled events."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest

from sluicegate.core.events_bus import (
    MAX_ENTRIES_PER_CALL,
    MAX_REQUEST_BYTES,
    batches,
    entry_size,
    event_bus_arn,
    iso8601,
    make_event,
    parse_time,
    put_events,
    rule_arn,
    scheduled_event,
    scheduled_event_id,
)
from sluicegate.core.filters import EventPattern
from sluicegate.errors import InputError

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z
ACCOUNT = "123456789012"
REGION = "eu-west-1"


def ids() -> Callable[[], str]:
    counter = iter(range(1, 1000))
    return lambda: f"id-{next(counter)}"


def put(entries: list[Any], **kwargs: Any) -> Any:
    return put_events(entries, now=NOW, account=ACCOUNT, region=REGION, new_id=ids(), **kwargs)


def entry(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"Source": "com.mycompany.myapp", "DetailType": "myDetailType",
                            "Detail": '{ "key1": "value1", "key2": "value2" }'}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def test_an_entry_becomes_an_event_in_eventbridges_shape() -> None:
    result = put([entry(Resources=["resource1", "resource2"], Time="2016-01-14T01:02:03Z")])
    assert result.to_aws() == {"FailedEntryCount": 0, "Entries": [{"EventId": "id-1"}]}
    (accepted,) = result.accepted
    assert accepted.index == 0 and accepted.bus == "default"
    assert accepted.event == {
        "version": "0",
        "id": "id-1",
        "detail-type": "myDetailType",
        "source": "com.mycompany.myapp",
        "account": ACCOUNT,
        "time": "2016-01-14T01:02:03Z",
        "region": REGION,
        "resources": ["resource1", "resource2"],
        "detail": {"key1": "value1", "key2": "value2"},
    }
    assert list(accepted.event) == ["version", "id", "detail-type", "source", "account", "time",
                                    "region", "resources", "detail"]
    assert result.ingestion_time == NOW


def test_defaults_time_now_no_resources() -> None:
    event = put([entry()]).accepted[0].event
    assert event["time"] == "2023-11-14T22:13:20Z"
    assert event["resources"] == []


def test_a_bad_entry_fails_alone_and_answers_keep_their_order() -> None:
    result = put([
        entry(),
        entry(Source=None),
        entry(DetailType=None),
        entry(Detail=None),
        entry(Detail="{not json"),
        entry(Detail="[1, 2]"),
        entry(Source="aws.ec2"),
        entry(DetailType="x" * 129),
        entry(Time="yesterday"),
        entry(Resources="arn:one"),
    ])
    assert result.failed_entry_count == 9
    answers = result.to_aws()["Entries"]
    assert answers[0] == {"EventId": "id-1"}
    assert answers[1] == {"ErrorCode": "InvalidArgument", "ErrorMessage":
                          "Parameter Source is not valid. Reason: Source is a required argument."}
    assert answers[2]["ErrorMessage"] == (
        "Parameter DetailType is not valid. Reason: DetailType is a required argument.")
    assert answers[3]["ErrorMessage"] == (
        "Parameter Detail is not valid. Reason: Detail is a required argument.")
    assert answers[4] == answers[5] == {"ErrorCode": "MalformedDetail",
                                        "ErrorMessage": "Detail is malformed."}
    assert answers[6] == {"ErrorCode": "NotAuthorizedForSourceException",
                          "ErrorMessage": "Not authorized for the source."}
    assert [a["ErrorCode"] for a in answers[7:]] == ["InvalidArgument"] * 3
    assert "DetailType" in answers[7]["ErrorMessage"]
    assert "Time" in answers[8]["ErrorMessage"]
    assert "Resources" in answers[9]["ErrorMessage"]
    assert [a.index for a in result.accepted] == [0]


@pytest.mark.parametrize(
    ("time", "expected"),
    [
        ("2016-01-14T01:02:03Z", "2016-01-14T01:02:03Z"),
        ("2016-01-14T01:02:03.999Z", "2016-01-14T01:02:03Z"),
        ("2016-01-14T03:02:03+02:00", "2016-01-14T01:02:03Z"),
        ("2016-01-14T01:02:03", "2016-01-14T01:02:03Z"),
        (1452733323, "2016-01-14T01:02:03Z"),
        (1452733323.5, "2016-01-14T01:02:03Z"),
        (dt.datetime(2016, 1, 14, 1, 2, 3, tzinfo=dt.UTC), "2016-01-14T01:02:03Z"),
    ],
)
def test_times(time: Any, expected: str) -> None:
    assert put([entry(Time=time)]).accepted[0].event["time"] == expected


@pytest.mark.parametrize("value", [True, "soon", float("nan"), [2016], None])
def test_parse_time_refuses(value: Any) -> None:
    with pytest.raises(ValueError):
        parse_time(value)


def test_event_bus_by_name_or_arn() -> None:
    result = put([entry(EventBusName="orders"),
                  entry(EventBusName="arn:aws:events:eu-west-1:123456789012:event-bus/audit"),
                  entry(EventBusName="")])
    assert [a.bus for a in result.accepted] == ["orders", "audit", "default"]
    assert put([entry(EventBusName=5)]).failed_entry_count == 1


def test_trace_header_is_accepted() -> None:
    assert put([entry(TraceHeader="Root=1-5759e988-bd862e3fe1be46a994272793")]).failed_entry_count == 0


@pytest.mark.parametrize(
    ("entries", "fragment"),
    [
        ([], "at least one entry"),
        ([entry()] * (MAX_ENTRIES_PER_CALL + 1), "at most 10 entries"),
        ("[]", "a list"),
        ({"Source": "x"}, "a list"),
        ([5], "entry 0 is not an object"),
        ([entry(), entry(Extra=1)], "entry 1 has unknown key(s) 'Extra'"),
        ([entry(Detail=json.dumps({"blob": "x" * MAX_REQUEST_BYTES}))], "over the limit"),
    ],
)
def test_call_level_refusals(entries: Any, fragment: str) -> None:
    with pytest.raises(InputError) as err:
        put(entries)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_the_size_limit_is_a_parameter_and_counts_as_aws_does() -> None:
    one = entry(Resources=["é"], Time="2016-01-14T01:02:03Z")
    size = entry_size(one)
    assert size == 14 + len("com.mycompany.myapp") + len("myDetailType") + len(one["Detail"]) + 2
    assert put([one] * 3, max_bytes=3 * size).failed_entry_count == 0
    with pytest.raises(InputError, match="over the limit"):
        put([one] * 3, max_bytes=3 * size - 1)


def test_batches_respect_both_limits() -> None:
    small = [entry(Detail=json.dumps({"n": i})) for i in range(25)]
    assert [len(b) for b in batches(small)] == [10, 10, 5]
    size = entry_size(small[0])
    assert [len(b) for b in batches(small[:7], max_bytes=3 * size)] == [3, 3, 1]
    huge = entry(Detail=json.dumps({"blob": "x" * MAX_REQUEST_BYTES}))
    assert [len(b) for b in batches([small[0], huge, small[1]])] == [1, 1, 1]
    assert list(batches([])) == []


def test_arns() -> None:
    assert event_bus_arn("orders", region=REGION, account=ACCOUNT) == (
        "arn:aws:events:eu-west-1:123456789012:event-bus/orders")
    assert rule_arn("nightly", region=REGION, account=ACCOUNT) == (
        "arn:aws:events:eu-west-1:123456789012:rule/nightly")
    assert rule_arn("nightly", bus="orders", region=REGION, account=ACCOUNT) == (
        "arn:aws:events:eu-west-1:123456789012:rule/orders/nightly")


def test_scheduled_events() -> None:
    arn = rule_arn("nightly", region=REGION, account=ACCOUNT)
    tick = 1_700_006_400.0
    event = scheduled_event(rule=arn, tick=tick, account=ACCOUNT, region=REGION)
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["resources"] == [arn]
    assert event["detail"] == {}
    assert event["time"] == iso8601(tick) == "2023-11-15T00:00:00Z"
    # the same tick gives the same id in every process; another tick or rule another id
    assert event["id"] == scheduled_event_id(arn, tick) == scheduled_event_id(arn, tick + 0.4)
    assert scheduled_event_id(arn, tick + 60) != event["id"]
    assert scheduled_event_id(arn + "x", tick) != event["id"]
    assert scheduled_event(rule=arn, tick=tick, account=ACCOUNT, region=REGION,
                           event_id="mine")["id"] == "mine"
    # a rule's pattern on source and detail-type selects scheduled events
    assert EventPattern({"source": ["aws.events"], "detail-type": ["Scheduled Event"]}).matches(event)


def test_make_event_copies_its_inputs() -> None:
    detail = {"a": 1}
    resources = ["r"]
    event = make_event(source="s", detail_type="t", detail=detail, time=0, event_id="i",
                       account=ACCOUNT, region=REGION, resources=resources)
    event["detail"]["a"] = 2
    event["resources"].append("q")
    assert detail == {"a": 1} and resources == ["r"]
    assert event["time"] == "1970-01-01T00:00:00Z"
