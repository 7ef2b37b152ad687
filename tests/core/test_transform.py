"""A rule target's input: the whole event, Input, InputPath and InputTransformer, with the
user guide's examples (retold), the template kinds, predefined variables, and refusals."""

from __future__ import annotations

import copy
import json
import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sluicegate.core.events_bus import iso8601
from sluicegate.core.transform import (
    MAX_INPUT_PATHS,
    PREDEFINED_VARIABLES,
    InputTransformer,
    JsonPath,
    TargetInput,
)
from sluicegate.errors import ConfigError

EVENT: dict[str, Any] = {
    "version": "0",
    "id": "7bf73129-1428-4cd3-a780-95db273d1602",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "123456789012",
    "time": "2015-11-11T21:29:54Z",
    "region": "us-east-1",
    "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
    "detail": {"instance-id": "i-0123456789", "state": "RUNNING"},
}
PATHS = {"timestamp": "$.time", "instance": "$.detail.instance-id", "state": "$.detail.state"}
RULE = {
    "rule_name": "example",
    "rule_arn": "arn:aws:events:us-east-2:123456789012:rule/example",
    "ingestion_time": 1447277400.0,
}


def render(template: str, paths: dict[str, str] = PATHS, event: dict[str, Any] = EVENT) -> str:
    return InputTransformer(paths, template).render(event, **RULE)


# --------------------------------------------------------------------------- the guide's table

GUIDE_EXAMPLES: list[tuple[str, str, str]] = [
    # (template, its kind, the output)
    ('"instance <instance> is in <state>"', "string", '"instance i-0123456789 is in RUNNING"'),
    ('"instance \\"<instance>\\" is in <state>"', "string",
     '"instance \\"i-0123456789\\" is in RUNNING"'),
    ('{\n  "instance" : <instance>,\n  "state": <state>\n}', "json",
     '{"instance":"i-0123456789","state":"RUNNING"}'),
    ('{"instance" : <instance>, "state": "<state>", '
     '"instanceStatus": "instance \\"<instance>\\" is in <state>"}', "json",
     '{"instance":"i-0123456789","state":"RUNNING",'
     '"instanceStatus":"instance \\"i-0123456789\\" is in RUNNING"}'),
    ('{"instance" : <instance>, "state": [ 9, <state>, true ], "Transformed" : "Yes"}', "json",
     '{"instance":"i-0123456789","state":[9,"RUNNING",true],"Transformed":"Yes"}'),
    ('"<aws.events.rule-name> triggered"', "string", '"example triggered"'),
    ('<instance> is in state <state>', "text", "i-0123456789 is in state RUNNING"),
    ('instance <instance> is in "<state>"', "text", 'instance i-0123456789 is in "RUNNING"'),
]


@pytest.mark.parametrize(("template", "kind", "expected"), GUIDE_EXAMPLES)
def test_the_guides_examples(template: str, kind: str, expected: str) -> None:
    transformer = InputTransformer(PATHS, template)
    assert transformer.kind == kind
    assert transformer.render(EVENT, **RULE) == expected


def test_predefined_variables_in_json() -> None:
    out = json.loads(render(
        '{"ruleArn": <aws.events.rule-arn>, "ruleName": <aws.events.rule-name>, '
        '"at": <aws.events.event.ingestion-time>, "original": <aws.events.event>, '
        '"whole": <aws.events.event.json>}'
    ))
    assert out["ruleArn"] == RULE["rule_arn"]
    assert out["ruleName"] == "example"
    assert out["at"] == iso8601(RULE["ingestion_time"]) == "2015-11-11T21:30:00Z"
    assert out["original"] == {k: v for k, v in EVENT.items() if k != "detail"}
    assert out["whole"] == EVENT


def test_predefined_variables_need_no_map() -> None:
    transformer = InputTransformer(None, '"<aws.events.rule-name> at <aws.events.event.ingestion-time>"')
    assert transformer.render(EVENT, **RULE) == '"example at 2015-11-11T21:30:00Z"'


# --------------------------------------------------------------------------- values by position


@pytest.mark.parametrize(
    ("value", "as_json", "in_string", "in_text"),
    [
        ("RUNNING", '"RUNNING"', "RUNNING", "RUNNING"),
        (5, "5", "5", "5"),
        (2.5, "2.5", "2.5", "2.5"),
        (True, "true", "true", "true"),
        (None, "null", "null", "null"),
        ({"a": "x", "b": [1, "y"]}, '{"a":"x","b":[1,"y"]}', "{a:x,b:[1,y]}", '{"a":"x","b":[1,"y"]}'),
        (["p", "q"], '["p","q"]', "[p,q]", '["p","q"]'),
    ],
)
def test_a_value_is_written_by_where_its_placeholder_stands(
    value: Any, as_json: str, in_string: str, in_text: str
) -> None:
    event = {"detail": {"v": value}}
    paths = {"v": "$.detail.v"}
    assert render('{"v": <v>}', paths, event) == '{"v":' + as_json + "}"
    assert json.loads(render('{"s": "<v>!"}', paths, event)) == {"s": in_string + "!"}
    assert render('"<v>!"', paths, event) == '"' + in_string + '!"'
    assert render("<v>!", paths, event) == in_text + "!"
    assert render("<v>", paths, event) == as_json


def test_missing_paths_are_null_as_json_values_and_empty_in_strings() -> None:
    paths = {"gone": "$.detail.nothing", "state": "$.detail.state"}
    assert render('{"a": <gone>, "b": "x<gone>y", "c": <state>}', paths) == (
        '{"a":null,"b":"xy","c":"RUNNING"}')
    assert render('"[<gone>]"', paths) == '"[]"'
    assert render("[<gone>]", {"gone": "$.nope"}) == "[null]"
    assert render("left <gone> right", paths) == "left  right"
    transformer = InputTransformer(paths, '{"a": <gone>}')
    assert "gone" not in transformer.variables(EVENT, **RULE)


def test_values_are_not_escaped_in_strings() -> None:
    event = {"detail": {"quote": 'say "hi"'}}
    out = render('{"msg": "<quote>"}', {"quote": "$.detail.quote"}, event)
    assert out == '{"msg": "say "hi""}'  # not JSON, as EventBridge sends it
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)
    # as a JSON value the same string is JSON-encoded
    assert json.loads(render('{"msg": <quote>}', {"quote": "$.detail.quote"}, event)) == {
        "msg": 'say "hi"'}


def test_unknown_placeholders_stay_as_written() -> None:
    assert render("<b>bold</b> <state>") == "<b>bold</b> RUNNING"
    assert render('"a <b> c"') == '"a <b> c"'


def test_wildcard_paths_give_lists() -> None:
    event = {"detail": {"items": [{"sku": "a"}, {"sku": "b"}, {"other": 1}]}}
    paths = {"skus": "$.detail.items[*].sku", "all": "$.detail.*", "none": "$.detail.x.*"}
    assert json.loads(render('{"skus": <skus>, "none": <none>}', paths, event)) == {
        "skus": ["a", "b"], "none": []}
    assert json.loads(render('{"all": <all>}', paths, event)) == {"all": [event["detail"]["items"]]}


# --------------------------------------------------------------------------- JSONPath


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$", EVENT),
        ("$.detail", EVENT["detail"]),
        ("$.detail.instance-id", "i-0123456789"),
        ("$.detail-type", "EC2 Instance State-change Notification"),
        ("$.resources[0]", EVENT["resources"][0]),
        ("$.resources[*]", EVENT["resources"]),
        ("$.resources.*", EVENT["resources"]),
        ("$['detail']['state']", "RUNNING"),
        ('$["detail"].state', "RUNNING"),
    ],
)
def test_json_paths(path: str, expected: Any) -> None:
    assert JsonPath(path).find(EVENT) == expected
    assert JsonPath(path).selects(EVENT)


@pytest.mark.parametrize("path", ["$.nope", "$.detail.state.deeper", "$.resources[1]",
                                  "$.detail[0]", "$.resources.first"])
def test_json_paths_that_select_nothing(path: str) -> None:
    assert not JsonPath(path).selects(EVENT)
    assert TargetInput(input_path=path).render(EVENT) == "null"


def test_path_keys_with_slashes_and_odd_names() -> None:
    event = {"detail": {"a/b": 1, "odd key": 2, "it's": 3}}
    assert JsonPath("$.detail.a/b").find(event) == 1
    assert JsonPath("$.detail['odd key']").find(event) == 2
    assert JsonPath("$.detail['it\\'s']").find(event) == 3


@pytest.mark.parametrize(
    "path",
    ["", "detail", "$.", "$..detail", "$.detail[", "$.detail[-1]", "$.detail[a]", "$.a b",
     "$.detail?", "$.a[1:2]", "$['a'", "$" + ".a" * 200],
)
def test_refused_paths(path: str) -> None:
    with pytest.raises(ConfigError) as err:
        JsonPath(path)
    assert err.value.parameter == "InputPath"
    assert "\n" not in str(err.value)


def test_input_paths_map_takes_dot_notation_only() -> None:
    assert JsonPath("$['detail']").find(EVENT) == EVENT["detail"]
    with pytest.raises(ConfigError) as err:
        InputTransformer({"d": "$['detail']"}, "<d>")
    assert err.value.parameter == "InputPathsMap.d"


# --------------------------------------------------------------------------- target input


def test_target_input_kinds() -> None:
    assert json.loads(TargetInput().render(EVENT)) == EVENT
    assert TargetInput(input='{"fixed": true}').render(EVENT) == '{"fixed": true}'
    assert TargetInput(input_path="$.detail").render(EVENT) == (
        '{"instance-id":"i-0123456789","state":"RUNNING"}')
    transformed = TargetInput(input_transformer={"InputPathsMap": PATHS,
                                                 "InputTemplate": '"<state>"'})
    assert transformed.render(EVENT, **RULE) == '"RUNNING"'


def test_target_input_from_and_to_the_api_shape() -> None:
    target = {"Id": "t1", "Arn": "arn:aws:sqs:us-east-1:000000000000:q",
              "InputTransformer": {"InputPathsMap": PATHS, "InputTemplate": "<state>"}}
    made = TargetInput.from_aws(target)
    assert made.to_aws() == {"InputTransformer": {"InputPathsMap": PATHS, "InputTemplate": "<state>"}}
    assert TargetInput.from_aws({"Id": "t"}).to_aws() == {}
    assert TargetInput.from_aws({"Input": "1"}).to_aws() == {"Input": "1"}
    assert TargetInput.from_aws({"InputPath": "$.detail"}).to_aws() == {"InputPath": "$.detail"}
    assert InputTransformer(None, "x").to_aws() == {"InputTemplate": "x"}


def test_transformers_compare_pickle_and_copy() -> None:
    transformer = InputTransformer(PATHS, '{"s": <state>}')
    assert transformer == InputTransformer(dict(PATHS), '{"s": <state>}')
    for clone in (pickle.loads(pickle.dumps(transformer)), copy.deepcopy(transformer)):
        assert clone.render(EVENT, **RULE) == '{"s":"RUNNING"}'
    assert TargetInput(input_path="$.detail") == TargetInput(input_path=JsonPath("$.detail"))


REFUSED: list[tuple[dict[str, Any], str, str]] = [
    # (TargetInput arguments, the parameter named, a fragment of the message)
    ({"input": "1", "input_path": "$"}, "target input", "at most one of"),
    ({"input_path": "$", "input_transformer": {"InputTemplate": "x"}}, "target input",
     "at most one of"),
    ({"input": "{nope"}, "Input", "valid JSON"),
    ({"input": "x" * 8193}, "Input", "8,192 characters"),
    ({"input_path": "detail"}, "InputPath", "JSONPath"),
    ({"input_path": 5}, "InputPath", "JSONPath"),
    ({"input_transformer": {"InputTemplate": ""}}, "InputTemplate", "non-empty"),
    ({"input_transformer": {"InputPathsMap": {}}}, "InputTemplate", "non-empty"),
    ({"input_transformer": {"InputTemplate": "x" * 8193}}, "InputTemplate", "8,192 characters"),
    ({"input_transformer": {"InputTemplate": "x", "Other": 1}}, "InputTransformer",
     "InputPathsMap"),
    ({"input_transformer": {"InputPathsMap": [], "InputTemplate": "x"}}, "InputPathsMap",
     "an object"),
    ({"input_transformer": {"InputPathsMap": {f"v{i}": "$" for i in range(MAX_INPUT_PATHS + 1)},
                            "InputTemplate": "x"}}, "InputPathsMap", "at most 100"),
    ({"input_transformer": {"InputPathsMap": {"a b": "$"}, "InputTemplate": "x"}},
     "InputPathsMap", "letters, digits"),
    ({"input_transformer": {"InputPathsMap": {"AWS.x": "$"}, "InputTemplate": "x"}},
     "InputPathsMap", "letters, digits"),
    ({"input_transformer": {"InputPathsMap": {"x": 5}, "InputTemplate": "x"}},
     "InputPathsMap.x", "JSONPath"),
    ({"input_transformer": {"InputPathsMap": {"x": "$.a..b"}, "InputTemplate": "x"}},
     "InputPathsMap.x", "JSONPath"),
    # JSON templates: placeholders as keys, not JSON once filled, unknown placeholder bare
    ({"input_transformer": {"InputPathsMap": {"k": "$.id"}, "InputTemplate": '{<k>: 1}'}},
     "InputTemplate", "not object keys"),
    ({"input_transformer": {"InputPathsMap": {"k": "$.id"}, "InputTemplate": '{"a": <k>'}},
     "InputTemplate", "is JSON once its placeholders are filled"),
    ({"input_transformer": {"InputPathsMap": {"k": "$.id"}, "InputTemplate": '{"a": <nope>}'}},
     "InputTemplate", "is JSON once its placeholders are filled"),
    ({"input_transformer": {"InputPathsMap": {"k": "$.id"}, "InputTemplate": '"a" <k>'}},
     "InputTemplate", "one JSON string"),
    # the whole event cannot stand in a string
    ({"input_transformer": {"InputTemplate": '{"e": "<aws.events.event>"}'}}, "InputTemplate",
     "only as a JSON value"),
    ({"input_transformer": {"InputTemplate": '"<aws.events.event.json>"'}}, "InputTemplate",
     "only as a JSON value"),
    ({"input_transformer": {"InputTemplate": "text <aws.events.event>"}}, "InputTemplate",
     "only as a JSON value"),
]


@pytest.mark.parametrize(("kwargs", "parameter", "fragment"), REFUSED)
def test_refused(kwargs: dict[str, Any], parameter: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        TargetInput(**kwargs, context="rule r1 target t1")
    message = str(err.value)
    assert err.value.parameter == parameter
    assert fragment in message, message
    assert message.startswith("rule r1 target t1: ")
    assert "\n" not in message


def test_predefined_names_are_reserved() -> None:
    for name in PREDEFINED_VARIABLES:
        with pytest.raises(ConfigError):
            InputTransformer({name: "$.id"}, "x")


# --------------------------------------------------------------------------- properties

keys = st.text(alphabet="abcdefgh-_", min_size=1, max_size=5)
leaves = st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(
    alphabet=st.characters(blacklist_characters='"\\', blacklist_categories=("Cs",)), max_size=8)
documents = st.recursive(
    leaves, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=10)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(keys, documents, min_size=1, max_size=5))
def test_a_json_template_of_bare_placeholders_rebuilds_the_selected_values(
    detail: dict[str, Any],
) -> None:
    names = {f"v{i}": key for i, key in enumerate(detail)}
    paths = {name: f"$.detail.{key}" for name, key in names.items()}
    template = "{" + ", ".join(f'"{key}": <{name}>' for name, key in names.items()) + "}"
    out = InputTransformer(paths, template).render({"detail": detail}, **RULE)
    assert json.loads(out) == detail
    assert TargetInput(input_path="$.detail").render({"detail": detail}) == json.dumps(
        detail, separators=(",", ":"), ensure_ascii=False)


def test_target_inputs_pickle() -> None:
    for target in (TargetInput(input_path="$.resources[*]"),
                   TargetInput(input_transformer=InputTransformer(PATHS, "<state>")),
                   TargetInput(input="[1]"), TargetInput()):
        clone = pickle.loads(pickle.dumps(target))
        assert clone == target
        assert clone.render(EVENT, **RULE) == target.render(EVENT, **RULE)
