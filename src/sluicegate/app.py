"""The user-facing App: queues, streams, topics, functions and the mappings between them.

Everything is validated when it is defined, so a wrong setting fails at import time
with an error naming the parameter, the value and the allowed range::

    app = sluicegate.App()
    orders = app.queue("orders", visibility_timeout=60, dead_letter_queue="orders-dlq",
                       max_receive_count=5)

    @app.function(timeout=10, reserved_concurrency=50)
    def process(event, context): ...

    app.map(orders, process, batch_size=10, maximum_batching_window=1,
            maximum_concurrency=20, report_batch_item_failures=True)

    clicks = app.stream("clicks", shard_count=4)
    app.map(clicks, process, parallelization_factor=10, bisect_batch_on_function_error=True)

    payments = app.queue("payments.fifo", content_based_deduplication=True)
    app.topic("events.fifo", subscribers=[payments])

    app.breaker("ledger", failure_rate_threshold=50, open_wait=30)
    app.map(payments, process, breaker="ledger")
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar, overload

from sluicegate.core.adaptive import AdaptiveConfig
from sluicegate.core.async_events import AsyncConfig, Destination
from sluicegate.core.breaker import BreakerConfig
from sluicegate.core.buses import EventBusConfig, RuleConfig, TargetConfig, target_input
from sluicegate.core.config import (
    BREAKER_NAME,
    DEFAULT_ISOLATION,
    DEFAULT_SCALING_CEILING,
    AccountConfig,
    FunctionConfig,
    IsolationName,
    MappingConfig,
    QueueConfig,
    ScalingName,
    SemaphoreConfig,
    TopicConfig,
    check_visibility_against_timeout,
)
from sluicegate.core.events_bus import DEFAULT_EVENT_BUS
from sluicegate.core.filters import EventPattern
from sluicegate.core.pool import ConcurrencyPool
from sluicegate.core.schedule import Schedule
from sluicegate.core.settings import QUEUE, SETTINGS, STREAM
from sluicegate.core.streams import StartingPosition, StreamConfig, StreamMappingConfig
from sluicegate.errors import ConfigError

if TYPE_CHECKING:
    from sluicegate.control import ControlRule
    from sluicegate.invocation import InvocationType, InvokeResult

__all__ = ["App", "Function", "Target"]

HandlerT = TypeVar("HandlerT", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Function:
    """A handler registered with an App, with its Lambda settings and its settings for
    asynchronous invocation."""

    config: FunctionConfig
    handler: Callable[..., Any]
    async_config: AsyncConfig = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.async_config is None:
            object.__setattr__(self, "async_config", AsyncConfig(self.config.name))

    @property
    def name(self) -> str:
        return self.config.name


@dataclass(frozen=True, slots=True)
class Target:
    """A rule's target with a transformation of its own (``app.rule(...,
    targets=[Target(fn, input_path="$.detail")])``); see :meth:`App.rule`."""

    to: Any
    input: str | None = None
    input_path: str | None = None
    input_transformer: Any = None


@dataclass
class App:
    """A set of queues, functions and event source mappings.

    Parameters:
        account_concurrency: the account's concurrency pool shared by every function
            (default 1,000, AWS's default quota).
        min_unreserved: what reserved concurrency must leave unreserved (default 100).
        name: shown in status lines and ARNs' log groups.
        async_time_scale: multiplies the waits before the retries of asynchronous
            invocations (about 1 and 2 minutes on AWS); e.g. 0.01 for tests and demos.
        source: where the App can be imported from: the spec given to
            :func:`~sluicegate.loader.load_app` (``path/to/file.py``, ``file.py:attr`` or
            ``package.module:attr``), which sets it. ``None`` for an App defined in code
            that was not loaded that way. Functions with ``isolation="process"`` use it to
            import their handler in each execution environment.
    """

    account_concurrency: int = SETTINGS["concurrency_limit"].default
    min_unreserved: int = SETTINGS["min_unreserved"].default
    name: str = "sluicegate"
    source: str | None = None
    async_time_scale: float = SETTINGS["async_time_scale"].default
    queues: dict[str, QueueConfig] = field(default_factory=dict, init=False)
    streams: dict[str, StreamConfig] = field(default_factory=dict, init=False)
    topics: dict[str, TopicConfig] = field(default_factory=dict, init=False)
    functions: dict[str, Function] = field(default_factory=dict, init=False)
    mappings: list[MappingConfig] = field(default_factory=list, init=False)
    stream_mappings: list[StreamMappingConfig] = field(default_factory=list, init=False)
    semaphores: dict[str, SemaphoreConfig] = field(default_factory=dict, init=False)
    breakers: dict[str, BreakerConfig] = field(default_factory=dict, init=False)
    controls: list[ControlRule] = field(default_factory=list, init=False)
    buses: dict[str, EventBusConfig] = field(default_factory=dict, init=False)
    rules: list[RuleConfig] = field(default_factory=list, init=False)
    _implicit: set[str] = field(default_factory=set, init=False, repr=False)
    _runtimes: list[Any] = field(default_factory=list, init=False, repr=False)
    """The runtimes running this App in this process (``app.invoke`` uses the last)."""
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
        content_based_deduplication: bool = False,
    ) -> QueueConfig:
        """Define a queue (see :class:`~sluicegate.core.config.QueueConfig`): a FIFO queue
        when ``name`` ends in ``.fifo``, else a standard one.

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
            content_based_deduplication=content_based_deduplication,
        )
        if (name in self.queues and name not in self._implicit) or name in self.streams:
            raise ConfigError(
                "name", name, "a name not defined already as a queue or stream", "queue"
            )
        self._implicit.discard(name)
        self.queues[name] = config
        if dead_letter_queue is not None and dead_letter_queue not in self.queues:
            self.queues[dead_letter_queue] = QueueConfig(dead_letter_queue)
            self._implicit.add(dead_letter_queue)
        return config

    # ------------------------------------------------------------------ streams, topics
    def stream(
        self,
        name: str,
        *,
        shard_count: int = 1,
        retention_period: int | timedelta = 86_400,
    ) -> StreamConfig:
        """Define a partitioned stream (see :class:`~sluicegate.core.streams.StreamConfig`).

        Raises:
            ConfigError: a value out of range, or a name defined twice.
        """
        if isinstance(retention_period, timedelta):
            retention_period = int(retention_period.total_seconds())
        config = StreamConfig(name, shard_count=shard_count, retention_period=retention_period)
        if name in self.streams or name in self.queues:
            raise ConfigError(
                "name", name, "a name not defined already as a stream or queue", "stream"
            )
        self.streams[name] = config
        return config

    def topic(
        self,
        name: str,
        *,
        subscribers: list[Any] | tuple[Any, ...] = (),
        content_based_deduplication: bool = False,
    ) -> TopicConfig:
        """Define a topic that delivers every published message to its subscribers (see
        :class:`~sluicegate.core.config.TopicConfig`): queues (a name or
        ``app.queue``'s result) and functions (a registered handler, or
        ``"function:NAME"``), each publish an asynchronous invocation of each function
        with SNS's event (docs/async.md).

        Raises:
            ConfigError: a value out of range, a subscriber that is not a defined queue
                or function or is of the wrong kind (a FIFO topic delivers to FIFO queues
                only), or a name defined twice.
        """
        queues: list[str] = []
        functions: list[str] = []
        for subscriber in subscribers:
            if isinstance(subscriber, QueueConfig):
                queues.append(subscriber.name)
            elif isinstance(subscriber, str) and not subscriber.startswith("function:"):
                queues.append(subscriber)
            else:
                destination = Destination.parse(
                    self._destination(subscriber, "subscribers", f"topic {name!r}"),
                    "subscribers", f"topic {name!r}", kinds=("function",))
                functions.append(destination.name)
        config = TopicConfig(
            name, subscribers=tuple(queues),
            content_based_deduplication=content_based_deduplication,
            functions=tuple(functions),
        )
        for queue in queues:
            if queue not in self.queues:
                raise ConfigError(
                    "subscribers", queue, "a queue defined with app.queue()", f"topic {name!r}"
                )
        for function in functions:
            if function not in self.functions:
                raise ConfigError("subscribers", f"function:{function}",
                                  "a function defined with app.function()", f"topic {name!r}")
        if name in self.topics:
            raise ConfigError("name", name, "a topic name not defined already", "topic")
        self.topics[name] = config
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
        isolation: IsolationName = DEFAULT_ISOLATION,
        maximum_retry_attempts: int = 2,
        maximum_event_age: float | timedelta = 21_600,
        on_success: Any = None,
        on_failure: Any = None,
        dead_letter: Any = None,
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
        isolation: IsolationName = DEFAULT_ISOLATION,
        maximum_retry_attempts: int = 2,
        maximum_event_age: float | timedelta = 21_600,
        on_success: Any = None,
        on_failure: Any = None,
        dead_letter: Any = None,
    ) -> Any:
        """Register a handler ``handler(event, context)`` (sync or async); usable as a
        bare decorator or with settings. Returns the handler unchanged.

        Parameters:
            name: the function's name (default: the handler's ``__name__``).
            timeout: seconds an invocation may run, 1-900 (default 3).
            memory_size: MB shown to the handler's context (default 128).
            reserved_concurrency: the function's own pool, carved out of the account's.
            isolation: where invocations run: ``"module"`` (default), execution
                environments in this process, each with its own instance of the handler's
                module and of the user modules it imports, one invocation at a time as on
                AWS; ``"process"``, environments in worker processes, killed at their
                timeout; ``"shared"`` (formerly ``"thread"``, still accepted), one module
                shared by every invocation. See
                :class:`~sluicegate.core.config.FunctionConfig` for when to use which.
            maximum_retry_attempts: asynchronous invocations (``app.invoke(...,
                invocation_type="Event")``, topic subscriptions, event bus rules): retries
                after a function error, 0-2 (default 2), about 1 and 2 minutes apart.
            maximum_event_age: seconds an asynchronous event may wait, 60-21,600
                (default 6 hours); older ones are discarded to the failure path.
            on_success, on_failure: where the invocation record of an asynchronous
                invocation goes after a success, or after the event is discarded: a queue
                (``app.queue``'s result or ``"queue:NAME"``), a topic, a function (a
                registered handler or ``"function:NAME"``) or an event bus
                (``"bus:NAME"``).
            dead_letter: a queue or topic that receives a discarded event itself.
            See docs/async.md.

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
            ctx = f"function {fname!r}"
            async_config = AsyncConfig(
                fname,
                maximum_retry_attempts=maximum_retry_attempts,
                maximum_event_age=maximum_event_age,  # type: ignore[arg-type]
                on_success=self._destination(on_success, "on_success", ctx),
                on_failure=self._destination(on_failure, "on_failure", ctx),
                dead_letter=self._destination(dead_letter, "dead_letter", ctx),
                async_time_scale=self.async_time_scale,
            )
            self._pool.register(config)
            self.functions[fname] = Function(config, fn, async_config)
            return fn

        if handler is not None:
            return register(handler)
        return register

    def _destination(self, value: Any, parameter: str, context: str) -> Any:
        """A destination given as a defined object, as :class:`Destination` reads it."""
        if value is None or isinstance(value, str | Destination):
            return value
        if isinstance(value, QueueConfig):
            return Destination("queue", value.name)
        if isinstance(value, TopicConfig):
            return Destination("topic", value.name)
        if isinstance(value, Function):
            return Destination("function", value.name)
        if isinstance(value, EventBusConfig):
            return Destination("bus", value.name)
        for function in self.functions.values():
            if function.handler is value:
                return Destination("function", function.name)
        raise ConfigError(parameter, value,
                          "a queue, topic, registered function or 'KIND:NAME'", context)

    def check_destinations(self) -> None:
        """Every destination and dead-letter queue of the functions' asynchronous
        settings names something the App defines.

        Raises:
            ConfigError: one that does not, naming the function and the setting.
        """
        defined: dict[str, dict[str, Any]] = {
            "queue": self.queues, "topic": self.topics, "function": self.functions,
            "bus": self.buses}
        for function in self.functions.values():
            config = function.async_config
            for parameter in ("on_success", "on_failure", "dead_letter"):
                destination = getattr(config, parameter)
                if destination is not None and destination.name not in defined[
                        destination.kind]:
                    raise ConfigError(
                        parameter, str(destination),
                        f"a {destination.kind} the App defines", f"function {function.name!r}")

    # ------------------------------------------------------------------ event buses
    def event_bus(self, name: str = DEFAULT_EVENT_BUS) -> EventBusConfig:
        """Define an event bus (EventBridge's): events put to it (``sluicegate
        put-events``, a destination, a rule's target) go to the targets of its rules
        whose patterns match (:meth:`rule`). See docs/async.md.

        Raises:
            ConfigError: a bad name, or a name defined twice.
        """
        config = EventBusConfig(name)
        if name in self.buses:
            raise ConfigError("name", name, "an event bus name not defined already",
                              "event bus")
        self.buses[name] = config
        return config

    def rule(
        self,
        bus: str | EventBusConfig = DEFAULT_EVENT_BUS,
        pattern: Any = None,
        *,
        targets: list[Any] | tuple[Any, ...],
        name: str | None = None,
        schedule: str | None = None,
        input: str | None = None,
        input_path: str | None = None,
        input_transformer: Any = None,
    ) -> RuleConfig:
        """Define a rule of ``bus``: events matching ``pattern`` (EventBridge's event
        pattern language, a dict or JSON text: docs/event-patterns.md), or the ticks of
        ``schedule`` (``"rate(5 minutes)"``, ``"cron(0 12 * * ? *)"``, UTC; the default
        bus only), go to each of ``targets``: functions (invoked asynchronously, with
        their retries and destinations), queues, topics or buses, given as
        :meth:`_destination` reads them, or as :class:`Target` for a transformation of
        their own. ``input``, ``input_path`` and ``input_transformer`` transform the
        event for every other target (EventBridge's ``Input``, ``InputPath`` and
        ``InputTransformer``). The default bus exists once a rule names it.

        Raises:
            ConfigError: an unknown bus or target, a bad pattern or schedule (naming the
                key path), more than 5 targets, a name defined twice on the bus.
        """
        bus_name = bus.name if isinstance(bus, EventBusConfig) else bus
        if bus_name == DEFAULT_EVENT_BUS and bus_name not in self.buses:
            self.buses[bus_name] = EventBusConfig(bus_name)
        if bus_name not in self.buses:
            raise ConfigError("bus", bus_name, "a bus defined with app.event_bus()", "rule")
        rule_name = name or f"{bus_name}-rule-{sum(r.bus == bus_name for r in self.rules) + 1}"
        ctx = f"rule {rule_name!r}"
        compiled = None if pattern is None else EventPattern.parse(
            pattern, context=ctx)
        timer = None
        if schedule is not None:
            try:
                timer = Schedule.parse(schedule)
            except ConfigError as exc:
                raise ConfigError("schedule", schedule, str(exc.allowed), ctx) from None
        common = target_input(input, input_path, input_transformer, context=ctx)
        built: list[TargetConfig] = []
        for target in targets:
            if isinstance(target, Target):
                own = target_input(target.input, target.input_path,
                                   target.input_transformer, context=ctx)
                built.append(TargetConfig(self._target(target.to, ctx), own))
            else:
                built.append(TargetConfig(self._target(target, ctx), common))
        config = RuleConfig(rule_name, bus_name, compiled, timer, tuple(built))
        if any(r.bus == bus_name and r.name == rule_name for r in self.rules):
            raise ConfigError("name", rule_name, "a rule name not defined on its bus already",
                              "rule")
        self.rules.append(config)
        return config

    def _target(self, value: Any, context: str) -> Destination:
        """A rule's target, which must be defined already."""
        destination = Destination.parse(self._destination(value, "targets", context),
                                        "targets", context)
        kinds: dict[str, Any] = {"queue": self.queues, "topic": self.topics,
                                 "function": self.functions, "bus": self.buses}
        defined = kinds[destination.kind]
        if destination.name not in defined:
            raise ConfigError("targets", str(destination),
                              f"a {destination.kind} the App defines", context)
        return destination

    # ------------------------------------------------------------------ invoking
    def invoke(self, function: Any, event: Any, *,
               invocation_type: InvocationType = "RequestResponse",
               store: Any = None) -> InvokeResult:
        """Invoke ``function`` (a registered handler or its name) with ``event``, as
        Lambda's ``Invoke``: ``"RequestResponse"`` runs it now and returns its result;
        ``"Event"`` accepts the event for an asynchronous invocation (status 202) into
        the running App's store, or ``store`` (a URL or a Store). Blocking; from async
        code use :meth:`ainvoke`. See :mod:`sluicegate.invocation`.

        Raises:
            InputError: an unknown function or invocation type, an event that is not
                JSON, an ``Event`` with no store.
            Throttled: a ``RequestResponse`` found no free concurrency.
        """
        from sluicegate.invocation import invoke

        return invoke(self, function, event, invocation_type=invocation_type, store=store)

    async def ainvoke(self, function: Any, event: Any, *,
                      invocation_type: InvocationType = "RequestResponse",
                      store: Any = None) -> InvokeResult:
        """:meth:`invoke` as a coroutine."""
        from sluicegate.invocation import ainvoke

        return await ainvoke(self, function, event, invocation_type=invocation_type,
                             store=store)

    # ------------------------------------------------------------------ breakers
    def breaker(self, name: str, **settings: Any) -> BreakerConfig:
        """Define a circuit breaker shared by name: every mapping given ``breaker=name``
        (or the returned config) uses the same breaker, so the failures of one open it
        for all (one downstream, several mappings). Within one process; settings as
        :class:`~sluicegate.core.breaker.BreakerConfig`.

        Raises:
            ConfigError: a bad name, a name defined twice, an unknown setting or a value
                out of range.
        """
        if not isinstance(name, str) or not BREAKER_NAME.match(name):
            raise ConfigError("name", name, "1-80 letters, digits, '.', '-' or '_'", "breaker")
        if name in self.breakers:
            raise ConfigError("name", name, "a breaker name not defined already", "breaker")
        config = BreakerConfig.from_settings(settings, f"breaker {name!r}")
        self.breakers[name] = config
        return config

    def _breaker(self, value: Any, context: str) -> Any:
        """``breaker=`` of :meth:`map`: a shared breaker's config becomes its name; a name
        must be defined."""
        if isinstance(value, BreakerConfig):
            for name, config in self.breakers.items():
                if config is value:
                    return name
            return value
        if isinstance(value, str) and value not in self.breakers:
            raise ConfigError("breaker", value, "a breaker defined with app.breaker()", context)
        return value

    # ------------------------------------------------------------------ mappings
    def map(
        self,
        source: QueueConfig | StreamConfig | str,
        function: Callable[..., Any] | Function | str,
        *,
        batch_size: int | None = None,
        maximum_batching_window: int | timedelta = 0,
        report_batch_item_failures: bool = False,
        enabled: bool = True,
        filter_criteria: Any = None,
        maximum_concurrency: int | None = None,
        scaling: ScalingName | None = None,
        scaling_ceiling: int | None = None,
        starting_position: StartingPosition | None = None,
        starting_position_timestamp: float | None = None,
        parallelization_factor: int | None = None,
        bisect_batch_on_function_error: bool | None = None,
        maximum_retry_attempts: int | None = None,
        maximum_record_age: int | timedelta | None = None,
        on_failure: str | QueueConfig | None = None,
        semaphores: tuple[str, ...] | str = (),
        breaker: str | BreakerConfig | dict[str, Any] | None = None,
        algorithm: str | None = None,
        adaptive: AdaptiveConfig | Mapping[str, Any] | None = None,
    ) -> MappingConfig | StreamMappingConfig:
        """Create an event source mapping from a queue or a stream to ``function``.

        Queues take the parameters of :class:`~sluicegate.core.config.MappingConfig`
        (``maximum_concurrency``, ``scaling``, ``scaling_ceiling``; ``batch_size``
        defaults to 10; with ``scaling="adaptive"``, ``algorithm`` (``"aimd"``,
        ``"gradient2"``, ``"vegas"``) and ``adaptive``, an
        :class:`~sluicegate.core.adaptive.AdaptiveConfig` or a dict of its parameters,
        such as ``{"minimum": 2, "maximum": 50}``; a stream takes ``algorithm`` and
        ``adaptive`` without ``scaling``: an adaptive limit below its shards x
        parallelization factor); streams those of
        :class:`~sluicegate.core.streams.StreamMappingConfig` (``starting_position``,
        ``parallelization_factor``, ``bisect_batch_on_function_error``,
        ``maximum_retry_attempts``, ``maximum_record_age``, ``on_failure``; ``batch_size``
        defaults to 100). A parameter of the other kind of source is refused.
        ``semaphores`` names semaphores defined with :meth:`semaphore` that each
        invocation holds a slot of (the mapping does not receive while it cannot take
        them).
        ``breaker`` (both kinds): a breaker defined with :meth:`breaker` (its name or
        its config: shared), or the mapping's own (a
        :class:`~sluicegate.core.breaker.BreakerConfig` or a dict of its settings).

        Raises:
            ConfigError: a value out of range, an undefined source or function, a
                parameter that does not apply to the source, a queue whose visibility
                timeout is shorter than the function's timeout (AWS refuses that too), or
                the same source and function mapped twice.
        """
        name = source.name if isinstance(source, QueueConfig | StreamConfig) else source
        names = (semaphores,) if isinstance(semaphores, str) else semaphores
        for semaphore in names if isinstance(names, tuple | list) else ():
            if semaphore not in self.semaphores:
                raise ConfigError("semaphores", semaphore,
                                  "a semaphore defined with app.semaphore()", f"mapping {name}")
        queue_only = {
            "maximum_concurrency": maximum_concurrency,
            "scaling": scaling,
            "scaling_ceiling": scaling_ceiling,
        }
        stream_only: dict[str, Any] = {
            "starting_position": starting_position,
            "starting_position_timestamp": starting_position_timestamp,
            "parallelization_factor": parallelization_factor,
            "bisect_batch_on_function_error": bisect_batch_on_function_error,
            "maximum_retry_attempts": maximum_retry_attempts,
            "maximum_record_age": maximum_record_age,
            "on_failure": on_failure.name if isinstance(on_failure, QueueConfig) else on_failure,
        }
        breaker_spec = self._breaker(breaker, f"mapping {name}")
        if name in self.streams and not isinstance(source, QueueConfig):
            if algorithm is not None or adaptive is not None:
                # a stream has no scaling policy: an adaptive limit is asked for by these
                stream_only["adaptive"] = _adaptive("adaptive", algorithm, adaptive,
                                                    f"mapping {name}")
            return self._map_stream(
                name, function, batch_size, maximum_batching_window,
                report_batch_item_failures, enabled, filter_criteria, queue_only, stream_only,
                semaphores,
                breaker_spec,
            )
        if name not in self.queues:
            raise ConfigError(
                "source", name, "a queue or stream defined with app.queue() or app.stream()",
                "mapping",
            )
        qname = name
        fn = self._function(function)
        for parameter, value in stream_only.items():
            if value is not None:
                raise ConfigError(
                    parameter, value, "only for stream sources", f"mapping {qname}->{fn.name}"
                )
        config = MappingConfig(
            qname,
            fn.name,
            batch_size=(SETTINGS["batch_size"].default_for(QUEUE) if batch_size is None
                        else batch_size),
            maximum_batching_window=maximum_batching_window,  # type: ignore[arg-type]
            maximum_concurrency=maximum_concurrency,
            report_batch_item_failures=report_batch_item_failures,
            scaling=SETTINGS["scaling"].default if scaling is None else scaling,
            scaling_ceiling=DEFAULT_SCALING_CEILING if scaling_ceiling is None else scaling_ceiling,
            enabled=enabled,
            filter_criteria=filter_criteria,
            semaphores=semaphores,  # type: ignore[arg-type]
            breaker=breaker_spec,
            adaptive=_adaptive(scaling, algorithm, adaptive, f"mapping {qname}->{fn.name}"),
        )
        check_visibility_against_timeout(self.queues[qname], fn.config)
        if any(m.queue == qname and m.function == fn.name for m in self.mappings):
            raise ConfigError(
                "function", fn.name, f"mapped once to queue {qname!r}", f"mapping {config.name}"
            )
        self.mappings.append(config)
        return config

    def _map_stream(
        self,
        stream: str,
        function: Callable[..., Any] | Function | str,
        batch_size: int | None,
        maximum_batching_window: int | timedelta,
        report_batch_item_failures: bool,
        enabled: bool,
        filter_criteria: Any,
        queue_only: dict[str, Any],
        stream_only: dict[str, Any],
        semaphores: tuple[str, ...] | str = (),
        breaker: Any = None,
    ) -> StreamMappingConfig:
        fn = self._function(function)
        ctx = f"mapping {stream}->{fn.name}"
        for parameter, value in queue_only.items():
            if value is not None:
                raise ConfigError(parameter, value, "only for queue sources", ctx)
        if isinstance(maximum_batching_window, timedelta):
            maximum_batching_window = int(maximum_batching_window.total_seconds())
        settings = {k: v for k, v in stream_only.items() if v is not None}
        config = StreamMappingConfig(
            stream,
            fn.name,
            batch_size=(SETTINGS["batch_size"].default_for(STREAM) if batch_size is None
                        else batch_size),
            maximum_batching_window=maximum_batching_window,
            report_batch_item_failures=report_batch_item_failures,
            enabled=enabled,
            filter_criteria=filter_criteria,
            semaphores=semaphores,  # type: ignore[arg-type]
            breaker=breaker,
            **settings,
        )
        destination = config.on_failure
        if destination is not None and destination not in self.queues:
            raise ConfigError("on_failure", destination, "a queue defined with app.queue()", ctx)
        if any(m.stream == stream and m.function == fn.name for m in self.stream_mappings):
            raise ConfigError("function", fn.name, f"mapped once to stream {stream!r}", ctx)
        self.stream_mappings.append(config)
        return config

    # ------------------------------------------------------------------ semaphores
    def semaphore(
        self, name: str, *, limit: int = SETTINGS["limit"].default,
        lease_ttl: int = SETTINGS["lease_ttl"].default,
    ) -> SemaphoreConfig:
        """Define a named counted semaphore, shared through the store by every process
        running against it: mappings name it (``app.map(..., semaphores=("db",))``) and
        handlers take it mid-way (``with context.semaphore("db"):``).

        Parameters:
            limit: holders at once, 1-100,000 (default 1).
            lease_ttl: seconds a holder's slot outlives its last renewal, 1-3,600
                (default 10): how long a killed process's slot stays taken.

        Raises:
            ConfigError: a value out of range, or the name defined twice.
        """
        config = SemaphoreConfig(name, limit, lease_ttl)
        if name in self.semaphores:
            raise ConfigError("name", name, "a semaphore defined once", "semaphore")
        self.semaphores[name] = config
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

    # ------------------------------------------------------------------ controllers
    def control(
        self,
        target: Any,
        *,
        name: str | None = None,
        every: float = 1.0,
        why: str = "",
        **settings: Any,
    ) -> list[ControlRule]:
        """Add controller rules: each of ``settings`` (``maximum_concurrency``,
        ``enabled``, ``reserved_concurrency``, a breaker's ``state``) of ``target`` from a
        source (a constant, :func:`~sluicegate.control.schedule`,
        :func:`~sluicegate.control.health_check`, :func:`~sluicegate.control.store_key`
        or a callable of :class:`~sluicegate.control.Signals`), evaluated every ``every``
        seconds by the one controller of the App (see :mod:`sluicegate.control`).

        ``target``: a mapping (its config or its ``queue->function`` name), a queue or
        stream with one mapping, a function (for ``reserved_concurrency``; a mapping
        stands for its function), or a breaker's name (for ``state``).

        Returns:
            The rules added, named ``name`` (``name:setting`` when several settings are
            given; ``target:setting`` without a name).

        Raises:
            ConfigError: no setting, a setting that cannot change live, an unknown target,
                a constant or scheduled value out of range, a second rule for the same
                setting of the same target, ``every`` not > 0.
        """
        from sluicegate.control import ControlRule, HealthCheck
        from sluicegate.core.live import Schedule, check_live_value, scope_kind

        if not settings:
            raise ConfigError("settings", "", "at least one live setting", "app.control")
        if isinstance(every, bool) or not isinstance(every, int | float) or every <= 0:
            raise ConfigError("every", every, "seconds > 0", "app.control")
        rules: list[ControlRule] = []
        for setting, source in settings.items():
            kind = scope_kind(setting)
            resolved = self._control_target(kind, target)
            rule_name = (name if name and len(settings) == 1 else
                         f"{name}:{setting}" if name else f"{resolved}:{setting}")
            context = f"control {rule_name}"
            if isinstance(source, HealthCheck):
                healthy, unhealthy = source.healthy, source.unhealthy
                if healthy is None and unhealthy is None:
                    if setting == "enabled":
                        healthy, unhealthy = True, False
                    elif setting == "state":
                        healthy, unhealthy = "closed", "open"
                    else:
                        raise ConfigError(setting, source.url, "health_check(..., healthy=N, "
                                          "unhealthy=M) for a number", context)
                check_live_value(setting, healthy, context)
                check_live_value(setting, unhealthy, context)
                source = HealthCheck(source.url, healthy, unhealthy, source.timeout)
            elif isinstance(source, Schedule):
                for value in (*source.windows.values(), source.default):
                    check_live_value(setting, value, context)
            elif not callable(source) and not _is_source(source):
                check_live_value(setting, source, context)
            for rule in self.controls:
                if (rule.kind, rule.target, rule.setting) == (kind, resolved, setting):
                    raise ConfigError(setting, resolved, "one rule per setting (rule "
                                      f"{rule.name!r} already sets it)", context)
            rules.append(ControlRule(rule_name, kind, resolved, setting, source,
                                     float(every), why))
        self.controls.extend(rules)
        return rules

    def _control_target(self, kind: str, target: Any) -> str:
        """The mapping's, function's or breaker's name ``target`` stands for."""
        if kind == "breaker":
            if not isinstance(target, str) or not target:
                raise ConfigError("target", target, "a breaker's name", "app.control")
            return target
        mappings: list[Any] = [*self.mappings, *self.stream_mappings]
        if isinstance(target, MappingConfig | StreamMappingConfig):
            mapping: Any = target
        elif isinstance(target, QueueConfig | StreamConfig | str):
            text = target if isinstance(target, str) else target.name
            named = [m for m in mappings if m.name == text]
            by_source = [m for m in mappings
                         if getattr(m, "queue", None) == text or getattr(m, "stream", None) == text]
            if named:
                mapping = named[0]
            elif len(by_source) == 1:
                mapping = by_source[0]
            elif kind == "function" and isinstance(target, str) and target in self.functions:
                return target
            else:
                raise ConfigError("target", text, "a mapping (queue->function), a queue or "
                                  "stream with one mapping" + (", or a function" if
                                                               kind == "function" else ""),
                                  "app.control")
        elif kind == "function":
            return self._function(target).name
        else:
            raise ConfigError("target", target, "a mapping", "app.control")
        return str(mapping.function) if kind == "function" else str(mapping.name)

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


def _adaptive(scaling: str | None, algorithm: str | None,
              adaptive: AdaptiveConfig | Mapping[str, Any] | None, context: str
              ) -> AdaptiveConfig | None:
    """``app.map``'s ``algorithm`` and ``adaptive`` as one
    :class:`~sluicegate.core.adaptive.AdaptiveConfig` (``None`` when neither is given:
    the mapping then takes the defaults with ``scaling="adaptive"``)."""
    if algorithm is None and adaptive is None:
        return None
    if scaling != "adaptive":
        parameter, value = ("algorithm", algorithm) if algorithm is not None else (
            "adaptive", adaptive)
        raise ConfigError(parameter, value, 'only with scaling="adaptive"', context)
    if isinstance(adaptive, AdaptiveConfig):
        if algorithm is not None and algorithm != adaptive.algorithm:
            raise ConfigError("algorithm", algorithm,
                              f"the adaptive config's own ({adaptive.algorithm!r})", context)
        return adaptive
    if adaptive is not None and not isinstance(adaptive, Mapping):
        raise ConfigError("adaptive", adaptive, "an AdaptiveConfig or a dict of its parameters",
                          context)
    values = dict(adaptive or {})
    if algorithm is not None:
        values["algorithm"] = algorithm
    return AdaptiveConfig.from_mapping(values, context)
def _is_source(value: object) -> bool:
    """A controller source that is not a constant (its values are checked when read)."""
    from sluicegate.control import StoreKey

    return isinstance(value, StoreKey)
