"""Capacity planning: the keeps-up rule, the default sweep and the recommendation."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from sluicegate.errors import InputError
from sluicegate.sim import ScenarioError, load_scenario
from sluicegate.sim.plan import (
    DEFAULT_FACTORS,
    DEFAULT_VALUES,
    KEEP_UP_MIN_TOLERANCE,
    default_values,
    keeps_up,
    plan,
)
from sluicegate.sim.stream_scenario import load_stream_scenario
from sluicegate.sim.topic_scenario import load_topic_scenario

# 40 msg/s, one per invocation, 200 ms each: the load needs 8 invocations at once.
NEED_8 = """
name = "need8"
duration = "2m"
[producer]
rate = 40
[function]
duration = "200ms"
cold_start = "100ms"
[mapping]
batch_size = 1
"""


def _series(backlogs: list[int], sent: int = 100) -> list[dict[str, Any]]:
    return [{"t": 10.0 * i, "visible": b, "in_flight": 0, "delayed": 0, "sent": sent}
            for i, b in enumerate(backlogs)]


def test_keeps_up_compares_the_last_quarter() -> None:
    ok, start, end = keeps_up(_series([0, 50, 100, 100, 100, 100, 100, 100]))
    assert (ok, start, end) == (True, 100, 100)
    ok, start, end = keeps_up(_series([0, 0, 0, 0, 0, 0, 100, 200]))
    assert not ok and (start, end) == (0, 200)


def test_keeps_up_tolerates_jitter_and_draining() -> None:
    jitter = KEEP_UP_MIN_TOLERANCE
    assert keeps_up(_series([5, 5, 5, 5, 5, 5, 5, 5 + jitter], sent=0))[0]
    assert not keeps_up(_series([5, 5, 5, 5, 5, 5, 5, 6 + jitter], sent=0))[0]
    # 5 % of the 600 messages sent in the last quarter (two buckets): growth of 30.
    assert keeps_up(_series([0] * 6 + [20, 30], sent=300))[0]
    assert not keeps_up(_series([0] * 6 + [20, 31], sent=300))[0]
    # Draining an initial backlog keeps up.
    assert keeps_up(_series([900, 800, 700, 600, 500, 400, 300, 200]), initial_backlog=1000)[0]
    assert keeps_up([], initial_backlog=7) == (True, 7, 7)
    # One bucket: compared with the backlog at t=0.
    assert not keeps_up(_series([500], sent=0), initial_backlog=0)[0]


def test_default_values_are_bounded_and_include_the_scenarios_own() -> None:
    assert default_values(load_scenario(NEED_8)) == list(DEFAULT_VALUES)
    reserved = load_scenario(NEED_8, overrides=["function.reserved_concurrency=60",
                                                "mapping.maximum_concurrency=7"])
    assert default_values(reserved) == [2, 5, 7, 10, 20, 50, 60]
    tiny = load_scenario(NEED_8, overrides=["function.reserved_concurrency=0"])
    assert default_values(tiny) == [2]


def test_plan_recommends_the_smallest_setting_that_keeps_up() -> None:
    result = plan(load_scenario(NEED_8))
    values = [s.value for s in result.settings]
    assert values == list(DEFAULT_VALUES)
    by_value = {s.value: s for s in result.settings}
    assert not by_value[2].keeps_up and not by_value[5].keeps_up
    assert by_value[10].keeps_up and by_value[1000].keeps_up
    assert result.recommendation == 10
    assert "smallest setting tried that keeps up" in result.reason
    assert by_value[5].oldest_age_p99 > 10 * by_value[10].oldest_age_p99
    assert by_value[10].peak_concurrency == 10
    assert by_value[10].throughput == pytest.approx(40, rel=0.05)


def test_plan_with_a_downstream_limit_below_the_need_has_no_recommendation() -> None:
    result = plan(load_scenario(NEED_8), downstream_limit=6, values=[5, 10, 20])
    assert result.recommendation is None
    assert "downstream limit of 6" in result.reason
    assert "maximum_concurrency=10" in result.reason
    assert [s.within_limit for s in result.settings] == [True, False, False]


def test_plan_where_nothing_keeps_up_says_so() -> None:
    result = plan(load_scenario(NEED_8), values=[2, 5])
    assert result.recommendation is None
    assert result.reason.startswith("no setting tried keeps up")


def test_plan_limit_above_the_peak_fits() -> None:
    result = plan(load_scenario(NEED_8), downstream_limit=10, values=[20, 10, 5])
    assert [s.value for s in result.settings] == [5, 10, 20]
    assert result.recommendation == 10


def test_plan_to_dict_is_json_ready_and_deterministic() -> None:
    scenario = load_scenario(NEED_8)
    first = json.dumps(plan(scenario, downstream_limit=9, values=[5, 10]).to_dict())
    second = json.dumps(plan(scenario, downstream_limit=9, values=[5, 10]).to_dict())
    assert first == second
    data = json.loads(first)
    assert set(data) == {"scenario", "parameter", "downstream_limit", "settings",
                         "recommendation", "reason"}
    assert data["scenario"]["name"] == "need8"
    assert data["downstream_limit"] == 9
    assert {"maximum_concurrency", "keeps_up", "oldest_age_p99", "peak_concurrency",
            "throughput"} <= set(data["settings"][0])


def test_plan_rejects_bad_values() -> None:
    scenario = load_scenario(NEED_8)
    with pytest.raises(ScenarioError, match=re.escape("mapping.maximum_concurrency=1 ")):
        plan(scenario, values=[1])
    with pytest.raises(InputError):
        plan(scenario, values=[])
    with pytest.raises(InputError):
        plan(scenario, downstream_limit=0)


# The NEED_8 load published to two queues: "need8" as above, and "steady" (reserved 10)
# which needs 4 at once; a 50-concurrency account.
TOPIC = """
name = "need8-topic"
duration = "2m"
[account]
concurrency_limit = 50
min_unreserved = 20
[topic]
backlog = 100
[producer]
rate = 40
[[subscribers]]
name = "steady"
[subscribers.function]
duration = "100ms"
reserved_concurrency = 10
[subscribers.mapping]
batch_size = 1
[[subscribers]]
name = "need8"
[subscribers.function]
duration = "200ms"
cold_start = "100ms"
reserved_concurrency = 15
[subscribers.mapping]
batch_size = 1
maximum_concurrency = 7
"""


def test_plan_sweeps_one_subscriber_of_a_topic() -> None:
    scenario = load_topic_scenario(TOPIC)
    result = plan(scenario, subscriber="need8", values=[5, 10])
    assert result.subscriber == "need8"
    assert result.to_dict()["subscriber"] == "need8"
    assert result.scenario == scenario.to_dict()
    five, ten = result.settings
    assert (five.keeps_up, ten.keeps_up) == (False, True)
    assert five.peak_concurrency == 5
    assert 8 <= ten.peak_concurrency <= 10
    assert five.backlog_end > five.backlog_start  # its own queue's backlog
    assert result.recommendation == 10
    # the bounds are the subscriber's: its reserved 15 and its own setting of 7
    assert [s.value for s in plan(scenario, subscriber="need8").settings] == [
        2, 5, 7, 10, 15]


def test_plan_of_a_topic_names_a_subscriber() -> None:
    scenario = load_topic_scenario(TOPIC)
    with pytest.raises(InputError, match=r"--subscriber \(one of steady, need8\)"):
        plan(scenario)
    with pytest.raises(InputError, match="no subscriber 'x'"):
        plan(scenario, subscriber="x")
    with pytest.raises(InputError, match="only a topic scenario has subscribers"):
        plan(load_scenario(NEED_8), subscriber="need8")
    with pytest.raises(ScenarioError,
                       match=r"subscribers\[1\]\.mapping\.maximum_concurrency=1 "):
        plan(scenario, subscriber="need8", values=[1])
    # a queue plan's form is unchanged
    assert "subscriber" not in plan(load_scenario(NEED_8), values=[10]).to_dict()


# 2 shards at 50 records/s each, batches of up to 10 taking 0.5 s: a lane does at most
# 20 records/s, so each shard needs 2.5 lanes: parallelization_factor 3.
STREAM = """
name = "need3"
duration = "2m"
[stream]
shard_count = 2
[producer]
rate = 100
partition_keys = 200
[function]
duration = "500ms"
[mapping]
batch_size = 10
"""


def test_plan_of_a_stream_sweeps_the_parallelization_factor() -> None:
    scenario = load_stream_scenario(STREAM)
    result = plan(scenario)
    assert result.parameter == "parallelization_factor"
    assert [s.value for s in result.settings] == list(DEFAULT_FACTORS)
    by_value = {s.value: s for s in result.settings}
    assert [by_value[f].keeps_up for f in (1, 2, 3, 10)] == [False, False, True, True]
    assert result.recommendation == 3
    assert by_value[1].backlog_end > by_value[1].backlog_start  # records behind grow
    assert by_value[2].oldest_age_p99 > 10 * by_value[3].oldest_age_p99  # iterator age
    assert [by_value[f].peak_concurrency for f in (1, 3, 10)] == [2, 6, 20]  # shards x f
    assert by_value[3].throughput == pytest.approx(100, rel=0.05)
    data = result.to_dict()
    assert data["parameter"] == "parallelization_factor"
    assert data["settings"][0]["parallelization_factor"] == 1
    assert "maximum_concurrency" not in data["settings"][0]


def test_plan_of_a_stream_with_a_downstream_limit_and_bad_values() -> None:
    scenario = load_stream_scenario(STREAM)
    result = plan(scenario, downstream_limit=5, values=[2, 3, 4])
    assert result.recommendation is None
    assert "the smallest that keeps up, parallelization_factor=3" in result.reason
    assert "up to parallelization_factor=2" in result.reason
    with pytest.raises(ScenarioError, match=re.escape("mapping.parallelization_factor=11 ")):
        plan(scenario, values=[11])
    with pytest.raises(InputError, match="only a topic scenario has subscribers"):
        plan(scenario, subscriber="x")
