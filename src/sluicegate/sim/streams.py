"""The discrete-event driver of stream scenarios: the core's stream mapping on a virtual
clock.

It does for a :class:`~sluicegate.core.stream_mapping.StreamMapping` what
:mod:`sluicegate.runtime.stream_runner` does in real time, on the in-memory stream engine
(:class:`~sluicegate.store.memory_streams.MemoryStreams`) reading the virtual clock: ask
:meth:`~StreamMapping.poll` what to do, perform the actions, report back (``fetched``,
``finished``), come back at :meth:`~StreamMapping.next_wakeup`. Every mapping rule (lanes
per partition key, batching, retries, bisection, age and retry limits, retention,
checkpoints, throttles) is the core's; what is modelled here is the world: producers and
their partition keys, poison records, handler durations, cold starts, injected errors, a
downstream.

How the actions are performed:

- ``Fetch``: read the shard at once (no GetRecords latency, no per-shard read throughput
  limit) after the core's position, or at its starting position, exactly as the runtime
  does, including telling the core when retention dropped the records after its position.
- ``StreamInvoke``: an execution environment (warm or cold), a duration, an outcome drawn
  at the start, an end event. A batch holding a poison record fails (see
  :class:`~sluicegate.sim.stream_scenario.PoisonSpec`).
- ``SendToDestination``: counted (``on_failure``); the record itself is not kept.
- ``Checkpoint``: stored in the engine; the series' checkpoint lag is read from it.

Events at one instant run in the order they were scheduled, bucket boundaries first, then
scenario changes (error windows, pauses, poison records), as in the queue simulator.

Memory: the series is aggregated per bucket and nothing is kept per invocation or per
record, except what the in-memory stream holds within its retention period (at least 24
hours, Kinesis's minimum), and the core's bounded read-ahead.
"""

from __future__ import annotations

import bisect
import gc
import heapq
import itertools
import random
from itertools import accumulate
from typing import Any, Protocol

from sluicegate.core.pool import ConcurrencyPool
from sluicegate.core.results import SUCCESS_OUTCOME
from sluicegate.core.results import exception_outcome as stream_exception_outcome
from sluicegate.core.results import interpret_response as interpret_stream_response
from sluicegate.core.results import timeout_outcome as stream_timeout_outcome
from sluicegate.core.stream_mapping import StreamMapping
from sluicegate.core.streams import (
    Checkpoint,
    Fetch,
    SendToDestination,
    StreamBatch,
    StreamInvoke,
    StreamRecord,
    shard_for_partition_key,
)
from sluicegate.core.types import BatchOutcome, OutcomeKind
from sluicegate.sim.driver import SimResult, simulate
from sluicegate.sim.models import (
    Arrivals,
    Downstream,
    Environments,
    ErrorWindows,
    sampler,
    schedule_controls,
)
from sluicegate.sim.scenario import DEFAULT_RAISE_AT, Scenario
from sluicegate.sim.stream_scenario import (
    STREAM_RECORD_OVERHEAD,
    StreamProducerSpec,
    StreamScenario,
    load_stream_scenario,
    partition_key,
)
from sluicegate.sim.topic_scenario import TopicScenario
from sluicegate.store.memory_streams import MemoryStreams

__all__ = [
    "STALL_WINDOW",
    "STREAM_SERIES_KEYS",
    "STREAM_SUMMARY_KEYS",
    "StreamObserver",
    "simulate_any",
    "simulate_stream",
]

STREAM_SERIES_KEYS: tuple[str, ...] = (
    "t",
    "invocations",
    "cold_starts",
    "concurrency",
    "environments",
    "limit",
    "throttles",
    "errors",
    "partial",
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
- ``limit``: ``shard_count x parallelization_factor``, the most batches the mapping
  runs at once;
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

SAME_INSTANT_LIMIT = 10_000
"""Most consecutive mapping turns at one instant before the driver declares the core
stuck."""

_END = 0
_PRODUCE = 1
_WAKE = 2
_BUCKET = 3
_ERRORS = 4
_PAUSE = 5
_RESUME = 6
_POISON = 7

_INF = float("inf")
_DATA = b""
_INJECTED = "InjectedError: injected by the scenario's error window"
_POISONED = "PoisonRecord: a poison record of the scenario"
_DOWNSTREAM = "DownstreamError: the downstream failed under load"


class StreamObserver(Protocol):
    """What a test (or a tool) may watch in a run; both methods are called synchronously
    at the simulated instant. Keep nothing per record across a long run."""

    def invoked(self, now: float, batch: StreamBatch) -> None:
        """``batch`` starts being invoked at ``now``."""

    def finished(self, now: float, batch: StreamBatch, outcome: BatchOutcome) -> None:
        """The invocation of ``batch`` ended at ``now`` with ``outcome`` (before the core
        is told)."""


def simulate_stream(
    scenario: StreamScenario | dict[str, Any],
    *,
    observer: StreamObserver | None = None,
) -> SimResult:
    """Run a stream scenario in virtual time.

    Parameters:
        scenario: a :class:`StreamScenario`, or a plain dict that
            :func:`~sluicegate.sim.load_stream_scenario` accepts.
        observer: told of every invocation's start and end (for tests).

    Returns:
        The :class:`~sluicegate.sim.SimResult` (series keys :data:`STREAM_SERIES_KEYS`,
        summary keys :data:`STREAM_SUMMARY_KEYS`): a pure function of the scenario.

    Raises:
        ScenarioError: a dict that is not a valid stream scenario.
    """
    if not isinstance(scenario, StreamScenario):
        scenario = load_stream_scenario(scenario)
    collecting = gc.isenabled()
    gc.disable()  # as the queue simulator: no cycles are made, the collector only costs
    try:
        return _StreamSimulation(scenario, observer).run()
    finally:
        if collecting:
            gc.enable()


def simulate_any(scenario: Scenario | StreamScenario | TopicScenario) -> SimResult:
    """Run a queue or topic scenario (:func:`~sluicegate.sim.simulate`) or a stream
    scenario (:func:`simulate_stream`), whichever it is."""
    if isinstance(scenario, StreamScenario):
        return simulate_stream(scenario)
    return simulate(scenario)


class _Keys:
    """Draws a producer's partition keys and routes them to shards (cached per key)."""

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


class _StreamSimulation:
    """One run: build, :meth:`run`, discard."""

    def __init__(self, scenario: StreamScenario, observer: StreamObserver | None) -> None:
        self.scenario = scenario
        self.observer = observer
        self.now = 0.0
        self.end = scenario.duration
        seed = scenario.seed

        def stream(purpose: str) -> random.Random:
            return random.Random(f"sluicegate-sim:{seed}:{purpose}")

        self.heap: list[tuple[Any, ...]] = []
        self.next_seq = itertools.count(1).__next__
        self.wake_at = _INF

        # --- the stream
        sconfig = scenario.stream_config()
        self.stream_name = sconfig.name
        self.shard_count = sconfig.shard_count
        self.engine = MemoryStreams(self._clock)
        self.engine.ensure_stream(sconfig)
        size = scenario.stream.record_size
        self.record_size = (size + 2) // 3 * 4 + STREAM_RECORD_OVERHEAD
        self.poison: dict[int, str] = {}
        """Sequence number of each poison record put -> its kind."""

        # --- function and mapping
        f = scenario.function
        fconfig = scenario.function_config()
        self.pool = ConcurrencyPool(scenario.account_config())
        self.pool.register(fconfig)
        mconfig = scenario.mapping_config()
        self.mapping_name = mconfig.name
        self.mapping = StreamMapping(mconfig, sconfig, pool=self.pool, now=0.0)
        self.lanes = sconfig.shard_count * mconfig.parallelization_factor
        self.report_failures = mconfig.report_batch_item_failures
        self.timeout = fconfig.timeout
        self.duration = sampler(f.duration, stream("durations"))
        self.per_record = f.duration_per_record
        self.cold_start = sampler(f.cold_start, stream("cold-starts"))
        self.environments = Environments(f.idle_timeout)
        self.rand = stream("errors").random
        self.errors = ErrorWindows(f.errors)
        spec = scenario.downstream
        self.downstream = None if spec is None else Downstream(spec, stream("downstream"))
        self.producers = [
            (Arrivals(p.arrivals, self.end, stream(f"producer:{i}")),
             _Keys(p, self.shard_count, stream(f"keys:{i}")))
            for i, p in enumerate(scenario.producers)
        ]

        # --- results
        self.series: list[dict[str, Any]] = []
        self.bucket_start = 0.0
        self.running = 0
        self.b: dict[str, int] = {}
        self._reset_bucket()
        self.sent = 0
        self.received = 0
        self.on_failure = 0
        self.last = {"throttles": 0, "processed": 0, "discarded": 0, "expired": 0}
        self.max_iterator_age: float | None = None
        self.checkpoints: list[int | None] = [None] * self.shard_count
        self.moved = [0.0] * self.shard_count
        """When each shard's checkpoint last moved (bucket granularity)."""
        self.lags = [0] * self.shard_count

    def _clock(self) -> float:
        return self.now

    def _reset_bucket(self) -> None:
        self.b = {"invocations": 0, "cold_starts": 0, "concurrency": self.running,
                  "environments": self.environments.live, "errors": 0, "partial": 0,
                  "sent": 0, "received": 0, "on_failure": 0}

    # ------------------------------------------------------------------ run

    def run(self) -> SimResult:
        scenario = self.scenario
        end = self.end
        heap = self.heap
        seq = self.next_seq
        control = schedule_controls(
            heap, end=end, bucket=scenario.bucket, windows=scenario.function.errors,
            pauses=scenario.mapping.pauses, kinds=(_BUCKET, _ERRORS, _PAUSE, _RESUME),
        )
        for poison in scenario.stream.poison:
            if poison.at < end:
                heapq.heappush(heap, (poison.at, control(), _POISON, poison))
        for index, (arrivals, _) in enumerate(self.producers):
            first = arrivals.first()
            if first is not None:
                heapq.heappush(heap, (first, seq(), _PRODUCE, index))
        heapq.heappush(heap, (0.0, seq(), _WAKE))
        self.wake_at = 0.0
        self._loop()
        return SimResult(scenario.to_dict(), self._summary(), self.series)

    def _loop(self) -> None:
        heap = self.heap
        pop = heapq.heappop
        push = heapq.heappush
        seq = self.next_seq
        end = self.end
        mapping = self.mapping
        poll = mapping.poll
        finished = mapping.finished
        next_wakeup = mapping.next_wakeup
        environments = self.environments
        observer = self.observer
        b = self.b
        same = 0
        last = -1.0
        while heap:
            event = pop(heap)
            now = event[0]
            if now >= end:
                break
            self.now = now
            kind = event[2]
            if kind == _END:
                self.running -= 1
                environments.release(now)
                batch, outcome = event[3], event[4]
                if outcome.kind is OutcomeKind.ERROR:
                    b["errors"] += 1
                elif outcome.kind is OutcomeKind.PARTIAL:
                    b["partial"] += 1
                if event[5]:
                    self.downstream.done()  # type: ignore[union-attr]
                if observer is not None:
                    observer.finished(now, batch, outcome)
                finished(now, batch.id, outcome)
            elif kind == _PRODUCE:
                arrivals, keys = self.producers[event[3]]
                draw = keys.draw
                self._put([draw() for _ in range(arrivals.count)])
                after = arrivals.next(now)
                if after is not None:
                    push(heap, (after, seq(), _PRODUCE, event[3]))
                continue  # the shards' readers fetch on their own cadence
            elif kind == _POISON:
                spec = event[3]
                shard = shard_for_partition_key(spec.key, self.shard_count)
                (number,) = self._put([(spec.key, shard)])
                self.poison[number] = spec.kind
                continue
            elif kind == _WAKE:
                if now != self.wake_at:
                    continue
                if now == last:
                    same += 1
                    if same > SAME_INSTANT_LIMIT:
                        raise RuntimeError(f"the stream mapping makes no progress at t={now}")
                else:
                    same = 0
                    last = now
                self.wake_at = _INF
            elif kind == _BUCKET:
                self._close_bucket(now)
                b = self.b
                continue
            elif kind == _ERRORS:
                self.errors.toggle(event[3], event[4])
                continue
            elif kind == _PAUSE:
                mapping.pause(now)
            else:  # _RESUME
                mapping.resume(now)

            # ---- the mapping's turn: poll and perform until nothing more is reported now
            while True:
                fetched = False
                for action in poll(now):
                    if isinstance(action, StreamInvoke):
                        self._invoke(now, action.batch)
                    elif isinstance(action, Fetch):
                        self._fetch(now, action)
                        fetched = True
                    elif isinstance(action, Checkpoint):
                        self.engine.set_checkpoints(
                            self.mapping_name, {action.shard: action.sequence_number})
                    elif isinstance(action, SendToDestination):
                        b["on_failure"] += 1
                        self.on_failure += 1
                if not fetched:
                    break
            wake = next_wakeup(now)
            if wake is not None and wake < self.wake_at:
                self.wake_at = wake
                push(heap, (wake, seq(), _WAKE))
        self.now = end
        self._close_bucket(end)

    # ------------------------------------------------------------------ actions

    def _put(self, records: list[tuple[str, int]]) -> list[int]:
        """Put records (``(key, shard)`` pairs) into the stream; their sequence numbers."""
        numbers = self.engine.put(self.stream_name,
                                  [(shard, key, _DATA) for key, shard in records])
        self.sent += len(records)
        self.b["sent"] += len(records)
        return numbers

    def _fetch(self, now: float, action: Fetch) -> None:
        """Read a shard as the runtime's stream runner does, and report it."""
        engine = self.engine
        name = self.stream_name
        shard = action.shard
        after = action.after_sequence
        position: int | None = None
        got: list[Any] = []
        if after is None and action.starting_position == "LATEST":
            position = engine.latest_sequence(name, shard)
        else:
            latest = engine.latest_sequence(name, shard)
            at = (action.starting_position_timestamp
                  if after is None and action.starting_position == "AT_TIMESTAMP" else None)
            got = engine.get_records(name, shard, after, at, action.max_records)
            if not got and after is not None and latest > after:
                position = latest  # retention dropped what lay after the position
        size = self.record_size
        records = [StreamRecord(m.shard, m.sequence_number, m.partition_key, None,
                                m.approximate_arrival, size) for m in got]
        self.received += len(records)
        self.b["received"] += len(records)
        self.mapping.fetched(now, shard, records, position=position)

    def _invoke(self, now: float, batch: StreamBatch) -> None:
        b = self.b
        b["invocations"] += 1
        self.running += 1
        b["concurrency"] = max(b["concurrency"], self.running)
        environments = self.environments
        if environments.acquire(now):
            b["cold_starts"] += 1
            b["environments"] = max(b["environments"], environments.live)
            start = now + self.cold_start()
        else:
            start = now
        duration, outcome, called = self._model(now, batch, self.duration())
        if self.observer is not None:
            self.observer.invoked(now, batch)
        heapq.heappush(self.heap, (start + duration, self.next_seq(), _END, batch, outcome,
                                   called))

    def _model(self, now: float, batch: StreamBatch, duration: float
               ) -> tuple[float, BatchOutcome, bool]:
        """The invocation's duration (init excluded), outcome, and whether it called the
        downstream.

        In order: ``duration_per_record``; a poison record of kind ``raise`` (the handler
        throws after :data:`~sluicegate.sim.scenario.DEFAULT_RAISE_AT` of its run, a
        tenth, as an injected ``raise`` does by default); an injected ``raise`` or ``timeout``; else the downstream call, then
        reported failures (poison records of kind ``batch_item_failure``, injected
        batch item failures, failed downstream requests), judged by the core's
        :func:`~sluicegate.core.streams.interpret_stream_response`. Anything longer than
        the function timeout ends there as an error.
        """
        records = batch.records
        if self.per_record:
            duration += self.per_record * len(records)
        errors = self.errors
        rand = self.rand
        outcome: BatchOutcome = SUCCESS_OUTCOME
        called = False
        failed: list[str] = []
        poison = self.poison
        thrown = False
        if poison:
            for r in records:
                kind = poison.get(r.sequence_number)
                if kind == "raise":
                    thrown = True
                    break
                if kind is not None:
                    failed.append(str(r.sequence_number))
        if thrown:
            duration *= DEFAULT_RAISE_AT
            outcome = stream_exception_outcome(batch, _POISONED)
        elif errors.p_raise and rand() < errors.p_raise:
            duration *= errors.raise_at
            outcome = stream_exception_outcome(batch, _INJECTED)
        elif errors.p_timeout and rand() < errors.p_timeout:
            duration = self.timeout
            outcome = stream_timeout_outcome(batch)
        else:
            downstream = self.downstream
            if downstream is not None:
                spec = downstream.spec
                per_record = spec.per == "record"
                called = spec.concurrency is not None
                latency, lost = downstream.call(now, len(records) if per_record else 1)
                duration += latency
                if lost:
                    if spec.error_kind == "batch_item_failure":
                        chosen = (sorted(self._sample(len(records), lost)) if per_record
                                  else range(len(records)))
                        failed.extend(str(records[i].sequence_number) for i in chosen)
                    else:
                        outcome = stream_exception_outcome(batch, _DOWNSTREAM)
            if errors.p_item and outcome is SUCCESS_OUTCOME:
                p_item = errors.p_item
                failed.extend(str(r.sequence_number) for r in records if rand() < p_item)
            if failed and outcome is SUCCESS_OUTCOME:
                response = {"batchItemFailures": [{"itemIdentifier": i}
                                                  for i in dict.fromkeys(failed)]}
                outcome = interpret_stream_response(
                    response, batch, report_batch_item_failures=self.report_failures)
        if duration > self.timeout:
            duration = self.timeout
            outcome = stream_timeout_outcome(batch)
        return duration, outcome, called

    def _sample(self, population: int, count: int) -> list[int]:
        """``count`` distinct indices below ``population``, drawn with the error stream."""
        chosen: list[int] = []
        pool = list(range(population))
        rand = self.rand
        for _ in range(min(count, population)):
            i = int(rand() * len(pool))
            chosen.append(pool[i])
            pool[i] = pool[-1]
            pool.pop()
        return chosen

    # ------------------------------------------------------------------ statistics

    def _close_bucket(self, now: float) -> None:
        """Append the entry of the bucket ending at ``now`` (see
        :data:`STREAM_SERIES_KEYS`)."""
        mapping = self.mapping
        engine = self.engine
        name = self.stream_name
        checkpoints = mapping.checkpoints
        lag_total = 0
        lag_max = 0
        for shard in range(self.shard_count):
            checkpoint = checkpoints.get(shard)
            if checkpoint != self.checkpoints[shard]:
                self.checkpoints[shard] = checkpoint
                self.moved[shard] = now
            lag = engine.count_after(name, shard, checkpoint)
            self.lags[shard] = lag
            lag_total += lag
            lag_max = lag if lag > lag_max else lag_max
        age = mapping.take_max_iterator_age()
        if age is not None:
            age = round(age, 3)
            if self.max_iterator_age is None or age > self.max_iterator_age:
                self.max_iterator_age = age
        counters = {
            "throttles": mapping.throttles,
            "processed": mapping.processed_records,
            "discarded": mapping.discarded_records,
            "expired": mapping.expired_records,
        }
        b = self.b
        entry: dict[str, Any] = {
            "t": round(self.bucket_start, 6),
            "invocations": b["invocations"],
            "cold_starts": b["cold_starts"],
            "concurrency": b["concurrency"],
            "environments": b["environments"],
            "limit": self.lanes,
            "errors": b["errors"],
            "partial": b["partial"],
            "sent": b["sent"],
            "received": b["received"],
            "on_failure": b["on_failure"],
            "iterator_age_ms": age,
            "checkpoint_lag": lag_total,
            "max_shard_lag": lag_max,
        }
        for key, value in counters.items():
            entry[key] = value - self.last[key]
            self.last[key] = value
        self.series.append({key: entry[key] for key in STREAM_SERIES_KEYS})
        self.environments.reclaim(now)
        self._reset_bucket()
        self.bucket_start = now

    def _summary(self) -> dict[str, Any]:
        series = self.series
        mapping = self.mapping
        duration = self.end
        downstream = self.downstream
        processed = mapping.processed_records
        discarded = mapping.discarded_records
        expired = mapping.expired_records
        stalled = sum(
            1 for shard in range(self.shard_count)
            if self.lags[shard] > 0 and duration - self.moved[shard] >= STALL_WINDOW
        )
        return {
            "duration": duration,
            "total_invocations": mapping.invocations,
            "total_cold_starts": self.environments.cold_starts,
            "total_errors": sum(e["errors"] for e in series),
            "total_partial": sum(e["partial"] for e in series),
            "total_throttles": mapping.throttles,
            "peak_concurrency": max((e["concurrency"] for e in series), default=0),
            "peak_environments": max((e["environments"] for e in series), default=0),
            "records_sent": self.sent,
            "records_received": self.received,
            "records_processed": processed,
            "records_discarded": discarded,
            "records_expired": expired,
            "records_unsettled": self.sent - processed - discarded - expired,
            "on_failure_records": self.on_failure,
            "records_behind": sum(self.lags),
            "max_shard_lag": max(self.lags, default=0),
            "stalled_shards": stalled,
            "throughput": round(processed / duration, 6) if duration > 0 else 0.0,
            "max_iterator_age_ms": self.max_iterator_age,
            "downstream_requests": 0 if downstream is None else downstream.requests,
            "downstream_failures": 0 if downstream is None else downstream.failures,
        }
