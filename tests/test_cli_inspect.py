"""Looking at messages from the command line: ``peek`` (queues, dead-letter queues, FIFO
queues, stream shards), ``purge``, and inspection commands that open the store read-only,
down to a database in a directory the process cannot write."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluicegate.cli import _duration, main
from sluicegate.store import SqliteStore, open_store

APP = textwrap.dedent(
    """
    import sluicegate

    app = sluicegate.App()
    app.queue("work-dlq")
    app.queue("work", visibility_timeout=30, dead_letter_queue="work-dlq", max_receive_count=2)
    app.queue("orders.fifo", content_based_deduplication=True)
    app.stream("clicks", shard_count=2)

    @app.function
    def handler(event, context):
        pass

    app.map("work", handler)
    app.map("clicks", handler)
    """
)


@pytest.fixture
def app_file(tmp_path: Path) -> Path:
    path = tmp_path / "inspect_app.py"
    path.write_text(APP)
    return path


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'inspect.db'}"


def cli(*args: str) -> int:
    return main(list(args))


def store_call(url: str, action: Any) -> Any:
    """Run ``await action(store)`` on the store at ``url`` (as another process would)."""

    async def run() -> Any:
        async with open_store(url) as store:
            return await action(store)

    return asyncio.run(run())


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sluicegate: error: "), err
    assert "Traceback" not in err
    return err


@pytest.fixture
def filled(app_file: Path, store_url: str, capsys: pytest.CaptureFixture[str]) -> str:
    """``work`` holds a message in flight (received once) and one with an attribute."""
    assert cli("send", "work", '{"n": 1}', "--app", str(app_file), "--store", store_url) == 0
    assert cli("send", "work", "two\nlines", "--attribute", "kind=order",
               "--store", store_url) == 0
    capsys.readouterr()
    (taken,) = store_call(store_url, lambda s: s.receive("work"))
    assert taken.body == '{"n": 1}'
    return str(taken.receipt_handle)


# ---------------------------------------------------------------------- peek a queue
def test_peek_piped_shows_every_message_in_full_and_changes_nothing(
    filled: str, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def numbers() -> tuple[int, int, int, int]:
        c = store_call(store_url, lambda s: s.counts("work"))
        return c.visible, c.in_flight, c.delayed, c.dead_lettered

    before = numbers()
    assert cli("peek", "work", "--store", store_url) == 0
    out = capsys.readouterr().out
    heading, *blocks = out.split("\n\n")
    assert heading == ("queue work: 2 messages (1 visible, 1 in flight, 0 delayed), "
                       "dead-lettered to work-dlq after 2 receives; oldest first")
    assert len(blocks) == 2
    first, second = (dict(line.strip().split(": ", 1) for line in b.strip().splitlines()
                          if ": " in line) for b in blocks)
    assert first["state"].startswith("in flight, visible in ")
    assert first["receive count"] == "1"
    assert first["body"] == '{"n": 1}'
    assert second["state"] == "visible" and second["receive count"] == "0"
    assert second["attribute"] == "kind=order (String)"
    assert "body: two\n    lines" in blocks[1]  # a body's own lines stay, indented
    assert "…" not in out
    assert cli("peek", "work", "--count", "1", "--store", store_url) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith("; showing the oldest 1")
    # nothing moved: counts, the receive's handle, the next receive's order and counts
    assert numbers() == before
    assert store_call(store_url, lambda s: s.change_visibility("work", filled, 0)) is None
    again = store_call(store_url, lambda s: s.receive("work", max_messages=10))
    assert [(m.body, m.receive_count) for m in again] == [('{"n": 1}', 2), ("two\nlines", 1)]


def test_peek_json_and_dead_letter_queue(
    filled: str, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("peek", "work", "--json", "--count", "1", "--store", store_url) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["queue"], doc["visible"], doc["in_flight"], doc["delayed"]) == ("work", 1, 1, 0)
    assert (doc["dead_letter_queue"], doc["max_receive_count"]) == ("work-dlq", 2)
    (head,) = doc["messages"]
    assert head["state"] == "in_flight" and 0 < head["visible_in_seconds"] <= 30
    assert head["receive_count"] == 1 and head["body"] == '{"n": 1}'
    assert head["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"SenderId", "SentTimestamp", "ApproximateFirstReceiveTimestamp"} <= set(
        head["attributes"])

    # received twice (max_receive_count 2), it goes to work-dlq at the next receive
    store_call(store_url, lambda s: s.change_visibility("work", filled, 0))
    for _ in range(2):
        store_call(store_url, lambda s: s.receive("work", max_messages=10, visibility_timeout=0))
    assert cli("peek", "work-dlq", "--json", "--store", store_url) == 0
    (dead,) = json.loads(capsys.readouterr().out)["messages"]
    assert dead["body"] == '{"n": 1}' and dead["source_queue"] == "work"
    assert dead["receive_count"] == 0 and dead["state"] == "visible"
    assert dead["attributes"]["DeadLetterQueueSourceArn"].endswith(":work")
    assert cli("peek", "work-dlq", "--store", store_url) == 0
    assert "dead-lettered from: work" in capsys.readouterr().out


def test_peek_fifo_shows_groups_and_deduplication_ids(
    app_file: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("send", "orders.fifo", "a1", "a2", "--group-id", "a", "--app", str(app_file),
               "--store", store_url) == 0
    assert cli("send", "orders.fifo", "b1", "--group-id", "b", "--dedup-id", "d-b1",
               "--store", store_url) == 0
    capsys.readouterr()
    assert cli("peek", "orders.fifo", "--json", "--store", store_url) == 0
    messages = json.loads(capsys.readouterr().out)["messages"]
    assert [(m["body"], m["group_id"]) for m in messages] == [("a1", "a"), ("a2", "a"),
                                                             ("b1", "b")]
    assert messages[2]["deduplication_id"] == "d-b1"
    assert messages[0]["attributes"]["MessageGroupId"] == "a"
    assert int(messages[0]["sequence_number"]) < int(messages[1]["sequence_number"])
    assert cli("peek", "orders.fifo", "--store", store_url) == 0
    out = capsys.readouterr().out
    assert "group: b" in out and "deduplication id: d-b1" in out


def test_peek_on_a_terminal_is_a_table_that_wraps(
    filled: str, store_url: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setenv("COLUMNS", "50")
    body = "a-body-longer-than-any-column-of-a-narrow-terminal-" * 2
    store_call(store_url, lambda s: s.send("work", body))
    assert cli("peek", "work", "--store", store_url) == 0
    out = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)  # no colours
    lines = out.splitlines()
    assert "…" not in out
    assert max(len(line) for line in lines) <= 50
    # folded, not cut: the first column's pieces make each id, the last column's the body
    ids = [m.message_id for m in store_call(store_url, lambda s: s.peek("work"))]
    firsts = "".join(line.split()[0] for line in lines if line.strip())
    lasts = "".join(line.split()[-1] for line in lines if line.strip())
    assert all(i in firsts for i in ids)
    assert body in lasts


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-1, "0.0 s"), (4.24, "4.2 s"), (59.96, "1 min 0 s"), (185, "3 min 5 s"),
     (7805, "2 h 10 min"), (3 * 86_400 + 4 * 3600 + 5, "3 d 4 h")],
)
def test_ages_read_as_people_say_them(seconds: float, text: str) -> None:
    assert _duration(seconds) == text


# ---------------------------------------------------------------------- peek a stream
def test_peek_stream_shard_data_and_checkpoints(
    app_file: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("put", "clicks", '{"c": 1}', '{"c": 2}', "--partition-key", "user-1",
               "--app", str(app_file), "--store", store_url) == 0
    shard = store_call(store_url, lambda s: s.put_record("clicks", "user-1", b"\xff\x00")).shard
    store_call(store_url, lambda s: s.set_checkpoints("clicks->handler", {shard: 1}))
    capsys.readouterr()

    assert cli("peek", "clicks", "--shard", str(shard), "--json", "--store", store_url) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["checkpoints"] == {"clicks->handler": 1}
    assert [(r["sequence_number"], r["partition_key"], r["data"], r["data_encoding"])
            for r in doc["records"]] == [
        (1, "user-1", '{"c": 1}', "utf-8"), (2, "user-1", '{"c": 2}', "utf-8"),
        (3, "user-1", "/wA=", "base64"),
    ]
    assert [r["checkpoint_passed"] for r in doc["records"]] == [
        {"clicks->handler": True}, {"clicks->handler": False}, {"clicks->handler": False},
    ]

    assert cli("peek", "clicks", "--shard", str(shard), "--from", "2", "--count", "1",
               "--store", store_url) == 0
    out = capsys.readouterr().out
    assert "checkpoints: clicks->handler at 1" in out.splitlines()[0]
    assert "record: 2" in out and "record: 1\n" not in out and "record: 3" not in out
    assert "checkpoints: clicks->handler not yet" in out and 'data: {"c": 2}' in out
    assert cli("peek", "clicks", "--shard", str(shard), "--from", "3", "--store",
               store_url) == 0
    assert "data: (base64) /wA=" in capsys.readouterr().out


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["peek", "nope"], "no queue or stream named 'nope'"),
        (["peek", "clicks"], "'clicks' is a stream: give --shard N (0-1)"),
        (["peek", "clicks", "--shard", "2"],
         "--shard 2 is out of range: stream 'clicks' has 2 shards, 0-1"),
        (["peek", "clicks", "--shard", "x"], "--shard 'x' is not a whole number"),
        (["peek", "clicks", "--shard", "0", "--from", "-1"], "--from -1 is out of range"),
        (["peek", "work", "--from", "3"], "--from is for streams; 'work' is a queue"),
        (["peek", "work", "--shard", "0"], "--shard is for streams; 'work' is a queue"),
        (["peek", "nope", "--shard", "0"], "no stream named 'nope'"),
        (["peek", "work", "--count", "0"], "--count 0 is out of range: allowed 1-10,000"),
        (["peek", "work", "--count", "lots"], "--count 'lots' is not a whole number"),
        (["purge", "nope", "--yes"], "queue 'nope' does not exist"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], message: str, app_file: Path, store_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli("queues", "--app", str(app_file), "--store", store_url) == 0
    capsys.readouterr()
    assert cli(*args, "--store", store_url) == 2
    assert message in error_line(capsys)


# ---------------------------------------------------------------------- purge
def test_purge_refuses_without_yes_when_not_on_a_terminal(
    filled: str, store_url: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # not a terminal: never asked
    assert cli("purge", "work", "--store", store_url) == 2
    assert "add --yes when not on a terminal" in error_line(capsys)
    assert store_call(store_url, lambda s: s.counts("work")).total == 2
    assert cli("purge", "work", "--yes", "--store", store_url) == 0
    assert capsys.readouterr().out == "purged 2 messages from work\n"
    assert store_call(store_url, lambda s: s.counts("work")).total == 0


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("answer", "status"), [("y\n", 0), ("n\n", 1), ("", 1)])
def test_purge_asks_on_a_terminal(
    answer: str, status: int, filled: str, store_url: str,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdin", _Terminal(answer))
    assert cli("purge", "work", "--store", store_url) == status
    captured = capsys.readouterr()
    assert captured.err.startswith(
        "purge queue 'work': delete its 2 messages (1 visible, 1 in flight, 0 delayed)? [y/N] ")
    left = store_call(store_url, lambda s: s.counts("work")).total
    if status == 0:
        assert captured.out == "purged 2 messages from work\n" and left == 0
    else:
        assert "nothing deleted" in captured.err and left == 2


# ---------------------------------------------------------------------- read-only
def test_inspection_of_a_missing_file_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'typo.db'}"
    for command in (["queues"], ["streams"], ["peek", "work"]):
        assert cli(*command, "--store", url) == 2
        assert "the file does not exist" in error_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_inspection_leaves_the_file_byte_identical(
    filled: str, store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "inspect.db"
    before = db.read_bytes()
    for command in (["queues"], ["queues", "--json"], ["streams"], ["peek", "work"],
                    ["peek", "clicks", "--shard", "1", "--json"]):
        assert cli(*command, "--store", store_url) == 0, capsys.readouterr().err
    assert db.read_bytes() == before


@pytest.fixture
def unwritable(tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    """A directory and a command prefix under which a process cannot write in it.

    Tests run as root in CI, and root writes through file modes: there the prefix runs
    the command without the capabilities that override them (``setpriv``), so the
    directory (0555) and its files (0444) are read-only to it as to any other user.
    """
    directory = tmp_path / "ro"
    directory.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: cannot drop write permission")
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--"]
        works = subprocess.run([*prefix, sys.executable, "-c", "pass"], capture_output=True)
        if works.returncode != 0:
            pytest.skip(f"setpriv cannot drop capabilities here: {works.stderr.strip()!r}")
    yield directory, prefix
    directory.chmod(0o755)
    for path in directory.iterdir():
        path.chmod(0o644)


def _lock(directory: Path, prefix: list[str]) -> None:
    for path in directory.iterdir():
        path.chmod(0o444)
    directory.chmod(0o555)
    probe = subprocess.run([*prefix, sys.executable, "-c",
                            f"open({str(directory / 'probe')!r}, 'w')"], capture_output=True)
    if probe.returncode == 0:
        (directory / "probe").unlink()
        pytest.skip("this process keeps write permission however the directory is set")


def _sluicegate(prefix: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, sys.executable, "-m", "sluicegate", *args],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("leftovers", [(), ("-wal", "-shm"), ("-shm",)],
                         ids=["clean", "empty-log-and-index", "index-only"])
def test_inspection_in_a_directory_this_process_cannot_write(
    unwritable: tuple[Path, list[str]], app_file: Path, leftovers: tuple[str, ...]
) -> None:
    directory, prefix = unwritable
    url = f"sqlite:///{directory / 'store.db'}"
    assert cli("send", "work", "x", "--app", str(app_file), "--store", url) == 0
    shard = store_call(url, lambda s: s.put_record("clicks", "k", "data")).shard
    assert sorted(p.name for p in directory.iterdir()) == ["store.db"]
    assert cli("queues", "--store", url) == 0  # a reader leaves an empty -wal and a -shm
    for suffix in ("-wal", "-shm"):
        if suffix not in leftovers:
            (directory / f"store.db{suffix}").unlink()
    files = sorted(p.name for p in directory.iterdir())
    assert files == sorted(["store.db", *(f"store.db{suffix}" for suffix in leftovers)])
    before = (directory / "store.db").read_bytes()
    _lock(directory, prefix)

    # before read-only inspection: "attempt to write a readonly database"
    peek = _sluicegate(prefix, "peek", "work", "--json", "--store", url)
    assert peek.returncode == 0, peek.stderr
    assert [m["body"] for m in json.loads(peek.stdout)["messages"]] == ["x"]
    if not leftovers:  # the other commands open the store alike
        queues = _sluicegate(prefix, "queues", "--json", "--store", url)
        assert queues.returncode == 0, queues.stderr
        assert {r["name"]: r["visible"] for r in json.loads(queues.stdout)}["work"] == 1
        streams = _sluicegate(prefix, "streams", "--store", url)
        assert streams.returncode == 0, streams.stderr
        records = _sluicegate(prefix, "peek", "clicks", "--shard", str(shard), "--store", url)
        assert records.returncode == 0 and "data: data" in records.stdout, records.stderr
        # a command that writes cannot, and says so in one line
        send = _sluicegate(prefix, "send", "work", "y", "--store", url)
        assert send.returncode == 2 and send.stderr.count("\n") == 1, send.stderr
        assert "cannot write the file or its directory" in send.stderr
    assert sorted(p.name for p in directory.iterdir()) == files
    assert (directory / "store.db").read_bytes() == before


def test_inspection_reads_a_live_log_in_a_directory_it_cannot_write(
    unwritable: tuple[Path, list[str]], app_file: Path
) -> None:
    directory, prefix = unwritable
    db = directory / "store.db"
    url = f"sqlite:///{db}"
    assert cli("queues", "--app", str(app_file), "--store", url) == 0

    async def scenario() -> None:
        async with SqliteStore(db) as writer:  # a worker has the file open: -wal, -shm
            await writer.send("work", "only-in-the-log")
            assert b"only-in-the-log" not in db.read_bytes()
            _lock(directory, prefix)
            peek = await asyncio.to_thread(_sluicegate, prefix, "peek", "work", "--json",
                                           "--store", url)
            assert peek.returncode == 0, peek.stderr
            assert [m["body"] for m in json.loads(peek.stdout)["messages"]] == [
                "only-in-the-log"]

    asyncio.run(scenario())


def test_a_log_that_cannot_be_read_is_one_line(
    unwritable: tuple[Path, list[str]], app_file: Path
) -> None:
    directory, prefix = unwritable
    db = directory / "store.db"
    url = f"sqlite:///{db}"
    assert cli("queues", "--app", str(app_file), "--store", url) == 0
    # a worker killed with its transactions in the log, whose WAL index is then lost
    crash = textwrap.dedent(f"""
        import asyncio, os
        from sluicegate.store import SqliteStore
        async def main():
            store = SqliteStore({str(db)!r})
            await store.open()
            await store.send("work", "only-in-the-log")
            os._exit(0)
        asyncio.run(main())
    """)
    subprocess.run([sys.executable, "-c", crash], check=True, timeout=60)
    (directory / "store.db-shm").unlink()
    assert (directory / "store.db-wal").stat().st_size > 0
    _lock(directory, prefix)
    peek = _sluicegate(prefix, "peek", "work", "--store", url)
    assert peek.returncode == 2
    assert peek.stderr.count("\n") == 1 and "store.db-wal holds transactions" in peek.stderr
