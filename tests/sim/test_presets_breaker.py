"""breaker-outage: a 60 s downstream outage, max_receive_count 3, visibility 5 s; ``aws``
dead-letters good messages, a breaker holds them until the downstream is back."""

from __future__ import annotations

import functools
from typing import Any

from sluicegate.sim.presets import run_preset
from sluicegate.sim.presets_breaker import OUTAGE, OUTAGE_START, RATE


@functools.cache
def _variants() -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in run_preset("breaker-outage")["variants"]}


def _summary(variant: str) -> dict[str, Any]:
    return dict(_variants()[variant]["summary"])


def test_every_message_is_processed_queued_or_dead_lettered() -> None:
    for name, variant in _variants().items():
        s = variant["summary"]
        assert s["messages_sent"] == 4800, name  # 20 msg/s for 4 minutes
        assert (s["messages_processed"] + s["messages_queued"]
                + s["messages_dead_lettered"]) == s["messages_sent"], name


def test_aws_dead_letters_good_messages() -> None:
    # every message sent during the outage (60 s x 20 msg/s = 1,200) is received three
    # times in 15 s; those whose fourth receive comes before the end are dead-lettered
    s = _summary("aws")
    assert s["messages_dead_lettered"] == 1000
    assert s["total_errors"] == 1200


def test_the_breaker_dead_letters_nothing_and_processes_all_after_recovery() -> None:
    s = _summary("breaker")
    assert s["messages_dead_lettered"] == 0
    assert s["messages_processed"] == s["messages_sent"]
    assert s["messages_queued"] == 0
    # 5 calls trip it, one failed probe (30 s after the trip) reopens it for 60 s
    assert s["total_errors"] == 6
    series = _variants()["breaker"]["series"]
    # open from the trip: while the downstream is down, the one probe's batch (10
    # messages, at 90 s) is all that is received after the 10 of the trip's bucket
    down = [b for b in series if OUTAGE_START <= b["t"] < OUTAGE_START + OUTAGE + 30]
    assert all(b["limit"] == 0 for b in down)
    assert [(b["t"], b["received"]) for b in down if b["received"]] == [(60.0, 10), (90.0, 10)]
    # the backlog waits in the queue (visible, nothing burnt) ...
    assert max(b["visible"] for b in series) == 1800
    # ... and is processed in the bucket of the first probe after the recovery (the
    # trip at 60 s, the failed probe at 90 s, open 60 s more: 150 s)
    after = [b for b in series if b["processed"] > RATE * 10 * 2]
    assert [b["t"] for b in after] == [150.0]


def test_a_short_open_wait_fails_more_probes_and_loses_some_messages() -> None:
    s = _summary("breaker-short-wait")
    assert s["total_errors"] == 8  # 5 to trip, 3 failed probes
    assert 0 < s["messages_dead_lettered"] < _summary("aws")["messages_dead_lettered"] / 50


# ---------------------------------------------------------------------- Apps, streams


def test_an_apps_shared_breaker_is_one_term_of_both_lanes_in_a_world() -> None:
    import sluicegate
    from sluicegate.sim.driver import _Simulation
    from sluicegate.sim.load import load_load
    from sluicegate.sim.world import app_world

    app = sluicegate.App()
    app.queue("a")
    app.queue("b")
    app.breaker("db", minimum_calls=2, sliding_window_size=2)

    @app.function
    def handle(event: Any, context: Any) -> None:
        return None

    app.map("a", handle, breaker="db")
    app.map("b", handle, breaker="db")
    world = app_world(app, load_load({"duration": "10s"}))
    sim = _Simulation(world)
    breaker = sim.breakers["db"]
    assert [lane.mapping.concurrency_limit.get("breaker") for lane in sim.lanes] == [
        breaker, breaker]
    assert list(sim.breakers) == ["db"]


def test_a_stream_scenario_takes_a_breaker_and_writes_it_back() -> None:
    from sluicegate.sim.loading import load_any_scenario
    from sluicegate.sim.schema import ScenarioError

    data = {"stream": {"shard_count": 1},
            "mapping": {"breaker": {"open_wait": "1m", "minimum_calls": 3}}}
    scenario = load_any_scenario(data)
    breaker = scenario.mapping.breaker
    assert breaker is not None and not isinstance(breaker, str)
    assert (breaker.open_wait, breaker.minimum_calls) == (60.0, 3)
    assert scenario.to_dict()["mapping"]["breaker"]["open_wait"] == 60.0
    try:
        load_any_scenario({"stream": {}, "mapping": {"breaker": {"half_open_calls": 0}}})
    except ScenarioError as exc:
        assert "mapping.breaker.half_open_calls=0 is invalid" in str(exc)
    else:
        raise AssertionError("half_open_calls=0 was accepted")


def test_a_shared_breaker_opened_by_one_lane_stops_the_other() -> None:
    import sluicegate
    from sluicegate.sim.app_scenario import load_app_scenario
    from sluicegate.sim.streams import simulate_any

    app = sluicegate.App()
    app.queue("a", visibility_timeout=5, max_receive_count=3, dead_letter_queue="a-dlq")
    app.queue("b", visibility_timeout=5, max_receive_count=3, dead_letter_queue="b-dlq")
    app.breaker("db", minimum_calls=5, sliding_window_size=10, open_wait=30)

    @app.function(timeout=1)
    def fa(event: Any, context: Any) -> None:
        return None

    @app.function(timeout=1)
    def fb(event: Any, context: Any) -> None:
        return None

    app.map("a", fa, breaker="db")
    app.map("b", fb, breaker="db")
    # only a's function sees the outage; b's calls succeed, yet b is held too
    load = {"duration": "3m", "queues": {"a": {"producers": [{"rate": 10}]},
                                         "b": {"producers": [{"rate": 10}]}},
            "functions": {"fa": {"duration": "100ms",
                                 "errors": [{"start": "30s", "stop": "60s", "rate": 1.0}]},
                          "fb": {"duration": "100ms"}}}
    result = simulate_any(load_app_scenario(app, load_load_dict(load))).to_dict()
    by_mapping = {m["name"]: m for m in result["mappings"]}
    b = by_mapping["b->fb"]
    held = [e for e in b["series"] if 40 <= e["t"] < 60]
    assert held and all(e["limit"] == 0 and e["received"] == 0 for e in held)
    assert b["summary"]["messages_dead_lettered"] == 0
    assert by_mapping["a->fa"]["summary"]["messages_dead_lettered"] == 0


def load_load_dict(data: dict[str, Any]) -> Any:
    from sluicegate.sim.load import load_load

    return load_load(data)
