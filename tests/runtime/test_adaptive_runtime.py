"""``scaling="adaptive"`` on the real runtime against a real downstream: a small asyncio
TCP server with a fixed capacity whose latency grows when more calls are in flight, and
which says so (``tests/downstream.py``)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import sluicegate
from downstream import Downstream
from sluicegate.core.adaptive import AdaptiveLimit
from sluicegate.runtime.driver import Runtime
from sluicegate.store import open_store
from sluicegate.store.base import SendEntry

CAPACITY = 10
"""Calls the downstream serves at once at its base latency."""
LATENCY = 0.25
"""Its base latency, seconds: it can give CAPACITY / LATENCY = 40 calls/s."""
MESSAGES = 240


def run_against(downstream: Downstream, path: Any, adaptive: dict[str, Any], messages: int,
                duration: float) -> tuple[Any, Runtime]:
    """Drain ``messages`` through an AIMD-limited mapping whose handler calls
    ``downstream`` and reports its latency and "busy" answers; (summary, runtime)."""
    port = 0
    app = sluicegate.App()
    app.queue("q", visibility_timeout=30)

    @app.function(timeout=10)
    async def call(event: Any, context: Any) -> None:
        started = time.monotonic()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"call\n")
        await writer.drain()
        answer = await reader.readline()
        writer.close()
        context.report(latency=time.monotonic() - started, overload=answer == b"busy\n")

    # AIMD: the downstream's "busy" is its drop signal (a real clock's latency is too
    # noisy on a shared machine for Vegas's thresholds at a capacity of 10)
    app.map("q", call, batch_size=1, scaling="adaptive", algorithm="aimd", adaptive=adaptive)

    async def main() -> tuple[Any, Runtime]:
        nonlocal port
        port = await downstream.start()
        store = open_store(f"sqlite:///{path}")
        await store.open()
        try:
            runtime = Runtime(app, store, grace_period=5.0)
            await runtime.prepare()
            for i in range(0, messages, 10):
                await store.send_batch("q", [SendEntry(json.dumps({"n": n}))
                                             for n in range(i, i + 10)])
            summary = await runtime.run(until_empty=True, duration=duration)
            return summary, runtime
        finally:
            await store.close()
            assert downstream.server is not None
            downstream.server.close()

    return asyncio.run(main())


def test_adaptive_limit_keeps_a_real_downstream_near_its_capacity(tmp_path: Any) -> None:
    downstream = Downstream(CAPACITY, LATENCY)
    # half-second windows for a short run
    summary, runtime = run_against(
        downstream, tmp_path / "a.db",
        {"initial": 5, "maximum": 60, "backoff_ratio": 0.95, "window": 0.5, "window_size": 5},
        MESSAGES, 30.0)
    assert summary.processed == MESSAGES and downstream.calls == MESSAGES
    rate = downstream.settled_rate()
    share = downstream.share_within(1.1 * CAPACITY)
    print(f"downstream: {rate:.1f} calls/s of {CAPACITY / LATENCY:.0f}, "
          f"within 1.1 C {share:.3f}, peak {downstream.peak}")
    assert share >= 0.95
    assert rate >= 0.9 * CAPACITY / LATENCY
    term = runtime.runners[0].core.concurrency_limit.get("adaptive")
    assert isinstance(term, AdaptiveLimit)
    stats = term.statistics()
    assert stats.samples == MESSAGES and stats.drops > 0  # the "busy" answers reached it
    assert CAPACITY - 3 <= stats.limit <= 1.1 * CAPACITY + 1


def test_a_window_shorter_than_the_calls_still_lets_the_limit_grow(tmp_path: Any) -> None:
    # Given windows of 0.25 s for calls of 250 ms and a limit of 3: a window sees about 3
    # calls end, fewer than window_size (5). A live limit used to stay at 3 (each window
    # was closed short of samples and dropped: 0 updates in 6 s of a 10-capacity
    # downstream); a window now goes on until it holds window_size samples
    downstream = Downstream(CAPACITY, LATENCY)
    messages = 60
    _, runtime = run_against(
        downstream, tmp_path / "a.db",
        {"initial": 3, "maximum": 60, "backoff_ratio": 0.75, "window": 0.25, "window_size": 5},
        messages, 20.0)
    term = runtime.runners[0].core.concurrency_limit.get("adaptive")
    assert isinstance(term, AdaptiveLimit)
    stats = term.statistics()
    assert stats.samples == messages
    # it grew: 60 calls at 3 at once would take 5 s; the downstream saw more at once
    assert stats.updates >= 2, stats
    assert downstream.peak >= 5, downstream.peak
