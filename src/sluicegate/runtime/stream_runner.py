"""The asyncio driver of one stream mapping: fetches shards, invokes, checkpoints.

The decisions (lanes, batching, retries, bisection, discards, checkpoints) are the core's
:class:`~sluicegate.core.stream_mapping.StreamMapping`; this module performs its actions
against the store and the function and reports back, as
:mod:`sluicegate.runtime.driver` does for queues:

- ``Fetch``: read the shard after the position the core gives (or at the mapping's
  starting position) and report the records; when the read comes back empty although
  the shard's latest sequence number (read first) lies beyond the position, the records
  in between were dropped by retention, and the core is told the iterator moved past them.
- ``StreamInvoke``: build the Kinesis-shaped event, run the handler, settle the outcome.
- ``SendToDestination`` then ``Checkpoint``: persisted in the order the core gave them, by
  one writer task, so a checkpoint is never stored before the on-failure record of the
  batch it moves past.

In a cluster (:mod:`sluicegate.cluster`) a runner serves only the shards it leases
(:attr:`StreamRunner.owned`): the core's fetches of other shards are answered with nothing
at once, without touching the store, so those shards read nothing and never checkpoint.
When the leased set changes, :meth:`StreamRunner.reassign` pauses the core, lets every
batch in flight settle and its checkpoint be written, and builds a new core from the
store's checkpoints: a shard taken over resumes where its previous owner settled, and a
shard given up is released only after this worker's last batch of it is checkpointed, so
the order of each partition key holds across the handover.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sluicegate.app import Function
from sluicegate.core.results import exception_outcome as stream_exception_outcome
from sluicegate.core.results import invocation_outcome
from sluicegate.core.stream_mapping import StreamMapping
from sluicegate.core.streams import (
    SEQUENCE_NUMBER,
    Checkpoint,
    Fetch,
    SendToDestination,
    StreamBatch,
    StreamConfig,
    StreamInvoke,
    StreamMappingConfig,
    StreamRecord,
)
from sluicegate.core.types import BatchOutcome
from sluicegate.errors import StoreError
from sluicegate.runtime.events import LambdaContext
from sluicegate.runtime.invoker import HandlerResult, Invoker
from sluicegate.runtime.isolation import ProcessInvoker
from sluicegate.runtime.runner import MappingLoop
from sluicegate.runtime.stream_events import kinesis_event, kinesis_record_size
from sluicegate.store.base import StreamMessage
from sluicegate.wording import plural

if TYPE_CHECKING:
    from sluicegate.runtime.driver import MappingSummary, Runtime

__all__ = ["StreamRunner"]

log = logging.getLogger("sluicegate.runtime")

STORE_RETRY_DELAY = 1.0
"""Seconds before a failed fetch or checkpoint write is tried again."""


@dataclass(eq=False)
class StreamRunner(MappingLoop):
    """One stream mapping's loop and the tasks it started."""

    runtime: Runtime
    config: StreamMappingConfig
    stream: StreamConfig
    function: Function
    invoker: Invoker | ProcessInvoker
    core: StreamMapping
    arn: str
    function_arn: str
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    fetches: dict[int, asyncio.Task[None]] = field(default_factory=dict)
    invocations: dict[int, asyncio.Task[None]] = field(default_factory=dict)
    writes: list[SendToDestination | Checkpoint] = field(default_factory=list)
    writer: asyncio.Task[None] | None = None
    stopping: bool = False
    processed: int = 0
    peak: int = 0
    seen_throttles: int = 0
    owned: set[int] | None = None
    """Shards this runner serves (a cluster's lease); ``None``: every shard."""
    holds: Callable[[int], bool] | None = None
    """Whether this runner's lease of a shard is still valid (a cluster's): a shard of
    :attr:`owned` whose lease lapsed is not read until the cluster reassigns it."""
    build: Callable[[dict[int, int]], StreamMapping] | None = None
    """Builds a new core from stored checkpoints (needed by :meth:`reassign`)."""
    retired: list[StreamMapping] = field(default_factory=list)
    """Cores replaced by :meth:`reassign`, kept for the run's counters."""

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def idle(self) -> bool:
        return self.core.idle and self.writer is None and not self.writes

    def _perform(self, now: float, actions: list[Any]) -> None:
        loop = asyncio.get_running_loop()
        for action in actions:
            if isinstance(action, StreamInvoke):
                self._spawn_invoke(action.batch)
            elif isinstance(action, Fetch):
                owned = self.owned
                if owned is not None and (
                    action.shard not in owned
                    or (self.holds is not None and not self.holds(action.shard))
                ):
                    self.fetches[action.shard] = loop.create_task(self._skip(action))
                else:
                    self.fetches[action.shard] = loop.create_task(self._fetch(action))
            else:
                self.writes.append(action)
        if self.writes and self.writer is None:
            self.writer = loop.create_task(self._write())

    def _settled(self) -> bool:
        return self.idle

    # ------------------------------------------------------------------ fetch
    async def _skip(self, action: Fetch) -> None:
        """A fetch of a shard another worker owns: nothing, at once (the core asks again
        after its poll interval)."""
        self.fetches.pop(action.shard, None)
        self.core.fetched(self.runtime.clock(), action.shard, [])
        self.wake.set()

    async def _fetch(self, action: Fetch) -> None:
        store = self.runtime.store
        stream = self.config.stream
        records: list[StreamMessage] = []
        position: int | None = None
        try:
            after = action.after_sequence
            if after is None and action.starting_position == "LATEST":
                position = await store.latest_sequence(stream, action.shard)
            else:
                latest = await store.latest_sequence(stream, action.shard)
                if after is None and action.starting_position == "AT_TIMESTAMP":
                    records = await store.get_records(
                        stream, action.shard, at_timestamp=action.starting_position_timestamp,
                        limit=action.max_records,
                    )
                else:
                    records = await store.get_records(
                        stream, action.shard, after=after, limit=action.max_records
                    )
                if not records and after is not None and latest > after:
                    # Nothing retained after the position although the shard went
                    # further before the read began: retention dropped those records.
                    position = latest
        except StoreError as exc:
            log.warning("%s: reading shard %s failed: %s; retrying in %gs", self.name,
                        action.shard_id, exc, STORE_RETRY_DELAY)
            await asyncio.sleep(STORE_RETRY_DELAY)
            records, position = [], None
        except asyncio.CancelledError:
            records, position = [], None
        finally:
            self.fetches.pop(action.shard, None)
        arn = self.arn
        batch = [
            StreamRecord(r.shard, r.sequence_number, r.partition_key, r, r.approximate_arrival,
                         kinesis_record_size(r, arn))
            for r in records
        ]
        if records:
            self.runtime.metrics.received(self.name, len(records))
        self.core.fetched(self.runtime.clock(), action.shard, batch, position=position)
        self.wake.set()

    # ------------------------------------------------------------------ invoke
    def _spawn_invoke(self, batch: StreamBatch) -> None:
        task = asyncio.get_running_loop().create_task(self._invoke(batch))
        self.invocations[batch.id] = task
        self.peak = max(self.peak, len(self.invocations))

    async def _invoke(self, batch: StreamBatch) -> None:
        runtime = self.runtime
        metrics = runtime.metrics
        metrics.invocation_started(self.name)
        age = self.core.iterator_age_ms
        if age is not None:
            metrics.iterator_age(self.name, age)
        result: HandlerResult | None = None
        request_id: str | None = None
        outcome: BatchOutcome
        try:
            event = kinesis_event(
                [r.data for r in batch.records], stream_arn=self.arn, region=runtime.region,
                account_id=runtime.account_id,
            )
            context = LambdaContext.for_function(
                self.function.config, region=runtime.region, account_id=runtime.account_id
            )
            request_id = context.aws_request_id
            result = await self.invoker.invoke(event, context)
            outcome = invocation_outcome(
                result, batch, report_batch_item_failures=self.config.report_batch_item_failures,
                item_name=SEQUENCE_NUMBER,
            )
        except asyncio.CancelledError:
            outcome = stream_exception_outcome(batch, "cancelled by shutdown")
        except Exception as exc:  # a bug of ours must not lose the batch's bookkeeping
            log.exception("%s: invocation machinery failed", self.name)
            outcome = stream_exception_outcome(batch, f"{type(exc).__name__}: {exc}")
        finally:
            self.invocations.pop(batch.id, None)
        metrics.invocation_finished(
            self.name, result.duration if result is not None else 0.0, outcome.function_error
        )
        if outcome.function_error and result is not None and result.ok:
            # the handler returned, but its response failed the batch (the invoker logs
            # exceptions, timeouts and marshal errors itself)
            count = len(batch.records)
            log.warning("%s: a batch of %d %s of %s failed: %s", self.name, count,
                        "record" if count == 1 else "records", batch.shard_id, outcome.reason)
        before = self.core.processed_records
        self.core.finished(runtime.clock(), batch.id, outcome, request_id=request_id)
        done = self.core.processed_records - before
        if done:
            self.processed += done
            metrics.deleted(self.name, done)
        self.wake.set()

    # ------------------------------------------------------------------ persist
    async def _write(self) -> None:
        """Perform on-failure sends and checkpoints in order; checkpoints of one shard
        that gathered meanwhile are written as one."""
        store = self.runtime.store
        try:
            while self.writes:
                action = self.writes.pop(0)
                if isinstance(action, SendToDestination):
                    await self._send_destination(action)
                    continue
                checkpoints = {action.shard: action.sequence_number}
                while self.writes and isinstance(self.writes[0], Checkpoint):
                    more = self.writes.pop(0)
                    assert isinstance(more, Checkpoint)
                    checkpoints[more.shard] = max(
                        checkpoints.get(more.shard, -1), more.sequence_number
                    )
                while True:
                    try:
                        await store.set_checkpoints(self.name, checkpoints)
                        break
                    except StoreError as exc:
                        log.warning("%s: storing checkpoints failed: %s; retrying", self.name,
                                    exc)
                        await asyncio.sleep(STORE_RETRY_DELAY)
                self.runtime.settled.set()
        finally:
            self.writer = None
            self.wake.set()

    async def _send_destination(self, action: SendToDestination) -> None:
        body = json.dumps(action.record, separators=(",", ":"))
        while True:
            try:
                await self.runtime.store.send(action.destination, body)
                break
            except StoreError as exc:
                log.warning("%s: sending an on-failure record to %s failed: %s; retrying",
                            self.name, action.destination, exc)
                await asyncio.sleep(STORE_RETRY_DELAY)
        log.warning(
            "%s: discarded %s of %s (%s); on-failure record sent to %s",
            self.name, plural(len(action.batch.records), "record"), action.batch.shard_id, action.condition,
            action.destination,
        )

    # ------------------------------------------------------------------ shards
    async def reassign(self, owned: set[int]) -> None:
        """Serve ``owned`` from now on (see the module docstring): pause, settle and
        checkpoint everything in hand, rebuild the core from the store's checkpoints.

        Raises:
            RuntimeError: the runner was built without :attr:`build`.
        """
        if self.build is None:
            raise RuntimeError("reassign needs a runner with build")
        if self.owned == owned:
            return
        old = self.core
        old.pause(self.runtime.clock())
        # Outstanding fetches are not cancelled: they are short reads, and a task
        # cancelled before it first ran would never report back to the core.
        self.wake.set()
        while not self.idle:
            await asyncio.sleep(0.01)
        while True:
            try:
                checkpoints = await self.runtime.store.get_checkpoints(self.name)
                break
            except StoreError as exc:
                log.warning("%s: reading checkpoints failed: %s; retrying", self.name, exc)
                await asyncio.sleep(STORE_RETRY_DELAY)
        self.retired.append(old)
        self.core = self.build(checkpoints)
        self.seen_throttles = 0
        self.owned = set(owned)
        if self.stopping:
            self.core.pause(self.runtime.clock())
        self.wake.set()

    # ------------------------------------------------------------------ drain
    async def drained(self) -> bool:
        """Whether every record of every shard is settled (the checkpoint is at the
        shard's latest sequence number) and nothing is in hand.

        A runner serving only some shards (:attr:`owned`) reads every shard's checkpoint
        from the store: the other shards are settled by other workers."""
        if not self.idle or self.core.in_flight:
            return False
        checkpoints = self.core.checkpoints
        store = self.runtime.store
        if self.owned is not None:
            checkpoints = dict(await store.get_checkpoints(self.name))
        for shard in range(self.stream.shard_count):
            latest = await store.latest_sequence(self.config.stream, shard)
            if latest < 0:
                continue
            if checkpoints.get(shard, -1) < latest:
                return False
        return True

    # ------------------------------------------------------------------ stop
    def stop(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.core.pause(self.runtime.clock())
        # Outstanding fetches are short reads and are left to finish: a task cancelled
        # before it first ran would never report back, and the core would never settle.
        self.wake.set()

    def summary(self) -> MappingSummary:
        from sluicegate.runtime.driver import MappingSummary

        cores = [*self.retired, self.core]
        return MappingSummary(
            name=self.name,
            invocations=sum(c.invocations for c in cores),
            errors=sum(c.errors for c in cores),
            throttles=sum(c.throttles for c in cores),
            messages_deleted=self.processed,
            peak_concurrency=self.peak,
            # a stream mapping's bound: one batch per lane
            maximum_concurrency=self.stream.shard_count * self.config.parallelization_factor,
            filtered=sum(c.filtered_records for c in cores),
        )

