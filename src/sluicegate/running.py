"""Running an App inside your own program: :func:`run`, :func:`start`, :func:`arun` and
:func:`serve`.

``sluicegate run APP`` is one way to serve an App; these are the others, for a program
that holds the App itself (a service that also serves HTTP, a script, a test). All four
build the same :class:`~sluicegate.runtime.driver.Runtime` the command does, on a store
given as a URL (``"sqlite:///jobs.db"``, ``"memory://"``, ``"redis://host:6379/0"``;
``None`` reads ``SLUICEGATE_STORE``, else ``./sluicegate.db``, as the command does) or as
a :class:`~sluicegate.store.base.Store` object:

- :func:`run` blocks until the run ends and returns its
  :class:`~sluicegate.runtime.driver.RunSummary`: for a script, with ``until_empty`` or
  ``duration`` (or ``handle_signals`` and a Ctrl-C) to end it. It runs its own event
  loop, so it refuses to run inside one.
- :func:`start` runs it in a thread of its own and returns a :class:`BackgroundApp` at
  once, to stop it, wait for it and reach its store and metrics from sync code.
- :func:`arun` is :func:`run` as a coroutine, on the caller's event loop.
- :func:`serve` is an async context manager: the App runs in a task beside the block,
  which gets a :class:`RunningApp` to send messages through, read the metrics and stop
  the run; leaving the block stops it and waits for it.

Ownership of the store: a URL names a store that these functions open and close. A
``Store`` object is the caller's: it is opened (opening is idempotent) and left open by
:func:`arun` and :func:`serve`; :func:`run` and :func:`start`, whose event loop ends with
the run, close it (it can be opened again, and a memory store keeps its contents).

A run stops by itself when ``until_empty`` finds every mapped queue and stream settled or
after ``duration`` seconds; else on :meth:`RunningApp.stop` (or
:meth:`Runtime.stop <sluicegate.runtime.driver.Runtime.stop>`), or with
``handle_signals``, on SIGINT or SIGTERM, as ``sluicegate run`` does (a second signal
abandons the invocations in flight). In-flight invocations get ``grace_period`` seconds to
finish; what is abandoned reappears after its visibility timeout (delivery is at least
once).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Literal, Self, TypeAlias, TypeVar, cast

from sluicegate import loops
from sluicegate.app import App
from sluicegate.errors import InputError
from sluicegate.runtime.driver import RunSummary, Runtime
from sluicegate.runtime.metrics import Metrics, MetricsListener
from sluicegate.store import Store, open_store

if TYPE_CHECKING:
    from sluicegate.cluster.coordinator import Cluster

__all__ = ["BackgroundApp", "RunningApp", "StoreArg", "arun", "run", "serve", "start"]

T = TypeVar("T")

StoreArg: TypeAlias = Store | str | None
"""Where an App runs: a store URL, an opened or unopened :class:`Store`, or ``None`` for
``SLUICEGATE_STORE`` or else ``./sluicegate.db``."""


class RunningApp:
    """An App running in a task (what :func:`serve` gives its block).

    Attributes:
        runtime: the :class:`~sluicegate.runtime.driver.Runtime` serving the App.
    """

    def __init__(self, runtime: Runtime, task: asyncio.Task[RunSummary]) -> None:
        self.runtime = runtime
        self._task = task

    def __repr__(self) -> str:
        state = "done" if self._task.done() else "running"
        return f"<RunningApp {state}, store {self.store.url or type(self.store).__name__}>"

    @property
    def store(self) -> Store:
        """The opened store the App runs on: send messages and put records through it."""
        return self.runtime.store

    @property
    def metrics(self) -> Metrics:
        """The run's per-second metrics (``metrics.totals()``, ``metrics.add_listener``)."""
        return self.runtime.metrics

    @property
    def done(self) -> bool:
        """Whether the run has ended."""
        return self._task.done()

    @property
    def summary(self) -> RunSummary | None:
        """What the run did, once it has ended; ``None`` before, or if it failed."""
        task = self._task
        if not task.done() or task.cancelled() or task.exception() is not None:
            return None
        return task.result()

    def stop(self, reason: str = "stop requested") -> None:
        """Ask the run to end (from the event loop's thread): receiving stops at once,
        invocations in flight get the grace period. :meth:`wait` for the summary."""
        self.runtime.stop(reason)

    async def wait(self) -> RunSummary:
        """Wait for the run to end (it does not stop it) and return its summary.

        A cancelled wait leaves the run going. Raises what ended the run if it failed
        (e.g. :class:`~sluicegate.errors.StoreUnavailable` while preparing the store).
        """
        return await asyncio.shield(self._task)


@contextlib.asynccontextmanager
async def _opened(store: StoreArg) -> AsyncIterator[Store]:
    """The store ``store`` names, open for the block: closed after it if made here."""
    if isinstance(store, Store):
        await store.open()
        yield store
        return
    async with open_store(store) as opened:
        yield opened


def _check(app: App, duration: float | None, grace_period: float | None) -> None:
    """Refuse arguments the runtime would misread (``duration=0`` would run for ever),
    before a store is opened."""
    if not isinstance(app, App):
        raise TypeError(f"expected a sluicegate.App, got {type(app).__name__}")
    if duration is not None and not duration > 0:
        raise InputError(f"duration {duration!r} must be above 0 seconds (None: no limit)")
    if grace_period is not None and not grace_period >= 0:
        raise InputError(f"grace_period {grace_period!r} must be 0 seconds or more")


def _runtime(
    app: App,
    store: Store,
    *,
    grace_period: float | None,
    on_second: MetricsListener | None,
    cluster: Cluster | Literal["auto"] | None,
) -> Runtime:
    if grace_period is None:  # the runtime's default
        runtime = Runtime(app, store, cluster=cluster)
    else:
        runtime = Runtime(app, store, grace_period=grace_period, cluster=cluster)
    if on_second is not None:
        runtime.metrics.add_listener(on_second)
    return runtime


@contextlib.asynccontextmanager
async def serve(
    app: App,
    store: StoreArg = None,
    *,
    until_empty: bool = False,
    duration: float | None = None,
    grace_period: float | None = None,
    on_second: MetricsListener | None = None,
    handle_signals: bool = False,
    cluster: Cluster | Literal["auto"] | None = "auto",
) -> AsyncIterator[RunningApp]:
    """Run ``app`` in a task for the duration of an ``async with`` block.

    The App's queues and streams exist in the store when the block starts, so it can
    send to them at once. Leaving the block normally stops the run (if it has not ended
    by itself) and waits for it, grace period included; then
    :attr:`RunningApp.summary` holds what it did. Leaving it with an exception (a
    cancellation included) cancels the run at once instead: invocations in flight are
    abandoned and their messages reappear after their visibility timeout.

    Parameters:
        app: the App to run.
        store: a URL or a :class:`Store` (see the module's notes on ownership).
        until_empty: end the run once every mapped queue has nothing visible, delayed or
            in flight and every mapped stream is settled.
        duration: end the run after this many seconds.
        grace_period: seconds invocations in flight get to finish once a stop is asked
            (``None``: the runtime's default, 30 s, as for ``sluicegate run``).
        on_second: called as ``on_second(second, snapshots)`` when each second of
            metrics closes (see :meth:`Metrics.add_listener`), on the event loop.
        handle_signals: stop on SIGINT and SIGTERM, as ``sluicegate run`` does (main
            thread only); the handlers are removed when the run ends.
        cluster: coordination with other processes on the store (see
            :class:`~sluicegate.runtime.driver.Runtime`); ``"auto"`` as the command does.

    Raises:
        TypeError: ``app`` is not an App.
        InputError: ``duration`` not above 0, ``grace_period`` below 0, a bad store URL.
        StoreError: the store could not be opened or prepared; raised again on leaving
            the block if the run failed.
    """
    _check(app, duration, grace_period)
    async with _opened(store) as opened:
        runtime = _runtime(app, opened, grace_period=grace_period, on_second=on_second,
                           cluster=cluster)
        await runtime.prepare()
        runtime.attach()  # app.invoke reaches it from the block's first line
        task = asyncio.get_running_loop().create_task(
            runtime.run(until_empty=until_empty, duration=duration,
                        install_signal_handlers=handle_signals),
            name="sluicegate run",
        )
        running = RunningApp(runtime, task)
        try:
            yield running
        except BaseException:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            raise
        finally:
            if task.done():
                runtime.detach()  # a run cancelled before it started never detached
        runtime.stop()  # ignored when the run has already ended or been asked to
        await task


async def arun(
    app: App,
    store: StoreArg = None,
    *,
    until_empty: bool = False,
    duration: float | None = None,
    grace_period: float | None = None,
    on_second: MetricsListener | None = None,
    handle_signals: bool = False,
    cluster: Cluster | Literal["auto"] | None = "auto",
) -> RunSummary:
    """Run ``app`` on this event loop until it ends, and return what it did.

    The parameters are :func:`serve`'s. Without ``until_empty``, ``duration`` or
    ``handle_signals``, the run ends only when the task awaiting it is cancelled (the
    run then stops at once, as when a :func:`serve` block raises) or through
    :meth:`Runtime.stop` on a runtime of your own: use :func:`serve` to stop it
    gracefully from another task.
    """
    _check(app, duration, grace_period)
    async with _opened(store) as opened:
        runtime = _runtime(app, opened, grace_period=grace_period, on_second=on_second,
                           cluster=cluster)
        return await runtime.run(until_empty=until_empty, duration=duration,
                                 install_signal_handlers=handle_signals)


def run(
    app: App,
    store: StoreArg = None,
    *,
    until_empty: bool = False,
    duration: float | None = None,
    grace_period: float | None = None,
    on_second: MetricsListener | None = None,
    handle_signals: bool = False,
    cluster: Cluster | Literal["auto"] | None = "auto",
) -> RunSummary:
    """Run ``app`` until it ends, on an event loop of its own, and return what it did.

    The parameters are :func:`serve`'s. A ``Store`` object is closed at the end (its
    connections belong to this call's event loop). Without ``until_empty``, ``duration``
    or ``handle_signals``, only Ctrl-C (``KeyboardInterrupt``, raised after the run is
    cut short) ends it.

    Raises:
        RuntimeError: called inside a running event loop (``await arun(...)`` there).
    """
    _check(app, duration, grace_period)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("sluicegate.run cannot run inside a running event loop; "
                           "use 'await sluicegate.arun(...)' or 'sluicegate.serve(...)'")

    async def main() -> RunSummary:
        try:
            return await arun(app, store, until_empty=until_empty, duration=duration,
                              grace_period=grace_period, on_second=on_second,
                              handle_signals=handle_signals, cluster=cluster)
        finally:
            if isinstance(store, Store):
                await store.close()

    return loops.run(main())


class BackgroundApp:
    """An App running on an event loop in a thread of its own (what :func:`start`
    returns), for a program that is not async: stop it, wait for it and reach its store
    and metrics from any thread.

    As a context manager (``with sluicegate.start(app, ...) as background:``), leaving
    the block stops the run and waits for it, grace period included.
    """

    def __init__(self, main: Callable[[BackgroundApp], Coroutine[Any, Any, RunSummary]]) -> None:
        self._main = main
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running: RunningApp | None = None
        self._summary: RunSummary | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="sluicegate run", daemon=True)

    def __repr__(self) -> str:
        return f"<BackgroundApp {'done' if self.done else 'running'}>"

    def _serve(self) -> None:
        try:
            self._summary = loops.run(self._main(self))
        except BaseException as exc:  # noqa: BLE001 - raised again by wait() or start()
            self._error = exc
        finally:
            self._ready.set()

    def _started(self, running: RunningApp) -> None:
        """Called on the run's loop once the App serves."""
        self._loop = asyncio.get_running_loop()
        self._running = running
        self._ready.set()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.wait()

    @property
    def done(self) -> bool:
        """Whether the run has ended (its thread too)."""
        return not self._thread.is_alive()

    @property
    def summary(self) -> RunSummary | None:
        """What the run did, once it has ended; ``None`` before, or if it failed."""
        return self._summary if self.done else None

    def stop(self, reason: str = "stop requested") -> None:
        """Ask the run to end, from any thread; does nothing once it has ended.
        :meth:`wait` for the summary."""
        loop, running = self._loop, self._running
        if loop is None or running is None or self.done:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: it has ended
            loop.call_soon_threadsafe(running.stop, reason)

    def wait(self, timeout: float | None = None) -> RunSummary:
        """Wait for the run to end (it does not stop it) and return its summary.

        Raises:
            TimeoutError: still running after ``timeout`` seconds.
            RuntimeError: called from the run's own thread (it would wait for itself).
            Exception: what ended the run, if it failed.
        """
        if threading.current_thread() is self._thread:
            raise RuntimeError("a run cannot wait for itself (called from its own thread)")
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the run is still going after {timeout:g} s")
        if self._error is not None:
            raise self._error
        assert self._summary is not None
        return self._summary

    def call(self, fn: Callable[[RunningApp], Awaitable[T] | T], timeout: float | None = None
             ) -> T:
        """Run ``fn(running)`` on the run's event loop and return its result (awaited when
        it is awaitable), from any other thread: the store and the metrics belong to that
        loop. ``background.call(lambda r: r.store.send("orders", "x"))``,
        ``background.call(lambda r: r.metrics.totals())``.

        Raises:
            RuntimeError: the run has ended, or called from the run's own thread (where
                ``fn`` would wait for itself: use the :class:`RunningApp` directly).
            TimeoutError: ``fn`` did not finish within ``timeout`` seconds.
        """
        if threading.current_thread() is self._thread:
            raise RuntimeError("call() from the run's own thread would wait for itself")
        loop, running = self._loop, self._running
        if loop is None or running is None or self.done:
            raise RuntimeError("the run has ended")

        async def apply() -> T:
            result = fn(running)
            if inspect.isawaitable(result):
                return cast(T, await result)
            return result

        try:
            future = asyncio.run_coroutine_threadsafe(apply(), loop)
        except RuntimeError:
            raise RuntimeError("the run has ended") from None
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"call() did not finish in {timeout:g} s") from None


def start(
    app: App,
    store: StoreArg = None,
    *,
    until_empty: bool = False,
    duration: float | None = None,
    grace_period: float | None = None,
    on_second: MetricsListener | None = None,
    cluster: Cluster | Literal["auto"] | None = "auto",
) -> BackgroundApp:
    """Run ``app`` on an event loop in a thread of its own; return once it serves.

    The parameters are :func:`serve`'s (signals belong to the main thread, so there is no
    ``handle_signals``: call :meth:`BackgroundApp.stop` from a handler of your own). The
    App's queues and streams exist in the store when this returns. A ``Store`` object is
    closed when the run ends, as by :func:`run`. ``on_second`` is called on the run's
    thread.

    Raises:
        InputError, StoreError: as :func:`serve` (the store could not be opened or
            prepared), raised here.
    """
    _check(app, duration, grace_period)

    async def main(background: BackgroundApp) -> RunSummary:
        try:
            async with serve(app, store, until_empty=until_empty, duration=duration,
                             grace_period=grace_period, on_second=on_second,
                             cluster=cluster) as running:
                background._started(running)
                return await running.wait()
        finally:
            if isinstance(store, Store):
                await store.close()

    background = BackgroundApp(main)
    background._thread.start()
    background._ready.wait()
    if background._running is None:  # failed before serving
        background.wait()
    return background
