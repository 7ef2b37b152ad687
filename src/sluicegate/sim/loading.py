"""The one loader: a scenario of any kind, from a file, TOML text, a dict or an object.

Every kind is read the same way: :func:`~sluicegate.sim.sources.scenario_data` gives the
plain data with the ``KEY=VALUE`` overrides applied, :func:`scenario_kind` says which kind
it is (a ``[topic]`` table makes a topic scenario, else a ``[stream]`` table a stream
scenario, else a queue scenario), and that kind's parser validates it. The kinds'
own loaders (:func:`~sluicegate.sim.scenario.load_scenario`,
:func:`~sluicegate.sim.stream_scenario.load_stream_scenario`,
:func:`~sluicegate.sim.topic_scenario.load_topic_scenario`) are the same path with the
kind fixed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeAlias

from sluicegate.sim.scenario import Scenario, load_scenario, parse_queue_scenario
from sluicegate.sim.sources import scenario_data
from sluicegate.sim.stream_scenario import StreamScenario, parse_stream_scenario
from sluicegate.sim.topic_scenario import TopicScenario, load_topic_scenario, parse_topic_scenario

__all__ = ["AnyScenario", "ScenarioKind", "load_any_scenario", "scenario_kind"]

AnyScenario: TypeAlias = Scenario | StreamScenario | TopicScenario
"""A scenario of any kind."""

ScenarioKind: TypeAlias = Literal["queue", "stream", "topic"]


def scenario_kind(data: Mapping[str, Any]) -> ScenarioKind:
    """The kind of a scenario's plain data: ``topic`` with a ``[topic]`` table, else
    ``stream`` with a ``[stream]`` table, else ``queue``."""
    if data.get("topic") is not None:
        return "topic"
    if data.get("stream") is not None:
        return "stream"
    return "queue"


def load_any_scenario(
    source: str | Path | Mapping[str, Any] | AnyScenario,
    *,
    overrides: Iterable[str] = (),
) -> AnyScenario:
    """Read a queue, stream or topic scenario, the kind chosen by its tables after the
    overrides (see :func:`scenario_kind`).

    Parameters:
        source: as :func:`~sluicegate.sim.load_scenario` takes it; a scenario object
            keeps its kind.
        overrides: ``KEY=VALUE`` strings applied before validation.

    Raises:
        ScenarioError: as :func:`~sluicegate.sim.load_scenario`,
            :func:`~sluicegate.sim.load_stream_scenario` and
            :func:`~sluicegate.sim.load_topic_scenario`.
    """
    if isinstance(source, Scenario):
        return load_scenario(source, overrides=overrides)
    if isinstance(source, TopicScenario):
        return load_topic_scenario(source, overrides=overrides)
    data, context, base = scenario_data(source, overrides)
    kind = scenario_kind(data)
    if kind == "topic":
        return parse_topic_scenario(data, context, base)
    if kind == "stream":
        return parse_stream_scenario(data, context, base)
    return parse_queue_scenario(data, context, base)
