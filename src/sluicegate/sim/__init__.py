"""The discrete-event simulator: the core's mapping rules on a virtual clock.

Layout: :mod:`~sluicegate.sim.scenario` reads and validates scenarios (TOML, AWS names,
snake_cased; ``docs/scenarios.md``), :mod:`~sluicegate.sim.models` holds the modelled
world (durations, execution environments, a downstream, producers) and
:mod:`~sluicegate.sim.driver` runs the event loop and aggregates the series.

Quick use::

    from sluicegate.sim import load_scenario, simulate

    result = simulate(load_scenario("scenario.toml", overrides=["mapping.batch_size=5"]))
    result.summary["throughput"], result.series[0]["concurrency"]
"""

from sluicegate.sim.driver import SERIES_KEYS, SUMMARY_KEYS, SimResult, simulate
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

__all__ = [
    "DEFAULT_RAISE_AT",
    "ENVIRONMENT_IDLE_TIMEOUT",
    "SERIES_KEYS",
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
    "ProducerSpec",
    "QueueSpec",
    "Scenario",
    "ScenarioError",
    "SimResult",
    "Uniform",
    "load_scenario",
    "parse_duration",
    "simulate",
]
