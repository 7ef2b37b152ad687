"""What the runners of queue mappings and of stream mappings share: the loop that asks
the core what to do, performs it and sleeps until the core's next deadline or the next
report, and the cancellation of invocations in flight.

A runner (a dataclass in :mod:`sluicegate.runtime.driver` or
:mod:`sluicegate.runtime.stream_runner`) provides the attributes annotated below and
implements :meth:`MappingLoop._perform` and :meth:`MappingLoop._settled`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sluicegate.runtime.driver import Runtime

__all__ = ["MappingLoop", "wait_event"]


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


class MappingLoop:
    """The loop of one mapping's runner (a mixin of the runner dataclasses)."""

    runtime: Runtime
    core: Any
    """The core's state machine: ``poll``, ``next_wakeup``, ``throttles``."""
    wake: asyncio.Event
    invocations: dict[int, asyncio.Task[None]]
    stopping: bool
    seen_throttles: int

    @property
    def name(self) -> str:
        raise NotImplementedError

    def _perform(self, now: float, actions: list[Any]) -> None:
        """Start what the core's ``poll`` asked for (it reports back through tasks)."""
        raise NotImplementedError

    def _settled(self) -> bool:
        """Whether a stopping runner has nothing left in hand and may return."""
        raise NotImplementedError

    armed: float | None = None
    stepping: bool = False

    def step(self) -> None:
        """Poll the core now and perform, at once (a report's follow-up)."""
        if self.stepping:
            self.wake.set()
            return
        self.stepping = True
        try:
            core = self.core
            now = self.runtime.clock()
            self._perform(now, core.poll(now))
            deadline = core.next_wakeup(now)
        finally:
            self.stepping = False
        armed = self.armed
        if deadline is not None and (deadline <= now or armed is None or deadline < armed):
            self.wake.set()
        elif self.stopping:
            self.wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        clock = self.runtime.clock
        metrics = self.runtime.metrics
        while True:
            self.wake.clear()
            core = self.core  # a stream runner's core is rebuilt when its shards change
            now = clock()
            self._perform(now, core.poll(now))
            throttles = core.throttles
            if throttles != self.seen_throttles:
                metrics.throttled(self.name, throttles - self.seen_throttles)
                self.seen_throttles = throttles
            if self.stopping and self._settled():
                return
            deadline = core.next_wakeup(now)
            if self.wake.is_set():
                continue
            timer = None
            self.armed = deadline
            if deadline is not None:
                timer = loop.call_at(loop.time() + max(0.0, deadline - clock()), self.wake.set)
            await self.wake.wait()
            self.armed = None
            if timer is not None:
                timer.cancel()

    def cancel_invocations(self) -> None:
        for task in list(self.invocations.values()):
            task.cancel()
