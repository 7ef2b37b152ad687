"""Event buses in the runtime: PutEvents, the routing of each bus's events to the targets
of its matching rules, and scheduled rules.

- :func:`put_events` validates a PutEvents call (:func:`~sluicegate.core.events_bus.put_events`)
  and sends each accepted event to its bus's queue in the store (``bus:NAME``): durable
  when it returns, as EventBridge's answer is.
- :class:`BusRouter` (one task per bus in every running process) receives the bus's
  events, and for every rule whose pattern matches sends the event (or its
  transformation) to each target: a function (accepted for an asynchronous invocation),
  a queue, a topic, or another bus; then deletes it. A target the store cannot reach
  leaves the event to reappear and be routed again (at least once, as EventBridge
  retries); a target that refuses (a FIFO queue, a message too large) is logged and
  counted, and the event is deleted.
- :class:`Scheduler` fires the App's scheduled rules: at each tick, every process tries to
  claim the tick (an item of the store's table :data:`TICKS_TABLE`, created only if
  absent, keyed by the rule and the tick's second); the one that creates it sends the
  "Scheduled Event" to the rule's targets, so a tick fires once across processes. A tick that passed while no process ran is not
  fired afterwards (EventBridge does not catch up either).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sluicegate.core.buses import RuleConfig, TargetConfig, bus_queue
from sluicegate.core.config import QueueConfig
from sluicegate.core.events_bus import (
    PutEventsResult,
    PutEventsResultEntry,
    iso8601,
    make_event,
    rule_arn,
    scheduled_event,
)
from sluicegate.core.events_bus import put_events as validate_put_events
from sluicegate.errors import SluicegateError, StoreNotOpen, StoreUnavailable
from sluicegate.runtime.async_invoke import ASYNC_SENDER, accept

if TYPE_CHECKING:
    from sluicegate.app import App
    from sluicegate.store.base import Store

__all__ = ["BusRouter", "Scheduler", "bus_queue_config", "ensure_bus_queues", "put_events"]

log = logging.getLogger("sluicegate.runtime")

BUS_VISIBILITY = 60
"""Seconds a routed event stays hidden while its targets are written."""

TICKS_TABLE = "sluicegate.ticks"
"""The store table where scheduled rules' ticks are claimed."""

MAX_HOPS = 5
"""Buses an event may cross (a rule sending to another bus), so that rules sending
events around a loop of buses stop."""

_TRANSIENT = (StoreUnavailable, StoreNotOpen)
_HOPS = "sluicegate.hops"


def bus_queue_config(bus: str) -> QueueConfig:
    """The store queue of a bus (events kept a day: EventBridge retries for 24 hours)."""
    return QueueConfig(bus_queue(bus), visibility_timeout=BUS_VISIBILITY,
                       retention_period=24 * 3600)


async def ensure_bus_queues(store: Store, app: App) -> None:
    for bus in app.buses:
        await store.ensure_queue(bus_queue_config(bus))


async def put_events(store: Store, app: App, entries: Sequence[Mapping[str, Any]], *,
                     region: str, account_id: str, hops: int = 0) -> PutEventsResult:
    """EventBridge's PutEvents on ``app``'s buses in ``store``: each valid entry becomes an
    event on its bus's queue; an entry naming a bus the App does not define gets
    ``ResourceNotFoundException`` (its own error, the others still go).

    Raises:
        InputError: a call EventBridge refuses whole (no entries, more than 10, too
            large).
        StoreError: the store failed.
    """
    result = validate_put_events(entries, now=store.clock(), account=account_id,
                                 region=region, new_id=lambda: str(uuid.uuid4()))
    answers = list(result.entries)
    for accepted in result.accepted:
        if accepted.bus not in app.buses:
            answers[accepted.index] = PutEventsResultEntry(
                error_code="ResourceNotFoundException",
                error_message=f"Event bus {accepted.bus} does not exist.")
            continue
        attributes = {_HOPS: str(hops)} if hops else None
        await store.send(bus_queue(accepted.bus), json.dumps(accepted.event),
                         attributes=attributes, sender_id=ASYNC_SENDER)
    return PutEventsResult(tuple(answers),
                           tuple(a for a in result.accepted if a.bus in app.buses),
                           result.ingestion_time)


class Targets:
    """Sends what a rule matched to its targets."""

    def __init__(self, app: App, store: Store, *, region: str,
                 account_id: str) -> None:
        self.app = app
        self.store = store
        self.region = region
        self.account_id = account_id
        self.failed_invocations: dict[str, int] = {}
        """Per rule, deliveries a target refused (EventBridge's ``FailedInvocations``)."""

    async def send(self, rule: RuleConfig, event: Mapping[str, Any], *, ingestion_time: float,
                   hops: int) -> None:
        """Send ``event`` to every target of ``rule``.

        Raises:
            StoreUnavailable: the store could not be reached (the caller retries).
        """
        arn = rule_arn(rule.name, bus=rule.bus, region=self.region, account=self.account_id)
        for target in rule.targets:
            try:
                await self._send_one(rule, target, event, arn, ingestion_time, hops)
            except _TRANSIENT:
                raise
            except SluicegateError as exc:
                self.failed_invocations[rule.name] = self.failed_invocations.get(
                    rule.name, 0) + 1
                log.warning("rule %s: target %s refused an event: %s", rule.name,
                            target.destination, exc)

    async def _send_one(self, rule: RuleConfig, target: TargetConfig,
                        event: Mapping[str, Any], arn: str, ingestion_time: float,
                        hops: int) -> None:
        if target.input is None:
            text = json.dumps(event, separators=(",", ":"))
        else:
            text = target.input.render(event, rule_name=rule.name, rule_arn=arn,
                                       ingestion_time=ingestion_time)
        destination = target.destination
        kind, name = destination.kind, destination.name
        if kind == "queue":
            await self.store.send(name, text, sender_id=ASYNC_SENDER)
        elif kind == "topic":
            await self.store.publish(self.app.topics[name], text, sender_id=ASYNC_SENDER)
        elif kind == "function":
            await accept(self.store, self.app.functions[name].config, _payload(text))
        else:
            if hops + 1 >= MAX_HOPS:
                raise NotSentToBus(name)
            forwarded = _payload(text)
            if not isinstance(forwarded, dict):
                raise NotSentToBus(name, "a transformed event that is not an event")
            await self.store.send(bus_queue(name), json.dumps(forwarded),
                                  attributes={_HOPS: str(hops + 1)}, sender_id=ASYNC_SENDER)


class NotSentToBus(SluicegateError):
    """An event that would cross too many buses, or a non-event sent to a bus."""

    def __init__(self, bus: str, why: str = f"more than {MAX_HOPS} buses crossed") -> None:
        super().__init__(f"not sent to bus {bus!r}: {why}")


def _payload(text: str) -> Any:
    """A rendered target input as a function's event: its JSON, or the text itself when
    it is not JSON (a text template), as EventBridge hands it on."""
    try:
        return json.loads(text)
    except ValueError:
        return text


class BusRouter:
    """Routes one bus's events to its rules' targets (see the module docstring)."""

    def __init__(self, bus: str, rules: Sequence[RuleConfig], targets: Targets) -> None:
        self.bus = bus
        self.rules = [r for r in rules if r.bus == bus and r.pattern is not None]
        self.targets = targets
        self.routed = 0
        self.matched = 0
        self._stopping = False

    def stop(self) -> None:
        self._stopping = True

    async def run(self) -> None:
        store = self.targets.store
        queue = bus_queue(self.bus)
        while not self._stopping:
            try:
                messages = await store.receive(queue, max_messages=10, wait_time=1.0,
                                               visibility_timeout=BUS_VISIBILITY)
            except _TRANSIENT as exc:
                log.warning("bus %s: receiving failed: %s", self.bus, exc)
                await asyncio.sleep(1.0)
                continue
            for message in messages:
                try:
                    await self._route(message.body, message.attributes)
                except _TRANSIENT as exc:
                    log.warning("bus %s: routing an event failed: %s; it is routed again "
                                "when it reappears", self.bus, exc)
                    continue
                try:
                    await store.delete(queue, message.receipt_handle)
                except SluicegateError as exc:
                    log.warning("bus %s: deleting a routed event failed: %s", self.bus, exc)
                self.routed += 1

    async def _route(self, body: str, attributes: Mapping[str, Mapping[str, str]]) -> None:
        try:
            event = json.loads(body)
        except ValueError:
            log.warning("bus %s: dropped a message that is not an event: %.80s", self.bus,
                        body)
            return
        hops = int(attributes.get(_HOPS, {}).get("StringValue", "0"))
        for rule in self.rules:
            assert rule.pattern is not None
            if rule.pattern.matches(event):
                self.matched += 1
                await self.targets.send(rule, event, ingestion_time=self.targets.store.clock(),
                                        hops=hops)


class Scheduler:
    """Fires the App's scheduled rules, each tick once across processes."""

    def __init__(self, rules: Sequence[RuleConfig], targets: Targets, holder: str) -> None:
        self.rules = [r for r in rules if r.schedule is not None]
        self.targets = targets
        self.holder = holder
        self.fired = 0
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        if not self.rules:
            return
        await asyncio.gather(*(self._run_rule(rule) for rule in self.rules))

    async def _run_rule(self, rule: RuleConfig) -> None:
        schedule = rule.schedule
        assert schedule is not None
        store = self.targets.store
        targets = self.targets
        arn = rule_arn(rule.name, bus=rule.bus, region=targets.region,
                       account=targets.account_id)
        tick = schedule.next_after(store.clock())
        while not self._stopping.is_set() and math.isfinite(tick):
            wait = tick - store.clock()
            if wait > 0:
                try:
                    await asyncio.wait_for(self._stopping.wait(), wait)
                    return
                except TimeoutError:
                    pass
            try:
                claim = await store.create_item(
                    TICKS_TABLE, f"{arn}@{math.floor(tick)}", status="fired",
                    data=self.holder, ttl=_tick_ttl(schedule.next_after(tick) - tick))
                if claim.written:
                    event = scheduled_event(rule=arn, tick=tick, account=targets.account_id,
                                            region=targets.region)
                    await targets.send(rule, event, ingestion_time=store.clock(), hops=0)
                    self.fired += 1
            except SluicegateError as exc:
                log.warning("rule %s: the tick of %s failed: %s", rule.name,
                            iso8601(tick), exc)
            tick = schedule.next_after(max(tick, store.clock()))


def _tick_ttl(period: float) -> float:
    """How long a tick's claim is kept: long enough that every process has tried it (a
    process whose clock lags by up to a minute), at most an hour."""
    if not math.isfinite(period):
        period = 3600.0
    return max(120.0, min(period, 3600.0))


def destination_event(source: str, detail_type: str, detail: Any, *,
                      now: float, region: str, account_id: str) -> dict[str, Any]:
    """An event a destination (an async invocation's record) puts on a bus."""
    return make_event(source=source, detail_type=detail_type, detail=detail, time=now,
                      event_id=str(uuid.uuid4()), account=account_id, region=region)
