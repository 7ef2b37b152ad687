"""FIFO queues in the simulator: groups, concurrency that follows them, the preset."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from pure_python import delegated
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
        load_scenario(text)
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


def test_thousands_of_groups_keep_their_order_under_errors(
    monkeypatch, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """History check on the simulator: per group, messages are deleted (processed) in
    the order they were sent, and no group is ever in two batches in flight at once,
    with 2,000 groups, thrown errors and batch item failures.

    It spies on the memory engine's receives and deletes, so it runs on the pure-Python
    sources (see :func:`pure_python.delegated`)."""
    if delegated(request, tmp_path):
        return
    from sluicegate.store.memory import MemoryQueues

    in_flight: dict[str, set[str]] = {}
    deleted: dict[str, list[int]] = {}
    violations: list[str] = []
    receive_records = MemoryQueues.receive_records
    delete_records = MemoryQueues.delete_records

    def spy_receive(self, queue, max_messages, visibility_timeout, size):  # type: ignore[no-untyped-def]
        records = receive_records(self, queue, max_messages, visibility_timeout, size)
        now = self.clock()
        for group in {r.group_id for r in records}:
            live = {h for h in in_flight.get(group, set()) if h[1] > now}
            if live:
                violations.append(f"group {group} received while in flight")
            in_flight[group] = set()
        for r in records:
            in_flight[r.group_id].add((r.receipt_handle, r.visible_at))
        return records

    def spy_delete(self, queue, records):  # type: ignore[no-untyped-def]
        records = list(records)
        done = delete_records(self, queue, records)
        for r in records:
            deleted.setdefault(r.group_id, []).append(int(r.message_id, 16))
            in_flight.get(r.group_id, set()).discard((r.receipt_handle, r.visible_at))
        return done

    monkeypatch.setattr(MemoryQueues, "receive_records", spy_receive)
    monkeypatch.setattr(MemoryQueues, "delete_records", spy_delete)
    text = BASE.format(groups=2000, scaling="fixed").replace(
        "[mapping]", "[[function.errors]]\nrate = 0.05\nkind = \"raise\"\n"
        "[[function.errors]]\nrate = 0.05\nkind = \"batch_item_failure\"\n[mapping]"
    ).replace("batch_size = 10", "batch_size = 10\nreport_batch_item_failures = true")
    summary = simulate(load_scenario(text)).to_dict()["summary"]
    assert not violations
    assert len(deleted) > 1500
    for group, ids in deleted.items():
        assert ids == sorted(ids), f"group {group} processed out of order"
        assert len(ids) == len(set(ids))
    assert summary["messages_processed"] == sum(len(v) for v in deleted.values())
    assert summary["total_errors"] > 0 and summary["total_partial"] > 0


FILTERED = """
seed = 2
duration = "60s"
[queue]
{fifo}
bodies = ['{{"type": "order"}}', '{{"type": "ping"}}', '{{"type": "ping"}}', 'not json']
[producer]
rate = 100
[function]
duration = "50ms"
[mapping]
batch_size = 1
maximum_concurrency = 10
scaling = "fixed"
filter_criteria = [{{ body = {{ type = ["order"] }} }}]
"""


@pytest.mark.parametrize("fifo", ["", "fifo = true\ngroups = 20"])
def test_filter_criteria_in_the_simulator_delete_what_they_reject(fifo: str) -> None:
    result = simulate(load_scenario(FILTERED.format(fifo=fifo))).to_dict()
    s = result["summary"]
    assert s["messages_sent"] == s["messages_processed"] + s["messages_queued"]
    # every message was filtered or invoked; at most the last invocations' are undeleted
    assert 0 <= s["messages_filtered"] + s["total_invocations"] - s["messages_processed"] <= 10
    # a quarter of the bodies are orders; the rest (pings, a non-JSON body) are filtered
    assert 0.2 < s["total_invocations"] / s["messages_sent"] < 0.3
    assert result["scenario"]["mapping"]["filter_criteria"] == ['{"body":{"type":["order"]}}']


def test_a_pattern_that_cannot_be_parsed_is_a_scenario_error() -> None:
    text = "[mapping]\nfilter_criteria = ['{not json']\n"
    with pytest.raises(ScenarioError, match="filter_criteria"):
        load_scenario(text)
