"""The CLI's ordered-source commands: send to FIFO queues, put, publish, streams."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from sluicegate.cli import main

APP = textwrap.dedent(
    """
    import base64, json, os
    import sluicegate

    app = sluicegate.App()
    app.queue("orders.fifo", content_based_deduplication=True)
    app.queue("audit.fifo", content_based_deduplication=True)
    app.topic("events.fifo", subscribers=["orders.fifo", "audit.fifo"])
    app.stream("clicks", shard_count=2)
    LOG = os.environ["SLUICEGATE_TEST_LOG"]

    @app.function
    def orders(event, context):
        with open(LOG, "a") as f:
            for r in event["Records"]:
                f.write(f"q {r['attributes']['MessageGroupId']} {r['body']}\\n")

    @app.function
    def clicks(event, context):
        with open(LOG, "a") as f:
            for r in event["Records"]:
                data = base64.b64decode(r["kinesis"]["data"]).decode()
                f.write(f"s {r['kinesis']['partitionKey']} {data}\\n")

    app.map("orders.fifo", orders, scaling="fixed", maximum_concurrency=2)
    app.map("clicks", clicks, parallelization_factor=2)
    """
)


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str, Path]:
    app = tmp_path / "ordered.py"
    app.write_text(APP)
    log = tmp_path / "log.txt"
    monkeypatch.setenv("SLUICEGATE_TEST_LOG", str(log))
    return app, f"sqlite:///{tmp_path / 'cli.db'}", log


def test_fifo_send_put_publish_run_and_inspect(setup, capsys):
    app, store, log = setup
    a = str(app)
    assert main(["send", "orders.fifo", "x1", "x2", "--group-id", "g", "--app", a,
                 "--store", store]) == 0
    assert main(["send", "orders.fifo", "x1", "--group-id", "g", "--store", store]) == 0
    assert "1 duplicate, not delivered" in capsys.readouterr().out
    assert main(["publish", "events.fifo", "p1", "--group-id", "h", "--dedup-id", "d1",
                 "--app", a, "--store", store]) == 0
    assert "published 1 message to events.fifo (2 subscribers)" in capsys.readouterr().out
    assert main(["put", "clicks", "c1", "c2", "c3", "--partition-key", "user-1",
                 "--store", store]) == 0
    assert "put 3 records to clicks" in capsys.readouterr().out
    assert main(["queues", "--json", "--store", store]) == 0
    queues = {q["name"]: q for q in json.loads(capsys.readouterr().out)}
    assert queues["orders.fifo"]["fifo"] and queues["orders.fifo"]["active_groups"] == 2
    assert queues["audit.fifo"]["visible"] == 1

    assert main(["run", a, "--until-empty", "--status", "none", "--store", store]) == 0
    lines = log.read_text().splitlines()
    assert [x for x in lines if x.startswith("q g")] == ["q g x1", "q g x2"]
    assert "q h p1" in lines
    assert [x for x in lines if x.startswith("s ")] == [
        "s user-1 c1", "s user-1 c2", "s user-1 c3"
    ]
    capsys.readouterr()
    assert main(["streams", "--json", "--store", store]) == 0
    (stream,) = json.loads(capsys.readouterr().out)
    assert stream["name"] == "clicks" and len(stream["shards"]) == 2
    (checkpoints,) = stream["mappings"].values()
    latest = {s["shard_id"]: s["latest_sequence"] for s in stream["shards"]}
    for shard_id, cp in checkpoints.items():
        if latest[shard_id] >= 0:
            assert cp["checkpoint"] == latest[shard_id] and cp["iterator_age_ms"] == 0
    assert main(["streams", "--store", store]) == 0
    assert "clicks (2 shards)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["send", "orders.fifo", "x"], "group_id is required"),
        (["send", "orders.fifo", "x", "--group-id", "bad id"], "group_id='bad id' is invalid"),
        (["put", "nope", "x", "--partition-key", "k"], "stream 'nope' does not exist"),
        (["put", "clicks", "x", "--partition-key", ""], "partition"),
        (["publish", "nope", "x"], "topic 'nope' is not defined"),
        (["publish", "events.fifo", "x"], "group_id is required"),
    ],
)
def test_bad_ordered_input_is_one_line_and_exit_2(setup, capsys, args, message):
    app, store, _ = setup
    main(["queues", "--app", str(app), "--store", store])
    capsys.readouterr()
    extra = ["--app", str(app)] if args[0] == "publish" else []
    assert main([*args, *extra, "--store", store]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_put_requires_a_partition_key(setup, capsys):
    _, store, _ = setup
    with pytest.raises(SystemExit) as exit_info:
        main(["put", "clicks", "x", "--store", store])
    assert exit_info.value.code == 2


def test_options_may_come_before_the_bodies_and_data(setup, capsys):
    """``send QUEUE --group-id g BODY``: argparse alone refuses bodies after options."""
    app, store, log = setup
    a = str(app)
    assert main(["send", "orders.fifo", "--group-id", "g", "--app", a, "--store", store,
                 "x1", "x2"]) == 0
    assert main(["put", "clicks", "--partition-key", "user-1", "--store", store, "c1",
                 "c2"]) == 0
    assert main(["publish", "events.fifo", "--group-id", "h", "--dedup-id", "d1", "--app", a, "p1",
                 "--store", store]) == 0
    assert main(["run", a, "--until-empty", "--status", "none", "--store", store]) == 0
    lines = log.read_text().splitlines()
    assert [x for x in lines if x.startswith("q g")] == ["q g x1", "q g x2"]
    assert "q h p1" in lines
    assert [x for x in lines if x.startswith("s ")] == ["s user-1 c1", "s user-1 c2"]


def test_a_missing_queue_or_stream_is_named_alone(capsys):
    for argv, missing in ((["send"], "QUEUE"), (["put", "--partition-key", "k"], "STREAM")):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert capsys.readouterr().err.rstrip().endswith(
            f"the following arguments are required: {missing}")
