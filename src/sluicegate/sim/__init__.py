"""The discrete-event simulator: the core's mapping rules on a virtual clock.

Layout: :mod:`~sluicegate.sim.scenario` reads and validates scenarios (TOML, AWS names,
snake_cased; ``docs/scenarios.md``), :mod:`~sluicegate.sim.models` holds the modelled
world (durations, execution environments, a downstream, producers) and
:mod:`~sluicegate.sim.driver` runs the event loop and aggregates the series. Stream
scenarios (a ``[stream]`` table) are read by :mod:`~sluicegate.sim.stream_scenario` and
run by :mod:`~sluicegate.sim.streams` with the same models. Topic scenarios (a
``[topic]`` table fanned out to ``[[subscribers]]``, each a queue, a function and a
mapping) are read by :mod:`~sluicegate.sim.topic_scenario` and run by the queue driver,
one mapping per subscriber in one event loop and one concurrency pool.
:func:`load_any_scenario` and :func:`simulate_any` take every kind.

Quick use::

    from sluicegate.sim import load_scenario, simulate

    result = simulate(load_scenario("scenario.toml", overrides=["mapping.batch_size=5"]))
    result.summary["throughput"], result.series[0]["concurrency"]

    result = simulate_any(load_any_scenario("streams.toml"))  # a queue, stream or topic
    result.mappings  # a topic run's: one {"name", "summary", "series", ...} per subscriber
"""

from sluicegate.sim.driver import (
    ACCOUNT_SERIES_KEYS,
    ACCOUNT_SUMMARY_KEYS,
    SERIES_KEYS,
    SUMMARY_KEYS,
    SimResult,
    simulate,
)
from sluicegate.sim.loading import load_any_scenario
from sluicegate.sim.scenario import (
    DEFAULT_RAISE_AT,
    ENVIRONMENT_IDLE_TIMEOUT,
    AccountSpec,
    Distribution,
    DownstreamSpec,
    Empirical,
    ErrorWindow,
    Exponential,
    Fixed,
    FunctionSpec,
    LogNormal,
    MappingSpec,
    Normal,
    Pause,
    ProducerSpec,
    QueueSpec,
    Scenario,
    ScenarioError,
    Uniform,
    load_scenario,
    parse_duration,
)
from sluicegate.sim.stream_scenario import (
    PoisonSpec,
    StreamMappingSpec,
    StreamProducerSpec,
    StreamScenario,
    StreamSpec,
    load_stream_scenario,
)
from sluicegate.sim.streams import (
    STREAM_SERIES_KEYS,
    STREAM_SUMMARY_KEYS,
    simulate_any,
    simulate_stream,
)
from sluicegate.sim.topic_scenario import (
    SubscriberSpec,
    TopicScenario,
    TopicSpec,
    load_topic_scenario,
)

__all__ = [
    "ACCOUNT_SERIES_KEYS",
    "ACCOUNT_SUMMARY_KEYS",
    "DEFAULT_RAISE_AT",
    "ENVIRONMENT_IDLE_TIMEOUT",
    "SERIES_KEYS",
    "STREAM_SERIES_KEYS",
    "STREAM_SUMMARY_KEYS",
    "SUMMARY_KEYS",
    "AccountSpec",
    "Distribution",
    "DownstreamSpec",
    "Empirical",
    "ErrorWindow",
    "Exponential",
    "Fixed",
    "FunctionSpec",
    "LogNormal",
    "MappingSpec",
    "Normal",
    "Pause",
    "PoisonSpec",
    "ProducerSpec",
    "QueueSpec",
    "Scenario",
    "ScenarioError",
    "SimResult",
    "StreamMappingSpec",
    "StreamProducerSpec",
    "StreamScenario",
    "StreamSpec",
    "SubscriberSpec",
    "TopicScenario",
    "TopicSpec",
    "Uniform",
    "load_any_scenario",
    "load_scenario",
    "load_stream_scenario",
    "load_topic_scenario",
    "parse_duration",
    "simulate",
    "simulate_any",
    "simulate_stream",
]
