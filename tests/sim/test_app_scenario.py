"""An App plus a load file: the scenario that simulates the user's own App."""

from __future__ import annotations

import pytest

import sluicegate
from sluicegate.sim import (
    Fixed,
    Scenario,
    ScenarioError,
    StreamScenario,
    TopicScenario,
    simulate,
)
from sluicegate.sim.app_scenario import app_scenario, load_app_scenario
from sluicegate.sim.load import load_load
from sluicegate.sim.scenario import load_scenario
from sluicegate.sim.specs import Pause
from sluicegate.sim.world import World


def _noop(event: object, context: object) -> None:
    return None


def fifo_app() -> sluicegate.App:
    app = sluicegate.App(account_concurrency=400, min_unreserved=50)
    jobs = app.queue("jobs.fifo", visibility_timeout=45, delay_seconds=2,
                     dead_letter_queue="jobs-dlq.fifo", max_receive_count=3)
    app.function(name="work", timeout=15, reserved_concurrency=30)(_noop)
    app.map(jobs, "work", batch_size=5, maximum_concurrency=8, scaling="fixed",
            report_batch_item_failures=True,
            filter_criteria=['{"body": {"kind": ["paid"]}}'])
    return app


FIFO_LOAD = """
seed = 3
duration = "40s"
bucket = "5s"
[queues."jobs.fifo"]
backlog = 30
groups = 4
hot_group_share = 0.5
bodies = ['{"kind": "paid"}', '{"kind": "free"}']
message_size = 500
producers = [{ kind = "poisson", rate = 20, batch = 5 }]
[functions.work]
duration = "120ms"
duration_per_record = "5ms"
errors = [{ start = "10s", stop = "20s", rate = 0.2 }]
[functions.work.downstream]
concurrency = 4
latency = "10ms"
[mappings."jobs.fifo"]
pauses = [{ at = "25s", until = "30s" }]
"""

FIFO_SCENARIO = {
    "seed": 3, "duration": "40s", "bucket": "5s",
    "queue": {"name": "jobs.fifo", "fifo": True, "backlog": 30, "visibility_timeout": 45,
              "delay_seconds": 2, "max_receive_count": 3, "groups": 4,
              "hot_group_share": 0.5, "message_size": 500,
              "bodies": ['{"kind": "paid"}', '{"kind": "free"}']},
    "producers": [{"kind": "poisson", "rate": 20, "batch": 5}],
    "function": {"name": "work", "timeout": 15, "reserved_concurrency": 30,
                 "duration": "120ms", "duration_per_record": "5ms",
                 "errors": [{"start": "10s", "stop": "20s", "rate": 0.2}]},
    "downstream": {"concurrency": 4, "latency": "10ms"},
    "mapping": {"batch_size": 5, "maximum_concurrency": 8, "scaling": "fixed",
                "report_batch_item_failures": True,
                "filter_criteria": ['{"body": {"kind": ["paid"]}}'],
                "pauses": [{"at": "25s", "until": "30s"}]},
    "account": {"concurrency_limit": 400, "min_unreserved": 50},
}


def test_the_apps_settings_are_taken_as_written() -> None:
    scenario = load_app_scenario(fifo_app(), FIFO_LOAD)
    assert isinstance(scenario, Scenario)
    q, f, m = scenario.queue, scenario.function, scenario.mapping
    assert (q.name, q.fifo, q.visibility_timeout, q.delay_seconds, q.max_receive_count) == (
        "jobs.fifo", True, 45, 2, 3)
    assert (f.name, f.timeout, f.reserved_concurrency) == ("work", 15.0, 30)
    assert (m.batch_size, m.maximum_concurrency, m.scaling, m.report_batch_item_failures) == (
        5, 8, "fixed", True)
    assert scenario.mapping.filter_criteria == fifo_app().mappings[0].filter_criteria
    assert (scenario.account.concurrency_limit, scenario.account.min_unreserved) == (400, 50)
    assert scenario.pauses == (Pause(25.0, 30.0),)


def test_an_app_and_its_load_are_the_scenario_written_out() -> None:
    from_app = load_app_scenario(fifo_app(), FIFO_LOAD)
    written = load_scenario(FIFO_SCENARIO)
    # the same but for how the filter pattern is spelled (the App keeps it compacted)
    assert from_app.to_dict() == written.to_dict()
    assert from_app.mapping == written.mapping
    assert simulate(from_app).to_dict() == simulate(written).to_dict()


def test_a_stream_app() -> None:
    app = sluicegate.App(name="clicks")
    clicks = app.stream("clicks", shard_count=3, retention_period=172_800)
    app.queue("failed")
    app.function(name="count", timeout=5)(_noop)
    app.map(clicks, "count", parallelization_factor=4, bisect_batch_on_function_error=True,
            maximum_retry_attempts=2, on_failure="failed", starting_position="LATEST")
    scenario = load_app_scenario(app, """
duration = "1m"
[streams.clicks]
record_size = 200
producers = [{ rate = 100, partition_keys = 10, key_distribution = "hot" }]
poison = [{ at = "5s", key = "k1" }]
[mappings.clicks]
pauses = [{ at = "10s" }]
""")
    assert isinstance(scenario, StreamScenario)
    assert scenario.name == "clicks"
    s, m = scenario.stream, scenario.mapping
    assert (s.name, s.shard_count, s.retention_period, s.record_size) == (
        "clicks", 3, 172_800, 200)
    assert [p.key for p in s.poison] == ["k1"]
    assert (m.parallelization_factor, m.bisect_batch_on_function_error,
            m.maximum_retry_attempts, m.on_failure, m.starting_position) == (
        4, True, 2, "failed", "LATEST")
    assert scenario.pauses == (Pause(10.0, None),)
    assert scenario.producers[0].key_distribution == "hot"


def test_a_topic_app_runs_its_subscribers_in_one_pool() -> None:
    app = sluicegate.App()
    a, b = app.queue("a"), app.queue("b")
    app.topic("events", subscribers=[a, b])
    app.function(name="fa", reserved_concurrency=10)(_noop)
    app.function(name="fb")(_noop)
    app.map(a, "fa")
    app.map(b, "fb", batch_size=2)
    scenario = load_app_scenario(app, """
[topics.events]
backlog = 7
bodies = ["x"]
[queues.b]
backlog = 3
""")
    assert isinstance(scenario, TopicScenario)
    assert [s.name for s in scenario.subscribers] == ["a", "b"]
    assert scenario.topic.backlog == 7
    assert [s.queue.bodies for s in scenario.subscribers] == [("x",), ("x",)]
    assert [s.queue.backlog for s in scenario.subscribers] == [0, 3]
    assert scenario.subscribers[1].mapping.batch_size == 2


def test_pauses_are_found_by_source_or_by_mapping_name() -> None:
    app = sluicegate.App()
    app.queue("q")
    app.function(name="f")(_noop)
    app.map("q", "f")
    for key in ("q", '"q->f"'):
        scenario = load_app_scenario(app, f"[mappings.{key}]\npauses = [{{ at = 1 }}]\n")
        assert scenario.pauses == (Pause(1.0, None),)


@pytest.mark.parametrize("build, sources", [
    (lambda app: [app.queue("a"), app.queue("b"), app.map("a", "f"), app.map("b", "f")],
     ["a->f", "b->f"]),
    (lambda app: [app.stream("s1"), app.stream("s2"), app.map("s1", "f"),
                  app.map("s2", "f")], ["s1->f", "s2->f"]),
    (lambda app: [app.queue("a"), app.stream("s"), app.map("a", "f"), app.map("s", "f")],
     ["a->f", "s->f"]),
])
def test_apps_no_scenario_kind_holds_become_a_world(build: object,
                                                    sources: list[str]) -> None:
    app = sluicegate.App()
    app.function(name="f", reserved_concurrency=7)(_noop)
    app.function(name="idle", reserved_concurrency=3)(_noop)
    build(app)  # type: ignore[operator]
    world = load_app_scenario(app, 'duration = "20s"\n[functions.f]\nduration = "10ms"\n')
    assert isinstance(world, World)
    assert [m.name for m in world.mappings] == sources
    assert all(m.config in [*app.mappings, *app.stream_mappings] for m in world.mappings)
    # every function of the App is in the pool, the idle one's reservation included
    assert [f.config for f in world.functions] == [fn.config for fn in app.functions.values()]
    assert world.function("f").duration == Fixed(0.01)
    assert world.account == app.account and world.duration == 20.0
    assert len({m.seeds for m in world.mappings}) == len(world.mappings)
    result = simulate(world)
    assert [m["name"] for m in result.mappings] == sources


def test_a_reservation_nothing_invokes_makes_a_world_holding_it() -> None:
    app = sluicegate.App()
    app.queue("q")
    app.function(name="f")(_noop)
    app.function(name="spare", reserved_concurrency=400)(_noop)
    app.map("q", "f")
    world = load_app_scenario(app, "duration = 1\n")
    assert isinstance(world, World)
    assert [f.config.name for f in world.functions] == ["f", "spare"]


def test_a_world_takes_each_sources_load() -> None:
    app = sluicegate.App()
    app.queue("q.fifo", dead_letter_queue="dead.fifo", max_receive_count=2)
    app.stream("s", shard_count=2)
    app.function(name="f")(_noop)
    app.map("q.fifo", "f")
    app.map("s", "f", parallelization_factor=2)
    world = load_app_scenario(app, """
[queues."q.fifo"]
backlog = 9
groups = 3
producers = [{ rate = 5 }]
[streams.s]
record_size = 64
producers = [{ rate = 7, partition_keys = 4 }]
poison = [{ at = 2, key = "k0" }]
[mappings.s]
pauses = [{ at = 3, until = 4 }]
""")
    assert isinstance(world, World)
    q, s = world.queue("q.fifo"), world.stream("s")
    assert q.config is app.queues["q.fifo"] and q.dead_letter_queue is app.queues["dead.fifo"]
    assert (q.backlog, q.messages.groups) == (9, 3)
    assert (s.config.shard_count, s.record_size, [p.key for p in s.poison]) == (2, 64, ["k0"])
    assert [(p.target, p.arrivals.rate, p.keys is not None) for p in world.producers] == [
        ("q.fifo", 5.0, False), ("s", 7.0, True)]
    assert world.mappings[1].pauses == (Pause(3.0, 4.0),)


@pytest.mark.parametrize("build, needle", [
    (lambda app: None, "maps no queue or stream"),
    (lambda app: [app.queue("a"), app.function(name="g")(_noop), app.map("a", "f"),
                  app.map("a", "g")], "'a' is read by two mappings (a->f, a->g)"),
    (lambda app: [app.queue("a"), app.queue("b"), app.topic("t", subscribers=["a", "b"]),
                  app.map("a", "f")], "queue 'b' of topic 't' has no mapping"),
    (lambda app: [app.queue("a"), app.topic("t1", subscribers=["a"]),
                  app.topic("t2", subscribers=["a"]), app.map("a", "f")],
     "2 topics delivering to mapped queues (t1, t2)"),
    (lambda app: [app.stream("s"), app.map("s", "f", filter_criteria=['{"data": {"k": [1]}}'])],
     "mapping s->f has filter_criteria: stream filters are not simulated yet"),
])
def test_what_the_simulator_cannot_run_is_refused(build: object, needle: str) -> None:
    app = sluicegate.App()
    app.function(name="f")(_noop)
    build(app)  # type: ignore[operator]
    with pytest.raises(ScenarioError) as info:
        load_app_scenario(app, "duration = 1\n")
    assert needle in str(info.value)


def test_a_load_names_only_what_the_app_has() -> None:
    app = sluicegate.App()
    app.queue("q")
    app.queue("unread")
    app.function(name="f")(_noop)
    app.map("q", "f")
    with pytest.raises(ScenarioError) as info:
        load_app_scenario(app, "[queues.unread]\nbacklog = 1\n")
    assert str(info.value) == ("scenario: queues.unread: the App maps no function to queue "
                               "'unread', so nothing would read what arrives there")
    with pytest.raises(ScenarioError, match=r"streams.s: the App has no stream 's' "
                                            r"\(it has no streams\)"):
        load_app_scenario(app, "[streams.s]\nrecord_size = 1\n")


def test_a_load_refuses_what_the_app_sets() -> None:
    for text, needle in [
        ("[function]\nduration = 1\n", "[function] is a scenario's table, not a load's: a "
                                       "load names the App's functions: [functions.NAME]"),
        ("[account]\nconcurrency_limit = 5\n", "[account] is a scenario's table"),
        ("[functions.f]\nreserved_concurrency = 5\n", "the App sets a function's "
                                                      "reserved_concurrency"),
    ]:
        with pytest.raises(ScenarioError) as info:
            load_load(text)
        assert needle in str(info.value)


def test_a_load_with_defaults_only() -> None:
    load = load_load({})
    assert (load.seed, load.duration, load.queues, load.functions) == (1, 600.0, {}, {})
    assert load_load('duration = "2m"\n', overrides=["seed=4"]).seed == 4
    with pytest.raises(ScenarioError, match=r"queues\.q=3 is invalid: allowed a table"):
        load_load({"queues": {"q": 3}})


def test_app_scenario_takes_a_load_object() -> None:
    app = sluicegate.App()
    app.queue("q")
    app.function(name="f")(_noop)
    app.map("q", "f")
    load = load_load("[queues.q]\nbacklog = 5\n")
    scenario = app_scenario(app, load)
    assert isinstance(scenario, Scenario) and scenario.queue.backlog == 5
    assert scenario == load_app_scenario(app, load)
