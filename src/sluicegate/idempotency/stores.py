"""Where idempotency records live, and how sync and async code reach that store.

The store is found, at each call:

1. the decorator's ``store=``: a URL (``sqlite:///idem.db``, ``redis://host:6379/0``,
   ``memory://``) names a store this process opens once, on an event loop of its own in a
   daemon thread, for every caller (sync or async, any loop); a
   :class:`~sluicegate.store.base.Store` object is used as it is (on the loop the caller
   runs, or the run's loop when it is the run's store);
2. else the store of the run that invoked the handler (``sluicegate run``,
   :func:`sluicegate.run` and the others bind it: :mod:`sluicegate.runtime.current`),
   or one bound with :func:`~sluicegate.runtime.current.bind_store`;
3. else, in an environment of ``isolation="process"`` (which the binding does not
   reach), the run's store URL when the context carries it (an App with semaphores);
   else ``SLUICEGATE_STORE`` when set;
4. else the call fails with one line saying how to give a store.

Sync code reaches an asyncio store by handing the operation to the store's loop and
waiting for it (a sync handler runs on a worker thread, so the loop is free to do it). A
sync function called on an event loop's thread would block that loop while waiting for
it, so it is refused with that explanation, except on a memory store, whose operations
never wait and run at once.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from sluicegate.errors import InputError, StoreError
from sluicegate.runtime.current import BoundStore, current_store

if TYPE_CHECKING:
    from sluicegate.store.base import Store

__all__ = ["Records", "close_stores", "resolve_store"]

T = TypeVar("T")

Operation = Callable[["Store"], Coroutine[Any, Any, T]]


class Records:
    """A store, and the way to run its coroutines from async and from sync code."""

    def __init__(self, bound: BoundStore) -> None:
        self.bound = bound

    @property
    def store(self) -> Store:
        return self.bound.store

    async def acall(self, operation: Operation[T]) -> T:
        """Run ``operation(store)`` from a coroutine: here when the store belongs to this
        loop (or to none), else on the store's loop."""
        loop = self.bound.loop
        if loop is None or loop is asyncio.get_running_loop():
            return await operation(self.bound.store)
        if loop.is_closed():
            raise StoreError("the idempotency store's event loop is closed (its run ended)")
        future = asyncio.run_coroutine_threadsafe(operation(self.bound.store), loop)
        return await asyncio.wrap_future(future)

    def call(self, operation: Operation[T]) -> T:
        """Run ``operation(store)`` from sync code and wait for it.

        Raises:
            InputError: called on an event loop's thread (waiting would block it), or the
                store's loop is unknown (a Store object given outside a run).
        """
        store = self.bound.store
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        loop = self.bound.loop
        if running is not None or loop is None:
            if not store.shared:  # a memory store: its operations finish without waiting
                return _at_once(operation(store))
            if running is not None:
                raise InputError(
                    "a sync idempotent function was called on an event loop's thread, where "
                    "waiting for the store would block the loop: make it 'async def' (and "
                    "await it), or call it from a sync handler")
            raise InputError(
                "an idempotency store given as a Store object outside a run cannot serve "
                "sync functions: give its URL instead (store='sqlite:///idem.db')")
        if loop.is_closed():
            raise StoreError("the idempotency store's event loop is closed (its run ended)")
        return asyncio.run_coroutine_threadsafe(operation(store), loop).result()


def _at_once(coroutine: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine that finishes without suspending (a memory store's)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise StoreError("a memory store operation suspended (it never should)")


# ---------------------------------------------------------------------- resolving
_opened: dict[str, tuple[Records, threading.Thread]] = {}
"""The stores opened from URLs, with the thread running each one's loop."""
_lock = threading.Lock()


def resolve_store(store: Store | str | None, context: Any = None) -> Records:
    """The records' store for one call (see the module docstring for the order).

    Parameters:
        store: the decorator's ``store=``.
        context: the invocation's Lambda-style context, if known (an environment of
            ``isolation="process"`` finds the run's store URL on it).

    Raises:
        InputError: no store can be found, or ``store`` is neither a URL nor a Store.
        StoreUnavailable: a URL's store cannot be opened.
    """
    if store is None:
        bound = current_store()
        if bound is not None:
            return Records(bound)
        url = _run_url(context) or os.environ.get("SLUICEGATE_STORE")
        if url:
            return _by_url(url)
        raise InputError(
            "no store for idempotency records: run the handler under sluicegate (sluicegate "
            "run, sluicegate.run), or give one: store='sqlite:///idempotency.db' (or "
            "redis://..., memory://), or set SLUICEGATE_STORE")
    if isinstance(store, str):
        return _by_url(store)
    from sluicegate.store.base import Store

    if isinstance(store, Store):
        bound = current_store()
        if bound is not None and bound.store is store:
            return Records(bound)
        return Records(BoundStore(store, None))
    raise InputError(f"store={store!r} is invalid: give a store URL or a Store object")


def _run_url(context: Any) -> str | None:
    """The run's store URL an environment of another process received, when shared."""
    fields = getattr(context, "_sluicegate_fields", None)
    if isinstance(fields, dict) and fields.get("shared") and isinstance(fields.get("store"),
                                                                        str):
        return str(fields["store"])
    return None


def _by_url(url: str) -> Records:
    """The store ``url`` names, opened once per process on a loop of its own."""
    with _lock:
        opened = _opened.get(url)
        if opened is None:
            opened = _opened[url] = _open(url)
    return opened[0]


def _open(url: str) -> tuple[Records, threading.Thread]:
    from sluicegate.store import open_store

    store = open_store(url)  # InputError for a bad URL, before any thread starts
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="sluicegate-idempotency",
                              daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(store.open(), loop).result()
    except BaseException:
        _stop(loop, thread)
        raise
    return Records(BoundStore(store, loop)), thread


def _stop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()


def close_stores() -> None:
    """Close the stores opened from URLs (and stop their threads); a later call opens
    them again. For tests, and a program that wants its files and connections released
    before it exits."""
    with _lock:
        opened = list(_opened.values())
        _opened.clear()
    for records, thread in opened:
        loop = records.bound.loop
        assert loop is not None
        try:
            asyncio.run_coroutine_threadsafe(records.store.close(), loop).result()
        finally:
            _stop(loop, thread)
