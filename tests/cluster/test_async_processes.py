"""Asynchronous invocations served by real ``sluicegate run`` processes on one store: the
function's reserved concurrency holds across them, and every accepted event is invoked
(success) or reaches the failure path, on SQLite and on Redis."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tests.cluster.test_sqlite_processes import intervals, output, peak

APP = textwrap.dedent('''
    import asyncio, os, time

    import sluicegate

    LOG = os.path.join(os.environ.get("GAUGE_DIR", "."), f"{os.getpid()}.log")

    app = sluicegate.App(async_time_scale=0.005)
    app.queue("failed")


    def note(line):
        with open(LOG, "a") as f:
            f.write(line + "\\n")


    @app.function(timeout=2, reserved_concurrency=3, on_failure="queue:failed",
                  maximum_retry_attempts=1)
    async def work(event, context):
        note(f"S {context.aws_request_id} {time.time():.6f} {event['n']}")
        await asyncio.sleep(0.2)
        note(f"E {context.aws_request_id} {time.time():.6f} {event['n']}")
        if event["n"] % 10 == 0:
            raise ValueError("every tenth fails")
''')


def sluicegate_cli(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "sluicegate.cli", *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def accept_events(url: str, app: Path, numbers: range) -> None:
    from sluicegate.loader import load_app
    from sluicegate.runtime.async_invoke import accept
    from sluicegate.store import open_store

    function = load_app(str(app)).functions["work"].config
    async with open_store(url) as store:
        for n in numbers:
            await accept(store, function, {"n": n})


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_reserved_concurrency_holds_across_processes(tmp_path: Path, backend: str,
                                                     request: pytest.FixtureRequest) -> None:
    app = tmp_path / "async_app.py"
    app.write_text(APP)
    (tmp_path / "gauge").mkdir()
    url = (f"sqlite:///{tmp_path / 'store.db'}" if backend == "sqlite"
           else str(request.getfixturevalue("redis_url")))
    env = dict(os.environ, GAUGE_DIR=str(tmp_path / "gauge"))
    # Given 40 events accepted (durable before anything runs), one through the CLI
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"n": 0}))
    assert "(202)" in sluicegate_cli("invoke", "work", "--file", str(event), "--async",
                                     "--app", str(app), "--store", url, env=env)
    asyncio.run(accept_events(url, app, range(1, 40)))
    # When two `sluicegate run` processes serve the App
    workers = []
    for n in range(2):
        with (tmp_path / f"worker{n}.out").open("wb") as log:
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "sluicegate.cli", "run", str(app), "--store", url,
                 "--until-empty", "--status", "none", "--grace-period", "5"],
                stdout=log, stderr=subprocess.STDOUT, env=env))
    assert [w.wait(timeout=90) for w in workers] == [0, 0], output(tmp_path)
    spans = intervals(tmp_path, {})
    # Then every event ran, the failing ones twice (one retry), never more than the
    # reservation at once across both processes
    runs: dict[int, int] = {}
    for _, _, n, _ in spans:
        runs[n] = runs.get(n, 0) + 1
    assert runs == {n: 2 if n % 10 == 0 else 1 for n in range(40)}
    assert len({pid for _, _, _, pid in spans}) == 2, "one process did all: nothing tested"
    assert peak(spans) <= 3, output(tmp_path)
    # and the four failures reached the on-failure destination
    counts = {q["name"]: q["visible"]
              for q in json.loads(sluicegate_cli("queues", "--store", url, "--json"))}
    assert counts.get("failed") == 4
    assert "async:work" not in counts  # empty, so not listed
