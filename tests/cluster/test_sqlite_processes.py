"""Real ``sluicegate run`` processes on one SQLite file, with no flag: the mapping's
maximum concurrency holds across them, a worker killed with SIGKILL gives its slots back
within the lease ttl and loses no message, and ``sluicegate workers`` lists them.

Concurrency is measured from inside the handler: each invocation appends a start line
and an end line (wall clock, one file per process) and the test computes the peak of
overlapping intervals across every process. An invocation of the killed process that never
wrote its end counts as running until the kill.
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
from pathlib import Path

import pytest

from sluicegate.store import SendEntry, SqliteStore

APP = textwrap.dedent('''
    import asyncio, json, os, time

    import sluicegate

    LOG = os.path.join(os.environ.get("GAUGE_DIR", "."), f"{os.getpid()}.log")

    app = sluicegate.App()
    app.queue("dlq")
    app.queue("q", visibility_timeout=3, receive_wait_time=1, dead_letter_queue="dlq",
              max_receive_count=5)


    def note(line):
        with open(LOG, "a") as f:
            f.write(line + "\\n")


    @app.function(timeout=2)
    async def work(event, context):
        n = json.loads(event["Records"][0]["body"])["n"]
        note(f"S {context.aws_request_id} {time.time():.6f} {n}")
        await asyncio.sleep(0.1)
        note(f"E {context.aws_request_id} {time.time():.6f} {n}")


    app.map("q", work, batch_size=1, maximum_concurrency=int(os.environ.get("CAP", "4")))
''')


def write_app(tmp_path: Path) -> Path:
    path = tmp_path / "cap_app.py"
    path.write_text(APP)
    (tmp_path / "gauge").mkdir()
    return path


async def fill(db: Path, app: Path, count: int) -> None:
    from sluicegate.loader import load_app
    from sluicegate.runtime.driver import Runtime

    async with SqliteStore(db) as store:
        await Runtime(load_app(str(app)), store, cluster=None).prepare()
        for i in range(0, count, 10):
            await store.send_batch("q", [SendEntry(json.dumps({"n": j}))
                                         for j in range(i, min(count, i + 10))])


def start(tmp_path: Path, app: Path, db: Path, cap: int, n: int,
          *extra: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, GAUGE_DIR=str(tmp_path / "gauge"), CAP=str(cap))
    with (tmp_path / f"worker{n}.out").open("wb") as log:  # the child keeps its own copy
        return subprocess.Popen(
            [sys.executable, "-m", "sluicegate.cli", "run", str(app), "--store",
             f"sqlite:///{db}", "--until-empty", "--status", "none", "--grace-period", "5",
             *extra],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )


def intervals(tmp_path: Path, killed: dict[int, float]) -> list[tuple[float, float, int, int]]:
    """(start, end, message, pid) of every invocation; one of a killed process that
    never ended ends at the kill."""
    out = []
    for path in (tmp_path / "gauge").glob("*.log"):
        pid = int(path.stem)
        starts: dict[str, tuple[float, int]] = {}
        for line in path.read_text().splitlines():
            kind, request, at, n = line.split()
            if kind == "S":
                starts[request] = (float(at), int(n))
            else:
                began, message = starts.pop(request)
                out.append((began, float(at), message, pid))
        for began, message in starts.values():
            assert pid in killed, f"an invocation of live process {pid} never ended"
            out.append((began, killed[pid], message, pid))
    return out


def peak(spans: list[tuple[float, float, int, int]]) -> int:
    """Most intervals overlapping at once (an end at the same instant as a start comes
    first: they did not overlap)."""
    events = sorted([(s, 1) for s, _, _, _ in spans] + [(e, -1) for _, e, _, _ in spans])
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def output(tmp_path: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}"
                     for p in sorted(tmp_path.glob("worker*.out")))


@pytest.mark.slow
def test_two_processes_on_one_sqlite_file_keep_maximum_concurrency(tmp_path: Path) -> None:
    # Given a mapping with maximum_concurrency=4 and a 100 ms handler, 120 messages
    app, db = write_app(tmp_path), tmp_path / "store.db"
    asyncio.run(fill(db, app, 120))
    # When two `sluicegate run` processes drain it, with no flag
    procs = [start(tmp_path, app, db, 4, n) for n in range(2)]
    codes = [p.wait(timeout=60) for p in procs]
    assert codes == [0, 0], output(tmp_path)
    spans = intervals(tmp_path, {})
    # Then every message was processed, both processes worked, and never more than 4
    # invocations ran at once across them
    assert {m for _, _, m, _ in spans} == set(range(120))
    assert len({pid for _, _, _, pid in spans}) == 2, "one process did all: nothing tested"
    assert peak(spans) <= 4, output(tmp_path)
    assert peak(spans) == 4  # and the cap was reached, not stuck below


@pytest.mark.slow
def test_a_killed_process_breaks_no_cap_and_loses_no_message(tmp_path: Path) -> None:
    # Given three processes on one SQLite file, cap 6, lease ttl 1.5 s, 300 messages
    total = 300
    app, db = write_app(tmp_path), tmp_path / "store.db"
    asyncio.run(fill(db, app, total))
    procs = [start(tmp_path, app, db, 6, n, "--lease-ttl", "1.5") for n in range(3)]
    killed: dict[int, float] = {}
    try:
        # When they are all working, `sluicegate workers` lists them ...
        deadline = time.monotonic() + 30
        gauge = tmp_path / "gauge"
        while len(list(gauge.glob("*.log"))) < 3 or sum(
                len(p.read_text().splitlines()) for p in gauge.glob("*.log")) < 60:
            assert time.monotonic() < deadline, output(tmp_path)
            time.sleep(0.05)
        listed = subprocess.run(
            [sys.executable, "-m", "sluicegate.cli", "workers", "--store", f"sqlite:///{db}",
             "--json"], capture_output=True, text=True, timeout=30, check=True)
        pids = sorted(w["pid"] for w in json.loads(listed.stdout))
        assert pids == sorted(p.pid for p in procs)
        # ... and one of them is killed with SIGKILL mid-run
        victim = procs[1]
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        killed[victim.pid] = time.time()
        # Then the survivors drain the queue (the victim's slots come back after the
        # ttl, its messages after their visibility timeout)
        codes = [p.wait(timeout=60) for p in procs if p is not victim]
        assert codes == [0, 0], output(tmp_path)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    spans = intervals(tmp_path, killed)
    assert peak(spans) <= 6, output(tmp_path)

    async def counts() -> tuple[int, int]:
        async with SqliteStore(db) as store:
            q, dlq = await store.counts("q"), await store.counts("dlq")
            return q.total, dlq.total

    queued, dead = asyncio.run(counts())
    processed = {m for _, e, m, pid in spans if pid not in killed or e < killed[pid]}
    # every message accounted for: processed, still queued or dead-lettered
    assert processed <= set(range(total))
    assert len(processed) + queued + dead >= total
    assert (queued, dead) == (0, 0)
    assert processed == set(range(total))
