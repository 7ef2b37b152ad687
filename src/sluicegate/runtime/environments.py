"""Execution environments in the runtime's process: the default isolation.

As on AWS, a function's invocations run in *execution environments*. An environment is
created on demand (a *cold start*), runs one invocation at a time, is reused while warm
(the most recently used first, so a steady load keeps the same few warm and the others
age out) and is reaped after :data:`ENVIRONMENT_IDLE_TIMEOUT` seconds idle. Each has its
own instance of the handler's module and of the user's own modules that module imports,
so module-level state (an aws-lambda-powertools ``BatchProcessor`` kept as a module-level
``processor``, a database connection, a cache, a counter) belongs to one invocation at a
time, as on AWS.

:class:`EnvironmentPool` keeps that bookkeeping (cold starts, warm reuse, idle reaping,
waiting for a free environment, counts) for both kinds of environment: the in-process
ones of :class:`ModuleInvoker` (``isolation="module"``, the default) and the worker
processes of :class:`~sluicegate.runtime.isolation.ProcessInvoker`
(``isolation="process"``).

**Fresh modules, one process.** A cold start of :class:`ModuleInvoker` executes the
handler's module again into a new module object, with a ``__builtins__`` of its own
whose ``__import__`` hands out the environment's copies of *user modules*: modules whose
file lies outside the standard library and the site-packages directories, and outside
sluicegate. A user module is copied the first time the environment imports it (at the
top of a copied module or lazily inside a function), parents first; packages, relative
imports, ``from package import submodule`` and ``import a.b`` all resolve to the
environment's copies. Third-party and standard-library modules are shared by every
environment, as is everything reached through them (``importlib.import_module`` is not
redirected either). Copies are never entered in ``sys.modules``: a copy keeps its
module's name (so ``logging.getLogger(__name__)`` is the same logger and ``sys.modules``
lookups by name find the original), except a copy of a script's ``__main__``, named
``__mp_main__`` (as multiprocessing names it, and ``sys.modules["__mp_main__"]`` then
names the script) so that its ``if __name__ == "__main__":`` block does not run again.
A user module that only a handler imports (lazily) is imported once for real as well,
so that such lookups find it. Each environment's ``__builtins__`` is a copy taken at
its cold start: names a program adds to :mod:`builtins` later are not seen by
environments already started. Classes a user module defines exist once per
environment: an exception class a test imports from the original module is not the
class a copy raises, and a module-level list a test reads is not the one an
environment's handler appends to.

Sync handlers then run on the invoker's worker threads and async handlers on the event
loop, exactly as with ``isolation="shared"``: an invocation costs an environment taken
from and returned to a list on top of what it cost before. The module's code runs once
per cold start where the handler will run: for a sync handler on a worker thread (the
event loop keeps running) within :data:`INIT_TIMEOUT`, for an async handler on the
event loop (as its own code does: module-level ``asyncio`` calls find the running loop,
and a blocking module holds the loop up as a blocking coroutine would). A failing one
fails the invocation as ``Runtime.ImportModuleError`` (``Runtime.InitError`` when it is
too slow) and the next invocation tries a new environment, as Lambda does.

**When the handler cannot be loaded afresh** (a closure or a lambda defined inside a
function, an App built inside a test function, a handler from a third-party module, a
handler that is not found by name in its module), environments share the one handler
object: they still run one invocation at a time each and are counted, started, reused
and reaped alike, but module state is shared. :attr:`ModuleInvoker.reloadable` says
which case applies; the runtime logs it at INFO.

**Timeouts.** A sync handler that outlives its timeout cannot be stopped: its thread runs
on, holding the environment's modules. The environment is retired (the next invocation
gets a new one), as a process environment is killed; so are environments whose handler
timed out on the loop, called ``sys.exit``, or whose invocation was cancelled, as AWS
resets an environment after a timeout or a runtime exit.

**Why this design (measured).** Invocations keep the cost of threads: taking and
returning an environment adds about 1 microsecond to an invocation (a no-op async
handler invoked 10,000 times in a row: 8.6 us each against 7.8 us with one shared
module), and a cold start costs tens of microseconds once a module's code is compiled
(it is compiled once per process), plus a hop to a worker thread for a sync handler:
20 environments of ``bench/throughput.py``'s script started at once in 14 ms with that
hop. Worker processes
(``isolation="process"``) pay a JSON round trip over a socket per invocation and
0.1-0.2 s per cold start. Sub-interpreters, which would give each environment a
``sys.modules`` of its own, are not available to Python code on 3.11.
``bench/throughput.py`` (no-op async handler, SQLite, 50,000 messages, maximum
concurrency 20) on a shared, loaded 2-core machine, as ratios of messages/s to the bare
sqlite3 loop's, medians of 7 rounds with every isolation in the same round, batch 1 /
batch 10:

- ``isolation="shared"`` (the former default, one module): 1.26 / 0.61;
- ``isolation="module"`` (the default): 1.17 / 0.61;
- the code before execution environments, run right after: 1.01 / 0.53.

Single rounds moved by up to 2x with the machine's load (0.78-2.00 at batch 1). Over
five such runs the default's ratio was 0.97 of the shared mode's at batch 1 and 0.96 at
batch 10 (geometric means; single runs 0.80-1.18), and paired runs of the two modes
measured in CPU time differ by 4% or less either way.
In another run (20,000 messages, 3 rounds): shared 0.83 / 0.47, module 0.90 / 0.44,
process 0.11 / 0.03 (at batch 10 the 20 processes' cold starts take most of the run).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import importlib.machinery
import importlib.util
import logging
import os
import site
import sys
import sysconfig
import threading
import time
from collections import deque
from collections.abc import Callable
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any, Generic, TypeVar

from sluicegate.core.config import FunctionConfig
from sluicegate.runtime.invoker import (
    HANDLER_LOGGER_NAME,
    Handler,
    HandlerResult,
    Invoker,
    _is_async_handler,
    describe_exception,
)

__all__ = [
    "ENVIRONMENT_IDLE_TIMEOUT",
    "INIT_TIMEOUT",
    "Environment",
    "EnvironmentPool",
    "ModuleInvoker",
    "PooledInvoker",
    "is_user_module",
    "lookup_attribute",
]

ENVIRONMENT_IDLE_TIMEOUT = 600.0
"""Seconds an execution environment stays warm without an invocation before it is
reaped: the simulator's default too. AWS does not publish it; idle environments are
observed to go after 5 to 15 minutes. An in-process environment costs little to keep
(its modules' objects); a process one holds a process."""

INIT_TIMEOUT = 10.0
"""Seconds a cold start may take to import or execute the handler's code (Lambda's init
phase limit). A slower one fails the invocation waiting for it."""

_log = logging.getLogger(HANDLER_LOGGER_NAME)
_runtime_log = logging.getLogger("sluicegate.runtime")


# --------------------------------------------------------------------------- bookkeeping


class Environment:
    """One execution environment, as the pool sees it (subclassed by each kind).

    Attributes:
        idle_since: the pool clock's reading when it last became idle.
        retired: it has been ended; it never serves again.
    """

    __slots__ = ("idle_since", "retired")

    def __init__(self) -> None:
        self.idle_since = 0.0
        self.retired = False

    def usable(self) -> bool:
        """Whether an idle environment can still serve (a process may have died)."""
        return True


E = TypeVar("E", bound=Environment)


class EnvironmentPool(Generic[E]):
    """A function's execution environments: started on demand, reused warmest first,
    reaped when idle, at most ``limit`` alive at once.

    Parameters:
        start: makes a new environment (a cold start; the caller completes its init).
        end: disposes of an environment the pool retires (kills a process, drops
            modules); called once per environment.
        limit: most environments alive at once, 1 or more.
        idle_timeout: seconds an idle environment stays warm.
        clock: monotonic seconds, for idle times.
        on_cold_start: called after each environment is started (metrics).
        name: the function's name, for errors.

    Not thread-safe: use it from the event loop's thread.
    """

    def __init__(
        self,
        start: Callable[[], E],
        end: Callable[[E], None],
        *,
        limit: int,
        idle_timeout: float = ENVIRONMENT_IDLE_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
        on_cold_start: Callable[[], None] | None = None,
        name: str = "",
    ) -> None:
        self._start = start
        self._end = end
        self._limit = limit
        self.idle_timeout = idle_timeout
        self.clock = clock
        self.on_cold_start = on_cold_start
        self.name = name
        self.environments: set[E] = set()
        """Environments alive now: starting, busy or idle."""
        self._idle: list[E] = []  # a stack: the warmest last, the coldest first
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.cold_starts = 0
        """Environments started so far."""
        self.closed = False

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def live(self) -> int:
        """Environments alive now."""
        return len(self.environments)

    @property
    def idle(self) -> int:
        """Warm environments waiting for an invocation."""
        return len(self._idle)

    def resize(self, limit: int) -> None:
        """Allow ``limit`` environments; idle ones above it end now (the coldest first),
        busy ones when they are released."""
        self._limit = limit
        while len(self.environments) > limit and self._idle:
            self.retire(self._idle[0])
        self._wake()

    def try_acquire(self) -> E | None:
        """The warmest idle environment, else a new one when below the limit, else
        ``None`` (see :meth:`acquire`).

        Raises:
            RuntimeError: the pool is closed.
            Exception: what ``start`` raised (nothing is counted then).
        """
        if self.closed:
            raise RuntimeError(f"invoker of {self.name!r} is closed")
        idle = self._idle
        if idle:
            self.reap()
            while idle:
                env = idle.pop()
                if env.usable():
                    return env
                self.retire(env)  # died while idle
        if len(self.environments) < self._limit:
            env = self._start()
            self.environments.add(env)
            self.cold_starts += 1
            if self.on_cold_start is not None:
                try:
                    self.on_cold_start()
                except Exception:  # noqa: BLE001 - a metrics bug must not fail invocations
                    _runtime_log.exception("cold start listener of %s failed", self.name)
            return env
        return None

    async def acquire(self, loop: asyncio.AbstractEventLoop) -> E:
        """An environment for one invocation: the warmest idle one, else a new one (a
        cold start) when below the limit, else the next one released."""
        while True:
            env = self.try_acquire()
            if env is not None:
                return env
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # pass the wake-up this task got on to the next waiter
                raise
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def release(self, env: E) -> None:
        """An invocation is done with ``env``: it goes on top of the idle stack (the
        warmest), or ends when the pool is closed or above its limit."""
        if env.retired:
            return
        if self.closed or len(self.environments) > self._limit:
            self.retire(env)
            return
        env.idle_since = self.clock()
        self._idle.append(env)
        self._wake()

    def retire(self, env: E) -> None:
        """End ``env`` now and free its place. Idempotent."""
        if env.retired:
            return
        env.retired = True
        self.environments.discard(env)
        if env in self._idle:
            self._idle.remove(env)
        try:
            self._end(env)
        finally:
            self._wake()

    def reap(self, now: float | None = None) -> int:
        """End environments idle for ``idle_timeout`` seconds or more.

        Called at every acquisition with idle environments; call it yourself to reap
        with no traffic. Returns how many ended.
        """
        idle = self._idle
        if not idle:
            return 0
        cutoff = (self.clock() if now is None else now) - self.idle_timeout
        reaped = 0
        while idle and idle[0].idle_since <= cutoff:
            self.retire(idle[0])
            reaped += 1
        return reaped

    def close(self) -> tuple[list[E], list[E]]:
        """Refuse new acquisitions, fail waiting ones, forget every environment.

        Returns:
            ``(idle, busy)``: the environments for the caller to end as fits its kind
            (none of them is ended here).
        """
        self.closed = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                with contextlib.suppress(RuntimeError):  # a waiter of a closed loop
                    waiter.set_exception(RuntimeError(f"invoker of {self.name!r} is closed"))
        idle = list(self._idle)
        self._idle.clear()
        busy = [env for env in self.environments if env not in idle]
        self.environments.clear()
        return idle, busy

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                try:
                    waiter.set_result(None)
                except RuntimeError:  # its event loop is closed: nobody waits any more
                    continue
                return


# --------------------------------------------------------------------------- user modules


def _library_roots() -> tuple[str, ...]:
    """Directories whose modules are shared by every environment: the standard library,
    every site-packages (and Debian's dist-packages) directory, and sluicegate's own."""
    roots: set[str] = set()
    for scheme_vars in ({}, {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}):
        paths = sysconfig.get_paths(vars=scheme_vars)
        for key in ("stdlib", "platstdlib", "purelib", "platlib"):
            if key in paths:
                roots.add(paths[key])
    with contextlib.suppress(AttributeError):
        roots.update(site.getsitepackages())
    with contextlib.suppress(AttributeError):
        roots.add(site.getusersitepackages())
    for entry in sys.path:
        if os.path.basename(os.path.normpath(entry)) in ("site-packages", "dist-packages"):
            roots.add(entry)
    roots.add(_SLUICEGATE_DIR)
    return tuple(sorted({os.path.join(os.path.realpath(r), "") for r in roots if r}))


_SLUICEGATE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
"""sluicegate's package directory: its modules are shared."""

_ROOTS: tuple[str, ...] | None = None


def _is_user_file(path: str | None) -> bool:
    global _ROOTS
    if not path or not os.path.isabs(path):
        return False  # built-in, frozen, or no file at all
    if _ROOTS is None:
        _ROOTS = _library_roots()
    real = os.path.realpath(path)
    return not real.startswith(_ROOTS)


def _spec_is_user(spec: ModuleSpec) -> bool:
    locations = spec.submodule_search_locations
    if locations is not None and not spec.has_location:  # a namespace package
        return bool(locations) and all(_is_user_file(p) for p in locations)
    if spec.loader is None or not spec.has_location:
        return False
    return _is_user_file(spec.origin)


def _spec_of_loaded(name: str, module: ModuleType) -> ModuleSpec | None:
    """The spec to execute ``module`` (loaded as ``name``) again from."""
    spec = getattr(module, "__spec__", None)
    if name == "__main__":
        if spec is not None:  # python -m package.module: run as its own name
            return spec if isinstance(spec, ModuleSpec) else None
        path = getattr(module, "__file__", None)
        if not isinstance(path, str):
            return None  # an interactive session, python -c
        return importlib.util.spec_from_file_location(MAIN_COPY_NAME, path)
    if not isinstance(spec, ModuleSpec) or spec.name != name:
        return None
    return spec


MAIN_COPY_NAME = "__mp_main__"
"""``__name__`` of an environment's copy of a script run as ``__main__``."""

_specs: dict[str, tuple[ModuleType | None, ModuleSpec | None]] = {}
"""Module name -> (the module ``sys.modules`` held, the spec to copy it from or ``None``
for a module environments share): decided once per module; only names of top-level
modules and of submodules of user packages get here."""


def _user_spec(name: str, parent: ModuleType | None) -> ModuleSpec | None:
    """The spec of user module ``name`` (a submodule of the copy ``parent``), or
    ``None`` when environments share it (or it does not exist: the real import then
    raises the error)."""
    loaded = sys.modules.get(name)
    known = _specs.get(name)
    if known is not None and known[0] is loaded:
        return known[1]
    spec: ModuleSpec | None = None
    if loaded is not None:
        spec = _spec_of_loaded(name, loaded)
    elif name != "__main__":
        try:
            if parent is None:
                spec = importlib.util.find_spec(name)
            else:
                spec = _find_submodule_spec(name, list(getattr(parent, "__path__", ())))
        except (ImportError, ValueError, AttributeError):
            spec = None
    if spec is not None and not _spec_is_user(spec):
        spec = None
    _specs[name] = (loaded, spec)
    return spec


def _find_submodule_spec(name: str, path: list[str]) -> ModuleSpec | None:
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        spec = find(name, path, None)
        if spec is not None:
            return spec  # type: ignore[no-any-return]
    return None


def is_user_module(name: str) -> bool:
    """Whether environments get their own copy of the already imported module ``name``
    (its file lies outside the standard library, site-packages and sluicegate)."""
    module = sys.modules.get(name)
    if module is None:
        return False
    spec = _spec_of_loaded(name, module)
    return spec is not None and _spec_is_user(spec)


class _Modules:
    """One environment's copies of the user's modules, and the ``__builtins__`` that
    makes the copies import one another."""

    __slots__ = ("builtins", "copies", "lock")

    def __init__(self) -> None:
        self.copies: dict[str, ModuleType] = {}
        self.builtins: dict[str, Any] = dict(builtins.__dict__)
        self.builtins["__import__"] = self._import
        self.lock = threading.RLock()

    def _import(
        self,
        name: str,
        globals: dict[str, Any] | None = None,
        locals: Any = None,
        fromlist: Any = (),
        level: int = 0,
    ) -> ModuleType:
        if level > 0:
            absolute = importlib.util.resolve_name("." * level + name, _package_of(globals))
        else:
            absolute = name
        top = absolute.partition(".")[0]
        if top not in self.copies and _user_spec(top, None) is None:
            return builtins.__import__(name, globals, locals, fromlist, level)
        with self.lock:
            module = self.load(absolute)
            if fromlist:
                self._load_fromlist(module, absolute, fromlist)
                return module
        if level == 0:
            return self.copies[top]
        # __import__("", level=n) and the like: the module named before the first dot.
        cut = len(name) - len(name.partition(".")[0])
        return self.copies[absolute[: len(absolute) - cut]] if cut else module

    def _load_fromlist(self, module: ModuleType, name: str, fromlist: Any) -> None:
        if not hasattr(module, "__path__"):
            return
        for item in fromlist:
            if item == "*":
                names = getattr(module, "__all__", ())
                if names:
                    self._load_fromlist(module, name, names)
            elif not hasattr(module, item):
                with contextlib.suppress(ModuleNotFoundError):
                    self.load(f"{name}.{item}")

    def load(self, name: str) -> ModuleType:
        """The environment's copy of user module ``name``, executed on first use
        (its parent packages first).

        Raises:
            ModuleNotFoundError: there is no such module, or it is not a user module.
            Exception: whatever executing the module's code raised.
        """
        found = self.copies.get(name)
        if found is not None:
            return found
        parent_name, _, child = name.rpartition(".")
        parent = self.load(parent_name) if parent_name else None
        spec = _user_spec(name, parent)
        if spec is None:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        if name not in sys.modules and name != "__main__":
            # A module the program itself never imported (a lazy import in a handler):
            # import it once, so that code looking a module up by its name (dataclasses
            # does, for string annotations) finds one, as for every other copy.
            importlib.import_module(name)
        if spec.name == MAIN_COPY_NAME:
            # Code that looks a module up by name (dataclasses does, for string
            # annotations) finds the script, as in a process multiprocessing spawned.
            sys.modules.setdefault(MAIN_COPY_NAME, sys.modules["__main__"])
        module = importlib.util.module_from_spec(spec)
        module.__builtins__ = self.builtins  # type: ignore[attr-defined]
        self.copies[name] = module  # before executing it: circular imports find it
        try:
            _execute(spec, module)
        except BaseException:
            del self.copies[name]
            raise
        if parent is not None:
            setattr(parent, child, module)
        return module


_codes: dict[tuple[str, int, int], Any] = {}
"""(path, mtime in ns, size) -> the compiled code of a user module's source file, so that
a cold start does not compile it again (a source file changed since compiles anew)."""


def _execute(spec: ModuleSpec, module: ModuleType) -> None:
    """Execute ``module``'s code (a fresh copy) into it."""
    loader = spec.loader
    if loader is None:
        return  # a namespace package: nothing to run
    if type(loader) is not importlib.machinery.SourceFileLoader or not spec.origin:
        loader.exec_module(module)  # any other loader (pytest's, a zip's) does its own
        return
    path = spec.origin
    stat = os.stat(path)
    key = (path, stat.st_mtime_ns, stat.st_size)
    code = _codes.get(key)
    if code is None:
        code = loader.get_code(spec.name)
        if code is None:
            raise ImportError(f"cannot load the code of {spec.name!r}", name=spec.name)
        _codes[key] = code
    exec(code, module.__dict__)


def _package_of(globals: dict[str, Any] | None) -> str:
    if not globals:
        raise ImportError("attempted relative import with no known parent package")
    package = globals.get("__package__")
    if package is None:
        spec = globals.get("__spec__")
        if spec is not None:
            package = spec.parent
        else:
            package = globals.get("__name__", "")
            if "__path__" not in globals:
                package = package.rpartition(".")[0]
    if not package:
        raise ImportError("attempted relative import with no known parent package")
    return str(package)


def _handler_location(handler: Any) -> tuple[str, str] | None:
    """``(module name, attribute path)`` by which an environment finds its own copy of
    ``handler``, or ``None`` when it cannot be loaded afresh."""
    module_name = getattr(handler, "__module__", None)
    if not isinstance(module_name, str) or not is_user_module(module_name):
        return None
    module = sys.modules[module_name]
    qualname = getattr(handler, "__qualname__", None)
    if isinstance(qualname, str) and "<" not in qualname:
        if lookup_attribute(module, qualname) is handler:
            return module_name, qualname
    for attr, value in list(vars(module).items()):  # an instance, a bound method
        if value is handler and not attr.startswith("__"):
            return module_name, attr
    return None


def lookup_attribute(module: Any, path: str) -> Any:
    """``module``'s attribute at the dotted ``path`` (a qualified name), or ``None``."""
    found = module
    for part in path.split("."):
        found = getattr(found, part, None)
        if found is None:
            return None
    return found


# --------------------------------------------------------------------------- invoker


class _ModuleEnvironment(Environment):
    """An environment of :class:`ModuleInvoker`: its modules and its handler."""

    __slots__ = ("handler", "is_async", "modules")

    def __init__(self) -> None:
        super().__init__()
        self.handler: Handler | None = None  # set by the environment's init
        self.is_async = False
        self.modules: _Modules | None = None


class PooledInvoker:
    """What an invoker whose invocations run in the environments of an
    :class:`EnvironmentPool` (its ``pool``) tells of them: both kinds of environment."""

    pool: EnvironmentPool[Any]

    @property
    def environments(self) -> int:
        """Execution environments alive now: starting, busy or idle."""
        return self.pool.live

    @property
    def cold_starts(self) -> int:
        """Environments started so far."""
        return self.pool.cold_starts


class ModuleInvoker(PooledInvoker, Invoker):
    """Runs a handler's invocations in execution environments of the runtime's process,
    each with its own copy of the handler's module and of the user modules it imports;
    see the module docstring.

    It is an :class:`~sluicegate.runtime.invoker.Invoker` (sync handlers on its worker
    threads, async ones on the loop, the same timeouts and results) that takes an
    environment for each invocation.

    Parameters:
        handler: the handler as the App registered it; its environments run their own
            copy of it, found by its module and name (the handler itself when that is
            not possible: see :attr:`reloadable`).
        function: the function's configuration (name, timeout, memory size).
        max_workers: most environments alive at once (and worker threads for a sync
            handler); the caller sizes it to the function's concurrency.
        clock: monotonic clock in seconds for durations, deadlines and idle times.
        timeout: seconds an invocation may run, overriding ``function.timeout``.
        idle_timeout: seconds an idle environment stays warm.
        on_cold_start: called after each cold start (the runtime counts them in its
            metrics).

    Raises:
        TypeError: ``handler`` is not callable.
        ConfigError: ``max_workers`` below 1 or a ``timeout`` that is not a positive number.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        function: FunctionConfig,
        max_workers: int,
        clock: Callable[[], float] = time.monotonic,
        timeout: float | None = None,
        idle_timeout: float = ENVIRONMENT_IDLE_TIMEOUT,
        on_cold_start: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(
            handler, function=function, max_workers=max_workers, clock=clock, timeout=timeout
        )
        self.location = _handler_location(handler)
        """``(module, attribute)`` of the handler that environments copy, or ``None``."""
        self.pool: EnvironmentPool[_ModuleEnvironment] = EnvironmentPool(
            _ModuleEnvironment,
            self._end,
            limit=max_workers,
            idle_timeout=idle_timeout,
            clock=clock,
            on_cold_start=on_cold_start,
            name=function.name,
        )
        if self.location is None:
            _runtime_log.info(
                "function %s: its handler cannot be loaded afresh (defined inside a function, "
                "a lambda, or not in a user module): its execution environments share the "
                "handler and its module state, one invocation at a time each",
                function.name,
            )

    def __repr__(self) -> str:
        kind = "async" if self.is_async else "sync"
        return (
            f"<ModuleInvoker {self.function.name} {kind} timeout={self.timeout:g}s "
            f"environments={self.pool.live}>"
        )

    @property
    def reloadable(self) -> bool:
        """Environments get their own copy of the handler's module (else they share the
        handler object, one invocation at a time each)."""
        return self.location is not None

    def resize(self, max_workers: int) -> None:
        """Change the most environments (and worker threads) alive at once; see
        :meth:`Invoker.resize`."""
        super().resize(max_workers)
        self.pool.resize(max_workers)

    def close(self, wait: bool = True, timeout: float | None = None) -> None:
        """Stop accepting invocations, drop every environment and let the worker
        threads exit; see :meth:`Invoker.close`."""
        idle, busy = self.pool.close()
        for env in idle + busy:
            env.retired = True
            self._end(env)
        super().close(wait, timeout)

    async def invoke(self, event: Any, context: Any) -> HandlerResult:
        """Run the handler once in an execution environment: the warmest idle one, or a
        new one (a cold start, whose init comes before the timeout starts), or the next
        one freed when ``max_workers`` are busy.

        Returns and raises as :meth:`Invoker.invoke`; a failed init is the invocation's
        result (``Runtime.ImportModuleError`` or ``Runtime.InitError``).
        """
        if self._closed:
            raise RuntimeError(f"invoker of {self.function.name!r} is closed")
        pool = self.pool
        env = pool.try_acquire()
        if env is None:
            env = await pool.acquire(asyncio.get_running_loop())
        keep = False
        try:
            handler = env.handler
            if handler is None:
                failure = await self._init(env, context)
                if failure is not None:
                    return failure
                handler = env.handler
                assert handler is not None
            if env.is_async:
                result = await self._invoke_async(handler, event, context)
            else:
                result = await self._invoke_sync(handler, event, context)
            # A timed-out sync handler runs on in its thread; one that called sys.exit
            # ended its runtime (Lambda's Runtime.ExitError): a new environment next.
            keep = not result.timed_out and not isinstance(result.error, SystemExit)
            return result
        finally:
            if keep:
                pool.release(env)
            else:
                pool.retire(env)

    async def _init(self, env: _ModuleEnvironment, context: Any) -> HandlerResult | None:
        """An environment's cold start: copy the handler's module (a sync handler's on a
        worker thread within :data:`INIT_TIMEOUT`, an async handler's on the event loop).
        Returns ``None`` when ready, else the invocation's failure."""
        location = self.location
        if location is None:
            env.handler, env.is_async = self.handler, self.is_async
            return None
        start = self.clock()
        modules = _Modules()
        module_name, attr = location

        def init() -> Any:
            with modules.lock:
                return lookup_attribute(modules.load(module_name), attr)

        try:
            if self.is_async:
                handler = init()  # on the loop, where the handler's code will run
            else:
                handler = await self._call_in_thread(init, INIT_TIMEOUT)
        except TimeoutError:
            text = f"Runtime.InitError: init timed out after {INIT_TIMEOUT:.2f} seconds"
            return self._init_failed(text, None, context, self.clock() - start)
        except (KeyboardInterrupt, asyncio.CancelledError):
            raise
        except BaseException as exc:  # noqa: BLE001 - the user's code failed to load
            text = (
                f"Runtime.ImportModuleError: Unable to import {module_name}.{attr}: "
                f"{describe_exception(exc)}"
            )
            return self._init_failed(text, exc, context, self.clock() - start)
        if not callable(handler):
            text = (
                f"Runtime.ImportModuleError: {module_name}.{attr} of a new environment is "
                f"not callable"
            )
            return self._init_failed(text, None, context, self.clock() - start)
        env.modules = modules
        env.handler = handler
        env.is_async = _is_async_handler(handler)
        return None

    def _init_failed(
        self, text: str, exc: BaseException | None, context: Any, duration: float
    ) -> HandlerResult:
        _log.error(
            "%s request %s: %s",
            self.function.name,
            getattr(context, "aws_request_id", "-"),
            text,
            exc_info=exc,
        )
        error = exc if exc is not None else RuntimeError(text)
        return HandlerResult(error=error, error_text=text, duration=duration)

    def _end(self, env: _ModuleEnvironment) -> None:
        """Drop a retired environment's modules (a thread still running its handler
        keeps what it uses alive until it returns)."""
        env.handler = None
        env.modules = None
