"""What a simulation shows: a summary table, text charts, and JSON/CSV files.

Everything here reads the simulator's result format and nothing else:

- a single run is ``{"scenario": {...}, "summary": {...}, "series": [...]}``;
- a preset with several variants is ``{"variants": [{"name": ..., "scenario": ...,
  "summary": ..., "series": ...}, ...]}``;
- a topic run (several mappings) adds ``"mappings": [{"name": ..., "summary": ...,
  "series": ...}, ...]`` to a run: its own ``summary`` and ``series`` are account-wide;
  a run whose functions are also invoked synchronously adds ``"requests"``, one such
  entry per function.

``series`` holds one dict per bucket of simulated time (10 seconds by default, like
CloudWatch's charts), each with ``t`` (the bucket's start, seconds) and the bucket's
metrics (``invocations``, ``concurrency``, ``environments``, ``visible``, ...). Keys this
module does not know are carried through to the files and shown in the table with a
generic format: the engine may add metrics without touching the report.

Functions that take ``runs`` accept a single run, a preset result, or a plain sequence of
runs (each optionally with a ``name``). :func:`named_runs` is the one place that decides
what a run is called: its ``name``, else its scenario's ``name``, else ``variant N``
(``run`` for a lone run). The table, the charts and the plot show a topic run as its
parts (:func:`named_parts`): the account (``account``) and each mapping (by name), as
columns, charts and lines of their own; the CSV file gets a ``mapping`` column.

Determinism: :func:`write_json` and :func:`write_csv` round every float to
:data:`SIGNIFICANT_DIGITS` significant digits and keep the insertion order of the input,
so two runs with the same seed give byte-identical files.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from enum import Enum
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from sluicegate.errors import ConfigError, InputError
from sluicegate.tables import print_table

__all__ = [
    "DEFAULT_BUCKET_SECONDS",
    "SIGNIFICANT_DIGITS",
    "bucket_seconds",
    "format_duration",
    "format_value",
    "named_parts",
    "named_runs",
    "normalize",
    "print_report",
    "read_json",
    "summary_table",
    "text_chart",
    "text_charts",
    "write_csv",
    "write_json",
]

DEFAULT_BUCKET_SECONDS = 10.0
"""Bucket width assumed when a series has fewer than two buckets to measure it from."""

SIGNIFICANT_DIGITS = 6
"""Floats written to JSON and CSV are rounded to this many significant digits."""

# Summary keys the report knows: label and kind of value. Unknown keys get a label
# derived from the key and a kind guessed from its suffix (see _summary_kind).
_SUMMARY_LABELS: dict[str, tuple[str, str]] = {
    "total_invocations": ("Invocations", "count"),
    "total_cold_starts": ("Cold starts", "count"),
    "peak_concurrency": ("Peak concurrency", "count"),
    "peak_environments": ("Peak environments", "count"),
    "messages_processed": ("Messages processed", "count"),
    "throughput": ("Throughput", "msg/s"),
    "duration": ("Duration", "duration"),
}

_DURATION_SUFFIXES = ("_age", "duration", "_latency", "_seconds", "_time")
_RATE_SUFFIXES = ("_per_s", "_per_second", "_per_sec")

# Block characters for the text charts, from empty to full. Unicode has eight steps per
# character cell; plain ASCII gets three.
_UNICODE_BLOCKS = " ▁▂▃▄▅▆▇█"
_ASCII_BLOCKS = " .:#"

# Candidate spacings of time-axis labels, seconds: the smallest one that keeps the
# labels apart is used.
_TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800,
               21600, 43200, 86400, 172800, 604800)


# --------------------------------------------------------------------------------------
# Input shapes


def named_runs(runs: Any) -> list[tuple[str, Mapping[str, Any]]]:
    """The runs in ``runs``, each with the name to show it under.

    Parameters:
        runs: a single run (a mapping with ``series``), a preset result (a mapping with
            ``variants``), or a sequence of runs.

    Returns:
        ``(name, run)`` pairs in input order.

    Raises:
        InputError: ``runs`` is none of the accepted shapes, or a run has no ``series``
            list.
    """
    if isinstance(runs, Mapping) and "variants" in runs:
        variants = runs["variants"]
        if isinstance(variants, (str, bytes)) or not isinstance(variants, Sequence):
            raise InputError("'variants' must be a list of runs")
        return [(_run_name(run, i, lone=False), _check_run(run)) for i, run in
                enumerate(variants)]
    if isinstance(runs, Mapping):
        return [(_run_name(runs, 0, lone=True), _check_run(runs))]
    if isinstance(runs, Sequence) and not isinstance(runs, (str, bytes)):
        return [(_run_name(run, i, lone=False), _check_run(run)) for i, run in enumerate(runs)]
    raise InputError(
        f"expected a simulation result (with 'series') or a preset result (with 'variants'), "
        f"got {type(runs).__name__}"
    )


def _check_run(run: Any) -> Mapping[str, Any]:
    if not isinstance(run, Mapping):
        raise InputError(f"a run must be a mapping, got {type(run).__name__}")
    series = run.get("series")
    if isinstance(series, (str, bytes)) or not isinstance(series, Sequence):
        raise InputError("a run needs a 'series' list (one dict per bucket)")
    for bucket in series:
        if not isinstance(bucket, Mapping):
            raise InputError(f"each bucket of 'series' must be a mapping, got "
                             f"{type(bucket).__name__}")
    summary = run.get("summary", {})
    if summary is not None and not isinstance(summary, Mapping):
        raise InputError("a run's 'summary' must be a mapping")
    for key in ("mappings", "requests"):
        parts = run.get(key)
        if parts is not None:
            if isinstance(parts, (str, bytes)) or not isinstance(parts, Sequence):
                raise InputError(f"a run's {key!r} must be a list of runs")
            for part in parts:
                _check_run(part)
    return run


ACCOUNT_PART = "account"
"""What :func:`named_parts` calls a topic run's account-wide part."""


def named_parts(runs: Any) -> list[tuple[str, Mapping[str, Any]]]:
    """The runs in ``runs`` as :func:`named_runs` names them, with each topic run (one
    with ``mappings``) taken apart: its account-wide part, named ``account``, then each
    mapping, named after it; ``name/part`` when there are several runs.

    Raises:
        InputError: as :func:`named_runs`.
    """
    named = named_runs(runs)
    return [(part if len(named) == 1 else f"{name}/{part}", sub) if part else (name, sub)
            for name, run in named for part, sub in _parts(run)]


def _parts(run: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """``[("", run)]`` for a run without mappings; a topic run's account-wide part,
    named ``account``, then each mapping, named after it, then each function's requests
    (``requests:NAME``)."""
    mappings = run.get("mappings")
    if mappings is None:
        return [("", run)]
    return [(ACCOUNT_PART, run)] + [
        (str(m.get("name", f"mapping {i + 1}")), m) for i, m in enumerate(mappings)] + [
        (str(r.get("name", f"requests {i + 1}")), r)
        for i, r in enumerate(run.get("requests") or ())]


def _run_name(run: Any, index: int, *, lone: bool) -> str:
    if isinstance(run, Mapping):
        name = run.get("name")
        if name is None and isinstance(run.get("scenario"), Mapping):
            name = run["scenario"].get("name")
        if name is not None:
            return str(name)
    return "run" if lone else f"variant {index + 1}"


def _is_variants(data: Any) -> bool:
    """Whether ``data`` holds several runs (a preset result or a list) rather than one."""
    if isinstance(data, Mapping):
        return "variants" in data
    return isinstance(data, Sequence) and not isinstance(data, (str, bytes))


def bucket_seconds(series: Sequence[Mapping[str, Any]]) -> float:
    """The width of a series' buckets, seconds.

    Parameters:
        series: the buckets, oldest first.

    Returns:
        The gap between the first two bucket starts, or :data:`DEFAULT_BUCKET_SECONDS`
        when there are fewer than two buckets or the gap is not positive.
    """
    if len(series) >= 2:
        first, second = _number(series[0].get("t")), _number(series[1].get("t"))
        if first is not None and second is not None and second > first:
            return second - first
    return DEFAULT_BUCKET_SECONDS


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or None for missing, non-numeric or non-finite."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _times(series: Sequence[Mapping[str, Any]]) -> list[float]:
    """Bucket start times; a bucket without a usable ``t`` is placed one bucket later."""
    step = bucket_seconds(series)
    times: list[float] = []
    for i, bucket in enumerate(series):
        t = _number(bucket.get("t"))
        times.append(t if t is not None else (times[-1] + step if times else i * step))
    return times


# --------------------------------------------------------------------------------------
# Formatting


def format_duration(seconds: float) -> str:
    """A duration the way a chart axis shows it: ``250ms``, ``12.5s``, ``4m``, ``1h30m``.

    Below a second, milliseconds (3 significant digits); below a minute, seconds (one
    decimal when not whole); below an hour, minutes and whole seconds; below a day, hours
    and minutes; beyond, days and hours. Zero parts are left out (``4m``, not ``4m0s``).

    Parameters:
        seconds: the duration, seconds; may be negative.

    Returns:
        The compact text; ``inf``/``-inf``/``nan`` for non-finite input.
    """
    if not math.isfinite(seconds):
        return str(seconds)
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if seconds == 0:
        return "0s"
    if seconds < 0.9995:
        return f"{seconds * 1000:.3g}ms"
    if round(seconds, 1) < 60:
        return f"{round(seconds, 1):g}s"
    whole = round(seconds)
    if whole < 3600:
        minutes, secs = divmod(whole, 60)
        return f"{minutes}m{secs}s" if secs else f"{minutes}m"
    hours, minutes = divmod(round(seconds / 60), 60)
    if hours < 24:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(round(seconds / 3600), 24)
    return f"{days}d{hours}h" if hours else f"{days}d"


def _format_number(value: float) -> str:
    """A number for a table cell: thousands separators, at most ~4 significant digits
    after the point."""
    if isinstance(value, int):
        return f"{value:,}"
    if value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 10_000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:,.1f}"
    return f"{value:.3g}"


def _compact(value: float) -> str:
    """A number for a chart label: ``0``, ``750``, ``1,250``, ``0.35``, ``120k``, ``1.5M``."""
    if abs(value) >= 1e6:
        return f"{value / 1e6:.3g}M"
    if abs(value) >= 1e5:
        return f"{value / 1e3:.0f}k"
    if abs(value) >= 100 or float(value).is_integer():
        return f"{round(value):,}"
    return f"{value:.3g}"


def _summary_kind(key: str) -> str:
    if key in _SUMMARY_LABELS:
        return _SUMMARY_LABELS[key][1]
    if key.endswith(_DURATION_SUFFIXES):
        return "duration"
    if key.endswith(_RATE_SUFFIXES):
        return "/s"
    return "count"


def _summary_label(key: str) -> str:
    if key in _SUMMARY_LABELS:
        return _SUMMARY_LABELS[key][0]
    text = key.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def format_value(key: str, value: Any) -> str:
    """One summary value as the table shows it, with its unit.

    Known keys: counts (``total_invocations``, ``peak_concurrency``, ...) with thousands
    separators, ``throughput`` in msg/s, ``duration`` as :func:`format_duration`. Unknown
    keys ending in ``_age``, ``duration``, ``_latency``, ``_seconds`` or ``_time`` are
    durations; ending in ``_per_s``/``_per_second`` are rates; other numbers are plain.

    Parameters:
        key: the summary key.
        value: its value (number, bool, string, None, or a nested structure).

    Returns:
        The cell text; ``-`` for None or a non-finite number.
    """
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Real):
        number = int(value) if isinstance(value, numbers.Integral) else float(value)
        if not math.isfinite(number):
            return "-"
        kind = _summary_kind(key)
        if kind == "duration":
            return format_duration(number)
        text = _format_number(number)
        return f"{text} {kind}" if kind in ("msg/s", "/s") else text
    if isinstance(value, str):
        return value
    text = json.dumps(_plain(value), separators=(",", ":"), ensure_ascii=False)
    return text if len(text) <= 40 else text[:39] + "…"


# --------------------------------------------------------------------------------------
# Summary table


def summary_table(runs: Any, *, title: str | None = None) -> Table:
    """The summary of one run, or of several variants side by side.

    Rows are the summary keys (the union over all runs, in order of first appearance),
    labelled and formatted with units (:func:`format_value`); there is one column per
    run, headed with its name (per part of a topic run: :func:`named_parts`). A run
    without a key shows ``-``.

    Parameters:
        runs: a single run, a preset result, or a sequence of runs (see :func:`named_runs`).
        title: the table's title; by default the preset's or the lone scenario's name,
            else ``Simulation summary``.

    Returns:
        A rich table, ready for ``console.print``.

    Raises:
        InputError: ``runs`` is not a result shape.
    """
    named = named_parts(runs)
    table = Table(title=title or _default_title(runs), title_justify="left")
    table.add_column("metric", style="bold", no_wrap=True)
    for name, _ in named:
        table.add_column(name, justify="right", no_wrap=True)
    keys: dict[str, None] = {}
    for _, run in named:
        keys.update(dict.fromkeys(run.get("summary") or {}))
    for key in keys:
        cells = [
            format_value(key, (run.get("summary") or {}).get(key)) for _, run in named
        ]
        table.add_row(_summary_label(key), *cells)
    return table


def _summary_by_run(runs: Any, title: str | None = None) -> Table:
    """:func:`summary_table` transposed, one row per run (or part of a topic run): what
    a terminal too narrow for the side-by-side table shows, one record per run."""
    named = named_parts(runs)
    keys: dict[str, None] = {}
    for _, run in named:
        keys.update(dict.fromkeys(run.get("summary") or {}))
    table = Table("run", *(_summary_label(k) for k in keys),
                  title=title or _default_title(runs))
    for name, run in named:
        summary = run.get("summary") or {}
        table.add_row(name, *(format_value(k, summary.get(k)) for k in keys))
    return table


def _default_title(runs: Any) -> str:
    if isinstance(runs, Mapping):
        for key in ("name", "preset"):
            if isinstance(runs.get(key), str):
                return str(runs[key])
        scenario = runs.get("scenario")
        if isinstance(scenario, Mapping) and isinstance(scenario.get("name"), str):
            return str(scenario["name"])
    return "Simulation summary"


def print_report(
    runs: Any,
    console: Console | None = None,
    *,
    charts: Sequence[str] = ("concurrency", "invocations"),
    width: int | None = None,
    ascii: bool | None = None,
    title: str | None = None,
) -> None:
    """Print the summary table (through :func:`sluicegate.tables.print_table`: a name is
    never cut; on a narrow terminal, one record per run), then text charts of ``charts``
    over time.

    Parameters:
        runs: a single run, a preset result, or a sequence of runs.
        console: where to print; a new stdout console by default.
        charts: series keys to chart, one chart per key and run; empty for the table only.
        width: the charts' width, characters; by default the console's width, at most 100.
        ascii: plain-ASCII charts; by default when the console's encoding is not UTF.
        title: the table's title (:func:`summary_table`).

    Raises:
        InputError: ``runs`` is not a result shape, or a charted key is in no bucket of
            a run's series.
    """
    console = console or Console()
    print_table(summary_table(runs, title=title), console,
                records=_summary_by_run(runs, title))
    if not charts:
        return
    if ascii is None:
        ascii = not console.encoding.lower().replace("-", "").startswith("utf")
    chart_width = width or max(40, min(console.width, 100))
    console.print()
    console.print(text_charts(runs, charts, width=chart_width, ascii=ascii),
                  markup=False, highlight=False, emoji=False, soft_wrap=True)


# --------------------------------------------------------------------------------------
# Text charts


def text_chart(
    series: Sequence[Mapping[str, Any]],
    key: str,
    *,
    width: int = 72,
    height: int = 10,
    ascii: bool = False,
    label: str | None = None,
    ymax: float | None = None,
) -> str:
    """A compact bar chart of one metric over time, for a terminal.

    The block is exactly ``height`` lines of exactly ``width`` characters (but for a
    header longer than the width, which is never cut: it names the run)::

        concurrency  peak 150 at 1m      <- header: the key (or label), the peak and when
        150 ┤      ▅█▇▆▆▆▆               <- y-axis: the top value ...
            │   ▂▆████████               <- ``height - 3`` rows of bars
          0 ┼─────────┬─────────         <- ... and zero; a tick under each time label
            0s        1m      2m30s      <- time axis, in simulated time

    Each column covers an equal share of the time span; when there are more buckets than
    columns, a column shows the largest value among its buckets (peaks stay visible), and
    when there are fewer, a bucket spans several columns. Any non-zero value shows at
    least the smallest block. Missing values (a bucket without ``key``, None, NaN) are
    blank.

    Parameters:
        series: the buckets, oldest first, each with ``t`` (start, seconds) and ``key``.
        key: the metric to chart.
        width: characters per line, axis labels included; at least 20.
        height: lines, header and time axis included; at least 4.
        ascii: draw with plain ASCII (``.:#``, ``|``, ``+``, ``-``) instead of Unicode
            block and box-drawing characters.
        label: the header's name for the metric; ``key`` by default.
        ymax: the value at the top of the chart (to share a scale between charts); the
            series' peak by default. Larger values are clipped.

    Returns:
        The chart, lines joined with ``\\n``, no trailing newline.

    Raises:
        ConfigError: ``width`` or ``height`` too small.
        InputError: ``key`` is in no bucket of a non-empty series.
    """
    if height < 4:
        raise ConfigError("height", height, "at least 4 lines")
    if width < 20:
        raise ConfigError("width", width, "at least 20 characters")
    if series and not any(key in bucket for bucket in series):
        known = ", ".join(dict.fromkeys(k for bucket in series for k in bucket))
        raise InputError(f"no metric {key!r} in the series; it has: {known}")

    values = [_number(bucket.get(key)) for bucket in series]
    times = _times(series)
    t_start = times[0] if times else 0.0
    t_end = times[-1] + bucket_seconds(series) if times else 0.0
    present = [v for v in values if v is not None]
    peak = max(present, default=0.0)
    top = peak if ymax is None else ymax

    blocks = _ASCII_BLOCKS if ascii else _UNICODE_BLOCKS
    vbar, corner, top_tick, rule, tick = ("|", "+", "+", "-", "+") if ascii else (
        "│", "┼", "┤", "─", "┬")
    top_label = _compact(top)
    gutter = max(len(top_label), 1)
    plot_w = width - gutter - 2
    rows = height - 3
    levels = len(blocks) - 1

    # Header: the metric, its peak and when it happened.
    name = label or key
    if not series:
        header = f"{name}  (no data)"
    elif present:
        at = times[values.index(peak)]
        header = f"{name}  peak {_compact(peak)} at {format_duration(at)}"
    else:
        header = f"{name}  (no values)"

    # Columns: each covers an equal share of the buckets.
    n = len(values)
    units: list[int] = []
    for c in range(plot_w):
        if n == 0:
            units.append(0)
            continue
        lo = c * n // plot_w
        hi = max(lo + 1, (c + 1) * n // plot_w)
        column = [v for v in values[lo:hi] if v is not None]
        v = max(column, default=0.0)
        if v <= 0 or top <= 0:
            units.append(0)
        else:
            units.append(max(1, round(min(v, top) / top * rows * levels)))

    lines = [header]
    for r in range(rows - 1, -1, -1):
        prefix = top_label.rjust(gutter) + " " + top_tick if r == rows - 1 else (
            " " * gutter + " " + vbar)
        cells = "".join(blocks[min(max(u - r * levels, 0), levels)] for u in units)
        lines.append(prefix + cells)

    # Time axis: start and end labels, and evenly spaced labels between them.
    axis = [rule] * plot_w
    labels = [" "] * plot_w
    _place(labels, 0, format_duration(t_start))
    span = t_end - t_start
    if span > 0:
        end_text = format_duration(t_end)
        _place(labels, plot_w - len(end_text), end_text)
        step = next((s for s in _TICK_STEPS if span / s <= max(1, plot_w // 10)),
                    _TICK_STEPS[-1])
        k = math.floor(t_start / step) + 1
        while k * step < t_end:
            col = int((k * step - t_start) / span * plot_w)
            text = format_duration(k * step)
            if _place(labels, col - len(text) // 2, text, gap=1):
                axis[col] = tick
            k += 1
    lines.append("0".rjust(gutter) + " " + corner + "".join(axis))
    lines.append(" " * (gutter + 2) + "".join(labels))
    # the header names a metric and a run: padded to the width, never cut
    return "\n".join([lines[0].ljust(width)] + [_fit(line, width) for line in lines[1:]])


def _place(buffer: list[str], start: int, text: str, *, gap: int = 0) -> bool:
    """Write ``text`` into ``buffer`` at ``start`` if it fits without touching (within
    ``gap`` cells) anything already written; whether it was written."""
    end = start + len(text)
    if start < 0 or end > len(buffer):
        return False
    if any(c != " " for c in buffer[max(0, start - gap):min(len(buffer), end + gap)]):
        return False
    buffer[start:end] = list(text)
    return True


def _fit(line: str, width: int) -> str:
    return line[:width].ljust(width)


def text_charts(
    runs: Any,
    keys: Sequence[str] = ("concurrency", "invocations"),
    *,
    width: int = 72,
    height: int = 8,
    ascii: bool = False,
) -> str:
    """Small text charts of several metrics for one or more runs.

    For each key, one chart per run, labelled ``key - name`` when there are several runs.
    The runs' charts of one key share their y scale (the largest peak), so that their bars
    compare; each header still gives the run's own peak.

    Parameters:
        runs: a single run, a preset result, or a sequence of runs; a topic run's parts
            (:func:`named_parts`) are charted as runs of their own.
        keys: the series keys to chart, in order.
        width: characters per line.
        height: lines per chart.
        ascii: plain-ASCII charts.

    Returns:
        The charts, separated by blank lines.

    Raises:
        InputError: ``runs`` is not a result shape, or a key is in no bucket of a run.
        ConfigError: ``width`` or ``height`` too small.
    """
    named = named_parts(runs)
    dash = "-" if ascii else "·"
    charts: list[str] = []
    for key in keys:
        peaks = [_number(b.get(key)) for _, run in named for b in run["series"]]
        shared = max((p for p in peaks if p is not None), default=0.0)
        for name, run in named:
            label = key if len(named) == 1 else f"{key} {dash} {name}"
            charts.append(text_chart(run["series"], key, width=width, height=height,
                                     ascii=ascii, label=label, ymax=shared))
    return "\n\n".join(charts)


# --------------------------------------------------------------------------------------
# Files


def _round(value: float) -> float | None:
    if not math.isfinite(value):
        return None
    if value == 0:
        return 0.0
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def _plain(value: Any) -> Any:
    """``value`` as plain JSON data: floats rounded, insertion order kept."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return _round(value)
    if isinstance(value, numbers.Integral):  # numpy and other integer types
        return int(value)
    if isinstance(value, numbers.Real):
        return _round(float(value))
    if isinstance(value, Enum):
        return _plain(value.value)
    if isinstance(value, timedelta):
        return _round(value.total_seconds())
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    raise InputError(f"cannot write a {type(value).__name__} to JSON: {value!r}")


def normalize(result_or_variants: Any) -> Any:
    """The plain, rounded data :func:`write_json` writes.

    Floats are rounded to :data:`SIGNIFICANT_DIGITS` significant digits (NaN and
    infinities become None), tuples become lists, enums their values, timedeltas seconds,
    dataclasses dicts; mapping order is kept. A plain sequence of runs becomes
    ``{"variants": [...]}``.

    Parameters:
        result_or_variants: a single run, a preset result, or a sequence of runs.

    Returns:
        A structure of dicts, lists, strings, numbers, bools and None.

    Raises:
        InputError: the input is not a result shape, or holds a value with no JSON form.
    """
    named_runs(result_or_variants)  # validates the shape
    if isinstance(result_or_variants, Mapping):
        return _plain(result_or_variants)
    return {"variants": _plain(list(result_or_variants))}


def write_json(path: str | Path, result_or_variants: Any) -> Path:
    """Write a result as JSON, deterministically.

    The file is UTF-8, indented by 2, ``\\n`` line endings, with a final newline; data is
    :func:`normalize`'s. Two results that are equal after rounding give the same bytes.
    Missing parent directories are created.

    Parameters:
        path: the file to write (replaced if it exists).
        result_or_variants: a single run, a preset result, or a sequence of runs.

    Returns:
        The path written.

    Raises:
        InputError: the input is not a result shape, or holds a value with no JSON form.
        OSError: the file cannot be written.
    """
    text = json.dumps(normalize(result_or_variants), indent=2, ensure_ascii=False,
                      allow_nan=False)
    return _write(path, text + "\n")


def read_json(path: str | Path) -> Any:
    """Read a result written by :func:`write_json` (or by the engine).

    Parameters:
        path: the file.

    Returns:
        The result: a single run or a preset result (``{"variants": [...]}``).

    Raises:
        InputError: the file is not JSON, or not a result shape.
        OSError: the file cannot be read.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object with 'series' or 'variants'")
    named_runs(data)
    return data


def write_csv(path: str | Path, result_or_variants: Any) -> Path:
    """Write a result's series as CSV: one row per bucket.

    Columns: ``variant`` first when the input holds several runs (a preset result or a
    sequence), then ``mapping`` when a run is a topic run (``account`` for its
    account-wide rows, else the mapping's name; empty for a run without mappings), then
    ``t``, then every other series key in order of first appearance over all runs and
    buckets. A bucket without a key leaves its cell empty. Floats are
    rounded as in :func:`write_json`; bools are ``true``/``false``; nested values are
    compact JSON. ``\\n`` line endings, UTF-8; missing parent directories are created.

    Parameters:
        path: the file to write (replaced if it exists).
        result_or_variants: a single run, a preset result, or a sequence of runs.

    Returns:
        The path written.

    Raises:
        InputError: the input is not a result shape, or holds a value with no JSON form.
        OSError: the file cannot be written.
    """
    named = named_runs(result_or_variants)
    with_variant = _is_variants(result_or_variants)
    with_mapping = any(run.get("mappings") is not None for _, run in named)
    rows = [(name, part, sub) for name, run in named for part, sub in _parts(run)]
    columns = list(dict.fromkeys(["t", *_series_keys((n, r) for n, _, r in rows)]))
    header = ((["variant"] if with_variant else []) + (["mapping"] if with_mapping else [])
              + list(columns))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for name, part, run in rows:
        for bucket in run["series"]:
            row = [_csv_cell(bucket.get(k)) for k in columns]
            writer.writerow(([name] if with_variant else []) + ([part] if with_mapping else [])
                             + row)
    return _write(path, out.getvalue())


def _csv_cell(value: Any) -> str:
    plain = _plain(value)
    if plain is None:
        return ""
    if isinstance(plain, bool):
        return "true" if plain else "false"
    if isinstance(plain, (int, float, str)):
        return str(plain)
    return json.dumps(plain, separators=(",", ":"), ensure_ascii=False)


def _write(path: str | Path, text: str) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(text.encode("utf-8"))
    return target


def _series_keys(named: Iterable[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """Series keys over all runs, in order of first appearance."""
    keys: dict[str, None] = {}
    for _, run in named:
        for bucket in run["series"]:
            keys.update(dict.fromkeys(str(k) for k in bucket))
    return list(keys)
