"""A stop that cancels receives before they first ran (found while building the cluster's
shard handover, which stops and restarts readers): the runner must still settle at once,
not wait out the grace period."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

import sluicegate
from sluicegate.runtime.driver import Runtime
from sluicegate.runtime.sources import QueueIO
from sluicegate.store import SqliteStore


@pytest.mark.parametrize("queue", ["q", "q.fifo"])
def test_receives_cancelled_before_they_ran_are_reported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, queue: str) -> None:
    app = sluicegate.App()
    app.queue(queue, receive_wait_time=20, content_based_deduplication=queue.endswith(".fifo"))

    @app.function(timeout=5)
    async def work(event: object, context: object) -> None:
        return None

    app.map(queue, work, scaling="fixed", maximum_concurrency=4)
    original = QueueIO._start_receives

    def start_then_stop(self: Any, receives: list[Any]) -> None:
        original(self, receives)
        runner = self.runner
        if not runner.stopping:  # the receive tasks exist but have not run yet
            runner.runtime.stop("stopped at once")
            runner.stop()

    monkeypatch.setattr(QueueIO, "_start_receives", start_then_stop)

    async def main() -> float:
        async with SqliteStore(tmp_path / "s.db") as store:
            runtime = Runtime(app, store, grace_period=30)
            started = time.monotonic()
            summary = await asyncio.wait_for(runtime.run(), 20)
            assert summary.stopped_by == "stopped at once"
            return time.monotonic() - started

    assert asyncio.run(main()) < 5
