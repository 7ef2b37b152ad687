"""Live limits across real ``sluicegate run`` processes on one SQLite file or one Redis:
a change made with the CLI is applied by every process within a second (measured from
the change's time in the store to each worker's own record of applying it), a paused
mapping receives nothing in any process, concurrent invocations in both processes
racing on one version give exactly one winner, and the App's controller runs in exactly
one process, another taking over after a ``kill -9`` of the leader.
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sluicegate.cli import main
from sluicegate.store import SendEntry, Store, open_store

APP = textwrap.dedent('''
    import asyncio, os, pathlib, time

    import sluicegate
    from sluicegate.control import store_key

    OUT = pathlib.Path(os.environ["OUT_DIR"])

    app = sluicegate.App(name="live-e2e")
    app.queue("q", visibility_timeout=10)
    app.queue("cas", visibility_timeout=30)


    @app.function(timeout=5)
    async def work(event, context):
        await asyncio.sleep(0.01)


    @app.function(timeout=20)
    async def race(event, context):
        current = await context.limits.mapping.aget()
        late = (OUT / "go").exists()  # the gate was open: the read may follow the win
        (OUT / f"read-{context.aws_request_id}").write_text(
            f"{current.version} {os.getpid()} {time.time():.3f}")
        deadline = time.monotonic() + 8  # a racer held for a slot must not block the rest
        while not (OUT / "go").exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        result = "late"
        if not late and (OUT / "go").exists():
            won = await context.limits.mapping.aset(maximum_concurrency=50, why="race",
                                                    expected_version=current.version)
            result = str(int(won))
        (OUT / f"won-{os.getpid()}-{context.aws_request_id}").write_text(result)


    app.map("q", work, batch_size=1, scaling="fixed", maximum_concurrency=10)
    app.map("cas", race, batch_size=1, scaling="fixed", maximum_concurrency=8)
    app.control("q", maximum_concurrency=store_key("cap"), name="cap")
''')

FIGURES: list[dict[str, Any]] = []
"""Seconds from each change to its application, per backend (printed at the end)."""


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return f"sqlite:///{tmp_path / 'live.db'}"


def _call(url: str, action: Callable[[Store], Any]) -> Any:
    async def run() -> Any:
        async with open_store(url) as store:
            return await action(store)

    return asyncio.run(run())


@pytest.fixture
def workers(tmp_path: Path, store_url: str) -> Iterator[list[subprocess.Popen[bytes]]]:
    app = tmp_path / "live_app.py"
    app.write_text(APP)
    (tmp_path / "out").mkdir()
    env = dict(os.environ, OUT_DIR=str(tmp_path / "out"))
    procs: list[subprocess.Popen[bytes]] = []
    for n in range(2):
        with (tmp_path / f"worker{n}.out").open("wb") as log:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "sluicegate.cli", "run", str(app), "--store",
                 store_url, "--status", "none", "--grace-period", "2", "--lease-ttl", "2"],
                stdout=log, stderr=subprocess.STDOUT, env=env))
    try:
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _output(tmp_path: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}"
                     for p in sorted(tmp_path.glob("worker*.out")))


def _wait(check: Callable[[], Any], within: float, what: str, tmp_path: Path) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within}s\n{_output(tmp_path)}")
        time.sleep(0.02)


def _live_workers(url: str) -> list[dict[str, Any]]:
    return [w for w in _call(url, lambda s: s.list_workers()) if "live_revision" in w]


def _applied(url: str, tmp_path: Path, revision: int) -> list[float]:
    """When each of the two workers applied ``revision`` (epoch seconds)."""
    def both() -> list[float] | None:
        ws = _live_workers(url)
        done = [w for w in ws if w["live_revision"] >= revision]
        return [float(w["live_applied"]) for w in done] if len(done) == 2 else None

    applied: list[float] = _wait(both, 5, f"revision {revision} applied by both", tmp_path)
    return applied


def _change(url: str, args: list[str]) -> tuple[int, float]:
    """Run a CLI change; its revision and time in the store."""
    assert main([*args, "--store", url]) == 0
    revision, _ = _call(url, lambda s: s.list_settings())
    (last,) = _call(url, lambda s: s.settings_history(limit=1))
    return int(revision), float(last.at)


def test_changes_reach_every_process_within_a_second_and_one_controller_runs(
    tmp_path: Path, store_url: str, workers: list[subprocess.Popen[bytes]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given two workers in the cluster of one store
    _wait(lambda: len(_live_workers(store_url)) == 2, 20, "two workers", tmp_path)
    lags: list[float] = []

    # When an operator raises q's maximum concurrency, then pauses q
    for args in (["limits", "set", "q", "maximum_concurrency=20"], ["pause", "q"]):
        revision, at = _change(store_url, args)
        # Then both workers apply it within a second of the change
        lags += [applied - at for applied in _applied(store_url, tmp_path, revision)]
    assert max(lags) < 1.0, lags

    # And a paused q receives nothing in either process ...
    _call(store_url, lambda s: s.send_batch("q", [SendEntry(str(i)) for i in range(5)]))
    time.sleep(0.6)
    counts = _call(store_url, lambda s: s.counts("q"))
    assert (counts.visible, counts.in_flight) == (5, 0), _output(tmp_path)
    # ... until it is resumed
    revision, at = _change(store_url, ["resume", "q"])
    lags += [applied - at for applied in _applied(store_url, tmp_path, revision)]
    _wait(lambda: _call(store_url, lambda s: s.counts("q")).visible == 0, 5, "q drained",
          tmp_path)

    # Invocations in both processes (4 slots each) read one version, then all set at
    # once: exactly one wins. (A racer held back for a slot while the others wait for the
    # gate gives up after 8 s, and one that reads after the gate opened does not set:
    # only racers that read before any write set.)
    out = tmp_path / "out"
    _call(store_url, lambda s: s.send_batch("cas", [SendEntry(str(i)) for i in range(6)]))
    try:
        _wait(lambda: len(list(out.glob("read-*"))) == 6, 5, "six racers read", tmp_path)
    except AssertionError:
        assert list(out.glob("read-*")), _output(tmp_path)
    (out / "go").write_text("")
    _wait(lambda: len(list(out.glob("won-*"))) == 6, 30, "six racers done", tmp_path)
    results = {p.name: p.read_text() for p in out.glob("won-*")}
    racing = [v for v in results.values() if v != "late"]
    assert len(racing) >= 2, sorted(results.values())
    assert sorted(racing) == ["0"] * (len(racing) - 1) + ["1"], sorted(results.values())
    pids = {name.split("-")[1] for name, v in results.items() if v != "late"}
    settings = _call(store_url, lambda s: s.get_settings("mapping:cas->race"))
    assert (settings.version, settings.values) == (1, {"maximum_concurrency": 50})

    # The controller runs in exactly one process
    def leaders() -> list[Any]:
        return [h for h in _call(store_url, lambda s: s.lease_holders("controller:live-e2e"))
                if h.count > 0]

    holders = _wait(leaders, 10, "a controller", tmp_path)
    assert len(holders) == 1
    leader = holders[0].holder
    _call(store_url, lambda s: s.write_shared("cap", "7"))
    _wait(lambda: _call(store_url, lambda s: s.get_settings("mapping:q->work")).values.get(
        "maximum_concurrency") == 7, 5, "the rule applied", tmp_path)
    # and after a kill -9 of the leader, the other takes over
    pid = int(leader.split(":")[1])
    (victim,) = [p for p in workers if p.pid == pid]
    victim.send_signal(signal.SIGKILL)
    victim.wait(5)
    killed = time.monotonic()
    _call(store_url, lambda s: s.write_shared("cap", "9"))
    _wait(lambda: _call(store_url, lambda s: s.get_settings("mapping:q->work")).values.get(
        "maximum_concurrency") == 9, 10, "the rule applied by the new leader", tmp_path)
    takeover = time.monotonic() - killed
    (new,) = leaders()
    assert new.holder != leader
    last = _call(store_url, lambda s: s.get_settings("mapping:q->work"))
    assert last.changed_by == "controller:cap"
    FIGURES.append({"store": store_url.partition(":")[0], "lags": [round(x, 3) for x in lags],
                    "race_processes": len(pids), "takeover_s": round(takeover, 2)})
    with capsys.disabled():
        print(f"\nlive limits {json.dumps(FIGURES[-1])}")
