"""What ``sluicegate run`` shows while it runs and when it ends.

On a terminal, a live table (rich) refreshed every second; otherwise one log line per
second on stderr. Both read the runtime's per-second metrics through a listener, so
what is shown is exactly what tests and other consumers of :class:`Metrics` see.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal, Self, TextIO

from rich.console import Console, RenderableType
from rich.live import Live
from rich.table import Table

from sluicegate.runtime.metrics import ALL_MAPPINGS, MetricsSecond
from sluicegate.tables import fit
from sluicegate.wording import plural

if TYPE_CHECKING:
    from sluicegate.runtime.driver import RunSummary, Runtime

__all__ = ["StatusReporter", "format_line"]

Mode = Literal["auto", "live", "log", "none"]


def _num(value: float | None, fmt: str = "d") -> str:
    return "-" if value is None else format(value, fmt)


def _limited_by(snapshot: MetricsSecond) -> str:
    """The ``limited_by=TERM `` field of :func:`format_line`, ``breaker=STATE `` for a
    mapping with a breaker and ``paused=yes `` for a paused one, or nothing."""
    out = "" if snapshot.limit_reason is None else f"limited_by={snapshot.limit_reason} "
    if snapshot.breaker is not None:
        out += f"breaker={snapshot.breaker} "
    if snapshot.paused:
        out += "paused=yes "
    if snapshot.semaphores:
        out += f"semaphores={_held(snapshot)} "
    return out


def _held(snapshot: MetricsSecond) -> str:
    """``NAME:HELD/LIMIT`` of each semaphore the mapping needs, comma-separated."""
    return ",".join(f"{name}:{held}/{limit}" for name, held, limit in snapshot.semaphores)


def _state(snapshot: MetricsSecond) -> str:
    """The live table's "limited by" cell: the binding term, and the breaker's state when
    it is not closed, or "paused"."""
    cell = snapshot.limit_reason or "-"
    if snapshot.paused:
        return "paused"
    if snapshot.breaker not in (None, "closed"):
        cell = f"{cell} ({snapshot.breaker})" if cell != "breaker" else f"breaker {snapshot.breaker}"
    if snapshot.semaphores:
        cell = f"{cell} [{_held(snapshot)}]"
    return cell


def format_line(snapshot: MetricsSecond) -> str:
    """One second as a log line of ``key=value`` fields, each key saying what it counts.

    An invocation carries one batch, so the concurrency fields count batches:
    ``batches_in_flight`` (the most invocations running at once in the second) against
    ``batch_limit`` (the mapping's concurrency limit then) and ``limited_by`` (the term of
    the limit that binds: ``maximum_concurrency``, ``scaling``, ``cluster``, ``adaptive``,
    ``breaker``, ``semaphore:NAME``, ...; left out for the total of several mappings),
    ``breaker`` (its circuit breaker's state, for a mapping with one), ``paused=yes``
    (paused by ``sluicegate pause``) and ``semaphores`` (``NAME:HELD/LIMIT``: the slots
    this process's mapping holds of each semaphore it needs, of the semaphore's limit);
    the queue's fields count
    messages: ``messages_visible``, ``messages_in_flight`` (received, not yet deleted),
    ``oldest_message_age``. ``processed/s`` is messages deleted in the second,
    ``invocations/s``, ``errors`` and ``throttles`` are invocations.
    """
    stamp = time.strftime("%H:%M:%S", time.localtime(snapshot.second))
    return (
        f"{stamp} processed/s={snapshot.messages_deleted} "
        f"invocations/s={snapshot.invocations} "
        f"batches_in_flight={snapshot.concurrent_executions} "
        f"batch_limit={_num(snapshot.concurrency_limit)} "
        f"{_limited_by(snapshot)}"
        f"errors={snapshot.errors} throttles={snapshot.throttles} "
        f"messages_visible={_num(snapshot.visible)} "
        f"messages_in_flight={_num(snapshot.in_flight)} "
        f"oldest_message_age={_num(snapshot.oldest_age, '.1f')}s "
        f"dead_lettered={snapshot.messages_dead_lettered}"
    )


class StatusReporter:
    """Shows a runtime's per-second metrics; a context manager around the run.

    Parameters:
        runtime: the runtime to watch.
        mode: ``live`` (rich table), ``log`` (a line per second), ``none``, or ``auto``:
            live on a terminal, log otherwise.
        stream: where to write (stderr by default, so stdout stays for the summary).
    """

    def __init__(self, runtime: Runtime, *, mode: Mode = "auto", stream: TextIO | None = None):
        self.runtime = runtime
        self.stream = stream or sys.stderr
        if mode == "auto":
            mode = "live" if self.stream.isatty() else "log"
        self.mode = mode
        self._live: Live | None = None
        self._console: Console | None = None
        self._latest: Mapping[str, MetricsSecond] = {}

    def __enter__(self) -> Self:
        if self.mode == "none":
            return self
        self.runtime.metrics.add_listener(self._on_second)
        if self.mode == "live":
            self._console = Console(file=self.stream)
            self._live = Live(self._table(), console=self._console,
                              refresh_per_second=2, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.mode == "none":
            return
        self.runtime.metrics.remove_listener(self._on_second)
        if self._live is not None:
            self._live.update(self._table())
            self._live.__exit__(None, None, None)
            self._live = None

    def _on_second(self, second: int, snapshots: Mapping[str, MetricsSecond]) -> None:
        self._latest = snapshots
        if self._live is not None:
            self._live.update(self._table())
        elif self.mode == "log":
            overall = snapshots.get(ALL_MAPPINGS)
            if overall is not None:
                print(format_line(overall), file=self.stream, flush=True)

    def _table(self) -> RenderableType:
        """The live table, laid out for the terminal by :func:`sluicegate.tables.fit`
        (a mapping's name is never cut). Its columns count what the log line's fields
        count (:func:`format_line`)."""
        table = Table(title="sluicegate", title_justify="left", box=None)
        for column in ("mapping", "processed msg/s", "invocations/s", "batches in flight",
                       "batch limit", "limited by", "errors", "throttles", "dead-lettered msgs",
                       "visible msgs", "oldest msg age"):
            table.add_column(column, justify="left" if column == "mapping" else "right")
        rows = sorted(self._latest.items(), key=lambda kv: kv[0] == ALL_MAPPINGS)
        if len(rows) == 2:  # one mapping: its total would repeat it
            rows = rows[:1]
        for name, s in rows:
            table.add_row(
                "all" if name == ALL_MAPPINGS else name,
                str(s.messages_deleted), str(s.invocations), str(s.concurrent_executions),
                _num(s.concurrency_limit), _state(s), str(s.errors), str(s.throttles),
                str(s.messages_dead_lettered), _num(s.visible),
                f"{_num(s.oldest_age, '.1f')} s",
            )
        console = self._console or Console(file=self.stream)
        return fit(table, console.width, console)

    def print_summary(self, summary: RunSummary, stream: TextIO | None = None) -> None:
        """The closing lines: processed, dead-lettered, execution environments started
        (cold starts), peak concurrency against the cap, throughput."""
        out = stream or sys.stdout
        print(
            f"processed {plural(summary.processed, 'message')} in {summary.elapsed:.1f}s "
            f"({summary.throughput:,.0f}/s), dead-lettered {summary.dead_lettered}, "
            f"{plural(summary.cold_starts, 'cold start')}; stopped: {summary.stopped_by}",
            file=out,
        )
        for m in summary.mappings:
            cap = m.maximum_concurrency if m.maximum_concurrency is not None else "none"
            filtered = f", {m.filtered} filtered out" if m.filtered else ""
            print(
                f"  {m.name}: {plural(m.invocations, 'invocation')}, "
                f"{plural(m.errors, 'error')}, {plural(m.throttles, 'throttle')}{filtered}, "
                f"peak concurrency {plural(m.peak_concurrency, 'batch', 'batches')} "
                f"(maximum_concurrency {cap})",
                file=out,
            )
        for m in summary.asynchronous:
            events = m.events
            if events is None or not (m.invocations or events.dropped):
                continue
            dropped = ", ".join(f"{n} {condition}"
                                for condition, n in sorted(events.by_condition.items()))
            print(
                f"  {m.name.partition('->')[2]} (asynchronous): "
                f"{plural(m.invocations, 'invocation')}, {plural(m.errors, 'error')}, "
                f"{plural(events.succeeded, 'event')} succeeded, {events.dropped} discarded"
                f"{f' ({dropped})' if dropped else ''}, "
                f"peak concurrency {m.peak_concurrency}",
                file=out,
            )
