"""The App's controller: runs its ``app.control`` rules (:mod:`sluicegate.control`) in
exactly one process.

Every process that may run the rules (each ``sluicegate run`` of an App with rules, and
``sluicegate control APP``) claims the store lease ``controller:APP`` (limit 1, first
come first served) every :attr:`Controller.renew_every` seconds; the holder evaluates the
rules, the others wait. A leader that stops gives the lease back; one killed with
``kill -9`` holds it until it expires, ``ttl`` seconds after its last renewal at most
(a ``sluicegate run`` on the same machine releases a gone worker's leases sooner, see
:mod:`sluicegate.cluster.coordinator`), and another process takes over. A leader stops
writing once its own deadline for the lease passed (a margin before the store's), so two
leaders never write at once while the hosts' clocks agree within that margin
(:mod:`sluicegate.cluster.leases`); and each write is a compare-and-set on the version
the rule read, so a write never undoes one it did not see.

A rule writes only when the value it computes differs from the live one, as
``controller:RULE``, with the rule's reason.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sluicegate.cluster.leases import Lease, LeaseClient
from sluicegate.control import ControlRule, HealthCheck, Signals, StoreKey
from sluicegate.core.live import (
    Schedule,
    breaker_scope,
    check_live_value,
    function_scope,
    mapping_scope,
)
from sluicegate.errors import SluicegateError, StoreError
from sluicegate.runtime.waiting import wait_event
from sluicegate.store.base import Store

if TYPE_CHECKING:
    from sluicegate.app import App
    from sluicegate.runtime.metrics import Metrics

__all__ = ["CONTROL_LEASE_TTL", "Controller", "controller_lease"]

log = logging.getLogger("sluicegate.control")

CONTROL_LEASE_TTL = 10.0
"""Seconds the controller's lease outlives its last renewal: how long a killed leader's
rules go unevaluated at most."""


def controller_lease(app: App) -> str:
    """The lease whose holder runs ``app``'s rules."""
    return f"controller:{app.name}"


def _scope(rule: ControlRule) -> str:
    if rule.kind == "mapping":
        return mapping_scope(rule.target)
    if rule.kind == "function":
        return function_scope(rule.target)
    return breaker_scope(rule.target)


def _probe(url: str, timeout: float) -> bool:
    """Whether GET ``url`` answers 2xx within ``timeout`` seconds."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return 200 <= int(answer.status) < 300
    except (OSError, ValueError):
        return False


class Controller:
    """Runs an App's rules while it holds the App's controller lease.

    Parameters:
        app: the App (its ``controls``).
        store: an open store.
        holder: this process's id among the lease's claimants.
        ttl: the lease's ttl (:data:`CONTROL_LEASE_TTL`).
        metrics: this process's metrics (inside ``sluicegate run``), for callable rules.
        on_write: called after every write that won (the runtime applies it at once).
        clock: epoch seconds (schedules, signals).
        monotonic: for the lease's deadline.
    """

    def __init__(
        self,
        app: App,
        store: Store,
        *,
        holder: str,
        ttl: float = CONTROL_LEASE_TTL,
        metrics: Metrics | None = None,
        on_write: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.store = store
        self.holder = holder
        self.ttl = ttl
        self.metrics = metrics
        self.on_write = on_write
        self.clock = clock
        self.lease = Lease(controller_lease(app), ttl, monotonic)
        self.leases = LeaseClient(store, holder, ttl=ttl)
        self.renew_every = min(ttl / 4.0, 1.0)
        self.rules = list(app.controls)
        self._due = {rule.name: 0.0 for rule in self.rules}
        self.writes = 0
        """Writes this controller made that won."""
        self.leading = False
        self._failing = False
        self._warned: set[str] = set()
        self.closing = False
        self._wakeup = asyncio.Event()

    def stop(self) -> None:
        """End :meth:`run` at its next turn (it gives the lease back)."""
        self.closing = True
        self._wakeup.set()

    # ------------------------------------------------------------------ the loop
    async def run(self) -> None:
        """Claim the lease and run the rules until cancelled; give the lease back."""
        try:
            while not self.closing:
                try:
                    await self._renew()
                    if self.leading:
                        await self.step()
                    if self._failing:
                        log.warning("controller: store reachable again")
                        self._failing = False
                except StoreError as exc:
                    if not self._failing:
                        log.warning("controller: %s; retrying", exc)
                        self._failing = True
                await wait_event(self._wakeup, self._sleep())
                self._wakeup.clear()
        finally:
            await self.release()

    async def release(self) -> None:
        """Give the lease back (errors are left to the ttl)."""
        if self.lease.held:
            self.lease.lost()
            self.leading = False
            try:
                await self.leases.release(self.lease.name)
            except StoreError:
                pass

    def _sleep(self) -> float:
        if not self.leading or not self.rules:
            return self.renew_every
        now = self.clock()
        soonest = min(self._due.values())
        return max(0.01, min(self.renew_every, soonest - now))

    async def _renew(self) -> None:
        sent = self.lease.clock()
        grant = await self.leases.claim(self.lease.name, want=1, limit=1, fair=False)
        self.lease.update(grant, sent)
        leading = self.lease.share() > 0
        if leading != self.leading:
            log.warning("controller: %s %s the rules of %s", self.holder,
                        "runs" if leading else "no longer runs", self.app.name)
        self.leading = leading

    # ------------------------------------------------------------------ one pass
    async def step(self) -> int:
        """Evaluate the rules that are due (while the lease is valid); writes that won."""
        won = 0
        for rule in self.rules:
            now = self.clock()
            if now < self._due[rule.name]:
                continue
            if self.lease.share() <= 0:
                self.leading = False
                break
            self._due[rule.name] = now + rule.every
            try:
                if await self.evaluate(rule, now):
                    won += 1
            except StoreError:
                raise
            except Exception as exc:  # noqa: BLE001 - a rule's error must not stop the others
                if rule.name not in self._warned:
                    log.warning("controller: rule %s failed: %s", rule.name,
                                f"{type(exc).__name__}: {exc}")
                    self._warned.add(rule.name)
        return won

    async def evaluate(self, rule: ControlRule, now: float) -> bool:
        """Compute ``rule``'s value and write it when it differs from the live one.
        Whether a write won."""
        scope = _scope(rule)
        current = await self.store.get_settings(scope)
        live = current.values.get(rule.setting)
        value = await self._value(rule, now, live)
        if value is None:
            return False
        value = check_live_value(rule.setting, value, f"control {rule.name}")
        if value == live:
            return False
        changes: dict[str, Any] = {rule.setting: value}
        why = rule.describe()
        if rule.kind == "breaker" and rule.setting == "state":
            changes["reason"] = why
        write = await self.store.write_settings(
            scope, changes, by=f"controller:{rule.name}", why=why,
            expected_version=current.version)
        if write.won:
            self.writes += 1
            self._warned.discard(rule.name)
            log.warning("controller: %s %s -> %r (%s)", rule.target, rule.setting, value, why)
            if self.on_write is not None:
                self.on_write()
        return write.won

    async def _value(self, rule: ControlRule, now: float, live: Any) -> Any:
        source = rule.source
        if isinstance(source, Schedule):
            return source.value(now)
        if isinstance(source, HealthCheck):
            healthy = await asyncio.to_thread(_probe, source.url, source.timeout)
            return source.healthy if healthy else source.unhealthy
        if isinstance(source, StoreKey):
            raw = await self.store.read_shared(source.key)
            return None if raw is None else source.parse(raw)
        if callable(source):
            value = source(await self.signals(rule, now, live))
            if inspect.isawaitable(value):
                value = await value
            return value
        return source

    async def signals(self, rule: ControlRule, now: float, live: Any) -> Signals:
        """What a callable rule is given (see :class:`~sluicegate.control.Signals`)."""
        configured: Any = None
        queue = in_flight = metrics = None
        if rule.kind == "mapping":
            mappings: list[Any] = [*self.app.mappings, *self.app.stream_mappings]
            mapping = next((m for m in mappings if m.name == rule.target), None)
            if mapping is not None:
                configured = getattr(mapping, rule.setting, None)
                source = getattr(mapping, "queue", None)
                if source is not None:
                    try:
                        queue = await self.store.counts(source)
                    except SluicegateError:
                        queue = None
            in_flight = sum(int((w.get("in_flight") or {}).get(rule.target, 0))
                            for w in await self.store.list_workers())
            if self.metrics is not None:
                metrics = self.metrics.totals(rule.target)
        elif rule.kind == "function":
            function = self.app.functions.get(rule.target)
            configured = None if function is None else function.config.reserved_concurrency
        return Signals(now, rule.name, rule.target, rule.setting, live, configured, queue,
                       in_flight, metrics)
