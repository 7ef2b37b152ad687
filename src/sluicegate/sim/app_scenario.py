"""An App plus a load: the scenario that simulates the user's own App.

:func:`app_scenario` puts an :class:`~sluicegate.app.App` (what exists, with the
settings the runtime uses) and a :class:`~sluicegate.sim.load.Load` (what arrives and how
handlers behave) together into the scenario the simulator runs:

- one queue mapping: a queue :class:`~sluicegate.sim.scenario.Scenario`;
- one stream mapping: a :class:`~sluicegate.sim.stream_scenario.StreamScenario`;
- a topic whose subscribed queues each have one mapping (and no other mapping): a
  :class:`~sluicegate.sim.topic_scenario.TopicScenario`, every function in the App's
  one account pool.

The App's settings are taken as written: a queue's visibility timeout, delay,
``max_receive_count`` and FIFO-ness; a function's timeout and reserved concurrency; every
setting of a mapping (its filter criteria included); the account's concurrency and
``min_unreserved``. The load's names must be the App's: a load naming a queue, stream,
topic, function or mapping the App does not have is refused, with the names it has.

The simulated dead-letter queue is named after its queue (``NAME-dlq``) whatever the App
names it: only its count is reported. An App whose mappings the scenario kinds cannot
hold together (streams and queues, several streams, several queues without a topic
fanning out to them) is refused with a one-line error saying so.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sluicegate.app import App
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

__all__ = ["app_scenario", "load_app_scenario"]

_DEFAULT_APP_NAME = App().name
"""The name of an App that was given none: not shown as the run's title."""


def load_app_scenario(app: App, load: str | Path | Load, *,
                      overrides: Iterable[str] = ()
                      ) -> Scenario | StreamScenario | TopicScenario:
    """Read the load file ``load`` (with ``overrides`` applied to it) and put it together
    with ``app`` (see :func:`app_scenario`).

    Raises:
        ScenarioError: a bad load file, or one that does not fit the App; one line.
    """
    if not isinstance(load, Load):
        load = load_load(load, overrides=overrides)
    return app_scenario(app, load)


def app_scenario(app: App, load: Load) -> Scenario | StreamScenario | TopicScenario:
    """The scenario simulating ``app`` under ``load``.

    Raises:
        ScenarioError: the load names what the App does not have, or the App's mappings
            do not fit one scenario (see the module's docstring).
    """
    _check_names(app, load)
    # the App's own name when it has one (the CLI falls back on the App file's)
    name = load.name or (app.name if app.name != _DEFAULT_APP_NAME else "")
    account = AccountSpec(app.account.concurrency_limit, app.account.min_unreserved)
    queue_mappings, stream_mappings = list(app.mappings), list(app.stream_mappings)
    context = load.context
    if not queue_mappings and not stream_mappings:
        raise ScenarioError("app", None, "", context,
                            message="the App maps no queue or stream to a function: nothing "
                                    "to simulate")
    if queue_mappings and stream_mappings:
        raise ScenarioError("app", None, "", context, message=(
            f"the App maps {_plural(len(queue_mappings), 'queue')} and "
            f"{_plural(len(stream_mappings), 'stream')}: simulating queues and streams "
            "together is not supported yet"))
    if stream_mappings:
        if len(stream_mappings) > 1:
            raise ScenarioError("app", None, "", context, message=(
                f"the App has {len(stream_mappings)} stream mappings "
                f"({', '.join(m.name for m in stream_mappings)}): one stream mapping at a "
                "time is simulated"))
        return _stream_scenario(app, load, stream_mappings[0], name, account)
    topics = [t for t in app.topics.values()
              if any(m.queue in t.subscribers for m in queue_mappings)]
    if len(queue_mappings) == 1 and not topics:
        mapping = queue_mappings[0]
        queue, function, mapping_spec, producers, downstream = _lane(app, load, mapping)
        return Scenario(load.seed, load.duration, load.bucket, name, load.description,
                        queue, function, mapping_spec, producers, downstream, account)
    if len(topics) != 1:
        what = (f"{len(topics)} topics ({', '.join(t.name for t in topics)}) feeding them"
                if topics else "no topic fanning out to them")
        raise ScenarioError("app", None, "", context, message=(
            f"the App maps {len(queue_mappings)} queues with {what}: several queues are "
            "simulated together as one topic's subscribers"))
    return _topic_scenario(app, load, topics[0].name, queue_mappings, name, account)


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
        pauses=_pauses(app, load, mapping.queue, mapping.function),
        filter_criteria=mapping.filter_criteria.patterns,
    )
    return queue, function, spec, queue_load.producers, downstream


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
    if mapping.filter_criteria:
        raise ScenarioError("app", None, "", load.context, message=(
            f"mapping {mapping.stream}->{mapping.function} has filter_criteria: stream "
            "filters are not simulated yet"))
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
        pauses=_pauses(app, load, mapping.stream, mapping.function),
    )
    return StreamScenario(load.seed, load.duration, load.bucket, name, load.description,
                          stream, function, spec, stream_load.producers, downstream, account)


def _topic_scenario(app: App, load: Load, topic_name: str,
                    mappings: list[MappingConfig], name: str,
                    account: AccountSpec) -> TopicScenario:
    config = app.topics[topic_name]
    outside = [m.name for m in mappings if m.queue not in config.subscribers]
    if outside:
        raise ScenarioError("app", None, "", load.context, message=(
            f"mapping {outside[0]} reads a queue topic {topic_name!r} does not deliver to: "
            "several queues are simulated together as one topic's subscribers"))
    topic_load = load.topics.get(topic_name, QueueLoad())
    subscribers = []
    for queue in config.subscribers:
        mine = [m for m in mappings if m.queue == queue]
        if len(mine) != 1:
            raise ScenarioError("app", None, "", load.context, message=(
                f"queue {queue!r} of topic {topic_name!r} has {len(mine)} mappings: each "
                "subscribed queue is simulated with one mapping"))
        q, f, m, producers, downstream = _lane(app, load, mine[0], topic=topic_load)
        subscribers.append(SubscriberSpec(queue, q, f, m, producers, downstream))
    if not config.name.endswith(".fifo"):
        _refuse_groups(load, "topics", topic_name, topic_load)
    topic = TopicSpec(name=config.name, backlog=topic_load.backlog,
                      message_size=topic_load.message_size, groups=topic_load.groups,
                      hot_group_share=topic_load.hot_group_share, bodies=topic_load.bodies)
    return TopicScenario(load.seed, load.duration, load.bucket, name, load.description,
                         topic, topic_load.producers, tuple(subscribers), account)


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


def _pauses(app: App, load: Load, source: str, function: str) -> tuple[Pause, ...]:
    """A mapping's pauses: under ``SOURCE->FUNCTION``, else under ``SOURCE`` when the
    source has that one mapping."""
    key = f"{source}->{function}"
    if key in load.pauses:
        return load.pauses[key]
    if source in load.pauses:
        count = (sum(m.queue == source for m in app.mappings)
                 + sum(m.stream == source for m in app.stream_mappings))
        if count > 1:
            raise ScenarioError(f"mappings.{source}", None, "", load.context, message=(
                f"mappings.{source}: {source!r} has {count} mappings: name one as "
                f"[mappings.\"{key}\"]"))
        return load.pauses[source]
    return ()


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
