"""The asyncio driver: runs an App's mappings against a store, in real time.

For each mapping, whatever its source, one
:class:`~sluicegate.runtime.runner.MappingRunner` asks the mapping's core what to do
(the mapping protocol, :class:`~sluicegate.core.protocol.MappingCore`), performs it
(reads, invocations, settle actions) in tasks of its own, reports the results back to
the core and sleeps until the core's next deadline or the next report; a small adapter
per source (:mod:`sluicegate.runtime.sources`) does the source's reads and settle
actions. No mapping rule lives here: batching, settlement, scaling, throttling and
limits are the core's; this module builds the runners and runs them.

Delivery is at least once: a message is deleted only after its batch succeeded, and
anything unfinished when the runtime stops reappears after its visibility timeout.

On a store that other processes may share (SQLite, Redis) the runtime is a worker of a
:class:`~sluicegate.cluster.coordinator.Cluster` by default: it builds its cores with the
cluster's pool, the cluster adds its share to each queue mapping's limit (the term
``cluster``) and lets stream mappings serve only the shards they lease, and the
cluster's sync task runs beside the mappings, so the limits hold across every process on
the store, with no flag. On the memory store (one process) nothing is coordinated.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from sluicegate.app import App, Function
from sluicegate.core.async_events import AsyncEventMapping, AsyncStatistics, async_queue
from sluicegate.core.breaker import TERM_BREAKER, Breaker
from sluicegate.core.buses import bus_queue
from sluicegate.core.config import SHARED_ISOLATION, MappingConfig, effective_visibility_timeout
from sluicegate.core.events_bus import PutEventsResult
from sluicegate.core.mapping import QueueMapping
from sluicegate.core.pool import ConcurrencyPool
from sluicegate.core.scaling import ScalingPolicy, make_policy
from sluicegate.core.stream_mapping import StreamMapping
from sluicegate.core.streams import StreamConfig, StreamMappingConfig
from sluicegate.core.types import QueueRecord
from sluicegate.errors import StoreError, StoreUnavailable, Throttled
from sluicegate.invocation import (
    InvokeResult,
    forget_loop_thread,
    register_loop_thread,
    result_of,
)
from sluicegate.runtime.async_invoke import (
    AsyncIO,
    Deliveries,
    EventDecoder,
    accept,
    async_mapping,
    async_queue_config,
    ensure_async_queue,
)
from sluicegate.runtime.breakers import RuntimeBreakers
from sluicegate.runtime.buses import (
    BusRouter,
    Scheduler,
    Targets,
    destination_event,
    ensure_bus_queues,
    put_events,
)
from sluicegate.runtime.current import bind_store
from sluicegate.runtime.environments import ModuleInvoker
from sluicegate.runtime.events import (
    LambdaContext,
    aws_identity,
    function_arn,
    queue_arn,
    sqs_record,
)
from sluicegate.runtime.invoker import Invoker
from sluicegate.runtime.isolation import ProcessInvoker, handler_reference
from sluicegate.runtime.metrics import Metrics
from sluicegate.runtime.runner import MappingRunner, wait_event
from sluicegate.runtime.semaphores import MappingGate, SemaphoreClient
from sluicegate.runtime.sources import DELETE_GATHER, QueueIO, StreamIO
from sluicegate.runtime.stream_events import kinesis_record, stream_arn
from sluicegate.store.base import Store
from sluicegate.wording import plural

if TYPE_CHECKING:
    from sluicegate.cluster.coordinator import Cluster
    from sluicegate.runtime.controller import Controller

T = TypeVar("T")

__all__ = ["DELETE_GATHER", "MappingSummary", "RunSummary", "Runtime"]

log = logging.getLogger("sluicegate.runtime")

DRAIN_CHECK_INTERVAL = 1.0
"""Longest time between two checks that every mapped queue is empty, with ``until_empty``.

A mapping that receives notices at once when its queue runs short (its receives do not
wait first) and has the queues checked then; this timer is for mappings that are not
receiving (paused, say) while another process empties their queue. Each check counts
every mapped queue, which costs milliseconds per 10,000 messages on SQLite."""

DRAIN_CHECK_MIN_GAP = 0.005
"""Shortest time between two such checks: after deletes settle, the queues are checked
again after this long, so bursts of deletes cost one check."""

STORE_PATIENCE = 10.0
"""Seconds :meth:`Runtime.run` keeps retrying a store that became unreachable while it
prepares or sums up (a Redis restart, dropped connections), before giving up."""

DEFAULT_GRACE_PERIOD = 30.0
"""Seconds in-flight invocations get to finish after a stop is requested."""


@dataclass(frozen=True, slots=True)
class MappingSummary:
    """What one mapping did during a run."""

    name: str
    invocations: int
    errors: int
    throttles: int
    messages_deleted: int
    peak_concurrency: int
    maximum_concurrency: int | None
    filtered: int = 0
    """Messages or records the mapping's filter criteria rejected (FilteredOutEventCount)."""
    events: AsyncStatistics | None = None
    """A function's internal queue of asynchronous invocations: its events' counts."""


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What a run did, for the CLI's closing lines and for tests."""

    elapsed: float
    mappings: tuple[MappingSummary, ...]
    dead_lettered: int
    stopped_by: str
    abandoned: int = 0
    """In-flight invocations abandoned, by a second signal or at the end of the grace
    period: their messages were not deleted and reappear after their visibility timeout."""
    abandoned_by: str = ""
    """What abandoned them: the second signal (``signal SIGTERM``) or ``grace period``."""
    cold_starts: int = 0
    """Execution environments started during the run (cold starts), every function's."""
    asynchronous: tuple[MappingSummary, ...] = ()
    """What each function's internal queue of asynchronous invocations did (mapping
    ``async:FUNCTION->FUNCTION``); ``messages_deleted`` counts the events concluded
    (succeeded, or discarded on the failure path)."""

    @property
    def processed(self) -> int:
        """Messages and records the mappings settled, and asynchronous events concluded."""
        return (sum(m.messages_deleted for m in self.mappings)
                + sum(m.messages_deleted for m in self.asynchronous))

    @property
    def throughput(self) -> float:
        return self.processed / self.elapsed if self.elapsed > 0 else 0.0


class Runtime:
    """Runs every enabled mapping of an App against a store.

    Parameters:
        app: the App whose mappings to run.
        store: an opened store; the runtime creates or updates the App's queues in it.
        metrics: where per-second metrics go (a new :class:`Metrics` by default).
        grace_period: seconds in-flight invocations get to finish after :meth:`stop`.
        clock: epoch seconds; the store's clock by default.
        cluster: coordination with other runtimes serving the same mappings (see
            :mod:`sluicegate.cluster`). ``"auto"`` (the default): a cluster over ``store``
            with the default lease ttl when the store is shared (SQLite, Redis), none on
            the memory store; ``None``: none (this process must then be alone on the
            store, or the limits hold per process only).
    """

    def __init__(
        self,
        app: App,
        store: Store,
        *,
        metrics: Metrics | None = None,
        grace_period: float = DEFAULT_GRACE_PERIOD,
        clock: Callable[[], float] | None = None,
        cluster: Cluster | Literal["auto"] | None = "auto",
    ) -> None:
        self.app = app
        if cluster == "auto":
            cluster = None
            if store.shared:
                from sluicegate.cluster.coordinator import Cluster

                cluster = Cluster(store)
        self.cluster: Cluster | None = cluster
        self.store = store
        self.clock = clock or store.clock
        self.metrics = metrics or Metrics(clock=self.clock)
        self.grace_period = grace_period
        self.region, self.account_id = aws_identity()
        self.semaphores: SemaphoreClient | None = (
            SemaphoreClient(store, app.semaphores) if app.semaphores else None)
        """Slots of the App's semaphores (``app.semaphore``); ``None`` when it has none."""
        self.runners: list[MappingRunner] = []
        """Every mapping's runner: the queue mappings', then the stream mappings'."""
        self._breakers = RuntimeBreakers(app.breakers, self.clock)
        self._pool: ConcurrencyPool | None = None
        """The pool the mappings draw from, once built."""
        self._sizers: dict[str, _InvokerSizer] = {}
        self.routers: list[BusRouter] = []
        """The event buses' routers, once the run starts."""
        self.scheduler: Scheduler | None = None
        """The scheduled rules' timer, once the run starts."""
        self._built = asyncio.Event()
        """Set once the run has built its mappings and invokers."""
        self.loop: asyncio.AbstractEventLoop | None = None
        """The event loop the run is on, once it runs (``app.invoke`` from other threads
        hands its work there)."""
        self._stop_reason: str | None = None
        self._stop = asyncio.Event()
        self._abandoned = 0
        self._abandoned_by = ""
        #: Set when a mapping's receives come back short or, after that, it deletes:
        #: the moments a queue may have run empty, so ``until_empty`` checks promptly.
        self.settled = asyncio.Event()
        self._started = time.monotonic()
        from sluicegate.runtime.live import LiveLimits

        self.live = LiveLimits(self)
        """Applies the store's live settings (:mod:`sluicegate.runtime.live`)."""
        self.controller: Controller | None = None
        """The App's controller, when it has ``app.control`` rules (built by :meth:`run`)."""
        self._closing = False
        """Set before the monitor is cancelled: its loop ends at its next turn even if the
        cancel is lost (on Python 3.11 redis-py's ``asyncio.wait_for`` around a socket
        write swallows a cancel that arrives as the write completes)."""

    # ------------------------------------------------------------------ control
    def stop(self, reason: str = "stop requested") -> None:
        """Ask the run to end: receiving stops, in-flight invocations get the grace period.

        A second signal (a second Ctrl-C) does not wait for the grace period: in-flight
        invocations are abandoned at once and their messages reappear after their
        visibility timeout.
        """
        if self._stop_reason is None:
            self._stop_reason = reason
        elif reason.startswith("signal"):
            log.warning("%s again: abandoning in-flight invocations", reason)
            self._abandoned_by = reason
            for runner in self._all_runners():
                self._abandoned += len(runner.invocations)
                runner.cancel_invocations()
        self._stop.set()

    def breakers(self) -> RuntimeBreakers:
        """The run's circuit breakers by label (a shared breaker's name, or a mapping's
        name for its own): trip, reset, state; filled when the run builds its mappings."""
        return self._breakers

    @property
    def pool(self) -> ConcurrencyPool | None:
        """The account's pool of this run (``None`` until the mappings are built)."""
        return self._pool

    def _all_runners(self) -> list[MappingRunner]:
        return list(self.runners)

    @property
    def queue_sources(self) -> list[QueueIO]:
        """The queue mappings' adapters."""
        return [r.io for r in self.runners if isinstance(r.io, QueueIO)]

    @property
    def stream_sources(self) -> list[StreamIO]:
        """The stream mappings' adapters (their shards, in a cluster)."""
        return [r.io for r in self.runners if isinstance(r.io, StreamIO)]

    async def prepare(self) -> None:
        """Create or update the App's queues (dead-letter queues first) and streams in
        the store."""
        self.app.check_destinations()
        queues = self.app.queues
        for config in sorted(queues.values(), key=lambda q: q.dead_letter_queue is not None):
            await self.store.ensure_queue(config)
        for function in self.app.functions.values():
            await ensure_async_queue(self.store, function.config)
        await ensure_bus_queues(self.store, self.app)
        for stream in self.app.streams.values():
            await self.store.ensure_stream(stream)

    def _queue_filter(self, config: MappingConfig, arn: str) -> Any:
        """The mapping's filter criteria as a predicate on received records, or ``None``."""
        criteria = config.filter_criteria
        if not criteria:
            return None
        region = self.region

        def accept(record: QueueRecord) -> bool:
            return criteria.matches(sqs_record(record.payload, queue_arn=arn, region=region))

        return accept

    async def _build(self) -> None:
        """Create the mappings' cores and one invoker per mapped function.

        Raises:
            ConfigError: a function with ``isolation="process"`` whose handler cannot be
                imported in a new process.
        """
        cluster = self.cluster
        pool: ConcurrencyPool = (
            cluster.new_pool(self.app) if cluster is not None else self.app.new_pool()
        )
        invokers: dict[str, Invoker | ProcessInvoker] = {}
        now = self.clock()
        identity = {"region": self.region, "account_id": self.account_id}
        for config in self.app.mappings:
            if not config.enabled:
                continue
            function = self.app.functions[config.function]
            queue = self.app.queues[config.queue]
            if function.name not in invokers:
                invokers[function.name] = self._invoker_for(function)
            arn = queue_arn(queue.name, **identity)
            policy: ScalingPolicy | None = None
            if cluster is not None:
                inner = make_policy(
                    config, reserved_concurrency=pool.reserved_concurrency(config.function)
                )
                policy = cluster.queue_policy(config, inner, self.clock)
            core = QueueMapping(
                config,
                visibility_timeout=effective_visibility_timeout(
                    queue.visibility_timeout, config.maximum_batching_window,
                    function.config.timeout,
                ),
                pool=pool,
                policy=policy,
                now=now,
                record_filter=self._queue_filter(config, arn),
                receive_turns=True,
            )
            runner = MappingRunner(self, config.name, function, invokers[function.name], core)
            runner.can_park = True
            self._gate(runner, config.semaphores)
            self._breakers.attach(config.name, config.breaker, core, runner.wake.set)
            qio = QueueIO(runner, config, queue, arn)
            runner.io = qio
            self.runners.append(runner)
            if cluster is not None:
                cluster.attach_queue(qio)
        for sconfig in self.app.stream_mappings:
            if not sconfig.enabled:
                continue
            function = self.app.functions[sconfig.function]
            stream = self.app.streams[sconfig.stream]
            if function.name not in invokers:
                invokers[function.name] = self._invoker_for(function)
            arn = stream_arn(stream.name, **identity)
            farn = function_arn(function.name, **identity)
            build = self._stream_builder(sconfig, stream, pool, farn, arn)
            score = build(await self._patiently(
                "reading checkpoints",
                functools.partial(self.store.get_checkpoints, sconfig.name),
            ))
            runner = MappingRunner(self, sconfig.name, function, invokers[function.name],
                                   score)
            self._gate(runner, sconfig.semaphores)
            self._breakers.attach(sconfig.name, sconfig.breaker, score, runner.wake.set)
            sio = StreamIO(runner, sconfig, stream, arn, build=build)
            runner.io = sio
            self.runners.append(runner)
            if cluster is not None:
                cluster.attach_stream(sio)
        deliveries = Deliveries(self.app, self.store, self._put_on_bus)
        for function in self.app.functions.values():
            if function.name not in invokers:
                invokers[function.name] = self._invoker_for(function)
            aconfig = function.async_config
            farn = function_arn(function.name, **identity)
            policy = None
            if cluster is not None:
                policy = cluster.queue_policy(aconfig.mapping, AsyncEventMapping.default_policy(
                    function.name, pool.reserved_concurrency(function.name), pool), self.clock)
            decode = EventDecoder(function.name, self.region, self.account_id)
            acore = async_mapping(aconfig, function.config, pool=pool, function_arn=farn,
                                  now=now, decode=decode, policy=policy)
            runner = MappingRunner(self, acore.name, function, invokers[function.name], acore)
            aio = AsyncIO(runner, aconfig, async_queue_config(function.config),
                          queue_arn(async_queue(function.name), **identity), deliveries,
                          decode)
            runner.io = aio
            self.runners.append(runner)
            if cluster is not None:
                cluster.attach_queue(aio)
        self._pool = pool
        for name, invoker in invokers.items():
            sizer = self._sizers[name] = _InvokerSizer(self, name, invoker)
            sizer()
            for runner in self.runners:
                if runner.function.name == name:
                    runner.core.concurrency_limit.watch(sizer)
        self.metrics.set_limits(self._limits(), self.limit_reasons(), **self._states())

    def _gate(self, runner: MappingRunner, names: tuple[str, ...]) -> None:
        """Give ``runner`` the semaphores its mapping needs (a ``semaphore:NAME`` term of
        its limit each)."""
        if names:
            assert self.semaphores is not None  # the App checked the names
            runner.gate = MappingGate(runner, self.semaphores, names)

    def _stream_builder(
        self, config: StreamMappingConfig, stream: StreamConfig, pool: ConcurrencyPool,
        farn: str, arn: str,
    ) -> Callable[[dict[int, int]], StreamMapping]:
        """A function building the mapping's core from stored checkpoints (again when a
        cluster changes the shards this runtime serves)."""

        def build(checkpoints: dict[int, int]) -> StreamMapping:
            now = self.clock()
            core = StreamMapping(
                config,
                stream,
                pool=pool,
                checkpoints=checkpoints,
                now=now,
                function_arn=farn,
                stream_arn=arn,
                record_filter=self._stream_filter(config, arn),
            )
            # a rebuilt core (its shards changed hands) gets the mapping's breaker again;
            # the runner's wake was registered with the first
            self._breakers.attach(config.name, config.breaker, core, None)
            if self.live.paused(config.name):  # a rebuilt core stays paused
                core.pause(now)
            return core

        return build

    def _stream_filter(self, config: StreamMappingConfig, arn: str) -> Any:
        criteria = config.filter_criteria
        if not criteria:
            return None
        region, account = self.region, self.account_id

        def accept(record: Any) -> bool:
            built = kinesis_record(record.data, stream_arn=arn, region=region, account_id=account)
            return criteria.matches(built["kinesis"])

        return accept

    def _shown(self) -> list[MappingRunner]:
        """The runners status and metrics show: every event source mapping, and the
        internal queues of asynchronous invocations that have read an event (an idle one,
        which every function has, would only add its one poller to the totals)."""
        return [r for r in self.runners
                if not isinstance(r.io, AsyncIO) or r.core.received_records]

    def _limits(self) -> dict[str, int]:
        """Each mapping's limit, as its core computes it (the minimum of its terms)."""
        now = self.clock()
        return {r.name: r.core.concurrency_limit.value(now) for r in self._shown()}

    def _states(self) -> dict[str, dict[str, Any]]:
        """Each mapping's breaker state (those with a breaker), whether it is paused and
        the semaphore slots it holds, as :meth:`Metrics.set_limits` takes them."""
        now = self.clock()
        breakers: dict[str, str] = {}
        shown = self._shown()
        for r in shown:
            term = r.core.concurrency_limit.get(TERM_BREAKER)
            if isinstance(term, Breaker):
                breakers[r.name] = term.state(now)
        semaphores = {r.name: r.gate.holding() for r in shown if r.gate is not None}
        return {"breakers": breakers,
                "paused": {r.name: bool(r.core.paused) and not r.stopping for r in shown},
                "semaphores": semaphores}

    def limit_reasons(self) -> dict[str, str]:
        """Each mapping's binding limit term (its core's ``limit_reason``: ``"scaling"``,
        ``"maximum_concurrency"``, ``"cluster"``, ``"shards"``, ...), for status and
        metrics."""
        now = self.clock()
        return {r.name: r.core.limit_reason(now) for r in self._shown()}

    def _invoker_for(self, function: Function) -> Invoker | ProcessInvoker:
        """The invoker of ``function``: execution environments in this process (the
        default) or in worker processes, or one shared module (``"shared"``)."""
        isolation = function.config.isolation
        if isolation in SHARED_ISOLATION:
            return Invoker(
                function.handler, function=function.config,
                max_workers=self._workers_for(function),
            )
        names = [m.name for m in self.app.mappings if m.function == function.name]
        names += [m.name for m in self.app.stream_mappings if m.function == function.name]
        mapping = names[0] if len(names) == 1 else None
        metrics = self.metrics

        def cold_started() -> None:
            metrics.cold_started(mapping)

        if isolation == "process":
            return ProcessInvoker(
                handler_reference(self.app, function),
                function=function.config,
                max_workers=self._workers_for(function),
                on_cold_start=cold_started,
            )
        return ModuleInvoker(
            function.handler, function=function.config,
            max_workers=self._workers_for(function), on_cold_start=cold_started,
        )

    def _workers_for(self, function: Function) -> int:
        """Execution environments (and threads for a sync handler) ``function`` may
        need at once: what its mappings' limits can reach together (each limit's
        :attr:`~sluicegate.core.limit.ConcurrencyLimit.ceiling`), within its reserved
        concurrency and the account's. Before the mappings exist (as the invoker is
        made), the function's bound alone; environments and threads start only when
        used, so a high bound costs nothing idle."""
        pool = self._pool
        reserved = (function.config.reserved_concurrency if pool is None
                    else pool.reserved_concurrency(function.name))
        bound = self.app.account.concurrency_limit
        if reserved is not None:
            bound = min(bound, reserved)
        if pool is None:
            return max(1, bound)
        mapped = 0
        for runner in self.runners:
            if runner.function.name == function.name:
                reach = runner.core.concurrency_limit.ceiling
                if isinstance(runner.io, AsyncIO):
                    # an internal queue's pollers follow its traffic: what it runs now
                    # (resized as its level moves, see AsyncIO)
                    reach = min(reach, runner.core.limit)
                mapped += min(bound, reach)
        return max(1, min(bound, mapped))

    async def _put_on_bus(self, bus: str, source: str, detail_type: str, detail: Any) -> None:
        """A destination's delivery to an event bus: the record as an event's detail."""
        event = destination_event(source, detail_type, detail, now=self.store.clock(),
                                  region=self.region, account_id=self.account_id)
        await self.store.send(bus_queue(bus), json.dumps(event))

    async def put_events(self, entries: Sequence[Mapping[str, Any]]) -> PutEventsResult:
        """EventBridge's PutEvents on this App's buses (see
        :func:`sluicegate.runtime.buses.put_events`)."""
        return await put_events(self.store, self.app, entries, region=self.region,
                                account_id=self.account_id)

    def attach(self) -> None:
        """Make this runtime, on the running event loop, the one ``app.invoke`` uses
        (:meth:`run` does; so does :func:`sluicegate.serve` before its run starts)."""
        loop = asyncio.get_running_loop()
        self.loop = loop
        register_loop_thread(loop)
        if self not in self.app._runtimes:
            self.app._runtimes.append(self)

    def detach(self) -> None:
        """Undo :meth:`attach` (the run ended, or never started)."""
        if self in self.app._runtimes:
            self.app._runtimes.remove(self)
        if self.loop is not None:
            forget_loop_thread(self.loop)

    async def invoke(self, function: Function, event: Any,
                     invocation_type: str) -> InvokeResult:
        """Invoke ``function`` of this running App (see :mod:`sluicegate.invocation`):
        ``"Event"`` accepts the event into its internal queue; ``"RequestResponse"`` runs
        it now in its execution environments, under a slot of its concurrency.

        Raises:
            Throttled: no slot free for a ``RequestResponse``.
        """
        if invocation_type == "Event":
            return InvokeResult(202, await accept(self.store, function.config, event))
        await self._built.wait()
        pool = self._pool
        runner = next(r for r in self.runners if r.function.name == function.name)
        if pool is not None and not pool.try_acquire(function.name):
            reserved = pool.reserved_concurrency(function.name) is not None
            raise Throttled(function.name,
                            "ReservedFunctionConcurrentInvocationLimitExceeded" if reserved
                            else "ConcurrentInvocationLimitExceeded")
        try:
            context = LambdaContext.for_function(function.config, region=self.region,
                                                 account_id=self.account_id)
            result = await runner.invoker.invoke(event, context)
        finally:
            if pool is not None:
                pool.release(function.name)
        return result_of(result, context.aws_request_id)

    def resize_invoker(self, function: str) -> None:
        """Size ``function``'s invoker again (its internal queue's level moved)."""
        sizer = self._sizers.get(function)
        if sizer is not None:
            sizer()

    # ------------------------------------------------------------------ run
    async def run(
        self,
        *,
        until_empty: bool = False,
        duration: float | None = None,
        install_signal_handlers: bool = False,
    ) -> RunSummary:
        """Run until :meth:`stop`, a signal, ``duration`` seconds, or (``until_empty``)
        until every mapped queue has nothing visible, delayed or in flight and every mapped
        stream's records are all settled.

        Returns a :class:`RunSummary`. Raises :class:`SluicegateError` when the store
        fails while preparing.

        For the run, the store is bound in the context (:mod:`sluicegate.runtime.current`):
        handlers and what they call find it there.
        """
        self.attach()
        try:
            with bind_store(self.store, asyncio.get_running_loop()):
                return await self._run(until_empty=until_empty, duration=duration,
                                       install_signal_handlers=install_signal_handlers)
        finally:
            self.detach()

    async def _run(self, *, until_empty: bool, duration: float | None,
                   install_signal_handlers: bool) -> RunSummary:
        loop = asyncio.get_running_loop()
        if self.semaphores is not None:
            self.semaphores.bind()
        await self._patiently("preparing", self.prepare)
        await self._build()
        self._built.set()
        started = time.monotonic()
        dead_start = await self._patiently("counting dead letters", self._dead_lettered_total)
        if install_signal_handlers:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.stop, f"signal {sig.name}")
        runners = self._all_runners()
        cluster = self.cluster
        sync: asyncio.Task[None] | None = None
        live = self.live
        try:
            await self._patiently("reading live limits", live.start)
        except BaseException:
            for invoker in {id(r.invoker): r.invoker for r in runners}.values():
                invoker.close(wait=False)
            raise
        live_task: asyncio.Task[None] | None = None
        if cluster is not None and cluster.store is self.store:
            cluster.live = live  # its rounds read the settings revision
        else:
            live_task = loop.create_task(live.run(), name="live limits")
        if cluster is not None:
            try:
                await self._patiently("joining the cluster", cluster.start)
            except BaseException:
                for invoker in {id(r.invoker): r.invoker for r in runners}.values():
                    invoker.close(wait=False)
                if live_task is not None:
                    live_task.cancel()
                await cluster.stop()
                raise
            sync = loop.create_task(cluster.run(), name="cluster sync")
        controller = self._controller()
        control: asyncio.Task[None] | None = None
        if controller is not None:
            control = loop.create_task(controller.run(), name="controller")
        tasks = [loop.create_task(r.run(), name=f"mapping {r.name}") for r in runners]
        targets = Targets(self.app, self.store, region=self.region,
                          account_id=self.account_id)
        self.routers = [BusRouter(bus, self.app.rules, targets) for bus in self.app.buses]
        from sluicegate.cluster.coordinator import default_worker_id

        self.scheduler = Scheduler(self.app.rules, targets, holder=(
            cluster.worker_id if cluster is not None else default_worker_id()))
        routing = [loop.create_task(r.run(), name=f"bus {r.bus}") for r in self.routers]
        routing.append(loop.create_task(self.scheduler.run(), name="scheduled rules"))
        probes = loop.create_task(self._breakers.run_probes(), name="breaker probes")
        monitor = loop.create_task(self._monitor(until_empty))
        timer = loop.call_later(duration, self.stop, "duration reached") if duration else None
        try:
            await self._stop.wait()
            self.scheduler.stop()
            for router in self.routers:
                router.stop()
            for runner in runners:
                runner.stop()
            done: set[asyncio.Task[None]] = set()
            pending: set[asyncio.Task[None]] = set()
            if tasks:  # an App of buses and queues alone has no mapping to wait for
                done, pending = await asyncio.wait(tasks, timeout=self.grace_period)
            if pending:
                left = sum(len(r.invocations) for r in runners)
                self._abandoned += left
                self._abandoned_by = self._abandoned_by or "grace period"
                log.warning(
                    "grace period of %gs over: abandoning %s; their messages reappear "
                    "after their visibility timeout",
                    self.grace_period,
                    plural(left, "in-flight invocation"),
                )
                for runner in runners:
                    runner.cancel_invocations()
                await asyncio.wait(pending, timeout=5)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            self.scheduler.stop()
            for router in self.routers:
                router.stop()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.gather(*routing, return_exceptions=True), 5)
            for task in (*tasks, *routing):  # none may outlive the run
                if not task.done():
                    task.cancel()
            self._breakers.closing = True  # ends the loops even if a cancel got lost
            probes.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probes
            if timer is not None:
                timer.cancel()
            self._closing = True
            monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await monitor
            if install_signal_handlers:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)
            for invoker in {id(r.invoker): r.invoker for r in runners}.values():
                invoker.close(wait=False)
            self.metrics.flush()
            if control is not None:
                assert controller is not None
                controller.stop()
                try:
                    await asyncio.wait_for(asyncio.shield(control), 2.0)
                except TimeoutError:
                    control.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await control
                except Exception as exc:  # noqa: BLE001 - its end must not hide the run's
                    log.warning("controller: %s", exc)
            if live_task is not None:
                live.closing = True  # ends the loop even if a cancel got lost
                live_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await live_task
            if sync is not None:
                assert cluster is not None
                cluster.closing = True  # ends the loop even if a cancel got lost
                sync.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sync
            if cluster is not None:
                await cluster.stop()
        try:
            dead = await self._patiently("counting dead letters",
                                         self._dead_lettered_total) - dead_start
        except StoreError as exc:
            log.warning("could not count dead-lettered messages: %s", exc)
            dead = 0
        return RunSummary(
            elapsed=time.monotonic() - started,
            mappings=tuple(r.summary() for r in runners if not isinstance(r.io, AsyncIO)),
            asynchronous=tuple(r.summary() for r in runners if isinstance(r.io, AsyncIO)),
            dead_lettered=dead,
            stopped_by=self._stop_reason or "stopped",
            abandoned=self._abandoned,
            abandoned_by=self._abandoned_by,
            cold_starts=self.metrics.totals().cold_starts,
        )

    def _controller(self) -> Controller | None:
        """The App's controller (its ``app.control`` rules), or ``None`` without rules."""
        if not self.app.controls:
            return None
        from sluicegate.cluster.coordinator import default_worker_id
        from sluicegate.runtime.controller import CONTROL_LEASE_TTL, Controller

        cluster = self.cluster
        holder = cluster.worker_id if cluster is not None else default_worker_id()
        ttl = min(CONTROL_LEASE_TTL, cluster.ttl) if cluster is not None else CONTROL_LEASE_TTL
        self.controller = Controller(self.app, self.store, holder=holder, ttl=ttl,
                                     metrics=self.metrics, on_write=self.live.poke,
                                     clock=self.clock)
        return self.controller

    async def _patiently(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """``await call()``, retried for up to :data:`STORE_PATIENCE` seconds while the
        store is unavailable (the error of the last try is raised after that)."""
        deadline = time.monotonic() + STORE_PATIENCE
        while True:
            try:
                return await call()
            except StoreUnavailable as exc:
                if time.monotonic() >= deadline:
                    raise
                log.warning("%s: %s; retrying", what, exc)
                await asyncio.sleep(0.5)

    async def _dead_lettered_total(self) -> int:
        total = 0
        for name in {q.config.queue for q in self.queue_sources}:
            total += (await self.store.counts(name)).dead_lettered
        return total

    async def _monitor(self, until_empty: bool) -> None:
        """Feed queue gauges to the metrics every second, and with ``until_empty`` stop the
        run once every mapped queue is empty.

        With ``until_empty`` the queues are checked when a mapping may have emptied its
        queue (a short receive, then deletes; at most every :data:`DRAIN_CHECK_MIN_GAP`)
        and every :data:`DRAIN_CHECK_INTERVAL` otherwise, so a drain ends within
        milliseconds of its last delete without counting the queue all along. The signal
        is cleared before a check, never after: a mapping that settles while the queues
        are being counted (the last deletes, typically) must wake the next wait, or the
        end of the drain is only noticed by the interval's timer.
        """
        queues = sorted({q.config.queue for q in self.queue_sources}
                        | {bus_queue(bus) for bus in self.app.buses})
        last_gauges = 0.0
        last_dead: dict[str, int] = {}
        while not self._closing:
            self.settled.clear()
            try:
                now = time.monotonic()
                gauges = now - last_gauges >= 1.0
                empty = True
                for name in queues:
                    counts = await self.store.counts(name)
                    if counts.total:
                        empty = False
                    if gauges:
                        previous = last_dead.get(name, counts.dead_lettered)
                        self.metrics.queue_gauges(
                            name,
                            visible=counts.visible,
                            in_flight=counts.in_flight,
                            oldest_age=counts.oldest_age,
                            dead_lettered=counts.dead_lettered - previous,
                        )
                        last_dead[name] = counts.dead_lettered
                if gauges:
                    last_gauges = now
                    self.metrics.tick()
                    self.metrics.set_limits(self._limits(), self.limit_reasons(), **self._states())
                if until_empty and empty:
                    for runner in self.runners:
                        if not await runner.source.drained():
                            empty = False
                            break
                if until_empty and empty:
                    # Received, buffered, invoking and undeleted messages all count as in
                    # flight in the store, so an empty store means all work is settled;
                    # a stream is settled when its checkpoints reach its latest records.
                    self.stop("queues empty" if not self.stream_sources else "all drained")
                    return
            except StoreError as exc:
                log.warning("monitor: store failed: %s", exc)
            if not until_empty:
                await asyncio.sleep(1.0)
                continue
            await wait_event(self.settled, DRAIN_CHECK_INTERVAL)
            await asyncio.sleep(DRAIN_CHECK_MIN_GAP)


class _InvokerSizer:
    """Sizes a function's invoker to what its mappings' limits can reach, again whenever
    one of them changes (an operator raising ``maximum_concurrency`` gets the
    environments and threads to go with it). A small class, not a closure: a compiled
    module's closures keep their frames alive."""

    __slots__ = ("function", "invoker", "runtime")

    def __init__(self, runtime: Runtime, function: str,
                 invoker: Invoker | ProcessInvoker) -> None:
        self.runtime = runtime
        self.function = function
        self.invoker = invoker

    def __call__(self) -> None:
        workers = self.runtime._workers_for(self.runtime.app.functions[self.function])
        if workers != self.invoker.max_workers:
            self.invoker.resize(workers)
