"""Stream scenarios on the simulator's one event loop.

A stream scenario (:class:`~sluicegate.sim.stream_scenario.StreamScenario`) runs, like every
scenario kind, as a :class:`~sluicegate.sim.world.World` in
:mod:`sluicegate.sim.driver`'s event loop: the core's
:class:`~sluicegate.core.stream_mapping.StreamMapping` asked what to do, its actions
performed on the in-memory stream engine
(:class:`~sluicegate.store.memory_streams.MemoryStreams`) reading the virtual clock, its
results reported back, with the same simulated function, execution environments and
account pool as queue mappings. Every mapping rule (lanes per partition key, batching,
retries, bisection, age and retry limits, retention, checkpoints, throttles) is the
core's; what is modelled is the world: producers and their partition keys, poison
records, handler durations, cold starts, injected errors, a downstream.

How a stream mapping's actions are performed:

- ``Fetch``: read the shard at once (no GetRecords latency, no per-shard read throughput
  limit) after the core's position, or at its starting position, exactly as the runtime
  does, including telling the core when retention dropped the records after its position.
- ``StreamInvoke``: an execution environment (warm or cold), a duration, an outcome drawn
  at the start, an end event. A batch holding a poison record fails (see
  :class:`~sluicegate.sim.stream_scenario.PoisonSpec`).
- ``SendToDestination``: counted (``on_failure``); the record itself is not kept.
- ``Checkpoint``: stored in the engine; the series' checkpoint lag is read from it.

Memory: the series is aggregated per bucket and nothing is kept per invocation or per
record, except what the in-memory stream holds within its retention period (at least 24
hours, Kinesis's minimum), and the core's bounded read-ahead.
"""

from __future__ import annotations

from typing import Any

from sluicegate.sim.driver import (
    STALL_WINDOW,
    STREAM_SERIES_KEYS,
    STREAM_SUMMARY_KEYS,
    SimResult,
    simulate,
)
from sluicegate.sim.driver import Observer as StreamObserver
from sluicegate.sim.scenario import Scenario
from sluicegate.sim.stream_scenario import StreamScenario, load_stream_scenario
from sluicegate.sim.topic_scenario import TopicScenario
from sluicegate.sim.world import World

__all__ = [
    "STALL_WINDOW",
    "STREAM_SERIES_KEYS",
    "STREAM_SUMMARY_KEYS",
    "StreamObserver",
    "simulate_any",
    "simulate_stream",
]


def simulate_stream(
    scenario: StreamScenario | dict[str, Any],
    *,
    observer: StreamObserver | None = None,
) -> SimResult:
    """Run a stream scenario in virtual time.

    Parameters:
        scenario: a :class:`StreamScenario`, or a plain dict that
            :func:`~sluicegate.sim.load_stream_scenario` accepts.
        observer: told of every invocation's start and end (for tests).

    Returns:
        The :class:`~sluicegate.sim.SimResult` (series keys :data:`STREAM_SERIES_KEYS`,
        summary keys :data:`STREAM_SUMMARY_KEYS`): a pure function of the scenario.

    Raises:
        ScenarioError: a dict that is not a valid stream scenario.
    """
    if not isinstance(scenario, StreamScenario):
        scenario = load_stream_scenario(scenario)
    return simulate(scenario, observer=observer)


def simulate_any(scenario: World | Scenario | StreamScenario | TopicScenario) -> SimResult:
    """Run a world or a scenario of any kind (:func:`~sluicegate.sim.simulate` takes them
    all; kept for callers that name it)."""
    return simulate(scenario)
