"""Every setting of queues, streams, functions, mappings and the account, defined once.

A :class:`Setting` holds a setting's name, type, default, range, unit and one-line doc.
The configuration classes (:mod:`sluicegate.core.config`,
:mod:`sluicegate.core.streams`), the scaling policies, the scenario schema of the
simulator and the App API all read their defaults and ranges here: :data:`SETTINGS`
maps a name to its definition, e.g. ``SETTINGS["batch_size"]``.

Where a setting differs by source kind, the definition carries a :class:`Variant` per
kind (:data:`QUEUE`, :data:`FIFO`, :data:`STREAM`): ``batch_size`` defaults to 10 for
queues and 100 for streams and is at most 10 for FIFO queues; ``retention_period`` is a
queue's (60 s - 14 days, default 4 days) or a stream's (24 hours - 365 days, default 24
hours). Ask with :meth:`Setting.default_for` and :meth:`Setting.range_for`.

Every range is AWS's (Lambda, SQS and Kinesis API references) unless the doc says it is
sluicegate's. :meth:`Setting.check` validates a value and raises
:class:`~sluicegate.errors.ConfigError` naming the parameter, the value and the allowed
range.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from sluicegate.errors import ConfigError

__all__ = [
    "ASYNC",
    "FIFO",
    "QUEUE",
    "SETTINGS",
    "STREAM",
    "Setting",
    "Variant",
    "check_bool",
    "check_float",
    "check_int",
    "setting",
]

QUEUE: Final = "queue"
"""Source kind: a standard queue."""
FIFO: Final = "fifo"
"""Source kind: a FIFO queue (falls back to :data:`QUEUE` where it does not differ)."""
STREAM: Final = "stream"
"""Source kind: a Kinesis-style stream."""
ASYNC: Final = "async"
"""Source kind: a function's internal queue of asynchronous invocations
(:mod:`sluicegate.core.async_events`)."""

_FALLBACK: Final[Mapping[str, str]] = {FIFO: QUEUE}


def check_int(
    parameter: str, value: Any, low: int, high: int, context: str, *, unit: str = ""
) -> int:
    """``value`` as an int in ``low..high`` (whole seconds from a ``timedelta``; a float
    that is a whole number); else :class:`ConfigError` with the range (and ``unit``,
    written after it with a space)."""
    suffix = f" {unit}" if unit else ""
    if isinstance(value, timedelta):
        value = value.total_seconds()
        if value != int(value):
            raise ConfigError(parameter, value, f"whole seconds {low:,}-{high:,}", context)
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ConfigError(parameter, value, f"an integer {low:,}-{high:,}{suffix}", context)
    if not low <= value <= high:
        raise ConfigError(parameter, value, f"{low:,}-{high:,}{suffix}", context)
    return int(value)


def check_float(
    parameter: str, value: Any, low: float | None, high: float | None, context: str, *,
    unit: str = "",
) -> float:
    """``value`` (a number, or a ``timedelta`` for seconds) as a float in ``low..high``
    (``None``: unbounded on that side); else :class:`ConfigError` with the range."""
    suffix = f" {unit}" if unit else ""
    shown = f"{low:g}-{high:g}" if low is not None and high is not None else (
        f">= {low:g}" if low is not None else f"<= {high:g}" if high is not None
        else "any number")
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ConfigError(parameter, value, f"a number {shown}{suffix}", context)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(parameter, value, f"{shown}{suffix}", context)
    return float(value)


def check_bool(parameter: str, value: Any, context: str) -> bool:
    """``value`` when it is a bool; else :class:`ConfigError`."""
    if not isinstance(value, bool):
        raise ConfigError(parameter, value, "true or false", context)
    return value


@dataclass(frozen=True, slots=True)
class Variant:
    """What differs for one source kind: default and range (``None``: as the setting's)."""

    default: Any = None
    low: int | float | None = None
    high: int | float | None = None
    special: Mapping[int, str] | None = None
    """Values allowed outside the range for this kind (``None``: the setting's)."""


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting's definition.

    Attributes:
        name: the parameter name, as the configuration classes, the App API and the
            scenario files spell it.
        type: ``"int"``, ``"float"``, ``"bool"`` or ``"choice"``.
        default: the default (for :data:`QUEUE` where it differs by kind); ``None``
            means unset (see ``unset``).
        low, high: the range, both ends included (``None``: not a number, or unbounded
            on that side; ``high`` of ``min_unreserved`` is the account's limit).
        unit: ``"s"``, ``"bytes"``, ``"MB"``, ``"records"``, ``"invocations"``,
            ``"shards"``, ``"%"`` or ``""``.
        doc: one line.
        owners: the configuration objects that have it: ``"queue"``, ``"stream"``,
            ``"function"``, ``"account"``, ``"mapping"`` (a queue's),
            ``"stream_mapping"``, ``"semaphore"``, ``"breaker"``, ``"async"`` (a
            function's asynchronous settings).
        choices: the allowed values of a ``"choice"``.
        unset: what ``None`` means when it is allowed (e.g. ``"no limit"``); ``""``:
            ``None`` is not allowed.
        special: values allowed outside the range, with their meaning (``-1``: no
            limit).
        variants: per source kind, what differs (see :meth:`default_for`).
    """

    name: str
    type: str
    default: Any
    low: int | float | None
    high: int | float | None
    unit: str
    doc: str
    owners: tuple[str, ...]
    choices: tuple[str, ...] = ()
    unset: str = ""
    special: Mapping[int, str] = field(default_factory=dict)
    variants: Mapping[str, Variant] = field(default_factory=dict)

    def _variant(self, kind: str | None) -> Variant | None:
        if kind is None:
            return None
        variant = self.variants.get(kind)
        if variant is None and kind in _FALLBACK:
            variant = self.variants.get(_FALLBACK[kind])
        return variant

    def default_for(self, kind: str | None = None) -> Any:
        """The default for a source kind (:data:`QUEUE`, :data:`FIFO`, :data:`STREAM`;
        ``None``: the setting's own)."""
        variant = self._variant(kind)
        if variant is not None and variant.default is not None:
            return variant.default
        return self.default

    def range_for(self, kind: str | None = None) -> tuple[Any, Any]:
        """``(low, high)`` for a source kind (see :meth:`default_for`)."""
        low, high = self.low, self.high
        variant = self._variant(kind)
        if variant is not None:
            if variant.low is not None:
                low = variant.low
            if variant.high is not None:
                high = variant.high
        return low, high

    def check(self, value: Any, context: str, kind: str | None = None) -> Any:
        """Validate ``value`` (an int setting: an int in range, or one of ``special``;
        a bool: a bool) and return it normalised; ``None`` passes when ``unset`` allows
        it.

        Raises:
            ConfigError: outside the range, naming the parameter, the value and what is
                allowed.
        """
        if value is None and self.unset:
            return None
        if self.type == "bool":
            return check_bool(self.name, value, context)
        if self.type == "choice":
            if not isinstance(value, str) or value not in self.choices:
                raise ConfigError(self.name, value, " or ".join(map(repr, self.choices)),
                                  context)
            return value
        if self.type == "float":
            return check_float(self.name, value, self.low, self.high, context,
                               unit=self.unit if self.unit in _SHOWN_UNITS else "")
        if self.type != "int":
            raise TypeError(f"setting {self.name!r} of type {self.type!r} has no check")
        low, high = self.range_for(kind)
        unit = self.unit if self.unit in _SHOWN_UNITS else ""
        variant = self._variant(kind)
        special = self.special if variant is None or variant.special is None else variant.special
        if special:
            if isinstance(value, timedelta):
                value = value.total_seconds()
            if not isinstance(value, bool) and value in special:
                return int(value)
            try:
                return check_int(self.name, value, int(low), int(high), context, unit=unit)
            except ConfigError:
                allowed = " or ".join(
                    f"{v} ({meaning})" for v, meaning in special.items()
                )
                suffix = f" {unit}" if unit else ""
                raise ConfigError(
                    self.name, value, f"{allowed} or {int(low):,}-{int(high):,}{suffix}",
                    context,
                ) from None
        return check_int(self.name, value, int(low), int(high), context, unit=unit)


_SHOWN_UNITS: Final = ("s", "bytes")
"""Units written after the range in a validation error ("0-300 s")."""

_Q: Final = ("queue",)
_F: Final = ("function",)
_A: Final = ("account",)
_M: Final = ("mapping",)
_SM: Final = ("stream_mapping",)
_BOTH: Final = ("mapping", "stream_mapping")

_DEFINITIONS: Final = (
    # ---------------------------------------------------------------- queues
    Setting("visibility_timeout", "int", 30, 0, 43_200, "s",
            "seconds a received message stays hidden from other receives", _Q),
    Setting("delay_seconds", "int", 0, 0, 900, "s",
            "default delivery delay of a new message", _Q),
    Setting("retention_period", "int", 345_600, 60, 1_209_600, "s",
            "seconds a message (queue) or record (stream) is kept",
            ("queue", "stream"),
            variants={STREAM: Variant(default=24 * 3600, low=24 * 3600,
                                      high=365 * 24 * 3600)}),
    Setting("max_message_size", "int", 262_144, 1024, 262_144, "bytes",
            "largest message, body plus attributes", _Q),
    Setting("receive_wait_time", "int", 0, 0, 20, "s",
            "default long-poll wait of a receive", _Q),
    Setting("max_receive_count", "int", None, 1, 1000, "",
            "receives after which a message goes to the dead-letter queue", _Q,
            unset="no redrive"),
    # ---------------------------------------------------------------- streams
    Setting("shard_count", "int", 1, 1, 10_000, "shards",
            "shards of a stream (the upper bound is sluicegate's guard, not AWS's quota)",
            ("stream",)),
    # ---------------------------------------------------------------- functions
    Setting("timeout", "float", 3.0, 1, 900, "s",
            "seconds an invocation may run", _F),
    Setting("memory_size", "int", 128, 128, 10_240, "MB",
            "memory reported to the handler's context", _F),
    Setting("reserved_concurrency", "int", None, 0, 1_000_000, "invocations",
            "the function's own pool carved out of the account's; it also caps it", _F,
            unset="no reservation"),
    Setting("isolation", "choice", "module", None, None, "",
            "where invocations run: in-process environments, worker processes, or shared",
            _F, choices=("module", "process", "shared", "thread")),
    # ---------------------------------------------------------------- account
    Setting("concurrency_limit", "int", 1000, 1, 10_000_000, "invocations",
            "concurrent executions of all the account's functions", _A),
    Setting("min_unreserved", "int", 100, 0, None, "invocations",
            "what reserved concurrency must leave to the other functions (at most "
            "concurrency_limit)", _A),
    # ---------------------------------------------------------------- mappings
    Setting("batch_size", "int", 10, 1, 10_000, "records",
            "records per invocation (queues above 10 need a batching window of >= 1 s)",
            _BOTH,
            variants={QUEUE: Variant(default=10), FIFO: Variant(default=10, high=10),
                      STREAM: Variant(default=100)}),
    Setting("maximum_batching_window", "int", 0, 0, 300, "s",
            "seconds to gather a batch (0 for a FIFO queue)", _BOTH,
            variants={FIFO: Variant(high=0)}),
    Setting("maximum_concurrency", "int", None, 2, 1000, "invocations",
            "concurrent invocations the mapping may reach; sluicegate never exceeds it", _M,
            unset="no limit"),
    Setting("report_batch_item_failures", "bool", False, None, None, "",
            "honour batchItemFailures in handler responses", _BOTH),
    Setting("scaling", "choice", "aws", None, None, "",
            "'aws' (AWS's poller scaling), 'fixed' (the limit from the start) or "
            "'adaptive' (a limit that follows latency and drops)", _M,
            choices=("aws", "fixed", "adaptive")),
    Setting("scaling_ceiling", "int", 1250, 1, 100_000, "invocations",
            "the aws policy's per-mapping ceiling", _M),
    Setting("enabled", "bool", True, None, None, "",
            "False creates the mapping paused", _BOTH),
    Setting("starting_position", "choice", "TRIM_HORIZON", None, None, "",
            "where a shard without a checkpoint is first read", _SM,
            choices=("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP")),
    Setting("parallelization_factor", "int", 1, 1, 10, "",
            "concurrent batches per shard; one partition key stays in order", _SM),
    Setting("bisect_batch_on_function_error", "bool", False, None, None, "",
            "split a failed batch in two and retry each half", _SM),
    Setting("maximum_retry_attempts", "int", -1, 0, 10_000, "",
            "retries of a failed batch before it is discarded (an asynchronous "
            "invocation's: 0-2, default 2)", (*_SM, "async"),
            special={-1: "no limit"},
            variants={ASYNC: Variant(default=2, low=0, high=2, special={})}),
    Setting("maximum_event_age", "int", 21_600, 60, 21_600, "s",
            "an asynchronous event older than this is discarded to the failure path",
            ("async",)),
    Setting("async_time_scale", "float", 1.0, 0.0001, 1.0, "",
            "multiplies the waits before an asynchronous invocation's retries (1 and 2 "
            "minutes on AWS); below 1 for tests and demos (sluicegate's)", ("async",)),
    Setting("maximum_record_age", "int", -1, 60, 604_800, "s",
            "a batch holding an older record is discarded instead of invoked", _SM,
            special={-1: "no limit"}),
    # ---------------------------------------------------------------- semaphores
    Setting("limit", "int", 1, 1, 100_000, "",
            "holders a semaphore admits at once (sluicegate's)", ("semaphore",)),
    Setting("lease_ttl", "int", 10, 1, 3600, "s",
            "seconds a semaphore's holder keeps its slot without renewing (renewed every "
            "third of it while held; a killed holder's slot frees after it)",
            ("semaphore",)),
)

_B: Final = ("breaker",)

_BREAKER_DEFINITIONS: Final = (
    # ---------------------------------------------------------------- breakers
    # sluicegate's own (AWS has no breaker); the names follow resilience4j's, the best
    # known breaker library's, where the notion is the same
    Setting("failure_rate_threshold", "float", 50.0, 1, 100, "%",
            "a breaker trips when at least this percentage of the calls in its window "
            "failed (error or timeout)", _B),
    Setting("slow_call_rate_threshold", "float", 100.0, 1, 100, "%",
            "a breaker trips when at least this percentage of the calls in its window "
            "were slow", _B),
    Setting("slow_call_duration", "float", None, 0.001, 900, "s",
            "a call whose latency (reported by the handler, else its duration) reaches "
            "this is slow", _B, unset="slow calls not counted"),
    Setting("sliding_window_type", "choice", "count", None, None, "",
            "a breaker's window: its last N calls ('count') or the last N seconds ('time')",
            _B, choices=("count", "time")),
    Setting("sliding_window_size", "int", 20, 1, 10_000, "",
            "calls (count window) or seconds (time window) a breaker's rates are over", _B),
    Setting("minimum_calls", "int", 10, 1, 10_000, "",
            "calls the window must hold before a breaker may trip", _B),
    Setting("open_wait", "float", 30.0, 0.01, 86_400, "s",
            "seconds a tripped breaker stays open before letting probes through", _B),
    Setting("open_wait_multiplier", "float", 1.0, 1, 100, "",
            "each trip after a failed probe multiplies the open wait by this", _B),
    Setting("open_wait_max", "float", 600.0, 0.01, 86_400, "s",
            "the longest open wait however many trips", _B),
    Setting("half_open_calls", "int", 1, 1, 1000, "invocations",
            "probe invocations a half-open breaker lets through; as many successes close it",
            _B),
    Setting("probe_interval", "float", 5.0, 0.01, 3600, "s",
            "seconds between two checks of a breaker's external probe while it is open", _B),
)

_AD: Final = ("adaptive",)

_ADAPTIVE_DEFINITIONS: Final = (
    # ------------------------------------------------- adaptive limits (scaling="adaptive")
    Setting("algorithm", "choice", "vegas", None, None, "",
            "the adaptive limit's update rule (Netflix concurrency-limits)", _AD,
            choices=("aimd", "gradient2", "vegas")),
    Setting("minimum", "int", 1, 1, 100_000, "invocations",
            "the adaptive limit never goes below it", _AD),
    Setting("maximum", "int", 1000, 1, 100_000, "invocations",
            "the adaptive limit never goes above it (nor above any other term)", _AD),
    Setting("initial", "int", None, 1, 100_000, "invocations",
            "the adaptive limit at the start", _AD, unset="the algorithm's default"),
    Setting("utilization", "float", 0.9, 0.1, 1.0, "",
            "grow only while the invocation's in-flight count reached this share of the "
            "limit (Netflix: 0.5; sluicegate's pollers are spare environments, so 0.9)",
            _AD),
    Setting("decay_time", "float", 10.0, 0.0, 86_400.0, "s",
            "while the limit is not used it decays toward in-flight / utilization with this "
            "time constant (0: hold it, as Netflix)", _AD),
    Setting("drop_on_error", "bool", False, None, None, "",
            "count a function error as a drop (default: ignored, as Netflix's onIgnore)",
            _AD),
    Setting("window", "float", 1.0, 0.0, 3600.0, "s",
            "seconds of samples aggregated per update (Netflix's WindowedLimit; 0: every "
            "sample updates)", _AD),
    Setting("window_size", "int", 10, 1, 100_000, "",
            "samples a window needs to update the limit", _AD),
    Setting("backoff_ratio", "float", 0.9, 0.5, 0.999, "",
            "AIMD: the limit's factor on a drop", _AD),
    Setting("drop_latency", "float", 5.0, 0.0, 86_400.0, "s",
            "AIMD: a latency above it is a drop (Netflix's timeout)", _AD),
    Setting("smoothing", "float", None, 0.0, 1.0, "",
            "Gradient2/Vegas: weight of a new estimate", _AD,
            unset="the algorithm's default (Gradient2 0.2, Vegas 1.0)"),
    Setting("queue_size", "int", 4, 0, 100_000, "invocations",
            "Gradient2: growth allowed while latency stays low", _AD),
    Setting("long_window", "int", 600, 1, 1_000_000, "",
            "Gradient2: samples in the long-term latency average", _AD),
    Setting("alpha", "int", None, 0, 100_000, "",
            "Vegas: grow below this queue estimate", _AD, unset="3 x log10(limit)"),
    Setting("beta", "int", None, 0, 100_000, "",
            "Vegas: shrink above this queue estimate", _AD, unset="6 x log10(limit)"),
    Setting("probe_multiplier", "int", 30, 1, 100_000, "",
            "Vegas: probe the no-load latency every ~multiplier x limit samples", _AD),
)

SETTINGS: Final[Mapping[str, Setting]] = {
    s.name: s for s in (*_DEFINITIONS, *_BREAKER_DEFINITIONS, *_ADAPTIVE_DEFINITIONS)
}
"""Every setting by name."""


def setting(name: str) -> Setting:
    """``SETTINGS[name]``, with a clear error for an unknown name."""
    try:
        return SETTINGS[name]
    except KeyError:
        raise KeyError(f"no setting {name!r}") from None
