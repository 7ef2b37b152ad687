"""Live limits in a running runtime: applying the store's live settings, and the handle a
handler changes them through (``context.limits``).

:class:`LiveLimits` reads the live settings (:mod:`sluicegate.core.live`) a runtime's
mappings, functions and breakers have in the store and applies them:

- ``maximum_concurrency``: the mapping's ``maximum_concurrency`` limit term takes the
  live value (the App's when unset); a fixed policy's level and an aws policy's cap
  follow it, so a raise above the App's value takes effect too;
- ``enabled``: ``false`` pauses the mapping (it receives nothing: its outstanding long
  polls are cut short, as at a stop; invocations in flight finish), ``true`` resumes it;
- ``reserved_concurrency``: the function is registered again in the pool with the live
  reservation (a value the account cannot give is logged and left unapplied);
- breaker ``state``: the runtime's breaker of that name is tripped or reset
  (``Breaker.trip(now, reason, by=)`` / ``reset(now, by=)``), by the writer's name.

When. In a cluster (SQLite, Redis), each sync round reads the store's settings revision
with its other shared values (no extra store call); when it moved, the scopes written
since are read and applied in the same round: a change is applied by every process within
a sync interval (0.25 s) and a store call. Without a cluster (the memory store),
:meth:`LiveLimits.run` reads the revision every :data:`POLL_INTERVAL`. A write made in
this process (a handler, the controller) is applied at once.

At start, before the mappings receive, the live settings are applied (a mapping paused
before a restart stays paused), and the App's mappings, functions and breakers are
*declared* in the store (the shared value :data:`DECLARED`), so ``sluicegate limits``
lists them and refuses names no runtime knows.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from sluicegate.core.breaker import Breaker
from sluicegate.core.limit import TERM_MAXIMUM_CONCURRENCY, TERM_SCALING, Fixed, PolicyTerm
from sluicegate.core.live import (
    MAPPING_SETTINGS,
    breaker_scope,
    check_live_value,
    function_scope,
    mapping_scope,
)
from sluicegate.core.scaling import AwsScaling, FixedScaling, make_policy
from sluicegate.errors import ConfigError, SluicegateError, StoreError
from sluicegate.store.base import Store
from sluicegate.store.live import SETTINGS_REVISION, LiveSettings

if TYPE_CHECKING:
    from sluicegate.app import App
    from sluicegate.runtime.driver import Runtime
    from sluicegate.runtime.runner import MappingRunner

__all__ = ["DECLARED", "POLL_INTERVAL", "LiveLimits", "ScopeLimits",
           "declared_app", "read_declared"]

log = logging.getLogger("sluicegate.live")

T = TypeVar("T")

POLL_INTERVAL = 0.25
"""Seconds between two reads of the settings revision by a runtime without a cluster."""

DECLARED = "live:declared"
"""The shared value listing the mappings, functions and breakers runtimes have run on
this store (JSON), with their App settings."""


# ---------------------------------------------------------------------- declaration
def declared_app(app: App, breakers: Iterable[str] = ()) -> dict[str, Any]:
    """What a runtime declares of ``app``: its mappings (kind, source, function, the App's
    ``maximum_concurrency`` and ``enabled``), functions (reserved concurrency) and
    breakers."""
    mappings: dict[str, Any] = {}
    for m in app.mappings:
        mappings[m.name] = {"kind": "queue", "source": m.queue, "function": m.function,
                            "maximum_concurrency": m.maximum_concurrency,
                            "enabled": m.enabled}
    for sm in app.stream_mappings:
        mappings[sm.name] = {"kind": "stream", "source": sm.stream, "function": sm.function,
                             "maximum_concurrency": None, "enabled": sm.enabled}
    functions = {name: {"reserved_concurrency": f.config.reserved_concurrency}
                 for name, f in app.functions.items()}
    account = {"concurrency_limit": app.account.concurrency_limit,
               "min_unreserved": app.account.min_unreserved}
    return {"mappings": mappings, "functions": functions, "breakers": sorted(breakers),
            "account": account}


async def read_declared(store: Store) -> dict[str, Any]:
    """The declaration every runtime on ``store`` made (empty lists: none ran yet)."""
    raw = await store.read_shared(DECLARED)
    out: dict[str, Any] = {"mappings": {}, "functions": {}, "breakers": []}
    if raw:
        try:
            stored = json.loads(raw)
        except json.JSONDecodeError:
            return out
        if isinstance(stored, dict):
            out["mappings"].update(stored.get("mappings") or {})
            out["functions"].update(stored.get("functions") or {})
            out["breakers"] = sorted(set(stored.get("breakers") or []))
            if isinstance(stored.get("account"), dict):
                out["account"] = stored["account"]
    return out


async def declare(store: Store, declaration: Mapping[str, Any]) -> None:
    """Merge ``declaration`` into the store's (App settings of the names it gives win)."""
    current = await read_declared(store)
    current["mappings"].update(declaration["mappings"])
    current["functions"].update(declaration["functions"])
    current["breakers"] = sorted(set(current["breakers"]) | set(declaration["breakers"]))
    if "account" in declaration:
        current["account"] = declaration["account"]
    await store.write_shared(DECLARED, json.dumps(current, sort_keys=True))


# ---------------------------------------------------------------------- applying
class LiveLimits:
    """Applies the store's live settings to one runtime (see the module docstring).

    Parameters:
        runtime: the runtime (its store, clock, runners, pool, and ``breakers``: name ->
            breaker, when it has them).
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.revision = 0
        """The store's settings revision applied last."""
        self.applied: dict[str, LiveSettings] = {}
        self._wakeup = asyncio.Event()
        self.closing = False
        """Set by the runtime as it stops: ends :meth:`run`'s loop even if the cancel that
        follows is lost (a cancel landing inside a store call can be swallowed)."""
        self._lock = asyncio.Lock()
        self._warned: set[str] = set()
        self._publishing: set[asyncio.Task[None]] = set()
        self.applied_wall: float | None = None
        """Epoch seconds (wall clock) when the last revision was applied."""
        self.applied_at: dict[int, float] = {}
        """Revision -> when (runtime clock) this runtime applied it (the last few)."""

    @property
    def store(self) -> Store:
        return self.runtime.store

    def breakers(self) -> Mapping[str, Breaker]:
        """The runtime's breakers by label (:meth:`Runtime.breakers`), once built."""
        return dict(self.runtime.breakers().items())

    async def start(self) -> None:
        """Declare the App and apply what is set, before the mappings start; publish
        every state change of the runtime's breakers (:func:`breaker_state`), and the
        state of those no runtime reported yet (so ``sluicegate breakers`` shows one)."""
        runtime = self.runtime
        await declare(self.store, declared_app(runtime.app, self.breakers()))
        loop = asyncio.get_running_loop()
        for name, breaker in self.breakers().items():
            breaker.on_change(_BreakerPublisher(self, loop, name))
            if await self.store.read_shared(breaker_state(name)) is None:
                cluster = runtime.cluster
                await self._publish(name, {
                    "state": breaker.state(runtime.clock()), "previous": "",
                    "reason": "runtime started", "by": "", "at": time.time(),
                    "worker": cluster.worker_id if cluster is not None else ""})
        await self.refresh()

    def publish_breaker(self, name: str, state: dict[str, Any]) -> None:
        """Write breaker ``name``'s observed state to the store (in a task of its own;
        a failure is logged: the next change writes again)."""
        task = asyncio.get_running_loop().create_task(self._publish(name, state))
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    async def _publish(self, name: str, state: dict[str, Any]) -> None:
        try:
            await self.store.write_shared(breaker_state(name), json.dumps(state))
        except StoreError as exc:
            log.info("live limits: publishing breaker %s failed: %s", name, exc)

    async def refresh(self) -> bool:
        """Read the scopes written since the last applied revision and apply them.
        Whether anything was applied."""
        async with self._lock:
            revision, scopes = await self.store.list_settings(since=self.revision)
            if revision <= self.revision:
                return False
            for settings in scopes:
                self.apply(settings)
            self.revision = revision
            self.applied_at[revision] = self.runtime.clock()
            self.applied_wall = time.time()
            while len(self.applied_at) > 64:
                del self.applied_at[min(self.applied_at)]
            return bool(scopes)

    def paused(self, mapping: str) -> bool:
        """Whether the live settings applied last pause ``mapping``."""
        settings = self.applied.get(mapping_scope(mapping))
        return settings is not None and settings.values.get("enabled") is False

    def info(self) -> dict[str, Any]:
        """What the worker registry shows (``sluicegate workers --json``): the settings
        revision applied and when (epoch seconds)."""
        return {"live_revision": self.revision, "live_applied": self.applied_wall}

    async def seen(self, value: str | None) -> None:
        """The settings revision a cluster round read (the shared value
        :data:`~sluicegate.store.live.SETTINGS_REVISION`): refresh when it moved."""
        if value is not None and int(value) > self.revision:
            await self.refresh()

    def poke(self) -> None:
        """A write was made in this process: apply it without waiting for the next read."""
        self._wakeup.set()
        cluster = self.runtime.cluster
        if cluster is not None:
            cluster.wake()

    async def run(self, interval: float = POLL_INTERVAL) -> None:
        """Without a cluster: read the revision every ``interval`` seconds (or when
        poked) until cancelled."""
        from sluicegate.runtime.waiting import wait_event

        failing = False
        while not self.closing:
            await wait_event(self._wakeup, interval)
            self._wakeup.clear()
            try:
                await self.seen(await self.store.read_shared(SETTINGS_REVISION))
                failing = False
            except StoreError as exc:
                if not failing:
                    log.warning("live limits: reading settings failed: %s", exc)
                failing = True

    # ------------------------------------------------------------------ one scope
    def apply(self, settings: LiveSettings) -> None:
        """Apply one scope's settings (as stored now)."""
        kind, _, name = settings.scope.partition(":")
        before = self.applied.get(settings.scope)
        self.applied[settings.scope] = settings
        try:
            if kind == "mapping":
                for runner in self._runners(name):
                    self._apply_mapping(runner, settings)
            elif kind == "function":
                self._apply_function(name, settings)
            elif kind == "breaker":
                self._apply_breaker(name, settings, before)
        except (SluicegateError, ValueError) as exc:
            log.warning("live limits: %s version %d not applied: %s", settings.scope,
                        settings.version, exc)
        except Exception:  # a bug of ours must not stop the cluster's sync
            log.exception("live limits: %s version %d not applied", settings.scope,
                          settings.version)

    def context_limits(self, runner: MappingRunner) -> Limits:
        """The ``context.limits`` of ``runner``'s invocations (one per runner)."""
        store = self.store
        return limits_for(store, asyncio.get_running_loop(),
                          store.url if store.shared else None, runner.name,
                          runner.function.name, written=self.poke)

    def _runners(self, mapping: str) -> list[MappingRunner]:
        return [r for r in self.runtime.runners if r.name == mapping]

    def _apply_mapping(self, runner: MappingRunner, settings: LiveSettings) -> None:
        runtime = self.runtime
        now = runtime.clock()
        config = runner.io.config if runner.io is not None else None  # type: ignore[attr-defined]
        values = settings.values
        core = runner.core
        limit = core.concurrency_limit
        if limit.get(TERM_MAXIMUM_CONCURRENCY) is not None and config is not None:
            value = values.get("maximum_concurrency", config.maximum_concurrency)
            value = check_live_value("maximum_concurrency", value, f"mapping {runner.name}")
            limit.replace(Fixed(TERM_MAXIMUM_CONCURRENCY, value))
            self._policy_follows(runner, config, value, now)
        elif "maximum_concurrency" in values and runner.name not in self._warned:
            self._warned.add(runner.name)
            log.warning("live limits: %s is a stream mapping: maximum_concurrency does not "
                        "apply (its shards and parallelization factor bound it)", runner.name)
        enabled = values.get("enabled")
        if enabled is None and config is not None:
            enabled = config.enabled
        if enabled is False and not core.paused:
            core.pause(now)
            if runner.io is not None:
                runner.io.stop()  # cut outstanding long polls short: nothing more comes
            log.warning("%s paused by %s", runner.name, settings.changed_by)
        elif enabled is True and core.paused and not runner.stopping:
            core.resume(now)
            log.warning("%s resumed by %s", runner.name, settings.changed_by)
        runner.wake.set()

    def _policy_follows(self, runner: MappingRunner, config: Any, value: int | None,
                        now: float) -> None:
        """A fixed policy's level and an aws policy's cap take the live value."""
        limit = runner.core.concurrency_limit
        term = limit.get(TERM_SCALING)
        policy = getattr(term, "policy", None)
        if isinstance(policy, FixedScaling) and config.scaling == "fixed":
            if value is None:
                pool = self.runtime_pool()
                reserved = pool.reserved_concurrency(config.function) if pool else None
                policy = make_policy(config, reserved_concurrency=reserved)
            else:
                policy = FixedScaling(value)
            limit.replace(PolicyTerm(policy))
        elif isinstance(policy, AwsScaling):
            policy.set_maximum_concurrency(now, value)
        cluster = self.runtime.cluster
        if cluster is not None:
            cluster.set_maximum_concurrency(runner.name, value)

    def runtime_pool(self) -> Any:
        return getattr(self.runtime, "pool", None)

    def _apply_function(self, name: str, settings: LiveSettings) -> None:
        runtime = self.runtime
        function = runtime.app.functions.get(name)
        pool = self.runtime_pool()
        if function is None or pool is None:
            return
        value = settings.values.get("reserved_concurrency",
                                    function.config.reserved_concurrency)
        value = check_live_value("reserved_concurrency", value, f"function {name}")
        if pool.reserved_concurrency(name) != value:
            pool.register(dataclasses.replace(function.config, reserved_concurrency=value))
            log.warning("function %s: reserved concurrency %s (by %s)", name,
                        "unset" if value is None else value, settings.changed_by)
        for runner in runtime.runners:
            if runner.function.name == name:
                # the terms are the pool's (or none, for the aws policy): tell the limit's
                # watchers anyway, the runtime sizes the function's workers by them
                runner.core.concurrency_limit.refresh()
                runner.wake.set()

    def _apply_breaker(self, name: str, settings: LiveSettings,
                       before: LiveSettings | None) -> None:
        breaker = self.breakers().get(name)
        if breaker is None:
            return
        state = settings.values.get("state")
        if before is not None and before.values.get("state") == state and (
                before.version == settings.version):
            return
        now = self.runtime.clock()
        by = settings.changed_by or "operator"
        if state == "open":
            breaker.trip(now, str(settings.values.get("reason") or "tripped by hand"), by=by)
        elif state == "closed":
            breaker.reset(now, by=by)
        for runner in self.runtime.runners:
            runner.wake.set()


def breaker_state(name: str) -> str:
    """The shared value holding breaker ``name``'s last observed state change (JSON:
    state, previous state, reason, by, at, worker): what ``sluicegate breakers`` shows."""
    return f"breaker-state:{name}"


class _BreakerPublisher:
    """A breaker's ``on_change`` callback: publishes each change from the loop's thread.
    A small class rather than a closure (it is kept by the breaker)."""

    __slots__ = ("live", "loop", "name")

    def __init__(self, live: LiveLimits, loop: asyncio.AbstractEventLoop, name: str) -> None:
        self.live = live
        self.loop = loop
        self.name = name

    def __call__(self, old: object, new: object, reason: object = "", by: object = "") -> None:
        cluster = self.live.runtime.cluster
        state = {"state": str(new), "previous": str(old), "reason": str(reason or ""),
                 "by": str(by or ""), "at": time.time(),
                 "worker": cluster.worker_id if cluster is not None else ""}
        self.loop.call_soon_threadsafe(self.live.publish_breaker, self.name, state)


# ---------------------------------------------------------------------- context.limits
class ScopeLimits:
    """One scope's live settings as a handler sees them (``context.limits.mapping``,
    ``context.limits.function``): read with its version, compare and set.

    Sync handlers call :meth:`get`/:meth:`set`; async handlers ``await`` :meth:`aget`/
    :meth:`aset` (a sync call from the event loop's thread would block the loop it
    needs, and is refused).

    Parameters:
        scope: the store scope.
        by: who writes (``function:NAME``).
        call: runs a coroutine factory with an open store (this process's store on its
            event loop, or a store of its own in a process environment).
        allowed: the settings this scope takes.
        written: called after a write that won (the runtime applies it at once).
    """

    def __init__(self, scope: str, by: str, call: _StoreCall, allowed: tuple[str, ...],
                 written: Callable[[], None] | None = None) -> None:
        self.scope = scope
        self.by = by
        self._call = call
        self._allowed = allowed
        self._written = written

    def __repr__(self) -> str:
        return f"ScopeLimits({self.scope!r})"

    async def aget(self) -> LiveSettings:
        """The scope's live settings and version (version 0: never set)."""
        return await self._call.run(lambda store: store.get_settings(self.scope))

    async def aset(self, *, expected_version: int | None = None, why: str = "",
                   **settings: Any) -> bool:
        """Set live ``settings`` (``None``: back to the App's); with ``expected_version``,
        only if the scope is still at that version. Whether this write won.

        Raises:
            ConfigError: a setting this scope does not take, or a value out of range.
        """
        values = self._check(settings)
        write = await self._call.run(lambda store: store.write_settings(
            self.scope, values, by=self.by, why=why, expected_version=expected_version))
        if write.won and self._written is not None:
            self._written()
        return write.won

    def get(self) -> LiveSettings:
        """:meth:`aget` for a sync handler."""
        return self._call.blocking(lambda store: store.get_settings(self.scope))

    def set(self, *, expected_version: int | None = None, why: str = "",
            **settings: Any) -> bool:
        """:meth:`aset` for a sync handler."""
        values = self._check(settings)
        write = self._call.blocking(lambda store: store.write_settings(
            self.scope, values, by=self.by, why=why, expected_version=expected_version))
        if write.won and self._written is not None:
            self._written()
        return write.won

    def _check(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        if not settings:
            raise ConfigError("settings", "", "at least one of " + ", ".join(self._allowed),
                              f"limits of {self.scope}")
        out: dict[str, Any] = {}
        for name, value in settings.items():
            if name not in self._allowed:
                raise ConfigError(name, value, "one of " + ", ".join(self._allowed),
                                  f"limits of {self.scope}")
            out[name] = check_live_value(name, value, f"limits of {self.scope}")
        return out


class Limits:
    """``context.limits``: the live settings of the invocation's mapping and function.

    Attributes:
        mapping: ``maximum_concurrency`` and ``enabled`` of the mapping.
        function: ``reserved_concurrency`` of the function.
    """

    def __init__(self, mapping: ScopeLimits, function: ScopeLimits) -> None:
        self.mapping = mapping
        self.function = function

    def __repr__(self) -> str:
        return f"Limits({self.mapping.scope!r}, {self.function.scope!r})"

    def spec(self) -> dict[str, Any]:
        """What a process environment needs to build the same handle (``url`` ``None``:
        this store cannot be reached from another process, and the handle refuses)."""
        return {"url": self.mapping._call.url, "mapping": self.mapping.scope, "function": self.function.scope,
                "by": self.mapping.by}


class _StoreCall:
    """How a handle reaches its store: this process's open store on its loop, or (in a
    process environment) a store of its own opened by URL for each call."""

    def __init__(self, store: Store | None, loop: asyncio.AbstractEventLoop | None,
                 url: str | None) -> None:
        self.store = store
        self.loop = loop
        self.url = url

    async def run(self, fn: Callable[[Store], Awaitable[T]]) -> T:
        store, loop = self.store, self.loop
        if store is not None and loop is not None:
            if asyncio.get_running_loop() is loop:
                return await fn(store)
            future = asyncio.run_coroutine_threadsafe(_on(store, fn), loop)
            return await asyncio.wrap_future(future)
        return await _by_url(self.url, fn)

    def blocking(self, fn: Callable[[Store], Awaitable[T]]) -> T:
        store, loop = self.store, self.loop
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None:
            raise ConfigError("context.limits", "get()/set()",
                              "await aget()/aset() in an async handler (a blocking call "
                              "would stop the event loop it waits for)", "limits")
        if store is not None and loop is not None:
            return asyncio.run_coroutine_threadsafe(_on(store, fn), loop).result()
        return asyncio.run(_by_url(self.url, fn))


async def _on(store: Store, fn: Callable[[Store], Awaitable[T]]) -> T:
    return await fn(store)


async def _by_url(url: str | None, fn: Callable[[Store], Awaitable[T]]) -> T:
    if url is None:
        raise ConfigError("context.limits", "memory://",
                          "a store other processes reach (SQLite, Redis): a process "
                          "environment cannot reach the runtime's memory store", "limits")
    from sluicegate.store import open_store

    async with open_store(url) as store:
        return await fn(store)


def limits_for(store: Store | None, loop: asyncio.AbstractEventLoop | None, url: str | None,
               mapping: str, function: str,
               written: Callable[[], None] | None = None) -> Limits:
    """The ``context.limits`` of an invocation of ``function`` from ``mapping``."""
    call = _StoreCall(store, loop, url)
    by = f"function:{function}"
    return Limits(ScopeLimits(mapping_scope(mapping), by, call, MAPPING_SETTINGS, written),
                  ScopeLimits(function_scope(function), by, call, ("reserved_concurrency",),
                              written))


def limits_from_spec(spec: Mapping[str, Any]) -> Limits:
    """A process environment's ``context.limits``, from :meth:`Limits.spec`."""
    url = spec.get("url")
    call = _StoreCall(None, None, None if url is None else str(url))
    by = str(spec["by"])
    return Limits(ScopeLimits(str(spec["mapping"]), by, call, MAPPING_SETTINGS),
                  ScopeLimits(str(spec["function"]), by, call, ("reserved_concurrency",)))


__all__ += ["Limits", "breaker_scope", "breaker_state", "limits_for", "limits_from_spec"]
