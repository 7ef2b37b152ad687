"""Process isolation (``isolation="process"``): execution environments as worker processes.

A :class:`ProcessInvoker` runs a function's invocations in worker processes, each one an
*execution environment* as Lambda has them:

- an environment runs one invocation at a time, so module-level state (the
  aws-lambda-powertools ``BatchProcessor`` kept as a module-level ``processor``, caches,
  counters) belongs to one invocation while it runs;
- environments are started lazily, up to ``max_workers``; a start is a *cold start*: the
  new process imports the handler's code itself (:func:`load_app` of the App's source, or
  the handler's module) before its first invocation;
- an environment is reused while warm, the most recently used first (LIFO), so a steady
  load keeps the same few environments warm and the others idle; one idle for
  :data:`~sluicegate.runtime.environments.ENVIRONMENT_IDLE_TIMEOUT` seconds is ended
  (checked whenever an invocation takes an environment). This bookkeeping is
  :class:`~sluicegate.runtime.environments.EnvironmentPool`, shared with the default
  in-process environments;
- an invocation that outlives its timeout has its process killed (``SIGKILL``): the
  handler really stops, unlike a thread; the slot is free at once and the next invocation
  starts a new environment;
- a process that dies during an invocation (``os._exit``, a segfault, the OOM killer) makes
  that invocation a function error, described as AWS does (``Runtime.ExitError``); a new
  environment replaces it at the next invocation.

**Start method.** Environments are started with multiprocessing's ``"spawn"`` method: a
fresh interpreter that imports only what the environment needs. Plain ``fork`` is out of
the question: the runtime has threads (sync handlers' workers, SQLite's), and a forked
child can inherit a lock held by one of them. ``"forkserver"`` would start environments
faster, but its server process is shared by everything in the process that uses that
method, its preloaded modules are a process-wide setting, it outlives :meth:`close`, and
it does not exist on Windows. Spawn keeps every environment self-contained and is what a
cold start is anyway: a new runtime importing the function's code. It costs a cold start
of about 0.1-0.2 s (interpreter start plus the imports); warm invocations do not pay it.
Spawn's usual rule applies: a script that starts a :class:`~sluicegate.runtime.driver.
Runtime` itself must do so under ``if __name__ == "__main__":``, since each environment
imports the main module again (that is also how handlers defined in such a script are
found).

**How results are awaited.** Parent and environment talk over a socket pair: frames of a
4-byte big-endian length and UTF-8 JSON. The parent's end is non-blocking and is read and
written with the event loop's ``sock_sendall``/``sock_recv``, which register the socket
with the loop's selector (``add_reader``/``add_writer``) only while an invocation waits;
the event loop is never blocked on a child. An environment's death is noticed as
end-of-file on its socket; killed processes are reaped when their
``multiprocessing`` sentinel becomes readable, again without blocking the loop.

**Marshalling.** The event goes to the environment as JSON text (a non-JSON event is the
caller's error: :class:`TypeError`). The environment builds its own
:class:`~sluicegate.runtime.events.LambdaContext` whose deadline is computed from the
remaining time the parent sends (monotonic clocks are not comparable across processes),
runs the handler, round-trips its return value with
:func:`~sluicegate.runtime.invoker.marshal_response` as the thread invoker does, and sends
back the response, or the marshal error, or the handler's exception described by
:func:`~sluicegate.runtime.invoker.describe_exception`, with the handler's duration.
Async handlers run to completion on an event loop of the environment: as
:func:`asyncio.run` would, but on one :class:`asyncio.Runner` kept for the environment's
life, so async clients a handler creates on first use keep working in warm invocations.

**Logging.** Handler failures are logged inside the environment with their traceback on
the ``sluicegate.handler`` logger, as the thread invoker logs them. Log records of an
environment (those, and the handler's own at or above the parent's root level) are relayed
to the parent with the next reply and handled there by the logger of the same name, so
the parent's logging configuration applies to them; ``record.process`` is the
environment's pid. Handlers' ``print`` output goes to the inherited stdout and stderr.

**Timing.** As on AWS, the function's timeout applies to the handler: it runs from the
moment the event is sent to a ready environment, and the handler's context gets all of
it. A cold start comes before and is bounded by :data:`INIT_TIMEOUT` of its own, so a
cold invocation lasts longer than the function's timeout in wall time: give a queue a
visibility timeout above the function's timeout plus a cold start (AWS advises six times
the function's timeout), or messages of a slow cold invocation can be received again
before it ends. An invocation cancelled during a cold start leaves the environment to
finish starting and serve the next invocation. ``HandlerResult.duration`` is the
handler's run time measured in the environment (Lambda's billed duration), or the time
since the event was sent when the environment did not report one.

An environment ignores ``SIGINT`` and ``SIGTERM`` (Ctrl-C in a terminal reaches every
process of the foreground group; the runtime decides when environments end) and exits by
itself when its parent dies.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import importlib
import importlib.machinery
import inspect
import itertools
import json
import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.process
import multiprocessing.util  # registers multiprocessing's exit hook before ours (see below)
import os
import signal
import socket
import struct
import sys
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

from sluicegate.app import App, Function
from sluicegate.core.config import FunctionConfig
from sluicegate.errors import ConfigError
from sluicegate.runtime.environments import (
    ENVIRONMENT_IDLE_TIMEOUT,
    INIT_TIMEOUT,
    Environment,
    EnvironmentPool,
    PooledInvoker,
    lookup_attribute,
)
from sluicegate.runtime.events import FUNCTION_VERSION, LambdaContext, function_arn
from sluicegate.runtime.invoker import (
    HANDLER_LOGGER_NAME,
    HandlerResult,
    describe_exception,
    marshal_response,
)

__all__ = [
    "INIT_TIMEOUT",
    "START_METHOD",
    "HandlerReference",
    "IsolatedHandlerError",
    "ProcessInvoker",
    "handler_reference",
]

START_METHOD: Final = "spawn"
"""The :mod:`multiprocessing` start method of execution environments (see the module
docstring for why not ``fork`` or ``forkserver``)."""

CLOSE_TIMEOUT = 5.0
"""Seconds :meth:`ProcessInvoker.close` with ``wait=True`` gives idle environments to exit
by themselves before killing them."""

REAP_TIMEOUT = 1.0
"""Longest wait in seconds for the exit status of a process that was killed or has closed
its end of the channel."""

EXIT_STATUS_WAIT = 0.25
"""Seconds an invocation whose environment died waits for the process's exit status, to
describe it (``exit status 3``, ``signal: SIGSEGV``); polled, never blocking the loop."""

PARENT_GONE_EXIT = 70
"""Exit status of an environment that exits because the runtime's process died."""

MAX_RELAYED_RECORDS = 1000
"""Log records an environment buffers between two replies; older ones are dropped first."""

READ_CHUNK = 1 << 16
"""Bytes the parent asks for per read while a reply's size is still unknown."""

MAX_READ = 1 << 22
"""Most bytes the parent asks for in one read of a large reply."""

_HEADER = struct.Struct("!I")
"""Frame header: the payload's length in bytes, big-endian."""

_log = logging.getLogger(HANDLER_LOGGER_NAME)

ReferenceKind = Literal["app", "import"]


# --------------------------------------------------------------------------- references


@dataclass(frozen=True, slots=True)
class HandlerReference:
    """How an execution environment finds a handler in a process of its own.

    Attributes:
        kind: ``"app"``: ``target`` is an App spec for :func:`~sluicegate.loader.load_app`
            and ``name`` the function's name in it; ``"import"``: ``target`` is a module
            name and ``name`` the handler's qualified name in it.
        target: the App spec or the module name.
        name: the function name or the qualified name.
    """

    kind: ReferenceKind
    target: str
    name: str

    def __str__(self) -> str:
        if self.kind == "app":
            return f"function {self.name!r} of app {self.target!r}"
        return f"{self.target}.{self.name}"

    def resolve(self) -> Callable[..., Any]:
        """Import the handler (in the environment's process).

        Returns:
            The handler.

        Raises:
            AppLoadError: the App cannot be loaded.
            ImportError: the module cannot be imported.
            LookupError: the App has no such function, or the module no such attribute.
            Exception: whatever importing the user's code raises.
        """
        if self.kind == "app":
            from sluicegate.loader import load_app  # only environments need it

            functions = load_app(self.target).functions
            if self.name not in functions:
                raise LookupError(f"app {self.target!r} has no function {self.name!r}")
            return functions[self.name].handler
        found: Any = importlib.import_module(self.target)
        for part in self.name.split("."):
            try:
                found = getattr(found, part)
            except AttributeError:
                raise LookupError(f"module {self.target!r} has no {self.name!r}") from None
        return found  # type: ignore[no-any-return]


def handler_reference(app: App, function: Function) -> HandlerReference:
    """How an execution environment will import ``function``'s handler.

    An App loaded by :func:`~sluicegate.loader.load_app` (``app.source`` set) is loaded
    again by its spec and the function taken by name. Otherwise the handler must be
    importable by module and qualified name: defined at module level in a module the
    environment can import (a module found on ``sys.path``, or the ``__main__`` script,
    which multiprocessing's spawn imports again in the child).

    Parameters:
        app: the App the function belongs to.
        function: the function.

    Returns:
        The reference.

    Raises:
        ConfigError: the handler cannot be imported in a new process.
    """
    if app.source is not None:
        return HandlerReference("app", app.source, function.name)
    handler = function.handler
    module_name = getattr(handler, "__module__", None)
    qualname = getattr(handler, "__qualname__", None)
    if (
        isinstance(module_name, str)
        and isinstance(qualname, str)
        and "<" not in qualname  # "<locals>", "<lambda>"
        and _importable_module(module_name)
        and lookup_attribute(sys.modules[module_name], qualname) is handler
    ):
        return HandlerReference("import", module_name, qualname)
    raise ConfigError(
        "isolation",
        "process",
        "only with an importable handler (defined at module level) or an App loaded from a "
        "file or module path (sluicegate run app.py): process isolation imports the handler "
        "again in each execution environment",
        f"function {function.name!r}",
    )


def _importable_module(name: str) -> bool:
    """Whether a new process could import the already imported module ``name``."""
    module = sys.modules.get(name)
    if module is None:
        return False
    if name == "__main__":
        # spawn imports the main script again in the child, unless it is a package's
        # __main__ or there is no script (an interactive session, python -c).
        spec = getattr(module, "__spec__", None)
        if spec is not None:
            return not str(spec.name).endswith("__main__")
        return getattr(module, "__file__", None) is not None
    spec = getattr(module, "__spec__", None)
    if spec is None or spec.name != name:
        return False  # built from a file under another name: not found by import
    top = name.partition(".")[0]
    if top in sys.builtin_module_names:
        return True
    return importlib.machinery.PathFinder.find_spec(top, sys.path) is not None


# --------------------------------------------------------------------------- errors


class IsolatedHandlerError(Exception):
    """A failure in an execution environment, known by its description.

    The handler's own exception stays in the environment's process (where it was logged
    with its traceback); the invocation's ``HandlerResult.error`` is this stand-in.

    Parameters:
        error_type: the exception's class name, or ``Runtime.ExitError``,
            ``Runtime.ImportModuleError``, ``Runtime.InitError`` for failures of the
            environment itself.
        description: one line, as :func:`describe_exception` gives it.

    Attributes:
        error_type, description: as given.
    """

    def __init__(self, error_type: str, description: str) -> None:
        super().__init__(description)
        self.error_type = error_type
        self.description = description


# --------------------------------------------------------------------------- framing


def _frame(message: dict[str, Any]) -> bytes:
    payload = json.dumps(message, separators=(",", ":")).encode("utf-8")
    return _HEADER.pack(len(payload)) + payload


def _request_frame(fields: dict[str, Any], remaining: float, event_json: str) -> bytes:
    """The frame of one invocation request; the event is already JSON text."""
    head = json.dumps({"remaining": remaining, "context": fields}, separators=(",", ":"))
    payload = f'{head[:-1]},"event":{event_json}}}'.encode()
    return _HEADER.pack(len(payload)) + payload


def _read_exact(stream: Any, size: int) -> bytes | None:
    data: bytes = stream.read(size)
    return data if len(data) == size else None


# --------------------------------------------------------------------------- environment side


@dataclass(frozen=True, slots=True)
class _Setup:
    """What a new environment is given at its start."""

    reference: HandlerReference
    function_name: str
    sys_path: tuple[str, ...]
    root_level: int
    handler_level: int


class _RelayHandler(logging.Handler):
    """Keeps an environment's log records until the next reply carries them to the parent."""

    def __init__(self) -> None:
        super().__init__()
        self._records: deque[dict[str, Any]] = deque(maxlen=MAX_RELAYED_RECORDS)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            exc_text = record.exc_text
            if exc_text is None and record.exc_info:
                exc_text = logging.Formatter().formatException(record.exc_info)
            self._records.append(
                {
                    "name": record.name,
                    "msg": record.getMessage(),
                    "levelno": record.levelno,
                    "levelname": record.levelname,
                    "pathname": record.pathname,
                    "filename": record.filename,
                    "module": record.module,
                    "lineno": record.lineno,
                    "funcName": record.funcName,
                    "created": record.created,
                    "msecs": record.msecs,
                    "thread": record.thread,
                    "threadName": record.threadName,
                    "process": record.process,
                    "processName": record.processName,
                    "exc_text": exc_text,
                    "stack_info": record.stack_info,
                }
            )
        except Exception:  # noqa: BLE001 - logging must never break an invocation
            self.handleError(record)

    def drain(self) -> list[dict[str, Any]]:
        """The records kept so far, oldest first; the buffer is emptied."""
        self.acquire()
        try:
            records = list(self._records)
            self._records.clear()
        finally:
            self.release()
        return records


def _exit_with_parent() -> None:
    """Exit the environment when the runtime's process dies, even in a busy handler."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    sentinel = parent.sentinel

    def watch() -> None:
        multiprocessing.connection.wait([sentinel])
        os._exit(PARENT_GONE_EXIT)

    threading.Thread(target=watch, name="sluicegate-parent-watch", daemon=True).start()


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _environment_main(channel: socket.socket, setup: _Setup) -> None:
    """An execution environment's life: import the handler, then serve invocations.

    Runs in the spawned process. Ends when the parent closes its end of the channel (or
    dies).
    """
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    _exit_with_parent()
    relay = _RelayHandler()
    root = logging.getLogger()
    # The only handler, installed before the user's code is imported so that its
    # basicConfig() is a no-op (as on AWS); handlers a re-imported main script added would
    # print what the parent prints again.
    root.handlers = [relay]
    root.setLevel(setup.root_level)
    _log.setLevel(setup.handler_level)
    missing = [entry for entry in setup.sys_path if entry not in sys.path]
    sys.path[:0] = missing
    reader = channel.makefile("rb")
    try:
        _serve(channel, reader, setup, relay)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the parent closed the channel or died: nobody to answer
    finally:
        reader.close()
        channel.close()


def _serve(channel: socket.socket, reader: Any, setup: _Setup, relay: _RelayHandler) -> None:
    """Import the handler, report it ready (or why not), then answer requests until EOF."""
    started = time.monotonic()
    try:
        handler = setup.reference.resolve()
        if not callable(handler):
            raise TypeError(f"{type(handler).__name__} object is not callable")
    except BaseException as exc:  # noqa: BLE001 - reported as the invocation's failure
        text = (
            f"Runtime.ImportModuleError: Unable to import {setup.reference}: "
            f"{describe_exception(exc)}"
        )
        _log.error("%s: %s", setup.function_name, text, exc_info=exc)
        channel.sendall(_frame({"kind": "init_error", "error_text": text, "logs": relay.drain()}))
        return
    init_duration = time.monotonic() - started
    channel.sendall(
        _frame({"kind": "ready", "init_duration": init_duration, "logs": relay.drain()})
    )
    runner: asyncio.Runner | None = None
    try:
        while True:
            header = _read_exact(reader, _HEADER.size)
            if header is None:
                return  # the parent closed the channel: shut down
            payload = _read_exact(reader, _HEADER.unpack(header)[0])
            if payload is None:
                return
            if runner is None:
                runner = asyncio.Runner()
            reply = _run_invocation(handler, json.loads(payload), runner, setup.function_name)
            reply["logs"] = relay.drain()
            channel.sendall(_frame(reply))
    finally:
        if runner is not None:
            runner.close()


def _run_invocation(
    handler: Callable[..., Any], request: dict[str, Any], runner: asyncio.Runner, name: str
) -> dict[str, Any]:
    """Run one invocation in the environment and build its reply (without logs)."""
    fields = request["context"]
    context = LambdaContext(
        function_name=fields["function_name"],
        memory_limit_in_mb=fields["memory_limit_in_mb"],
        invoked_function_arn=fields["invoked_function_arn"],
        aws_request_id=fields["aws_request_id"],
        function_version=fields["function_version"],
        timeout=request["remaining"],
    )
    reply = _invocation_reply(handler, request["event"], context, runner, name)
    # what the handler reported through context.report() goes back with the result
    if context.reported_latency is not None:
        reply["latency"] = context.reported_latency
    if context.reported_overload:
        reply["overload"] = True
    return reply


def _invocation_reply(
    handler: Callable[..., Any], event: Any, context: LambdaContext, runner: asyncio.Runner,
    name: str,
) -> dict[str, Any]:
    started = time.monotonic()
    try:
        value = handler(event, context)
        if inspect.isawaitable(value):
            value = runner.run(_awaited(value))
    except BaseException as exc:  # noqa: BLE001 - SystemExit too: a function error
        duration = time.monotonic() - started
        text = describe_exception(exc)
        _log.error("%s request %s failed: %s", name, context.aws_request_id, text, exc_info=exc)
        return {
            "kind": "result",
            "error_type": type(exc).__name__,
            "error_text": text,
            "duration": duration,
        }
    duration = time.monotonic() - started
    response, marshal_error = marshal_response(value)
    if marshal_error:
        _log.error("%s request %s: %s", name, context.aws_request_id, marshal_error)
        return {"kind": "result", "invalid": True, "error_text": marshal_error, "duration": duration}
    if isinstance(response, bytes):  # bytes that are not JSON pass through unchanged
        return {
            "kind": "result",
            "bytes": base64.b64encode(response).decode("ascii"),
            "duration": duration,
        }
    return {"kind": "result", "response": response, "duration": duration}


# --------------------------------------------------------------------------- runtime side


class _Environment(Environment):
    """The parent's handle on one execution environment."""

    __slots__ = ("buffer", "channel", "init_deadline", "loop", "process", "ready")

    def __init__(self, process: multiprocessing.process.BaseProcess, channel: socket.socket):
        super().__init__()
        self.process = process
        self.channel = channel
        #: Bytes received and not yet parsed (a read cut short keeps its part here).
        self.buffer = bytearray()
        #: The loop of the invocation using the environment (``None`` while idle).
        self.loop: asyncio.AbstractEventLoop | None = None
        #: It reported its handler imported; until then it is still in its cold start.
        self.ready = False
        #: ``time.monotonic()`` by which the cold start must be over (:data:`INIT_TIMEOUT`).
        self.init_deadline = time.monotonic() + INIT_TIMEOUT

    @property
    def alive(self) -> bool:
        return self.process.exitcode is None

    def usable(self) -> bool:
        return self.alive


_open_invokers: weakref.WeakSet[ProcessInvoker] = weakref.WeakSet()


def _close_open_invokers() -> None:
    """At interpreter exit, kill the environments of invokers nobody closed.

    Registered after :mod:`multiprocessing.util`'s own exit hook, so it runs first
    (``atexit`` runs hooks last-in first-out) and multiprocessing's join of its children
    then finds them gone instead of waiting for them.
    """
    for invoker in list(_open_invokers):
        invoker.close(wait=False)


atexit.register(_close_open_invokers)


class ProcessInvoker(PooledInvoker):
    """Runs invocations of one handler in execution environments (worker processes).

    It has the surface of :class:`~sluicegate.runtime.invoker.Invoker` that the runtime
    uses: ``await invoke(event, context)`` returns a
    :class:`~sluicegate.runtime.invoker.HandlerResult`, :meth:`close`, ``max_workers``.
    See the module docstring for the model.

    Parameters:
        reference: how environments import the handler (see :func:`handler_reference`).
        function: the function's configuration (name, timeout, memory size).
        max_workers: most environments alive at once; the caller sizes it to the
            function's concurrency. Environments are started on demand.
        timeout: seconds an invocation may run, overriding ``function.timeout`` (which
            cannot go below 1 s); for tests and callers that need a tighter limit.
        clock: monotonic clock in seconds, for durations measured in this process.
        idle_timeout: seconds an idle environment stays warm before its process ends.
        on_cold_start: called after each environment is started (metrics).

    Raises:
        ConfigError: ``max_workers`` below 1 or a ``timeout`` that is not a positive number.
    """

    def __init__(
        self,
        reference: HandlerReference,
        *,
        function: FunctionConfig,
        max_workers: int,
        timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        idle_timeout: float = ENVIRONMENT_IDLE_TIMEOUT,
        on_cold_start: Callable[[], None] | None = None,
    ) -> None:
        _check_workers(max_workers)
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not 0 < timeout < float("inf")
        ):
            raise ConfigError("timeout", timeout, "a positive number of seconds", "invoker")
        self.reference = reference
        self.function = function
        self.timeout: float = float(function.timeout if timeout is None else timeout)
        self.clock = clock
        self._mp = multiprocessing.get_context(START_METHOD)
        self.pool: EnvironmentPool[_Environment] = EnvironmentPool(
            self._start,
            self._end,
            limit=max_workers,
            idle_timeout=idle_timeout,
            on_cold_start=on_cold_start,
            name=function.name,
        )
        self._dying: dict[multiprocessing.process.BaseProcess, asyncio.AbstractEventLoop | None] = {}
        self._closed = False
        self._names = itertools.count(1)
        self._arn: str | None = None
        _open_invokers.add(self)

    def __repr__(self) -> str:
        return (
            f"<ProcessInvoker {self.function.name} {self.reference} "
            f"timeout={self.timeout:g}s environments={self.pool.live}>"
        )

    # ------------------------------------------------------------------ capacity
    @property
    def max_workers(self) -> int:
        """Most execution environments alive at once."""
        return self.pool.limit

    def resize(self, max_workers: int) -> None:
        """Change the number of environments that may be alive at once.

        Parameters:
            max_workers: 1 or more. Shrinking ends idle environments above the new size
                (the coldest first); busy ones finish their invocation first.

        Raises:
            ConfigError: ``max_workers`` below 1.
        """
        _check_workers(max_workers)
        self.pool.resize(max_workers)

    # ------------------------------------------------------------------ closing
    def close(self, wait: bool = True, timeout: float | None = None) -> None:
        """Stop accepting invocations and end every execution environment.

        Busy environments are killed at once: their invocations end as function errors
        (call it after in-flight invocations have returned). Every process is reaped
        before this returns, so none is left behind, not even as a zombie.

        Parameters:
            wait: let idle environments exit by themselves (their channel is closed;
                they run their exit handlers) for up to ``timeout`` seconds before they
                are killed. With ``False`` they are killed at once, which takes
                milliseconds.
            timeout: seconds to wait with ``wait``; :data:`CLOSE_TIMEOUT` when ``None``.
        """
        self._closed = True
        _open_invokers.discard(self)
        idle, busy = self.pool.close()
        leaving: list[_Environment] = []
        for env in idle:
            if wait and env.ready:
                env.retired = True
                env.channel.close()  # end-of-file: the environment returns and exits
                leaving.append(env)
            else:
                env.retired = True
                self._end(env)
        for env in busy:
            if env.loop is not None and not env.loop.is_closed():
                # An invocation awaits this channel: kill and reap the process; the
                # invocation sees end-of-file, ends as a function error and closes the
                # channel and the process object.
                if env.process.exitcode is None:
                    env.process.kill()
                    env.process.join(REAP_TIMEOUT)
            else:
                env.retired = True
                self._end(env)
        if leaving:
            deadline = time.monotonic() + (CLOSE_TIMEOUT if timeout is None else timeout)
            multiprocessing.connection.wait(
                [env.process.sentinel for env in leaving],
                timeout=max(0.0, deadline - time.monotonic()),
            )
            for env in leaving:
                env.process.join(max(0.0, deadline - time.monotonic()))
                if env.process.exitcode is None:
                    env.process.kill()
                self._dying[env.process] = None
        for process, loop in list(self._dying.items()):
            if loop is not None and not loop.is_closed():
                loop.remove_reader(process.sentinel)
            self._reap(process, REAP_TIMEOUT)

    # ------------------------------------------------------------------ invoking
    def new_context(self, *, aws_request_id: str | None = None) -> LambdaContext:
        """A context for an invocation starting now, with this invoker's timeout.

        Parameters:
            aws_request_id: see :class:`LambdaContext`.

        Returns:
            A context whose deadline is ``clock() + timeout`` (the environment computes
            its own from the remaining time).
        """
        return LambdaContext.for_function(
            self.function, timeout=self.timeout, clock=self.clock, aws_request_id=aws_request_id
        )

    async def invoke(self, event: Any, context: Any) -> HandlerResult:
        """Run the handler once in an execution environment.

        The function's timeout runs from the moment the event is sent to a ready
        environment, as on AWS: the handler's context gets all of it. Waiting for a free
        environment and a cold start come before (a cold start within
        :data:`INIT_TIMEOUT`).

        Parameters:
            event: the invocation payload; it must be JSON-serializable (it is sent as
                JSON text, as Lambda receives it).
            context: a :class:`LambdaContext` or any object; its ``aws_request_id``,
                ``invoked_function_arn``, ``memory_limit_in_mb`` and ``function_version``
                are given to the environment's context (the function's when missing).

        Returns:
            The :class:`HandlerResult`. Failures of the handler are logged by its
            environment, failures of the environment (timeout, exit, start) here, all on
            ``sluicegate.handler``.

        Raises:
            TypeError: ``event`` cannot be serialized as JSON.
            asyncio.CancelledError: the task awaiting ``invoke`` was cancelled; an
                environment running the handler is killed.
            RuntimeError: the invoker is closed.
            OSError: a new environment was needed and could not be started (process or
                file limits).
        """
        if self._closed:
            raise RuntimeError(f"invoker of {self.function.name!r} is closed")
        fields = self._context_fields(context)
        request_id = fields["aws_request_id"]
        try:
            event_json = json.dumps(event, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"an isolated invocation's event must be JSON: {exc}") from None
        frame = _request_frame(fields, self.timeout, event_json)
        del event_json
        loop = asyncio.get_running_loop()
        clock = self.clock
        env: _Environment | None = None
        running = False  # the request is on its way: the environment is the handler's
        try:
            env = await self._acquire(loop)
            env.loop = loop
            if not env.ready:
                failure = await self._await_ready(env, request_id)
                if failure is not None:
                    return failure
            running = True
            sent = clock()
            deadline = asyncio.timeout(self.timeout)
            try:
                async with deadline:
                    try:
                        await loop.sock_sendall(env.channel, frame)
                    except ConnectionError:
                        pass  # it died: the read below sees end-of-file
                    reply = await self._read_frame(loop, env)
            except TimeoutError:
                if not deadline.expired():
                    raise
                self._retire(env)
                text = f"Task timed out after {self.timeout:.2f} seconds"
                _log.error("%s request %s: %s", self.function.name, request_id, text)
                return HandlerResult(timed_out=True, error_text=text, duration=clock() - sent)
        except asyncio.CancelledError:
            self._abandon(env, running)
            raise
        except BaseException:
            if env is not None:  # a bug of ours, or KeyboardInterrupt: state unknown
                self._retire(env)
            raise
        if reply is None:
            return await self._exited(env, request_id, clock() - sent)
        self._release(env)
        result = _result(reply)
        if result.latency is not None or result.overload:
            # the environment's reports, also on the caller's context (as in-process
            # isolations leave them there)
            report = getattr(context, "report", None)
            if report is not None:
                report(latency=result.latency, overload=result.overload)
        return result

    def _abandon(self, env: _Environment | None, running: bool) -> None:
        """A cancelled invocation gives ``env`` up: kill it if it runs the handler; one
        still in its cold start is kept, to serve the next invocation."""
        if env is None:
            return
        if running:
            self._retire(env)
        else:
            self._release(env)

    def _context_fields(self, context: Any) -> dict[str, Any]:
        arn = getattr(context, "invoked_function_arn", None)
        if not isinstance(arn, str):
            if self._arn is None:
                self._arn = function_arn(self.function.name)
            arn = self._arn
        request_id = getattr(context, "aws_request_id", None)
        return {
            "function_name": self.function.name,
            "function_version": str(getattr(context, "function_version", FUNCTION_VERSION)),
            "invoked_function_arn": arn,
            "memory_limit_in_mb": str(
                getattr(context, "memory_limit_in_mb", self.function.memory_size)
            ),
            "aws_request_id": request_id if isinstance(request_id, str) else str(uuid.uuid4()),
        }

    # ------------------------------------------------------------------ environments
    async def _acquire(self, loop: asyncio.AbstractEventLoop) -> _Environment:
        """An environment for one invocation: the warmest idle one, else a new one when
        below ``max_workers``, else the next to be released (see
        :class:`~sluicegate.runtime.environments.EnvironmentPool`)."""
        if self._closed:
            raise RuntimeError(f"invoker of {self.function.name!r} is closed")
        self._reap_dead()
        env = self.pool.try_acquire()
        if env is None:
            env = await self.pool.acquire(loop)
        return env

    def _start(self) -> _Environment:
        """Start a new environment (a cold start); its readiness is awaited separately.

        Raises:
            OSError: the process could not be started (process or file limits).
        """
        setup = _Setup(
            reference=self.reference,
            function_name=self.function.name,
            sys_path=tuple(sys.path),
            root_level=logging.getLogger().getEffectiveLevel(),
            handler_level=_log.getEffectiveLevel(),
        )
        parent_end, child_end = socket.socketpair()
        try:
            process = self._mp.Process(
                target=_environment_main,
                args=(child_end, setup),
                name=f"sluicegate-{self.function.name}-{next(self._names)}",
            )
            process.start()
        except BaseException:
            parent_end.close()
            raise
        finally:
            child_end.close()  # the child has its own copy now
        parent_end.setblocking(False)
        return _Environment(process, parent_end)

    async def _await_ready(self, env: _Environment, request_id: str) -> HandlerResult | None:
        """Wait for ``env``'s cold start to end; a failed one ends the invocation.

        Returns:
            ``None`` when the environment is ready, else the invocation's result (the
            environment is then retired).
        """
        loop = asyncio.get_running_loop()
        start = self.clock()
        init = asyncio.timeout(max(0.0, env.init_deadline - time.monotonic()))
        try:
            async with init:
                reply = await self._read_frame(loop, env)
        except TimeoutError:
            if not init.expired():
                raise
            self._retire(env)
            text = f"Runtime.InitError: init timed out after {INIT_TIMEOUT:.2f} seconds"
            _log.error("%s request %s: %s", self.function.name, request_id, text)
            return HandlerResult(
                error=IsolatedHandlerError("Runtime.InitError", text),
                error_text=text,
                duration=self.clock() - start,
            )
        if reply is None:
            return await self._exited(env, request_id, self.clock() - start, during="init")
        if reply.get("kind") == "ready":
            env.ready = True
            return None
        self._retire(env)
        text = str(reply.get("error_text") or "Runtime.InitError")
        return HandlerResult(
            error=IsolatedHandlerError(text.partition(":")[0], text),
            error_text=text,
            duration=self.clock() - start,
        )

    async def _exited(
        self, env: _Environment, request_id: str, duration: float, during: str = "invoke"
    ) -> HandlerResult:
        """The environment died: describe it as Lambda's ``Runtime.ExitError``."""
        loop = asyncio.get_running_loop()
        until = loop.time() + EXIT_STATUS_WAIT
        try:
            while env.process.exitcode is None and loop.time() < until:
                await asyncio.sleep(0.001)
            code = env.process.exitcode
        finally:
            self._retire(env)
        if code is None:
            status = "closed its channel"
        elif code < 0:
            try:
                status = f"signal: {signal.Signals(-code).name}"
            except ValueError:
                status = f"signal: {-code}"
        else:
            status = f"exit status {code}"
        where = " during init" if during == "init" else ""
        text = f"Runtime.ExitError: Runtime exited{where} with error: {status}"
        _log.error("%s request %s: %s", self.function.name, request_id, text)
        return HandlerResult(
            error=IsolatedHandlerError("Runtime.ExitError", text),
            error_text=text,
            duration=duration,
        )

    def _release(self, env: _Environment) -> None:
        """Return ``env`` to the idle stack, on top (the warmest)."""
        if env.retired:
            return
        env.loop = None
        self.pool.release(env)

    def _retire(self, env: _Environment) -> None:
        """Kill an environment and free its slot at once; the process is reaped later.

        Call it only when no invocation awaits the environment's channel (its reader
        must not stay registered on a closed socket). Idempotent.
        """
        self.pool.retire(env)

    def _end(self, env: _Environment) -> None:
        """The pool retired ``env``: kill its process (reaped later), close its channel."""
        process = env.process
        if process.exitcode is None:
            process.kill()
        env.channel.close()
        if process.exitcode is not None:
            process.close()
        else:
            loop: asyncio.AbstractEventLoop | None
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            if loop is not None:
                loop.add_reader(process.sentinel, self._on_exit, process, loop)
            self._dying[process] = loop

    def _on_exit(
        self, process: multiprocessing.process.BaseProcess, loop: asyncio.AbstractEventLoop
    ) -> None:
        loop.remove_reader(process.sentinel)
        self._reap(process, REAP_TIMEOUT)

    def _reap(self, process: multiprocessing.process.BaseProcess, timeout: float) -> None:
        """Collect a dead process's exit status and release its resources."""
        self._dying.pop(process, None)
        process.join(timeout)
        if process.exitcode is None:  # not dead yet: stuck in the kernel; try once more
            process.kill()
            process.join(timeout)
        if process.exitcode is not None:
            process.close()

    def _reap_dead(self) -> None:
        """Reap dying processes whose loop went away before they were reaped."""
        for process, loop in list(self._dying.items()):
            if (loop is None or loop.is_closed()) and process.exitcode is not None:
                self._dying.pop(process, None)
                process.close()

    async def _read_frame(
        self, loop: asyncio.AbstractEventLoop, env: _Environment
    ) -> dict[str, Any] | None:
        """The next message from ``env``, or ``None`` at end-of-file."""
        buffer = env.buffer
        channel = env.channel
        while True:
            if len(buffer) >= _HEADER.size:
                (size,) = _HEADER.unpack_from(buffer)
                end = _HEADER.size + size
                if len(buffer) >= end:
                    message: dict[str, Any] = json.loads(buffer[_HEADER.size : end])
                    del buffer[:end]
                    _relay(message.pop("logs", None))
                    return message
                wanted = min(MAX_READ, max(READ_CHUNK, end - len(buffer)))
            else:
                wanted = READ_CHUNK
            try:
                chunk = await loop.sock_recv(channel, wanted)
            except ConnectionError:
                return None
            if not chunk:
                return None
            buffer += chunk


def _relay(records: list[dict[str, Any]] | None) -> None:
    """Hand an environment's log records to this process's loggers of the same names."""
    if not records:
        return
    for fields in records:
        logger = logging.getLogger(fields["name"])
        if logger.isEnabledFor(fields["levelno"]):
            logger.handle(logging.makeLogRecord(fields))


def _result(reply: dict[str, Any]) -> HandlerResult:
    duration = float(reply.get("duration", 0.0))
    text = str(reply.get("error_text", ""))
    raw = reply.get("latency")
    latency = float(raw) if isinstance(raw, (int, float)) else None
    overload = bool(reply.get("overload", False))
    if reply.get("invalid"):
        return HandlerResult(invalid_json=True, error_text=text, duration=duration,
                             latency=latency, overload=overload)
    if text:
        error = IsolatedHandlerError(str(reply.get("error_type", "Exception")), text)
        return HandlerResult(error=error, error_text=text, duration=duration,
                             latency=latency, overload=overload)
    if "bytes" in reply:
        return HandlerResult(response=base64.b64decode(reply["bytes"]), duration=duration,
                             latency=latency, overload=overload)
    return HandlerResult(response=reply.get("response"), duration=duration, latency=latency,
                         overload=overload)


def _check_workers(max_workers: int) -> None:
    if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
        raise ConfigError("max_workers", max_workers, "an integer >= 1", "invoker")
