"""CloudWatch-like charts of a simulation, as a PNG, SVG or PDF.

One figure, a grid of titled panels over simulated time (x in minutes), one point per
bucket (10 seconds by default), the way the Lambda and SQS consoles draw their metrics:

========================  ===============================================================
Invocations               invocations per bucket
Concurrency               ``concurrency`` (max concurrent executions in the bucket, solid),
                          ``environments`` (live execution environments, what AWS reports
                          as concurrency, dashed), ``limit`` (dotted) and a topic run's
                          account-wide ``unreserved_concurrency`` (dash-dotted) when present
Queue depth               ``visible + in_flight`` messages
Age of oldest message     ``oldest_age``, seconds
Cold starts               cold starts per bucket
Throttles and errors      throttles (solid) and errors (dashed) per bucket; only when one
                          of them is non-zero somewhere
Records behind            stream runs: ``checkpoint_lag`` (all shards, solid) and
                          ``max_shard_lag`` (the shard furthest behind, dashed)
Iterator age              stream runs: ``iterator_age_ms`` (the bucket's largest), seconds
========================  ===============================================================

A panel none of whose metrics is in any run is left out (stream runs have no queue
depth; queue runs no iterator age).

Variants are overlaid: each keeps one colour in every panel, no two the same
(:func:`colours`), and a legend right of the panels names them; the title above says what
was simulated (:func:`describe`). Line styles tell apart the metrics of one panel. A topic run is drawn
as its parts (:func:`~sluicegate.sim.report.named_parts`): the account and each mapping,
overlaid in colours of their own like variants, so a slow subscriber's queue depth or a
throttled one's throttles stand out against the others'.

matplotlib is an optional dependency (the ``plot`` extra) and is imported only when a
figure is drawn, so importing this module costs nothing. The figure is drawn on an Agg
canvas without pyplot: no window, no change to matplotlib's global backend.
"""

from __future__ import annotations

import colorsys
import math
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sluicegate.errors import InputError
from sluicegate.sim.report import (
    _default_title,
    _number,
    _times,
    bucket_seconds,
    format_duration,
    named_parts,
    named_runs,
)
from sluicegate.wording import plural

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["FORMATS", "PALETTE", "colours", "describe", "figure", "plot", "plot_format"]

PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)
"""Colours of the variants, in order; :func:`colours` adds more beyond ten."""

_LIGHT = (
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
    "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)
"""The palette's hues, lighter: the 11th to 20th colours."""

FORMATS = ("png", "svg", "pdf")
"""File formats :func:`plot` writes, chosen by the file's extension."""

_METADATA: dict[str, dict[str, Any]] = {
    "png": {"Software": None},
    "svg": {"Date": None},
    "pdf": {"CreationDate": None},
}
"""What each format leaves out of its metadata, so that one result gives one file."""

_TITLE_CHARACTERS = 110
"""Where a long title wraps: about the figure's width at the title's font size."""

_INSTALL_HINT = "plotting needs matplotlib: pip install 'sluicegate[plot]'"

Getter = Callable[[Mapping[str, Any]], float | None]
Style = Literal["-", "--", ":", "-."]


def colours(n: int) -> list[str]:
    """``n`` colours, all different: :data:`PALETTE`, then its hues lighter, then hues
    spread evenly around the colour wheel (for more than twenty runs)."""
    base = list(PALETTE + _LIGHT)
    if n <= len(base):
        return base[:n]
    extra = n - len(base)
    spread = []
    for i in range(extra):
        r, g, b = colorsys.hsv_to_rgb((i / extra + 0.05) % 1.0, 0.75, 0.55 + 0.3 * (i % 2))
        spread.append(f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}")
    return base + spread


def plot_format(path: str | Path) -> str:
    """The format the plot at ``path`` is written in: its extension (``png``, ``svg``,
    ``pdf``, in any case).

    Raises:
        InputError: another extension, or none.
    """
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        given = f"'.{suffix}' is not a plot format" if suffix else "no extension"
        raise InputError(f"--plot {str(path)!r}: {given}; use .png, .svg or .pdf")
    return suffix


def _seconds(value: Any) -> str:
    number = _number(value)
    return "-" if number is None else format_duration(number)


def _function_duration(function: Mapping[str, Any]) -> str:
    duration = function.get("duration")
    if isinstance(duration, Mapping):
        median = duration.get("median", duration.get("mean"))
        if median is not None:
            text = f"{_seconds(median)}"
            if duration.get("p99") is not None:
                text += f" (p99 {_seconds(duration['p99'])})"
            return text
        return str(duration.get("distribution", "modelled"))
    return _seconds(duration)


def _rate(producers: Any, unit: str) -> str | None:
    if not isinstance(producers, Sequence):
        return None
    rates = [_number(p.get("rate")) for p in producers if isinstance(p, Mapping)]
    total = sum(r for r in rates if r is not None)
    return f"{total:,.0f} {unit}" if total else None


def _mapping_parameters(mapping: Mapping[str, Any], function: Mapping[str, Any]
                        ) -> list[str]:
    parts = [f"batch {mapping.get('batch_size', '-')}"]
    if mapping.get("parallelization_factor") is not None:
        parts.append(f"parallelization {mapping['parallelization_factor']}")
    if mapping.get("maximum_concurrency") is not None:
        parts.append(f"maximum concurrency {mapping['maximum_concurrency']}")
    if function.get("reserved_concurrency") is not None:
        parts.append(f"reserved {function['reserved_concurrency']}")
    if mapping.get("scaling"):
        parts.append(f"{mapping['scaling']} scaling")
    parts.append(f"function {_function_duration(function)}")
    return parts


def _parameters(scenario: Mapping[str, Any]) -> str:
    """A scenario's main parameters in one line: load, mapping, function, duration."""
    parts: list[str] = []
    if isinstance(scenario.get("topic"), Mapping):
        subscribers = [s for s in scenario.get("subscribers") or [] if isinstance(s, Mapping)]
        names = ", ".join(str(s.get("name")) for s in subscribers)
        parts.append(f"topic {scenario['topic'].get('name')} to {names}")
        parts.append(_rate(scenario.get("producers"), "msg/s") or "no producer")
        account = scenario.get("account")
        if isinstance(account, Mapping) and account.get("concurrency_limit") is not None:
            parts.append(f"account concurrency {account['concurrency_limit']}")
    else:
        stream = scenario.get("stream")
        if isinstance(stream, Mapping):
            parts.append(f"stream of {plural(int(stream.get('shard_count') or 0), 'shard')}")
            parts.append(_rate(scenario.get("producers"), "records/s") or "no producer")
        else:
            parts.append(_rate(scenario.get("producers"), "msg/s") or "no producer")
            queue = scenario.get("queue")
            if isinstance(queue, Mapping) and (_number(queue.get("backlog")) or 0) > 0:
                parts.append(f"backlog {queue['backlog']:,}")
        mapping, function = scenario.get("mapping"), scenario.get("function")
        if isinstance(mapping, Mapping) and isinstance(function, Mapping):
            parts.extend(_mapping_parameters(mapping, function))
    if _number(scenario.get("duration")) is not None:
        parts.append(f"{_seconds(scenario['duration'])} simulated")
    if scenario.get("seed") is not None:
        parts.append(f"seed {scenario['seed']}")
    return ", ".join(parts)


def describe(runs: Any, title: str | None = None) -> str:
    """The figure's title: a name, then the scenario's main parameters (a preset's
    variants: their shared description), wrapped to the figure's width.

    Parameters:
        runs: what :func:`figure` draws.
        title: the name to show first; by default the preset's or the scenario's name.

    Raises:
        InputError: ``runs`` is not a result shape.
    """
    named = named_runs(runs)
    scenarios: list[Mapping[str, Any]] = [
        run["scenario"] for _, run in named if isinstance(run.get("scenario"), Mapping)]
    name = title or _default_title(runs)
    if name == "Simulation summary" and scenarios:
        first = str(scenarios[0].get("name") or "")
        name = first.split("/", 1)[0] or name
    if len(named) == 1 and scenarios:
        detail = _parameters(scenarios[0])
        description = str(scenarios[0].get("description") or "")
        if description:
            detail = f"{description}; {detail}"
    else:
        descriptions = {str(s.get("description") or "") for s in scenarios}
        detail = descriptions.pop() if len(descriptions) == 1 else ""
        if not detail:
            detail = "variants: " + ", ".join(n for n, _ in named)
    text = f"{name}: {detail}" if detail else name
    lines: list[str] = []
    for piece in re.split(r"(?<=[,;:]) ", text):  # wrap between parameters
        if lines and len(lines[-1]) + 1 + len(piece) <= _TITLE_CHARACTERS:
            lines[-1] += " " + piece
        else:
            lines.extend(textwrap.wrap(piece, _TITLE_CHARACTERS) or [""])
    return "\n".join(lines)


def _key(name: str) -> Getter:
    return lambda bucket: _number(bucket.get(name))


def _iterator_age(bucket: Mapping[str, Any]) -> float | None:
    age = _number(bucket.get("iterator_age_ms"))
    return None if age is None else age / 1000.0


def _queue_depth(bucket: Mapping[str, Any]) -> float | None:
    visible, in_flight = _number(bucket.get("visible")), _number(bucket.get("in_flight"))
    if visible is None and in_flight is None:
        return None
    return (visible or 0.0) + (in_flight or 0.0)


@dataclass(frozen=True)
class _Line:
    label: str
    get: Getter
    keys: tuple[str, ...]  # the line is drawn for a run whose series has any of these
    style: Style = "-"


@dataclass(frozen=True)
class _Panel:
    title: str
    ylabel: str
    lines: tuple[_Line, ...]
    seconds: bool = False  # y values are durations


def _panels(named: Sequence[tuple[str, Mapping[str, Any]]], bucket: str) -> list[_Panel]:
    per = f"per {bucket}"
    panels = [
        _Panel("Invocations", per, (_Line("invocations", _key("invocations"),
                                          ("invocations",)),)),
        _Panel("Concurrency", "executions", (
            _Line("max concurrent executions", _key("concurrency"), ("concurrency",)),
            _Line("environments", _key("environments"), ("environments",), "--"),
            _Line("limit", _key("limit"), ("limit",), ":"),
            _Line("unreserved", _key("unreserved_concurrency"), ("unreserved_concurrency",),
                  "-."),
        )),
        _Panel("Queue depth (visible + in flight)", "messages", (
            _Line("visible + in flight", _queue_depth, ("visible", "in_flight")),)),
        _Panel("Age of oldest message", "age", (
            _Line("age of oldest message", _key("oldest_age"), ("oldest_age",)),),
            seconds=True),
        _Panel("Cold starts", per, (_Line("cold starts", _key("cold_starts"),
                                          ("cold_starts",)),)),
        _Panel("Records behind (checkpoint lag)", "records", (
            _Line("all shards", _key("checkpoint_lag"), ("checkpoint_lag",)),
            _Line("shard furthest behind", _key("max_shard_lag"), ("max_shard_lag",), "--"),
        )),
        _Panel("Iterator age (max)", "age", (
            _Line("iterator age", _iterator_age, ("iterator_age_ms",)),), seconds=True),
    ]
    panels = [
        p for p in panels
        if any(k in b for _, run in named for b in run["series"]
               for line in p.lines for k in line.keys)
    ]
    troubles = any(
        (_number(b.get(k)) or 0) != 0
        for _, run in named for b in run["series"] for k in ("throttles", "errors")
    )
    if troubles:
        panels.append(_Panel("Throttles and errors", per, (
            _Line("throttles", _key("throttles"), ("throttles",)),
            _Line("errors", _key("errors"), ("errors",), "--"),
        )))
    return panels


def figure(runs: Any, *, title: str | None = None) -> Figure:
    """Draw the panels of one run, or of several variants overlaid.

    Parameters:
        runs: a single run, a preset result, or a sequence of runs (see
            :func:`sluicegate.sim.report.named_runs`); a topic run's parts are drawn as
            runs of their own (:func:`sluicegate.sim.report.named_parts`).
        title: the name the figure's title starts with (:func:`describe` adds the
            scenario's main parameters); by default the preset's or the lone scenario's
            name.

    Returns:
        The matplotlib figure, on an Agg canvas; one axes per panel (a queue run: 5, or 6
        when there are throttles or errors; a stream run: 5 or 6 as well, iterator age
        and records behind instead of queue depth and oldest message).

    Raises:
        InputError: matplotlib is not installed, or ``runs`` is not a result shape.
    """
    named = named_parts(runs)
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
    except ImportError as exc:
        raise InputError(_INSTALL_HINT) from exc

    step = min((bucket_seconds(run["series"]) for _, run in named if run["series"]),
               default=10.0)
    panels = _panels(named, format_duration(step))
    rows = math.ceil(len(panels) / 2)
    fig = Figure(figsize=(12.8, 2.7 * rows + 1.1), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(rows, 2)

    starts, ends = [], []
    for _, run in named:
        times = _times(run["series"])
        if times:
            starts.append(times[0])
            ends.append(times[-1] + bucket_seconds(run["series"]))
    x_lo = min(starts, default=0.0) / 60
    x_hi = max(ends, default=60.0) / 60

    palette = colours(len(named))
    for i, panel in enumerate(panels):
        row, col = divmod(i, 2)
        last_alone = i == len(panels) - 1 and len(panels) % 2 == 1
        ax = fig.add_subplot(grid[row, :] if last_alone else grid[row, col])
        styles = _draw(ax, panel, named, palette)
        _style(ax, panel, x_lo, x_hi)
        if len(styles) > 1:
            handles = [Line2D([], [], color="#555555", linestyle=s, linewidth=1.4)
                       for s in styles.values()]
            ax.legend(handles, list(styles), loc="lower right", bbox_to_anchor=(1.0, 1.0),
                      ncols=len(styles) if len(styles) < 3 else 2, fontsize=8,
                      frameon=False, borderaxespad=0.2, handlelength=2.5)

    fig.suptitle(describe(runs, title), x=0.01, ha="left", fontsize=12,
                 linespacing=1.4)
    fig.supxlabel(f"simulated time (minutes); one point per {format_duration(step)} bucket",
                  fontsize=9, color="#444444")
    if len(named) > 1:
        # right of the panels: clear of the title above them and the axis label below
        handles = [Line2D([], [], color=c, linewidth=2.5) for c in palette]
        fig.legend(handles, [name for name, _ in named], loc="outside right upper",
                   ncols=1, frameon=False, fontsize=10)
    return fig


def _draw(ax: Axes, panel: _Panel, named: Sequence[tuple[str, Mapping[str, Any]]],
          palette: Sequence[str]) -> dict[str, Style]:
    """Draw every run's lines of ``panel``, run ``i`` in ``palette[i]``; the labels and
    styles of the lines drawn."""
    drawn: dict[str, Style] = {}
    for i, (_, run) in enumerate(named):
        series = run["series"]
        x = [t / 60 for t in _times(series)]
        for line in panel.lines:
            if not any(k in bucket for bucket in series for k in line.keys):
                continue
            y = [math.nan if v is None else v for v in map(line.get, series)]
            ax.plot(x, y, color=palette[i], linestyle=line.style,
                    linewidth=1.6, marker="o" if len(x) < 3 else None, markersize=3)
            drawn[line.label] = line.style
    return drawn


def _style(ax: Axes, panel: _Panel, x_lo: float, x_hi: float) -> None:
    """CloudWatch's look: left-aligned title, light horizontal grid, no box, y from 0."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.set_title(panel.title, loc="left", fontsize=11)
    ax.set_ylabel(panel.ylabel, fontsize=9, color="#444444")
    ax.set_xlim(x_lo, x_hi if x_hi > x_lo else x_lo + 1)
    _, top = ax.get_ylim()
    ax.set_ylim(0, top if top > 0 else 1)
    ax.grid(axis="y", color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.spines["bottom"].set_color("#999999")
    ax.tick_params(labelsize=9, colors="#444444", length=0)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=10, steps=[1, 2, 2.5, 5, 10]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    if panel.seconds:
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: format_duration(v)))
    else:
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))


def plot(runs: Any, path: str | Path, *, title: str | None = None, dpi: int = 100) -> Path:
    """Save the CloudWatch-like panels of one run, or of variants overlaid, as a PNG, an
    SVG or a PDF, as the file's extension says (:func:`plot_format`).

    Parameters:
        runs: a single run, a preset result, or a sequence of runs.
        path: the file to write (replaced if it exists); missing parent directories are
            created.
        title: the name the figure's title starts with; by default the preset's or the
            lone scenario's name. The scenario's main parameters follow it.
        dpi: resolution of a PNG; the figure is 12.8 inches wide (1280 pixels at 100 dpi).

    Returns:
        The path written.

    Raises:
        InputError: an extension other than .png, .svg and .pdf; matplotlib is not
            installed; ``runs`` is not a result shape.
        OSError: the file cannot be written.
    """
    fmt = plot_format(path)
    fig = figure(runs, title=title)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, format=fmt, dpi=dpi, metadata=_METADATA[fmt])
    return target
