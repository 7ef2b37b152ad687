"""The public API for running an App in-process: ``sluicegate.run``, ``arun`` and
``serve``, on the memory and SQLite stores, in real time (runs of a fraction of a
second: the mappings have no batching window)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

import sluicegate
from sluicegate.errors import InputError, StoreError
from sluicegate.runtime.metrics import ALL_MAPPINGS, MetricsSecond
from sluicegate.store import MemoryStore, Store

RUN_TIMEOUT = 20.0
"""Seconds any one run of these tests may take before the test fails (they take well
under one)."""

RUNNING = ("sluicegate.runtime", "sluicegate.store", "sluicegate.running", "sqlite3", "redis")
"""Modules that defining an App must not load."""


def make_app(seen: list[str], *, fail: Callable[[str], bool] = lambda body: False
             ) -> sluicegate.App:
    """An App of one queue and one mapping whose handler records the bodies it gets (a
    closure, so every execution environment shares ``seen``)."""
    app = sluicegate.App()
    app.queue("orders", visibility_timeout=30)

    def process(event: dict[str, Any], context: Any) -> dict[str, Any]:
        failed = []
        for record in event["Records"]:
            seen.append(record["body"])
            if fail(record["body"]):
                failed.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failed}

    app.function(timeout=5)(process)
    app.map("orders", process, batch_size=10, report_batch_item_failures=True)
    return app


async def fill(store: Store, app: sluicegate.App, count: int) -> None:
    for queue in app.queues.values():
        await store.ensure_queue(queue)
    for i in range(count):
        await store.send("orders", json.dumps({"id": i}))


def bodies(count: int) -> list[str]:
    return [json.dumps({"id": i}) for i in range(count)]


@pytest.fixture(params=["memory", "sqlite"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'jobs.db'}"


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + RUN_TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        await asyncio.sleep(0.01)


# ---------------------------------------------------------------------- the names


def test_every_public_name_resolves_and_is_listed() -> None:
    for name in sluicegate.__all__:
        assert getattr(sluicegate, name) is not None, name
    assert set(sluicegate.__all__) <= set(dir(sluicegate))
    assert sluicegate.Runtime.__module__ == "sluicegate.runtime.driver"
    assert sluicegate.run is sluicegate.running.run
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = sluicegate.nothing  # type: ignore[attr-defined]


def test_build_lives_in_its_own_module_not_at_the_top() -> None:
    from sluicegate.build import BUILD

    assert BUILD in {"compiled", "pure Python"}
    assert "BUILD" not in sluicegate.__all__
    with pytest.raises(AttributeError):
        _ = sluicegate.BUILD  # type: ignore[attr-defined]


def test_defining_an_app_loads_neither_the_runtime_nor_the_stores() -> None:
    code = (
        "import sys, sluicegate\n"
        "app = sluicegate.App(); app.queue('q')\n"
        f"print(sorted(m for m in sys.modules if m.startswith({RUNNING!r})))\n"
        "sluicegate.Runtime\n"
        f"print(sorted(m for m in sys.modules if m.startswith({RUNNING!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[0] == "[]"
    assert "sluicegate.runtime.driver" in out[1] and "sluicegate.store" in out[1]


# ---------------------------------------------------------------------- run (blocking)


def test_run_drains_a_sqlite_store_until_empty(tmp_path: Path) -> None:
    seen: list[str] = []
    app = make_app(seen)
    url = f"sqlite:///{tmp_path / 'jobs.db'}"

    async def prefill() -> None:
        async with sluicegate.open_store(url) as store:
            await fill(store, app, 25)

    asyncio.run(prefill())
    started = time.monotonic()
    summary = sluicegate.run(app, url, until_empty=True)
    assert time.monotonic() - started < RUN_TIMEOUT
    assert isinstance(summary, sluicegate.RunSummary)
    assert summary.stopped_by == "queues empty"
    assert summary.processed == 25 and sorted(seen) == sorted(bodies(25))
    (mapping,) = summary.mappings
    assert mapping.name == "orders->process" and mapping.errors == 0


def test_run_on_a_store_object_closes_it_and_the_memory_store_keeps_its_messages() -> None:
    seen: list[str] = []
    app = make_app(seen, fail=lambda body: body == json.dumps({"id": 0}))
    store = MemoryStore()

    async def filled() -> None:
        async with store:
            await fill(store, app, 3)

    asyncio.run(filled())
    summary = sluicegate.run(app, store, duration=0.3)
    assert summary.stopped_by == "duration reached"
    assert summary.processed == 2  # the failed one waits out its visibility timeout

    async def counts() -> Any:
        async with store:
            return await store.counts("orders")

    assert asyncio.run(counts()).total == 1


def test_run_refuses_a_running_loop_and_names_the_way_instead() -> None:
    async def inside() -> None:
        with pytest.raises(RuntimeError, match="arun"):
            sluicegate.run(make_app([]), "memory://", until_empty=True)

    asyncio.run(inside())


def test_run_refuses_what_is_not_an_app_and_durations_it_would_misread(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'never.db'}"
    with pytest.raises(TypeError, match=r"sluicegate\.App"):
        sluicegate.run("jobs.py", url, until_empty=True)  # type: ignore[arg-type]
    for duration in (0, -1.0, float("nan")):
        with pytest.raises(InputError, match=r"duration .* must be above 0"):
            sluicegate.run(make_app([]), url, duration=duration)
    with pytest.raises(InputError, match="grace_period"):
        asyncio.run(sluicegate.arun(make_app([]), url, grace_period=-1))
    assert not (tmp_path / "never.db").exists()  # refused before the store was opened


def test_run_with_handle_signals_stops_on_sigterm_as_the_command_does(tmp_path: Path) -> None:
    script = tmp_path / "serve_until_signal.py"
    script.write_text(
        "import signal\n"
        "import sluicegate\n"
        "app = sluicegate.App()\n"
        "app.queue('q')\n"
        "app.map('q', app.function(name='noop')(lambda event, context: None))\n"
        "said = []\n"
        "def tick(second, snapshots):  # once the run's SIGTERM handler is in place\n"
        "    if not said and signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:\n"
        "        said.append(print('serving', flush=True))\n"
        "summary = sluicegate.run(app, 'memory://', handle_signals=True, on_second=tick)\n"
        "print(summary.stopped_by, flush=True)\n"
    )
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "serving"
        child.send_signal(signal.SIGTERM)
        out, _ = child.communicate(timeout=RUN_TIMEOUT)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0 and out.strip() == "signal SIGTERM"


# ---------------------------------------------------------------------- start (a thread)


def test_start_serves_in_a_thread_stopped_from_sync_code(store_url: str) -> None:
    seen: list[str] = []
    app = make_app(seen)
    with sluicegate.start(app, store_url) as background:
        assert not background.done and background.summary is None
        for body in bodies(8):  # the queues exist once start returns
            background.call(lambda running, body=body: running.store.send("orders", body))
        deadline = time.monotonic() + RUN_TIMEOUT
        while background.call(lambda running: running.metrics.totals().messages_deleted) < 8:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        background.stop("the test is done")
        summary = background.wait(RUN_TIMEOUT)
    assert background.done and background.summary is summary
    assert summary.stopped_by == "the test is done"
    assert summary.processed == 8 and sorted(seen) == sorted(bodies(8))
    with pytest.raises(RuntimeError, match="has ended"):
        background.call(lambda running: None)
    background.stop()  # nothing to stop: no error


def test_leaving_the_start_block_stops_the_run_and_a_run_may_end_by_itself() -> None:
    app = make_app([])
    with sluicegate.start(app, "memory://") as background:
        with pytest.raises(TimeoutError, match="still going"):
            background.wait(0.05)
    assert background.summary is not None
    assert background.summary.stopped_by == "stop requested"
    ended = sluicegate.start(app, "memory://", duration=0.2)
    assert ended.wait(RUN_TIMEOUT).stopped_by == "duration reached"


def test_start_raises_what_stopped_it_from_serving(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown store URL"):
        sluicegate.start(make_app([]), "nope://")
    with pytest.raises(InputError, match="duration"):
        sluicegate.start(make_app([]), "memory://", duration=0)


def test_the_run_thread_cannot_wait_for_itself() -> None:
    errors: list[str] = []
    holder: list[sluicegate.BackgroundApp] = []

    def listener(second: int, snapshots: Mapping[str, MetricsSecond]) -> None:
        for attempt in (lambda: holder[0].call(lambda r: None), lambda: holder[0].wait()):
            try:
                attempt()
            except RuntimeError as exc:
                errors.append(str(exc))

    holder.append(sluicegate.start(make_app([]), "memory://", on_second=listener))
    holder[0].stop()
    holder[0].wait(RUN_TIMEOUT)  # the final flush called the listener on the run's thread
    assert errors and all("itself" in e for e in errors)


# ---------------------------------------------------------------------- arun


def test_arun_runs_on_the_callers_loop_and_reports_every_second(store_url: str) -> None:
    seen: list[str] = []
    app = make_app(seen)
    seconds: list[tuple[int, Mapping[str, MetricsSecond]]] = []

    async def main() -> sluicegate.RunSummary:
        store = sluicegate.open_store(store_url)
        async with store:
            await fill(store, app, 12)
            summary = await asyncio.wait_for(
                sluicegate.arun(app, store, until_empty=True,
                                on_second=lambda s, snaps: seconds.append((s, snaps))),
                RUN_TIMEOUT)
            # the store is the caller's: still open after the run
            assert (await store.counts("orders")).total == 0
        return summary

    summary = asyncio.run(main())
    assert summary.processed == 12 and sorted(seen) == sorted(bodies(12))
    assert seconds, "the run's last second is closed and reported when it ends"
    assert sum(snaps[ALL_MAPPINGS].messages_deleted for _, snaps in seconds) == 12
    # a second that closed while the run was still setting up has no entry for the
    # mapping yet (only the aggregate, "*")
    invocations = [snaps["orders->process"].invocations for _, snaps in seconds
                   if "orders->process" in snaps]
    assert sum(invocations) == summary.mappings[0].invocations


def test_a_cancelled_arun_stops_at_once() -> None:
    app = make_app([])

    async def main() -> None:
        task = asyncio.create_task(sluicegate.arun(app, "memory://"))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, RUN_TIMEOUT)

    asyncio.run(main())


# ---------------------------------------------------------------------- serve


def test_serve_sends_observes_and_is_stopped_from_another_task(store_url: str) -> None:
    seen: list[str] = []
    app = make_app(seen)

    async def main() -> tuple[sluicegate.RunningApp, sluicegate.RunSummary]:
        async with sluicegate.serve(app, store_url) as running:
            # the queues exist as the block starts
            for body in bodies(15):
                await running.store.send("orders", body)
            assert not running.done and running.summary is None

            async def stopper() -> None:
                await until(lambda: running.metrics.totals().messages_deleted == 15,
                            "15 deletes")
                running.stop("the test is done")

            stopping = asyncio.create_task(stopper())
            summary = await asyncio.wait_for(running.wait(), RUN_TIMEOUT)
            await stopping
            assert running.done
        return running, summary

    running, summary = asyncio.run(main())
    assert summary.stopped_by == "the test is done"
    assert summary.processed == 15 and sorted(seen) == sorted(bodies(15))
    assert running.summary == summary
    totals = running.metrics.totals()
    assert totals.invocations == summary.mappings[0].invocations and totals.errors == 0


def test_leaving_the_serve_block_stops_the_run_and_closes_a_store_it_opened(
    store_url: str,
) -> None:
    app = make_app([])

    async def main() -> tuple[sluicegate.RunningApp, float]:
        started = time.monotonic()
        async with sluicegate.serve(app, store_url) as running:
            await running.store.send("orders", "one")
            await until(lambda: running.metrics.totals().messages_deleted == 1, "the delete")
        return running, time.monotonic() - started

    running, elapsed = asyncio.run(main())
    assert elapsed < RUN_TIMEOUT
    assert running.summary is not None and running.summary.stopped_by == "stop requested"
    assert running.summary.processed == 1
    if store_url.startswith("sqlite"):
        with pytest.raises(StoreError, match="not open"):
            asyncio.run(running.store.counts("orders"))


def test_an_error_in_the_serve_block_cancels_the_run_and_is_raised() -> None:
    app = make_app([])

    async def main() -> sluicegate.RunningApp:
        with pytest.raises(LookupError, match="from the block"):
            async with sluicegate.serve(app, "memory://", grace_period=60) as running:
                await asyncio.sleep(0.1)
                raise LookupError("from the block")
        return running

    started = time.monotonic()
    running = asyncio.run(main())
    assert time.monotonic() - started < 10  # not the 60 s grace period
    assert running.done and running.summary is None


def test_serve_ends_by_itself_until_empty(store_url: str) -> None:
    """The queues are filled first: a run until empty that starts on empty queues ends
    as soon as it looks."""
    seen: list[str] = []
    app = make_app(seen)

    async def main() -> sluicegate.RunSummary:
        async with sluicegate.open_store(store_url) as store:
            await fill(store, app, 5)
            async with sluicegate.serve(app, store, until_empty=True) as running:
                return await asyncio.wait_for(running.wait(), RUN_TIMEOUT)

    summary = asyncio.run(main())
    assert summary.stopped_by == "queues empty" and summary.processed == 5
