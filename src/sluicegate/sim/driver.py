"""The discrete-event driver: the core's mapping on a virtual clock, at heap speed.

One event heap, one virtual clock (``now``, seconds from 0), seeded random streams. The
memory store's engine (:class:`~sluicegate.store.memory.MemoryQueues`) reads the same
clock, and the mapping is the core's :class:`~sluicegate.core.mapping.QueueMapping`,
driven the way the asyncio runtime drives it: ask :meth:`~QueueMapping.poll` what to do,
perform the actions, report results back (``received``, ``finished``), and come back at
:meth:`~QueueMapping.next_wakeup`. A single receive coming back or a single invocation
ending is reported through the fused :meth:`~QueueMapping.received_poll` and
:meth:`~QueueMapping.finished_poll`, which answer as those three calls would, through the
same rules. No mapping rule lives here; what is modelled here is what a real run gets
from the world: handler durations, cold starts, injected errors, a downstream under
load, producers.

How the actions are performed:

- ``Receive``: an immediate receive from the engine. Records come back at once (no SQS
  latency is modelled). An empty receive with ``wait > 0`` long-polls: the poller waits
  until a message becomes visible (a send, a visibility timeout or a delivery delay
  ending) or its wait runs out, then gets what is there (an empty list at the end of the
  wait). A message that becomes visible goes to a waiting poller drawn at random
  (:class:`~sluicegate.sim.models.LongPolls` says why).
- ``Invoke``: an execution environment (warm or cold), a duration, an outcome drawn at
  the start, and an end event; see :meth:`_Simulation._invoke`.
- ``Delete``: deletes from the engine; a stale receipt handle (the message was received
  again after its visibility timeout) deletes nothing, as on SQS.
- ``Abandon``: counted; the engine makes the messages visible again by itself.

Pausing a mapping (``[[mapping.pauses]]``) cuts its outstanding long polls short (they
return empty, as the runtime's stop does), so nothing more is received while paused.

Events at the same instant run in the order they were scheduled; a bucket boundary runs
before any other event of its instant, so an event at exactly t=10 s belongs to the
bucket [10, 20).
"""

from __future__ import annotations

import dataclasses
import gc
import heapq
import itertools
import operator
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, cast

from sluicegate.core.config import effective_visibility_timeout
from sluicegate.core.mapping import QueueMapping
from sluicegate.core.pool import ConcurrencyPool
from sluicegate.core.results import (
    SUCCESS_OUTCOME,
    exception_outcome,
    interpret_response,
    timeout_outcome,
)
from sluicegate.core.types import Batch, BatchOutcome, Delete, Invoke, QueueRecord, Receive
from sluicegate.sim.models import (
    Arrivals,
    Downstream,
    Environments,
    ErrorWindows,
    LongPolls,
    lognormal_block,
    sampler,
    schedule_controls,
)
from sluicegate.sim.scenario import RECORD_OVERHEAD, LogNormal, Scenario, load_scenario
from sluicegate.store.base import MAX_RECEIVE_WAIT, NewMessage, md5_hex
from sluicegate.store.memory import MemoryQueues

__all__ = ["SERIES_KEYS", "SUMMARY_KEYS", "SimResult", "simulate"]

SERIES_KEYS: tuple[str, ...] = (
    "t",
    "invocations",
    "cold_starts",
    "concurrency",
    "environments",
    "limit",
    "throttles",
    "errors",
    "partial",
    "abandoned",
    "sent",
    "received",
    "processed",
    "dead_lettered",
    "visible",
    "in_flight",
    "delayed",
    "oldest_age",
)
"""Keys of every series entry, in order. Counters are per bucket, gauges at its end:

- ``t``: the bucket's start, seconds;
- ``invocations``: invocations started; ``cold_starts``: of them, in a new environment;
- ``concurrency``: most invocations running at once (init phase included);
- ``environments``: most execution environments alive at once (busy or warm);
- ``limit``: the scaling policy's limit at the bucket's end (capped by
  ``maximum_concurrency``);
- ``throttles``: invocations refused by the concurrency pool (retried or abandoned);
- ``errors``: invocations that ended in error (raise, timeout, downstream failure, or a
  response AWS rejects); ``partial``: ended with some records reported failed;
- ``abandoned``: batches the poller gave up after throttles (messages reappear);
- ``sent``: messages produced; ``received``: records received (redeliveries included);
  ``processed``: messages deleted; ``dead_lettered``: moved to the dead-letter queue;
- ``visible``, ``in_flight``, ``delayed``: the queue's counts at the bucket's end;
  ``oldest_age``: seconds since the oldest message was sent, at the bucket's end.
"""

SUMMARY_KEYS: tuple[str, ...] = (
    "duration",
    "total_invocations",
    "total_cold_starts",
    "total_errors",
    "total_partial",
    "total_throttles",
    "total_abandoned",
    "peak_concurrency",
    "peak_environments",
    "messages_sent",
    "messages_received",
    "messages_processed",
    "messages_dead_lettered",
    "messages_filtered",
    "messages_queued",
    "throughput",
    "max_oldest_age",
    "downstream_requests",
    "downstream_failures",
)
"""Keys of the summary, in order. ``duration``: simulated seconds; ``throughput``:
messages processed per simulated second over the run; ``messages_sent``: accepted by the
queue (backlog included); ``messages_queued``: still in the queue at the end (visible, in
flight or delayed), so that ``messages_sent = messages_processed + messages_queued +
messages_dead_lettered``; ``messages_filtered``: those of the processed that the mapping's
filter criteria rejected (deleted without an invocation); ``max_oldest_age``: the largest end-of-bucket ``oldest_age``;
the others total or peak their series."""

SAME_INSTANT_LIMIT: Final = 10_000
"""Most consecutive mapping wake-ups at one instant before the driver declares the core
stuck (a wake-up that never makes progress would otherwise loop forever)."""

_END: Final = 0
_PRODUCE: Final = 1
_TIMEOUT: Final = 2
_VISIBLE: Final = 3
_WAKE: Final = 4
_BUCKET: Final = 5
_ERRORS: Final = 6
_PAUSE: Final = 7
_RESUME: Final = 8


_INF: Final = float("inf")
_UNKNOWN: Final = -1.0
"""``wake`` when the mapping's next wake-up must be asked (:meth:`QueueMapping.next_wakeup`):
reports came after the fused call that returned one. Compared by value: no wake-up is
before t=0 (and a compiled build does not keep float identities)."""
_NO_FAILURES: dict[str, list[Any]] = {"batchItemFailures": []}
_INJECTED: Final = "InjectedError: injected by the scenario's error window"
_DOWNSTREAM: Final = "DownstreamError: the downstream failed under load"


@dataclass(frozen=True, slots=True)
class SimResult:
    """What a run produced.

    Attributes:
        scenario: the normalized scenario (:meth:`Scenario.to_dict`).
        summary: totals and peaks (keys: :data:`SUMMARY_KEYS`).
        series: one dict per bucket (keys: :data:`SERIES_KEYS`).
    """

    scenario: dict[str, Any]
    summary: dict[str, Any]
    series: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """``{"scenario": ..., "summary": ..., "series": [...]}``, JSON-serializable; the
        same scenario and seed give the same ``json.dumps`` byte for byte."""
        return {"scenario": self.scenario, "summary": self.summary, "series": self.series}


class _Groups:
    """Which message group each message of a FIFO queue goes to: uniformly over ``count``
    groups, except a ``hot_share`` of messages that all go to group ``g0``."""

    __slots__ = ("count", "hot_share", "random", "sent")

    def __init__(self, count: int, hot_share: float, rng: random.Random) -> None:
        self.count = count
        self.hot_share = hot_share
        self.random = rng.random
        self.sent = 0

    def draw(self) -> str:
        self.sent += 1
        if self.hot_share and self.random() < self.hot_share:
            return "g0"
        return f"g{int(self.random() * self.count)}"


def simulate(scenario: Scenario | dict[str, Any]) -> SimResult:
    """Run ``scenario`` in virtual time.

    Parameters:
        scenario: a :class:`Scenario`, or a plain dict that :func:`load_scenario` accepts.

    Returns:
        The :class:`SimResult`: a pure function of the scenario (seed included).

    Raises:
        ScenarioError: a dict that is not a valid scenario.
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    # A run allocates several objects per event and creates no reference cycles
    # (reference counting frees everything as it goes), so the cyclic garbage collector
    # would only re-scan live objects: it is paused for the run, then restored.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _Simulation(scenario).run()
    finally:
        if collecting:
            gc.enable()


class _Simulation:
    """One run: build, :meth:`run`, discard.

    The event loop (:meth:`_loop`) is one function with the hot state in local
    variables: at hundreds of thousands of invocations per second, attribute lookups
    and method calls are the cost. Rare events (bucket boundaries, error windows,
    pauses) call methods.
    """

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self._now = [0.0]
        """The virtual clock: ``[now]``, a list so that the engine reads it through a C
        function (``partial(getitem, ...)``) rather than a method call."""
        self.end = scenario.duration
        seed = scenario.seed

        def stream(purpose: str) -> random.Random:
            # A string seed is hashed with SHA-512: the same on every platform and
            # independent of PYTHONHASHSEED.
            return random.Random(f"sluicegate-sim:{seed}:{purpose}")

        # --- events: (time, sequence, kind, ...); the sequence makes the order total
        self.heap: list[tuple[Any, ...]] = []
        self.next_seq = itertools.count(1).__next__
        self.wake_at = _INF
        """When the mapping's pending wake-up event fires (``inf``: none)."""
        self.timeout_at = _INF
        """When the pending long-poll expiry event fires (``inf``: none)."""
        self.visible_at = _INF
        """When the pending visibility event fires (``inf``: none). Whenever a message is
        hidden (received, or sent with a delay) an event is made pending at or before the
        time it becomes visible; one that fires with nobody waiting is dropped, and the
        next waiting poller schedules the next (:meth:`_watch`)."""
        self.dirty = False
        """Whether :meth:`_serve` or an expiry reported anything to the mapping."""

        # --- queue
        q = scenario.queue
        ids = map(hex, itertools.count(1))  # unique is enough; hex() is the cheapest
        clock = cast(Callable[[], float], partial(operator.getitem, self._now, 0))
        self.engine = MemoryQueues(clock, new_id=partial(next, ids))
        dlq = scenario.dead_letter_queue_config()
        if dlq is not None:
            self.engine.ensure_queue(dlq)
        qconfig = scenario.queue_config()
        self.engine.ensure_queue(qconfig)
        self.queue = qconfig.name
        self.delay = float(q.delay_seconds)
        self.new_message = NewMessage("", md5_hex(""), {}, q.delay_seconds, "sluicegate-sim")
        self.fifo = qconfig.fifo
        """A FIFO queue: every message gets a group (see :class:`_Groups`) and its own
        deduplication id, and goes through the engine's FIFO send."""
        self.groups = _Groups(q.groups, q.hot_group_share, stream("groups")) if self.fifo else None
        self.bodies = [NewMessage(b, md5_hex(b), {}, q.delay_seconds, "sluicegate-sim")
                       for b in q.bodies]
        """Messages of each body of ``[queue] bodies``; a send draws one per message."""
        self.pick_body = stream("bodies").choice
        self.record_size = q.message_size + RECORD_OVERHEAD
        self.waiters = LongPolls(stream("polls"))
        """Long polls waiting for messages."""

        # --- function and mapping
        f = scenario.function
        fconfig = scenario.function_config()
        self.pool = ConcurrencyPool(scenario.account_config())
        self.pool.register(fconfig)
        mconfig = scenario.mapping_config()
        criteria = mconfig.filter_criteria
        self.mapping = QueueMapping(
            mconfig,
            visibility_timeout=effective_visibility_timeout(
                qconfig.visibility_timeout, mconfig.maximum_batching_window, fconfig.timeout
            ),
            pool=self.pool,
            now=0.0,
            record_filter=None if not criteria else (
                lambda r: criteria.matches_payload(r.payload.body)),
        )
        self.maximum = mconfig.maximum_concurrency
        self.report_failures = mconfig.report_batch_item_failures
        self.timeout = fconfig.timeout
        durations = stream("durations")
        self.duration = sampler(f.duration, durations)
        dist = f.duration
        self.lognormal: tuple[float, float, random.Random] | None = (
            (dist.mu, dist.sigma, durations)
            if isinstance(dist, LogNormal) and dist.p99 != dist.median else None
        )
        """``(mu, sigma, rng)`` when durations are lognormal: the event loop then takes
        them from blocks (:func:`~sluicegate.sim.models.lognormal_block`): the values
        :func:`sampler` draws, in its order, without a call per draw."""
        self.per_record = f.duration_per_record
        self.cold_start = sampler(f.cold_start, stream("cold-starts"))
        self.environments = Environments(f.idle_timeout)
        self.errors_rng = stream("errors")
        self.windows = f.errors
        self.error_windows = ErrorWindows(f.errors)
        self.p_raise = 0.0
        self.p_timeout = 0.0
        self.p_item = 0.0
        self.raise_at = 1.0
        spec = scenario.downstream
        self.downstream = None if spec is None else Downstream(spec, stream("downstream"))
        self.downstream_per_record = spec is not None and spec.per == "record"
        self.downstream_items = spec is not None and spec.error_kind == "batch_item_failure"
        self.producers = [
            Arrivals(p, self.end, stream(f"producer:{i}"))
            for i, p in enumerate(scenario.producers)
        ]
        self.arrivals: list[tuple[float, int, Arrivals]] = []
        """Each producer's next send: (time, sequence, producer), a heap of its own, so
        that the busiest events (one per message at a constant rate) cost no push and pop
        on the main heap. At one instant: bucket boundary and scenario changes (negative
        sequence numbers), then sends, then the rest."""

        # --- results
        self.series: list[dict[str, Any]] = []
        self.bucket_start = 0.0
        self.last_throttles = 0
        self.last_dead = 0
        self.max_oldest_age = 0.0

    @property
    def now(self) -> float:
        """The virtual time, seconds from the start."""
        return self._now[0]

    @property
    def modelled(self) -> bool:
        """Whether an invocation needs more than a duration draw: records add time,
        errors are injected, or a downstream is called."""
        return bool(self.per_record or self.p_raise or self.p_timeout or self.p_item
                    or self.downstream is not None)

    # ------------------------------------------------------------------ run

    def run(self) -> SimResult:
        scenario = self.scenario
        end = self.end
        heap = self.heap
        seq = self.next_seq
        schedule_controls(
            heap, end=end, bucket=scenario.bucket, windows=self.windows,
            pauses=scenario.mapping.pauses, kinds=(_BUCKET, _ERRORS, _PAUSE, _RESUME),
        )
        for producer in self.producers:
            first = producer.first()
            if first is not None:
                heapq.heappush(self.arrivals, (first, seq(), producer))
        # The backlog is in the queue at t=0; the first poll is an ordinary wake-up at
        # t=0 (after a pause or an error window starting then, and after sends at t=0).
        backlog = scenario.queue.backlog
        if backlog:
            if self.bodies:
                self._send_bodies(self.queue, [self.new_message] * backlog)
            elif self.fifo:
                self._send_fifo(self.queue, [self.new_message] * backlog)
            else:
                self.engine.send(self.queue, [self.new_message] * backlog)
            if self.delay:
                self._watch(self.delay)
        heapq.heappush(heap, (0.0, seq(), _WAKE))
        self.wake_at = 0.0
        self._loop(backlog)
        return SimResult(scenario.to_dict(), self._summary(), self.series)

    def _send_fifo(self, queue: str, messages: list[NewMessage]) -> list[str]:
        """Send to a FIFO queue: each message in a group drawn by :class:`_Groups`, with
        a deduplication id of its own (the simulated producer never sends duplicates)."""
        groups = self.groups
        assert groups is not None
        fresh = [
            dataclasses.replace(message, group_id=groups.draw(),
                                deduplication_id=f"{groups.sent:x}")
            for message in messages
        ]
        return [sent.message_id for sent in self.engine.send_fifo(queue, fresh)]

    def _send_bodies(self, queue: str, messages: list[NewMessage]) -> list[str]:
        """Send messages whose bodies are drawn from ``[queue] bodies`` (through the FIFO
        send when the queue is FIFO)."""
        pick, bodies = self.pick_body, self.bodies
        drawn = [pick(bodies) for _ in messages]
        if self.fifo:
            return self._send_fifo(queue, drawn)
        return self.engine.send(queue, drawn)

    def _loop(self, sent: int) -> None:
        """Run every event before the end, then close the last bucket.

        Parameters:
            sent: messages already sent at t=0 (the backlog), counted in the first bucket.
        """
        # Everything the hot path touches, as locals; methods are called on their objects
        # (as cheap as a bound-method local for CPython, and what a compiled build
        # (mypyc) turns into direct calls).
        heap = self.heap
        clock = self._now
        pop = heapq.heappop
        push = heapq.heappush
        seq = self.next_seq
        end = self.end
        engine = self.engine
        queue = self.queue
        size = self.record_size
        send = self._send_bodies if self.bodies else (
            self._send_fifo if self.fifo else engine.send)
        fifo = self.fifo
        # FIFO groups and drawn bodies need a message of their own per send: not the
        # fast path, which hands one shared message to a waiting poller
        own_messages = self.fifo or bool(self.bodies)
        new_message = self.new_message
        one_message = [new_message]
        delay = self.delay
        # a send with nothing to delay and no message of its own may take the fast path
        shared = not delay and not own_messages
        mapping = self.mapping
        waiters = self.waiters
        waiting = waiters.pool
        environments = self.environments
        warm = environments.warm
        idle_timeout = environments.idle_timeout
        draw = self.duration
        lognormal = self.lognormal is not None
        mu, sigma, durations = self.lognormal or (0.0, 0.0, random.Random(0))
        next_duration: Callable[[], float] = iter(()).__next__
        cold_start = self.cold_start
        timeout = self.timeout
        modelled = self.modelled
        model = self._model
        downstream = self.downstream
        success = SUCCESS_OUTCOME
        max_wait = MAX_RECEIVE_WAIT
        # Gauges, and the current bucket's counters (b_*).
        running = 0
        b_running = b_live = 0
        b_invocations = b_cold = b_errors = b_partial = b_abandoned = 0
        b_sent = sent
        b_received = b_processed = 0
        same = 0
        last = -1.0

        arrivals = self.arrivals
        replace = heapq.heapreplace
        event: tuple[Any, ...] = ()
        unknown = _UNKNOWN
        # The next send's time (inf: none); a sentinel at inf, after everything, keeps
        # the heap non-empty, so that its top needs no test.
        next_send = arrivals[0][0] if arrivals else _INF
        push(heap, (_INF, 0, _END))
        # One producer (the usual case): its next send is `next_send` alone, without the
        # arrivals heap (whose sequence numbers only order several producers' sends).
        solo = arrivals[0][2] if len(arrivals) == 1 else None

        while True:
            # The mapping's actions at `now` and its next wake-up (`wake`), when a fused
            # call (received_poll, finished_poll) returned them; else poll() is asked.
            actions = None
            top = heap[0]
            now: float = top[0]
            kind: int
            if next_send < now or (next_send == now and top[1] > 0):
                now = next_send
                kind = _PRODUCE
            else:
                event = pop(heap)
                kind = event[2]
            if now >= end:
                break
            clock[0] = now
            if kind == _END:
                # An invocation ended: free its environment, report its outcome.
                running -= 1
                environments.release(now)
                outcome: BatchOutcome = event[4]
                ended: Batch = event[3]
                if outcome is not success:
                    if outcome.function_error:
                        b_errors += 1
                    elif outcome.failed:
                        b_partial += 1
                called: bool = event[5]
                if called:
                    downstream.done()  # type: ignore[union-attr]
                deleted, actions, wake = mapping.finished_poll(now, ended.id, outcome)
                if deleted:
                    b_processed += engine.delete_records(queue, deleted)
                    if fifo and waiting:
                        # A FIFO group whose batch settled may deliver again: its next
                        # messages were visible all along, but no receive could take them.
                        b_received += self._serve(now)
                        if self.dirty:
                            actions = [*actions, *mapping.poll(now)]
                            wake = unknown
            elif kind == _PRODUCE:
                producer = arrivals[0][2] if solo is None else solo
                count = producer.count
                fast = count == 1 and waiting and shared
                if not fast:
                    send(queue, one_message if count == 1 else one_message * count)
                b_sent += count
                after = producer.next(now)
                if solo is not None:
                    next_send = _INF if after is None else after
                elif after is None:
                    pop(arrivals)
                    next_send = arrivals[0][0] if arrivals else _INF
                else:
                    replace(arrivals, (after, seq(), producer))
                    next_send = arrivals[0][0]
                if fast:
                    # The usual case: a waiting poller drawn at random receives the one
                    # message as it is sent, in one call to the engine.
                    entry = waiters.take()
                    waiter: Receive = entry[2]
                    records = engine.send_receive_records(queue, new_message, waiter.max_messages,
                                           waiter.visibility_timeout, size)
                    if records:
                        b_received += len(records)
                        actions, wake = mapping.received_poll(now, waiter.poller, records)
                        if now + waiter.visibility_timeout < self.visible_at:
                            self._watch(now + waiter.visibility_timeout)
                    else:
                        waiters.put_back(entry)
                elif delay:
                    self._watch(now + delay)
                    if not waiting:
                        continue
                    b_received += self._serve(now)
                    if not self.dirty:
                        continue
                elif not waiting:
                    continue
                else:
                    # _serve, inlined for the hot path. Pollers wait only while nothing
                    # is visible, so what is visible now is what was just sent (messages
                    # due at this very instant have a visibility event of their own):
                    # hand out `count` messages, without asking the queue first.
                    left = count
                    while left > 0 and waiting:
                        entry = waiters.take()
                        action = entry[2]
                        records = engine.receive_records(queue, action.max_messages,
                                          action.visibility_timeout, size)
                        if not records:
                            waiters.put_back(entry)
                            break
                        n = len(records)
                        left -= n
                        b_received += n
                        mapping.received(now, action.poller, records)
                        if now + action.visibility_timeout < self.visible_at:
                            self._watch(now + action.visibility_timeout)
            elif kind == _WAKE:
                if now != self.wake_at:
                    continue  # superseded by an earlier wake-up
                if now == last:
                    same += 1
                    if same > SAME_INSTANT_LIMIT:
                        raise RuntimeError(f"the mapping makes no progress at t={now}")
                else:
                    same = 0
                    last = now
                self.wake_at = _INF
            elif kind == _TIMEOUT:
                if now != self.timeout_at:
                    continue
                self.timeout_at = _INF
                expired = waiters.expire(now)
                for action in expired:
                    mapping.received(now, action.poller, [])
                after = waiters.next_deadline()
                if after is not None:
                    self.timeout_at = after
                    push(heap, (after, seq(), _TIMEOUT))
                if not expired:
                    continue
            elif kind == _VISIBLE:
                if now != self.visible_at:
                    continue
                self.visible_at = _INF
                if not waiting:
                    continue
                b_received += self._serve(now)
                if waiting:
                    when = engine.next_visible_at(queue)
                    if when is not None:
                        self._watch(when)
                if not self.dirty:
                    continue
            elif kind == _BUCKET:
                self._close_bucket(now, {
                    "invocations": b_invocations,
                    "cold_starts": b_cold,
                    "concurrency": b_running,
                    "environments": b_live,
                    "errors": b_errors,
                    "partial": b_partial,
                    "abandoned": b_abandoned,
                    "sent": b_sent,
                    "received": b_received,
                    "processed": b_processed,
                })
                environments.reclaim(now)
                b_running, b_live = running, environments.live
                b_invocations = b_cold = b_errors = b_partial = b_abandoned = 0
                b_sent = b_received = b_processed = 0
                continue
            elif kind == _ERRORS:
                self._toggle_window(event[3], event[4])
                modelled = self.modelled
                continue
            elif kind == _PAUSE:
                mapping.pause(now)
                # Cut outstanding long polls short, as the runtime's stop does.
                for action in waiters.clear():
                    mapping.received(now, action.poller, [])
            else:  # _RESUME
                mapping.resume(now)

            # ---- the mapping's turn: poll, perform, until nothing more is reported now
            if actions is None:
                actions = mapping.poll(now)
                wake = unknown
            while True:
                reported = False
                for action in actions:
                    if isinstance(action, Receive):
                        # While pollers wait, nothing is visible (every send serves them,
                        # and a visibility event is pending for what becomes visible), so
                        # this receive would come back empty: it joins the wait.
                        got = (
                            None if waiting or not engine.has_visible(queue)
                            else engine.receive_records(queue, action.max_messages,
                                         action.visibility_timeout, size)
                        )
                        if got:
                            b_received += len(got)
                            mapping.received(now, action.poller, got)
                            reported = True
                            if now + action.visibility_timeout < self.visible_at:
                                self._watch(now + action.visibility_timeout)
                            continue
                        wait = action.wait
                        wait = wait if wait < max_wait else max_wait
                        if wait <= 0:
                            mapping.received(now, action.poller, [])
                            reported = True
                            continue
                        # Long poll: wait for a message or the end of the wait.
                        deadline = now + wait
                        waiters.add(deadline, action)
                        if deadline < self.timeout_at:
                            self.timeout_at = deadline
                            push(heap, (deadline, seq(), _TIMEOUT))
                        if self.visible_at == _INF:
                            when = engine.next_visible_at(queue)
                            if when is not None:
                                self._watch(when)
                    elif isinstance(action, Invoke):
                        batch = action.batch
                        b_invocations += 1
                        running += 1
                        # conditional expressions, not max(): a call costs more here
                        b_running = running if running > b_running else b_running
                        # A warm environment, else a cold start (see Environments); the
                        # usual case, with none to reclaim, without the call to acquire.
                        if warm and warm[0] > now - idle_timeout:
                            warm.pop()
                            start = now
                        elif environments.acquire(now):
                            b_cold += 1
                            live = environments.live
                            b_live = live if live > b_live else b_live
                            start = now + cold_start()
                        else:
                            start = now
                        if lognormal:  # sampler's lognormal draws, a block at a time
                            try:
                                duration = next_duration()
                            except StopIteration:
                                next_duration = iter(
                                    lognormal_block(mu, sigma, durations)).__next__
                                duration = next_duration()
                        else:
                            duration = draw()
                        if modelled:
                            duration, outcome, called = model(now, batch, duration)
                        else:
                            outcome = success
                            called = False
                            if duration > timeout:
                                duration = timeout
                                outcome = timeout_outcome(batch)
                        push(heap, (start + duration, seq(), _END, batch, outcome, called))
                    elif isinstance(action, Delete):
                        b_processed += engine.delete_records(queue, action.records)
                    else:
                        b_abandoned += 1
                if not reported:
                    break
                actions = mapping.poll(now)
                wake = unknown
            if wake == unknown:
                wake = mapping.next_wakeup(now)
            if wake is not None and wake < self.wake_at:
                self.wake_at = wake
                push(heap, (wake, seq(), _WAKE))

        clock[0] = end
        self._close_bucket(end, {
            "invocations": b_invocations,
            "cold_starts": b_cold,
            "concurrency": b_running,
            "environments": b_live,
            "errors": b_errors,
            "partial": b_partial,
            "abandoned": b_abandoned,
            "sent": b_sent,
            "received": b_received,
            "processed": b_processed,
        })

    # ------------------------------------------------------------------ long polls

    def _watch(self, when: float) -> None:
        """Make sure a visibility event fires by ``when`` (a message may become visible
        then), while pollers wait."""
        if when < self.visible_at:
            self.visible_at = when
            heapq.heappush(self.heap, (when, self.next_seq(), _VISIBLE))

    def _serve(self, now: float) -> int:
        """Give visible messages to waiting pollers (drawn at random) while any are visible.

        Returns:
            Records handed out; sets ``dirty`` when any were.
        """
        waiters = self.waiters
        engine = self.engine
        mapping = self.mapping
        queue = self.queue
        size = self.record_size
        count = 0
        self.dirty = False
        while waiters.pool and engine.has_visible(queue):
            entry = waiters.take()
            action = entry[2]
            records = engine.receive_records(queue, action.max_messages,
                                             action.visibility_timeout, size)
            if not records:
                waiters.put_back(entry)
                break
            count += len(records)
            mapping.received(now, action.poller, records)
            self.dirty = True
            self._watch(now + action.visibility_timeout)
        return count

    # ------------------------------------------------------------------ the function

    def _toggle_window(self, index: int, on: bool) -> None:
        """An error window opens or closes: recompute the error probabilities (see
        :class:`~sluicegate.sim.models.ErrorWindows`), kept here as attributes for
        :meth:`_model`."""
        errors = self.error_windows
        errors.toggle(index, on)
        self.p_raise, self.p_timeout = errors.p_raise, errors.p_timeout
        self.p_item, self.raise_at = errors.p_item, errors.raise_at

    def _model(self, now: float, batch: Batch, duration: float
               ) -> tuple[float, BatchOutcome, bool]:
        """Everything beyond the duration draw, for an invocation starting at ``now``.

        In order: ``duration_per_record``; an injected ``raise`` (the invocation ends after
        ``raise_at`` of its duration, without calling the downstream) or ``timeout`` (it
        runs to the function timeout); else the downstream call (its latency added, its
        failures raising or reporting records), then injected batch item failures; the
        handler's response goes through the core's
        :func:`~sluicegate.core.results.interpret_response`, so that with
        ``report_batch_item_failures`` off it is ignored, as AWS does. Anything longer
        than the function timeout ends at the timeout as an error.

        Returns:
            The duration (seconds, init excluded), the outcome, and whether the
            downstream was called (its ``concurrency`` slot is freed at the end).
        """
        records = batch.records
        if self.per_record:
            duration += self.per_record * len(records)
        outcome: BatchOutcome = SUCCESS_OUTCOME
        called = False
        rand = self.errors_rng.random
        if self.p_raise and rand() < self.p_raise:
            duration *= self.raise_at
            outcome = exception_outcome(batch, _INJECTED)
        elif self.p_timeout and rand() < self.p_timeout:
            duration = self.timeout
            outcome = timeout_outcome(batch)
        else:
            failed: list[str] | None = None
            downstream = self.downstream
            if downstream is not None:
                called = downstream.spec.concurrency is not None
                latency, errors = downstream.call(
                    now, len(records) if self.downstream_per_record else 1
                )
                duration += latency
                if errors:
                    if self.downstream_items:
                        failed = self._pick_failed(records, errors)
                    else:
                        outcome = exception_outcome(batch, _DOWNSTREAM)
            if self.p_item and outcome is SUCCESS_OUTCOME:
                p_item = self.p_item
                already = set(failed or ())
                failed = (failed or []) + [
                    r.message_id for r in records
                    if rand() < p_item and r.message_id not in already
                ]
            if failed is not None and outcome is SUCCESS_OUTCOME:
                response = (
                    {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}
                    if failed else _NO_FAILURES
                )
                outcome = interpret_response(
                    response, batch, report_batch_item_failures=self.report_failures
                )
        if duration > self.timeout:
            duration = self.timeout
            outcome = timeout_outcome(batch)
        return duration, outcome, called

    def _pick_failed(self, records: tuple[QueueRecord, ...], errors: int) -> list[str]:
        """The records a downstream's failed requests belong to: with one request per
        record, ``errors`` records drawn at random; with one request per invocation,
        every record of the batch."""
        if not self.downstream_per_record:
            return [r.message_id for r in records]
        chosen = self.errors_rng.sample(range(len(records)), errors)
        return [records[i].message_id for i in sorted(chosen)]

    # ------------------------------------------------------------------ statistics

    def _limit(self, now: float) -> int:
        limit = self.mapping.policy.limit(now)
        if self.maximum is not None and limit > self.maximum:
            limit = self.maximum
        return max(0, limit)

    def _close_bucket(self, now: float, counters: dict[str, int]) -> None:
        """Append the entry of the bucket ending at ``now`` (see :data:`SERIES_KEYS`)."""
        counts = self.engine.counts(self.queue)
        throttles = self.mapping.throttles
        oldest = round(counts.oldest_age, 3)
        self.max_oldest_age = max(self.max_oldest_age, oldest)
        entry: dict[str, Any] = {"t": round(self.bucket_start, 6)}
        entry.update(counters)
        entry.update({
            "limit": self._limit(now),
            "throttles": throttles - self.last_throttles,
            "dead_lettered": counts.dead_lettered - self.last_dead,
            "visible": counts.visible,
            "in_flight": counts.in_flight,
            "delayed": counts.delayed,
            "oldest_age": oldest,
        })
        self.series.append({key: entry[key] for key in SERIES_KEYS})
        self.last_throttles = throttles
        self.last_dead = counts.dead_lettered
        self.bucket_start = now

    def _summary(self) -> dict[str, Any]:
        series = self.series
        mapping = self.mapping
        counts = self.engine.counts(self.queue)
        duration = self.end
        downstream = self.downstream
        processed = sum(e["processed"] for e in series)
        return {
            "duration": duration,
            "total_invocations": mapping.invocations,
            "total_cold_starts": self.environments.cold_starts,
            "total_errors": sum(e["errors"] for e in series),
            "total_partial": sum(e["partial"] for e in series),
            "total_throttles": mapping.throttles,
            "total_abandoned": mapping.abandoned,
            "peak_concurrency": max((e["concurrency"] for e in series), default=0),
            "peak_environments": max((e["environments"] for e in series), default=0),
            "messages_sent": sum(e["sent"] for e in series),
            "messages_received": sum(e["received"] for e in series),
            "messages_processed": processed,
            "messages_dead_lettered": counts.dead_lettered,
            "messages_filtered": self.mapping.filtered_records,
            "messages_queued": counts.total,
            "throughput": round(processed / duration, 6) if duration > 0 else 0.0,
            "max_oldest_age": self.max_oldest_age,
            "downstream_requests": 0 if downstream is None else downstream.requests,
            "downstream_failures": 0 if downstream is None else downstream.failures,
        }
