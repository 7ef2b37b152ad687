"""Frozen, validated configuration of queues, functions and mappings.

Every range here is AWS's (see the Lambda and SQS API references); a value outside it
raises :class:`~sluicegate.errors.ConfigError` naming the parameter, the value and the
allowed range, at the moment the object is built, so that an App fails when it is
defined rather than when it runs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

from sluicegate.core.adaptive import AdaptiveConfig
from sluicegate.core.filters import FilterCriteria, FilterSource
from sluicegate.core.settings import FIFO, QUEUE, SETTINGS, check_bool, check_int
from sluicegate.errors import ConfigError

if TYPE_CHECKING:
    from sluicegate.core.breaker import BreakerConfig

__all__ = [
    "DEFAULT_ACCOUNT_CONCURRENCY",
    "DEFAULT_ISOLATION",
    "DEFAULT_SCALING_CEILING",
    "FIFO_MAX_BATCH_SIZE",
    "ISOLATION_NAMES",
    "MAX_PAYLOAD_BYTES",
    "MIN_UNRESERVED_CONCURRENCY",
    "SHARED_ISOLATION",
    "AccountConfig",
    "FunctionConfig",
    "IsolationName",
    "MappingConfig",
    "QueueConfig",
    "ScalingName",
    "TopicConfig",
    "is_fifo_queue",
    "to_seconds",
]

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
"""Synchronous invocation payload cap (6 MB, Lambda quotas); a batch is released before it
would exceed it. Record metadata counts toward it."""

DEFAULT_ACCOUNT_CONCURRENCY: int = SETTINGS["concurrency_limit"].default
"""Default regional concurrency quota of an AWS account (Lambda quotas)."""

MIN_UNRESERVED_CONCURRENCY: int = SETTINGS["min_unreserved"].default
"""Reserved concurrency may not push the unreserved pool below this (Lambda docs)."""

DEFAULT_SCALING_CEILING: int = SETTINGS["scaling_ceiling"].default
"""Concurrent invocations one standard-queue mapping scales to at most (current Lambda
developer guide; older pages say 1,000, hence configurable)."""

ScalingName = Literal["aws", "fixed", "adaptive"]
SCALING_NAMES: tuple[str, ...] = SETTINGS["scaling"].choices

IsolationName = Literal["module", "process", "shared", "thread"]
ISOLATION_NAMES: tuple[str, ...] = SETTINGS["isolation"].choices
"""How a function's invocations are isolated from each other; see :class:`FunctionConfig`.
``"thread"`` is the former name of ``"shared"`` (the default before execution
environments), kept so that existing Apps keep working."""

DEFAULT_ISOLATION: IsolationName = SETTINGS["isolation"].default
"""The isolation of a function that names none: in-process execution environments."""

SHARED_ISOLATION: tuple[str, ...] = ("shared", "thread")
"""The isolation names that share one module between concurrent invocations."""

_QUEUE_NAME = re.compile(r"^(?=.{1,80}$)[A-Za-z0-9_-]+(\.fifo)?$")
"""SQS queue names: 1-80 characters, letters, digits, ``-`` and ``_``; a FIFO queue's name
ends in ``.fifo`` (counted in the 80)."""

FIFO_SUFFIX = ".fifo"

FIFO_MAX_BATCH_SIZE: int = SETTINGS["batch_size"].range_for(FIFO)[1]
"""A FIFO mapping takes at most 10 records per batch, with no batching window (Lambda
developer guide, SQS FIFO event source)."""


def is_fifo_queue(name: str) -> bool:
    """Whether ``name`` names a FIFO queue (it ends in ``.fifo``)."""
    return name.endswith(FIFO_SUFFIX)
_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

ASYNC_QUEUE_NAME: Final = re.compile(r"^async:([A-Za-z0-9_-]{1,64})$")
"""A function's internal queue of asynchronous invocations: ``async:FUNCTION``
(:mod:`sluicegate.core.async_events`); no user queue's name has a ``:``."""

BUS_QUEUE_NAME: Final = re.compile(r"^bus:[A-Za-z0-9._-]{1,64}$")
"""An event bus's queue: ``bus:NAME`` (:mod:`sluicegate.core.buses`)."""


def to_seconds(value: float | timedelta, parameter: str = "duration") -> float:
    """Normalise a duration given as seconds or a ``timedelta`` to float seconds."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(parameter, value, "a number of seconds or a timedelta")
    if math.isnan(value) or math.isinf(value):
        raise ConfigError(parameter, value, "a finite number of seconds")
    return float(value)


_int_in = check_int
"""Kept for callers of the former private helper; :mod:`sluicegate.core.settings` holds it."""
_bool = check_bool


def _check(name: str, value: Any, context: str, kind: str | None = None) -> Any:
    """``value`` validated against the definition of setting ``name``."""
    return SETTINGS[name].check(value, context, kind)


_Q = SETTINGS
"""Short name for the field defaults below."""


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """An SQS-style queue: standard, or FIFO when its name ends in ``.fifo``.

    Parameters:
        name: 1-80 characters, letters, digits, ``-`` and ``_``; a FIFO queue's name ends in
            ``.fifo``. FIFO queues deliver the messages of one message group in order, one
            batch of a group at a time, and drop duplicates sent within 5 minutes.
        visibility_timeout: seconds a received message stays hidden, 0-43,200 (default 30).
        delay_seconds: default delivery delay of new messages, 0-900 (default 0).
        retention_period: seconds a message is kept, 60-1,209,600 (default 345,600 = 4 days).
        max_message_size: bytes of body plus attributes, 1,024-262,144 (default 262,144).
        receive_wait_time: default long-poll wait of a receive, 0-20 s (default 0).
        dead_letter_queue: name of the queue that receives messages after
            ``max_receive_count`` receives; ``None`` for no redrive.
        max_receive_count: 1-1,000; required with a dead-letter queue (AWS recommends >= 5).
        content_based_deduplication: FIFO only: a message sent without a deduplication id
            is deduplicated by the SHA-256 of its body. Without it, every send to the FIFO
            queue must carry a deduplication id.
    """

    name: str
    visibility_timeout: int = _Q["visibility_timeout"].default_for(QUEUE)
    delay_seconds: int = _Q["delay_seconds"].default_for(QUEUE)
    retention_period: int = _Q["retention_period"].default_for(QUEUE)
    max_message_size: int = _Q["max_message_size"].default_for(QUEUE)
    receive_wait_time: int = _Q["receive_wait_time"].default_for(QUEUE)
    dead_letter_queue: str | None = None
    max_receive_count: int | None = None
    content_based_deduplication: bool = False

    @property
    def fifo(self) -> bool:
        """Whether this is a FIFO queue."""
        return is_fifo_queue(self.name)

    def __post_init__(self) -> None:
        ctx = f"queue {self.name!r}"
        if not isinstance(self.name, str) or not (
            _QUEUE_NAME.match(self.name) or ASYNC_QUEUE_NAME.match(self.name)
            or BUS_QUEUE_NAME.match(self.name)
        ):
            raise ConfigError(
                "name",
                self.name,
                "1-80 letters, digits, '-' or '_', optionally ending in '.fifo'",
                "queue",
            )
        set_ = object.__setattr__
        for name in ("visibility_timeout", "delay_seconds", "retention_period",
                     "max_message_size", "receive_wait_time"):
            set_(self, name, _check(name, getattr(self, name), ctx, QUEUE))
        if self.dead_letter_queue is not None:
            if not isinstance(self.dead_letter_queue, str) or not _QUEUE_NAME.match(
                self.dead_letter_queue
            ):
                raise ConfigError("dead_letter_queue", self.dead_letter_queue, "a queue name", ctx)
            if self.dead_letter_queue == self.name:
                raise ConfigError(
                    "dead_letter_queue", self.dead_letter_queue, "a queue other than itself", ctx
                )
            if is_fifo_queue(self.dead_letter_queue) != self.fifo:
                # SQS: the dead-letter queue of a FIFO queue must be FIFO, and of a
                # standard queue standard.
                raise ConfigError(
                    "dead_letter_queue",
                    self.dead_letter_queue,
                    "a FIFO queue (name ending in '.fifo')" if self.fifo else "a standard queue",
                    ctx,
                )
            if self.max_receive_count is None:
                low, high = SETTINGS["max_receive_count"].range_for(QUEUE)
                raise ConfigError(
                    "max_receive_count", None,
                    f"{low:,}-{high:,} when a dead_letter_queue is set", ctx
                )
        if self.max_receive_count is not None:
            set_(self, "max_receive_count",
                 _check("max_receive_count", self.max_receive_count, ctx, QUEUE))
            if self.dead_letter_queue is None:
                raise ConfigError(
                    "dead_letter_queue", None, "a queue name when max_receive_count is set", ctx
                )
        set_(
            self,
            "content_based_deduplication",
            check_bool("content_based_deduplication", self.content_based_deduplication, ctx),
        )
        if self.content_based_deduplication and not self.fifo:
            raise ConfigError(
                "content_based_deduplication", True, "only on FIFO queues (name ending in '.fifo')",
                ctx,
            )


@dataclass(frozen=True, slots=True)
class FunctionConfig:
    """A handler function's Lambda settings.

    Parameters:
        name: 1-64 letters, digits, ``-`` or ``_``.
        timeout: seconds an invocation may run, 1-900 (default 3, as Lambda).
        memory_size: MB reported to the handler's context, 128-10,240 (default 128).
        reserved_concurrency: the function's own pool carved out of the account's;
            ``None`` for none, ``0`` to throttle every invocation.
        isolation: where invocations run; every kind but ``"shared"`` runs them in
            *execution environments* as AWS does: an environment is created on demand (a
            cold start, counted in the metrics), runs one invocation at a time, is reused
            while warm and reaped when idle, and has its own instance of the handler's
            module and of the user's own modules it imports, so module-level state (the
            aws-lambda-powertools ``BatchProcessor`` documented as a module-level
            ``processor``, a connection, a cache) belongs to one invocation at a time.
            ``"module"`` (default): environments in the runtime's process, each
            executing the handler's module (and the user modules it imports) afresh
            into module objects of its own; third-party and standard-library modules are
            shared. Sync handlers run on worker threads, async ones on the event loop,
            at the cost of shared threads. A handler that cannot be loaded afresh (a
            closure or lambda defined in a function) is shared by the environments, one
            invocation at a time each. A timed-out sync handler cannot be stopped (its
            thread runs on, its result discarded): its environment is retired. See
            :mod:`sluicegate.runtime.environments`. ``"process"``: each environment is a
            worker process that imports the handler's code itself (a cold start of 0.1 s
            or more); a timeout kills it. Use it for handlers that must really be
            stopped at their timeout and for CPU-bound handlers (each process has its
            own GIL). It needs a handler the worker can import: an App loaded from a
            file or module path (as ``sluicegate run`` does), or a module-level handler;
            events and responses cross a process boundary as JSON, several times slower
            per invocation, and a cold start comes before the timeout starts, so leave
            the queue's visibility timeout room for it. See
            :mod:`sluicegate.runtime.isolation`. ``"shared"`` (formerly ``"thread"``,
            still accepted): no environments; every invocation shares the one module
            and runs as soon as the function's concurrency allows, slightly faster, for
            handlers that keep no per-invocation state at module level.
    """

    name: str
    timeout: float = _Q["timeout"].default
    memory_size: int = _Q["memory_size"].default
    reserved_concurrency: int | None = _Q["reserved_concurrency"].default
    isolation: IsolationName = DEFAULT_ISOLATION

    def __post_init__(self) -> None:
        ctx = f"function {self.name!r}"
        if not isinstance(self.name, str) or not _FUNCTION_NAME.match(self.name):
            raise ConfigError("name", self.name, "1-64 letters, digits, '-' or '_'", "function")
        timeout = to_seconds(self.timeout, "timeout")
        low, high = SETTINGS["timeout"].range_for()
        if not low <= timeout <= high:
            raise ConfigError("timeout", self.timeout, f"{low:,}-{high:,} s", ctx)
        object.__setattr__(self, "timeout", timeout)
        object.__setattr__(self, "memory_size", _check("memory_size", self.memory_size, ctx))
        object.__setattr__(
            self, "reserved_concurrency",
            _check("reserved_concurrency", self.reserved_concurrency, ctx),
        )
        _check("isolation", self.isolation, ctx)


@dataclass(frozen=True, slots=True)
class AccountConfig:
    """The account-wide concurrency pool.

    Parameters:
        concurrency_limit: total concurrent executions of all functions (default 1,000).
        min_unreserved: what reserved concurrency must leave to unreserved functions
            (default 100; AWS shows 50 on some small new accounts).
    """

    concurrency_limit: int = DEFAULT_ACCOUNT_CONCURRENCY
    min_unreserved: int = MIN_UNRESERVED_CONCURRENCY

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "concurrency_limit",
            _check("concurrency_limit", self.concurrency_limit, "account"),
        )
        low = SETTINGS["min_unreserved"].range_for()[0]
        object.__setattr__(
            self,
            "min_unreserved",
            check_int("min_unreserved", self.min_unreserved, low, self.concurrency_limit,
                      "account"),
        )


NO_FILTER = FilterCriteria()
"""The criteria of a queue mapping without filters (they are immutable, so one serves all)."""

_TOPIC_NAME = re.compile(r"^(?=.{1,256}$)[A-Za-z0-9_-]+(\.fifo)?$")


@dataclass(frozen=True, slots=True)
class TopicConfig:
    """An SNS-style topic: a publish delivers the message to every subscribed queue.

    Parameters:
        name: 1-256 letters, digits, ``-`` and ``_``; a FIFO topic's name ends in
            ``.fifo``.
        subscribers: names of the queues it delivers to. A FIFO topic delivers only to
            FIFO queues, keeping the message group and deduplication ids; a standard topic
            only to standard queues (SNS's rules).
        content_based_deduplication: FIFO only: a publish without a deduplication id is
            deduplicated by the SHA-256 of its body.
        functions: names of the functions subscribed to it: each publish is an
            asynchronous invocation of each, with SNS's event (the SNS-to-Lambda pattern).
            A FIFO topic has none (SNS delivers FIFO topics to SQS FIFO queues only).
    """

    name: str
    subscribers: tuple[str, ...] = ()
    content_based_deduplication: bool = False
    functions: tuple[str, ...] = ()

    @property
    def fifo(self) -> bool:
        """Whether this is a FIFO topic."""
        return self.name.endswith(FIFO_SUFFIX)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _TOPIC_NAME.match(self.name):
            raise ConfigError(
                "name", self.name,
                "1-256 letters, digits, '-' or '_', optionally ending in '.fifo'", "topic",
            )
        ctx = f"topic {self.name!r}"
        subscribers = self.subscribers
        if isinstance(subscribers, str) or not all(isinstance(q, str) for q in subscribers):
            raise ConfigError("subscribers", subscribers, "a list of queue names", ctx)
        subscribers = tuple(subscribers)
        if len(set(subscribers)) != len(subscribers):
            raise ConfigError("subscribers", list(subscribers), "distinct queue names", ctx)
        for queue in subscribers:
            if is_fifo_queue(queue) != self.fifo:
                raise ConfigError(
                    "subscribers", queue,
                    "FIFO queues only (a FIFO topic)" if self.fifo
                    else "standard queues only (a standard topic)",
                    ctx,
                )
        object.__setattr__(self, "subscribers", subscribers)
        functions = self.functions
        if isinstance(functions, str) or not all(isinstance(f, str) for f in functions):
            raise ConfigError("functions", functions, "a list of function names", ctx)
        functions = tuple(functions)
        if len(set(functions)) != len(functions):
            raise ConfigError("functions", list(functions), "distinct function names", ctx)
        if functions and self.fifo:
            raise ConfigError("subscribers", functions[0],
                              "queues only: a FIFO topic cannot deliver to a function", ctx)
        object.__setattr__(self, "functions", functions)
        object.__setattr__(
            self,
            "content_based_deduplication",
            check_bool("content_based_deduplication", self.content_based_deduplication, ctx),
        )
        if self.content_based_deduplication and not self.fifo:
            raise ConfigError(
                "content_based_deduplication", True, "only on FIFO topics", ctx
            )


@dataclass(frozen=True, slots=True)
class MappingConfig:
    """An event source mapping from a queue (standard or FIFO) to a function.

    A mapping from a FIFO queue takes at most :data:`FIFO_MAX_BATCH_SIZE` records per
    batch and no batching window, as AWS requires.

    Parameters:
        queue: the source queue's name.
        function: the target function's name.
        batch_size: records per invocation, 1-10,000 (default 10); above 10 requires
            ``maximum_batching_window`` >= 1 s, as AWS requires.
        maximum_batching_window: seconds to gather a batch, 0-300 (default 0).
        maximum_concurrency: concurrent invocations this mapping may reach, 2-1,000, or
            ``None`` for none. sluicegate never exceeds it.
        report_batch_item_failures: honour ``batchItemFailures`` in handler responses.
        scaling: ``"aws"`` (AWS's poller scaling), ``"fixed"`` (the limit from the start)
            or ``"adaptive"`` (a limit that follows latency and drops:
            :mod:`sluicegate.core.adaptive`).
        scaling_ceiling: the ``aws`` policy's per-mapping ceiling, 1-100,000 (default 1,250).
        adaptive: the adaptive limit's settings
            (:class:`~sluicegate.core.adaptive.AdaptiveConfig`, or a dict of them) with
            ``scaling="adaptive"``; ``None``: the defaults. Refused with another
            ``scaling``.
        enabled: ``False`` creates the mapping paused.
        filter_criteria: only messages matching one of these patterns reach the function;
            the others are deleted when received, as AWS does (see
            :class:`~sluicegate.core.filters.FilterCriteria`; a list of patterns is
            accepted).
        semaphores: names of semaphores (``app.semaphore``) the mapping takes a slot of
            for each invocation; it does not receive while it cannot take them.
        breaker: the circuit breaker in front of the function's downstream: the name of
            a breaker defined with ``app.breaker`` (shared by every mapping that names
            it), a :class:`~sluicegate.core.breaker.BreakerConfig` or a dict of its
            settings (the mapping's own); ``None`` (default): none.
    """

    queue: str
    function: str
    batch_size: int = _Q["batch_size"].default_for(QUEUE)
    maximum_batching_window: int = _Q["maximum_batching_window"].default_for(QUEUE)
    maximum_concurrency: int | None = _Q["maximum_concurrency"].default
    report_batch_item_failures: bool = _Q["report_batch_item_failures"].default
    scaling: ScalingName = _Q["scaling"].default
    scaling_ceiling: int = DEFAULT_SCALING_CEILING
    enabled: bool = _Q["enabled"].default
    filter_criteria: FilterCriteria = NO_FILTER
    semaphores: tuple[str, ...] = ()
    breaker: str | BreakerConfig | None = None
    adaptive: AdaptiveConfig | None = None

    @property
    def name(self) -> str:
        """``queue->function``, how the mapping is shown in errors and status."""
        return f"{self.queue}->{self.function}"

    @property
    def fifo(self) -> bool:
        """Whether the source is a FIFO queue."""
        return is_fifo_queue(self.queue)

    def __post_init__(self) -> None:
        ctx = f"mapping {self.queue}->{self.function}"
        set_ = object.__setattr__
        set_(self, "batch_size", _check("batch_size", self.batch_size, ctx, QUEUE))
        set_(self, "maximum_batching_window",
             _check("maximum_batching_window", self.maximum_batching_window, ctx, QUEUE))
        if self.fifo:
            if self.batch_size > FIFO_MAX_BATCH_SIZE:
                raise ConfigError(
                    "batch_size", self.batch_size,
                    f"1-{FIFO_MAX_BATCH_SIZE} for a FIFO queue", ctx,
                )
            if self.maximum_batching_window:
                raise ConfigError(
                    "maximum_batching_window", self.maximum_batching_window,
                    "0 for a FIFO queue (no batching window)", ctx,
                )
        if self.batch_size > 10 and self.maximum_batching_window < 1:
            raise ConfigError(
                "maximum_batching_window",
                self.maximum_batching_window,
                f">= 1 s when batch_size ({self.batch_size}) is above 10",
                ctx,
            )
        set_(self, "maximum_concurrency",
             _check("maximum_concurrency", self.maximum_concurrency, ctx))
        set_(self, "report_batch_item_failures",
             _check("report_batch_item_failures", self.report_batch_item_failures, ctx))
        _check("scaling", self.scaling, ctx)
        set_(self, "scaling_ceiling", _check("scaling_ceiling", self.scaling_ceiling, ctx))
        set_(self, "enabled", _check("enabled", self.enabled, ctx))
        set_(self, "filter_criteria", as_filter_criteria(self.filter_criteria, "queue"))
        set_(self, "semaphores", check_semaphore_names(self.semaphores, ctx))
        set_(self, "breaker", as_breaker(self.breaker, ctx))
        adaptive: Any = self.adaptive
        if self.scaling == "adaptive":
            if adaptive is None:
                adaptive = AdaptiveConfig()
            elif isinstance(adaptive, Mapping):
                adaptive = AdaptiveConfig.from_mapping(adaptive, ctx)
            elif not isinstance(adaptive, AdaptiveConfig):
                raise ConfigError("adaptive", adaptive,
                                  "an AdaptiveConfig or a dict of its parameters", ctx)
            set_(self, "adaptive", adaptive)
        elif adaptive is not None:
            raise ConfigError("adaptive", adaptive, 'only with scaling="adaptive"', ctx)


# ---------------------------------------------------------------------- semaphores
@dataclass(frozen=True, slots=True)
class SemaphoreConfig:
    """A named counted semaphore in the store, shared by every process of the store.

    Parameters:
        name: 1-200 characters.
        limit: holders it admits at once, 1-100,000 (default 1: a mutex).
        lease_ttl: seconds a holder keeps its slot without renewing, 1-3,600 (default
            10); a holder renews every third of it, and a killed holder's slot frees at
            most this long after it died.
    """

    name: str
    limit: int = SETTINGS["limit"].default
    lease_ttl: int = SETTINGS["lease_ttl"].default

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not 1 <= len(self.name) <= 200:
            raise ConfigError("name", self.name, "1-200 characters", "semaphore")
        ctx = f"semaphore {self.name!r}"
        set_ = object.__setattr__
        set_(self, "limit", SETTINGS["limit"].check(self.limit, ctx))
        set_(self, "lease_ttl", SETTINGS["lease_ttl"].check(self.lease_ttl, ctx))


def check_semaphore_names(value: Any, context: str) -> tuple[str, ...]:
    """``value`` (a name or names) as a tuple of distinct semaphore names; else
    :class:`ConfigError`."""
    names = (value,) if isinstance(value, str) else value
    if not isinstance(names, tuple | list) or not all(
        isinstance(n, str) and 1 <= len(n) <= 200 for n in names
    ) or len(set(names)) != len(names):
        raise ConfigError("semaphores", value, "distinct semaphore names", context)
    return tuple(names)


BREAKER_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")
"""A shared breaker's name: 1-80 letters, digits, ``.``, ``-`` and ``_``."""


def as_breaker(value: object, context: str) -> str | BreakerConfig | None:
    """A mapping's ``breaker=`` normalised: a shared breaker's name, a
    :class:`~sluicegate.core.breaker.BreakerConfig` (built from a dict of settings), or
    ``None``; else :class:`ConfigError`. Whether a name is defined is the App's check."""
    # imported here: breaker imports limit, which imports scaling, which imports this
    from sluicegate.core.breaker import BreakerConfig

    if value is None or isinstance(value, BreakerConfig):
        return value
    if isinstance(value, str):
        if not BREAKER_NAME.match(value):
            raise ConfigError("breaker", value, "1-80 letters, digits, '.', '-' or '_'",
                              context)
        return value
    if isinstance(value, Mapping):
        return BreakerConfig.from_settings(value, f"{context}: breaker")
    raise ConfigError(
        "breaker", value, "a breaker's name, a BreakerConfig or a dict of its settings",
        context,
    )


def as_filter_criteria(value: Any, source: FilterSource) -> FilterCriteria:
    """``value`` (criteria, a list of patterns, ``None``) as :class:`FilterCriteria` of
    ``source``; raises :class:`ConfigError` for a pattern that cannot be parsed."""
    if isinstance(value, FilterCriteria):
        if value.source != source:
            return FilterCriteria(value.patterns, source=source)
        return value
    if value is None:
        return FilterCriteria(source=source)
    if isinstance(value, str | dict):
        value = [value]
    return FilterCriteria(value, source=source)


def check_visibility_against_timeout(queue: QueueConfig, function: FunctionConfig) -> None:
    """Refuse a mapping whose queue hides messages for less than the function may run.

    AWS's CreateEventSourceMapping fails the same way ("Queue visibility timeout: 60 seconds
    is less than Function timeout: 120 seconds").
    """
    if queue.visibility_timeout < function.timeout:
        raise ConfigError(
            "visibility_timeout",
            queue.visibility_timeout,
            f">= the function timeout of {function.name!r} ({function.timeout:g} s)",
            f"queue {queue.name!r}",
        )


def effective_visibility_timeout(
    queue_visibility_timeout: int, batching_window: int, function_timeout: float
) -> float:
    """The visibility timeout a mapping's receives use.

    With a batching window, AWS extends it to window + function timeout + 30 s when the
    queue's own timeout would not cover the window plus a full invocation.
    """
    if batching_window > 0 and batching_window + function_timeout > queue_visibility_timeout:
        return batching_window + function_timeout + 30
    return float(queue_visibility_timeout)
