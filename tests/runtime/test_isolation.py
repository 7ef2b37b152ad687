"""Process isolation: handlers in execution environments of their own.

Starting an environment is a cold start (about 0.1-0.3 s), so the unit tests share one
invoker and one handler module, and each test asserts only what does not depend on which
environment the others left warm.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import textwrap
import time
from collections import Counter
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any

import pytest

import sluicegate
from sluicegate.core.config import FunctionConfig
from sluicegate.errors import ConfigError
from sluicegate.loader import load_app
from sluicegate.runtime.driver import Runtime
from sluicegate.runtime.invoker import HANDLER_LOGGER_NAME, HandlerResult
from sluicegate.runtime.isolation import (
    HandlerReference,
    IsolatedHandlerError,
    ProcessInvoker,
    handler_reference,
)
from sluicegate.store import open_store
from sluicegate.store.base import SendEntry

SHORT_TIMEOUT = 0.5
"""Timeout of the shared invoker (seconds): an override below Lambda's 1 s minimum. Cold
starts do not count against it."""

SLEEPER_SECONDS = 1.0
"""How long the handler that times out sleeps before leaving its mark."""

HANDLERS = '''
"""Handlers of sluicegate's isolation tests."""
import asyncio
import os
import time

import sluicegate

app = sluicegate.App()
app.queue("jobs", visibility_timeout=5)
invocations = 0  # module state: one count per execution environment


@app.function(timeout=1, memory_size=256, isolation="process")
def work(event, context):
    global invocations
    invocations += 1
    op = event.get("op")
    if op == "raise":
        raise ValueError("boom")
    if op == "exit":
        os._exit(3)
    if op == "sleep":
        time.sleep(event["seconds"])
        with open(event["marker"], "w") as marker:
            marker.write("the handler ran on after its timeout")
    if op == "unserializable":
        return object()
    if op == "bytes":
        return b"\\xff\\x00"
    if op == "awaitable":
        return later()
    return {
        "pid": os.getpid(),
        "invocations": invocations,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "request_id": context.aws_request_id,
        "memory": context.memory_limit_in_mb,
        "arn": context.invoked_function_arn,
        "event": event,
    }


async def later():
    await asyncio.sleep(0)
    return {"pid": os.getpid(), "awaited": True}


@app.function(timeout=1, isolation="process")
async def work_async(event, context):
    await asyncio.sleep(0.001)
    return {"pid": os.getpid(), "remaining_ms": context.get_remaining_time_in_millis()}


app.map("jobs", work)
'''

ORDERS = '''
"""An SQS batch handler as the aws-lambda-powertools documentation writes it."""
import json
import os

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)

import sluicegate

LEDGER = {ledger!r}

app = sluicegate.App()
# The visibility timeout leaves room for slow cold starts of process environments on a
# loaded machine (over a second seen): with 2 s, a batch whose environment took that long
# to start was deleted after its messages had become visible again, and one success was
# delivered a second time (which at-least-once delivery allows, but this test counts).
app.queue("orders", visibility_timeout=3, dead_letter_queue="orders-dlq", max_receive_count=3)

processor = BatchProcessor(event_type=EventType.SQS)


def note(**fields):
    with open(LEDGER, "a") as ledger:
        ledger.write(json.dumps(fields) + "\\n")


def record_handler(record):
    order = record.json_body["order"]
    attempt = int(record.attributes.approximate_receive_count)
    failed = order % 3 == 0 and attempt == 1
    note(order=order, attempt=attempt, ok=not failed)
    if failed:
        raise ValueError(f"order {{order}} failed")


@app.function(timeout=1, isolation="process")
def lambda_handler(event, context):
    note(invocation=os.getpid())
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )


app.map("orders", lambda_handler, batch_size=5, report_batch_item_failures=True,
        maximum_concurrency=4, scaling="fixed")
'''


def module_level_handler(event: Any, context: Any) -> dict[str, Any]:
    return {"pid": os.getpid(), "module": __name__}


def run(coro: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await coro

    return asyncio.run(main())


def reaped(pid: int) -> bool:
    """The process is gone, zombie included (Linux: no /proc entry)."""
    return not os.path.exists(f"/proc/{pid}")


needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")


@pytest.fixture(scope="module")
def handlers(tmp_path_factory: pytest.TempPathFactory) -> sluicegate.App:
    path = tmp_path_factory.mktemp("isolation") / "iso_handlers.py"
    path.write_text(HANDLERS)
    return load_app(str(path))


@pytest.fixture(scope="module")
def invoker(handlers: sluicegate.App) -> Iterator[ProcessInvoker]:
    function = handlers.functions["work"]
    shared = ProcessInvoker(
        handler_reference(handlers, function),
        function=function.config,
        max_workers=2,
        timeout=SHORT_TIMEOUT,
    )
    yield shared
    shared.close()


def invoke(invoker: ProcessInvoker, event: dict[str, Any]) -> HandlerResult:
    return run(invoker.invoke(event, invoker.new_context()))  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- configuration


def test_isolation_is_validated_and_defaults_to_environments_in_this_process() -> None:
    assert FunctionConfig("f").isolation == "module"
    assert FunctionConfig("f", isolation="process").isolation == "process"
    assert FunctionConfig("f", isolation="thread").isolation == "thread"  # the old name
    with pytest.raises(
        ConfigError, match=r"isolation='fork' is invalid: allowed 'module' or 'process' or"
    ):
        FunctionConfig("f", isolation="fork")  # type: ignore[arg-type]
    app = sluicegate.App()
    app.function(isolation="process")(module_level_handler)
    assert app.functions["module_level_handler"].config.isolation == "process"


def test_load_app_records_the_spec_and_references_use_it(
    handlers: sluicegate.App, tmp_path: Path
) -> None:
    assert handlers.source is not None and handlers.source.endswith("iso_handlers.py")
    reference = handler_reference(handlers, handlers.functions["work"])
    assert reference == HandlerReference("app", handlers.source, "work")
    assert sluicegate.App().source is None


def test_a_module_level_handler_of_an_app_defined_in_code_is_imported_by_name() -> None:
    app = sluicegate.App()
    app.function(isolation="process")(module_level_handler)
    reference = handler_reference(app, app.functions["module_level_handler"])
    assert reference == HandlerReference("import", __name__, "module_level_handler")

    async def main() -> HandlerResult:
        isolated = ProcessInvoker(reference, function=FunctionConfig("f"), max_workers=1)
        try:
            return await isolated.invoke({}, isolated.new_context())
        finally:
            isolated.close()

    result = run(main())
    assert result.ok, result.error_text
    assert result.response["module"] == __name__
    assert result.response["pid"] != os.getpid()


def test_an_unimportable_handler_is_refused_when_the_runtime_builds(tmp_path: Path) -> None:
    app = sluicegate.App()
    app.queue("q")

    @app.function(isolation="process")
    def nested(event: Any, context: Any) -> None:
        return None

    app.map("q", nested)

    async def main() -> None:
        store = open_store(f"sqlite:///{tmp_path / 'refused.db'}")
        await store.open()
        try:
            await Runtime(app, store).run(until_empty=True)
        finally:
            await store.close()

    with pytest.raises(ConfigError) as caught:
        run(main())
    message = str(caught.value)
    assert "\n" not in message
    assert "function 'nested': isolation='process' is invalid" in message
    assert "importable handler" in message and "App loaded from a file or module path" in message


# --------------------------------------------------------------------------- the invoker


def test_warm_environments_are_reused_most_recent_first(invoker: ProcessInvoker) -> None:
    async def main() -> tuple[list[HandlerResult], list[HandlerResult]]:
        together = await asyncio.gather(
            *(invoker.invoke({"n": n}, invoker.new_context()) for n in range(2))
        )
        one_by_one = [await invoker.invoke({"n": n}, invoker.new_context()) for n in range(5)]
        return list(together), one_by_one

    started = time.monotonic()
    together, one_by_one = run(main())
    assert all(r.ok for r in together + one_by_one)
    assert {r.response["pid"] for r in together} != {os.getpid()}
    assert len({r.response["pid"] for r in together}) == 2  # two at once: two environments
    # One at a time, the warmest environment serves them all (LIFO), keeping its state.
    pids = [r.response["pid"] for r in one_by_one]
    assert len(set(pids)) == 1
    counts = [r.response["invocations"] for r in one_by_one]
    assert counts == list(range(counts[0], counts[0] + 5))
    assert invoker.environments <= invoker.max_workers == 2
    assert time.monotonic() - started < 5


@needs_proc
def test_idle_process_environments_are_reaped_and_cold_starts_reported(
    handlers: sluicegate.App,
) -> None:
    function = handlers.functions["work"]
    cold: list[int] = []
    invoker = ProcessInvoker(
        handler_reference(handlers, function),
        function=function.config,
        max_workers=2,
        idle_timeout=0.2,
        on_cold_start=lambda: cold.append(1),
    )

    async def main() -> tuple[int, int, int]:
        try:
            first = await invoker.invoke({}, invoker.new_context())
            warm = await invoker.invoke({}, invoker.new_context())
            await asyncio.sleep(0.3)  # idle past its timeout: reaped at the next invocation
            cold_again = await invoker.invoke({}, invoker.new_context())
            return first.response["pid"], warm.response["pid"], cold_again.response["pid"]
        finally:
            invoker.close()

    first, warm, cold_again = run(main())
    assert first == warm != cold_again
    assert invoker.cold_starts == len(cold) == 2
    assert reaped(first)


def test_event_context_and_response_cross_the_process_boundary(invoker: ProcessInvoker) -> None:
    event = {"order": 7, "text": "naïve ☃", "nested": [1, 2.5, None, True]}

    async def main() -> HandlerResult:
        context = invoker.new_context(aws_request_id="req-1")
        return await invoker.invoke(event, context)

    result = run(main())
    assert result.ok, result.error_text
    response = result.response
    assert response["event"] == event
    assert response["request_id"] == "req-1"
    assert response["memory"] == "256"
    assert response["arn"].endswith(":function:work")
    assert 0 < response["remaining_ms"] <= SHORT_TIMEOUT * 1000
    assert 0 <= result.duration < SHORT_TIMEOUT

    awaited = invoke(invoker, {"op": "awaitable"})
    assert awaited.ok and awaited.response["awaited"] is True
    raw = invoke(invoker, {"op": "bytes"})
    assert raw.ok and raw.response == b"\xff\x00"  # not JSON: passed through as bytes
    with pytest.raises(TypeError, match="must be JSON"):
        run(invoker.invoke({"when": object()}, invoker.new_context()))


def test_handler_failures_are_function_errors_logged_with_their_traceback(
    invoker: ProcessInvoker, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger=HANDLER_LOGGER_NAME):
        raised = invoke(invoker, {"op": "raise"})
        unserializable = invoke(invoker, {"op": "unserializable"})
    assert raised.function_error and raised.error_text == "ValueError: boom"
    assert isinstance(raised.error, IsolatedHandlerError) and raised.error.error_type == "ValueError"
    assert unserializable.invalid_json
    assert unserializable.error_text.startswith("Runtime.MarshalError: Unable to marshal")

    failed = [r for r in caplog.records if "failed: ValueError: boom" in r.getMessage()]
    assert len(failed) == 1  # logged once, by the environment, relayed here
    assert failed[0].name == HANDLER_LOGGER_NAME and failed[0].process != os.getpid()
    assert "Traceback" in (failed[0].exc_text or "") and 'raise ValueError("boom")' in (
        failed[0].exc_text or ""
    )
    assert any("Runtime.MarshalError" in r.getMessage() for r in caplog.records)
    assert invoke(invoker, {}).ok  # a handler's exception does not end its environment


@needs_proc
def test_a_timeout_kills_the_environment(invoker: ProcessInvoker, tmp_path: Path) -> None:
    marker = tmp_path / "woke"

    async def main() -> None:
        before = await invoker.invoke({}, invoker.new_context())  # the warmest: runs next
        started = time.monotonic()
        timed_out = await invoker.invoke(
            {"op": "sleep", "seconds": SLEEPER_SECONDS, "marker": str(marker)},
            invoker.new_context(),
        )
        assert timed_out.timed_out and timed_out.function_error
        assert timed_out.error_text == f"Task timed out after {SHORT_TIMEOUT:.2f} seconds"
        assert SHORT_TIMEOUT <= time.monotonic() - started < SHORT_TIMEOUT + 0.5
        after = await invoker.invoke({}, invoker.new_context())
        assert after.ok and after.response["pid"] != before.response["pid"]
        # The sleeper was killed: its side effect, due after its sleep, never happens.
        await asyncio.sleep(max(0.0, started + SLEEPER_SECONDS + 0.3 - time.monotonic()))
        assert not marker.exists()
        assert reaped(before.response["pid"])  # and reaped while the loop ran

    run(main())


@needs_proc
def test_cancelling_an_invocation_kills_its_environment(
    invoker: ProcessInvoker, tmp_path: Path
) -> None:
    marker = tmp_path / "woke"

    async def main() -> None:
        before = await invoker.invoke({}, invoker.new_context())  # the warmest: runs next
        sleeper = asyncio.ensure_future(
            invoker.invoke({"op": "sleep", "seconds": 0.3, "marker": str(marker)},
                           invoker.new_context())
        )
        await asyncio.sleep(0.1)
        sleeper.cancel()  # as the runtime does when its grace period is over
        with pytest.raises(asyncio.CancelledError):
            await sleeper
        after = await invoker.invoke({}, invoker.new_context())
        assert after.ok and after.response["pid"] != before.response["pid"]
        await asyncio.sleep(0.4)
        assert not marker.exists()
        assert reaped(before.response["pid"])

    run(main())


@needs_proc
def test_an_exiting_handler_is_a_function_error_and_its_environment_is_replaced(
    invoker: ProcessInvoker,
) -> None:
    invoke(invoker, {})  # warm
    exited = invoke(invoker, {"op": "exit"})
    assert exited.function_error
    assert exited.error_text == "Runtime.ExitError: Runtime exited with error: exit status 3"
    assert isinstance(exited.error, IsolatedHandlerError)
    assert exited.error.error_type == "Runtime.ExitError"
    recovered = invoke(invoker, {})
    assert recovered.ok and recovered.response["pid"] != os.getpid()


def test_an_async_handler_runs_on_the_environments_loop(handlers: sluicegate.App) -> None:
    function = handlers.functions["work_async"]

    async def main() -> list[HandlerResult]:
        isolated = ProcessInvoker(
            handler_reference(handlers, function), function=function.config, max_workers=1
        )
        try:
            # Cancelled during its cold start, the environment goes on starting and
            # serves the next invocations: one cold start in all.
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(isolated.invoke({}, isolated.new_context()), 0.01)
            results = [await isolated.invoke({}, isolated.new_context()) for _ in range(3)]
            assert isolated.cold_starts == 1
            return results
        finally:
            isolated.close(wait=False)

    results = run(main())
    assert all(r.ok for r in results), [r.error_text for r in results]
    assert len({r.response["pid"] for r in results}) == 1
    assert 0 < results[0].response["remaining_ms"] <= 1000


def test_a_handler_that_cannot_be_imported_fails_its_invocations(
    handlers: sluicegate.App,
) -> None:
    assert handlers.source is not None
    reference = HandlerReference("app", handlers.source, "missing")

    async def main() -> HandlerResult:
        isolated = ProcessInvoker(reference, function=FunctionConfig("missing"), max_workers=1)
        result = await isolated.invoke({}, isolated.new_context())
        assert isolated.environments == 0  # a failed start frees its slot
        isolated.close()
        with pytest.raises(RuntimeError, match="closed"):
            await isolated.invoke({}, isolated.new_context())
        return result

    result = run(main())
    assert result.function_error
    assert result.error_text.startswith("Runtime.ImportModuleError: Unable to import function")
    assert "has no function 'missing'" in result.error_text


@needs_proc
def test_close_ends_every_environment_and_leaves_no_zombie(handlers: sluicegate.App) -> None:
    function = handlers.functions["work"]
    reference = handler_reference(handlers, function)

    async def main(wait: bool) -> list[int]:
        isolated = ProcessInvoker(reference, function=function.config, max_workers=3)
        results = await asyncio.gather(
            *(isolated.invoke({}, isolated.new_context()) for _ in range(3))
        )
        isolated.close(wait=wait)
        assert isolated.environments == 0
        return [r.response["pid"] for r in results]

    for wait in (True, False):
        pids = run(main(wait))
        assert len(set(pids)) == 3
        assert all(reaped(pid) for pid in pids)


# --------------------------------------------------------------------------- the runtime


@needs_proc
def test_powertools_batch_handler_under_concurrency_loses_nothing(tmp_path: Path) -> None:
    pytest.importorskip("aws_lambda_powertools")
    ledger = tmp_path / "ledger.jsonl"
    app_file = tmp_path / "orders_app.py"
    app_file.write_text(textwrap.dedent(ORDERS.format(ledger=str(ledger))))
    app = load_app(str(app_file))  # as the CLI loads it
    orders = 60

    async def main() -> Any:
        store = open_store(f"sqlite:///{tmp_path / 'orders.db'}")
        await store.open()
        try:
            runtime = Runtime(app, store, grace_period=5)
            await runtime.prepare()
            for start in range(0, orders, 10):
                await store.send_batch(
                    "orders",
                    [SendEntry(json.dumps({"order": n})) for n in range(start, start + 10)],
                )
            summary = await runtime.run(until_empty=True)
            counts = {name: await store.counts(name) for name in app.queues}
            return summary, counts, runtime.runners[0].invoker
        finally:
            await store.close()

    started = time.monotonic()
    summary, counts, invoker = run(main())
    elapsed = time.monotonic() - started

    lines = [json.loads(line) for line in ledger.read_text().splitlines()]
    invocation_pids = [line["invocation"] for line in lines if "invocation" in line]
    records = [line for line in lines if "order" in line]
    successes = Counter(r["order"] for r in records if r["ok"])
    failures = [r for r in records if not r["ok"]]

    # Every order succeeded once and was deleted once: nothing was delivered again after
    # it succeeded (a mixed-up batchItemFailures would retry a success or drop a failure).
    assert successes == Counter(range(orders))
    assert summary.processed == orders
    # Every record that failed was retried, and succeeded on a later receive.
    assert {r["order"] for r in failures} == {n for n in range(orders) if n % 3 == 0}
    for failed in failures:
        assert any(
            r["order"] == failed["order"] and r["ok"] and r["attempt"] > failed["attempt"]
            for r in records
        )
    # Nothing lost: accepted = processed + queued + dead-lettered.
    dead = counts["orders-dlq"].visible
    assert orders == summary.processed + counts["orders"].total + dead
    assert counts["orders"].total == 0 and dead == 0

    # Environments were reused, and never more than maximum_concurrency were alive (the
    # invoker's bound also covers the function's internal queue of asynchronous
    # invocations, which starts none while it has no events).
    assert isinstance(invoker, ProcessInvoker)
    assert len(invocation_pids) == summary.mappings[0].invocations
    assert 1 < len(set(invocation_pids)) <= 4 < len(invocation_pids)
    assert invoker.cold_starts == len(set(invocation_pids))
    assert os.getpid() not in invocation_pids
    assert invoker.environments == 0  # closed by the runtime
    assert all(reaped(pid) for pid in set(invocation_pids))
    # A bound far above the ~7 s this takes (two visibility timeouts and cold starts), so
    # only a stuck run trips it.
    assert elapsed < 60

