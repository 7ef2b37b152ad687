"""Fixtures for the store contract: one test body runs against every backend.

``async def`` tests in this directory run on the event loop of the ``loop`` fixture (the
one the ``store`` fixture opened its store on), so no asyncio plugin is needed.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sluicegate.store import MemoryStore, RedisStore, SqliteStore, Store
from sluicegate.testing import VirtualClock

BACKENDS = ["memory", "sqlite", "redis"]
"""Backends the contract tests run against."""

START = 1_700_000_000.0
"""Epoch seconds where every test clock starts."""

TEST_TIMEOUT = 30.0
"""Seconds an async test may run before it fails."""


@pytest.fixture
def clock() -> VirtualClock:
    """sluicegate.testing's clock, at :data:`START`: it moves only when told to."""
    return VirtualClock(START)


@pytest.fixture(autouse=True)
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A fresh event loop per test, closed cleanly afterwards."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()


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


@pytest.fixture
def new_store(
    loop: asyncio.AbstractEventLoop,
    clock: VirtualClock,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., Store]]:
    """Build stores that are closed at teardown: ``new_store("sqlite", path=..., **kw)``.

    A ``redis`` store talks to the session's redis-server (``redis_url``: its database
    is flushed before each test that uses it); ``url=`` names another server.
    The store is not opened: ``await store.open()`` in the test.
    """
    made: list[Store] = []

    def make(backend: str, **kwargs: Any) -> Store:
        kwargs.setdefault("clock", clock)
        if backend == "memory":
            store: Store = MemoryStore(**kwargs)
        elif backend == "redis":
            url = kwargs.pop("url", None) or request.getfixturevalue("redis_url")
            store = RedisStore(url, **kwargs)
        else:
            path = kwargs.pop("path", tmp_path / "store.db")
            store = SqliteStore(path, **kwargs)
        made.append(store)
        return store

    yield make
    for store in reversed(made):
        loop.run_until_complete(store.close())


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(new_store: Callable[..., Store], backend: str, loop: asyncio.AbstractEventLoop) -> Store:
    """An open, empty store of each backend, reading time from ``clock``."""
    store = new_store(backend)
    loop.run_until_complete(store.open())
    return store
