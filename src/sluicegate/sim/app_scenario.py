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
topic, a function nothing invokes holding reserved concurrency) becomes a :class:`~sluicegate.sim.world.World`, the event loop's own input: every
mapping in one event loop and one account pool, each element drawing from random streams
named after it. Either way every function draws from the App's one account pool.

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
from pathlib import Path
from typing import Any

from sluicegate.app import App
from sluicegate.core.breaker import BreakerConfig
from sluicegate.core.config import MappingConfig
from sluicegate.core.streams import StreamMappingConfig
from sluicegate.sim.load import FunctionLoad, Load, QueueLoad, StreamLoad, load_load
from sluicegate.sim.scenario import Scenario
from sluicegate.sim.schema import ScenarioError
from sluicegate.sim.specs import (
    AccountSpec,
    FunctionSpec,
    MappingSpec,
    Pause,
    QueueSpec,
)
from sluicegate.sim.stream_scenario import StreamMappingSpec, StreamScenario, StreamSpec
from sluicegate.sim.topic_scenario import SubscriberSpec, TopicScenario, TopicSpec
from sluicegate.sim.world import (
    Messages,
    SimFunction,
    SimMapping,
    SimProducer,
    SimQueue,
    SimStream,
    SimTopic,
    World,
)

__all__ = ["AppRun", "app_scenario", "app_world", "load_app_scenario"]

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
    _check_names(app, load)
    _check_runnable(app, load)
    name = load.name or (app.name if app.name != _DEFAULT_APP_NAME else "")
    account = AccountSpec(app.account.concurrency_limit, app.account.min_unreserved)
    queue_mappings, stream_mappings = list(app.mappings), list(app.stream_mappings)
    topics = _topics(app)
    invoked = {m.function for m in queue_mappings} | {m.function for m in stream_mappings}
    if any(fn.config.reserved_concurrency for name, fn in app.functions.items()
           if name not in invoked) or any(m.semaphores for m in queue_mappings) or any(
               m.semaphores for m in stream_mappings):
        # a reservation of a function nothing invokes still shrinks the unreserved pool,
        # and semaphores are the App's: only a world holds them
        return app_world(app, load)
    if not queue_mappings and len(stream_mappings) == 1:
        return _stream_scenario(app, load, stream_mappings[0], name, account)
    if not stream_mappings and len(queue_mappings) == 1 and not topics:
        mapping = queue_mappings[0]
        queue, function, mapping_spec, producers, downstream = _lane(app, load, mapping)
        return Scenario(load.seed, load.duration, load.bucket, name, load.description,
                        queue, function, mapping_spec, producers, downstream, account)
    if (not stream_mappings and len(topics) == 1
            and {m.queue for m in queue_mappings} == set(topics[0].subscribers)):
        return _topic_scenario(app, load, topics[0].name, queue_mappings, name, account)
    return app_world(app, load)


def _topics(app: App) -> list[Any]:
    """The App's topics that deliver to a mapped queue."""
    mapped = {m.queue for m in app.mappings}
    return [t for t in app.topics.values() if mapped & set(t.subscribers)]


def _check_runnable(app: App, load: Load) -> None:
    """Refuse what the simulator cannot run, in one line."""
    context = load.context
    queue_mappings, stream_mappings = app.mappings, app.stream_mappings
    if not queue_mappings and not stream_mappings:
        raise ScenarioError("app", None, "", context,
                            message="the App maps no queue or stream to a function: nothing "
                                    "to simulate")
    sources: dict[str, str] = {}
    every: list[MappingConfig | StreamMappingConfig] = [*queue_mappings, *stream_mappings]
    for m in every:
        source = m.queue if isinstance(m, MappingConfig) else m.stream
        if source in sources:
            raise ScenarioError("app", None, "", context, message=(
                f"{source!r} is read by two mappings ({sources[source]}, {m.name}): the "
                "simulator runs one mapping per queue or stream"))
        sources[source] = m.name
    for m in stream_mappings:
        if m.filter_criteria:
            raise ScenarioError("app", None, "", context, message=(
                f"mapping {m.name} has filter_criteria: stream filters are not simulated "
                "yet"))
    topics = _topics(app)
    if len(topics) > 1:
        raise ScenarioError("app", None, "", context, message=(
            f"the App has {len(topics)} topics delivering to mapped queues "
            f"({', '.join(t.name for t in topics)}): one topic at a time is simulated"))
    for topic in topics:
        for queue in topic.subscribers:
            if queue not in sources:
                raise ScenarioError("app", None, "", context, message=(
                    f"queue {queue!r} of topic {topic.name!r} has no mapping: each queue a "
                    "simulated topic delivers to is read by one"))


def _lane(app: App, load: Load, mapping: MappingConfig, *, topic: QueueLoad | None = None
          ) -> tuple[QueueSpec, FunctionSpec, MappingSpec, Any, Any]:
    """The queue, function, mapping, producers and downstream of one queue mapping;
    ``topic`` gives the messages' keys of a topic's subscriber."""
    config = app.queues[mapping.queue]
    queue_load = load.queues.get(mapping.queue, QueueLoad())
    messages = topic if topic is not None else queue_load
    if not config.fifo:
        _refuse_groups(load, "topics" if topic is not None else "queues",
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
    spec = MappingSpec(
        batch_size=mapping.batch_size,
        maximum_batching_window=mapping.maximum_batching_window,
        maximum_concurrency=mapping.maximum_concurrency,
        report_batch_item_failures=mapping.report_batch_item_failures,
        scaling=mapping.scaling,
        scaling_ceiling=mapping.scaling_ceiling,
        enabled=mapping.enabled,
        pauses=_pauses(load, mapping.queue, mapping.function),
        filter_criteria=mapping.filter_criteria.patterns,
        breaker=_breaker(app, mapping.breaker),
        adaptive=mapping.adaptive,
    )
    return queue, function, spec, queue_load.producers, downstream


def _breaker(app: App, spec: str | BreakerConfig | None) -> BreakerConfig | None:
    """A mapping's breaker as the settings a one-mapping scenario takes (a shared one's
    by its name: one mapping shares it with nobody; a world keeps it shared)."""
    return app.breakers[spec] if isinstance(spec, str) else spec


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


def _stream_scenario(app: App, load: Load, mapping: StreamMappingConfig, name: str,
                     account: AccountSpec) -> StreamScenario:
    config = app.streams[mapping.stream]
    stream_load = load.streams.get(mapping.stream, StreamLoad())
    stream = StreamSpec(name=config.name, shard_count=config.shard_count,
                        retention_period=config.retention_period,
                        record_size=stream_load.record_size, poison=stream_load.poison)
    function, downstream = _function(app, load, mapping.function)
    spec = StreamMappingSpec(
        batch_size=mapping.batch_size,
        maximum_batching_window=mapping.maximum_batching_window,
        parallelization_factor=mapping.parallelization_factor,
        bisect_batch_on_function_error=mapping.bisect_batch_on_function_error,
        maximum_retry_attempts=mapping.maximum_retry_attempts,
        maximum_record_age=mapping.maximum_record_age,
        on_failure=mapping.on_failure,
        starting_position=mapping.starting_position,
        starting_position_timestamp=mapping.starting_position_timestamp,
        report_batch_item_failures=mapping.report_batch_item_failures,
        enabled=mapping.enabled,
        pauses=_pauses(load, mapping.stream, mapping.function),
        breaker=_breaker(app, mapping.breaker),
    )
    return StreamScenario(load.seed, load.duration, load.bucket, name, load.description,
                          stream, function, spec, stream_load.producers, downstream, account)


def _topic_scenario(app: App, load: Load, topic_name: str,
                    mappings: list[MappingConfig], name: str,
                    account: AccountSpec) -> TopicScenario:
    config = app.topics[topic_name]
    topic_load = load.topics.get(topic_name, QueueLoad())
    subscribers = []
    for queue in config.subscribers:
        mapping = next(m for m in mappings if m.queue == queue)
        q, f, m, producers, downstream = _lane(app, load, mapping, topic=topic_load)
        subscribers.append(SubscriberSpec(queue, q, f, m, producers, downstream))
    if not config.name.endswith(".fifo"):
        _refuse_groups(load, "topics", topic_name, topic_load)
    topic = TopicSpec(name=config.name, backlog=topic_load.backlog,
                      message_size=topic_load.message_size, groups=topic_load.groups,
                      hot_group_share=topic_load.hot_group_share, bodies=topic_load.bodies)
    return TopicScenario(load.seed, load.duration, load.bucket, name, load.description,
                         topic, topic_load.producers, tuple(subscribers), account)


# ---------------------------------------------------------------------- worlds


def app_world(app: App, load: Load) -> World:
    """``app`` under ``load`` as the event loop's input, whatever its mappings: every
    mapped source with its mapping, the topic delivering to them, every function of the
    App (each registered in the pool: a reservation counts even for a function nothing
    invokes) and the load's producers. Each element's random streams are named after it
    (``function:NAME:``, ``queue:NAME:``, ``mapping:SOURCE->FUNCTION:``, ...), so that
    adding one does not change another's draws.

    Raises:
        ScenarioError: as :func:`app_scenario`.
    """
    _check_names(app, load)
    _check_runnable(app, load)
    functions = []
    for name, fn in app.functions.items():
        behaviour = load.functions.get(name, FunctionLoad())
        m = behaviour.model
        functions.append(SimFunction(fn.config, m.duration, m.duration_per_record,
                                     m.cold_start, m.idle_timeout, m.errors,
                                     behaviour.downstream, f"function:{name}:"))
    topics = _topics(app)
    queues, streams, mappings, producers = [], [], [], []
    for topic in topics:
        carried = load.topics.get(topic.name, QueueLoad())
        if not topic.fifo:
            _refuse_groups(load, "topics", topic.name, carried)
        producers += _sim_producers(topic.name, carried.producers, "topic")
    for mapping in app.mappings:
        config = app.queues[mapping.queue]
        queue_load = load.queues.get(mapping.queue, QueueLoad())
        if not config.fifo:
            _refuse_groups(load, "queues", mapping.queue, queue_load)
        dlq = config.dead_letter_queue
        queues.append(SimQueue(
            config, None if dlq is None else app.queues[dlq],
            Messages(queue_load.message_size, queue_load.bodies, queue_load.groups,
                     queue_load.hot_group_share),
            queue_load.backlog, f"queue:{config.name}:", f"{config.name}/"))
        mappings.append(SimMapping(mapping, mapping.name,
                                   _pauses(load, mapping.queue, mapping.function),
                                   f"mapping:{mapping.name}:"))
        producers += _sim_producers(config.name, queue_load.producers, "queue")
    for stream_mapping in app.stream_mappings:
        stream_config = app.streams[stream_mapping.stream]
        stream_load = load.streams.get(stream_mapping.stream, StreamLoad())
        streams.append(SimStream(stream_config, stream_load.record_size,
                                 stream_load.poison))
        mappings.append(SimMapping(stream_mapping, stream_mapping.name,
                                   _pauses(load, stream_mapping.stream,
                                           stream_mapping.function),
                                   f"mapping:{stream_mapping.name}:"))
        producers += [SimProducer(stream_config.name, p.arrivals, p,
                                  f"stream:{stream_config.name}:producer:{i}",
                                  f"stream:{stream_config.name}:keys:{i}")
                      for i, p in enumerate(stream_load.producers)]
    world_topics = tuple(
        SimTopic(t, _messages(load.topics.get(t.name, QueueLoad())),
                 load.topics.get(t.name, QueueLoad()).backlog, f"topic:{t.name}:")
        for t in topics)
    return World(
        load.seed, load.duration, load.bucket, app.account,
        functions=tuple(functions), queues=tuple(queues), streams=tuple(streams),
        topics=world_topics, mappings=tuple(mappings), producers=tuple(producers),
        scenario=_plain_form(app, load), breakers=dict(app.breakers),
        semaphores=dict(app.semaphores),
    )


def _messages(carried: QueueLoad) -> Messages:
    return Messages(carried.message_size, carried.bodies, carried.groups,
                    carried.hot_group_share)


def _sim_producers(target: str, specs: Iterable[Any], kind: str) -> list[SimProducer]:
    return [SimProducer(target, p, None, f"{kind}:{target}:producer:{i}")
            for i, p in enumerate(specs)]


def _plain_form(app: App, load: Load) -> dict[str, Any]:
    """What a world's result repeats as its ``scenario``: the run's keys and the App's
    elements by name."""
    return {
        "name": load.name or (app.name if app.name != _DEFAULT_APP_NAME else ""),
        "description": load.description,
        "seed": load.seed,
        "duration": load.duration,
        "bucket": load.bucket,
        "app": {
            "queues": sorted(app.queues),
            "streams": sorted(app.streams),
            "topics": sorted(app.topics),
            "functions": sorted(app.functions),
            "mappings": [*(m.name for m in app.mappings),
                         *(m.name for m in app.stream_mappings)],
        },
        "account": {"concurrency_limit": app.account.concurrency_limit,
                    "min_unreserved": app.account.min_unreserved},
    }


# ---------------------------------------------------------------------- checks


def _check_names(app: App, load: Load) -> None:
    """Refuse a load naming what the App does not have."""
    for section, names, have, what in (
        ("queues", load.queues, app.queues, "queue"),
        ("streams", load.streams, app.streams, "stream"),
        ("topics", load.topics, app.topics, "topic"),
        ("functions", load.functions, app.functions, "function"),
    ):
        for name in names:
            if name not in have:
                raise _unknown(load, section, name, what, list(have))
        mapped = ({m.queue for m in app.mappings} if section == "queues" else
                  {m.stream for m in app.stream_mappings} if section == "streams" else None)
        for name in names:
            if mapped is not None and name not in mapped:
                raise ScenarioError(f"{section}.{name}", None, "", load.context, message=(
                    f"{section}.{name}: the App maps no function to {what} {name!r}, so "
                    "nothing would read what arrives there"))
        if section == "queues":
            for name, queue_load in load.queues.items():
                if app.topics and any(name in t.subscribers for t in app.topics.values()) \
                        and _carries_messages(queue_load):
                    raise ScenarioError(f"queues.{name}", None, "", load.context, message=(
                        f"queues.{name}: a topic delivers to this queue: give "
                        "message_size, bodies and groups under [topics.NAME]"))
    sources = {**{m.queue: m.name for m in app.mappings},
               **{m.stream: m.name for m in app.stream_mappings}}
    mapping_names = [m.name for m in app.mappings] + [m.name for m in app.stream_mappings]
    for key in load.pauses:
        if key not in sources and key not in mapping_names:
            raise _unknown(load, "mappings", key, "mapping (SOURCE or SOURCE->FUNCTION)",
                           mapping_names)


def _carries_messages(queue_load: QueueLoad) -> bool:
    default = QueueLoad()
    return any(getattr(queue_load, key) != getattr(default, key)
               for key in ("message_size", "bodies", "groups", "hot_group_share"))


def _unknown(load: Load, section: str, name: str, what: str,
             known: list[str]) -> ScenarioError:
    has = f"its {section}: {', '.join(known)}" if known else f"it has no {section}"
    return ScenarioError(f"{section}.{name}", None, "", load.context,
                         message=f"{section}.{name}: the App has no {what} {name!r} ({has})")


def _refuse_groups(load: Load, section: str, name: str, messages: QueueLoad) -> None:
    for key, default in (("groups", 1), ("hot_group_share", 0.0)):
        if getattr(messages, key) != default:
            raise ScenarioError(f"{section}.{name}.{key}", getattr(messages, key),
                                "only for a FIFO queue or topic (a name ending in '.fifo')",
                                load.context)


def _pauses(load: Load, source: str, function: str) -> tuple[Pause, ...]:
    """A mapping's pauses, under ``SOURCE->FUNCTION`` or ``SOURCE`` (one mapping reads a
    source: :func:`_check_runnable`)."""
    return load.pauses.get(f"{source}->{function}", load.pauses.get(source, ()))

