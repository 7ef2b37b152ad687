"""Stream scenarios: a Kinesis-style stream, its producers and a stream mapping, in TOML.

A stream scenario is a scenario with a ``[stream]`` table instead of ``[queue]`` (see
``docs/scenarios.md``, "Stream scenarios"). It shares the top-level keys,
``[function]`` (errors included), ``[downstream]``, ``[account]`` and the producers'
arrival keys with queue scenarios, through the same parsers, and adds:

- ``[stream]``: ``shard_count``, ``retention_period``, ``record_size`` and
  ``[[stream.poison]]`` records that always fail;
- producer keys that choose each record's partition key: ``partition_keys`` (how many
  keys, named ``k0`` .. ``k{N-1}``) and ``key_distribution`` (``uniform``, ``zipf`` or
  ``hot``);
- ``[mapping]`` with the stream mapping's AWS parameters (``parallelization_factor``,
  ``bisect_batch_on_function_error``, ``maximum_retry_attempts``, ...).

AWS parameters are validated by the core's :class:`~sluicegate.core.streams.StreamConfig`
and :class:`~sluicegate.core.streams.StreamMappingConfig`, so a scenario accepts what an
App accepts; errors are the same one-line :class:`~sluicegate.sim.scenario.ScenarioError`
as for queue scenarios.

:func:`~sluicegate.sim.loading.load_any_scenario` reads every kind.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias

from sluicegate.core.config import AccountConfig, FunctionConfig
from sluicegate.core.pool import ConcurrencyPool
from sluicegate.core.settings import SETTINGS, STREAM
from sluicegate.core.streams import (
    MAX_PARTITION_KEY_LENGTH,
    StreamConfig,
    StreamMappingConfig,
)
from sluicegate.sim.schema import ScenarioError, Table, checked
from sluicegate.sim.sections import (
    parse_account,
    parse_breaker,
    parse_downstream,
    parse_function,
    parse_pauses,
    parse_producer,
    producer_tables,
)
from sluicegate.sim.sources import scenario_data
from sluicegate.sim.specs import (
    DEFAULT_BUCKET,
    DEFAULT_DURATION,
    DEFAULT_SEED,
    DownstreamSpec,
    FunctionSpec,
    Pause,
    ProducerSpec,
    account_dict,
    downstream_dict,
    function_dict,
    mapping_dict,
    producer_dict,
)

__all__ = [
    "DEFAULT_ON_FAILURE_QUEUE",
    "DEFAULT_PARTITION_KEYS",
    "DEFAULT_RECORD_SIZE",
    "KEY_DISTRIBUTIONS",
    "MAX_PARTITION_KEYS",
    "STREAM_RECORD_OVERHEAD",
    "PoisonSpec",
    "StreamProducerSpec",
    "StreamScenario",
    "StreamSpec",
    "load_stream_scenario",
    "partition_key",
]

DEFAULT_RECORD_SIZE = 1024
"""Bytes of a simulated record's data when the scenario does not say (sluicegate's
choice, as for queue messages: a small JSON document)."""

STREAM_RECORD_OVERHEAD = 600
"""Bytes a Kinesis record adds to the invocation payload besides its base64 data: the
event's JSON metadata (partition key, sequence number twice, ARNs, ...). The runtime's
``kinesis_record_size`` measures 580 for a short key and a 56-digit sequence number (the
length of Kinesis's), rounded up. Counted against the 6 MB payload cap."""

DEFAULT_PARTITION_KEYS = 100
"""Distinct partition keys of a producer that names none (sluicegate's choice: enough to
spread over every lane of a few shards)."""

MAX_PARTITION_KEYS = 1_000_000
"""Most distinct partition keys of one producer: a ``zipf`` distribution keeps one float
per key (8 MB at this bound)."""

DEFAULT_ON_FAILURE_QUEUE = "on-failure"
"""The on-failure destination's name when a scenario gives ``on_failure = true``."""

_STREAM_BATCH_SIZE: int = SETTINGS["batch_size"].default_for(STREAM)
_STREAM_RETENTION: int = SETTINGS["retention_period"].default_for(STREAM)

KEY_DISTRIBUTIONS = ("uniform", "zipf", "hot")
_POISON_KINDS = ("raise", "batch_item_failure")

KeyDistribution: TypeAlias = Literal["uniform", "zipf", "hot"]
PoisonKind: TypeAlias = Literal["raise", "batch_item_failure"]


def partition_key(index: int) -> str:
    """The name of a producer's partition key number ``index``: ``k0``, ``k1``, ..."""
    return f"k{index}"


# ---------------------------------------------------------------------- sections


@dataclass(frozen=True, slots=True)
class PoisonSpec:
    """A poison record (``[[stream.poison]]``): one record put at ``at`` with partition
    key ``key``, which every invocation holding it fails on.

    Attributes:
        at: seconds into the run when it is put (besides the producers' records).
        key: its partition key (1-256 characters; producers' keys are ``k0``, ``k1``, ...),
            which chooses its shard and lane.
        kind: ``raise`` (the handler throws: the whole batch fails) or
            ``batch_item_failure`` (the handler reports it in ``batchItemFailures``;
            judged by the core, so ignored without ``report_batch_item_failures``).
    """

    at: float
    key: str
    kind: PoisonKind = "raise"


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """The source stream (``[stream]``).

    Attributes:
        name: the stream's name (Kinesis's rules: 1-128 of letters, digits, ``_-.``).
        shard_count: shards, 1-10,000.
        retention_period: seconds a record stays readable, 86,400-31,536,000 (Kinesis's
            range). The in-memory stream holds every record put within it, so memory
            grows with the records of the run until the run is longer than this.
        record_size: bytes of each record's data, 1-1,048,576 (Kinesis's 1 MB); as
            base64, with :data:`STREAM_RECORD_OVERHEAD`, it counts against the 6 MB
            invocation payload.
        poison: poison records, in time order.
    """

    name: str = "stream"
    shard_count: int = SETTINGS["shard_count"].default
    retention_period: int = _STREAM_RETENTION
    record_size: int = DEFAULT_RECORD_SIZE
    poison: tuple[PoisonSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class StreamProducerSpec:
    """A record source (``[producer]`` or ``[[producers]]`` of a stream scenario).

    Attributes:
        arrivals: when it puts records and how many each time (``kind``, ``rate``,
            ``start``, ``stop``, ``size``, ``interval``, ``batch`` 1-500: PutRecords
            takes up to 500).
        partition_keys: distinct keys, 1-1,000,000, named ``k0`` .. ``k{N-1}``.
        key_distribution: how each record's key is drawn: ``uniform``; ``zipf`` (key
            ``k{i}`` with weight ``1 / (i + 1) ** zipf_exponent``); ``hot`` (key ``k0``
            with probability ``hot_key_share``, else uniform over all keys).
        zipf_exponent: the zipf exponent, > 0 and <= 10 (used with ``zipf``).
        hot_key_share: 0-1 (used with ``hot``).
    """

    arrivals: ProducerSpec
    partition_keys: int = DEFAULT_PARTITION_KEYS
    key_distribution: KeyDistribution = "uniform"
    zipf_exponent: float = 1.0
    hot_key_share: float = 0.5


@dataclass(frozen=True, slots=True)
class StreamScenario:
    """Everything one stream simulation needs. Build it with :func:`load_stream_scenario`.

    Attributes:
        seed, duration, bucket, name, description: as in
            :class:`~sluicegate.sim.scenario.Scenario`.
        stream, function: the sections of the same names.
        mapping: ``[mapping]``, the core's configuration of the stream mapping.
        producers: record sources (possibly none).
        downstream: the dependency the function calls, or ``None``.
        account: ``[account]``, the core's configuration of the account pool.
        pauses: the mapping's disable/enable windows (``[[mapping.pauses]]``).
    """

    seed: int = DEFAULT_SEED
    duration: float = DEFAULT_DURATION
    bucket: float = DEFAULT_BUCKET
    name: str = ""
    description: str = ""
    stream: StreamSpec = field(default_factory=StreamSpec)
    function: FunctionSpec = field(default_factory=FunctionSpec)
    mapping: StreamMappingConfig = field(
        default_factory=lambda: StreamMappingConfig("stream", "function"))
    producers: tuple[StreamProducerSpec, ...] = ()
    downstream: DownstreamSpec | None = None
    account: AccountConfig = field(default_factory=AccountConfig)
    pauses: tuple[Pause, ...] = ()

    # ------------------------------------------------------------------ core configs

    def stream_config(self) -> StreamConfig:
        """The core's configuration of the stream."""
        s = self.stream
        return StreamConfig(s.name, shard_count=s.shard_count,
                            retention_period=s.retention_period)

    def function_config(self) -> FunctionConfig:
        """The core's configuration of the function."""
        f = self.function
        return FunctionConfig(f.name, timeout=f.timeout,
                              reserved_concurrency=f.reserved_concurrency)

    # ------------------------------------------------------------------ plain form

    def to_dict(self) -> dict[str, Any]:
        """The normalized plain form: every key, defaults filled in, durations in seconds,
        ``None`` for what is not set. :func:`load_stream_scenario` accepts it back."""
        s = self.stream
        return {
            "name": self.name,
            "description": self.description,
            "seed": self.seed,
            "duration": self.duration,
            "bucket": self.bucket,
            "stream": {
                "name": s.name,
                "shard_count": s.shard_count,
                "retention_period": s.retention_period,
                "record_size": s.record_size,
                "poison": [{"at": p.at, "key": p.key, "kind": p.kind} for p in s.poison],
            },
            "function": function_dict(self.function),
            "mapping": mapping_dict(self.mapping, self.pauses),
            "producers": [
                {**producer_dict(p.arrivals),
                 "partition_keys": p.partition_keys,
                 "key_distribution": p.key_distribution,
                 "zipf_exponent": p.zipf_exponent,
                 "hot_key_share": p.hot_key_share}
                for p in self.producers
            ],
            "downstream": downstream_dict(self.downstream),
            "account": account_dict(self.account),
        }


# ---------------------------------------------------------------------- parsing


def _limit_or_off(t: Table, whole_seconds: bool) -> Any:
    """-1 (no limit), else a count (or whole seconds); the core checks the range."""

    def convert(name: str, value: Any) -> int:
        if value == -1 and not isinstance(value, bool):
            return -1
        if whole_seconds:
            return int(t.whole_seconds(0, 10**9)(name, value))
        return int(t.integer(0, 10**9)(name, value))

    return convert


def _on_failure(t: Table) -> Any:
    def convert(name: str, value: Any) -> str | None:
        if value is True:
            return DEFAULT_ON_FAILURE_QUEUE
        if value is False:
            return None
        if isinstance(value, str):
            return value
        raise t.error(name, value, "a queue name, true (a queue named 'on-failure') or false")

    return convert


def parse_poison(st: Table) -> tuple[PoisonSpec, ...]:
    """``[[stream.poison]]`` (or a load file's ``[[streams.NAME.poison]]``), in time
    order."""
    poison = []
    for pt in st.subs("poison"):
        at = pt.get("at", None, pt.seconds)
        if at is None:
            raise pt.error("at", None, "a time (when the poison record is put)")
        key = pt.get("key", None, pt.text)
        if key is None or not 1 <= len(key) <= MAX_PARTITION_KEY_LENGTH:
            raise pt.error("key", key, f"a partition key of 1-{MAX_PARTITION_KEY_LENGTH} "
                                       "characters (producers' keys are k0, k1, ...)")
        poison.append(PoisonSpec(at, key, pt.get("kind", "raise", pt.choice(_POISON_KINDS))))
        pt.finish()
    return tuple(sorted(poison, key=lambda p: p.at))


def parse_stream_producers(top: Table) -> tuple[StreamProducerSpec, ...]:
    """``[producer]`` or ``[[producers]]`` of records (PutRecords of 1-500), with the keys
    that choose each record's partition key."""
    producers = []
    for pt in producer_tables(top):
        arrivals = parse_producer(pt, batch_max=500, unit="records")
        producers.append(StreamProducerSpec(
            arrivals,
            partition_keys=pt.get("partition_keys", DEFAULT_PARTITION_KEYS,
                                  pt.integer(1, MAX_PARTITION_KEYS)),
            key_distribution=pt.get("key_distribution", "uniform",
                                    pt.choice(KEY_DISTRIBUTIONS)),
            zipf_exponent=pt.get("zipf_exponent", 1.0, pt.number(0.0, 10.0, open_low=True)),
            hot_key_share=pt.get("hot_key_share", 0.5, pt.number(0.0, 1.0)),
        ))
        pt.finish()
    return tuple(producers)


def parse_stream_scenario(data: Mapping[str, Any], context: str, base: Path | None) -> StreamScenario:
    if data.get("queue") is not None:
        raise ScenarioError("queue", None, "", context,
                            message="a scenario has [queue] or [stream], not both")
    if data.get("topic") is not None:
        raise ScenarioError("topic", None, "", context,
                            message="a scenario has [topic] or [stream], not both")
    top = Table(data, "", context, base)
    top.used.add("queue")
    seed = top.get("seed", DEFAULT_SEED, top.integer(0, 2**63 - 1))
    duration = top.get("duration", DEFAULT_DURATION, top.positive_seconds)
    bucket = top.get("bucket", DEFAULT_BUCKET, top.positive_seconds)
    name = top.get("name", "", top.text)
    description = top.get("description", "", top.text)

    st = top.sub("stream")
    poison = parse_poison(st)
    stream = StreamSpec(
        name=st.get("name", "stream", st.text),
        shard_count=st.setting("shard_count", convert=st.integer(1, 10**9)),
        retention_period=st.setting("retention_period", STREAM, convert=st.whole_seconds(0, 10**10)),
        record_size=st.get("record_size", DEFAULT_RECORD_SIZE, st.integer(1, 1_048_576)),
        poison=poison,
    )
    st.finish()

    function = parse_function(top)

    mapping, pauses = parse_stream_mapping(top.sub("mapping"), stream.name, function.name)

    producers = parse_stream_producers(top)
    downstream = parse_downstream(top)
    account = parse_account(top)
    top.finish()

    scenario = StreamScenario(seed, duration, bucket, name, description, stream, function,
                              mapping, producers, downstream, account, pauses)
    checked("stream", top, scenario.stream_config)
    function_config = checked("function", top, scenario.function_config)
    checked("function", top, lambda: ConcurrencyPool(account).register(function_config))
    return scenario


def parse_stream_mapping(mt: Table, stream: str, function: str
                         ) -> tuple[StreamMappingConfig, tuple[Pause, ...]]:
    """``[mapping]`` of a stream from ``stream`` to ``function``: the core's
    :class:`StreamMappingConfig`, each setting read through its definition and the whole
    judged by the core, and the mapping's ``[[mapping.pauses]]``."""
    settings = {
        "batch_size": mt.setting("batch_size", STREAM),
        "maximum_batching_window": mt.setting("maximum_batching_window"),
        "parallelization_factor": mt.setting("parallelization_factor"),
        "bisect_batch_on_function_error": mt.setting("bisect_batch_on_function_error"),
        "maximum_retry_attempts": mt.setting("maximum_retry_attempts",
                                             convert=_limit_or_off(mt, False)),
        "maximum_record_age": mt.setting("maximum_record_age",
                                         convert=_limit_or_off(mt, True)),
        "on_failure": mt.get("on_failure", None, _on_failure(mt)),
        "starting_position": mt.setting("starting_position"),
        "starting_position_timestamp": mt.get("starting_position_timestamp", None,
                                              mt.seconds),
        "report_batch_item_failures": mt.setting("report_batch_item_failures"),
        "enabled": mt.setting("enabled"),
    }
    pauses = parse_pauses(mt)
    breaker = parse_breaker(mt)
    mt.finish()
    mapping: StreamMappingConfig = checked(mt.path, mt, lambda: StreamMappingConfig(
        stream, function, **settings, breaker=breaker))
    return mapping, pauses


# ---------------------------------------------------------------------- entry points


def load_stream_scenario(
    source: str | Path | Mapping[str, Any] | StreamScenario,
    *,
    overrides: Iterable[str] = (),
) -> StreamScenario:
    """Read and validate a stream scenario.

    Parameters:
        source: a TOML file or text, a plain dict (as :meth:`StreamScenario.to_dict`
            gives) or a :class:`StreamScenario`; see
            :func:`~sluicegate.sim.load_scenario`.
        overrides: ``KEY=VALUE`` strings applied before validation
            (``mapping.parallelization_factor=4``, ``stream.poison.0.at="1m"``).

    Returns:
        The validated :class:`StreamScenario`.

    Raises:
        ScenarioError: unreadable, invalid TOML, an unknown key, a value out of range,
            or no ``[stream]`` table; the message is one line naming the key path.
    """
    data, context, base = scenario_data(source, overrides)
    if data.get("stream") is None:
        raise ScenarioError("stream", None, "", context,
                            message="not a stream scenario: it has no [stream] table")
    return parse_stream_scenario(data, context, base)

