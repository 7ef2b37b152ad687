"""The sluicegate command: happy paths, bad input, and kill -9 of a running worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import sluicegate
from sluicegate.build import BUILD
from sluicegate.cli import main

APP = textwrap.dedent(
    """
    import json, os, time
    import sluicegate

    app = sluicegate.App()
    app.queue("work", visibility_timeout=1, dead_letter_queue="work-dlq", max_receive_count=50)
    LOG = os.environ.get("SLUICEGATE_TEST_LOG")
    DELAY = float(os.environ.get("SLUICEGATE_TEST_DELAY", "0"))

    @app.function(timeout=1)
    def handler(event, context):
        time.sleep(DELAY)
        if LOG:
            with open(LOG, "a") as f:
                for r in event["Records"]:
                    f.write(json.loads(r["body"])["n"].__str__() + "\\n")

    app.map("work", handler, batch_size=5, scaling="fixed", maximum_concurrency=4)
    """
)


@pytest.fixture
def app_file(tmp_path: Path) -> Path:
    path = tmp_path / "jobs.py"
    path.write_text(APP)
    return path


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def run_cli(*args: str) -> int:
    return main(list(args))


def test_send_run_until_empty_and_queues(app_file, store_url, tmp_path, capsys, monkeypatch):
    log = tmp_path / "log.txt"
    monkeypatch.setenv("SLUICEGATE_TEST_LOG", str(log))
    assert run_cli("send", "work", "--count", "25", "--app", str(app_file), "--store", store_url) == 0
    assert "sent 25 messages to work" in capsys.readouterr().out
    assert run_cli("run", str(app_file), "--until-empty", "--store", store_url,
                   "--status", "log") == 0
    out = capsys.readouterr()
    assert sorted(int(x) for x in log.read_text().split()) == list(range(25))
    assert "processed 25" in out.out
    assert run_cli("queues", "--json", "--store", store_url) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["work"]["visible"] == 0 and rows["work"]["in_flight"] == 0
    assert rows["work"]["dead_letter_queue"] == "work-dlq"


def test_send_from_jsonl_file_and_env_store(app_file, store_url, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SLUICEGATE_STORE", store_url)
    data = tmp_path / "in.jsonl"
    data.write_text('{"n": 1}\n\n{"n": 2}\n')
    assert run_cli("send", "work", "--file", str(data), "--app", str(app_file)) == 0
    assert "sent 2 messages" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["send", "nope", "x"], "queue 'nope' does not exist"),
        (["redrive", "nope"], "queue 'nope' does not exist"),
        (["run", "missing.py"], "app file 'missing.py' does not exist"),
        (["run", "no_such_module_here:app"], "cannot import 'no_such_module_here'"),
        (["send", "work", "--count", "0"], "--count 0 must be at least 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, store_url, capsys):
    assert run_cli(*args, "--store", store_url) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_malformed_file_sends_nothing(app_file, store_url, tmp_path, capsys):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"n": 1}\n{"n": \n')
    assert run_cli("send", "work", "--file", str(data), "--app", str(app_file),
                   "--store", store_url) == 2
    assert "bad.jsonl:2: invalid JSON" in capsys.readouterr().err
    assert run_cli("queues", "--json", "--app", str(app_file), "--store", store_url) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["work"]["visible"] == 0


def test_unreachable_store(capsys, tmp_path):
    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'x.db'}"
    assert run_cli("queues", "--store", url) == 2
    err = capsys.readouterr().err
    assert err.startswith("sluicegate: error:") and err.count("\n") == 1


def test_config_out_of_range_in_app(tmp_path, store_url, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import sluicegate\napp = sluicegate.App()\napp.queue('q')\n"
        "@app.function\ndef h(e, c): pass\napp.map('q', h, maximum_concurrency=5000)\n"
    )
    assert run_cli("run", str(bad), "--store", store_url) == 2
    err = capsys.readouterr().err
    assert "maximum_concurrency=5000" in err and "2-1,000" in err


def test_app_that_raises_on_import(tmp_path, store_url, capsys):
    bad = tmp_path / "boom.py"
    bad.write_text("raise RuntimeError('kaput')\n")
    assert run_cli("run", str(bad), "--store", store_url) == 2
    assert "RuntimeError: kaput" in capsys.readouterr().err


def _sluicegate(*args: str, env: dict[str, str], capture: bool = True) -> subprocess.Popen[str]:
    pipe = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "-m", "sluicegate", *args],
        env={**os.environ, **env},
        stdout=pipe,
        stderr=pipe,
        text=True,
    )


def _processed_lines(log: Path) -> list[int]:
    if not log.exists():
        return []
    return [int(x) for x in log.read_text().split()]


@pytest.mark.slow
def test_kill_9_mid_batch_loses_nothing(app_file, store_url, tmp_path):
    log = tmp_path / "log.txt"
    env = {"SLUICEGATE_TEST_LOG": str(log), "SLUICEGATE_TEST_DELAY": "0.05"}
    n = 300
    assert main(["send", "work", "--count", str(n), "--app", str(app_file),
                 "--store", store_url]) == 0
    worker = _sluicegate("run", str(app_file), "--store", store_url, "--status", "none", env=env,
                         capture=False)
    deadline = time.monotonic() + 30
    while len(_processed_lines(log)) < 40 and time.monotonic() < deadline:
        time.sleep(0.02)
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    first = _processed_lines(log)
    assert 0 < len(set(first)) < n, "the worker must be killed mid-run"

    started = time.monotonic()
    again = _sluicegate("run", str(app_file), "--store", store_url, "--until-empty",
                        "--status", "none", env=env)
    _out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    assert set(_processed_lines(log)) == set(range(n))
    # The killed worker's leases are released as soon as the new one sees its process is
    # gone, not when they expire (the default lease ttl, 30 s).
    assert time.monotonic() - started < 20, err
    assert "exited without giving its leases back; released them" in err


@pytest.mark.slow
def test_sigterm_finishes_in_flight_and_exits_0(app_file, store_url, tmp_path):
    log = tmp_path / "log.txt"
    env = {"SLUICEGATE_TEST_LOG": str(log), "SLUICEGATE_TEST_DELAY": "0.3"}
    assert main(["send", "work", "--count", "200", "--app", str(app_file),
                 "--store", store_url]) == 0
    worker = _sluicegate("run", str(app_file), "--store", store_url, "--status", "none", env=env)
    deadline = time.monotonic() + 30
    while not _processed_lines(log) and time.monotonic() < deadline:
        time.sleep(0.02)
    worker.send_signal(signal.SIGTERM)
    _out, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert "Traceback" not in err
    done = set(_processed_lines(log))
    # in-flight batches finished and were deleted: whatever was logged is gone from the queue

    async def remaining():
        from sluicegate.store import open_store

        store = open_store(store_url)
        async with store:
            return (await store.counts("work")).total

    import asyncio

    assert asyncio.run(remaining()) + len(done) == 200


def test_redrive_moves_dead_letters_back(tmp_path, store_url, capsys):
    app = tmp_path / "poison.py"
    app.write_text(textwrap.dedent(
        """
        import sluicegate
        app = sluicegate.App()
        app.queue("work", visibility_timeout=1, dead_letter_queue="work-dlq", max_receive_count=1)

        @app.function(timeout=1)
        def handler(event, context):
            raise ValueError("poison")

        app.map("work", handler, batch_size=10, scaling="fixed", maximum_concurrency=2)
        """
    ))
    assert run_cli("send", "work", "--count", "3", "--app", str(app), "--store", store_url) == 0
    assert run_cli("run", str(app), "--until-empty", "--status", "none", "--store", store_url) == 0
    out = capsys.readouterr().out
    assert "dead-lettered 3" in out
    assert run_cli("redrive", "work-dlq", "--store", store_url) == 0
    assert "moved 3 messages from work-dlq to their source queues" in capsys.readouterr().out
    assert run_cli("queues", "--json", "--store", store_url) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["work"]["visible"] == 3 and rows["work-dlq"]["visible"] == 0


@pytest.mark.slow
def test_two_workers_share_one_sqlite_file(tmp_path, store_url):
    app = tmp_path / "shared.py"
    app.write_text(APP.replace("visibility_timeout=1", "visibility_timeout=30")
                   .replace("timeout=1)", "timeout=5)"))
    log_a, log_b = tmp_path / "a.txt", tmp_path / "b.txt"
    n = 400
    assert main(["send", "work", "--count", str(n), "--app", str(app), "--store", store_url]) == 0
    workers = [
        # 80 batches, 4 at a time, 0.1 s each: 2 s of work, so the second process (which
        # may take a second to start on a loaded machine) finds some left
        _sluicegate("run", str(app), "--store", store_url, "--until-empty", "--status", "none",
                    env={"SLUICEGATE_TEST_LOG": str(log), "SLUICEGATE_TEST_DELAY": "0.1"})
        for log in (log_a, log_b)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err
    a, b = _processed_lines(log_a), _processed_lines(log_b)
    assert a and b, "both workers took part"
    # each message was claimed by exactly one worker: no visibility timeout ran out
    assert sorted(a + b) == list(range(n))


def test_send_with_attributes_and_delay(app_file, store_url, capsys):
    assert run_cli("send", "work", '{"n": 1}', "--attribute", "kind=order", "--delay", "900",
                   "--app", str(app_file), "--store", store_url) == 0
    assert run_cli("queues", "--json", "--store", store_url) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out.split("\n", 1)[1])}
    assert rows["work"]["delayed"] == 1
    assert run_cli("send", "work", "x", "--attribute", "novalue", "--store", store_url) == 2
    assert "--attribute 'novalue' must be NAME=VALUE" in capsys.readouterr().err


def test_version_names_the_build(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out == f"sluicegate {sluicegate.__version__} ({BUILD})"
    assert BUILD in {"compiled", "pure Python"}
