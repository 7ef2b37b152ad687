"""How every table sluicegate prints is laid out: no name is ever cut.

Queue, stream, mapping and worker names are what a reader looks for, and two of them
often differ only at the end (``customer-notifications-eu-west-1`` and its ``-dlq``), so a
cell is never shortened with an ellipsis. :func:`print_table` (and :func:`fit`, for a
live display) decide, by one rule, how a table is shown:

- on a terminal, the table as it is when it fits the width;
- else the table with its columns narrowed down to their longest word (headers and
  cells wrap at spaces, a word is never broken), when that fits;
- else one record per row: ``header: value`` of its first cell (its name) on a line of
  its own, then the others' ``header: value`` pairs, wrapped between pairs;
- not on a terminal (piped or redirected), the table at its natural width, as plain
  text (no colours or styles), whatever ``COLUMNS`` says: a script reading it gets every
  cell whole.

A printed table's title and caption are lines of their own, above and below it, never
wrapped to the table's width.
"""

from __future__ import annotations

import io

from rich.cells import cell_len
from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

__all__ = ["fit", "print_table", "render_plain"]

_UNBOUNDED = 100_000
"""A width no table reaches, to measure its natural width."""

_RECORD_SEPARATOR = " · "
"""Between the ``header: value`` pairs of a record."""


def _plain(cell: object) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def _columns(table: Table) -> list[list[str]]:
    """Each column's header and cells as plain text."""
    return [[_plain(c.header), *(_plain(cell) for cell in c.cells)] for c in table.columns]


def _natural_width(console: Console, table: Table) -> int:
    return Measurement.get(console, console.options.update_width(_UNBOUNDED), table).maximum


def _longest(texts: list[str], *, words: bool) -> int:
    pieces = [p for t in texts for p in (t.split() if words else t.splitlines())]
    return max((cell_len(p) for p in pieces), default=0)


def fit(table: Table, width: int, console: Console | None = None,
        records: Table | None = None) -> RenderableType:
    """``table`` as it is shown ``width`` columns wide on a terminal (the module's rule).

    Parameters:
        table: the table; its columns' widths may be set (narrowed to fit).
        width: the terminal's width, columns.
        console: the console measuring it; a plain one by default.
        records: the table to show as records when ``table`` cannot fit (e.g. the same
            data transposed, one row per run); ``table`` itself by default.

    Returns:
        The table, or a group of record lines.
    """
    console = console or Console(width=width, color_system=None)
    for column in table.columns:
        column.overflow = "fold"
        column.no_wrap = False
    natural = _natural_width(console, table)
    if natural <= width:
        return table
    if table.box is None and table.pad_edge:  # the outer padding is the first to go
        table.pad_edge = False
        natural = _natural_width(console, table)
        if natural <= width:
            return table
    texts = _columns(table)
    wants = [_longest(t, words=False) for t in texts]
    needs = [_longest(t, words=True) for t in texts]
    extra = natural - sum(wants)  # padding, borders
    room = width - extra - sum(needs)
    if room >= 0:
        widths = list(needs)
        for i, want in enumerate(wants):  # give the room back in column order
            more = min(want - widths[i], room)
            widths[i] += more
            room -= more
        for column, w in zip(table.columns, widths, strict=True):
            column.width = max(w, 1)
        return table
    return _records(records or table, width)


def _records(table: Table, width: int) -> RenderableType:
    """One record per row: its first ``header: value`` on a line, then the others packed
    into lines of ``width`` (a pair is split only when it is wider alone)."""
    texts = _columns(table)
    lines: list[RenderableType] = []
    if table.title:
        lines.append(Text(_plain(table.title), style="bold"))
    headers = [t[0] for t in texts]
    indent = "  "
    for row in range(len(texts[0]) - 1 if texts else 0):
        cells = [t[row + 1] for t in texts]
        lines.append(Text(f"{headers[0]}: {cells[0]}", style="bold", overflow="fold"))
        line = ""
        for header, value in zip(headers[1:], cells[1:], strict=True):
            pair = f"{header}: {value}"
            joined = f"{line}{_RECORD_SEPARATOR}{pair}" if line else pair
            if line and cell_len(indent + joined) > width:
                lines.append(Text(indent + line, overflow="fold"))
                joined = pair
            line = joined
        if line:
            lines.append(Text(indent + line, overflow="fold"))
    if table.caption:
        lines.append(Text(_plain(table.caption), style="dim"))
    return Group(*lines)


def render_plain(table: Table) -> str:
    """``table`` at its natural width as plain text (no styles), lines without trailing
    spaces; what :func:`print_table` writes when the output is not a terminal."""
    out = io.StringIO()
    console = Console(file=out, width=_UNBOUNDED, color_system=None, force_terminal=False,
                      highlight=False, emoji=False, markup=False)
    for column in table.columns:
        column.overflow = "fold"
        column.no_wrap = False
    console.print(table, width=max(_natural_width(console, table), 1))
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines()) + "\n"


def print_table(table: Table, console: Console | None = None, *,
                records: Table | None = None) -> None:
    """Print ``table`` by the module's rule: whole on a terminal when it fits (narrowed
    if need be), else as records; at its natural width as plain text when the output is
    not a terminal.

    Parameters:
        table: the table to print.
        console: where; a new stdout console by default.
        records: the table to show as records when ``table`` cannot fit a terminal.
    """
    console = console or Console()
    title = _plain(table.title) if table.title else ""
    caption = _plain(table.caption) if table.caption else ""
    table.title = table.caption = None  # lines of their own, not wrapped to the table
    if records is not None:
        records.title = records.caption = None
    if not console.is_terminal:
        console.file.write((title + "\n" if title else "") + render_plain(table)
                           + (caption + "\n" if caption else ""))
        console.file.flush()
        return
    if title:
        console.print(Text(title, style="bold"), soft_wrap=True)
    console.print(fit(table, console.width, console, records))
    if caption:
        console.print(Text(caption, style="dim"))
