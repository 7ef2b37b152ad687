"""CloudWatch-like charts of a simulation, as a PNG.

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

Variants are overlaid: each keeps one colour in every panel, and a legend above the
panels names them. Line styles tell apart the metrics of one panel. A topic run is drawn
as its parts (:func:`~sluicegate.sim.report.named_parts`): the account and each mapping,
overlaid in colours of their own like variants, so a slow subscriber's queue depth or a
throttled one's throttles stand out against the others'.

matplotlib is an optional dependency (the ``plot`` extra) and is imported only when a
figure is drawn, so importing this module costs nothing. The figure is drawn on an Agg
canvas without pyplot: no window, no change to matplotlib's global backend.
"""

from __future__ import annotations

import math
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
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["PALETTE", "figure", "plot"]

PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)
"""Colours of the variants, in order (cycled beyond ten)."""

_INSTALL_HINT = "plotting needs matplotlib: pip install 'sluicegate[plot]'"

Getter = Callable[[Mapping[str, Any]], float | None]
Style = Literal["-", "--", ":", "-."]


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
        title: the figure's title; by default the preset's or the lone scenario's name.

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

    for i, panel in enumerate(panels):
        row, col = divmod(i, 2)
        last_alone = i == len(panels) - 1 and len(panels) % 2 == 1
        ax = fig.add_subplot(grid[row, :] if last_alone else grid[row, col])
        styles = _draw(ax, panel, named)
        _style(ax, panel, x_lo, x_hi)
        if len(styles) > 1:
            handles = [Line2D([], [], color="#555555", linestyle=s, linewidth=1.4)
                       for s in styles.values()]
            ax.legend(handles, list(styles), loc="lower right", bbox_to_anchor=(1.0, 1.0),
                      ncols=len(styles), fontsize=8 if len(styles) < 4 else 7,
                      frameon=False, borderaxespad=0.2, handlelength=2.5)

    fig.suptitle(title or _default_title(runs), x=0.01, ha="left", fontsize=14)
    fig.supxlabel(f"simulated time (minutes); one point per {format_duration(step)} bucket",
                  fontsize=9, color="#444444")
    if len(named) > 1:
        handles = [Line2D([], [], color=PALETTE[i % len(PALETTE)], linewidth=2.5)
                   for i in range(len(named))]
        fig.legend(handles, [name for name, _ in named], loc="outside upper center",
                   ncols=min(len(named), 6), frameon=False, fontsize=10)
    return fig


def _draw(ax: Axes, panel: _Panel, named: Sequence[tuple[str, Mapping[str, Any]]],
          ) -> dict[str, Style]:
    """Draw every run's lines of ``panel``; the labels and styles of the lines drawn."""
    drawn: dict[str, Style] = {}
    for i, (_, run) in enumerate(named):
        series = run["series"]
        x = [t / 60 for t in _times(series)]
        for line in panel.lines:
            if not any(k in bucket for bucket in series for k in line.keys):
                continue
            y = [math.nan if v is None else v for v in map(line.get, series)]
            ax.plot(x, y, color=PALETTE[i % len(PALETTE)], linestyle=line.style,
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
    """Save the CloudWatch-like panels of one run, or of variants overlaid, as a PNG.

    Parameters:
        runs: a single run, a preset result, or a sequence of runs.
        path: the PNG to write (replaced if it exists); missing parent directories are
            created.
        title: the figure's title; by default the preset's or the lone scenario's name.
        dpi: resolution; the figure is 12.8 inches wide (1280 pixels at 100 dpi).

    Returns:
        The path written.

    Raises:
        InputError: matplotlib is not installed, or ``runs`` is not a result shape.
        OSError: the file cannot be written.
    """
    fig = figure(runs, title=title)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, format="png", dpi=dpi, metadata={"Software": None})
    return target
