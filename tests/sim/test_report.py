"""The simulator's output side: summary table, text charts, JSON/CSV files, PNG panels.

Every test builds its own synthetic result (a ramp, then a steady state) in the format
the engine produces; nothing here runs the engine.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from sluicegate.errors import ConfigError, InputError
from sluicegate.sim.report import (
    format_duration,
    format_value,
    named_parts,
    named_runs,
    print_report,
    read_json,
    summary_table,
    text_chart,
    text_charts,
    write_csv,
    write_json,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def ramp(peak: float = 100.0, *, buckets: int = 24, ramp_buckets: int = 6,
         errors_at: int | None = None) -> list[dict[str, Any]]:
    """Concurrency ramps up linearly to ``peak``, then holds at 60% of it (4 minutes)."""
    series = []
    for i in range(buckets):
        if i < ramp_buckets:
            concurrency = peak * (i + 1) / ramp_buckets
        else:
            concurrency = peak * 0.6
        series.append({
            "t": i * 10,
            "invocations": round(concurrency * 50),
            "cold_starts": 5 if i < ramp_buckets else 0,
            "concurrency": concurrency,
            "environments": concurrency + 3,
            "throttles": 0,
            "errors": 7 if i == errors_at else 0,
            "visible": max(0, 500 - 100 * i),
            "in_flight": round(concurrency),
            "oldest_age": 0.1 * (i % 3) + 1 / 3,
            "processed": round(concurrency * 50),
            "dead_lettered": 0,
        })
    return series


def run(name: str | None = None, peak: float = 100.0, **kwargs: Any) -> dict[str, Any]:
    series = ramp(peak, **kwargs)
    result: dict[str, Any] = {
        "scenario": {"name": "ramp", "seed": 7, "duration": 240.0},
        "summary": {
            "total_invocations": sum(b["invocations"] for b in series),
            "total_cold_starts": sum(b["cold_starts"] for b in series),
            "peak_concurrency": max(b["concurrency"] for b in series),
            "messages_processed": sum(b["processed"] for b in series),
            "throughput": sum(b["processed"] for b in series) / 240,
            "duration": 240.0,
        },
        "series": series,
    }
    if name is not None:
        result["name"] = name
    return result


def preset() -> dict[str, Any]:
    return {"variants": [run("batch 1", 100.0), run("batch 5", 1250.0, errors_at=10)]}


def topic_run(name: str | None = None) -> dict[str, Any]:
    """A topic run: the account-wide part (with a key mappings lack) and two mappings."""
    account = run(name, 150.0)
    account["summary"]["messages_published"] = 1000
    for bucket in account["series"]:
        bucket["published"] = 10
    account["mappings"] = [
        {"name": "billing", **{k: v for k, v in run(None, 50.0).items() if k != "scenario"}},
        {"name": "audit", **{k: v for k, v in run(None, 100.0).items() if k != "scenario"}},
    ]
    return account


def render(table: Any) -> str:
    out = io.StringIO()
    Console(file=out, width=160, color_system=None).print(table)
    return out.getvalue()


def plot_area(chart: str) -> tuple[list[str], int]:
    """The bar rows of a text chart and the column where the plot area starts."""
    lines = chart.split("\n")
    start = max(lines[1].find("┤"), lines[1].find("+")) + 1
    return lines[1:-2], start


# ---------------------------------------------------------------------------- shapes


def test_named_runs_accepts_every_shape() -> None:
    assert [n for n, _ in named_runs(run())] == ["ramp"]  # the scenario's name
    assert [n for n, _ in named_runs(preset())] == ["batch 1", "batch 5"]
    assert [n for n, _ in named_runs([{"series": []}, {"series": []}])] == [
        "variant 1", "variant 2"]
    assert [n for n, _ in named_runs({"series": []})] == ["run"]


def test_named_parts_take_topic_runs_apart() -> None:
    assert [n for n, _ in named_parts(topic_run())] == ["account", "billing", "audit"]
    parts = named_parts({"variants": [topic_run("a"), run("plain")]})
    assert [n for n, _ in parts] == ["a/account", "a/billing", "a/audit", "plain"]
    assert parts[1][1]["summary"]["peak_concurrency"] == 50.0
    assert named_parts(preset()) == named_runs(preset())


@pytest.mark.parametrize("bad", [42, "x", {"summary": {}}, {"series": "abc"},
                                 {"variants": [{"series": [1]}]}, {"variants": 3},
                                 {"series": [], "mappings": 3},
                                 {"series": [], "mappings": [{"series": "abc"}]}])
def test_named_runs_rejects_other_shapes(bad: Any) -> None:
    with pytest.raises(InputError):
        named_runs(bad)


# ---------------------------------------------------------------------------- table


def test_table_of_one_run_has_formatted_values() -> None:
    table = summary_table(run())
    assert [c.header for c in table.columns] == ["metric", "ramp"]
    assert table.row_count == 6
    text = render(table)
    assert "Invocations" in text and "Duration" in text
    assert "4m" in text  # duration
    assert "Throughput" in text and "msg/s" in text


def test_table_of_variants_is_side_by_side() -> None:
    data = preset()
    data["variants"][1]["summary"]["max_oldest_age"] = 95.0  # a key only one variant has
    table = summary_table(data)
    assert [c.header for c in table.columns] == ["metric", "batch 1", "batch 5"]
    assert table.row_count == 7
    text = render(table)
    line = next(row for row in text.splitlines() if "Peak concurrency" in row)
    assert "100" in line and "1,250" in line
    invocations = next(row for row in text.splitlines() if "Invocations" in row)
    total = data["variants"][1]["summary"]["total_invocations"]
    assert f"{total:,}" in invocations
    age = next(row for row in text.splitlines() if "Max oldest age" in row)
    assert "-" in age and "1m35s" in age


@pytest.mark.parametrize(
    ("key", "value", "text"),
    [
        ("total_invocations", 1234567, "1,234,567"),
        ("peak_concurrency", 1250.0, "1,250"),
        ("throughput", 742.31, "742.3 msg/s"),
        ("duration", 5400, "1h30m"),
        ("p99_latency", 0.25, "250ms"),
        ("sends_per_s", 12.0, "12 /s"),
        ("ratio", 0.123456, "0.123"),
        ("unbounded", None, "-"),
        ("fifo", True, "yes"),
        ("policy", "aws", "aws"),
        ("nested", {"a": 1}, '{"a":1}'),
    ],
)
def test_format_value(key: str, value: Any, text: str) -> None:
    assert format_value(key, value) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.25, "250ms"), (0.0015, "1.5ms"), (1, "1s"), (12.5, "12.5s"),
     (59.96, "1m"), (240, "4m"), (245, "4m5s"), (3599.7, "1h"), (5400, "1h30m"),
     (90000, "1d1h"), (-30, "-30s")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_print_report_prints_table_and_charts() -> None:
    buffer = io.StringIO()
    print_report(preset(), Console(file=buffer, width=100, color_system=None))
    out = buffer.getvalue()
    assert "batch 1" in out and "batch 5" in out
    assert "concurrency · batch 5" in out and "invocations · batch 1" in out


# ---------------------------------------------------------------------------- text chart


@pytest.mark.parametrize("ascii", [False, True])
@pytest.mark.parametrize(("width", "height"), [(72, 10), (40, 4), (100, 14)])
def test_chart_has_the_requested_size(width: int, height: int, ascii: bool) -> None:
    chart = text_chart(ramp(), "concurrency", width=width, height=height, ascii=ascii)
    lines = chart.split("\n")
    assert len(lines) == height
    assert {len(line) for line in lines} == {width}


def test_chart_shows_the_peak_where_it_happened() -> None:
    series = [{"t": i * 10, "invocations": 10} for i in range(24)]
    series[6]["invocations"] = 100  # one spike at 1m
    chart = text_chart(series, "invocations", width=60, height=8)
    lines = chart.split("\n")
    assert lines[0].startswith("invocations  peak 100 at 1m")
    assert lines[1].startswith("100 ┤")
    rows, start = plot_area(chart)
    plot_w = 60 - start
    full = [c for c, ch in enumerate(rows[0][start:]) if ch == "█"]
    assert full, chart
    assert {c * 24 // plot_w for c in full} == {6}
    # every other column stays low: 10% of 5 rows of 8 steps is half the bottom row
    assert all(ch in " █" for ch in rows[0][start:])
    assert set(rows[-1][start:]) == {"▄", "█"}
    # the time axis runs from 0s to 4m
    assert lines[-1].split()[0] == "0s" and lines[-1].split()[-1] == "4m"
    assert "1m" in lines[-1] and "2m" in lines[-1]


def test_chart_downsamples_by_max() -> None:
    # 600 buckets into ~60 columns: a single-bucket spike must survive
    series = [{"t": i * 10, "concurrency": 1} for i in range(600)]
    series[301]["concurrency"] = 50
    chart = text_chart(series, "concurrency", width=64, height=6)
    rows, start = plot_area(chart)
    assert rows[0][start:].count("█") == 1
    assert "peak 50 at 50m10s" in chart
    assert chart.split("\n")[-1].split()[-1] == "1h40m"


def test_chart_ascii_is_plain_ascii() -> None:
    chart = text_chart(ramp(), "invocations", ascii=True)
    assert chart.isascii()
    assert "#" in chart


def test_chart_of_all_zero_series() -> None:
    series = [{"t": i * 10, "throttles": 0} for i in range(12)]
    chart = text_chart(series, "throttles", width=40, height=6)
    rows, start = plot_area(chart)
    assert all(set(row[start:]) == {" "} for row in rows)
    assert "peak 0" in chart
    assert chart.split("\n")[-1].split()[-1] == "2m"


def test_chart_of_a_single_bucket() -> None:
    chart = text_chart([{"t": 0, "invocations": 42}], "invocations", width=40, height=5)
    rows, start = plot_area(chart)
    assert set(rows[0][start:]) == {"█"}  # the lone bucket fills the width
    assert "peak 42 at 0s" in chart
    labels = chart.split("\n")[-1].split()
    assert labels[0] == "0s" and labels[-1] == "10s"


def test_chart_of_an_empty_series() -> None:
    chart = text_chart([], "invocations", width=40, height=5)
    assert "(no data)" in chart
    assert len(chart.split("\n")) == 5


def test_chart_missing_values_and_errors() -> None:
    series: list[dict[str, Any]] = [{"t": 0, "x": 4}, {"t": 10}, {"t": 20, "x": None}]
    chart = text_chart(series, "x", width=32, height=5)
    rows, start = plot_area(chart)
    plot_w = 32 - start
    assert rows[-1][start:start + plot_w // 3] == "█" * (plot_w // 3)
    assert set(rows[-1][start + plot_w // 3 + 1:]) == {" "}
    with pytest.raises(InputError, match="no metric 'y'"):
        text_chart(series, "y")
    with pytest.raises(ConfigError):
        text_chart(series, "x", height=3)
    with pytest.raises(ConfigError):
        text_chart(series, "x", width=10)


def test_charts_of_variants_are_labelled_and_share_a_scale() -> None:
    out = text_charts(preset(), ("concurrency", "invocations"), width=60, height=6)
    charts = out.split("\n\n")
    assert len(charts) == 4
    assert [c.split("  ")[0] for c in charts] == [
        "concurrency · batch 1", "concurrency · batch 5",
        "invocations · batch 1", "invocations · batch 5"]
    # both concurrency charts are scaled to batch 5's peak
    assert charts[0].split("\n")[1].startswith("1,250 ┤")
    assert charts[1].split("\n")[1].startswith("1,250 ┤")
    assert "peak 100 at 50s" in charts[0]
    single = text_charts(run(), ("concurrency",), ascii=True)
    assert single.startswith("concurrency  peak 100") and single.isascii()


# ---------------------------------------------------------------------------- files


def test_json_round_trips_and_is_byte_identical(tmp_path: Path) -> None:
    data = preset()
    first, second = tmp_path / "a.json", tmp_path / "sub" / "b.json"
    write_json(first, data)
    write_json(second, preset())
    assert first.read_bytes() == second.read_bytes()
    loaded = read_json(first)
    assert [v["name"] for v in loaded["variants"]] == ["batch 1", "batch 5"]
    bucket = loaded["variants"][0]["series"][0]
    assert list(bucket) == list(data["variants"][0]["series"][0])  # order kept
    assert bucket["oldest_age"] == 0.333333  # 6 significant digits
    assert loaded["variants"][1]["summary"]["peak_concurrency"] == 1250.0
    # writing what was read gives the same bytes again
    write_json(second, loaded)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes().endswith(b"}\n")


def test_json_of_a_single_run_and_of_a_list(tmp_path: Path) -> None:
    write_json(tmp_path / "one.json", run())
    assert set(json.loads((tmp_path / "one.json").read_text())) == {
        "scenario", "summary", "series"}
    write_json(tmp_path / "list.json", [run("a"), run("b")])
    assert [v["name"] for v in read_json(tmp_path / "list.json")["variants"]] == ["a", "b"]


def test_json_rejects_what_has_no_json_form(tmp_path: Path) -> None:
    data = run()
    data["scenario"]["handler"] = object()
    with pytest.raises(InputError, match="cannot write"):
        write_json(tmp_path / "x.json", data)
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(InputError):
        read_json(tmp_path / "bad.json")


def test_csv_has_a_variant_column_and_round_trips(tmp_path: Path) -> None:
    data = preset()
    data["variants"][1]["series"][3]["received"] = 99  # an extra key in one bucket only
    path = tmp_path / "out.csv"
    write_csv(path, data)
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert len(rows) == 48
    header = path.read_text().split("\n")[0].split(",")
    assert header[:3] == ["variant", "t", "invocations"]
    assert header[-1] == "received"
    assert {r["variant"] for r in rows} == {"batch 1", "batch 5"}
    assert rows[24 + 3]["received"] == "99" and rows[0]["received"] == ""
    assert float(rows[5]["concurrency"]) == 100.0
    assert rows[1]["oldest_age"] == "0.433333"
    again = tmp_path / "again.csv"
    write_csv(again, preset() | {"variants": data["variants"]})
    assert path.read_bytes() == again.read_bytes()
    assert b"\r" not in path.read_bytes()


def test_table_and_charts_of_a_topic_run_show_each_part() -> None:
    table = summary_table(topic_run())
    assert [c.header for c in table.columns] == ["metric", "account", "billing", "audit"]
    text = render(table)
    published = next(line for line in text.splitlines() if "Messages published" in line)
    assert published.count("1,000") == 1 and published.count("-") >= 2
    charts = text_charts(topic_run(), ["concurrency"], width=60)
    assert [line.split("  ")[0] for line in charts.split("\n\n")] == [
        "concurrency · account", "concurrency · billing", "concurrency · audit"]


def test_csv_of_topic_runs_has_a_mapping_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "topic.csv", topic_run())
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert path.read_text().split("\n")[0].split(",")[:2] == ["mapping", "t"]
    assert [r["mapping"] for r in rows] == ["account"] * 24 + ["billing"] * 24 + ["audit"] * 24
    assert rows[0]["published"] == "10" and rows[24]["published"] == ""
    both = write_csv(tmp_path / "both.csv", {"variants": [topic_run("t"), run("q")]})
    rows = list(csv.DictReader(io.StringIO(both.read_text())))
    assert both.read_text().split("\n")[0].split(",")[:3] == ["variant", "mapping", "t"]
    assert {(r["variant"], r["mapping"]) for r in rows} == {
        ("t", "account"), ("t", "billing"), ("t", "audit"), ("q", "")}


def test_csv_of_a_single_run_has_no_variant_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "one.csv", run())
    header = path.read_text().split("\n")[0].split(",")
    assert header[0] == "t" and "variant" not in header
    assert len(path.read_text().strip().split("\n")) == 25


# ---------------------------------------------------------------------------- plot


def test_importing_the_report_does_not_import_matplotlib() -> None:
    code = ("import sys, sluicegate.sim.report, sluicegate.sim.plot; "
            "sys.exit('matplotlib' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_plot_writes_cloudwatch_panels(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from sluicegate.sim.plot import figure, plot

    path = plot(preset(), tmp_path / "charts" / "ramp.png", title="ramp-up")
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000

    fig = figure(preset())  # batch 5 has errors: a sixth panel
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert titles == ["Invocations", "Concurrency", "Queue depth (visible + in flight)",
                      "Age of oldest message", "Cold starts", "Throttles and errors"]
    assert all(ax.get_xlim()[1] == pytest.approx(4.0) for ax in fig.axes)  # minutes
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["batch 1", "batch 5"]
    # same colour per variant in every panel
    colours = {ax.get_title(loc="left"): [line.get_color() for line in ax.get_lines()]
               for ax in fig.axes}
    assert colours["Invocations"] == colours["Cold starts"]

    quiet = figure(run())  # no throttles, no errors: five panels, no variant legend
    assert len(quiet.axes) == 5
    assert not quiet.legends


def test_plot_of_a_topic_run_overlays_the_account_and_each_mapping() -> None:
    pytest.importorskip("matplotlib")
    from sluicegate.sim.plot import figure

    data = topic_run()
    for bucket in data["series"]:
        bucket["unreserved_concurrency"] = 0.8 * bucket["concurrency"]
    fig = figure(data)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["account", "billing",
                                                                  "audit"]
    concurrency = next(ax for ax in fig.axes if ax.get_title(loc="left") == "Concurrency")
    # concurrency and environments of all three, the account's unreserved concurrency
    assert len(concurrency.get_lines()) == 7
    assert [line.get_linestyle() for line in concurrency.get_lines()].count("-.") == 1


def test_plot_without_matplotlib_says_how_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sluicegate.sim.plot import plot

    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(InputError, match=r"pip install 'sluicegate\[plot\]'"):
        plot(run(), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
