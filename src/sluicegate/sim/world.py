"""What the simulator runs: an App plus a load, as one value (:class:`World`).

The one event loop (:mod:`sluicegate.sim.driver`) takes a :class:`World` and nothing
else. A world holds the App's side as the core's own configuration objects (the account's
:class:`~sluicegate.core.config.AccountConfig`, each queue's
:class:`~sluicegate.core.config.QueueConfig`, each stream's
:class:`~sluicegate.core.streams.StreamConfig`, each topic's
:class:`~sluicegate.core.config.TopicConfig`, each function's
:class:`~sluicegate.core.config.FunctionConfig`, each mapping's
:class:`~sluicegate.core.config.MappingConfig` or
:class:`~sluicegate.core.streams.StreamMappingConfig`), never copies of them, and beside
them what only the simulator must be told: how each function behaves (durations, cold
starts, error windows, its downstream), what the messages carry, the backlogs, poison
records, the producers and their arrival processes, pauses, the run's seed, length and
bucket.

There is one path to a world: :func:`app_world`, from an :class:`~sluicegate.app.App`
and a :class:`~sluicegate.sim.load.Load`. A scenario of any kind (a queue
:class:`Scenario`, a :class:`StreamScenario`, a :class:`TopicScenario`) takes it too:
:func:`app_and_load` reads it as the App it declares (its mapping is already the core's
configuration) and the load it describes, and :func:`to_world` puts them through
:func:`app_world` with the scenario's plain form for the result to repeat.

Random streams. A run draws from seeded streams named by purpose (``durations``,
``cold-starts``, ``errors``, ``downstream`` for a function; ``polls`` for a queue
mapping's long polls; ``groups`` and ``bodies`` for what a queue's or a topic's messages
carry; a producer's arrivals and, on a stream, partition keys). Each element's ``seeds``
is the prefix of its streams' names, given by one rule (:class:`_Names`) from the App's
shape: unprefixed for one mapping, ``subscriber:NAME:`` for a topic's subscribers,
named after each element otherwise, so that adding an element does not change the draws
of the others, and each scenario kind keeps the names it always had (presets give the
same output byte for byte).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from sluicegate.app import App, Function
from sluicegate.core.async_events import AsyncConfig, Destination, async_queue, async_queue_config
from sluicegate.core.breaker import BreakerConfig
from sluicegate.core.buses import bus_queue
from sluicegate.core.config import (
    AccountConfig,
    FunctionConfig,
    MappingConfig,
    QueueConfig,
    SemaphoreConfig,
    TopicConfig,
)
from sluicegate.core.streams import StreamConfig, StreamMappingConfig
from sluicegate.sim.load import (
    FunctionLoad,
    Load,
    QueueLoad,
    StreamLoad,
    async_reach,
    check_fits,
    has_async,
    mapped_topics,
    pauses_of,
    refuse_load_groups,
)
from sluicegate.sim.scenario import (
    DEFAULT_BUCKET,
    DEFAULT_COLD_START,
    DEFAULT_DURATION,
    DEFAULT_FUNCTION_DURATION,
    DEFAULT_MESSAGE_SIZE,
    DEFAULT_SEED,
    ENVIRONMENT_IDLE_TIMEOUT,
    Distribution,
    DownstreamSpec,
    ErrorWindow,
    Fixed,
    Pause,
    ProducerSpec,
    QueueSpec,
    Scenario,
)
from sluicegate.sim.stream_scenario import (
    DEFAULT_RECORD_SIZE,
    PoisonSpec,
    StreamProducerSpec,
    StreamScenario,
)
from sluicegate.sim.topic_scenario import TopicScenario
from sluicegate.store.values import NewMessage

__all__ = [
    "AcceptedEvent",
    "Messages",
    "SimBus",
    "SimFunction",
    "SimMapping",
    "SimProducer",
    "SimQueue",
    "SimRequests",
    "SimStream",
    "SimTopic",
    "World",
    "app_and_load",
    "app_world",
    "scenario_kind_of",
    "to_world",
]


_DEFAULT_DURATION: Distribution = Fixed(DEFAULT_FUNCTION_DURATION)
_DEFAULT_COLD_START: Distribution = Fixed(DEFAULT_COLD_START)


@dataclass(frozen=True, slots=True)
class Messages:
    """What each message sent to a queue or published to a topic carries.

    Attributes:
        size: bytes of a message's body and attributes; with the record overhead it counts
            against the 6 MB invocation payload.
        bodies: bodies the messages carry, each message drawing one at random (empty:
            every body is empty); what a mapping's ``filter_criteria`` reads.
        groups: FIFO only: message groups the messages spread over (each picks one at
            random).
        hot_group_share: FIFO only: the share of messages that all go to group ``g0``.
    """

    size: int = DEFAULT_MESSAGE_SIZE
    bodies: tuple[str, ...] = ()
    groups: int = 1
    hot_group_share: float = 0.0


@dataclass(frozen=True, slots=True)
class SimFunction:
    """A function of the App and how it behaves when invoked.

    Attributes:
        config: the core's configuration (name, timeout, reserved concurrency).
        duration: how long a handler run takes (seconds).
        duration_per_record: seconds added per record of the batch.
        cold_start: the init phase of a new execution environment.
        idle_timeout: seconds an idle execution environment stays warm.
        errors: injected error windows.
        downstream: the dependency every invocation calls, or ``None``.
        seeds: prefix of its random streams' names.
    """

    config: FunctionConfig
    duration: Distribution = _DEFAULT_DURATION
    duration_per_record: float = 0.0
    cold_start: Distribution = _DEFAULT_COLD_START
    idle_timeout: float = ENVIRONMENT_IDLE_TIMEOUT
    errors: tuple[ErrorWindow, ...] = ()
    downstream: DownstreamSpec | None = None
    seeds: str = ""


@dataclass(frozen=True, slots=True)
class SimQueue:
    """A queue of the App (standard or FIFO, as its name says).

    Attributes:
        config: the core's configuration of the queue (its dead-letter queue named in it).
        dead_letter_queue: the dead-letter queue's configuration, or ``None``.
        messages: what the messages sent straight to it carry (a topic's publishes
            carry the topic's).
        backlog: messages in it at t=0 (sent straight to it).
        seeds: prefix of its random streams' names (``groups``, ``bodies``).
        id_prefix: prefix of the deduplication ids of its FIFO sends.
    """

    config: QueueConfig
    dead_letter_queue: QueueConfig | None = None
    messages: Messages = field(default_factory=Messages)
    backlog: int = 0
    seeds: str = ""
    id_prefix: str = ""


@dataclass(frozen=True, slots=True)
class SimStream:
    """A stream of the App.

    Attributes:
        config: the core's configuration (name, shards, retention).
        record_size: bytes of each record's data (sent base64 encoded).
        poison: poison records put into it, in time order.
    """

    config: StreamConfig
    record_size: int = DEFAULT_RECORD_SIZE
    poison: tuple[PoisonSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class SimTopic:
    """A topic of the App: a publish reaches every queue of ``config.subscribers``, in
    that order.

    Attributes:
        config: the core's configuration (name, subscribed queues).
        messages: what its publishes carry (the same in every queue).
        backlog: messages published at t=0.
        seeds: prefix of its random streams' names (``groups``, ``bodies``).
    """

    config: TopicConfig
    messages: Messages = field(default_factory=Messages)
    backlog: int = 0
    seeds: str = ""


@dataclass(frozen=True, slots=True)
class SimMapping:
    """An event source mapping of the App.

    Attributes:
        config: the core's configuration: a :class:`MappingConfig` (queue) or a
            :class:`StreamMappingConfig` (stream); its source and function are named
            in it.
        name: the mapping's label in results (``""`` in a one-mapping world).
        pauses: disable/enable windows.
        seeds: prefix of its random streams' names (``polls``).
        events: for a function's internal queue of asynchronous invocations (an
            asynchronous lane), the function's asynchronous settings: ``config`` is then
            the mapping of that queue (``AsyncConfig.mapping``), which the core's
            :class:`~sluicegate.core.async_events.AsyncEventMapping` wraps; ``None``
            for a mapping of the App.
    """

    config: MappingConfig | StreamMappingConfig
    name: str = ""
    pauses: tuple[Pause, ...] = ()
    seeds: str = ""
    events: AsyncConfig | None = None


@dataclass(frozen=True, slots=True)
class SimProducer:
    """A source of messages (or records) and when it sends them.

    Attributes:
        target: the name of the queue, topic or stream it sends to.
        arrivals: when it sends and how many at a time.
        keys: its partition keys, for a stream (``None`` otherwise).
        seed: the name of its arrivals' random stream.
        keys_seed: the name of its partition keys' random stream (streams).
    """

    target: str
    arrivals: ProducerSpec
    keys: StreamProducerSpec | None = None
    seed: str = "producer:0"
    keys_seed: str = "keys:0"


@dataclass(frozen=True, slots=True)
class SimBus:
    """An event bus the load puts events on.

    Attributes:
        name: the bus's name; its producers send to ``bus:NAME``.
        targets: where each event put goes, in order: ``function`` (accepted into its
            internal queue), ``queue`` (sent as a message) and ``topic`` (published)
            destinations, a bus target's own deliveries taken in place of it. Every
            pattern rule of the bus is taken to match every event (the simulator draws no
            event contents).
    """

    name: str
    targets: tuple[Destination, ...]


@dataclass(frozen=True, slots=True)
class SimRequests:
    """Synchronous invocations (``RequestResponse``) of one function.

    Attributes:
        function: the function's name.
        producers: when requests come (each ``target`` is the function's name).
    """

    function: str
    producers: tuple[SimProducer, ...]


class AcceptedEvent(NewMessage):
    """An event accepted into a simulated function's internal queue: the message every
    event accepted at one instant shares, carrying that instant (``accepted``, seconds),
    which the core reads as the event's age (a store's message has its
    ``sent_timestamp``)."""

    __slots__ = ("accepted",)

    def __init__(self, accepted: float) -> None:
        super().__init__("", "", {}, 0, "sluicegate-sim")
        object.__setattr__(self, "accepted", accepted)


@dataclass(frozen=True, slots=True)
class World:
    """An App plus a load: everything one run needs.

    Attributes:
        seed: seeds every random stream of the run.
        duration: simulated seconds.
        bucket: seconds per series entry.
        account: the concurrency pool every function draws from.
        functions, queues, streams, topics, mappings, producers: the elements, in the
            order the results list them (and events at one instant are made).
        scenario: the plain form the result repeats (a scenario's ``to_dict()``).
        breakers: the App's shared breakers by name (``app.breakers``), for the mappings
            whose ``breaker=`` names one.
        semaphores: the App's semaphores by name (``app.semaphores``), for the mappings
            whose ``semaphores=`` names them.
        buses: the event buses the load puts events on.
        requests: the functions the load invokes synchronously.
    """

    seed: int = DEFAULT_SEED
    duration: float = DEFAULT_DURATION
    bucket: float = DEFAULT_BUCKET
    account: AccountConfig = field(default_factory=AccountConfig)
    functions: tuple[SimFunction, ...] = ()
    queues: tuple[SimQueue, ...] = ()
    streams: tuple[SimStream, ...] = ()
    topics: tuple[SimTopic, ...] = ()
    mappings: tuple[SimMapping, ...] = ()
    producers: tuple[SimProducer, ...] = ()
    scenario: dict[str, Any] = field(default_factory=dict)
    breakers: dict[str, BreakerConfig] = field(default_factory=dict)
    semaphores: dict[str, SemaphoreConfig] = field(default_factory=dict)
    buses: tuple[SimBus, ...] = ()
    requests: tuple[SimRequests, ...] = ()

    def function(self, name: str) -> SimFunction:
        """The function called ``name``."""
        for f in self.functions:
            if f.config.name == name:
                return f
        raise KeyError(f"no function {name!r} in the world")

    def queue(self, name: str) -> SimQueue:
        """The queue called ``name``."""
        for q in self.queues:
            if q.config.name == name:
                return q
        raise KeyError(f"no queue {name!r} in the world")

    def stream(self, name: str) -> SimStream:
        """The stream called ``name``."""
        for s in self.streams:
            if s.config.name == name:
                return s
        raise KeyError(f"no stream {name!r} in the world")


# ---------------------------------------------------------------------- random streams


@dataclass(frozen=True, slots=True)
class _Names:
    """The one rule naming each element's random streams (and a queue mapping's label in
    results and its FIFO deduplication ids), by the shape of the App.

    - one mapping (``lone``): every element draws from unprefixed streams (``durations``,
      ``polls``, ``producer:0``, ``keys:0``) and the mapping has no label;
    - one topic whose subscribed queues each have one mapping, and nothing else
      (``labels``): each subscriber's queue, function and mapping draw from
      ``subscriber:LABEL:`` streams, its own producers from
      ``subscriber:LABEL:producer:N``, the topic and its producers from unprefixed ones;
    - anything else: each element from streams named after it (``function:NAME:``,
      ``queue:NAME:``, ``mapping:SOURCE->FUNCTION:``, ``topic:NAME:``,
      ``stream:NAME:producer:N``, ...), so that adding one does not change another's
      draws.

    The first two are the shapes a queue, stream or topic scenario makes: their names are
    the ones those scenarios always had, so their output does not change.
    """

    lone: bool = False
    labels: dict[str, str] | None = None
    """Each subscribed queue's label (its subscriber's name), in the topic shape."""

    def function(self, name: str, queue: str | None) -> str:
        if self.lone:
            return ""
        if self.labels is not None and queue is not None:
            return f"subscriber:{self.labels[queue]}:"
        return f"function:{name}:"

    def queue(self, name: str) -> tuple[str, str]:
        """The prefix of a queue's streams and of its FIFO deduplication ids."""
        if self.lone:
            return "", ""
        if self.labels is not None:
            return f"subscriber:{self.labels[name]}:", f"{self.labels[name]}/"
        return f"queue:{name}:", f"{name}/"

    def mapping(self, config: MappingConfig | StreamMappingConfig) -> tuple[str, str]:
        """A mapping's label in results and the prefix of its streams."""
        if self.lone:
            return "", ""
        if self.labels is not None and isinstance(config, MappingConfig):
            label = self.labels[config.queue]
            return label, f"subscriber:{label}:"
        return config.name, f"mapping:{config.name}:"

    def producer(self, kind: str, target: str, index: int) -> str:
        if self.lone or (self.labels is not None and kind == "topic"):
            return f"producer:{index}"
        if self.labels is not None:
            return f"subscriber:{self.labels[target]}:producer:{index}"
        return f"{kind}:{target}:producer:{index}"

    def keys(self, stream: str, index: int) -> str:
        return f"keys:{index}" if self.lone else f"stream:{stream}:keys:{index}"

    def topic(self, name: str) -> str:
        return "" if self.lone or self.labels is not None else f"topic:{name}:"


def scenario_kind_of(app: App, load: Load | None = None
                     ) -> Literal["queue", "stream", "topic"] | None:
    """The kind of scenario that holds ``app``, or ``None``: ``queue`` for one queue
    mapping, ``stream`` for one stream mapping, ``topic`` for one topic whose subscribed
    queues each have one mapping (and no other mapping); never when a function nothing
    invokes holds reserved concurrency (it still shrinks the unreserved pool, and no
    scenario has such a function), nor when a mapping names a semaphore (the App's, which
    no scenario holds), nor when ``load`` (or a mapped topic's function subscriber) gives
    a function asynchronous or synchronous invocations (:func:`~sluicegate.sim.load.has_async`),
    which no scenario holds either."""
    mappings: list[MappingConfig | StreamMappingConfig] = [*app.mappings,
                                                           *app.stream_mappings]
    invoked = {m.function for m in mappings}
    if any(fn.config.reserved_concurrency for name, fn in app.functions.items()
           if name not in invoked) or any(m.semaphores for m in mappings):
        return None
    if has_async(app, load):
        return None
    topics = mapped_topics(app)
    if len(mappings) == 1 and not topics:
        return "stream" if app.stream_mappings else "queue"
    if (not app.stream_mappings and len(topics) == 1
            and {m.queue for m in app.mappings} == set(topics[0].subscribers)):
        return "topic"
    return None


def _names(app: App, load: Load, topics: list[TopicConfig]) -> _Names:
    """The naming of ``app``'s shape (see :class:`_Names`)."""
    kind = scenario_kind_of(app, load)
    if kind == "topic":
        return _Names(labels={q: load.labels.get(q, q) for q in topics[0].subscribers})
    return _Names(lone=kind is not None)


# ---------------------------------------------------------------------- App + load


def app_world(app: App, load: Load, *, plain: dict[str, Any] | None = None) -> World:
    """``app`` under ``load`` as the event loop's input: the one path from an App and a
    load to a :class:`World`, whatever the App holds (scenario files come this way too,
    through :func:`app_and_load`). Every mapped source with its mapping, the topic
    delivering to them, the functions (every one of the App, each registered in the
    pool: a reservation counts even for a function nothing invokes; in a scenario's
    shape, the invoked ones) and the load's producers. A queue a topic delivers to
    carries the topic's messages, its own producers' included. Random streams are named
    by :class:`_Names`.

    Parameters:
        plain: the plain form the result repeats (a scenario's ``to_dict()``); ``None``:
            the run's keys and the App's elements by name.

    Raises:
        ScenarioError: the load does not fit the App, or the App has what the simulator
            cannot run (:func:`~sluicegate.sim.load.check_fits`).
    """
    check_fits(app, load)
    names = _names(app, load, mapped_topics(app))
    reach = async_reach(app, load)
    topics = [app.topics[name] for name in reach.topics]
    carried = {t.name: load.topics.get(t.name, QueueLoad()) for t in topics}
    topic_of = {q: t.name for t in topics for q in t.subscribers}
    queue_mappings = list(app.mappings)
    if names.labels is not None:  # in the order the topic delivers
        order = list(topics[0].subscribers)
        queue_mappings.sort(key=lambda m: order.index(m.queue))
    invoked: dict[str, str | None] = {m.function: m.queue for m in queue_mappings}
    invoked.update({m.function: None for m in app.stream_mappings})
    functions = []
    for name, fn in app.functions.items():
        if name not in invoked and (names.lone or names.labels is not None):
            continue
        behaviour = load.functions.get(name, FunctionLoad())
        m = behaviour.model
        functions.append(SimFunction(fn.config, m.duration, m.duration_per_record,
                                     m.cold_start, m.idle_timeout, m.errors,
                                     behaviour.downstream,
                                     names.function(name, invoked.get(name))))
    if names.labels is not None:
        order = [m.function for m in queue_mappings]
        functions.sort(key=lambda f: order.index(f.config.name))
    queues, streams, mappings, producers = [], [], [], []
    for topic in topics:
        if not topic.fifo:
            refuse_load_groups(load, "topics", topic.name, carried[topic.name])
        producers += _producers(names, "topic", topic.name, carried[topic.name].producers)
    for mapping in queue_mappings:
        config = app.queues[mapping.queue]
        queue_load = load.queues.get(mapping.queue, QueueLoad())
        topic_name = topic_of.get(mapping.queue)
        messages = queue_load if topic_name is None else carried[topic_name]
        if not config.fifo and topic_name is None:
            refuse_load_groups(load, "queues", mapping.queue, queue_load)
        dlq = config.dead_letter_queue
        seeds, id_prefix = names.queue(config.name)
        queues.append(SimQueue(config, None if dlq is None else app.queues[dlq],
                               _messages(messages), queue_load.backlog, seeds, id_prefix))
        label, seeds = names.mapping(mapping)
        mappings.append(SimMapping(mapping, label,
                                   pauses_of(load, mapping.queue, mapping.function), seeds))
        producers += _producers(names, "queue", config.name, queue_load.producers)
    for stream_mapping in app.stream_mappings:
        stream_config = app.streams[stream_mapping.stream]
        stream_load = load.streams.get(stream_mapping.stream, StreamLoad())
        streams.append(SimStream(stream_config, stream_load.record_size,
                                 stream_load.poison))
        label, seeds = names.mapping(stream_mapping)
        mappings.append(SimMapping(stream_mapping, label,
                                   pauses_of(load, stream_mapping.stream,
                                             stream_mapping.function), seeds))
        producers += [SimProducer(stream_config.name, p.arrivals, p,
                                  names.producer("stream", stream_config.name, i),
                                  names.keys(stream_config.name, i))
                      for i, p in enumerate(stream_load.producers)]
    for name in reach.functions:  # each function's internal queue: an asynchronous lane
        fn = app.functions[name]
        config = async_queue_config(fn.config)
        queues.append(SimQueue(config, seeds=f"queue:{config.name}:",
                               id_prefix=f"{config.name}/"))
        mappings.append(SimMapping(fn.async_config.mapping, config.name,
                                   seeds=f"mapping:{config.name}:", events=fn.async_config))
        events = load.functions[name].events if name in load.functions else ()
        producers += [replace(p, target=async_queue(name))
                      for p in _producers(names, "events", name, events)]
    buses = []
    for name, targets in reach.buses.items():
        buses.append(SimBus(name, targets))
        producers += [replace(p, target=bus_queue(name))
                      for p in _producers(names, "bus", name, load.buses[name].producers)]
    requests = tuple(
        SimRequests(name, tuple(_producers(names, "requests", name,
                                           load.functions[name].requests)))
        for name in reach.requests)
    world_topics = tuple(SimTopic(t, _messages(carried[t.name]), carried[t.name].backlog,
                                  names.topic(t.name)) for t in topics)
    return World(
        load.seed, load.duration, load.bucket, app.account,
        functions=tuple(functions), queues=tuple(queues), streams=tuple(streams),
        topics=world_topics, mappings=tuple(mappings), producers=tuple(producers),
        scenario=_plain_form(app, load) if plain is None else plain,
        breakers=dict(app.breakers), semaphores=dict(app.semaphores),
        buses=tuple(buses), requests=requests,
    )


def _messages(carried: QueueLoad) -> Messages:
    return Messages(carried.message_size, carried.bodies, carried.groups,
                    carried.hot_group_share)


def _producers(names: _Names, kind: str, target: str, specs: Iterable[ProducerSpec]
               ) -> list[SimProducer]:
    return [SimProducer(target, p, None, names.producer(kind, target, i))
            for i, p in enumerate(specs)]


_DEFAULT_APP_NAME = App().name
"""The name of an App that was given none: not shown as the run's title."""


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
            **({"buses": sorted(app.buses)} if app.buses else {}),
        },
        "account": {"concurrency_limit": app.account.concurrency_limit,
                    "min_unreserved": app.account.min_unreserved},
    }


# ---------------------------------------------------------------------- scenarios


def _simulated(event: Any, context: Any) -> None:
    """The handler of a scenario's function: the simulator models it, never calls it."""
    raise RuntimeError("a scenario's function is simulated, not run")


def _add_queue(app: App, scenario: Scenario) -> None:
    config = scenario.queue_config()
    app.queues[config.name] = config
    dlq = scenario.dead_letter_queue_config()
    if dlq is not None:
        app.queues[dlq.name] = dlq


def _add_function(app: App, load: dict[str, FunctionLoad],
                  scenario: Scenario | StreamScenario) -> None:
    config = scenario.function_config()
    app.functions[config.name] = Function(config, _simulated)
    load[config.name] = FunctionLoad(scenario.function, scenario.downstream)


def _queue_load(queue: QueueSpec, producers: tuple[ProducerSpec, ...]) -> QueueLoad:
    return QueueLoad(queue.backlog, producers, queue.message_size, queue.bodies,
                     queue.groups, queue.hot_group_share)


def app_and_load(scenario: Scenario | StreamScenario | TopicScenario) -> tuple[App, Load]:
    """A scenario as what it describes: an App (its queues, stream, topic, functions with
    their timeout and reserved concurrency, mappings with their core configurations, the
    account) and a load (producers, backlogs, messages, handler behaviour, downstreams,
    pauses, the run's seed, length and bucket; a topic's subscriber names as labels)."""
    account = scenario.account
    app = App(account.concurrency_limit, account.min_unreserved)
    functions: dict[str, FunctionLoad] = {}
    if isinstance(scenario, StreamScenario):
        stream = scenario.stream_config()
        app.streams[stream.name] = stream
        _add_function(app, functions, scenario)
        app.stream_mappings.append(scenario.mapping)
        s = scenario.stream
        return app, _load(scenario, functions=functions,
                         streams={stream.name: StreamLoad(scenario.producers, s.record_size,
                                                          s.poison)},
                         pauses={stream.name: scenario.pauses})
    singles = ([scenario.subscriber_scenario(i) for i in range(len(scenario.subscribers))]
               if isinstance(scenario, TopicScenario) else [scenario])
    queues, pauses, labels = {}, {}, {}
    for single in singles:
        _add_queue(app, single)
        _add_function(app, functions, single)
        app.mappings.append(single.mapping)
        queue = single.queue.queue_name
        queues[queue] = _queue_load(single.queue, single.producers)
        pauses[queue] = single.pauses
        labels[queue] = single.name
    topics = {}
    if isinstance(scenario, TopicScenario):
        config = scenario.topic_config()
        app.topics[config.name] = config
        t = scenario.topic
        topics[config.name] = QueueLoad(t.backlog, scenario.producers, t.message_size,
                                        t.bodies, t.groups, t.hot_group_share)
        # the subscribers' queues carry the topic's messages
        queues = {q: replace(ql, message_size=QueueLoad().message_size, bodies=(),
                             groups=1, hot_group_share=0.0) for q, ql in queues.items()}
    else:
        labels = {}
    return app, _load(scenario, queues=queues, topics=topics, functions=functions,
                     pauses=pauses, labels=labels)


def _load(scenario: Scenario | StreamScenario | TopicScenario, **sections: Any) -> Load:
    """A load with the scenario's run keys and ``sections``."""
    return Load(scenario.name, scenario.description, scenario.seed, scenario.duration,
                scenario.bucket, **sections)


def to_world(scenario: World | Scenario | StreamScenario | TopicScenario) -> World:
    """Any scenario kind as a world, through its App and load (a world as it is); the
    result repeats the scenario's plain form."""
    if isinstance(scenario, World):
        return scenario
    app, load = app_and_load(scenario)
    return app_world(app, load, plain=scenario.to_dict())
