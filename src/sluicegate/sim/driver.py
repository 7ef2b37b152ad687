"""The discrete-event driver: the core's mappings on a virtual clock, at heap speed.

One event loop for every source. It runs a :class:`~sluicegate.sim.world.World` (an App
plus a load; every scenario kind is translated into one, :func:`~sluicegate.sim.world.to_world`)
on one event heap, one virtual clock (``now``, seconds from 0) and seeded random streams.
The memory store's engines (:class:`~sluicegate.store.memory.MemoryQueues` for queues,
:class:`~sluicegate.store.memory_streams.MemoryStreams` for streams) read the same clock,
and one :class:`~sluicegate.core.pool.ConcurrencyPool` holds the account's concurrency
with every function registered, whatever source invokes it. Each mapping is the core's
state machine (:class:`~sluicegate.core.mapping.QueueMapping` for standard and FIFO
queues, :class:`~sluicegate.core.stream_mapping.StreamMapping` for streams), driven
through the core's mapping protocol as the runtime drives it: ask ``poll`` what to do,
perform the actions, report results back (``read_done``/``received``, ``finished``), come
back at ``next_wakeup``. A queue's single receive coming back or single invocation ending
is reported through the fused :meth:`~QueueMapping.received_poll` and
:meth:`~QueueMapping.finished_poll`, which answer as those three calls would, through the
same rules. How an invocation ended goes through the mapping's ``outcome_of`` (the core's
one result rule), a shard's read through ``read_done`` (the core's starting position and
retention gap rule), and the series' limit is the mapping's ``concurrency_limit``. No
mapping rule lives here; what is modelled here is what a real run gets from the world:
handler durations, cold starts, injected errors, poison records, a downstream under load,
producers.

Each mapping's state (its source, long polls, pending events and counters) is a lane
(:class:`_Lane`); each function's (durations, cold starts, execution environments, error
windows, downstream) is a :class:`_Function`, the one simulated function for every
source. Every event but a bucket boundary and a queue or topic send belongs to one lane.
A publish to a topic delivers one message to every subscribed queue at its instant, in
the order of the topic's subscribers, each delivery followed by that queue's mapping's
turn (what :meth:`Store.publish <sluicegate.store.base.Store.publish>` does, with the
group and deduplication ids of :func:`~sluicegate.store.base.publish_ids`). The mappings
share nothing but the pool (and a function's environments, when two mappings invoke one
function): a slot taken by one function is one the others cannot have, so a stream's
function with reserved concurrency takes from the pool what a queue's function could
have had.

How the actions are performed:

- ``Receive``: an immediate receive from the engine. Records come back at once (no SQS
  latency is modelled). An empty receive with ``wait > 0`` long-polls: the poller waits
  until a message becomes visible (a send, a visibility timeout or a delivery delay
  ending) or its wait runs out, then gets what is there (an empty list at the end of the
  wait). A message that becomes visible goes to a waiting poller drawn at random
  (:class:`~sluicegate.sim.models.LongPolls` says why).
- ``Invoke``: an execution environment (warm or cold), a duration, an outcome drawn at
  the start, and an end event; see :meth:`_Simulation._loop` and
  :meth:`_Simulation._model`.
- ``Delete``: deletes from the engine; a stale receipt handle (the message was received
  again after its visibility timeout) deletes nothing, as on SQS.
- ``Abandon``: counted by the mapping; the engine makes the messages visible again by
  itself.
- ``Fetch``: the shard's latest sequence number, then its records after the core's
  position (or from its starting position), at once (no GetRecords latency, no per-shard
  read throughput limit), reported with ``read_done``.
- ``StreamInvoke``: as ``Invoke``; a batch holding a poison record fails (see
  :class:`~sluicegate.sim.stream_scenario.PoisonSpec`).
- ``Checkpoint``: stored in the stream engine; ``SendToDestination``: counted.

A function invoked asynchronously has a lane of its own for its internal queue
(``async:FUNCTION`` in the queues' engine): a queue lane whose mapping is the inner queue
mapping of the core's :class:`~sluicegate.core.async_events.AsyncEventMapping`, which
the lane polls and tells of each end (never the fused calls: the core checks each event
before its attempt and settles it). Each send to it is an event accepted at that instant
(:class:`~sluicegate.sim.world.AcceptedEvent`, whose time the core reads as the event's
age). Its settle actions are performed as the runtime's ``AsyncIO`` performs them:

- ``Retry``: the event's visibility set to the retry's wait, as a visibility change;
- ``Conclude``: its deliveries counted (the invocation record to the on-success or
  on-failure destination, the event to the dead-letter queue; none made), then the
  event deleted.

An event put on a bus goes, like a topic's publish, to each lane its rules' targets
name, in order. A function's synchronous requests are events of the main heap
(``_REQUEST``): each takes a slot of the pool (or is throttled, counted, not retried)
and an execution environment, and ends with a ``_REPLY`` event that gives both back.

Pausing a queue mapping (``[[mapping.pauses]]``) cuts its outstanding long polls short
(they return empty, as the runtime's stop does), so nothing more is received while paused.
A stream's producers put records through the main heap (``_PUT``); queue and topic
producers have a heap of their own (see :attr:`_Simulation.arrivals`).

Events at the same instant run in the order they were scheduled; a bucket boundary runs
before any other event of its instant, so an event at exactly t=10 s belongs to the
bucket [10, 20).
"""

from __future__ import annotations

import bisect
import dataclasses
import gc
import heapq
import itertools
import operator
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from itertools import accumulate
from typing import Any, Final, Protocol, cast

from sluicegate.core.async_events import (
    CONDITION_EVENT_AGE_EXCEEDED,
    CONDITION_RETRIES_EXHAUSTED,
    CONDITION_ZERO_RESERVED,
    AsyncEventMapping,
    Conclude,
    Retry,
    async_queue,
)
from sluicegate.core.breaker import Breakers
from sluicegate.core.config import (
    MappingConfig,
    TopicConfig,
    effective_visibility_timeout,
)
from sluicegate.core.mapping import QueueMapping
from sluicegate.core.pool import ConcurrencyPool
from sluicegate.core.results import SUCCESS_OUTCOME, InvocationResult, with_report
from sluicegate.core.semaphore import SemaphoreTerm, SharedSemaphore
from sluicegate.core.stream_mapping import StreamMapping
from sluicegate.core.streams import (
    Checkpoint,
    Fetch,
    SendToDestination,
    StreamBatch,
    StreamInvoke,
    StreamMappingConfig,
    StreamRecord,
    shard_for_partition_key,
)
from sluicegate.core.types import Batch, BatchOutcome, Delete, Invoke, Receive
from sluicegate.errors import SluicegateError
from sluicegate.sim.models import (
    CONTROL_SEQ,
    WAIT_COMPACT_SLACK,
    Arrivals,
    Downstream,
    Environments,
    ErrorWindows,
    LongPolls,
    lognormal_block,
    pop_event,
    push_event,
    sampler,
    schedule_buckets,
    schedule_windows,
)
from sluicegate.sim.scenario import (
    DEFAULT_RAISE_AT,
    RECORD_OVERHEAD,
    LogNormal,
    Scenario,
    load_scenario,
)
from sluicegate.sim.stream_scenario import (
    STREAM_RECORD_OVERHEAD,
    PoisonSpec,
    StreamProducerSpec,
    StreamScenario,
    load_stream_scenario,
    partition_key,
)
from sluicegate.sim.topic_scenario import TopicScenario, load_topic_scenario
from sluicegate.sim.world import (
    AcceptedEvent,
    SimBus,
    SimFunction,
    SimMapping,
    SimQueue,
    SimRequests,
    SimStream,
    SimTopic,
    World,
    to_world,
)
from sluicegate.store.base import MAX_RECEIVE_WAIT, NewMessage, md5_hex
from sluicegate.store.memory import MemoryQueues
from sluicegate.store.memory_streams import MemoryStreams

__all__ = [
    "ACCOUNT_SERIES_KEYS",
    "ACCOUNT_SUMMARY_KEYS",
    "APP_SERIES_KEYS",
    "APP_SUMMARY_KEYS",
    "ASYNC_SERIES_KEYS",
    "ASYNC_SUMMARY_KEYS",
    "REQUEST_SERIES_KEYS",
    "REQUEST_SUMMARY_KEYS",
    "SERIES_KEYS",
    "STALL_WINDOW",
    "STREAM_SERIES_KEYS",
    "STREAM_SUMMARY_KEYS",
    "SUMMARY_KEYS",
    "Observer",
    "SimResult",
    "simulate",
]

INVOCATION_SERIES_KEYS: tuple[str, ...] = (
    "t",
    "invocations",
    "cold_starts",
    "concurrency",
    "environments",
    "limit",
    "throttles",
    "errors",
    "partial",
)
"""The keys every lane's series entry starts with, whatever its source (the loop builds
them in one place); :data:`SERIES_KEYS` and :data:`STREAM_SERIES_KEYS` go on from them."""

SERIES_KEYS: tuple[str, ...] = (
    *INVOCATION_SERIES_KEYS,
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
- ``limit``: the mapping's concurrency limit at the bucket's end (the smallest of its
  terms: the scaling policy's level, ``maximum_concurrency``, ...);
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



def _account_keys(keys: tuple[str, ...], drop: tuple[str, ...],
                  after: dict[str, str]) -> tuple[str, ...]:
    """``keys`` without ``drop``, each ``after[key]`` right after its ``key``."""
    out: list[str] = []
    for key in keys:
        if key not in drop:
            out.append(key)
        if key in after:
            out.append(after[key])
    return tuple(out)


ACCOUNT_SERIES_KEYS: tuple[str, ...] = _account_keys(
    SERIES_KEYS, ("limit",),
    {"concurrency": "unreserved_concurrency", "abandoned": "published"})
"""Keys of every entry of a topic run's account-wide series, in order: the keys of
:data:`SERIES_KEYS` but ``limit``, over every mapping, and:

- ``concurrency``: most invocations of all functions running at once (what AWS's
  account-level ConcurrentExecutions shows), not the sum of each function's peak;
- ``unreserved_concurrency``: most invocations of functions without reserved
  concurrency running at once (AWS's UnreservedConcurrentExecutions): what contends for
  the unreserved pool;
- ``environments``: most execution environments of all functions alive at once;
- ``published``: messages published to the topic; ``sent``: messages that reached a
  queue (each publish once per subscriber, plus the subscribers' own sends);
- ``visible``, ``in_flight``, ``delayed``: summed over the queues; ``oldest_age``: the
  oldest message of any queue.
"""

ACCOUNT_SUMMARY_KEYS: tuple[str, ...] = _account_keys(
    SUMMARY_KEYS, (),
    {"peak_concurrency": "peak_unreserved_concurrency", "peak_environments": "messages_published"})
"""Keys of a topic run's account-wide summary, in order: the keys of
:data:`SUMMARY_KEYS` over every mapping, with ``peak_unreserved_concurrency`` and
``messages_published`` (publishes to the topic, backlog included). Every message is
accounted for in every queue, so that ``messages_sent = messages_processed +
messages_queued + messages_dead_lettered`` here too."""

STREAM_SERIES_KEYS: tuple[str, ...] = (
    *INVOCATION_SERIES_KEYS,
    "sent",
    "received",
    "processed",
    "discarded",
    "expired",
    "on_failure",
    "iterator_age_ms",
    "checkpoint_lag",
    "max_shard_lag",
)
"""Keys of every series entry of a stream run, in order. Counters are per bucket, gauges
at its end:

- ``t``: the bucket's start, seconds;
- ``invocations``, ``cold_starts``, ``concurrency``, ``environments``, ``throttles``,
  ``errors``, ``partial``: as for queue runs;
- ``limit``: the mapping's concurrency limit (``shard_count x parallelization_factor``
  unless another term binds), the most batches it runs at once;
- ``sent``: records put (poison records included); ``received``: records fetched;
  ``processed``: records settled by a successful invocation (once each);
- ``discarded``: records given up (``maximum_retry_attempts`` or
  ``maximum_record_age``); ``expired``: records lost to the stream's retention;
  ``on_failure``: on-failure records sent (one per discarded batch, with a destination);
- ``iterator_age_ms``: the largest IteratorAge of the bucket's invocations (milliseconds
  from the last record's arrival to the invocation, AWS's metric), ``None`` without any;
- ``checkpoint_lag``: records after the checkpoint, summed over shards;
  ``max_shard_lag``: the same for the shard furthest behind.
"""

STREAM_SUMMARY_KEYS: tuple[str, ...] = (
    "duration",
    "total_invocations",
    "total_cold_starts",
    "total_errors",
    "total_partial",
    "total_throttles",
    "peak_concurrency",
    "peak_environments",
    "records_sent",
    "records_received",
    "records_processed",
    "records_discarded",
    "records_expired",
    "records_unsettled",
    "on_failure_records",
    "records_behind",
    "max_shard_lag",
    "stalled_shards",
    "throughput",
    "max_iterator_age_ms",
    "downstream_requests",
    "downstream_failures",
)
"""Keys of a stream run's summary, in order. ``records_unsettled``: put and not yet
processed, discarded or expired, so that ``records_sent = records_processed +
records_discarded + records_expired + records_unsettled``; ``records_behind`` and
``max_shard_lag``: the end-of-run ``checkpoint_lag`` and ``max_shard_lag``;
``stalled_shards``: shards with records behind whose checkpoint did not move during the
last :data:`STALL_WINDOW` seconds of the run; ``throughput``: records processed per
simulated second; the others total or peak their series."""

STALL_WINDOW = 60.0
"""Seconds without a checkpoint move, while records wait, after which a shard counts as
stalled in the summary (sluicegate's choice: a shard that flows checkpoints about every
second, and a minute rules out a long batching window or a slow batch)."""

APP_SERIES_KEYS: tuple[str, ...] = (
    "t",
    "invocations",
    "cold_starts",
    "concurrency",
    "unreserved_concurrency",
    "environments",
    "throttles",
    "errors",
    "partial",
)
"""Keys of every entry of the account-wide series of a run whose mappings read sources of
several kinds (a stream and others): what every source has in common, over every mapping
(``concurrency``, ``unreserved_concurrency`` and ``environments`` as in
:data:`ACCOUNT_SERIES_KEYS`); each mapping's own series has its kind's keys."""

APP_SUMMARY_KEYS: tuple[str, ...] = (
    "duration",
    "total_invocations",
    "total_cold_starts",
    "total_errors",
    "total_partial",
    "total_throttles",
    "peak_concurrency",
    "peak_unreserved_concurrency",
    "peak_environments",
)
"""Keys of the account-wide summary of a run over sources of several kinds: the totals
and peaks of :data:`APP_SERIES_KEYS`."""

ASYNC_SERIES_KEYS: tuple[str, ...] = (
    *INVOCATION_SERIES_KEYS,
    "sent",
    "received",
    "succeeded",
    "retried",
    "dropped",
    "dropped_event_age_exceeded",
    "dropped_retries_exhausted",
    "dropped_zero_reserved_concurrency",
    "visible",
    "in_flight",
    "delayed",
    "oldest_age",
)
"""Keys of every series entry of an asynchronous lane (a function's internal queue of
asynchronous invocations, run by the core's
:class:`~sluicegate.core.async_events.AsyncEventMapping`), in order. Counters are per
bucket, gauges at its end:

- ``t``, ``cold_starts``, ``concurrency``, ``environments``, ``limit``, ``throttles``,
  ``errors``, ``partial``: as for queue runs (``limit``: the most events the function
  runs at once, its reservation or pool share, and below it the pollers that follow the
  traffic);
- ``invocations``: attempts run (an event concluded at its check before an attempt,
  for its age or a reservation of 0, is not one);
- ``sent``: events accepted into the internal queue (AWS's AsyncEventsReceived);
- ``received``: events read for their first attempt;
- ``succeeded``: events whose attempt succeeded; ``retried``: attempts that failed with
  retries left (the event runs again after its wait, about 1 then 2 minutes);
- ``dropped``: events discarded to the failure path (AWS's AsyncEventsDropped), and of
  them by condition: ``dropped_event_age_exceeded`` (older than ``maximum_event_age`` at
  an attempt), ``dropped_retries_exhausted``, ``dropped_zero_reserved_concurrency``;
- ``visible``, ``in_flight``, ``delayed``: the internal queue's counts (an event waiting
  for its retry is in flight, hidden); ``oldest_age``: seconds since the oldest event
  was accepted.
"""

ASYNC_SUMMARY_KEYS: tuple[str, ...] = (
    "duration",
    "total_invocations",
    "total_cold_starts",
    "total_errors",
    "total_partial",
    "total_throttles",
    "peak_concurrency",
    "peak_environments",
    "events_sent",
    "events_received",
    "events_succeeded",
    "events_retried",
    "events_dropped",
    "events_dropped_event_age_exceeded",
    "events_dropped_retries_exhausted",
    "events_dropped_zero_reserved_concurrency",
    "events_queued",
    "on_success_records",
    "on_failure_records",
    "dead_lettered",
    "throughput",
    "max_oldest_age",
    "downstream_requests",
    "downstream_failures",
)
"""Keys of an asynchronous lane's summary, in order. ``events_queued``: still in the
internal queue at the end (visible, running or waiting for a retry), so that every
accepted event is accounted for: ``events_sent = events_succeeded + events_dropped +
events_queued``. ``on_success_records``, ``on_failure_records``: invocation records for
the function's destinations; ``dead_lettered``: dropped events written to its
dead-letter queue (the simulator counts these deliveries, it does not make them);
``throughput``: events succeeded per simulated second; the others total or peak the
series."""

REQUEST_SERIES_KEYS: tuple[str, ...] = (
    "t",
    "requests",
    "invocations",
    "cold_starts",
    "concurrency",
    "environments",
    "throttles",
    "errors",
)
"""Keys of every series entry of a function's synchronous requests (``RequestResponse``),
in order: ``requests`` arrived; ``invocations``, those that got a slot of the function's
concurrency (the others are ``throttles``: refused at once, not retried, AWS's 429);
``cold_starts``, ``concurrency``, ``environments`` and ``errors`` as for queue runs,
for these invocations."""

REQUEST_SUMMARY_KEYS: tuple[str, ...] = (
    "duration",
    "total_requests",
    "total_invocations",
    "total_cold_starts",
    "total_errors",
    "total_throttles",
    "peak_concurrency",
    "peak_environments",
    "throttle_rate",
)
"""Keys of a function's request summary, in order: totals and peaks of its series, and
``throttle_rate``, the share of requests throttled."""

SAME_INSTANT_LIMIT: Final = 10_000
"""Most consecutive mapping wake-ups at one instant (per mapping) before the driver
declares the core stuck (a wake-up that never makes progress would otherwise loop
forever)."""

_END: Final = 0
_PRODUCE: Final = 1
_TIMEOUT: Final = 2
_VISIBLE: Final = 3
_WAKE: Final = 4
_BUCKET: Final = 5
_ERRORS: Final = 6
_PAUSE: Final = 7
_RESUME: Final = 8
_PUT: Final = 9
_POISON: Final = 10
_REQUEST: Final = 11
_REPLY: Final = 12
_DELIVER: Final = -1
"""A delivery of a topic's publish to a further subscriber (never on the heap): below
``_PRODUCE``, so that one comparison finds both after ``_END``."""


_COMPILED: Final = __file__.endswith((".so", ".pyd"))
"""Whether this module runs compiled (setup.py): the event loop then pops and pushes its
busiest events with the models' native :func:`~sluicegate.sim.models.pop_event` and
:func:`~sluicegate.sim.models.push_event` instead of :mod:`heapq` (the same order)."""

_INF: Final = float("inf")
_append: Final = deque.append
"""``deque.append``, called as a function: a native read in the compiled build, where
``a_deque.append(x)`` looks the method up per call."""

_UNKNOWN: Final = -1.0
"""``wake`` when the mapping's next wake-up must be asked (:meth:`QueueMapping.next_wakeup`):
reports came after the fused call that returned one. Compared by value: no wake-up is
before t=0 (and a compiled build does not keep float identities)."""
_NO_FAILURES: dict[str, list[Any]] = {"batchItemFailures": []}
_INJECTED: Final = "InjectedError: injected by the scenario's error window"
_DOWNSTREAM: Final = "DownstreamError: the downstream failed under load"
_POISONED: Final = "PoisonRecord: a poison record of the scenario"
_DATA: Final = b""


class Observer(Protocol):
    """What a test (or a tool) may watch in a run; both methods are called synchronously
    at the simulated instant. Keep nothing per record across a long run."""

    def invoked(self, now: float, batch: Any) -> None:
        """``batch`` (a queue's or a stream's) starts being invoked at ``now``."""

    def finished(self, now: float, batch: Any, outcome: BatchOutcome) -> None:
        """The invocation of ``batch`` ended at ``now`` with ``outcome`` (before the core
        is told)."""


@dataclass(frozen=True, slots=True)
class SimResult:
    """What a run produced.

    Attributes:
        scenario: the normalized scenario (its ``to_dict()``).
        summary: totals and peaks (keys: :data:`SUMMARY_KEYS`; a topic run's are
            account-wide, :data:`ACCOUNT_SUMMARY_KEYS`).
        series: one dict per bucket (keys: :data:`SERIES_KEYS`; a topic run's are
            account-wide, :data:`ACCOUNT_SERIES_KEYS`).
        mappings: a topic run's mappings, one per subscriber in the topic's order:
            ``{"name", "queue", "function", "summary", "series"}``, with the summary and
            series of a queue run (:data:`SUMMARY_KEYS`, :data:`SERIES_KEYS`); ``None``
            for a queue run. A function's internal queue of asynchronous invocations is
            one more (``queue`` ``async:FUNCTION``, :data:`ASYNC_SUMMARY_KEYS`,
            :data:`ASYNC_SERIES_KEYS`).
        requests: the functions given synchronous requests, ``{"name", "function",
            "summary", "series"}`` each (:data:`REQUEST_SUMMARY_KEYS`,
            :data:`REQUEST_SERIES_KEYS`); ``None`` without any.
    """

    scenario: dict[str, Any]
    summary: dict[str, Any]
    series: list[dict[str, Any]]
    mappings: list[dict[str, Any]] | None = None
    requests: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        """``{"scenario": ..., "summary": ..., "series": [...]}``, and ``"mappings"`` for
        a topic run (``"requests"`` with synchronous requests); JSON-serializable; the
        same scenario and seed give the same ``json.dumps`` byte for byte."""
        out = {"scenario": self.scenario, "summary": self.summary, "series": self.series}
        if self.mappings is not None:
            out["mappings"] = self.mappings
        if self.requests is not None:
            out["requests"] = self.requests
        return out


class _SimulatedError(Exception):
    """What a simulated handler raises (its text is the result's ``error_text``)."""


class _Ended:
    """How a simulated invocation ended, as the core's one result rule reads it
    (:class:`~sluicegate.core.results.InvocationResult`): a response, an exception (with
    its text) or a timeout. A handler that returned nothing needs none: its outcome is
    the core's shared SUCCESS."""

    __slots__ = ("error", "error_text", "invalid_json", "response", "timed_out")

    def __init__(self, *, response: Any = None, error_text: str = "",
                 timed_out: bool = False) -> None:
        self.response = response
        self.error: BaseException | None = _RAISED if error_text else None
        self.error_text = error_text
        self.invalid_json = False
        self.timed_out = timed_out


_RAISED: Final = _SimulatedError()
_TIMED_OUT: Final = _Ended(timed_out=True)


class _Groups:
    """Which message group each message of a FIFO queue (or topic) goes to: uniformly
    over ``count`` groups, except a ``hot_share`` of messages that all go to group
    ``g0``; and a deduplication id of its own per message (``prefix`` and a count), so
    that no two messages of one queue share one."""

    __slots__ = ("count", "hot_share", "prefix", "random", "sent")

    def __init__(self, count: int, hot_share: float, rng: random.Random,
                 prefix: str = "") -> None:
        self.count = count
        self.hot_share = hot_share
        self.random = rng.random
        self.sent = 0
        self.prefix = prefix

    def draw(self) -> str:
        self.sent += 1
        if self.hot_share and self.random() < self.hot_share:
            return "g0"
        return f"g{int(self.random() * self.count)}"

    def deduplication_id(self) -> str:
        """The deduplication id of the message whose group was drawn last."""
        return f"{self.prefix}{self.sent:x}"


class _Source:
    """Where a producer's messages go and what they carry: a topic (every lane, in the
    topic's order) or one lane's queue.

    Attributes:
        first, rest: the first lane a send delivers to, and the others (last first: the
            order the driver takes them in).
        plain: the messages are all alike (no bodies to draw, no FIFO group): lanes
            send their shared message.
        groups: draws each message's FIFO group and deduplication id (``None`` unless
            FIFO).
        pick: picks each message's body index (``None`` without bodies).
        indices: ``range(len(bodies))``, what ``pick`` picks from.
        topic: the topic's configuration, for a topic (``None`` for a queue).
        targets: every lane a send delivers to, in order.
        backlog: messages sent (published) at t=0.
        bus: an event bus: a send is an event put on it, delivered to every lane of
            ``targets`` (the targets of its rules).
        puts: events put on the bus so far.
    """

    __slots__ = ("backlog", "bus", "first", "groups", "indices", "pick", "plain", "puts",
                 "rest", "targets", "topic")

    def __init__(self, targets: list[_Lane], groups: _Groups | None,
                 pick: Callable[[range], int] | None, bodies: tuple[str, ...],
                 topic: TopicConfig | None, backlog: int = 0) -> None:
        self.targets = targets
        self.backlog = backlog
        self.first = targets[0]
        self.rest = targets[:0:-1]
        self.groups = groups
        self.pick = pick
        self.indices = range(len(bodies))
        self.plain = groups is None and not bodies
        self.topic = topic
        self.bus = False
        self.puts = 0


def simulate(
    scenario: World | Scenario | TopicScenario | StreamScenario | Mapping[str, Any],
    *,
    observer: Observer | None = None,
) -> SimResult:
    """Run ``scenario`` in virtual time.

    Parameters:
        scenario: a :class:`~sluicegate.sim.world.World` (an App plus a load), or a scenario
            of any kind (:class:`Scenario`, :class:`~sluicegate.sim.topic_scenario.TopicScenario`,
            :class:`~sluicegate.sim.stream_scenario.StreamScenario`), or a plain dict
            that :func:`load_scenario` (or, with a ``topic`` key,
            :func:`~sluicegate.sim.topic_scenario.load_topic_scenario`; with a ``stream``
            key, :func:`~sluicegate.sim.stream_scenario.load_stream_scenario`) accepts.
        observer: told of every invocation's start and end (for tests).

    Returns:
        The :class:`SimResult`: a pure function of the scenario (seed included).

    Raises:
        ScenarioError: a dict that is not a valid scenario.
    """
    if not isinstance(scenario, (World, Scenario, TopicScenario, StreamScenario)):
        if scenario.get("stream") is not None:
            scenario = load_stream_scenario(scenario)
        elif scenario.get("topic") is not None:
            scenario = load_topic_scenario(scenario)
        else:
            scenario = load_scenario(scenario)
    world = to_world(scenario)
    # A run allocates several objects per event and creates no reference cycles
    # (reference counting frees everything as it goes), so the cyclic garbage collector
    # would only re-scan live objects: it is paused for the run, then restored.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _Simulation(world, observer).run()
    finally:
        if collecting:
            gc.enable()


class _Function:
    """One function as the simulator models it, for every source that invokes it: its
    durations, cold starts and execution environments, its injected errors and its
    downstream (the one simulated function; see :meth:`_Simulation._model`).

    The attributes the event loop reads per invocation are kept flat (``warm``,
    ``idle_timeout``, ``lognormal``, ``block``, ``drawn``, ``modelled``, ``timeout``).
    """

    __slots__ = (
        "block",
        "cold_start",
        "downstream",
        "downstream_items",
        "downstream_per_record",
        "draw",
        "drawn",
        "durations",
        "environments",
        "error_windows",
        "errors_rng",
        "idle_timeout",
        "lognormal",
        "modelled",
        "mu",
        "name",
        "p_item",
        "p_raise",
        "p_timeout",
        "per_record",
        "raise_at",
        "release",
        "scheduled",
        "sigma",
        "timeout",
        "unreserved",
        "warm",
        "windows",
    )

    def __init__(self, spec: SimFunction, stream: Callable[[str], random.Random]) -> None:
        config = spec.config
        self.name = config.name
        self.timeout = config.timeout
        self.unreserved = config.reserved_concurrency is None
        """The function has no reserved concurrency: it draws from the unreserved pool."""
        durations = stream("durations")
        self.draw = sampler(spec.duration, durations)
        dist = spec.duration
        self.lognormal: tuple[float, float, random.Random] | None = (
            (dist.mu, dist.sigma, durations)
            if isinstance(dist, LogNormal) and dist.p99 != dist.median else None
        )
        """``(mu, sigma, rng)`` when durations are lognormal: the event loop then takes
        them from blocks (:func:`~sluicegate.sim.models.lognormal_block`): the values
        :func:`sampler` draws, in its order, without a call per draw."""
        self.mu, self.sigma, self.durations = self.lognormal or (0.0, 0.0, durations)
        self.block: list[float] = []
        """The current block of lognormal durations; ``drawn`` of them were taken."""
        self.drawn = 0
        self.per_record = spec.duration_per_record
        self.cold_start = sampler(spec.cold_start, stream("cold-starts"))
        self.environments = Environments(spec.idle_timeout)
        self.warm = self.environments.warm
        self.idle_timeout = self.environments.idle_timeout
        self.release = self.environments.release
        self.errors_rng = stream("errors")
        self.windows = spec.errors
        self.error_windows = ErrorWindows(spec.errors)
        self.scheduled = False
        """Whether its error windows are on the heap (once, however many mappings)."""
        self.p_raise = 0.0
        self.p_timeout = 0.0
        self.p_item = 0.0
        self.raise_at = 1.0
        d = spec.downstream
        self.downstream = None if d is None else Downstream(d, stream("downstream"))
        self.downstream_per_record = d is not None and d.per == "record"
        self.downstream_items = d is not None and d.error_kind == "batch_item_failure"
        self.modelled = False
        """Whether an invocation needs more than a duration draw: records add time,
        errors are injected, or a downstream is called (see :meth:`_Simulation._model`)."""
        self.remodel()

    def duration(self) -> float:
        """The next invocation's duration (the event loop inlines this for its hot path):
        from the current block of lognormal draws, or the sampler."""
        if self.lognormal is None:
            return self.draw()
        block = self.block
        drawn = self.drawn
        if drawn == len(block):
            block = self.block = lognormal_block(self.mu, self.sigma, self.durations)
            drawn = 0
        self.drawn = drawn + 1
        return block[drawn]

    def remodel(self) -> None:
        """Recompute :attr:`modelled` after the error probabilities changed."""
        self.modelled = bool(self.per_record or self.p_raise or self.p_timeout
                             or self.p_item or self.downstream is not None)

    def toggle(self, index: int, on: bool) -> None:
        """An error window opens or closes: recompute the error probabilities (see
        :class:`~sluicegate.sim.models.ErrorWindows`)."""
        errors = self.error_windows
        errors.toggle(index, on)
        self.p_raise, self.p_timeout = errors.p_raise, errors.p_timeout
        self.p_item, self.raise_at = errors.p_item, errors.raise_at
        self.remodel()


class _Keys:
    """Draws a stream producer's partition keys and routes them to shards (cached per
    key)."""

    __slots__ = ("_cum", "_hot", "_n", "_random", "_shards", "_total", "kind", "shard_count")

    def __init__(self, spec: StreamProducerSpec, shard_count: int, rng: random.Random) -> None:
        self.kind = spec.key_distribution
        self._n = spec.partition_keys
        self._random = rng.random
        self._hot = spec.hot_key_share
        self.shard_count = shard_count
        self._cum: list[float] = []
        self._total = 0.0
        if self.kind == "zipf":
            s = spec.zipf_exponent
            self._cum = list(accumulate((i + 1) ** -s for i in range(self._n)))
            self._total = self._cum[-1]
        self._shards: dict[int, tuple[str, int]] = {}

    def draw(self) -> tuple[str, int]:
        """One record's ``(partition key, shard)``."""
        rand = self._random
        if self.kind == "zipf":
            i = bisect.bisect_right(self._cum, rand() * self._total)
            if i >= self._n:
                i = self._n - 1
        elif self.kind == "hot" and rand() < self._hot:
            i = 0
        else:
            i = int(rand() * self._n)
        found = self._shards.get(i)
        if found is None:
            key = partition_key(i)
            found = self._shards[i] = (key, shard_for_partition_key(key, self.shard_count))
        return found


class _Lane:
    """One mapping and everything it alone touches: its source (a queue in the memory
    queues' engine, or a stream in the memory streams' engine), its core mapping, its
    pending events and its counters; and the model of the function it invokes
    (:class:`_Function`, shared with any other mapping invoking the same function).

    A queue lane (``stream`` false) has ``mapping`` (a
    :class:`~sluicegate.core.mapping.QueueMapping`), long polls and the queue's sends; a
    stream lane has ``stream_mapping`` (a
    :class:`~sluicegate.core.stream_mapping.StreamMapping`), its producers' partition
    keys and its poison records. Each reads only its own kind's attributes. The
    function is registered in the pool before the mapping is built, so the mapping's
    scaling policy sees its reserved concurrency.
    """

    __slots__ = (
        "b_errors",
        "b_live",
        "b_on_failure",
        "b_partial",
        "b_processed",
        "b_received",
        "b_running",
        "b_sent",
        "bodies",
        "checkpoint_name",
        "checkpoints",
        "dead_letters",
        "delay",
        "events",
        "fifo",
        "fn",
        "function",
        "gates",
        "groups",
        "kind_key",
        "lags",
        "last_abandoned",
        "last_cold",
        "last_dead",
        "last_discarded",
        "last_expired",
        "last_invocations",
        "last_processed",
        "last_received",
        "last_throttles",
        "mapping",
        "marks",
        "max_iterator_age",
        "max_oldest_age",
        "moved",
        "name",
        "new_message",
        "on_failure",
        "on_success",
        "one_message",
        "outcome_of",
        "pauses",
        "pick",
        "poison",
        "producers",
        "queue",
        "received",
        "record_size",
        "running",
        "sent",
        "series",
        "shard_count",
        "shared",
        "size",
        "source_name",
        "spec",
        "stream",
        "stream_mapping",
        "stream_spec",
        "timeout_at",
        "visible_at",
        "waiters",
        "waiting",
        "wake_at",
    )

    def __init__(self, spec: SimMapping, world: World, fn: _Function,
                 queues: MemoryQueues, streams: MemoryStreams, pool: ConcurrencyPool,
                 stream: Callable[[str], random.Random]) -> None:
        self.spec = spec
        self.name = spec.name
        self.fn = fn
        self.function = fn.name
        self.pauses = spec.pauses
        self.wake_at = _INF
        """When the mapping's pending wake-up event fires (``inf``: none)."""
        self.poison: dict[int, str] = {}
        """Sequence number of each poison record put -> its kind (streams)."""
        self.waiting: list[list[Any]] = []
        """The waiting long polls (truthy while any waits; queues)."""
        self.gates: list[SemaphoreTerm] | None = None
        """The mapping's terms of the semaphores it names (one slot of each per
        invocation); ``None`` when it names none."""
        self.events: AsyncEventMapping | None = None
        """An asynchronous lane's core (``mapping`` is then its inner queue mapping):
        what the loop polls and reports ends to; ``None`` for a mapping of the App."""
        config = spec.config
        if isinstance(config, StreamMappingConfig):
            self._stream_source(config, world.stream(config.stream), pool, streams)
        else:
            self._queue_source(config, world.queue(config.queue), pool, queues, stream)
        # --- counters: gauges now, the current bucket's (b_*), totals when it began
        self.running = 0
        self.b_running = 0
        self.b_live = 0
        self.b_errors = 0
        self.b_partial = 0
        self.b_sent = 0
        self.b_processed = 0
        self.b_received = 0
        self.b_on_failure = 0
        self.last_invocations = 0
        self.last_cold = 0
        self.last_abandoned = 0
        self.last_received = 0
        self.last_throttles = 0
        self.last_dead = 0
        self.last_processed = 0
        self.last_discarded = 0
        self.last_expired = 0
        self.max_oldest_age = 0.0
        self.max_iterator_age: float | None = None
        self.sent = 0
        self.received = 0
        self.on_failure = 0
        self.on_success = 0
        self.dead_letters = 0
        self.marks: dict[str, int] = {}
        """An asynchronous lane's counters when its last bucket closed."""
        self.series: list[dict[str, Any]] = []

    def _queue_source(self, mconfig: MappingConfig, spec: SimQueue, pool: ConcurrencyPool,
                      engine: MemoryQueues, stream: Callable[[str], random.Random]) -> None:
        self.stream = False
        self.kind_key = "queue"
        qconfig = spec.config
        if spec.dead_letter_queue is not None:
            engine.ensure_queue(spec.dead_letter_queue)
        engine.ensure_queue(qconfig)
        self.queue = self.source_name = qconfig.name
        self.delay = float(qconfig.delay_seconds)
        messages = spec.messages
        self.new_message = NewMessage("", md5_hex(""), {}, qconfig.delay_seconds,
                                      "sluicegate-sim")
        self.one_message = [self.new_message]
        self.fifo = qconfig.fifo
        """A FIFO queue: every message gets a group and its own deduplication id (see
        :class:`_Groups`) and goes through the engine's FIFO send."""
        self.bodies = [NewMessage(b, md5_hex(b), {}, qconfig.delay_seconds, "sluicegate-sim")
                       for b in messages.bodies]
        """Messages of each body of the queue's (or topic's) ``bodies``."""
        # a send with nothing to delay and no message of its own (FIFO groups, drawn
        # bodies) hands the one shared message to a waiting poller: the fast path
        self.shared = not self.delay and not (self.fifo or self.bodies)
        self.size = messages.size + RECORD_OVERHEAD
        self.waiters = LongPolls(stream(self.spec.seeds + "polls"))
        """Long polls waiting for messages."""
        self.waiting = self.waiters.pool
        self.timeout_at = _INF
        """When the pending long-poll expiry event fires (``inf``: none)."""
        self.visible_at = _INF
        """When the pending visibility event fires (``inf``: none). Whenever a message is
        hidden (received, or sent with a delay) an event is made pending at or before the
        time it becomes visible; one that fires with nobody waiting is dropped, and the
        next waiting poller schedules the next (:meth:`_Simulation._watch`)."""
        criteria = mconfig.filter_criteria
        fn = self.fn
        events = self.spec.events
        if events is not None:
            # a function's internal queue: the core's async mapping around its queue
            # mapping; every event is its own message (its accepted time), so no send
            # hands out a shared one
            self.events = AsyncEventMapping(
                events, reserved_concurrency=pool.reserved_concurrency(fn.name),
                function_arn=f"{_FUNCTION_ARN}{fn.name}",
                visibility_timeout=float(qconfig.visibility_timeout), pool=pool, now=0.0,
                accepted_at=_accepted_at, event_of=_event_of)
            self.mapping = self.events.inner
            self.shared = False
            self.outcome_of: Callable[[InvocationResult, Any], BatchOutcome] = (
                self.events.outcome_of)
        else:
            self.mapping = QueueMapping(
                mconfig,
                visibility_timeout=effective_visibility_timeout(
                    qconfig.visibility_timeout, mconfig.maximum_batching_window, fn.timeout
                ),
                pool=pool,
                now=0.0,
                record_filter=None if not criteria else (
                    lambda r: criteria.matches_payload(r.payload.body)),
            )
            self.outcome_of = self.mapping.outcome_of
        """The core's one rule from how an invocation ended to its outcome."""
        # its own sends: their groups and bodies (the driver's _Source of them refers to
        # the lane, not the other way round: no reference cycle)
        seeds = spec.seeds
        self.groups = (_Groups(messages.groups, messages.hot_group_share,
                               stream(seeds + "groups"), spec.id_prefix)
                       if self.fifo else None)
        self.pick = stream(seeds + "bodies").choice if messages.bodies else None

    def _stream_source(self, mconfig: StreamMappingConfig, spec: SimStream,
                       pool: ConcurrencyPool, engine: MemoryStreams) -> None:
        self.stream = True
        self.kind_key = "stream"
        sconfig = spec.config
        self.stream_spec = spec
        self.source_name = sconfig.name
        engine.ensure_stream(sconfig)
        self.shard_count = sconfig.shard_count
        self.record_size = (spec.record_size + 2) // 3 * 4 + STREAM_RECORD_OVERHEAD
        self.checkpoint_name = mconfig.name
        self.stream_mapping = StreamMapping(mconfig, sconfig, pool=pool, now=0.0)
        self.outcome_of = self.stream_mapping.outcome_of
        self.producers: list[tuple[Arrivals, _Keys]] = []
        self.checkpoints: list[int | None] = [None] * self.shard_count
        self.moved = [0.0] * self.shard_count
        """When each shard's checkpoint last moved (bucket granularity)."""
        self.lags = [0] * self.shard_count


_FUNCTION_ARN: Final = "arn:aws:lambda:us-east-1:123456789012:function:"
"""The simulated functions' ARNs, quoted in invocation records (which the simulator
counts, not keeps)."""


def _accepted_at(record: Any) -> float:
    """When the event of an asynchronous lane's record was accepted (:class:`AcceptedEvent`)."""
    accepted: float = record.payload.accepted
    return accepted


def _event_of(record: Any) -> Any:
    """The event of an asynchronous lane's record: the simulator draws no contents."""
    return {}


class _Requests:
    """The synchronous requests (``RequestResponse``) of one function: its producers,
    gauges and counters. Each request takes a slot of the function's concurrency in the
    account pool for its run (an execution environment, a duration and an outcome drawn
    as for any invocation of the function) or is throttled: counted, never retried."""

    __slots__ = ("b_errors", "b_live", "b_running", "cold_starts", "fn", "function",
                 "invocations", "last_cold", "last_invocations", "last_requests",
                 "last_throttles", "producers", "requests", "running", "series", "spec",
                 "throttles")

    def __init__(self, spec: SimRequests, fn: _Function) -> None:
        self.spec = spec
        self.fn = fn
        self.function = fn.name
        self.producers: list[Arrivals] = []
        self.requests = 0
        self.invocations = 0
        self.throttles = 0
        self.cold_starts = 0
        self.running = 0
        self.b_running = 0
        self.b_live = 0
        self.b_errors = 0
        self.last_requests = 0
        self.last_invocations = 0
        self.last_cold = 0
        self.last_throttles = 0
        self.series: list[dict[str, Any]] = []


class _WakeLanes:
    """A shared breaker's ``on_change``: wake every lane it limits at the current time.

    A callable object rather than a closure (a compiled closure refers to itself). It
    still makes a cycle (lane, limit, breaker, this, lane), which the collector frees
    once the run is over: the simulator pauses it only while running."""

    __slots__ = ("lanes", "sim")

    def __init__(self, sim: _Simulation, lanes: list[_Lane]) -> None:
        self.sim = sim
        self.lanes = lanes

    def __call__(self, old: str, new: str, reason: str, by: str) -> None:
        sim = self.sim
        now = sim._now[0]
        for lane in self.lanes:
            if now < lane.wake_at:
                lane.wake_at = now
                heapq.heappush(sim.heap, (now, sim.next_seq(), _WAKE, lane))


def _prefixed(stream: Callable[[str], random.Random], prefix: str,
              purpose: str) -> random.Random:
    return stream(prefix + purpose)


class _Simulation:
    """One run: build, :meth:`run`, discard.

    The event loop (:meth:`_loop`) is one function with the hot state in local
    variables and in the lanes (attributes of a compiled class are as cheap as locals
    there): at hundreds of thousands of invocations per second, lookups and calls are
    the cost. Rare events (bucket boundaries, error windows, pauses) call methods.
    """

    def __init__(self, world: World, observer: Observer | None = None) -> None:
        self.world = world
        self.observer = observer
        self._now = [0.0]
        """The virtual clock: ``[now]``, a list so that the engines read it through a C
        function (``partial(getitem, ...)``) rather than a method call."""
        self.end = world.duration
        seed = world.seed

        def stream(purpose: str) -> random.Random:
            # A string seed is hashed with SHA-512: the same on every platform and
            # independent of PYTHONHASHSEED.
            return random.Random(f"sluicegate-sim:{seed}:{purpose}")

        self.stream = stream
        # --- events: (time, sequence, kind, ...); the sequence makes the order total
        self.heap: list[tuple[Any, ...]] = []
        self.next_seq = itertools.count(1).__next__

        # --- the stores and the pool, shared by every mapping
        clock = cast(Callable[[], float], partial(operator.getitem, self._now, 0))
        # ids: unique is enough; hex() of a count is the cheapest
        self.engine = MemoryQueues(clock, counted_ids=True, clock_cell=self._now)
        self.streams = MemoryStreams(clock)
        self.pool = ConcurrencyPool(world.account)

        # --- one function model per function, one lane per mapping
        functions: dict[str, _Function] = {}
        for f in world.functions:
            self.pool.register(f.config)
            functions[f.config.name] = _Function(f, partial(_prefixed, stream, f.seeds))
        self.lanes: list[_Lane] = []
        by_source: dict[str, _Lane] = {}
        for m in world.mappings:
            lane = _Lane(m, world, functions[m.config.function], self.engine,
                         self.streams, self.pool, stream)
            if lane.source_name in by_source:
                raise ValueError(f"{lane.source_name!r} is read by more than one mapping")
            by_source[lane.source_name] = lane
            self.lanes.append(lane)
        # --- circuit breakers: a term of the limit of each mapping that has one (a
        # shared one is one object in every limit naming it)
        self.breakers = Breakers(world.breakers)
        sharing: dict[str, list[_Lane]] = {}
        for lane in self.lanes:
            mconfig = lane.spec.config
            breaker = self.breakers.for_mapping(mconfig.name, mconfig.breaker, 0.0)
            if breaker is not None:
                core = lane.stream_mapping if lane.stream else lane.mapping
                core.concurrency_limit.add(breaker)
                sharing.setdefault(breaker.label, []).append(lane)
        for label, sharers in sharing.items():
            if len(sharers) > 1:
                # one lane's call changes the state for all: the others poll at once
                self.breakers[label].on_change(_WakeLanes(self, sharers))
        # --- semaphores: one object per semaphore, a term of each naming mapping's limit
        self.semaphores: dict[str, SharedSemaphore] = {}
        self.holders: dict[str, list[_Lane]] = {}
        """Each semaphore's mappings, in the order of its terms (``term.index``)."""
        for lane in self.lanes:
            self._gate(lane)
        self.requests = [_Requests(r, functions[r.function]) for r in world.requests]
        """The functions given synchronous requests."""
        asynchronous = bool(world.requests or world.buses) or any(
            lane.events is not None for lane in self.lanes)
        self.topic: SimTopic | None = world.topics[0] if world.topics else None
        self.account = self.topic is not None or len(self.lanes) > 1 or asynchronous
        """The results are account-wide, with one entry per mapping (a topic, or several
        mappings, or a function's internal queue) and per function given requests."""
        self.app = self.account and (asynchronous or any(lane.stream for lane in self.lanes))
        """Account-wide results over sources of several kinds (:data:`APP_SERIES_KEYS`):
        a stream and others, a function's internal queue, requests, event buses."""
        self.multi = len(self.lanes) > 1 or bool(self.requests)
        """Each lane keeps gauges of its own (else the account's are its lane's)."""

        # --- where the producers send: a topic (to every subscribed lane), a queue's lane
        self.sources: dict[str, _Source] = {}
        for t in world.topics:
            targets = []
            for queue in t.config.subscribers:
                if queue not in by_source:
                    raise ValueError(f"topic {t.config.name!r}: no mapping reads {queue!r}")
                targets.append(by_source[queue])
            # its function subscribers: an event each in their internal queue
            targets += [by_source[async_queue(f)] for f in t.config.functions]
            carried = t.messages
            self.sources[t.config.name] = _Source(
                targets,
                _Groups(carried.groups, carried.hot_group_share, stream(t.seeds + "groups"))
                if t.config.fifo else None,
                stream(t.seeds + "bodies").choice if carried.bodies else None,
                carried.bodies, t.config, t.backlog)
        for lane in self.lanes:
            if not lane.stream:
                q = world.queue(lane.queue)
                self.sources[lane.queue] = _Source([lane], lane.groups, lane.pick,
                                                   q.messages.bodies, None, q.backlog)
        for bus in world.buses:
            self.sources[f"bus:{bus.name}"] = self._bus_source(bus, by_source)
        self.arrivals: list[tuple[float, int, Arrivals, _Source]] = []
        """Each queue or topic producer's next send: (time, sequence, producer, source), a
        heap of its own, so that the busiest events (one per message at a constant rate)
        cost no push and pop on the main heap. At one instant: bucket boundary and
        scenario changes (negative sequence numbers), then sends, then the rest. A
        stream's producers put records through the main heap (``_PUT`` events)."""

        # --- results
        self.bucket_start = 0.0
        self.puts = 0
        """Events put on the buses when the last bucket closed."""
        self.series: list[dict[str, Any]] = []
        """The account-wide series (a one-mapping run's is its lane's)."""

    def _bus_source(self, bus: SimBus, by_source: dict[str, _Lane]) -> _Source:
        """Where an event put on ``bus`` goes: each of its targets' lanes, in order (a
        topic's subscribers in the topic's order)."""
        targets: list[_Lane] = []
        for destination in bus.targets:
            if destination.kind == "function":
                targets.append(by_source[async_queue(destination.name)])
            elif destination.kind == "queue":
                targets.append(by_source[destination.name])
            else:
                targets += self.sources[destination.name].targets
        source = _Source(targets, None, None, (), None)
        source.bus = True
        return source

    def _gate(self, lane: _Lane) -> None:
        """Give ``lane``'s mapping a term of each semaphore it names (see
        :mod:`sluicegate.core.semaphore`).

        Raises:
            ValueError: a semaphore the world does not define.
        """
        names = lane.spec.config.semaphores
        if not names:
            return
        limit = (lane.stream_mapping.concurrency_limit if lane.stream
                 else lane.mapping.concurrency_limit)
        gates: list[SemaphoreTerm] = []
        for name in names:
            semaphore = self.semaphores.get(name)
            if semaphore is None:
                config = self.world.semaphores.get(name)
                if config is None:
                    raise ValueError(f"mapping {lane.name} names semaphore {name!r}, "
                                     "which is not defined")
                semaphore = self.semaphores[name] = SharedSemaphore(name, config.limit)
                self.holders[name] = []
            term = semaphore.term()
            self.holders[name].append(lane)
            limit.add(term)
            gates.append(term)
        lane.gates = gates

    def _wake_now(self, lane: _Lane, when: float) -> None:
        """Make sure ``lane``'s mapping polls by ``when``."""
        if when < lane.wake_at:
            lane.wake_at = when
            heapq.heappush(self.heap, (when, self.next_seq(), _WAKE, lane))

    def _release(self, lane: _Lane, gates: list[SemaphoreTerm], now: float) -> None:
        """An invocation of ``lane`` ended: give back its slots, and wake the mappings
        that may start on them."""
        for term in gates:
            for other in term.release(now):
                self._wake_now(self.holders[term.semaphore.name][other.index], now)

    def _queue_up(self, lane: _Lane, gates: list[SemaphoreTerm], now: float) -> None:
        """After ``lane``'s turn at ``now``: pass on its handed slots left idle too long;
        when a semaphore has no free slot, put in line every mapping sharing it that the
        semaphore binds (the others first: ``lane`` most likely just took the last
        slot); wake ``lane`` when its handed slots are due to go on."""
        for term in gates:
            semaphore = term.semaphore
            sharers = self.holders[semaphore.name]
            for other in semaphore.expire(term, now):
                self._wake_now(sharers[other.index], now)
            if semaphore.free <= 0:
                for other in semaphore.terms:
                    if other is not term and not other.queued:
                        self._line_up(sharers[other.index], other, now)
                if not term.queued:
                    self._line_up(lane, term, now)
            due = semaphore.yield_at(term)
            if due is not None:
                self._wake_now(lane, due)

    def _line_up(self, lane: _Lane, term: SemaphoreTerm, now: float) -> None:
        """Put ``term`` in line when its mapping's limit is bound by it (it could run
        more: the term is strictly the lowest)."""
        limit = (lane.stream_mapping.concurrency_limit if lane.stream
                 else lane.mapping.concurrency_limit)
        if limit.reason(now) == term.name:
            term.semaphore.wait(term)

    @property
    def now(self) -> float:
        """The virtual time, seconds from the start."""
        return self._now[0]

    # ------------------------------------------------------------------ run

    def run(self) -> SimResult:
        world = self.world
        end = self.end
        heap = self.heap
        seq = self.next_seq
        lanes = self.lanes
        stream = self.stream
        schedule_buckets(heap, end=end, bucket=world.bucket, kind=_BUCKET)
        control = itertools.count(CONTROL_SEQ).__next__
        poisoned: set[str] = set()
        for lane in lanes:
            fn = lane.fn
            schedule_windows(heap, control, end=end,
                             windows=() if fn.scheduled else fn.windows,
                             pauses=lane.pauses, kinds=(_ERRORS, _PAUSE, _RESUME),
                             extra=(lane,))
            fn.scheduled = True
            if lane.stream and lane.source_name not in poisoned:
                poisoned.add(lane.source_name)
                for poison in lane.stream_spec.poison:
                    if poison.at < end:
                        heapq.heappush(heap, (poison.at, control(), _POISON, lane, poison))
        by_stream = {lane.source_name: lane for lane in lanes if lane.stream}
        arrivals = self.arrivals
        for p in world.producers:
            producer = Arrivals(p.arrivals, end, stream(p.seed))
            first = producer.first()
            target = by_stream.get(p.target)
            if target is not None:
                assert p.keys is not None
                index = len(target.producers)
                target.producers.append(
                    (producer, _Keys(p.keys, target.shard_count, stream(p.keys_seed))))
                if first is not None:
                    heapq.heappush(heap, (first, seq(), _PUT, target, index))
            elif first is not None:
                heapq.heappush(arrivals, (first, seq(), producer, self.sources[p.target]))
        for requests in self.requests:
            fn = requests.fn
            if not fn.scheduled:
                schedule_windows(heap, control, end=end, windows=fn.windows, pauses=(),
                                 kinds=(_ERRORS, _PAUSE, _RESUME), extra=(requests,))
                fn.scheduled = True
            for p in requests.spec.producers:
                producer = Arrivals(p.arrivals, end, stream(p.seed))
                index = len(requests.producers)
                requests.producers.append(producer)
                first = producer.first()
                if first is not None:
                    heapq.heappush(heap, (first, seq(), _REQUEST, requests, index))
        # The backlogs are in the queues at t=0 (the topics' first, published to every
        # queue); the first poll is an ordinary wake-up at t=0 (after a pause or an error
        # window starting then, and after sends at t=0).
        published = 0
        for source in self.sources.values():
            if source.topic is not None and source.backlog:
                published += source.backlog
                recipe = None if source.plain else self._compose(source, source.backlog)
                for lane in source.targets:
                    self._send(lane, source.backlog, recipe)
        for lane in lanes:
            if lane.stream:
                continue
            source = self.sources[lane.queue]
            backlog = source.backlog
            if backlog:
                self._send(lane, backlog, None if source.plain
                           else self._compose(source, backlog))
            if lane.b_sent and lane.delay:
                self._watch(lane, lane.delay)
        for lane in lanes:
            heapq.heappush(heap, (0.0, seq(), _WAKE, lane))
            lane.wake_at = 0.0
        self._loop(published)
        for semaphore in self.semaphores.values():
            semaphore.close()  # no reference cycle outlives the run
        if not self.account:
            lane = lanes[0]
            return SimResult(world.scenario, self._summary(lane), lane.series)
        summaries = [self._summary(lane) for lane in lanes]
        requested = [self._request_summary(r) for r in self.requests]
        return SimResult(world.scenario, self._account_summary(summaries + requested),
                         self.series, [
            {"name": lane.name, lane.kind_key: lane.source_name, "function": lane.function,
             "summary": summary, "series": lane.series}
            for lane, summary in zip(lanes, summaries, strict=True)
        ], [{"name": f"requests:{r.function}", "function": r.function, "summary": summary,
             "series": r.series}
            for r, summary in zip(self.requests, requested, strict=True)] or None)

    def _compose(self, source: _Source, count: int) -> list[tuple[int, str | None, str | None]]:
        """What ``count`` messages of ``source`` carry: each one's body (an index into
        the bodies, -1 for none), FIFO group and deduplication id, drawn once and
        delivered alike to every target. A FIFO topic's publishes carry both ids, which
        :func:`~sluicegate.store.base.publish_ids` passes to every queue unchanged; a
        standard topic's neither."""
        pick = source.pick
        indices = ([pick(source.indices) for _ in range(count)] if pick is not None
                   else [-1] * count)
        groups = source.groups
        if groups is None:
            return [(i, None, None) for i in indices]
        return [(i, groups.draw(), groups.deduplication_id()) for i in indices]

    def _send(self, lane: _Lane, count: int,
              recipe: list[tuple[int, str | None, str | None]] | None) -> None:
        """Send ``count`` messages to ``lane``'s queue: its shared message, or as
        ``recipe`` (:meth:`_compose`) says; counted in the bucket's ``sent``. To an
        asynchronous lane, ``count`` events accepted now (what they carry is not drawn)."""
        lane.b_sent += count
        if lane.events is not None:
            self.engine.send(lane.queue, [AcceptedEvent(self._now[0])] * count)
            return
        if recipe is None:
            self.engine.send(lane.queue, lane.one_message * count)
            return
        bodies = lane.bodies
        base = lane.new_message
        messages = [bodies[i] if i >= 0 else base for i, _, _ in recipe]
        if lane.fifo:
            self.engine.send_fifo(lane.queue, [
                dataclasses.replace(message, group_id=group, deduplication_id=dedup)
                for message, (_, group, dedup) in zip(messages, recipe, strict=True)
            ])
        else:
            self.engine.send(lane.queue, messages)

    def _put(self, lane: _Lane, records: list[tuple[str, int]]) -> list[int]:
        """Put records (``(key, shard)`` pairs) into ``lane``'s stream; their sequence
        numbers."""
        numbers = self.streams.put(lane.source_name,
                                   [(shard, key, _DATA) for key, shard in records])
        lane.sent += len(records)
        lane.b_sent += len(records)
        return numbers



    def _loop(self, published: int) -> None:
        """Run every event before the end, then close the last bucket.

        Parameters:
            published: messages already published to the topics at t=0 (their
                backlogs), counted in the first bucket.
        """
        # Everything the hot path touches, as locals, or in the event's lane; methods are
        # called on their objects (as cheap as a bound-method local for CPython, and what
        # a compiled build (mypyc) turns into direct calls).
        heap = self.heap
        clock = self._now
        pop = heapq.heappop
        push = heapq.heappush
        seq = self.next_seq
        end = self.end
        engine = self.engine
        success = SUCCESS_OUTCOME
        max_wait = MAX_RECEIVE_WAIT
        observer = self.observer
        # Account-wide gauges and the current bucket's peaks (b_*): invocations running,
        # those of functions without reserved concurrency (kept with several lanes; one
        # lane's are all or none of them), and execution environments alive.
        running = 0
        b_running = 0
        unreserved = 0
        b_unreserved = 0
        live = 0
        b_live = 0
        b_published = published
        same = 0
        last = -1.0
        stuck = SAME_INSTANT_LIMIT * len(self.lanes)
        # Several lanes keep gauges of their own (and a lane beside requests); one lane's
        # are the account's.
        multi = self.multi
        compiled = _COMPILED

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
        solo_source = arrivals[0][3] if len(arrivals) == 1 else None
        # Deliveries of a publish still to make at `now` (to the other subscribers),
        # last first: each is followed by its mapping's turn, before any other event.
        pending: list[tuple[_Lane, int, list[tuple[int, str | None, str | None]] | None]] = []
        # declared, not inferred: a value taken out of a tuple (Any) would otherwise
        # make them Any, which a compiled build boxes and compares as objects
        recipe: list[tuple[int, str | None, str | None]] | None = None
        count: int = 0
        now: float = 0.0
        lane: _Lane
        fn: _Function

        while True:
            # The mapping's actions at `now` and its next wake-up (`wake`), when a fused
            # call (received_poll, finished_poll) returned them; else poll() is asked.
            actions: list[Any] | None = None
            kind: int
            if pending:
                lane, count, recipe = pending.pop()
                kind = _DELIVER
            else:
                top = heap[0]
                now = top[0]
                if next_send < now or (next_send == now and top[1] > 0):
                    now = next_send
                    kind = _PRODUCE
                    clock[0] = now
                else:
                    event = pop_event(heap) if compiled else pop(heap)
                    kind = event[2]
                    clock[0] = event[0]  # `now`, as the event holds it (a compiled build
                    # would otherwise make a new float object of it)
                if now >= end:
                    break
            if kind == _END:
                # An invocation ended: free its environment, report its outcome.
                lane = event[3]
                fn = lane.fn
                running -= 1
                if multi:
                    lane.running -= 1
                    if fn.unreserved:
                        unreserved -= 1
                fn.release(event[0])  # `now`, as the event holds it (see clock above)
                gates = lane.gates
                if gates is not None:
                    # before the core hears of the end: its limit then counts the slot
                    self._release(lane, gates, now)
                outcome: BatchOutcome = event[5]
                if outcome is not success:
                    if outcome.function_error:
                        lane.b_errors += 1
                    elif outcome.failed:
                        lane.b_partial += 1
                called: bool = event[6]
                if called:
                    fn.downstream.done(now)  # type: ignore[union-attr]
                if lane.stream:
                    ended_stream: StreamBatch = event[4]
                    if observer is not None:
                        observer.finished(now, ended_stream, outcome)
                    lane.stream_mapping.finished(now, ended_stream.id, outcome)
                else:
                    ended: Batch = event[4]
                    if observer is not None:
                        observer.finished(now, ended, outcome)
                    events = lane.events
                    if events is not None:
                        # an asynchronous lane: its core settles the event (a Retry or
                        # a Conclude at its poll, below)
                        events.finished(now, ended.id, outcome)
                    else:
                        deleted, actions, wake = lane.mapping.finished_poll(now, ended,
                                                                            outcome)
                        if deleted:
                            lane.b_processed += engine.delete_records(lane.queue, deleted)
                            if lane.fifo and lane.waiting:
                                # A FIFO group whose batch settled may deliver again: its
                                # next messages were visible all along, but no receive
                                # could take them.
                                if self._serve(lane, now):
                                    actions = [*actions, *lane.mapping.poll(now)]
                                    wake = unknown
            elif kind <= _PRODUCE:  # _PRODUCE, or _DELIVER
                if kind == _PRODUCE:
                    if solo is None:
                        arrival = arrivals[0]
                        producer: Arrivals = arrival[2]
                        source: _Source = arrival[3]
                    else:
                        producer = solo
                        source = solo_source  # type: ignore[assignment]
                    count = producer.count
                    if producer.constant:
                        # Arrivals.next, inlined for a constant producer: the same terms
                        k = producer.k = producer.k + 1
                        next_at = producer.start + k * producer.batch / producer.rate
                        after = next_at if next_at < producer.stop else None
                    else:
                        after = producer.next(now)
                    if solo is not None:
                        next_send = _INF if after is None else after
                    elif after is None:
                        pop(arrivals)
                        next_send = arrivals[0][0] if arrivals else _INF
                    else:
                        replace(arrivals, (after, seq(), producer, source))
                        next_send = arrivals[0][0]
                    recipe = None if source.plain else self._compose(source, count)
                    lane = source.first
                    if source.topic is not None:
                        b_published += count
                        # the other subscribers' deliveries follow, in the topic's order
                        for other in source.rest:
                            pending.append((other, count, recipe))
                    elif source.bus:
                        # an event bus: every target of its rules gets each event
                        source.puts += count
                        for other in source.rest:
                            pending.append((other, count, recipe))
                # ---- deliver `count` messages to the lane's queue
                waiting = lane.waiting
                if recipe is None and count == 1 and waiting and lane.shared:
                    # The usual case: a waiting poller drawn at random receives the one
                    # message as it is sent, in one call to the engine.
                    lane.b_sent += 1
                    waiters = lane.waiters
                    # LongPolls.take, inlined: the same draw, the same swap with the last
                    pick: float = waiters.random()
                    index = int(pick * float(len(waiting)))  # the same product, native
                    entry = waiting[index]
                    tail = waiting.pop()
                    if tail is not entry:
                        waiting[index] = tail
                        tail[3] = index
                    entry[3] = -1
                    waiter: Receive = entry[2]
                    records = engine.send_receive_records(
                        lane.queue, lane.new_message, waiter.max_messages,
                        waiter.visibility_timeout, lane.size)
                    if records:
                        actions, wake = lane.mapping.received_poll(now, waiter.poller,
                                                                   records)
                        if now + waiter.visibility_timeout < lane.visible_at:
                            self._watch(lane, now + waiter.visibility_timeout)
                    else:
                        waiters.put_back(entry)
                else:
                    self._send(lane, count, recipe)
                    if lane.delay:
                        self._watch(lane, now + lane.delay)
                        if not waiting or not self._serve(lane, now):
                            continue
                    elif not waiting:
                        continue
                    else:
                        # _serve, inlined for the hot path. Pollers wait only while
                        # nothing is visible, so what is visible now is what was just
                        # sent (messages due at this very instant have a visibility
                        # event of their own): hand out `count` messages, without asking
                        # the queue first.
                        waiters = lane.waiters
                        queue = lane.queue
                        size = lane.size
                        mapping = lane.mapping
                        left = count
                        while left > 0 and waiting:
                            entry = waiters.take()
                            action = entry[2]
                            records = engine.receive_records(queue, action.max_messages,
                                                             action.visibility_timeout, size)
                            if not records:
                                waiters.put_back(entry)
                                break
                            left -= len(records)
                            mapping.received(now, action.poller, records)
                            if now + action.visibility_timeout < lane.visible_at:
                                self._watch(lane, now + action.visibility_timeout)
            elif kind == _WAKE:
                lane = event[3]
                if now != lane.wake_at:
                    continue  # superseded by an earlier wake-up
                if now == last:
                    same += 1
                    if same > stuck:
                        raise RuntimeError(f"the mapping makes no progress at t={now}")
                else:
                    same = 0
                    last = now
                lane.wake_at = _INF
            elif kind == _TIMEOUT:
                lane = event[3]
                if now != lane.timeout_at:
                    continue
                lane.timeout_at = _INF
                waiters = lane.waiters
                expired = waiters.expire(now)
                for action in expired:
                    lane.mapping.received(now, action.poller, [])
                after = waiters.next_deadline()
                if after is not None:
                    lane.timeout_at = after
                    push(heap, (after, seq(), _TIMEOUT, lane))
                if not expired:
                    continue
            elif kind == _VISIBLE:
                lane = event[3]
                if now != lane.visible_at:
                    continue
                lane.visible_at = _INF
                waiting = lane.waiting
                if not waiting:
                    continue
                dirty = self._serve(lane, now)
                if waiting:
                    when = engine.next_visible_at(lane.queue)
                    if when is not None:
                        self._watch(lane, when)
                if not dirty:
                    continue
            elif kind == _PUT:
                # A stream producer puts records; the shards' readers fetch on their own
                # cadence.
                lane = event[3]
                put: int = event[4]
                stream_producer, keys = lane.producers[put]
                draw = keys.draw
                self._put(lane, [draw() for _ in range(stream_producer.count)])
                after = stream_producer.next(now)
                if after is not None:
                    push(heap, (after, seq(), _PUT, lane, put))
                continue
            elif kind == _BUCKET:
                live = self._close_bucket(now, b_running, b_unreserved, b_live, b_published)
                b_running, b_unreserved, b_live = running, unreserved, live
                b_published = 0
                continue
            elif kind == _ERRORS:
                fn = event[5].fn
                fn.toggle(event[3], event[4])
                continue
            elif kind == _POISON:
                lane = event[3]
                spec: PoisonSpec = event[4]
                shard = shard_for_partition_key(spec.key, lane.shard_count)
                (number,) = self._put(lane, [(spec.key, shard)])
                lane.poison[number] = spec.kind
                continue
            elif kind == _PAUSE:
                lane = event[3]
                if lane.stream:
                    lane.stream_mapping.pause(now)
                else:
                    mapping = lane.mapping
                    mapping.pause(now)
                    # Cut outstanding long polls short, as the runtime's stop does.
                    for action in lane.waiters.clear():
                        mapping.received(now, action.poller, [])
            elif kind == _REQUEST:
                # synchronous requests of a function: each runs in a slot of the pool or
                # is throttled
                requests: _Requests = event[3]
                which: int = event[4]
                request_producer = requests.producers[which]
                fn = requests.fn
                for _ in range(request_producer.count):
                    new = self._request(requests, now)
                    if new < 0:
                        continue
                    running += 1
                    b_running = running if running > b_running else b_running
                    if fn.unreserved:
                        unreserved += 1
                        b_unreserved = (unreserved if unreserved > b_unreserved
                                        else b_unreserved)
                    live += new
                    b_live = live if live > b_live else b_live
                after = request_producer.next(now)
                if after is not None:
                    push(heap, (after, seq(), _REQUEST, requests, which))
                continue
            elif kind == _REPLY:
                requests = event[3]
                fn = requests.fn
                running -= 1
                requests.running -= 1
                if fn.unreserved:
                    unreserved -= 1
                fn.release(event[0])
                self.pool.release(fn.name)
                if event[4]:
                    fn.downstream.done(now)  # type: ignore[union-attr]
                if event[5]:
                    requests.b_errors += 1
                continue
            else:  # _RESUME
                lane = event[3]
                if lane.stream:
                    lane.stream_mapping.resume(now)
                else:
                    lane.mapping.resume(now)

            # ---- the lane's mapping's turn: poll, perform, until nothing more is
            # reported now
            if lane.stream:
                stream_mapping = lane.stream_mapping
                actions = stream_mapping.poll(now)
                wake = unknown
            else:
                mapping = lane.mapping
                if actions is None:
                    events = lane.events
                    actions = mapping.poll(now) if events is None else events.poll(now)
                    wake = unknown
            while True:
                reported = False
                for action in actions:
                    if isinstance(action, Receive):
                        queue = lane.queue
                        waiting = lane.waiting
                        # While pollers wait, nothing is visible (every send serves them,
                        # and a visibility event is pending for what becomes visible), so
                        # this receive would come back empty: it joins the wait.
                        got = (
                            None if waiting or not engine.has_visible(queue)
                            else engine.receive_records(queue, action.max_messages,
                                         action.visibility_timeout, lane.size)
                        )
                        if got:
                            mapping.received(now, action.poller, got)
                            reported = True
                            if now + action.visibility_timeout < lane.visible_at:
                                self._watch(lane, now + action.visibility_timeout)
                            continue
                        wait = action.wait
                        wait = wait if wait < max_wait else max_wait
                        if wait <= 0:
                            mapping.received(now, action.poller, [])
                            reported = True
                            continue
                        # Long poll: wait for a message or the end of the wait.
                        deadline = now + wait
                        waiters = lane.waiters
                        # LongPolls.add, inlined for its usual case: the wait ends no
                        # earlier than the others (the same long polls, one after another)
                        ordered = waiters.ordered
                        latest: float = ordered[-1][0] if ordered else _INF
                        if latest <= deadline:
                            seq_w = waiters.seq = waiters.seq + 1
                            pool = waiters.pool
                            entry = [deadline, seq_w, action, len(pool)]
                            pool.append(entry)
                            _append(ordered, entry)
                            if len(ordered) > 2 * len(pool) + WAIT_COMPACT_SLACK:
                                waiters.compact()
                        else:
                            waiters.add(deadline, action)
                        if deadline < lane.timeout_at:
                            lane.timeout_at = deadline
                            push(heap, (deadline, seq(), _TIMEOUT, lane))
                        if lane.visible_at == _INF:
                            when = engine.next_visible_at(queue)
                            if when is not None:
                                self._watch(lane, when)
                    elif isinstance(action, Invoke) or isinstance(action, StreamInvoke):
                        # ---- the one simulated function, for every source
                        batch: Batch | StreamBatch
                        if isinstance(action, Invoke):
                            batch = action.batch  # natively: Invoke is a compiled class
                        else:
                            batch = action.batch
                        fn = lane.fn
                        gates = lane.gates
                        if gates is not None:
                            for term in gates:
                                term.take(now)
                        running += 1
                        # conditional expressions, not max(): a call costs more here
                        b_running = running if running > b_running else b_running
                        if multi:
                            n = lane.running + 1
                            lane.running = n
                            if n > lane.b_running:  # noqa: PLR1730
                                lane.b_running = n
                            if fn.unreserved:
                                unreserved += 1
                                b_unreserved = (unreserved if unreserved > b_unreserved
                                                else b_unreserved)
                        # A warm environment, else a cold start (see Environments); the
                        # usual case, with none to reclaim, without the call to acquire.
                        warm = fn.warm
                        if warm and warm[0] > now - fn.idle_timeout:
                            warm.pop()
                            start = now
                        else:
                            environments = fn.environments
                            before = environments.live
                            start = (now + fn.cold_start() if environments.acquire(now)
                                     else now)
                            n = environments.live
                            lane.b_live = max(lane.b_live, n)
                            live += n - before
                            b_live = live if live > b_live else b_live
                        if fn.lognormal is not None:
                            # _Function.duration, inlined: lognormal draws, a block at
                            # a time
                            block = fn.block
                            drawn = fn.drawn
                            if drawn == len(block):
                                block = fn.block = lognormal_block(fn.mu, fn.sigma,
                                                                   fn.durations)
                                drawn = 0
                            duration = block[drawn]
                            fn.drawn = drawn + 1
                        else:
                            duration = fn.draw()
                        if fn.modelled or lane.poison:
                            duration, outcome, called = self._model(lane, now, batch,
                                                                    duration)
                        else:
                            outcome = success
                            called = False
                            if duration > fn.timeout:
                                duration = fn.timeout
                                outcome = lane.outcome_of(_TIMED_OUT, batch)
                        if observer is not None:
                            observer.invoked(now, batch)
                        ending = (start + duration, seq(), _END, lane, batch, outcome, called)
                        if compiled:
                            push_event(heap, ending)
                        else:
                            push(heap, ending)
                    elif isinstance(action, Delete):
                        lane.b_processed += engine.delete_records(lane.queue,
                                                                  action.records)
                    elif isinstance(action, Fetch):
                        self._fetch(lane, now, action)
                        reported = True
                    elif isinstance(action, Checkpoint):
                        self.streams.set_checkpoints(
                            lane.checkpoint_name, {action.shard: action.sequence_number})
                    elif isinstance(action, SendToDestination):
                        lane.b_on_failure += 1
                        lane.on_failure += 1
                    elif isinstance(action, Retry):
                        self._retry(lane, now, action)
                    elif isinstance(action, Conclude):
                        self._conclude(lane, action)
                    # an Abandon: counted by the mapping; the engine makes its messages
                    # visible again by itself
                if not reported:
                    break
                if lane.stream:
                    actions = stream_mapping.poll(now)
                else:
                    events = lane.events
                    actions = mapping.poll(now) if events is None else events.poll(now)
                wake = unknown
            # (None first: a compiled build then compares two native floats)
            if wake is not None and wake == unknown:
                wake = (stream_mapping.next_wakeup(now) if lane.stream
                        else mapping.next_wakeup(now))
            if wake is not None and wake < lane.wake_at:
                lane.wake_at = wake
                push(heap, (wake, seq(), _WAKE, lane))
            gates = lane.gates
            if gates is not None:
                self._queue_up(lane, gates, now)

        clock[0] = end
        self._close_bucket(end, b_running, b_unreserved, b_live, b_published)

    # ------------------------------------------------------------------ reads

    def _watch(self, lane: _Lane, when: float) -> None:
        """Make sure a visibility event of ``lane`` fires by ``when`` (a message may
        become visible then), while pollers wait."""
        if when < lane.visible_at:
            lane.visible_at = when
            heapq.heappush(self.heap, (when, self.next_seq(), _VISIBLE, lane))

    def _serve(self, lane: _Lane, now: float) -> bool:
        """Give visible messages of ``lane``'s queue to its waiting pollers (drawn at
        random) while any are visible.

        Returns:
            Whether any records were handed out (and reported to the mapping).
        """
        waiters = lane.waiters
        engine = self.engine
        mapping = lane.mapping
        queue = lane.queue
        size = lane.size
        dirty = False
        while waiters.pool and engine.has_visible(queue):
            entry = waiters.take()
            action = entry[2]
            records = engine.receive_records(queue, action.max_messages,
                                             action.visibility_timeout, size)
            if not records:
                waiters.put_back(entry)
                break
            mapping.received(now, action.poller, records)
            dirty = True
            self._watch(lane, now + action.visibility_timeout)
        return dirty

    # ------------------------------------------------------------------ asynchronous

    def _retry(self, lane: _Lane, now: float, action: Retry) -> None:
        """Hide a failed event for its retry's wait, as the runtime's change of its
        visibility does: it is read again after it."""
        try:
            self.engine.change_visibility(lane.queue, action.record.receipt_handle,
                                          action.delay)
        except SluicegateError:
            return  # no longer in flight: it reappears at its visibility timeout already
        # it may now become visible before the pending visibility event: one at its time
        self._watch(lane, now + action.delay)

    def _conclude(self, lane: _Lane, action: Conclude) -> None:
        """An event is done: count its deliveries (the invocation record to its
        destination, the event to the dead-letter queue), then delete it."""
        if action.destination is not None:
            if action.success:
                lane.on_success += 1
            else:
                lane.on_failure += 1
        if action.dead_letter is not None:
            lane.dead_letters += 1
        lane.b_processed += self.engine.delete_records(lane.queue, (action.record,))

    def _request(self, requests: _Requests, now: float) -> int:
        """One synchronous request of ``requests``' function at ``now``: a slot of the
        pool and a run (an environment, a duration, an outcome drawn as for any of its
        invocations; its end an event), or a throttle.

        Returns:
            -1 when throttled, else the execution environments it created (0 or 1).
        """
        requests.requests += 1
        fn = requests.fn
        if not self.pool.try_acquire(fn.name):
            requests.throttles += 1
            return -1
        requests.invocations += 1
        n = requests.running + 1
        requests.running = n
        requests.b_running = max(requests.b_running, n)
        environments = fn.environments
        before = environments.live
        start = now
        if environments.acquire(now):
            start = now + fn.cold_start()
            requests.cold_starts += 1
        requests.b_live = max(requests.b_live, environments.live)
        duration = fn.duration()
        failed = False
        called = False
        rand = fn.errors_rng.random
        if fn.p_raise and rand() < fn.p_raise:
            duration *= fn.raise_at
            failed = True
        elif fn.p_timeout and rand() < fn.p_timeout:
            duration = fn.timeout
            failed = True
        elif fn.downstream is not None:
            called = fn.downstream.spec.concurrency is not None
            latency, errors = fn.downstream.call(now, 1)
            duration += latency
            failed = errors > 0
        if duration > fn.timeout:
            duration = fn.timeout
            failed = True
        heapq.heappush(self.heap, (start + duration, self.next_seq(), _REPLY, requests,
                                   called, failed))
        return environments.live - before

    def _fetch(self, lane: _Lane, now: float, action: Fetch) -> None:
        """Read a shard of ``lane``'s stream as the runtime's stream runner does, and
        report it."""
        engine = self.streams
        name = lane.source_name
        shard = action.shard
        # the shard's latest sequence number first, then its records: the core tells
        # from both where the shard's iterator stands (a first read at LATEST, records
        # dropped by retention)
        latest = engine.latest_sequence(name, shard)
        got: list[Any] = (
            engine.get_records(name, shard, action.after_sequence, action.at_timestamp,
                               action.max_records)
            if action.reads_records else []
        )
        size = lane.record_size
        records = [StreamRecord(m.shard, m.sequence_number, m.partition_key, None,
                                m.approximate_arrival, size) for m in got]
        lane.received += len(records)
        lane.b_received += len(records)
        lane.stream_mapping.read_done(now, action, records, latest=latest)

    # ------------------------------------------------------------------ the function

    def _model(self, lane: _Lane, now: float, batch: Batch | StreamBatch, duration: float
               ) -> tuple[float, BatchOutcome, bool]:
        """Everything beyond the duration draw, for an invocation of ``lane``'s function
        starting at ``now``, whatever the source (the one simulated function).

        In order: ``duration_per_record``; a poison record of kind ``raise`` (streams:
        the handler throws after :data:`~sluicegate.sim.scenario.DEFAULT_RAISE_AT` of its
        run, as an injected ``raise`` does by default); an injected ``raise`` (the
        invocation ends after ``raise_at`` of its duration, without calling the
        downstream) or ``timeout`` (it runs to the function timeout); else the downstream
        call (its latency added, its failures raising or reporting records), then the
        reported failures (poison records of kind ``batch_item_failure``, failed
        downstream requests, injected batch item failures). Anything longer than the
        function timeout ends at the timeout. How the handler ended (an exception, a
        timeout, a response listing failures) goes through the mapping's
        ``outcome_of``, the core's one result rule, so that with
        ``report_batch_item_failures`` off a response is ignored, as AWS does.

        Returns:
            The duration (seconds, init excluded), the outcome, and whether the
            downstream was called (its ``concurrency`` slot is freed at the end).
        """
        fn = lane.fn
        records: tuple[Any, ...] = batch.records
        ids = ([str(r.sequence_number) for r in records] if lane.stream
               else [r.message_id for r in records])
        if fn.per_record:
            duration += fn.per_record * len(records)
        ended: _Ended | None = None  # None: returned nothing (SUCCESS)
        called = False
        rand = fn.errors_rng.random
        failed: list[str] = []
        thrown = False
        reported: float | None = None
        overload = False
        poison = lane.poison
        if poison:
            for r, i in zip(records, ids, strict=True):
                kind = poison.get(r.sequence_number)
                if kind == "raise":
                    thrown = True
                    break
                if kind is not None:
                    failed.append(i)
        if thrown:
            duration *= DEFAULT_RAISE_AT
            ended = _Ended(error_text=_POISONED)
        elif fn.p_raise and rand() < fn.p_raise:
            duration *= fn.raise_at
            ended = _Ended(error_text=_INJECTED)
        elif fn.p_timeout and rand() < fn.p_timeout:
            duration = fn.timeout
            ended = _TIMED_OUT
        else:
            downstream = fn.downstream
            if downstream is not None:
                called = downstream.spec.concurrency is not None
                latency, errors = downstream.call(
                    now, len(records) if fn.downstream_per_record else 1
                )
                duration += latency
                # the handler reports the call (context.report): its latency, and an
                # overload when the downstream refused requests
                reported = latency
                overload = errors > 0
                if errors:
                    if fn.downstream_items:
                        # one request per record: ``errors`` records drawn at random;
                        # one per invocation: every record of the batch
                        chosen = (sorted(fn.errors_rng.sample(range(len(ids)), errors))
                                  if fn.downstream_per_record else range(len(ids)))
                        failed.extend(ids[i] for i in chosen)
                    else:
                        ended = _Ended(error_text=_DOWNSTREAM)
            if fn.p_item and ended is None:
                p_item = fn.p_item
                failed.extend([i for i in ids if rand() < p_item])
            if failed and ended is None:
                ended = _Ended(response={"batchItemFailures": [
                    {"itemIdentifier": i} for i in dict.fromkeys(failed)]})
        if duration > fn.timeout:
            duration = fn.timeout
            ended = _TIMED_OUT
            reported = None  # a timed-out handler reports nothing
            overload = False
        outcome = SUCCESS_OUTCOME if ended is None else lane.outcome_of(ended, batch)
        if reported is not None:
            outcome = with_report(outcome, reported, overload)
        return duration, outcome, called

    # ------------------------------------------------------------------ statistics

    def _limit(self, lane: _Lane, now: float) -> int:
        """The mapping's concurrency limit at ``now``: its core limit object's value."""
        limit = (lane.stream_mapping.concurrency_limit if lane.stream
                 else lane.mapping.concurrency_limit)
        return limit.value(now)

    def _close_bucket(self, now: float, running: int, unreserved: int, live: int,
                      published: int) -> int:
        """Append the entries of the bucket ending at ``now``: each lane's (see
        :data:`SERIES_KEYS`, :data:`STREAM_SERIES_KEYS`), and for an account-wide run
        the account's (see :data:`ACCOUNT_SERIES_KEYS`, :data:`APP_SERIES_KEYS`, with
        the account-wide peaks given), then start the next bucket: idle environments
        past their idle timeout are reclaimed.

        Returns:
            The execution environments alive, over every function, at the next bucket's
            start.
        """
        t = round(self.bucket_start, 6)
        entries = []
        if not self.multi:
            # the loop keeps one lane's running invocations as the account's (below)
            lane = self.lanes[0]
            lane.b_running = running
            unreserved = running if lane.fn.unreserved else 0
        for lane in self.lanes:
            entry = (self._stream_entry(lane, now, t) if lane.stream else
                     self._queue_entry(lane, now, t) if lane.events is None else
                     self._async_entry(lane, now, t))
            lane.series.append(entry)
            entries.append(entry)
            lane.b_errors = lane.b_partial = lane.b_sent = lane.b_processed = 0
            lane.b_received = lane.b_on_failure = 0
            lane.b_running = lane.running
        for requests in self.requests:
            entry = self._request_entry(requests, t)
            requests.series.append(entry)
            entries.append(entry)
        alive = 0
        reclaimed: set[str] = set()
        for lane in self.lanes:
            environments = lane.fn.environments
            if lane.function not in reclaimed:
                reclaimed.add(lane.function)
                environments.reclaim(now)
                alive += environments.live
            lane.b_live = environments.live
        for requests in self.requests:
            environments = requests.fn.environments
            if requests.function not in reclaimed:
                reclaimed.add(requests.function)
                environments.reclaim(now)
                alive += environments.live
            requests.b_live = environments.live
        if self.account:
            total: dict[str, Any] = {"t": t}
            for key in APP_SERIES_KEYS[1:] if self.app else ACCOUNT_SERIES_KEYS[1:]:
                if key == "concurrency":
                    total[key] = running
                elif key == "unreserved_concurrency":
                    total[key] = unreserved
                elif key == "environments":
                    total[key] = live
                elif key == "published":
                    total[key] = published
                elif key == "oldest_age":
                    total[key] = max(e[key] for e in entries)
                else:  # (a function's requests have no "partial")
                    total[key] = sum(e.get(key, 0) for e in entries)
            if self.world.buses:
                puts = sum(s.puts for s in self.sources.values() if s.bus)
                total["put"] = puts - self.puts
                self.puts = puts
            self.series.append(total)
        self.bucket_start = now
        return alive

    def _invocation_entry(self, lane: _Lane, mapping: QueueMapping | StreamMapping,
                          now: float, t: float) -> dict[str, Any]:
        """The keys every lane's bucket entry starts with, whatever its source: the
        invocations, cold starts, concurrency, limit, throttles, errors and partial
        responses of the bucket ending at ``now`` (the counters' marks move on)."""
        environments = lane.fn.environments
        entry: dict[str, Any] = {
            "t": t,
            "invocations": mapping.invocations - lane.last_invocations,
            "cold_starts": environments.cold_starts - lane.last_cold,
            "concurrency": lane.b_running,
            "environments": lane.b_live,
            "limit": self._limit(lane, now),
            "throttles": mapping.throttles - lane.last_throttles,
            "errors": lane.b_errors,
            "partial": lane.b_partial,
        }
        lane.last_invocations = mapping.invocations
        lane.last_cold = environments.cold_starts
        lane.last_throttles = mapping.throttles
        return entry

    def _queue_entry(self, lane: _Lane, now: float, t: float) -> dict[str, Any]:
        """A queue lane's entry of the bucket ending at ``now`` (:data:`SERIES_KEYS`)."""
        counts = self.engine.counts(lane.queue)
        mapping = lane.mapping
        oldest = round(counts.oldest_age, 3)
        lane.max_oldest_age = max(lane.max_oldest_age, oldest)
        entry = self._invocation_entry(lane, mapping, now, t)
        entry.update({
            "abandoned": mapping.abandoned - lane.last_abandoned,
            "sent": lane.b_sent,
            "received": mapping.received_records - lane.last_received,
            "processed": lane.b_processed,
            "dead_lettered": counts.dead_lettered - lane.last_dead,
            "visible": counts.visible,
            "in_flight": counts.in_flight,
            "delayed": counts.delayed,
            "oldest_age": oldest,
        })
        lane.last_abandoned = mapping.abandoned
        lane.last_received = mapping.received_records
        lane.last_dead = counts.dead_lettered
        return entry

    def _async_entry(self, lane: _Lane, now: float, t: float) -> dict[str, Any]:
        """An asynchronous lane's entry of the bucket ending at ``now``
        (:data:`ASYNC_SERIES_KEYS`)."""
        counts = self.engine.counts(lane.queue)
        events = lane.events
        assert events is not None
        oldest = round(counts.oldest_age, 3)
        lane.max_oldest_age = max(lane.max_oldest_age, oldest)
        entry = self._invocation_entry(lane, lane.mapping, now, t)
        by_condition = events.by_condition
        marks = lane.marks
        figures = {
            "received": events.received,
            "succeeded": events.succeeded,
            "retried": events.retried,
            "dropped": events.dropped,
            "dropped_event_age_exceeded": by_condition.get(CONDITION_EVENT_AGE_EXCEEDED, 0),
            "dropped_retries_exhausted": by_condition.get(CONDITION_RETRIES_EXHAUSTED, 0),
            "dropped_zero_reserved_concurrency": by_condition.get(CONDITION_ZERO_RESERVED, 0),
        }
        # the queue mapping counts an invocation for each event concluded at its check
        # before the attempt (never run): those are not attempts
        skipped = (figures["dropped_event_age_exceeded"]
                   + figures["dropped_zero_reserved_concurrency"])
        entry["invocations"] -= skipped - marks.get("skipped", 0)
        marks["skipped"] = skipped
        entry["sent"] = lane.b_sent
        for key, value in figures.items():
            entry[key] = value - marks.get(key, 0)
            marks[key] = value
        entry.update({
            "visible": counts.visible,
            "in_flight": counts.in_flight,
            "delayed": counts.delayed,
            "oldest_age": oldest,
        })
        return entry

    def _request_entry(self, requests: _Requests, t: float) -> dict[str, Any]:
        """A function's requests' entry of the bucket ending now
        (:data:`REQUEST_SERIES_KEYS`); its bucket counters start again."""
        entry: dict[str, Any] = {
            "t": t,
            "requests": requests.requests - requests.last_requests,
            "invocations": requests.invocations - requests.last_invocations,
            "cold_starts": requests.cold_starts - requests.last_cold,
            "concurrency": requests.b_running,
            "environments": requests.b_live,
            "throttles": requests.throttles - requests.last_throttles,
            "errors": requests.b_errors,
        }
        requests.last_requests = requests.requests
        requests.last_invocations = requests.invocations
        requests.last_cold = requests.cold_starts
        requests.last_throttles = requests.throttles
        requests.b_running = requests.running
        requests.b_errors = 0
        return entry

    def _stream_entry(self, lane: _Lane, now: float, t: float) -> dict[str, Any]:
        """A stream lane's entry of the bucket ending at ``now``
        (:data:`STREAM_SERIES_KEYS`)."""
        mapping = lane.stream_mapping
        engine = self.streams
        name = lane.source_name
        checkpoints = mapping.checkpoints
        lag_total = 0
        lag_max = 0
        for shard in range(lane.shard_count):
            checkpoint = checkpoints.get(shard)
            if checkpoint != lane.checkpoints[shard]:
                lane.checkpoints[shard] = checkpoint
                lane.moved[shard] = now
            lag = engine.count_after(name, shard, checkpoint)
            lane.lags[shard] = lag
            lag_total += lag
            lag_max = lag if lag > lag_max else lag_max
        age = mapping.take_max_iterator_age()
        if age is not None:
            age = round(age, 3)
            if lane.max_iterator_age is None or age > lane.max_iterator_age:
                lane.max_iterator_age = age
        entry = self._invocation_entry(lane, mapping, now, t)
        entry.update({
            "sent": lane.b_sent,
            "received": lane.b_received,
            "processed": mapping.processed_records - lane.last_processed,
            "discarded": mapping.discarded_records - lane.last_discarded,
            "expired": mapping.expired_records - lane.last_expired,
            "on_failure": lane.b_on_failure,
            "iterator_age_ms": age,
            "checkpoint_lag": lag_total,
            "max_shard_lag": lag_max,
        })
        lane.last_processed = mapping.processed_records
        lane.last_discarded = mapping.discarded_records
        lane.last_expired = mapping.expired_records
        return entry

    def _summary(self, lane: _Lane) -> dict[str, Any]:
        """A lane's summary (see :data:`SUMMARY_KEYS`, :data:`STREAM_SUMMARY_KEYS`)."""
        if lane.stream:
            return self._stream_summary(lane)
        if lane.events is not None:
            return self._async_summary(lane)
        series = lane.series
        mapping = lane.mapping
        counts = self.engine.counts(lane.queue)
        duration = self.end
        downstream = lane.fn.downstream
        processed = sum(e["processed"] for e in series)
        return {
            "duration": duration,
            "total_invocations": mapping.invocations,
            "total_cold_starts": lane.fn.environments.cold_starts,
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
            "messages_filtered": mapping.filtered_records,
            "messages_queued": counts.total,
            "throughput": round(processed / duration, 6) if duration > 0 else 0.0,
            "max_oldest_age": lane.max_oldest_age,
            "downstream_requests": 0 if downstream is None else downstream.requests,
            "downstream_failures": 0 if downstream is None else downstream.failures,
            # a capacity-bound downstream only: other scenarios read as before
            **({"downstream_concurrency": downstream.concurrency_figures(duration)}
               if downstream is not None and downstream.spec.concurrency is not None
               else {}),
        }

    def _async_summary(self, lane: _Lane) -> dict[str, Any]:
        """An asynchronous lane's summary (see :data:`ASYNC_SUMMARY_KEYS`)."""
        series = lane.series
        counts = self.engine.counts(lane.queue)
        duration = self.end
        downstream = lane.fn.downstream
        succeeded = sum(e["succeeded"] for e in series)

        def total(key: str) -> int:
            return sum(e[key] for e in series)

        return {
            "duration": duration,
            "total_invocations": total("invocations"),
            "total_cold_starts": total("cold_starts"),
            "total_errors": total("errors"),
            "total_partial": total("partial"),
            "total_throttles": total("throttles"),
            "peak_concurrency": max((e["concurrency"] for e in series), default=0),
            "peak_environments": max((e["environments"] for e in series), default=0),
            "events_sent": total("sent"),
            "events_received": total("received"),
            "events_succeeded": succeeded,
            "events_retried": total("retried"),
            "events_dropped": total("dropped"),
            "events_dropped_event_age_exceeded": total("dropped_event_age_exceeded"),
            "events_dropped_retries_exhausted": total("dropped_retries_exhausted"),
            "events_dropped_zero_reserved_concurrency": total(
                "dropped_zero_reserved_concurrency"),
            "events_queued": counts.total,
            "on_success_records": lane.on_success,
            "on_failure_records": lane.on_failure,
            "dead_lettered": lane.dead_letters,
            "throughput": round(succeeded / duration, 6) if duration > 0 else 0.0,
            "max_oldest_age": lane.max_oldest_age,
            "downstream_requests": 0 if downstream is None else downstream.requests,
            "downstream_failures": 0 if downstream is None else downstream.failures,
        }

    def _request_summary(self, requests: _Requests) -> dict[str, Any]:
        """A function's requests' summary (see :data:`REQUEST_SUMMARY_KEYS`)."""
        series = requests.series
        return {
            "duration": self.end,
            "total_requests": requests.requests,
            "total_invocations": requests.invocations,
            "total_cold_starts": requests.cold_starts,
            "total_errors": sum(e["errors"] for e in series),
            "total_throttles": requests.throttles,
            "peak_concurrency": max((e["concurrency"] for e in series), default=0),
            "peak_environments": max((e["environments"] for e in series), default=0),
            "throttle_rate": (round(requests.throttles / requests.requests, 6)
                              if requests.requests else 0.0),
        }

    def _stream_summary(self, lane: _Lane) -> dict[str, Any]:
        """A stream lane's summary (see :data:`STREAM_SUMMARY_KEYS`)."""
        series = lane.series
        mapping = lane.stream_mapping
        duration = self.end
        downstream = lane.fn.downstream
        processed = mapping.processed_records
        discarded = mapping.discarded_records
        expired = mapping.expired_records
        stalled = sum(
            1 for shard in range(lane.shard_count)
            if lane.lags[shard] > 0 and duration - lane.moved[shard] >= STALL_WINDOW
        )
        return {
            "duration": duration,
            "total_invocations": mapping.invocations,
            "total_cold_starts": lane.fn.environments.cold_starts,
            "total_errors": sum(e["errors"] for e in series),
            "total_partial": sum(e["partial"] for e in series),
            "total_throttles": mapping.throttles,
            "peak_concurrency": max((e["concurrency"] for e in series), default=0),
            "peak_environments": max((e["environments"] for e in series), default=0),
            "records_sent": lane.sent,
            "records_received": lane.received,
            "records_processed": processed,
            "records_discarded": discarded,
            "records_expired": expired,
            "records_unsettled": lane.sent - processed - discarded - expired,
            "on_failure_records": lane.on_failure,
            "records_behind": sum(lane.lags),
            "max_shard_lag": max(lane.lags, default=0),
            "stalled_shards": stalled,
            "throughput": round(processed / duration, 6) if duration > 0 else 0.0,
            "max_iterator_age_ms": lane.max_iterator_age,
            "downstream_requests": 0 if downstream is None else downstream.requests,
            "downstream_failures": 0 if downstream is None else downstream.failures,
        }

    def _account_summary(self, lanes: list[dict[str, Any]]) -> dict[str, Any]:
        """An account-wide summary (see :data:`ACCOUNT_SUMMARY_KEYS`,
        :data:`APP_SUMMARY_KEYS`) from its lanes' summaries."""
        series = self.series
        duration = self.end
        out: dict[str, Any] = {}
        for key in APP_SUMMARY_KEYS if self.app else ACCOUNT_SUMMARY_KEYS:
            if key == "duration":
                out[key] = duration
            elif key == "peak_concurrency":
                out[key] = max((e["concurrency"] for e in series), default=0)
            elif key == "peak_unreserved_concurrency":
                out[key] = max((e["unreserved_concurrency"] for e in series), default=0)
            elif key == "peak_environments":
                out[key] = max((e["environments"] for e in series), default=0)
            elif key == "messages_published":
                out[key] = sum(e["published"] for e in series)
            elif key == "throughput":
                processed = sum(s["messages_processed"] for s in lanes)
                out[key] = round(processed / duration, 6) if duration > 0 else 0.0
            elif key == "max_oldest_age":  # the account's oldest is the oldest of a queue
                out[key] = max((s[key] for s in lanes), default=0.0)
            else:  # (a function's requests have no "total_partial")
                out[key] = sum(s.get(key, 0) for s in lanes)
        if self.world.buses:
            out["events_put"] = sum(s.puts for s in self.sources.values() if s.bus)
        return out
