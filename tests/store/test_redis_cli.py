"""The command line on a Redis store: send, run until empty, inspect; and two worker
processes sharing one queue on one server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sluicegate.cli import main

APP = """
import json, os, time
import sluicegate

app = sluicegate.App()
app.queue("work", visibility_timeout=30, dead_letter_queue="work-dlq", max_receive_count=2)
app.queue("work.fifo", content_based_deduplication=True)
LOG = os.environ.get("SLUICEGATE_TEST_LOG")
DELAY = float(os.environ.get("SLUICEGATE_TEST_DELAY", "0"))

@app.function(timeout=5)
def handler(event, context):
    time.sleep(DELAY)
    if LOG:
        with open(LOG, "a") as f:
            for r in event["Records"]:
                f.write(str(json.loads(r["body"])["n"]) + "\\n")

app.map("work", handler, batch_size=5, scaling="fixed", maximum_concurrency=4)
"""


@pytest.fixture
def app_file(tmp_path: Path) -> Path:
    path = tmp_path / "jobs.py"
    path.write_text(APP)
    return path


def _lines(log: Path) -> list[int]:
    return [int(x) for x in log.read_text().split()] if log.exists() else []


def test_send_run_until_empty_and_queues(
    app_file: Path,
    redis_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = tmp_path / "log.txt"
    monkeypatch.setenv("SLUICEGATE_TEST_LOG", str(log))
    assert main(["send", "work", "--count", "40", "--app", str(app_file), "--store", redis_url]) == 0
    assert "sent 40 messages to work" in capsys.readouterr().out
    assert main(["run", str(app_file), "--until-empty", "--store", redis_url,
                 "--status", "none"]) == 0
    assert "processed 40" in capsys.readouterr().out
    assert sorted(_lines(log)) == list(range(40))
    assert main(["queues", "--json", "--store", redis_url]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["work"]["visible"] == 0 and rows["work"]["in_flight"] == 0
    assert rows["work"]["dead_letter_queue"] == "work-dlq"
    assert set(rows) == {"work", "work-dlq", "work.fifo"}


@pytest.mark.slow
def test_two_worker_processes_share_one_queue(
    app_file: Path, redis_url: str, tmp_path: Path
) -> None:
    # Given: 400 messages on the server
    n = 400
    assert main(["send", "work", "--count", str(n), "--app", str(app_file),
                 "--store", redis_url]) == 0

    # When: two worker processes drain the queue at the same time
    logs = [tmp_path / "a.txt", tmp_path / "b.txt"]
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "sluicegate", "run", str(app_file), "--store", redis_url,
             "--until-empty", "--status", "none"],
            env={**os.environ, "SLUICEGATE_TEST_LOG": str(log), "SLUICEGATE_TEST_DELAY": "0.05"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for log in logs
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err

    # Then: both took part and each message was processed by exactly one of them
    a, b = (_lines(log) for log in logs)
    assert a and b, "both workers took part"
    assert sorted(a + b) == list(range(n))
