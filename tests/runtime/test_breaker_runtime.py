"""A downstream outage on the real runtime, SQLite and Redis: without a breaker good
messages are dead-lettered; with one, none is, and every message is processed after the
recovery; with an external probe, no probe invocation fails at all.

The issue's case (down 60 s, visibility timeout 5 s, max_receive_count 3) scaled by 1/5:
queues take whole seconds of visibility, and a function's timeout (at least 1 s) may not
exceed it, so 1 s is the smallest visibility; the outage is 12 s, the breaker's open
wait 6 s (the preset's 30 s / 5). Both stores run at once, each in its own runtime, so
the test lasts one outage (about 25 s), not two. ``bench/breaker_outage.py`` measures
the full-size case.

Invariant, per queue: processed + still queued + dead-lettered = sent.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import pytest

import sluicegate
from outage import QUEUES, Downstream, outage_app, run_outage
from sluicegate.runtime.driver import Runtime
from sluicegate.store import Store, open_store
from sluicegate.store.base import PutEntry

VISIBILITY = 1
DOWN_FROM = 1.0
DOWN_FOR = 12.0
RATE = 20.0
SEND_FOR = 16.0
BREAKER = {"minimum_calls": 5, "sliding_window_size": 10, "open_wait": 6,
           "open_wait_multiplier": 2}


async def outage(url: str) -> dict[str, Any]:
    downstream = Downstream(DOWN_FROM, DOWN_FOR)
    app = outage_app(downstream, visibility=VISIBILITY, breaker=BREAKER, probe_interval=0.5)

    async def report(store: Store, runtime: Runtime, sent: int) -> dict[str, Any]:
        counts = {q: await store.counts(q) for q in app.queues}
        return {"sent": sent, "downstream": downstream, "counts": counts,
                "states": runtime.breakers().states()}

    return await run_outage(url, app, downstream, send_for=SEND_FOR, rate=RATE,
                            duration=SEND_FOR + DOWN_FOR + 20, poll=0.25, report=report)


def test_an_outage_dead_letters_without_a_breaker_and_nothing_with_one(
    tmp_path: Any, redis_url: str
) -> None:
    async def both() -> list[dict[str, Any]]:
        return list(await asyncio.gather(outage(f"sqlite:///{tmp_path / 'b.db'}"),
                                         outage(redis_url)))

    for result in asyncio.run(both()):
        sent, downstream, counts = result["sent"], result["downstream"], result["counts"]
        assert sent >= RATE * SEND_FOR * 0.5
        for queue in QUEUES:
            processed = len(downstream.processed[queue])
            # the invariant: processed + still queued + dead-lettered = sent
            assert processed + counts[queue].total + counts[f"{queue}-dlq"].total == sent, queue
        # without a breaker, good messages are dead-lettered (12 s > 3 x 1 s)
        assert counts["plain-dlq"].total > 0
        # with one: none, every message processed after the recovery, the breakers closed
        for queue in ("guarded", "probed"):
            assert counts[f"{queue}-dlq"].total == 0, (queue, downstream.failed)
            assert downstream.processed[queue] == set(range(sent)), queue
        assert result["states"] == {"guarded->handle_guarded": "closed",
                                    "probed->handle_probed": "closed"}
        # the breaker's failures: the calls that tripped it (at the outage's start) and
        # one failed probe (its first, an open wait later); with an external probe, no
        # probe invocation failed: every failure is one of those that tripped it
        guarded = downstream.failed["guarded"]
        tripping = [t for t in guarded if t < DOWN_FROM + 1.0]
        assert BREAKER["minimum_calls"] <= len(tripping) <= 12
        assert len(guarded) == len(tripping) + 1
        assert guarded[-1] >= DOWN_FROM + BREAKER["open_wait"]
        probed = downstream.failed["probed"]
        assert probed and all(t < DOWN_FROM + 1.0 for t in probed)
        assert len(downstream.failed["plain"]) > 10 * len(guarded)


@pytest.mark.parametrize("probe", ["http://127.0.0.1:9/health", "ftp://x"])
def test_a_probe_url_must_be_http(probe: str) -> None:
    app = sluicegate.App()
    app.queue("q")
    app.function(name="f")(lambda event, context: None)
    if probe.startswith("http"):
        app.map("q", "f", breaker={"probe": probe})
    else:
        with pytest.raises(sluicegate.ConfigError, match="http"):
            app.map("q", "f", breaker={"probe": probe})


# ---------------------------------------------------------------------- streams

STREAM_DOWN = (0.5, 4.5)
"""When the stream test's downstream is down, seconds after the first put."""


def test_an_open_breaker_holds_a_shard_instead_of_spending_its_retries(tmp_path: Any) -> None:
    # Given one stream read by two mappings whose functions call one downstream, down for
    # 4 s; each may retry a batch 3 times (4 attempts, a second apart: all in the outage)
    app = sluicegate.App()
    app.stream("clicks")
    t0 = [time.monotonic()]
    seen: dict[str, list[int]] = {"plain": [], "guarded": []}

    def handler_for(name: str) -> Any:
        def handle(event: dict[str, Any], context: Any) -> None:
            elapsed = time.monotonic() - t0[0]
            if STREAM_DOWN[0] <= elapsed < STREAM_DOWN[1]:
                raise ConnectionError("downstream refused the connection")
            seen[name].extend(json.loads(base64.b64decode(r["kinesis"]["data"]))["n"]
                              for r in event["Records"])
        handle.__name__ = name
        return handle

    for name in seen:
        app.queue(f"{name}-failures")
        app.function(name=name)(handler_for(name))
        breaker = ({"minimum_calls": 2, "sliding_window_size": 2, "open_wait": 1.5,
                    "open_wait_multiplier": 2} if name == "guarded" else None)
        app.map("clicks", name, batch_size=5, maximum_retry_attempts=3,
                on_failure=f"{name}-failures", breaker=breaker)

    async def work() -> tuple[int, dict[str, int], dict[str, Any]]:
        store = open_store(f"sqlite:///{tmp_path / 's.db'}")
        await store.open()
        try:
            runtime = Runtime(app, store, grace_period=2.0, cluster=None)
            await runtime.prepare()
            put = 0

            async def produce() -> None:
                nonlocal put
                t0[0] = time.monotonic()
                while time.monotonic() - t0[0] < 6.0:
                    await store.put_records("clicks", [PutEntry("k", json.dumps({"n": put}))])
                    put += 1
                    await asyncio.sleep(0.1)
                # then wait for both mappings to settle every record
                while True:
                    await asyncio.sleep(0.2)
                    if all([await _settled(store, n) for n in seen]):
                        runtime.stop("settled")
                        return

            task = asyncio.create_task(produce())
            await runtime.run(duration=20)
            task.cancel()
            failures = {n: (await store.counts(f"{n}-failures")).total for n in seen}
            return put, failures, runtime.breakers().states()
        finally:
            await store.close()

    put, failures, states = asyncio.run(work())
    # Then without a breaker the batches caught in the outage used up their retries and
    # were discarded to the on-failure destination
    assert failures["plain"] > 0
    # with one the shard held at its checkpoint: nothing discarded, every record
    # processed once, in order, after the recovery
    assert failures["guarded"] == 0
    assert seen["guarded"] == list(range(put))
    assert states == {"clicks->guarded": "closed"}


async def _settled(store: Any, mapping: str) -> bool:
    """Whether mapping ``clicks->MAPPING`` checkpointed the shard's last record."""
    checkpoints = await store.get_checkpoints(f"clicks->{mapping}")
    return bool(checkpoints.get(0) == await store.latest_sequence("clicks", 0))
