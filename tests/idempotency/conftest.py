"""Fixtures for sluicegate.idempotency: an open store of each backend on an injected
clock, bound as the running App's store would be.

``async def`` tests run on the event loop of the ``loop`` fixture (the one the store was
opened on), as in tests/store; sync idempotent functions are called from a worker thread
(``in_thread``), as the runtime calls sync handlers.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sluicegate.idempotency import close_stores
from sluicegate.runtime.current import bind_store
from sluicegate.store import MemoryStore, RedisStore, SqliteStore, Store
from sluicegate.testing import VirtualClock

BACKENDS = ["memory", "sqlite", "redis"]

START = 1_700_000_000.0

TEST_TIMEOUT = 30.0


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START, exact=True)


@pytest.fixture(autouse=True)
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()


@pytest.fixture(autouse=True)
def _close_url_stores() -> Iterator[None]:
    """Stores opened from URLs by a test are closed after it."""
    yield
    close_stores()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    loop = pyfuncitem.funcargs["loop"]
    assert isinstance(loop, asyncio.AbstractEventLoop)
    names = inspect.signature(pyfuncitem.obj).parameters
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}
    loop.run_until_complete(asyncio.wait_for(pyfuncitem.obj(**kwargs), TEST_TIMEOUT))
    return True


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "memory":
        return "memory://"
    if backend == "redis":
        return str(request.getfixturevalue("redis_url"))
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
def store(backend: str, clock: VirtualClock, tmp_path: Path, loop: asyncio.AbstractEventLoop,
          request: pytest.FixtureRequest) -> Iterator[Store]:
    """An open store of each backend on ``clock``, bound for the test as a run binds its
    store (the test body runs in a copy of this context)."""
    made: Store
    if backend == "memory":
        made = MemoryStore(clock=clock)
    elif backend == "redis":
        made = RedisStore(str(request.getfixturevalue("redis_url")), clock=clock)
    else:
        made = SqliteStore(tmp_path / "store.db", clock=clock)
    loop.run_until_complete(made.open())
    yield made
    loop.run_until_complete(made.close())


async def call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call an idempotent function as a handler would: a coroutine function awaited here,
    a sync one on a worker thread (which carries this context, and so the bound store)."""
    if inspect.iscoroutinefunction(function):
        return await function(*args, **kwargs)
    return await asyncio.to_thread(function, *args, **kwargs)


@pytest.fixture
def bound(store: Store, loop: asyncio.AbstractEventLoop) -> Iterator[Store]:
    """``store``, bound in the context for the test as a run binds its store (see
    :func:`~sluicegate.runtime.current.bind_store`); the test body runs in this context."""
    with bind_store(store, loop):
        yield store
