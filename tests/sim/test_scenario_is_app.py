"""A scenario file is an App plus a load: both take the one path to the event loop.

A scenario and the App it describes, under the load it describes, give the same run (the
same summary and series, draw for draw); a scenario's mapping is the core's own
configuration, and a bad value in it is still a one-line error naming its key path.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

import sluicegate
from sluicegate.core.config import MappingConfig
from sluicegate.core.streams import StreamMappingConfig
from sluicegate.sim import ScenarioError, load_any_scenario, load_load, simulate
from sluicegate.sim.world import app_and_load, app_world, to_world


def _noop(event: object, context: object) -> None:
    return None


def _run(result: Any) -> dict[str, Any]:
    """A result without the plain form it repeats (a scenario's differs from an App's)."""
    out: dict[str, Any] = result.to_dict()
    out.pop("scenario")
    return out


QUEUE_SCENARIO = """
seed = 5
duration = "90s"
[queue]
name = "orders"
visibility_timeout = 20
max_receive_count = 2
backlog = 200
[function]
name = "process"
timeout = 10
reserved_concurrency = 40
duration = { distribution = "lognormal", median = "80ms", p99 = "400ms" }
errors = [{ start = "20s", stop = "40s", rate = 0.3 }]
[mapping]
batch_size = 4
maximum_concurrency = 12
pauses = [{ at = "50s", until = "60s" }]
[[producers]]
kind = "poisson"
rate = 120
"""

QUEUE_LOAD = """
seed = 5
duration = "90s"
[queues.orders]
backlog = 200
producers = [{ kind = "poisson", rate = 120 }]
[functions.process]
duration = { distribution = "lognormal", median = "80ms", p99 = "400ms" }
errors = [{ start = "20s", stop = "40s", rate = 0.3 }]
[mappings.orders]
pauses = [{ at = "50s", until = "60s" }]
"""


def queue_app() -> sluicegate.App:
    app = sluicegate.App()
    app.queue("orders", visibility_timeout=20, dead_letter_queue="orders-dlq",
              max_receive_count=2)
    app.function(name="process", timeout=10, reserved_concurrency=40)(_noop)
    app.map("orders", "process", batch_size=4, maximum_concurrency=12)
    return app


STREAM_SCENARIO = """
seed = 2
duration = "60s"
[stream]
name = "clicks"
shard_count = 2
poison = [{ at = "10s", key = "k3" }]
[function]
name = "count"
timeout = 5
duration = "30ms"
[mapping]
batch_size = 50
maximum_batching_window = 1
parallelization_factor = 3
bisect_batch_on_function_error = true
maximum_retry_attempts = 2
[[producers]]
rate = 400
partition_keys = 20
key_distribution = "zipf"
"""

STREAM_LOAD = """
seed = 2
duration = "60s"
[streams.clicks]
poison = [{ at = "10s", key = "k3" }]
producers = [{ rate = 400, partition_keys = 20, key_distribution = "zipf" }]
[functions.count]
duration = "30ms"
"""


def stream_app() -> sluicegate.App:
    app = sluicegate.App()
    clicks = app.stream("clicks", shard_count=2)
    app.function(name="count", timeout=5)(_noop)
    app.map(clicks, "count", batch_size=50, maximum_batching_window=1,
            parallelization_factor=3, bisect_batch_on_function_error=True,
            maximum_retry_attempts=2)
    return app


TOPIC_SCENARIO = """
seed = 9
duration = "60s"
[topic]
name = "events"
backlog = 50
message_size = 2048
[[producers]]
rate = 80
[[subscribers]]
name = "fast"
function = { duration = "20ms" }
[[subscribers]]
name = "slow"
queue = { backlog = 10 }
function = { duration = "300ms", reserved_concurrency = 10 }
mapping = { batch_size = 2, maximum_concurrency = 5 }
producers = [{ rate = 5 }]
"""

TOPIC_LOAD = """
seed = 9
duration = "60s"
[topics.events]
backlog = 50
message_size = 2048
producers = [{ rate = 80 }]
[queues.slow]
backlog = 10
producers = [{ rate = 5 }]
[functions.fast]
duration = "20ms"
[functions.slow]
duration = "300ms"
"""


def topic_app() -> sluicegate.App:
    app = sluicegate.App()
    app.queue("fast")
    app.queue("slow")
    app.topic("events", subscribers=["fast", "slow"])
    app.function(name="fast")(_noop)
    app.function(name="slow", reserved_concurrency=10)(_noop)
    app.map("fast", "fast")
    app.map("slow", "slow", batch_size=2, maximum_concurrency=5)
    return app


@pytest.mark.parametrize(("scenario", "app", "load"), [
    (QUEUE_SCENARIO, queue_app, QUEUE_LOAD),
    (STREAM_SCENARIO, stream_app, STREAM_LOAD),
    (TOPIC_SCENARIO, topic_app, TOPIC_LOAD),
], ids=["queue", "stream", "topic"])
def test_a_scenario_and_its_app_under_its_load_give_one_run(
        scenario: str, app: Any, load: str) -> None:
    # Given a scenario file and the App it describes with the load it describes
    written = load_any_scenario(scenario)
    # When both run
    from_file = simulate(written)
    from_app = simulate(app_world(app(), load_load(load)))
    # Then the runs are one, draw for draw; each repeats its own plain form
    assert _run(from_app) == _run(from_file)
    assert from_file.summary["total_invocations"] > 0
    assert from_file.scenario == written.to_dict()
    assert from_app.scenario["app"]["mappings"] == [
        *(m.name for m in app().mappings), *(m.name for m in app().stream_mappings)]


def test_a_scenario_reads_as_an_app_and_a_load() -> None:
    scenario = load_any_scenario(TOPIC_SCENARIO)
    app, load = app_and_load(scenario)
    assert sorted(app.queues) == ["fast", "slow"]
    assert app.topics["events"].subscribers == ("fast", "slow")
    # the mappings are the scenario's own core configurations, not copies
    assert app.mappings == [s.mapping for s in scenario.subscribers]  # type: ignore[union-attr]
    assert all(isinstance(m, MappingConfig) for m in app.mappings)
    assert app.functions["slow"].config.reserved_concurrency == 10
    assert (load.topics["events"].backlog, load.queues["slow"].backlog) == (50, 10)
    assert load.labels == {"fast": "fast", "slow": "slow"}
    assert to_world(scenario) == app_world(app, load, plain=scenario.to_dict())


def test_a_stream_scenarios_mapping_is_the_cores() -> None:
    mapping = load_any_scenario(STREAM_SCENARIO).mapping
    assert isinstance(mapping, StreamMappingConfig)
    assert (mapping.stream, mapping.function, mapping.parallelization_factor) == (
        "clicks", "count", 3)


def test_subscriber_names_label_a_topics_mappings() -> None:
    # Given a subscriber named apart from its queue
    scenario = load_any_scenario(TOPIC_SCENARIO, overrides=['subscribers.slow.name="late"',
                                                            'subscribers.late.queue.name="slow"'])
    world = to_world(scenario)
    # Then its mapping goes by the subscriber's name, its streams named after it
    assert [(m.name, m.seeds) for m in world.mappings] == [
        ("fast", "subscriber:fast:"), ("late", "subscriber:late:")]
    assert [q.id_prefix for q in world.queues] == ["fast/", "late/"]


@pytest.mark.parametrize(("scenario", "override", "message"), [
    (QUEUE_SCENARIO, "mapping.maximum_concurrency=1",
     "mapping.maximum_concurrency=1 is invalid: allowed an integer 2-1,000"),
    # judged by the core's MappingConfig (a rule across two settings)
    (QUEUE_SCENARIO, "mapping.batch_size=50",
     "mapping.maximum_batching_window=0 is invalid: allowed >= 1 s when batch_size (50)"),
    (QUEUE_SCENARIO, "mapping.scaling=sometimes", "mapping.scaling='sometimes' is invalid"),
    (STREAM_SCENARIO, "mapping.parallelization_factor=11",
     "mapping.parallelization_factor=11 is invalid"),
    (TOPIC_SCENARIO, "subscribers.slow.mapping.batch_size=0",
     "subscribers[1].mapping.batch_size=0 is invalid"),
    (QUEUE_SCENARIO, "account.min_unreserved=5000", "account.min_unreserved=5000 is invalid"),
])
def test_a_bad_mapping_value_is_a_one_line_error(scenario: str, override: str,
                                                 message: str) -> None:
    with pytest.raises(ScenarioError, match=re.escape(message)) as info:
        load_any_scenario(scenario, overrides=[override])
    assert "\n" not in str(info.value)


def test_adaptive_scaling_writes_the_settings_the_core_filled_in() -> None:
    # Given adaptive scaling without an adaptive table
    scenario = load_any_scenario(QUEUE_SCENARIO, overrides=["mapping.scaling=adaptive"])
    plain = scenario.to_dict()
    # Then the plain form holds the defaults the core filled in, and reads back the same
    assert plain["mapping"]["adaptive"]["algorithm"] == "vegas"
    assert load_any_scenario(plain).to_dict() == plain
    # and a mapping without adaptive scaling writes none
    assert "adaptive" not in load_any_scenario(QUEUE_SCENARIO).to_dict()["mapping"]
