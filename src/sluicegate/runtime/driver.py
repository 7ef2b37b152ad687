"""The asyncio driver: runs an App's mappings against a store, in real time.

For each queue mapping, one task asks the core what to do (:meth:`QueueMapping.poll`),
performs it (receives, invocations, deletes) in tasks of its own, reports the results
back to the core and sleeps until the core's next deadline or the next report. No
mapping rule lives here: batching, settlement, scaling, throttling and limits are the
core's; this module only does the I/O and keeps time. Stream mappings have their own
loop in :mod:`sluicegate.runtime.stream_runner`, over the core's
:class:`~sluicegate.core.stream_mapping.StreamMapping`.

Delivery is at least once: a message is deleted only after its batch succeeded, and
anything unfinished when the runtime stops reappears after its visibility timeout.

On a store that other processes may share (SQLite, Redis) the runtime is a worker of a
:class:`~sluicegate.cluster.coordinator.Cluster` by default: it builds its cores with the
cluster's pool and policies, which bound every limit by this worker's leased share, lets
stream runners serve only the shards they lease, and runs the cluster's sync task beside
the mappings, so the limits hold across every process on the store, with no flag. On the
memory store (one process) nothing is coordinated.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from sluicegate.app import App, Function
from sluicegate.core.config import (
    SHARED_ISOLATION,
    MappingConfig,
    QueueConfig,
    effective_visibility_timeout,
)
from sluicegate.core.mapping import QueueMapping
from sluicegate.core.pool import ConcurrencyPool
from sluicegate.core.results import exception_outcome, invocation_outcome
from sluicegate.core.scaling import make_policy
from sluicegate.core.stream_mapping import StreamMapping
from sluicegate.core.streams import StreamConfig, StreamMappingConfig
from sluicegate.core.types import Abandon, Batch, BatchOutcome, Delete, Invoke, QueueRecord, Receive
from sluicegate.errors import StoreError, StoreUnavailable
from sluicegate.runtime.environments import ModuleInvoker
from sluicegate.runtime.events import (
    LambdaContext,
    aws_identity,
    function_arn,
    queue_arn,
    record_sizes,
    sqs_event,
    sqs_record,
)
from sluicegate.runtime.invoker import HandlerResult, Invoker
from sluicegate.runtime.isolation import ProcessInvoker, handler_reference
from sluicegate.runtime.metrics import Metrics
from sluicegate.runtime.runner import MappingLoop, wait_event
from sluicegate.runtime.stream_events import kinesis_record, stream_arn
from sluicegate.runtime.stream_runner import StreamRunner
from sluicegate.store.base import MAX_RECEIVE_MANY, Message, Store
from sluicegate.wording import plural

if TYPE_CHECKING:
    from sluicegate.cluster.coordinator import Cluster

T = TypeVar("T")

__all__ = ["MappingSummary", "RunSummary", "Runtime"]

log = logging.getLogger("sluicegate.runtime")

STORE_RETRY_DELAY = 1.0
"""Seconds a poller waits before receiving again after the store failed a receive."""

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

MAX_LONG_POLL = 20.0
"""Longest receive wait in seconds (SQS's WaitTimeSeconds maximum)."""

DELETE_GATHER = 0.005

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

    @property
    def processed(self) -> int:
        return sum(m.messages_deleted for m in self.mappings)

    @property
    def throughput(self) -> float:
        return self.processed / self.elapsed if self.elapsed > 0 else 0.0


@dataclass(eq=False)
class _Runner(MappingLoop):
    """One queue mapping's loop (:class:`~sluicegate.runtime.runner.MappingLoop`) and the
    tasks it started."""

    runtime: Runtime
    config: MappingConfig
    queue: QueueConfig
    function: Function
    invoker: Invoker | ProcessInvoker
    core: QueueMapping
    arn: str
    function_arn: str
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    receives: dict[int, asyncio.Task[None]] = field(default_factory=dict)
    invocations: dict[int, asyncio.Task[None]] = field(default_factory=dict)
    pending_deletes: list[str] = field(default_factory=list)
    delete_task: asyncio.Task[None] | None = None
    stopping: bool = False
    starved: bool = False
    deleted: int = 0
    peak: int = 0
    seen_throttles: int = 0
    fifo_turn: asyncio.Lock = field(default_factory=asyncio.Lock)
    """A FIFO queue's receives take turns (see :meth:`_start_receives`)."""

    @property
    def name(self) -> str:
        return self.config.name

    def _perform(self, now: float, actions: list[Any]) -> None:
        receives: list[Receive] = []
        for action in actions:
            if isinstance(action, Invoke):
                self._spawn_invoke(action.batch)
            elif isinstance(action, Receive):
                receives.append(action)
            elif isinstance(action, Delete):
                self._delete(action.records)
            elif isinstance(action, Abandon):
                log.warning(
                    "%s: gave up on a batch of %d: %s; its messages reappear after their "
                    "visibility timeout",
                    self.name,
                    len(action.batch.records),
                    action.reason,
                )
        if receives:
            self._start_receives(receives)

    def _settled(self) -> bool:
        return bool(self.core.idle) and self.delete_task is None

    # ------------------------------------------------------------------ receive
    def _start_receives(self, receives: list[Receive]) -> None:
        """Serve pollers' receives with as few store calls as possible.

        Receives that start together with the same wait are grouped (up to
        :data:`MAX_RECEIVE_MANY` messages) and served by one store transaction; a poller
        whose share came back empty keeps waiting in its group until the long poll runs
        out, as a poller of its own would. This is I/O batching only: each poller gets at
        most what it asked for (never above SQS's 10 per receive), and the core sees the
        same reports as with one call per poller.

        Not for a FIFO queue: one claim would hand messages of one group to several
        pollers, whose batches would then run that group concurrently, out of order.
        Each FIFO receive is a claim of its own, which the store keeps to groups with
        nothing in flight, and the pollers take turns: a settled batch frees its groups
        and wakes the queue's long polls, and a turn means one poller claims what was
        freed instead of every waiting poller racing for it (with 100 pollers that race
        cost more than the work: 800 messages/s instead of thousands).
        """
        loop = asyncio.get_running_loop()
        if self.queue.fifo:
            for action in receives:
                task = loop.create_task(self._fifo_receive(action))
                self.receives[action.poller] = task
                task.add_done_callback(functools.partial(self._receive_done, [action]))
            return
        receives.sort(key=lambda r: r.wait)
        group: list[Receive] = []
        wanted = 0
        for action in receives:
            if group and (
                wanted + action.max_messages > MAX_RECEIVE_MANY or action.wait != group[0].wait
            ):
                self._spawn_group(loop, group)
                group, wanted = [], 0
            group.append(action)
            wanted += action.max_messages
        if group:
            self._spawn_group(loop, group)

    def _spawn_group(self, loop: asyncio.AbstractEventLoop, group: list[Receive]) -> None:
        task = loop.create_task(self._receive_group(group))
        for action in group:
            self.receives[action.poller] = task
        task.add_done_callback(functools.partial(self._receive_done, group))

    def _receive_done(self, group: list[Receive], task: asyncio.Task[None]) -> None:
        """Report an empty receive for every poller of ``task`` it did not report: a task
        cancelled (by :meth:`stop`) before it first ran never enters its body, so neither
        its ``except`` nor its ``finally`` reports, and the core would wait for ever."""
        for action in group:
            if self.receives.get(action.poller) is task:
                self._report(self.runtime.clock(), action.poller, [])
                self.wake.set()

    async def _fifo_receive(self, action: Receive) -> None:
        try:
            async with self.fifo_turn:
                await self._receive_group([action])
        except asyncio.CancelledError:
            if self.receives.get(action.poller) is not None:  # never reached its turn
                self._report(self.runtime.clock(), action.poller, [])
                self.wake.set()

    async def _receive_group(self, group: list[Receive]) -> None:
        runtime = self.runtime
        loop = asyncio.get_running_loop()
        pending = list(group)
        longest = min(group[0].wait, MAX_LONG_POLL)
        deadline = loop.time() + longest
        store, queue = runtime.store, self.config.queue
        try:
            while pending:
                wanted = sum(a.max_messages for a in pending)
                visibility = pending[0].visibility_timeout
                try:
                    # A receive that does not wait first: when it comes back short, the
                    # queue may be running empty, and an until_empty run should know now,
                    # not when the long poll below ends.
                    messages = await store.receive_many(
                        queue, max_messages=wanted, visibility_timeout=visibility, wait_time=0.0
                    )
                    if len(messages) < wanted:
                        self._starve()
                    elif self.starved:
                        self.starved = False
                    # Clamped: with a clock that has not moved, deadline - now can come
                    # out a rounding error above the long poll (20.000000000000004),
                    # which the store refuses as out of range.
                    remaining = min(longest, max(0.0, deadline - loop.time()))
                    if not messages and remaining > 0:
                        messages = await store.receive_many(
                            queue,
                            max_messages=wanted,
                            visibility_timeout=visibility,
                            wait_time=remaining,
                        )
                except StoreError as exc:
                    log.warning("%s: receive failed: %s; retrying in %gs", self.name, exc,
                                STORE_RETRY_DELAY)
                    await asyncio.sleep(STORE_RETRY_DELAY)
                    break
                if not messages:
                    break
                runtime.metrics.received(self.name, len(messages))
                now = runtime.clock()
                served = taken = 0
                while taken < len(messages) and served < len(pending):
                    action = pending[served]
                    share = messages[taken : taken + action.max_messages]
                    taken += len(share)
                    self._report(now, action.poller, share)
                    served += 1
                pending = pending[served:]
                self.step()
                if remaining <= 0:
                    break
        except asyncio.CancelledError:
            pass  # a stop cut the long poll short: report empty receives
        finally:
            now = runtime.clock()
            for action in pending:
                self._report(now, action.poller, [])
            self.wake.set()

    def _starve(self) -> None:
        """A receive came back short: the queue may be about to run empty, so an
        ``until_empty`` run should look after the next deletes (and now)."""
        self.starved = True
        self.runtime.settled.set()

    def _report(self, now: float, poller: int, messages: list[Message]) -> None:
        sizes = record_sizes(messages, queue_arn=self.arn, region=self.runtime.region)
        records = [
            QueueRecord(
                m.message_id, m.receipt_handle, size, m.visible_at, m.receive_count, m, m.group_id
            )
            for m, size in zip(messages, sizes, strict=True)
        ]
        self.receives.pop(poller, None)
        self.core.received(now, poller, records)

    # ------------------------------------------------------------------ invoke
    def _spawn_invoke(self, batch: Batch) -> None:
        task = asyncio.get_running_loop().create_task(self._invoke(batch))
        self.invocations[batch.id] = task
        running = len(self.invocations)
        self.peak = max(self.peak, running)

    async def _invoke(self, batch: Batch) -> None:
        runtime = self.runtime
        metrics = runtime.metrics
        outcome: BatchOutcome
        metrics.invocation_started(self.name)
        result: HandlerResult | None = None
        try:
            messages: list[Message] = [r.payload for r in batch.records]
            event = sqs_event(messages, queue_arn=self.arn, region=runtime.region)
            context = LambdaContext(
                function_name=self.function.name,
                memory_limit_in_mb=self.function.config.memory_size,
                invoked_function_arn=self.function_arn,
                timeout=self.function.config.timeout,
            )
            result = await self.invoker.invoke(event, context)
            outcome = invocation_outcome(
                result, batch, report_batch_item_failures=self.config.report_batch_item_failures
            )
        except asyncio.CancelledError:
            outcome = exception_outcome(batch, "cancelled by shutdown")
        except Exception as exc:  # a bug of ours must not lose the batch's bookkeeping
            log.exception("%s: invocation machinery failed", self.name)
            outcome = exception_outcome(batch, f"{type(exc).__name__}: {exc}")
        finally:
            self.invocations.pop(batch.id, None)
        metrics.invocation_finished(
            self.name, result.duration if result is not None else 0.0, outcome.function_error
        )
        if outcome.function_error:
            if result is not None and result.ok:  # the handler returned: its response failed
                count = len(batch.records)
                log.warning("%s: a batch of %d %s failed: %s", self.name, count,
                            "message" if count == 1 else "messages", outcome.reason)
            else:  # the invoker logged the exception, timeout or marshal error
                log.debug("%s: batch %d failed: %s", self.name, batch.id, outcome.reason)
        self.core.finished(runtime.clock(), batch.id, outcome)
        self.wake.set()

    # ------------------------------------------------------------------ delete
    def _delete(self, records: tuple[QueueRecord, ...]) -> None:
        """Queue receipt handles for deletion; one transaction deletes all that gathered
        while the previous one ran."""
        self.pending_deletes += [r.receipt_handle for r in records]
        if self.delete_task is None:
            self.delete_task = asyncio.get_running_loop().create_task(self._flush_deletes())

    async def _flush_deletes(self) -> None:
        try:
            await asyncio.sleep(DELETE_GATHER)  # let invocations ending meanwhile join in
            while self.pending_deletes:
                handles, self.pending_deletes = self.pending_deletes, []
                try:
                    done = await self.runtime.store.delete_many(self.config.queue, handles)
                except StoreError as exc:
                    log.warning(
                        "%s: deleting %d processed messages failed: %s; they will be "
                        "delivered again", self.name, len(handles), exc,
                    )
                    continue
                count = sum(done)
                self.deleted += count
                if self.starved:
                    self.runtime.settled.set()
                self.runtime.metrics.deleted(self.name, count)
        finally:
            self.delete_task = None
            self.wake.set()

    # ------------------------------------------------------------------ stop
    def stop(self) -> None:
        """Stop receiving: pause the core and cut outstanding long polls short."""
        if self.stopping:
            return
        self.stopping = True
        self.core.pause(self.runtime.clock())
        for task in set(self.receives.values()):
            task.cancel()
        self.wake.set()

    def summary(self) -> MappingSummary:
        core = self.core
        return MappingSummary(
            name=self.name,
            invocations=core.invocations,
            errors=core.errors,
            throttles=core.throttles,
            messages_deleted=self.deleted,
            peak_concurrency=self.peak,
            maximum_concurrency=self.config.maximum_concurrency,
            filtered=core.filtered_records,
        )


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
        self.runners: list[_Runner] = []
        self.stream_runners: list[StreamRunner] = []
        self._stop_reason: str | None = None
        self._stop = asyncio.Event()
        self._abandoned = 0
        self._abandoned_by = ""
        #: Set when a mapping's receives come back short or, after that, it deletes:
        #: the moments a queue may have run empty, so ``until_empty`` checks promptly.
        self.settled = asyncio.Event()
        self._started = time.monotonic()
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

    def _all_runners(self) -> list[_Runner | StreamRunner]:
        return [*self.runners, *self.stream_runners]

    async def prepare(self) -> None:
        """Create or update the App's queues (dead-letter queues first) and streams in
        the store."""
        queues = self.app.queues
        for config in sorted(queues.values(), key=lambda q: q.dead_letter_queue is not None):
            await self.store.ensure_queue(config)
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
            policy = None
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
            )
            runner = _Runner(
                self, config, queue, function, invokers[function.name], core, arn,
                function_arn(function.name, **identity),
            )
            self.runners.append(runner)
            if cluster is not None:
                cluster.attach_queue(runner)
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
            srunner = StreamRunner(self, sconfig, stream, function, invokers[function.name],
                                   build(await self._patiently(
                                       "reading checkpoints",
                                       functools.partial(self.store.get_checkpoints,
                                                         sconfig.name),
                                   )),
                                   arn, farn, build=build)
            self.stream_runners.append(srunner)
            if cluster is not None:
                cluster.attach_stream(srunner)
        self.metrics.set_limits(self._limits())

    def _stream_builder(
        self, config: StreamMappingConfig, stream: StreamConfig, pool: ConcurrencyPool,
        farn: str, arn: str,
    ) -> Callable[[dict[int, int]], StreamMapping]:
        """A function building the mapping's core from stored checkpoints (again when a
        cluster changes the shards this runtime serves)."""

        def build(checkpoints: dict[int, int]) -> StreamMapping:
            return StreamMapping(
                config,
                stream,
                pool=pool,
                checkpoints=checkpoints,
                now=self.clock(),
                function_arn=farn,
                stream_arn=arn,
                record_filter=self._stream_filter(config, arn),
            )

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

    def _limits(self) -> dict[str, int]:
        limits = {r.name: r.core.limit for r in self.runners}
        for s in self.stream_runners:
            limits[s.name] = s.stream.shard_count * s.config.parallelization_factor
        return limits

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
        """Execution environments (and threads for a sync handler): as many as the
        function can run at once."""
        bound = self.app.account.concurrency_limit
        if function.config.reserved_concurrency is not None:
            bound = min(bound, function.config.reserved_concurrency)
        mapped = 0
        for m in self.app.mappings:
            if m.function == function.name and m.enabled:
                mapped += m.maximum_concurrency or m.scaling_ceiling
        for sm in self.app.stream_mappings:
            if sm.function == function.name and sm.enabled:
                mapped += self.app.streams[sm.stream].shard_count * sm.parallelization_factor
        return max(1, min(bound, mapped))

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
        """
        loop = asyncio.get_running_loop()
        await self._patiently("preparing", self.prepare)
        await self._build()
        started = time.monotonic()
        dead_start = await self._patiently("counting dead letters", self._dead_lettered_total)
        if install_signal_handlers:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.stop, f"signal {sig.name}")
        runners = self._all_runners()
        cluster = self.cluster
        sync: asyncio.Task[None] | None = None
        if cluster is not None:
            try:
                await self._patiently("joining the cluster", cluster.start)
            except BaseException:
                for invoker in {id(r.invoker): r.invoker for r in runners}.values():
                    invoker.close(wait=False)
                await cluster.stop()
                raise
            sync = loop.create_task(cluster.run(), name="cluster sync")
        tasks = [loop.create_task(r.run(), name=f"mapping {r.name}") for r in runners]
        monitor = loop.create_task(self._monitor(until_empty))
        timer = loop.call_later(duration, self.stop, "duration reached") if duration else None
        try:
            await self._stop.wait()
            for runner in runners:
                runner.stop()
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
            for task in tasks:  # none may outlive the run (a cancelled run included)
                if not task.done():
                    task.cancel()
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
            mappings=tuple(r.summary() for r in runners),
            dead_lettered=dead,
            stopped_by=self._stop_reason or "stopped",
            abandoned=self._abandoned,
            abandoned_by=self._abandoned_by,
            cold_starts=self.metrics.totals().cold_starts,
        )

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
        for name in {r.config.queue for r in self.runners}:
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
        queues = sorted({r.config.queue for r in self.runners})
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
                    self.metrics.set_limits(self._limits())
                if until_empty and empty:
                    for stream_runner in self.stream_runners:
                        if not await stream_runner.drained():
                            empty = False
                            break
                if until_empty and empty:
                    # Received, buffered, invoking and undeleted messages all count as in
                    # flight in the store, so an empty store means all work is settled;
                    # a stream is settled when its checkpoints reach its latest records.
                    self.stop("queues empty" if not self.stream_runners else "all drained")
                    return
            except StoreError as exc:
                log.warning("monitor: store failed: %s", exc)
            if not until_empty:
                await asyncio.sleep(1.0)
                continue
            await wait_event(self.settled, DRAIN_CHECK_INTERVAL)
            await asyncio.sleep(DRAIN_CHECK_MIN_GAP)
