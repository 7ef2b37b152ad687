"""``context.report``: what a handler reports reaches its mapping's limit, in every
isolation (the limit's observing terms get it on the invocation's Sample)."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pytest

import sluicegate
from sluicegate.core.limit import NO_LIMIT
from sluicegate.core.signals import Sample, SampleKind
from sluicegate.runtime.driver import Runtime
from sluicegate.runtime.events import LambdaContext
from sluicegate.store import open_store
from sluicegate.store.base import SendEntry


def reporting_handler(event: Any, context: Any) -> None:
    """Reports a latency of ``n / 10`` (and a smaller one, which must not win); an odd
    ``n`` also reports an overload; ``n == 3`` raises after reporting."""
    n = json.loads(event["Records"][0]["body"])["n"]
    context.report(latency=n / 10)
    context.report(latency=0.0)
    if n % 2:
        context.report(overload=True)
    if n == 3:
        raise RuntimeError("after the report")


class Recorder:
    name = "recorder"

    def __init__(self) -> None:
        self.samples: list[Sample] = []

    def value(self, now: float) -> int:
        return NO_LIMIT

    def next_change(self, now: float) -> float | None:
        return None

    def observe(self, now: float, sample: Sample) -> None:
        self.samples.append(sample)


def test_report_keeps_the_largest_latency_and_refuses_nonsense() -> None:
    context = LambdaContext(function_name="f")
    assert (context.reported_latency, context.reported_overload) == (None, False)
    context.report(latency=0.2)
    context.report(latency=0.1, overload=True)
    context.report()
    assert (context.reported_latency, context.reported_overload) == (0.2, True)
    for bad in (-1.0, math.inf, math.nan, True, "0.1"):
        with pytest.raises(ValueError, match="report"):
            context.report(latency=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("isolation", ["module", "shared", "process"])
def test_a_handlers_report_reaches_the_limits_samples(isolation: str, tmp_path: Any) -> None:
    app = sluicegate.App()
    app.queue("q", visibility_timeout=2, max_receive_count=1, dead_letter_queue="dlq")
    app.function(timeout=1, isolation=isolation)(reporting_handler)
    app.map("q", reporting_handler, batch_size=1, scaling="fixed", maximum_concurrency=2)
    recorder = Recorder()

    async def main() -> None:
        store = open_store(f"sqlite:///{tmp_path / 'r.db'}")
        await store.open()
        try:
            runtime = Runtime(app, store, grace_period=5.0)
            build = runtime._build

            async def build_and_observe() -> None:  # the recorder joins the built limit
                await build()
                runtime.runners[0].core.concurrency_limit.add(recorder)

            runtime._build = build_and_observe  # type: ignore[method-assign]
            await runtime.prepare()
            await store.send_batch("q", [SendEntry(json.dumps({"n": n})) for n in range(1, 5)])
            await runtime.run(until_empty=True, duration=30.0)
        finally:
            await store.close()

    asyncio.run(main())
    seen = sorted((s.latency, s.overload, s.kind) for s in recorder.samples)
    assert seen == [
        (0.1, True, SampleKind.OK),
        (0.2, False, SampleKind.OK),
        (0.3, True, SampleKind.ERROR),
        (0.4, False, SampleKind.OK),
    ]
    assert all(s.size == 1 and 1 <= s.in_flight <= 2 and s.end >= s.start
               for s in recorder.samples)
