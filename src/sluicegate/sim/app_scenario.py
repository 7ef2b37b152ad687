"""An App plus a load: what simulates the user's own App.

:func:`app_scenario` puts an :class:`~sluicegate.app.App` (what exists, with the
settings the runtime uses) and a :class:`~sluicegate.sim.load.Load` (what arrives and how
handlers behave) together into what the simulator runs. An App a scenario kind can hold
becomes that scenario, exactly the one a user would write out (its result repeats it, a
file :func:`~sluicegate.sim.load_any_scenario` reads back):

- one queue mapping: a queue :class:`~sluicegate.sim.scenario.Scenario`;
- one stream mapping: a :class:`~sluicegate.sim.stream_scenario.StreamScenario`;
- a topic whose subscribed queues each have one mapping (and no other mapping): a
  :class:`~sluicegate.sim.topic_scenario.TopicScenario`.

Any other App (queues and streams together, several streams, several queues with no
topic, a function nothing invokes holding reserved concurrency) is simulated as it is,
through :func:`~sluicegate.sim.world.app_world`, the one path from an App and a load to
the event loop's input that scenarios take too. Either way every function draws from the
App's one account pool.

The App's settings are taken as written: a queue's visibility timeout, delay,
``max_receive_count`` and FIFO-ness; a function's timeout and reserved concurrency; every
setting of a mapping (its filter criteria included); the account's concurrency and
``min_unreserved``. The load's names must be the App's: a load naming a queue, stream,
topic, function or mapping the App does not have is refused, with the names it has.
In a scenario the dead-letter queue is named after its queue (``NAME-dlq``) whatever
the App names it (only its count is reported). What the simulator cannot run (two
mappings reading one source, a topic's queue no mapping reads, several topics, a stream
mapping's ``filter_criteria``) is refused with a one-line error saying so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from sluicegate.app import App
from sluicegate.core.config import MappingConfig
from sluicegate.core.streams import StreamMappingConfig
from sluicegate.sim.load import (
    FunctionLoad,
    Load,
    QueueLoad,
    StreamLoad,
    check_fits,
    load_load,
    mapped_topics,
    pauses_of,
    refuse_load_groups,
)
from sluicegate.sim.scenario import Scenario
from sluicegate.sim.specs import FunctionSpec, QueueSpec
from sluicegate.sim.stream_scenario import StreamScenario, StreamSpec
from sluicegate.sim.topic_scenario import SubscriberSpec, TopicScenario, TopicSpec
from sluicegate.sim.world import World, app_world, scenario_kind_of

__all__ = ["AppRun", "app_scenario", "load_app_scenario"]

AppRun = Scenario | StreamScenario | TopicScenario | World
"""What an App and a load become: a scenario when a scenario kind holds the App, else a
world."""

_DEFAULT_APP_NAME = App().name
"""The name of an App that was given none: not shown as the run's title."""


def load_app_scenario(app: App, load: str | Path | Load, *,
                      overrides: Iterable[str] = ()) -> AppRun:
    """Read the load file ``load`` (with ``overrides`` applied to it) and put it together
    with ``app`` (see :func:`app_scenario`).

    Raises:
        ScenarioError: a bad load file, or one that does not fit the App; one line.
    """
    if not isinstance(load, Load):
        load = load_load(load, overrides=overrides)
    return app_scenario(app, load)


def app_scenario(app: App, load: Load) -> AppRun:
    """What simulates ``app`` under ``load``: a scenario when one kind holds the App,
    else a world (see the module's docstring).

    Raises:
        ScenarioError: the load names what the App does not have, or the App has what
            the simulator cannot run.
    """
    check_fits(app, load)
    name = load.name or (app.name if app.name != _DEFAULT_APP_NAME else "")
    kind = scenario_kind_of(app, load)
    if kind == "stream":
        return _stream_scenario(app, load, app.stream_mappings[0], name)
    if kind == "queue":
        queue, function, mapping, producers, downstream = _lane(app, load, app.mappings[0])
        return Scenario(load.seed, load.duration, load.bucket, name, load.description,
                        queue, function, mapping, producers, downstream, app.account,
                        pauses_of(load, mapping.queue, mapping.function))
    if kind == "topic":
        topic = mapped_topics(app)[0]
        return _topic_scenario(app, load, topic.name, list(app.mappings), name)
    return app_world(app, load)


def _lane(app: App, load: Load, mapping: MappingConfig, *, topic: QueueLoad | None = None
          ) -> tuple[QueueSpec, FunctionSpec, MappingConfig, Any, Any]:
    """The queue, function, mapping, producers and downstream of one queue mapping;
    ``topic`` gives the messages' keys of a topic's subscriber."""
    config = app.queues[mapping.queue]
    queue_load = load.queues.get(mapping.queue, QueueLoad())
    messages = topic if topic is not None else queue_load
    if not config.fifo:
        refuse_load_groups(load, "topics" if topic is not None else "queues",
                           mapping.queue, messages)
    queue = QueueSpec(
        name=config.name,
        backlog=queue_load.backlog,
        visibility_timeout=config.visibility_timeout,
        delay_seconds=config.delay_seconds,
        max_receive_count=config.max_receive_count,
        message_size=messages.message_size,
        fifo=config.fifo,
        groups=messages.groups,
        hot_group_share=messages.hot_group_share,
        bodies=messages.bodies,
    )
    function, downstream = _function(app, load, mapping.function)
    return (queue, function, _own_breaker(app, mapping), queue_load.producers, downstream)


def _own_breaker(app: App, mapping: Any) -> Any:
    """``mapping`` with a shared breaker named in it replaced by its settings: one
    mapping shares it with nobody, and a scenario's plain form writes its settings."""
    if isinstance(mapping.breaker, str):
        return replace(mapping, breaker=app.breakers[mapping.breaker])
    return mapping


def _function(app: App, load: Load, name: str) -> tuple[FunctionSpec, Any]:
    config = app.functions[name].config
    behaviour = load.functions.get(name, FunctionLoad())
    m = behaviour.model
    function = FunctionSpec(name=config.name, duration=m.duration,
                            duration_per_record=m.duration_per_record,
                            cold_start=m.cold_start, timeout=float(config.timeout),
                            reserved_concurrency=config.reserved_concurrency,
                            idle_timeout=m.idle_timeout, errors=m.errors)
    return function, behaviour.downstream


def _stream_scenario(app: App, load: Load, mapping: StreamMappingConfig, name: str
                     ) -> StreamScenario:
    config = app.streams[mapping.stream]
    stream_load = load.streams.get(mapping.stream, StreamLoad())
    stream = StreamSpec(name=config.name, shard_count=config.shard_count,
                        retention_period=config.retention_period,
                        record_size=stream_load.record_size, poison=stream_load.poison)
    function, downstream = _function(app, load, mapping.function)
    return StreamScenario(load.seed, load.duration, load.bucket, name, load.description,
                          stream, function, _own_breaker(app, mapping),
                          stream_load.producers, downstream, app.account,
                          pauses_of(load, mapping.stream, mapping.function))


def _topic_scenario(app: App, load: Load, topic_name: str,
                    mappings: list[MappingConfig], name: str) -> TopicScenario:
    config = app.topics[topic_name]
    topic_load = load.topics.get(topic_name, QueueLoad())
    subscribers = []
    for queue in config.subscribers:
        mapping = next(m for m in mappings if m.queue == queue)
        q, f, m, producers, downstream = _lane(app, load, mapping, topic=topic_load)
        subscribers.append(SubscriberSpec(queue, q, f, m, producers, downstream,
                                          pauses_of(load, mapping.queue, mapping.function)))
    if not config.name.endswith(".fifo"):
        refuse_load_groups(load, "topics", topic_name, topic_load)
    topic = TopicSpec(name=config.name, backlog=topic_load.backlog,
                      message_size=topic_load.message_size, groups=topic_load.groups,
                      hot_group_share=topic_load.hot_group_share, bodies=topic_load.bodies)
    return TopicScenario(load.seed, load.duration, load.bucket, name, load.description,
                         topic, topic_load.producers, tuple(subscribers), app.account)


