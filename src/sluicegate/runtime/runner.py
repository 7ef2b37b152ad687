"""The one runner of the asyncio runtime: it drives any mapping core through the mapping
protocol (:class:`~sluicegate.core.protocol.MappingCore`), whatever the source.

A :class:`MappingRunner` asks its core what to do (:meth:`~MappingCore.poll`), performs
it and sleeps until the core's next deadline or the next report. What differs between
sources is only I/O, and lives in a small adapter (:class:`SourceIO`, in
:mod:`sluicegate.runtime.sources`):

- the *reads* (a queue's receives, a stream's shard fetches) and their reports to the
  core (:meth:`~MappingCore.read_done`);
- the *settle actions* (a queue's deletes; a stream's on-failure records and
  checkpoints), performed in the order the core gave them;
- the shape of the event a batch is delivered in (SQS or Kinesis records).

Everything else is here, once: the invocation path (the event from the adapter, the
Lambda context, the invoker, the one result rule :meth:`~MappingCore.outcome_of`, the
report :meth:`~MappingCore.finished`), the loop, stop and cancellation, peak
concurrency and the throttle metrics. No mapping rule lives here: batching, settlement,
limits, FIFO order and shard positions are the core's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from sluicegate.app import Function
from sluicegate.core.results import exception_outcome
from sluicegate.core.streams import StreamInvoke
from sluicegate.core.types import BatchOutcome, Invoke, OutcomeKind
from sluicegate.errors import StoreError
from sluicegate.runtime.events import LambdaContext
from sluicegate.runtime.invoker import HandlerResult, Invoker
from sluicegate.runtime.isolation import ProcessInvoker
from sluicegate.runtime.semaphores import Hold, InvocationTools, MappingGate
from sluicegate.runtime.waiting import wait_event
from sluicegate.store.semaphores import ParkedBatch

if TYPE_CHECKING:
    from sluicegate.runtime.driver import MappingSummary, Runtime
    from sluicegate.runtime.live import Limits

__all__ = ["MappingRunner", "SourceIO", "wait_event"]

log = logging.getLogger("sluicegate.runtime")


class SourceIO(Protocol):
    """A source's I/O for a :class:`MappingRunner` (see :mod:`sluicegate.runtime.sources`)."""

    runner: MappingRunner

    def perform(self, now: float, actions: list[Any]) -> None:
        """Start the read and settle actions of one poll (everything but invocations), in
        their order; report reads to the core and wake the runner when they return."""
        ...

    def event(self, batch: Any) -> dict[str, Any]:
        """The event a batch is delivered in."""
        ...

    def describe(self, batch: Any) -> str:
        """The batch for a log line: ``"3 messages"``, ``"2 records of shardId-..."``."""
        ...

    def before_invoke(self) -> None:
        """Called as an invocation starts (a stream records its iterator age)."""
        ...

    def after_finished(self) -> None:
        """Called after the core was told an invocation finished."""
        ...

    def settled(self) -> bool:
        """Whether no read or settle action of this source is in hand."""
        ...

    def reads_due(self) -> bool:
        """Whether :meth:`perform` held reads back for :meth:`read` (in the loop's task)."""
        ...

    async def read(self) -> None:
        """Perform the reads :meth:`perform` held back, in the runner's loop task, and
        report them to the core (a read that must wait goes on in a task of its own)."""
        ...

    def stop(self) -> None:
        """The runner stops: cut waiting reads short where that is safe."""
        ...

    async def drained(self) -> bool:
        """Whether everything the source holds for the mapping is settled."""
        ...

    def summary(self) -> MappingSummary:
        """What the mapping did during the run."""
        ...


FOLLOW_UP_AFTER = 0.002
"""Seconds an invocation must have run for its task to follow it up itself when it
finishes alone (:meth:`MappingRunner._follow_up`); shorter ones finish in crowds."""


class MappingRunner:
    """One mapping's loop, its invocations, and its source's I/O adapter.

    Parameters:
        runtime: the runtime running it (clock, store, metrics, region and account).
        name: the mapping's name.
        function: the mapped function.
        invoker: the function's invoker.
        core: the mapping's core (a :class:`~sluicegate.core.protocol.MappingCore`).

    The source's adapter is set as :attr:`io` right after (it needs the runner).
    """

    def __init__(
        self,
        runtime: Runtime,
        name: str,
        function: Function,
        invoker: Invoker | ProcessInvoker,
        core: Any,
    ) -> None:
        self.runtime = runtime
        self.name = name
        self.function = function
        self.invoker = invoker
        self.core: Any = core
        """The mapping's core; a stream's is rebuilt when its shards change hands."""
        self.io: SourceIO | None = None
        self.wake = asyncio.Event()
        self.invocations: dict[int, asyncio.Task[None]] = {}
        self.stopping = False
        self.peak = 0
        self.seen_throttles = 0
        self.seen_held_aged = 0
        self.armed: float | None = None
        """The deadline the loop sleeps until (``None``: none, or not sleeping)."""
        self._stepping = False
        self._finished_now = 0
        """Invocations finished in this turn of the event loop (reset at the next)."""
        self._limits: Limits | None = None
        """The handlers' ``context.limits`` (built at the first invocation)."""
        self.gate: MappingGate | None = None
        """The semaphores the mapping needs (``app.map(..., semaphores=...)``), if any."""
        self.can_park = False
        """Whether a handler may park its batch behind a task token (queue mappings)."""

    @property
    def source(self) -> SourceIO:
        io = self.io
        assert io is not None, "a runner needs its source's I/O adapter"
        return io

    # ------------------------------------------------------------------ loop
    async def run(self) -> None:
        """Poll, perform, sleep until the next deadline or report; return once stopped
        and settled."""
        if self.gate is not None:
            self.gate.start()
            try:
                await self._run()
            finally:
                await self.gate.stop()
        else:
            await self._run()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        clock = self.runtime.clock
        while True:
            self.wake.clear()
            core = self.core
            now = clock()
            self._perform(now, core.poll(now))
            self._count_throttles()
            source = self.source
            if source.reads_due():
                # The reads of this poll, here and now: no hop through a task of their
                # own; then poll again, which starts the invocations of what came in.
                await source.read()
                continue
            if self.stopping and self.settled():
                return
            deadline = core.next_wakeup(now)
            if self.wake.is_set():
                continue
            timer = None
            self.armed = deadline
            if deadline is not None:
                timer = loop.call_at(loop.time() + max(0.0, deadline - clock()), self.wake.set)
            await self.wake.wait()
            self.armed = None
            if timer is not None:
                timer.cancel()

    def step(self) -> None:
        """Poll the core and perform at once, in the caller's task: the follow-up of a
        report whose consequences should not wait for the loop's task (a receive's
        records start their invocations here). The loop is woken when the core's next
        deadline comes earlier than the one it sleeps until."""
        if self._stepping:
            self.wake.set()
            return
        now = self.runtime.clock()
        self._poll_guarded(now)
        self._rearm(now)

    def _count_throttles(self) -> None:
        core = self.core
        throttles = core.throttles
        if throttles != self.seen_throttles:
            self.runtime.metrics.throttled(self.name, throttles - self.seen_throttles)
            self.seen_throttles = throttles
        held_aged = getattr(core, "held_aged_records", 0)
        if held_aged != self.seen_held_aged:
            if held_aged > self.seen_held_aged:
                log.warning(
                    "%s: %d record(s) passed maximum_record_age while the limit held them "
                    "at 0 (an open breaker) and were discarded",
                    self.name, held_aged - self.seen_held_aged,
                )
            self.seen_held_aged = held_aged

    def _perform(self, now: float, actions: Sequence[Any], keep: bool = False) -> Any:
        """Start the invocations; hand reads and settle actions to the source, in order.
        With ``keep``, the first invocation's batch is returned instead of started (the
        caller runs it in its own task), else ``None``."""
        rest: list[Any] = []
        kept = None
        for action in actions:
            if isinstance(action, (Invoke, StreamInvoke)):
                if keep and kept is None:
                    kept = action.batch
                else:
                    self._spawn_invoke(action.batch)
            else:
                rest.append(action)
        if rest:
            self.source.perform(now, rest)
        return kept

    def settled(self) -> bool:
        """Nothing in hand: the core idle, no read or settle action outstanding."""
        return bool(self.core.idle) and self.source.settled()

    # ------------------------------------------------------------------ invoke
    def _spawn_invoke(self, batch: Any) -> None:
        task = asyncio.get_running_loop().create_task(self._invoke(batch))
        self.invocations[batch.id] = task
        running = len(self.invocations)
        self.peak = max(self.peak, running)

    async def _invoke(self, batch: Any) -> None:
        """Run ``batch``, then the batches its follow-up hands this task (see
        :meth:`_follow_up`)."""
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await self._invoke_one(batch)
            alone = self._finished_now == 0
            self._finished_now += 1
            if alone:
                loop.call_soon(self._new_turn)
            if (not alone or loop.time() - started < FOLLOW_UP_AFTER or self.stopping
                    or self._stepping):
                # Invocations that finish together (in one turn of the event loop, or
                # short ones, which finish in the turn they start) are followed up by
                # the loop's task: it polls once for all of them, so their pollers'
                # receives go out together (a poll per finished invocation halves the
                # no-op drain rate at batch size 1)
                self.wake.set()
                return
            follow = await self._follow_up()
            if follow is None:
                return
            batch = follow
            assert task is not None
            self.invocations[batch.id] = task
            self.peak = max(self.peak, len(self.invocations))

    def _new_turn(self) -> None:
        self._finished_now = 0

    async def _follow_up(self) -> Any:
        """An invocation finished alone: poll, read and poll again in this task, and
        return the first batch that is ready to be run here, without a hop through the
        loop's task and a new task's first step (each a turn of the event loop, which
        at 50 ms handlers costs a few percent of the throughput). The loop's task is
        woken only when its deadline moved earlier or a read is left to it."""
        source = self.source
        clock = self.runtime.clock
        now = clock()
        kept = self._poll_guarded(now, keep=True)
        if kept is None and source.reads_due():
            # Not under _stepping: another invocation finishing while this read is out
            # (a store round trip on Redis) follows itself up too
            await source.read()
            now = clock()
            kept = self._poll_guarded(now, keep=True)
        self._rearm(now)
        return kept

    def _poll_guarded(self, now: float, keep: bool = False) -> Any:
        """Poll the core and perform, guarded against a nested :meth:`step`; with
        ``keep``, return the first invocation's batch for the caller's task to run."""
        self._stepping = True
        try:
            return self._perform(now, self.core.poll(now), keep=keep)
        finally:
            self._stepping = False

    def _rearm(self, now: float) -> None:
        """After a poll outside the loop's task: count its throttles, and wake the loop
        when a read is left to it, it must stop, or the core's next deadline comes
        earlier than the one it sleeps until."""
        self._count_throttles()
        deadline = self.core.next_wakeup(now)
        armed = self.armed
        if self.stopping or self.source.reads_due() or (
            deadline is not None and (deadline <= now or armed is None or deadline < armed)
        ):
            self.wake.set()

    async def _invoke_one(self, batch: Any) -> None:
        """The one invocation path: event, context, handler, outcome, report."""
        runtime = self.runtime
        metrics = runtime.metrics
        io = self.source
        metrics.invocation_started(self.name)
        io.before_invoke()
        result: HandlerResult | None = None
        request_id: str | None = None
        outcome: BatchOutcome
        core = self.core
        gate = self.gate
        holds: list[Hold] = []
        try:
            if gate is not None:
                holds = await gate.take()
            event = io.event(batch)
            context = LambdaContext.for_function(
                self.function.config, region=runtime.region, account_id=runtime.account_id
            )
            limits = self._limits
            if limits is None:
                limits = self._limits = runtime.live.context_limits(self)
            context.limits = limits
            tools = None
            if runtime.semaphores is not None or self.can_park:
                tools = context._sluicegate = InvocationTools(runtime.semaphores,
                                                              can_park=self.can_park)
                for hold in holds:
                    tools.fencing_tokens[hold.name] = hold.fencing_token
            request_id = context.aws_request_id
            result = await self.invoker.invoke(event, context)
            if context.reported_latency is not None or context.reported_overload:
                # what the handler reported (context.report) reaches the limit's samples
                result = replace(result, latency=context.reported_latency,
                                 overload=context.reported_overload)
            if tools is not None and tools.parked is not None and result.ok:
                outcome = await self._park(batch, tools)
            else:
                outcome = core.outcome_of(result, batch)
        except asyncio.CancelledError:
            outcome = exception_outcome(batch, "cancelled by shutdown")
        except Exception as exc:  # a bug of ours must not lose the batch's bookkeeping
            log.exception("%s: invocation machinery failed", self.name)
            outcome = exception_outcome(batch, f"{type(exc).__name__}: {exc}")
        finally:
            self.invocations.pop(batch.id, None)
        if gate is not None and holds:
            await asyncio.shield(gate.give_back(holds))
        metrics.invocation_finished(
            self.name, result.duration if result is not None else 0.0, outcome.function_error
        )
        if outcome.function_error:
            if result is not None and result.ok:  # the handler returned: its response failed
                log.warning("%s: a batch of %s failed: %s", self.name, io.describe(batch),
                            outcome.reason)
            else:  # the invoker logged the exception, timeout or marshal error
                log.debug("%s: batch %d failed: %s", self.name, batch.id, outcome.reason)
        core.finished(runtime.clock(), batch.id, outcome, request_id=request_id)
        io.after_finished()

    async def _park(self, batch: Any, tools: InvocationTools) -> BatchOutcome:
        """The handler parked its batch: store it behind the task token, hide its
        messages for a heartbeat, and settle the invocation without deleting anything
        (the token's completion does). A store failure fails the batch instead."""
        store = self.runtime.store
        config = self.source.config  # type: ignore[attr-defined]
        heartbeat = tools.parked
        token = tools.park_token
        assert heartbeat is not None and token is not None
        handles = {r.message_id: r.receipt_handle for r in batch.records}
        parked = ParkedBatch(token, self.name, config.queue, handles, heartbeat,
                             config.report_batch_item_failures, store.clock())
        try:
            await store.park(parked, ttl=heartbeat)
            for handle in handles.values():
                await store.change_visibility(config.queue, handle, heartbeat)
        except StoreError as exc:
            log.warning("%s: parking a batch failed: %s", self.name, exc)
            return exception_outcome(batch, f"parking failed: {exc}")
        log.debug("%s: batch %d parked behind task token %s", self.name, batch.id, token)
        return BatchOutcome(OutcomeKind.PARTIAL, frozenset(handles),
                            f"parked behind task token {token}")

    # ------------------------------------------------------------------ stop
    def stop(self) -> None:
        """Stop reading: pause the core; work in hand finishes."""
        if self.stopping:
            return
        self.stopping = True
        self.core.pause(self.runtime.clock())
        self.source.stop()
        self.wake.set()

    def cancel_invocations(self) -> None:
        for task in list(self.invocations.values()):
            task.cancel()

    def summary(self) -> MappingSummary:
        return self.source.summary()
