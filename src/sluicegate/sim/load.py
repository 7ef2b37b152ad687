"""Load files: what the simulator must be told about an App it simulates.

An App (``jobs.py``, as ``sluicegate run`` takes it) says what exists: queues, streams,
topics, functions with their timeout and reserved concurrency, mappings with their AWS
settings, the account's pool. It does not say what arrives, how long a handler runs or
when things go wrong: a load file does, in TOML, keyed by the App's names (see
``docs/simulate-your-app.md``)::

    duration = "10m"

    [queues.orders]                       # a queue of the App
    producers = [{ kind = "poisson", rate = 200 }]

    [functions.process]                   # a function of the App
    duration = { distribution = "lognormal", median = "80ms", p99 = "300ms" }

- top level: ``name``, ``description``, ``seed``, ``duration``, ``bucket``, as in a
  scenario;
- ``[queues.NAME]``: ``backlog``, ``producers`` (or ``producer``), and what the messages
  carry: ``message_size``, ``bodies``, FIFO ``groups`` and ``hot_group_share``;
- ``[streams.NAME]``: ``producers`` (with their partition keys), ``record_size`` and
  ``poison`` records;
- ``[topics.NAME]``: ``backlog``, ``producers`` publishing to it and the messages' keys;
- ``[functions.NAME]``: ``duration``, ``duration_per_record``, ``cold_start``,
  ``idle_timeout``, ``errors`` windows and the ``downstream`` it calls (the keys of a
  scenario's ``[function]`` and ``[downstream]``; ``timeout`` and
  ``reserved_concurrency`` are the App's); ``events``, producers of asynchronous
  invocations (``InvocationType=Event``) into the function's internal queue, and
  ``requests``, producers of synchronous ones (``RequestResponse``: each takes a slot of
  the function's concurrency for its run or is throttled, never retried);
- ``[buses.NAME]``: ``producers`` putting events on an event bus of the App: every event
  goes to the targets of every rule of the bus with an event pattern (the simulator draws
  no event contents, so every pattern is taken to match);
- ``[mappings.SOURCE]`` (or ``[mappings."SOURCE->FUNCTION"]``): ``pauses``.

Each key is validated by the parser the scenario files use (:mod:`sluicegate.sim.sections`),
so a load accepts what a scenario accepts. Whether a load fits an App (its names are the
App's, and the App is one the simulator can run) is :func:`check_fits`, which
:func:`~sluicegate.sim.world.app_world` calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sluicegate.app import App
from sluicegate.core.async_events import Destination
from sluicegate.core.config import MappingConfig, TopicConfig
from sluicegate.core.streams import StreamMappingConfig
from sluicegate.sim.schema import ScenarioError, Table
from sluicegate.sim.sections import (
    parse_downstream,
    parse_function_table,
    parse_messages,
    parse_pauses,
    parse_producer,
    parse_producers,
)
from sluicegate.sim.sources import scenario_data
from sluicegate.sim.specs import (
    DEFAULT_BUCKET,
    DEFAULT_DURATION,
    DEFAULT_MESSAGE_SIZE,
    DEFAULT_SEED,
    DownstreamSpec,
    FunctionSpec,
    Pause,
    ProducerSpec,
)
from sluicegate.sim.stream_scenario import (
    DEFAULT_RECORD_SIZE,
    PoisonSpec,
    StreamProducerSpec,
    parse_poison,
    parse_stream_producers,
)

__all__ = [
    "AsyncReach",
    "BusLoad",
    "FunctionLoad",
    "Load",
    "QueueLoad",
    "StreamLoad",
    "async_reach",
    "check_fits",
    "has_async",
    "load_load",
    "mapped_topics",
    "pauses_of",
    "refuse_load_groups",
]

APP_SETTINGS = ("name", "timeout", "reserved_concurrency")
"""Function keys a scenario has and a load file refuses: the App's ``app.function``
sets them."""

_SCENARIO_TABLES = ("queue", "stream", "topic", "function", "mapping", "producer",
                    "producers", "downstream", "account", "subscribers")
"""A scenario's tables, refused in a load with a pointer to what a load writes instead."""


@dataclass(frozen=True, slots=True)
class QueueLoad:
    """What arrives at one queue or topic (``[queues.NAME]``, ``[topics.NAME]``).

    Attributes:
        backlog: messages in the queue (published to the topic) at t=0.
        producers: message sources.
        message_size: bytes of a message's body and attributes.
        bodies: bodies the messages carry, each drawing one (what filters read).
        groups: FIFO only: message groups the messages spread over.
        hot_group_share: FIFO only: share of messages sent to the hot group ``g0``.
    """

    backlog: int = 0
    producers: tuple[ProducerSpec, ...] = ()
    message_size: int = DEFAULT_MESSAGE_SIZE
    bodies: tuple[str, ...] = ()
    groups: int = 1
    hot_group_share: float = 0.0


@dataclass(frozen=True, slots=True)
class StreamLoad:
    """What arrives at one stream (``[streams.NAME]``).

    Attributes:
        producers: record sources, with their partition keys.
        record_size: bytes of each record's data.
        poison: records that every invocation holding them fails on.
    """

    producers: tuple[StreamProducerSpec, ...] = ()
    record_size: int = DEFAULT_RECORD_SIZE
    poison: tuple[PoisonSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class FunctionLoad:
    """How one function's handler behaves (``[functions.NAME]``).

    Attributes:
        model: durations, cold starts, idle timeout and error windows, as a scenario's
            :class:`~sluicegate.sim.specs.FunctionSpec` (its name, timeout and reserved
            concurrency are replaced by the App's).
        downstream: the dependency it calls, or ``None``.
        events: producers of asynchronous invocations (``InvocationType=Event``): each
            event is accepted into the function's internal queue.
        requests: producers of synchronous invocations (``RequestResponse``): each runs
            at once in a slot of the function's concurrency, or is throttled.
    """

    model: FunctionSpec = field(default_factory=FunctionSpec)
    downstream: DownstreamSpec | None = None
    events: tuple[ProducerSpec, ...] = ()
    requests: tuple[ProducerSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class BusLoad:
    """What is put on one event bus (``[buses.NAME]``).

    Attributes:
        producers: sources of events (PutEvents of 1-10 entries: ``batch``); each event
            goes to the targets of every pattern rule of the bus.
    """

    producers: tuple[ProducerSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class Load:
    """A load file, validated. Build it with :func:`load_load`.

    Attributes:
        name, description, seed, duration, bucket: as in a scenario.
        queues, streams, topics, functions, buses: by the App's names.
        pauses: mapping pauses, by ``SOURCE`` or ``SOURCE->FUNCTION``.
        labels: the names a topic's subscribers go by, by their queue's name (a topic
            scenario's ``[[subscribers]] name``): a subscriber's label in the results and
            the prefix of its random streams' names; a queue not in it goes by its own
            name. Not read from a load file.
        context: where it came from (a file name), for error messages.
    """

    name: str = ""
    description: str = ""
    seed: int = DEFAULT_SEED
    duration: float = DEFAULT_DURATION
    bucket: float = DEFAULT_BUCKET
    queues: dict[str, QueueLoad] = field(default_factory=dict)
    streams: dict[str, StreamLoad] = field(default_factory=dict)
    topics: dict[str, QueueLoad] = field(default_factory=dict)
    functions: dict[str, FunctionLoad] = field(default_factory=dict)
    pauses: dict[str, tuple[Pause, ...]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    context: str = "load"
    buses: dict[str, BusLoad] = field(default_factory=dict)


def load_load(source: str | Path | Mapping[str, Any], *,
              overrides: Iterable[str] = ()) -> Load:
    """Read and validate a load file.

    Parameters:
        source: a path to a TOML file, TOML text or a plain dict (as
            :func:`~sluicegate.sim.load_scenario` takes them).
        overrides: ``KEY=VALUE`` strings applied first (``duration=20s``,
            ``queues.orders.producers.0.rate=500``).

    Raises:
        ScenarioError: unreadable, invalid TOML, an unknown key, a value out of range, a
            scenario's table in a load; one line naming the key path.
    """
    data, context, base = scenario_data(source, overrides)
    top = Table(data, "", context, base)
    for name in _SCENARIO_TABLES:
        if data.get(name) is not None:
            plural = {"queue": "queues", "stream": "streams", "topic": "topics",
                      "function": "functions", "mapping": "mappings"}.get(name)
            hint = (f"a load names the App's {plural}: [{plural}.NAME]" if plural else
                    "a load gives producers under [queues.NAME], [streams.NAME] or "
                    "[topics.NAME], a downstream under [functions.NAME]"
                    if name in ("producer", "producers", "downstream") else
                    "the App sets it")
            raise ScenarioError(name, None, "", context,
                                message=f"[{name}] is a scenario's table, not a load's: {hint}")
    load = Load(
        seed=top.get("seed", DEFAULT_SEED, top.integer(0, 2**63 - 1)),
        duration=top.get("duration", DEFAULT_DURATION, top.positive_seconds),
        bucket=top.get("bucket", DEFAULT_BUCKET, top.positive_seconds),
        name=top.get("name", "", top.text),
        description=top.get("description", "", top.text),
        queues={name: _queue_load(t) for name, t in _named(top, "queues")},
        streams={name: _stream_load(t) for name, t in _named(top, "streams")},
        topics={name: _queue_load(t) for name, t in _named(top, "topics")},
        functions={name: _function_load(t) for name, t in _named(top, "functions")},
        pauses={name: _pauses(t) for name, t in _named(top, "mappings")},
        context=context,
        buses={name: _bus_load(t) for name, t in _named(top, "buses")},
    )
    top.finish()
    return load


def _named(top: Table, section: str) -> list[tuple[str, Table]]:
    """The tables of ``[SECTION.NAME]``, each with its name."""
    section_table = top.sub(section)
    tables = []
    for name in list(section_table.data):
        tables.append((str(name), section_table.sub(str(name))))
    section_table.finish()
    return tables


def _queue_load(t: Table) -> QueueLoad:
    load = QueueLoad(backlog=t.get("backlog", 0, t.integer(0, 1_000_000_000)),
                     producers=parse_producers(t), **parse_messages(t))
    t.finish()
    return load


def _stream_load(t: Table) -> StreamLoad:
    load = StreamLoad(
        producers=parse_stream_producers(t),
        record_size=t.get("record_size", DEFAULT_RECORD_SIZE, t.integer(1, 1_048_576)),
        poison=parse_poison(t),
    )
    t.finish()
    return load


def _function_load(t: Table) -> FunctionLoad:
    for key in APP_SETTINGS:
        if t.data.get(key) is not None:
            raise ScenarioError(t.key(key), t.data[key], "", t.context, message=(
                f"{t.key(key)}: the App sets a function's {key} (app.function); a load "
                "gives how its handler behaves"))
    downstream = parse_downstream(t)
    events = _invocations(t, "events", "events")
    requests = _invocations(t, "requests", "requests")
    return FunctionLoad(parse_function_table(t, "function"), downstream, events, requests)


def _invocations(t: Table, key: str, unit: str) -> tuple[ProducerSpec, ...]:
    """A function's ``events`` or ``requests``: producers, as a queue's (1-10 at a time)."""
    producers = []
    for pt in t.subs(key):
        producers.append(parse_producer(pt, batch_max=10, unit=unit))
        pt.finish()
    return tuple(producers)


def _bus_load(t: Table) -> BusLoad:
    load = BusLoad(parse_producers(t))
    t.finish()
    return load


def _pauses(t: Table) -> tuple[Pause, ...]:
    pauses = parse_pauses(t)
    t.finish()
    return pauses


# ---------------------------------------------------------------------- checks


def _check_names(app: App, load: Load) -> None:
    """Refuse a load naming what the App does not have."""
    for section, names, have, what in (
        ("queues", load.queues, app.queues, "queue"),
        ("streams", load.streams, app.streams, "stream"),
        ("topics", load.topics, app.topics, "topic"),
        ("functions", load.functions, app.functions, "function"),
        ("buses", load.buses, app.buses, "event bus"),
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


def refuse_load_groups(load: Load, section: str, name: str, messages: QueueLoad) -> None:
    for key, default in (("groups", 1), ("hot_group_share", 0.0)):
        if getattr(messages, key) != default:
            raise ScenarioError(f"{section}.{name}.{key}", getattr(messages, key),
                                "only for a FIFO queue or topic (a name ending in '.fifo')",
                                load.context)


def pauses_of(load: Load, source: str, function: str) -> tuple[Pause, ...]:
    """A mapping's pauses, under ``SOURCE->FUNCTION`` or ``SOURCE`` (one mapping reads a
    source: :func:`_check_runnable`)."""
    return load.pauses.get(f"{source}->{function}", load.pauses.get(source, ()))



def mapped_topics(app: App) -> list[TopicConfig]:
    """The App's topics that deliver to a mapped queue."""
    mapped = {m.queue for m in app.mappings}
    return [t for t in app.topics.values() if mapped & set(t.subscribers)]


def check_fits(app: App, load: Load) -> None:
    """Refuse a load that does not fit ``app`` (a name the App does not have) and an App
    the simulator cannot run, each in one line.

    Raises:
        ScenarioError: the first problem found.
    """
    _check_names(app, load)
    _check_runnable(app, load)


# ---------------------------------------------------------------------- asynchronous


@dataclass(frozen=True, slots=True)
class AsyncReach:
    """What a load's asynchronous traffic reaches in an App (:func:`async_reach`).

    Attributes:
        functions: the functions whose internal queue of asynchronous invocations the run
            has (an asynchronous lane each), in the App's order: those the load invokes
            with ``events``, the function targets of the buses it puts to, and the
            function subscribers of every topic the run has.
        topics: the topics the run has, in the App's order: those delivering to a mapped
            queue, those the load publishes to, those a bus delivers to.
        buses: each bus the load puts to, with where one event put on it goes, in order:
            ``function``, ``queue`` and ``topic`` destinations (a bus target's own
            deliveries taken in place of it).
        requests: the functions the load sends synchronous ``requests`` to.
    """

    functions: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    buses: dict[str, tuple[Destination, ...]] = field(default_factory=dict)
    requests: tuple[str, ...] = ()


def has_async(app: App, load: Load | None) -> bool:
    """Whether ``load`` gives ``app`` asynchronous or synchronous invocations (events,
    requests, events put on a bus, publishes reaching a function): the run then has
    lanes no scenario kind holds."""
    if load is None:
        return bool(any(t.functions for t in mapped_topics(app)))
    reach = async_reach(app, load)
    return bool(reach.functions or reach.buses or reach.requests)


def async_reach(app: App, load: Load) -> AsyncReach:
    """Follow the load's asynchronous traffic through the App (see :class:`AsyncReach`);
    the names are checked by :func:`check_fits` first.

    Raises:
        ScenarioError: a bus whose rules deliver nowhere or around a loop.
    """
    functions: set[str] = {name for name, f in load.functions.items() if f.events}
    topics: set[str] = {t.name for t in mapped_topics(app)}
    topics.update(name for name, t in load.topics.items()
                  if name in app.topics and (t.producers or t.backlog))
    buses: dict[str, tuple[Destination, ...]] = {}
    for name, bus in load.buses.items():
        if not bus.producers or name not in app.buses:
            continue
        targets = tuple(_bus_targets(app, load, name, (name,)))
        if not targets:
            raise ScenarioError(f"buses.{name}", None, "", load.context, message=(
                f"buses.{name}: no rule of event bus {name!r} has an event pattern and a "
                "target: nothing would receive what is put there"))
        buses[name] = targets
        for target in targets:
            if target.kind == "function":
                functions.add(target.name)
            elif target.kind == "topic":
                topics.add(target.name)
    for name in topics:
        functions.update(app.topics[name].functions)
    return AsyncReach(
        functions=tuple(f for f in app.functions if f in functions),
        topics=tuple(t for t in app.topics if t in topics),
        buses=buses,
        requests=tuple(f for f in app.functions
                       if f in load.functions and load.functions[f].requests),
    )


def _bus_targets(app: App, load: Load, bus: str, path: tuple[str, ...]
                 ) -> list[Destination]:
    """Where one event put on ``bus`` goes: every target of every pattern rule of the bus
    (all taken to match), a bus target's own deliveries in its place."""
    out: list[Destination] = []
    for rule in app.rules:
        if rule.bus != bus or rule.pattern is None:
            continue
        for target in rule.targets:
            destination = target.destination
            if destination.kind != "bus":
                out.append(destination)
                continue
            if destination.name in path:
                loop = " -> ".join((*path, destination.name))
                raise ScenarioError(f"buses.{path[0]}", None, "", load.context, message=(
                    f"buses.{path[0]}: the rules of event bus {bus!r} lead back to "
                    f"{destination.name!r} ({loop}): the simulator cannot follow an event "
                    "around a loop"))
            out.extend(_bus_targets(app, load, destination.name, (*path, destination.name)))
    return out


def _check_runnable(app: App, load: Load) -> None:
    """Refuse what the simulator cannot run, in one line."""
    context = load.context
    queue_mappings, stream_mappings = app.mappings, app.stream_mappings
    reach = async_reach(app, load)
    if not queue_mappings and not stream_mappings and not (
            reach.functions or reach.requests or reach.buses):
        raise ScenarioError("app", None, "", context,
                            message="the App maps no queue or stream to a function and the "
                                    "load invokes no function: nothing to simulate")
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
    topics = mapped_topics(app)
    if len(topics) > 1:
        raise ScenarioError("app", None, "", context, message=(
            f"the App has {len(topics)} topics delivering to mapped queues "
            f"({', '.join(t.name for t in topics)}): one topic at a time is simulated"))
    for topic in [*topics, *(app.topics[t] for t in reach.topics if t not in
                             {m.name for m in topics})]:
        for queue in topic.subscribers:
            if queue not in sources:
                raise ScenarioError("app", None, "", context, message=(
                    f"queue {queue!r} of topic {topic.name!r} has no mapping: each queue a "
                    "simulated topic delivers to is read by one"))
    for name, targets in reach.buses.items():
        for target in targets:
            if target.kind == "queue" and target.name not in sources:
                raise ScenarioError(f"buses.{name}", None, "", context, message=(
                    f"buses.{name}: a rule delivers to queue {target.name!r}, which no "
                    "mapping of the App reads: the simulator runs queues that are read"))
            if target.kind in ("queue", "topic") and target.name.endswith(".fifo"):
                raise ScenarioError(f"buses.{name}", None, "", context, message=(
                    f"buses.{name}: a rule delivers to FIFO {target.kind} "
                    f"{target.name!r}, which refuses events without a message group (the "
                    "runtime logs and skips them): not simulated"))
    for name, topic_load in load.topics.items():
        if (topic_load.producers or topic_load.backlog) and name not in reach.topics:
            raise ScenarioError(f"topics.{name}", None, "", context, message=(
                f"topics.{name}: topic {name!r} delivers to no mapped queue and no "
                "function, so nothing would read what is published there"))


