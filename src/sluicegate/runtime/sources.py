"""The per-source I/O adapters of the one runner (:mod:`sluicegate.runtime.runner`).

Each adapter performs its source's reads and settle actions against the store and
reports back to the mapping's core; the runner does everything else.

:class:`QueueIO` (standard and FIFO queues):

- ``Receive``: grouped into as few store calls as possible (see
  :meth:`QueueIO._groups`); each group's first store call, which does not wait, is made
  by the runner's loop task itself (:meth:`QueueIO.read`), whose next poll starts the
  invocations of the records just received (no hop through a task per receive); only
  pollers left without records wait on, in a task per group (the long poll, whose
  records start their invocations in that task). The records go to the core through
  :meth:`~sluicegate.core.protocol.MappingCore.read_done`. A FIFO queue's receives
  each run in a task of their own;
- ``Delete``: gathered for :data:`DELETE_GATHER` seconds and deleted in one store call,
  by one task; the next receives do not wait for it (the poller of a finished batch
  receives again while its delete is in flight);
- ``Abandon``: a log line (the messages reappear by themselves).

:class:`StreamIO` (Kinesis-like streams):

- ``Fetch``: the shard's latest sequence number first, then (unless the core says the
  read is a first one at ``LATEST``) the records; both go to the core, which decides
  where the shard's iterator stands (starting position, retention gap);
- ``SendToDestination`` then ``Checkpoint``: persisted in the order the core gave them,
  by one writer task, so a checkpoint is never stored before the on-failure record of
  the batch it moves past.

In a cluster (:mod:`sluicegate.cluster`) a stream mapping serves only the shards it
leases (:attr:`StreamIO.owned`): the core's fetches of other shards are answered with
nothing at once, without touching the store, so those shards read nothing and never
checkpoint. When the leased set changes, :meth:`StreamIO.reassign` pauses the core,
lets every batch in flight settle and its checkpoint be written, and builds a new core
from the store's checkpoints: a shard taken over resumes where its previous owner
settled, and a shard given up is released only after this worker's last batch of it is
checkpointed, so the order of each partition key holds across the handover.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sluicegate.core.config import MappingConfig, QueueConfig
from sluicegate.core.mapping import QueueMapping
from sluicegate.core.stream_mapping import StreamMapping
from sluicegate.core.streams import (
    Checkpoint,
    Fetch,
    SendToDestination,
    StreamBatch,
    StreamConfig,
    StreamMappingConfig,
    StreamRecord,
)
from sluicegate.core.types import Abandon, Batch, Delete, QueueRecord, Receive
from sluicegate.errors import StoreError
from sluicegate.runtime.events import record_sizes, sqs_event
from sluicegate.runtime.runner import MappingRunner
from sluicegate.runtime.stream_events import kinesis_event, kinesis_record_size
from sluicegate.store.base import MAX_RECEIVE_MANY, Message, StreamMessage
from sluicegate.wording import plural

if TYPE_CHECKING:
    from sluicegate.runtime.driver import MappingSummary

__all__ = ["DELETE_GATHER", "DELETE_GATHER_UNDER", "QueueIO", "StreamIO"]

log = logging.getLogger("sluicegate.runtime")

STORE_RETRY_DELAY = 1.0
"""Seconds before a failed receive, fetch or checkpoint write is tried again."""

MAX_LONG_POLL = 20.0
"""Longest receive wait in seconds (SQS's WaitTimeSeconds maximum)."""

DELETE_GATHER = 0.005
"""Seconds the deletes of finished batches gather before one store call deletes them
all. Deletes are off every poller's path (a poller receives again while its batch's
delete is in flight), so waiting costs no throughput, and gathering saves store
transactions: on SQLite they run on the event loop's thread, where fewer and larger
ones leave more time to the receives and invocations around them."""

DELETE_GATHER_UNDER = 10
"""Deletes wait :data:`DELETE_GATHER` only while fewer receipt handles than this are
pending: a batch of 10 or more is deleted at the next turn of the loop. Measured with
bench/throughput.py (20,000 messages, concurrency 20): gathering raised batch 1 from 0.84
to 1.04 of the bare loop but held batch 10 back from 0.59 to 0.46, its large deletes
waiting for a timer with nothing to gain."""


class _RunnerView:
    """What the cluster reads of either adapter beside its core: the mapping's name and
    the event that wakes its runner (cluster.runners)."""

    runner: MappingRunner

    @property
    def name(self) -> str:
        return self.runner.name

    @property
    def wake(self) -> asyncio.Event:
        return self.runner.wake


class QueueIO(_RunnerView):
    """A queue mapping's receives and deletes (see the module docstring)."""

    def __init__(self, runner: MappingRunner, config: MappingConfig, queue: QueueConfig,
                 arn: str) -> None:
        self.runner = runner
        self.config = config
        self.queue = queue
        self.arn = arn
        self.receives: dict[int, asyncio.Task[None]] = {}
        self.due: list[Receive] = []
        """Receives of the last polls held for :meth:`read`."""
        self.pending_deletes: list[str] = []
        self.delete_task: asyncio.Task[None] | None = None
        self.starved = False
        self.deleted = 0

    # cluster's view (cluster.runners.QueueRunner)
    @property
    def core(self) -> QueueMapping:
        core: QueueMapping = self.runner.core
        return core

    # ------------------------------------------------------------------ SourceIO
    def perform(self, now: float, actions: list[Any]) -> None:
        receives: list[Receive] = []
        for action in actions:
            if isinstance(action, Receive):
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

    def event(self, batch: Batch) -> dict[str, Any]:
        messages: list[Message] = [r.payload for r in batch.records]
        return sqs_event(messages, queue_arn=self.arn, region=self.runner.runtime.region)

    def describe(self, batch: Batch) -> str:
        return plural(len(batch.records), "message")

    def before_invoke(self) -> None:
        return None

    def after_finished(self) -> None:
        return None

    def settled(self) -> bool:
        return self.delete_task is None

    def stop(self) -> None:
        """Cut outstanding long polls short."""
        for task in set(self.receives.values()):
            task.cancel()

    async def drained(self) -> bool:
        return True  # the runtime counts the queues themselves

    def summary(self) -> MappingSummary:
        from sluicegate.runtime.driver import MappingSummary

        core = self.core
        return MappingSummary(
            name=self.name,
            invocations=core.invocations,
            errors=core.errors,
            throttles=core.throttles,
            messages_deleted=self.deleted,
            peak_concurrency=self.runner.peak,
            maximum_concurrency=self.config.maximum_concurrency,
            filtered=core.filtered_records,
        )

    # ------------------------------------------------------------------ receive
    def _start_receives(self, receives: list[Receive]) -> None:
        """Hold a poll's receives for :meth:`read` (a FIFO queue's start in tasks of
        their own at once, see :meth:`_groups`)."""
        if self.queue.fifo:
            loop = asyncio.get_running_loop()
            for action in receives:
                self._spawn_group(loop, [action])
            return
        self.due += receives

    def reads_due(self) -> bool:
        return bool(self.due)

    async def read(self) -> None:
        """The receives :meth:`perform` held back, in the runner's loop task: one store
        call per group (:meth:`_groups`) that does not wait, its records reported at
        once; pollers left without messages go on waiting in a task of their own (the
        long poll). Done here rather than in a task per group, a finished poller's
        records reach the core one hop through the event loop sooner."""
        due, self.due = self.due, []
        runtime = self.runner.runtime
        if self.runner.stopping:
            now = runtime.clock()
            for action in due:
                self._report(now, action, [])
            return
        loop = asyncio.get_running_loop()
        store, queue = runtime.store, self.config.queue
        groups = self._groups(due)
        for index, group in enumerate(groups):
            started = loop.time()
            wanted = sum(a.max_messages for a in group)
            try:
                messages = await store.receive_many(
                    queue, max_messages=wanted, visibility_timeout=group[0].visibility_timeout,
                    wait_time=0.0,
                )
            except StoreError:
                self._spawn_group(loop, group)  # tried again there, and retried later
                continue
            except asyncio.CancelledError:  # the runner is cancelled: nothing came
                now = runtime.clock()
                for rest in groups[index:]:
                    for action in rest:
                        self._report(now, action, [])
                raise
            pending = self._serve(group, messages)
            if pending:
                if group[0].wait > 0:
                    # the store was just asked: the task's first call waits, unless
                    # part of the group was served (then it asks again at once)
                    self._spawn_group(loop, pending,
                                      started + min(group[0].wait, MAX_LONG_POLL),
                                      immediate=bool(messages))
                else:
                    now = runtime.clock()
                    for action in pending:
                        self._report(now, action, [])

    def _serve(self, pending: list[Receive], messages: list[Message]) -> list[Receive]:
        """Share ``messages`` out among ``pending`` in order, report each share, and
        return the pollers left without any (a short receive also notes starvation)."""
        wanted = sum(a.max_messages for a in pending)
        if len(messages) < wanted:
            self._starve()
        elif self.starved:
            self.starved = False
        return self._share(pending, messages)

    def _share(self, pending: list[Receive], messages: list[Message]) -> list[Receive]:
        """Share ``messages`` out among ``pending`` in order and report each share; the
        pollers left without any."""
        if not messages:
            return pending
        runtime = self.runner.runtime
        runtime.metrics.received(self.name, len(messages))
        now = runtime.clock()
        served = taken = 0
        while taken < len(messages) and served < len(pending):
            action = pending[served]
            share = messages[taken : taken + action.max_messages]
            taken += len(share)
            self._report(now, action, share)
            served += 1
        return pending[served:]

    @staticmethod
    def _groups(receives: list[Receive]) -> list[list[Receive]]:
        """Pollers' receives grouped for as few store calls as possible.

        Receives that start together with the same wait are grouped (up to
        :data:`MAX_RECEIVE_MANY` messages) and served by one store transaction; a poller
        whose share came back empty keeps waiting in its group until the long poll runs
        out, as a poller of its own would. This is I/O batching only: each poller gets at
        most what it asked for (never above SQS's 10 per receive), and the core sees the
        same reports as with one call per poller.

        Not for a FIFO queue: one claim would hand messages of one group to several
        pollers, whose batches would then run that group concurrently, out of order.
        Each FIFO receive is a claim of its own, which the store keeps to groups with
        nothing in flight; the core has the pollers take turns (the runtime's cores are
        built with ``receive_turns``), so one receive is out at a time.
        """
        receives.sort(key=lambda r: r.wait)
        groups: list[list[Receive]] = []
        group: list[Receive] = []
        wanted = 0
        for action in receives:
            if group and (
                wanted + action.max_messages > MAX_RECEIVE_MANY or action.wait != group[0].wait
            ):
                groups.append(group)
                group, wanted = [], 0
            group.append(action)
            wanted += action.max_messages
        if group:
            groups.append(group)
        return groups

    def _spawn_group(self, loop: asyncio.AbstractEventLoop, group: list[Receive],
                     deadline: float | None = None, immediate: bool = True) -> None:
        task = loop.create_task(self._receive_group(group, deadline, immediate))
        for action in group:
            self.receives[action.poller] = task
        task.add_done_callback(functools.partial(self._receive_done, group))

    def _receive_done(self, group: list[Receive], task: asyncio.Task[None]) -> None:
        """Report an empty receive for every poller of ``task`` it did not report: a task
        cancelled (by :meth:`stop`) before it first ran never enters its body, so neither
        its ``except`` nor its ``finally`` reports, and the core would wait for ever."""
        for action in group:
            if self.receives.get(action.poller) is task:
                self._report(self.runner.runtime.clock(), action, [])
                self.runner.wake.set()

    async def _receive_group(self, group: list[Receive], deadline: float | None = None,
                             immediate: bool = True) -> None:
        """Receive for ``group`` until each poller has records or the long poll (until
        ``deadline`` on the loop's clock, else its wait from now) runs out; without
        ``immediate``, the first call is the waiting one (the caller just asked)."""
        runner = self.runner
        runtime = runner.runtime
        loop = asyncio.get_running_loop()
        pending = list(group)
        longest = min(group[0].wait, MAX_LONG_POLL)
        if deadline is None:
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
                    if immediate:
                        messages = await store.receive_many(
                            queue, max_messages=wanted, visibility_timeout=visibility,
                            wait_time=0.0,
                        )
                        if len(messages) < wanted:
                            self._starve()
                        elif self.starved:
                            self.starved = False
                    else:
                        messages, immediate = [], True
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
                pending = self._share(pending, messages)
                # the records' invocations start now, in this task, not after a hop
                # through the mapping's loop
                runner.step()
                if remaining <= 0:
                    break
        except asyncio.CancelledError:
            pass  # a stop cut the long poll short: report empty receives
        finally:
            now = runtime.clock()
            for action in pending:
                self._report(now, action, [])
            runner.wake.set()

    def _starve(self) -> None:
        """A receive came back short: the queue may be about to run empty, so an
        ``until_empty`` run should look after the next deletes (and now)."""
        self.starved = True
        self.runner.runtime.settled.set()

    def _report(self, now: float, action: Receive, messages: list[Message]) -> None:
        sizes = record_sizes(messages, queue_arn=self.arn, region=self.runner.runtime.region)
        records = [
            QueueRecord(
                m.message_id, m.receipt_handle, size, m.visible_at, m.receive_count, m, m.group_id
            )
            for m, size in zip(messages, sizes, strict=True)
        ]
        self.receives.pop(action.poller, None)
        self.runner.core.read_done(now, action, records)

    # ------------------------------------------------------------------ delete
    def _delete(self, records: tuple[QueueRecord, ...]) -> None:
        """Queue receipt handles for deletion; one transaction deletes all that gathered
        meanwhile (:data:`DELETE_GATHER`)."""
        self.pending_deletes += [r.receipt_handle for r in records]
        if self.delete_task is None:
            self.delete_task = asyncio.get_running_loop().create_task(self._flush_deletes())

    async def _flush_deletes(self) -> None:
        runtime = self.runner.runtime
        try:
            # a full batch's worth is worth a transaction now; fewer wait for company
            full = len(self.pending_deletes) >= DELETE_GATHER_UNDER
            await asyncio.sleep(0.0 if full else DELETE_GATHER)
            while self.pending_deletes:
                handles, self.pending_deletes = self.pending_deletes, []
                try:
                    done = await runtime.store.delete_many(self.config.queue, handles)
                except StoreError as exc:
                    log.warning(
                        "%s: deleting %d processed messages failed: %s; they will be "
                        "delivered again", self.name, len(handles), exc,
                    )
                    continue
                count = sum(done)
                self.deleted += count
                if self.starved:
                    runtime.settled.set()
                runtime.metrics.deleted(self.name, count)
        finally:
            self.delete_task = None
            self.runner.wake.set()


class StreamIO(_RunnerView):
    """A stream mapping's fetches, on-failure records and checkpoints, and the shards
    it serves in a cluster (see the module docstring)."""

    def __init__(self, runner: MappingRunner, config: StreamMappingConfig,
                 stream: StreamConfig, arn: str,
                 build: Callable[[dict[int, int]], StreamMapping] | None = None) -> None:
        self.runner = runner
        self.config = config
        self.stream = stream
        self.arn = arn
        self.build = build
        """Builds a new core from stored checkpoints (needed by :meth:`reassign`)."""
        self.fetches: dict[int, asyncio.Task[None]] = {}
        self.writes: list[SendToDestination | Checkpoint] = []
        self.writer: asyncio.Task[None] | None = None
        self.processed = 0
        self._seen_processed = runner.core.processed_records
        self.owned: set[int] | None = None
        """Shards this mapping serves here (a cluster's lease); ``None``: every shard."""
        self.holds: Callable[[int], bool] | None = None
        """Whether this worker's lease of a shard is still valid (a cluster's): a shard
        of :attr:`owned` whose lease lapsed is not read until the cluster reassigns it."""
        self.retired: list[StreamMapping] = []
        """Cores replaced by :meth:`reassign`, kept for the run's counters."""

    # cluster's view (cluster.runners.ShardedRunner)
    @property
    def core(self) -> StreamMapping:
        core: StreamMapping = self.runner.core
        return core

    @property
    def stopping(self) -> bool:
        return self.runner.stopping

    @property
    def shard_count(self) -> int:
        return self.stream.shard_count

    @property
    def idle(self) -> bool:
        return bool(self.core.idle) and self.writer is None and not self.writes

    # ------------------------------------------------------------------ SourceIO
    def perform(self, now: float, actions: list[Any]) -> None:
        loop = asyncio.get_running_loop()
        for action in actions:
            if isinstance(action, Fetch):
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

    def event(self, batch: StreamBatch) -> dict[str, Any]:
        runtime = self.runner.runtime
        return kinesis_event(
            [r.data for r in batch.records], stream_arn=self.arn, region=runtime.region,
            account_id=runtime.account_id,
        )

    def describe(self, batch: StreamBatch) -> str:
        return f"{plural(len(batch.records), 'record')} of {batch.shard_id}"

    def before_invoke(self) -> None:
        age = self.core.iterator_age_ms
        if age is not None:
            self.runner.runtime.metrics.iterator_age(self.name, age)

    def after_finished(self) -> None:
        processed = self.core.processed_records
        done = processed - self._seen_processed
        self._seen_processed = processed
        if done:
            self.processed += done
            self.runner.runtime.metrics.deleted(self.name, done)

    def settled(self) -> bool:
        return self.writer is None and not self.writes

    def reads_due(self) -> bool:
        return False  # fetches start in tasks of their own

    async def read(self) -> None:
        return None

    def stop(self) -> None:
        # Outstanding fetches are short reads and are left to finish: a task cancelled
        # before it first ran would never report back, and the core would never settle.
        return None

    def summary(self) -> MappingSummary:
        from sluicegate.runtime.driver import MappingSummary

        cores = [*self.retired, self.core]
        return MappingSummary(
            name=self.name,
            invocations=sum(c.invocations for c in cores),
            errors=sum(c.errors for c in cores),
            throttles=sum(c.throttles for c in cores),
            messages_deleted=self.processed,
            peak_concurrency=self.runner.peak,
            maximum_concurrency=self.core.concurrency_limit.value(self.runner.runtime.clock()),
            filtered=sum(c.filtered_records for c in cores),
        )

    # ------------------------------------------------------------------ fetch
    async def _skip(self, action: Fetch) -> None:
        """A fetch of a shard another worker owns: nothing, at once (the core asks again
        after its poll interval)."""
        self.fetches.pop(action.shard, None)
        self.core.read_done(self.runner.runtime.clock(), action, [])
        self.runner.wake.set()

    async def _fetch(self, action: Fetch) -> None:
        store = self.runner.runtime.store
        stream = self.config.stream
        records: list[StreamMessage] = []
        latest: int | None = None
        try:
            latest = await store.latest_sequence(stream, action.shard)
            if action.reads_records:
                records = await store.get_records(
                    stream, action.shard, after=action.after_sequence,
                    at_timestamp=action.at_timestamp, limit=action.max_records,
                )
        except StoreError as exc:
            log.warning("%s: reading shard %s failed: %s; retrying in %gs", self.name,
                        action.shard_id, exc, STORE_RETRY_DELAY)
            await asyncio.sleep(STORE_RETRY_DELAY)
            records, latest = [], None
        except asyncio.CancelledError:
            records, latest = [], None
        finally:
            self.fetches.pop(action.shard, None)
        arn = self.arn
        batch = [
            StreamRecord(r.shard, r.sequence_number, r.partition_key, r, r.approximate_arrival,
                         kinesis_record_size(r, arn))
            for r in records
        ]
        if records:
            self.runner.runtime.metrics.received(self.name, len(records))
        self.core.read_done(self.runner.runtime.clock(), action, batch, latest=latest)
        self.runner.wake.set()

    # ------------------------------------------------------------------ persist
    async def _write(self) -> None:
        """Perform on-failure sends and checkpoints in order; checkpoints of one shard
        that gathered meanwhile are written as one."""
        runtime = self.runner.runtime
        store = runtime.store
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
                runtime.settled.set()
        finally:
            self.writer = None
            self.runner.wake.set()

    async def _send_destination(self, action: SendToDestination) -> None:
        body = json.dumps(action.record, separators=(",", ":"))
        while True:
            try:
                await self.runner.runtime.store.send(action.destination, body)
                break
            except StoreError as exc:
                log.warning("%s: sending an on-failure record to %s failed: %s; retrying",
                            self.name, action.destination, exc)
                await asyncio.sleep(STORE_RETRY_DELAY)
        log.warning(
            "%s: discarded %s of %s (%s); on-failure record sent to %s",
            self.name, plural(len(action.batch.records), "record"), action.batch.shard_id,
            action.condition, action.destination,
        )

    # ------------------------------------------------------------------ shards
    async def reassign(self, owned: set[int]) -> None:
        """Serve ``owned`` from now on (see the module docstring): pause, settle and
        checkpoint everything in hand, rebuild the core from the store's checkpoints.

        Raises:
            RuntimeError: the adapter was built without :attr:`build`.
        """
        if self.build is None:
            raise RuntimeError("reassign needs a stream adapter with build")
        if self.owned == owned:
            return
        runner = self.runner
        runtime = runner.runtime
        old = self.core
        old.pause(runtime.clock())
        # Outstanding fetches are not cancelled: they are short reads, and a task
        # cancelled before it first ran would never report back to the core.
        runner.wake.set()
        while not self.idle:
            await asyncio.sleep(0.01)
        while True:
            try:
                checkpoints = await runtime.store.get_checkpoints(self.name)
                break
            except StoreError as exc:
                log.warning("%s: reading checkpoints failed: %s; retrying", self.name, exc)
                await asyncio.sleep(STORE_RETRY_DELAY)
        self.retired.append(old)
        core = self.build(checkpoints)
        runner.core = core
        runner.seen_throttles = 0
        self._seen_processed = core.processed_records
        self.owned = set(owned)
        if runner.stopping:
            core.pause(runtime.clock())
        runner.wake.set()

    # ------------------------------------------------------------------ drain
    async def drained(self) -> bool:
        """Whether every record of every shard is settled (the checkpoint is at the
        shard's latest sequence number) and nothing is in hand.

        A mapping serving only some shards (:attr:`owned`) reads every shard's
        checkpoint from the store: the other shards are settled by other workers."""
        if not self.idle or self.core.in_flight:
            return False
        checkpoints = self.core.checkpoints
        store = self.runner.runtime.store
        if self.owned is not None:
            checkpoints = dict(await store.get_checkpoints(self.name))
        for shard in range(self.stream.shard_count):
            latest = await store.latest_sequence(self.config.stream, shard)
            if latest < 0:
                continue
            if checkpoints.get(shard, -1) < latest:
                return False
        return True
