"""``sluicegate workers`` and the cluster options of ``sluicegate run``."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

import sluicegate
from sluicegate.cli import main
from sluicegate.cluster import Cluster
from sluicegate.cluster.pool import ClusterPool
from sluicegate.core.config import AccountConfig, FunctionConfig
from sluicegate.runtime.driver import Runtime
from sluicegate.store import SqliteStore


def test_workers_lists_a_live_worker_with_its_leases(
        redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = sluicegate.App()
    app.queue("q")

    @app.function(timeout=5)
    async def work(event: object, context: object) -> None:
        return None

    app.map("q", work, scaling="fixed", maximum_concurrency=3)

    async def start() -> Cluster:
        cluster = Cluster(redis_url, worker_id="host:1:abc", lease_ttl=30)
        async with SqliteStore(tmp_path / "s.db") as store:
            runtime = Runtime(app, store, cluster=cluster)
            await runtime.prepare()
            await runtime._build()
            await cluster.start()
        await cluster.store.close()
        return cluster

    asyncio.run(start())
    assert main(["workers", "--store", redis_url, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["worker"] for r in rows] == ["host:1:abc"]
    assert rows[0]["leases"]["mapping:q->work"] == 3
    # every function's internal queue of asynchronous invocations is a mapping too
    assert rows[0]["in_flight"] == {"q->work": 0, "async:work->work": 0}
    assert main(["workers", "--store", redis_url]) == 0
    assert "host:1:abc" in capsys.readouterr().out


def test_workers_with_no_worker(redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["workers", "--store", redis_url]) == 0
    assert capsys.readouterr().out.strip() == "no live workers"


def test_workers_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from redis_server import free_port

    assert main(["workers", "--store", f"redis://127.0.0.1:{free_port()}/0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot reach" in err


def test_workers_lists_the_live_workers_of_an_sqlite_store(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No flag: a runtime on an SQLite file registers itself; ``workers`` on that file
    lists it while it runs, and not once it stopped."""
    app = sluicegate.App()
    app.queue("q")

    @app.function(timeout=5)
    async def work(event: object, context: object) -> None:
        return None

    app.map("q", work, scaling="fixed", maximum_concurrency=3)
    url = f"sqlite:///{tmp_path / 's.db'}"
    seen: list[list[str]] = []

    async def scenario() -> None:
        async with SqliteStore(tmp_path / "s.db") as store:
            runtime = Runtime(app, store)
            assert runtime.cluster is not None  # built by default on a shared store
            runtime.cluster.worker_id = "host:1:sqlite"
            task = asyncio.get_running_loop().create_task(runtime.run())
            for _ in range(100):
                await asyncio.sleep(0.05)
                if await store.list_workers():
                    break
            code = await asyncio.to_thread(main, ["workers", "--store", url, "--json"])
            assert code == 0
            seen.append([r["worker"] for r in json.loads(capsys.readouterr().out)])
            runtime.stop()
            await task

    asyncio.run(scenario())
    assert main(["workers", "--store", url]) == 0
    seen.append(capsys.readouterr().out.strip().splitlines())
    assert seen == [["host:1:sqlite"], ["no live workers"]]


def test_run_refuses_a_cluster_url_that_is_not_redis(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = tmp_path / "app.py"
    app.write_text("import sluicegate\napp = sluicegate.App()\napp.queue('q')\n"
                   "@app.function()\ndef f(e, c): pass\napp.map('q', f)\n")
    code = main(["run", str(app), "--store", f"sqlite:///{tmp_path / 's.db'}",
                 "--cluster", "sqlite:///y.db", "--duration", "1", "--status", "none"])
    assert code == 2
    assert "not a redis:// URL" in capsys.readouterr().err


def test_the_cluster_pool_keeps_within_the_leased_share() -> None:
    shares = {"function:f": 2, "account": 1}
    pool = ClusterPool(AccountConfig(), lambda name: shares.get(name, 0))
    pool.register(FunctionConfig(name="f", reserved_concurrency=5))
    assert pool.try_acquire("f") and pool.try_acquire("f")
    assert not pool.try_acquire("f")  # the pool has room (5), the share does not (2)
    assert pool.cluster_throttles == 1 and pool.in_use("f") == 2
    assert pool.try_acquire("g")  # unreserved: the account share
    assert not pool.try_acquire("g")
    shares["account"] = 0  # a lapsed lease: nothing new starts
    pool.release("g")
    assert not pool.try_acquire("g")


def test_run_with_an_unreachable_cluster_is_a_one_line_error_at_once(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """As with ``--store redis://`` on a closed port: one line, no warnings, no waiting."""
    import time

    from redis_server import free_port

    app = tmp_path / "app.py"
    app.write_text("import sluicegate\napp = sluicegate.App()\napp.queue('q')\n"
                   "@app.function()\ndef f(e, c): pass\napp.map('q', f)\n")
    started = time.monotonic()
    code = main(["run", str(app), "--store", f"sqlite:///{tmp_path / 's.db'}",
                 "--cluster", f"redis://127.0.0.1:{free_port()}/0", "--status", "none"])
    elapsed = time.monotonic() - started
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("sluicegate: error: cannot reach redis store")
    assert elapsed < 3.0


def test_a_batch_held_when_the_share_fell_to_zero_may_use_its_stored_slot() -> None:
    """Explicit lease states, no Redis call: a worker whose grant is 0 but whose stored
    count still covers a received batch waiting for a slot runs that one batch, instead
    of sitting on it for its visibility timeout; never more, and never once the lease
    lapsed."""
    import asyncio
    from types import SimpleNamespace

    from sluicegate.core.config import MappingConfig
    from sluicegate.core.limit import ConcurrencyLimit, Fixed
    from sluicegate.core.scaling import FixedScaling

    now = [0.0]
    cluster = Cluster(SqliteStore(":memory:"), worker_id="w", lease_ttl=1.0,
                      clock=lambda: now[0])
    config = MappingConfig(queue="q", function="f", maximum_concurrency=4, scaling="fixed")
    cluster.queue_policy(config, FixedScaling(4), lambda: 0.0)
    stats = SimpleNamespace(held=1, in_flight=0)
    limit = ConcurrencyLimit([Fixed("maximum_concurrency", 4)])
    runner = SimpleNamespace(config=config, wake=asyncio.Event(), core=SimpleNamespace(
        statistics=lambda: stats, in_flight=0, concurrency_limit=limit))
    cluster.attach_queue(runner)  # type: ignore[arg-type]
    entry = cluster._queues[0]
    entry.lease.granted, entry.lease.held, entry.lease.valid_until = 0, 1, 0.9
    assert limit.value(0.0) == 1 and limit.reason(0.0) == "cluster"
    stats.in_flight = 1  # it runs: no second one
    assert limit.value(0.0) == 0
    stats.in_flight, stats.held = 0, 0  # nothing held: nothing to run
    assert limit.value(0.0) == 0
    stats.held = 1
    now[0] = 0.95  # the lease lapsed by the worker's own clock
    assert limit.value(0.0) == 0
    entry.lease.granted, entry.lease.valid_until = 3, 1.9
    assert limit.value(0.0) == 3


def test_workers_reads_the_store_read_only_and_a_file_older_than_the_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``workers`` only looks: it leaves a file of schema 4 (before the worker registry)
    as it is, and says no worker has run on it, instead of upgrading it or failing."""
    import sqlite3

    path = tmp_path / "old.db"
    assert main(["send", "q", "x", "--store", f"sqlite:///{path}",
                 "--app", _queue_app(tmp_path)]) == 0
    with sqlite3.connect(path) as conn:
        for table in ("lease_names", "leases", "workers", "shared_events", "shared_values"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    conn.close()
    capsys.readouterr()
    assert main(["workers", "--store", f"sqlite:///{path}"]) == 0
    assert capsys.readouterr().out.strip() == "no live workers"
    with sqlite3.connect(path) as conn:
        version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    conn.close()
    assert version == ("4",)


def _queue_app(tmp_path: Path) -> str:
    app = tmp_path / "qapp.py"
    app.write_text(
        "import sluicegate\napp = sluicegate.App()\napp.queue('q')\n"
        "@app.function\ndef f(event, context):\n    return None\napp.map('q', f)\n"
    )
    return str(app)


def test_a_starting_worker_releases_the_leases_of_workers_whose_process_is_gone(
        tmp_path: Path) -> None:
    """A worker of this machine and pid namespace whose process no longer exists (killed
    with kill -9) has its leases released when another starts, instead of after the ttl;
    a live process's, and one of another pid space (another container), are left alone."""
    import subprocess
    import sys

    from sluicegate.cluster.coordinator import pid_space
    from sluicegate.store.coordination import LeaseClaim

    space = pid_space()
    if space is None:
        pytest.skip("no /proc: pids cannot be judged here")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # reaped: its pid names no process (until the system reuses it)

    async def scenario() -> dict[str, list[str]]:
        async with SqliteStore(tmp_path / "s.db") as store:
            workers = {"dead": (dead.pid, space), "alive": (os.getpid(), space),
                       "elsewhere": (dead.pid, "another-boot:pid:[1]")}
            for worker, (pid, where) in workers.items():
                await store.register_worker(worker, {"worker": worker, "pid": pid,
                                                     "pid_space": where}, ttl=30)
                await store.claim_leases(worker, [LeaseClaim("mapping:m", 2, 6, 0)], ttl=30)
            cluster = Cluster(store, worker_id="new", lease_ttl=30)
            await cluster._reap_gone_workers()
            holders = [h.holder for h in await store.lease_holders("mapping:m")]
            registered = [str(w["worker"]) for w in await store.list_workers()]
            return {"holders": holders, "registered": registered}

    assert asyncio.run(scenario()) == {"holders": ["alive", "elsewhere"],
                                       "registered": ["alive", "elsewhere"]}
