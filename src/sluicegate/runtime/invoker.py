"""Running one handler invocation under the function's timeout.

An :class:`Invoker` wraps one handler and turns every way an invocation can end into a
:class:`HandlerResult`: a JSON-round-tripped response, an exception, a timeout or a
response the runtime could not serialize. Nothing a handler does escapes
:meth:`Invoker.invoke`, except cancellation of the caller's own task and
``KeyboardInterrupt`` on the event loop's thread.

Async handlers (``async def``, callable objects with an ``async def __call__``) run inline
on the event loop inside ``asyncio.timeout``: on timeout the handler is cancelled, as
Lambda stops an invocation. A coroutine that blocks the loop without awaiting cannot be
interrupted; its timeout is noticed when it next yields or returns.

Sync handlers run on worker threads. A thread cannot be stopped, so on timeout the
invocation is reported as timed out at once while its thread runs on in the background:
its eventual result is discarded. Such a thread is a *zombie*; the pool lets one extra
worker thread exist per zombie, so the capacity for new invocations stays at
``max_workers`` whatever the timed-out handlers do. Worker threads are daemon threads: at
interpreter exit a handler still running is abandoned (as Lambda would freeze it) instead
of keeping the process alive. A sync handler that returns an awaitable (a plain function
wrapping a coroutine function, for instance) has the awaitable awaited on the loop within
the same timeout.

Response serialization follows the AWS Python runtime: ``decimal.Decimal`` values become
JSON numbers, ``bytes`` are passed through (parsed as JSON when they hold JSON), and
anything else the standard :mod:`json` module cannot encode makes the invocation fail as
``Runtime.MarshalError`` (``HandlerResult.invalid_json``). The AWS runtime also encodes
named tuples as objects; sluicegate encodes them as arrays.
"""

from __future__ import annotations

import asyncio
import contextvars
import decimal
import inspect
import itertools
import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sluicegate.core.config import FunctionConfig
from sluicegate.errors import ConfigError
from sluicegate.runtime.events import LambdaContext

__all__ = [
    "HANDLER_LOGGER_NAME",
    "MAX_ERROR_TEXT",
    "MAX_RESPONSE_BYTES",
    "HandlerResult",
    "Invoker",
    "describe_exception",
    "marshal_response",
]

HANDLER_LOGGER_NAME = "sluicegate.handler"
"""Logger that receives handler failures (exceptions with tracebacks, timeouts and
unserializable responses) at ERROR level."""

MAX_ERROR_TEXT = 1000
"""Longest ``HandlerResult.error_text`` in characters; longer descriptions are cut."""

MAX_RESPONSE_BYTES = 6 * 1024 * 1024
"""Largest response of a synchronous invocation, in bytes of JSON (Lambda's 6 MB payload
limit; event source mappings invoke synchronously). A larger one fails the invocation."""

_log = logging.getLogger(HANDLER_LOGGER_NAME)

Handler = Callable[[Any, Any], Any]
"""A Lambda handler: ``handler(event, context)``, returning a value or an awaitable."""


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class HandlerResult:
    """How one invocation ended.

    Attributes:
        response: the handler's return value after a JSON round trip (what Lambda's
            caller would see); ``None`` when the invocation failed.
        invalid_json: the return value could not be returned: not serializable
            (Lambda's ``Runtime.MarshalError``) or its JSON above 6 MB
            (``Function.ResponseSizeTooLarge``); a function error either way.
        error: the exception the handler raised, if any (``SystemExit`` included: a
            handler calling ``sys.exit`` is a function error, as Lambda's
            ``Runtime.ExitError``).
        error_text: one line describing the failure (``"ValueError: boom"``,
            ``"Task timed out after 3.00 seconds"``, ``"Runtime.MarshalError: ..."``);
            empty on success.
        timed_out: the handler ran past its timeout.
        duration: seconds from the start of :meth:`Invoker.invoke` to its result.
        latency: the downstream latency the handler reported
            (:meth:`~sluicegate.runtime.events.LambdaContext.report`), in seconds;
            ``None`` when it reported none.
        overload: the handler reported its downstream overloaded.
    """

    response: Any = None
    invalid_json: bool = False
    error: BaseException | None = None
    error_text: str = ""
    timed_out: bool = False
    duration: float = 0.0
    latency: float | None = None
    overload: bool = False

    @property
    def ok(self) -> bool:
        """The handler returned a serializable value in time."""
        return self.error is None and not self.timed_out and not self.invalid_json

    @property
    def function_error(self) -> bool:
        """The invocation failed as a whole (exception, timeout or unserializable response)."""
        return not self.ok


def describe_exception(exc: BaseException) -> str:
    """One line naming an exception: ``"ValueError: boom"``, or ``"ValueError"`` alone.

    Parameters:
        exc: any exception.

    Returns:
        The type's name and the message with line breaks replaced by spaces, cut to
        :data:`MAX_ERROR_TEXT` characters.
    """
    name = type(exc).__name__
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001 - a broken __str__ must not break the runtime
        message = "<unprintable>"
    text = f"{name}: {message}" if message else name
    if "\n" in text or "\r" in text:
        text = " ".join(text.splitlines())
    return text if len(text) <= MAX_ERROR_TEXT else text[: MAX_ERROR_TEXT - 3] + "..."


def _encode_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        # As the AWS runtime: the decimal's own digits as a JSON number.
        return math.nan if value.is_nan() else json.loads(str(value))
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_ENCODER = json.JSONEncoder(default=_encode_default)
_SCALARS = (str, int, float, bool)


def _too_large(size: int) -> tuple[None, str]:
    return None, (
        f"Function.ResponseSizeTooLarge: Response payload size ({size} bytes) exceeded "
        f"maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)"
    )


def marshal_response(value: Any) -> tuple[Any, str]:
    """Round-trip a handler's return value through JSON, as the AWS runtime returns it.

    Parameters:
        value: what the handler returned.

    Returns:
        ``(response, error_text)``: the decoded JSON and ``""``; or ``(None,
        "Runtime.MarshalError: Unable to marshal response: ...")`` when the value cannot be
        serialized, or ``(None, "Function.ResponseSizeTooLarge: ...")`` when its JSON is
        above :data:`MAX_RESPONSE_BYTES` (both fail the invocation, as on AWS). ``bytes``
        are returned as parsed JSON when they hold JSON, unchanged otherwise (the AWS
        runtime passes bytes through without serializing them).
    """
    if value is None or type(value) in _SCALARS:
        # A str's JSON is at most 6 bytes per character (\uXXXX escapes): only a long
        # one is measured.
        if type(value) is str and len(value) * 6 > MAX_RESPONSE_BYTES:
            size = len(_ENCODER.encode(value))
            if size > MAX_RESPONSE_BYTES:
                return _too_large(size)
        return value, ""
    if isinstance(value, (bytes, bytearray)):
        if len(value) > MAX_RESPONSE_BYTES:
            return _too_large(len(value))
        try:
            return json.loads(value), ""
        except ValueError:
            return bytes(value), ""
    try:
        text = _ENCODER.encode(value)
    except Exception as exc:  # noqa: BLE001 - any failure to encode is a MarshalError
        detail = describe_exception(exc) if not isinstance(exc, TypeError) else str(exc)
        return None, f"Runtime.MarshalError: Unable to marshal response: {detail}"
    if len(text) > MAX_RESPONSE_BYTES:  # ASCII (ensure_ascii): characters are bytes
        return _too_large(len(text))
    return json.loads(text), ""


def _is_async_handler(handler: Any) -> bool:
    """Whether calling ``handler`` returns a coroutine by declaration."""
    if inspect.iscoroutinefunction(handler):
        return True
    if inspect.isfunction(handler) or inspect.ismethod(handler):
        return False
    # Not a callability test: whether the object's __call__ is a coroutine function.
    return inspect.iscoroutinefunction(getattr(handler, "__call__", None))  # noqa: B004


# --------------------------------------------------------------------------- thread pool

_QUEUED, _RUNNING, _DONE, _DROPPED = range(4)
_RETURNED, _RAISED, _AWAITABLE = range(3)


class _WorkItem:
    """One sync handler call, and its way back to the event loop."""

    __slots__ = ("args", "context", "future", "handler", "loop", "raw", "state", "zombie")

    def __init__(
        self,
        handler: Callable[..., Any],
        args: tuple[Any, ...],
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[tuple[int, Any]],
        raw: bool = False,
    ) -> None:
        self.handler = handler
        self.args = args
        self.raw = raw  # the return value is passed on as is, not as a handler response
        self.context = contextvars.copy_context()
        self.loop = loop
        self.future = future
        self.state = _QUEUED
        self.zombie = False

    def run(self) -> None:
        """Call the handler on this thread and hand the outcome to the loop. Never raises."""
        outcome: tuple[int, Any]
        try:
            value = self.context.run(self.handler, *self.args)
        except BaseException as exc:  # noqa: BLE001 - SystemExit too: a function error
            outcome = (_RAISED, exc)
        else:
            if self.raw:
                outcome = (_RETURNED, value)
            elif inspect.isawaitable(value):
                outcome = (_AWAITABLE, value)
            else:
                outcome = (_RETURNED, marshal_response(value))
        self.args = None  # type: ignore[assignment]  # let the event go
        try:
            self.loop.call_soon_threadsafe(_deliver, self.future, outcome)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            _discard(outcome)


def _deliver(future: asyncio.Future[tuple[int, Any]], outcome: tuple[int, Any]) -> None:
    if future.done():  # timed out or cancelled: the late result is discarded
        _discard(outcome)
    else:
        future.set_result(outcome)


def _discard(outcome: tuple[int, Any]) -> None:
    kind, value = outcome
    if kind == _AWAITABLE and inspect.iscoroutine(value):
        value.close()  # never awaited on purpose; avoid "never awaited" warnings


class _ThreadPool:
    """Daemon worker threads, created on demand, with room for zombies.

    At most ``limit + zombies`` threads exist, where ``zombies`` counts threads still
    running a handler whose invocation was abandoned (timed out or cancelled). Idle threads
    above that bound exit. Unlike :class:`concurrent.futures.ThreadPoolExecutor` it can be
    resized, and its daemon threads do not hold up interpreter exit.
    """

    def __init__(self, limit: int, name: str) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[_WorkItem] = deque()
        self._threads: set[threading.Thread] = set()
        self._running: dict[threading.Thread, _WorkItem] = {}
        self._idle = 0  # threads waiting for work
        self._starting = 0  # threads started that have not yet looked for work
        self._limit = limit
        self._zombies = 0
        self._shutdown = False
        self._name = name
        self._ids = itertools.count(1)

    @property
    def threads(self) -> int:
        return len(self._threads)

    @property
    def zombies(self) -> int:
        return self._zombies

    @property
    def limit(self) -> int:
        return self._limit

    def submit(self, item: _WorkItem) -> None:
        with self._cond:
            if self._shutdown:
                raise RuntimeError("the invoker is closed")
            self._queue.append(item)
            self._grow()
            self._cond.notify()

    def abandon(self, item: _WorkItem) -> None:
        """The invocation of ``item`` gave up on it (timeout or cancellation)."""
        with self._cond:
            if item.state == _QUEUED:
                item.state = _DROPPED
                self._queue.remove(item)
            elif item.state == _RUNNING and not item.zombie:
                item.zombie = True
                self._zombies += 1
                self._grow()

    def resize(self, limit: int) -> None:
        with self._cond:
            self._limit = limit
            self._grow()
            self._cond.notify_all()  # idle threads above the new limit exit

    def shutdown(self, wait: bool, timeout: float | None) -> None:
        with self._cond:
            self._shutdown = True
            self._cond.notify_all()
            to_join = [t for t in self._threads if not self._is_zombie(t)]
        if wait:
            deadline = None if timeout is None else time.monotonic() + timeout
            for thread in to_join:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                thread.join(left)

    def _is_zombie(self, thread: threading.Thread) -> bool:
        item = self._running.get(thread)
        return item is not None and item.zombie

    def _grow(self) -> None:
        # Caller holds the lock. One new thread per queued item no idle thread will take.
        capacity = self._limit + self._zombies
        while len(self._queue) > self._idle + self._starting and len(self._threads) < capacity:
            if not self._spawn():
                break

    def _spawn(self) -> bool:
        thread = threading.Thread(
            target=self._work, name=f"{self._name}-{next(self._ids)}", daemon=True
        )
        self._threads.add(thread)
        self._starting += 1
        try:
            thread.start()
        except RuntimeError as exc:  # the OS refused a thread: queued work waits for one
            self._threads.discard(thread)
            self._starting -= 1
            _log.warning("cannot start a worker thread for %s: %s", self._name, exc)
            return False
        return True

    def _work(self) -> None:
        me = threading.current_thread()
        cond = self._cond
        starting = True
        while True:
            with cond:
                if starting:
                    self._starting -= 1
                    starting = False
                while not self._queue:
                    if self._shutdown or len(self._threads) > self._limit + self._zombies:
                        self._threads.discard(me)
                        return
                    self._idle += 1
                    cond.wait()
                    self._idle -= 1
                item = self._queue.popleft()
                item.state = _RUNNING
                self._running[me] = item
            item.run()
            with cond:
                item.state = _DONE
                del self._running[me]
                if item.zombie:
                    self._zombies -= 1


# --------------------------------------------------------------------------- invoker


class Invoker:
    """Runs invocations of one handler, sync or async, under a timeout.

    Parameters:
        handler: ``handler(event, context)``; a function, a coroutine function or a
            callable object.
        function: the function's configuration (name, timeout, memory size).
        max_workers: worker threads for a sync handler; the caller sizes it to the
            function's concurrency (:meth:`resize` changes it). Threads are started on
            demand. Unused for async handlers.
        clock: monotonic clock in seconds used for durations and context deadlines.
            Timeouts themselves are enforced on the event loop's clock.
        timeout: seconds an invocation may run, overriding ``function.timeout`` (which
            cannot go below 1 s); for tests and for callers that need a tighter limit.

    Raises:
        TypeError: ``handler`` is not callable.
        ConfigError: ``max_workers`` below 1 or a ``timeout`` that is not a positive number.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        function: FunctionConfig,
        max_workers: int,
        clock: Callable[[], float] = time.monotonic,
        timeout: float | None = None,
    ) -> None:
        if not callable(handler):
            raise TypeError(f"handler must be callable, got {type(handler).__name__}")
        _check_workers(max_workers)
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not 0 < timeout < math.inf
        ):
            raise ConfigError("timeout", timeout, "a positive number of seconds", "invoker")
        self.handler = handler
        self.function = function
        self.clock = clock
        self.timeout: float = float(function.timeout if timeout is None else timeout)
        self.is_async = _is_async_handler(handler)
        self._pool = _ThreadPool(max_workers, f"sluicegate-{function.name}")
        self._closed = False

    def __repr__(self) -> str:
        kind = "async" if self.is_async else "sync"
        return f"<Invoker {self.function.name} {kind} timeout={self.timeout:g}s>"

    # ------------------------------------------------------------------ capacity
    @property
    def max_workers(self) -> int:
        """Worker threads available to new invocations of a sync handler."""
        return self._pool.limit

    @property
    def zombies(self) -> int:
        """Threads still running a sync handler whose invocation timed out or was cancelled."""
        return self._pool.zombies

    @property
    def threads(self) -> int:
        """Worker threads alive now (busy, idle or zombie)."""
        return self._pool.threads

    def resize(self, max_workers: int) -> None:
        """Change the number of worker threads new invocations may use.

        Parameters:
            max_workers: 1 or more. Shrinking lets idle threads above the new size exit;
                busy ones finish their invocation first.

        Raises:
            ConfigError: ``max_workers`` below 1.
        """
        _check_workers(max_workers)
        self._pool.resize(max_workers)

    def close(self, wait: bool = True, timeout: float | None = None) -> None:
        """Stop accepting invocations and let the worker threads exit.

        Parameters:
            wait: block until the threads that are not zombies have exited (invocations
                already queued still run). Zombie threads are never waited for. Call it
                after in-flight invocations have returned, or off the event loop.
            timeout: longest wait in seconds; ``None`` waits as long as it takes.
        """
        self._closed = True
        self._pool.shutdown(wait, timeout)

    # ------------------------------------------------------------------ invoking
    def new_context(
        self,
        *,
        aws_request_id: str | None = None,
        log_stream_name: str | None = None,
    ) -> LambdaContext:
        """A context for an invocation starting now, with this invoker's timeout.

        The function ARN uses the default region and account (read once per invoker).

        Parameters:
            aws_request_id, log_stream_name: see :class:`LambdaContext`.

        Returns:
            A context whose deadline is ``clock() + timeout``.
        """
        return LambdaContext.for_function(
            self.function,
            timeout=self.timeout,
            clock=self.clock,
            aws_request_id=aws_request_id,
            log_stream_name=log_stream_name,
        )

    async def invoke(self, event: Any, context: Any) -> HandlerResult:
        """Run the handler once with ``event`` and ``context``.

        Parameters:
            event: the invocation payload (passed as is; the handler may mutate it).
            context: a :class:`LambdaContext` or any object the handler accepts.

        Returns:
            The :class:`HandlerResult`; failures are logged to ``sluicegate.handler``.

        Raises:
            asyncio.CancelledError: the task awaiting ``invoke`` was cancelled (the
                handler is cancelled too, or abandoned on its thread).
            KeyboardInterrupt: raised on the loop's thread while an async handler ran.
            RuntimeError: the invoker is closed.
        """
        if self._closed:
            raise RuntimeError(f"invoker of {self.function.name!r} is closed")
        if self.is_async:
            return await self._invoke_async(self.handler, event, context)
        return await self._invoke_sync(self.handler, event, context)

    async def _call_in_thread(self, fn: Callable[[], Any], timeout: float) -> Any:
        """Call ``fn()`` on a worker thread and return what it returns (for work that is
        not an invocation, such as an execution environment's init).

        Raises:
            TimeoutError: ``fn`` ran past ``timeout`` seconds; its thread runs on as a
                zombie, its result discarded.
            BaseException: whatever ``fn`` raised.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[int, Any]] = loop.create_future()
        item = _WorkItem(fn, (), loop, future, raw=True)
        self._pool.submit(item)
        try:
            async with asyncio.timeout(timeout):
                kind, value = await future
        except BaseException:
            self._pool.abandon(item)
            raise
        if kind == _RAISED:
            raise value
        return value

    async def _invoke_async(self, handler: Handler, event: Any, context: Any) -> HandlerResult:
        clock = self.clock
        start = clock()
        deadline = asyncio.timeout(self.timeout)
        try:
            async with deadline:
                value = handler(event, context)
                if inspect.isawaitable(value):
                    value = await value
        except asyncio.CancelledError as exc:
            if _cancelled_from_outside():
                raise
            return self._raised(exc, context, clock() - start)
        except TimeoutError as exc:
            if deadline.expired():
                return self._timed_out(context, clock() - start)
            return self._raised(exc, context, clock() - start)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - SystemExit is a function error
            return self._raised(exc, context, clock() - start)
        if deadline.expired():  # the handler swallowed its cancellation
            return self._timed_out(context, clock() - start)
        response, marshal_error = marshal_response(value)
        return self._returned(response, marshal_error, context, clock() - start)

    async def _invoke_sync(self, handler: Handler, event: Any, context: Any) -> HandlerResult:
        clock = self.clock
        start = clock()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[int, Any]] = loop.create_future()
        item = _WorkItem(handler, (event, context), loop, future)
        self._pool.submit(item)
        deadline = asyncio.timeout(self.timeout)
        try:
            async with deadline:
                kind, value = await future
                if kind == _AWAITABLE:
                    value = marshal_response(await value)
                    kind = _RETURNED
        except asyncio.CancelledError as exc:
            self._pool.abandon(item)
            if _cancelled_from_outside():
                raise
            return self._raised(exc, context, clock() - start)
        except TimeoutError as exc:
            self._pool.abandon(item)
            if deadline.expired():
                return self._timed_out(context, clock() - start)
            return self._raised(exc, context, clock() - start)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - from an awaited awaitable
            return self._raised(exc, context, clock() - start)
        if kind == _RAISED:
            return self._raised(value, context, clock() - start)
        response, marshal_error = value
        return self._returned(response, marshal_error, context, clock() - start)

    # ------------------------------------------------------------------ outcomes
    def _returned(
        self, response: Any, marshal_error: str, context: Any, duration: float
    ) -> HandlerResult:
        if marshal_error:
            _log.error(
                "%s request %s: %s",
                self.function.name,
                getattr(context, "aws_request_id", "-"),
                marshal_error,
            )
            return HandlerResult(invalid_json=True, error_text=marshal_error, duration=duration)
        return HandlerResult(response=response, duration=duration)

    def _raised(self, exc: BaseException, context: Any, duration: float) -> HandlerResult:
        text = describe_exception(exc)
        _log.error(
            "%s request %s failed: %s",
            self.function.name,
            getattr(context, "aws_request_id", "-"),
            text,
            exc_info=exc,
        )
        return HandlerResult(error=exc, error_text=text, duration=duration)

    def _timed_out(self, context: Any, duration: float) -> HandlerResult:
        text = f"Task timed out after {self.timeout:.2f} seconds"
        _log.error(
            "%s request %s: %s",
            self.function.name,
            getattr(context, "aws_request_id", "-"),
            text,
        )
        return HandlerResult(timed_out=True, error_text=text, duration=duration)


def _cancelled_from_outside() -> bool:
    """Whether the current task has a pending cancellation request (not the handler's own)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _check_workers(max_workers: int) -> None:
    if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
        raise ConfigError("max_workers", max_workers, "an integer >= 1", "invoker")
