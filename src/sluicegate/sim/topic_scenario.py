"""Topic scenarios: a topic that fans out to several queues, each with its own mapping.

A topic scenario has a ``[topic]`` table instead of ``[queue]`` (see
``docs/scenarios.md``, "Topic scenarios"), and one ``[[subscribers]]`` table per
subscribed queue. Each subscriber is a queue, the function its mapping invokes, that
mapping and optionally a downstream, written with the keys of a queue scenario's
``[queue]``, ``[function]``, ``[mapping]`` and ``[downstream]``. The top-level
``[producer]`` or ``[[producers]]`` publish to the topic: every publish delivers one
message to every subscribed queue at the same instant, as
:meth:`Store.publish <sluicegate.store.base.Store.publish>` does. Every function draws
its concurrency from the one ``[account]`` pool, so reserved and unreserved concurrency
contend there as on AWS.

- ``[topic]`` holds what describes the messages: ``name`` (a name ending in ``.fifo``
  makes a FIFO topic, whose subscribers are FIFO queues and whose publishes keep their
  message group and deduplication ids in every queue), ``backlog`` (messages published
  at t=0), ``message_size``, ``bodies``, and for a FIFO topic ``groups`` and
  ``hot_group_share``, drawn as a FIFO queue scenario draws them.
- A subscriber may also have producers of its own (``[[subscribers.producers]]``), which
  send straight to its queue, and a ``queue.backlog`` of its own.

The rules of topics are the core's: :class:`~sluicegate.core.config.TopicConfig`
validates the topic's name and its subscribers (distinct queues, FIFO queues for a FIFO
topic and standard ones otherwise), and the simulator publishes through
:func:`~sluicegate.store.base.publish_ids`, the store's rule for a publish's group and
deduplication ids. Every AWS parameter of a subscriber is validated as in a queue
scenario; the reserved concurrency of all functions together must leave the account's
``min_unreserved``.

:meth:`TopicScenario.subscriber_scenario` gives each subscriber as a single-queue
:class:`~sluicegate.sim.scenario.Scenario` (its queue, function, mapping, downstream and
own producers, with the topic's message keys): what the driver builds a mapping from,
with the same configuration classes as a queue scenario's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from sluicegate.core.config import AccountConfig, MappingConfig, TopicConfig
from sluicegate.core.pool import ConcurrencyPool
from sluicegate.errors import ConfigError
from sluicegate.sim.scenario import Scenario
from sluicegate.sim.schema import ScenarioError, Table, checked
from sluicegate.sim.sections import (
    check_with_core,
    parse_account,
    parse_downstream,
    parse_function,
    parse_mapping,
    parse_messages,
    parse_producers,
    parse_queue,
    refuse_groups,
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
    QueueSpec,
    account_dict,
    dlq_name,
    downstream_dict,
    function_dict,
    mapping_dict,
    producer_dict,
)

__all__ = [
    "DEFAULT_TOPIC_NAME",
    "SubscriberSpec",
    "TopicScenario",
    "TopicSpec",
    "load_topic_scenario",
]

DEFAULT_TOPIC_NAME = "topic"
"""The topic's name when the scenario gives none (a standard topic)."""

_SUBSCRIBER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""A subscriber's name: the default name of its queue and function, so what both allow
(letters, digits, ``-`` and ``_``; 64 characters at most, a function name's limit)."""

_SINGLE_QUEUE_SECTIONS = ("queue", "function", "mapping", "downstream")


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """The topic (``[topic]``) and the messages published to it.

    Attributes:
        name: the topic's name; ending in ``.fifo`` makes a FIFO topic.
        backlog: messages published at t=0 (each in every subscribed queue).
        message_size: bytes of a message's body and attributes, 1-262,144; with the
            record overhead it counts against the 6 MB invocation payload.
        groups: FIFO topics: message groups the publishes spread over, 1-1,000,000
            (each message picks one at random; every queue gets it in that group).
        hot_group_share: FIFO topics: share of messages (0-1) sent to one hot group
            ``g0``.
        bodies: bodies the messages carry, each message drawing one (the same in every
            queue); what subscribers' ``filter_criteria`` read.
    """

    name: str = DEFAULT_TOPIC_NAME
    backlog: int = 0
    message_size: int = DEFAULT_MESSAGE_SIZE
    groups: int = 1
    hot_group_share: float = 0.0
    bodies: tuple[str, ...] = ()

    @property
    def fifo(self) -> bool:
        """Whether this is a FIFO topic (its name ends in ``.fifo``)."""
        return self.name.endswith(".fifo")

    def messages(self) -> QueueSpec:
        """The message keys of a subscriber queue of this topic (``fifo``,
        ``message_size``, ``groups``, ``hot_group_share``, ``bodies``)."""
        return QueueSpec(message_size=self.message_size, fifo=self.fifo, groups=self.groups,
                         hot_group_share=self.hot_group_share, bodies=self.bodies)


@dataclass(frozen=True, slots=True)
class SubscriberSpec:
    """One subscribed queue and what reads it (``[[subscribers]]``).

    Attributes:
        name: the subscriber's name (1-64 letters, digits, ``-`` or ``_``, not a bare
            number); its queue and function are named after it unless they say otherwise.
        queue: its queue: ``name``, ``backlog``, ``visibility_timeout``,
            ``delay_seconds``, ``max_receive_count``; the message keys are the topic's.
        function: the function its mapping invokes (each subscriber has its own).
        mapping: the event source mapping from its queue to its function (the core's
            configuration).
        producers: producers of its own, sending straight to its queue.
        downstream: the dependency its function calls, or ``None``.
        pauses: its mapping's disable/enable windows.
    """

    name: str
    queue: QueueSpec
    function: FunctionSpec
    mapping: MappingConfig
    producers: tuple[ProducerSpec, ...] = ()
    downstream: DownstreamSpec | None = None
    pauses: tuple[Pause, ...] = ()


@dataclass(frozen=True, slots=True)
class TopicScenario:
    """Everything a topic simulation needs. Build it with :func:`load_topic_scenario`.

    Attributes:
        seed, duration, bucket, name, description: as in
            :class:`~sluicegate.sim.scenario.Scenario`.
        topic: the topic and its messages.
        producers: sources publishing to the topic (possibly none).
        subscribers: the subscribed queues with their functions and mappings, in the
            order a publish delivers to them.
        account: the concurrency pool every function draws from.
    """

    seed: int = DEFAULT_SEED
    duration: float = DEFAULT_DURATION
    bucket: float = DEFAULT_BUCKET
    name: str = ""
    description: str = ""
    topic: TopicSpec = field(default_factory=TopicSpec)
    producers: tuple[ProducerSpec, ...] = ()
    subscribers: tuple[SubscriberSpec, ...] = ()
    account: AccountConfig = field(default_factory=AccountConfig)

    # ------------------------------------------------------------------ core configs

    def topic_config(self) -> TopicConfig:
        """The core's configuration of the topic, subscribed by every subscriber's queue."""
        return TopicConfig(self.topic.name,
                           subscribers=tuple(s.queue.queue_name for s in self.subscribers))

    def subscriber_scenario(self, index: int) -> Scenario:
        """Subscriber ``index`` as a single-queue scenario: its queue (with the topic's
        message keys), function, mapping, downstream and own producers, the run's seed,
        duration and bucket, and the account. The topic's producers are not in it."""
        s = self.subscribers[index]
        return Scenario(self.seed, self.duration, self.bucket, s.name, self.description,
                        s.queue, s.function, s.mapping, s.producers, s.downstream,
                        self.account, s.pauses)

    # ------------------------------------------------------------------ plain form

    def to_dict(self) -> dict[str, Any]:
        """The normalized plain form: every key, defaults filled in, durations in seconds,
        ``None`` for what is not set. :func:`load_topic_scenario` accepts it back."""
        t = self.topic
        subscribers = []
        for s in self.subscribers:
            q = s.queue
            subscribers.append({
                "name": s.name,
                "queue": {
                    "name": q.name,
                    "backlog": q.backlog,
                    "visibility_timeout": q.visibility_timeout,
                    "delay_seconds": q.delay_seconds,
                    "max_receive_count": q.max_receive_count,
                },
                "function": function_dict(s.function),
                "mapping": mapping_dict(s.mapping, s.pauses),
                "producers": [producer_dict(p) for p in s.producers],
                "downstream": downstream_dict(s.downstream),
            })
        return {
            "name": self.name,
            "description": self.description,
            "seed": self.seed,
            "duration": self.duration,
            "bucket": self.bucket,
            "topic": {
                "name": t.name,
                "backlog": t.backlog,
                "message_size": t.message_size,
                # FIFO keys only for FIFO topics, as for queues
                **({"groups": t.groups, "hot_group_share": t.hot_group_share}
                   if t.fifo else {}),
                **({"bodies": list(t.bodies)} if t.bodies else {}),
            },
            "producers": [producer_dict(p) for p in self.producers],
            "subscribers": subscribers,
            "account": account_dict(self.account),
        }


# ---------------------------------------------------------------------- parsing


def parse_topic_scenario(data: Mapping[str, Any], context: str, base: Path | None) -> TopicScenario:
    for section in ("stream", *_SINGLE_QUEUE_SECTIONS):
        if data.get(section) is not None:
            raise ScenarioError(section, None, "", context, message=(
                f"a topic scenario has no [{section}]"
                + ("" if section == "stream" else
                   f": each of its [[subscribers]] has its own [subscribers.{section}]")))
    top = Table(data, "", context, base)
    top.used.update(("stream", *_SINGLE_QUEUE_SECTIONS))
    seed = top.get("seed", DEFAULT_SEED, top.integer(0, 2**63 - 1))
    duration = top.get("duration", DEFAULT_DURATION, top.positive_seconds)
    bucket = top.get("bucket", DEFAULT_BUCKET, top.positive_seconds)
    name = top.get("name", "", top.text)
    description = top.get("description", "", top.text)

    tt = top.sub("topic")
    topic = TopicSpec(
        name=tt.get("name", DEFAULT_TOPIC_NAME, tt.text),
        backlog=tt.get("backlog", 0, tt.integer(0, 1_000_000_000)),
        **parse_messages(tt),
    )
    if not topic.fifo:
        refuse_groups(tt, topic, "only for a FIFO topic (a name ending in '.fifo')")
    tt.finish()
    producers = parse_producers(top)

    tables = top.subs("subscribers")
    if not tables:
        raise ScenarioError("subscribers", data.get("subscribers"),
                            "one or more [[subscribers]] tables (a queue, its function and "
                            "its mapping each)", context)
    subscribers = [_parse_subscriber(st, topic) for st in tables]
    account = parse_account(top)
    top.finish()

    scenario = TopicScenario(seed, duration, bucket, name, description, topic, producers,
                             tuple(subscribers), account)
    _check_topic(scenario, top)
    return scenario


def _parse_subscriber(st: Table, topic: TopicSpec) -> SubscriberSpec:
    """One ``[[subscribers]]`` table (its queue, function, mapping, producers and
    downstream, read as a queue scenario's sections are)."""
    name = st.get("name", None, st.text)
    if name is None or not _SUBSCRIBER_NAME.match(name) or name.isdigit():
        raise st.error("name", name, "1-64 letters, digits, '-' or '_', not a bare number "
                                     "(required: it names the queue and the function)")
    queue = parse_queue(st.sub("queue"), topic=topic.messages(), default_name=name)
    function = parse_function(st, default_name=name)
    mapping, pauses = parse_mapping(st.sub("mapping"), queue.queue_name, function.name)
    subscriber = SubscriberSpec(
        name=name,
        queue=queue,
        function=function,
        mapping=mapping,
        producers=parse_producers(st),
        downstream=parse_downstream(st),
        pauses=pauses,
    )
    st.finish()
    return subscriber


def _check_topic(scenario: TopicScenario, top: Table) -> None:
    """The core's checks: every subscriber as a queue scenario, the topic's rules, and
    the account pool holding every function's reserved concurrency at once."""
    subscribers = scenario.subscribers
    names: dict[str, int] = {}
    functions: dict[str, int] = {}
    queues: dict[str, int] = {}
    for index, s in enumerate(subscribers):
        prefix = f"subscribers[{index}]"
        for seen, key, value, what in (
            (names, "name", s.name, "a name"),
            (functions, "function.name", s.function.name, "a function"),
        ):
            if value in seen:
                raise ScenarioError(f"{prefix}.{key}", value,
                                    f"{what} no other subscriber has (subscribers"
                                    f"[{seen[value]}] has it)", top.context)
            seen[value] = index
        check_with_core(scenario.subscriber_scenario(index), top, f"{prefix}.")
        queue = s.queue.queue_name
        own = [queue] + ([] if s.queue.max_receive_count is None else [dlq_name(queue)])
        for q in own:
            if q in queues:
                raise ScenarioError(f"{prefix}.queue.name", s.queue.name,
                                    f"a queue no other subscriber uses ({q!r} is "
                                    f"subscribers[{queues[q]}]'s)", top.context)
            queues[q] = index
    try:
        scenario.topic_config()
    except ConfigError as exc:
        path, value = "topic.name", exc.value
        if exc.parameter == "subscribers":
            queue_names = [s.queue.queue_name for s in subscribers]
            where = queue_names.index(value) if value in queue_names else None
            path = "subscribers" if where is None else f"subscribers[{where}].queue"
        raise ScenarioError(path, value, exc.allowed, top.context) from None
    pool = checked("account", top, lambda: ConcurrencyPool(scenario.account))
    for index in range(len(subscribers)):
        function = scenario.subscriber_scenario(index).function_config()
        checked(f"subscribers[{index}].function", top, partial(pool.register, function))


# ---------------------------------------------------------------------- entry point


def load_topic_scenario(
    source: str | Path | Mapping[str, Any] | TopicScenario,
    *,
    overrides: Iterable[str] = (),
) -> TopicScenario:
    """Read and validate a topic scenario.

    Parameters:
        source: a TOML file or text, a plain dict (as :meth:`TopicScenario.to_dict`
            gives) or a :class:`TopicScenario`; see :func:`~sluicegate.sim.load_scenario`.
        overrides: ``KEY=VALUE`` strings applied before validation. A subscriber is
            reached by its index or its name: ``subscribers.0.mapping.batch_size=5``,
            ``subscribers.billing.function.reserved_concurrency=20``.

    Returns:
        The validated :class:`TopicScenario`.

    Raises:
        ScenarioError: unreadable, invalid TOML, an unknown key, a value out of range, a
            rule of topics broken, or no ``[topic]`` table; the message is one line
            naming the key path.
    """
    data, context, base = scenario_data(source, overrides)
    if data.get("topic") is None:
        raise ScenarioError("topic", None, "", context,
                            message="not a topic scenario: it has no [topic] table")
    return parse_topic_scenario(data, context, base)
