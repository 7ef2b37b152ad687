"""The simulator's own sections as frozen dataclasses, with their defaults.

A queue, stream or topic scenario is made of these beside the core's own configuration
objects: its mapping is the core's :class:`~sluicegate.core.config.MappingConfig` or
:class:`~sluicegate.core.streams.StreamMappingConfig` and its account the core's
:class:`~sluicegate.core.config.AccountConfig`, read through the same setting definitions
(:mod:`sluicegate.core.settings`) the App API uses. What is here describes what only the
simulator must be told (the queue's backlog and messages, the function's modelled
durations and error windows, the producers, the downstream, pauses).
:mod:`sluicegate.sim.sections` reads them from TOML; the plain-form helpers at the end
write them back as :meth:`Scenario.to_dict <sluicegate.sim.scenario.Scenario.to_dict>`
gives them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from sluicegate.core.breaker import BreakerConfig
from sluicegate.core.config import AccountConfig, MappingConfig, is_fifo_queue
from sluicegate.core.settings import SETTINGS
from sluicegate.core.streams import StreamMappingConfig
from sluicegate.sim.distributions import Distribution, Fixed

__all__ = [
    "DEFAULT_BUCKET",
    "DEFAULT_COLD_START",
    "DEFAULT_DURATION",
    "DEFAULT_FUNCTION_DURATION",
    "DEFAULT_LATENCY_EXPONENT",
    "DEFAULT_MESSAGE_SIZE",
    "DEFAULT_OVERLOAD_ERRORS",
    "DEFAULT_RAISE_AT",
    "DEFAULT_SEED",
    "DOWNSTREAM_RATE_WINDOW",
    "ENVIRONMENT_IDLE_TIMEOUT",
    "RECORD_OVERHEAD",
    "DownstreamSpec",
    "ErrorWindow",
    "FunctionSpec",
    "Pause",
    "ProducerSpec",
    "QueueSpec",
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

_DEFAULT_DURATION_MODEL: Distribution = Fixed(DEFAULT_FUNCTION_DURATION)
_DEFAULT_COLD_START_MODEL: Distribution = Fixed(DEFAULT_COLD_START)
_NO_LATENCY: Distribution = Fixed(0.0)

ErrorKind: TypeAlias = Literal["raise", "batch_item_failure", "timeout"]
ProducerKind: TypeAlias = Literal["constant", "poisson", "burst"]
ERROR_KINDS = ("raise", "batch_item_failure", "timeout")
PRODUCER_KINDS = ("constant", "poisson", "burst")
DOWNSTREAM_ERROR_KINDS = ("raise", "batch_item_failure")
DOWNSTREAM_PER = ("invocation", "record")

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
    visibility_timeout: int = SETTINGS["visibility_timeout"].default
    delay_seconds: int = SETTINGS["delay_seconds"].default
    max_receive_count: int | None = SETTINGS["max_receive_count"].default
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
    duration: Distribution = _DEFAULT_DURATION_MODEL
    duration_per_record: float = 0.0
    cold_start: Distribution = _DEFAULT_COLD_START_MODEL
    timeout: float = SETTINGS["timeout"].default
    reserved_concurrency: int | None = SETTINGS["reserved_concurrency"].default
    idle_timeout: float = ENVIRONMENT_IDLE_TIMEOUT
    errors: tuple[ErrorWindow, ...] = ()


@dataclass(frozen=True, slots=True)
class Pause:
    """The mapping is disabled at ``at`` and enabled again at ``until`` (``None``: never)."""

    at: float
    until: float | None = None


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
    latency: Distribution = _NO_LATENCY
    latency_exponent: float = DEFAULT_LATENCY_EXPONENT
    overload_errors: float = DEFAULT_OVERLOAD_ERRORS
    error_kind: Literal["raise", "batch_item_failure"] = "raise"
    per: Literal["invocation", "record"] = "invocation"


# ---------------------------------------------------------------------- plain form


def function_dict(f: FunctionSpec) -> dict[str, Any]:
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


def breaker_dict(b: BreakerConfig) -> dict[str, Any]:
    """A breaker's settings in plain form (``[mapping.breaker]``; unset ones left out)."""
    return {name: getattr(b, name) for name in BreakerConfig.__dataclass_fields__
            if name != "probe" and getattr(b, name) is not None}


def pauses_list(pauses: tuple[Pause, ...]) -> list[dict[str, Any]]:
    return [{"at": p.at, "until": p.until} for p in pauses]


_QUEUE_MAPPING_KEYS = ("batch_size", "maximum_batching_window", "maximum_concurrency",
                       "report_batch_item_failures", "scaling", "scaling_ceiling", "enabled")
_STREAM_MAPPING_KEYS = ("batch_size", "maximum_batching_window", "parallelization_factor",
                        "bisect_batch_on_function_error", "maximum_retry_attempts",
                        "maximum_record_age", "on_failure", "starting_position",
                        "starting_position_timestamp", "report_batch_item_failures",
                        "enabled")
"""The settings a scenario's ``[mapping]`` writes, in the plain form's order."""


def mapping_dict(m: MappingConfig | StreamMappingConfig,
                 pauses: tuple[Pause, ...]) -> dict[str, Any]:
    """A mapping's ``[mapping]`` in plain form: its settings, its pauses, a queue
    mapping's filter patterns, its own breaker (a scenario's mapping shares none) and,
    with adaptive scaling, the adaptive limit's settings (the defaults the core filled in
    when the table is absent)."""
    queue = isinstance(m, MappingConfig)
    out: dict[str, Any] = {name: getattr(m, name)
                           for name in (_QUEUE_MAPPING_KEYS if queue else _STREAM_MAPPING_KEYS)}
    out["pauses"] = pauses_list(pauses)
    if isinstance(m, MappingConfig) and m.filter_criteria.patterns:
        out["filter_criteria"] = list(m.filter_criteria.patterns)
    if isinstance(m.breaker, BreakerConfig):
        out["breaker"] = breaker_dict(m.breaker)
    if isinstance(m, MappingConfig) and m.adaptive is not None:  # adaptive scaling only
        out["adaptive"] = m.adaptive.to_dict()
    return out


def producer_dict(p: ProducerSpec) -> dict[str, Any]:
    return {"kind": p.kind, "rate": p.rate, "start": p.start, "stop": p.stop,
            "size": p.size, "interval": p.interval, "batch": p.batch}


def downstream_dict(d: DownstreamSpec | None) -> dict[str, Any] | None:
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


def account_dict(a: AccountConfig) -> dict[str, Any]:
    return {"concurrency_limit": a.concurrency_limit, "min_unreserved": a.min_unreserved}


def dlq_name(queue: str) -> str:
    # Queue names are at most 80 characters; keep room for the suffix. A FIFO queue's
    # dead-letter queue is FIFO too.
    if is_fifo_queue(queue):
        return f"{queue[:-5][:71]}-dlq.fifo"
    return f"{queue[:76]}-dlq"

