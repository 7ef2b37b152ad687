"""Waiting on an event with a timeout, safely (a leaf module: the runtime and the cluster
both use it, and it imports neither)."""

from __future__ import annotations

import asyncio

__all__ = ["wait_event"]


async def wait_event(event: asyncio.Event, timeout: float) -> None:
    """Wait until ``event`` is set or ``timeout`` seconds passed, whichever comes first.

    Not ``asyncio.wait_for(event.wait(), timeout)``: on Python 3.11 that swallows a
    cancellation arriving just as the event is set, and a loop around it then never ends
    (a shutdown waiting for the task hangs). ``asyncio.wait`` never swallows one.
    """
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter}, timeout=timeout)
    finally:
        waiter.cancel()
