"""Semaphores and task tokens in the runtime, end to end on a real store: a mapping that
cannot take its semaphore does not receive; handlers take one mid-way in every isolation;
batches parked behind task tokens are completed, failed, kept by heartbeats or come back
when the heartbeats stop; every message sent is processed, queued or dead-lettered.

The handlers live in an App file (process isolation imports it again in each
environment) and append what they did to a JSON lines log named by ``SG_LOG``.
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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sluicegate
from sluicegate.loader import load_app
from sluicegate.runtime.driver import Runtime
from sluicegate.runtime.semaphores import (
    send_task_failure,
    send_task_heartbeat,
    send_task_success,
)
from sluicegate.runtime.status import format_line
from sluicegate.store import Store, open_store
from sluicegate.store.base import PutEntry

APP = '''
"""Handlers of sluicegate's semaphore tests: each appends what it did to $SG_LOG."""
import asyncio
import json
import os
import time

import sluicegate

app = sluicegate.App()
app.semaphore("db", limit=1, lease_ttl=2)


def note(**fields):
    fields.setdefault("pid", os.getpid())
    with open(os.environ["SG_LOG"], "a") as log:
        log.write(json.dumps(fields) + "\\n")


def receives(event):
    return int(event["Records"][0]["attributes"]["ApproximateReceiveCount"])


for name in ("gated", "busy", "parked_proc", "midway_shared", "midway_shared_t",
             "midway_async", "midway_sync", "midway_proc", "parked",
             "midway_async_t", "midway_sync_t", "midway_proc_t"):
    app.queue(name, visibility_timeout=5, receive_wait_time=1, max_receive_count=3,
              dead_letter_queue=name + "-dlq")


@app.function(timeout=5)
async def gated(event, context):
    note(kind="gated", start=time.time(), fence=context.fencing_tokens["db"])
    await asyncio.sleep(0.05)
    note(kind="gated", end=time.time())


@app.function(timeout=5)
async def midway_async(event, context):
    body = json.loads(event["Records"][0]["body"])
    async with context.semaphore("db", timeout=body["timeout"]) as hold:
        note(kind="midway_async", start=time.time(), fence=hold.fencing_token)
        await asyncio.sleep(0.05)
        note(kind="midway_async", end=time.time())


@app.function(timeout=5)
def midway_sync(event, context):
    body = json.loads(event["Records"][0]["body"])
    with context.semaphore("db", timeout=body["timeout"]) as hold:
        note(kind="midway_sync", start=time.time(), fence=hold.fencing_token)
        time.sleep(0.05)
        note(kind="midway_sync", end=time.time())


@app.function(timeout=5, isolation="shared")
def midway_shared(event, context):
    body = json.loads(event["Records"][0]["body"])
    with context.semaphore("db", timeout=body["timeout"]) as hold:
        note(kind="midway_shared", start=time.time(), fence=hold.fencing_token)
        time.sleep(0.05)
        note(kind="midway_shared", end=time.time())


@app.function(timeout=5, isolation="process")
def midway_proc(event, context):
    body = json.loads(event["Records"][0]["body"])
    with context.semaphore("db", timeout=body["timeout"]) as hold:
        note(kind="midway_proc", start=time.time(), fence=hold.fencing_token)
        time.sleep(0.05)
        note(kind="midway_proc", end=time.time())


@app.function(timeout=5)
async def parked(event, context):
    body = json.loads(event["Records"][0]["body"])
    if receives(event) > 1:  # came back: done the plain way
        note(kind="parked", again=body["n"], receives=receives(event))
        return None
    token = context.park(heartbeat=body["heartbeat"])
    note(kind="parked", n=body["n"], token=token)


@app.function(timeout=5, isolation="process")
def parked_proc(event, context):
    note(kind="parked_proc", token=context.park(heartbeat=30), pid=os.getpid())
    return {"ignored": True}


app.map("parked_proc", parked_proc, batch_size=1)
app.map("gated", gated, batch_size=1, semaphores=("db",))
app.map("busy", gated, batch_size=1, semaphores=("db",))
app.map("midway_async", midway_async, batch_size=1)
app.map("midway_sync", midway_sync, batch_size=1)
app.map("midway_proc", midway_proc, batch_size=1)
app.map("midway_async_t", midway_async, batch_size=1)
app.map("midway_sync_t", midway_sync, batch_size=1)
app.map("midway_proc_t", midway_proc, batch_size=1)
app.map("midway_shared", midway_shared, batch_size=1)
app.map("midway_shared_t", midway_shared, batch_size=1)
app.map("parked", parked, batch_size=1, report_batch_item_failures=True)
'''


@pytest.fixture
def app_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "semaphore_app.py"
    path.write_text(textwrap.dedent(APP))
    monkeypatch.setenv("SG_LOG", str(tmp_path / "log.jsonl"))
    return path


@pytest.fixture(params=["sqlite", "redis"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return f"sqlite:///{tmp_path / 'store.db'}"


def _log() -> list[dict[str, Any]]:
    path = Path(os.environ["SG_LOG"])
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


async def _eventually(check: Any, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"not within {timeout} s: {_log()}")
        await asyncio.sleep(0.02)


async def _accounted(store: Store, queue: str) -> int:
    """Messages still in ``queue`` (visible, delayed or in flight) plus in its DLQ."""
    counts = await store.counts(queue)
    dlq = await store.counts(f"{queue}-dlq")
    return counts.visible + counts.delayed + counts.in_flight + dlq.visible


def _errors(runtime: Runtime) -> int:
    return sum(int(r.core.errors) for r in runtime.runners)


def _only(app: sluicegate.App, *queues: str) -> sluicegate.App:
    """``app`` running only the mappings of ``queues``."""
    app.mappings = [m for m in app.mappings if m.queue in queues]
    return app


def test_a_mapping_that_cannot_take_its_semaphore_burns_no_receive_count(
    app_file: Path, url: str
) -> None:
    async def main() -> None:
        app = _only(load_app(str(app_file)), "gated")
        async with open_store(url) as store:
            runtime = Runtime(app, store, cluster=None)
            await runtime.prepare()
            # Given the semaphore held by someone else
            outside = await store.acquire_semaphore("db", "outside", limit=1, ttl=30,
                                                    timeout=0)
            assert outside.acquired
            for n in range(5):
                await store.send("gated", json.dumps({"n": n}))
            run = asyncio.ensure_future(runtime.run(until_empty=True))
            # When the mapping runs for a while
            await asyncio.sleep(1.0)
            # Then it has received nothing: every message visible, never received
            counts = await store.counts("gated")
            assert (counts.visible, counts.in_flight) == (5, 0)
            assert [m.receive_count for m in await store.peek("gated")] == [0] * 5
            assert runtime.limit_reasons()["gated->gated"] == "semaphore:db"
            # status and metrics show it: no slot of db's 1 held here
            runtime.metrics.set_limits(runtime._limits(), runtime.limit_reasons(),
                                       **runtime._states())
            metrics = runtime.metrics
            now = metrics.snapshot(metrics.current_second, "gated->gated")
            assert now.semaphores == (("db", 0, 1),)
            assert "semaphores=db:0/1 " in format_line(now)
            (state,) = await store.list_semaphores(["db"])
            assert [w.info.split()[-1] for w in state.waiters] == ["gated->gated"]
            # When the holder releases, the mapping takes the slot and drains the queue,
            # one invocation at a time (limit 1)
            await store.release_semaphore("db", "outside")
            summary = await asyncio.wait_for(run, 20)
            assert summary.processed == 5
            assert await _accounted(store, "gated") == 0
        starts = sorted(e["start"] for e in _log() if "start" in e)
        ends = sorted(e["end"] for e in _log() if "end" in e)
        assert len(starts) == len(ends) == 5
        fences = [e["fence"] for e in sorted(_log(), key=lambda e: e.get("start", 0))
                  if "fence" in e]
        assert fences == sorted(fences) and len(set(fences)) == 5
        assert all(end <= start for end, start in zip(ends, starts[1:], strict=False))
        assert not (await _left_holders(url))

    asyncio.run(main())


def test_an_idle_mapping_hands_its_spare_slot_to_one_with_work(
    app_file: Path, tmp_path: Path
) -> None:
    """Two mappings need the one slot of "db": "gated" has nothing to do, "busy" has 10
    messages. Whoever took the spare first, "busy" drains its queue: the idle one hands
    the slot back each time "busy" queues for it."""

    async def main() -> None:
        app = _only(load_app(str(app_file)), "gated", "busy")
        async with open_store(f"sqlite:///{tmp_path / 'store.db'}") as store:
            runtime = Runtime(app, store, cluster=None)
            await runtime.prepare()
            run = asyncio.ensure_future(runtime.run())
            await asyncio.sleep(0.5)  # both queued; one holds the spare
            started = time.monotonic()
            for n in range(10):
                await store.send("busy", json.dumps({"n": n}))
            await _eventually(lambda: len([e for e in _log() if "end" in e]) == 10, 10)
            elapsed = time.monotonic() - started
            runtime.stop()
            await asyncio.wait_for(run, 10)
            assert await _accounted(store, "busy") == 0
        assert elapsed < 5.0  # 10 x (50 ms + at most one hand-back of 50 ms) and receives
        print(f"10 invocations of 50 ms behind an idle mapping: {elapsed:.2f} s")

    asyncio.run(main())


def test_a_stream_mapping_that_cannot_take_its_semaphore_holds_its_shard(tmp_path: Path) -> None:
    """A stream mapping naming a semaphore reads nothing while it cannot take it (its
    checkpoint stays, no retry is spent), then processes every record in order."""
    seen: list[int] = []
    app = sluicegate.App()
    app.semaphore("db")
    app.stream("clicks")

    @app.function(timeout=5)
    async def count(event: dict[str, Any], context: Any) -> None:
        seen.extend(int(r["kinesis"]["sequenceNumber"]) for r in event["Records"])

    app.map("clicks", count, batch_size=10, semaphores=("db",))

    async def main() -> None:
        async with open_store(f"sqlite:///{tmp_path / 'store.db'}") as store:
            runtime = Runtime(app, store, cluster=None)
            await runtime.prepare()
            await store.acquire_semaphore("db", "outside", limit=1, ttl=30, timeout=0)
            await store.put_records("clicks", [PutEntry("k", f"{n}") for n in range(25)])
            run = asyncio.ensure_future(runtime.run(until_empty=True))
            await asyncio.sleep(1.0)
            assert seen == [] and await store.get_checkpoints("clicks->count") == {}
            assert runtime.limit_reasons()["clicks->count"] == "semaphore:db"
            await store.release_semaphore("db", "outside")
            await asyncio.wait_for(run, 20)
        assert seen == sorted(seen) and len(seen) == 25

    asyncio.run(main())


async def _left_holders(url: str) -> list[Any]:
    async with open_store(url) as store:
        states = await store.list_semaphores(["db"])
        return list(states[0].holders) if states else []


@pytest.mark.parametrize(("backend", "queue"), [
    ("sqlite", "midway_async"), ("sqlite", "midway_sync"), ("sqlite", "midway_shared"),
    ("sqlite", "midway_proc"), ("redis", "midway_async"),
])
def test_a_handler_blocks_mid_way_with_a_timeout(
    app_file: Path, tmp_path: Path, request: pytest.FixtureRequest, backend: str, queue: str
) -> None:
    url = (str(request.getfixturevalue("redis_url")) if backend == "redis"
           else f"sqlite:///{tmp_path / 'store.db'}")

    async def main() -> None:
        async with open_store(url) as store:
            await store.acquire_semaphore("db", "outside", limit=1, ttl=30, timeout=0)
            # a handler that may wait 0.3 s gives up: a function error, its message stays
            # queued (in flight until its visibility timeout ends)
            app = _only(load_app(str(app_file)), f"{queue}_t")
            runtime = Runtime(app, store, cluster=None)
            await runtime.prepare()
            await store.send(f"{queue}_t", json.dumps({"timeout": 0.3}))
            run = asyncio.ensure_future(runtime.run())
            await _eventually(lambda: _errors(runtime) >= 1, 15)
            runtime.stop()
            await asyncio.wait_for(run, 10)
            assert await _accounted(store, f"{queue}_t") == 1
            # handlers that may wait as long as their invocation lasts wait for the
            # release, then take the slot one after the other, in order
            app = _only(load_app(str(app_file)), queue)
            runtime = Runtime(app, store, cluster=None)
            await runtime.prepare()
            for _ in range(3):
                await store.send(queue, json.dumps({"timeout": None}))
            run = asyncio.ensure_future(runtime.run(until_empty=True))
            await asyncio.sleep(0.5)
            released = time.time()
            await store.release_semaphore("db", "outside")
            summary = await asyncio.wait_for(run, 30)
            assert summary.processed == 3
            assert await _accounted(store, queue) == 0
        log = [e for e in _log() if e.get("kind") == queue]
        starts = sorted(e["start"] for e in log if "start" in e)
        ends = sorted(e["end"] for e in log if "end" in e)
        assert len(starts) == 3 and starts[0] >= released
        assert all(end <= start for end, start in zip(ends, starts[1:], strict=False))
        fences = [e["fence"] for e in sorted(log, key=lambda e: e.get("start", 0))
                  if "fence" in e]
        assert fences == sorted(fences) and len(set(fences)) == 3
        assert not (await _left_holders(url))

    asyncio.run(main())


def test_the_memory_store_cannot_be_shared_with_process_isolation(
    app_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        app = _only(load_app(str(app_file)), "midway_proc")
        async with open_store("memory://") as store:
            runtime = Runtime(app, store, cluster=None)
            await runtime.prepare()
            await store.send("midway_proc", json.dumps({"timeout": 0.1}))
            run = asyncio.ensure_future(runtime.run())
            await _eventually(lambda: _errors(runtime) >= 1, 15)
            runtime.stop()
            await run

    asyncio.run(main())
    failures = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert any("needs a store other processes reach (sqlite:// or redis://), not memory://"
               in m for m in failures), failures


def test_parked_batches_complete_fail_keep_by_heartbeat_or_come_back(
    app_file: Path, url: str
) -> None:
    async def main() -> None:
        app = _only(load_app(str(app_file)), "parked")
        async with open_store(url) as store:
            runtime = Runtime(app, store, cluster=None)
            await runtime.prepare()
            # heartbeats of 1 s: 0 succeeds, 1 fails, 2 misses its heartbeat, 3 is kept
            # by heartbeats for 2.5 s then succeeds with one failed item (itself: back)
            for n in range(4):
                await store.send("parked", json.dumps({"n": n, "heartbeat": 1}))
            run = asyncio.ensure_future(runtime.run(until_empty=True))
            await _eventually(lambda: len([e for e in _log() if "token" in e]) == 4)
            tokens = {e["n"]: e["token"] for e in _log() if "token" in e}
            # the invocations returned and their slots are free; the four messages stay in
            # flight, parked
            await _eventually(lambda: sum(len(r.invocations) for r in runtime.runners) == 0)
            assert (await store.counts("parked")).in_flight == 4
            done = await send_task_success(store, tokens[0])
            assert (done.deleted, done.returned) == (1, 0)
            with pytest.raises(sluicegate.errors.InputError, match="unknown"):
                await send_task_success(store, tokens[0])  # completed once only
            assert (await send_task_failure(store, tokens[1], "Downstream", "503")).returned == 1
            for _ in range(5):
                await asyncio.sleep(0.5)
                assert (await send_task_heartbeat(store, tokens[3])).kept == 1
            peeked = {json.loads(m.body)["n"]: m for m in await store.peek("parked")}
            assert peeked[3].receive_count == 1  # hidden all along by its heartbeats
            message_id = peeked[3].message_id
            done = await send_task_success(
                store, tokens[3], {"batchItemFailures": [{"itemIdentifier": message_id}]})
            assert (done.deleted, done.returned) == (0, 1)
            with pytest.raises(sluicegate.errors.InputError, match="unknown"):
                await send_task_heartbeat(store, tokens[2])  # its heartbeat ran out
            summary = await asyncio.wait_for(run, 20)
            assert await _accounted(store, "parked") == 0
        again = sorted(e["again"] for e in _log() if "again" in e)
        assert again == [1, 2, 3]  # failed, heartbeat lost, item failed: each came back
        # sent 4 = deleted by the callback 1 + by the runtime 3 + queued 0 + DLQ 0
        assert summary.processed == 3

    asyncio.run(main())


def test_a_handler_in_process_isolation_parks_its_batch(app_file: Path, tmp_path: Path) -> None:
    async def main() -> None:
        app = _only(load_app(str(app_file)), "parked_proc")
        async with open_store(f"sqlite:///{tmp_path / 'store.db'}") as store:
            runtime = Runtime(app, store, cluster=None)
            await runtime.prepare()
            await store.send("parked_proc", "{}")
            run = asyncio.ensure_future(runtime.run(until_empty=True))
            await _eventually(lambda: any("token" in e for e in _log()), 15)
            (entry,) = [e for e in _log() if "token" in e]
            assert entry["pid"] != os.getpid()  # parked in the environment's process
            await _eventually(lambda: _parked(runtime), 10)
            done = await send_task_success(store, entry["token"])
            assert done.deleted == 1
            summary = await asyncio.wait_for(run, 20)
            assert summary.processed == 0 and await _accounted(store, "parked_proc") == 0

    asyncio.run(main())


def _parked(runtime: Runtime) -> bool:
    return sum(int(r.core.partial) for r in runtime.runners) == 1


CLI = [sys.executable, "-m", "sluicegate"]


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(10)
        for stream in (p.stdout, p.stderr):
            if stream is not None:
                stream.close()


def test_a_parked_batch_outlives_a_kill_9_of_its_runtime(
    app_file: Path, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    """The runtime that parked the batch is killed; another process completes the token
    from the command line; the last one's heartbeat is missed and it comes back to a new
    runtime (on SQLite: Redis's cross-process wakes and parked batches are tested in
    tests/store and above)."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    app = str(app_file)
    env = {**os.environ}
    subprocess.run([*CLI, "send", "parked", "--store", url, "--app", app,
                    json.dumps({"n": 0, "heartbeat": 30}), json.dumps({"n": 1, "heartbeat": 1})],
                   check=True, capture_output=True, env=env)
    run = subprocess.Popen([*CLI, "run", app, "--store", url, "--status", "none"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    processes.append(run)
    end = time.monotonic() + 20
    while len([e for e in _log() if "token" in e]) < 2:
        assert time.monotonic() < end, _log()
        time.sleep(0.05)
    os.kill(run.pid, signal.SIGKILL)
    run.wait(5)
    tokens = {e["n"]: e["token"] for e in _log() if "token" in e}
    done = subprocess.run([*CLI, "callback", tokens[0], "success", "--store", url],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "deleted 1 message" in done.stdout
    bad = subprocess.run([*CLI, "callback", tokens[0], "failure", "--store", url],
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "unknown" in bad.stderr
    # the killed runtime's gated mappings held the spare slot of "db": listed until it
    # expires (lease_ttl 2 s), then gone
    listing = subprocess.run([*CLI, "semaphores", "--store", url, "--json"],
                             capture_output=True, text=True, env=env)
    assert listing.returncode == 0, listing.stderr
    for db in json.loads(listing.stdout):  # none if it was killed before it took one
        holders = [h["info"].split()[-1] for h in db["holders"]]
        assert len(holders) <= 1 and set(holders) <= {"gated->gated", "busy->gated"}
    # a new runtime gets message 1 once its 1 s heartbeat has run out
    again = subprocess.run([*CLI, "run", app, "--store", url, "--status", "none",
                            "--until-empty", "--duration", "20"],
                           capture_output=True, text=True, env=env)
    assert again.returncode == 0, again.stderr
    assert [e["again"] for e in _log() if "again" in e] == [1]

    async def left() -> int:
        async with open_store(url) as store:
            return await _accounted(store, "parked")

    assert asyncio.run(left()) == 0
    # the second runtime released what it held; the killed one's slot expires by itself
    holders = asyncio.run(_left_holders(url))
    assert all(h.info.split()[0].endswith(f":{run.pid}") for h in holders)
    time.sleep(max([h.expires - time.time() for h in holders], default=0) + 0.05)
    assert asyncio.run(_left_holders(url)) == []
