"""What the command line prints: names never cut, counts in good grammar, status fields
that say what they count, plots in the format asked for, errors that say what is wrong,
standard input, the memory store refused where it would lose messages, and the exit
status of a run that abandoned work."""

from __future__ import annotations

import asyncio
import io
import json
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console
from rich.table import Table

from sluicegate.cli import _parser, _workers_table, main
from sluicegate.runtime.metrics import MetricsSecond
from sluicegate.runtime.status import StatusReporter, format_line
from sluicegate.sim.report import print_report
from sluicegate.tables import fit, print_table, render_plain
from sluicegate.wording import plural

ROOT = Path(__file__).resolve().parent.parent
LONG = "customer-notifications-eu-west-1"
DLQ = f"{LONG}-dlq"
ANSI = re.compile(r"\x1b\[[0-9;]*m")

LONG_APP = textwrap.dedent(
    f"""
    import sluicegate

    app = sluicegate.App()
    app.queue("{LONG}", dead_letter_queue="{DLQ}", max_receive_count=5)
    app.stream("{LONG}-clickstream", shard_count=1)

    @app.function(timeout=5)
    def handler(event, context):
        pass

    app.map("{LONG}", handler)
    app.map("{LONG}-clickstream", handler, starting_position="TRIM_HORIZON")
    """
)


@pytest.fixture
def long_app(tmp_path: Path) -> Path:
    path = tmp_path / "long.py"
    path.write_text(LONG_APP)
    return path


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'out.db'}"


def terminal(monkeypatch: pytest.MonkeyPatch, columns: int = 80) -> None:
    """Make the CLI's consoles believe they write to a terminal this wide."""
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("COLUMNS", str(columns))


def piped(monkeypatch: pytest.MonkeyPatch, columns: int = 80) -> None:
    """Output to a pipe (capsys is not a terminal), with COLUMNS still set."""
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("COLUMNS", str(columns))


def whole(out: str, name: str) -> int:
    """How many times ``name`` appears whole (not as the start of a longer name)."""
    return len(re.findall(re.escape(name) + r"(?![\w-])", ANSI.sub("", out)))


def assert_names_whole(out: str) -> None:
    plain = ANSI.sub("", out)
    assert "…" not in plain, plain
    assert whole(plain, LONG) >= 1 and whole(plain, DLQ) >= 1, plain


# ---------------------------------------------------------------------- names never cut
@pytest.mark.parametrize("mode", [terminal, piped])
def test_queues_show_a_queue_and_its_dlq_apart_at_80_columns(
        mode: Any, long_app: Path, store_url: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    mode(monkeypatch)
    assert main(["queues", "--app", str(long_app), "--store", store_url]) == 0
    out = capsys.readouterr().out
    assert_names_whole(out)
    # the queue's row names its DLQ; the DLQ's own row is there too
    assert whole(out, DLQ) == 2


def test_piped_queues_are_plain_text_at_their_natural_width(
        long_app: Path, store_url: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    piped(monkeypatch, 40)
    assert main(["queues", "--app", str(long_app), "--store", store_url]) == 0
    out = capsys.readouterr().out
    assert "\x1b[" not in out
    lines = out.splitlines()
    assert lines[0].split() == ["queue", "visible", "in", "flight", "delayed", "oldest", "age",
                                "(s)", "dead-lettered", "groups", "(in", "flight)", "DLQ"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {LONG, DLQ}
    assert rows[LONG][-3:] == [DLQ, "after", "5"]


def test_streams_keep_stream_and_mapping_names_whole(
        long_app: Path, store_url: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["put", f"{LONG}-clickstream", "x", "--partition-key", "k", "--app",
                 str(long_app), "--store", store_url]) == 0
    assert main(["run", str(long_app), "--until-empty", "--status", "none", "--store",
                 store_url]) == 0
    capsys.readouterr()
    for mode in (terminal, piped):
        mode(monkeypatch)
        assert main(["streams", "--store", store_url]) == 0
        out = ANSI.sub("", capsys.readouterr().out)
        assert "…" not in out
        assert f"{LONG}-clickstream (1 shard)" in out
        assert f"{LONG}-clickstream->handler" in out


def test_workers_table_keeps_worker_and_mapping_names_whole() -> None:
    now = 1000.0
    rows = [{"worker": f"{LONG}.internal:4242:abcdef", "started": now - 60, "seen": now - 1,
             "in_flight": {f"{LONG}->handler": 3},
             "leases": {f"mapping:{LONG}->handler": 4, f"mapping:{DLQ}->audit": 1}}]
    buffer = io.StringIO()
    print_table(_workers_table(rows, now),
                Console(file=buffer, width=80, force_terminal=True, color_system=None))
    out = buffer.getvalue()
    assert "…" not in out
    assert f"{LONG}.internal:4242:abcdef" in out
    assert f"mapping:{DLQ}->audit=1" in out
    assert render_plain(_workers_table(rows, now)).count(f"{LONG}->handler") == 2


def test_the_live_status_table_folds_nothing_away() -> None:
    runtime = SimpleNamespace(metrics=None)
    reporter = StatusReporter(runtime, mode="none", stream=io.StringIO())  # type: ignore[arg-type]
    name = f"{LONG}->handler"
    reporter._latest = {name: MetricsSecond(name, 0, invocations=3, concurrent_executions=2,
                                            concurrency_limit=5, visible=10, in_flight=20)}
    buffer = io.StringIO()
    reporter._console = Console(file=buffer, width=80, force_terminal=True, color_system=None)
    reporter._console.print(reporter._table())
    out = buffer.getvalue()
    assert "…" not in out and name in out


def topic_fanout_result() -> dict[str, Any]:
    from sluicegate.sim.presets import PRESETS

    preset = PRESETS["topic-fanout"]
    from sluicegate.sim import simulate_any

    return {"variants": [{"name": name, **simulate_any(s).to_dict()}
                         for name, s in preset.variants(["duration=10s"])]}


def test_the_topic_fanout_summary_is_readable_at_80_columns_and_piped() -> None:
    result = topic_fanout_result()
    parts = ["reserved/account", "reserved/analytics", "unreserved/audit", "fifo/billing"]
    narrow = io.StringIO()
    print_report(result, Console(file=narrow, width=80, force_terminal=True,
                                 color_system=None), charts=())
    out = narrow.getvalue()
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    for part in parts:  # one record per run, named in full on a line of its own
        assert f"run: {part}" in out.splitlines()
    assert "Messages processed: " in out

    pipe = io.StringIO()
    print_report(result, Console(file=pipe, width=80, color_system=None), charts=("concurrency",))
    text = pipe.getvalue()
    assert "…" not in text and "\x1b[" not in text
    header = next(line for line in text.splitlines() if "metric" in line)
    for part in parts:  # side by side, each column headed by its whole name
        assert part in header
    assert "concurrency · unreserved/analytics  peak" in text


def test_simulate_preset_summary_on_a_narrow_terminal(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    terminal(monkeypatch)
    assert main(["simulate", "--preset", "topic-fanout", "--set", "duration=10s"]) == 0
    out = ANSI.sub("", capsys.readouterr().out)
    assert "…" not in out
    assert out.splitlines()[0] == "topic-fanout"
    assert "run: unreserved/analytics" in out.splitlines()


def test_fit_narrows_columns_to_their_longest_word_before_going_to_records() -> None:
    def table() -> Table:
        t = Table("queue", "in flight", "oldest age (s)", box=None)
        t.add_row("orders-dlq", "0", "0.0")
        return t

    wide = table()
    assert fit(wide, 80) is wide and all(c.width is None for c in wide.columns)
    narrow = table()
    assert fit(narrow, 26) is narrow  # every column at its longest word, headers wrapped
    assert [c.width for c in narrow.columns] == [10, 6, 6]
    buffer = io.StringIO()
    Console(file=buffer, width=26, color_system=None).print(narrow)
    assert "orders-dlq" in buffer.getvalue() and "…" not in buffer.getvalue()
    buffer = io.StringIO()
    Console(file=buffer, width=22, color_system=None).print(fit(table(), 22))
    assert buffer.getvalue().splitlines() == ["queue: orders-dlq", "  in flight: 0",
                                              "  oldest age (s): 0.0"]


# ---------------------------------------------------------------------- grammar
def test_plural() -> None:
    assert plural(1, "message") == "1 message"
    assert plural(0, "message") == "0 messages"
    assert plural(2, "shard") == "2 shards"
    assert plural(3, "in-flight invocation") == "3 in-flight invocations"
    assert plural(2, "batch", "batches") == "2 batches"
    assert plural(1, "batch", "batches") == "1 batch"
    assert plural(2, "entry") == "2 entries"


def test_one_message_is_a_message(tmp_path: Path, store_url: str,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    app = tmp_path / "one.py"
    app.write_text(LONG_APP)
    assert main(["send", LONG, '{"n": 1}', "--app", str(app), "--store", store_url]) == 0
    assert capsys.readouterr().out.strip() == f"sent 1 message to {LONG}"
    assert main(["put", f"{LONG}-clickstream", "x", "--partition-key", "k", "--store",
                 store_url]) == 0
    assert capsys.readouterr().out.strip() == f"put 1 record to {LONG}-clickstream"
    assert main(["run", str(app), "--until-empty", "--status", "none", "--store",
                 store_url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("processed 2 messages in ")
    assert f"{LONG}->handler: 1 invocation, 0 errors, 0 throttles" in out
    assert "peak concurrency 1 batch " in out


def test_print_summary_of_one_message() -> None:
    from sluicegate.runtime.driver import MappingSummary, RunSummary

    summary = RunSummary(elapsed=1.0, dead_lettered=0, stopped_by="queues empty",
                         cold_starts=1, mappings=(
        MappingSummary(name="q->f", invocations=1, errors=1, throttles=1, messages_deleted=1,
                       peak_concurrency=1, maximum_concurrency=None),))
    out = io.StringIO()
    StatusReporter(SimpleNamespace(), mode="none", stream=out).print_summary(  # type: ignore[arg-type]
        summary, out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("processed 1 message in 1.0s")
    assert lines[0].endswith("dead-lettered 0, 1 cold start; stopped: queues empty")
    assert lines[1] == ("  q->f: 1 invocation, 1 error, 1 throttle, peak concurrency 1 batch "
                        "(maximum_concurrency none)")


def test_no_possessive_after_a_quoted_name() -> None:
    """'orders''s: a quoted name never takes a possessive, anywhere in the sources."""
    offenders = [f"{path.relative_to(ROOT)}:{n}"
                 for path in sorted((ROOT / "src" / "sluicegate").rglob("*.py"))
                 for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if re.search(r"!r\}'s\b|\}'s\b", line)]
    assert offenders == []


def test_an_oversize_message_names_its_queue_plainly(tmp_path: Path, store_url: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    app = tmp_path / "q.py"
    app.write_text("import sluicegate\napp = sluicegate.App()\napp.queue('orders')\n")
    assert main(["send", "orders", json.dumps("x" * 300_000), "--app", str(app),
                 "--store", store_url]) == 2
    err = capsys.readouterr().err
    assert "'orders''s" not in err and "maximum of queue 'orders'" in err


# ---------------------------------------------------------------------- status fields
def test_the_status_line_says_what_each_field_counts() -> None:
    line = format_line(MetricsSecond("all", 0, invocations=5, concurrent_executions=25,
                                     concurrency_limit=5, visible=7, in_flight=30,
                                     oldest_age=1.5))
    fields = dict(f.split("=", 1) for f in line.split()[1:])
    assert fields["batches_in_flight"] == "25" and fields["batch_limit"] == "5"
    assert fields["messages_in_flight"] == "30" and fields["messages_visible"] == "7"
    assert fields["invocations/s"] == "5" and fields["oldest_message_age"] == "1.5s"
    assert "in_flight" not in fields and "limit" not in fields
    assert "limited_by" not in fields  # no binding term known
    bound = format_line(MetricsSecond("a->f", 0, concurrency_limit=5, limit_reason="cluster"))
    assert dict(f.split("=", 1) for f in bound.split()[1:])["limited_by"] == "cluster"
    assert "breaker" not in bound and "paused" not in bound
    tripped = format_line(MetricsSecond("a->f", 0, concurrency_limit=0, limit_reason="breaker",
                                        breaker="open"))
    fields = dict(f.split("=", 1) for f in tripped.split()[1:])
    assert (fields["limited_by"], fields["breaker"], fields["batch_limit"]) == (
        "breaker", "open", "0")
    paused = format_line(MetricsSecond("a->f", 0, concurrency_limit=5,
                                       limit_reason="maximum_concurrency", paused=True))
    assert dict(f.split("=", 1) for f in paused.split()[1:])["paused"] == "yes"
    gated = format_line(MetricsSecond("a->f", 0, concurrency_limit=2,
                                      limit_reason="semaphore:db",
                                      semaphores=(("db", 2, 3), ("api", 1, 1))))
    fields = dict(f.split("=", 1) for f in gated.split()[1:])
    assert (fields["limited_by"], fields["semaphores"]) == ("semaphore:db", "db:2/3,api:1/1")
    assert "semaphores" not in bound


def test_the_live_status_table_shows_an_open_breaker_and_a_paused_mapping() -> None:
    runtime = SimpleNamespace(metrics=None)
    reporter = StatusReporter(runtime, mode="none", stream=io.StringIO())  # type: ignore[arg-type]
    reporter._latest = {  # three mappings (with two, the table leaves out the total)
        "orders->charge": MetricsSecond("orders->charge", 0, concurrency_limit=0,
                                        limit_reason="breaker", breaker="open"),
        "audit->log": MetricsSecond("audit->log", 0, concurrency_limit=5,
                                    limit_reason="maximum_concurrency", paused=True),
        "clicks->count": MetricsSecond("clicks->count", 0, concurrency_limit=3,
                                       limit_reason="adaptive", breaker="half_open"),
    }
    buffer = io.StringIO()
    reporter._console = Console(file=buffer, width=80, force_terminal=True, color_system=None)
    reporter._console.print(reporter._table())
    # at 80 columns each mapping is a record: its name, then its fields
    records = {chunk.split("\n", 1)[0]: chunk
               for chunk in buffer.getvalue().split("mapping: ")[1:]}
    assert "limited by: breaker open" in records["orders->charge"]
    assert "limited by: paused" in records["audit->log"]
    assert "limited by: adaptive (half_open)" in records["clicks->count"]


# ---------------------------------------------------------------------- plots and files
SMALL = textwrap.dedent(
    """
    name = "small"
    seed = 3
    duration = "1m"

    [queue]
    visibility_timeout = 30

    [producer]
    rate = 20

    [function]
    duration = "100ms"

    [mapping]
    batch_size = 5
    maximum_concurrency = 10
    scaling = "fixed"
    """
)


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    return path


@pytest.mark.parametrize(("suffix", "magic"), [("svg", b"<?xml"), ("pdf", b"%PDF"),
                                               ("PNG", b"\x89PNG")])
def test_plot_is_written_in_the_format_its_extension_names(
        suffix: str, magic: bytes, scenario: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / f"plot.{suffix}"
    assert main(["simulate", str(scenario), "--plot", str(out)]) == 0
    assert out.read_bytes().startswith(magic)
    assert capsys.readouterr().out.splitlines()[-1] == f"wrote {out}"


def test_plot_with_another_extension_is_refused_before_simulating(
        scenario: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(scenario), "--plot", str(tmp_path / "p.jpg")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing simulated
    assert captured.err.strip() == (f"sluicegate: error: --plot '{tmp_path / 'p.jpg'}': "
                                    "'.jpg' is not a plot format; use .png, .svg or .pdf")
    assert not (tmp_path / "p.jpg").exists()


def test_every_output_file_is_announced(scenario: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    assert main(["simulate", str(scenario), "--json", str(out_json), "--csv",
                 str(out_csv)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2:] == [f"wrote {out_json}", f"wrote {out_csv}"]
    plan_json = tmp_path / "plan.json"
    assert main(["plan", str(scenario), "--values", "2,5", "--json", str(plan_json)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"wrote {plan_json}"


def test_the_plot_title_gives_the_parameters_clear_of_the_legend_in_distinct_colours(
) -> None:
    pytest.importorskip("matplotlib")
    from sluicegate.sim.plot import figure

    result = topic_fanout_result()
    fig = figure(result, title="topic-fanout")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    title = fig.get_suptitle()
    assert title.startswith("topic-fanout: topic, 300 msg/s to 3 queues")
    title_box = fig._suptitle.get_window_extent(renderer)  # type: ignore[union-attr]
    for legend in [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]:
        assert not title_box.overlaps(legend.get_window_extent(renderer))
    parts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert len(parts) == 12
    colours = [line.get_color() for line in fig.legends[0].get_lines()]
    assert len(set(colours)) == len(colours) == 12
    invocations = next(ax for ax in fig.axes if ax.get_title(loc="left") == "Invocations")
    assert len({line.get_color() for line in invocations.get_lines()}) == 12


def test_a_single_run_title_names_its_main_parameters(scenario: Path) -> None:
    pytest.importorskip("matplotlib")
    from sluicegate.sim import load_any_scenario, simulate_any
    from sluicegate.sim.plot import figure

    fig = figure(simulate_any(load_any_scenario(scenario)).to_dict())
    assert fig.get_suptitle() == ("small: 20 msg/s, batch 5, maximum concurrency 10, fixed "
                                  "scaling, function 100ms, 1m simulated, seed 3")


# ---------------------------------------------------------------------- loader errors
def test_run_a_directory_says_it_is_a_directory(tmp_path: Path, store_url: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "app.py").write_text("")
    assert main(["run", str(tmp_path / "jobs"), "--store", store_url]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"sluicegate: error: '{tmp_path / 'jobs'}' is a directory: name the Python "
                   "file that defines the App (app.py), or module:attr")


def test_a_missing_attribute_is_named_as_missing(long_app: Path, store_url: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", f"{long_app}:missing", "--store", store_url]) == 2
    err = capsys.readouterr().err
    assert f"'{long_app}' has no attribute 'missing' (its Apps: app)" in err
    assert main(["run", f"{long_app}:handler", "--store", store_url]) == 2
    assert "'handler' is a function, not a sluicegate.App" in capsys.readouterr().err


# ---------------------------------------------------------------------- --file -
def stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))


def test_file_dash_reads_standard_input(long_app: Path, store_url: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    stdin(monkeypatch, '{"n": 1}\n\n{"n": 2}\n')
    assert main(["send", LONG, "--file", "-", "--app", str(long_app), "--store",
                 store_url]) == 0
    assert capsys.readouterr().out.strip() == f"sent 2 messages to {LONG}"
    stdin(monkeypatch, '{"click": 1}\n')
    assert main(["put", f"{LONG}-clickstream", "--partition-key", "k", "--file", "-",
                 "--store", store_url]) == 0
    assert capsys.readouterr().out.strip() == f"put 1 record to {LONG}-clickstream"

    topic = tmp_path / "topic.py"
    topic.write_text("import sluicegate\napp = sluicegate.App()\napp.queue('a')\n"
                     "app.topic('t', subscribers=['a'])\n")
    stdin(monkeypatch, '{"x": 1}\n{"x": 2}\n{"x": 3}\n')
    assert main(["publish", "t", "--file", "-", "--app", str(topic), "--store", store_url]) == 0
    assert capsys.readouterr().out.strip() == "published 3 messages to t (1 subscriber)"

    stdin(monkeypatch, '{"n": 1}\nnot json\n')
    assert main(["send", LONG, "--file", "-", "--store", store_url]) == 2
    assert "<stdin>:2: invalid JSON" in capsys.readouterr().err


# ---------------------------------------------------------------------- memory://
@pytest.mark.parametrize("argv", [
    ["send", "q", "x"],
    ["put", "s", "x", "--partition-key", "k"],
    ["publish", "t", "x", "--app", "unused.py"],
    ["redrive", "q-dlq"],
])
def test_writing_to_a_memory_store_is_refused(argv: list[str],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*argv, "--store", "memory://"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0] == (
        f"sluicegate: error: {argv[0]} with a memory:// store would lose what it writes when "
        "this command exits: use sqlite:///PATH.db or redis://")


def test_run_and_queues_still_take_a_memory_store(long_app: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(long_app), "--until-empty", "--status", "none", "--store",
                 "memory://"]) == 0
    assert main(["queues", "--json", "--store", "memory://"]) == 0


# ---------------------------------------------------------------------- README and help
def test_sqlite_urls_are_explained_in_the_readme_and_the_help() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "`sqlite:////tmp/x.db` is `/tmp/x.db`" in readme
    assert "`sqlite:///data/x.db` is `./data/x.db`" in readme
    sub = next(a for a in _parser()._actions if a.dest == "command")
    send = sub.choices["send"]  # type: ignore[attr-defined]
    store = next(a for a in send._actions if a.dest == "store")
    assert "four for an absolute one: sqlite:////tmp/x.db" in (store.help or "")


# ---------------------------------------------------------------------- a second signal
SLOW_APP = textwrap.dedent(
    """
    import os, time
    import sluicegate

    app = sluicegate.App()
    app.queue("work", visibility_timeout=60)

    @app.function(timeout=30)
    def handler(event, context):
        open(os.environ["STARTED"], "w").close()
        time.sleep(20)

    app.map("work", handler, batch_size=1, scaling="fixed", maximum_concurrency=2)
    """
)


def test_a_second_sigterm_abandons_in_flight_work_and_exits_non_zero(
        tmp_path: Path, store_url: str) -> None:
    app = tmp_path / "slow.py"
    app.write_text(SLOW_APP)
    started = tmp_path / "started"
    assert main(["send", "work", "--count", "2", "--app", str(app), "--store", store_url]) == 0
    worker = subprocess.Popen(
        [sys.executable, "-m", "sluicegate", "run", str(app), "--store", store_url,
         "--status", "none"],
        env={**__import__("os").environ, "STARTED": str(started)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert started.exists(), "the handler never started"
    time.sleep(0.2)
    worker.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    worker.send_signal(signal.SIGTERM)
    out, err = worker.communicate(timeout=30)
    assert worker.returncode == 128 + signal.SIGTERM, (out, err)
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        "sluicegate: stopped by a second SIGTERM: abandoned 2 in-flight invocations; their "
        "messages were not deleted and reappear after their visibility timeout")

    async def remaining() -> int:
        from sluicegate.store import open_store

        async with open_store(store_url) as store:
            return (await store.counts("work")).total

    assert asyncio.run(remaining()) == 2  # nothing lost, nothing deleted


def test_colours_never_repeat() -> None:
    from sluicegate.sim.plot import PALETTE, colours

    assert colours(3) == list(PALETTE[:3])
    for n in (10, 12, 20, 21, 40):
        assert len(set(colours(n))) == n


def test_plot_refuses_an_unknown_extension_from_the_api_too(tmp_path: Path) -> None:
    from sluicegate.errors import InputError
    from sluicegate.sim.plot import plot

    with pytest.raises(InputError, match=r"'\.gif' is not a plot format"):
        plot({"series": []}, tmp_path / "x.gif")
    with pytest.raises(InputError, match="no extension"):
        plot({"series": []}, tmp_path / "x")
