"""Handler invocation: sync and async handlers, errors, timeouts, zombies, capacity."""

from __future__ import annotations

import asyncio
import contextvars
import decimal
import logging
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from sluicegate.core.config import FunctionConfig
from sluicegate.errors import ConfigError
from sluicegate.runtime.events import LambdaContext
from sluicegate.runtime.invoker import (
    HANDLER_LOGGER_NAME,
    MAX_RESPONSE_BYTES,
    HandlerResult,
    Invoker,
    describe_exception,
    marshal_response,
)

FUNCTION = FunctionConfig("process", timeout=3)
SHORT = 0.1
"""Timeout of the tests that time out (seconds)."""


def run(coro: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await coro

    return asyncio.run(main())


def invoke_once(handler: Callable[..., Any], event: Any = None, **kwargs: Any) -> HandlerResult:
    async def main() -> HandlerResult:
        invoker = Invoker(handler, function=FUNCTION, max_workers=2, **kwargs)
        try:
            return await invoker.invoke(event if event is not None else {}, invoker.new_context())
        finally:
            invoker.close()

    return asyncio.run(main())


def wait_until(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.005)


# --------------------------------------------------------------------------- kinds


def test_sync_handler_runs_on_a_worker_thread_and_returns_its_response() -> None:
    seen: dict[str, Any] = {}

    def handler(event: Any, context: LambdaContext) -> Any:
        seen["thread"] = threading.current_thread().name
        seen["remaining"] = context.get_remaining_time_in_millis()
        return {"echo": event["x"], "tuple": (1, 2)}

    result = invoke_once(handler, {"x": 1})
    assert result.ok and not result.function_error
    assert result.response == {"echo": 1, "tuple": [1, 2]}
    assert result.error is None and result.error_text == "" and not result.timed_out
    assert seen["thread"].startswith("sluicegate-process-")
    assert 2_900 < seen["remaining"] <= 3_000
    assert 0 <= result.duration < 1


def test_async_handler_runs_on_the_loop() -> None:
    async def handler(event: Any, context: Any) -> Any:
        await asyncio.sleep(0)
        return {"thread": threading.current_thread() is threading.main_thread()}

    invoker = Invoker(handler, function=FUNCTION, max_workers=1)
    assert invoker.is_async
    assert invoke_once(handler).response == {"thread": True}


def test_callable_object_with_async_call_is_async() -> None:
    class Handler:
        async def __call__(self, event: Any, context: Any) -> str:
            return "called"

    assert Invoker(Handler(), function=FUNCTION, max_workers=1).is_async
    assert invoke_once(Handler()).response == "called"


def test_sync_handler_returning_an_awaitable_has_it_awaited() -> None:
    async def work(event: Any) -> int:
        await asyncio.sleep(0)
        return event["n"] * 2

    def handler(event: Any, context: Any) -> Awaitable[int]:
        return work(event)

    invoker = Invoker(handler, function=FUNCTION, max_workers=1)
    assert not invoker.is_async
    assert invoke_once(handler, {"n": 21}).response == 42


def test_context_variables_reach_sync_handlers() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var")

    def handler(event: Any, context: Any) -> str:
        return var.get()

    async def main() -> HandlerResult:
        var.set("from the caller")
        invoker = Invoker(handler, function=FUNCTION, max_workers=1)
        result = await invoker.invoke({}, invoker.new_context())
        invoker.close()
        return result

    assert asyncio.run(main()).response == "from the caller"


# --------------------------------------------------------------------------- failures


def test_exception_becomes_an_error_result_and_is_logged_with_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def handler(event: Any, context: Any) -> None:
        raise ValueError("boom")

    with caplog.at_level(logging.ERROR, logger=HANDLER_LOGGER_NAME):
        result = invoke_once(handler)
    assert isinstance(result.error, ValueError)
    assert result.error_text == "ValueError: boom"
    assert result.function_error and result.response is None
    (entry,) = caplog.records
    assert entry.name == HANDLER_LOGGER_NAME and entry.levelno == logging.ERROR
    assert entry.exc_info is not None and entry.exc_info[0] is ValueError
    assert "ValueError: boom" in entry.getMessage()


def test_async_exception_becomes_an_error_result() -> None:
    async def handler(event: Any, context: Any) -> None:
        raise KeyError("missing")

    result = invoke_once(handler)
    assert isinstance(result.error, KeyError)
    assert result.error_text == "KeyError: 'missing'"


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_sys_exit_and_other_base_exceptions_are_function_errors(kind: str) -> None:
    class Custom(BaseException):
        pass

    for exc in (SystemExit(3), Custom("odd")):

        def sync_handler(event: Any, context: Any, exc: BaseException = exc) -> None:
            raise exc

        async def async_handler(event: Any, context: Any, exc: BaseException = exc) -> None:
            raise exc

        result = invoke_once(sync_handler if kind == "sync" else async_handler)
        assert result.error is exc
        assert result.function_error


def test_keyboard_interrupt_on_the_loop_is_not_swallowed() -> None:
    async def handler(event: Any, context: Any) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        invoke_once(handler)


def test_unserializable_response_is_invalid_json() -> None:
    result = invoke_once(lambda event, context: {"ids": {1, 2}})
    assert result.invalid_json and result.function_error
    assert result.error is None and result.response is None
    assert result.error_text.startswith("Runtime.MarshalError: Unable to marshal response:")
    assert "set" in result.error_text


def test_handler_raising_timeout_error_itself_is_an_error_not_a_timeout() -> None:
    async def handler(event: Any, context: Any) -> None:
        raise TimeoutError("downstream")

    result = invoke_once(handler)
    assert not result.timed_out
    assert result.error_text == "TimeoutError: downstream"


def test_describe_exception_is_one_line() -> None:
    assert describe_exception(ValueError("a\nb")) == "ValueError: a b"
    assert describe_exception(RuntimeError()) == "RuntimeError"
    assert len(describe_exception(ValueError("x" * 5000))) == 1000


def test_marshal_response_follows_the_aws_runtime() -> None:
    assert marshal_response(None) == (None, "")
    assert marshal_response("text") == ("text", "")
    assert marshal_response({"d": decimal.Decimal("1.50"), "i": decimal.Decimal(7)}) == (
        {"d": 1.5, "i": 7},
        "",
    )
    assert marshal_response(b'{"batchItemFailures": []}') == ({"batchItemFailures": []}, "")
    assert marshal_response(b"\x00raw") == (b"\x00raw", "")
    response, error = marshal_response({1: "int keys become strings"})
    assert response == {"1": "int keys become strings"} and error == ""
    loop: list[Any] = []
    loop.append(loop)
    response, error = marshal_response(loop)
    assert response is None and "Circular reference" in error


def test_a_response_above_6_mb_fails_the_invocation() -> None:
    """As Lambda's Function.ResponseSizeTooLarge: a batch whose handler returned too much
    is not deleted (it was, as a success, when the size went unchecked)."""
    just = "x" * (MAX_RESPONSE_BYTES - 2)  # with its quotes, exactly the limit
    assert marshal_response(just) == (just, "")
    for value, size in [
        (just + "x", MAX_RESPONSE_BYTES + 1),
        ("\x00" * (MAX_RESPONSE_BYTES // 6 + 1), (MAX_RESPONSE_BYTES // 6 + 1) * 6 + 2),
        (b"{" + b" " * MAX_RESPONSE_BYTES + b"}", MAX_RESPONSE_BYTES + 2),
        ({"items": [just]}, MAX_RESPONSE_BYTES + 13),
    ]:
        response, error = marshal_response(value)
        assert response is None
        assert error == (
            f"Function.ResponseSizeTooLarge: Response payload size ({size} bytes) exceeded "
            f"maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)"
        )
    result = asyncio.run(
        Invoker(lambda event, context: {"items": [just]}, function=FUNCTION, max_workers=1)
        .invoke({}, None)
    )
    assert result.invalid_json and result.function_error


# --------------------------------------------------------------------------- timeouts


def test_async_handler_is_cancelled_at_its_timeout(caplog: pytest.LogCaptureFixture) -> None:
    cancelled = []

    async def handler(event: Any, context: Any) -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    with caplog.at_level(logging.ERROR, logger=HANDLER_LOGGER_NAME):
        result = invoke_once(handler, timeout=SHORT)
    assert result.timed_out and result.function_error and result.error is None
    assert result.error_text == "Task timed out after 0.10 seconds"
    assert SHORT <= result.duration < SHORT + 0.5
    assert cancelled == [True]
    assert "Task timed out" in caplog.records[-1].getMessage()


def test_async_handler_that_swallows_its_cancellation_still_timed_out() -> None:
    async def handler(event: Any, context: Any) -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            pass
        return "too late"

    result = invoke_once(handler, timeout=SHORT)
    assert result.timed_out and result.response is None


def test_timed_out_sync_handler_becomes_a_zombie_and_capacity_is_kept() -> None:
    release = threading.Event()
    finished = threading.Event()

    def handler(event: Any, context: Any) -> str:
        if event.get("block"):
            release.wait(5)
            finished.set()
            return "late"
        return "prompt"

    async def main() -> None:
        invoker = Invoker(handler, function=FUNCTION, max_workers=1, timeout=SHORT)
        started = time.monotonic()
        result = await invoker.invoke({"block": True}, invoker.new_context())
        assert result.timed_out and result.response is None
        assert time.monotonic() - started < SHORT + 0.5  # returned at once, thread still busy
        assert invoker.zombies == 1
        # The only worker is stuck, yet a new invocation runs without waiting for it.
        result = await invoker.invoke({}, invoker.new_context())
        assert result.response == "prompt"
        assert invoker.threads == 2
        release.set()
        await asyncio.to_thread(finished.wait, 2)
        await asyncio.to_thread(wait_until, lambda: invoker.zombies == 0 and invoker.threads == 1)
        invoker.close()

    asyncio.run(main())


def test_late_result_of_a_timed_out_sync_coroutine_is_discarded_quietly() -> None:
    release = threading.Event()

    async def late() -> str:
        return "never seen"

    def handler(event: Any, context: Any) -> Awaitable[str]:
        release.wait(5)
        return late()

    async def main() -> None:
        invoker = Invoker(handler, function=FUNCTION, max_workers=1, timeout=SHORT)
        result = await invoker.invoke({}, invoker.new_context())
        assert result.timed_out
        release.set()
        await asyncio.to_thread(wait_until, lambda: invoker.zombies == 0)
        await asyncio.sleep(0.01)  # the late outcome reaches the loop and is dropped
        invoker.close()

    asyncio.run(main())  # filterwarnings=error: a never-awaited coroutine would fail here


# --------------------------------------------------------------------------- cancellation


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_cancelling_the_caller_propagates(kind: str) -> None:
    release = threading.Event()

    def sync_handler(event: Any, context: Any) -> None:
        release.wait(5)

    async def async_handler(event: Any, context: Any) -> None:
        await asyncio.sleep(10)

    async def main() -> None:
        handler = sync_handler if kind == "sync" else async_handler
        invoker = Invoker(handler, function=FUNCTION, max_workers=1)
        task = asyncio.create_task(invoker.invoke({}, invoker.new_context()))
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        if kind == "sync":
            assert invoker.zombies == 1
            release.set()
            await asyncio.to_thread(wait_until, lambda: invoker.zombies == 0)
        invoker.close()

    asyncio.run(main())


# --------------------------------------------------------------------------- capacity


def test_worker_threads_bound_concurrency_and_resize_changes_it() -> None:
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def handler(event: Any, context: Any) -> None:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.03)
        with lock:
            state["now"] -= 1

    async def burst(invoker: Invoker, n: int) -> int:
        state["peak"] = 0
        results = await asyncio.gather(
            *(invoker.invoke({}, invoker.new_context()) for _ in range(n))
        )
        assert all(r.ok for r in results)
        return state["peak"]

    async def main() -> None:
        invoker = Invoker(handler, function=FUNCTION, max_workers=2)
        assert invoker.threads == 0  # started on demand
        assert await burst(invoker, 6) == 2
        invoker.resize(4)
        assert invoker.max_workers == 4
        assert await burst(invoker, 8) == 4
        invoker.resize(1)
        await asyncio.to_thread(wait_until, lambda: invoker.threads == 1)
        assert await burst(invoker, 3) == 1
        invoker.close()
        assert invoker.threads == 0

    asyncio.run(main())


def test_closed_invoker_refuses_invocations() -> None:
    async def main() -> None:
        invoker = Invoker(lambda e, c: None, function=FUNCTION, max_workers=1)
        await invoker.invoke({}, invoker.new_context())
        invoker.close(wait=True)
        assert invoker.threads == 0
        with pytest.raises(RuntimeError, match="closed"):
            await invoker.invoke({}, invoker.new_context())

    asyncio.run(main())


def test_invalid_arguments_are_refused() -> None:
    with pytest.raises(TypeError):
        Invoker("not callable", function=FUNCTION, max_workers=1)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_workers"):
        Invoker(lambda e, c: None, function=FUNCTION, max_workers=0)
    with pytest.raises(ConfigError, match="timeout"):
        Invoker(lambda e, c: None, function=FUNCTION, max_workers=1, timeout=0)
    invoker = Invoker(lambda e, c: None, function=FUNCTION, max_workers=1)
    with pytest.raises(ConfigError):
        invoker.resize(0)
    assert invoker.timeout == 3.0
    assert "process" in repr(invoker)


def test_new_context_uses_the_invokers_clock_and_timeout() -> None:
    now = [1000.0]
    invoker = Invoker(
        lambda e, c: None,
        function=FunctionConfig("process", timeout=3, memory_size=256),
        max_workers=1,
        clock=lambda: now[0],
        timeout=0.5,
    )
    context = invoker.new_context(aws_request_id="req-1")
    assert context.aws_request_id == "req-1"
    assert context.memory_limit_in_mb == "256"
    assert context.get_remaining_time_in_millis() == 500
    now[0] += 0.2
    assert context.get_remaining_time_in_millis() == 300
    assert context.invoked_function_arn.endswith(":function:process")


def test_sync_handlers_do_not_block_the_event_loop() -> None:
    def handler(event: Any, context: Any) -> None:
        time.sleep(0.1)

    async def main() -> None:
        invoker = Invoker(handler, function=FUNCTION, max_workers=1)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        await invoker.invoke({}, invoker.new_context())
        task.cancel()
        invoker.close()
        assert ticks >= 5

    asyncio.run(main())


def test_run_helper_is_usable() -> None:  # keeps the helper honest for future tests
    async def value() -> int:
        return 1

    assert run(value()) == 1
    assert sys.version_info >= (3, 11)
