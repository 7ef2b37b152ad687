"""The store of the run a handler belongs to: how code a handler calls finds it.

:meth:`Runtime.run <sluicegate.runtime.driver.Runtime.run>` binds its store, with the
event loop the store runs on, in a context variable for the whole run. Every task the run
creates copies it, and so does every sync handler's thread (the invoker runs it in a copy
of the invoking task's context), so a handler, and anything it calls, finds the store of
the App that invoked it through :func:`current_store`: :mod:`sluicegate.idempotency`
keeps its records there. Handlers in ``isolation="process"`` run in other processes,
which the variable does not reach.

:func:`bind_store` binds a store for a block, outside a run: a test, a script.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sluicegate.store.base import Store

__all__ = ["BoundStore", "bind_store", "current_store"]


@dataclass(frozen=True, slots=True)
class BoundStore:
    """A store, and the event loop it was opened on.

    Attributes:
        store: an open store.
        loop: where its coroutines must run (a Redis client belongs to one loop); ``None``
            when unknown: the caller's running loop is used.
    """

    store: Store
    loop: asyncio.AbstractEventLoop | None


_bound: ContextVar[BoundStore | None] = ContextVar("sluicegate_store", default=None)


def current_store() -> BoundStore | None:
    """The store bound in this context (by a run or :func:`bind_store`), or ``None``."""
    return _bound.get()


@contextlib.contextmanager
def bind_store(store: Store, loop: asyncio.AbstractEventLoop | None = None
               ) -> Iterator[BoundStore]:
    """Bind ``store`` in this context for the block (restoring what was bound before).

    Parameters:
        store: an open store.
        loop: the loop it was opened on; by default the running loop, if any.
    """
    if loop is None:
        with contextlib.suppress(RuntimeError):
            loop = asyncio.get_running_loop()
    bound = BoundStore(store, loop)
    token = _bound.set(bound)
    try:
        yield bound
    finally:
        _bound.reset(token)
