"""A downstream outage on the real runtime: what a circuit breaker saves.

One runtime, one store, three queues fed at the same rate, each mapped to a handler that
calls the same downstream, down for ``OUTAGE`` seconds (the handler raises as a refused
connection makes it); every queue has ``max_receive_count`` 3 and a dead-letter queue:

- ``plain``: no breaker (AWS's behaviour);
- ``guarded``: a breaker (trips at 50% failures over 10 calls once 5 are in, open
  ``OPEN_WAIT`` seconds, doubling per failed probe);
- ``probed``: the same breaker with an external probe (the downstream's health, checked
  every second while open).

Prints, per queue: messages sent, processed, dead-lettered, still queued, the invocations
that failed, and when the last message was processed (seconds after the recovery). The
defaults are the issue's case: down 60 s, visibility timeout 5 s; ``--scale 0.2`` runs
the runtime test's (down 12 s, visibility 1 s: whole seconds are the floor).

Usage: ``python bench/breaker_outage.py [--scale S] [--rate R] [--store URL]``
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from sluicegate.runtime.driver import Runtime
from sluicegate.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from outage import QUEUES, Downstream, outage_app, run_outage


async def run(url: str, scale: float, rate: float) -> None:
    outage, down_from = 60.0 * scale, 5.0 * scale
    visibility = max(1, round(5 * scale))
    open_wait = 30.0 * scale
    send_for = down_from + outage + 15.0 * scale
    downstream = Downstream(down_from, outage)
    breaker = {"minimum_calls": 5, "sliding_window_size": 10, "open_wait": open_wait,
               "open_wait_multiplier": 2}
    app = outage_app(downstream, visibility=visibility, breaker=breaker, probe_interval=1.0)
    started = time.monotonic()

    async def report(store: Store, runtime: Runtime, sent: int) -> None:
        recovered = down_from + outage
        print(f"store {url.split(':')[0]}; down {outage:g} s from {down_from:g} s, "
              f"visibility {visibility} s, max_receive_count 3, open_wait {open_wait:g} s "
              f"x2; {rate:g} msg/s per queue for {send_for:g} s; "
              f"run {time.monotonic() - started:.1f} s")
        print(f"{'queue':<9}{'sent':>6}{'processed':>11}{'DLQ':>6}{'queued':>8}"
              f"{'failed':>8}  last processed (s after recovery)")
        for queue in QUEUES:
            counts = await store.counts(queue)
            dlq = await store.counts(f"{queue}-dlq")
            print(f"{queue:<9}{sent:>6}{len(downstream.processed[queue]):>11}"
                  f"{dlq.total:>6}{counts.total:>8}{len(downstream.failed[queue]):>8}"
                  f"  {downstream.last[queue] - recovered:.1f}")
        for queue in ("guarded", "probed"):
            times = ", ".join(f"{t:.1f}" for t in downstream.failed[queue])
            print(f"{queue} failed invocations at (s): {times}")

    await run_outage(url, app, downstream, send_for=send_for, rate=rate,
                     duration=send_for + outage * 2 + 60, poll=0.5, report=report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0,
                        help="times the issue's case (down 60 s, visibility 5 s)")
    parser.add_argument("--rate", type=float, default=20.0, help="messages/s per queue")
    parser.add_argument("--store", default=None, help="store URL (default: a new SQLite)")
    args = parser.parse_args()
    url = args.store or f"sqlite:///{tempfile.mkdtemp()}/breaker.db"
    asyncio.run(run(url, args.scale, args.rate))


if __name__ == "__main__":
    main()
