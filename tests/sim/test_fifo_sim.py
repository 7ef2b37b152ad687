"""FIFO queues in the simulator: groups, concurrency that follows them, the preset."""

from __future__ import annotations

import functools
import json

import pytest

from sluicegate.sim import ScenarioError, load_scenario, simulate
from sluicegate.sim.presets import FIFO_GROUPS, FIFO_MAX_CONCURRENCY, run_preset

BASE = """
seed = 3
duration = "90s"
[queue]
fifo = true
groups = {groups}
[producer]
rate = 300
stop = "60s"
[function]
duration = "100ms"
[mapping]
batch_size = 10
maximum_concurrency = 50
scaling = "{scaling}"
"""


def _sim(groups: int, scaling: str = "fixed") -> dict:
    return simulate(load_scenario(BASE.format(groups=groups, scaling=scaling))).to_dict()


@pytest.mark.parametrize("groups", [1, 5, 30, 200])
def test_concurrency_follows_active_groups_up_to_the_maximum(groups: int) -> None:
    result = _sim(groups)
    summary = result["summary"]
    assert summary["peak_concurrency"] <= min(groups, 50)
    if groups <= 30:
        # one batch per group at a time: never more invocations in flight than groups
        assert summary["peak_concurrency"] == groups
    sent = summary["messages_sent"]
    assert sent == summary["messages_processed"] + summary["messages_queued"]


def test_one_group_is_served_one_batch_at_a_time() -> None:
    summary = _sim(1)["summary"]
    # 10 messages per 100 ms batch, one batch at a time: at most 100 msg/s of 300 offered
    assert summary["messages_processed"] <= 100 * 90 + 10
    assert summary["messages_queued"] > 0


def test_aws_scaling_on_a_fifo_queue_keeps_the_group_bound() -> None:
    summary = _sim(5, "aws")["summary"]
    assert summary["peak_concurrency"] <= 5
    assert summary["messages_queued"] == 0


def test_determinism_and_the_scenario_keys() -> None:
    first = json.dumps(_sim(30), sort_keys=True)
    assert first == json.dumps(_sim(30), sort_keys=True)
    queue = json.loads(first)["scenario"]["queue"]
    assert (queue["fifo"], queue["groups"], queue["hot_group_share"]) == (True, 30, 0.0)
    standard = simulate(load_scenario("duration = '10s'\n")).to_dict()["scenario"]["queue"]
    assert "fifo" not in standard


@pytest.mark.parametrize(
    "text, match",
    [
        ("[queue]\ngroups = 3\n", "queue.groups=3 is invalid: allowed only with fifo = true"),
        ("[queue]\nfifo = true\ngroups = 0\n", "queue.groups=0"),
        ("[queue]\nfifo = true\nhot_group_share = 2\n", "queue.hot_group_share=2"),
        ("[queue]\nfifo = true\n[mapping]\nbatch_size = 20\nmaximum_batching_window = 1\n",
         "batch_size=20 is invalid: allowed 1-10 for a FIFO queue"),
    ],
)
def test_bad_fifo_scenarios_are_one_line_errors(text: str, match: str) -> None:
    with pytest.raises(ScenarioError, match=match) as info:
        load_scenario(text).mapping_config()
    assert "\n" not in str(info.value)


@functools.cache
def _preset() -> dict:
    return {v["name"]: v for v in run_preset("fifo-groups")["variants"]}


def test_preset_concurrency_follows_groups_and_a_hot_group_holds_back_throughput() -> None:
    runs = _preset()
    peaks = [runs[f"groups-{g}"]["summary"]["peak_concurrency"] for g in FIFO_GROUPS]
    assert peaks == [min(g, FIFO_MAX_CONCURRENCY) for g in FIFO_GROUPS]
    one = runs["groups-1"]["summary"]
    assert one["messages_queued"] > one["messages_processed"]  # one group cannot keep up
    for g in FIFO_GROUPS[1:]:
        assert runs[f"groups-{g}"]["summary"]["messages_queued"] == 0
    hot = runs["groups-200-hot-50%"]["summary"]
    assert hot["messages_queued"] > 0  # the hot group is served one batch at a time
    assert hot["peak_concurrency"] <= FIFO_MAX_CONCURRENCY
