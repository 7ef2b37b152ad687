"""Event buses and their rules, as an App declares them (EventBridge's model).

A bus receives events (PutEvents, a destination, another bus); each of its rules with an
event pattern that matches an event sends it to every target of the rule: a function
(invoked asynchronously), a queue, a topic or another bus, each with an optional
transformation of the event (:class:`~sluicegate.core.transform.TargetInput`). A rule
on the default bus may instead run on a schedule (``rate(...)``, ``cron(...)``), sending
a "Scheduled Event" to its targets at every tick.

In the store a bus is a queue, ``bus:NAME`` (:func:`bus_queue`): a put event is durable
when PutEvents returns and routed by whichever running process reads it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from sluicegate.core.async_events import Destination
from sluicegate.core.events_bus import DEFAULT_EVENT_BUS
from sluicegate.core.filters import EventPattern
from sluicegate.core.schedule import Schedule
from sluicegate.core.transform import TargetInput
from sluicegate.errors import ConfigError

__all__ = [
    "BUS_QUEUE_PREFIX",
    "MAX_TARGETS",
    "EventBusConfig",
    "RuleConfig",
    "TargetConfig",
    "bus_of_queue",
    "bus_queue",
]

BUS_QUEUE_PREFIX: Final = "bus:"
"""Names of the buses' queues in the store: ``bus:NAME``."""

MAX_TARGETS: Final = 5
"""Targets of one rule (EventBridge's quota)."""

_BUS_NAME: Final = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_RULE_NAME: Final = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def bus_queue(bus: str) -> str:
    """The store queue of event bus ``bus``."""
    return BUS_QUEUE_PREFIX + bus


def bus_of_queue(name: str) -> str | None:
    """The bus whose queue ``name`` is, or ``None`` for any other queue."""
    return name[len(BUS_QUEUE_PREFIX):] if name.startswith(BUS_QUEUE_PREFIX) else None


@dataclass(frozen=True, slots=True)
class EventBusConfig:
    """An event bus: 1-64 letters, digits, ``.``, ``-`` or ``_`` (sluicegate keeps bus
    names to what a store queue's name can carry; EventBridge also allows ``/``)."""

    name: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _BUS_NAME.match(self.name):
            raise ConfigError("name", self.name, "1-64 letters, digits, '.', '-' or '_'",
                              "event bus")


@dataclass(frozen=True, slots=True)
class TargetConfig:
    """Where a rule sends what it matched, and in what form.

    Attributes:
        destination: a function (invoked asynchronously), a queue, a topic or a bus.
        input: how the event is transformed for this target (``None``: sent whole).
    """

    destination: Destination
    input: TargetInput | None = None


@dataclass(frozen=True, slots=True)
class RuleConfig:
    """A rule of a bus: an event pattern or a schedule, and up to five targets.

    Attributes:
        name: 1-64 letters, digits, ``.``, ``-`` or ``_``; unique on its bus.
        bus: the bus it belongs to.
        pattern: the events it matches (``None`` for a scheduled rule).
        schedule: when it fires (``None`` for a pattern rule); only on the default bus,
            as on AWS.
        targets: where matched events go.
    """

    name: str
    bus: str
    pattern: EventPattern | None
    schedule: Schedule | None
    targets: tuple[TargetConfig, ...]

    def __post_init__(self) -> None:
        ctx = f"rule {self.name!r}"
        if not isinstance(self.name, str) or not _RULE_NAME.match(self.name):
            raise ConfigError("name", self.name, "1-64 letters, digits, '.', '-' or '_'",
                              "rule")
        if (self.pattern is None) == (self.schedule is None):
            raise ConfigError("pattern", None if self.pattern is None else "...",
                              "an event pattern or a schedule (one of them)", ctx)
        if self.schedule is not None and self.bus != DEFAULT_EVENT_BUS:
            raise ConfigError("bus", self.bus,
                              f"{DEFAULT_EVENT_BUS!r} for a scheduled rule", ctx)
        if not self.targets:
            raise ConfigError("targets", [], "1-5 targets", ctx)
        if len(self.targets) > MAX_TARGETS:
            raise ConfigError("targets", f"{len(self.targets)} targets",
                              f"1-{MAX_TARGETS} targets", ctx)


def target_input(input: Any = None, input_path: Any = None, input_transformer: Any = None,
                 *, context: str) -> TargetInput | None:
    """A target's transformation from its three settings (``None`` when none is set)."""
    if input is None and input_path is None and input_transformer is None:
        return None
    return TargetInput(input=input, input_path=input_path,
                       input_transformer=input_transformer, context=context)
