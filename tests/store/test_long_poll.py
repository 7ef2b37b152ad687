"""Long polls end when their task is cancelled, even when the cancel is swallowed on the
way (a short real clock: the waits are tenths of a second)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sluicegate.core.config import QueueConfig
from sluicegate.store.sqlite import SqliteStore


class SwallowsACancel(SqliteStore):
    """A store one of whose calls loses a cancel that arrives while it runs, as
    ``asyncio.wait_for`` does on Python 3.11 when the call completes as the cancel arrives
    (redis-py wraps its socket writes in it)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, poll_interval=0.05)
        self.swallowed = 0

    async def _next_visible_at(self, queue: str) -> float | None:
        try:
            await asyncio.sleep(0.2)
        except asyncio.CancelledError:
            self.swallowed += 1
        return await super()._next_visible_at(queue)


def test_a_long_poll_ends_at_a_cancel_a_store_call_swallowed(tmp_path: Path) -> None:
    async def main() -> None:
        store = SwallowsACancel(tmp_path / "q.db")
        await store.open()
        try:
            await store.ensure_queue(QueueConfig("q"))
            # Given a long poll of 20 s on an empty queue
            poll = asyncio.get_running_loop().create_task(store.receive("q", wait_time=20))
            await asyncio.sleep(0.1)  # inside its first look at the queue
            # When it is cancelled and the store's call swallows the cancel
            poll.cancel()
            done, _ = await asyncio.wait([poll], timeout=2.0)
            # Then the long poll still ends at once, cancelled
            assert store.swallowed == 1
            assert done and poll.cancelled()
        finally:
            await store.close()

    asyncio.run(main())
