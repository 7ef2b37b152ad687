"""A downstream of fixed capacity for the adaptive-limit tests: a small asyncio TCP server
whose latency grows when more calls are in flight than it can serve at once, and which
says so (it answers ``busy``, as a server sends 429 or a "slow down" header).

Used in one process (``tests/runtime/test_adaptive_runtime.py``, on the runtime's own
loop) and across ``sluicegate run`` processes (``tests/cluster/test_control_processes.py``,
on a thread of its own: :class:`ThreadedDownstream`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Self


class Downstream:
    """A TCP server answering one line per connection after ``latency x max(1, calls in
    progress / capacity)`` seconds (the latency is fixed when the call arrives, as the
    simulator's downstream does): ``busy`` when the call found it above capacity, else
    ``ok``. Keeps how long each number of calls was in progress, when each call ended, and
    how many calls each caller had in progress (a call's line names its caller).

    Parameters:
        capacity: calls it serves at once at its base latency.
        latency: its base latency, seconds (it can give ``capacity / latency`` calls/s).
    """

    def __init__(self, capacity: int, latency: float) -> None:
        self.capacity = capacity
        self.latency = latency
        self.active = 0
        self.peak = 0
        self.calls = 0
        self.ends: list[float] = []
        self.first_busy: float | None = None
        self._at = time.monotonic()
        self.time_at: dict[int, float] = {}
        self.by_caller: dict[str, int] = {}
        self.caller_peak: dict[str, int] = {}
        self.caller_load: dict[str, float] = {}
        """Each caller's calls in progress, integrated over time (call-seconds)."""
        self._caller_at: dict[str, float] = {}
        self.server: asyncio.Server | None = None

    @property
    def rate(self) -> float:
        """The calls per second it can give at its base latency."""
        return self.capacity / self.latency

    def _move(self, step: int, caller: str) -> None:
        now = time.monotonic()
        self.time_at[self.active] = self.time_at.get(self.active, 0.0) + now - self._at
        self._at = now
        self.active += step
        self.peak = max(self.peak, self.active)
        held = self.by_caller.get(caller, 0)
        self.caller_load[caller] = (self.caller_load.get(caller, 0.0)
                                    + held * (now - self._caller_at.get(caller, now)))
        self._caller_at[caller] = now
        held = self.by_caller[caller] = held + step
        self.caller_peak[caller] = max(self.caller_peak.get(caller, 0), held)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        caller = line.decode(errors="replace").strip()
        self._move(1, caller)
        busy = self.active > self.capacity
        if busy and self.first_busy is None:
            self.first_busy = time.monotonic()
        await asyncio.sleep(self.latency * max(1.0, self.active / self.capacity))
        self._move(-1, caller)
        self.calls += 1
        self.ends.append(time.monotonic())
        try:
            writer.write(b"busy\n" if busy else b"ok\n")
            await writer.drain()
            writer.close()
        except ConnectionError:
            pass  # the caller died (a killed process): the call took its time all the same

    async def start(self) -> int:
        """Listen on a free 127.0.0.1 port; return it."""
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    def settled_rate(self) -> float:
        """Calls answered per second from the first time the limit reached capacity (the
        first ``busy``) until 90% of the calls were answered (the queue's tail, fewer
        messages than slots, is not the limit's doing)."""
        assert self.first_busy is not None
        until = self.ends[int(0.9 * len(self.ends))]
        done = sum(1 for t in self.ends if self.first_busy <= t <= until)
        return done / (until - self.first_busy)

    def rate_between(self, start: float, end: float) -> float:
        """Calls answered per second between two ``time.monotonic()`` instants."""
        return sum(1 for t in self.ends if start <= t < end) / (end - start)

    def share_within(self, bound: float) -> float:
        """Share of the busy time (any call in progress) with at most ``bound`` calls."""
        busy = {k: v for k, v in self.time_at.items() if k > 0}
        total = sum(busy.values())
        return sum(v for k, v in busy.items() if k <= bound) / total

    def load(self, caller: str) -> float:
        """``caller``'s calls in progress integrated over time until now (call-seconds):
        the difference between two readings over their interval is its mean concurrency."""
        now = time.monotonic()
        held = self.by_caller.get(caller, 0)
        return self.caller_load.get(caller, 0.0) + held * (now - self._caller_at.get(caller, now))

    def mark(self) -> dict[int, float]:
        """A copy of the time spent at each number of calls so far (to measure a phase:
        :meth:`share_since`)."""
        return dict(self.time_at)

    def share_since(self, mark: dict[int, float], bound: float) -> float:
        """:meth:`share_within`, counting only the time since :meth:`mark` gave ``mark``."""
        busy = {k: v - mark.get(k, 0.0) for k, v in self.time_at.items() if k > 0}
        total = sum(busy.values())
        return sum(v for k, v in busy.items() if k <= bound) / total


class ThreadedDownstream:
    """A :class:`Downstream` served by an event loop on a thread of its own, for a test
    that drives processes synchronously. Read its figures with :meth:`call` (on its loop).
    """

    def __init__(self, capacity: int, latency: float) -> None:
        self.downstream = Downstream(capacity, latency)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.port = 0

    def __enter__(self) -> Self:
        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self.downstream.start(),
                                                     self.loop).result(5)
        return self

    def call(self, read: object) -> object:
        """``read(downstream)`` on the server's loop (a consistent view of its figures)."""
        async def run() -> object:
            assert callable(read)
            return read(self.downstream)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(5)

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            server = self.downstream.server
            if server is not None:
                server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
