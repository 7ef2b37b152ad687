"""The ``sluicegate`` command.

Every command that touches the store (``run``, ``send``, ``put``, ``publish``, ``queues``,
``streams``, ``peek``, ``purge``, ``redrive``, ``workers``, ``semaphores``, ``callback``,
and the live-limits commands ``limits``, ``pause``, ``resume``, ``breakers``, ``control`` of
:mod:`sluicegate.cli_limits`) takes
``--store URL`` (or the ``SLUICEGATE_STORE`` environment variable; default
``sqlite:///sluicegate.db``). ``simulate`` and ``plan`` need no store: they run the
simulator (:mod:`sluicegate.sim`) in virtual time. Any :class:`~sluicegate.errors.SluicegateError`
becomes one line on stderr and exit status 2; nothing is sent unless the whole input
was valid, so a bad file never half-sends. Commands that only look (``queues`` and
``streams`` without ``--app``, ``peek``, ``workers``, ``semaphores``) open the store read-only (see
:data:`_INSPECTION`), so they work on a SQLite file they may not write. ``send``, ``put``,
``publish``, ``purge`` and ``redrive`` refuse a ``memory://`` store, which would die with the
command and what it was given. ``run`` exits 0 when it stopped as asked, and non-zero when
it abandoned in-flight invocations (:data:`EXIT_ABANDONED`). Tables are printed by
:mod:`sluicegate.tables`, which never cuts a name.

``run`` on a shared store (SQLite, Redis) joins the cluster of that store
(:mod:`sluicegate.cluster`), with no flag: every process running the same App against the
same store shares the mappings' limits, and ``workers`` lists the live ones.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluicegate import __version__, loops
from sluicegate.build import BUILD
from sluicegate.errors import InputError, SluicegateError
from sluicegate.store import open_store
from sluicegate.store.base import MAX_BATCH_ENTRIES, MAX_PEEK, SendEntry, Store
from sluicegate.wording import plural

if TYPE_CHECKING:
    from rich.table import Table

    from sluicegate.sim.scenario import Scenario
    from sluicegate.sim.stream_scenario import StreamScenario
    from sluicegate.sim.topic_scenario import TopicScenario
    from sluicegate.sim.world import World

__all__ = ["main"]

EXIT_ERROR = 2
"""Exit status for bad input, configuration or an unusable store."""

EXIT_INTERRUPTED = 130

EXIT_ABANDONED = 1
"""Exit status of a run that abandoned in-flight invocations at the end of its grace
period; after a second SIGINT or SIGTERM, 128 plus the signal's number (130, 143), as a
shell reports a process that signal ended."""


class _CommandParser(argparse.ArgumentParser):
    """A command's parser: its message bodies or record data may come after options
    (``send QUEUE --group-id g BODY``), which argparse's plain parsing refuses once the
    positionals were matched empty before the option."""

    _intermixing = False

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if self._intermixing:  # parse_known_intermixed_args calls back here
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


def _parser() -> argparse.ArgumentParser:
    store_help = ("store URL: sqlite:///path.db (default ./sluicegate.db; three slashes and a "
                  "relative path, four for an absolute one: sqlite:////tmp/x.db), "
                  "redis://HOST:PORT/DB, memory:// (this process only) (env SLUICEGATE_STORE)")
    common = _CommandParser(add_help=False)
    common.add_argument("--store", metavar="URL", help=store_help)

    parser = argparse.ArgumentParser(
        prog="sluicegate",
        description="Lambda-style event source mappings: queues feed handlers in batches.",
    )
    parser.add_argument("--version", action="version", version=f"sluicegate {__version__} ({BUILD})")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_CommandParser)

    run = sub.add_parser("run", parents=[common], help="run an App's mappings")
    run.add_argument("app", metavar="APP", help="path/to/file.py or module:attr")
    run.add_argument("--until-empty", action="store_true",
                     help="exit 0 once every mapped queue is empty (nothing visible, delayed or in flight)")
    run.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this long")
    run.add_argument("--grace-period", type=float, default=30.0, metavar="SECONDS",
                     help="how long in-flight invocations may finish after a stop (default 30)")
    run.add_argument("--status", choices=("auto", "live", "log", "none"), default="auto",
                     help="live table on a terminal, a log line per second otherwise (default auto)")
    run.add_argument("--log-level", default="WARNING", help="logging level (default WARNING)")
    run.add_argument("--cluster", metavar="REDIS_URL",
                     help="coordinate with other workers through this Redis instead of the "
                          "store (default: the store itself, SQLite or Redis)")
    run.add_argument("--worker-id", metavar="ID",
                     help="this worker's id among the store's workers (default host:pid:random)")
    run.add_argument("--lease-ttl", type=float, default=30.0, metavar="SECONDS",
                     help="how long a killed worker's slots and shards stay taken (default 30)")

    workers = sub.add_parser("workers", parents=[common],
                             help="list a cluster's live workers, their leases and in-flight counts")
    workers.add_argument("--json", action="store_true", help="print JSON")

    semaphores = sub.add_parser("semaphores", parents=[common],
                                help="list semaphores, their holders and waiters")
    semaphores.add_argument("--json", action="store_true", help="print JSON")

    callback = sub.add_parser("callback", parents=[common],
                              help="complete a batch parked behind a task token")
    callback.add_argument("token", metavar="TOKEN", help="the task token context.park() gave")
    callback.add_argument("result", choices=("success", "failure", "heartbeat"),
                          help="success deletes the batch's messages; failure lets them "
                               "come back now; heartbeat keeps them hidden longer")
    callback.add_argument("--output", metavar="JSON",
                          help="success: the batch's response, e.g. "
                               '\'{"batchItemFailures": [{"itemIdentifier": "ID"}]}\'; '
                               "failure: an error object or string")

    send = sub.add_parser("send", parents=[common], help="send messages to a queue")
    send.add_argument("queue", metavar="QUEUE")
    send.add_argument("bodies", nargs="*", default=[], metavar="BODY",
                      help="message bodies")
    send.add_argument("--file", metavar="FILE.jsonl",
                      help="one message body per line; every line must be valid JSON "
                           "(- reads standard input)")
    send.add_argument("--count", type=int, default=1, metavar="N",
                      help='send each body N times; with no body, N messages {"n": i}')
    send.add_argument("--delay", type=int, default=None, metavar="SECONDS",
                      help="delivery delay, 0-900 s")
    send.add_argument("--attribute", action="append", default=[], metavar="NAME=VALUE",
                      help="a String message attribute (repeatable)")
    send.add_argument("--group-id", metavar="ID",
                      help="message group id (FIFO queues; required there)")
    send.add_argument("--dedup-id", metavar="ID",
                      help="deduplication id (FIFO queues without content-based deduplication)")
    send.add_argument("--app", metavar="APP",
                      help="create the App's queues first (path/to/file.py or module:attr)")

    put = sub.add_parser("put", parents=[common], help="put records to a stream")
    put.add_argument("stream", metavar="STREAM")
    put.add_argument("data", nargs="*", default=[], metavar="DATA",
                     help="record data")
    put.add_argument("--partition-key", required=True, metavar="KEY",
                     help="the records' partition key (chooses the shard)")
    put.add_argument("--file", metavar="FILE.jsonl",
                     help="one JSON record per line, put in order (- reads standard input)")
    put.add_argument("--count", type=int, default=1, metavar="N",
                     help="put each record N times (without DATA: N generated records)")
    put.add_argument("--app", metavar="APP", help="create the App's queues and streams first")

    invoke = sub.add_parser(
        "invoke", parents=[common],
        help="invoke a function of an App: now (RequestResponse), or --async through its "
             "internal queue in the store")
    invoke.add_argument("function", metavar="FUNCTION", help="the function's name")
    invoke.add_argument("payload", nargs="?", default=None, metavar="PAYLOAD",
                        help="the event as JSON (default {})")
    invoke.add_argument("--file", metavar="FILE.json",
                        help="read the event from a JSON file (- reads standard input)")
    invoke.add_argument("--async", dest="asynchronous", action="store_true",
                        help="InvocationType=Event: accept the event into the function's "
                             "internal queue in --store; a running App invokes it")
    invoke.add_argument("--app", metavar="APP", required=True,
                        help="the App that defines the function (path/to/file.py or "
                             "module:attr)")

    put_events = sub.add_parser(
        "put-events", parents=[common],
        help="put events on an event bus of an App (EventBridge's PutEvents)")
    put_events.add_argument("bus", metavar="BUS", help="the event bus (e.g. default)")
    put_events.add_argument("details", nargs="*", default=[], metavar="DETAIL",
                            help="an event's detail as a JSON object (one event each)")
    put_events.add_argument("--source", metavar="SOURCE",
                            help="the events' source (required with DETAIL)")
    put_events.add_argument("--detail-type", metavar="TYPE",
                            help="the events' detail-type (required with DETAIL)")
    put_events.add_argument("--file", metavar="FILE.json",
                            help="PutEvents entries: a JSON list of {Source, DetailType, "
                                 "Detail, ...} or one entry per line (- reads standard "
                                 "input); entries without EventBusName go to BUS")
    put_events.add_argument("--app", metavar="APP", required=True,
                            help="the App that defines the bus and its rules")

    publish = sub.add_parser("publish", parents=[common],
                             help="publish messages to a topic of an App")
    publish.add_argument("topic", metavar="TOPIC")
    publish.add_argument("bodies", nargs="*", default=[], metavar="BODY",
                         help="message bodies")
    publish.add_argument("--app", metavar="APP", required=True,
                         help="the App that defines the topic and its subscribers")
    publish.add_argument("--file", metavar="FILE.jsonl",
                         help="one JSON message per line, published in order "
                              "(- reads standard input)")
    publish.add_argument("--count", type=int, default=1, metavar="N",
                         help="publish each body N times (without BODY: N generated bodies)")
    publish.add_argument("--attribute", action="append", default=[], metavar="NAME=VALUE",
                         help="a String message attribute (repeatable)")
    publish.add_argument("--group-id", metavar="ID", help="message group id (FIFO topics)")
    publish.add_argument("--dedup-id", metavar="ID", help="deduplication id (FIFO topics)")

    streams = sub.add_parser("streams", parents=[common],
                             help="list streams, shards, checkpoints and iterator age")
    streams.add_argument("--json", action="store_true", help="print JSON")
    streams.add_argument("--app", metavar="APP", help="create the App's streams first")

    queues = sub.add_parser("queues", parents=[common], help="list queues and their counts")
    queues.add_argument("--json", action="store_true", help="print JSON")
    queues.add_argument("--app", metavar="APP", help="create the App's queues first")

    peek = sub.add_parser(
        "peek", parents=[common],
        help="show a queue's messages (or a stream shard's records) without receiving them")
    peek.add_argument("name", metavar="QUEUE|STREAM")
    peek.add_argument("--count", default="10", metavar="N",
                      help=f"show at most N messages or records (1-{MAX_PEEK:,}; default 10)")
    peek.add_argument("--shard", metavar="N", help="a stream's shard to read (0-based)")
    peek.add_argument("--from", dest="start", metavar="SEQ",
                      help="a stream's records from this sequence number on (default: the "
                           "oldest retained)")
    peek.add_argument("--json", action="store_true", help="print JSON")

    purge = sub.add_parser("purge", parents=[common], help="delete every message of a queue")
    purge.add_argument("queue", metavar="QUEUE")
    purge.add_argument("--yes", action="store_true",
                       help="do not ask for confirmation (required when not on a terminal)")

    redrive = sub.add_parser("redrive", parents=[common],
                             help="move a dead-letter queue's messages back")
    redrive.add_argument("dlq", metavar="DLQ")
    redrive.add_argument("--to", metavar="QUEUE",
                         help="destination (default: the queue each message came from)")

    overrides = _CommandParser(add_help=False)
    overrides.add_argument("--set", dest="overrides", action="append", default=[],
                           metavar="KEY=VALUE",
                           help="override a scenario field, e.g. mapping.maximum_concurrency=50 "
                                "(repeatable)")
    overrides.add_argument("--seed", type=int, metavar="N", help="override the scenario's seed")

    overrides.add_argument("--load", metavar="LOAD.toml",
                           help="simulate an App (named instead of a scenario, as run takes "
                                "it: jobs.py or module:attr) under this load: producers, "
                                "handler durations, errors (docs/simulate-your-app.md); "
                                "--set then applies to the load")

    simulate = sub.add_parser("simulate", parents=[overrides],
                              help="simulate a scenario, a preset or an App in virtual time")
    simulate.add_argument("scenario", nargs="?", metavar="SCENARIO.toml|APP",
                          help="the scenario file (docs/scenarios.md), or with --load the "
                               "App file")
    simulate.add_argument("--preset", metavar="NAME", help="simulate a built-in preset instead")
    simulate.add_argument("--list-presets", action="store_true",
                          help="list the presets and exit")
    simulate.add_argument("--json", metavar="OUT", help="write the result as JSON")
    simulate.add_argument("--csv", metavar="OUT", help="write the series as CSV")
    simulate.add_argument("--plot", metavar="OUT.png",
                          help="draw the panels; the extension chooses PNG, SVG or PDF")

    plan = sub.add_parser("plan", parents=[overrides],
                          help="sweep a mapping's maximum_concurrency (a stream's "
                               "parallelization_factor) and recommend a setting")
    plan.add_argument("scenario", metavar="SCENARIO.toml|APP",
                      help="the scenario file, or with --load the App file")
    plan.add_argument("--downstream-limit", type=int, metavar="N",
                      help="most invocations the downstream may see at once "
                           "(default: the scenario's downstream.concurrency, if any)")
    plan.add_argument("--values", metavar="N,N,...",
                      help="the values to try (maximum_concurrency: default 2,5,10,20,50,100,"
                           "200,500,1000 up to the reserved concurrency, plus the scenario's "
                           "own; a stream's parallelization_factor: default 1-10)")
    plan.add_argument("--subscriber", metavar="NAME",
                      help="a topic scenario's subscriber whose mapping to sweep (required "
                           "for a topic scenario; the others run as written)")
    plan.add_argument("--mapping", metavar="NAME",
                      help="with --load, an App whose mappings run together: the mapping "
                           "to sweep (SOURCE->FUNCTION, or its source; async:FUNCTION for a "
                           "function's asynchronous events, swept by its "
                           "reserved_concurrency); the others run as written")
    plan.add_argument("--max-age", metavar="SECONDS",
                      help="a target for the oldest message's (event's) age, e.g. 90s or "
                           "2m: a setting fits only if its p99 age is at most this")
    plan.add_argument("--json", metavar="OUT", help="write the plan as JSON")

    from sluicegate.cli_limits import add_parsers

    add_parsers(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command in _OFFLINE:
            return _OFFLINE[args.command](args)
        if args.command == "invoke" and not args.asynchronous:
            return _invoke_now(args)
        return loops.run(_dispatch(args))
    except SluicegateError as exc:
        print(f"sluicegate: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


async def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "workers":
        return await _workers(args)
    from sluicegate import cli_limits

    handler = {
        "limits": cli_limits.limits,
        "pause": cli_limits.pause_resume,
        "resume": cli_limits.pause_resume,
        "breakers": cli_limits.breakers,
        "control": cli_limits.control,
        "run": _run,
        "send": _send,
        "put": _put,
        "publish": _publish,
        "invoke": _invoke_async,
        "put-events": _put_events,
        "queues": _queues,
        "streams": _streams,
        "redrive": _redrive,
        "peek": _peek,
        "purge": _purge,
        "semaphores": _semaphores,
        "callback": _callback,
    }[args.command]
    if args.command in _WRITES and _store_url(args).partition("://")[0].lower() == "memory":
        raise InputError(f"{args.command} with a memory:// store would lose what it writes "
                         "when this command exits: use sqlite:///PATH.db or redis://")
    looks = args.command in ("limits", "breakers") and not args.words
    if (args.command in _LIVE_WRITES or (args.command in ("limits", "breakers") and not looks)
            ) and _store_url(args).partition("://")[0].lower() == "memory":
        raise InputError(f"{args.command} on a memory:// store changes nothing that runs: "
                         "use the sqlite:///PATH.db or redis:// store the App runs on")
    read_only = (args.command in _INSPECTION or looks) and getattr(args, "app", None) is None
    store = open_store(args.store, read_only=read_only)
    try:
        await store.open()
        return await handler(args, store)
    finally:
        await store.close()


_LIVE_WRITES = frozenset({"pause", "resume", "control"})
"""Commands that change live limits: a ``memory://`` store would reach no running App."""

_WRITES = frozenset({"send", "put", "publish", "redrive", "purge", "callback", "invoke",
                     "put-events"})
"""Commands that only write to the store: on a ``memory://`` store, which lives as long as
the command's process, what they write would be lost at once, so they are refused."""


async def _declare(store: Store, spec: str | None) -> None:
    if spec is None:
        return
    from sluicegate.loader import load_app
    from sluicegate.runtime.driver import Runtime

    await Runtime(load_app(spec), store).prepare()


# ---------------------------------------------------------------------- run
async def _run(args: argparse.Namespace, store: Store) -> int:
    from sluicegate.loader import load_app
    from sluicegate.runtime.driver import Runtime
    from sluicegate.runtime.status import StatusReporter

    level = getattr(logging, str(args.log_level).upper(), None)
    if not isinstance(level, int):
        raise InputError(f"--log-level {args.log_level!r} is not a logging level")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.duration is not None and args.duration <= 0:
        raise InputError(f"--duration {args.duration:g} must be above 0")
    app = load_app(args.app)
    if not app.functions and not app.buses:
        raise InputError(f"{args.app!r} defines no functions (app.function) and no event "
                         "buses (app.event_bus)")
    if args.lease_ttl <= 0:
        raise InputError(f"--lease-ttl {args.lease_ttl:g} must be above 0")
    from sluicegate.cluster import Cluster

    cluster = None
    if args.cluster:
        if not _is_redis(args.cluster):
            raise InputError(f"--cluster {args.cluster!r}: not a redis:// URL")
        from sluicegate.store.redis import RedisStore

        probe = RedisStore(args.cluster)
        await probe.open()  # an unreachable server: one line, at once, as for --store
        await probe.close()
        # a Redis store of the cluster's own (opened at its start, closed at its stop)
        cluster = Cluster(args.cluster, worker_id=args.worker_id, lease_ttl=args.lease_ttl)
    elif store.shared:
        cluster = Cluster(store, worker_id=args.worker_id, lease_ttl=args.lease_ttl)
    runtime = Runtime(app, store, grace_period=args.grace_period, cluster=cluster)
    reporter = StatusReporter(runtime, mode=args.status)
    with reporter:
        summary = await runtime.run(
            until_empty=args.until_empty, duration=args.duration, install_signal_handlers=True
        )
    reporter.print_summary(summary)
    if summary.abandoned:
        by = summary.abandoned_by
        again = by.removeprefix("signal ") if by.startswith("signal ") else None
        why = (f"a second {again}" if again else
               f"the end of the {args.grace_period:g}s grace period")
        print(f"sluicegate: stopped by {why}: abandoned "
              f"{plural(summary.abandoned, 'in-flight invocation')}; their messages were not "
              "deleted and reappear after their visibility timeout", file=sys.stderr)
        if again is not None and hasattr(signal, again):
            return 128 + int(getattr(signal, again))
        return EXIT_ABANDONED
    return 0


def _store_url(args: argparse.Namespace) -> str:
    from sluicegate.store import DEFAULT_STORE_URL, STORE_ENV_VAR

    return str(args.store or os.environ.get(STORE_ENV_VAR) or DEFAULT_STORE_URL)


def _is_redis(url: str) -> bool:
    return url.partition("://")[0].lower() in ("redis", "rediss")


# ---------------------------------------------------------------------- workers
async def _workers(args: argparse.Namespace) -> int:
    """``sluicegate workers``: the live workers of the cluster on ``--store``."""
    import time

    from sluicegate.cluster import list_workers

    store = open_store(args.store, read_only=True)
    try:
        await store.open()
        rows = await list_workers(store)
    finally:
        await store.close()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no live workers")
        return 0
    from sluicegate.tables import print_table

    print_table(_workers_table(rows, time.time()))
    return 0


def _workers_table(rows: Sequence[dict[str, Any]], now: float) -> Table:
    """The ``workers`` listing: one row per worker, its in-flight counts and leases by
    mapping (``name=N``), printed by :func:`sluicegate.tables.print_table`."""
    from rich.table import Table

    table = Table("worker", "up (s)", "seen (s ago)", "in flight", "leases", box=None)
    for r in rows:
        in_flight = ", ".join(f"{k}={v}" for k, v in sorted(r.get("in_flight", {}).items()))
        leases = ", ".join(f"{k}={v}" for k, v in sorted(r.get("leases", {}).items()) if v)
        table.add_row(str(r.get("worker")), f"{now - float(r.get('started', now)):.0f}",
                      f"{now - float(r.get('seen', now)):.1f}", in_flight or "-",
                      leases or "-")
    return table


# ---------------------------------------------------------------------- semaphores
async def _semaphores(args: argparse.Namespace, store: Store) -> int:
    """``sluicegate semaphores``: every semaphore's holders and waiters."""
    import time

    states = await store.list_semaphores()
    now = time.time()
    if args.json:
        print(json.dumps([{
            "name": s.name, "limit": s.limit, "fencing_token": s.token,
            "holders": [{"token": h.holder, "fencing_token": h.token, "since": h.since,
                         "expires": h.expires, "info": h.info} for h in s.holders],
            "waiters": [{"token": w.waiter, "since": w.since, "info": w.info}
                        for w in s.waiters],
        } for s in states], indent=2))
        return 0
    if not states:
        print("no semaphores")
        return 0
    from rich.table import Table

    from sluicegate.tables import print_table

    table = Table("semaphore", "held", "waiting", "holder", "fence", "for (s)", box=None)
    for s in states:
        rows = [(h.info or h.holder, str(h.token), f"{now - h.since:.1f}") for h in s.holders]
        first = (f"{len(s.holders)}/{s.limit}", str(len(s.waiters)))
        for i, row in enumerate(rows or [("-", "-", "-")]):
            table.add_row(s.name if i == 0 else "", *(first if i == 0 else ("", "")), *row)
    print_table(table)
    return 0


async def _callback(args: argparse.Namespace, store: Store) -> int:
    """``sluicegate callback TOKEN success|failure|heartbeat [--output JSON]``."""
    from sluicegate.runtime.semaphores import (
        send_task_failure,
        send_task_heartbeat,
        send_task_success,
    )

    output: Any = None
    if args.output is not None:
        try:
            output = json.loads(args.output)
        except ValueError as exc:
            raise InputError(f"--output is not JSON: {exc}") from None
    if args.result == "heartbeat":
        if output is not None:
            raise InputError("--output is for success and failure, not heartbeat")
        done = await send_task_heartbeat(store, args.token)
        print(f"{done.mapping}: kept {plural(done.kept, 'message')} hidden"
              + (f"; {done.stale} had come back already" if done.stale else ""))
        return 0
    if args.result == "success":
        done = await send_task_success(store, args.token, output)
    else:
        error = output if isinstance(output, str) else ("" if output is None
                                                         else json.dumps(output))
        done = await send_task_failure(store, args.token, error)
    parts = [f"deleted {plural(done.deleted, 'message')}"] if args.result == "success" else []
    if done.returned or args.result == "failure":
        parts.append(f"{plural(done.returned, 'message')} back in {done.queue}")
    if done.stale:
        parts.append(f"{done.stale} had come back already")
    print(f"{done.mapping}: {'; '.join(parts)}"
          + (f" ({done.reason})" if done.reason and args.result == "success" else ""))
    return 0


# ---------------------------------------------------------------------- send
def _read_bodies(args: argparse.Namespace) -> list[str]:
    bodies = list(args.bodies)
    if args.file:
        try:
            if args.file == "-":  # standard input, read whole before anything is sent
                lines = sys.stdin.buffer.read().decode("utf-8").splitlines()
            else:
                lines = Path(args.file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise InputError(f"cannot read {args.file!r}: {exc.strerror}") from None
        except UnicodeDecodeError:
            where = "standard input" if args.file == "-" else repr(args.file)
            raise InputError(f"{where} is not UTF-8 text") from None
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                json.loads(line)
            except json.JSONDecodeError as exc:
                where = "<stdin>" if args.file == "-" else args.file
                raise InputError(f"{where}:{number}: invalid JSON: {exc.msg}") from None
            bodies.append(line)
    if args.count < 1:
        raise InputError(f"--count {args.count} must be at least 1")
    if not bodies:
        return [json.dumps({"n": i}) for i in range(args.count)]
    return [body for body in bodies for _ in range(args.count)]


def _read_attributes(args: argparse.Namespace) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for item in args.attribute:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InputError(f"--attribute {item!r} must be NAME=VALUE")
        attributes[name] = value
    return attributes


async def _send(args: argparse.Namespace, store: Store) -> int:
    bodies = _read_bodies(args)
    attributes = _read_attributes(args)
    await _declare(store, args.app)
    await store.get_queue(args.queue)
    sent = duplicates = 0
    for start in range(0, len(bodies), MAX_BATCH_ENTRIES):
        chunk = bodies[start : start + MAX_BATCH_ENTRIES]
        results = await store.send_batch(
            args.queue,
            [SendEntry(b, args.delay, attributes, None, args.group_id, args.dedup_id)
             for b in chunk],
        )
        sent += len(chunk)
        duplicates += sum(r.duplicate for r in results)
    line = f"sent {plural(sent, 'message')} to {args.queue}"
    if duplicates:
        line += f" ({plural(duplicates, 'duplicate')}, not delivered)"
    print(line)
    return 0


# ---------------------------------------------------------------------- put, publish
async def _put(args: argparse.Namespace, store: Store) -> int:
    from sluicegate.store.base import MAX_PUT_RECORDS, PutEntry

    args.bodies = args.data
    records = _read_bodies(args)
    await _declare(store, args.app)
    await store.get_stream(args.stream)
    for start in range(0, len(records), MAX_PUT_RECORDS):
        chunk = records[start : start + MAX_PUT_RECORDS]
        await store.put_records(args.stream, [PutEntry(args.partition_key, r) for r in chunk])
    n = len(records)
    print(f"put {plural(n, 'record')} to {args.stream}")
    return 0


async def _publish(args: argparse.Namespace, store: Store) -> int:
    from sluicegate.loader import load_app

    bodies = _read_bodies(args)
    attributes = _read_attributes(args)
    app = load_app(args.app)
    topic = app.topics.get(args.topic)
    if topic is None:
        known = ", ".join(sorted(app.topics)) or "none"
        raise InputError(f"topic {args.topic!r} is not defined by {args.app!r} (topics: {known})")
    await _declare(store, args.app)
    duplicates = 0
    for body in bodies:
        results = await store.publish(
            topic, body, attributes=attributes, group_id=args.group_id,
            deduplication_id=args.dedup_id,
        )
        duplicates += any(r.duplicate for r in results.values())
    n = len(bodies)
    line = (f"published {plural(n, 'message')} to {args.topic} "
            f"({plural(len(topic.subscribers) + len(topic.functions), 'subscriber')})")
    if duplicates:
        line += f"; {plural(duplicates, 'duplicate')}, not delivered"
    print(line)
    return 0


# ---------------------------------------------------------------------- invoke
def _read_text(path: str) -> tuple[str, str]:
    """The text of file ``path`` (``-``: standard input), and how to name it in errors.

    Raises:
        InputError: it cannot be read, or is not UTF-8.
    """
    where = "standard input" if path == "-" else repr(path)
    try:
        return (sys.stdin.read() if path == "-"
                else Path(path).read_text(encoding="utf-8")), where
    except OSError as exc:
        raise InputError(f"cannot read {path!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"{where} is not UTF-8 text") from None


def _invoke_event(args: argparse.Namespace) -> Any:
    """The event of ``sluicegate invoke``: PAYLOAD, --file, or ``{}``."""
    if args.payload is not None and args.file:
        raise InputError("give the event as PAYLOAD or --file, not both")
    text = args.payload
    where = "PAYLOAD"
    if args.file:
        text, where = _read_text(args.file)
    if text is None:
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where} is not JSON: {exc.msg} (line {exc.lineno}, "
                         f"column {exc.colno})") from None


def _invoke_now(args: argparse.Namespace) -> int:
    """``sluicegate invoke FUNCTION``: run the handler now, print its response."""
    from sluicegate.invocation import invoke
    from sluicegate.loader import load_app

    event = _invoke_event(args)
    app = load_app(args.app)
    result = invoke(app, args.function, event)
    print(json.dumps(result.payload, indent=2))
    if result.function_error:
        document = result.payload
        print(f"sluicegate: {args.function} failed ({result.function_error}): "
              f"{document.get('errorType')}: {document.get('errorMessage')}",
              file=sys.stderr)
        return EXIT_ERROR
    return 0


async def _invoke_async(args: argparse.Namespace, store: Store) -> int:
    """``sluicegate invoke FUNCTION --async``: accept the event into the store."""
    from sluicegate.invocation import ainvoke
    from sluicegate.loader import load_app

    event = _invoke_event(args)
    app = load_app(args.app)
    result = await ainvoke(app, args.function, event, invocation_type="Event", store=store)
    print(f"accepted event {result.request_id} for {args.function} (202): a running App "
          "invokes it")
    return 0


# ---------------------------------------------------------------------- put-events
def _event_entries(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The PutEvents entries of ``sluicegate put-events``."""
    entries: list[dict[str, Any]] = []
    if args.details and not (args.source and args.detail_type):
        raise InputError("DETAIL needs --source and --detail-type")
    for detail in args.details:
        try:
            parsed = json.loads(detail)
        except json.JSONDecodeError as exc:
            raise InputError(f"DETAIL {detail[:40]!r} is not JSON: {exc.msg}") from None
        if not isinstance(parsed, dict):
            raise InputError(f"DETAIL {detail[:40]!r} is not a JSON object")
        entries.append({"Source": args.source, "DetailType": args.detail_type,
                        "Detail": detail})
    if args.file:
        text, where = _read_text(args.file)
        try:
            loaded = json.loads(text)
            found = loaded if isinstance(loaded, list) else [loaded]
        except json.JSONDecodeError:
            found = []
            for number, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    try:
                        found.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise InputError(f"{where}:{number}: invalid JSON: {exc.msg}"
                                         ) from None
        for number, entry in enumerate(found, 1):
            if not isinstance(entry, dict):
                raise InputError(f"{where}: entry {number} is not a JSON object")
            entries.append(entry)
    if not entries:
        raise InputError("no events: give DETAIL with --source and --detail-type, or --file")
    for entry in entries:
        entry.setdefault("EventBusName", args.bus)
        if isinstance(entry.get("Detail"), dict):
            entry["Detail"] = json.dumps(entry["Detail"])
    return entries


async def _put_events(args: argparse.Namespace, store: Store) -> int:
    """``sluicegate put-events BUS``: PutEvents on the App's buses, 10 entries a call."""
    from sluicegate.core.events_bus import batches
    from sluicegate.loader import load_app
    from sluicegate.runtime.buses import put_events
    from sluicegate.runtime.events import aws_identity

    entries = _event_entries(args)
    app = load_app(args.app)
    if args.bus not in app.buses:
        known = ", ".join(sorted(app.buses)) or "none"
        raise InputError(f"event bus {args.bus!r} is not defined by {args.app!r} "
                         f"(buses: {known})")
    await _declare(store, args.app)
    region, account = aws_identity()
    accepted = failed = 0
    for batch in batches(entries):
        result = await put_events(store, app, batch, region=region, account_id=account)
        for entry in result.entries:
            if entry.ok:
                accepted += 1
            else:
                failed += 1
                print(f"sluicegate: entry refused: {entry.error_code}: {entry.error_message}",
                      file=sys.stderr)
    print(f"put {plural(accepted, 'event')} on {args.bus}"
          + (f"; {failed} refused" if failed else ""))
    return EXIT_ERROR if failed else 0


# ---------------------------------------------------------------------- queues
async def _queues(args: argparse.Namespace, store: Store) -> int:
    from sluicegate.core.async_events import function_of_async_queue
    from sluicegate.core.buses import bus_of_queue

    await _declare(store, args.app)
    rows: list[dict[str, Any]] = []
    for config in await store.list_queues():
        counts = await store.counts(config.name)
        internal = (function_of_async_queue(config.name) is not None
                    or bus_of_queue(config.name) is not None)
        if internal and not counts.total:
            continue  # a function's internal queue, or a bus's, is shown while it holds some
        rows.append({
            "name": config.name,
            "visible": counts.visible,
            "in_flight": counts.in_flight,
            "delayed": counts.delayed,
            "oldest_age": round(counts.oldest_age, 3),
            "dead_lettered": counts.dead_lettered,
            "fifo": config.fifo,
            "active_groups": counts.active_groups,
            "groups_in_flight": counts.groups_in_flight,
            "visibility_timeout": config.visibility_timeout,
            "dead_letter_queue": config.dead_letter_queue,
            "max_receive_count": config.max_receive_count,
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.table import Table

    from sluicegate.tables import print_table

    table = Table("queue", "visible", "in flight", "delayed", "oldest age (s)",
                  "dead-lettered", "groups (in flight)", "DLQ", box=None)
    for r in rows:
        dlq = f"{r['dead_letter_queue']} after {r['max_receive_count']}" if r[
            "dead_letter_queue"] else "-"
        groups = f"{r['active_groups']} ({r['groups_in_flight']})" if r["fifo"] else "-"
        table.add_row(r["name"], str(r["visible"]), str(r["in_flight"]), str(r["delayed"]),
                      f"{r['oldest_age']:.1f}", str(r["dead_lettered"]), groups, dlq)
    if not rows:
        print("no queues")
    else:
        print_table(table)
    return 0


# ---------------------------------------------------------------------- streams
async def _streams(args: argparse.Namespace, store: Store) -> int:
    await _declare(store, args.app)
    now = store.clock()
    out: list[dict[str, Any]] = []
    for config in await store.list_streams():
        shards = await store.shards(config.name)
        mappings: dict[str, Any] = {}
        for mapping, checkpoints in sorted((await store.stream_checkpoints(config.name)).items()):
            per_shard: dict[str, Any] = {}
            for info in shards:
                checkpoint = checkpoints.get(info.shard)
                # iterator age: how long the oldest record not yet settled has waited
                pending = await store.get_records(
                    config.name, info.shard, after=checkpoint, limit=1
                )
                age_ms = round((now - pending[0].approximate_arrival) * 1000) if pending else 0
                per_shard[info.shard_id] = {"checkpoint": checkpoint, "iterator_age_ms": age_ms}
            mappings[mapping] = per_shard
        out.append({
            "name": config.name,
            "shard_count": config.shard_count,
            "retention_period": config.retention_period,
            "shards": [
                {
                    "shard_id": info.shard_id,
                    "starting_hash_key": str(info.starting_hash_key),
                    "ending_hash_key": str(info.ending_hash_key),
                    "records": info.records,
                    "first_sequence": info.first_sequence,
                    "latest_sequence": info.latest_sequence,
                }
                for info in shards
            ],
            "mappings": mappings,
        })
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    if not out:
        print("no streams")
        return 0
    from rich.console import Console
    from rich.table import Table

    from sluicegate.tables import print_table

    console = Console()
    for stream in out:
        table = Table("shard", "records", "latest sequence",
                      *[f"{m} checkpoint / age" for m in stream["mappings"]],
                      title=f"{stream['name']} ({plural(stream['shard_count'], 'shard')})",
                      title_justify="left", box=None)
        for shard in stream["shards"]:
            cells = []
            for per_shard in stream["mappings"].values():
                cp = per_shard[shard["shard_id"]]
                mark = "-" if cp["checkpoint"] is None else str(cp["checkpoint"])
                cells.append(f"{mark} / {cp['iterator_age_ms'] / 1000:.1f} s")
            latest = shard["latest_sequence"]
            table.add_row(shard["shard_id"], str(shard["records"]),
                          "-" if latest < 0 else str(latest), *cells)
        print_table(table, console)
    return 0


# ---------------------------------------------------------------------- redrive
async def _redrive(args: argparse.Namespace, store: Store) -> int:
    moved = await store.redrive(args.dlq, args.to)
    where = args.to or "their source queues"
    print(f"moved {plural(moved, 'message')} from {args.dlq} to {where}")
    return 0


# ---------------------------------------------------------------------- peek, purge
_INSPECTION = frozenset({"queues", "streams", "peek", "workers", "semaphores"})
"""Commands that only read the store: they open it read-only (a SQLite file is neither
created nor upgraded nor written, and may belong to another user or sit in a directory
this process cannot write), unless ``--app`` asks them to create the App's queues."""


def _whole(text: str, option: str, low: int, high: int) -> int:
    """``text`` as an integer in ``low``-``high``. Raises :class:`InputError` (one line)."""
    try:
        value = int(text, 10)
    except ValueError:
        raise InputError(f"{option} {text!r} is not a whole number") from None
    if not low <= value <= high:
        raise InputError(f"{option} {value} is out of range: allowed {low}-{high:,}")
    return value


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _duration(seconds: float) -> str:
    """A span of time for people: ``4.2 s``, ``3 min 5 s``, ``2 h 10 min``, ``3 d 4 h``."""
    seconds = max(0.0, seconds)
    if round(seconds, 1) < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    if whole < 86_400:
        return f"{whole // 3600} h {whole % 3600 // 60} min"
    return f"{whole // 86_400} d {whole % 86_400 // 3600} h"


def _utc(epoch: float) -> str:
    """Epoch seconds as ISO 8601 UTC with milliseconds."""
    import datetime

    moment = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _print_blocks(blocks: list[list[tuple[str, str]]], heading: str) -> None:
    """Plain text for pipes and files: the heading, then per item its ``label: value``
    lines (the first one flush left, the others indented), a blank line between items.
    Nothing is cut; a value's own line breaks are kept, indented under it."""
    print(heading)
    for block in blocks:
        print()
        for i, (label, value) in enumerate(block):
            indent = "" if i == 0 else "  "
            text = value.replace("\n", "\n" + indent + "  ")
            print(f"{indent}{label}: {text}")


def _print_table(headers: Sequence[str], rows: list[list[str]], heading: str) -> None:
    """A table for a terminal: every column wraps and long words fold instead of being
    cut. Not :func:`sluicegate.tables.print_table`, which never breaks a word: message
    bodies and record data are long unbroken words that must still fit the terminal."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, show_edge=False)
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))  # Text: no markup in bodies
    console = Console()
    console.print(heading, markup=False, highlight=False)
    console.print(table)


async def _peek(args: argparse.Namespace, store: Store) -> int:
    """``sluicegate peek``: a queue's messages, or a stream shard's records, as they
    are; nothing is received, so receive counts and visibility stay as they were."""
    from sluicegate.errors import QueueNotFound, StreamNotFound

    if args.shard is not None:
        return await _peek_stream(args, store)
    count = _whole(args.count, "--count", 1, MAX_PEEK)
    try:
        config = await store.get_queue(args.name)
    except QueueNotFound:
        try:
            stream = await store.get_stream(args.name)
        except StreamNotFound:
            raise InputError(f"no queue or stream named {args.name!r}") from None
        raise InputError(f"{args.name!r} is a stream: give --shard N "
                         f"(0-{stream.shard_count - 1})") from None
    if args.start is not None:
        raise InputError(f"--from is for streams; {args.name!r} is a queue")
    counts = await store.counts(config.name)
    messages = await store.peek(config.name, limit=count)
    now = store.clock()
    from sluicegate.runtime.events import queue_arn

    rows: list[dict[str, Any]] = []
    for m in messages:
        system = {
            "SenderId": m.sender_id,
            "SentTimestamp": str(int(m.sent_timestamp * 1000)),
            "ApproximateReceiveCount": str(m.receive_count),
        }
        if m.first_receive_timestamp is not None:
            system["ApproximateFirstReceiveTimestamp"] = str(
                int(m.first_receive_timestamp * 1000))
        if m.group_id is not None:
            system["MessageGroupId"] = m.group_id
            system["MessageDeduplicationId"] = m.deduplication_id or ""
            system["SequenceNumber"] = m.sequence_number or ""
        if m.source_queue is not None:
            system["DeadLetterQueueSourceArn"] = queue_arn(m.source_queue)
        rows.append({
            "message_id": m.message_id,
            "state": m.state,
            "visible_in_seconds": (None if m.visible_at is None
                                   else round(m.visible_at - now, 3)),
            "age_seconds": round(now - m.sent_timestamp, 3),
            "sent": _utc(m.sent_timestamp),
            "receive_count": m.receive_count,
            "group_id": m.group_id,
            "deduplication_id": m.deduplication_id,
            "sequence_number": m.sequence_number,
            "source_queue": m.source_queue,
            "body": m.body,
            "md5_of_body": m.md5_of_body,
            "attributes": system,
            "message_attributes": m.attributes,
        })
    if args.json:
        print(json.dumps({
            "queue": config.name,
            "dead_letter_queue": config.dead_letter_queue,
            "max_receive_count": config.max_receive_count,
            "visible": counts.visible,
            "in_flight": counts.in_flight,
            "delayed": counts.delayed,
            "messages": rows,
        }, indent=2, ensure_ascii=False))
        return 0
    heading = (f"queue {config.name}: {_plural(counts.total, 'message')} ({counts.visible} "
               f"visible, {counts.in_flight} in flight, {counts.delayed} delayed)")
    if config.dead_letter_queue is not None:
        heading += (f", dead-lettered to {config.dead_letter_queue} after "
                    f"{_plural(config.max_receive_count or 0, 'receive')}")
    if rows:
        heading += (f"; showing the oldest {len(rows)}" if len(rows) < counts.total
                    else "; oldest first")
    states = {"visible": "visible", "in_flight": "in flight", "delayed": "delayed"}

    def state(r: dict[str, Any]) -> str:
        text = states[r["state"]]
        if r["visible_in_seconds"] is not None:
            text += f", visible in {_duration(r['visible_in_seconds'])}"
        return text

    def attributes(r: dict[str, Any]) -> list[str]:
        return [f"{name}={value.get('StringValue', value.get('BinaryValue', ''))} "
                f"({value['DataType']})" for name, value in r["message_attributes"].items()]

    if not sys.stdout.isatty():
        blocks = []
        for r in rows:
            block = [("message", r["message_id"]), ("state", state(r)),
                     ("age", f"{_duration(r['age_seconds'])} (sent {r['sent']})"),
                     ("receive count", str(r["receive_count"]))]
            if r["group_id"] is not None:
                block += [("group", r["group_id"]),
                          ("deduplication id", r["deduplication_id"] or ""),
                          ("sequence number", r["sequence_number"] or "")]
            if r["source_queue"] is not None:
                block.append(("dead-lettered from", r["source_queue"]))
            block += [("attribute", a) for a in attributes(r)]
            block.append(("body", r["body"]))
            blocks.append(block)
        _print_blocks(blocks, heading)
        return 0
    fifo = config.fifo
    dead = any(r["source_queue"] is not None for r in rows)
    headers = ["message id", "state", "age", "receives"]
    headers += ["group / dedup id"] if fifo else []
    headers += ["from"] if dead else []
    headers += ["attributes", "body"]
    table = []
    for r in rows:
        cells = [r["message_id"], state(r), _duration(r["age_seconds"]), str(r["receive_count"])]
        if fifo:
            cells.append(f"{r['group_id']} / {r['deduplication_id']}")
        if dead:
            cells.append(r["source_queue"] or "-")
        cells += ["\n".join(attributes(r)) or "-", r["body"]]
        table.append(cells)
    _print_table(headers, table, heading)
    return 0


async def _peek_stream(args: argparse.Namespace, store: Store) -> int:
    """``sluicegate peek STREAM --shard N``: a shard's records from ``--from`` on (the
    oldest retained by default), and which mappings' checkpoints have passed each."""
    from sluicegate.core.streams import shard_id
    from sluicegate.errors import QueueNotFound, StreamNotFound
    from sluicegate.store.base import MAX_GET_RECORDS

    count = _whole(args.count, "--count", 1, MAX_GET_RECORDS)
    try:
        config = await store.get_stream(args.name)
    except StreamNotFound:
        try:
            await store.get_queue(args.name)
        except QueueNotFound:
            raise InputError(f"no stream named {args.name!r}") from None
        raise InputError(f"--shard is for streams; {args.name!r} is a queue") from None
    shard = _whole(args.shard, "--shard", 0, 2**31)
    if shard >= config.shard_count:
        raise InputError(f"--shard {shard} is out of range: stream {config.name!r} has "
                         f"{_plural(config.shard_count, 'shard')}, 0-{config.shard_count - 1}")
    start = None if args.start is None else _whole(args.start, "--from", 0, 2**63 - 1)
    records = await store.get_records(
        config.name, shard, after=None if start is None else start - 1, limit=count)
    info = (await store.shards(config.name))[shard]
    checkpoints = {mapping: per_shard.get(shard) for mapping, per_shard
                   in sorted((await store.stream_checkpoints(config.name)).items())}
    now = store.clock()
    rows: list[dict[str, Any]] = []
    for r in records:
        try:
            data, encoding = r.data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            import base64

            data, encoding = base64.b64encode(r.data).decode("ascii"), "base64"
        rows.append({
            "sequence_number": r.sequence_number,
            "partition_key": r.partition_key,
            "approximate_arrival": _utc(r.approximate_arrival),
            "age_seconds": round(now - r.approximate_arrival, 3),
            "data": data,
            "data_encoding": encoding,
            "checkpoint_passed": {m: cp is not None and r.sequence_number <= cp
                                  for m, cp in checkpoints.items()},
        })
    if args.json:
        print(json.dumps({
            "stream": config.name,
            "shard": shard,
            "shard_id": shard_id(shard),
            "records_retained": info.records,
            "checkpoints": checkpoints,
            "records": rows,
        }, indent=2, ensure_ascii=False))
        return 0
    heading = (f"stream {config.name} shard {shard} ({shard_id(shard)}): "
               f"{_plural(info.records, 'record')} retained")
    if info.first_sequence is not None:
        heading += f", sequence numbers {info.first_sequence}-{info.latest_sequence}"
    heading += "; checkpoints: " + (", ".join(
        f"{m} at {'none' if cp is None else cp}" for m, cp in checkpoints.items())
        or "none (no mapping has read it)")

    def passed(r: dict[str, Any]) -> str:
        marks = [f"{m} {'passed' if ok else 'not yet'}" for m, ok in r["checkpoint_passed"].items()]
        return ", ".join(marks) or "-"

    def shown(r: dict[str, Any]) -> str:
        return r["data"] if r["data_encoding"] == "utf-8" else f"(base64) {r['data']}"

    if not sys.stdout.isatty():
        _print_blocks([[("record", str(r["sequence_number"])),
                        ("partition key", r["partition_key"]),
                        ("age", f"{_duration(r['age_seconds'])} (arrived "
                                f"{r['approximate_arrival']})"),
                        ("checkpoints", passed(r)),
                        ("data", shown(r))] for r in rows], heading)
        return 0
    _print_table(["sequence", "partition key", "age", "checkpoints", "data"],
                 [[str(r["sequence_number"]), r["partition_key"], _duration(r["age_seconds"]),
                   passed(r), shown(r)] for r in rows], heading)
    return 0


async def _purge(args: argparse.Namespace, store: Store) -> int:
    """``sluicegate purge``: delete every message of a queue (visible, in flight and
    delayed), after a confirmation on a terminal or with ``--yes``."""
    await store.get_queue(args.queue)
    counts = await store.counts(args.queue)
    if not args.yes:
        if not sys.stdin.isatty():
            raise InputError(f"purge deletes every message of queue {args.queue!r} "
                             f"({counts.total} now): add --yes when not on a terminal")
        print(f"purge queue {args.queue!r}: delete its {_plural(counts.total, 'message')} "
              f"({counts.visible} visible, {counts.in_flight} in flight, {counts.delayed} "
              "delayed)? [y/N] ", end="", file=sys.stderr, flush=True)
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            print("purge cancelled: nothing deleted", file=sys.stderr)
            return 1
    purged = await store.purge(args.queue)
    print(f"purged {_plural(purged, 'message')} from {args.queue}")
    return 0


# ---------------------------------------------------------------------- simulate
def _load_any(path: str, overrides: Sequence[str], seed: int | None,
              load: str | None = None) -> Scenario | StreamScenario | TopicScenario | World:
    """Read a scenario file of any kind (queue, ``[stream]`` or ``[topic]``), or an App
    and its load file, with ``--set`` overrides (applied to the load) and ``--seed``.

    Parameters:
        path: the file named on the command line (always read as a file), or with
            ``load`` the App (``jobs.py``, ``jobs.py:app``, ``module:attr``).
        overrides: ``KEY=VALUE`` strings.
        seed: the seed to use, or ``None`` for the scenario's own.
        load: the load file (``--load``), or ``None`` for a scenario file.

    Raises:
        ScenarioError: the file cannot be read, is not TOML (the message gives the line),
            or holds (or is given) an invalid value; one line naming the file.
        AppLoadError: the App cannot be imported.
        InputError: an App named without ``--load``.
    """
    from sluicegate.sim import load_any_scenario

    extra = [] if seed is None else [f"seed={seed}"]
    if load is not None:
        from sluicegate.loader import load_app
        from sluicegate.sim.app_scenario import load_app_scenario

        app = load_app(path)
        return load_app_scenario(app, Path(load), overrides=[*overrides, *extra])
    if path.partition(":")[0].endswith(".py"):
        raise InputError(f"{path} is an App: give --load LOAD.toml with what arrives and "
                         "how its handlers behave (docs/simulate-your-app.md)")
    return load_any_scenario(Path(path), overrides=[*overrides, *extra])


def _name(run: Scenario | StreamScenario | TopicScenario | World) -> str:
    """The ``name`` of a scenario, or of the App and load a world was made of."""
    from sluicegate.sim.world import World

    if isinstance(run, World):
        return str(run.scenario.get("name") or "")
    return run.name


def _reseed(run: Scenario | StreamScenario | TopicScenario | World, seed: int
            ) -> Scenario | StreamScenario | TopicScenario | World:
    """``run`` with ``seed`` (a preset's variant: a scenario, or an App and a load)."""
    from sluicegate.sim import load_any_scenario
    from sluicegate.sim.world import World

    if isinstance(run, World):
        return dataclasses.replace(run, seed=seed, scenario={**run.scenario, "seed": seed})
    return load_any_scenario(run, overrides=[f"seed={seed}"])


def _presets() -> dict[str, Any]:
    """The preset registry (``sluicegate.sim.presets.PRESETS``).

    Raises:
        InputError: the presets module is not available.
    """
    try:
        module = importlib.import_module("sluicegate.sim.presets")
    except ImportError:
        raise InputError("no presets are available in this installation") from None
    registry: dict[str, Any] = module.PRESETS
    return registry


def _simulate(args: argparse.Namespace) -> int:
    """``sluicegate simulate``: run a scenario or a preset's variants and report them.

    Parameters:
        args: the parsed command line.

    Returns:
        0 on success.

    Raises:
        SluicegateError: bad arguments, scenario or preset; the file outputs' errors.
    """
    from sluicegate.sim import simulate_any
    from sluicegate.sim.report import print_report, write_csv, write_json

    if args.list_presets:
        registry = _presets()
        width = max((len(name) for name in registry), default=0)
        for name, preset in registry.items():
            print(f"{name:<{width}}  {preset.description}")
        return 0
    if (args.scenario is None) == (args.preset is None):
        raise InputError("give exactly one of SCENARIO.toml, APP --load LOAD.toml and "
                         "--preset NAME")
    if args.load is not None and args.preset is not None:
        raise InputError("--load goes with an App, not with --preset")
    if args.plot:
        from sluicegate.sim.plot import plot_format

        plot_format(args.plot)  # a wrong extension is refused before simulating
    runs: list[tuple[str, Scenario | StreamScenario | TopicScenario | World]]
    if args.preset is not None:
        registry = _presets()
        if args.preset not in registry:
            known = ", ".join(sorted(registry)) or "none"
            raise InputError(f"unknown preset {args.preset!r} (known: {known})")
        variants = list(registry[args.preset].variants(list(args.overrides)))
        runs = [(name, scenario if args.seed is None else _reseed(scenario, args.seed))
                for name, scenario in variants]
    else:
        scenario = _load_any(args.scenario, args.overrides, args.seed, args.load)
        runs = [(_name(scenario), scenario)]
    if not runs:
        raise InputError(f"preset {args.preset!r} has no variants")
    results = [(name, simulate_any(scenario)) for name, scenario in runs]
    output: dict[str, Any]
    if len(results) == 1:
        output = results[0][1].to_dict()
    else:
        output = {"variants": [{"name": name, **result.to_dict()} for name, result in results]}
    title = args.preset or (_name(runs[0][1]) if len(runs) == 1 else "") or (
        Path(args.scenario).stem if args.scenario else None)
    print_report(output, title=title or None)
    written: list[Path] = []
    try:
        if args.json:
            written.append(write_json(args.json, output))
        if args.csv:
            written.append(write_csv(args.csv, output))
        if args.plot:
            from sluicegate.sim.plot import plot

            written.append(plot(output, args.plot, title=title or None))
    except OSError as exc:
        raise InputError(f"cannot write {exc.filename}: {exc.strerror or exc}") from None
    finally:
        for path in written:
            print(f"wrote {path}")
    return 0


# ---------------------------------------------------------------------- plan
def _parse_values(text: str) -> list[int]:
    """``--values 2,5,10`` as integers.

    Raises:
        InputError: an item is not an integer, or there is none.
    """
    values: list[int] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            values.append(int(item))
        except ValueError:
            raise InputError(f"--values {text!r}: {item!r} is not an integer") from None
    if not values:
        raise InputError(f"--values {text!r} names no value")
    return values


def _plan(args: argparse.Namespace) -> int:
    """``sluicegate plan``: sweep a mapping's setting (:mod:`sluicegate.sim.plan`) and
    recommend one.

    Parameters:
        args: the parsed command line.

    Returns:
        0 whether or not a setting fits (the recommendation line says which).

    Raises:
        SluicegateError: bad arguments or scenario; the JSON file cannot be written.
    """
    from rich.console import Console
    from rich.table import Table

    from sluicegate.sim.plan import plan, swept_downstream_limit, swept_scenario
    from sluicegate.sim.world import World
    from sluicegate.tables import print_table

    scenario = _load_any(args.scenario, args.overrides, args.seed, args.load)
    values = None if args.values is None else _parse_values(args.values)
    max_age = None
    if args.max_age is not None:
        from sluicegate.sim.schema import ScenarioError, parse_duration

        try:
            max_age = parse_duration(args.max_age, "--max-age", "plan")
        except ScenarioError as exc:
            raise InputError(str(exc)) from None
    limit = args.downstream_limit
    if limit is not None:
        pass
    elif isinstance(scenario, World):  # the swept mapping's function's downstream
        limit = swept_downstream_limit(scenario, args.mapping)
    elif args.mapping is None:  # (plan refuses a mapping named for a scenario)
        downstream = swept_scenario(scenario, args.subscriber).downstream
        if downstream is not None:
            limit = downstream.concurrency
    result = plan(scenario, downstream_limit=limit, values=values, subscriber=args.subscriber,
                  mapping=args.mapping, max_age=max_age)
    stream = result.parameter == "parallelization_factor"
    reservation = result.parameter == "reserved_concurrency"

    title = f"{result.parameter} sweep: {_name(scenario) or args.scenario}"
    if args.subscriber is not None:
        title += f", subscriber {args.subscriber}"
    if result.mapping is not None:
        title += f", mapping {result.mapping}"
    if limit is not None:
        title += f" (downstream limit {limit})"
    if max_age is not None:
        title += f" (age target {max_age:g} s)"
    # two lines, so that each fits 80 columns
    caption = ("backlog Q4: records behind the checkpoints at 3/4 of the run -> at its "
               "end\np99 age: iterator age" if stream else
               "backlog Q4: events queued at 3/4 of the run -> at its end\n"
               "p99 age: of the oldest event; dropped: for their age" if reservation else
               "backlog Q4: queued messages at 3/4 of the run -> at its end\n"
               "p99 age: of the oldest message")
    table = Table(title=title, box=None, pad_edge=False, caption=caption)
    headers = ["factor" if stream else "reserved" if reservation else "max conc",
               "keeps up", "backlog Q4", "p99 age", "peak conc",
               "rec/s" if stream else "ev/s" if reservation else "msg/s", "errors",
               "throttles", *(["dropped"] if reservation else [])]
    for header in headers:
        table.add_column(header, no_wrap=True, justify="left" if header == "keeps up"
                         else "right")
    for s in result.settings:
        peak = str(s.peak_concurrency) + ("" if s.within_limit else f" > {limit}")
        age = f"{s.oldest_age_p99:.1f}s" + ("" if s.within_age else " >")
        table.add_row(str(s.value), "yes" if s.keeps_up else "no",
                      f"{s.backlog_start}->{s.backlog_end}", age,
                      peak, f"{s.throughput:.1f}", str(s.errors), str(s.throttles),
                      *([str(s.dropped)] if reservation else []))
    console = Console()
    print_table(table, console)
    if result.recommendation is None:
        console.print(f"recommendation: none: {result.reason}", markup=False, highlight=False,
                      soft_wrap=True)
    else:
        console.print(f"recommendation: {result.parameter}={result.recommendation}: "
                      f"{result.reason}", markup=False, highlight=False, soft_wrap=True)
    if args.json:
        text = json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n"
        target = Path(args.json)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(text.encode("utf-8"))
        except OSError as exc:
            raise InputError(f"cannot write {args.json}: {exc.strerror or exc}") from None
        print(f"wrote {target}")
    return 0


_OFFLINE: dict[str, Callable[[argparse.Namespace], int]] = {"simulate": _simulate, "plan": _plan}
"""Commands that need no store: they run in virtual time."""


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
