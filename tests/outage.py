"""A downstream outage on the real runtime, shared by the breaker test
(``tests/runtime/test_breaker_runtime.py``, scaled down) and its benchmark
(``bench/breaker_outage.py``, full size).

One runtime, one store, three queues (:data:`QUEUES`) fed at the same rate, each mapped to
a handler that calls the same :class:`Downstream`; every queue has ``max_receive_count``
3 and a dead-letter queue:

- ``plain``: no breaker (AWS's behaviour);
- ``guarded``: a breaker;
- ``probed``: the same breaker with an external probe (the downstream's health).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import sluicegate
from sluicegate.runtime.driver import Runtime
from sluicegate.store import Store, open_store
from sluicegate.store.base import SendEntry

QUEUES = ("plain", "guarded", "probed")

T = TypeVar("T")


class Downstream:
    """Down from ``down_from`` for ``down_for`` seconds after :meth:`start`; records what
    each queue's handler processed, when its calls failed and when it last succeeded."""

    def __init__(self, down_from: float, down_for: float) -> None:
        self.down_from = down_from
        self.down_for = down_for
        self.t0 = time.monotonic()
        self.processed: dict[str, set[int]] = {q: set() for q in QUEUES}
        self.failed: dict[str, list[float]] = {q: [] for q in QUEUES}
        """Seconds after :meth:`start` of each failed call."""
        self.last: dict[str, float] = dict.fromkeys(QUEUES, 0.0)

    def start(self) -> None:
        self.t0 = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def up(self) -> bool:
        return not self.down_from <= self.elapsed() < self.down_from + self.down_for

    def call(self, queue: str, numbers: list[int]) -> None:
        if not self.up():
            self.failed[queue].append(self.elapsed())
            raise ConnectionError("downstream refused the connection")
        self.processed[queue].update(numbers)
        self.last[queue] = self.elapsed()


def outage_app(downstream: Downstream, *, visibility: int, breaker: dict[str, Any],
               probe_interval: float) -> sluicegate.App:
    """The three queues and their handlers; ``guarded`` and ``probed`` have ``breaker``,
    ``probed`` with the downstream's health checked every ``probe_interval`` seconds."""
    app = sluicegate.App()
    for queue in QUEUES:
        app.queue(queue, visibility_timeout=visibility, dead_letter_queue=f"{queue}-dlq",
                  max_receive_count=3)

        def handle(event: dict[str, Any], context: Any, queue: str = queue) -> None:
            downstream.call(queue, [json.loads(r["body"])["n"] for r in event["Records"]])

        app.function(name=f"handle_{queue}", timeout=1)(handle)
    app.map("plain", "handle_plain")
    app.map("guarded", "handle_guarded", breaker=breaker)
    app.map("probed", "handle_probed",
            breaker={**breaker, "probe": downstream.up, "probe_interval": probe_interval})
    return app


async def run_outage(url: str, app: sluicegate.App, downstream: Downstream, *,
                     send_for: float, rate: float, duration: float, poll: float,
                     report: Callable[[Store, Runtime, int], Awaitable[T]]) -> T:
    """Run ``app`` on the store at ``url`` while sending one message per queue ``rate``
    times a second for ``send_for`` seconds (the downstream's clock starts with the
    first), until every queue is empty (checked every ``poll`` seconds) or ``duration``
    passed; then ``report(store, runtime, sent)``, with the store still open."""
    store = open_store(url)
    await store.open()
    sent = 0
    try:
        runtime = Runtime(app, store, grace_period=2.0, cluster=None)
        await runtime.prepare()

        async def produce() -> None:
            nonlocal sent
            downstream.start()
            while downstream.elapsed() < send_for:
                for queue in QUEUES:
                    await store.send_batch(queue, [SendEntry(json.dumps({"n": sent}))])
                sent += 1
                await asyncio.sleep(1.0 / rate)

        async def stop_when_settled() -> None:
            while True:
                await asyncio.sleep(poll)
                if downstream.elapsed() < send_for:
                    continue
                counts = [await store.counts(q) for q in QUEUES]
                if all(c.total == 0 for c in counts):
                    runtime.stop("all settled")
                    return

        tasks = [asyncio.create_task(produce()), asyncio.create_task(stop_when_settled())]
        await runtime.run(duration=duration)
        for task in tasks:
            task.cancel()
        return await report(store, runtime, sent)
    finally:
        await store.close()
