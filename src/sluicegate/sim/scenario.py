"""Queue scenarios: what the simulator runs for one queue, its function and its mapping.

A scenario is written in TOML (see ``docs/scenarios.md`` for the whole format) with AWS's
names, snake_cased. :func:`load_scenario` reads a file, a TOML string or a plain dict,
applies ``KEY=VALUE`` overrides, and validates everything at once: a bad value raises
:class:`ScenarioError` (a :class:`~sluicegate.errors.ConfigError`) whose one-line message
names the key path (``mapping.maximum_concurrency``), the value and what is allowed.

AWS parameters (batch size, visibility timeout, maximum concurrency, ...) are validated
by the core's own configuration classes, so that a scenario accepts exactly what an App
accepts; only the simulator's own models are validated here. ``[mapping]`` and
``[account]`` are read straight into the core's :class:`MappingConfig` and
:class:`AccountConfig`; :func:`~sluicegate.sim.world.app_and_load` reads a scenario as the
App and the load it describes.

:meth:`Scenario.to_dict` gives the normalized form (every default filled in, durations in
seconds) that :func:`load_scenario` accepts back unchanged.

The parts live in modules of their own: :mod:`~sluicegate.sim.distributions` (duration
models), :mod:`~sluicegate.sim.specs` (the simulator's own sections, with their defaults),
:mod:`~sluicegate.sim.schema` (the error, durations, the table reader),
:mod:`~sluicegate.sim.sections` (the sections' parsers, shared by every kind),
:mod:`~sluicegate.sim.overrides` (``KEY=VALUE``) and :mod:`~sluicegate.sim.sources`
(files and text). This module keeps their public names importable from here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sluicegate.core.config import (
    AccountConfig,
    FunctionConfig,
    MappingConfig,
    QueueConfig,
)
from sluicegate.sim.distributions import (
    Distribution,
    Empirical,
    Exponential,
    Fixed,
    LogNormal,
    Normal,
    Uniform,
)
from sluicegate.sim.schema import ScenarioError, Table, parse_duration
from sluicegate.sim.sections import (
    check_with_core,
    parse_account,
    parse_downstream,
    parse_function,
    parse_mapping,
    parse_producers,
    parse_queue,
)
from sluicegate.sim.sources import scenario_data
from sluicegate.sim.specs import (
    DEFAULT_BUCKET,
    DEFAULT_COLD_START,
    DEFAULT_DURATION,
    DEFAULT_FUNCTION_DURATION,
    DEFAULT_MESSAGE_SIZE,
    DEFAULT_RAISE_AT,
    DEFAULT_SEED,
    DOWNSTREAM_RATE_WINDOW,
    ENVIRONMENT_IDLE_TIMEOUT,
    RECORD_OVERHEAD,
    DownstreamSpec,
    ErrorWindow,
    FunctionSpec,
    Pause,
    ProducerSpec,
    QueueSpec,
    account_dict,
    dlq_name,
    downstream_dict,
    function_dict,
    mapping_dict,
    producer_dict,
)

__all__ = [
    "DEFAULT_BUCKET",
    "DEFAULT_COLD_START",
    "DEFAULT_DURATION",
    "DEFAULT_FUNCTION_DURATION",
    "DEFAULT_MESSAGE_SIZE",
    "DEFAULT_RAISE_AT",
    "DEFAULT_SEED",
    "DOWNSTREAM_RATE_WINDOW",
    "ENVIRONMENT_IDLE_TIMEOUT",
    "RECORD_OVERHEAD",
    "Distribution",
    "DownstreamSpec",
    "Empirical",
    "ErrorWindow",
    "Exponential",
    "Fixed",
    "FunctionSpec",
    "LogNormal",
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


@dataclass(frozen=True, slots=True)
class Scenario:
    """Everything one simulation run needs. Build it with :func:`load_scenario`.

    Attributes:
        seed: seeds every random draw of the run.
        duration: simulated seconds.
        bucket: seconds per series entry.
        name: a label (free text).
        description: free text.
        queue, function: the sections of the same names.
        mapping: ``[mapping]``, the core's configuration of the mapping.
        producers: message sources (possibly none).
        downstream: the dependency the function calls, or ``None``.
        account: ``[account]``, the core's configuration of the account pool.
        pauses: the mapping's disable/enable windows (``[[mapping.pauses]]``).
    """

    seed: int = DEFAULT_SEED
    duration: float = DEFAULT_DURATION
    bucket: float = DEFAULT_BUCKET
    name: str = ""
    description: str = ""
    queue: QueueSpec = field(default_factory=QueueSpec)
    function: FunctionSpec = field(default_factory=FunctionSpec)
    mapping: MappingConfig = field(default_factory=lambda: MappingConfig("queue", "function"))
    producers: tuple[ProducerSpec, ...] = ()
    downstream: DownstreamSpec | None = None
    account: AccountConfig = field(default_factory=AccountConfig)
    pauses: tuple[Pause, ...] = ()

    # ------------------------------------------------------------------ core configs

    def queue_config(self) -> QueueConfig:
        """The core's configuration of the source queue."""
        q = self.queue
        return QueueConfig(
            q.queue_name,
            visibility_timeout=q.visibility_timeout,
            delay_seconds=q.delay_seconds,
            dead_letter_queue=None if q.max_receive_count is None else dlq_name(q.queue_name),
            max_receive_count=q.max_receive_count,
        )

    def dead_letter_queue_config(self) -> QueueConfig | None:
        """The core's configuration of the dead-letter queue, if the queue has one."""
        if self.queue.max_receive_count is None:
            return None
        return QueueConfig(dlq_name(self.queue.queue_name))

    def function_config(self) -> FunctionConfig:
        """The core's configuration of the function."""
        f = self.function
        return FunctionConfig(f.name, timeout=f.timeout,
                              reserved_concurrency=f.reserved_concurrency)

    # ------------------------------------------------------------------ plain form

    def to_dict(self) -> dict[str, Any]:
        """The normalized plain form: every key, defaults filled in, durations in seconds,
        ``None`` for what is not set. :func:`load_scenario` accepts it back unchanged."""
        q, f, a = self.queue, self.function, self.account
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
            "function": function_dict(f),
            "mapping": mapping_dict(self.mapping, self.pauses),
            "producers": [producer_dict(p) for p in self.producers],
            "downstream": downstream_dict(d),
            "account": account_dict(a),
        }



# ---------------------------------------------------------------------- parsing


def parse_queue_scenario(data: Mapping[str, Any], context: str, base: Path | None) -> Scenario:
    if data.get("stream") is not None:
        raise ScenarioError("stream", None, "", context, message=(
            "a stream scenario ([stream]), not a queue scenario (load_any_scenario "
            "reads every kind)"))
    if data.get("topic") is not None:
        raise ScenarioError("topic", None, "", context, message=(
            "a topic scenario ([topic]), not a queue scenario (load_any_scenario "
            "reads every kind)"))
    top = Table(data, "", context, base)
    seed = top.get("seed", DEFAULT_SEED, top.integer(0, 2**63 - 1))
    duration = top.get("duration", DEFAULT_DURATION, top.positive_seconds)
    bucket = top.get("bucket", DEFAULT_BUCKET, top.positive_seconds)
    name = top.get("name", "", top.text)
    description = top.get("description", "", top.text)
    queue = parse_queue(top.sub("queue"))
    function = parse_function(top)
    mapping, pauses = parse_mapping(top.sub("mapping"), queue.queue_name, function.name)
    producers = parse_producers(top)
    downstream = parse_downstream(top)
    account = parse_account(top)
    top.finish()

    scenario = Scenario(seed, duration, bucket, name, description, queue, function, mapping,
                        producers, downstream, account, pauses)
    check_with_core(scenario, top)
    return scenario



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
    data, context, base = scenario_data(source, overrides)
    return parse_queue_scenario(data, context, base)


