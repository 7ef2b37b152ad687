"""Invoking a function directly: ``app.invoke`` / ``app.ainvoke``, as Lambda's ``Invoke``.

Two invocation types, as on AWS:

- ``"RequestResponse"`` runs the handler now and returns its result
  (:class:`InvokeResult`: status 200, the response as JSON would carry it, and
  ``function_error="Unhandled"`` with an error document when the function failed). While
  the App runs in this process (``sluicegate.run``/``start``/``serve``), the invocation
  goes through the running function's execution environments and takes a slot of its
  concurrency: with none free it raises :class:`~sluicegate.errors.Throttled` (429) and is
  not retried, as AWS does for synchronous calls. Otherwise it runs the handler in this
  process, in an execution environment of its own.
- ``"Event"`` accepts the event into the function's internal queue in the store (status
  202 and the request id; durable when it returns) and the running App invokes it
  asynchronously, with retries, maximum event age and destinations (docs/async.md). The
  store is the running App's, else the one given (``store=``, a URL or an open
  :class:`~sluicegate.store.base.Store`).

``app.invoke`` blocks and may be called from any thread but the running App's event loop
(a sync handler runs in a worker thread, so it may call it); ``app.ainvoke`` is the
coroutine, for async code.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sluicegate.errors import InputError

if TYPE_CHECKING:
    from sluicegate.app import App, Function
    from sluicegate.runtime.driver import Runtime
    from sluicegate.store.base import Store

__all__ = ["InvocationType", "InvokeResult", "ainvoke", "invoke"]

InvocationType = Literal["RequestResponse", "Event"]

_TYPES = ("RequestResponse", "Event")


@dataclass(frozen=True, slots=True)
class InvokeResult:
    """What an invoke returned, in Lambda's terms.

    Attributes:
        status_code: 200 for ``RequestResponse``, 202 for ``Event``.
        request_id: the invocation's request id (an ``Event``'s: every attempt's).
        payload: the handler's response after a JSON round trip; after a function error
            the error document ``{"errorMessage", "errorType"}``; ``None`` for ``Event``.
        function_error: ``"Unhandled"`` when the function failed, else ``None``.
        executed_version: ``"$LATEST"``.
    """

    status_code: int
    request_id: str
    payload: Any = None
    function_error: str | None = None
    executed_version: str = "$LATEST"


def _function(app: App, function: Any) -> Function:
    from sluicegate.app import Function

    if isinstance(function, Function):
        name = function.name
    elif isinstance(function, str):
        name = function
    else:
        name = next((f.name for f in app.functions.values() if f.handler is function), "")
    found = app.functions.get(name)
    if found is None:
        known = ", ".join(sorted(app.functions)) or "none"
        raise InputError(f"no function {name or function!r} in the App (functions: {known})")
    return found


def _check_type(invocation_type: str) -> None:
    if invocation_type not in _TYPES:
        raise InputError(f"invocation_type {invocation_type!r} is not 'RequestResponse' "
                         "or 'Event'")


async def ainvoke(app: App, function: Any, event: Any, *,
                  invocation_type: InvocationType = "RequestResponse",
                  store: Store | str | None = None) -> InvokeResult:
    """Invoke ``function`` (a registered handler, its name, or a ``Function``) with
    ``event``; see the module docstring.

    Raises:
        InputError: an unknown function or invocation type, an event that is not JSON or
            too large, or an ``Event`` with neither a running App nor ``store``.
        Throttled: a ``RequestResponse`` found no free concurrency in the running App.
        StoreError: the store could not take an ``Event``.
    """
    _check_type(invocation_type)
    fn = _function(app, function)
    runtime = _running(app)
    if runtime is not None and store is None:
        coro = runtime.invoke(fn, event, invocation_type)
        loop = runtime.loop
        if loop is None or loop is asyncio.get_running_loop():
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))
    if invocation_type == "Event":
        return await _accept_into(fn, event, store)
    return await _direct(fn, event)


def invoke(app: App, function: Any, event: Any, *,
           invocation_type: InvocationType = "RequestResponse",
           store: Store | str | None = None) -> InvokeResult:
    """:func:`ainvoke`, blocking; not from the running App's event loop.

    Raises:
        InputError: as :func:`ainvoke`, or a call from the running App's event loop
            (use ``await app.ainvoke(...)`` there).
    """
    _check_type(invocation_type)
    runtime = _running(app)
    if runtime is not None and store is None:
        loop = runtime.loop
        if loop is not None and loop.is_running():
            if _loop_thread(loop) is threading.current_thread():
                raise InputError("app.invoke() blocks: on the App's event loop, use "
                                 "await app.ainvoke(...)")
            future = asyncio.run_coroutine_threadsafe(
                ainvoke(app, function, event, invocation_type=invocation_type), loop)
            return future.result()
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(ainvoke(app, function, event, invocation_type=invocation_type,
                                   store=store))
    # called from a coroutine outside the App: run it on a loop of its own
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, ainvoke(
            app, function, event, invocation_type=invocation_type, store=store)).result()


def _running(app: App) -> Runtime | None:
    runtimes = app._runtimes
    return runtimes[-1] if runtimes else None


_LOOP_THREADS: dict[int, threading.Thread] = {}


def _loop_thread(loop: asyncio.AbstractEventLoop) -> threading.Thread | None:
    return _LOOP_THREADS.get(id(loop))


def register_loop_thread(loop: asyncio.AbstractEventLoop) -> None:
    """Note that ``loop`` runs in the current thread (the runtime calls it at start)."""
    _LOOP_THREADS[id(loop)] = threading.current_thread()


def forget_loop_thread(loop: asyncio.AbstractEventLoop) -> None:
    _LOOP_THREADS.pop(id(loop), None)


async def _accept_into(fn: Function, event: Any, store: Store | str | None) -> InvokeResult:
    from sluicegate.runtime.async_invoke import accept
    from sluicegate.store import Store as StoreClass
    from sluicegate.store import open_store

    if store is None:
        raise InputError(
            f"an Event invocation of {fn.name!r} needs a store: pass store= (a URL or a "
            "Store), or invoke while the App runs in this process")
    if isinstance(store, StoreClass):
        await store.open()
        return InvokeResult(202, await accept(store, fn.config, event))
    async with open_store(store) as opened:
        return InvokeResult(202, await accept(opened, fn.config, event))


async def _direct(fn: Function, event: Any) -> InvokeResult:
    """A ``RequestResponse`` with no running App: one execution environment of its own."""
    from sluicegate.runtime.environments import ModuleInvoker
    from sluicegate.runtime.events import LambdaContext
    from sluicegate.runtime.invoker import Invoker

    shared = fn.config.isolation in ("shared", "thread")
    invoker: Any = (Invoker(fn.handler, function=fn.config, max_workers=1) if shared
                    else ModuleInvoker(fn.handler, function=fn.config, max_workers=1))
    try:
        context = LambdaContext.for_function(fn.config)
        result = await invoker.invoke(event, context)
    finally:
        invoker.close(wait=False)
    return result_of(result, context.aws_request_id)


def result_of(result: Any, request_id: str) -> InvokeResult:
    """A handler's result (``HandlerResult``) as an :class:`InvokeResult`."""
    if result.ok:
        return InvokeResult(200, request_id, result.response)
    error = result.error
    if result.timed_out:
        document = {"errorMessage": result.error_text, "errorType": "Sandbox.Timedout"}
    elif error is not None:
        document = {"errorMessage": str(error), "errorType": type(error).__name__}
    else:
        document = {"errorMessage": result.error_text, "errorType": "Runtime.MarshalError"}
    return InvokeResult(200, request_id, document, function_error="Unhandled")
