"""The discrete-event simulator: the core's mapping rules on a virtual clock.

Layout. What runs is an App plus a load: :mod:`~sluicegate.sim.world` holds it as the
event loop's input (the App's config objects and what only the simulator must be told),
:mod:`~sluicegate.sim.driver` runs the one event loop for every source and aggregates the
series, :mod:`~sluicegate.sim.models` holds the modelled world (durations, execution
environments, a downstream, producers).

Where it comes from: a scenario file, TOML with AWS names snake_cased
(``docs/scenarios.md``), of three kinds: a queue (:mod:`~sluicegate.sim.scenario`), a
``[stream]`` (:mod:`~sluicegate.sim.stream_scenario`) or a ``[topic]`` fanned out to
``[[subscribers]]`` (:mod:`~sluicegate.sim.topic_scenario`), read by one loader
(:mod:`~sluicegate.sim.loading`, :func:`load_any_scenario`); or the user's own App and a
load file (:mod:`~sluicegate.sim.load`, :mod:`~sluicegate.sim.app_scenario`,
:func:`load_app_scenario`; ``docs/simulate-your-app.md``). Their parts have modules of
their own: :mod:`~sluicegate.sim.distributions`, :mod:`~sluicegate.sim.specs` (the
simulator's sections), :mod:`~sluicegate.sim.schema` (validation),
:mod:`~sluicegate.sim.sections` (the sections' parsers), :mod:`~sluicegate.sim.overrides`
(``KEY=VALUE``) and :mod:`~sluicegate.sim.sources` (files and text).

Quick use::

    from sluicegate.sim import load_scenario, simulate

    result = simulate(load_scenario("scenario.toml", overrides=["mapping.batch_size=5"]))
    result.summary["throughput"], result.series[0]["concurrency"]

    result = simulate_any(load_any_scenario("streams.toml"))  # a queue, stream or topic
    result.mappings  # a topic run's: one {"name", "summary", "series", ...} per subscriber

    from sluicegate.loader import load_app

    result = simulate(load_app_scenario(load_app("jobs.py"), "load.toml"))  # your App
"""

from sluicegate.sim.app_scenario import load_app_scenario
from sluicegate.sim.driver import (
    ACCOUNT_SERIES_KEYS,
    ACCOUNT_SUMMARY_KEYS,
    SERIES_KEYS,
    SUMMARY_KEYS,
    SimResult,
    simulate,
)
from sluicegate.sim.load import Load, load_load
from sluicegate.sim.loading import load_any_scenario
from sluicegate.sim.scenario import (
    DEFAULT_RAISE_AT,
    ENVIRONMENT_IDLE_TIMEOUT,
    Distribution,
    DownstreamSpec,
    Empirical,
    ErrorWindow,
    Exponential,
    Fixed,
    FunctionSpec,
    LogNormal,
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
    "Distribution",
    "DownstreamSpec",
    "Empirical",
    "ErrorWindow",
    "Exponential",
    "Fixed",
    "FunctionSpec",
    "Load",
    "LogNormal",
    "Normal",
    "Pause",
    "PoisonSpec",
    "ProducerSpec",
    "QueueSpec",
    "Scenario",
    "ScenarioError",
    "SimResult",
    "StreamProducerSpec",
    "StreamScenario",
    "StreamSpec",
    "SubscriberSpec",
    "TopicScenario",
    "TopicSpec",
    "Uniform",
    "load_any_scenario",
    "load_app_scenario",
    "load_load",
    "load_scenario",
    "load_stream_scenario",
    "load_topic_scenario",
    "parse_duration",
    "simulate",
    "simulate_any",
    "simulate_stream",
]
