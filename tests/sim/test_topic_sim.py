"""Topics in the simulator: a publish fans out to several queues, each read by its own
mapping and function, all in one account's concurrency pool; the scenario format, the
output, the accounting and the topic-fanout preset."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest

from pure_python import delegated
from sluicegate.sim import (
    SERIES_KEYS,
    SUMMARY_KEYS,
    Scenario,
    ScenarioError,
    SimResult,
    load_any_scenario,
    load_scenario,
    simulate,
    simulate_any,
)
from sluicegate.sim.driver import ACCOUNT_SERIES_KEYS, ACCOUNT_SUMMARY_KEYS
from sluicegate.sim.presets import (
    TOPIC_ACCOUNT,
    TOPIC_GROUPS,
    TOPIC_RESERVED,
    run_preset,
)
from sluicegate.sim.topic_scenario import TopicScenario, load_topic_scenario

SMALL = """
seed = 2
duration = "1m"
[account]
concurrency_limit = 60
min_unreserved = 20
[topic]
name = "events"
backlog = 200
[producer]
rate = 100
[[subscribers]]
name = "fast"
[subscribers.function]
duration = "50ms"
reserved_concurrency = 10
[subscribers.mapping]
batch_size = 1
[[subscribers]]
name = "slow"
[subscribers.function]
duration = "1s"
[subscribers.mapping]
batch_size = 1
[[subscribers]]
name = "flaky"
[subscribers.queue]
visibility_timeout = 5
max_receive_count = 2
[subscribers.function]
duration = "50ms"
[[subscribers.function.errors]]
rate = 0.2
[subscribers.mapping]
batch_size = 1
"""
"""100 publishes/s to three queues on a 60-concurrency account: ``fast`` has 10 reserved
(it needs 5), ``slow`` would need 100 of the 50 left, ``flaky`` fails a fifth of its
invocations and dead-letters after two receives."""


def run(*overrides: str, text: str = SMALL) -> dict[str, Any]:
    return simulate(load_topic_scenario(text, overrides=list(overrides))).to_dict()


def mapping(result: dict[str, Any], name: str) -> dict[str, Any]:
    return next(m for m in result["mappings"] if m["name"] == name)


def assert_conserved(summary: dict[str, Any]) -> None:
    assert summary["messages_sent"] == (
        summary["messages_processed"] + summary["messages_queued"]
        + summary["messages_dead_lettered"])


def assert_every_subscriber_conserved(result: dict[str, Any], direct: int = 0) -> None:
    """Every message published reached every subscriber, and in every queue each one is
    processed, still queued or dead-lettered."""
    published = result["summary"]["messages_published"]
    assert published > 0
    for m in result["mappings"]:
        assert_conserved(m["summary"])
    assert_conserved(result["summary"])
    assert result["summary"]["messages_sent"] == (
        published * len(result["mappings"]) + direct)


# ---------------------------------------------------------------------- the format


def test_subscribers_name_their_queue_and_function_and_the_form_loads_back() -> None:
    scenario = load_topic_scenario(SMALL)
    assert [s.name for s in scenario.subscribers] == ["fast", "slow", "flaky"]
    assert [s.queue.queue_name for s in scenario.subscribers] == ["fast", "slow", "flaky"]
    assert [s.function.name for s in scenario.subscribers] == ["fast", "slow", "flaky"]
    assert scenario.topic_config().subscribers == ("fast", "slow", "flaky")
    plain = scenario.to_dict()
    assert set(plain) == {"name", "description", "seed", "duration", "bucket", "topic",
                          "producers", "subscribers", "account"}
    assert set(plain["subscribers"][0]) == {"name", "queue", "function", "mapping",
                                            "producers", "downstream"}
    assert "groups" not in plain["topic"]  # FIFO keys only for a FIFO topic
    assert load_topic_scenario(plain) == scenario
    assert load_any_scenario(json.loads(json.dumps(plain))) == scenario
    # a subscriber as a queue scenario: what its lane is built from
    view = scenario.subscriber_scenario(2)
    assert isinstance(view, Scenario)
    assert (view.queue.max_receive_count, view.function.errors[0].rate) == (2, 0.2)


def test_a_fifo_topic_has_fifo_queues_and_its_groups() -> None:
    scenario = load_topic_scenario(SMALL, overrides=[
        'topic.name="events.fifo"', "topic.groups=40", "topic.hot_group_share=0.25"])
    assert scenario.topic.fifo
    assert [s.queue.queue_name for s in scenario.subscribers] == [
        "fast.fifo", "slow.fifo", "flaky.fifo"]
    assert [s.queue.groups for s in scenario.subscribers] == [40, 40, 40]
    assert scenario.to_dict()["topic"] == {
        "name": "events.fifo", "backlog": 200, "message_size": 1024, "groups": 40,
        "hot_group_share": 0.25}


def test_each_loader_reads_its_kind() -> None:
    assert isinstance(load_any_scenario(SMALL), TopicScenario)
    with pytest.raises(ScenarioError, match=r"a topic scenario \(\[topic\]\), not a queue"):
        load_scenario(SMALL)
    with pytest.raises(ScenarioError, match="not a topic scenario"):
        load_topic_scenario("[queue]\nbacklog = 1\n")
    # a dict with a topic runs as a topic scenario
    assert "mappings" in simulate(load_topic_scenario(SMALL).to_dict()).to_dict()


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["queue.backlog=1"],
         "a topic scenario has no [queue]: each of its [[subscribers]] has its own "
         "[subscribers.queue]"),
        (["stream.shard_count=1"], "a topic scenario has no [stream]"),
        (["subscribers=[]"], "subscribers=[] is invalid: allowed one or more [[subscribers]]"),
        (['subscribers.1.name="fast"'],
         "subscribers[1].name='fast' is invalid: allowed a name no other subscriber has "
         "(subscribers[0] has it)"),
        (['subscribers.1.name="12"'], "subscribers[1].name='12' is invalid"),
        (['subscribers.slow.function.name="fast"'],
         "subscribers[1].function.name='fast' is invalid: allowed a function no other "
         "subscriber has"),
        (['subscribers.slow.queue.name="fast"'],
         "subscribers[1].queue.name='fast' is invalid: allowed a queue no other subscriber "
         "uses"),
        (['subscribers.slow.queue.name="flaky-dlq"'],
         "subscribers[2].queue.name='flaky' is invalid: allowed a queue no other subscriber "
         "uses ('flaky-dlq' is subscribers[1]'s)"),
        (['subscribers.0.queue.bodies=["x"]'],
         "subscribers[0].queue.bodies: a topic's subscribers receive its messages; set "
         "bodies in [topic]"),
        (["topic.groups=4"],
         "topic.groups=4 is invalid: allowed only for a FIFO topic (a name ending in '.fifo')"),
        (['topic.name="events.fifo"', "subscribers.flaky.queue.fifo=false"],
         "subscribers[2].queue='flaky' is invalid: allowed FIFO queues only (a FIFO topic)"),
        (["subscribers.slow.queue.fifo=true"],
         "subscribers[1].queue='slow.fifo' is invalid: allowed standard queues only"),
        (['topic.name="bad name"'], "topic.name='bad name' is invalid"),
        (["subscribers.slow.function.reserved_concurrency=35"],
         "subscribers[1].function.reserved_concurrency=35 is invalid: allowed at most 30: "
         "more would decrease the account's unreserved concurrency"),
        (["subscribers.flaky.mapping.maximum_concurrency=5000"],
         "subscribers[2].mapping.maximum_concurrency=5000 is invalid: allowed an integer "
         "2-1,000"),
        (["subscribers.flaky.mapping.maximum_concurency=5"],
         "unknown key subscribers[2].mapping.maximum_concurency (did you mean "
         "maximum_concurrency?)"),
        (["subscribers.flaky.function.timeout=60"],
         "subscribers[2].queue.visibility_timeout=5 is invalid: allowed >= the function "
         "timeout"),
        (["subscribers.nobody.mapping.batch_size=2"],
         "no subscribers.nobody (known: fast, slow, flaky)"),
        (["subscribers.7.mapping.batch_size=2"], "no subscribers.7"),
    ],
)
def test_bad_topic_scenarios_are_one_line_errors(overrides: list[str], expected: str) -> None:
    with pytest.raises(ScenarioError) as info:
        load_topic_scenario(SMALL, overrides=overrides)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_a_subscriber_needs_a_name() -> None:
    text = "[topic]\n[[subscribers]]\n[subscribers.mapping]\nbatch_size = 1\n"
    with pytest.raises(ScenarioError, match=r"subscribers\[0\]\.name=None is invalid"):
        load_topic_scenario(text)


def test_overrides_reach_a_subscriber_by_index_or_by_name() -> None:
    by_index = load_topic_scenario(SMALL, overrides=["subscribers.1.mapping.maximum_concurrency=7"])
    by_name = load_topic_scenario(SMALL, overrides=[
        "subscribers.slow.mapping.maximum_concurrency=7"])
    assert by_index == by_name
    assert by_name.subscribers[1].mapping.maximum_concurrency == 7
    assert by_name.subscribers[0] == load_topic_scenario(SMALL).subscribers[0]
    # [producer] of a subscriber, created by an override, is its producers[0]
    own = load_topic_scenario(SMALL, overrides=["subscribers.flaky.producer.rate=5"])
    assert own.subscribers[2].producers[0].rate == 5.0
    assert own.producers == load_topic_scenario(SMALL).producers
    # a subscriber may be named "producer": in the list it is its name, not a table
    named = load_topic_scenario(SMALL.replace('name = "slow"', 'name = "producer"'), overrides=[
        "subscribers.producer.mapping.maximum_concurrency=7",
        "subscribers.producer.producer.rate=3", "producer.rate=4"])
    assert named.subscribers[1].name == "producer"
    assert named.subscribers[1].mapping.maximum_concurrency == 7
    assert named.subscribers[1].producers[0].rate == 3.0
    assert named.producers[0].rate == 4.0


# ---------------------------------------------------------------------- the run


def test_the_output_has_the_account_and_each_mapping() -> None:
    result = simulate(load_topic_scenario(SMALL))
    assert isinstance(result, SimResult)
    out = result.to_dict()
    assert list(out) == ["scenario", "summary", "series", "mappings"]
    assert list(out["summary"]) == list(ACCOUNT_SUMMARY_KEYS)
    assert [list(e) for e in out["series"]] == [list(ACCOUNT_SERIES_KEYS)] * 6
    assert [(m["name"], m["queue"], m["function"]) for m in out["mappings"]] == [
        ("fast", "fast", "fast"), ("slow", "slow", "slow"), ("flaky", "flaky", "flaky")]
    for m in out["mappings"]:
        assert list(m["summary"]) == list(SUMMARY_KEYS)
        assert [list(e) for e in m["series"]] == [list(SERIES_KEYS)] * 6
    # account totals add the mappings' up
    s = out["summary"]
    for key in ("total_invocations", "total_errors", "total_throttles", "messages_sent",
                "messages_processed", "messages_dead_lettered", "messages_queued"):
        assert s[key] == sum(m["summary"][key] for m in out["mappings"]), key
    for i, bucket in enumerate(out["series"]):
        for key in ("invocations", "throttles", "sent", "processed", "visible"):
            assert bucket[key] == sum(m["series"][i][key] for m in out["mappings"]), key
    assert simulate_any(load_any_scenario(SMALL)).to_dict() == out


def test_every_message_published_reaches_every_subscriber() -> None:
    result = run()
    assert result["summary"]["messages_published"] == 200 + 6000  # backlog + 100/s
    assert [m["summary"]["messages_sent"] for m in result["mappings"]] == [6200] * 3
    assert_every_subscriber_conserved(result)
    # the fast one drains it all; the slow one falls behind; the flaky one dead-letters
    assert mapping(result, "fast")["summary"]["messages_queued"] <= 10
    assert mapping(result, "slow")["summary"]["messages_queued"] > 2000
    assert mapping(result, "flaky")["summary"]["messages_dead_lettered"] > 0


@pytest.mark.parametrize("overrides", [
    [],
    ['topic.name="events.fifo"', "topic.groups=25"],
    ['topic.bodies=["a", "b", "c"]', "subscribers.slow.queue.delay_seconds=3",
     "subscribers.fast.producer.rate=20", "subscribers.flaky.queue.backlog=50"],
    ["subscribers.fast.mapping.pauses=[{ at = \"10s\", until = \"30s\" }]",
     "subscribers.flaky.mapping.batch_size=5",
     "subscribers.flaky.mapping.maximum_batching_window=1",
     "subscribers.flaky.mapping.report_batch_item_failures=true",
     'subscribers.flaky.function.errors=[{ rate = 0.2, kind = "batch_item_failure" }]',
     "subscribers.slow.downstream.concurrency=5"],
])
def test_messages_are_accounted_for_in_every_queue(overrides: list[str]) -> None:
    result = run(*overrides)
    direct = sum(m["summary"]["messages_sent"] for m in result["mappings"]) - (
        result["summary"]["messages_published"] * 3)
    assert_every_subscriber_conserved(result, direct)
    if "subscribers.fast.producer.rate=20" in overrides:
        # its own producer and backlog reach its queue alone
        assert direct == 20 * 60 + 50
        assert mapping(result, "fast")["summary"]["messages_sent"] == 6200 + 1200
        assert mapping(result, "flaky")["summary"]["messages_sent"] == 6200 + 50


def test_a_publish_reaches_every_queue_at_its_instant() -> None:
    text = """
duration = "20s"
bucket = "1s"
[topic]
[[producers]]
kind = "burst"
size = 300
start = "5s"
stop = "5s"
[[subscribers]]
name = "a"
[[subscribers]]
name = "b"
[subscribers.queue]
delay_seconds = 2
"""
    result = simulate(load_topic_scenario(text)).to_dict()
    assert [b["published"] for b in result["series"]][4:7] == [0, 300, 0]
    assert [b["sent"] for b in result["series"]][4:7] == [0, 600, 0]
    a, b = mapping(result, "a"), mapping(result, "b")
    assert [e["sent"] for e in a["series"]][4:7] == [0, 300, 0]
    assert [e["sent"] for e in b["series"]][4:7] == [0, 300, 0]
    assert a["series"][5]["received"] == 300  # at once: a has no delivery delay
    assert b["series"][5]["delayed"] == 300 and b["series"][5]["received"] == 0
    assert b["series"][7]["received"] == 300  # its own delay: 2 s


def test_functions_contend_for_the_account_pool() -> None:
    result = run()
    account = result["summary"]
    fast, slow, flaky = (mapping(result, n)["summary"] for n in ("fast", "slow", "flaky"))
    # the reserved function is capped by its reservation and never waits for the others:
    # its only throttles are its own cap, in the first seconds, as the aws policy's
    # start overshoots it
    assert fast["peak_concurrency"] == 10
    fast_series = mapping(result, "fast")["series"]
    assert 0 < fast_series[0]["throttles"] == fast["total_throttles"] <= 5
    assert fast["messages_processed"] >= fast["messages_sent"] - 10
    assert fast["max_oldest_age"] < 1
    # the unreserved ones share the 50 left and are throttled
    assert slow["total_throttles"] > 0 and flaky["total_throttles"] > 0
    assert account["peak_unreserved_concurrency"] == 50
    assert max(b["unreserved_concurrency"] for b in result["series"]) == 50
    assert account["peak_concurrency"] <= 60
    assert account["total_throttles"] == (
        fast["total_throttles"] + slow["total_throttles"] + flaky["total_throttles"])
    # account concurrency is the most running at once, not the sum of each one's peak
    for i, bucket in enumerate(result["series"]):
        peaks = [m["series"][i]["concurrency"] for m in result["mappings"]]
        assert max(peaks) <= bucket["concurrency"] <= sum(peaks)


def test_without_the_reservation_the_fast_one_contends_too() -> None:
    result = run("subscribers.fast.function.reserved_concurrency=0")
    # reserved 0: every invocation of fast is throttled (AWS: a function turned off)
    fast = mapping(result, "fast")["summary"]
    assert fast["total_invocations"] == 0 and fast["total_throttles"] > 0
    assert result["summary"]["peak_unreserved_concurrency"] == 60


def test_same_seed_same_bytes() -> None:
    overrides = ['topic.name="events.fifo"', "topic.groups=25",
                 'topic.bodies=["a", "b"]', "subscribers.fast.producer.rate=10"]
    first = json.dumps(run(*overrides))
    assert json.dumps(run(*overrides)) == first
    assert json.dumps(run(*overrides, "seed=3")) != first


def test_a_subscriber_draws_from_streams_of_its_own() -> None:
    """A subscriber's random draws are named after it: another subscriber, added or
    removed, changes nothing for it while the pool does not bind (a large account)."""
    big = ["account.concurrency_limit=1000", "account.min_unreserved=100"]
    three = run(*big)
    two = simulate(load_topic_scenario(
        {**load_topic_scenario(SMALL, overrides=big).to_dict(),
         "subscribers": load_topic_scenario(SMALL).to_dict()["subscribers"][1:]})).to_dict()
    assert mapping(three, "flaky") == mapping(two, "flaky")
    assert mapping(three, "slow") == mapping(two, "slow")


# ---------------------------------------------------------------------- FIFO order


FIFO_ORDER = """
seed = 5
duration = "40s"
[account]
concurrency_limit = 50
min_unreserved = 20
[topic]
name = "orders.fifo"
groups = 300
hot_group_share = 0.1
[producer]
rate = 80
[[subscribers]]
name = "a"
[subscribers.function]
duration = "50ms"
reserved_concurrency = 10
[subscribers.mapping]
batch_size = 10
[[subscribers]]
name = "b"
[subscribers.queue]
visibility_timeout = 5
[subscribers.function]
duration = "80ms"
[[subscribers.function.errors]]
rate = 0.1
[[subscribers.function.errors]]
rate = 0.1
kind = "batch_item_failure"
[subscribers.mapping]
batch_size = 10
report_batch_item_failures = true
scaling = "fixed"
maximum_concurrency = 20
[[subscribers]]
name = "c"
[subscribers.function]
duration = "1s"
[subscribers.mapping]
batch_size = 1
"""


def test_a_fifo_topic_keeps_each_groups_order_in_every_queue(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """History check: in every subscribed queue, the messages of a group are processed
    in the order they were published (the topic's deduplication id counts publishes),
    no group has two batches in flight at once, and a publish carries one group into
    every queue; with thrown errors and batch item failures in one queue and the pool
    contended.

    It spies on the memory engine, so it runs on the pure-Python sources (see
    :func:`pure_python.delegated`)."""
    if delegated(request, tmp_path):
        return
    from sluicegate.store.memory import MemoryQueues

    in_flight: dict[tuple[str, str], set[tuple[str, float]]] = {}
    deleted: dict[tuple[str, str], list[int]] = {}
    group_of: dict[str, str] = {}
    violations: list[str] = []
    receive_records = MemoryQueues.receive_records
    delete_records = MemoryQueues.delete_records

    def spy_receive(self, queue, max_messages, visibility_timeout, size):  # type: ignore[no-untyped-def]
        records = receive_records(self, queue, max_messages, visibility_timeout, size)
        now = self.clock()
        for group in {r.group_id for r in records}:
            live = {h for h in in_flight.get((queue, group), set()) if h[1] > now}
            if live:
                violations.append(f"{queue}: group {group} received while in flight")
            in_flight[(queue, group)] = set()
        for r in records:
            in_flight[(queue, r.group_id)].add((r.receipt_handle, r.visible_at))
            publish = r.payload.deduplication_id
            if group_of.setdefault(publish, r.group_id) != r.group_id:
                violations.append(f"publish {publish} in two groups")
        return records

    def spy_delete(self, queue, records):  # type: ignore[no-untyped-def]
        records = list(records)
        done = delete_records(self, queue, records)
        for r in records:
            deleted.setdefault((queue, r.group_id), []).append(
                int(r.payload.deduplication_id, 16))
            in_flight.get((queue, r.group_id), set()).discard(
                (r.receipt_handle, r.visible_at))
        return done

    monkeypatch.setattr(MemoryQueues, "receive_records", spy_receive)
    monkeypatch.setattr(MemoryQueues, "delete_records", spy_delete)
    result = simulate(load_topic_scenario(FIFO_ORDER)).to_dict()
    assert not violations, violations[:5]
    queues = {queue for queue, _ in deleted}
    assert queues == {"a.fifo", "b.fifo", "c.fifo"}
    for (queue, group), publishes in deleted.items():
        assert publishes == sorted(publishes), f"{queue}: group {group} out of order"
        assert len(publishes) == len(set(publishes))
    for m in result["mappings"]:
        processed = sum(len(v) for (q, _), v in deleted.items() if q == f"{m['name']}.fifo")
        assert m["summary"]["messages_processed"] == processed
    b = mapping(result, "b")["summary"]
    assert b["total_errors"] > 0 and b["total_partial"] > 0
    assert result["summary"]["total_throttles"] > 0
    assert_every_subscriber_conserved(result)


# ---------------------------------------------------------------------- the preset


@functools.cache
def _preset() -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in run_preset("topic-fanout")["variants"]}


def _parts(variant: str) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in _preset()[variant]["mappings"]}


def test_preset_every_message_published_reaches_every_subscriber() -> None:
    for variant in ("reserved", "unreserved", "fifo"):
        result = _preset()[variant]
        assert result["summary"]["messages_published"] == 300 * 120
        assert_every_subscriber_conserved(result)


def test_preset_the_slow_subscribers_backlog_grows_in_its_own_queue_only() -> None:
    parts = _parts("reserved")
    publishing = [i for i, b in enumerate(parts["analytics"]["series"]) if b["t"] < 120]
    visible = {name: [m["series"][i]["visible"] for i in publishing]
               for name, m in parts.items()}
    assert visible["analytics"] == sorted(visible["analytics"])  # grows all along
    assert visible["analytics"][-1] > 20_000
    assert max(visible["billing"]) == 0
    assert max(visible["audit"]) < 300  # its failed messages, back after 10 s
    assert parts["billing"]["summary"]["max_oldest_age"] < 1
    assert parts["analytics"]["summary"]["max_oldest_age"] > 60


def test_preset_the_reservation_keeps_its_throughput_and_caps_its_function() -> None:
    reserved, unreserved = _parts("reserved"), _parts("unreserved")
    billing = reserved["billing"]
    # all it is sent, 3,000 per 10 s while publishing, processed at once
    assert billing["summary"]["messages_processed"] == billing["summary"]["messages_sent"]
    assert {b["processed"] for b in billing["series"][1:12]} == {3000}
    # capped by its reservation; its one throttle is its own cap, as the aws policy's
    # first second overshoots it (no slot of the unreserved pool is involved)
    assert billing["summary"]["peak_concurrency"] == TOPIC_RESERVED
    assert billing["summary"]["total_throttles"] <= 1
    # the unreserved ones contend for the rest and are throttled
    for name in ("analytics", "audit"):
        assert reserved[name]["summary"]["total_throttles"] > 20
    assert _preset()["reserved"]["summary"]["peak_unreserved_concurrency"] == (
        TOPIC_ACCOUNT - TOPIC_RESERVED)
    assert reserved["analytics"]["summary"]["peak_concurrency"] == (
        TOPIC_ACCOUNT - TOPIC_RESERVED)
    # without the reservation, billing contends too: throttled, its messages wait
    assert unreserved["billing"]["summary"]["total_throttles"] > 100
    assert unreserved["billing"]["summary"]["max_oldest_age"] > 2
    assert unreserved["billing"]["summary"]["peak_concurrency"] > TOPIC_RESERVED
    assert _preset()["unreserved"]["summary"]["peak_unreserved_concurrency"] == TOPIC_ACCOUNT


def test_preset_the_erroring_subscriber_retries_and_dead_letters() -> None:
    audit = _parts("reserved")["audit"]["summary"]
    assert audit["total_errors"] > 1000
    assert audit["messages_received"] > audit["messages_sent"]  # redeliveries
    assert audit["messages_dead_lettered"] >= 1
    assert audit["messages_queued"] == 0


def test_preset_fifo_topic_concurrency_follows_its_groups() -> None:
    parts = _parts("fifo")
    assert [m["queue"] for m in parts.values()] == ["billing.fifo", "analytics.fifo",
                                                    "audit.fifo"]
    assert parts["analytics"]["summary"]["peak_concurrency"] == TOPIC_GROUPS
    assert parts["billing"]["summary"]["messages_queued"] == 0
