"""The user-facing App: queues, functions and the mappings between them.

Everything is validated when it is defined, so a wrong setting fails at import time
with an error naming the parameter, the value and the allowed range::

    app = sluicegate.App()
    orders = app.queue("orders", visibility_timeout=60, dead_letter_queue="orders-dlq",
                       max_receive_count=5)

    @app.function(timeout=10, reserved_concurrency=50)
    def process(event, context): ...

    app.map(orders, process, batch_size=10, maximum_batching_window=1,
            maximum_concurrency=20, report_batch_item_failures=True)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar, overload

from sluicegate.core.config import (
    AccountConfig,
    FunctionConfig,
    IsolationName,
    MappingConfig,
    QueueConfig,
    ScalingName,
    check_visibility_against_timeout,
)
from sluicegate.core.pool import ConcurrencyPool
from sluicegate.errors import ConfigError

__all__ = ["App", "Function"]

HandlerT = TypeVar("HandlerT", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Function:
    """A handler registered with an App, with its Lambda settings."""

    config: FunctionConfig
    handler: Callable[..., Any]

    @property
    def name(self) -> str:
        return self.config.name


@dataclass
class App:
    """A set of queues, functions and event source mappings.

    Parameters:
        account_concurrency: the account's concurrency pool shared by every function
            (default 1,000, AWS's default quota).
        min_unreserved: what reserved concurrency must leave unreserved (default 100).
        name: shown in status lines and ARNs' log groups.
        source: where the App can be imported from: the spec given to
            :func:`~sluicegate.loader.load_app` (``path/to/file.py``, ``file.py:attr`` or
            ``package.module:attr``), which sets it. ``None`` for an App defined in code
            that was not loaded that way. Functions with ``isolation="process"`` use it to
            import their handler in each execution environment.
    """

    account_concurrency: int = 1000
    min_unreserved: int = 100
    name: str = "sluicegate"
    source: str | None = None
    queues: dict[str, QueueConfig] = field(default_factory=dict, init=False)
    functions: dict[str, Function] = field(default_factory=dict, init=False)
    mappings: list[MappingConfig] = field(default_factory=list, init=False)
    _implicit: set[str] = field(default_factory=set, init=False, repr=False)
    _pool: ConcurrencyPool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.account = AccountConfig(self.account_concurrency, self.min_unreserved)
        self._pool = ConcurrencyPool(self.account)

    # ------------------------------------------------------------------ queues
    def queue(
        self,
        name: str,
        *,
        visibility_timeout: int | timedelta = 30,
        delay_seconds: int = 0,
        retention_period: int | timedelta = 345_600,
        max_message_size: int = 262_144,
        receive_wait_time: int = 0,
        dead_letter_queue: str | QueueConfig | None = None,
        max_receive_count: int | None = None,
    ) -> QueueConfig:
        """Define a standard queue (see :class:`~sluicegate.core.config.QueueConfig`).

        A ``dead_letter_queue`` that is not defined yet is defined with default
        attributes; defining it explicitly later replaces those.

        Raises:
            ConfigError: a value out of range, or a name defined twice.
        """
        if isinstance(dead_letter_queue, QueueConfig):
            dead_letter_queue = dead_letter_queue.name
        config = QueueConfig(
            name,
            visibility_timeout=visibility_timeout,  # type: ignore[arg-type]
            delay_seconds=delay_seconds,
            retention_period=retention_period,  # type: ignore[arg-type]
            max_message_size=max_message_size,
            receive_wait_time=receive_wait_time,
            dead_letter_queue=dead_letter_queue,
            max_receive_count=max_receive_count,
        )
        if name in self.queues and name not in self._implicit:
            raise ConfigError("name", name, "a queue name not defined already", "queue")
        self._implicit.discard(name)
        self.queues[name] = config
        if dead_letter_queue is not None and dead_letter_queue not in self.queues:
            self.queues[dead_letter_queue] = QueueConfig(dead_letter_queue)
            self._implicit.add(dead_letter_queue)
        return config

    # ------------------------------------------------------------------ functions
    @overload
    def function(self, handler: HandlerT, /) -> HandlerT: ...

    @overload
    def function(
        self,
        handler: None = None,
        /,
        *,
        name: str | None = None,
        timeout: float | timedelta = 3,
        memory_size: int = 128,
        reserved_concurrency: int | None = None,
        isolation: IsolationName = "thread",
    ) -> Callable[[HandlerT], HandlerT]: ...

    def function(
        self,
        handler: Any = None,
        /,
        *,
        name: str | None = None,
        timeout: float | timedelta = 3,
        memory_size: int = 128,
        reserved_concurrency: int | None = None,
        isolation: IsolationName = "thread",
    ) -> Any:
        """Register a handler ``handler(event, context)`` (sync or async); usable as a
        bare decorator or with settings. Returns the handler unchanged.

        Parameters:
            name: the function's name (default: the handler's ``__name__``).
            timeout: seconds an invocation may run, 1-900 (default 3).
            memory_size: MB shown to the handler's context (default 128).
            reserved_concurrency: the function's own pool, carved out of the account's.
            isolation: ``"thread"`` (default) or ``"process"``: run each invocation in an
                execution environment (a worker process) of its own, one invocation at a
                time, killed at its timeout. See
                :class:`~sluicegate.core.config.FunctionConfig` for when to use it.

        Raises:
            ConfigError: a value out of range, a name defined twice, or reserved
                concurrency that leaves less than ``min_unreserved`` to other functions.
        """

        def register(fn: HandlerT) -> HandlerT:
            if not callable(fn):
                raise ConfigError("handler", fn, "a callable handler(event, context)", "function")
            fname: str = name or str(getattr(fn, "__name__", ""))
            config = FunctionConfig(
                fname,
                timeout=timeout,  # type: ignore[arg-type]
                memory_size=memory_size,
                reserved_concurrency=reserved_concurrency,
                isolation=isolation,
            )
            if fname in self.functions:
                raise ConfigError("name", fname, "a function name not defined already", "function")
            self._pool.register(config)
            self.functions[fname] = Function(config, fn)
            return fn

        if handler is not None:
            return register(handler)
        return register

    # ------------------------------------------------------------------ mappings
    def map(
        self,
        queue: QueueConfig | str,
        function: Callable[..., Any] | Function | str,
        *,
        batch_size: int = 10,
        maximum_batching_window: int | timedelta = 0,
        maximum_concurrency: int | None = None,
        report_batch_item_failures: bool = False,
        scaling: ScalingName = "aws",
        scaling_ceiling: int = 1250,
        enabled: bool = True,
    ) -> MappingConfig:
        """Create an event source mapping from ``queue`` to ``function``.

        See :class:`~sluicegate.core.config.MappingConfig` for the parameters.

        Raises:
            ConfigError: a value out of range, an undefined queue or function, a queue
                whose visibility timeout is shorter than the function's timeout (AWS refuses
                that too), or the same queue and function mapped twice.
        """
        qname = queue.name if isinstance(queue, QueueConfig) else queue
        if qname not in self.queues:
            raise ConfigError("queue", qname, "a queue defined with app.queue()", "mapping")
        fn = self._function(function)
        config = MappingConfig(
            qname,
            fn.name,
            batch_size=batch_size,
            maximum_batching_window=maximum_batching_window,  # type: ignore[arg-type]
            maximum_concurrency=maximum_concurrency,
            report_batch_item_failures=report_batch_item_failures,
            scaling=scaling,
            scaling_ceiling=scaling_ceiling,
            enabled=enabled,
        )
        check_visibility_against_timeout(self.queues[qname], fn.config)
        if any(m.queue == qname and m.function == fn.name for m in self.mappings):
            raise ConfigError(
                "function", fn.name, f"mapped once to queue {qname!r}", f"mapping {config.name}"
            )
        self.mappings.append(config)
        return config

    def _function(self, function: Callable[..., Any] | Function | str) -> Function:
        if isinstance(function, Function):
            return function
        if isinstance(function, str):
            if function in self.functions:
                return self.functions[function]
            raise ConfigError("function", function, "a function registered with app.function")
        for registered in self.functions.values():
            if registered.handler is function:
                return registered
        raise ConfigError(
            "function",
            getattr(function, "__name__", function),
            "a function registered with @app.function",
            "mapping",
        )

    # ------------------------------------------------------------------ derived
    def mapping(self, queue: str, function: str | None = None) -> MappingConfig:
        """The mapping of ``queue`` (to ``function`` when several)."""
        for m in self.mappings:
            if m.queue == queue and (function is None or m.function == function):
                return m
        raise ConfigError("queue", queue, "a queue that has a mapping", "mapping")

    def new_pool(self) -> ConcurrencyPool:
        """A fresh concurrency pool with every function registered, for one run."""
        pool = ConcurrencyPool(self.account)
        for fn in self.functions.values():
            pool.register(fn.config)
        return pool
