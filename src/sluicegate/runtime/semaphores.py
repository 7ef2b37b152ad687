"""Semaphores and task tokens in the runtime: what mappings and handlers use of the store's
semaphores and parked batches (:mod:`sluicegate.store.semaphores`).

Three uses:

- **Do not start** (:class:`MappingGate`): a mapping that names semaphores
  (``app.map(..., semaphores=("db",))``) gets one term ``semaphore:NAME`` per semaphore
  in its limit, whose value is the slots it holds: one per running invocation plus one
  spare taken ahead. While it cannot take a spare (every slot is someone else's) the term
  is at its invocations in flight, so the mapping does not receive and no message's
  receive count is burnt. The spare is taken by waiting in the semaphore's FIFO queue
  (woken by a release, never polled); an invocation starts on the spare, releases its
  slot when it ends, and the gate queues for the next spare at once. The store nudges
  a spare's holder when someone queues behind it (and a grant says who waits already):
  a spare no invocation took within :data:`IDLE_BEFORE_YIELD` is then handed back and
  queued for again behind them, so an idle mapping (an empty queue) does not keep a
  slot from one that has work, and nobody polls to find out.
- **Block mid-way** (:class:`SemaphoreUse`): ``with context.semaphore("db", timeout=2):``
  or ``async with``, from a handler of any isolation; the wait is bounded by the
  invocation's remaining time, and :class:`~sluicegate.errors.SemaphoreTimeout` is raised
  when it runs out. A handler in process isolation opens its own connection to the
  store (SQLite or Redis) in its environment; the memory store cannot be shared.
- **Task tokens** (:meth:`InvocationTools.park`, :func:`send_task_success`,
  :func:`send_task_failure`, :func:`send_task_heartbeat`): a handler parks its batch
  behind a token and returns; the invocation's concurrency slot is free, the messages
  stay in flight, hidden for ``heartbeat`` seconds at a time, until another process
  completes the token (or the heartbeat runs out and the messages come back). The names
  follow AWS Step Functions' ``SendTaskSuccess``/``SendTaskFailure``/``SendTaskHeartbeat``.

Every slot held is renewed every third of its ``lease_ttl`` while held, so a process that
dies (``kill -9``) frees its slots at most ``lease_ttl`` seconds later.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from sluicegate.core.config import SemaphoreConfig
from sluicegate.core.limit import Share
from sluicegate.core.results import interpret_response
from sluicegate.core.semaphore import semaphore_term_name
from sluicegate.core.types import OutcomeKind
from sluicegate.errors import (
    ConfigError,
    InputError,
    InvalidReceiptHandle,
    SemaphoreTimeout,
    StoreError,
)
from sluicegate.store.base import Store
from sluicegate.store.semaphores import ParkedBatch, new_task_token

if TYPE_CHECKING:
    from sluicegate.runtime.runner import MappingRunner

__all__ = [
    "MAX_HEARTBEAT",
    "CallbackResult",
    "Hold",
    "InvocationTools",
    "MappingGate",
    "SemaphoreClient",
    "SemaphoreUse",
    "send_task_failure",
    "send_task_heartbeat",
    "send_task_success",
]

log = logging.getLogger("sluicegate.runtime")

MAX_HEARTBEAT = 43_200
"""Longest heartbeat of a parked batch, in seconds: SQS's longest visibility timeout."""

IDLE_BEFORE_YIELD = 0.05
"""Seconds a mapping's spare slot may stay unused, once someone waits for it, before the
mapping hands it back (an invocation about to start takes it sooner)."""

RETRY_AFTER_STORE_ERROR = 1.0
"""Seconds a mapping's gate waits before queueing again after its store failed."""


def owner_name() -> str:
    """Who holds: ``host:pid``, shown by ``sluicegate semaphores``."""
    return f"{socket.gethostname()}:{os.getpid()}"


# ---------------------------------------------------------------------- holding
class Hold:
    """One slot of a semaphore held by this process, renewed until released.

    Attributes:
        name: the semaphore.
        task_token: the holder's task token in the store.
        fencing_token: the grant's fencing token: stamp writes with it, so a downstream
            can refuse a holder whose slot expired and went to another.
        lost: the slot expired before it was released (the process stalled longer than
            the lease): another holder may have it.
    """

    def __init__(self, client: SemaphoreClient, name: str, task_token: str, fencing_token: int,
                 ttl: float) -> None:
        self.client = client
        self.name = name
        self.task_token = task_token
        self.fencing_token = fencing_token
        self.ttl = ttl
        self.lost = False
        self.behind = 0
        """How many waited behind when it was granted."""
        self._renewer: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"Hold({self.name!r}, fencing_token={self.fencing_token})"

    def start(self) -> None:
        self._renewer = asyncio.get_running_loop().create_task(self._renew())

    async def _renew(self) -> None:
        store = self.client.store
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                (token,) = await store.renew_semaphore(self.name, [self.task_token],
                                                       ttl=self.ttl)
            except StoreError as exc:
                log.warning("semaphore %s: renewing failed: %s", self.name, exc)
                continue
            if token == 0:
                self.lost = True
                log.warning("semaphore %s: the slot of fencing token %d expired while held",
                            self.name, self.fencing_token)
                return

    async def release(self) -> None:
        """Give the slot back (waking the next waiter); never raises a store error."""
        renewer, self._renewer = self._renewer, None
        if renewer is not None:
            renewer.cancel()
        try:
            await self.client.store.release_semaphore(self.name, self.task_token)
        except StoreError as exc:  # it expires by itself
            log.warning("semaphore %s: release failed (the slot frees by expiry): %s",
                        self.name, exc)


class SemaphoreClient:
    """Takes slots of an App's semaphores through one store, on the loop the store was
    opened on.

    Parameters:
        store: an open store.
        configs: the App's semaphores by name.
        owner: shown as who holds (default ``host:pid``).
    """

    def __init__(self, store: Store, configs: Mapping[str, SemaphoreConfig], *,
                 owner: str | None = None) -> None:
        self.store = store
        self.configs = dict(configs)
        self.owner = owner or owner_name()
        self.loop: asyncio.AbstractEventLoop | None = None

    def bind(self) -> None:
        """Remember the running loop as the store's (call on it)."""
        self.loop = asyncio.get_running_loop()

    def config(self, name: str) -> SemaphoreConfig:
        config = self.configs.get(name)
        if config is None:
            raise ConfigError("semaphore", name, "a semaphore defined with app.semaphore()",
                              "context.semaphore")
        return config

    async def hold(self, name: str, *, timeout: float | None, info: str = "",
                   on_nudge: Callable[[], None] | None = None) -> Hold:
        """Take a slot of ``name``, waiting in arrival order up to ``timeout`` seconds
        (``None``: as long as it takes).

        Raises:
            SemaphoreTimeout: not granted in time.
            ConfigError: no such semaphore in the App.
        """
        config = self.config(name)
        token = new_task_token()
        grant = await self.store.acquire_semaphore(
            name, token, limit=config.limit, ttl=config.lease_ttl, timeout=timeout,
            info=info or self.owner, on_nudge=on_nudge)
        if not grant.acquired:
            raise SemaphoreTimeout(
                f"semaphore {name!r} not taken within {timeout or 0:g} s "
                f"({len(await self._holders(name))} of {config.limit} held)")
        hold = Hold(self, name, token, grant.token, config.lease_ttl)
        hold.behind = grant.behind
        hold.start()
        return hold

    async def _holders(self, name: str) -> list[Any]:
        states = await self.store.list_semaphores([name])
        return list(states[0].holders) if states else []


# ---------------------------------------------------------------------- mid-way
class SemaphoreUse:
    """What ``context.semaphore(name, timeout=None)`` returns: a context manager for
    ``with`` (sync handlers, in a thread) and ``async with`` (async handlers), giving the
    :class:`Hold`. The wait is bounded by the invocation's remaining time."""

    def __init__(self, client: SemaphoreClient, name: str, timeout: float | None,
                 context: Any) -> None:
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0
        ):
            raise InputError(f"timeout={timeout!r} is invalid: need seconds >= 0 or None")
        client.config(name)
        self.client = client
        self.name = name
        self.timeout = timeout
        self.context = context
        self.hold: Hold | None = None

    def _bounded(self) -> float:
        remaining = float(self.context.get_remaining_time_in_millis()) / 1000
        return remaining if self.timeout is None else min(self.timeout, remaining)

    def _info(self) -> str:
        request = str(getattr(self.context, "aws_request_id", ""))[:8]  # enough to find it
        return (f"{self.client.owner} {getattr(self.context, 'function_name', '')} "
                f"{request}").strip()

    def _on_client_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.client.loop
        except RuntimeError:
            return False

    async def __aenter__(self) -> Hold:
        coro = self.client.hold(self.name, timeout=self._bounded(), info=self._info())
        hold: Hold
        if self._on_client_loop():
            hold = await coro
        else:
            hold = await asyncio.wrap_future(self._submit(coro))
        self.hold = hold
        return hold

    async def __aexit__(self, *exc: object) -> None:
        hold, self.hold = self.hold, None
        if hold is None:
            return
        if self._on_client_loop():
            await hold.release()
        else:
            await asyncio.wrap_future(self._submit(hold.release()))

    def __enter__(self) -> Hold:
        if self._on_client_loop():
            raise InputError(
                f"'with context.semaphore({self.name!r})' in an async handler would block "
                "the event loop: use 'async with'")
        future = self._submit(self.client.hold(self.name, timeout=self._bounded(),
                                               info=self._info()))
        self.hold = future.result()
        return self.hold

    def __exit__(self, *exc: object) -> None:
        hold, self.hold = self.hold, None
        if hold is not None:
            self._submit(hold.release()).result()

    def _submit(self, coro: Any) -> concurrent.futures.Future[Any]:
        loop = self.client.loop
        if loop is None or loop.is_closed():
            coro.close()
            raise InputError("context.semaphore needs a running sluicegate runtime")
        return asyncio.run_coroutine_threadsafe(coro, loop)


# ---------------------------------------------------------------------- per invocation
class InvocationTools:
    """What a handler's context reaches through ``context.semaphore`` and
    ``context.park`` for one invocation (set by the runtime on the context).

    Parameters:
        client: the runtime's semaphore client (``None``: the App defines none).
        can_park: the batch may be parked (a queue mapping's).
    """

    def __init__(self, client: SemaphoreClient | None, *, can_park: bool) -> None:
        self.client = client
        self.can_park = can_park
        self.park_token: str | None = None
        self.parked: float | None = None
        """The heartbeat the handler parked its batch with, if it did."""
        self.fencing_tokens: dict[str, int] = {}
        """The fencing token of each slot the mapping took for this invocation."""

    def semaphore(self, context: Any, name: str, timeout: float | None) -> SemaphoreUse:
        if self.client is None:
            raise ConfigError("semaphore", name, "a semaphore defined with app.semaphore()",
                              "context.semaphore")
        return SemaphoreUse(self.client, name, timeout, context)

    def park(self, heartbeat: float) -> str:
        """Park the batch behind a new task token (see the module docstring)."""
        if not self.can_park:
            raise InputError("context.park() parks a queue mapping's batch; this "
                             "invocation has none")
        if isinstance(heartbeat, bool) or not isinstance(heartbeat, int | float) or not (
            1 <= heartbeat <= MAX_HEARTBEAT
        ):
            raise InputError(f"heartbeat={heartbeat!r} is invalid: allowed 1-{MAX_HEARTBEAT:,} s")
        self.parked = float(heartbeat)
        if self.park_token is None:
            self.park_token = new_task_token()
        return self.park_token

    def fields(self) -> dict[str, Any]:
        """What an execution environment in another process needs to do the same."""
        client = self.client
        if self.can_park and self.park_token is None:
            self.park_token = new_task_token()
        return {
            "store": None if client is None else client.store.url,
            "shared": client is not None and client.store.shared,
            "owner": None if client is None else client.owner,
            "semaphores": {} if client is None else {
                n: [c.limit, c.lease_ttl] for n, c in client.configs.items()},
            "park_token": self.park_token,
            "fencing_tokens": self.fencing_tokens,
        }


class ChildTools(InvocationTools):
    """:class:`InvocationTools` in an execution environment of ``isolation="process"``:
    its semaphores go through a store connection of the environment's own, opened on
    first use on a thread with its own event loop (kept for the environment's life)."""

    _clients: ClassVar[dict[str, SemaphoreClient]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, fields: Mapping[str, Any]) -> None:
        super().__init__(None, can_park=fields.get("park_token") is not None)
        self.park_token = fields.get("park_token")
        self.fencing_tokens = {str(k): int(v) for k, v in
                               fields.get("fencing_tokens", {}).items()}
        self._fields = fields

    def semaphore(self, context: Any, name: str, timeout: float | None) -> SemaphoreUse:
        if self.client is None:
            self.client = self._client()
        return super().semaphore(context, name, timeout)

    def _client(self) -> SemaphoreClient | None:
        fields = self._fields
        url = fields.get("store")
        if not url or not fields.get("semaphores"):
            return None
        if not fields.get("shared"):
            raise InputError("context.semaphore in isolation='process' needs a store other "
                             "processes reach (sqlite:// or redis://), not memory://")
        with ChildTools._lock:
            client = ChildTools._clients.get(url)
            if client is None:
                client = ChildTools._clients[url] = _background_client(url, fields)
        return client


def _background_client(url: str, fields: Mapping[str, Any]) -> SemaphoreClient:
    """A client whose store lives on a daemon thread's event loop."""
    from sluicegate.store import open_store

    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="sluicegate-semaphores",
                     daemon=True).start()
    store = open_store(url)
    asyncio.run_coroutine_threadsafe(store.open(), loop).result()
    configs = {n: SemaphoreConfig(n, int(v[0]), int(v[1]))
               for n, v in fields["semaphores"].items()}
    client = SemaphoreClient(store, configs, owner=f"{fields.get('owner')}/{os.getpid()}")
    client.loop = loop
    return client


# ---------------------------------------------------------------------- do not start
class _SlotsHeld:
    """A ``semaphore:NAME`` term's value: the slots the mapping holds of it."""

    def __init__(self, gate: MappingGate, name: str) -> None:
        self.gate = gate
        self.name = name

    def __call__(self) -> int:
        return self.gate.in_use + len(self.gate.spare[self.name])


class MappingGate:
    """The semaphores a mapping needs, as terms of its limit (see the module docstring).

    Parameters:
        runner: the mapping's runner (its core's limit gets the terms; its loop is woken
            when a spare is taken).
        client: the runtime's semaphore client.
        names: the semaphores, each needed once per invocation.
    """

    def __init__(self, runner: MappingRunner, client: SemaphoreClient,
                 names: tuple[str, ...]) -> None:
        self.runner = runner
        self.client = client
        self.names = names
        self.in_use = 0
        self.spare: dict[str, list[Hold]] = {n: [] for n in names}
        self._taking: dict[str, asyncio.Task[None]] = {}
        self._handing: set[asyncio.Task[None]] = set()
        self._yielding: set[str] = set()
        self.stopped = False
        for name in names:
            client.config(name)
            runner.core.concurrency_limit.add(Share(semaphore_term_name(name), _SlotsHeld(self, name)))

    def holding(self) -> tuple[tuple[str, int, int], ...]:
        """``(name, held, limit)`` of each semaphore: the slots the mapping holds (its
        invocations' and its spare) and the semaphore's limit, for status and metrics."""
        return tuple((name, self.in_use + len(self.spare[name]),
                      self.client.config(name).limit) for name in self.names)

    def start(self) -> None:
        """Queue for a spare slot of each semaphore."""
        for name in self.names:
            self._want(name)

    def _want(self, name: str) -> None:
        if self.stopped or self.runner.stopping or self.spare[name] or name in self._taking:
            return
        self._taking[name] = asyncio.get_running_loop().create_task(self._take(name))

    async def _take(self, name: str) -> None:
        try:
            while True:
                try:
                    hold = await self.client.hold(
                        name, timeout=None, info=f"{self.client.owner} {self.runner.name}",
                        on_nudge=functools.partial(self._nudged, name))
                    break
                except StoreError as exc:
                    log.warning("%s: cannot queue for semaphore %s: %s", self.runner.name,
                                name, exc)
                    await asyncio.sleep(RETRY_AFTER_STORE_ERROR)
        finally:
            self._taking.pop(name, None)
        if self.stopped:
            await hold.release()
            return
        self.spare[name].append(hold)
        self.runner.wake.set()
        if hold.behind:
            self._nudged(name)

    def _nudged(self, name: str) -> None:
        """Someone waits for ``name`` while this mapping has a spare of it: hand one back
        unless an invocation takes it within :data:`IDLE_BEFORE_YIELD`."""
        if self.spare[name] and name not in self._yielding:
            self._yielding.add(name)
            asyncio.get_running_loop().call_later(IDLE_BEFORE_YIELD, self._yield, name)

    def _yield(self, name: str) -> None:
        self._yielding.discard(name)
        if self.stopped or not self.spare[name]:
            return
        hold = self.spare[name].pop(0)
        task = asyncio.get_running_loop().create_task(self._hand_back(name, hold))
        self._handing.add(task)
        task.add_done_callback(self._handing.discard)

    async def _hand_back(self, name: str, hold: Hold) -> None:
        await hold.release()
        self._want(name)  # behind the ones waiting now

    async def take(self) -> list[Hold]:
        """The slots an invocation starts on: a spare of each semaphore (taken now,
        waiting, in the rare case one is missing); the gate queues for new spares."""
        self.in_use += 1
        holds = []
        try:
            for name in self.names:
                spare = self.spare[name]
                if spare:
                    holds.append(spare.pop())
                else:
                    holds.append(await self.client.hold(name, timeout=None))
                self._want(name)
        except BaseException:
            await self.give_back(holds)
            raise
        return holds

    async def give_back(self, holds: list[Hold]) -> None:
        """An invocation ended: release its slots (waking the next waiters)."""
        self.in_use -= 1
        for hold in holds:
            await hold.release()

    async def stop(self) -> None:
        """Stop queueing; release the spares."""
        self.stopped = True
        for task in list(self._taking.values()):
            task.cancel()
        for task in [*self._taking.values(), *self._handing]:
            with contextlib.suppress(BaseException):
                await task
        for name in self.names:
            spares, self.spare[name] = self.spare[name], []
            for hold in spares:
                await hold.release()


# ---------------------------------------------------------------------- task tokens
@dataclass(frozen=True, slots=True)
class CallbackResult:
    """What a completion or heartbeat did.

    Attributes:
        mapping, queue: whose batch it was.
        deleted: messages deleted (a success).
        returned: messages made visible again (a failure, or items a success's output
            lists as failed).
        stale: messages that had come back already (their heartbeat ran out and they
            were received again): nothing was done to them.
        kept: messages whose hiding a heartbeat extended.
        reason: a failed output's or a failure's reason.
    """

    mapping: str
    queue: str
    deleted: int = 0
    returned: int = 0
    stale: int = 0
    kept: int = 0
    reason: str = ""


class _ParkedItems:
    """A parked batch as :func:`~sluicegate.core.results.interpret_response` reads it."""

    def __init__(self, ids: frozenset[str]) -> None:
        self.message_ids = ids
        self.item_name = "messageId"


async def _take(store: Store, token: str) -> ParkedBatch:
    batch = await store.parked(token, take=True)
    if batch is None:
        raise InputError(f"task token {token!r} is unknown: completed already, or its "
                         "heartbeat ran out and its messages came back")
    return batch


async def _return(store: Store, batch: ParkedBatch, ids: list[str]) -> tuple[int, int]:
    returned = stale = 0
    for mid in ids:
        try:
            await store.change_visibility(batch.queue, batch.receipt_handles[mid], 0)
            returned += 1
        except InvalidReceiptHandle:
            stale += 1
    return returned, stale


async def send_task_success(store: Store, token: str, output: Any = None) -> CallbackResult:
    """Complete ``token`` as a success: its batch's messages are deleted, except, when the
    mapping reports batch item failures, those ``output`` lists in ``batchItemFailures``
    (they come back now). An invalid ``output`` fails the whole batch, as an invalid
    handler response does.

    Raises:
        InputError: an unknown token (completed already, or timed out).
    """
    batch = await _take(store, token)
    ids = frozenset(batch.receipt_handles)
    outcome = interpret_response(output, _ParkedItems(ids),
                                 report_batch_item_failures=batch.report_batch_item_failures)
    failed = ids if outcome.kind is OutcomeKind.ERROR else outcome.failed
    keep = [m for m in batch.receipt_handles if m not in failed]
    flags = await store.delete_many(batch.queue, [batch.receipt_handles[m] for m in keep])
    returned, stale = await _return(store, batch, [m for m in batch.receipt_handles
                                                   if m in failed])
    deleted = sum(flags)
    return CallbackResult(batch.mapping, batch.queue, deleted=deleted, returned=returned,
                          stale=stale + len(flags) - deleted, reason=outcome.reason)


async def send_task_failure(store: Store, token: str, error: str = "",
                            cause: str = "") -> CallbackResult:
    """Complete ``token`` as a failure (a function error of its batch): the messages come
    back now, their receive count already counted, so the queue's redrive policy moves
    them to its dead-letter queue after ``max_receive_count`` receives.

    Raises:
        InputError: an unknown token.
    """
    batch = await _take(store, token)
    returned, stale = await _return(store, batch, list(batch.receipt_handles))
    reason = ": ".join(p for p in (error, cause) if p) or "task failure"
    log.info("%s: parked batch %s failed: %s", batch.mapping, token, reason)
    return CallbackResult(batch.mapping, batch.queue, returned=returned, stale=stale,
                          reason=reason)


async def send_task_heartbeat(store: Store, token: str) -> CallbackResult:
    """Keep ``token``'s messages hidden for another heartbeat.

    Raises:
        InputError: an unknown token.
    """
    batch = await store.parked(token)
    if batch is None:
        raise InputError(f"task token {token!r} is unknown: completed already, or its "
                         "heartbeat ran out and its messages came back")
    kept = stale = 0
    for handle in batch.receipt_handles.values():
        try:
            await store.change_visibility(batch.queue, handle, batch.heartbeat)
            kept += 1
        except InvalidReceiptHandle:
            stale += 1
    await store.park(batch, ttl=batch.heartbeat)
    return CallbackResult(batch.mapping, batch.queue, kept=kept, stale=stale)
