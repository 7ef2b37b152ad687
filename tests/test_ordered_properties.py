"""Ordered sources under random workloads, end to end: the real Runtime, real stores.

Hypothesis generates FIFO and stream workloads (groups or partition keys, batch sizes,
concurrency, failure plans per message or record, the odd handler timeout, restarts of
the runtime mid-run), runs them through :class:`~sluicegate.runtime.driver.Runtime` on
the memory store (and a few on SQLite), and then checks the recorded history against
what AWS allows. Nothing is simulated: handlers run on the invoker's threads, the store
holds the messages, records and checkpoints, and a restart is a new Runtime on the same
store.

History: the handler appends every invocation's start and end, and every record it
processes, to one log under a lock; a thin proxy around the store appends the runtime's
deletes (with their results), checkpoints and on-failure sends to the same log. A timed
out invocation processes nothing (the handler sleeps past the function's timeout first,
as an invocation Lambda kills), so it counts as failed.

What "settled" means: a FIFO message is settled when a delete of it succeeded in the
store (its handle was current); a stream record when an invocation's outcome let it go
(success, or before the lowest reported sequence number) or a discard named it in an
on-failure record. The handler's view of an outcome (what it returned) is compared with
what the runtime then did, so the runtime cannot silently drop or add settlements.

FIFO properties (lambda-semantics.md 5):

- F1 deletes: the runtime asks the store to delete exactly the messages the outcome lets
  go (all on success; on a partial response, per group, those before the group's first
  reported message; none on an error or timeout), whatever the restarts.
- F2 nothing lost: every accepted message (a re-sent deduplication id is accepted as a
  duplicate, not stored) is settled exactly once or sits in the dead-letter queue, never
  both; the source queue ends empty.
- F3 dead-lettering: a dead-lettered message never succeeded in an invocation whose
  delete went through, was delivered at most ``max_receive_count`` times (exactly that
  often without restarts), and every always-failing message ends there.
- F4 group order: within an invocation a group's messages are in send order with no gap
  except dead-lettered ones; when an invocation starts, every earlier message of each of
  its groups is settled or dead-lettered already.
- F5 redelivery only where AWS allows it: a settled message is never delivered again
  (its settling delivery is its last); a message the handler processed successfully is
  delivered again only when the runtime's delete of it came too late (the visibility
  timeout had ended and the message had been received again: at-least-once). A restart
  is not a licence: the runtime stops gracefully, so it deletes what it processed first.
- F6 one batch in flight per group, and no more invocations at once than
  ``maximum_concurrency`` (timed-out invocations excluded: their thread outlives them).

Stream properties (lambda-semantics.md 6):

- S1 checkpoints: a stored checkpoint never passes a record that is not settled in the
  same run (or at or below the checkpoint the run started from), and the on-failure record
  of a discarded batch is sent before a checkpoint passes it.
- S2 key order: within an invocation a key's records are consecutive and in sequence
  order; when an invocation starts, every earlier record of each of its keys is settled
  in this run or lies at or below the checkpoint the run started from.
- S3 redelivery only where AWS allows it: within a run a settled record is never
  delivered again; a record is never delivered at or below the checkpoint its run
  started from; so a record is processed again only after a restart, when it lay above
  the stored checkpoint (at-least-once).
- S4 nothing lost: every record is settled (succeeded or discarded) and every shard's
  checkpoint reaches its last record.
- S5 failure accounting: every on-failure record describes a batch that was invoked and
  failed, each of its records was invoked at least ``maximum_retry_attempts + 1`` times,
  and every always-failing record was discarded.
- S6 one batch in flight per key (per lane), at most ``parallelization_factor`` per
  shard.

Speed: visibility timeouts are 1 s and function timeouts 1 s (the shortest allowed); the
stream core's retry delay and shard poll cadence are shortened for the test's duration
(timers only, no rule changes). Examples are small; the file runs in about a minute.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

import sluicegate
import sluicegate.core.stream_mapping as stream_mapping
from sluicegate.partial import process_batch, process_fifo_batch
from sluicegate.runtime.driver import Runtime
from sluicegate.store import open_store
from sluicegate.store.base import PutEntry, SendEntry, Store

FUNCTION_TIMEOUT = 1
VISIBILITY_TIMEOUT = 1
TIMEOUT_SLEEP = 1.4
"""A planned timeout sleeps this long, past the function's timeout, then returns having
processed nothing (Lambda would have killed it)."""
FINAL_RUN_LIMIT = 60.0

PROPERTY_SETTINGS = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    # SLUICEGATE_NO_SHRINK=1 reports the first failing example at once: shrinking a
    # workload that takes seconds per run can take many minutes
    phases=[Phase.explicit, Phase.reuse, Phase.generate]
    if os.environ.get("SLUICEGATE_NO_SHRINK") else list(Phase),
)
SQLITE_SETTINGS = settings(PROPERTY_SETTINGS, max_examples=4)


@contextlib.contextmanager
def fast_stream_timers() -> Iterator[None]:
    """Shorten the stream core's timers (retry delay, shard poll cadence) for the test."""
    with (
        mock.patch.object(stream_mapping, "RETRY_DELAY", 0.05),
        mock.patch.object(stream_mapping, "POLL_INTERVAL", 0.1),
        mock.patch.object(stream_mapping, "FULL_FETCH_INTERVAL", 0.05),
    ):
        yield


# ---------------------------------------------------------------------- shared machinery


@dataclass(frozen=True)
class Plan:
    """How one message or record behaves: fail its first ``fail_times`` runs, or always;
    ``timeout``: the first invocation holding it times out."""

    fail_times: int = 0
    always: bool = False
    timeout: bool = False


OK = Plan()


@dataclass
class Invocation:
    id: int
    run: int
    items: list[Any]  # per record: FIFO (group, n, message_id, handle); stream (shard, seq)
    start: int = -1  # position of its start in the log
    end: int | None = None
    timed_out: bool = False
    error: bool = False
    failed: set[str] | None = None  # item identifiers of a partial response
    settled: list[Any] = field(default_factory=list)  # items the outcome lets go


class History:
    """The log everything appends to, under one lock, and the restart machinery."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.log: list[tuple[Any, ...]] = []
        self.invocations: list[Invocation] = []
        self.runs = 0  # attempts at processing, per key: drives failure plans
        self.attempts: Counter[Any] = Counter()
        self.deliveries: Counter[Any] = Counter()
        self.run = 0
        self.stop_after: int | None = None
        self.stopper: Callable[[], None] | None = None

    def append(self, *entry: Any) -> int:
        with self.lock:
            self.log.append(entry)
            return len(self.log) - 1

    def begin(self, items: list[Any], keys: list[Any], plans: dict[Any, Plan]) -> tuple[
        Invocation, bool
    ]:
        """Register an invocation; returns it and whether it is planned to time out."""
        with self.lock:
            inv = Invocation(len(self.invocations), self.run, items)
            self.invocations.append(inv)
            inv.start = len(self.log)
            self.log.append(("start", inv.id))
            timeout = False
            for key in keys:
                self.deliveries[key] += 1
                if plans.get(key, OK).timeout and self.deliveries[key] == 1:
                    timeout = True
            if self.stop_after is not None and len(self.invocations) >= self.stop_after:
                self.stop_after = None
                if self.stopper is not None:
                    self.stopper()
            return inv, timeout

    def finish(self, inv: Invocation) -> None:
        with self.lock:
            inv.end = len(self.log)
            self.log.append(("end", inv.id))

    def attempt(self, key: Any, plan: Plan) -> None:
        """One run of the record handler on ``key``; raises per its plan."""
        with self.lock:
            self.attempts[key] += 1
            failing = plan.always or self.attempts[key] <= plan.fail_times
        if failing:
            raise RuntimeError(f"planned failure of {key}")


class RecordingStore:
    """A store as the runtime sees it, logging deletes, checkpoints and on-failure sends."""

    def __init__(self, inner: Store, history: History, destination: str | None = None):
        self._inner = inner
        self._history = history
        self._destination = destination

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def delete_many(self, queue: str, handles: Any) -> list[bool]:
        handles = tuple(handles)
        self._history.append("delete_requested", queue, handles)
        done = await self._inner.delete_many(queue, handles)
        self._history.append("deleted", queue, handles, tuple(done))
        return done

    async def set_checkpoints(self, mapping: str, checkpoints: Any) -> None:
        self._history.append("checkpoint", self._history.run, dict(checkpoints))
        await self._inner.set_checkpoints(mapping, checkpoints)

    async def send(self, queue: str, body: str, **kwargs: Any) -> Any:
        if queue == self._destination:
            self._history.append("on_failure", self._history.run, json.loads(body))
        return await self._inner.send(queue, body, **kwargs)


Restart = tuple[str, float]
"""("after", seconds) or ("invocations", n): when a run is stopped to restart."""

restarts_strategy = st.lists(
    st.one_of(
        st.tuples(st.just("after"), st.floats(0.15, 1.2)),
        st.tuples(st.just("invocations"), st.integers(1, 8).map(float)),
    ),
    max_size=2,
)


async def run_with_restarts(
    app: sluicegate.App,
    store: Any,
    history: History,
    restarts: list[Restart],
    before_run: Callable[[], Any] | None = None,
) -> list[Any]:
    """Run ``app`` once per restart point (each stopped early), then until drained.

    Returns each run's summary. ``before_run`` (a coroutine function) runs before each
    Runtime is built, to note what a restarted runtime starts from.
    """
    loop = asyncio.get_running_loop()
    summaries = []
    plan = [*restarts, ("final", FINAL_RUN_LIMIT)]
    for kind, value in plan:
        history.run += 1
        if before_run is not None:
            await before_run()
        runtime = Runtime(app, store, grace_period=10.0)
        duration = value if kind in ("after", "final") else FINAL_RUN_LIMIT
        with history.lock:
            if kind == "invocations":
                history.stop_after = len(history.invocations) + int(value)
                history.stopper = lambda rt=runtime: loop.call_soon_threadsafe(
                    rt.stop, "restart requested by the test"
                )
            else:
                history.stop_after, history.stopper = None, None
        summary = await runtime.run(until_empty=True, duration=duration)
        with history.lock:
            history.stop_after, history.stopper = None, None
        summaries.append(summary)
        if kind == "final":
            assert summary.stopped_by in ("queues empty", "all drained"), summary
    return summaries


def _run_async(work: Callable[[], Any]) -> Any:
    return asyncio.run(work())


# ---------------------------------------------------------------------- FIFO


@dataclass
class FifoWorkload:
    counts: list[int]  # messages per group
    batch_size: int
    concurrency: int
    scaling: str
    mode: str  # "whole" (raise), "partial" (process_fifo_batch), "partial_skip"
    max_receive_count: int
    plans: dict[tuple[int, int], Plan]
    duplicates: list[tuple[int, int]]
    restarts: list[Restart]


@st.composite
def fifo_workloads(draw: st.DrawFn) -> FifoWorkload:
    groups = draw(st.integers(1, 30))
    counts = draw(st.lists(st.integers(1, 5), min_size=groups, max_size=groups))
    keys = [(g, n) for g in range(groups) for n in range(counts[g])]
    plans: dict[tuple[int, int], Plan] = {}
    for key in draw(st.lists(st.sampled_from(keys), max_size=3, unique=True)):
        plans[key] = draw(st.sampled_from([Plan(1), Plan(2), Plan(always=True)]))
    if draw(st.integers(0, 5)) == 0:  # occasional timeouts: each costs a second
        key = draw(st.sampled_from(keys))
        plans[key] = Plan(plans.get(key, OK).fail_times, plans.get(key, OK).always, True)
    return FifoWorkload(
        counts=counts,
        batch_size=draw(st.integers(1, 10)),
        concurrency=draw(st.integers(2, 10)),
        scaling=draw(st.sampled_from(["fixed", "aws"])),
        mode=draw(st.sampled_from(["whole", "partial", "partial_skip"])),
        max_receive_count=draw(st.integers(2, 4)),
        plans=plans,
        duplicates=draw(st.lists(st.sampled_from(keys), max_size=3, unique=True)),
        restarts=draw(restarts_strategy),
    )


QUEUE = "orders.fifo"
DLQ = "orders-dlq.fifo"


def fifo_app(w: FifoWorkload, history: History) -> sluicegate.App:
    app = sluicegate.App()
    app.queue(QUEUE, visibility_timeout=VISIBILITY_TIMEOUT, dead_letter_queue=DLQ,
              max_receive_count=w.max_receive_count)
    app.queue(DLQ, visibility_timeout=60)

    def key_of(record: dict[str, Any]) -> tuple[int, int]:
        body = json.loads(record["body"])
        return (body["g"], body["n"])

    @app.function(timeout=FUNCTION_TIMEOUT)
    def handle(event: dict[str, Any], context: Any) -> Any:
        records = event["Records"]
        keys = [key_of(r) for r in records]
        items = [(g, n, r["messageId"], r["receiptHandle"])
                 for (g, n), r in zip(keys, records, strict=True)]
        inv, timeout = history.begin(items, keys, w.plans)
        if timeout:
            inv.timed_out = True
            history.finish(inv)  # it processes nothing: it ends, for ordering, at once
            time.sleep(TIMEOUT_SLEEP)
            return None

        def run(record: dict[str, Any]) -> None:
            key = key_of(record)
            history.attempt(key, w.plans.get(key, OK))

        if w.mode == "whole":
            try:
                for record in records:
                    run(record)
            except Exception:
                inv.error = True
                history.finish(inv)
                raise
            inv.failed = set()
            history.finish(inv)
            return None
        response = process_fifo_batch(event, run, skip_group_on_error=w.mode == "partial_skip")
        inv.failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        history.finish(inv)
        return response

    app.map(QUEUE, handle, batch_size=w.batch_size, report_batch_item_failures=w.mode != "whole",
            scaling=w.scaling, maximum_concurrency=w.concurrency)
    return app


def fifo_settled_by_outcome(inv: Invocation) -> list[Any]:
    """What the handler's outcome lets go, by AWS's FIFO rule (independent of the core)."""
    if inv.timed_out or inv.error:
        return []
    assert inv.failed is not None
    blocked: set[int] = set()
    out = []
    for item in inv.items:
        group, _, message_id, _ = item
        if group in blocked:
            continue
        if message_id in inv.failed:
            blocked.add(group)
            continue
        out.append(item)
    return out


async def fifo_scenario(w: FifoWorkload, url: str) -> tuple[History, dict[str, Any]]:
    history = History()
    app = fifo_app(w, history)
    inner = open_store(url)
    await inner.open()
    try:
        store = RecordingStore(inner, history)
        await Runtime(app, store).prepare()
        accepted: dict[tuple[int, int], str] = {}
        entries = []
        for n in range(max(w.counts)):
            for g, count in enumerate(w.counts):
                if n < count:
                    entries.append((g, n))
        for i in range(0, len(entries), 10):
            chunk = entries[i : i + 10]
            results = await store.send_batch(QUEUE, [
                SendEntry(json.dumps({"g": g, "n": n}), group_id=f"g{g}",
                          deduplication_id=f"d-{g}-{n}") for g, n in chunk
            ])
            for key, result in zip(chunk, results, strict=True):
                assert not result.duplicate
                accepted[key] = result.message_id
        for g, n in w.duplicates:  # the same deduplication id again: accepted, not stored
            result = await store.send(QUEUE, json.dumps({"g": g, "n": n, "again": True}),
                                      group_id=f"g{g}", deduplication_id=f"d-{g}-{n}")
            assert result.duplicate and result.message_id == accepted[(g, n)]
        await run_with_restarts(app, store, history, w.restarts)
        source = await inner.counts(QUEUE)
        dead: dict[str, str] = {}
        while True:
            got = await inner.receive(DLQ, max_messages=10, visibility_timeout=60)
            if not got:
                break
            dead.update((m.message_id, m.group_id or "") for m in got)
        return history, {"accepted": accepted, "source": source, "dead": dead}
    finally:
        await inner.close()


def check_fifo_history(w: FifoWorkload, history: History, end: dict[str, Any]) -> None:
    accepted: dict[tuple[int, int], str] = end["accepted"]
    key_of_id = {mid: key for key, mid in accepted.items()}
    dead_keys = {key_of_id[mid] for mid in end["dead"]}
    assert len(dead_keys) == len(end["dead"]), "a dead-lettered message that was never sent"
    assert end["source"].total == 0, end["source"]
    invs = history.invocations
    log = history.log

    # what the runtime asked to delete and what the store did
    requested: set[str] = set()
    delete_result: dict[str, bool] = {}
    for entry in log:
        if entry[0] == "delete_requested":
            requested.update(entry[2])
        elif entry[0] == "deleted":
            for handle, ok in zip(entry[2], entry[3], strict=True):
                assert handle not in delete_result, "a handle deleted twice"
                delete_result[handle] = ok

    # F1: deletes follow the outcome exactly
    for inv in invs:
        assert inv.end is not None
        inv.settled = fifo_settled_by_outcome(inv)
        wanted = {item[3] for item in inv.settled}
        asked = {item[3] for item in inv.items} & requested
        assert asked == wanted, f"invocation {inv.id}: deleted {asked}, outcome lets go {wanted}"

    # per message: its deliveries in start order, and the one that settled it
    deliveries: dict[tuple[int, int], list[tuple[Invocation, Any]]] = defaultdict(list)
    for inv in invs:
        for item in inv.items:
            deliveries[(item[0], item[1])].append((inv, item))
    settled_by: dict[tuple[int, int], Invocation] = {}
    late_deletes = 0
    for key, delivered in deliveries.items():
        assert key in accepted, f"{key} delivered but never accepted"
        assert len({item[2] for _, item in delivered}) == 1, f"{key}: several message ids"
        for inv, item in delivered:
            if delete_result.get(item[3]):
                assert key not in settled_by, f"{key} deleted twice"
                settled_by[key] = inv
        # F5: the settling delivery is the last; a success whose delete came too late
        # (the message had been received again) is the only other licence to redeliver
        last_inv, _ = delivered[-1]
        if key in settled_by:
            assert settled_by[key] is last_inv, f"{key} delivered again after it was settled"
        for inv, item in delivered:
            if item in inv.settled and inv is not settled_by.get(key):
                assert delete_result.get(item[3]) is False, (
                    f"{key} succeeded in invocation {inv.id} and was not deleted: "
                    f"{delete_result.get(item[3])}"
                )
                late_deletes += 1

    # F2: nothing lost, nothing both settled and dead-lettered
    settled = set(settled_by)
    assert not settled & dead_keys, f"settled and dead-lettered: {settled & dead_keys}"
    assert settled | dead_keys == set(accepted), (
        f"lost: {set(accepted) - settled - dead_keys}"
    )

    # F3: dead-letter accounting
    for key in dead_keys:
        count = len(deliveries.get(key, []))
        assert count <= w.max_receive_count, (key, count)
        if not w.restarts:
            assert count == w.max_receive_count, (key, count)
    for key, plan in w.plans.items():
        if plan.always:
            assert key in dead_keys, f"{key} always fails but was not dead-lettered"

    # F4: group order. "done" position of a message: the end of its settling invocation,
    # or of its last delivery when it was dead-lettered
    done_at: dict[tuple[int, int], int] = {}
    for key in accepted:
        if key in settled_by:
            done_at[key] = settled_by[key].end  # type: ignore[assignment]
        elif deliveries.get(key):
            done_at[key] = max(inv.end for inv, _ in deliveries[key])  # type: ignore[type-var]
        else:
            done_at[key] = -1  # dead-lettered without a delivery (restarts)
    for inv in invs:
        by_group: dict[int, list[int]] = defaultdict(list)
        for group, n, _, _ in inv.items:
            by_group[group].append(n)
        for group, ns in by_group.items():
            for a, b in itertools.pairwise(ns):
                assert a < b, f"invocation {inv.id}: group {group} out of order {ns}"
                for gap in range(a + 1, b):
                    assert (group, gap) in dead_keys, f"invocation {inv.id} skipped {gap}"
            for m in range(ns[0]):
                assert done_at[(group, m)] < inv.start, (
                    f"invocation {inv.id} started group {group} at {ns[0]} before {m} was "
                    "settled or dead-lettered"
                )

    # F6: one batch per group in flight; never above maximum_concurrency
    live = [inv for inv in invs if not inv.timed_out]
    points = sorted([(inv.start, 1, inv) for inv in live] + [(inv.end, -1, inv) for inv in live],
                    key=lambda p: p[0])
    active: set[int] = set()
    groups_active: Counter[int] = Counter()
    for _, delta, inv in points:
        groups = {item[0] for item in inv.items}
        if delta > 0:
            active.add(inv.id)
            for group in groups:
                groups_active[group] += 1
                assert groups_active[group] == 1, f"group {group} in two invocations at once"
            assert len(active) <= w.concurrency
        else:
            active.discard(inv.id)
            for group in groups:
                groups_active[group] -= 1

    event(f"fifo mode={w.mode} restarts={len(w.restarts)}")
    event(f"fifo dead-lettered>0: {bool(dead_keys)}")
    event(f"fifo late deletes>0: {late_deletes > 0}")


@PROPERTY_SETTINGS
@given(fifo_workloads())
def test_fifo_history_on_memory_store(w: FifoWorkload) -> None:
    history, end = _run_async(lambda: fifo_scenario(w, "memory://"))
    check_fifo_history(w, history, end)


@SQLITE_SETTINGS
@given(fifo_workloads())
def test_fifo_history_on_sqlite_store(w: FifoWorkload) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'fifo.db'}"
        history, end = _run_async(lambda: fifo_scenario(w, url))
    check_fifo_history(w, history, end)


# ---------------------------------------------------------------------- streams


@dataclass
class StreamWorkload:
    shards: int
    factor: int
    counts: list[int]  # records per key
    batch_size: int
    bisect: bool
    mode: str  # "whole" (raise) or "partial" (process_batch)
    retries: int
    plans: dict[tuple[int, int], Plan]  # by (key, n)
    restarts: list[Restart]


@st.composite
def stream_workloads(draw: st.DrawFn) -> StreamWorkload:
    keys = draw(st.integers(1, 40))
    counts = draw(st.lists(st.integers(1, 4), min_size=keys, max_size=keys))
    retries = draw(st.sampled_from([-1, 0, 1, 2, 3]))
    names = [(k, n) for k in range(keys) for n in range(counts[k])]
    kinds = [Plan(1), Plan(2)] + ([Plan(always=True)] if retries >= 0 else [])
    plans: dict[tuple[int, int], Plan] = {}
    for key in draw(st.lists(st.sampled_from(names), max_size=4, unique=True)):
        plans[key] = draw(st.sampled_from(kinds))
    if draw(st.integers(0, 5)) == 0:
        key = draw(st.sampled_from(names))
        plans[key] = Plan(plans.get(key, OK).fail_times, plans.get(key, OK).always, True)
    return StreamWorkload(
        shards=draw(st.integers(1, 4)),
        factor=draw(st.integers(1, 4)),
        counts=counts,
        batch_size=draw(st.integers(1, 10)),
        bisect=draw(st.booleans()),
        mode=draw(st.sampled_from(["whole", "partial"])),
        retries=retries,
        plans=plans,
        restarts=draw(restarts_strategy),
    )


STREAM = "clicks"
DESTINATION = "failures"


def _shard_of(record: dict[str, Any]) -> int:
    return int(record["eventID"].split(":", 1)[0].rsplit("-", 1)[1])


def stream_app(w: StreamWorkload, history: History, by_seq: dict[Any, tuple[int, int]]) -> Any:
    app = sluicegate.App()
    app.stream(STREAM, shard_count=w.shards)
    app.queue(DESTINATION)

    @app.function(timeout=FUNCTION_TIMEOUT)
    def handle(event: dict[str, Any], context: Any) -> Any:
        records = event["Records"]
        items = [(_shard_of(r), int(r["kinesis"]["sequenceNumber"])) for r in records]
        keys = [by_seq[item] for item in items]
        inv, timeout = history.begin(items, keys, w.plans)
        if timeout:
            inv.timed_out = True
            history.finish(inv)
            time.sleep(TIMEOUT_SLEEP)
            return None

        def run(record: dict[str, Any]) -> None:
            key = by_seq[(_shard_of(record), int(record["kinesis"]["sequenceNumber"]))]
            data = json.loads(base64.b64decode(record["kinesis"]["data"]))
            assert (data["k"], data["n"]) == key
            history.attempt(key, w.plans.get(key, OK))

        if w.mode == "whole":
            try:
                for record in records:
                    run(record)
            except Exception:
                inv.error = True
                history.finish(inv)
                raise
            inv.failed = set()
            history.finish(inv)
            return None
        response = process_batch(event, run)
        inv.failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        history.finish(inv)
        return response

    app.map(STREAM, handle, batch_size=w.batch_size, parallelization_factor=w.factor,
            bisect_batch_on_function_error=w.bisect, maximum_retry_attempts=w.retries,
            report_batch_item_failures=w.mode == "partial", on_failure=DESTINATION)
    return app


def stream_settled_by_outcome(inv: Invocation) -> list[Any]:
    """Records the handler's outcome lets go: all on success, those before the lowest
    reported sequence number on a partial response, none on an error or timeout."""
    if inv.timed_out or inv.error:
        return []
    assert inv.failed is not None
    if not inv.failed:
        return list(inv.items)
    lowest = min(int(s) for s in inv.failed)
    return [item for item in inv.items if item[1] < lowest]


async def stream_scenario(w: StreamWorkload, url: str) -> tuple[History, dict[str, Any]]:
    history = History()
    by_seq: dict[tuple[int, int], tuple[int, int]] = {}
    app = stream_app(w, history, by_seq)
    mapping = f"{STREAM}->handle"
    inner = open_store(url)
    await inner.open()
    try:
        store = RecordingStore(inner, history, DESTINATION)
        await Runtime(app, store).prepare()
        entries = [(k, n) for n in range(max(w.counts)) for k, c in enumerate(w.counts) if n < c]
        for i in range(0, len(entries), 500):
            chunk = entries[i : i + 500]
            results = await store.put_records(STREAM, [
                PutEntry(f"key-{k}", json.dumps({"k": k, "n": n})) for k, n in chunk
            ])
            for key, result in zip(chunk, results, strict=True):
                by_seq[(result.shard, result.sequence_number)] = key
        run_start: dict[int, dict[int, int]] = {}

        async def note_checkpoints() -> None:
            run_start[history.run] = await inner.get_checkpoints(mapping)

        await run_with_restarts(app, store, history, w.restarts, note_checkpoints)
        latest = {s: await inner.latest_sequence(STREAM, s) for s in range(w.shards)}
        final = await inner.get_checkpoints(mapping)
        return history, {"by_seq": by_seq, "run_start": run_start, "latest": latest,
                         "final": final}
    finally:
        await inner.close()


def check_stream_history(w: StreamWorkload, history: History, end: dict[str, Any]) -> None:
    by_seq: dict[tuple[int, int], tuple[int, int]] = end["by_seq"]
    item_of = {key: item for item, key in by_seq.items()}
    run_start: dict[int, dict[int, int]] = end["run_start"]
    invs = history.invocations
    log = history.log
    for inv in invs:
        assert inv.end is not None
        inv.settled = stream_settled_by_outcome(inv)

    # discards: match every on-failure record to the failed invocation it describes
    # (run, end of the failed invocation, position of the on-failure send, records)
    discards: list[tuple[int, int, int, list[Any]]] = []
    for pos, entry in enumerate(log):
        if entry[0] != "on_failure":
            continue
        run, record = entry[1], entry[2]
        info = record["KinesisBatchInfo"]
        shard = int(info["shardId"].rsplit("-", 1)[1])
        first, last = int(info["startSequenceNumber"]), int(info["endSequenceNumber"])
        assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
        match = None
        for inv in invs:  # S5: the last failed invocation holding exactly that batch
            if inv.run != run or inv.end is None or inv.end > pos:
                continue
            seqs = [item[1] for item in inv.items if item[0] == shard]
            if first in seqs and last in seqs:
                part = inv.items[seqs.index(first) : seqs.index(last) + 1]
                if len(part) == info["batchSize"] and not set(part) & set(inv.settled):
                    match = (inv, part)
        assert match is not None, f"on-failure record {info} matches no failed invocation"
        inv, part = match
        discards.append((run, inv.end, pos, part))  # type: ignore[arg-type]

    # settlement events: (run, position, item)
    settled_at: dict[Any, list[tuple[int, int]]] = defaultdict(list)
    for inv in invs:
        for item in inv.settled:
            settled_at[item].append((inv.run, inv.end))  # type: ignore[arg-type]
    discarded: set[Any] = set()
    for run, pos, _, part in discards:
        for item in part:
            settled_at[item].append((run, pos))
            discarded.add(item)

    def done_before(item: Any, run: int, position: int) -> bool:
        if item[1] <= run_start[run].get(item[0], -1):
            return True
        return any(r == run and p < position for r, p in settled_at.get(item, ()))

    # S1: checkpoints pass only records settled in their run (or below the run's starting
    # checkpoint), and a discarded record only once its on-failure record was sent
    succeeded_at: dict[Any, list[tuple[int, int]]] = defaultdict(list)
    for inv in invs:
        for item in inv.settled:
            succeeded_at[item].append((inv.run, inv.end))  # type: ignore[arg-type]
    sent_at: dict[Any, list[tuple[int, int]]] = defaultdict(list)
    for run, _, send_pos, part in discards:
        for item in part:
            sent_at[item].append((run, send_pos))
    for pos, entry in enumerate(log):
        if entry[0] != "checkpoint":
            continue
        run, checkpoints = entry[1], entry[2]
        for item in by_seq:
            seq = checkpoints.get(item[0])
            if seq is None or item[1] > seq or item[1] <= run_start[run].get(item[0], -1):
                continue
            assert any(r == run and p < pos for r, p in succeeded_at.get(item, ())) or any(
                r == run and p < pos for r, p in sent_at.get(item, ())
            ), f"run {run}: checkpoint {seq} of shard {item[0]} passed unsettled {item}"

    # S2 and S3, per invocation
    records_of_key: dict[int, list[Any]] = defaultdict(list)
    for k, count in enumerate(w.counts):
        records_of_key[k] = [item_of[(k, n)] for n in range(count)]
    redelivered_after_restart = 0
    for inv in invs:
        run = inv.run
        shard_of_inv = {item[0] for item in inv.items}
        assert len(shard_of_inv) == 1, f"invocation {inv.id} spans shards"
        by_key: dict[int, list[int]] = defaultdict(list)
        for item in inv.items:
            assert item[1] > run_start[run].get(item[0], -1), (
                f"run {run} delivered {item}, at or below its starting checkpoint"
            )
            assert not done_before(item, run, inv.start), (
                f"invocation {inv.id} delivered {item} again in the run that settled it"
            )
            if settled_at.get(item) and any(r < run for r, _ in settled_at[item]):
                redelivered_after_restart += 1
            by_key[by_seq[item][0]].append(by_seq[item][1])
        for k, ns in by_key.items():
            assert ns == list(range(ns[0], ns[0] + len(ns))), (
                f"invocation {inv.id}: key {k} not consecutive in order: {ns}"
            )
            for m in range(ns[0]):
                assert done_before(records_of_key[k][m], run, inv.start), (
                    f"invocation {inv.id} started key {k} at {ns[0]} before {m} was settled"
                )

    # S4: nothing lost; checkpoints at the end of every shard
    unsettled = [item for item in by_seq if not settled_at.get(item)]
    assert not unsettled, f"never settled: {unsettled}"
    for shard, latest in end["latest"].items():
        if latest >= 0:
            assert end["final"].get(shard) == latest, (shard, end["final"], latest)

    # S5: failure accounting
    invoked: Counter[Any] = Counter(item for inv in invs for item in inv.items)
    for item in discarded:
        assert invoked[item] >= w.retries + 1, (item, invoked[item])
    for key, plan in w.plans.items():
        if plan.always:
            assert item_of[key] in discarded, f"{key} always fails but was not discarded"

    # S6: one batch per key in flight, parallelization_factor per shard
    live = [inv for inv in invs if not inv.timed_out]
    points = sorted([(inv.start, 1, inv) for inv in live] + [(inv.end, -1, inv) for inv in live],
                    key=lambda p: p[0])
    keys_active: Counter[int] = Counter()
    shards_active: Counter[int] = Counter()
    for _, delta, inv in points:
        keys = {by_seq[item][0] for item in inv.items}
        shard = inv.items[0][0]
        shards_active[shard] += delta
        assert shards_active[shard] <= w.factor, f"shard {shard} above its factor"
        for k in keys:
            keys_active[k] += delta
            assert keys_active[k] <= 1, f"key {k} in two invocations at once"

    event(f"stream mode={w.mode} bisect={w.bisect} restarts={len(w.restarts)}")
    event(f"stream discards>0: {bool(discards)}")
    event(f"stream redelivered after a restart>0: {redelivered_after_restart > 0}")


@PROPERTY_SETTINGS
@given(stream_workloads())
def test_stream_history_on_memory_store(w: StreamWorkload) -> None:
    with fast_stream_timers():
        history, end = _run_async(lambda: stream_scenario(w, "memory://"))
    check_stream_history(w, history, end)


@SQLITE_SETTINGS
@given(stream_workloads())
def test_stream_history_on_sqlite_store(w: StreamWorkload) -> None:
    with fast_stream_timers(), tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'stream.db'}"
        history, end = _run_async(lambda: stream_scenario(w, url))
    check_stream_history(w, history, end)


def test_recording_store_passes_through() -> None:
    """The proxy the properties rely on logs and forwards (a guard against a silent
    no-op: a proxy that dropped deletes would make F1 vacuous)."""
    history = History()

    async def work() -> Any:
        inner = open_store("memory://")
        await inner.open()
        app = sluicegate.App()
        app.queue("q")
        store = RecordingStore(inner, history)
        await Runtime(app, store).prepare()
        await store.send("q", "x")
        (m,) = await store.receive("q", max_messages=1)
        done = await store.delete_many("q", [m.receipt_handle])
        return done, await inner.counts("q")

    done, counts = asyncio.run(work())
    assert done == [True] and counts.total == 0
    assert [e[0] for e in history.log] == ["delete_requested", "deleted"]


pytestmark = pytest.mark.timeout(300)
