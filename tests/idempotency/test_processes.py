"""Idempotency across processes, on the stores processes share (SQLite, Redis), in real
time: a handler ``kill -9``'d mid-way holds its key only until its invocation would have
timed out, then the event runs again, once; duplicates arriving at once in several
processes run once and all get the one response.

Each handler is a child process (``python -c``) printing ``started`` when its body runs
and ``result JSON`` (or ``error TYPE``) at the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluicegate.errors import IdempotencyAlreadyInProgressError
from sluicegate.idempotency import IdempotencyConfig, idempotent
from sluicegate.runtime.events import LambdaContext

CHILD = r"""
import json, os, sys, time
from sluicegate.idempotency import IdempotencyConfig, idempotent
from sluicegate.runtime.events import LambdaContext

url, mode, timeout, event = sys.argv[1], sys.argv[2], float(sys.argv[3]), json.loads(sys.argv[4])

@idempotent(config=IdempotencyConfig(event_key_jmespath="order", on_in_progress=mode),
            store=url, key_prefix="orders")
def handler(event, context):
    print("started", flush=True)
    time.sleep(event.get("sleep", 0))
    if event.get("hang"):
        time.sleep(3600)
    return {"shipped": event["order"], "pid": os.getpid()}

try:
    result = handler(event, LambdaContext(function_name="orders", timeout=timeout))
except Exception as exc:
    print("error", type(exc).__name__, flush=True)
else:
    print("result", json.dumps(result), flush=True)
"""

SHARED = ["sqlite", "redis"]


@pytest.fixture(params=SHARED)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return f"sqlite:///{tmp_path / 'store.db'}"


_started: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _reap() -> Iterator[None]:
    """Kill and reap every child a test started, closing its pipe."""
    yield
    while _started:
        child = _started.pop()
        if child.poll() is None:
            child.kill()
        child.wait(10)
        if child.stdout is not None:
            child.stdout.close()


def _child(url: str, event: dict[str, Any], *, mode: str = "raise", timeout: float = 10
           ) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, mode, str(timeout), json.dumps(event)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    _started.append(child)
    return child


def _lines(child: subprocess.Popen[str]) -> list[str]:
    """Everything the child prints, once it has exited."""
    assert child.stdout is not None
    out = child.stdout.read().splitlines()
    assert child.wait(20) == 0
    return out


def _wait_started(child: subprocess.Popen[str]) -> None:
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line == "started\n", f"child exited ({child.wait()}) before its body ran"


def _result(lines: list[str]) -> dict[str, Any]:
    (line,) = [x for x in lines if x.startswith(("result", "error"))]
    assert line.startswith("result "), line
    return dict(json.loads(line.removeprefix("result ")))


def test_a_killed_handler_s_event_runs_again_after_its_in_progress_expiry(url: str) -> None:
    # Given a handler whose invocation has 1 s, killed (-9) while it runs
    doomed = _child(url, {"order": 7, "hang": True}, timeout=1.0)
    _wait_started(doomed)
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.wait(5)

    # Then its claim holds until that time: a duplicate here is refused at once
    @idempotent(config=IdempotencyConfig(event_key_jmespath="order"), store=url,
                key_prefix="orders")
    def handler(event: dict[str, Any], context: Any) -> Any:
        raise AssertionError("must not run while the claim holds")

    with pytest.raises(IdempotencyAlreadyInProgressError):
        handler({"order": 7}, LambdaContext(function_name="orders", timeout=10))
    # and a duplicate that waits runs the event itself once the claim lapses
    started = time.monotonic()
    retry = _child(url, {"order": 7}, mode="wait", timeout=10)
    lines = _lines(retry)
    assert lines[0] == "started"
    assert _result(lines) == {"shipped": 7, "pid": retry.pid}
    assert time.monotonic() - started < 8
    # And a later delivery replays that run's response
    later = _child(url, {"order": 7})
    later_lines = _lines(later)
    assert "started" not in later_lines
    assert _result(later_lines) == {"shipped": 7, "pid": retry.pid}


def test_duplicates_in_several_processes_at_once_run_once(url: str) -> None:
    children = [_child(url, {"order": 3, "sleep": 0.2}, mode="wait") for _ in range(2)]
    outputs = [_lines(c) for c in children]
    assert sum(out.count("started") for out in outputs) == 1
    results = [_result(out) for out in outputs]
    runner = next(c.pid for c, out in zip(children, outputs, strict=True) if "started" in out)
    assert results == [{"shipped": 3, "pid": runner}] * 2
