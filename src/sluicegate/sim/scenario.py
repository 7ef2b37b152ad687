"""Scenarios: what the simulator runs, as frozen, validated dataclasses.

A scenario is written in TOML (see ``docs/scenarios.md`` for the whole format) with AWS's
names, snake_cased. :func:`load_scenario` reads a file, a TOML string or a plain dict,
applies ``KEY=VALUE`` overrides, and validates everything at once: a bad value raises
:class:`ScenarioError` (a :class:`~sluicegate.errors.ConfigError`) whose one-line message
names the key path (``mapping.maximum_concurrency``), the value and what is allowed.

AWS parameters (batch size, visibility timeout, maximum concurrency, ...) are validated
by the core's own configuration classes, so that a scenario accepts exactly what an App
accepts; only the simulator's own models are validated here.

:meth:`Scenario.to_dict` gives the normalized form (every default filled in, durations in
seconds) that :func:`load_scenario` accepts back unchanged.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias

from sluicegate.core.config import (
    DEFAULT_ACCOUNT_CONCURRENCY,
    DEFAULT_SCALING_CEILING,
    MIN_UNRESERVED_CONCURRENCY,
    AccountConfig,
    FunctionConfig,
    MappingConfig,
    QueueConfig,
    as_filter_criteria,
    check_visibility_against_timeout,
    is_fifo_queue,
)
from sluicegate.core.pool import ConcurrencyPool
from sluicegate.errors import ConfigError

__all__ = [
    "DEFAULT_BUCKET",
    "DEFAULT_COLD_START",
    "DEFAULT_DURATION",
    "DEFAULT_FUNCTION_DURATION",
    "DEFAULT_MESSAGE_SIZE",
    "DEFAULT_RAISE_AT",
    "DEFAULT_SEED",
    "ENVIRONMENT_IDLE_TIMEOUT",
    "AccountSpec",
    "Distribution",
    "DownstreamSpec",
    "Empirical",
    "ErrorWindow",
    "Exponential",
    "Fixed",
    "FunctionSpec",
    "LogNormal",
    "MappingSpec",
    "Normal",
    "Pause",
    "ProducerSpec",
    "QueueSpec",
    "Scenario",
    "ScenarioError",
    "Uniform",
    "load_scenario",
    "parse_duration",
]

DEFAULT_SEED = 1
"""Seed of a scenario that names none (sluicegate's choice; any fixed value would do)."""

DEFAULT_DURATION = 600.0
"""Simulated seconds of a scenario that names no ``duration``: ten minutes, long enough for
the ``aws`` policy's ramp (5 to 1,250 at +300/min takes about four minutes) to settle."""

DEFAULT_BUCKET = 10.0
"""Seconds per series entry: CloudWatch's high-resolution period that BEHAVIOURS.md's charts
use ("charts use 10-second buckets like CloudWatch")."""

DEFAULT_FUNCTION_DURATION = 0.1
"""Seconds a handler runs when the scenario does not say (sluicegate's choice: a typical
I/O-bound handler)."""

DEFAULT_COLD_START = 0.25
"""Seconds of a new execution environment's init phase when the scenario does not say.
AWS publishes no figure; Python runtimes with a small package commonly report an
``Init Duration`` of 150-400 ms, and sluicegate takes the middle."""

ENVIRONMENT_IDLE_TIMEOUT = 600.0
"""Seconds an execution environment stays warm without an invocation before Lambda
reclaims it. AWS does not publish this; practitioners observed idle environments being
reclaimed after 5 to 15 minutes (it varies with region load and memory size).
sluicegate's choice is the middle of that range, ten minutes; ``function.idle_timeout``
changes it."""

DEFAULT_MESSAGE_SIZE = 1024
"""Bytes of a simulated message's body and attributes when the scenario does not say
(sluicegate's choice: a small JSON document)."""

RECORD_OVERHEAD = 800
"""Bytes an SQS record adds to the invocation payload besides the body: the event's JSON
metadata (``messageId``, ``receiptHandle``, attributes, ARN, ...). sluicegate's
``record_size`` measures about 470 bytes for an empty body with its own short receipt
handles; real SQS receipt handles are some 300 characters longer. Counted against the
6 MB payload cap."""

DEFAULT_RAISE_AT = 0.1
"""Fraction of the sampled duration a ``raise`` error runs before it throws. BEHAVIOURS.md
observation 7 has the handler throw "at the start", so a failed invocation is short; it
still pays the invocation's own overhead and whatever the handler did before failing,
which sluicegate puts at a tenth of a normal run (5 ms for a 50 ms handler)."""

DEFAULT_LATENCY_EXPONENT = 1.0
"""Exponent of the downstream's latency growth above capacity (``latency x load^k``). One
is what a server that works through its excess requests in turn gives (Little's law: N
requests sharing C workers each take N/C times as long)."""

DEFAULT_OVERLOAD_ERRORS = 0.5
"""Error probability a downstream adds per unit of load above capacity (``p = slope x
(load - 1)``): at twice its capacity half its requests fail. sluicegate's choice, a middle
ground between a downstream that only slows down and one that sheds load at once."""

DOWNSTREAM_RATE_WINDOW = 1.0
"""Seconds over which a rate-limited downstream measures its request rate (the time
constant of an exponentially weighted average): requests per second, as the capacity is
given."""

_Z99 = 2.3263478740408408
"""The standard normal quantile at 0.99, which turns a median and p99 into a lognormal's
sigma: ``sigma = ln(p99 / median) / z``."""

_MAX_DURATION = 10 * 365 * 86400.0
"""Longest duration accepted anywhere (ten years): a guard against typos, not a model."""

ErrorKind: TypeAlias = Literal["raise", "batch_item_failure", "timeout"]
ProducerKind: TypeAlias = Literal["constant", "poisson", "burst"]
_ERROR_KINDS = ("raise", "batch_item_failure", "timeout")
_PRODUCER_KINDS = ("constant", "poisson", "burst")
_DOWNSTREAM_ERROR_KINDS = ("raise", "batch_item_failure")
_DOWNSTREAM_PER = ("invocation", "record")


class ScenarioError(ConfigError):
    """A scenario value outside its allowed range, an unknown key, or a file that cannot be
    read. ``str()`` is one line: ``<source>: <key.path>=<value> is invalid: allowed ...``
    (or ``<source>: <problem>`` for a file or TOML syntax problem).

    Parameters:
        parameter: the key path, e.g. ``mapping.maximum_concurrency``.
        value: the value given.
        allowed: what is allowed.
        context: where the scenario came from (a file name, or ``"scenario"``).
        message: a complete message that replaces the standard one.
    """

    def __init__(
        self,
        parameter: str,
        value: Any,
        allowed: str,
        context: str = "scenario",
        *,
        message: str | None = None,
    ) -> None:
        super().__init__(parameter, value, allowed, context)
        if message is not None:
            self.args = (f"{context}: {message}" if context else message,)


# ---------------------------------------------------------------------- durations

_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(us|µs|ms|s|m|h|d)")
_NUMBER = re.compile(r"[+]?(\d+(?:\.\d*)?|\.\d+)(e[+-]?\d+)?", re.IGNORECASE)


def parse_duration(value: Any, parameter: str = "duration", context: str = "scenario") -> float:
    """Seconds from a duration written as a number of seconds or a string with units.

    Strings are one or more ``<number><unit>`` parts, units ``us``, ``ms``, ``s``, ``m``,
    ``h``, ``d`` (``"200ms"``, ``"4m"``, ``"1h30m"``, ``"1.5s"``); a bare number string is
    seconds.

    Parameters:
        value: an ``int``, ``float`` or ``str``.
        parameter: the key path, for the error message.
        context: where the scenario came from, for the error message.

    Returns:
        Seconds, a finite float >= 0.

    Raises:
        ScenarioError: anything else (negative, not finite, a bad unit, a bool).
    """
    allowed = 'seconds >= 0, or a duration like "200ms", "4m", "1h30m"'
    if isinstance(value, bool):
        raise ScenarioError(parameter, value, allowed, context)
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if _NUMBER.fullmatch(text):
            seconds = float(text)
        else:
            seconds = 0.0
            pos = 0
            for match in _DURATION_PART.finditer(text):
                if match.start() != pos:
                    break
                seconds += float(match.group(1)) * _UNITS[match.group(2)]
                pos = match.end()
            if pos != len(text) or not text:
                raise ScenarioError(parameter, value, allowed, context)
    else:
        raise ScenarioError(parameter, value, allowed, context)
    if not math.isfinite(seconds) or seconds < 0 or seconds > _MAX_DURATION:
        raise ScenarioError(parameter, value, allowed, context)
    return seconds


# ---------------------------------------------------------------------- distributions


@dataclass(frozen=True, slots=True)
class Fixed:
    """Always ``value`` seconds."""

    value: float

    @property
    def mean(self) -> float:
        """The expected value in seconds."""
        return self.value

    def to_dict(self) -> float | dict[str, Any]:
        """A bare number of seconds."""
        return self.value


@dataclass(frozen=True, slots=True)
class Uniform:
    """Uniform between ``min`` and ``max`` seconds."""

    min: float
    max: float

    @property
    def mean(self) -> float:
        """The expected value in seconds."""
        return (self.min + self.max) / 2

    def to_dict(self) -> float | dict[str, Any]:
        """``{"distribution": "uniform", "min": ..., "max": ...}``."""
        return {"distribution": "uniform", "min": self.min, "max": self.max}


@dataclass(frozen=True, slots=True)
class Normal:
    """Normal with ``mean`` and ``stddev`` seconds; a negative draw counts as 0."""

    mean: float
    stddev: float

    def to_dict(self) -> float | dict[str, Any]:
        """``{"distribution": "normal", "mean": ..., "stddev": ...}``."""
        return {"distribution": "normal", "mean": self.mean, "stddev": self.stddev}


@dataclass(frozen=True, slots=True)
class LogNormal:
    """Lognormal given its median and 99th percentile, in seconds.

    ``mu = ln(median)``, ``sigma = ln(p99 / median) / 2.3263`` (the standard normal's 0.99
    quantile), so that half the draws fall below ``median`` and 1% above ``p99``.
    """

    median: float
    p99: float

    @property
    def mu(self) -> float:
        """The underlying normal's mean."""
        return math.log(self.median)

    @property
    def sigma(self) -> float:
        """The underlying normal's standard deviation."""
        return math.log(self.p99 / self.median) / _Z99

    @property
    def mean(self) -> float:
        """The expected value in seconds: ``exp(mu + sigma^2 / 2)``."""
        return math.exp(self.mu + self.sigma**2 / 2)

    def to_dict(self) -> float | dict[str, Any]:
        """``{"distribution": "lognormal", "median": ..., "p99": ...}``."""
        return {"distribution": "lognormal", "median": self.median, "p99": self.p99}


@dataclass(frozen=True, slots=True)
class Exponential:
    """Exponential with ``mean`` seconds."""

    mean: float

    def to_dict(self) -> float | dict[str, Any]:
        """``{"distribution": "exponential", "mean": ...}``."""
        return {"distribution": "exponential", "mean": self.mean}


@dataclass(frozen=True, slots=True)
class Empirical:
    """Draws uniformly among recorded ``samples`` (seconds), e.g. durations from logs.

    Attributes:
        samples: the values, in seconds, in the order read.
        file: the file they were read from, as written in the scenario (``None`` when
            given inline).
    """

    samples: tuple[float, ...]
    file: str | None = None

    @property
    def mean(self) -> float:
        """The samples' mean in seconds."""
        return sum(self.samples) / len(self.samples)

    def to_dict(self) -> float | dict[str, Any]:
        """``{"distribution": "empirical", "samples": [...]}`` (and ``file``: where they
        came from, for the record; ``samples`` is what a reload uses)."""
        out: dict[str, Any] = {"distribution": "empirical", "samples": list(self.samples)}
        if self.file is not None:
            out["file"] = self.file
        return out


Distribution: TypeAlias = Fixed | Uniform | Normal | LogNormal | Exponential | Empirical
"""A duration model: what a handler run, a cold start or a downstream call takes."""


# ---------------------------------------------------------------------- sections


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """The source queue (``[queue]``).

    Attributes:
        name: the queue's name (for display).
        backlog: messages already in the queue at t=0.
        visibility_timeout: seconds, 0-43,200 (SQS).
        delay_seconds: delivery delay of every produced message, 0-900 s (SQS).
        max_receive_count: receives after which a message moves to a dead-letter queue,
            1-1,000; ``None`` for no redrive.
        message_size: bytes of each message's body and attributes (1-262,144); with the
            record overhead it counts against the 6 MB invocation payload.
        fifo: a FIFO queue: each message belongs to one of ``groups`` message groups,
            whose messages are delivered in order, one batch of a group at a time (the
            queue's name gets the ``.fifo`` suffix).
        groups: FIFO only: how many message groups the producers spread messages over
            (1-1,000,000); each message picks one at random.
        hot_group_share: FIFO only: the share of messages (0-1) that go to one hot
            group, ``g0``; the rest spread over all groups.
        bodies: bodies the producers' messages carry, each message drawing one at random
            (empty: every body is empty); what a mapping's ``filter_criteria`` reads.
    """

    name: str = "queue"
    backlog: int = 0
    visibility_timeout: int = 30
    delay_seconds: int = 0
    max_receive_count: int | None = None
    message_size: int = DEFAULT_MESSAGE_SIZE
    fifo: bool = False
    groups: int = 1
    hot_group_share: float = 0.0
    bodies: tuple[str, ...] = ()

    @property
    def queue_name(self) -> str:
        """The name the queue has in the store: ``.fifo`` appended for a FIFO queue."""
        if self.fifo and not is_fifo_queue(self.name):
            return f"{self.name[:75]}.fifo"
        return self.name


@dataclass(frozen=True, slots=True)
class ErrorWindow:
    """Injected errors (``[[function.errors]]``) between ``start`` and ``stop``.

    Attributes:
        start: seconds into the run.
        stop: seconds into the run; ``None`` for the end of the run.
        rate: 0-1. ``raise`` and ``timeout``: the probability that an invocation fails;
            ``batch_item_failure``: the probability that each record is reported failed.
        kind: ``raise`` (the invocation throws after ``raise_at`` of its duration),
            ``timeout`` (it runs until the function timeout), or ``batch_item_failure``
            (the handler returns those records in ``batchItemFailures``; AWS ignores the
            response unless the mapping has ``report_batch_item_failures``).
        raise_at: for ``raise``: fraction of the sampled duration run before throwing,
            0-1 (default :data:`DEFAULT_RAISE_AT`).
    """

    start: float = 0.0
    stop: float | None = None
    rate: float = 0.0
    kind: ErrorKind = "raise"
    raise_at: float = DEFAULT_RAISE_AT


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """The handler function (``[function]``).

    Attributes:
        name: the function's name (for display and the pool).
        duration: how long a handler run takes (a distribution, seconds).
        duration_per_record: seconds added per record of the batch (default 0).
        cold_start: the init phase of a new execution environment (a distribution).
        timeout: seconds, 1-900 (Lambda); a longer invocation ends as an error there.
        reserved_concurrency: the function's reserved concurrency, or ``None``.
        idle_timeout: seconds an idle execution environment stays warm
            (default :data:`ENVIRONMENT_IDLE_TIMEOUT`).
        errors: injected error windows.
    """

    name: str = "function"
    duration: Distribution = Fixed(DEFAULT_FUNCTION_DURATION)
    duration_per_record: float = 0.0
    cold_start: Distribution = Fixed(DEFAULT_COLD_START)
    timeout: float = 3.0
    reserved_concurrency: int | None = None
    idle_timeout: float = ENVIRONMENT_IDLE_TIMEOUT
    errors: tuple[ErrorWindow, ...] = ()


@dataclass(frozen=True, slots=True)
class Pause:
    """The mapping is disabled at ``at`` and enabled again at ``until`` (``None``: never)."""

    at: float
    until: float | None = None


@dataclass(frozen=True, slots=True)
class MappingSpec:
    """The event source mapping (``[mapping]``): AWS's parameters, snake_cased.

    Attributes:
        batch_size: 1-10,000 (default 10).
        maximum_batching_window: whole seconds, 0-300.
        maximum_concurrency: 2-1,000, or ``None``.
        report_batch_item_failures: honour ``batchItemFailures``.
        scaling: ``"aws"`` or ``"fixed"``.
        scaling_ceiling: the ``aws`` policy's ceiling (default 1,250).
        enabled: ``False`` starts the mapping paused.
        pauses: disable/enable windows.
        filter_criteria: the mapping's filter patterns (JSON strings or tables), applied
            to the bodies of ``[queue] bodies``; a rejected message is deleted unprocessed.
    """

    batch_size: int = 10
    maximum_batching_window: int = 0
    maximum_concurrency: int | None = None
    report_batch_item_failures: bool = False
    scaling: Literal["aws", "fixed"] = "aws"
    scaling_ceiling: int = DEFAULT_SCALING_CEILING
    enabled: bool = True
    pauses: tuple[Pause, ...] = ()
    filter_criteria: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class ProducerSpec:
    """A message source (``[producer]`` or ``[[producers]]``).

    Attributes:
        kind: ``constant`` (evenly spaced at ``rate``), ``poisson`` (exponential gaps,
            mean rate ``rate``) or ``burst`` (``size`` messages at once every ``interval``).
        rate: messages per second (constant, poisson).
        start: seconds into the run of the first message (a burst's first burst).
        stop: seconds into the run after which nothing is sent; ``None``: the run's end.
        size: messages per burst.
        interval: seconds between bursts.
        batch: messages per send for ``constant`` and ``poisson``, 1-10 (SQS's
            SendMessageBatch takes up to 10): sends come ``rate / batch`` times a second.
    """

    kind: ProducerKind = "constant"
    rate: float = 0.0
    start: float = 0.0
    stop: float | None = None
    size: int = 0
    interval: float = 0.0
    batch: int = 1


@dataclass(frozen=True, slots=True)
class DownstreamSpec:
    """A dependency every invocation calls (``[downstream]``), with a capacity.

    Load ``rho`` is concurrent requests / ``concurrency``, or the request rate (averaged
    over :data:`DOWNSTREAM_RATE_WINDOW`) / ``rate``, measured when a request starts,
    that request included. Each request takes ``latency`` (a draw) times
    ``max(1, rho) ** latency_exponent`` and fails with probability
    ``min(1, overload_errors * max(0, rho - 1))``.

    Attributes:
        concurrency: requests it serves at once without slowing down (or ``None``).
        rate: requests per second it serves without slowing down (or ``None``).
        latency: a request's latency at or below capacity (a distribution).
        latency_exponent: growth exponent above capacity.
        overload_errors: error probability per unit of load above capacity.
        error_kind: what a failed request does to the handler: ``raise`` (the invocation
            fails) or ``batch_item_failure`` (the record is reported failed).
        per: ``invocation`` (one request per invocation) or ``record`` (one per record,
            made one after the other).
    """

    concurrency: int | None = None
    rate: float | None = None
    latency: Distribution = Fixed(0.0)
    latency_exponent: float = DEFAULT_LATENCY_EXPONENT
    overload_errors: float = DEFAULT_OVERLOAD_ERRORS
    error_kind: Literal["raise", "batch_item_failure"] = "raise"
    per: Literal["invocation", "record"] = "invocation"


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """The account's concurrency pool (``[account]``).

    Attributes:
        concurrency_limit: concurrent executions of the whole account (default 1,000).
        min_unreserved: what reserved concurrency must leave unreserved (default 100).
    """

    concurrency_limit: int = DEFAULT_ACCOUNT_CONCURRENCY
    min_unreserved: int = MIN_UNRESERVED_CONCURRENCY


@dataclass(frozen=True, slots=True)
class Scenario:
    """Everything one simulation run needs. Build it with :func:`load_scenario`.

    Attributes:
        seed: seeds every random draw of the run.
        duration: simulated seconds.
        bucket: seconds per series entry.
        name: a label (free text).
        description: free text.
        queue, function, mapping, account: the sections of the same names.
        producers: message sources (possibly none).
        downstream: the dependency the function calls, or ``None``.
    """

    seed: int = DEFAULT_SEED
    duration: float = DEFAULT_DURATION
    bucket: float = DEFAULT_BUCKET
    name: str = ""
    description: str = ""
    queue: QueueSpec = field(default_factory=QueueSpec)
    function: FunctionSpec = field(default_factory=FunctionSpec)
    mapping: MappingSpec = field(default_factory=MappingSpec)
    producers: tuple[ProducerSpec, ...] = ()
    downstream: DownstreamSpec | None = None
    account: AccountSpec = field(default_factory=AccountSpec)

    # ------------------------------------------------------------------ core configs

    def queue_config(self) -> QueueConfig:
        """The core's configuration of the source queue."""
        q = self.queue
        return QueueConfig(
            q.queue_name,
            visibility_timeout=q.visibility_timeout,
            delay_seconds=q.delay_seconds,
            dead_letter_queue=None if q.max_receive_count is None else _dlq_name(q.queue_name),
            max_receive_count=q.max_receive_count,
        )

    def dead_letter_queue_config(self) -> QueueConfig | None:
        """The core's configuration of the dead-letter queue, if the queue has one."""
        if self.queue.max_receive_count is None:
            return None
        return QueueConfig(_dlq_name(self.queue.queue_name))

    def function_config(self) -> FunctionConfig:
        """The core's configuration of the function."""
        f = self.function
        return FunctionConfig(f.name, timeout=f.timeout,
                              reserved_concurrency=f.reserved_concurrency)

    def mapping_config(self) -> MappingConfig:
        """The core's configuration of the mapping."""
        m = self.mapping
        return MappingConfig(
            self.queue.queue_name,
            self.function.name,
            batch_size=m.batch_size,
            maximum_batching_window=m.maximum_batching_window,
            maximum_concurrency=m.maximum_concurrency,
            report_batch_item_failures=m.report_batch_item_failures,
            scaling=m.scaling,
            scaling_ceiling=m.scaling_ceiling,
            enabled=m.enabled,
            filter_criteria=as_filter_criteria(list(m.filter_criteria), "queue"),
        )

    def account_config(self) -> AccountConfig:
        """The core's configuration of the account pool."""
        return AccountConfig(self.account.concurrency_limit, self.account.min_unreserved)

    # ------------------------------------------------------------------ plain form

    def to_dict(self) -> dict[str, Any]:
        """The normalized plain form: every key, defaults filled in, durations in seconds,
        ``None`` for what is not set. :func:`load_scenario` accepts it back unchanged."""
        q, f, m, a = self.queue, self.function, self.mapping, self.account
        d = self.downstream
        return {
            "name": self.name,
            "description": self.description,
            "seed": self.seed,
            "duration": self.duration,
            "bucket": self.bucket,
            "queue": {
                "name": q.name,
                "backlog": q.backlog,
                "visibility_timeout": q.visibility_timeout,
                "delay_seconds": q.delay_seconds,
                "max_receive_count": q.max_receive_count,
                "message_size": q.message_size,
                # FIFO keys only for FIFO queues: standard scenarios read as before
                **({"fifo": True, "groups": q.groups, "hot_group_share": q.hot_group_share}
                   if q.fifo else {}),
                **({"bodies": list(q.bodies)} if q.bodies else {}),
            },
            "function": _function_dict(f),
            "mapping": {
                "batch_size": m.batch_size,
                "maximum_batching_window": m.maximum_batching_window,
                "maximum_concurrency": m.maximum_concurrency,
                "report_batch_item_failures": m.report_batch_item_failures,
                "scaling": m.scaling,
                "scaling_ceiling": m.scaling_ceiling,
                "enabled": m.enabled,
                "pauses": _pauses_list(m.pauses),
                **({"filter_criteria": list(self.mapping_config().filter_criteria.patterns)}
                   if m.filter_criteria else {}),
            },
            "producers": [_producer_dict(p) for p in self.producers],
            "downstream": _downstream_dict(d),
            "account": _account_dict(a),
        }


def _function_dict(f: FunctionSpec) -> dict[str, Any]:
    return {
        "name": f.name,
        "duration": f.duration.to_dict(),
        "duration_per_record": f.duration_per_record,
        "cold_start": f.cold_start.to_dict(),
        "timeout": f.timeout,
        "reserved_concurrency": f.reserved_concurrency,
        "idle_timeout": f.idle_timeout,
        "errors": [
            {"start": e.start, "stop": e.stop, "rate": e.rate, "kind": e.kind,
             "raise_at": e.raise_at}
            for e in f.errors
        ],
    }


def _pauses_list(pauses: tuple[Pause, ...]) -> list[dict[str, Any]]:
    return [{"at": p.at, "until": p.until} for p in pauses]


def _producer_dict(p: ProducerSpec) -> dict[str, Any]:
    return {"kind": p.kind, "rate": p.rate, "start": p.start, "stop": p.stop,
            "size": p.size, "interval": p.interval, "batch": p.batch}


def _downstream_dict(d: DownstreamSpec | None) -> dict[str, Any] | None:
    if d is None:
        return None
    return {
        "concurrency": d.concurrency,
        "rate": d.rate,
        "latency": d.latency.to_dict(),
        "latency_exponent": d.latency_exponent,
        "overload_errors": d.overload_errors,
        "error_kind": d.error_kind,
        "per": d.per,
    }


def _account_dict(a: AccountSpec) -> dict[str, Any]:
    return {"concurrency_limit": a.concurrency_limit, "min_unreserved": a.min_unreserved}


def _dlq_name(queue: str) -> str:
    # Queue names are at most 80 characters; keep room for the suffix. A FIFO queue's
    # dead-letter queue is FIFO too.
    if is_fifo_queue(queue):
        return f"{queue[:-5][:71]}-dlq.fifo"
    return f"{queue[:76]}-dlq"


# ---------------------------------------------------------------------- parsing


class _Table:
    """Reads the keys of one TOML table, tracking the key path and the keys used, so that
    whatever is left over can be reported as unknown."""

    def __init__(
        self,
        data: Any,
        path: str,
        context: str,
        base: Path | None,
        given: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(data, Mapping):
            raise ScenarioError(path or "scenario", data, "a table", context)
        self.data = data
        self.path = path
        self.context = context
        self.base = base
        self.used: set[str] = set()
        self.given: dict[str, Any] = {} if given is None else given
        """Every value read, by key path, as written: what error messages quote."""

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, value: Any, allowed: str) -> ScenarioError:
        return ScenarioError(self.key(name), value, allowed, self.context)

    def raw(self, name: str) -> Any:
        """The value of ``name``, ``None`` when absent."""
        self.used.add(name)
        value = self.data.get(name)
        self.given[self.key(name)] = value
        return value

    def get(self, name: str, default: Any, convert: Callable[[str, Any], Any]) -> Any:
        value = self.raw(name)
        if value is None:
            return default
        return convert(name, value)

    def sub(self, name: str) -> _Table:
        value = self.raw(name)
        return _Table({} if value is None else value, self.key(name), self.context, self.base,
                      self.given)

    def subs(self, name: str) -> list[_Table]:
        value = self.raw(name)
        if value is None:
            return []
        if isinstance(value, Mapping):
            value = [value]
        if not isinstance(value, list):
            raise self.error(name, value, "an array of tables")
        return [_Table(v, f"{self.key(name)}[{i}]", self.context, self.base, self.given)
                for i, v in enumerate(value)]

    def finish(self) -> None:
        for name in self.data:
            if name not in self.used:
                known = sorted(self.used)
                near = difflib.get_close_matches(str(name), known, n=1)
                hint = f"did you mean {near[0]}?" if near else "known: " + ", ".join(known)
                raise ScenarioError(
                    self.key(str(name)), self.data[name], "", self.context,
                    message=f"unknown key {self.key(str(name))} ({hint})",
                )

    # ---- converters (each takes the key name and the raw value)

    def seconds(self, name: str, value: Any) -> float:
        return parse_duration(value, self.key(name), self.context)

    def positive_seconds(self, name: str, value: Any) -> float:
        seconds = parse_duration(value, self.key(name), self.context)
        if seconds <= 0:
            raise self.error(name, value, "a duration > 0")
        return seconds

    def integer(self, low: int, high: int) -> Callable[[str, Any], int]:
        def convert(name: str, value: Any) -> int:
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise self.error(name, value, f"an integer {low:,}-{high:,}")
            return value

        return convert

    def whole_seconds(self, low: int, high: int) -> Callable[[str, Any], int]:
        """AWS parameters given in whole seconds (they also accept "30s", "1m")."""

        def convert(name: str, value: Any) -> int:
            seconds = parse_duration(value, self.key(name), self.context)
            if not seconds.is_integer() or not low <= seconds <= high:
                raise self.error(name, value, f"whole seconds {low:,}-{high:,}")
            return int(seconds)

        return convert

    def number(self, low: float, high: float, *, open_low: bool = False
               ) -> Callable[[str, Any], float]:
        def convert(name: str, value: Any) -> float:
            ok = (
                not isinstance(value, bool)
                and isinstance(value, (int, float))
                and math.isfinite(value)
                and (low < value if open_low else low <= value)
                and value <= high
            )
            if not ok:
                bound = f"> {low:g}" if open_low else f">= {low:g}"
                upper = "" if math.isinf(high) else f" and <= {high:g}"
                raise self.error(name, value, f"a number {bound}{upper}")
            return float(value)

        return convert

    def boolean(self, name: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.error(name, value, "true or false")
        return value

    def text(self, name: str, value: Any) -> str:
        if not isinstance(value, str):
            raise self.error(name, value, "a string")
        return value

    def choice(self, options: Iterable[str]) -> Callable[[str, Any], str]:
        options = tuple(options)

        def convert(name: str, value: Any) -> str:
            if value not in options:
                raise self.error(name, value, " or ".join(repr(o) for o in options))
            return str(value)

        return convert

    def distribution(self, name: str, value: Any) -> Distribution:
        return _distribution(value, self.key(name), self.context, self.base)


def _distribution(value: Any, path: str, context: str, base: Path | None) -> Distribution:
    if not isinstance(value, Mapping):
        return Fixed(parse_duration(value, path, context))
    t = _Table(value, path, context, base)
    kind = t.get("distribution", "fixed",
                 t.choice(("fixed", "uniform", "normal", "lognormal", "exponential",
                           "empirical")))
    result: Distribution
    if kind == "fixed":
        result = Fixed(t.get("value", None, t.seconds))
        if result.value is None:
            raise t.error("value", None, "a duration (the fixed value)")
    elif kind == "uniform":
        low = t.get("min", None, t.seconds)
        high = t.get("max", None, t.seconds)
        if low is None or high is None or high < low:
            raise t.error("max" if low is not None else "min", high if low is not None else low,
                          "min and max durations with min <= max")
        result = Uniform(low, high)
    elif kind == "normal":
        mean = t.get("mean", None, t.seconds)
        stddev = t.get("stddev", 0.0, t.seconds)
        if mean is None:
            raise t.error("mean", None, "a duration")
        result = Normal(mean, stddev)
    elif kind == "lognormal":
        median = t.get("median", None, t.positive_seconds)
        p99 = t.get("p99", None, t.positive_seconds)
        if median is None:
            raise t.error("median", None, "a duration > 0")
        if p99 is None or p99 < median:
            raise t.error("p99", t.data.get("p99"), f"a duration >= the median ({median:g} s)")
        result = LogNormal(median, p99)
    elif kind == "exponential":
        mean = t.get("mean", None, t.positive_seconds)
        if mean is None:
            raise t.error("mean", None, "a duration > 0")
        result = Exponential(mean)
    else:
        file = t.get("file", None, t.text)
        inline = t.raw("samples")
        if file is None and inline is None:
            raise t.error("samples", None, "samples = [...] or file = \"path\"")
        if inline is not None:
            if not isinstance(inline, list) or not inline:
                raise t.error("samples", inline, "a non-empty array of durations")
            samples = tuple(parse_duration(v, f"{t.key('samples')}[{i}]", context)
                            for i, v in enumerate(inline))
        else:
            samples = _read_samples(file, t.key("file"), context, base)
        result = Empirical(samples, file)
    t.finish()
    return result


def _read_samples(file: str, path: str, context: str, base: Path | None) -> tuple[float, ...]:
    """Durations from a file: one per line, a number of seconds or a string with units;
    blank lines and lines starting with ``#`` are skipped."""
    where = Path(file)
    if not where.is_absolute() and base is not None:
        where = base / where
    try:
        text = where.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(path, file, f"a readable file ({exc.strerror or exc})",
                            context) from None
    samples = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        samples.append(parse_duration(line, f"{path} line {number}", context))
    if not samples:
        raise ScenarioError(path, file, "a file with at least one duration", context)
    return tuple(samples)


def _core(section: str, top: _Table, build: Callable[[], Any]) -> Any:
    """Build a core configuration, turning its ConfigError into one naming the key path
    (and quoting the value as written, when it was)."""
    try:
        return build()
    except ScenarioError:
        raise
    except ConfigError as exc:
        path = f"{section}.{exc.parameter}"
        value = top.given.get(path)
        raise ScenarioError(path, exc.value if value is None else value, exc.allowed,
                            top.context) from None


def _parse_function(top: _Table, default_name: str = "function") -> FunctionSpec:
    """``[function]`` and its ``[[function.errors]]`` (queue, stream and topic scenarios
    alike; a topic subscriber's function is named after the subscriber by default)."""
    ft = top.sub("function")
    errors = []
    for et in ft.subs("errors"):
        start = et.get("start", 0.0, et.seconds)
        stop = et.get("stop", None, et.seconds)
        if stop is not None and stop < start:
            raise et.error("stop", et.data.get("stop"), f"a time >= start ({start:g} s)")
        rate = et.raw("rate")
        if rate is None:
            raise et.error("rate", None, "a probability 0-1")
        errors.append(ErrorWindow(
            start=start,
            stop=stop,
            rate=et.number(0.0, 1.0)("rate", rate),
            kind=et.get("kind", "raise", et.choice(_ERROR_KINDS)),
            raise_at=et.get("raise_at", DEFAULT_RAISE_AT, et.number(0.0, 1.0)),
        ))
        et.finish()
    function = FunctionSpec(
        name=ft.get("name", default_name, ft.text),
        duration=ft.get("duration", Fixed(DEFAULT_FUNCTION_DURATION), ft.distribution),
        duration_per_record=ft.get("duration_per_record", 0.0, ft.seconds),
        cold_start=ft.get("cold_start", Fixed(DEFAULT_COLD_START), ft.distribution),
        timeout=ft.get("timeout", 3.0, ft.seconds),
        reserved_concurrency=ft.get("reserved_concurrency", None, ft.integer(0, 1_000_000)),
        idle_timeout=ft.get("idle_timeout", ENVIRONMENT_IDLE_TIMEOUT, ft.positive_seconds),
        errors=tuple(errors),
    )
    ft.finish()
    return function


def _producer_tables(top: _Table) -> list[_Table]:
    """The tables of ``[producer]`` or ``[[producers]]`` (not both)."""
    data = top.data
    if "producer" in data and data["producer"] is not None and data.get("producers"):
        raise ScenarioError("producer", data["producer"], "", top.context,
                            message="use [producer] or [[producers]], not both")
    return top.subs("producer") + top.subs("producers")


def _parse_producer(pt: _Table, *, batch_max: int, unit: str) -> ProducerSpec:
    """The arrival keys of one producer table (kind, rate, start, stop, size, interval,
    batch); the caller reads any others and calls ``finish``."""
    kind = pt.get("kind", "constant", pt.choice(_PRODUCER_KINDS))
    start = pt.get("start", 0.0, pt.seconds)
    stop = pt.get("stop", None, pt.seconds)
    if stop is not None and stop < start:
        raise pt.error("stop", pt.data.get("stop"), f"a time >= start ({start:g} s)")
    rate = pt.get("rate", 0.0, pt.number(0.0, 1e7))
    size = pt.get("size", 0, pt.integer(0, 100_000_000))
    interval = pt.get("interval", 0.0, pt.seconds)
    batch = pt.get("batch", 1, pt.integer(1, batch_max))
    if kind == "burst":
        if size < 1:
            raise pt.error("size", pt.data.get("size"), "an integer >= 1 for a burst")
        if interval <= 0 and stop != start:
            raise pt.error("interval", pt.data.get("interval"),
                           "a duration > 0 for a burst (or stop = start for one burst)")
    elif rate <= 0:
        raise pt.error("rate", pt.data.get("rate"), f"{unit}/s > 0 for a {kind} producer")
    return ProducerSpec(kind, rate, start, stop, size, interval, batch)


def _bodies(table: _Table) -> Callable[[str, Any], tuple[str, ...]]:
    def convert(name: str, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not value or not all(
            isinstance(b, str) and b for b in value
        ):
            raise table.error(name, value, "a list of non-empty message bodies")
        return tuple(value)

    return convert


def _patterns(table: _Table) -> Callable[[str, Any], tuple[Any, ...]]:
    def convert(name: str, value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise table.error(name, value, "a list of patterns (JSON strings or tables)")
        return tuple(value)

    return convert


def _parse_pauses(mt: _Table) -> tuple[Pause, ...]:
    """``[[mapping.pauses]]``, in time order."""
    pauses = []
    for pt in mt.subs("pauses"):
        at = pt.get("at", None, pt.seconds)
        if at is None:
            raise pt.error("at", None, "a time (when the mapping is disabled)")
        until = pt.get("until", None, pt.seconds)
        if until is not None and until < at:
            raise pt.error("until", pt.data.get("until"), f"a time >= at ({at:g} s)")
        pauses.append(Pause(at, until))
        pt.finish()
    return tuple(sorted(pauses, key=lambda p: p.at))


def _parse_downstream(top: _Table) -> DownstreamSpec | None:
    """``[downstream]``, or ``None`` when absent."""
    data = top.data
    downstream = None
    if data.get("downstream") is not None:
        dt = top.sub("downstream")
        concurrency = dt.get("concurrency", None, dt.integer(1, 10_000_000))
        rate = dt.get("rate", None, dt.number(0.0, 1e9, open_low=True))
        if (concurrency is None) == (rate is None):
            raise dt.error("concurrency", concurrency,
                           "exactly one of concurrency (requests at once) or rate "
                           "(requests/s)")
        downstream = DownstreamSpec(
            concurrency=concurrency,
            rate=rate,
            latency=dt.get("latency", Fixed(0.0), dt.distribution),
            latency_exponent=dt.get("latency_exponent", DEFAULT_LATENCY_EXPONENT,
                                    dt.number(0.0, 10.0)),
            overload_errors=dt.get("overload_errors", DEFAULT_OVERLOAD_ERRORS,
                                   dt.number(0.0, 1e6)),
            error_kind=dt.get("error_kind", "raise", dt.choice(_DOWNSTREAM_ERROR_KINDS)),
            per=dt.get("per", "invocation", dt.choice(_DOWNSTREAM_PER)),
        )
        dt.finish()
    else:
        top.used.add("downstream")

    return downstream


def _parse_account(top: _Table) -> AccountSpec:
    """``[account]``."""
    at = top.sub("account")
    account = AccountSpec(
        concurrency_limit=at.get("concurrency_limit", DEFAULT_ACCOUNT_CONCURRENCY,
                                 at.integer(1, 10_000_000)),
        min_unreserved=at.get("min_unreserved", MIN_UNRESERVED_CONCURRENCY,
                              at.integer(0, 10_000_000)),
    )
    at.finish()
    return account


_TOPIC_KEYS = ("message_size", "bodies", "groups", "hot_group_share")
"""``[queue]`` keys that describe the messages: a topic scenario's subscriber queues take
them from ``[topic]`` instead."""


def _parse_queue(qt: _Table, *, topic: QueueSpec | None = None,
                 default_name: str = "queue") -> QueueSpec:
    """``[queue]``, or a topic subscriber's queue table when ``topic`` is given: then
    ``topic`` holds the messages' keys (``message_size``, ``bodies``, FIFO groups) and the
    queue is FIFO when the topic is, unless the table says otherwise (which the topic's
    rules then refuse)."""
    if topic is not None:
        for key in _TOPIC_KEYS:
            if qt.data.get(key) is not None:
                raise ScenarioError(qt.key(key), qt.data[key], "", qt.context, message=(
                    f"{qt.key(key)}: a topic's subscribers receive its messages; set "
                    f"{key} in [topic]"))
            qt.used.add(key)
    messages = (_parse_messages(qt) if topic is None
                else {key: getattr(topic, key) for key in _TOPIC_KEYS})
    queue = QueueSpec(
        name=qt.get("name", default_name, qt.text),
        backlog=qt.get("backlog", 0, qt.integer(0, 1_000_000_000)),
        visibility_timeout=qt.get("visibility_timeout", 30, qt.whole_seconds(0, 43_200)),
        delay_seconds=qt.get("delay_seconds", 0, qt.whole_seconds(0, 900)),
        max_receive_count=qt.get("max_receive_count", None, qt.integer(1, 1000)),
        fifo=qt.get("fifo", topic is not None and topic.fifo, qt.boolean),
        **messages,
    )
    if topic is None and not queue.fifo:
        _refuse_groups(qt, queue, "only with fifo = true")
    qt.finish()
    return queue


def _parse_messages(t: _Table) -> dict[str, Any]:
    """What the messages of a ``[queue]`` or ``[topic]`` carry: the :data:`_TOPIC_KEYS`."""
    return {
        "message_size": t.get("message_size", DEFAULT_MESSAGE_SIZE, t.integer(1, 262_144)),
        "bodies": t.get("bodies", (), _bodies(t)),
        "groups": t.get("groups", 1, t.integer(1, 1_000_000)),
        "hot_group_share": t.get("hot_group_share", 0.0, t.number(0.0, 1.0)),
    }


def _refuse_groups(t: _Table, spec: Any, expected: str) -> None:
    """Refuse FIFO group settings on a standard queue or topic (``spec``, parsed from
    ``t``)."""
    for key, default in (("groups", 1), ("hot_group_share", 0.0)):
        if getattr(spec, key) != default:
            raise ScenarioError(t.key(key), getattr(spec, key), expected, t.context)


def _parse_mapping(mt: _Table) -> MappingSpec:
    """``[mapping]`` of a queue (a queue scenario's, or a topic subscriber's)."""
    mapping = MappingSpec(
        batch_size=mt.get("batch_size", 10, mt.integer(1, 10_000)),
        maximum_batching_window=mt.get("maximum_batching_window", 0, mt.whole_seconds(0, 300)),
        maximum_concurrency=mt.get("maximum_concurrency", None, mt.integer(2, 1000)),
        report_batch_item_failures=mt.get("report_batch_item_failures", False, mt.boolean),
        scaling=mt.get("scaling", "aws", mt.choice(("aws", "fixed"))),
        scaling_ceiling=mt.get("scaling_ceiling", DEFAULT_SCALING_CEILING,
                               mt.integer(1, 100_000)),
        enabled=mt.get("enabled", True, mt.boolean),
        pauses=_parse_pauses(mt),
        filter_criteria=mt.get("filter_criteria", (), _patterns(mt)),
    )
    mt.finish()
    return mapping


def _parse_producers(top: _Table) -> tuple[ProducerSpec, ...]:
    """``[producer]`` or ``[[producers]]`` of messages (sends of 1-10, SendMessageBatch)."""
    producers = []
    for pt in _producer_tables(top):
        producers.append(_parse_producer(pt, batch_max=10, unit="messages"))
        pt.finish()
    return tuple(producers)


def _parse(data: Mapping[str, Any], context: str, base: Path | None) -> Scenario:
    if data.get("stream") is not None:
        raise ScenarioError("stream", None, "", context, message=(
            "a stream scenario ([stream]), not a queue scenario (load_any_scenario "
            "reads every kind)"))
    if data.get("topic") is not None:
        raise ScenarioError("topic", None, "", context, message=(
            "a topic scenario ([topic]), not a queue scenario (load_any_scenario "
            "reads every kind)"))
    top = _Table(data, "", context, base)
    seed = top.get("seed", DEFAULT_SEED, top.integer(0, 2**63 - 1))
    duration = top.get("duration", DEFAULT_DURATION, top.positive_seconds)
    bucket = top.get("bucket", DEFAULT_BUCKET, top.positive_seconds)
    name = top.get("name", "", top.text)
    description = top.get("description", "", top.text)
    queue = _parse_queue(top.sub("queue"))
    function = _parse_function(top)
    mapping = _parse_mapping(top.sub("mapping"))
    producers = _parse_producers(top)
    downstream = _parse_downstream(top)
    account = _parse_account(top)
    top.finish()

    scenario = Scenario(seed, duration, bucket, name, description, queue, function, mapping,
                        producers, downstream, account)
    _check_with_core(scenario, top)
    return scenario


def _check_with_core(scenario: Scenario, top: _Table, prefix: str = "") -> None:
    """Let the core's configuration classes validate the AWS parameters, so a scenario
    accepts what an App accepts and nothing else. ``prefix`` is the key path of the
    tables checked (a topic subscriber's ``subscribers[1].``), whose function's reserved
    concurrency the caller checks in a pool with every other function's."""
    queue = _core(f"{prefix}queue", top, scenario.queue_config)
    function = _core(f"{prefix}function", top, scenario.function_config)
    _core(f"{prefix}mapping", top, scenario.mapping_config)
    account = _core("account", top, scenario.account_config)
    _core(f"{prefix}queue", top, lambda: check_visibility_against_timeout(queue, function))
    if not prefix:
        _core("function", top, lambda: ConcurrencyPool(account).register(function))


# ---------------------------------------------------------------------- overrides


def _parse_value(text: str) -> Any:
    """A TOML value (``50``, ``true``, ``"4m"``, ``{ ... }``), or the bare text when it is
    not one (so ``scaling=fixed`` needs no quotes)."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text.strip()


def _apply_override(data: dict[str, Any], override: str, context: str) -> None:
    key, sep, text = override.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ScenarioError("override", override, "KEY=VALUE, e.g. mapping.batch_size=10",
                            context)
    parts = key.split(".")
    node: Any = data
    depth = 0
    while True:
        if parts[depth] == "producer" and isinstance(node, dict):
            # [producer] is stored as producers[0] (a topic subscriber's too); in a list
            # the part is an element's name (a subscriber may be named "producer")
            parts[depth:depth + 1] = ["producers", "0"]
        if depth == len(parts) - 1:
            break
        part = parts[depth]
        depth += 1
        here = ".".join(parts[:depth])
        if isinstance(node, list):
            node = node[_element(node, part, here, override, context)]
        else:
            child = node.get(part)
            if child is None:
                child = node[part] = [{}] if part in ("producers",) else {}
            if not isinstance(child, (dict, list)):
                raise ScenarioError(here, child, "a table", context,
                                    message=f"override {override!r}: {here} is not a table")
            node = child
    last = parts[-1]
    value = _parse_value(text)
    if isinstance(node, list):
        node[_element(node, last, ".".join(parts), override, context)] = value
    else:
        node[last] = value


def _element(node: list[Any], part: str, here: str, override: str, context: str) -> int:
    """The index of an array element named in an override: a number, or the ``name`` of
    a table in the array (``subscribers.billing``)."""
    if part.isdigit():
        if int(part) < len(node):
            return int(part)
        raise ScenarioError(here, override, f"an index 0-{len(node) - 1}", context,
                            message=f"override {override!r}: no {here}")
    for index, element in enumerate(node):
        if isinstance(element, Mapping) and element.get("name") == part:
            return index
    names = [str(e["name"]) for e in node if isinstance(e, Mapping) and "name" in e]
    known = f" (known: {', '.join(names)})" if names else ""
    raise ScenarioError(here, override, "an index or a name", context,
                        message=f"override {override!r}: no {here}{known}")


def _plain(value: Any) -> Any:
    """A deep copy made of dicts and lists (so overrides never touch the caller's data)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# ---------------------------------------------------------------------- entry point


def load_scenario(
    source: str | Path | Mapping[str, Any] | Scenario,
    *,
    overrides: Iterable[str] = (),
) -> Scenario:
    """Read and validate a scenario.

    Parameters:
        source: a path to a TOML file (``str`` or ``Path``; a ``str`` naming no file
            that contains a newline or ``=`` is read as TOML text), a plain dict (as
            :meth:`Scenario.to_dict` gives), or a :class:`Scenario` (overrides applied to
            its plain form).
        overrides: ``KEY=VALUE`` strings applied before validation, ``KEY`` a dotted key
            path (``mapping.maximum_concurrency=50``, ``producers.0.rate=500``,
            ``function.duration="300ms"``); ``VALUE`` is a TOML value, or bare text.

    Returns:
        The validated :class:`Scenario`. Relative ``file`` paths of empirical
        distributions are read relative to the scenario file (or the working directory).

    Raises:
        ScenarioError: a file that cannot be read, invalid TOML, an unknown key, a value
            out of range; the message is one line naming the key path.
    """
    data, context, base = _scenario_data(source, overrides)
    return _parse(data, context, base)


def _scenario_data(source: Any, overrides: Iterable[str]
                   ) -> tuple[dict[str, Any], str, Path | None]:
    """The plain data of a scenario of any kind with ``overrides`` applied, where it came
    from (for error messages), and the directory relative paths use.

    ``source`` is a file or TOML text (see :func:`load_scenario`), a plain mapping, or a
    scenario object (its ``to_dict()``). ``[producer]`` tables, the top level's and a topic
    subscriber's, are stored as ``producers[0]`` first, so that overrides reach them
    either way.
    """
    base: Path | None = None
    if isinstance(source, Mapping):
        context = "scenario"
        data = _plain(source)
    elif hasattr(source, "to_dict"):
        context = getattr(source, "name", "") or "scenario"
        data = source.to_dict()
    else:
        text, context, base = _read_source(source)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError("toml", None, "", context,
                                message=f"invalid TOML: {exc}") from None
    tables = [data]
    subscribers = data.get("subscribers")
    if isinstance(subscribers, list):
        tables += [t for t in subscribers if isinstance(t, dict)]
    for table in tables:
        if isinstance(table.get("producer"), Mapping) and not table.get("producers"):
            table["producers"] = [table.pop("producer")]
    for override in overrides:
        _apply_override(data, override, context)
    return data, context, base


def _read_source(source: str | Path) -> tuple[str, str, Path | None]:
    """The TOML text, the name to show in errors, and the directory relative paths use."""
    if isinstance(source, str) and ("\n" in source or "=" in source):
        is_file = "\n" not in source and len(source) < 4096 and Path(source).is_file()
        if not is_file:
            return source, "scenario", None
    path = Path(source)
    try:
        return path.read_text(encoding="utf-8"), path.name, path.parent
    except OSError as exc:
        raise ScenarioError("file", str(source), "", path.name or "scenario",
                            message=f"cannot read {source}: {exc.strerror or exc}") from None
