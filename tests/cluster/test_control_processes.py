"""Dynamic concurrency control across real ``sluicegate run`` processes on one SQLite
file or one Redis, with a ``kill -9`` of one of them: circuit breakers riding out a
downstream outage, and adaptive limits sharing a downstream of fixed capacity.

Each process has its own breaker and its own adaptive limit (a breaker's state and an
adaptive estimate belong to the runtime that observes the calls; adaptive limits share
only their growth, divided among the live processes); these tests show what that gives
when several processes serve one mapping.

Invariant, per queue: processed (the handler's ledger, distinct messages) + still queued
+ dead-lettered = sent. A message may appear in the ledger twice only as an at-least-once
retry (a killed process processed it but could not delete it).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from downstream import Downstream, ThreadedDownstream
from sluicegate.store import SendEntry, Store, open_store

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return f"sqlite:///{tmp_path / 'control.db'}"


class Workers:
    """``sluicegate run`` processes of one App on one store, stopped at the end."""

    def __init__(self, tmp_path: Path, url: str, source: str, env: dict[str, str]) -> None:
        self.tmp_path, self.url = tmp_path, url
        self.app = tmp_path / "control_app.py"
        self.app.write_text(source)
        self.env = dict(os.environ, **env)
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, count: int) -> None:
        for n in range(count):
            with (self.tmp_path / f"worker{n}.out").open("wb") as log:
                self.procs.append(subprocess.Popen(
                    [sys.executable, "-m", "sluicegate.cli", "run", str(self.app), "--store",
                     self.url, "--status", "none", "--grace-period", "3", "--lease-ttl", "2"],
                    stdout=log, stderr=subprocess.STDOUT, env=self.env))

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)

    def stop(self) -> list[int]:
        """SIGTERM the live processes; their exit codes (a killed one's is skipped)."""
        live = [p for p in self.procs if p.poll() is None]
        for p in live:
            p.send_signal(signal.SIGTERM)
        codes = []
        for p in live:
            try:
                codes.append(p.wait(15))
            except subprocess.TimeoutExpired:
                p.kill()
                codes.append(p.wait())
        return codes

    def output(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}"
                         for p in sorted(self.tmp_path.glob("worker*.out")))


@pytest.fixture
def workers_for(tmp_path: Path, store_url: str) -> Iterator[Callable[..., Workers]]:
    made: list[Workers] = []

    def make(source: str, **env: str) -> Workers:
        made.append(Workers(tmp_path, store_url, source, env))
        return made[-1]

    yield make
    for w in made:
        w.stop()


async def wait_for(check: Callable[[], Awaitable[Any]], within: float, what: str,
                   workers: Workers) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within}s\n{workers.output()}")
        await asyncio.sleep(0.05)


async def all_registered(store: Store, workers: Workers) -> None:
    """Wait until every started process is registered as a worker of the store."""
    async def registered() -> bool:
        return len(await store.list_workers()) == len(workers.procs)

    await wait_for(registered, 30, "workers registered", workers)


def ledger(path: Path) -> list[list[str]]:
    """The handler's ledger lines, split."""
    if not path.exists():
        return []
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


# --------------------------------------------------------------------- breakers

BREAKER_APP = textwrap.dedent('''
    import json, os, time

    import sluicegate

    DOWN = os.environ["DOWN_FLAG"]
    LEDGER = os.environ["LEDGER"]

    app = sluicegate.App(name="xproc-breaker")
    app.queue("dlq")
    app.queue("q", visibility_timeout=1, receive_wait_time=1, dead_letter_queue="dlq",
              max_receive_count=3)


    def note(line):
        with open(LEDGER, "a") as f:
            f.write(line + "\\n")


    @app.function(timeout=1)
    def work(event, context):
        record = event["Records"][0]
        n = json.loads(record["body"])["n"]
        receives = record["attributes"]["ApproximateReceiveCount"]
        if os.path.exists(DOWN):
            note(f"F {n} {os.getpid()} {time.time():.3f} {receives}")
            raise ConnectionError("downstream refused the connection")
        note(f"P {n} {os.getpid()} {time.time():.3f} {receives}")


    app.map("q", work, batch_size=1, breaker={
        "minimum_calls": 3, "sliding_window_size": 5, "open_wait": 1.5,
        "open_wait_multiplier": 2})
''')

RATE = 20.0
"""Messages sent per second."""
DOWN_FROM, DOWN_FOR = 0.5, 3.5
"""When the downstream is down, seconds after the first message: longer than
max_receive_count x visibility (3 x 1 s), so a mapping without a breaker would
dead-letter good messages (tests/runtime/test_breaker_runtime.py shows it)."""
KILL_AT = 2.5
"""When one process is killed: in the outage, after its breaker's first failed probe."""
SEND_FOR = 5.0


def test_breakers_in_two_processes_ride_out_an_outage_and_a_kill(
    tmp_path: Path, store_url: str, workers_for: Callable[..., Workers],
    capsys: pytest.CaptureFixture[str],
) -> None:
    down, book = tmp_path / "down", tmp_path / "ledger"
    workers = workers_for(BREAKER_APP, DOWN_FLAG=str(down), LEDGER=str(book))
    started = time.monotonic()

    async def scenario() -> dict[str, Any]:
        async with open_store(store_url) as store:
            workers.start(2)
            await all_registered(store, workers)
            sent, killed_at, victim = 0, 0.0, workers.procs[1]
            t0 = time.monotonic()
            # messages arrive at RATE; the downstream goes down, a process is killed,
            # the downstream comes back
            while (elapsed := time.monotonic() - t0) < SEND_FOR:
                if DOWN_FROM <= elapsed < DOWN_FROM + DOWN_FOR:
                    down.touch()
                elif down.exists():
                    down.unlink()
                if elapsed >= KILL_AT and not killed_at:
                    workers.kill(victim)
                    killed_at = time.time()
                await store.send_batch("q", [SendEntry(json.dumps({"n": sent}))])
                sent += 1
                await asyncio.sleep(max(0.0, t0 + sent / RATE - time.monotonic()))
            down.unlink(missing_ok=True)

            async def settled() -> bool:
                return (await store.counts("q")).total == 0

            await wait_for(settled, 20, "the queue drained", workers)
            return {"sent": sent, "t0": t0, "killed_at": killed_at, "victim": victim.pid,
                    "dlq": (await store.counts("dlq")).total,
                    "queued": (await store.counts("q")).total}

    result = asyncio.run(scenario())
    codes = workers.stop()
    took = time.monotonic() - started
    assert codes == [0], workers.output()
    lines = ledger(book)
    sent = result["sent"]
    processed = [int(n) for kind, n, *_ in lines if kind == "P"]
    failed = [line for line in lines if line[0] == "F"]
    # the invariant, and no loss: every message processed (after the recovery for those
    # sent during the outage), none dead-lettered
    assert len(set(processed)) + result["queued"] + result["dlq"] == sent
    assert result["dlq"] == 0, (failed, workers.output())
    assert set(processed) == set(range(sent))
    # duplicates only as at-least-once retries of the killed process's work
    repeated = {n for n in processed if processed.count(n) > 1}
    victim = str(result["victim"])
    for n in repeated:
        assert any(kind == "P" and int(m) == n and pid == victim
                   for kind, m, pid, *_ in lines), n
    # both breakers tripped: each process failed a few calls, not one per message
    # received during the outage
    by_process = {pid: sum(1 for f in failed if f[2] == pid) for pid in {f[2] for f in failed}}
    assert len(by_process) == 2, by_process
    assert len(failed) < 0.25 * RATE * DOWN_FOR, failed
    most = max(int(r) for *_, r in lines)
    at_most = sum(1 for kind, *_, r in lines if kind == "P" and int(r) == most)
    figures = {"store": store_url.partition(":")[0], "sent": sent, "dead_lettered": result["dlq"],
               "failed_calls": by_process, "duplicates": len(repeated),
               "highest_receive_count": most, "processed_at_it": at_most,
               "seconds": round(took, 1)}
    with capsys.disabled():
        print(f"\nbreakers across processes {json.dumps(figures)}")


# --------------------------------------------------------------------- adaptive

ADAPTIVE_APP = textwrap.dedent('''
    import asyncio, json, os, time

    import sluicegate

    PORT = int(os.environ["DOWNSTREAM_PORT"])
    LEDGER = os.environ["LEDGER"]

    app = sluicegate.App(name="xproc-adaptive")
    app.queue("dlq")
    app.queue("q", visibility_timeout=2, receive_wait_time=1, dead_letter_queue="dlq",
              max_receive_count=5)


    @app.function(timeout=2)
    async def call(event, context):
        n = json.loads(event["Records"][0]["body"])["n"]
        started = time.monotonic()
        reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
        writer.write(f"{os.getpid()}\\n".encode())
        await writer.drain()
        answer = await reader.readline()
        writer.close()
        context.report(latency=time.monotonic() - started, overload=answer == b"busy\\n")
        with open(LEDGER, "a") as f:
            f.write(f"P {n} {os.getpid()}\\n")


    # AIMD on the downstream's "busy" (tests/runtime/test_adaptive_runtime.py: the real
    # clock's latency is too noisy here for Vegas at a capacity of 10)
    app.map("q", call, batch_size=1, scaling="adaptive", algorithm="aimd",
            adaptive={"initial": 3, "maximum": 60, "backoff_ratio": 0.75,
                      "window": 0.5, "window_size": 5})
''')

CAPACITY, LATENCY = 10, 0.25
"""The downstream: 10 calls at once at 250 ms, 40 calls/s."""
MESSAGES = 250
BOTH_FOR = 2.0
"""Seconds both processes work before one is killed."""
RAMP = 8.0
"""At most this many seconds for the survivor's limit to grow, after the kill, until the
downstream gave 80% of its rate over the last second (then its throughput is measured)."""
MEASURE = 1.5
"""Seconds over which the survivor's throughput is measured."""


def test_adaptive_limits_in_two_processes_share_a_downstream_and_recover_after_a_kill(
    tmp_path: Path, store_url: str, workers_for: Callable[..., Workers],
    capsys: pytest.CaptureFixture[str],
) -> None:
    book = tmp_path / "ledger"
    started = time.monotonic()
    with ThreadedDownstream(CAPACITY, LATENCY) as server:
        workers = workers_for(ADAPTIVE_APP, DOWNSTREAM_PORT=str(server.port),
                              LEDGER=str(book))

        def read(how: Callable[[Downstream], Any]) -> Any:
            return server.call(how)

        d_rate = server.downstream.rate

        async def scenario() -> dict[str, Any]:
            async with open_store(store_url) as store:
                workers.start(2)
                await all_registered(store, workers)
                for i in range(0, MESSAGES, 10):
                    await store.send_batch("q", [SendEntry(json.dumps({"n": n}))
                                                 for n in range(i, i + 10)])

                async def both_called() -> bool:
                    callers = read(lambda d: set(d.by_caller))
                    return len(callers) == 2

                await wait_for(both_called, 10, "both processes calling", workers)
                both_mark = read(lambda d: d.mark())
                begun = time.monotonic()
                victim, survivor = workers.procs[1], workers.procs[0]
                load_begun = read(lambda d: d.load(str(survivor.pid)))
                await asyncio.sleep(BOTH_FOR)
                loads = read(lambda d: {c: d.load(c) for c in d.by_caller})
                share_both = read(lambda d: d.share_since(both_mark, 1.1 * d.capacity))
                workers.kill(victim)
                killed = time.monotonic()
                before = loads[str(survivor.pid)] - load_begun
                kill_mark = read(lambda d: d.mark())
                # the survivor's limit grows until the downstream gives 80% of its rate
                # over the last second (AIMD: +1 per half-second window)

                async def recovered() -> bool:
                    now = time.monotonic()
                    return now - killed >= 1.0 and bool(
                        read(lambda d: d.rate_between(now - 1.0, now)) >= 0.8 * d_rate)

                await wait_for(recovered, RAMP, "throughput recovered", workers)
                ramped = time.monotonic()
                ramp_load = read(lambda d: d.load(str(survivor.pid)))
                await asyncio.sleep(MEASURE)
                measured = time.monotonic()
                measured_load = read(lambda d: d.load(str(survivor.pid)))
                left = (await store.counts("q")).visible

                async def settled() -> bool:
                    return (await store.counts("q")).total == 0

                await wait_for(settled, 30, "the queue drained", workers)
                return {"begun": begun, "killed": killed, "ramped": ramped,
                        "measured": measured, "left": left,
                        "share_both": share_both, "before": before,
                        "after": measured_load - ramp_load, "kill_mark": kill_mark,
                        "dlq": (await store.counts("dlq")).total,
                        "queued": (await store.counts("q")).total,
                        "victim": victim.pid, "survivor": survivor.pid}

        result = asyncio.run(scenario())
        ends: list[float] = read(lambda d: list(d.ends))
        share_after = read(lambda d: d.share_since(result["kill_mark"], 1.1 * d.capacity))
        share_all = read(lambda d: d.share_within(1.1 * d.capacity))
        peak = read(lambda d: d.peak)
    codes = workers.stop()
    took = time.monotonic() - started
    assert codes == [0], workers.output()
    lines = ledger(book)
    processed = [int(n) for _, n, _ in lines]
    # the invariant: everything processed, nothing dead-lettered or left
    assert len(set(processed)) + result["queued"] + result["dlq"] == MESSAGES
    assert (result["queued"], result["dlq"]) == (0, 0)
    assert set(processed) == set(range(MESSAGES))
    # after the kill, the survivor's limit grew: its mean concurrency at the downstream
    # once ramped is above what it held while sharing; and the downstream's throughput
    # recovered, measured over MEASURE seconds after the ramp (with a backlog left)
    span = result["killed"] - result["begun"]
    window = result["measured"] - result["ramped"]
    mean_before, mean_after = result["before"] / span, result["after"] / window
    rate = sum(1 for t in ends if result["ramped"] <= t < result["measured"]) / window
    both_rate = sum(1 for t in ends if result["begun"] <= t < result["killed"]) / span
    assert result["left"] > 0, "the backlog ran out before the recovery was measured"
    figures = {"store": store_url.partition(":")[0], "share_both": round(result["share_both"], 3),
               "share_after_kill": round(share_after, 3), "share_all": round(share_all, 3),
               "peak": peak, "rate_both": round(both_rate, 1),
               "recovery_s": round(result["ramped"] - result["killed"], 1),
               "rate_recovered": round(rate, 1), "capacity_rate": CAPACITY / LATENCY,
               "survivor_mean_concurrency": [round(mean_before, 1), round(mean_after, 1)],
               "left_after_measure": result["left"],
               "seconds": round(took, 1)}
    with capsys.disabled():
        print(f"\nadaptive across processes {json.dumps(figures)}")
    # with both running, the downstream stayed within 1.1 C for 95% of its busy time, as
    # with one process. Each process runs its own AIMD on the same "busy" answers; they
    # share their growth (each +1/2 per window, limits offset by half a slot), so their
    # sum grows as one limit's. On their own they grew in step (+1 each per window) and
    # their sum passed from 10 to 12 until the drops landed: 0.88 to 0.97 within 1.1 C
    assert result["share_both"] >= 0.95, figures
    assert mean_after > mean_before, figures
    assert rate >= 0.8 * CAPACITY / LATENCY, figures
    assert share_after >= 0.95, figures
