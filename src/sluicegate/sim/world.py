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

Every scenario kind is a world (:func:`to_world`): a queue :class:`Scenario` (one queue,
one function, one mapping), a :class:`StreamScenario` (one stream, one function, one
mapping) and a :class:`TopicScenario` (one topic, a queue, function and mapping per
subscriber). An App and a load file make one too, with any number of each, all in one
account pool.

Random streams. A run draws from seeded streams named by purpose (``durations``,
``cold-starts``, ``errors``, ``downstream`` for a function; ``polls`` for a queue
mapping's long polls; ``groups`` and ``bodies`` for what a queue's or a topic's messages
carry; a producer's arrivals and, on a stream, partition keys). Each element's ``seeds``
is the prefix of its streams' names, so that adding an element does not change the draws
of the others; the translations keep the names each scenario kind always had, so that
presets give the same output byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sluicegate.core.breaker import BreakerConfig
from sluicegate.core.config import (
    AccountConfig,
    FunctionConfig,
    MappingConfig,
    QueueConfig,
    SemaphoreConfig,
    TopicConfig,
)
from sluicegate.core.streams import StreamConfig, StreamMappingConfig
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
    Scenario,
)
from sluicegate.sim.stream_scenario import (
    DEFAULT_RECORD_SIZE,
    PoisonSpec,
    StreamProducerSpec,
    StreamScenario,
)
from sluicegate.sim.topic_scenario import TopicScenario

__all__ = [
    "Messages",
    "SimFunction",
    "SimMapping",
    "SimProducer",
    "SimQueue",
    "SimStream",
    "SimTopic",
    "World",
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
    """

    config: MappingConfig | StreamMappingConfig
    name: str = ""
    pauses: tuple[Pause, ...] = ()
    seeds: str = ""


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


# ---------------------------------------------------------------------- translations


def _function(scenario: Scenario | StreamScenario, seeds: str = "") -> SimFunction:
    f = scenario.function
    return SimFunction(scenario.function_config(), f.duration, f.duration_per_record,
                       f.cold_start, f.idle_timeout, f.errors, scenario.downstream, seeds)


def _queue(scenario: Scenario, seeds: str = "", id_prefix: str = "") -> SimQueue:
    q = scenario.queue
    return SimQueue(scenario.queue_config(), scenario.dead_letter_queue_config(),
                    Messages(q.message_size, q.bodies, q.groups, q.hot_group_share),
                    q.backlog, seeds, id_prefix)


def _producers(target: str, specs: tuple[ProducerSpec, ...], seeds: str = ""
               ) -> tuple[SimProducer, ...]:
    return tuple(SimProducer(target, p, None, f"{seeds}producer:{i}")
                 for i, p in enumerate(specs))


def queue_world(scenario: Scenario) -> World:
    """A queue scenario as a world: one queue, one function, one mapping."""
    queue = _queue(scenario)
    return World(
        scenario.seed, scenario.duration, scenario.bucket, scenario.account_config(),
        functions=(_function(scenario),),
        queues=(queue,),
        mappings=(SimMapping(scenario.mapping_config(), "", scenario.mapping.pauses),),
        producers=_producers(queue.config.name, scenario.producers),
        scenario=scenario.to_dict(),
    )


def stream_world(scenario: StreamScenario) -> World:
    """A stream scenario as a world: one stream, one function, one mapping."""
    s = scenario.stream
    config = scenario.stream_config()
    return World(
        scenario.seed, scenario.duration, scenario.bucket, scenario.account_config(),
        functions=(_function(scenario),),
        streams=(SimStream(config, s.record_size, s.poison),),
        mappings=(SimMapping(scenario.mapping_config(), "", scenario.mapping.pauses),),
        producers=tuple(SimProducer(config.name, p.arrivals, p, f"producer:{i}", f"keys:{i}")
                        for i, p in enumerate(scenario.producers)),
        scenario=scenario.to_dict(),
    )


def topic_world(scenario: TopicScenario) -> World:
    """A topic scenario as a world: the topic, and per subscriber its queue, function and
    mapping (labelled with its name, drawing from streams named after it) and its own
    producers; the topic's producers first."""
    t = scenario.topic
    topic = SimTopic(scenario.topic_config(),
                     Messages(t.message_size, t.bodies, t.groups, t.hot_group_share),
                     t.backlog)
    functions, queues, mappings = [], [], []
    producers = list(_producers(topic.config.name, scenario.producers))
    for index, subscriber in enumerate(scenario.subscribers):
        single = scenario.subscriber_scenario(index)
        seeds = f"subscriber:{subscriber.name}:"
        functions.append(_function(single, seeds))
        queue = _queue(single, seeds, f"{subscriber.name}/")
        queues.append(queue)
        mappings.append(SimMapping(single.mapping_config(), subscriber.name,
                                   single.mapping.pauses, seeds))
        producers.extend(_producers(queue.config.name, single.producers, seeds))
    return World(
        scenario.seed, scenario.duration, scenario.bucket, scenario.account_config(),
        functions=tuple(functions), queues=tuple(queues), topics=(topic,),
        mappings=tuple(mappings), producers=tuple(producers), scenario=scenario.to_dict(),
    )


def to_world(scenario: World | Scenario | StreamScenario | TopicScenario) -> World:
    """Any scenario kind as a world (a world as it is)."""
    if isinstance(scenario, World):
        return scenario
    if isinstance(scenario, StreamScenario):
        return stream_world(scenario)
    if isinstance(scenario, TopicScenario):
        return topic_world(scenario)
    return queue_world(scenario)
